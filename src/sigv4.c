/*
 * sigv4.c - AWS Signature Version 4 (see sigv4.h).
 *
 * Layer: services (pure; OpenSSL for SHA-256/HMAC, nothing else).
 * Thread-safety: reentrant, no shared state.
 */
#include "sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char hexdig[] = "0123456789abcdef";

static void to_hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[d[i] >> 4];
        out[2 * i + 1] = hexdig[d[i] & 15];
    }
    out[2 * n] = 0;
}

void dsq_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    to_hex(md, sizeof(md), out);
}

void dsq_sigv4_amz_date(uint64_t ms, char out[17])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

dsq_rc dsq_sigv4_encode(const char *s, int encode_slash, struct dsq_buf *out)
{
    static const char up[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        dsq_rc rc;
        if (unreserved(*p) || (*p == '/' && !encode_slash)) {
            rc = dsq_buf_append(out, p, 1);
        } else {
            char esc[3] = {'%', up[*p >> 4], up[*p & 15]};
            rc = dsq_buf_append(out, esc, 3);
        }
        if (rc != DSQ_OK)
            return rc;
    }
    return DSQ_OK;
}

dsq_rc dsq_sigv4_encode_path(const char *path, struct dsq_buf *out)
{
    if (!path || !*path)
        return dsq_buf_append(out, "/", 1);
    return dsq_sigv4_encode(path, 0, out);
}

/* One encoded query pair (or header) in a sortable array. */
struct kv {
    char *k;
    char *v;
    size_t idx; /* original position: keeps the sort stable */
};

static int kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    if (c)
        return c;
    c = strcmp(x->v, y->v);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int kv_cmp_name_stable(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void kv_free(struct kv *a, size_t n)
{
    if (!a)
        return;
    for (size_t i = 0; i < n; i++) {
        free(a[i].k);
        free(a[i].v);
    }
    free(a);
}

static char *encode_dup(const char *s)
{
    struct dsq_buf b;
    dsq_buf_init(&b, 1 << 20);
    if (dsq_sigv4_encode(s ? s : "", 1, &b) != DSQ_OK ||
        dsq_buf_terminate(&b) != DSQ_OK) {
        dsq_buf_cleanup(&b);
        return NULL;
    }
    if (!b.data)
        return strdup("");
    return (char *)dsq_buf_detach(&b, NULL);
}

dsq_rc dsq_sigv4_query(const struct dsq_sigv4_pair *q, size_t n,
                       struct dsq_buf *out)
{
    dsq_rc rc = DSQ_OK;
    if (n == 0)
        return DSQ_OK;
    struct kv *a = calloc(n, sizeof(*a));
    if (!a)
        return DSQ_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        a[i].k = encode_dup(q[i].name);
        a[i].v = encode_dup(q[i].value);
        a[i].idx = i;
        if (!a[i].k || !a[i].v) {
            rc = DSQ_ENOMEM;
            goto out;
        }
    }
    qsort(a, n, sizeof(*a), kv_cmp);
    for (size_t i = 0; i < n && rc == DSQ_OK; i++) {
        if (i)
            rc = dsq_buf_append(out, "&", 1);
        if (rc == DSQ_OK)
            rc = dsq_buf_append_str(out, a[i].k);
        if (rc == DSQ_OK)
            rc = dsq_buf_append(out, "=", 1);
        if (rc == DSQ_OK)
            rc = dsq_buf_append_str(out, a[i].v);
    }
out:
    kv_free(a, n);
    return rc;
}

/* Lowercased name. */
static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    if (d)
        for (char *p = d; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return d;
}

/* Value trimmed, inner whitespace runs (incl. folded newlines) -> one
   space. */
static char *trim_dup(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    size_t j = 0;
    int pending_space = 0;
    for (const char *p = s; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            pending_space = j > 0;
            continue;
        }
        if (pending_space) {
            d[j++] = ' ';
            pending_space = 0;
        }
        d[j++] = *p;
    }
    d[j] = 0;
    return d;
}

dsq_rc dsq_sigv4_canonical_request(const struct dsq_sigv4_req *r,
                                   struct dsq_buf *out,
                                   struct dsq_buf *signed_headers)
{
    dsq_rc rc;
    size_t n = r->n_headers;
    struct kv *h = NULL;

