/*
 * store_s3.c - the S3 backend of struct dsq_store (see store_s3.h and
 * docs/s3.md).
 *
 * Layer: services.  Builds S3 requests (addressing, headers), signs them
 * (sigv4.c) with credentials from creds.c, sends them through http.c
 * (the only libcurl user), retries what may be retried, parses XML with
 * s3xml.c and maps every outcome to the store contract of store.h.
 *
 * Invariants:
 *  - every attempt is signed afresh (date, refreshed credentials);
 *  - a conditional PUT (create-only / if-match) is never re-sent after an
 *    attempt that may have reached the server without a definite answer:
 *    that is DSQ_ETRANSIENT ("outcome unknown") for the engine to resolve
 *    by reading.  This includes libcurl's own silent re-send on a reused
 *    connection (counted through resp.sends): a 412 after such a re-send
 *    may be our own first attempt's doing, so it is ambiguous too;
 *  - object keys are root + key; what the user sees never includes root;
 *  - messages name the op, bucket and key, HTTP status, S3 code and
 *    request id; never a secret (nor the access key id).
 *
 * Thread-safety: struct s3 is immutable after open except the stats
 * (atomic counters); http and creds are thread-safe themselves.
 */
#include "store_s3.h"

#include "config.h"
#include "creds.h"
#include "env.h"
#include "http.h"
#include "log.h"
#include "s3xml.h"
#include "sigv4.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_BODY_MAX (8u << 20)
#define PROBE_PREFIX ".dsqlfs-probe/"

struct s3 {
    struct dsq_store base; /* first: the store header */
    /* immutable after open */
    char *bucket;
    char *root;     /* "" or "prefix/" */
    char *scheme;   /* "http" / "https" */
    char *hostport; /* endpoint authority */
    char *region;
    int path_style;
    unsigned max_retries;
    double retry_base_s, retry_max_s;
    uint64_t timeout_ns;           /* store_timeout: no retry starts after it */
    struct dsq_http *http;         /* owned, thread-safe */
    struct dsq_creds_chain *creds; /* owned, thread-safe */
    /* stats */
    atomic_uint_least64_t n_requests, n_retries, n_ambiguous, n_refreshes;
};

/* One S3 operation, as its retry loop sees it. */
struct s3_op {
    const char *name; /* "GET", "PUT" ... for messages */
    const char *method;
    const char *key; /* full S3 key, NULL for a bucket op */
    const struct dsq_sigv4_pair *query;
    size_t n_query;
    const struct dsq_sigv4_pair *hdrs; /* extra signed headers */
    size_t n_hdrs;
    const void *body;
    size_t body_len;
    struct dsq_buf *body_out;
    int conditional; /* If-None-Match / If-Match PUT */
};

/* ------------------------------------------------------------ messages */

static const char *op_target(const struct s3 *s, const struct s3_op *op,
                             char *buf, size_t cap)
{
    snprintf(buf, cap, "s3://%s/%s", s->bucket, op->key ? op->key : s->root);
    return buf;
}

/* Record HTTP detail in e (the message is set by the caller). */
static void err_detail(struct dsq_err *e, int status, const char *code,
                       const char *request_id)
{
    if (!e)
        return;
    e->http_status = status;
    snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
    snprintf(e->request_id, sizeof(e->request_id), "%s",
             request_id ? request_id : "");
}

/* ----------------------------------------------------------- requests */

static int is_ip_or_localhost(const char *hostport)
{
    char host[256];
    snprintf(host, sizeof(host), "%s", hostport);
    if (host[0] == '[')
        return 1; /* IPv6 literal */
    char *colon = strchr(host, ':');
    if (colon)
        *colon = 0;
    if (!strcasecmp(host, "localhost"))
        return 1;
    for (const char *p = host; *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '.')
            return 0;
    return 1;
}

/* Can the bucket be a DNS label set under the endpoint (virtual host)? */
static int dns_bucket(const char *b, int https)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return 0;
    for (const char *p = b; *p; p++) {
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
              *p == '-' || *p == '.'))
            return 0;
        if (*p == '.' && https)
            return 0; /* the wildcard certificate would not match */
    }
    return b[0] != '-' && b[n - 1] != '-';
}

/*
 * Sleep before retry number attempt (1-based): full jitter, never past the
 * deadline (dsq_mono_ns) of the request.
 */
static void backoff(const struct s3 *s, unsigned attempt, uint64_t deadline)
{
    double cap = s->retry_base_s * 1000.0;
    for (unsigned i = 1; i < attempt && cap < s->retry_max_s * 1000.0; i++)
        cap *= 2;
    if (cap > s->retry_max_s * 1000.0)
        cap = s->retry_max_s * 1000.0;
    uint64_t now = dsq_mono_ns();
    double left = now < deadline ? (double)(deadline - now) / 1e6 : 0;
    if (cap > left)
        cap = left;
    /* called even for 0 ms, so a test's recorder sees every retry */
    dsq_env.sleep_ms(dsq_random_below((uint64_t)cap + 1));
}

static int retryable_status(int st)
{
    return st == 500 || st == 502 || st == 503 || st == 504 || st == 429;
}

/* The error body's code (or ""), without failing. */
static void peek_error(const struct dsq_http_resp *r, struct dsq_s3_error *er)
{
    memset(er, 0, sizeof(*er));
    if (r->err_body.len)
        dsq_s3xml_parse_error(r->err_body.data, r->err_body.len, er, NULL);
    if (!er->request_id[0])
        snprintf(er->request_id, sizeof(er->request_id), "%s", r->request_id);
}

static int token_expired_code(const char *code)
{
    return !strcmp(code, "ExpiredToken") ||
           !strcmp(code, "TokenRefreshRequired") ||
           !strcmp(code, "RequestExpired") || !strcmp(code, "InvalidToken");
}

/*
 * Build, sign and send one attempt.  Returns dsq_http_do's result.
 */
static dsq_rc attempt_once(struct s3 *s, const struct s3_op *op,
                           const char *payload_hash, struct dsq_http_resp *resp,
                           struct dsq_err *e)
{
    struct dsq_creds cr = {0};
    struct dsq_buf path, query, url, authz, lines;
    struct dsq_sigv4_pair h[16];
    const char *hl[16];
    char host[320], date[17], sig[65];
    size_t nh = 0;
    dsq_rc rc;

