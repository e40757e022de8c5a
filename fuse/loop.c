/*
 * loop.c - the FUSE session loop: a pool of worker threads, one of which
 * (the leader) reads the device and runs what it reads itself, spinning
 * on the device for a short while before it sleeps.
 *
 * Layer: FUSE front end.  Why: a SQLite read transaction through the
 * mount is four lock requests in a row (PENDING, SHARED, PENDING off,
 * all off), each a round trip through the kernel, and most of a round
 * trip is a sleeping daemon thread being woken up.  Here the thread that
 * answered a request is already looking for the next one, and finds it
 * without sleeping while requests keep coming.  After spin_us without a
 * request it blocks in poll(2) and costs nothing.
 *
 * Whether to spin at all is measured, not guessed (spin.c): the leader
 * times its requests both ways now and then and keeps the faster way.
 *
 * Model (leader/followers): exactly one thread at a time reads the
 * device (it is non-blocking, so only the leader ever waits on it) and
 * runs the request inline.  Before anything that may wait (a store call,
 * a blocking lock, waiting for another request's invalidation) the code
 * calls dsq_loop_may_block(), which hands the leader role to an idle
 * follower (starting a thread if none is idle and fewer than max_threads
 * run), so slow requests never hold the others up, and a request never
 * waits for one that nobody reads.  Followers beyond max_idle exit.
 *
 * Counters: every request read is counted per opcode (op_count, atomic,
 * for metrics.prom's dsqlfs_fuse_requests_total), so the cost of a
 * SQLite transaction in round trips can be measured from outside.
 *
 * Threads: lp->mu guards the fields of struct loop marked so; tl_lead is
 * per thread; op_count is atomic.
 */
#include "loop.h"

#include "log.h"
#include "spin.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_MS 200 /* how often a sleeping leader looks at exit */

struct loop {
    struct fuse_session *se;
    unsigned spin_us, max_threads, max_idle;
    int fd;

