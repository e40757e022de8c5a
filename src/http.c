/*
 * http.c - libcurl behind dsq_http (see http.h).  This is the ONLY file of
 * the project that includes <curl/curl.h>.
 *
 * Layer: services.  Invariants: every easy handle taken from the pool is
 * fully re-configured (curl_easy_reset) before use; the share is attached
 * to every handle; redirects are off; protocols are limited to http/https.
 *
 * Thread-safety: pool_lock guards idle[]/n_idle; share_locks[k] guards the
 * share's data of kind k (curl calls lock_cb/unlock_cb).  Per-request
 * state lives on the caller's stack.
 */
#include "http.h"

#include "log.h"

#include <curl/curl.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define POOL_MAX 32
#define ERR_BODY_MAX (64u << 10)
/* PUT bodies up to this go out with the headers (libcurl sends a body
   given as POSTFIELDS with the headers below its 64 KiB initial size) */
#define SMALL_PUT_MAX (60u << 10)

struct dsq_http {
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_lock;
    CURL *idle[POOL_MAX]; /* guarded by pool_lock */
    size_t n_idle;        /* guarded by pool_lock */
    char *ca_file;        /* immutable after new */
    int insecure;
    long connect_timeout_ms;
    long low_speed_time_s;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void lock_cb(CURL *c, curl_lock_data d, curl_lock_access a, void *u)
{
    struct dsq_http *h = u;
    (void)c;
    (void)a;
    if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&h->share_locks[d]);
}

static void unlock_cb(CURL *c, curl_lock_data d, void *u)
{
    struct dsq_http *h = u;
    (void)c;
    if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&h->share_locks[d]);
}

dsq_rc dsq_http_new(const struct dsq_http_opts *o, struct dsq_http **out,
                    struct dsq_err *e)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return dsq_err_set(e, DSQ_EIO, "libcurl initialisation failed: %s",
                           curl_easy_strerror(global_rc));
    struct dsq_http *h = calloc(1, sizeof(*h));
    if (!h)
        return DSQ_ENOMEM;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&h->share_locks[i], NULL);
    pthread_mutex_init(&h->pool_lock, NULL);
    h->insecure = o->insecure;
    h->connect_timeout_ms =
        o->connect_timeout_ms ? (long)o->connect_timeout_ms : 10000;
    h->low_speed_time_s = o->low_speed_time_s ? (long)o->low_speed_time_s : 30;
    if (o->ca_file && *o->ca_file) {
        h->ca_file = strdup(o->ca_file);
        if (!h->ca_file)
            goto nomem;
    }
    h->share = curl_share_init();
    if (!h->share)
        goto nomem;
    curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, lock_cb);
    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, unlock_cb);
    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    if (curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) !=
        CURLSHE_OK)
        dsq_log(DSQ_LOG_INFO, "http",
                "libcurl cannot share connections; each handle keeps its "
                "own");
    *out = h;
    return DSQ_OK;
nomem:
    dsq_http_free(h);
    return DSQ_ENOMEM;
}

void dsq_http_free(struct dsq_http *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_idle; i++)
        curl_easy_cleanup(h->idle[i]);
    if (h->share)
        curl_share_cleanup(h->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&h->share_locks[i]);
    pthread_mutex_destroy(&h->pool_lock);
    free(h->ca_file);
    free(h);
}

static CURL *pool_get(struct dsq_http *h)
{
    CURL *c = NULL;
    pthread_mutex_lock(&h->pool_lock);
    if (h->n_idle)
        c = h->idle[--h->n_idle];
    pthread_mutex_unlock(&h->pool_lock);
    if (c)
        curl_easy_reset(c);
    else
        c = curl_easy_init();
    return c;
}

static void pool_put(struct dsq_http *h, CURL *c)
{
    pthread_mutex_lock(&h->pool_lock);
    if (h->n_idle < POOL_MAX) {
        h->idle[h->n_idle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->pool_lock);
    if (c)
        curl_easy_cleanup(c);
}

/* Per-request state for the callbacks. */
struct xfer {
    const struct dsq_http_req *req;
    struct dsq_http_resp *resp;
    size_t body_base; /* body_out->len at start */
    size_t read_off;  /* upload position */
    dsq_rc write_rc;  /* DSQ_ERANGE/ENOMEM from the write callback */
};

static size_t read_cb(char *buf, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t want = size * n;
    size_t left = x->req->body_len - x->read_off;
    if (want > left)
        want = left;
    if (want)
        memcpy(buf, (const char *)x->req->body + x->read_off, want);
    x->read_off += want;
    return want;
}

static int seek_cb(void *ud, curl_off_t off, int origin)
{
    struct xfer *x = ud;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->req->body_len)
        return CURL_SEEKFUNC_FAIL;
    x->read_off = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    if (x->resp->status >= 400) {
        /* error bodies: keep the head, drop the rest */
        struct dsq_buf *b = &x->resp->err_body;
        size_t room = b->max - b->len;
        dsq_buf_append(b, p, len < room ? len : room);
        return len;
    }
    if (!x->req->body_out)
        return len;
    dsq_rc rc = dsq_buf_append(x->req->body_out, p, len);
    if (rc != DSQ_OK) {
        x->write_rc = rc;
        return 0; /* aborts with CURLE_WRITE_ERROR */
    }
    return len;
}

