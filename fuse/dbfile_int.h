/*
 * dbfile_int.h - what dbfile.c (a database as a file), dblock.c (its lock
 * requests), wal.c (its WAL mode), inval.c (kernel cache invalidation)
 * and status.c (its counters) share: kernel cache invalidation, the
 * snapshot helpers and the commit points.
 *
 * Layer: FUSE front end, private to those files.  Every function
 * here is called with df->mu held unless it says otherwise.
 */
#ifndef DSQ_FUSE_DBFILE_INT_H
#define DSQ_FUSE_DBFILE_INT_H

#include "fs.h"

#include <sys/types.h>

/* Versions farther apart than this: drop the whole kernel cache. */
#define DSQ_INVAL_MAX_VERSIONS 256

/* Kernel cache ranges to drop once df->mu is released (inval.c). */
struct inval {
    struct dsq_page_range *r; /* owned */
    size_t n;
    int whole;
    uint32_t ps;
    uint64_t grow;     /* (B4) the kernel's size of the file to grow to ... */
    uint8_t grow_last; /* ... and the file's last byte there (0: none) */
};

uint64_t dsq__mono_ns(void);
/* Size of the file as served (with df->mu held). */
uint64_t dsq__df_file_size(struct dsq_dbfile *df);
/* Lock df->mu, letting another thread serve requests if it must wait. */
void dsq__df_lock(struct dsq_dbfile *df);
void dsq__inval_whole(struct inval *iv);
/* Take c's ranges (c keeps nothing), in pages of size ps. */
void dsq__inval_take(struct inval *iv, struct dsq_changes *c, uint32_t ps);
/* Unlock df->mu, then send iv (inval_busy protocol). */
void dsq__df_unlock_inval(struct dsq_dbfile *df, struct inval *iv);
void dsq__df_wait_inval(struct dsq_dbfile *df);
/* Send iv now: df->mu is released meanwhile (inval_busy set), held
   again on return. */
void dsq__df_inval_now(struct dsq_dbfile *df, struct inval *iv);
void dsq__df_log_rc(struct dsq_dbfile *df, const char *what,
                    const struct dsq_err *e, dsq_rc rc);
int dsq__df_buffered(const struct dsq_dbfile *df);
int dsq__df_ensure_snap(struct dsq_dbfile *df);
int dsq__df_check_head(struct dsq_dbfile *df, int force);
int dsq__df_refresh(struct dsq_dbfile *df, struct inval *iv,
                    uint64_t owner_except);
/* What the kernel must drop when the served version moves from `from`
   to `to` (both of page size ps), added to iv. */
void dsq__df_inval_between(struct dsq_dbfile *df, uint64_t from, uint64_t to,
                           uint32_t ps, struct inval *iv);
/* (L6) 1 if the local rollback journal is hot (looked at only after a
   write touched it). */
int dsq__df_journal_hot(struct dsq_dbfile *df);
/* Drop the buffered transaction (or staged first content); why is logged. */
void dsq__df_discard(struct dsq_dbfile *df, struct inval *iv, const char *why);
/* Commit the buffered transaction at a commit point named why: 0 or -errno
   (L4: the buffer is gone either way). */
int dsq__df_commit(struct dsq_dbfile *df, const char *why, struct inval *iv);
/* This mount committed to df: the store has the database (its first
   commit is noted for stale listings, listing.c). */
void dsq__df_now_exists(struct dsq_dbfile *df);
/* (B2) Flush the kernel's cached pages of df before a commit point unless
   it was fsynced after its last WRITE: 0 or -EIO.  df->mu NOT held. */
int dsq__df_wb_flush(struct dsq_dbfile *df, const char *why);
/* Wait (df->mu held) until a lock of `type` on [start, end] for owner no
   longer conflicts in table t, polling every 5 ms; each_turn (may be NULL)
   runs with df->mu held before every test.  0: free (F_UNLCK always is),
   df->mu still held; -EAGAIN (sleep 0) or -EINTR (interrupted, or the
   session ends): df->mu released. */
int dsq__df_lock_wait(struct dsq_dbfile *df, const struct dsq_locktab *t,
                      uint64_t owner, uint64_t start, uint64_t end, int type,
                      int sleep, fuse_req_t req,
                      void (*each_turn)(struct dsq_dbfile *df));
ssize_t dsq__full_pread(int fd, void *buf, size_t n, uint64_t off);
/* Write bytes at a byte offset into a transaction's pages (the pages a
   write covers in part are read first); any thread owning t. */
dsq_rc dsq__txn_write_bytes(struct dsq_txn *t, const char *buf, size_t size,
                            uint64_t off, struct dsq_err *ep);

#endif
