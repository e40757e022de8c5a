/*
 * db.h - the engine: one database (a store plus a key prefix) as versioned
 * page images, read at pinned versions and written by transactions that
 * commit with compare-and-swap.
 *
 * Layer: services, the facade fuse/ and the command line use.  Protocol,
 * states and invariants: docs/commit.md.  Format: docs/format.md.
 *
 * Handles and threads:
 *  - struct dsq_db is shared by any number of threads.  Its caches and
 *    counters are guarded by an internal mutex; store calls are made
 *    without holding it.
 *  - struct dsq_snap is an immutable, reference-counted view of one
 *    version; any thread may read through it at once.
 *  - struct dsq_txn belongs to one thread at a time (the caller serialises
 *    its calls).  It holds a reference on its snapshot.
 * Ownership: dsq_db borrows the store (it must outlive the db) and copies
 * what it needs of the config.  Snapshots and transactions borrow their
 * db: release them before dsq_db_close.
 */
#ifndef DSQ_DB_H
#define DSQ_DB_H

#include "config.h"
#include "err.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

#define DSQ_VERSION_LATEST UINT64_MAX
/* gc never removes a version younger than this (see docs/commit.md, C9) */
#define DSQ_GC_MIN_RETENTION_MS (3600u * 1000u)

struct dsq_db;
struct dsq_snap;
struct dsq_txn;

/* Counters of one db handle (monotonic). */
struct dsq_db_stats {
    uint64_t commits;      /* versions this handle published */
    uint64_t conflicts;    /* commits refused as conflicting */
    uint64_t rebases;      /* lost races resolved by rebasing */
    uint64_t retries;      /* retried store calls */
    uint64_t cache_hits;   /* page reads served from the memory or disk
                              cache (no store request) */
    uint64_t cache_misses; /* page reads that needed a store request */
    uint64_t store_gets;
    uint64_t store_puts;
    uint64_t store_lists;
    uint64_t store_heads;
    uint64_t store_dels;
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t fresh_checks;    /* freshness checks sent (dsq_db_fresh) */
    uint64_t fresh_shared;    /* answered by a check sent for another */
    uint64_t readahead_pages; /* pages fetched ahead of a sequential
                                 reader (db_read.c) */
    uint64_t store_chain;     /* the longest chain of store requests in a
                                 row since the handle opened: each one
                                 started after the one before it ended
                                 (dsq__req_begin) */
    uint64_t hot_pages;       /* pages a cold open took from hot.seg */
};

/*
 * Open the database under prefix (no leading or trailing '/'; "" is the
 * store root).  No store call is made; a missing database shows as
 * version 0 with no pages.
 */
dsq_rc dsq_db_open(struct dsq_store *st, const char *prefix,
                   const struct dsq_config *cfg, struct dsq_db **out,
                   struct dsq_err *e);
void dsq_db_close(struct dsq_db *db);

const char *dsq_db_prefix(const struct dsq_db *db);
const char *dsq_db_writer_id(const struct dsq_db *db);
void dsq_db_get_stats(struct dsq_db *db, struct dsq_db_stats *out);

/*
 * Create the database if it does not exist (root.json at version 0,
 * create-only; idempotent).  *created (may be NULL) says if this call made
 * it.
 */
dsq_rc dsq_db_init(struct dsq_db *db, int *created, struct dsq_err *e);

/* 1 in *exists if root.json or any manifest exists. */
dsq_rc dsq_db_exists(struct dsq_db *db, int *exists, struct dsq_err *e);

/*
 * The newest committed version, found from the root.json hint and
 * confirmed by listing the manifests (never the hint alone).  0 = none.
 */
dsq_rc dsq_db_latest(struct dsq_db *db, uint64_t *version, struct dsq_err *e);

/* Pin a version (DSQ_VERSION_LATEST: the newest, as dsq_db_latest). */
dsq_rc dsq_db_snapshot(struct dsq_db *db, uint64_t version,
                       struct dsq_snap **out, struct dsq_err *e);
struct dsq_snap *dsq_snap_ref(struct dsq_snap *s);
void dsq_snap_release(struct dsq_snap *s);

