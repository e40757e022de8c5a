/*
 * faultproxy.c - fault-injecting HTTP/1.1 proxy for tests (see
 * faultproxy.h).  lock guards the fault plan, the counters and conns[].
 */
#include "faultproxy.h"

#include "buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define MSG_MAX (512u << 20)

struct conn {
    struct dsq_faultproxy *p;
    pthread_t th;
    int cfd;
    int done;
};

struct dsq_faultproxy {
    int lfd;
    int port;
    struct sockaddr_in up;
    pthread_t accept_th;
    pthread_mutex_t lock;
    int stop;
    enum dsq_fault_mode mode;
    int arg;
    unsigned count;
    char method[16];
    char code[64];
    unsigned requests, faults;
    unsigned by_mode[DSQ_FAULT_ACK + 1];
    unsigned rnd_permille, rnd_modes; /* random faults (set_random) */
    int rnd_delay_max;
    uint64_t rnd_state;
    struct conn *conns[MAX_CONNS];
    size_t n_conns;
};

/* Buffered reader over a socket. */
struct rd {
    int fd;
    char buf[65536];
    size_t off, len;
};

static int rd_fill(struct rd *r)
{
    if (r->off == r->len)
        r->off = r->len = 0;
    if (r->len == sizeof(r->buf)) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    ssize_t n;
    do {
        n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    r->len += (size_t)n;
    return 0;
}

/* Append one line (with its CRLF) to out. */
static int rd_line(struct rd *r, struct dsq_buf *out)
{
    for (;;) {
        char *nl = memchr(r->buf + r->off, '\n', r->len - r->off);
        if (nl) {
            size_t n = (size_t)(nl - (r->buf + r->off)) + 1;
            if (dsq_buf_append(out, r->buf + r->off, n) != DSQ_OK)
                return -1;
            r->off += n;
            return 0;
        }
        if (dsq_buf_append(out, r->buf + r->off, r->len - r->off) != DSQ_OK)
            return -1;
        r->off = r->len;
        if (rd_fill(r) != 0)
            return -1;
    }
}

static int rd_exact(struct rd *r, size_t n, struct dsq_buf *out)
{
    while (n) {
        if (r->off == r->len && rd_fill(r) != 0)
            return -1;
        size_t k = r->len - r->off;
        if (k > n)
            k = n;
        if (dsq_buf_append(out, r->buf + r->off, k) != DSQ_OK)
            return -1;
        r->off += k;
        n -= k;
    }
    return 0;
}

/* Header block (start line + headers + blank line) into out. */
static int rd_head(struct rd *r, struct dsq_buf *out)
{
    for (;;) {
        size_t before = out->len;
        if (rd_line(r, out) != 0)
            return -1;
        size_t n = out->len - before;
        if ((n == 2 && out->data[before] == '\r') || n == 1)
            return 0;
    }
}

/* Value of header name in a head block, or NULL (static copy). */
static const char *hdr(const struct dsq_buf *head, const char *name, char *val,
                       size_t cap)
{
    size_t nl = strlen(name);
    const char *p = (const char *)head->data;
    const char *end = p + head->len;
    p = memchr(p, '\n', head->len);
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' &&
            strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = (size_t)(eol - v);
            while (n && (v[n - 1] == '\r' || v[n - 1] == ' '))
                n--;
            if (n >= cap)
                n = cap - 1;
            memcpy(val, v, n);
            val[n] = 0;
            return val;
        }
        p = eol;
    }
    return NULL;
}