    pthread_mutex_t mu;
    pthread_cond_t cv;      /* leader role free, or exit (followers) */
    pthread_cond_t done_cv; /* a worker is gone (dsq_loop_run) */
    /* guarded by mu: */
    int have_leader;
    unsigned n_threads; /* running workers */
    unsigned n_idle;    /* waiting for the leader role */
    int error;          /* first receive error (-errno) */
    /* the leader's only (one thread at a time, handed on under mu): */
    struct dsq_spin spin; /* spin or sleep after a reply (spin.c) */
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void *worker(void *arg);

#define N_OPS 64 /* named opcodes below 64 one by one, the rest in 0 */
static atomic_ulong op_count[N_OPS];

static const char *const op_names[N_OPS] = {
    [FUSE_LOOKUP] = "lookup",
    [FUSE_FORGET] = "forget",
    [FUSE_GETATTR] = "getattr",
    [FUSE_SETATTR] = "setattr",
    [FUSE_MKNOD] = "mknod",
    [FUSE_MKDIR] = "mkdir",
    [FUSE_UNLINK] = "unlink",
    [FUSE_RMDIR] = "rmdir",
    [FUSE_RENAME] = "rename",
    [FUSE_LINK] = "link",
    [FUSE_OPEN] = "open",
    [FUSE_READ] = "read",
    [FUSE_WRITE] = "write",
    [FUSE_STATFS] = "statfs",
    [FUSE_RELEASE] = "release",
    [FUSE_FSYNC] = "fsync",
    [FUSE_FLUSH] = "flush",
    [FUSE_INIT] = "init",
    [FUSE_OPENDIR] = "opendir",
    [FUSE_READDIR] = "readdir",
    [FUSE_RELEASEDIR] = "releasedir",
    [FUSE_FSYNCDIR] = "fsyncdir",
    [FUSE_GETLK] = "getlk",
    [FUSE_SETLK] = "setlk",
    [FUSE_SETLKW] = "setlkw",
    [FUSE_ACCESS] = "access",
    [FUSE_CREATE] = "create",
    [FUSE_INTERRUPT] = "interrupt",
    [FUSE_DESTROY] = "destroy",
    [FUSE_BATCH_FORGET] = "batch_forget",
    [FUSE_FALLOCATE] = "fallocate",
    [FUSE_READDIRPLUS] = "readdirplus",
    [FUSE_LSEEK] = "lseek",
    [FUSE_SYMLINK] = "symlink",
    [FUSE_READLINK] = "readlink",
    [FUSE_GETXATTR] = "getxattr",
    [FUSE_LISTXATTR] = "listxattr",
    [FUSE_SETXATTR] = "setxattr",
    [FUSE_REMOVEXATTR] = "removexattr",
    [FUSE_COPY_FILE_RANGE] = "copy_file_range",
    [FUSE_IOCTL] = "ioctl",
    [FUSE_POLL] = "poll",
};

static void count_request(const struct fuse_buf *buf)
{
    unsigned op = 0;
    if (!(buf->flags & FUSE_BUF_IS_FD) && buf->mem &&
        buf->size >= sizeof(struct fuse_in_header)) {
        const struct fuse_in_header *h = buf->mem;
        if (h->opcode < N_OPS && op_names[h->opcode])
            op = h->opcode;
    }
    atomic_fetch_add_explicit(&op_count[op], 1, memory_order_relaxed);
}

size_t dsq_loop_counts(const char **names, unsigned long *counts, size_t max)
{
    size_t n = 0;
    for (unsigned op = 0; op < N_OPS && n < max; op++) {
        unsigned long c =
            atomic_load_explicit(&op_count[op], memory_order_relaxed);
        if (!c && op)
            continue;
        names[n] = op ? op_names[op] : "other";
        counts[n++] = c;
    }
    return n;
}

/* The last trials' outcome, for metrics.prom (dsq_loop_spin). */
static atomic_int spin_way = -1;
static atomic_ulong spin_cost[2], spin_epochs;

int dsq_loop_spin(uint64_t *sleep_us, uint64_t *spin_us, unsigned long *epochs)
{
    *sleep_us = atomic_load(&spin_cost[0]);
    *spin_us = atomic_load(&spin_cost[1]);
    *epochs = atomic_load(&spin_epochs);
    return atomic_load(&spin_way);
}

static struct loop *cur_loop;     /* the running loop (one per process) */
static _Thread_local int tl_lead; /* this thread leads, running a request */

/* Called with lp->mu held. */
static void start_worker(struct loop *lp)
{
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, worker, lp) == 0)
        lp->n_threads++;
    else
        dsq_log(DSQ_LOG_WARNING, "mount", "cannot start a worker thread: %s",
                strerror(errno));
    pthread_attr_destroy(&a);
}

/*
 * As the leader: the next request into buf; *came_us: when it came,
 * *wait_us: how long that took.  1 = got one, 0 = the session ended,
 * -errno on a device error.
 */
static int receive(struct loop *lp, struct fuse_buf *buf, unsigned spin_us,
                   uint64_t *came_us, uint64_t *wait_us)
{
    uint64_t start = now_us(), idle_since = start;
    for (;;) {
        if (fuse_session_exited(lp->se))
            return 0;
        int res = fuse_session_receive_buf(lp->se, buf);
        if (res > 0) {
            *came_us = now_us();
            *wait_us = *came_us - start;
            return 1;
        }
        if (res == 0)
            return 0; /* unmounted */
        if (res != -EAGAIN && res != -EINTR)
            return res;
        if (now_us() - idle_since < spin_us)
            continue; /* spin: the next request is usually microseconds away */
        struct pollfd p = {.fd = lp->fd, .events = POLLIN};
        int pr = poll(&p, 1, POLL_MS);
        if (pr > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) &&
            !(p.revents & POLLIN))
            return 0;
        if (pr > 0)
            idle_since = now_us();
    }
}

