/*
 * spin.h - the session loop's choice, after each reply, between spinning
 * on the FUSE device for the next request and sleeping at once (spin.c).
 *
 * Layer: FUSE front end; pure (no I/O, no clock of its own).
 */
#ifndef DSQ_FUSE_SPIN_H
#define DSQ_FUSE_SPIN_H

#include <stdint.h>

#define DSQ_SPIN_WINDOW 256  /* requests measured per window */
#define DSQ_SPIN_EPOCH 32    /* windows per epoch: two trials, then the best */
#define DSQ_SPIN_GAP_US 2000 /* a longer wait is the program's own time */

/* Zeroed = the start of an epoch. */
struct dsq_spin {
    unsigned window; /* windows since the epoch began */
    unsigned n;      /* requests measured in this window */
    uint64_t sum_us; /* their cost */
    uint64_t avg[2]; /* the last trials' mean cost plus 1: [0] sleeping,
                        [1] spinning (0: not measured yet) */
    int spin;        /* the way chosen by the last trials */
};

/* The way to wait for the next request: 1 spin, 0 sleep at once. */
int dsq_spin_way(const struct dsq_spin *s);

/*
 * A request came, waited for as dsq_spin_way() said: cost_us since the
 * request before it came (the reply's work and the wait), wait_us of that
 * spent waiting after the reply.  A wait of DSQ_SPIN_GAP_US or more is not
 * measured.  1 when this ended an epoch's trials (s->avg and s->spin are
 * new), else 0.
 */
int dsq_spin_note(struct dsq_spin *s, uint64_t cost_us, uint64_t wait_us);

#endif
