/*
 * minihttp.h - a tiny HTTP/1.1 server for tests (stand-ins for the
 * container credentials endpoint, IMDS, STS).  Listens on 127.0.0.1 on a
 * free port, one thread, one request per connection (Connection: close).
 * The handler runs on the server thread.
 */
#ifndef DSQ_MINIHTTP_H
#define DSQ_MINIHTTP_H

#include <stddef.h>

struct dsq_minihttp_req {
    char method[16];
    char path[4096];
    char headers[16384]; /* raw "Name: value\r\n" lines */
    char *body;          /* NUL-terminated */
    size_t body_len;
};

struct dsq_minihttp_resp {
    int status;            /* 0 = close the connection without answering */
    char headers[2048];    /* extra "Name: value\r\n" lines */
    char body[65536];
    size_t body_len;       /* 0: strlen(body) */
};

typedef void (*dsq_minihttp_fn)(const struct dsq_minihttp_req *req,
                                struct dsq_minihttp_resp *resp, void *arg);

struct dsq_minihttp;

/* Start; aborts on failure. */
struct dsq_minihttp *dsq_minihttp_start(dsq_minihttp_fn fn, void *arg);
int dsq_minihttp_port(const struct dsq_minihttp *s);
/* Requests served so far. */
unsigned dsq_minihttp_count(const struct dsq_minihttp *s);
void dsq_minihttp_stop(struct dsq_minihttp *s);

/* Value of a request header (case-insensitive) into out; 0 if present. */
int dsq_minihttp_header(const struct dsq_minihttp_req *r, const char *name,
                        char *out, size_t cap);

#endif
