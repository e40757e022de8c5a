/*
 * fault_store.h - a store wrapper that counts calls and injects failures.
 *
 * Layer: test support (library dsqtest).  Wraps any store; every call is
 * counted, and the call selected by the current fault plan fails instead
 * of (or after) reaching the inner store.  Made for torture tests:
 *
 *     run the workload once on a fresh wrapper; n = dsq_fault_store_calls()
 *     for i in 1..n: fresh data, fresh wrapper, fail_at(i, mode), rerun,
 *                    check the invariants
 *
 * Calls are numbered 1, 2, 3 ... in the order they enter the wrapper,
 * counting only the operations selected by the op mask (default: all).
 * Modes:
 *  - DSQ_FAULT_ERROR: the call is not performed, returns DSQ_ETRANSIENT.
 *  - DSQ_FAULT_LOST_REPLY: the call IS performed on the inner store, then
 *    DSQ_ETRANSIENT is returned as if the reply was lost (out-parameters
 *    are not written, a get's buffer is left as it was).
 *  - DSQ_FAULT_PERMANENT: not performed, returns DSQ_EIO.
 *
 * Thread-safety: all calls and control functions may be used from many
 * threads at once (one mutex guards counters and plan; the inner store is
 * called outside it).  The control functions must be given a store made by
 * dsq_fault_store_new (checked: abort otherwise).
 */
#ifndef DSQ_FAULT_STORE_H
#define DSQ_FAULT_STORE_H

#include "store.h"

#include <stdint.h>

enum dsq_fault_op {
    DSQ_FOP_GET = 0,
    DSQ_FOP_PUT = 1,
    DSQ_FOP_HEAD = 2,
    DSQ_FOP_LIST = 3,
    DSQ_FOP_DEL = 4,
    DSQ_FOP_COUNT_ /* not an op */
};

#define DSQ_FOP_BIT(op) (1u << (op))
#define DSQ_FOP_ALL ((1u << DSQ_FOP_COUNT_) - 1)

enum dsq_fault_mode {
    DSQ_FAULT_ERROR = 0,      /* not performed, DSQ_ETRANSIENT */
    DSQ_FAULT_LOST_REPLY = 1, /* performed, then DSQ_ETRANSIENT */
    DSQ_FAULT_PERMANENT = 2,  /* not performed, DSQ_EIO */
};

/*
 * Wrap inner.  With own_inner, dsq_store_free of the wrapper also frees
 * inner (also when this call fails).  Initially no faults are planned.
 */
dsq_rc dsq_fault_store_new(struct dsq_store *inner, int own_inner,
                           struct dsq_store **out);

/* 1 if st was made by dsq_fault_store_new. */
int dsq_fault_store_is(const struct dsq_store *st);

/* Calls made so far: all operations / one operation (mask ignored). */
uint64_t dsq_fault_store_calls(struct dsq_store *st);
uint64_t dsq_fault_store_op_calls(struct dsq_store *st, enum dsq_fault_op op);
/* Faults injected so far. */
uint64_t dsq_fault_store_faults(struct dsq_store *st);
/* Zero every counter (including the numbering of selected calls). */
void dsq_fault_store_reset_counts(struct dsq_store *st);

/*
 * Which operations the plan applies to and are numbered (DSQ_FOP_BIT
 * ORed; default DSQ_FOP_ALL).  E.g. DSQ_FOP_BIT(DSQ_FOP_PUT): "fail the
 * 3rd put".
 */
void dsq_fault_store_set_mask(struct dsq_store *st, unsigned mask);

/* Fail the n-th selected call (1-based; 0 disables).  One shot. */
void dsq_fault_store_fail_at(struct dsq_store *st, uint64_t n,
                             enum dsq_fault_mode mode);
/* Fail every selected call from the n-th on (0 disables). */
void dsq_fault_store_fail_from(struct dsq_store *st, uint64_t n,
                               enum dsq_fault_mode mode);
/*
 * Fail each selected call with probability rate (0..1), drawn from a
 * generator seeded with seed: the same seed and the same call sequence
 * give the same faults.  rate 0 disables.
 */
void dsq_fault_store_fail_random(struct dsq_store *st, double rate,
                                 uint64_t seed, enum dsq_fault_mode mode);
/* Cancel every planned fault (counters are kept). */
void dsq_fault_store_clear(struct dsq_store *st);

#endif
