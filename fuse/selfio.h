/*
 * selfio.h - the daemon's own reads and writes of a file on its own
 * mount, made by a child process (selfio.c).
 */
#ifndef DSQ_SELFIO_H
#define DSQ_SELFIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dsq_selfio;

/* Opens `path` (on the mount) O_RDWR in a new child process.  NULL with
   errno set on failure.  May wait for FUSE requests: call with no lock
   held that a request needs, after dsq_loop_may_block(). */
struct dsq_selfio *dsq_selfio_open(const char *path);

/* fsync(2) of the file through the child: with the writeback cache the
   kernel first writes back every dirty page of it and waits for every
   WRITE in flight (requests this daemon must be free to answer). */
int dsq_selfio_fsync(struct dsq_selfio *s);

/* Whole reads and writes at `off`: the byte count, or -errno (a short
   read at the end of the file returns what there was). */
ssize_t dsq_selfio_pread(struct dsq_selfio *s, void *buf, size_t n,
                         uint64_t off);
ssize_t dsq_selfio_pwrite(struct dsq_selfio *s, const void *buf, size_t n,
                          uint64_t off);

/* 0 once a call found the child gone (the handle is then only good for
   dsq_selfio_close). */
int dsq_selfio_alive(struct dsq_selfio *s);

/* The child's process id (for tests and logs). */
pid_t dsq_selfio_pid(const struct dsq_selfio *s);

/* Closes the file (the child's close is a FLUSH request of the mount) and
   reaps the child.  NULL is ignored. */
void dsq_selfio_close(struct dsq_selfio *s);

#endif