uint64_t dsq_snap_version(const struct dsq_snap *s);
uint32_t dsq_snap_page_size(const struct dsq_snap *s); /* 0 if empty */
uint32_t dsq_snap_page_count(const struct dsq_snap *s);
uint64_t dsq_snap_time_ms(const struct dsq_snap *s); /* 0 if empty */
/* The permission bits a chmod stored (format 3); -1 if never set. */
int64_t dsq_snap_mode(const struct dsq_snap *s);
/*
 * The database's incarnation: 32 hex digits, the same in every version
 * since the database was created (or first written in format 2), so a
 * database deleted and created again has another.  "" for an empty
 * snapshot or a format-1 manifest.  Borrowed: valid as long as s.
 */
const char *dsq_snap_incarnation(const struct dsq_snap *s);

/*
 * Write the hot pages of s (page 1, sqlite_schema's pages, the root and
 * interior pages of every b-tree, at most 16 MiB) to the database's
 * hot.seg, which a cold open fetches with its first manifest
 * (docs/format.md section 6a).  *n_pages (may be NULL): how many.  A
 * snapshot that is no SQLite database writes nothing.
 */
dsq_rc dsq_db_hot_write(struct dsq_db *db, struct dsq_snap *s, size_t *n_pages,
                        struct dsq_err *e);
/* The same for the newest version, unless hot.seg was written for its
   page map already (one ranged GET tells); *written: pages, 0 if not. */
dsq_rc dsq_db_hot_refresh(struct dsq_db *db, size_t *written,
                          struct dsq_err *e);

/* Read one page (page_size bytes; zeros past page_count: DSQ_ERANGE). */
dsq_rc dsq_snap_read_page(struct dsq_snap *s, uint32_t pgno, void *buf,
                          struct dsq_err *e);
/*
 * Read pages first..first+count-1 into buf (count*page_size bytes),
 * coalescing neighbouring pages of one segment into single ranged reads.
 */
dsq_rc dsq_snap_read_pages(struct dsq_snap *s, uint32_t first, uint32_t count,
                           void *buf, struct dsq_err *e);

/*
 * An unlinked temporary file in the handle's spill directory (cache_dir),
 * for data the caller stages locally before it becomes a transaction.
 * *fd is the caller's to close.
 */
dsq_rc dsq_db_spill_file(struct dsq_db *db, int *fd, struct dsq_err *e);

/* ---- write transactions ---- */

enum dsq_txn_flags {
    /*
     * Whole-image replacement (import, a file copied in): pages arrive in
     * strictly increasing order, each once, and go straight into segments
     * uploaded as they fill, so memory stays bounded.  Commit requires that
     * pages 1..page_count were all written.  Reads are not available.
     */
    DSQ_TXN_STREAM = 1,
    /*
     * Any version committed since the snapshot is a conflict, as under
     * serializable isolation (a writer that cannot take others' pages
     * into its own view: WAL in exclusive locking mode).
     */
    DSQ_TXN_NO_REBASE = 2,
};

dsq_rc dsq_txn_begin(struct dsq_snap *s, unsigned flags, struct dsq_txn **out,
                     struct dsq_err *e);
/* Only while the database is empty (snapshot page_count 0). */
dsq_rc dsq_txn_set_page_size(struct dsq_txn *t, uint32_t page_size,
                             struct dsq_err *e);
uint32_t dsq_txn_page_size(const struct dsq_txn *t);
/* Writing past the end grows page_count. */
dsq_rc dsq_txn_write_page(struct dsq_txn *t, uint32_t pgno, const void *page,
                          struct dsq_err *e);
dsq_rc dsq_txn_read_page(struct dsq_txn *t, uint32_t pgno, void *buf,
                         struct dsq_err *e);
dsq_rc dsq_txn_set_page_count(struct dsq_txn *t, uint32_t n, struct dsq_err *e);
uint32_t dsq_txn_page_count(const struct dsq_txn *t);
uint64_t dsq_txn_snapshot_version(const struct dsq_txn *t);
/* Number of distinct pages written so far. */
size_t dsq_txn_dirty_pages(const struct dsq_txn *t);
/*
 * Store permission bits (0..07777) with the version this transaction
 * makes; a transaction that sets none carries its base's forward.  A
 * transaction that changes only the mode commits a version with no pages.
 * DSQ_EINVAL for bits outside 07777 or an empty database.
 */
dsq_rc dsq_txn_set_mode(struct dsq_txn *t, uint32_t mode, struct dsq_err *e);

struct dsq_commit_info {
    uint64_t version;  /* the version published (or the snapshot's
                          when nothing changed) */
    unsigned attempts; /* manifest PUTs tried */
    unsigned rebases;
    uint64_t objects_written;
    uint64_t bytes_written;
    int noop; /* nothing to commit */
};

