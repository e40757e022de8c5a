/*
 * fs.h - the FUSE daemon's shared state: the file system, its inodes and
 * the per-database state.
 *
 * Layer: FUSE front end.  Includes from src/ only db.h, config.h, log.h,
 * err.h and store.h.  Modules:
 *   mount.c   command line, options, store probe, session loop, signals
 *   fs.c      fuse_lowlevel_ops, inode table, namespace, side files, the
 *             one dsq_rc -> errno table (docs/errors.md)
 *   fileops.c the operations on open files (read, write, locks, ...)
 *   dbfile.c  one database as a file: pinned snapshot, transaction buffer,
 *             locks, commit points, journal parsing (docs/locking.md)
 *   locks.c   POSIX byte-range lock tables
 *   loop.c    the session loop: worker threads, the leader runs requests
 *             inline and spins between them (dsq_loop_may_block() before
 *             anything that waits)
 *   inval.c   kernel page-cache invalidation of database files
 *   status.c  the read-only .dsqlfs/ directory
 *   views.c   version views (NAME@vN.EXT), read-only
 *
 * Threads: the loop (loop.c) calls the ops from any of its threads.
 *  - fs->mu guards the inode table (every field of every struct dsq_inode
 *    except df, which is set once) and the lock tables of non-database
 *    inodes.  Order: a df->mu may be taken while holding fs->mu (the
 *    status files do), never fs->mu while holding a df->mu.
 *  - df->mu guards everything in struct dsq_dbfile marked so.  Store calls
 *    are made while holding it (one database's operations are serialised;
 *    different databases proceed in parallel), except page reads from a
 *    pinned snapshot, which run unlocked on a snapshot reference.
 *  - Kernel cache invalidations are sent with df->mu released and
 *    df->inval_busy set; lock requests wait until it clears, so no reader
 *    proceeds on a moved snapshot before its stale pages are dropped.
 */
#ifndef DSQ_FUSE_FS_H
#define DSQ_FUSE_FS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include "config.h"
#include "db.h"
#include "err.h"
#include "locks.h"
#include "store.h"
#include "wal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* The mode of a database no chmod or create set (SQLite's own default). */
#define DSQ_DEFAULT_MODE 0644u

/* The mode bits a file on the mount keeps: no setuid or setgid bit (the
   mount is nosuid; and the daemon then meets FUSE_HANDLE_KILLPRIV's
   contract, devio.c).  A chmod or create asking for them gets the rest. */
#define DSQ_MODE_KEPT 01777u

/* SQLite's lock bytes (os_unix.c). */
#define DSQ_PENDING_BYTE 0x40000000ULL
#define DSQ_RESERVED_BYTE (DSQ_PENDING_BYTE + 1)
#define DSQ_SHARED_FIRST (DSQ_PENDING_BYTE + 2)

struct dsq_fs;
struct dsq_conflicts;
struct dsq_selfio;

struct dsq_dbstat {     /* counters of the daemon for one database */
    uint64_t read_txns; /* snapshot pins (no lock -> SHARED) */
    uint64_t snapshot_moves;
    uint64_t local_commits;
    uint64_t commit_failures;
    uint64_t busy_refusals; /* EXCLUSIVE/RESERVED refused (EAGAIN,
                               EDEADLK) */
    uint64_t noop_commits;
    uint64_t inval_ranges;
};

struct dsq_dbfile {
    struct dsq_fs *fs;
    char *prefix;       /* database prefix in the store; immutable */
    char *name;         /* path on the mount ("team/db.sqlite3"); immutable */
    char *journal_path; /* local path of NAME-journal; immutable */
    struct dsq_db *db;  /* immutable after open */
    uint64_t ino;       /* inode of NAME.db; immutable */