    dsq_buf_init(&path, 8192);
    dsq_buf_init(&query, 16384);
    dsq_buf_init(&url, 32768);
    dsq_buf_init(&authz, 4096);
    dsq_buf_init(&lines, 65536);

    rc = dsq_creds_get(s->creds, &cr, e);
    if (rc != DSQ_OK) {
        memset(resp, 0, sizeof(*resp));
        dsq_buf_init(&resp->err_body, 0);
        goto out;
    }
    /* raw path (sigv4 encodes it) */
    if (s->path_style) {
        snprintf(host, sizeof(host), "%s", s->hostport);
        rc = dsq_buf_printf(&path, "/%s", s->bucket);
        if (rc == DSQ_OK && op->key)
            rc = dsq_buf_printf(&path, "/%s", op->key);
    } else {
        snprintf(host, sizeof(host), "%s.%s", s->bucket, s->hostport);
        rc = dsq_buf_printf(&path, "/%s", op->key ? op->key : "");
    }
    if (rc == DSQ_OK)
        rc = dsq_buf_terminate(&path);
    if (rc != DSQ_OK)
        goto build_fail;

    dsq_sigv4_amz_date(dsq_now_ms(), date);
    h[nh++] = (struct dsq_sigv4_pair){"host", host};
    h[nh++] = (struct dsq_sigv4_pair){"x-amz-date", date};
    h[nh++] = (struct dsq_sigv4_pair){"x-amz-content-sha256", payload_hash};
    if (cr.session_token)
        h[nh++] =
            (struct dsq_sigv4_pair){"x-amz-security-token", cr.session_token};
    for (size_t i = 0; i < op->n_hdrs && nh < 16; i++)
        h[nh++] = op->hdrs[i];

    struct dsq_sigv4_req sr = {
        op->method,  (const char *)path.data, op->query, op->n_query, h, nh,
        payload_hash};
    struct dsq_sigv4_scope sc = {date, s->region, "s3"};
    rc = dsq_sigv4_sign(&sr, &sc, cr.access_key, cr.secret_key, sig, &authz);
    if (rc != DSQ_OK)
        goto build_fail;

    /* URL: same encoding as signed */
    rc = dsq_buf_printf(&url, "%s://%s", s->scheme, host);
    if (rc == DSQ_OK)
        rc = dsq_sigv4_encode_path((const char *)path.data, &url);
    if (rc == DSQ_OK && op->n_query) {
        rc = dsq_buf_append(&url, "?", 1);
        if (rc == DSQ_OK)
            rc = dsq_sigv4_query(op->query, op->n_query, &url);
    }
    if (rc == DSQ_OK)
        rc = dsq_buf_terminate(&url);
    if (rc != DSQ_OK)
        goto build_fail;

    /* header lines, NUL-separated in one buffer */
    size_t offs[17];
    size_t nl = 0;
    for (size_t i = 0; i < nh && rc == DSQ_OK; i++) {
        offs[nl++] = lines.len;
        rc = dsq_buf_printf(&lines, "%s: %s", h[i].name,
                            h[i].value ? h[i].value : "");
        if (rc == DSQ_OK)
            rc = dsq_buf_append(&lines, "", 1);
    }
    if (rc == DSQ_OK) {
        offs[nl++] = lines.len;
        rc = dsq_buf_printf(&lines, "Authorization: %.*s", (int)authz.len,
                            (const char *)authz.data);
        if (rc == DSQ_OK)
            rc = dsq_buf_append(&lines, "", 1);
    }
    if (rc != DSQ_OK)
        goto build_fail;
    for (size_t i = 0; i < nl; i++)
        hl[i] = (const char *)lines.data + offs[i];

    struct dsq_http_req hr = {0};
    hr.method = op->method;
    hr.url = (const char *)url.data;
    hr.headers = hl;
    hr.n_headers = nl;
    hr.body = op->body;
    hr.body_len = op->body_len;
    hr.body_out = op->body_out;
    hr.count_sends = op->conditional;
    atomic_fetch_add(&s->n_requests, 1);
    rc = dsq_http_do(s->http, &hr, resp, e);
    goto out;

build_fail:
    memset(resp, 0, sizeof(*resp));
    dsq_buf_init(&resp->err_body, 0);
    if (rc == DSQ_ERANGE)
        rc = dsq_err_set(e, DSQ_EINVAL, "%s: request too large", op->name);
out:
    if (lines.data)
        explicit_bzero(lines.data, lines.len);
    dsq_creds_cleanup(&cr);
    dsq_buf_cleanup(&path);
    dsq_buf_cleanup(&query);
    dsq_buf_cleanup(&url);
    dsq_buf_cleanup(&authz);
    dsq_buf_cleanup(&lines);
    return rc;
}

/*
 * Run op with retries.  DSQ_OK: a final response is in resp (any status
 * the caller must map, 2xx or not).  Otherwise an error with e set and
 * resp cleaned up.
 */
static dsq_rc s3_request(struct s3 *s, const struct s3_op *op,
                         struct dsq_http_resp *resp, struct dsq_err *e)
{
    char payload_hash[65];
    char target[DSQ_KEY_MAX + 300];
    int refreshed = 0;
    size_t out_base = op->body_out ? op->body_out->len : 0;
    dsq_rc rc = DSQ_OK;

    dsq_sha256_hex(op->body ? op->body : "", op->body_len, payload_hash);
    op_target(s, op, target, sizeof(target));
    /* no retry starts past store_timeout (docs/options.md) */
    const uint64_t deadline = dsq_mono_ns() + s->timeout_ns;