/*
 * Commit (docs/commit.md): upload the segment(s), then create manifest
 * N+1 create-only; on a lost race, rebase onto the new head if no commit
 * since the snapshot meets our write set, else DSQ_ECONFLICT.  On any
 * return the transaction is finished (free it).  info may be NULL.
 */
dsq_rc dsq_txn_commit(struct dsq_txn *t, struct dsq_commit_info *info,
                      struct dsq_err *e);
/* Abort if not committed, and free. */
void dsq_txn_free(struct dsq_txn *t);

/* ---- for the FUSE daemon: freshness, what changed, rollbacks ---- */

/*
 * The older, cheaper question, for callers that keep no snapshot: the
 * newest version given that version known exists (0: none known): one
 * HEAD of manifests/v{known+1} (versions are created in order, so if it
 * is missing, known is the newest); only when it exists, the full
 * dsq_db_latest().  A missing known+1 is also checked by listing once the
 * last listing of this handle is older than half the gc minimum age (gc
 * may have removed known+1 since).  It cannot tell a database created
 * again: dsq_db_fresh can.
 */
dsq_rc dsq_db_head_after(struct dsq_db *db, uint64_t known, uint64_t *latest,
                         struct dsq_err *e);

/* Answer of a freshness check. */
struct dsq_fresh {
    uint64_t version; /* the newest version */
    int replaced;     /* the database was deleted or created again since
                         the snapshot given was read: drop everything
                         cached from it (version may be lower) */
    int shared;       /* answered without a request of our own */
};

/*
 * The newest version for a read transaction that started at started_ns
 * (dsq_mono_ns(); 0 = now), compared with snapshot s (may be NULL).  It is
 * the answer of a store request sent at or after started_ns: one of our
 * own, or one another thread sent (or is sending) after that instant,
 * including a commit of this handle (its create-only PUT proved the
 * version below it was the newest).  Costs one LIST on a remote store and
 * two stats on a local directory when nothing moved; not fooled by gc
 * having removed the version after the known one, nor by a database
 * deleted and created again (docs/commit.md, "Freshness").
 */
dsq_rc dsq_db_fresh(struct dsq_db *db, const struct dsq_snap *s,
                    uint64_t started_ns, struct dsq_fresh *out,
                    struct dsq_err *e);

/*
 * The same, but an answer confirmed less than DSQ_FRESH_RECENT_RTTS times
 * the last check's round trip ago is good enough (the early-conflict check
 * at a write lock: a commit landing that close is found by the commit's
 * create-only PUT anyway, as a conflict instead of a refused lock).
 */
#define DSQ_FRESH_RECENT_RTTS 8
dsq_rc dsq_db_fresh_recent(struct dsq_db *db, const struct dsq_snap *s,
                           struct dsq_fresh *out, struct dsq_err *e);

struct dsq_page_range {
    uint32_t first; /* >= 1 */
    uint32_t count; /* >= 1 */
};

/* What versions from+1..to changed, as the manifests record it. */
struct dsq_changes {
    struct dsq_page_range *ranges; /* owned; pages written or freed, sorted,
                                      merged (page 1 included) */
    size_t n_ranges;
    int page1_changed;   /* some version changed page 1 beyond its
                            change counters (page count, freelist,
                            schema) */
    uint32_t page_count; /* page count at version to */
};

/* from <= to; from may be 0.  Loads manifests from+1..to. */
dsq_rc dsq_db_changes(struct dsq_db *db, uint64_t from, uint64_t to,
                      struct dsq_changes *out, struct dsq_err *e);
void dsq_changes_cleanup(struct dsq_changes *c);

/*
 * Forget buffered pages whose image equals the snapshot's (a rollback
 * writes the original pages back): they are not written by this
 * transaction.  *remaining (may be NULL) gets the dirty pages left.
 * No-op for streaming transactions.
 */
dsq_rc dsq_txn_drop_unchanged(struct dsq_txn *t, size_t *remaining,
                              struct dsq_err *e);

/* ---- admin ---- */

struct dsq_version_info {
    uint64_t version;
    uint64_t time_ms;
    uint32_t page_size;
    uint32_t page_count;
    uint64_t pages_written; /* size of the write set */
    uint64_t ckpt_version;
    char writer_id[33];
    char txn_id[33];
};

/* Calls fn for every version, oldest first; fn returns non-zero to stop. */
typedef int (*dsq_version_fn)(const struct dsq_version_info *v, void *arg);
dsq_rc dsq_db_versions(struct dsq_db *db, dsq_version_fn fn, void *arg,
                       struct dsq_err *e);

