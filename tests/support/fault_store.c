/*
 * fault_store.c - a store wrapper that counts calls and injects failures
 * (see fault_store.h for the plan and the modes).
 *
 * Layer: test support.  Calls go to the inner store through the checked
 * dispatchers of store.h.  Thread-safe: mu guards every mutable field;
 * the decision for a call is taken under mu, the inner call is made
 * outside it.
 */
#include "fault_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fault_plan {
    uint64_t n; /* 0: off */
    enum dsq_fault_mode mode;
};

struct dsq_fault_store {
    struct dsq_store base;   /* immutable after new */
    struct dsq_store *inner; /* immutable */
    int own_inner;           /* immutable */
    pthread_mutex_t mu;
    uint64_t calls;                    /* mu: every call */
    uint64_t op_calls[DSQ_FOP_COUNT_]; /* mu */
    uint64_t selected;      /* mu: calls of ops in mask (the numbering) */
    uint64_t faults;        /* mu: injected so far */
    unsigned mask;          /* mu */
    struct fault_plan at;   /* mu: one shot at call n */
    struct fault_plan from; /* mu: every call >= n */
    double rate;            /* mu: 0 = off */
    uint64_t rng;           /* mu: splitmix64 state */
    enum dsq_fault_mode rate_mode; /* mu */
};

static const struct dsq_store_ops fault_ops;

static const char *const op_names[DSQ_FOP_COUNT_] = {"get", "put", "head",
                                                     "list", "del"};

