/*
 * db_int.h - what the engine's files share: the handle and snapshot
 * structures, constants, and the helpers one file defines for the others.
 *
 * Layer: services, private to db.c (handle, store calls, caches,
 * snapshots, reads), db_page.c (page lookup), db_txn.c (write
 * transactions), db_commit.c (the commit protocol), db_upload.c
 * (segments, chunks, checkpoints), db_admin.c (versions, verify,
 * recovery scan, gc, FUSE helpers), db_history.c, db_fork.c, db_fresh.c
 * (freshness checks), db_read.c (bulk reads), db_hot.c (hot pages) and
 * db_par.c (requests side by side).  Nothing outside those files
 * includes it.
 */
#ifndef DSQ_DB_INT_H
#define DSQ_DB_INT_H

#include "db.h"

#include "cache.h"
#include "env.h"
#include "log.h"
#include "manifest.h"
#include "pgbuf.h"
#include "segment.h"
#include "sqlitefmt.h"

#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK_PAGES_DEFAULT 4096u
#define CHUNK_CACHE_MAX 128
#define SNAP_CACHE_MAX 32
#define OBJ_CAP (1024u * 1024u * 1024u) /* cap on one object read whole */
#define COALESCE_GAP (64u * 1024u)      /* merge reads across small gaps */
#define COALESCE_MAX (4u * 1024u * 1024u)
#define WRITE_THROUGH_MAX                                                      \
    (8u * 1024u * 1024u) /* uploads kept in the disk cache */

/* ------------------------------------------------------------------ */
/* 1. handle, keys, stats                                               */
/* ------------------------------------------------------------------ */

struct pc_entry { /* one cached page image */
    char *segkey; /* full object key */
    uint64_t offset;
    uint32_t pgno;
    uint64_t checksum;
    uint8_t *page;
    size_t cost;                  /* bytes it holds: page, key, entry */
    struct pc_entry *hnext;       /* hash chain */
    struct pc_entry *prev, *next; /* LRU list, most recent first */
};

struct chunk_entry {
    char *key; /* relative key */
    struct dsq_chunk *chunk;
    uint64_t stamp; /* LRU clock */
};

struct dsq_snap {
    struct dsq_db *db;
    atomic_int refs;
    uint64_t version;
    struct dsq_manifest *m;  /* NULL for version 0 (empty) */
    uint64_t epoch;          /* db->epoch when its manifest was read */
    char etag[DSQ_ETAG_MAX]; /* of manifests/v{version}; "" unknown */
};

/*
 * What the handle knows of the newest version (db_fresh.c): version N
 * was the newest when the request that told us was sent, at sent_ns on
 * the monotonic clock.  The identity of manifest N (etag, transaction,
 * incarnation) is what a later check compares to tell a database deleted
 * and created again from the one we know.
 */
struct dsq_head {
    uint64_t version;        /* 0: no version */
    char etag[DSQ_ETAG_MAX]; /* of manifests/v{version}; "" unknown */
    char txn_id[33];         /* "" unknown */
    char incarnation[33];    /* "" format 1 or unknown */
    uint64_t sent_ns;        /* 0: nothing confirmed yet */
};

struct dsq_db {
    struct dsq_store *st; /* borrowed */
    char *prefix;         /* "" or "a/b/name" */
    char writer_id[33];
    /* config values (copied) */
    unsigned checkpoint_interval;
    unsigned overlay_max;
    unsigned max_retries;
    double retry_base_s, retry_max_s;
    uint64_t store_timeout_ns; /* store_timeout: no retry after it */
    uint64_t segment_max;
    enum dsq_isolation isolation;
    int compress;
    uint64_t txn_mem;
    char *spill_dir;