/* Progress callback for long operations: done of total (units vary). */
typedef void (*dsq_progress_fn)(uint64_t done, uint64_t total, void *arg);

struct dsq_verify_report {
    uint64_t versions;
    uint64_t first_version, last_version;
    uint64_t segments, chunks, pages_checked;
    uint64_t problems; /* each also logged with the object's key */
};
/*
 * Check that versions are contiguous, every manifest decodes, every object
 * a manifest references exists, decodes and matches its checksums, and
 * every manifest agrees with its page 1, its parent and the segments it
 * created (docs/format.md, "Cross-checks").
 * Problems are counted and described through report_fn (may be NULL);
 * returns DSQ_ECORRUPT if any were found.
 */
typedef void (*dsq_problem_fn)(const char *what, void *arg);
dsq_rc dsq_db_verify(struct dsq_db *db, struct dsq_verify_report *rep,
                     dsq_problem_fn report_fn, dsq_progress_fn progress,
                     void *arg, struct dsq_err *e);

/*
 * Find segments and page-table chunks that no manifest created and that
 * are older than grace_ms; with do_delete, remove them.  fn (may be NULL)
 * is called per orphan.
 */
typedef void (*dsq_orphan_fn)(const char *key, uint64_t size, uint64_t mtime_ms,
                              int deleted, void *arg);
dsq_rc dsq_db_recovery_scan(struct dsq_db *db, uint64_t grace_ms, int do_delete,
                            dsq_orphan_fn fn, void *arg, uint64_t *n_orphans,
                            struct dsq_err *e);

/*
 * The temporary files writers that were killed left in the database's
 * directories (the prefix, manifests/, segments/, pagetables/; only
 * stores that make them, file://) older than grace_ms: fn per file (its
 * name relative to the database, like an orphan's key), with do_delete
 * removed first.  *n_found gets their number.
 */
dsq_rc dsq_db_debris_scan(struct dsq_db *db, uint64_t grace_ms, int do_delete,
                          dsq_orphan_fn fn, void *arg, uint64_t *n_found,
                          struct dsq_err *e);

struct dsq_gc_report {
    uint64_t head;  /* newest version */
    uint64_t floor; /* oldest version kept */
    uint64_t versions_removed;
    uint64_t objects_removed; /* segments and chunks only they used */
};
/*
 * Remove old versions: keep the newest keep_versions (>= 1) and every
 * version committed within keep_ms (>= DSQ_GC_MIN_RETENTION_MS).  The
 * floor (gc.json) is written before anything is removed (C9).  With
 * dry_run, only report.
 */
dsq_rc dsq_db_gc(struct dsq_db *db, uint64_t keep_versions, uint64_t keep_ms,
                 int dry_run, struct dsq_gc_report *rep, struct dsq_err *e);
/*
 * The same, also keeping every version >= pinned (0: none), e.g. the
 * oldest snapshot a daemon's readers and writers still use.
 */
dsq_rc dsq_db_gc_pinned(struct dsq_db *db, uint64_t keep_versions,
                        uint64_t keep_ms, uint64_t pinned, int dry_run,
                        struct dsq_gc_report *rep, struct dsq_err *e);
/*
 * The least age of a version gc may remove (DSQ_GC_MIN_RETENTION_MS), and
 * the least grace before an automatic sweep removes an orphan.  Builds
 * with fault points (DSQ_FAULTS, never a release) read a shorter one from
 * DSQLFS_TEST_MIN_AGE_MS, so tests exercise C9 in seconds; every process
 * of such a test must see the same value.
 */
uint64_t dsq_db_gc_min_retention_ms(void);

/* ---- history (db_history.c) ---- */

/*
 * The newest version committed at or before at_ms (ms since the epoch);
 * 0 in *version when the first version is younger (or none exists).  One
 * listing of manifests/, then a binary search by commit time (manifests
 * from the snapshot cache where they are in it).
 */
dsq_rc dsq_db_version_at(struct dsq_db *db, uint64_t at_ms, uint64_t *version,
                         struct dsq_err *e);

/* 1 in *exists if manifest `version` is in the store (one HEAD): a
   version gc removed is gone even when its snapshot is still cached. */
dsq_rc dsq_db_version_exists(struct dsq_db *db, uint64_t version, int *exists,
                             struct dsq_err *e);

/* ---- conflicts explained (db_history.c) ---- */

