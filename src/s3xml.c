/*
 * s3xml.c - expat-based parsing of S3/STS XML (see s3xml.h).
 *
 * Layer: services (pure).  One small driver (struct px) keeps the element
 * path ("ListBucketResult/Contents/Key") and the text of the current
 * element, capped; each document type supplies start/end callbacks that
 * look at the path.  Thread-safety: reentrant.
 */
#include "s3xml.h"

#include <expat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PATH_MAX_LEN 512
#define TEXT_MAX (16u << 10)
#define MAX_ENTRIES 100000u

struct px {
    XML_Parser p;
    char path[PATH_MAX_LEN];
    size_t path_len;
    char *text;          /* TEXT_MAX + 1 */
    size_t text_len;
    const char *fail;    /* first failure, static text */
    void (*start)(struct px *x);
    void (*end)(struct px *x, const char *text, size_t len);
    void *ctx;
};

static void px_fail(struct px *x, const char *why)
{
    if (!x->fail)
        x->fail = why;
    XML_StopParser(x->p, XML_FALSE);
}

static void wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

static void XMLCALL on_start(void *ud, const XML_Char *name,
                             const XML_Char **attrs)
{
    struct px *x = ud;
    (void)attrs;
    size_t n = strlen(name);
    if (x->fail)
        return;
    if (x->path_len + n + 2 > sizeof(x->path)) {
        px_fail(x, "elements nested too deeply");
        return;
    }
    if (x->path_len)
        x->path[x->path_len++] = '/';
    memcpy(x->path + x->path_len, name, n + 1);
    x->path_len += n;
    wipe(x->text, x->text_len);
    x->text_len = 0;
    if (x->start)
        x->start(x);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct px *x = ud;
    if (x->fail)
        return;
    x->text[x->text_len] = 0;
    if (x->end)
        x->end(x, x->text, x->text_len);
    wipe(x->text, x->text_len);
    x->text_len = 0;
    size_t n = strlen(name);
    if (n > x->path_len) {
        px_fail(x, "unbalanced elements");
        return;
    }
    x->path_len -= n;
    if (x->path_len)
        x->path_len--; /* the '/' */
    x->path[x->path_len] = 0;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct px *x = ud;
    if (x->fail || len <= 0)
        return;
    if (x->text_len + (size_t)len > TEXT_MAX) {
        px_fail(x, "text field too long");
        return;
    }
    memcpy(x->text + x->text_len, s, (size_t)len);
    x->text_len += (size_t)len;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name,
                               const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    px_fail(ud, "DOCTYPE is not accepted");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param,
                              const XML_Char *value, int value_len,
                              const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    (void)name;
    (void)is_param;
    (void)value;
    (void)value_len;
    (void)base;
    (void)sysid;
    (void)pubid;
    (void)notation;
    px_fail(ud, "entity declarations are not accepted");
}

/* Run the parser over a whole document; what names what failed. */
static dsq_rc px_run(struct px *x, const void *xml, size_t len,
                     const char *what, struct dsq_err *e)
{
    dsq_rc rc = DSQ_OK;
    if (len > DSQ_S3XML_MAX_DOC)
        return dsq_err_set(e, DSQ_ECORRUPT,
                           "%s: XML document of %zu bytes is over the %u "
                           "byte cap",
                           what, len, DSQ_S3XML_MAX_DOC);
    x->text = malloc(TEXT_MAX + 1);
    x->p = XML_ParserCreate("UTF-8");
    if (!x->text || !x->p) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    XML_SetUserData(x->p, x);
    XML_SetElementHandler(x->p, on_start, on_end);
    XML_SetCharacterDataHandler(x->p, on_text);
    XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
    XML_SetEntityDeclHandler(x->p, on_entity);
    if (XML_Parse(x->p, xml, (int)len, XML_TRUE) == XML_STATUS_ERROR ||
        x->fail) {
        if (x->fail)
            rc = dsq_err_set(e, DSQ_ECORRUPT, "%s: bad XML: %s", what,
                             x->fail);
        else
            rc = dsq_err_set(e, DSQ_ECORRUPT,
                             "%s: bad XML at line %lu: %s", what,
                             (unsigned long)XML_GetCurrentLineNumber(x->p),
                             XML_ErrorString(XML_GetErrorCode(x->p)));
    }
out:
    if (x->p)
        XML_ParserFree(x->p);
    if (x->text) {
        wipe(x->text, TEXT_MAX + 1);
        free(x->text);
    }
    x->p = NULL;
    x->text = NULL;
    return rc;
}