static void *worker(void *arg)
{
    struct loop *lp = arg;
    struct fuse_buf buf;
    memset(&buf, 0, sizeof(buf));
    pthread_mutex_lock(&lp->mu);
    for (;;) {
        lp->n_idle++;
        while (lp->have_leader && !fuse_session_exited(lp->se))
            pthread_cond_wait(&lp->cv, &lp->mu);
        lp->n_idle--;
        if (fuse_session_exited(lp->se))
            break;
        lp->have_leader = 1;
        pthread_mutex_unlock(&lp->mu);
        /* a thread taking the role over does not spin: the requests
           that keep coming are those of a client we have just answered,
           and the one that handed over has not answered yet (it waits
           for the store); spinning would only take the CPU from it */
        int r, measured = 0; /* the last request came to this leader */
        uint64_t last_us = 0;
        for (;;) {
            int way = measured ? dsq_spin_way(&lp->spin) : 0;
            uint64_t t = 0, wait_us = 0;
            r = receive(lp, &buf, way ? lp->spin_us : 0, &t, &wait_us);
            if (r <= 0)
                break;
            if (measured && lp->spin_us &&
                dsq_spin_note(&lp->spin, t - last_us, wait_us)) {
                /* the trials' means are stored plus one (spin.h) */
                atomic_store(&spin_cost[0], lp->spin.avg[0] - 1);
                atomic_store(&spin_cost[1], lp->spin.avg[1] - 1);
                atomic_fetch_add(&spin_epochs, 1);
                atomic_store(&spin_way, lp->spin.spin);
            }
            last_us = t;
            measured = 1;
            tl_lead = 1;
            count_request(&buf);
            fuse_session_process_buf(lp->se, &buf);
            if (!tl_lead)
                break; /* handed the role on while waiting */
            tl_lead = 0;
        }
        pthread_mutex_lock(&lp->mu);
        if (r <= 0) {
            lp->have_leader = 0;
            if (r < 0 && !lp->error)
                lp->error = r;
            fuse_session_exit(lp->se);
            pthread_cond_broadcast(&lp->cv);
            break;
        }
        if (lp->n_idle >= lp->max_idle)
            break; /* enough threads wait already */
    }
    lp->n_threads--;
    pthread_cond_signal(&lp->done_cv);
    pthread_mutex_unlock(&lp->mu);
    free(buf.mem);
    return NULL;
}

void dsq_loop_may_block(void)
{
    struct loop *lp = cur_loop;
    if (!tl_lead || !lp)
        return;
    tl_lead = 0;
    pthread_mutex_lock(&lp->mu);
    lp->have_leader = 0;
    if (lp->n_idle > 0)
        pthread_cond_signal(&lp->cv);
    else if (lp->n_threads < lp->max_threads)
        start_worker(lp);
    pthread_mutex_unlock(&lp->mu);
}

int dsq_loop_run(struct fuse_session *se, unsigned spin_us,
                 unsigned max_threads)
{
    struct loop lp;
    memset(&lp, 0, sizeof(lp));
    lp.se = se;
    lp.spin_us = spin_us;
    lp.max_threads = max_threads ? max_threads : 1;
    lp.max_idle = lp.max_threads < 16 ? lp.max_threads : 16;
    lp.fd = fuse_session_fd(se);
    int fl = fcntl(lp.fd, F_GETFL);
    if (fl < 0 || fcntl(lp.fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -errno;
    pthread_mutex_init(&lp.mu, NULL);
    pthread_cond_init(&lp.cv, NULL);
    pthread_cond_init(&lp.done_cv, NULL);
    cur_loop = &lp;
    pthread_mutex_lock(&lp.mu);
    start_worker(&lp);
    /* wait until every worker is gone (they are detached) */
    while (lp.n_threads > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&lp.done_cv, &lp.mu, &ts);
        if (fuse_session_exited(se))
            pthread_cond_broadcast(&lp.cv);
    }
    int err = lp.error;
    pthread_mutex_unlock(&lp.mu);
    cur_loop = NULL;
    pthread_cond_destroy(&lp.cv);
    pthread_cond_destroy(&lp.done_cv);
    pthread_mutex_destroy(&lp.mu);
    fuse_session_reset(se);
    return err == -ENODEV ? 0 : err;
}