#define DSQ_CONFLICT_PAGES_MAX 64
/* Why a transaction was refused as a conflict. */
struct dsq_conflict {
    uint64_t snapshot;      /* the refused transaction's snapshot */
    uint64_t other_version; /* the first version since then that met it */
    char other_writer[33];  /* that version's writer id */
    uint64_t time_ms;       /* when it was refused */
    int page1;              /* they met on page 1 (schema, page count) */
    uint32_t pages[DSQ_CONFLICT_PAGES_MAX]; /* pages both wrote (sorted; the
                                               first ones) */
    size_t n_pages;
};
/* The last commit of this handle refused as a conflict: 1 (*out filled),
   or 0 if none was. */
int dsq_db_last_conflict(struct dsq_db *db, struct dsq_conflict *out);
/*
 * The first version in from+1..to that wrote or freed any of pages[0..n)
 * (sorted), or changed page 1 beyond its counters: *out filled (pages:
 * the ones it met).  out->other_version 0 if none did.
 */
dsq_rc dsq_db_conflict_find(struct dsq_db *db, uint64_t from, uint64_t to,
                            const uint32_t *pages, size_t n,
                            struct dsq_conflict *out, struct dsq_err *e);

struct dsq_page_owner; /* sqlitetree.h */
#define DSQ_OWNER_MAX_READS 4096
/*
 * The tables and indexes pages[0..n) belong to at version `version`
 * (sqlite_schema and the b-trees walked through the snapshot, at most
 * DSQ_OWNER_MAX_READS pages read; through the caches like any read).
 */
dsq_rc dsq_db_page_owners(struct dsq_db *db, uint64_t version,
                          const uint32_t *pages, size_t n,
                          struct dsq_page_owner *out, struct dsq_err *e);

/*
 * The tables and indexes version `version` changed (its write set, the
 * first DSQ_TABLES_PAGES_MAX pages, named at that version;
 * "sqlite_schema" first when page 1 changed beyond its counters), comma
 * separated and NUL-terminated, appended to out.
 */
#define DSQ_TABLES_PAGES_MAX 256
struct dsq_buf;
dsq_rc dsq_db_version_tables(struct dsq_db *db, uint64_t version,
                             struct dsq_buf *out, struct dsq_err *e);

/* ---- forks (db_fork.c) ---- */

struct dsq_fork_info {
    uint64_t version; /* the source version forked */
    char fork_id[33]; /* the pin's id (= the fork's incarnation) */
    uint32_t pages, page_size;
    uint64_t pages_copied; /* pages the source carried inline, copied */
    uint64_t bytes_copied;
};
/*
 * Make dst (no versions yet) a fork of src at version (DSQ_VERSION_LATEST:
 * the newest): dst's version 1 names src's checkpoint chunks and
 * segments ("../src/..." keys, manifest format 3), copying only the
 * pages src's manifests carry inline; a pin src/forks/{id}.json keeps
 * gc on src from removing that version.  Same store only
 * (DSQ_EUNSUPPORTED otherwise: copy with export and import).  The cost
 * does not depend on the database's size: a few requests.
 */
dsq_rc dsq_db_fork(struct dsq_db *src, uint64_t version, struct dsq_db *dst,
                   struct dsq_fork_info *info, struct dsq_err *e);

struct dsq_restore_info {
    uint64_t from;          /* the newest version when the restore began */
    uint64_t restored;      /* the version whose content was restored */
    uint64_t version;       /* the version the restore committed */
    uint64_t pages_written; /* pages that differed from the newest */
    int noop;
};
/*
 * Commit a new version whose content is version `version` (history stays;
 * nothing is rewritten).  Only pages stored elsewhere than in the newest
 * version are read and written; page 1's change counters move forward.
 * Any commit since the newest version seen is a conflict (DSQ_ECONFLICT,
 * nothing committed): the restore never rebases, so what it commits is
 * exactly that version.
 */
dsq_rc dsq_db_restore(struct dsq_db *db, uint64_t version,
                      struct dsq_restore_info *info, struct dsq_err *e);

/* Named fault points (crash tests): DSQ_FAULT_POINT("commit.after_segments")
   exits the process when the environment variable DSQLFS_FAULT names it. */
void dsq_fault_point(const char *name);
#ifdef DSQ_FAULTS
#define DSQ_FAULT_POINT(name) dsq_fault_point(name)
#else
#define DSQ_FAULT_POINT(name) ((void)0)
#endif

#endif
