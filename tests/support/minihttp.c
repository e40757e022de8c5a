/*
 * minihttp.c - tiny loopback HTTP server for tests (see minihttp.h).
 */
#include "minihttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct dsq_minihttp {
    int fd;
    int port;
    atomic_int stop;
    atomic_uint count;
    pthread_t th;
    dsq_minihttp_fn fn;
    void *arg;
};

static int read_request(int c, struct dsq_minihttp_req *r)
{
    char buf[32768];
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len == sizeof(buf) - 1)
            return -1;
        ssize_t n = recv(c, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head = (size_t)(end - buf) + 4;
    char *line_end = strstr(buf, "\r\n");
    *line_end = 0;
    if (sscanf(buf, "%15s %4095s", r->method, r->path) != 2)
        return -1;
    size_t hl = head - (size_t)(line_end + 2 - buf);
    if (hl >= sizeof(r->headers))
        hl = sizeof(r->headers) - 1;
    memcpy(r->headers, line_end + 2, hl);
    r->headers[hl] = 0;
    char cl[32];
    size_t want = 0;
    if (dsq_minihttp_header(r, "content-length", cl, sizeof(cl)) == 0)
        want = strtoul(cl, NULL, 10);
    r->body = malloc(want + 1);
    if (!r->body)
        return -1;
    size_t have = len - head;
    if (have > want)
        have = want;
    memcpy(r->body, buf + head, have);
    while (have < want) {
        ssize_t n = recv(c, r->body + have, want - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    r->body[want] = 0;
    r->body_len = want;
    return 0;
}

static void send_all(int c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(c, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *serve(void *arg)
{
    struct dsq_minihttp *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {s->fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        struct dsq_minihttp_req *req = calloc(1, sizeof(*req));
        struct dsq_minihttp_resp *resp = calloc(1, sizeof(*resp));
        if (req && resp && read_request(c, req) == 0) {
            resp->status = 200;
            s->fn(req, resp, s->arg);
            atomic_fetch_add(&s->count, 1);
            if (resp->status) {
                size_t bl = resp->body_len ? resp->body_len
                                           : strlen(resp->body);
                char head[4096];
                int hn = snprintf(head, sizeof(head),
                                  "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
                                  "Connection: close\r\n%s\r\n",
                                  resp->status, bl, resp->headers);
                send_all(c, head, (size_t)hn);
                send_all(c, resp->body, bl);
            }
        }
        if (req)
            free(req->body);
        free(req);
        free(resp);
        close(c);
    }
    return NULL;
}

struct dsq_minihttp *dsq_minihttp_start(dsq_minihttp_fn fn, void *arg)
{
    struct dsq_minihttp *s = calloc(1, sizeof(*s));
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    if (!s)
        abort();
    s->fn = fn;
    s->arg = arg;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(s->fd, 64) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) != 0) {
        perror("minihttp");
        abort();
    }
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->th, NULL, serve, s) != 0)
        abort();
    return s;
}

int dsq_minihttp_port(const struct dsq_minihttp *s)
{
    return s->port;
}

unsigned dsq_minihttp_count(const struct dsq_minihttp *s)
{
    return atomic_load(&((struct dsq_minihttp *)s)->count);
}

void dsq_minihttp_stop(struct dsq_minihttp *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->fd);
    free(s);
}

int dsq_minihttp_header(const struct dsq_minihttp_req *r, const char *name,
                        char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = r->headers;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            eol = p + strlen(p);
        if ((size_t)(eol - p) > nl && p[nl] == ':' &&
            strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = (size_t)(eol - v);
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return 0;
        }
        p = *eol ? eol + 2 : eol;
    }
    return -1;
}