/* Read a message body per its head into out. */
static int rd_body(struct rd *r, const struct dsq_buf *head, int no_body,
                   struct dsq_buf *out)
{
    char v[64];
    if (no_body)
        return 0;
    if (hdr(head, "transfer-encoding", v, sizeof(v)) &&
        strcasestr(v, "chunked")) {
        for (;;) {
            size_t before = out->len;
            if (rd_line(r, out) != 0)
                return -1;
            char tmp[32];
            size_t n = out->len - before;
            if (n >= sizeof(tmp))
                n = sizeof(tmp) - 1;
            memcpy(tmp, out->data + before, n);
            tmp[n] = 0;
            size_t sz = strtoul(tmp, NULL, 16);
            if (sz == 0) {
                /* trailers up to the blank line */
                for (;;) {
                    before = out->len;
                    if (rd_line(r, out) != 0)
                        return -1;
                    if (out->len - before <= 2)
                        return 0;
                }
            }
            if (rd_exact(r, sz + 2, out) != 0)
                return -1;
        }
    }
    if (hdr(head, "content-length", v, sizeof(v)))
        return rd_exact(r, strtoull(v, NULL, 10), out);
    return 0;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void reset_close(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
}

/* Reset the client connection (under the lock: stop() may shut it). */
static void drop_client(struct conn *c)
{
    pthread_mutex_lock(&c->p->lock);
    reset_close(c->cfd);
    c->cfd = -1;
    pthread_mutex_unlock(&c->p->lock);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char *status_code(int st)
{
    switch (st) {
    case 503:
        return "SlowDown";
    case 500:
        return "InternalError";
    case 501:
        return "NotImplemented";
    default:
        return "ServiceUnavailable";
    }
}

/* xorshift64*: the random faults' generator (lock held) */
static uint64_t rnd_next(struct dsq_faultproxy *p)
{
    uint64_t x = p->rnd_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    p->rnd_state = x;
    return x * 2685821657736338717ull;
}

/* A random fault for the next request, if one is due (lock held). */
static enum dsq_fault_mode random_fault(struct dsq_faultproxy *p, int *arg)
{
    if (!p->rnd_permille || !p->rnd_modes)
        return DSQ_FAULT_PASS;
    if (rnd_next(p) % 1000 >= p->rnd_permille)
        return DSQ_FAULT_PASS;
    enum dsq_fault_mode pick[DSQ_FAULT_ACK + 1];
    unsigned n = 0;
    for (unsigned m = DSQ_FAULT_DELAY; m <= DSQ_FAULT_ACK; m++)
        if (p->rnd_modes & (1u << m))
            pick[n++] = (enum dsq_fault_mode)m;
    if (n == 0)
        return DSQ_FAULT_PASS;
    enum dsq_fault_mode mode = pick[rnd_next(p) % n];
    if (mode == DSQ_FAULT_STATUS)
        *arg = rnd_next(p) % 2 ? 503 : 500;
    else if (mode == DSQ_FAULT_DELAY)
        *arg = p->rnd_delay_max > 0
                   ? (int)(rnd_next(p) % (uint64_t)p->rnd_delay_max) + 1
                   : 1;
    return mode;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct dsq_faultproxy *p = c->p;
    struct rd *cr = calloc(1, sizeof(*cr));
    struct rd *ur = calloc(1, sizeof(*ur));
    struct dsq_buf req, resp;
    int ufd = -1;
    int client_open = 1;

    dsq_buf_init(&req, MSG_MAX);
    dsq_buf_init(&resp, MSG_MAX);
    cr->fd = c->cfd;
    while (client_open) {
        dsq_buf_reset(&req);
        dsq_buf_reset(&resp);
        if (rd_head(cr, &req) != 0)
            break;
        char method[16] = "";
        sscanf((const char *)req.data, "%15s", method);
        if (rd_body(cr, &req, 0, &req) != 0)
            break;

        enum dsq_fault_mode mode = DSQ_FAULT_PASS;
        int farg = 0;
        char code[64];
        unsigned seq;
        pthread_mutex_lock(&p->lock);
        seq = ++p->requests;
        if (p->count && (!p->method[0] || !strcmp(p->method, method))) {
            mode = p->mode;
            farg = p->arg;
            p->count--;
        } else {
            mode = random_fault(p, &farg);
        }
        if (mode != DSQ_FAULT_PASS) {
            snprintf(code, sizeof(code), "%s",
                     p->code[0] ? p->code : status_code(farg));
            p->faults++;
            p->by_mode[mode]++;
        }
        pthread_mutex_unlock(&p->lock);

        if (mode == DSQ_FAULT_RESET) {
            drop_client(c);
            break;
        }
        if (mode == DSQ_FAULT_STATUS || mode == DSQ_FAULT_ACK) {
            char body[512], head[1024];
            int bl = 0, hl;
            if (mode == DSQ_FAULT_STATUS) {
                bl = snprintf(body, sizeof(body),
                              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                              "<Error><Code>%s</Code><Message>injected by "
                              "the fault proxy</Message><RequestId>fault-%u"
                              "</RequestId></Error>",
                              code, seq);
                hl = snprintf(head, sizeof(head),
                              "HTTP/1.1 %d Injected\r\nContent-Type: "
                              "application/xml\r\nx-amz-request-id: fault-%u"
                              "\r\nContent-Length: %d\r\n\r\n",
                              farg, seq, strcmp(method, "HEAD") ? bl : 0);
                if (!strcmp(method, "HEAD"))
                    bl = 0;
            } else {
                hl = snprintf(head, sizeof(head),
                              "HTTP/1.1 200 OK\r\nETag: \"fa17fa17fa17fa17"
                              "fa17fa17fa17fa17\"\r\nx-amz-request-id: fault-"
                              "%u\r\nContent-Length: 0\r\n\r\n",
                              seq);
            }
            if (send_all(c->cfd, head, (size_t)hl) != 0 ||
                send_all(c->cfd, body, (size_t)bl) != 0)
                break;
            continue;
        }
        if (mode == DSQ_FAULT_DELAY)
            sleep_ms(farg);

        /* forward */
        if (ufd < 0) {
            ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            int one = 1;
            setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            if (connect(ufd, (struct sockaddr *)&p->up, sizeof(p->up)) != 0) {
                close(ufd);
                ufd = -1;
                break;
            }
            memset(ur, 0, sizeof(*ur));
            ur->fd = ufd;
        }
        if (send_all(ufd, req.data, req.len) != 0)
            break;
        int status = 0;
        do { /* skip 1xx */
            dsq_buf_reset(&resp);
            if (rd_head(ur, &resp) != 0)
                goto out;
            sscanf((const char *)resp.data, "HTTP/%*s %d", &status);
        } while (status >= 100 && status < 200);
        int no_body = !strcmp(method, "HEAD") || status == 204 || status == 304;
        if (rd_body(ur, &resp, no_body, &resp) != 0)
            break;
        char v[64];
        int up_close =
            hdr(&resp, "connection", v, sizeof(v)) && !strcasecmp(v, "close");
        if (up_close) {
            close(ufd);
            ufd = -1;
        }
        if (mode == DSQ_FAULT_DROP_REPLY) {
            drop_client(c);
            break;
        }
        if (send_all(c->cfd, resp.data, resp.len) != 0)
            break;
        if (up_close)
            client_open = 0;
    }
out:
    if (ufd >= 0)
        close(ufd);
    pthread_mutex_lock(&p->lock);
    if (c->cfd >= 0)
        close(c->cfd);
    c->cfd = -1;
    c->done = 1;
    pthread_mutex_unlock(&p->lock);
    dsq_buf_cleanup(&req);
    dsq_buf_cleanup(&resp);
    free(cr);
    free(ur);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct dsq_faultproxy *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        struct pollfd pfd = {p->lfd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        c->p = p;
        c->cfd = fd;
        pthread_mutex_lock(&p->lock);
        /* reap finished connections (their threads have returned or are
           returning: done is set last, under the lock) */
        size_t k = 0;
        for (size_t i = 0; i < p->n_conns; i++) {
            if (p->conns[i]->done) {
                pthread_join(p->conns[i]->th, NULL);
                free(p->conns[i]);
            } else {
                p->conns[k++] = p->conns[i];
            }
        }
        p->n_conns = k;
        if (p->n_conns == MAX_CONNS) {
            pthread_mutex_unlock(&p->lock);
            close(fd);
            free(c);
            continue;
        }
        p->conns[p->n_conns++] = c;
        pthread_mutex_unlock(&p->lock);
        pthread_create(&c->th, NULL, conn_main, c);
    }
    return NULL;
}

struct dsq_faultproxy *dsq_faultproxy_start(const char *upstream_ip,
                                            int upstream_port)
{
    struct dsq_faultproxy *p = calloc(1, sizeof(*p));
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    if (!p)
        abort();
    pthread_mutex_init(&p->lock, NULL);
    p->up.sin_family = AF_INET;
    p->up.sin_port = htons((uint16_t)upstream_port);
    if (inet_pton(AF_INET, upstream_ip, &p->up.sin_addr) != 1)
        abort();
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(p->lfd, 128) != 0 ||
        getsockname(p->lfd, (struct sockaddr *)&a, &al) != 0) {
        perror("faultproxy");
        abort();
    }
    p->port = ntohs(a.sin_port);
    pthread_create(&p->accept_th, NULL, accept_main, p);
    return p;
}

int dsq_faultproxy_port(const struct dsq_faultproxy *p)
{
    return p->port;
}

void dsq_faultproxy_set(struct dsq_faultproxy *p, enum dsq_fault_mode mode,
                        int arg, unsigned count, const char *method)
{
    pthread_mutex_lock(&p->lock);
    p->mode = mode;
    p->arg = arg;
    p->count = count;
    snprintf(p->method, sizeof(p->method), "%s", method ? method : "");
    pthread_mutex_unlock(&p->lock);
}

void dsq_faultproxy_set_code(struct dsq_faultproxy *p, const char *code)
{
    pthread_mutex_lock(&p->lock);
    snprintf(p->code, sizeof(p->code), "%s", code ? code : "");
    pthread_mutex_unlock(&p->lock);
}

void dsq_faultproxy_set_random(struct dsq_faultproxy *p, unsigned seed,
                               unsigned permille, unsigned modes,
                               int delay_max_ms)
{
    pthread_mutex_lock(&p->lock);
    p->rnd_permille = permille > 1000 ? 1000 : permille;
    p->rnd_modes = modes;
    p->rnd_delay_max = delay_max_ms;
    p->rnd_state = 0x9e3779b97f4a7c15ull ^ ((uint64_t)seed << 1) ^ 1;
    pthread_mutex_unlock(&p->lock);
}

unsigned dsq_faultproxy_faults_of(struct dsq_faultproxy *p,
                                  enum dsq_fault_mode mode)
{
    pthread_mutex_lock(&p->lock);
    unsigned n = (unsigned)mode <= DSQ_FAULT_ACK ? p->by_mode[mode] : 0;
    pthread_mutex_unlock(&p->lock);
    return n;
}

unsigned dsq_faultproxy_requests(struct dsq_faultproxy *p)
{
    pthread_mutex_lock(&p->lock);
    unsigned n = p->requests;
    pthread_mutex_unlock(&p->lock);
    return n;
}

unsigned dsq_faultproxy_faults(struct dsq_faultproxy *p)
{
    pthread_mutex_lock(&p->lock);
    unsigned n = p->faults;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void dsq_faultproxy_stop(struct dsq_faultproxy *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->accept_th, NULL);
    close(p->lfd);
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_conns; i++)
        if (!p->conns[i]->done && p->conns[i]->cfd >= 0)
            shutdown(p->conns[i]->cfd, SHUT_RDWR);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->n_conns; i++) {
        pthread_join(p->conns[i]->th, NULL);
        free(p->conns[i]);
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
}