static void copy_trim(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    while (n && *v == ' ') {
        v++;
        n--;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static uint64_t http_date_ms(const char *v, size_t n)
{
    char tmp[128];
    copy_trim(tmp, sizeof(tmp), v, n);
    time_t t = curl_getdate(tmp, NULL);
    return t > 0 ? (uint64_t)t * 1000u : 0;
}

static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    struct dsq_http_resp *r = x->resp;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* a new status line (after 100 Continue too): start over */
        const char *sp = memchr(p, ' ', len);
        int st = 0;
        if (sp && (size_t)(sp - p) + 4 <= len)
            st = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
        r->status = st;
        r->etag[0] = r->request_id[0] = r->bucket_region[0] = 0;
        r->content_range[0] = 0;
        r->has_length = 0;
        r->last_modified_ms = r->date_ms = 0;
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return len;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vl = len - nl - 1;
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(p, name, nl) == 0)
    if (IS("etag")) {
        char tmp[160];
        copy_trim(tmp, sizeof(tmp), v, vl);
        size_t tl = strlen(tmp);
        if (tl >= 2 && tmp[0] == '"' && tmp[tl - 1] == '"') {
            tmp[tl - 1] = 0;
            copy_trim(r->etag, sizeof(r->etag), tmp + 1, tl - 2);
        } else {
            copy_trim(r->etag, sizeof(r->etag), tmp, tl);
        }
    } else if (IS("x-amz-request-id")) {
        copy_trim(r->request_id, sizeof(r->request_id), v, vl);
    } else if (IS("x-amz-bucket-region")) {
        copy_trim(r->bucket_region, sizeof(r->bucket_region), v, vl);
    } else if (IS("content-range")) {
        copy_trim(r->content_range, sizeof(r->content_range), v, vl);
    } else if (IS("content-length")) {
        char tmp[32];
        char *end;
        copy_trim(tmp, sizeof(tmp), v, vl);
        unsigned long long cl = strtoull(tmp, &end, 10);
        if (end != tmp && !*end) {
            r->content_length = cl;
            r->has_length = 1;
        }
    } else if (IS("last-modified")) {
        r->last_modified_ms = http_date_ms(v, vl);
    } else if (IS("date")) {
        r->date_ms = http_date_ms(v, vl);
    }
#undef IS
    return len;
}

static int debug_cb(CURL *c, curl_infotype type, char *data, size_t size,
                    void *ud)
{
    struct xfer *x = ud;
    (void)c;
    size_t ml = strlen(x->req->method);
    if (type == CURLINFO_HEADER_OUT && size > ml &&
        memcmp(data, x->req->method, ml) == 0 && data[ml] == ' ')
        x->resp->sends++;
    return 0;
}

void dsq_http_url_host(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

void dsq_http_resp_cleanup(struct dsq_http_resp *resp)
{
    dsq_buf_cleanup(&resp->err_body);
}

static dsq_rc classify(CURLcode cc, const char *host, const char *errbuf,
                       struct dsq_http_resp *resp, struct dsq_err *e)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        resp->maybe_sent = 0;
        return dsq_err_set(e, DSQ_ETRANSIENT,
                           "cannot resolve host '%s' (DNS): %s", host, detail);
    case CURLE_COULDNT_RESOLVE_PROXY:
        resp->maybe_sent = 0;
        return dsq_err_set(e, DSQ_ETRANSIENT, "cannot resolve proxy: %s",
                           detail);
    case CURLE_COULDNT_CONNECT:
        resp->maybe_sent = 0;
        return dsq_err_set(e, DSQ_ETRANSIENT,
                           "cannot connect to %s (refused or unreachable): %s",
                           host, detail);
    case CURLE_OPERATION_TIMEDOUT:
        return dsq_err_set(e, DSQ_ETRANSIENT, "request to %s timed out: %s",
                           host, detail);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        resp->maybe_sent = 0;
        return dsq_err_set(e, DSQ_EIO,
                           "TLS certificate of %s not accepted: %s (give the "
                           "CA with -o ca_file=, or -o insecure to skip "
                           "verification)",
                           host, detail);
    case CURLE_SSL_CONNECT_ERROR:
        resp->maybe_sent = 0;
        return dsq_err_set(e, DSQ_EIO,
                           "TLS handshake with %s failed: %s (is the endpoint "
                           "really https?)",
                           host, detail);
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        resp->maybe_sent = 0;
        return dsq_err_set(e, DSQ_EINVAL, "bad endpoint URL for %s: %s", host,
                           detail);
    case CURLE_OUT_OF_MEMORY:
        resp->maybe_sent = 0;
        return dsq_err_set(e, DSQ_ENOMEM, "out of memory in libcurl");
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_SHUTDOWN_FAILED:
    default:
        return dsq_err_set(e, DSQ_ETRANSIENT, "connection to %s failed: %s",
                           host, detail);
    }
}