    struct dsq_cache *dcache; /* on-disk cache, or NULL; thread-safe */
    uint64_t known_latest;    /* newest version seen to exist; guarded
                                 by mu */
    uint64_t root_written_ms; /* last root.json update; guarded by mu */
    /* freshness (db_fresh.c), guarded by mu */
    struct dsq_head head;      /* newest confirmed version */
    uint64_t epoch;            /* bumped when the database was found
                                  deleted or replaced */
    unsigned checks_inflight;  /* freshness checks being sent */
    uint64_t inflight_sent_ns; /* the newest one's send time */
    pthread_cond_t fresh_cv;   /* a check finished */
    uint64_t fresh_rtt_ns;     /* how long the last check took */
    uint64_t listed_ms;        /* when a listing last found the newest
                                  version (dsq_db_head_after) */

    pthread_mutex_t mu;
    struct dsq_db_stats stats;         /* guarded by mu */
    struct dsq_conflict last_conflict; /* guarded by mu (db_history.c) */
    int has_conflict;
    /* page cache: guarded by mu */
    struct pc_entry **pc_hash;
    size_t pc_nbuckets;
    struct pc_entry *pc_head, *pc_tail;
    size_t pc_count, pc_max;         /* entries; pc_max sizes the hash only */
    uint64_t pc_bytes, pc_max_bytes; /* held, bound (page_cache_bytes) */
    /* chunk cache: guarded by mu */
    struct chunk_entry chunks[CHUNK_CACHE_MAX];
    uint64_t chunk_clock;
    int chunks_warmed;          /* the first manifest's chunks were fetched */
    struct dsq__hot_table *hot; /* hot.seg's pages for one version */
    /* read-ahead of sequential bulk reads (db_read.c): guarded by mu */
    uint64_t ra_version;  /* the snapshot the last read was of */
    uint32_t ra_next;     /* the page after the last read */
    uint32_t ra_from;     /* the window being fetched: [ra_from, ra_end) */
    uint32_t ra_end;      /* pages before this are fetched ahead already */
    uint32_t ra_pages;    /* the window, 0 while reads are not sequential */
    uint32_t ra_seq;      /* reads in a row that followed the one before:
                             a window is fetched from the second on (one
                             near read is the kernel's read-ahead of a
                             point query's page as often as a scan) */
    unsigned ra_busy;     /* read-ahead threads running (at most 1) */
    pthread_cond_t ra_cv; /* ra_busy went down */
    /* snapshot cache: guarded by mu (holds one ref each) */
    struct dsq_snap *snaps[SNAP_CACHE_MAX];
    uint64_t snap_stamp[SNAP_CACHE_MAX];
    uint64_t snap_clock;
};

#define STAT_ADD(db, field, n)                                                 \
    do {                                                                       \
        pthread_mutex_lock(&(db)->mu);                                         \
        (db)->stats.field += (n);                                              \
        pthread_mutex_unlock(&(db)->mu);                                       \
    } while (0)

/* The chunk cache (db.c; db->mu held): the cached chunk or NULL; store
   takes ownership of c (freed if not kept) and returns what is cached. */
struct dsq_chunk *dsq__chunk_cached(struct dsq_db *db, const char *key);
struct dsq_chunk *dsq__chunk_store(struct dsq_db *db, const char *key,
                                   struct dsq_chunk *c);
/* A cold handle's first manifest: its chunks fetched at once (all of
   them if they fit the chunk cache, else those with the indexes idx[0..n)
   ; db_read.c; best effort). */
void dsq__warm_chunks(struct dsq_db *db, const struct dsq_manifest *m,
                      const uint32_t *idx, size_t n);
/* The version numbers under manifests/, ascending (db_admin.c); the
   caller frees l->v. */
struct dsq_vlist {
    uint64_t *v;
    size_t n, cap;
};
dsq_rc dsq__list_versions(struct dsq_db *db, struct dsq_vlist *l,
                          struct dsq_err *e);
/* Wait until no read-ahead of db runs (db_read.c; before closing). */
void dsq__readahead_wait(struct dsq_db *db);