    if (n == 0)
        return DSQ_EINVAL;
    h = calloc(n, sizeof(*h));
    if (!h)
        return DSQ_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        h[i].k = lower_dup(r->headers[i].name);
        h[i].v = trim_dup(r->headers[i].value);
        h[i].idx = i;
        if (!h[i].k || !h[i].v) {
            rc = DSQ_ENOMEM;
            goto out;
        }
    }
    qsort(h, n, sizeof(*h), kv_cmp_name_stable);

    rc = dsq_buf_append_str(out, r->method);
    if (rc == DSQ_OK)
        rc = dsq_buf_append(out, "\n", 1);
    if (rc == DSQ_OK)
        rc = dsq_sigv4_encode_path(r->path, out);
    if (rc == DSQ_OK)
        rc = dsq_buf_append(out, "\n", 1);
    if (rc == DSQ_OK)
        rc = dsq_sigv4_query(r->query, r->n_query, out);
    if (rc == DSQ_OK)
        rc = dsq_buf_append(out, "\n", 1);
    /* canonical headers: repeated names joined with ',' */
    for (size_t i = 0; i < n && rc == DSQ_OK; i++) {
        if (i > 0 && strcmp(h[i].k, h[i - 1].k) == 0) {
            rc = dsq_buf_append(out, ",", 1);
        } else {
            if (i > 0)
                rc = dsq_buf_append(out, "\n", 1);
            if (rc == DSQ_OK)
                rc = dsq_buf_append_str(out, h[i].k);
            if (rc == DSQ_OK)
                rc = dsq_buf_append(out, ":", 1);
        }
        if (rc == DSQ_OK)
            rc = dsq_buf_append_str(out, h[i].v);
    }
    if (rc == DSQ_OK)
        rc = dsq_buf_append(out, "\n\n", 2);
    /* signed headers */
    size_t sh_start = out->len;
    for (size_t i = 0; i < n && rc == DSQ_OK; i++) {
        if (i > 0 && strcmp(h[i].k, h[i - 1].k) == 0)
            continue;
        if (i > 0)
            rc = dsq_buf_append(out, ";", 1);
        if (rc == DSQ_OK)
            rc = dsq_buf_append_str(out, h[i].k);
    }
    if (rc == DSQ_OK && signed_headers)
        rc = dsq_buf_append(signed_headers, out->data + sh_start,
                            out->len - sh_start);
    if (rc == DSQ_OK)
        rc = dsq_buf_append(out, "\n", 1);
    if (rc == DSQ_OK)
        rc = dsq_buf_append_str(out, r->payload_hash ? r->payload_hash
                                                     : DSQ_SHA256_EMPTY);
out:
    kv_free(h, n);
    return rc;
}

static dsq_rc append_scope(struct dsq_buf *out, const struct dsq_sigv4_scope *s)
{
    return dsq_buf_printf(out, "%.8s/%s/%s/aws4_request", s->amz_date,
                          s->region, s->service);
}

dsq_rc dsq_sigv4_string_to_sign(const struct dsq_sigv4_scope *s,
                                const char *creq, size_t creq_len,
                                struct dsq_buf *out)
{
    char hash[65];
    dsq_sha256_hex(creq, creq_len, hash);
    dsq_rc rc = dsq_buf_printf(out, "AWS4-HMAC-SHA256\n%s\n", s->amz_date);
    if (rc == DSQ_OK)
        rc = append_scope(out, s);
    if (rc == DSQ_OK)
        rc = dsq_buf_printf(out, "\n%s", hash);
    return rc;
}

static void hmac(const void *key, size_t klen, const void *msg, size_t mlen,
                 uint8_t out[32])
{
    unsigned int olen = 32;
    HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen);
}

void dsq_sigv4_signing_key(const char *secret, const char *yyyymmdd,
                           const char *region, const char *service,
                           uint8_t key[32])
{
    size_t sl = strlen(secret);
    uint8_t k[32];
    char *k0 = malloc(sl + 5);
    if (!k0) {
        memset(key, 0, 32);
        return;
    }
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, sl + 1);
    hmac(k0, sl + 4, yyyymmdd, 8, k);
    OPENSSL_cleanse(k0, sl + 4);
    free(k0);
    hmac(k, 32, region, strlen(region), k);
    hmac(k, 32, service, strlen(service), k);
    hmac(k, 32, "aws4_request", 12, key);
    OPENSSL_cleanse(k, sizeof(k));
}

dsq_rc dsq_sigv4_sign(const struct dsq_sigv4_req *r,
                      const struct dsq_sigv4_scope *s, const char *access_key,
                      const char *secret_key, char signature[65],
                      struct dsq_buf *authz)
{
    struct dsq_buf creq, sts, sh;
    uint8_t key[32], sig[32];
    dsq_rc rc;

    if (!s->amz_date || strlen(s->amz_date) != 16)
        return DSQ_EINVAL;
    dsq_buf_init(&creq, 1 << 20);
    dsq_buf_init(&sts, 4096);
    dsq_buf_init(&sh, 8192);
    rc = dsq_sigv4_canonical_request(r, &creq, &sh);
    if (rc == DSQ_OK)
        rc = dsq_sigv4_string_to_sign(s, (const char *)creq.data, creq.len,
                                      &sts);
    if (rc != DSQ_OK)
        goto out;
    dsq_sigv4_signing_key(secret_key, s->amz_date, s->region, s->service,
                          key);
    hmac(key, 32, sts.data, sts.len, sig);
    OPENSSL_cleanse(key, sizeof(key));
    to_hex(sig, 32, signature);
    rc = dsq_buf_printf(authz, "AWS4-HMAC-SHA256 Credential=%s/",
                        access_key);
    if (rc == DSQ_OK)
        rc = append_scope(authz, s);
    if (rc == DSQ_OK)
        rc = dsq_buf_printf(authz, ", SignedHeaders=%.*s, Signature=%s",
                            (int)sh.len, (const char *)sh.data, signature);
out:
    dsq_buf_cleanup(&creq);
    dsq_buf_cleanup(&sts);
    dsq_buf_cleanup(&sh);
    return rc;
}