/* Does the current path end with "/<leaf>" under a parent named parent? */
static int path_is(const struct px *x, const char *p)
{
    return strcmp(x->path, p) == 0;
}

static const char *path_leaf(const struct px *x)
{
    const char *s = strrchr(x->path, '/');
    return s ? s + 1 : x->path;
}

/* Parent element's name (the component before the leaf), or "". */
static int parent_is(const struct px *x, const char *name)
{
    const char *leaf = path_leaf(x);
    if (leaf == x->path)
        return 0;
    size_t n = strlen(name);
    const char *end = leaf - 1; /* the '/' */
    if ((size_t)(end - x->path) < n)
        return 0;
    const char *s = end - n;
    return memcmp(s, name, n) == 0 && (s == x->path || s[-1] == '/');
}

static void copy_field(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
    /* one line: no control characters in messages */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)dst[i] < 0x20)
            dst[i] = ' ';
}

/* ---- Error ---- */

struct err_ctx {
    struct dsq_s3_error out;
    int have_code;
};

static void err_end(struct px *x, const char *t, size_t n)
{
    struct err_ctx *c = x->ctx;
    const char *leaf = path_leaf(x);
    /* fields live under <Error> (S3, STS) or next to it (STS RequestId) */
    int in_err = parent_is(x, "Error");
    int in_resp = parent_is(x, "ErrorResponse");
    if (!in_err && !in_resp)
        return;
    if (in_err && !strcmp(leaf, "Code")) {
        copy_field(c->out.code, sizeof(c->out.code), t, n);
        c->have_code = n > 0;
    } else if (in_err && !strcmp(leaf, "Message")) {
        copy_field(c->out.message, sizeof(c->out.message), t, n);
    } else if (!strcmp(leaf, "RequestId")) {
        copy_field(c->out.request_id, sizeof(c->out.request_id), t, n);
    } else if (in_err && !strcmp(leaf, "Key")) {
        copy_field(c->out.key, sizeof(c->out.key), t, n);
    } else if (in_err && !strcmp(leaf, "Region")) {
        copy_field(c->out.region, sizeof(c->out.region), t, n);
    } else if (in_err && !strcmp(leaf, "Endpoint")) {
        copy_field(c->out.endpoint, sizeof(c->out.endpoint), t, n);
    }
}

dsq_rc dsq_s3xml_parse_error(const void *xml, size_t len,
                             struct dsq_s3_error *out, struct dsq_err *e)
{
    struct err_ctx c;
    struct px x;
    memset(&c, 0, sizeof(c));
    memset(&x, 0, sizeof(x));
    x.end = err_end;
    x.ctx = &c;
    dsq_rc rc = px_run(&x, xml, len, "S3 error body", e);
    if (rc != DSQ_OK)
        return rc;
    if (!c.have_code)
        return dsq_err_set(e, DSQ_ECORRUPT, "S3 error body has no <Code>");
    *out = c.out;
    return DSQ_OK;
}

/* ---- ListObjectsV2 ---- */

struct list_ctx {
    struct dsq_list_page page;
    int root_seen;
    size_t cap_entries, cap_prefixes;
    int truncated;
    int url_encoded;
    char *next_token;
    const char *fail;
};

static void page_free(struct dsq_list_page *p)
{
    for (size_t i = 0; i < p->n_entries; i++)
        free(p->entries[i].key);
    free(p->entries);
    for (size_t i = 0; i < p->n_prefixes; i++)
        free(p->common_prefixes[i]);
    free(p->common_prefixes);
    free(p->next_token);
    memset(p, 0, sizeof(*p));
}