    pthread_mutex_t mu;
    pthread_cond_t cv; /* inval_busy cleared */
    /* guarded by mu: */
    struct dsq_snap *snap;    /* the served, pinned snapshot */
    uint64_t head;            /* newest version known */
    uint64_t head_checked_ns; /* when head was last asked of the store */
    struct dsq_txn *txn;      /* buffered writes, NULL if none */
    int stage_fd;             /* an empty database's first content, byte for
                                 byte, in a local file (-1: none; never with txn) */
    uint64_t stage_size;      /* its size */
    int txn_plain;            /* txn or stage written with no write lock held */
    int wb_failed;            /* (B3) a WRITE failed since the last commit
                                 point (-o writeback) */
    int wb_synced;            /* (B2) the file was fsynced after its last
                                 WRITE and write-lock grant */
    pthread_mutex_t wb_mu;    /* writeback.c; guards: */
    struct dsq_selfio *wb_io; /* the child holding the file for flushes */
    uint64_t wb_flushes;
    int content_refused;         /* a write proved it is not a SQLite file: the
                                    file is gone from the namespace */
    int64_t mode_new;            /* (L10) the mode of the first content of an
                                    empty database: create's or a chmod's
                                    before anything is committed (-1: none) */
    int64_t mode_set;            /* a chmod this mount committed (-1: none) */
    uint64_t mode_set_ver;       /* ... in this version */
    _Atomic uint64_t attr_size;  /* the last size, mtime and mode getattr */
    _Atomic uint64_t attr_mtime; /* served (while df->mu is busy) */
    _Atomic uint32_t attr_mode;
    struct dsq_locktab locks;  /* POSIX locks on NAME.db */
    struct dsq_locktab flocks; /* flock(2) locks (start = end = 0) */
    int inval_busy;
    int refused;              /* EXCLUSIVE refused for snapshot ... */
    uint64_t refused_version; /* ... of this version */
    int refused_held;         /* ... and refused_owner still holds the */
    uint64_t refused_owner;   /* RESERVED of the refused attempt */
    unsigned open_count;
    atomic_int exists; /* the store has the database (0: created on this
                          mount, nothing committed yet) */
    /* 0 once the local journal was found not hot, until it is next
       written (set by fs.c before each write; not guarded by mu) */
    atomic_int journal_maybe_hot;
    struct dsq_dbstat st;
    struct dsq_wal wal;              /* WAL mode (wal.c); guarded by mu */
    struct dsq_conflicts *conflicts; /* conflicts.c; made under mu */
};

enum dsq_ikind {
    DSQ_I_DIR = 1,  /* root or a nested prefix */
    DSQ_I_DB,       /* NAME.db */
    DSQ_I_SIDE,     /* a local side file (journal, -wal, -shm, -mj...) */
    DSQ_I_STATDIR,  /* .dsqlfs/ */
    DSQ_I_STATFILE, /* .dsqlfs/NAME.json, .dsqlfs/metrics.prom */
    DSQ_I_VIEW,     /* NAME@vN.EXT, NAME@TIME.EXT (views.c) */
};

struct dsq_view;

struct dsq_inode {
    uint64_t ino;
    uint64_t generation;
    enum dsq_ikind kind;
    uint64_t parent;
    char *name; /* in parent */
    char *path; /* DIR: store prefix ("" = root);
                   DB: database prefix; SIDE: local path;
                   STATFILE: database prefix, "" = metrics */
    uint64_t nlookup;
    int unlinked;
    int local_dir;            /* DIR made by mkdir, not (yet) in the store */
    struct dsq_dbfile *df;    /* DB; set once at creation */
    struct dsq_view *view;    /* VIEW; set once at creation, owned */
    unsigned view_refs;       /* DB: views made of it (kept while > 0) */
    struct dsq_locktab locks; /* non-DB inodes */
    uint64_t mtime_ms;
};

struct dsq_maint;
struct dsq_listing;

struct dsq_fs {
    struct fuse_session *se;
    struct dsq_maint *maint; /* set once before the loop runs; may be NULL */
    struct dsq_config *cfg;  /* borrowed, read-only */
    struct dsq_store *st;    /* borrowed */
    char *sidedir;           /* local directory for side files */
    char *mountpoint;        /* absolute path of the mount (the daemon
                                reads and writes -shm files through it) */
    char *source;            /* the URL mounted */
    uid_t uid;
    gid_t gid;
    uint64_t start_ms;
    double db_neg_timeout;       /* negative entries for NAME.db names */
    double side_neg_timeout;     /* negative entries for side-file names */
    struct dsq_listing *listing; /* the last store listings (listing.c) */

    pthread_mutex_t mu;
    /* guarded by mu: */
    struct dsq_inode **inodes; /* index ino - 1; NULL = free slot */
    size_t n_inodes, cap_inodes;
    uint64_t next_generation;
};

/* ---- fs.c ---- */
const struct fuse_lowlevel_ops *dsq_fs_ops(void);
struct dsq_fs *dsq_fs_new(struct dsq_store *st, struct dsq_config *cfg,
                          const char *source, const char *sidedir);
void dsq_fs_free(struct dsq_fs *fs);
/* What the store holds under prefix/: *is_db (root.json or manifests/),
   else *is_dir (anything).  One listing request.  0 or -errno (logged). */
int dsq_fs_store_probe(struct dsq_fs *fs, const char *prefix, int *is_db,
                       int *is_dir);
/* The one dsq_rc -> errno table (positive errno). */
int dsq_rc_errno(dsq_rc rc);
/* malloc'd "sidedir/" + path with '/' and '%' escaped + suffix: where a
   local side file (journal) of path lives */
char *dsq_fs_side_path(const struct dsq_fs *fs, const char *path,
                       const char *suffix);
/* Database files known to the daemon (for status); fn under fs->mu. */
void dsq_fs_each_db(struct dsq_fs *fs,
                    void (*fn)(struct dsq_dbfile *df, void *arg), void *arg);

/* ---- writeback.c (-o writeback; each a no-op without it) ---- */
/* (B2) The child that holds NAME.db open for the flushes: made at a write
   lock's grant (df->mu not held; a failure is logged and fails the commit
   points that follow). */