static struct dsq_fault_store *fault_of(struct dsq_store *st)
{
    if (!st || st->ops != &fault_ops) {
        fprintf(stderr, "fault_store: not a fault store\n");
        abort();
    }
    return (struct dsq_fault_store *)st;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/*
 * Count a call and decide its fate: 0 = pass through, else 1 with *mode
 * and *number (the call's number among selected calls) set.
 */
static int decide(struct dsq_fault_store *fs, enum dsq_fault_op op,
                  enum dsq_fault_mode *mode, uint64_t *number)
{
    int fail = 0;
    pthread_mutex_lock(&fs->mu);
    fs->calls++;
    fs->op_calls[op]++;
    if (fs->mask & DSQ_FOP_BIT(op)) {
        uint64_t k = ++fs->selected;
        *number = k;
        if (fs->at.n && k == fs->at.n) {
            fail = 1;
            *mode = fs->at.mode;
        } else if (fs->from.n && k >= fs->from.n) {
            fail = 1;
            *mode = fs->from.mode;
        } else if (fs->rate > 0) {
            /* 53 random bits -> [0, 1) */
            double u =
                (double)(splitmix64(&fs->rng) >> 11) / 9007199254740992.0;
            if (u < fs->rate) {
                fail = 1;
                *mode = fs->rate_mode;
            }
        }
        if (fail)
            fs->faults++;
    }
    pthread_mutex_unlock(&fs->mu);
    return fail;
}

static dsq_rc injected(struct dsq_err *e, enum dsq_fault_mode mode,
                       uint64_t number, enum dsq_fault_op op, const char *key)
{
    dsq_rc rc = mode == DSQ_FAULT_PERMANENT ? DSQ_EIO : DSQ_ETRANSIENT;
    return dsq_err_set(e, rc, "injected fault (%s) at call %llu: %s %s",
                       mode == DSQ_FAULT_LOST_REPLY  ? "lost reply"
                       : mode == DSQ_FAULT_PERMANENT ? "permanent"
                                                     : "error",
                       (unsigned long long)number, op_names[op],
                       key ? key : "");
}

static dsq_rc fault_get(struct dsq_store *st, const char *key, uint64_t off,
                        uint64_t len, struct dsq_buf *out,
                        struct dsq_objinfo *info, struct dsq_err *e)
{
    struct dsq_fault_store *fs = (struct dsq_fault_store *)st;
    enum dsq_fault_mode mode;
    uint64_t k = 0;
    if (!decide(fs, DSQ_FOP_GET, &mode, &k))
        return dsq_store_get(fs->inner, key, off, len, out, info, e);
    if (mode == DSQ_FAULT_LOST_REPLY) {
        size_t old = out->len;
        (void)dsq_store_get(fs->inner, key, off, len, out, NULL, NULL);
        out->len = old; /* the reply never arrived */
    }
    return injected(e, mode, k, DSQ_FOP_GET, key);
}

static dsq_rc fault_put(struct dsq_store *st, const char *key, const void *data,
                        size_t len, enum dsq_put_cond cond,
                        const char *if_match, struct dsq_objinfo *info,
                        struct dsq_err *e)
{
    struct dsq_fault_store *fs = (struct dsq_fault_store *)st;
    enum dsq_fault_mode mode;
    uint64_t k = 0;
    if (!decide(fs, DSQ_FOP_PUT, &mode, &k))
        return dsq_store_put(fs->inner, key, data, len, cond, if_match, info,
                             e);
    if (mode == DSQ_FAULT_LOST_REPLY)
        (void)dsq_store_put(fs->inner, key, data, len, cond, if_match, NULL,
                            NULL);
    return injected(e, mode, k, DSQ_FOP_PUT, key);
}

static dsq_rc fault_head(struct dsq_store *st, const char *key,
                         struct dsq_objinfo *info, struct dsq_err *e)
{
    struct dsq_fault_store *fs = (struct dsq_fault_store *)st;
    enum dsq_fault_mode mode;
    uint64_t k = 0;
    if (!decide(fs, DSQ_FOP_HEAD, &mode, &k))
        return dsq_store_head(fs->inner, key, info, e);
    if (mode == DSQ_FAULT_LOST_REPLY)
        (void)dsq_store_head(fs->inner, key, NULL, NULL);
    return injected(e, mode, k, DSQ_FOP_HEAD, key);
}

static dsq_rc fault_list(struct dsq_store *st, const struct dsq_list_req *req,
                         struct dsq_list_page *out, struct dsq_err *e)
{
    struct dsq_fault_store *fs = (struct dsq_fault_store *)st;
    enum dsq_fault_mode mode;
    uint64_t k = 0;
    if (!decide(fs, DSQ_FOP_LIST, &mode, &k))
        return dsq_store_list(fs->inner, req, out, e);
    if (mode == DSQ_FAULT_LOST_REPLY) {
        struct dsq_list_page scratch = {0};
        if (dsq_store_list(fs->inner, req, &scratch, NULL) == DSQ_OK)
            dsq_list_page_cleanup(&scratch);
    }
    return injected(e, mode, k, DSQ_FOP_LIST, req->prefix);
}

static dsq_rc fault_del(struct dsq_store *st, const char *key,
                        struct dsq_err *e)
{
    struct dsq_fault_store *fs = (struct dsq_fault_store *)st;
    enum dsq_fault_mode mode;
    uint64_t k = 0;
    if (!decide(fs, DSQ_FOP_DEL, &mode, &k))
        return dsq_store_del(fs->inner, key, e);
    if (mode == DSQ_FAULT_LOST_REPLY)
        (void)dsq_store_del(fs->inner, key, NULL);
    return injected(e, mode, k, DSQ_FOP_DEL, key);
}

static dsq_rc fault_debris(struct dsq_store *st, const char *dir,
                           uint64_t before_ms, int do_delete, dsq_debris_fn fn,
                           void *arg, struct dsq_err *e)
{
    struct dsq_fault_store *fs = (struct dsq_fault_store *)st;
    return dsq_store_debris(fs->inner, dir, before_ms, do_delete, fn, arg, e);
}

static void fault_destroy(struct dsq_store *st)
{
    struct dsq_fault_store *fs = (struct dsq_fault_store *)st;
    if (fs->own_inner)
        dsq_store_free(fs->inner);
    pthread_mutex_destroy(&fs->mu);
    free(fs->base.url);
    free(fs);
}

static const struct dsq_store_ops fault_ops = {
    .name = "fault",
    .get = fault_get,
    .put = fault_put,
    .head = fault_head,
    .list = fault_list,
    .del = fault_del,
    .debris = fault_debris,
    .destroy = fault_destroy,
};

dsq_rc dsq_fault_store_new(struct dsq_store *inner, int own_inner,
                           struct dsq_store **out)
{
    struct dsq_fault_store *fs = calloc(1, sizeof(*fs));
    const char *iu = inner && inner->url ? inner->url : "";
    size_t ulen = strlen(iu) + sizeof("fault+");
    char *url = malloc(ulen);
    if (!inner || !fs || !url) {
        free(fs);
        free(url);
        if (own_inner)
            dsq_store_free(inner);
        return inner ? DSQ_ENOMEM : DSQ_EINVAL;
    }
    snprintf(url, ulen, "fault+%s", iu);
    fs->base.ops = &fault_ops;
    fs->base.flags = inner->flags; /* tests may change it */
    fs->base.url = url;
    fs->inner = inner;
    fs->own_inner = own_inner;
    fs->mask = DSQ_FOP_ALL;
    pthread_mutex_init(&fs->mu, NULL);
    *out = &fs->base;
    return DSQ_OK;
}

int dsq_fault_store_is(const struct dsq_store *st)
{
    return st && st->ops == &fault_ops;
}

uint64_t dsq_fault_store_calls(struct dsq_store *st)
{
    struct dsq_fault_store *fs = fault_of(st);
    pthread_mutex_lock(&fs->mu);
    uint64_t v = fs->calls;
    pthread_mutex_unlock(&fs->mu);
    return v;
}

uint64_t dsq_fault_store_op_calls(struct dsq_store *st, enum dsq_fault_op op)
{
    struct dsq_fault_store *fs = fault_of(st);
    if ((int)op < 0 || op >= DSQ_FOP_COUNT_)
        return 0;
    pthread_mutex_lock(&fs->mu);
    uint64_t v = fs->op_calls[op];
    pthread_mutex_unlock(&fs->mu);
    return v;
}

uint64_t dsq_fault_store_faults(struct dsq_store *st)
{
    struct dsq_fault_store *fs = fault_of(st);
    pthread_mutex_lock(&fs->mu);
    uint64_t v = fs->faults;
    pthread_mutex_unlock(&fs->mu);
    return v;
}

void dsq_fault_store_reset_counts(struct dsq_store *st)
{
    struct dsq_fault_store *fs = fault_of(st);
    pthread_mutex_lock(&fs->mu);
    fs->calls = 0;
    memset(fs->op_calls, 0, sizeof(fs->op_calls));
    fs->selected = 0;
    fs->faults = 0;
    pthread_mutex_unlock(&fs->mu);
}

void dsq_fault_store_set_mask(struct dsq_store *st, unsigned mask)
{
    struct dsq_fault_store *fs = fault_of(st);
    pthread_mutex_lock(&fs->mu);
    fs->mask = mask & DSQ_FOP_ALL;
    pthread_mutex_unlock(&fs->mu);
}

void dsq_fault_store_fail_at(struct dsq_store *st, uint64_t n,
                             enum dsq_fault_mode mode)
{
    struct dsq_fault_store *fs = fault_of(st);
    pthread_mutex_lock(&fs->mu);
    fs->at.n = n;
    fs->at.mode = mode;
    pthread_mutex_unlock(&fs->mu);
}

void dsq_fault_store_fail_from(struct dsq_store *st, uint64_t n,
                               enum dsq_fault_mode mode)
{
    struct dsq_fault_store *fs = fault_of(st);
    pthread_mutex_lock(&fs->mu);
    fs->from.n = n;
    fs->from.mode = mode;
    pthread_mutex_unlock(&fs->mu);
}

void dsq_fault_store_fail_random(struct dsq_store *st, double rate,
                                 uint64_t seed, enum dsq_fault_mode mode)
{
    struct dsq_fault_store *fs = fault_of(st);
    pthread_mutex_lock(&fs->mu);
    fs->rate = rate > 0 ? (rate < 1 ? rate : 1) : 0;
    fs->rng = seed;
    fs->rate_mode = mode;
    pthread_mutex_unlock(&fs->mu);
}

void dsq_fault_store_clear(struct dsq_store *st)
{
    struct dsq_fault_store *fs = fault_of(st);
    pthread_mutex_lock(&fs->mu);
    fs->at.n = 0;
    fs->from.n = 0;
    fs->rate = 0;
    pthread_mutex_unlock(&fs->mu);
}