    for (unsigned attempt = 0;; attempt++) {
        if (attempt > 0)
            atomic_fetch_add(&s->n_retries, 1);
        if (op->body_out)
            op->body_out->len = out_base;
        dsq_err_clear(e);
        rc = attempt_once(s, op, payload_hash, resp, e);
        int more = attempt < s->max_retries && dsq_mono_ns() < deadline;
        if (rc == DSQ_ETRANSIENT) {
            dsq_http_resp_cleanup(resp);
            if (op->conditional && resp->maybe_sent) {
                atomic_fetch_add(&s->n_ambiguous, 1);
                dsq_err_prefix(e,
                               "%s %s: outcome unknown (the request may "
                               "have been applied)",
                               op->name, target);
                return DSQ_ETRANSIENT;
            }
            if (!more) {
                dsq_err_prefix(
                    e, "%s %s: gave up after %u attempts in %.1f s", op->name,
                    target, attempt + 1,
                    (double)(dsq_mono_ns() + s->timeout_ns - deadline) / 1e9);
                return DSQ_ETRANSIENT;
            }
            dsq_log(DSQ_LOG_INFO, "s3", "%s %s: retrying: %s", op->name, target,
                    e ? e->msg : "");
            backoff(s, attempt + 1, deadline);
            continue;
        }
        if (rc != DSQ_OK) {
            dsq_http_resp_cleanup(resp);
            dsq_err_prefix(e, "%s %s", op->name, target);
            return rc;
        }
        /* a response */
        if (retryable_status(resp->status)) {
            struct dsq_s3_error er;
            peek_error(resp, &er);
            if (op->conditional) {
                atomic_fetch_add(&s->n_ambiguous, 1);
                rc = dsq_err_set(e, DSQ_ETRANSIENT,
                                 "%s %s: outcome unknown: HTTP %d %s "
                                 "(request id %s)",
                                 op->name, target, resp->status,
                                 er.code[0] ? er.code : "", er.request_id);
                err_detail(e, resp->status, er.code, er.request_id);
                dsq_http_resp_cleanup(resp);
                return rc;
            }
            if (!more) {
                rc = dsq_err_set(e, DSQ_ETRANSIENT,
                                 "%s %s: gave up after %u attempts: HTTP %d "
                                 "%s (request id %s)",
                                 op->name, target, attempt + 1, resp->status,
                                 er.code, er.request_id);
                err_detail(e, resp->status, er.code, er.request_id);
                dsq_http_resp_cleanup(resp);
                return rc;
            }
            dsq_log(DSQ_LOG_INFO, "s3", "%s %s: HTTP %d %s, retrying", op->name,
                    target, resp->status, er.code);
            dsq_http_resp_cleanup(resp);
            backoff(s, attempt + 1, deadline);
            continue;
        }
        if (resp->status == 400 || resp->status == 403) {
            struct dsq_s3_error er;
            peek_error(resp, &er);
            /* HEAD answers carry no body: a bare 400/403 may be an
               expired token as well */
            int maybe_expired = token_expired_code(er.code) ||
                                (!er.code[0] && !strcmp(op->method, "HEAD"));
            if (maybe_expired && !refreshed && dsq_creds_invalidate(s->creds)) {
                /* refused before being applied: safe to send again */
                refreshed = 1;
                atomic_fetch_add(&s->n_refreshes, 1);
                dsq_log(DSQ_LOG_INFO, "s3",
                        "%s %s: HTTP %d %s, refreshing credentials", op->name,
                        target, resp->status, er.code);
                dsq_http_resp_cleanup(resp);
                continue;
            }
            if (!strcmp(er.code, "RequestTimeout") && !op->conditional &&
                more) {
                dsq_http_resp_cleanup(resp);
                backoff(s, attempt + 1, deadline);
                continue;
            }
        }
        return DSQ_OK;
    }
}

/*
 * Map a final non-success response to an rc and a one-line message.
 * resp is left for the caller to clean up.
 */
static dsq_rc s3_fail(struct s3 *s, const struct s3_op *op,
                      const struct dsq_http_resp *resp, struct dsq_err *e)
{
    struct dsq_s3_error er;
    char target[DSQ_KEY_MAX + 300];
    const char *src = dsq_creds_source(s->creds);
    dsq_rc rc;
    char why[512];
    int st = resp->status;

    peek_error(resp, &er);
    op_target(s, op, target, sizeof(target));
    const char *c = er.code;

    if (!strcmp(c, "InvalidAccessKeyId")) {
        rc = DSQ_EAUTH;
        snprintf(why, sizeof(why),
                 "the access key id is not known to the server (credentials "
                 "from %s)",
                 src);
    } else if (!strcmp(c, "SignatureDoesNotMatch")) {
        rc = DSQ_EAUTH;
        snprintf(why, sizeof(why),
                 "the secret key is wrong for this access key (credentials "
                 "from %s)",
                 src);
    } else if (token_expired_code(c)) {
        rc = DSQ_EAUTH;
        snprintf(why, sizeof(why),
                 "the session token is expired or invalid (credentials from "
                 "%s)",
                 src);
    } else if (!strcmp(c, "RequestTimeTooSkewed")) {
        rc = DSQ_EAUTH;
        snprintf(why, sizeof(why),
                 "this machine's clock is too far from the server's: fix the "
                 "time");
    } else if (!strcmp(c, "AccessDenied") || !strcmp(c, "AllAccessDisabled")) {
        rc = DSQ_EPERM;
        snprintf(why, sizeof(why), "access denied (credentials from %s)", src);
    } else if (!strcmp(c, "NoSuchBucket")) {
        rc = DSQ_EIO;
        snprintf(why, sizeof(why), "bucket '%s' does not exist", s->bucket);
    } else if (!strcmp(c, "AuthorizationHeaderMalformed") && er.region[0]) {
        rc = DSQ_EINVAL;
        snprintf(why, sizeof(why),
                 "the bucket is in region '%s', not '%s' (use -o region=%s)",
                 er.region, s->region, er.region);
    } else if ((st == 301 || st == 307 || !strcmp(c, "PermanentRedirect")) &&
               (resp->bucket_region[0] || er.endpoint[0])) {
        rc = DSQ_EINVAL;
        if (resp->bucket_region[0])
            snprintf(why, sizeof(why),
                     "the bucket is in region '%s' (use -o region=%s)",
                     resp->bucket_region, resp->bucket_region);
        else
            snprintf(why, sizeof(why),
                     "the bucket must be addressed at endpoint '%s'",
                     er.endpoint);
    } else if (!strcmp(c, "NotImplemented") || st == 501) {
        rc = DSQ_EUNSUPPORTED;
        snprintf(why, sizeof(why), "the server does not implement this%s%s",
                 er.message[0] ? ": " : "", er.message);
    } else if (st == 404 && (!strcmp(c, "NoSuchKey") || !c[0])) {
        rc = DSQ_ENOTFOUND;
        snprintf(why, sizeof(why), "no such key");
    } else if (st == 412 || (st == 409 && op->conditional)) {
        rc = DSQ_EPRECOND;
        snprintf(why, sizeof(why), "precondition failed");
    } else if (retryable_status(st)) {
        rc = DSQ_ETRANSIENT;
        snprintf(why, sizeof(why), "server error");
    } else if (st == 401 || (st == 403 && !c[0])) {
        rc = DSQ_EAUTH;
        snprintf(why, sizeof(why),
                 "refused: wrong credentials or no permission (credentials "
                 "from %s)",
                 src);
    } else if (st == 403) {
        rc = DSQ_EPERM;
        snprintf(why, sizeof(why), "forbidden");
    } else if (st == 400 || st == 411 || st == 414) {
        rc = DSQ_EINVAL;
        snprintf(why, sizeof(why), "bad request");
    } else if (st == 413 || !strcmp(c, "EntityTooLarge")) {
        rc = DSQ_ERANGE;
        snprintf(why, sizeof(why), "object too large for the server");
    } else if (st == 405) {
        rc = DSQ_EUNSUPPORTED;
        snprintf(why, sizeof(why), "method not allowed by the server");
    } else {
        rc = DSQ_EIO;
        snprintf(why, sizeof(why), "unexpected answer");
    }
    dsq_err_set(e, rc, "%s %s: %s (HTTP %d%s%s%s%s%s%s)", op->name, target, why,
                st, c[0] ? " " : "", c, er.message[0] ? ": " : "", er.message,
                er.request_id[0] ? ", request id " : "", er.request_id);
    err_detail(e, st, c, er.request_id);
    return rc;
}

