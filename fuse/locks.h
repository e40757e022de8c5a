/*
 * locks.h - POSIX byte-range lock tables, kept by the daemon itself so that
 * it sees every lock SQLite takes (DESIGN: the transaction protocol is read
 * off the locks).
 *
 * Layer: FUSE front end, pure data structure (no I/O, no locking: the
 * caller holds the mutex of the file the table belongs to).
 *
 * Semantics are fcntl's: a lock is (owner, [start, end], read|write); an
 * owner's new lock over a range replaces whatever that owner held there
 * (splitting its old locks); two owners conflict when their ranges overlap
 * and one of the locks is a write lock.  end is inclusive; UINT64_MAX
 * means "to end of file".
 */
#ifndef DSQ_LOCKS_H
#define DSQ_LOCKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dsq_lock {
    uint64_t owner;
    uint64_t start, end; /* inclusive */
    int type;            /* F_RDLCK or F_WRLCK */
    pid_t pid;
};

struct dsq_locktab {
    struct dsq_lock *v;
    size_t n, cap;
};

void dsq_locks_free(struct dsq_locktab *t);

/* A lock of another owner that conflicts with the request, or NULL. */
const struct dsq_lock *dsq_locks_conflict(const struct dsq_locktab *t,
                                          uint64_t owner, uint64_t start,
                                          uint64_t end, int type);

/* Apply F_RDLCK, F_WRLCK or F_UNLCK for owner (no conflict check).
   0 or -ENOMEM. */
int dsq_locks_apply(struct dsq_locktab *t, uint64_t owner, uint64_t start,
                    uint64_t end, int type, pid_t pid);

void dsq_locks_release_owner(struct dsq_locktab *t, uint64_t owner);

/* 1 if owner holds any lock. */
int dsq_locks_owner_any(const struct dsq_locktab *t, uint64_t owner);
/* 1 if anyone holds any lock (owner_except excluded; 0 = nobody). */
int dsq_locks_any(const struct dsq_locktab *t, uint64_t owner_except);
/* 1 if anyone holds a write lock. */
int dsq_locks_any_write(const struct dsq_locktab *t);
/* The type owner holds at byte off (F_RDLCK, F_WRLCK or F_UNLCK). */
int dsq_locks_type_at(const struct dsq_locktab *t, uint64_t owner,
                      uint64_t off);

#endif
