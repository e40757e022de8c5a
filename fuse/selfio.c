/*
 * selfio.c - the daemon's own reads and writes of a file on its own mount
 * (the -shm of a WAL database: only the kernel's page cache of the FUSE
 * file holds what SQLite's mappings wrote; with -o writeback, the fsync
 * of a database file at its commit point, writeback.c), made by a child
 * process.
 *
 * Why a child: a process that holds a file of its own mount open cannot
 * die.  When SIGKILL takes the daemon, the kernel closes the process's
 * files one by one, and the close of that file first writes back its
 * dirty pages and sends FLUSH, both answered only by the daemon, which is
 * the process closing; the release of /dev/fuse that would abort those
 * requests is deferred until every file is closed.  The process then
 * hangs for ever in the D state and the mount with it.  A child holding
 * the file instead dies cleanly: once the daemon is gone its /dev/fuse is
 * released, the connection aborts, the child's requests fail, and the
 * child sees the end of its socket and exits.
 *
 * The child does only open, pread, pwrite, fsync, recv, send, close and
 * _exit
 * (it is forked from a threaded process): it closes every other file,
 * /dev/fuse above all, and serves one request at a time over a
 * SOCK_SEQPACKET pair.  Locking: s->mu serializes the requests of one
 * handle; handles are independent.
 */
#include "selfio.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK 65536u

enum { OP_READ = 1, OP_WRITE = 2, OP_FSYNC = 3 };

struct req {
    uint32_t op;
    uint32_t len;
    uint64_t off;
};

struct rep {
    int64_t rc;
};

struct dsq_selfio {
    pthread_mutex_t mu;
    int sock;
    pid_t pid;
    _Atomic int dead; /* the child is gone: every call fails */
    uint8_t *buf;     /* sizeof(struct req or rep) + CHUNK */
};

#define MSG_MAX (sizeof(struct req) + CHUNK)

static void child_send(int sock, uint8_t *msg, int64_t rc, size_t n)
{
    struct rep r = {rc};
    memcpy(msg, &r, sizeof(r));
    send(sock, msg, sizeof(r) + n, MSG_NOSIGNAL);
}

static void child(int sock, const char *path, uint8_t *msg)
{
    /* a terminal's ^C or a signal to every process named dsqlfs is the
       daemon's to act on: it closes this child's socket when done */
    struct sigaction ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGINT, &ign, NULL);
    sigaction(SIGTERM, &ign, NULL);
    sigaction(SIGHUP, &ign, NULL);
    sigaction(SIGPIPE, &ign, NULL);
    if (sock > 0)
        close_range(0, (unsigned)sock - 1, 0);
    close_range((unsigned)sock + 1, ~0u, 0);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    child_send(sock, msg, fd < 0 ? -errno : 0, 0);
    if (fd < 0)
        _exit(1);
    for (;;) {
        ssize_t k = recv(sock, msg, MSG_MAX, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < (ssize_t)sizeof(struct req))
            break; /* the daemon closed its end, or is gone */
        struct req q;
        memcpy(&q, msg, sizeof(q));
        uint8_t *data = msg + sizeof(struct rep);
        size_t done = 0;
        int64_t rc = 0;
        if (q.len > CHUNK) {
            rc = -EINVAL;
        } else if (q.op == OP_FSYNC) {
            rc = fsync(fd) == 0 ? 0 : -errno;
        } else if (q.op == OP_WRITE) {
            memmove(data, msg + sizeof(q), q.len);
            while (done < q.len) {
                ssize_t w = pwrite(fd, data + done, q.len - done,
                                   (off_t)(q.off + done));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    rc = w < 0 ? -errno : -EIO;
                    break;
                }
                done += (size_t)w;
            }
        } else {
            while (done < q.len) {
                ssize_t r =
                    pread(fd, data + done, q.len - done, (off_t)(q.off + done));
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0)
                    rc = -errno;
                if (r <= 0)
                    break;
                done += (size_t)r;
            }
        }
        if (rc == 0 && q.op != OP_FSYNC)
            rc = (int64_t)done;
        child_send(sock, msg, rc, q.op == OP_READ && rc > 0 ? done : 0);
    }
    close(fd);
    _exit(0);
}

/* One request and its reply; s->mu held.  The reply's data lands in
   s->buf after the header. */