/*
 * The chain of store requests in a row (stats.store_chain): a request's
 * depth is one more than the deepest of the requests that had ended when
 * it started, so overlapping requests share a depth and a request sent
 * after another's answer is one deeper.  Call begin right before the
 * store call and end right after it (db_par.c; what and key are logged
 * at debug level).
 */
uint64_t dsq__req_begin(struct dsq_db *db);
/*
 * Two requests sent at once from two threads: the started thread calls
 * dsq__go_mark(flag) before its request and dsq__go_done(flag) when it
 * ends (in case it sent none); the caller dsq__go_wait(flag) before its
 * own, so that its request is sent while the other is in flight, not
 * after it when the other thread ran first and fast.
 */
void dsq__go_mark(atomic_int *sent);
void dsq__go_wait(atomic_int *sent);
void dsq__go_done(atomic_int *sent);
void dsq__req_end(struct dsq_db *db, uint64_t depth, const char *what,
                  const char *key);

/*
 * fn(arg, i) for every i in [0, n), on min(n, max) threads (the caller's
 * among them) that start their first call together: thread t's first is
 * i = t, so requests meant to be sent at once are not sent one after the
 * other by a thread that was quicker to start than the others; the rest
 * go to whichever thread is free.  slot (< max) names the thread, for
 * what it keeps between its calls (db_par.c).
 */
void dsq__run_together(size_t n, size_t max,
                       void (*fn)(void *arg, size_t i, size_t slot), void *arg);

/* helpers defined in one of the three files for the others */
/* A growable list of owned strings. */
struct strlist {
    char **v;
    size_t n, cap;
};

/* A growable array of page locations. */
struct loclist {
    struct dsq_page_loc *v;
    size_t n, cap;
};

struct dsq_txn {
    struct dsq_db *db;
    struct dsq_snap *snap; /* owned reference */
    unsigned flags;
    char txn_id[33];
    uint32_t page_size;
    uint32_t page_count;
    uint32_t base_count; /* snapshot's page count */
    uint32_t low_water;  /* smallest page count set in this txn */
    int truncated;       /* set_page_count went below base_count */
    int finished;
    int has_mode;          /* dsq_txn_set_mode was called: */
    uint32_t mode;         /* its bits (else the base's are carried) */
    struct dsq_pgbuf *buf; /* normal mode */

    /* stream mode */
    struct dsq_seg_builder *sb;
    uint32_t last_pgno;
    uint8_t *page1;               /* copy of page 1 */
    uint32_t cur_chunk;           /* index of the chunk being filled */
    struct strlist cur_segs;      /* its segment table */
    struct loclist cur_locs;      /* its entries */
    struct dsq_chunk_ref *chunks; /* finished chunks */
    size_t n_chunks, cap_chunks;

    /* objects this transaction uploaded (relative keys) */
    struct uploader *up;  /* segment uploads in flight (db_commit.c) */
    struct strlist segs;  /* segments holding our pages */
    struct strlist extra; /* per-attempt objects (chunks, page-1) */
    uint64_t objects_written;
    uint64_t bytes_written;
};

typedef int (*dsq__rel_list_fn)(const char *rel, const struct dsq_objinfo *info,
                                void *arg);

void dsq__full_key(const struct dsq_db *db, const char *rel, char *out,
                   size_t outsz);
/*
 * After a transient store failure of attempt (0-based) of a call started
 * at start_ns: 1 if another attempt may follow (the backoff was slept,
 * never past the deadline), 0 if not (max_retries reached, or
 * store_timeout passed: e says so).
 */
int dsq__retry(struct dsq_db *db, unsigned attempt, uint64_t start_ns,
               struct dsq_err *e);
dsq_rc dsq__obj_get(struct dsq_db *db, const char *rel, uint64_t off,
                    uint64_t len, struct dsq_buf *out, struct dsq_objinfo *info,
                    struct dsq_err *e);