static void list_start(struct px *x)
{
    struct list_ctx *c = x->ctx;
    struct dsq_list_page *p = &c->page;
    if (!strchr(x->path, '/')) {
        if (strcmp(x->path, "ListBucketResult") != 0)
            px_fail(x, "not a ListObjectsV2 result");
        c->root_seen = 1;
        return;
    }
    if (path_is(x, "ListBucketResult/Contents")) {
        if (p->n_entries >= MAX_ENTRIES) {
            px_fail(x, "too many entries");
            return;
        }
        if (p->n_entries == c->cap_entries) {
            size_t nc = c->cap_entries ? 2 * c->cap_entries : 64;
            void *q = realloc(p->entries, nc * sizeof(*p->entries));
            if (!q) {
                px_fail(x, "out of memory");
                return;
            }
            p->entries = q;
            c->cap_entries = nc;
        }
        memset(&p->entries[p->n_entries], 0, sizeof(*p->entries));
        p->n_entries++;
    } else if (path_is(x, "ListBucketResult/CommonPrefixes")) {
        if (p->n_prefixes >= MAX_ENTRIES) {
            px_fail(x, "too many common prefixes");
            return;
        }
        if (p->n_prefixes == c->cap_prefixes) {
            size_t nc = c->cap_prefixes ? 2 * c->cap_prefixes : 16;
            void *q =
                realloc(p->common_prefixes, nc * sizeof(*p->common_prefixes));
            if (!q) {
                px_fail(x, "out of memory");
                return;
            }
            p->common_prefixes = q;
            c->cap_prefixes = nc;
        }
        p->common_prefixes[p->n_prefixes++] = NULL;
    }
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long r = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *v = r;
    return 0;
}

static void strip_quotes(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    copy_field(dst, cap, s, n);
}

static void list_end(struct px *x, const char *t, size_t n)
{
    struct list_ctx *c = x->ctx;
    struct dsq_list_page *p = &c->page;
    struct dsq_list_entry *ent =
        p->n_entries ? &p->entries[p->n_entries - 1] : NULL;

    if (path_is(x, "ListBucketResult/Contents/Key")) {
        if (ent->key) {
            px_fail(x, "two <Key> in one <Contents>");
            return;
        }
        ent->key = strndup(t, n);
        if (!ent->key)
            px_fail(x, "out of memory");
    } else if (path_is(x, "ListBucketResult/Contents/Size")) {
        if (parse_u64(t, &ent->info.size) != 0)
            px_fail(x, "bad <Size>");
    } else if (path_is(x, "ListBucketResult/Contents/ETag")) {
        strip_quotes(ent->info.etag, sizeof(ent->info.etag), t, n);
    } else if (path_is(x, "ListBucketResult/Contents/LastModified")) {
        uint64_t ms;
        if (dsq_parse_iso8601_ms(t, &ms) == 0)
            ent->info.mtime_ms = ms;
    } else if (path_is(x, "ListBucketResult/Contents")) {
        if (!ent->key)
            px_fail(x, "<Contents> without <Key>");
    } else if (path_is(x, "ListBucketResult/CommonPrefixes/Prefix")) {
        char **slot = &p->common_prefixes[p->n_prefixes - 1];
        if (*slot) {
            px_fail(x, "two <Prefix> in one <CommonPrefixes>");
            return;
        }
        *slot = strndup(t, n);
        if (!*slot)
            px_fail(x, "out of memory");
    } else if (path_is(x, "ListBucketResult/CommonPrefixes")) {
        if (!p->common_prefixes[p->n_prefixes - 1])
            px_fail(x, "<CommonPrefixes> without <Prefix>");
    } else if (path_is(x, "ListBucketResult/IsTruncated")) {
        if (n == 4 && !memcmp(t, "true", 4))
            c->truncated = 1;
        else if (n == 5 && !memcmp(t, "false", 5))
            c->truncated = 0;
        else
            px_fail(x, "bad <IsTruncated>");
    } else if (path_is(x, "ListBucketResult/NextContinuationToken")) {
        free(c->next_token);
        c->next_token = strndup(t, n);
        if (!c->next_token)
            px_fail(x, "out of memory");
    } else if (path_is(x, "ListBucketResult/EncodingType")) {
        c->url_encoded = (n == 3 && !memcmp(t, "url", 3));
    }
}

static int decode_in_place(char **s)
{
    char *d = dsq_url_decode(*s, strlen(*s), 1);
    if (!d)
        return -1;
    free(*s);
    *s = d;
    return 0;
}

