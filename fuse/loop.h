/*
 * loop.h - the FUSE session loop (loop.c): worker threads, one leader
 * spinning briefly on the device between requests.
 *
 * Layer: FUSE front end.
 */
#ifndef DSQ_FUSE_LOOP_H
#define DSQ_FUSE_LOOP_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <stdint.h>

/*
 * Serve se until it ends (unmount, signal).  spin_us: how long the
 * waiting thread polls the device without sleeping after the last
 * request (0: sleep at once); at most max_threads workers.  0 or -errno.
 */
int dsq_loop_run(struct fuse_session *se, unsigned spin_us,
                 unsigned max_threads);

/*
 * About to wait (a store call, a blocking lock, another request's
 * invalidation): if this thread runs a request inline as the leader, let
 * another thread read the device meanwhile.  Cheap otherwise.
 */
void dsq_loop_may_block(void);

/*
 * The way the loop waits for requests since its last trials (spin.c): 1
 * spinning, 0 sleeping, -1 no trials ended yet (or spin_us=0).  *sleep_us
 * and *spin_us: the mean cost of a request in each trial, *epochs: trials
 * run so far.
 */
int dsq_loop_spin(uint64_t *sleep_us, uint64_t *spin_us, unsigned long *epochs);

/*
 * The requests read so far, per opcode: names[i] (static strings, e.g.
 * "lookup", "setlk"; "other" for opcodes without a name) and counts[i];
 * at most max rows, opcodes never seen are left out.  Returns the rows.
 */
size_t dsq_loop_counts(const char **names, unsigned long *counts, size_t max);

#endif