static int64_t roundtrip(struct dsq_selfio *s, size_t msglen, size_t *got)
{
    ssize_t k;
    do
        k = send(s->sock, s->buf, msglen, MSG_NOSIGNAL);
    while (k < 0 && errno == EINTR);
    if (k != (ssize_t)msglen) {
        atomic_store(&s->dead, 1);
        return -EIO;
    }
    do
        k = recv(s->sock, s->buf, MSG_MAX, 0);
    while (k < 0 && errno == EINTR);
    if (k < (ssize_t)sizeof(struct rep)) {
        atomic_store(&s->dead, 1);
        return -EIO; /* the child died */
    }
    struct rep r;
    memcpy(&r, s->buf, sizeof(r));
    *got = (size_t)k - sizeof(r);
    return r.rc;
}

struct dsq_selfio *dsq_selfio_open(const char *path)
{
    struct dsq_selfio *s = calloc(1, sizeof(*s));
    int sv[2] = {-1, -1};
    if (s)
        s->buf = malloc(MSG_MAX);
    if (!s || !s->buf ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        int e = errno ? errno : ENOMEM;
        if (s)
            free(s->buf);
        free(s);
        errno = e;
        return NULL;
    }
    pid_t pid = fork();
    if (pid == 0)
        child(sv[1], path, s->buf);
    int e = errno;
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        free(s->buf);
        free(s);
        errno = e;
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->sock = sv[0];
    s->pid = pid;
    ssize_t k;
    do
        k = recv(s->sock, s->buf, MSG_MAX, 0);
    while (k < 0 && errno == EINTR);
    struct rep r = {-EIO};
    if (k >= (ssize_t)sizeof(r))
        memcpy(&r, s->buf, sizeof(r));
    if (r.rc != 0) {
        dsq_selfio_close(s);
        errno = (int)-r.rc;
        return NULL;
    }
    return s;
}

int dsq_selfio_fsync(struct dsq_selfio *s)
{
    size_t got = 0;
    struct req q = {OP_FSYNC, 0, 0};
    pthread_mutex_lock(&s->mu);
    memcpy(s->buf, &q, sizeof(q));
    int64_t rc = roundtrip(s, sizeof(q), &got);
    pthread_mutex_unlock(&s->mu);
    return (int)rc;
}

ssize_t dsq_selfio_pread(struct dsq_selfio *s, void *buf, size_t n,
                         uint64_t off)
{
    size_t done = 0;
    pthread_mutex_lock(&s->mu);
    while (done < n) {
        size_t len = n - done < CHUNK ? n - done : CHUNK, got = 0;
        struct req q = {OP_READ, (uint32_t)len, off + done};
        memcpy(s->buf, &q, sizeof(q));
        int64_t rc = roundtrip(s, sizeof(q), &got);
        if (rc < 0) {
            pthread_mutex_unlock(&s->mu);
            return (ssize_t)rc;
        }
        if (got > len || (int64_t)got != rc) {
            pthread_mutex_unlock(&s->mu);
            return -EIO;
        }
        memcpy((uint8_t *)buf + done, s->buf + sizeof(struct rep), got);
        done += got;
        if (got < len)
            break; /* the end of the file */
    }
    pthread_mutex_unlock(&s->mu);
    return (ssize_t)done;
}

ssize_t dsq_selfio_pwrite(struct dsq_selfio *s, const void *buf, size_t n,
                          uint64_t off)
{
    size_t done = 0;
    pthread_mutex_lock(&s->mu);
    while (done < n) {
        size_t len = n - done < CHUNK ? n - done : CHUNK, got = 0;
        struct req q = {OP_WRITE, (uint32_t)len, off + done};
        memcpy(s->buf, &q, sizeof(q));
        memcpy(s->buf + sizeof(q), (const uint8_t *)buf + done, len);
        int64_t rc = roundtrip(s, sizeof(q) + len, &got);
        if (rc < 0 || (size_t)rc != len) {
            pthread_mutex_unlock(&s->mu);
            return rc < 0 ? (ssize_t)rc : -EIO;
        }
        done += len;
    }
    pthread_mutex_unlock(&s->mu);
    return (ssize_t)n;
}

int dsq_selfio_alive(struct dsq_selfio *s)
{
    return !atomic_load(&s->dead);
}

pid_t dsq_selfio_pid(const struct dsq_selfio *s)
{
    return s->pid;
}

void dsq_selfio_close(struct dsq_selfio *s)
{
    if (!s)
        return;
    close(s->sock);
    int st;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
        ;
    pthread_mutex_destroy(&s->mu);
    free(s->buf);
    free(s);
}
