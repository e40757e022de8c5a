/*
 * http.h - the project's one HTTP client (libcurl lives only in http.c).
 *
 * Layer: services.  Used by the S3 backend (store_s3.c) and by the
 * credential providers (creds.c: STS, container endpoint, IMDS).
 *
 * One struct dsq_http per store: a CURLSH share (DNS cache, TLS sessions,
 * connection pool) plus a pool of idle easy handles, so connections are
 * reused across requests and threads.  TLS peer verification is on unless
 * opts.insecure.  dsq_http_do() performs ONE attempt: retries, signing and
 * status mapping belong to the caller.  Redirects are never followed.
 *
 * Results of dsq_http_do():
 *  - DSQ_OK: a complete HTTP response arrived (ANY status; see resp).
 *  - DSQ_ETRANSIENT: no complete response (timeout, reset, refused, DNS);
 *    resp->maybe_sent says whether the request may have reached the
 *    server (0 only when it certainly did not: no connection was made).
 *  - DSQ_EIO: TLS verification/handshake failure or a local failure
 *    (permanent); DSQ_ERANGE: the response body overflowed req->body_out.
 *  The message names the host, never a header value.
 *
 * Secrets: header lines passed in (Authorization, x-amz-security-token)
 * are handed to libcurl and never logged or copied into errors.
 *
 * Thread-safety: dsq_http_do() may be called from any number of threads
 * at once on one struct dsq_http (the pool is guarded by pool_lock; the
 * share by one mutex per curl lock_data kind).  dsq_http_free() must not
 * race with calls.
 */
#ifndef DSQ_HTTP_H
#define DSQ_HTTP_H

#include "buf.h"
#include "err.h"

#include <stddef.h>
#include <stdint.h>

struct dsq_http_opts {
    const char *ca_file;        /* NULL: system store */
    int insecure;               /* skip certificate verification */
    unsigned connect_timeout_ms; /* 0 = 10 s */
    unsigned low_speed_time_s;  /* abort below 1 byte/s for this long
                                   (0 = 30) */
};

struct dsq_http_req {
    const char *method;         /* GET, HEAD, PUT, POST, DELETE */
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    size_t n_headers;
    const void *body;           /* PUT/POST body (may be NULL if len 0) */
    size_t body_len;
    struct dsq_buf *body_out;   /* 2xx/3xx body appended here (may be NULL:
                                   discarded) */
    uint64_t timeout_ms;        /* whole request, 0 = none */
    int count_sends;            /* fill resp->sends (costs a debug hook) */
};

struct dsq_http_resp {
    int status;                 /* final HTTP status, 0 if none */
    int maybe_sent;             /* see above */
    unsigned sends;             /* times the request went out (count_sends) */
    char etag[128];             /* unquoted */
    char request_id[128];       /* x-amz-request-id */
    char bucket_region[64];     /* x-amz-bucket-region */
    char content_range[96];
    int has_length;
    uint64_t content_length;
    uint64_t last_modified_ms;  /* 0 if absent */
    uint64_t date_ms;           /* Date header, 0 if absent */
    struct dsq_buf err_body;    /* body of a >= 400 response (capped 64K) */
};

struct dsq_http;

dsq_rc dsq_http_new(const struct dsq_http_opts *o, struct dsq_http **out,
                    struct dsq_err *e);
void dsq_http_free(struct dsq_http *h);

/* resp is initialised by dsq_http_do; always call dsq_http_resp_cleanup. */
dsq_rc dsq_http_do(struct dsq_http *h, const struct dsq_http_req *r,
                   struct dsq_http_resp *resp, struct dsq_err *e);
void dsq_http_resp_cleanup(struct dsq_http_resp *resp);

/* "host[:port]" of a URL's authority, for messages (no userinfo). */
void dsq_http_url_host(const char *url, char *out, size_t cap);

#endif