dsq_rc dsq_http_do(struct dsq_http *h, const struct dsq_http_req *r,
                   struct dsq_http_resp *resp, struct dsq_err *e)
{
    struct curl_slist *hl = NULL, *tmp;
    char errbuf[CURL_ERROR_SIZE];
    char host[256];
    struct xfer x;
    dsq_rc rc = DSQ_OK;
    CURL *c = NULL;

    memset(resp, 0, sizeof(*resp));
    dsq_buf_init(&resp->err_body, ERR_BODY_MAX);
    resp->maybe_sent = 1;
    memset(&x, 0, sizeof(x));
    x.req = r;
    x.resp = resp;
    x.body_base = r->body_out ? r->body_out->len : 0;
    errbuf[0] = 0;
    dsq_http_url_host(r->url, host, sizeof(host));

    c = pool_get(h);
    if (!c) {
        resp->maybe_sent = 0;
        return dsq_err_set(e, DSQ_ENOMEM, "cannot create a libcurl handle");
    }
    for (size_t i = 0; i < r->n_headers; i++) {
        tmp = curl_slist_append(hl, r->headers[i]);
        if (!tmp)
            goto nomem;
        hl = tmp;
    }
    /* no 100-continue round trip; no implicit content type on PUT (nor
       the form type libcurl gives a body it sends with the headers) */
    const char *fixed[] = {"Expect:", "Accept:", "Content-Type:"};
    size_t n_fixed = 2;
    if (!strcmp(r->method, "PUT") && r->body_len <= SMALL_PUT_MAX) {
        n_fixed = 3;
        for (size_t i = 0; i < r->n_headers; i++)
            if (!strncasecmp(r->headers[i], "content-type:", 13))
                n_fixed = 2; /* the caller's stands */
    }
    for (size_t i = 0; i < n_fixed; i++) {
        tmp = curl_slist_append(hl, fixed[i]);
        if (!tmp)
            goto nomem;
        hl = tmp;
    }

    curl_easy_setopt(c, CURLOPT_SHARE, h->share);
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->low_speed_time_s);
    if (r->timeout_ms)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->insecure ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->insecure ? 0L : 2L);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    if (r->count_sends) {
        curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, debug_cb);
        curl_easy_setopt(c, CURLOPT_DEBUGDATA, &x);
        curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
    }

    if (!strcmp(r->method, "GET")) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(r->method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(r->method, "PUT") && r->body_len <= SMALL_PUT_MAX) {
        /* a small body goes out in the same write as the headers: with a
           read callback libcurl sends them apart, and the server wakes
           twice for one request */
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body ? r->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)r->body_len);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    } else if (!strcmp(r->method, "PUT")) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(c, CURLOPT_READDATA, &x);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, &x);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
    } else if (!strcmp(r->method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body ? r->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)r->body_len);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    }

    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK) {
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        resp->status = (int)st;
    } else if (cc == CURLE_WRITE_ERROR && x.write_rc != DSQ_OK) {
        rc = x.write_rc == DSQ_ERANGE
                 ? dsq_err_set(e, DSQ_ERANGE,
                               "response body from %s is larger than the "
                               "buffer's cap of %zu bytes",
                               host, r->body_out->max)
                 : dsq_err_set(e, x.write_rc, "response body from %s: %s", host,
                               dsq_strerror(x.write_rc));
    } else {
        rc = classify(cc, host, errbuf, resp, e);
        /* with the count, what went out is known: a copy sent before
           libcurl's own re-send failed to connect still counts */
        if (r->count_sends)
            resp->maybe_sent = resp->sends > 0;
    }
    if (rc != DSQ_OK && r->body_out)
        r->body_out->len = x.body_base; /* nothing half-read is kept */
    goto out;
nomem:
    resp->maybe_sent = 0;
    rc = dsq_err_set(e, DSQ_ENOMEM, "out of memory building a request");
out:
    /* the header list held the Authorization line: wipe before freeing */
    for (tmp = hl; tmp; tmp = tmp->next)
        explicit_bzero(tmp->data, strlen(tmp->data));
    curl_slist_free_all(hl);
    if (c) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
        pool_put(h, c);
    }
    return rc;
}
