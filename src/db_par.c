/*
 * db_par.c - the engine's requests side by side: the chain of store
 * requests in a row each database counts (stats.store_chain: a request
 * sent after another's answer is one further), and sending requests
 * together from several threads (dsq__run_together for waves,
 * dsq__go_* for a pair), so that requests meant to overlap are not sent
 * one after another by a thread that happened to run first.
 *
 * Layer: services (the engine; shares db_int.h).  Locking: the chain is
 * under db->mu; a wave's own mutex guards its start flag and its next
 * index; a pair's flag is atomic.  Nothing outlives the call.
 */
#include "db_int.h"

#include <sched.h>

/* Set by a thread whose first request another waits for (dsq__go). */
static _Thread_local atomic_int *tls_sent;

uint64_t dsq__req_begin(struct dsq_db *db)
{
    pthread_mutex_lock(&db->mu);
    uint64_t d = db->stats.store_chain + 1;
    pthread_mutex_unlock(&db->mu);
    if (tls_sent) {
        atomic_store(tls_sent, 1);
        tls_sent = NULL;
    }
    return d;
}

void dsq__go_mark(atomic_int *sent)
{
    tls_sent = sent;
}

void dsq__go_wait(atomic_int *sent)
{
    /* a few ms at most: the other thread is about to send; past that it
       is late anyway and this one goes */
    for (int i = 0; i < 20000 && !atomic_load(sent); i++)
        sched_yield();
}

void dsq__go_done(atomic_int *sent)
{
    tls_sent = NULL;
    atomic_store(sent, 1);
}

void dsq__req_end(struct dsq_db *db, uint64_t depth, const char *what,
                  const char *key)
{
    pthread_mutex_lock(&db->mu);
    if (depth > db->stats.store_chain)
        db->stats.store_chain = depth;
    pthread_mutex_unlock(&db->mu);
    if (dsq_log_get_level() >= DSQ_LOG_DEBUG)
        dsq_log(DSQ_LOG_DEBUG, "db", "store %s %s: request %llu in a row", what,
                key ? key : "", (unsigned long long)depth);
}

struct together {
    void (*fn)(void *arg, size_t i, size_t slot);
    void *arg;
    size_t n, stride;
    pthread_mutex_t mu; /* guards go, next */
    pthread_cond_t cv;
    int go;
    size_t next; /* the first index nobody has taken */
};

struct together_share {
    struct together *t;
    size_t first;
};

/* Index first (a thread's own, all sent together), then whatever is
   left, taken one at a time (the threads that finish first take more). */
static void together_run(struct together *t, size_t first)
{
    t->fn(t->arg, first, first);
    for (;;) {
        pthread_mutex_lock(&t->mu);
        size_t i = t->next++;
        pthread_mutex_unlock(&t->mu);
        if (i >= t->n)
            return;
        t->fn(t->arg, i, first);
    }
}

static void *together_main(void *arg)
{
    struct together_share *sh = arg;
    struct together *t = sh->t;
    pthread_mutex_lock(&t->mu);
    while (!t->go)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    together_run(t, sh->first);
    return NULL;
}

void dsq__run_together(size_t n, size_t max,
                       void (*fn)(void *arg, size_t i, size_t slot), void *arg)
{
    if (n == 0)
        return;
    size_t threads = n < max ? n : max;
    if (threads <= 1) {
        for (size_t i = 0; i < n; i++)
            fn(arg, i, 0);
        return;
    }
    struct together t = {
        .fn = fn, .arg = arg, .n = n, .stride = threads, .next = threads};
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    pthread_t *th = malloc(threads * sizeof(*th));
    struct together_share *sh = malloc(threads * sizeof(*sh));
    int *ok = calloc(threads, sizeof(*ok));
    for (size_t k = 1; th && sh && ok && k < threads; k++) {
        sh[k] = (struct together_share){&t, k};
        ok[k] = pthread_create(&th[k], NULL, together_main, &sh[k]) == 0;
    }
    pthread_mutex_lock(&t.mu);
    t.go = 1;
    pthread_cond_broadcast(&t.cv);
    pthread_mutex_unlock(&t.mu);
    together_run(&t, 0);
    for (size_t k = 1; k < threads; k++) {
        if (th && sh && ok && ok[k])
            pthread_join(th[k], NULL);
        else
            together_run(&t, k); /* its thread did not start */
    }
    free(th);
    free(sh);
    free(ok);
    pthread_mutex_destroy(&t.mu);
    pthread_cond_destroy(&t.cv);
}
