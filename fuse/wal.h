/*
 * wal.h - WAL mode of one database on the mount (wal.c, docs/wal.md).
 *
 * Layer: FUSE front end.  The -wal and -shm files are local side files;
 * the daemon reads SQLite's transactions off the frames written to the
 * -wal (publishing each at its commit frame) and the byte-range locks on
 * the -shm, and brings other hosts' commits into the local WAL as frames
 * of its own, so that WAL keeps its promises on every mount.
 *
 * Threads: every field is guarded by the owning df->mu.
 */
#ifndef DSQ_FUSE_WAL_H
#define DSQ_FUSE_WAL_H

#include "locks.h"
#include "walfmt.h"

#include <stdatomic.h>

#include <stdint.h>

struct dsq_snap;
struct dsq_txn;

struct dsq_wal_commit { /* a commit frame of this WAL cycle */
    uint32_t frame;
    uint64_t version; /* the version the frames up to it make */
};

struct dsq_selfio;

struct dsq_wal {
    int active;   /* a WAL cycle is in use on this host (db writes are
                     checkpoints, never commits) */
    int have_hdr; /* hdr is this cycle's valid WAL header */
    struct dsq_walhdr hdr;
    uint32_t mx;                    /* last commit frame the local WAL holds */
    uint32_t failed;                /* commit frame whose publish failed:
                                       the rest of its bytes fail too */
    uint64_t base_version;          /* version of the db file under the WAL */
    uint64_t view_version;          /* version the frames up to mx make */
    int view_exact;                 /* 0: after a rebased commit the local WAL
                                       lacks others' pages (inject them) */
    struct dsq_wal_commit *commits; /* this cycle's, ascending */
    size_t n_commits, cap_commits;
    int replaced;                   /* the database was deleted and created
                                       again: the local WAL must be reset */
    int io_busy;                    /* the daemon's own I/O runs (wal.c) */
    struct dsq_selfio *_Atomic mfd; /* the -shm through the mount
                                 (selfio.c), while SQLite uses it */
    struct dsq_txn *ckpt;           /* checkpoint writes over the db file */
    struct dsq_locktab shm;         /* POSIX locks on NAME-shm */
    uint64_t wal_ino;               /* inode of NAME-wal (0: not known) */
    char *wal_path;                 /* the -wal side file (backing) */
    char *shm_mpath;                /* the -shm through the mount */
    uint64_t injected_frames;       /* counters */
    uint64_t resets;
    uint64_t commits_published;
};

struct dsq_dbfile;
struct inval;

int dsq_wal_init(struct dsq_dbfile *df);
void dsq_wal_cleanup(struct dsq_dbfile *df);

/* A write to NAME-wal (the side file at fd, inode ino): size or -errno. */
ssize_t dsq_wal_write(struct dsq_dbfile *df, int fd, const char *buf,
                      size_t size, off_t off, uint64_t ino);
/* NAME-wal truncated to size, or unlinked (size = -1); df->mu held by the
   caller, who sends iv. */
void dsq_wal_end(struct dsq_dbfile *df, int64_t size, struct inval *iv);

/* POSIX locks on NAME-shm. */
int dsq_wal_shm_setlk(struct dsq_dbfile *df, uint64_t owner,
                      const struct flock *lk, int sleep, fuse_req_t req);
void dsq_wal_shm_getlk(struct dsq_dbfile *df, uint64_t owner, struct flock *lk);
void dsq_wal_shm_release(struct dsq_dbfile *df, uint64_t owner);

/* The database was deleted and created again (df->mu held). */
void dsq_wal_replaced(struct dsq_dbfile *df);

/* With df->mu held: db-file I/O during a WAL cycle goes to the checkpoint
   buffer (1) or not (0). */
int dsq_wal_db_io(struct dsq_dbfile *df);

#endif