dsq_rc dsq__obj_put(struct dsq_db *db, const char *rel, const void *data,
                    size_t len, struct dsq_err *e);
dsq_rc dsq__obj_del(struct dsq_db *db, const char *rel, struct dsq_err *e);
dsq_rc dsq__list_rel(struct dsq_db *db, const char *relprefix,
                     const char *start_after_rel, dsq__rel_list_fn fn,
                     void *arg, struct dsq_err *e);
dsq_rc dsq__chunk_fetch(struct dsq_db *db, const struct dsq_chunk_ref *ref,
                        uint32_t page_size, uint32_t chunk_pages,
                        struct dsq_chunk **out, struct dsq_err *e);
dsq_rc dsq__load_manifest(struct dsq_db *db, uint64_t version,
                          struct dsq_manifest **out, struct dsq_err *e);
/* The same, with the object's metadata (etag) in *info. */
dsq_rc dsq__load_manifest_info(struct dsq_db *db, uint64_t version,
                               struct dsq_manifest **out,
                               struct dsq_objinfo *info, struct dsq_err *e);
/* A version this handle published (C3 included): head state, db_fresh.c. */
void dsq__note_published(struct dsq_db *db, const struct dsq_manifest *m,
                         const char *etag, uint64_t sent_ns);
/* dsq_db_latest, with the newest manifest's etag ("" unknown; may be
   NULL). */
dsq_rc dsq__latest(struct dsq_db *db, uint64_t *version,
                   char etag[DSQ_ETAG_MAX], struct dsq_err *e);
/*
 * Load manifests first..last (at most half the snapshot cache) into the
 * snapshot cache, several at once; best effort.
 */
void dsq__prefetch_versions(struct dsq_db *db, uint64_t first, uint64_t last);
/* Drop every cached snapshot (the database was replaced). */
void dsq__snap_cache_flush(struct dsq_db *db);
dsq_rc dsq__manifest_read_page(struct dsq_db *db, const struct dsq_manifest *m,
                               uint32_t pgno, void *buf, struct dsq_err *e);
/*
 * Cross-check manifest m against its own page 1: when page 1 is a SQLite
 * header whose in-header size is valid, the stored image must hold every
 * page of it (docs/format.md, "Cross-checks").  Reads page 1 (checked as
 * any page; a page 1 that cannot be read is left to whoever reads it);
 * DSQ_ECORRUPT naming the version when they disagree.  When
 * image_bytes is not NULL it receives the size page 1 gives the image in
 * bytes (0 if page 1 gives none).
 */
dsq_rc dsq__manifest_check_image(struct dsq_db *db,
                                 const struct dsq_manifest *m,
                                 uint64_t *image_bytes, struct dsq_err *e);
void dsq__note_latest(struct dsq_db *db, uint64_t v);
void dsq__pc_insert(struct dsq_db *db, const char *segkey,
                    const struct dsq_page_loc *loc, const void *page,
                    uint32_t page_size);
/* Read the page at a location (caches first); inc: the incarnation of the
   manifest naming it. */
dsq_rc dsq__read_loc(struct dsq_db *db, const char *segkey,
                     const struct dsq_page_loc *loc, uint32_t page_size,
                     const char *inc, void *out, struct dsq_err *e);
/* Bulk form: n locations (keys[i], locs[i]) into out (n pages). */
dsq_rc dsq__read_locs(struct dsq_db *db, size_t n, char *const *keys,
                      const struct dsq_page_loc *locs, uint32_t ps,
                      const char *inc, uint8_t *out, struct dsq_err *e);
/* ---- db.c helpers for db_read.c (bulk reads) ---- */

/* Copy a cached page out if its number and checksum match; 1 on hit. */
int dsq__pc_lookup(struct dsq_db *db, const char *segkey,
                   const struct dsq_page_loc *loc, void *out,
                   uint32_t page_size);
