/*
 * spin.c - whether the session loop (loop.c) spins for the next request
 * or sleeps: measured, not guessed.
 *
 * On some machines the scheduler runs the SQLite process and the daemon
 * thread on one CPU, each waking the other as it blocks, and the next
 * request is queued by the time the reply is written: spinning only
 * breaks that (the process is then woken on the other CPU).  On others
 * the two land on different CPUs, and every request not spun for waits
 * for a halted CPU to wake up (a one-row SELECT 3x slower, speedtest1
 * 2.5x; docs/architecture.md, "Where a FUSE round trip's time goes").
 * So each epoch of DSQ_SPIN_EPOCH windows begins with a trial window of
 * each way, and the rest of the epoch takes the one whose requests cost
 * less: the time from one request to the next, the reply's work and the
 * wait together (spinning may shorten the wait and slow the work).  The
 * trials cost at most one window in 16 waited for the slower way.
 *
 * Threads: a struct dsq_spin belongs to the loop's leader, one thread at
 * a time (the role is handed on under the loop's mutex).
 */
#include "spin.h"

int dsq_spin_way(const struct dsq_spin *s)
{
    if (s->window == 0)
        return 1; /* trial: spin */
    if (s->window == 1)
        return 0; /* trial: sleep */
    return s->spin;
}

int dsq_spin_note(struct dsq_spin *s, uint64_t cost_us, uint64_t wait_us)
{
    if (wait_us >= DSQ_SPIN_GAP_US)
        return 0;
    s->sum_us += cost_us;
    if (++s->n < DSQ_SPIN_WINDOW)
        return 0;
    int decided = s->window == 1;
    if (s->window < 2) {
        /* +1: a mean below 1 us still counts as measured */
        s->avg[s->window == 0] = s->sum_us / s->n + 1;
        if (s->window == 1)
            s->spin = s->avg[1] < s->avg[0];
    }
    s->n = 0;
    s->sum_us = 0;
    s->window = (s->window + 1) % DSQ_SPIN_EPOCH;
    return decided;
}