dsq_rc dsq_s3xml_parse_list(const void *xml, size_t len,
                            struct dsq_list_page *out, struct dsq_err *e)
{
    struct list_ctx c;
    struct px x;
    dsq_rc rc;
    memset(&c, 0, sizeof(c));
    memset(&x, 0, sizeof(x));
    x.start = list_start;
    x.end = list_end;
    x.ctx = &c;
    rc = px_run(&x, xml, len, "ListObjectsV2 result", e);
    if (rc != DSQ_OK)
        goto fail;
    if (c.url_encoded) {
        for (size_t i = 0; i < c.page.n_entries; i++)
            if (decode_in_place(&c.page.entries[i].key) != 0)
                goto bad_escape;
        for (size_t i = 0; i < c.page.n_prefixes; i++)
            if (decode_in_place(&c.page.common_prefixes[i]) != 0)
                goto bad_escape;
    }
    if (c.truncated) {
        if (!c.next_token || !*c.next_token) {
            rc = dsq_err_set(e, DSQ_ECORRUPT,
                             "ListObjectsV2 result: truncated without "
                             "<NextContinuationToken>");
            goto fail;
        }
        c.page.next_token = c.next_token;
        c.next_token = NULL;
    }
    free(c.next_token);
    *out = c.page;
    return DSQ_OK;
bad_escape:
    rc = dsq_err_set(e, DSQ_ECORRUPT,
                     "ListObjectsV2 result: bad %%-escape in a key");
fail:
    free(c.next_token);
    page_free(&c.page);
    return rc;
}

/* ---- STS ---- */

void dsq_s3xml_creds_cleanup(struct dsq_s3xml_creds *c)
{
    if (c->secret_key) {
        wipe(c->secret_key, strlen(c->secret_key));
        free(c->secret_key);
    }
    if (c->session_token) {
        wipe(c->session_token, strlen(c->session_token));
        free(c->session_token);
    }
    free(c->access_key);
    memset(c, 0, sizeof(*c));
}

static void sts_end(struct px *x, const char *t, size_t n)
{
    struct dsq_s3xml_creds *c = x->ctx;
    char **slot = NULL;
    if (!parent_is(x, "Credentials"))
        return;
    const char *leaf = path_leaf(x);
    if (!strcmp(leaf, "AccessKeyId"))
        slot = &c->access_key;
    else if (!strcmp(leaf, "SecretAccessKey"))
        slot = &c->secret_key;
    else if (!strcmp(leaf, "SessionToken"))
        slot = &c->session_token;
    else if (!strcmp(leaf, "Expiration")) {
        if (dsq_parse_iso8601_ms(t, &c->expires_ms) != 0)
            px_fail(x, "bad <Expiration>");
        return;
    }
    if (!slot)
        return;
    if (*slot) {
        px_fail(x, "repeated credential field");
        return;
    }
    *slot = strndup(t, n);
    if (!*slot)
        px_fail(x, "out of memory");
}

dsq_rc dsq_s3xml_parse_sts(const void *xml, size_t len,
                           struct dsq_s3xml_creds *out, struct dsq_err *e)
{
    struct dsq_s3xml_creds c;
    struct px x;
    memset(&c, 0, sizeof(c));
    memset(&x, 0, sizeof(x));
    x.end = sts_end;
    x.ctx = &c;
    dsq_rc rc = px_run(&x, xml, len, "STS response", e);
    if (rc == DSQ_OK && (!c.access_key || !*c.access_key || !c.secret_key ||
                         !*c.secret_key))
        rc = dsq_err_set(e, DSQ_ECORRUPT,
                         "STS response: no AccessKeyId/SecretAccessKey in "
                         "<Credentials>");
    if (rc != DSQ_OK) {
        dsq_s3xml_creds_cleanup(&c);
        return rc;
    }
    *out = c;
    return DSQ_OK;
}

/* ---- helpers ---- */

int dsq_parse_iso8601_ms(const char *s, uint64_t *ms)
{
    struct tm tm;
    int n = 0;
    memset(&tm, 0, sizeof(tm));
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                     &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
                     &n) != 6 ||
        n != 19)
        return -1;
    const char *p = s + n;
    unsigned frac = 0, scale = 1000;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9') {
            if (scale > 1) {
                scale /= 10;
                frac += (unsigned)(*p - '0') * scale;
            }
            p++;
        }
    }
    long off_s = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        unsigned oh, om;
        int m = 0;
        if (sscanf(p + 1, "%2u:%2u%n", &oh, &om, &m) != 2 || m != 5 ||
            oh > 23 || om > 59)
            return -1;
        off_s = sign * (long)(oh * 3600 + om * 60);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
        tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t < 0 || (long)t < off_s)
        return -1;
    *ms = (uint64_t)((long)t - off_s) * 1000u + frac;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *dsq_url_decode(const char *s, size_t n, int plus_space)
{
    char *d = malloc(n + 1);
    size_t j = 0;
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= n)
                goto bad;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                goto bad;
            d[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '+' && plus_space) {
            d[j++] = ' ';
        } else if (s[i] == 0) {
            goto bad;
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = 0;
    return d;
bad:
    free(d);
    return NULL;
}