/* 1 if the page cache holds the page at loc (nothing copied, LRU kept). */
int dsq__pc_has(struct dsq_db *db, const char *segkey,
                const struct dsq_page_loc *loc);
/* Count page reads served locally (hits) and by the store (misses). */
void dsq__count_reads(struct dsq_db *db, uint64_t hits, uint64_t misses);
/* The entry for pgno in a chunk object, loading the chunk on a miss; the
   location and its full segment key are copied out.  DSQ_ENOTFOUND if the
   chunk has no entry for pgno. */
dsq_rc dsq__chunk_lookup(struct dsq_db *db, const struct dsq_chunk_ref *ref,
                         uint32_t page_size, uint32_t chunk_pages,
                         uint32_t pgno, struct dsq_page_loc *loc, char *segkey,
                         size_t segkey_sz, struct dsq_err *e);
/* pgno's entry in v[0..n) sorted by page number, or NULL. */
const struct dsq_page_loc *dsq__find_loc(const struct dsq_page_loc *v, size_t n,
                                         uint32_t pgno);
/* The cached snapshot of version (a reference), or NULL; db->mu NOT held. */
struct dsq_snap *dsq__snap_cache_get(struct dsq_db *db, uint64_t version);
/* Where page pgno of m is (*found = 0: zero-filled). */
dsq_rc dsq__locate(struct dsq_db *db, const struct dsq_manifest *m,
                   uint32_t pgno, struct dsq_page_loc *loc, char *segkey,
                   size_t segkey_sz, int *found, struct dsq_err *e);
/* The same from what is at hand (the manifest, cached chunks), no store
   call: 1 with the location, 0 if zero-filled or its chunk is not
   cached. */
int dsq__locate_cached(struct dsq_db *db, const struct dsq_manifest *m,
                       uint32_t pgno, struct dsq_page_loc *loc, char *segkey,
                       size_t segkey_sz);
/* ---- db_hot.c: the hot pages of a cold open ---- */
/* Start fetching hot.seg (NULL if it could not start); finish: wait for
   it, and put the pages of it that m's own locations confirm into the
   page cache (how many in stats.hot_pages).  Best effort. */
struct dsq__hot_fetch;
struct dsq__hot_table;
void dsq__hot_free(struct dsq__hot_table *t);
/* A page of m from the hot table (its version's map was what hot.seg was
   written for): 1 with out filled, else 0. */
int dsq__hot_page(struct dsq_db *db, const struct dsq_manifest *m,
                  uint32_t pgno, void *out);
struct dsq__hot_fetch *dsq__hot_start(struct dsq_db *db);
void dsq__hot_finish(struct dsq_db *db, struct dsq__hot_fetch *h,
                     const struct dsq_manifest *m);
/* The disk cache's copy of a page, verified (1), a miss (0) or damaged
   (-1: fetch it again, which repairs it, and log that). */
int dsq__disk_cached_page(struct dsq_db *db, const char *segkey,
                          const struct dsq_page_loc *loc, uint32_t page_size,
                          void *out, const char *full, struct dsq_buf *buf);
/* Log that n damaged disk-cache copies of pages of full were repaired. */
void dsq__log_cache_repair(const char *full, uint32_t pgno, size_t n);
/* A page carried inline: from the object's bytes at its offset. */
dsq_rc dsq__inline_decode(const char *text, size_t len,
                          const struct dsq_page_loc *loc, uint32_t page_size,
                          void *out, const char *full, struct dsq_err *e);
/* A page carried inline by a manifest in the snapshot cache: 1. */
int dsq__inline_cached(struct dsq_db *db, const char *segkey,
                       const struct dsq_page_loc *loc, uint32_t page_size,
                       const char *inc, void *out);

/* ---- db_upload.c: segments, chunks, checkpoints ---- */