/* --------------------------------------------------------------- ops */

static char *full_key(const struct s3 *s, const char *key, struct dsq_err *e)
{
    size_t n = strlen(s->root) + strlen(key) + 1;
    if (n > DSQ_KEY_MAX) {
        dsq_err_set(e, DSQ_EINVAL,
                    "key '%.64s...' is too long with prefix "
                    "'%s' (S3 keys are at most 1024 bytes)",
                    key, s->root);
        return NULL;
    }
    char *k = malloc(n);
    if (!k) {
        dsq_err_set(e, DSQ_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(k, n, "%s%s", s->root, key);
    return k;
}

static void fill_info(const struct dsq_http_resp *r, uint64_t size,
                      struct dsq_objinfo *info)
{
    if (!info)
        return;
    memset(info, 0, sizeof(*info));
    info->size = size;
    info->mtime_ms = r->last_modified_ms;
    snprintf(info->etag, sizeof(info->etag), "%s", r->etag);
}

/* "bytes a-b/total" or "bytes * /total": the total, or -1. */
static int range_total(const char *cr, uint64_t *total)
{
    const char *slash = strrchr(cr, '/');
    if (!slash || slash[1] == '*' || !slash[1])
        return -1;
    char *end;
    unsigned long long t = strtoull(slash + 1, &end, 10);
    if (*end)
        return -1;
    *total = t;
    return 0;
}

static dsq_rc s3_head_full(struct s3 *s, const char *fk,
                           struct dsq_objinfo *info, struct dsq_err *e);

static dsq_rc s3_get(struct dsq_store *st, const char *key, uint64_t off,
                     uint64_t len, struct dsq_buf *out,
                     struct dsq_objinfo *info, struct dsq_err *e)
{
    struct s3 *s = (struct s3 *)st;
    struct dsq_http_resp resp;
    char range[64];
    struct dsq_sigv4_pair h[1];
    size_t nh = 0;
    size_t base = out->len;
    char *fk = full_key(s, key, e);
    if (!fk)
        return e ? e->rc : DSQ_EINVAL;
    if (off || len) {
        if (len && len - 1 <= UINT64_MAX - off)
            snprintf(range, sizeof(range), "bytes=%llu-%llu",
                     (unsigned long long)off,
                     (unsigned long long)(off + len - 1));
        else
            snprintf(range, sizeof(range), "bytes=%llu-",
                     (unsigned long long)off);
        h[nh++] = (struct dsq_sigv4_pair){"range", range};
    }
    struct s3_op op = {"GET", "GET", fk, NULL, 0, h, nh, NULL, 0, out, 0};
    dsq_rc rc = s3_request(s, &op, &resp, e);
    if (rc != DSQ_OK)
        goto out;
    uint64_t total = 0;
    if (resp.status == 200) {
        total = out->len - base;
        if (nh) {
            /* the server ignored Range: keep only the range */
            uint64_t have = total;
            uint64_t from = off < have ? off : have;
            uint64_t n = len && len < have - from ? len : have - from;
            if (n && from)
                memmove(out->data + base, out->data + base + from, (size_t)n);
            out->len = base + (size_t)n;
        }
        fill_info(&resp, total, info);
    } else if (resp.status == 206) {
        if (range_total(resp.content_range, &total) != 0)
            total = off + (out->len - base);
        fill_info(&resp, total, info);
    } else if (resp.status == 416 && nh) {
        /* the range starts at or past the end: no bytes */
        out->len = base;
        if (info) {
            if (range_total(resp.content_range, &total) == 0) {
                fill_info(&resp, total, info);
            } else {
                dsq_http_resp_cleanup(&resp);
                rc = s3_head_full(s, fk, info, e);
                goto out_nocleanup;
            }
        }
    } else {
        out->len = base;
        rc = s3_fail(s, &op, &resp, e);
    }
    dsq_http_resp_cleanup(&resp);
out_nocleanup:
    if (rc != DSQ_OK)
        out->len = base;
out:
    free(fk);
    return rc;
}

static dsq_rc s3_put(struct dsq_store *st, const char *key, const void *data,
                     size_t len, enum dsq_put_cond cond, const char *if_match,
                     struct dsq_objinfo *info, struct dsq_err *e)
{
    struct s3 *s = (struct s3 *)st;
    struct dsq_http_resp resp;
    struct dsq_sigv4_pair h[2];
    size_t nh = 0;
    char etag[DSQ_ETAG_MAX];
    char *fk = full_key(s, key, e);
    if (!fk)
        return e ? e->rc : DSQ_EINVAL;
    h[nh++] =
        (struct dsq_sigv4_pair){"content-type", "application/octet-stream"};
    if (cond == DSQ_PUT_CREATE) {
        h[nh++] = (struct dsq_sigv4_pair){"if-none-match", "*"};
    } else if (cond == DSQ_PUT_IF_MATCH) {
        /* unquoted: Ceph RGW compares correctly only that way */
        size_t n = strlen(if_match);
        if (n >= 2 && if_match[0] == '"' && if_match[n - 1] == '"')
            snprintf(etag, sizeof(etag), "%.*s", (int)(n - 2), if_match + 1);
        else
            snprintf(etag, sizeof(etag), "%s", if_match);
        h[nh++] = (struct dsq_sigv4_pair){"if-match", etag};
    }
    struct s3_op op = {
        "PUT", "PUT", fk, NULL, 0, h, nh, data, len, NULL, cond != DSQ_PUT_ANY};
    dsq_rc rc = s3_request(s, &op, &resp, e);
    if (rc != DSQ_OK)
        goto out;
    if (resp.status == 200 || resp.status == 201 || resp.status == 204) {
        if (info) {
            fill_info(&resp, len, info);
            info->mtime_ms = resp.date_ms ? resp.date_ms : dsq_now_ms();
        }
    } else if (op.conditional && resp.sends > 1 &&
               (resp.status == 412 || resp.status == 409)) {
        /* libcurl re-sent the request: the first copy may have won */
        atomic_fetch_add(&s->n_ambiguous, 1);
        rc = dsq_err_set(e, DSQ_ETRANSIENT,
                         "PUT s3://%s/%s: outcome unknown (the connection "
                         "dropped and the request was re-sent, then answered "
                         "HTTP %d)",
                         s->bucket, fk, resp.status);
    } else if (cond == DSQ_PUT_IF_MATCH && resp.status == 404) {
        rc = dsq_err_set(e, DSQ_EPRECOND,
                         "PUT s3://%s/%s: precondition failed (the key does "
                         "not exist)",
                         s->bucket, fk);
        err_detail(e, 404, "NoSuchKey", resp.request_id);
    } else {
        rc = s3_fail(s, &op, &resp, e);
    }
    dsq_http_resp_cleanup(&resp);
out:
    free(fk);
    return rc;
}

static dsq_rc s3_head_full(struct s3 *s, const char *fk,
                           struct dsq_objinfo *info, struct dsq_err *e)
{
    struct dsq_http_resp resp;
    struct s3_op op = {"HEAD", "HEAD", fk, NULL, 0, NULL, 0, NULL, 0, NULL, 0};
    dsq_rc rc = s3_request(s, &op, &resp, e);
    if (rc != DSQ_OK)
        return rc;
    if (resp.status == 200) {
        fill_info(&resp, resp.has_length ? resp.content_length : 0, info);
    } else if (resp.status >= 400 && resp.status < 500 && resp.status != 404 &&
               resp.err_body.len == 0) {
        /* a HEAD error has no body to say why (wrong secret? unknown
           key? denied?): ask the same with a one-byte GET, whose error
           body does */
        struct dsq_http_resp r2;
        struct dsq_buf sink;
        struct dsq_sigv4_pair rh[] = {{"range", "bytes=0-0"}};
        struct s3_op gop = {"HEAD", "GET", fk, NULL,  0, rh,
                            1,      NULL,  0,  &sink, 0};
        dsq_buf_init(&sink, 16);
        if (s3_request(s, &gop, &r2, NULL) == DSQ_OK) {
            if (r2.status >= 400 && r2.err_body.len)
                rc = s3_fail(s, &gop, &r2, e);
            dsq_http_resp_cleanup(&r2);
        }
        dsq_buf_cleanup(&sink);
        if (rc == DSQ_OK)
            rc = s3_fail(s, &op, &resp, e);
    } else {
        rc = s3_fail(s, &op, &resp, e);
    }
    dsq_http_resp_cleanup(&resp);
    return rc;
}

static dsq_rc s3_head(struct dsq_store *st, const char *key,
                      struct dsq_objinfo *info, struct dsq_err *e)
{
    struct s3 *s = (struct s3 *)st;
    struct dsq_objinfo tmp;
    char *fk = full_key(s, key, e);
    if (!fk)
        return e ? e->rc : DSQ_EINVAL;
    dsq_rc rc = s3_head_full(s, fk, info ? info : &tmp, e);
    free(fk);
    return rc;
}

static dsq_rc s3_del(struct dsq_store *st, const char *key, struct dsq_err *e)
{
    struct s3 *s = (struct s3 *)st;
    struct dsq_http_resp resp;
    char *fk = full_key(s, key, e);
    if (!fk)
        return e ? e->rc : DSQ_EINVAL;
    struct s3_op op = {"DELETE", "DELETE", fk, NULL, 0, NULL,
                       0,        NULL,     0,  NULL, 0};
    dsq_rc rc = s3_request(s, &op, &resp, e);
    if (rc == DSQ_OK) {
        struct dsq_s3_error er;
        peek_error(&resp, &er);
        if (resp.status == 200 || resp.status == 204 ||
            (resp.status == 404 && strcmp(er.code, "NoSuchBucket") != 0))
            rc = DSQ_OK;
        else
            rc = s3_fail(s, &op, &resp, e);
        dsq_http_resp_cleanup(&resp);
    }
    free(fk);
    return rc;
}

/* Strip root from a key S3 returned (NULL if it is not under root). */
static char *strip_root(const struct s3 *s, char *k)
{
    size_t rl = strlen(s->root);
    if (strncmp(k, s->root, rl) != 0)
        return NULL;
    memmove(k, k + rl, strlen(k + rl) + 1);
    return k;
}

static dsq_rc s3_list(struct dsq_store *st, const struct dsq_list_req *req,
                      struct dsq_list_page *out, struct dsq_err *e)
{
    struct s3 *s = (struct s3 *)st;
    struct dsq_http_resp resp;
    struct dsq_buf body;
    struct dsq_sigv4_pair q[8];
    size_t nq = 0;
    char maxk[24];
    char *prefix = NULL, *after = NULL;
    struct dsq_list_page page = {0};
    dsq_rc rc;

    dsq_buf_init(&body, LIST_BODY_MAX);
    prefix = full_key(s, req->prefix ? req->prefix : "", e);
    if (!prefix) {
        rc = e ? e->rc : DSQ_EINVAL;
        goto out;
    }
    q[nq++] = (struct dsq_sigv4_pair){"list-type", "2"};
    q[nq++] = (struct dsq_sigv4_pair){"encoding-type", "url"};
    if (*prefix)
        q[nq++] = (struct dsq_sigv4_pair){"prefix", prefix};
    if (req->delimiter && *req->delimiter)
        q[nq++] = (struct dsq_sigv4_pair){"delimiter", req->delimiter};
    if (req->token && *req->token) {
        q[nq++] = (struct dsq_sigv4_pair){"continuation-token", req->token};
    } else if (req->start_after && *req->start_after) {
        after = full_key(s, req->start_after, e);
        if (!after) {
            rc = e ? e->rc : DSQ_EINVAL;
            goto out;
        }
        q[nq++] = (struct dsq_sigv4_pair){"start-after", after};
    }
    size_t mk = req->max_keys ? req->max_keys : 1000;
    if (mk > 1000)
        mk = 1000;
    snprintf(maxk, sizeof(maxk), "%zu", mk);
    q[nq++] = (struct dsq_sigv4_pair){"max-keys", maxk};

    struct s3_op op = {"LIST", "GET", NULL, q, nq, NULL, 0, NULL, 0, &body, 0};
    rc = s3_request(s, &op, &resp, e);
    if (rc != DSQ_OK)
        goto out;
    if (resp.status != 200) {
        rc = s3_fail(s, &op, &resp, e);
        dsq_http_resp_cleanup(&resp);
        goto out;
    }
    dsq_http_resp_cleanup(&resp);
    rc = dsq_s3xml_parse_list(body.data, body.len, &page, e);
    if (rc != DSQ_OK) {
        dsq_err_prefix(e, "LIST s3://%s/%s", s->bucket, prefix);
        goto out;
    }
    for (size_t i = 0; i < page.n_entries; i++) {
        if (!strip_root(s, page.entries[i].key)) {
            rc = dsq_err_set(e, DSQ_ECORRUPT,
                             "LIST s3://%s/%s: the server returned key '%s' "
                             "outside the prefix",
                             s->bucket, prefix, page.entries[i].key);
            goto out;
        }
    }
    for (size_t i = 0; i < page.n_prefixes; i++) {
        if (!strip_root(s, page.common_prefixes[i])) {
            rc = dsq_err_set(e, DSQ_ECORRUPT,
                             "LIST s3://%s/%s: the server returned prefix "
                             "'%s' outside the prefix",
                             s->bucket, prefix, page.common_prefixes[i]);
            goto out;
        }
    }
    *out = page;
    memset(&page, 0, sizeof(page));
out:
    dsq_list_page_cleanup(&page);
    dsq_buf_cleanup(&body);
    free(prefix);
    free(after);
    return rc;
}

static void s3_destroy(struct dsq_store *st)
{
    struct s3 *s = (struct s3 *)st;
    if (!s)
        return;
    dsq_creds_chain_free(s->creds);
    dsq_http_free(s->http);
    free(s->base.url);
    free(s->bucket);
    free(s->root);
    free(s->scheme);
    free(s->hostport);
    free(s->region);
    free(s);
}

static const struct dsq_store_ops s3_ops = {
    .name = "s3",
    .get = s3_get,
    .put = s3_put,
    .head = s3_head,
    .list = s3_list,
    .del = s3_del,
    .destroy = s3_destroy,
};

/* -------------------------------------------------------------- open */

static dsq_rc parse_url(struct s3 *s, const char *url, struct dsq_err *e)
{
    const char *p = url + 5; /* after "s3://" */
    size_t bl = strcspn(p, "/");
    if (strncmp(url, "s3://", 5) != 0 || bl == 0)
        return dsq_err_set(e, DSQ_EINVAL,
                           "store URL '%s': expected s3://bucket[/prefix]",
                           url);
    s->bucket = strndup(p, bl);
    if (!s->bucket)
        return DSQ_ENOMEM;
    for (const char *c = s->bucket; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '-' || *c == '.' ||
              *c == '_'))
            return dsq_err_set(e, DSQ_EINVAL,
                               "store URL '%s': '%s' is not a valid bucket "
                               "name",
                               url, s->bucket);
    if (bl < 3 || bl > 63)
        return dsq_err_set(e, DSQ_EINVAL,
                           "store URL '%s': bucket names have 3 to 63 "
                           "characters",
                           url);
    p += bl;
    while (*p == '/')
        p++;
    size_t pl = strlen(p);
    while (pl && p[pl - 1] == '/')
        pl--;
    if (pl) {
        char *pre = strndup(p, pl);
        if (!pre)
            return DSQ_ENOMEM;
        int ok = dsq_store_key_valid(pre);
        free(pre);
        if (!ok)
            return dsq_err_set(e, DSQ_EINVAL,
                               "store URL '%s': bad prefix (empty, '.' or "
                               "'..' component, or not UTF-8)",
                               url);
        if (pl + 1 >= DSQ_KEY_MAX)
            return dsq_err_set(e, DSQ_EINVAL,
                               "store URL '%s': prefix too "
                               "long",
                               url);
    }
    s->root = malloc(pl + 2);
    if (!s->root)
        return DSQ_ENOMEM;
    memcpy(s->root, p, pl);
    s->root[pl] = 0;
    if (pl) {
        s->root[pl] = '/';
        s->root[pl + 1] = 0;
    }
    return DSQ_OK;
}

static dsq_rc parse_endpoint(struct s3 *s, const char *ep, const char *where,
                             struct dsq_err *e)
{
    const char *sep = strstr(ep, "://");
    if (!sep)
        return dsq_err_set(e, DSQ_EINVAL,
                           "endpoint '%s' (from %s): expected "
                           "http://host[:port] or https://host[:port]",
                           ep, where);
    size_t sl = (size_t)(sep - ep);
    if (!((sl == 4 && !strncasecmp(ep, "http", 4)) ||
          (sl == 5 && !strncasecmp(ep, "https", 5))))
        return dsq_err_set(e, DSQ_EINVAL,
                           "endpoint '%s' (from %s): the scheme must be "
                           "http or https",
                           ep, where);
    const char *h = sep + 3;
    size_t hl = strcspn(h, "/?#");
    const char *rest = h + hl;
    if (hl == 0 || memchr(h, '@', hl) || (*rest && strcmp(rest, "/") != 0))
        return dsq_err_set(e, DSQ_EINVAL,
                           "endpoint '%s' (from %s): expected "
                           "scheme://host[:port] without user, path or query",
                           ep, where);
    s->scheme = strndup(ep, sl);
    s->hostport = strndup(h, hl);
    if (!s->scheme || !s->hostport)
        return DSQ_ENOMEM;
    for (char *c = s->scheme; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return DSQ_OK;
}

/*
 * The endpoint, by the SDKs' precedence: -o endpoint (or one the program
 * set), AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL (config.c read both, the
 * first winning), the profile's (creds.h), else AWS for the region.  The
 * environment and the profile do not count when configured endpoints are
 * ignored.  *where names the source for messages.
 */
static const char *choose_endpoint(const struct s3 *s,
                                   const struct dsq_config *cfg, char *dflt,
                                   size_t cap, const char **where)
{
    int from_env = cfg->endpoint_src && strcmp(cfg->endpoint_src, "-o") != 0;
    int ignore = dsq_creds_ignore_configured_endpoints(s->creds);
    if (cfg->endpoint && *cfg->endpoint && !(from_env && ignore)) {
        *where = from_env ? cfg->endpoint_src : "-o endpoint";
        return cfg->endpoint;
    }
    const char *ep = dsq_creds_profile_endpoint(s->creds, where);
    if (ep)
        return ep;
    snprintf(dflt, cap, "https://s3.%s.amazonaws.com", s->region);
    *where = "the region's AWS default";
    return dflt;
}

dsq_rc dsq_store_s3_open(const char *url, const struct dsq_config *cfg,
                         struct dsq_store **out, struct dsq_err *e)
{
    struct dsq_config defaults;
    dsq_rc rc;
    struct s3 *s;

    if (!cfg) {
        dsq_config_init(&defaults);
        cfg = &defaults;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return DSQ_ENOMEM;
    s->base.ops = &s3_ops;
    s->base.url = strdup(url);
    if (!s->base.url) {
        rc = DSQ_ENOMEM;
        goto fail;
    }
    rc = parse_url(s, url, e);
    if (rc != DSQ_OK)
        goto fail;

    struct dsq_http_opts ho = {cfg->ca_file, cfg->insecure,
                               cfg->connect_timeout_s * 1000u,
                               cfg->request_timeout_s};
    rc = dsq_http_new(&ho, &s->http, e);
    if (rc != DSQ_OK)
        goto fail;
    rc = dsq_creds_chain_new(cfg, s->http, &s->creds, e);
    if (rc != DSQ_OK)
        goto fail;

    const char *region = cfg->region && *cfg->region ? cfg->region : NULL;
    if (!region)
        region = dsq_creds_profile_region(s->creds);
    s->region = strdup(region ? region : "us-east-1");
    if (!s->region) {
        rc = DSQ_ENOMEM;
        goto fail;
    }
    char dflt[256];
    const char *ep_where = NULL;
    const char *ep = choose_endpoint(s, cfg, dflt, sizeof(dflt), &ep_where);
    rc = parse_endpoint(s, ep, ep_where, e);
    if (rc != DSQ_OK)
        goto fail;
    if (cfg->path_style >= 0)
        s->path_style = cfg->path_style;
    else
        s->path_style = is_ip_or_localhost(s->hostport) ||
                        !dns_bucket(s->bucket, !strcmp(s->scheme, "https"));
    if (!s->path_style && !dns_bucket(s->bucket, 0)) {
        rc = dsq_err_set(e, DSQ_EINVAL,
                         "bucket '%s' cannot be addressed virtual-hosted "
                         "style; use -o path_style",
                         s->bucket);
        goto fail;
    }
    s->max_retries = cfg->max_retries;
    s->timeout_ns = (uint64_t)(cfg->store_timeout_s * 1e9);
    s->retry_base_s = cfg->retry_base_s;
    s->retry_max_s = cfg->retry_max_s;
    dsq_log(DSQ_LOG_INFO, "s3",
            "s3://%s/%s via %s://%s (endpoint from %s, %s style, region %s, "
            "credentials from %s)",
            s->bucket, s->root, s->scheme, s->hostport, ep_where,
            s->path_style ? "path" : "virtual-hosted", s->region,
            dsq_creds_source(s->creds));
    *out = &s->base;
    if (cfg == &defaults)
        dsq_config_cleanup(&defaults);
    return DSQ_OK;
fail:
    if (rc == DSQ_ENOMEM && (!e || !e->msg[0]))
        dsq_err_set(e, DSQ_ENOMEM, "out of memory opening %s", url);
    s3_destroy(&s->base);
    if (cfg == &defaults)
        dsq_config_cleanup(&defaults);
    return rc;
}

void dsq_store_s3_stats(struct dsq_store *st, struct dsq_s3_stats *out)
{
    struct s3 *s = (struct s3 *)st;
    out->requests = atomic_load(&s->n_requests);
    out->retries = atomic_load(&s->n_retries);
    out->ambiguous = atomic_load(&s->n_ambiguous);
    out->creds_refreshes = atomic_load(&s->n_refreshes);
}

/* ----------------------------------------------------------- self-test */

static dsq_rc probe_put_once(struct s3 *s, const char *fk, const char *body,
                             const struct dsq_sigv4_pair *h, size_t nh,
                             struct dsq_http_resp *resp, struct dsq_err *e)
{
    struct s3_op op = {"PUT", "PUT", fk,           NULL, 0,     h,
                       nh,    body,  strlen(body), NULL, nh > 1};
    return s3_request(s, &op, resp, e);
}

static int probe_landed(struct s3 *s, const char *hex, const char *body,
                        char *etag, size_t etag_sz);

/*
 * A probe PUT, sent again while its outcome is unknown (a conditional PUT
 * answered 503 is not retried by s3_request): the probe key is fresh, so
 * whether it landed can be read, and sending it again is harmless.  Its
 * body landed is reported as HTTP 200.
 */
static dsq_rc probe_put(struct s3 *s, const char *fk, const char *hex,
                        const char *body, const struct dsq_sigv4_pair *h,
                        size_t nh, struct dsq_http_resp *resp,
                        struct dsq_err *e)
{
    const uint64_t deadline = dsq_mono_ns() + s->timeout_ns;
    for (unsigned attempt = 0;; attempt++) {
        dsq_rc rc = probe_put_once(s, fk, body, h, nh, resp, e);
        if (rc != DSQ_ETRANSIENT || attempt >= s->max_retries ||
            dsq_mono_ns() >= deadline)
            return rc;
        char etag[sizeof(resp->etag)];
        if (probe_landed(s, hex, body, etag, sizeof(etag))) {
            memset(resp, 0, sizeof(*resp));
            resp->status = 200;
            snprintf(resp->etag, sizeof(resp->etag), "%s", etag);
            dsq_err_clear(e);
            return DSQ_OK;
        }
        backoff(s, attempt + 1, deadline);
    }
}

/*
 * A probe PUT answered 412 may be its own earlier attempt, applied with
 * its reply lost and sent again by the retry: 1 if the probe object
 * (a fresh random key) holds exactly body; its etag goes to etag.
 */
static int probe_landed(struct s3 *s, const char *hex, const char *body,
                        char *etag, size_t etag_sz)
{
    char rel[128];
    struct dsq_buf b;
    struct dsq_objinfo info;
    struct dsq_err e2;
    snprintf(rel, sizeof(rel), PROBE_PREFIX "%s", hex);
    dsq_buf_init(&b, 4096);
    dsq_err_clear(&e2);
    int ok = s3_get(&s->base, rel, 0, 0, &b, &info, &e2) == DSQ_OK &&
             b.len == strlen(body) && memcmp(b.data, body, b.len) == 0;
    if (ok && etag)
        snprintf(etag, etag_sz, "%s", info.etag);
    dsq_buf_cleanup(&b);
    return ok;
}

dsq_rc dsq_store_s3_selftest(struct dsq_store *st, struct dsq_err *e)
{
    struct s3 *s = (struct s3 *)st;
    struct dsq_list_page page = {0};
    struct dsq_list_req lr = {0};
    struct dsq_http_resp resp;
    char hex[33], fk[DSQ_KEY_MAX + 64], etag[DSQ_ETAG_MAX];
    dsq_rc rc;
    int created = 0;

    /* reachability, bucket, credentials */
    lr.max_keys = 1;
    rc = s3_list(st, &lr, &page, e);
    dsq_list_page_cleanup(&page);
    if (rc != DSQ_OK)
        return rc;

    dsq_random_hex32(hex);
    snprintf(fk, sizeof(fk), "%s" PROBE_PREFIX "%s", s->root, hex);
    struct dsq_sigv4_pair create[] = {
        {"content-type", "application/octet-stream"}, {"if-none-match", "*"}};

    rc = probe_put(s, fk, hex, "dsqlfs probe 1", create, 2, &resp, e);
    if (rc != DSQ_OK)
        return rc;
    if ((resp.status == 412 || resp.status == 409) &&
        probe_landed(s, hex, "dsqlfs probe 1", etag, sizeof(etag))) {
        /* our own first attempt landed, its reply was lost */
        dsq_http_resp_cleanup(&resp);
        created = 1;
        goto second;
    }
    if (resp.status != 200) {
        struct s3_op op = {"PUT", "PUT", fk, NULL, 0, NULL,
                           0,     NULL,  0,  NULL, 1};
        struct dsq_s3_error er;
        int st1 = resp.status;
        peek_error(&resp, &er);
        rc = s3_fail(s, &op, &resp, e);
        dsq_http_resp_cleanup(&resp);
        if (rc == DSQ_EUNSUPPORTED || rc == DSQ_EINVAL) {
            rc = dsq_err_set(e, DSQ_EUNSUPPORTED,
                             "s3://%s: the server refuses create-only PUTs "
                             "(If-None-Match: *): HTTP %d %s%s%s; read-write "
                             "use is refused (mount with -o ro)",
                             s->bucket, st1, er.code, er.message[0] ? ": " : "",
                             er.message);
            err_detail(e, st1, er.code, er.request_id);
        }
        return rc;
    }
    created = 1;
    snprintf(etag, sizeof(etag), "%s", resp.etag);
    dsq_http_resp_cleanup(&resp);

second:
    /* a second create-only PUT must lose */
    rc = probe_put(s, fk, hex, "dsqlfs probe 2", create, 2, &resp, e);
    if (rc != DSQ_OK)
        goto out;
    int st2 = resp.status;
    dsq_http_resp_cleanup(&resp);
    if (st2 == 200 || st2 == 201 || st2 == 204) {
        rc = dsq_err_set(e, DSQ_EUNSUPPORTED,
                         "s3://%s: the server does not enforce create-only "
                         "writes (a second PUT with If-None-Match: * of %s "
                         "succeeded); commits would overwrite each other, so "
                         "read-write use is refused (mount with -o ro)",
                         s->bucket, fk);
        goto out;
    }
    if (st2 != 412 && st2 != 409) {
        rc = dsq_err_set(e, DSQ_EUNSUPPORTED,
                         "s3://%s: a conflicting create-only PUT was answered "
                         "HTTP %d instead of 412/409; read-write use is "
                         "refused (mount with -o ro)",
                         s->bucket, st2);
        goto out;
    }

    /* If-Match: a wrong etag must lose, the right one (unquoted) win */
    struct dsq_sigv4_pair wrong[] = {
        {"content-type", "application/octet-stream"},
        {"if-match", "00000000000000000000000000000000"}};
    rc = probe_put(s, fk, hex, "dsqlfs probe 3", wrong, 2, &resp, e);
    if (rc != DSQ_OK)
        goto out;
    st2 = resp.status;
    dsq_http_resp_cleanup(&resp);
    if (st2 != 412 && st2 != 409) {
        rc = dsq_err_set(e, DSQ_EUNSUPPORTED,
                         "s3://%s: a PUT with a wrong If-Match etag was "
                         "answered HTTP %d instead of 412; read-write use "
                         "is refused (mount with -o ro)",
                         s->bucket, st2);
        goto out;
    }
    if (etag[0]) {
        struct dsq_sigv4_pair right[] = {
            {"content-type", "application/octet-stream"}, {"if-match", etag}};
        rc = probe_put(s, fk, hex, "dsqlfs probe 4", right, 2, &resp, e);
        if (rc != DSQ_OK)
            goto out;
        st2 = resp.status;
        dsq_http_resp_cleanup(&resp);
        if (st2 == 412 && probe_landed(s, hex, "dsqlfs probe 4", NULL, 0))
            st2 = 200; /* applied, its reply lost, the retry refused */
        if (st2 != 200) {
            rc = dsq_err_set(e, DSQ_EUNSUPPORTED,
                             "s3://%s: a PUT with the current etag in "
                             "If-Match was answered HTTP %d; read-write use "
                             "is refused (mount with -o ro)",
                             s->bucket, st2);
            goto out;
        }
    }
    rc = DSQ_OK;
out:
    if (created) {
        struct dsq_err e2;
        struct s3_op op = {"DELETE", "DELETE", fk, NULL, 0, NULL,
                           0,        NULL,     0,  NULL, 0};
        if (s3_request(s, &op, &resp, &e2) == DSQ_OK)
            dsq_http_resp_cleanup(&resp);
        else
            dsq_log(DSQ_LOG_WARNING, "s3", "self-test: cannot delete %s: %s",
                    fk, e2.msg);
    }
    return rc;
}