void dsq_wb_open(struct dsq_dbfile *df);
/* (B2) The kernel's dirty pages of NAME.db written back (as WRITE requests)
   before it returns 0, or -errno (logged, naming why).  df->mu not held. */
int dsq_wb_flush(struct dsq_dbfile *df, const char *why);
/* Closes the child's descriptor (its FLUSH and RELEASE come back to this
   daemon); df->mu not held. */
void dsq_wb_close(struct dsq_dbfile *df);
/* 1 if pid is the flush child of df. */
int dsq_wb_is_ours(struct dsq_dbfile *df, pid_t pid);

/* ---- dbfile.c ---- */
/* 1 if the served file's header says WAL mode (reads page 1). */
int dsq_dbfile_is_wal(struct dsq_dbfile *df);
/* prefix: the database in the store; name: its path on the mount */
struct dsq_dbfile *dsq_dbfile_new(struct dsq_fs *fs, const char *prefix,
                                  const char *name, uint64_t ino,
                                  struct dsq_err *e);
void dsq_dbfile_free(struct dsq_dbfile *df);
/* Refresh the snapshot if nobody holds a lock (open of the file);
   trunc: O_TRUNC (refused with EPERM on a database with data unless the
   mount allows deleting). */
int dsq_dbfile_on_open(struct dsq_dbfile *df, int trunc);
void dsq_dbfile_on_release(struct dsq_dbfile *df);
/* Size, mtime and permission bits as served. */
void dsq_dbfile_attr(struct dsq_dbfile *df, uint64_t *size, uint64_t *mtime_ms,
                     uint32_t *mode);
/* (L10) chmod: stored with a new version (every mount's stat shows it from
   its next read transaction); 0 or -errno. */
int dsq_dbfile_chmod(struct dsq_dbfile *df, uint32_t mode);
/* The mode open(O_CREAT) gave a database this mount creates: kept for its
   first content when nothing is committed yet, else ignored. */
void dsq_dbfile_create_mode(struct dsq_dbfile *df, uint32_t mode);
/* Bytes read into buf (<= size), or -errno. */
ssize_t dsq_dbfile_read(struct dsq_dbfile *df, char *buf, size_t size,
                        off_t off);
ssize_t dsq_dbfile_write(struct dsq_dbfile *df, const char *buf, size_t size,
                         off_t off);
/* A shrinking truncate with no write lock held (truncate -s, ": >") of a
   database with data is refused with EPERM unless allow_delete. */
int dsq_dbfile_truncate(struct dsq_dbfile *df, uint64_t size);
/* 1 if a write proved the content is not SQLite (see write). */
int dsq_dbfile_content_refused(struct dsq_dbfile *df);
int dsq_dbfile_fsync(struct dsq_dbfile *df);
/* FLUSH: owner closes a descriptor (drops all its locks). */
int dsq_dbfile_flush(struct dsq_dbfile *df, uint64_t owner);
int dsq_dbfile_getlk(struct dsq_dbfile *df, uint64_t owner, struct flock *lk);
int dsq_dbfile_setlk(struct dsq_dbfile *df, uint64_t owner,
                     const struct flock *lk, int sleep, fuse_req_t req);
int dsq_dbfile_flock(struct dsq_dbfile *df, uint64_t owner, int op,
                     fuse_req_t req);
void dsq_dbfile_flock_release(struct dsq_dbfile *df, uint64_t owner);
/* The local journal is about to be created or written. */
void dsq_dbfile_journal_touched(struct dsq_dbfile *df);
/* Journal commit points: 0 or -errno (the call must then fail). */
int dsq_dbfile_journal_commit(struct dsq_dbfile *df, const char *why);
/* NAME-wal was truncated to size or unlinked (-1): a WAL cycle may end. */
void dsq_dbfile_wal_end(struct dsq_dbfile *df, int64_t size);
/* NAME-wal is open as inode ino. */
void dsq_dbfile_wal_seen(struct dsq_dbfile *df, uint64_t ino);
/* Status JSON / Prometheus text of one database, appended to b. */
void dsq_dbfile_status(struct dsq_dbfile *df, struct dsq_buf *b, int prom);

/* ---- status.c ---- */
/* Content of a status file (malloc'd): prefix is a database's, "" for
   metrics.prom, or "/NAME" for one of dsq_status_files. */
char *dsq_status_render(struct dsq_fs *fs, const char *prefix, size_t *len);
/* The files of .dsqlfs/ besides metrics.prom and one per database
   (NULL-terminated): health, maintenance.json. */
extern const char *const dsq_status_files[];
int dsq_status_is_file(const char *name);
/* statfs of the mount (maint.c's usage when maintenance runs). */
void dsq_status_statfs(struct dsq_fs *fs, struct statvfs *sv);
/* "a/b/name" -> "a%2Fb%2Fname.json" into out. */
void dsq_status_name(const char *prefix, char *out, size_t outsz);

#endif