/* Interning of segment keys into a manifest's or chunk's key table. */
struct keytab {
    struct strlist l;
};
dsq_rc dsq__keytab_idx(struct keytab *kt, const char *key, uint32_t *idx);
dsq_rc dsq__loclist_add(struct loclist *l, const struct dsq_page_loc *loc);

/* Upload an immutable object under a fresh key (dir "segments" or
   "pagetables", ext "seg" or "ptc"); remember it in list. */
dsq_rc dsq__upload_new(struct dsq_txn *t, const char *dir, const char *ext,
                       const struct dsq_buf *data, struct strlist *list,
                       char key_out[96], struct dsq_err *e);
/* Where an uploaded segment's pages are: called once per page. */
typedef dsq_rc (*loc_sink)(struct dsq_txn *t, void *arg,
                           const struct dsq_page_loc *loc, const char *segkey,
                           struct dsq_err *e);
/* Finish sb, queue it as a segment (listed in t->segs now), report each
   page through sink; the upload completes in dsq__uploads_wait. */
dsq_rc dsq__upload_segment(struct dsq_txn *t, struct dsq_seg_builder *sb,
                           loc_sink sink, void *arg, struct dsq_err *e);
/* Wait for the queued uploads (C1); the first failure, if any. */
dsq_rc dsq__uploads_wait(struct dsq_txn *t, struct dsq_err *e);
/* Stream mode: the size a segment is cut at (<= segment_max_bytes). */
uint64_t dsq__stream_segment_max(const struct dsq_db *db);
/* Stream mode: upload the segment being filled; finish the chunk. */
dsq_rc dsq__stream_flush_segment(struct dsq_txn *t, struct dsq_err *e);
dsq_rc dsq__stream_finish_chunk(struct dsq_txn *t, struct dsq_err *e);
/*
 * Checkpoint nm (built on bm): inline pages moved to a segment, chunks
 * the overlay touches rewritten, the overlay emptied; new objects go to
 * objs.
 */
dsq_rc dsq__checkpoint(struct dsq_txn *t, const struct dsq_manifest *bm,
                       struct dsq_manifest *nm, struct strlist *objs,
                       struct dsq_err *e);

/* A page location's key names a manifest carrying the page inline. */
static inline int dsq__is_inline_key(const char *key)
{
    return strncmp(key, "manifests/", 10) == 0;
}
void dsq__snap_cache_put(struct dsq_db *db, struct dsq_snap *s);
/* db_fork.c: the full key of another database's object ("../src/...",
   docs/format.md section 9), for dsq__full_key. */
void dsq__foreign_full_key(const struct dsq_db *db, const char *rel, char *out,
                           size_t outsz);
/* db_fork.c: a chunk fetched by a foreign key names segments relative to
   its own database: make them relative to this one.  0, or -1. */
int dsq__chunk_rebase(struct dsq_chunk *c, const char *chunk_key);
/* db_fork.c: the oldest version a fork pins (UINT64_MAX: none), and how
   many pins there are (n may be NULL).  One LIST of forks/ plus a GET
   per pin. */
dsq_rc dsq__fork_pins_min(struct dsq_db *db, uint64_t *min, size_t *n,
                          struct dsq_err *e);
/* db_history.c: a commit on snapshot `snapshot` was refused for version
   x (conf: our pages, sorted; page1: the collision was on page 1). */
void dsq__note_conflict(struct dsq_db *db, uint64_t snapshot,
                        const struct dsq_manifest *x, const uint32_t *conf,
                        size_t n_conf, int page1);
/* 1 if the transaction changes the database's mode (db_txn.c). */
int dsq__txn_mode_changes(const struct dsq_txn *t);

dsq_rc dsq__strlist_add(struct strlist *l, const char *s);
void dsq__strlist_free(struct strlist *l);
dsq_rc dsq__read_gc_floor(struct dsq_db *db, uint64_t *floor,
                          struct dsq_objinfo *info, struct dsq_err *e);

#endif
