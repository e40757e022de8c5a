/*
 * db.c - the engine: versions, snapshots, page reads, transactions and the
 * commit protocol over the store interface.
 *
 * Layer: services.  Calls store.h (objects), manifest.h and segment.h
 * (codecs), sqlitefmt.h (page-1 and freelist rules), pgbuf.h (dirty pages).
 * Protocol, states and numbered invariants: docs/commit.md; the code cites
 * them as (C1)...
 *
 * Sections, in order:
 *   1. handle, keys, stats
 *   2. store calls with retry and backoff
 *   3. caches (pages, chunks, snapshots)
 *   4. versions and snapshots
 *   5. page lookup and reads
 *   6. transactions
 *   7. commit: effects, segments, manifest building, checkpoints, publish
 *   8. admin: versions, verify, recovery scan, fault points
 *
 * Locking: db->mu guards the caches and stats.  It is never held across a
 * store call.  Snapshots are immutable after creation; their refcount is
 * atomic.
 */
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
#define CHUNK_CACHE_MAX 64
#define SNAP_CACHE_MAX 32
#define OBJ_CAP (1024u * 1024u * 1024u) /* cap on one object read whole */
#define COALESCE_GAP (64u * 1024u)      /* merge reads across small gaps */
#define COALESCE_MAX (2u * 1024u * 1024u)
#define WRITE_THROUGH_MAX                                                      \
    (8u * 1024u * 1024u) /* uploads kept in the disk cache */

/* ------------------------------------------------------------------ */
/* 1. handle, keys, stats                                               */
/* ------------------------------------------------------------------ */

struct pc_entry { /* one cached page image */
    char *segkey; /* full object key */
    uint64_t offset;
    uint32_t pgno;
    uint8_t *page;
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
    struct dsq_manifest *m; /* NULL for version 0 (empty) */
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
    uint64_t segment_max;
    enum dsq_isolation isolation;
    int compress;
    uint64_t txn_mem;
    char *spill_dir;

    struct dsq_cache *dcache; /* on-disk cache, or NULL; thread-safe */
    uint64_t known_latest;    /* newest version seen to exist; guarded
                                 by mu */
    uint64_t root_written_ms; /* last root.json update; guarded by mu */

    pthread_mutex_t mu;
    struct dsq_db_stats stats; /* guarded by mu */
    /* page cache: guarded by mu */
    struct pc_entry **pc_hash;
    size_t pc_nbuckets;
    struct pc_entry *pc_head, *pc_tail;
    size_t pc_count, pc_max;
    /* chunk cache: guarded by mu */
    struct chunk_entry chunks[CHUNK_CACHE_MAX];
    uint64_t chunk_clock;
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

/* Full store key of a key relative to the database prefix. */
static void full_key(const struct dsq_db *db, const char *rel, char *out,
                     size_t outsz)
{
    if (db->prefix[0])
        snprintf(out, outsz, "%s/%s", db->prefix, rel);
    else
        snprintf(out, outsz, "%s", rel);
}

/*
 * The disk cache: on by default for remote stores, off for file:// (the
 * objects are local already), forced either way by the disk_cache option.
 * A cache that cannot be opened is logged and skipped.
 */
static void open_disk_cache(struct dsq_db *db, const struct dsq_config *cfg)
{
    int on = cfg->disk_cache;
    if (on < 0)
        on = strcmp(db->st->ops->name, "file") != 0;
    if (!on || cfg->disk_cache_bytes == 0)
        return;
    char dir[4096];
    const char *home = getenv("HOME");
    if (cfg->cache_dir)
        snprintf(dir, sizeof(dir), "%s", cfg->cache_dir);
    else
        snprintf(dir, sizeof(dir), "%s/.distributed_sqlite/cache",
                 home && *home ? home : "/tmp");
    char ns[DSQ_KEY_MAX + 1024];
    snprintf(ns, sizeof(ns), "%s|%s", db->st->url ? db->st->url : "",
             db->prefix);
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_cache_open(dir, ns, cfg->disk_cache_bytes, &db->dcache, &e);
    if (rc != DSQ_OK)
        dsq_log(DSQ_LOG_WARNING, "cache", "disk cache off: %s",
                dsq_err_text(&e, rc));
}

dsq_rc dsq_db_open(struct dsq_store *st, const char *prefix,
                   const struct dsq_config *cfg, struct dsq_db **out,
                   struct dsq_err *e)
{
    if (!prefix)
        prefix = "";
    size_t plen = strlen(prefix);
    if (plen > 512 || (plen && (prefix[0] == '/' || prefix[plen - 1] == '/')))
        return dsq_err_set(e, DSQ_EINVAL, "invalid database prefix '%s'",
                           prefix);
    if (plen) {
        char probe[DSQ_KEY_MAX];
        snprintf(probe, sizeof(probe), "%s/root.json", prefix);
        if (!dsq_store_key_valid(probe))
            return dsq_err_set(e, DSQ_EINVAL, "invalid database prefix '%s'",
                               prefix);
    }
    struct dsq_db *db = calloc(1, sizeof(*db));
    if (!db)
        return DSQ_ENOMEM;
    db->st = st;
    db->prefix = strdup(prefix);
    dsq_random_hex32(db->writer_id);
    struct dsq_config defaults;
    if (!cfg) {
        dsq_config_init(&defaults);
        cfg = &defaults;
    }
    db->checkpoint_interval = cfg->checkpoint_interval;
    db->overlay_max = cfg->overlay_max_pages;
    db->max_retries = cfg->max_retries;
    db->retry_base_s = cfg->retry_base_s;
    db->retry_max_s = cfg->retry_max_s;
    db->segment_max = cfg->segment_max_bytes;
    db->isolation = cfg->isolation;
    db->compress = cfg->compress;
    db->txn_mem = cfg->txn_mem_bytes;
    if (cfg->cache_dir)
        db->spill_dir = strdup(cfg->cache_dir);
    db->pc_max = cfg->page_cache_bytes / 4096;
    if (db->pc_max < 16)
        db->pc_max = 16;
    db->pc_nbuckets = 1024;
    while (db->pc_nbuckets < db->pc_max && db->pc_nbuckets < (1u << 22))
        db->pc_nbuckets *= 2;
    db->pc_hash = calloc(db->pc_nbuckets, sizeof(*db->pc_hash));
    pthread_mutex_init(&db->mu, NULL);
    if (!db->prefix || !db->pc_hash || (cfg->cache_dir && !db->spill_dir)) {
        dsq_db_close(db);
        return DSQ_ENOMEM;
    }
    open_disk_cache(db, cfg);
    *out = db;
    return DSQ_OK;
}

static void snap_free(struct dsq_snap *s)
{
    dsq_manifest_free(s->m);
    free(s);
}

void dsq_db_close(struct dsq_db *db)
{
    if (!db)
        return;
    for (struct pc_entry *p = db->pc_head, *n; p; p = n) {
        n = p->next;
        free(p->segkey);
        free(p->page);
        free(p);
    }
    free(db->pc_hash);
    for (int i = 0; i < CHUNK_CACHE_MAX; i++) {
        free(db->chunks[i].key);
        dsq_chunk_free(db->chunks[i].chunk);
    }
    for (int i = 0; i < SNAP_CACHE_MAX; i++)
        if (db->snaps[i])
            dsq_snap_release(db->snaps[i]);
    pthread_mutex_destroy(&db->mu);
    dsq_cache_close(db->dcache);
    free(db->spill_dir);
    free(db->prefix);
    free(db);
}

const char *dsq_db_prefix(const struct dsq_db *db)
{
    return db->prefix;
}

const char *dsq_db_writer_id(const struct dsq_db *db)
{
    return db->writer_id;
}

void dsq_db_get_stats(struct dsq_db *db, struct dsq_db_stats *out)
{
    pthread_mutex_lock(&db->mu);
    *out = db->stats;
    pthread_mutex_unlock(&db->mu);
}

/* ------------------------------------------------------------------ */
/* 2. store calls with retry and backoff                                */
/* ------------------------------------------------------------------ */

/* Full jitter: sleep a uniform time in [0, min(max, base * 2^attempt)). */
static void backoff(const struct dsq_db *db, unsigned attempt)
{
    double cap = db->retry_base_s * pow(2.0, (double)attempt);
    if (cap > db->retry_max_s)
        cap = db->retry_max_s;
    uint64_t ms = (uint64_t)(cap * 1000.0);
    if (ms > 0)
        dsq_env.sleep_ms(dsq_random_below(ms + 1));
}

/* GET (whole or range) of a relative key, retrying transient failures. */
static dsq_rc obj_get(struct dsq_db *db, const char *rel, uint64_t off,
                      uint64_t len, struct dsq_buf *out,
                      struct dsq_objinfo *info, struct dsq_err *e)
{
    char key[DSQ_KEY_MAX];
    full_key(db, rel, key, sizeof(key));
    dsq_rc rc;
    for (unsigned attempt = 0;; attempt++) {
        size_t before = out->len;
        rc = dsq_store_get(db->st, key, off, len, out, info, e);
        STAT_ADD(db, store_gets, 1);
        if (rc == DSQ_OK) {
            STAT_ADD(db, bytes_read, out->len - before);
            return rc;
        }
        out->len = before;
        if (rc != DSQ_ETRANSIENT || attempt >= db->max_retries)
            return rc;
        STAT_ADD(db, retries, 1);
        backoff(db, attempt);
    }
}

/* Idempotent PUT (unconditional) of a relative key, with retries. */
static dsq_rc obj_put(struct dsq_db *db, const char *rel, const void *data,
                      size_t len, struct dsq_err *e)
{
    char key[DSQ_KEY_MAX];
    full_key(db, rel, key, sizeof(key));
    dsq_rc rc;
    for (unsigned attempt = 0;; attempt++) {
        rc = dsq_store_put(db->st, key, data, len, DSQ_PUT_ANY, NULL, NULL, e);
        STAT_ADD(db, store_puts, 1);
        if (rc == DSQ_OK) {
            STAT_ADD(db, bytes_written, len);
            return rc;
        }
        if (rc != DSQ_ETRANSIENT || attempt >= db->max_retries)
            return rc;
        STAT_ADD(db, retries, 1);
        backoff(db, attempt);
    }
}

static dsq_rc obj_del(struct dsq_db *db, const char *rel, struct dsq_err *e)
{
    char key[DSQ_KEY_MAX];
    full_key(db, rel, key, sizeof(key));
    dsq_rc rc;
    for (unsigned attempt = 0;; attempt++) {
        rc = dsq_store_del(db->st, key, e);
        STAT_ADD(db, store_dels, 1);
        if (rc != DSQ_ETRANSIENT || attempt >= db->max_retries)
            return rc;
        STAT_ADD(db, retries, 1);
        backoff(db, attempt);
    }
}

static dsq_rc obj_list(struct dsq_db *db, const struct dsq_list_req *req,
                       struct dsq_list_page *out, struct dsq_err *e)
{
    dsq_rc rc;
    for (unsigned attempt = 0;; attempt++) {
        memset(out, 0, sizeof(*out));
        rc = dsq_store_list(db->st, req, out, e);
        STAT_ADD(db, store_lists, 1);
        if (rc != DSQ_ETRANSIENT || attempt >= db->max_retries)
            return rc;
        STAT_ADD(db, retries, 1);
        backoff(db, attempt);
    }
}

/*
 * List every key under a relative prefix (e.g. "manifests/"), starting
 * after a relative key; fn gets the key relative to the db prefix.
 */
typedef int (*rel_list_fn)(const char *rel, const struct dsq_objinfo *info,
                           void *arg);
static dsq_rc list_rel(struct dsq_db *db, const char *relprefix,
                       const char *start_after_rel, rel_list_fn fn, void *arg,
                       struct dsq_err *e)
{
    char prefix[DSQ_KEY_MAX], after[DSQ_KEY_MAX];
    full_key(db, relprefix, prefix, sizeof(prefix));
    if (start_after_rel)
        full_key(db, start_after_rel, after, sizeof(after));
    size_t skip = db->prefix[0] ? strlen(db->prefix) + 1 : 0;
    char *token = NULL;
    dsq_rc rc = DSQ_OK;
    for (;;) {
        struct dsq_list_req req = {.prefix = prefix,
                                   .start_after =
                                       start_after_rel ? after : NULL,
                                   .token = token};
        struct dsq_list_page page;
        rc = obj_list(db, &req, &page, e);
        free(token);
        token = NULL;
        if (rc != DSQ_OK)
            return rc;
        int stop = 0;
        for (size_t i = 0; i < page.n_entries && !stop; i++) {
            const char *k = page.entries[i].key;
            if (strncmp(k, prefix, strlen(prefix)) != 0)
                continue;
            stop = fn(k + skip, &page.entries[i].info, arg);
        }
        if (!stop && page.next_token) {
            token = page.next_token;
            page.next_token = NULL;
        }
        dsq_list_page_cleanup(&page);
        if (stop || !token)
            return DSQ_OK;
    }
}

/* ------------------------------------------------------------------ */
/* 3. caches                                                            */
/* ------------------------------------------------------------------ */

static size_t pc_hash_of(const char *segkey, uint64_t offset)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = segkey; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 1099511628211ull;
    }
    h ^= offset;
    h *= 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

/* Caller holds db->mu. */
static struct pc_entry *pc_find(struct dsq_db *db, const char *segkey,
                                uint64_t offset, size_t *bucket)
{
    *bucket = pc_hash_of(segkey, offset) & (db->pc_nbuckets - 1);
    for (struct pc_entry *p = db->pc_hash[*bucket]; p; p = p->hnext)
        if (p->offset == offset && strcmp(p->segkey, segkey) == 0)
            return p;
    return NULL;
}

static void pc_unlink_lru(struct dsq_db *db, struct pc_entry *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        db->pc_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        db->pc_tail = p->prev;
    p->prev = p->next = NULL;
}

static void pc_push_front(struct dsq_db *db, struct pc_entry *p)
{
    p->next = db->pc_head;
    p->prev = NULL;
    if (db->pc_head)
        db->pc_head->prev = p;
    db->pc_head = p;
    if (!db->pc_tail)
        db->pc_tail = p;
}

/* Copy a cached page out; 1 on hit. */
static int pc_lookup(struct dsq_db *db, const char *segkey, uint64_t offset,
                     uint32_t pgno, void *out, uint32_t page_size)
{
    size_t b;
    int hit = 0;
    pthread_mutex_lock(&db->mu);
    struct pc_entry *p = pc_find(db, segkey, offset, &b);
    if (p && p->pgno == pgno) {
        memcpy(out, p->page, page_size);
        pc_unlink_lru(db, p);
        pc_push_front(db, p);
        db->stats.cache_hits++;
        hit = 1;
    } else {
        db->stats.cache_misses++;
    }
    pthread_mutex_unlock(&db->mu);
    return hit;
}

static void pc_insert(struct dsq_db *db, const char *segkey, uint64_t offset,
                      uint32_t pgno, const void *page, uint32_t page_size)
{
    struct pc_entry *n = calloc(1, sizeof(*n));
    if (!n)
        return;
    n->segkey = strdup(segkey);
    n->page = malloc(page_size);
    if (!n->segkey || !n->page) {
        free(n->segkey);
        free(n->page);
        free(n);
        return;
    }
    n->offset = offset;
    n->pgno = pgno;
    memcpy(n->page, page, page_size);
    size_t b;
    pthread_mutex_lock(&db->mu);
    if (pc_find(db, segkey, offset, &b)) {
        pthread_mutex_unlock(&db->mu);
        free(n->segkey);
        free(n->page);
        free(n);
        return;
    }
    n->hnext = db->pc_hash[b];
    db->pc_hash[b] = n;
    pc_push_front(db, n);
    db->pc_count++;
    while (db->pc_count > db->pc_max && db->pc_tail) {
        struct pc_entry *v = db->pc_tail;
        size_t vb;
        pc_find(db, v->segkey, v->offset, &vb);
        struct pc_entry **pp = &db->pc_hash[vb];
        while (*pp != v)
            pp = &(*pp)->hnext;
        *pp = v->hnext;
        pc_unlink_lru(db, v);
        free(v->segkey);
        free(v->page);
        free(v);
        db->pc_count--;
    }
    pthread_mutex_unlock(&db->mu);
}

/*
 * Find the entry for pgno in a chunk object, loading it on a miss.  The
 * location and its full segment key are copied out, so nothing borrowed
 * survives the lock.  DSQ_ENOTFOUND if the chunk has no entry for pgno.
 */
static dsq_rc chunk_lookup(struct dsq_db *db, const struct dsq_chunk_ref *ref,
                           uint32_t page_size, uint32_t chunk_pages,
                           uint32_t pgno, struct dsq_page_loc *loc,
                           char *segkey, size_t segkey_sz, struct dsq_err *e);

static int loc_cmp_pgno(const void *k, const void *el)
{
    uint32_t p = *(const uint32_t *)k;
    const struct dsq_page_loc *l = el;
    return p < l->pgno ? -1 : p > l->pgno;
}

static const struct dsq_page_loc *find_loc(const struct dsq_page_loc *v,
                                           size_t n, uint32_t pgno)
{
    if (n == 0)
        return NULL;
    return bsearch(&pgno, v, n, sizeof(*v), loc_cmp_pgno);
}

/* Load, verify and decode a chunk object (no caching). */
static dsq_rc chunk_fetch(struct dsq_db *db, const struct dsq_chunk_ref *ref,
                          uint32_t page_size, uint32_t chunk_pages,
                          struct dsq_chunk **out, struct dsq_err *e)
{
    struct dsq_buf buf;
    dsq_buf_init(&buf, OBJ_CAP);
    dsq_rc rc = DSQ_OK;
    int from_disk = 0;
    if (db->dcache && ref->size > 0 && ref->size <= OBJ_CAP &&
        dsq_buf_reserve(&buf, (size_t)ref->size) == DSQ_OK &&
        dsq_cache_read(db->dcache, ref->key, 0, (size_t)ref->size, buf.data)) {
        buf.len = (size_t)ref->size;
        if (dsq_object_checksum(buf.data, buf.len) == ref->checksum)
            from_disk = 1;
        else
            dsq_cache_note_bad(db->dcache);
    }
    if (!from_disk) {
        buf.len = 0;
        rc = obj_get(db, ref->key, 0, 0, &buf, NULL, e);
    }
    if (rc == DSQ_ENOTFOUND) {
        rc = DSQ_CORRUPT(e, "page-table chunk %s/%s is missing", db->prefix,
                         ref->key);
        goto out;
    }
    if (rc != DSQ_OK)
        goto out;
    if (!from_disk && buf.len == ref->size &&
        dsq_object_checksum(buf.data, buf.len) == ref->checksum)
        dsq_cache_write(db->dcache, ref->key, 0, buf.data, buf.len);
    if (buf.len != ref->size ||
        dsq_object_checksum(buf.data, buf.len) != ref->checksum) {
        rc = DSQ_CORRUPT(e,
                         "page-table chunk %s/%s: size or checksum does "
                         "not match its manifest",
                         db->prefix, ref->key);
        goto out;
    }
    struct dsq_chunk *c = NULL;
    rc = dsq_chunk_decode(buf.data, buf.len, ref->key, &c, e);
    if (rc != DSQ_OK)
        goto out;
    if (c->index != ref->index || c->page_size != page_size ||
        c->chunk_pages != chunk_pages) {
        dsq_chunk_free(c);
        rc = DSQ_CORRUPT(e,
                         "page-table chunk %s/%s does not match its "
                         "manifest (index, page size or chunk size)",
                         db->prefix, ref->key);
        goto out;
    }
    *out = c;
out:
    dsq_buf_cleanup(&buf);
    return rc;
}

/* Caller holds db->mu.  Returns the cached chunk or NULL. */
static struct dsq_chunk *chunk_cached(struct dsq_db *db, const char *key)
{
    for (int i = 0; i < CHUNK_CACHE_MAX; i++)
        if (db->chunks[i].key && strcmp(db->chunks[i].key, key) == 0) {
            db->chunks[i].stamp = ++db->chunk_clock;
            return db->chunks[i].chunk;
        }
    return NULL;
}

/* Caller holds db->mu.  Takes ownership of c (frees it if not kept). */
static struct dsq_chunk *chunk_store(struct dsq_db *db, const char *key,
                                     struct dsq_chunk *c)
{
    struct dsq_chunk *have = chunk_cached(db, key);
    if (have) {
        dsq_chunk_free(c);
        return have;
    }
    char *k = strdup(key);
    if (!k)
        return NULL; /* caller still owns c: see below */
    int victim = 0;
    for (int i = 0; i < CHUNK_CACHE_MAX; i++) {
        if (!db->chunks[i].key) {
            victim = i;
            break;
        }
        if (db->chunks[i].stamp < db->chunks[victim].stamp)
            victim = i;
    }
    free(db->chunks[victim].key);
    dsq_chunk_free(db->chunks[victim].chunk);
    db->chunks[victim].key = k;
    db->chunks[victim].chunk = c;
    db->chunks[victim].stamp = ++db->chunk_clock;
    return c;
}

static dsq_rc chunk_lookup(struct dsq_db *db, const struct dsq_chunk_ref *ref,
                           uint32_t page_size, uint32_t chunk_pages,
                           uint32_t pgno, struct dsq_page_loc *loc,
                           char *segkey, size_t segkey_sz, struct dsq_err *e)
{
    pthread_mutex_lock(&db->mu);
    struct dsq_chunk *c = chunk_cached(db, ref->key);
    if (!c) {
        pthread_mutex_unlock(&db->mu);
        struct dsq_chunk *fresh = NULL;
        dsq_rc rc = chunk_fetch(db, ref, page_size, chunk_pages, &fresh, e);
        if (rc != DSQ_OK)
            return rc;
        pthread_mutex_lock(&db->mu);
        c = chunk_store(db, ref->key, fresh);
        if (!c) {
            pthread_mutex_unlock(&db->mu);
            dsq_chunk_free(fresh);
            return DSQ_ENOMEM;
        }
    }
    const struct dsq_page_loc *l = find_loc(c->entries, c->n_entries, pgno);
    dsq_rc rc = DSQ_ENOTFOUND;
    if (l) {
        *loc = *l;
        snprintf(segkey, segkey_sz, "%s", c->segments[l->seg]);
        rc = DSQ_OK;
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

/* ------------------------------------------------------------------ */
/* 4. versions and snapshots                                            */
/* ------------------------------------------------------------------ */

dsq_rc dsq_db_init(struct dsq_db *db, int *created, struct dsq_err *e)
{
    struct dsq_root r = {.version = 0, .time_ms = dsq_now_ms()};
    struct dsq_buf buf;
    char key[DSQ_KEY_MAX];
    dsq_buf_init(&buf, 4096);
    dsq_rc rc = dsq_root_encode(&r, &buf, e);
    if (rc != DSQ_OK)
        goto out;
    full_key(db, "root.json", key, sizeof(key));
    for (unsigned attempt = 0;; attempt++) {
        rc = dsq_store_put(db->st, key, buf.data, buf.len, DSQ_PUT_CREATE, NULL,
                           NULL, e);
        STAT_ADD(db, store_puts, 1);
        if (rc != DSQ_ETRANSIENT || attempt >= db->max_retries)
            break;
        /* outcome unknown: the next create-only attempt tells us */
        backoff(db, attempt);
    }
    if (rc == DSQ_EPRECOND) {
        if (created)
            *created = 0;
        rc = DSQ_OK;
    } else if (rc == DSQ_OK && created) {
        *created = 1;
    }
out:
    dsq_buf_cleanup(&buf);
    return rc;
}

static int any_fn(const char *rel, const struct dsq_objinfo *info, void *arg)
{
    (void)rel;
    (void)info;
    *(int *)arg = 1;
    return 1;
}

dsq_rc dsq_db_exists(struct dsq_db *db, int *exists, struct dsq_err *e)
{
    struct dsq_objinfo info;
    char key[DSQ_KEY_MAX];
    full_key(db, "root.json", key, sizeof(key));
    dsq_rc rc = dsq_store_head(db->st, key, &info, e);
    STAT_ADD(db, store_heads, 1);
    if (rc == DSQ_OK) {
        *exists = 1;
        return DSQ_OK;
    }
    if (rc != DSQ_ENOTFOUND)
        return rc;
    int any = 0;
    rc = list_rel(db, "manifests/", NULL, any_fn, &any, e);
    if (rc == DSQ_OK)
        *exists = any;
    return rc;
}

/* Read root.json; 0 if missing or unreadable (it is only a hint). */
static uint64_t read_hint(struct dsq_db *db, dsq_rc *hard, struct dsq_err *e)
{
    struct dsq_buf buf;
    struct dsq_root r;
    uint64_t v = 0;
    dsq_buf_init(&buf, 65536);
    *hard = DSQ_OK;
    dsq_rc rc = obj_get(db, "root.json", 0, 0, &buf, NULL, e);
    if (rc == DSQ_OK) {
        struct dsq_err ignore;
        if (dsq_root_decode(buf.data, buf.len, "root.json", &r, &ignore) ==
            DSQ_OK)
            v = r.version;
        else
            dsq_log(DSQ_LOG_WARNING, "db",
                    "%s/root.json is unreadable; "
                    "finding the newest version by listing",
                    db->prefix);
    } else if (rc != DSQ_ENOTFOUND && rc != DSQ_ERANGE) {
        *hard = rc;
    }
    dsq_buf_cleanup(&buf);
    return v;
}

struct scan_state {
    uint64_t first, max, count;
};

static int scan_fn(const char *rel, const struct dsq_objinfo *info, void *arg)
{
    struct scan_state *s = arg;
    uint64_t v;
    (void)info;
    if (dsq_manifest_key_parse(rel, &v) != 0)
        return 0; /* not a manifest key: ignore */
    if (s->count == 0)
        s->first = v;
    if (v > s->max)
        s->max = v;
    s->count++;
    return 0;
}

static void note_latest(struct dsq_db *db, uint64_t v)
{
    pthread_mutex_lock(&db->mu);
    if (v > db->known_latest)
        db->known_latest = v;
    pthread_mutex_unlock(&db->mu);
}

dsq_rc dsq_db_latest(struct dsq_db *db, uint64_t *version, struct dsq_err *e)
{
    struct scan_state s = {0};
    dsq_rc rc;
    /* a version this handle saw is as good a start as root.json's hint,
       and saves reading it: one LIST */
    pthread_mutex_lock(&db->mu);
    uint64_t known = db->known_latest;
    pthread_mutex_unlock(&db->mu);
    if (known > 0) {
        char after[64];
        dsq_manifest_key(known - 1, after);
        rc = list_rel(db, "manifests/", after, scan_fn, &s, e);
        if (rc != DSQ_OK)
            return rc;
        if (s.count > 0 && s.first == known) {
            note_latest(db, s.max);
            *version = s.max;
            return DSQ_OK;
        }
        memset(&s, 0, sizeof(s)); /* gone (gc): start from the hint */
    }
    dsq_rc hard;
    uint64_t hint = read_hint(db, &hard, e);
    if (hard != DSQ_OK)
        return hard;
    if (hint > 0) {
        char after[64];
        dsq_manifest_key(hint - 1, after);
        rc = list_rel(db, "manifests/", after, scan_fn, &s, e);
        if (rc != DSQ_OK)
            return rc;
        if (s.count > 0 && s.first == hint) {
            note_latest(db, s.max);
            *version = s.max;
            return DSQ_OK;
        }
        dsq_log(DSQ_LOG_WARNING, "db",
                "%s/root.json names version %llu, which does not exist; "
                "listing every manifest",
                db->prefix, (unsigned long long)hint);
        memset(&s, 0, sizeof(s));
    }
    rc = list_rel(db, "manifests/", NULL, scan_fn, &s, e);
    if (rc != DSQ_OK)
        return rc;
    note_latest(db, s.max);
    *version = s.max;
    return DSQ_OK;
}

static dsq_rc load_manifest(struct dsq_db *db, uint64_t version,
                            struct dsq_manifest **out, struct dsq_err *e)
{
    char rel[64];
    struct dsq_buf buf;
    dsq_manifest_key(version, rel);
    dsq_buf_init(&buf, DSQ_MANIFEST_MAX_BYTES);
    dsq_rc rc = obj_get(db, rel, 0, 0, &buf, NULL, e);
    if (rc == DSQ_ENOTFOUND) {
        dsq_err_set(e, rc, "version %llu of %s does not exist",
                    (unsigned long long)version, db->prefix);
        goto out;
    }
    if (rc == DSQ_ERANGE) {
        rc = DSQ_CORRUPT(e, "%s/%s exceeds the manifest size cap", db->prefix,
                         rel);
        goto out;
    }
    if (rc != DSQ_OK)
        goto out;
    char full[DSQ_KEY_MAX];
    full_key(db, rel, full, sizeof(full));
    struct dsq_manifest *m = NULL;
    rc = dsq_manifest_decode(buf.data, buf.len, full, &m, e);
    if (rc != DSQ_OK)
        goto out;
    if (m->version != version) {
        dsq_manifest_free(m);
        rc = DSQ_CORRUPT(e, "%s says it is version %llu", full,
                         (unsigned long long)m->version);
        goto out;
    }
    *out = m;
out:
    dsq_buf_cleanup(&buf);
    return rc;
}

struct dsq_snap *dsq_snap_ref(struct dsq_snap *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void dsq_snap_release(struct dsq_snap *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        snap_free(s);
}

static struct dsq_snap *snap_cache_get(struct dsq_db *db, uint64_t version)
{
    struct dsq_snap *s = NULL;
    pthread_mutex_lock(&db->mu);
    for (int i = 0; i < SNAP_CACHE_MAX; i++)
        if (db->snaps[i] && db->snaps[i]->version == version) {
            s = dsq_snap_ref(db->snaps[i]);
            db->snap_stamp[i] = ++db->snap_clock;
            break;
        }
    pthread_mutex_unlock(&db->mu);
    return s;
}

static void snap_cache_put(struct dsq_db *db, struct dsq_snap *s)
{
    struct dsq_snap *evict = NULL;
    pthread_mutex_lock(&db->mu);
    int victim = 0;
    for (int i = 0; i < SNAP_CACHE_MAX; i++) {
        if (db->snaps[i] && db->snaps[i]->version == s->version) {
            pthread_mutex_unlock(&db->mu);
            return;
        }
        if (!db->snaps[i]) {
            victim = i;
            break;
        }
        if (db->snap_stamp[i] < db->snap_stamp[victim])
            victim = i;
    }
    evict = db->snaps[victim];
    db->snaps[victim] = dsq_snap_ref(s);
    db->snap_stamp[victim] = ++db->snap_clock;
    pthread_mutex_unlock(&db->mu);
    dsq_snap_release(evict);
}

/*
 * A version this handle just published: decode the exact bytes it PUT
 * into the snapshot cache, so reading it back costs no GET.  Best effort
 * (a failure only means the manifest is fetched when first wanted).
 */
dsq_rc dsq_db_snapshot(struct dsq_db *db, uint64_t version,
                       struct dsq_snap **out, struct dsq_err *e)
{
    dsq_rc rc;
    if (version == DSQ_VERSION_LATEST) {
        rc = dsq_db_latest(db, &version, e);
        if (rc != DSQ_OK)
            return rc;
    }
    struct dsq_snap *s = snap_cache_get(db, version);
    if (s) {
        *out = s;
        return DSQ_OK;
    }
    struct dsq_manifest *m = NULL;
    if (version > 0) {
        rc = load_manifest(db, version, &m, e);
        if (rc != DSQ_OK)
            return rc;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        dsq_manifest_free(m);
        return DSQ_ENOMEM;
    }
    s->db = db;
    atomic_init(&s->refs, 1);
    s->version = version;
    s->m = m;
    snap_cache_put(db, s);
    *out = s;
    return DSQ_OK;
}

uint64_t dsq_snap_version(const struct dsq_snap *s)
{
    return s->version;
}

uint32_t dsq_snap_page_size(const struct dsq_snap *s)
{
    return s->m ? s->m->page_size : 0;
}

uint32_t dsq_snap_page_count(const struct dsq_snap *s)
{
    return s->m ? s->m->page_count : 0;
}

uint64_t dsq_snap_time_ms(const struct dsq_snap *s)
{
    return s->m ? s->m->time_ms : 0;
}

/* ------------------------------------------------------------------ */
/* 5. page lookup and reads                                             */
/* ------------------------------------------------------------------ */

static int chunkref_cmp(const void *k, const void *el)
{
    uint32_t i = *(const uint32_t *)k;
    const struct dsq_chunk_ref *r = el;
    return i < r->index ? -1 : i > r->index;
}

static const struct dsq_chunk_ref *find_chunk_ref(const struct dsq_manifest *m,
                                                  uint32_t index)
{
    if (m->n_chunks == 0)
        return NULL;
    return bsearch(&index, m->chunks, m->n_chunks, sizeof(*m->chunks),
                   chunkref_cmp);
}

/*
 * Where page pgno of manifest m is stored: *found = 1 with its location
 * and segment key (relative), or *found = 0 for a zero-filled page.
 */
static dsq_rc locate(struct dsq_db *db, const struct dsq_manifest *m,
                     uint32_t pgno, struct dsq_page_loc *loc, char *segkey,
                     size_t segkey_sz, int *found, struct dsq_err *e)
{
    *found = 0;
    const struct dsq_page_loc *l = find_loc(m->overlay, m->n_overlay, pgno);
    if (l) {
        *loc = *l;
        snprintf(segkey, segkey_sz, "%s", m->segments[l->seg]);
        *found = 1;
        return DSQ_OK;
    }
    if (pgno > m->ckpt_page_limit || m->n_chunks == 0)
        return DSQ_OK;
    const struct dsq_chunk_ref *ref =
        find_chunk_ref(m, (pgno - 1) / m->chunk_pages);
    if (!ref)
        return DSQ_OK;
    dsq_rc rc = chunk_lookup(db, ref, m->page_size, m->chunk_pages, pgno, loc,
                             segkey, segkey_sz, e);
    if (rc == DSQ_ENOTFOUND)
        return DSQ_OK;
    if (rc == DSQ_OK)
        *found = 1;
    return rc;
}

/*
 * Try the disk cache for one page: 1 if it held the stored bytes and they
 * decoded and matched the checksum (out filled).  buf is scratch.
 */
static int disk_cached_page(struct dsq_db *db, const char *segkey,
                            const struct dsq_page_loc *loc, uint32_t page_size,
                            void *out, const char *full, struct dsq_buf *buf)
{
    if (!db->dcache || dsq_buf_reserve(buf, loc->length) != DSQ_OK ||
        !dsq_cache_read(db->dcache, segkey, loc->offset, loc->length,
                        buf->data))
        return 0;
    /* the cache file is sparse: a range never fetched reads as zeros.
       That is an ordinary miss, not damage worth an error line per page
       (a page stored as all zeros is merely fetched again). */
    const uint8_t *d = buf->data;
    size_t nz = 0;
    while (nz < loc->length && d[nz] == 0)
        nz++;
    if (nz == loc->length) {
        dsq_cache_note_bad(db->dcache);
        return 0;
    }
    struct dsq_err ignore;
    if (dsq_page_decode(buf->data, loc->length, loc, page_size, out, full,
                        &ignore) == DSQ_OK)
        return 1;
    dsq_cache_note_bad(db->dcache);
    return 0;
}

/* Read one page at a known location (caches, then a ranged GET). */
static dsq_rc fetch_page(struct dsq_db *db, const char *segkey,
                         const struct dsq_page_loc *loc, uint32_t page_size,
                         void *out, int use_cache, struct dsq_err *e)
{
    if (use_cache &&
        pc_lookup(db, segkey, loc->offset, loc->pgno, out, page_size))
        return DSQ_OK;
    struct dsq_buf buf;
    char full[DSQ_KEY_MAX];
    full_key(db, segkey, full, sizeof(full));
    dsq_buf_init(&buf, DSQ_STORED_PAGE_MAX);
    if (disk_cached_page(db, segkey, loc, page_size, out, full, &buf)) {
        if (use_cache)
            pc_insert(db, segkey, loc->offset, loc->pgno, out, page_size);
        dsq_buf_cleanup(&buf);
        return DSQ_OK;
    }
    dsq_rc rc = obj_get(db, segkey, loc->offset, loc->length, &buf, NULL, e);
    if (rc == DSQ_ENOTFOUND) {
        rc = DSQ_CORRUPT(e, "segment %s is missing (page %u)", full, loc->pgno);
        goto out;
    }
    if (rc != DSQ_OK)
        goto out;
    if (buf.len != loc->length) {
        rc = DSQ_CORRUPT(e,
                         "segment %s is truncated (page %u at offset "
                         "%llu)",
                         full, loc->pgno, (unsigned long long)loc->offset);
        goto out;
    }
    rc = dsq_page_decode(buf.data, buf.len, loc, page_size, out, full, e);
    if (rc == DSQ_OK)
        dsq_cache_write(db->dcache, segkey, loc->offset, buf.data, buf.len);
    if (rc == DSQ_OK && use_cache)
        pc_insert(db, segkey, loc->offset, loc->pgno, out, page_size);
out:
    dsq_buf_cleanup(&buf);
    return rc;
}

static dsq_rc manifest_read_page(struct dsq_db *db,
                                 const struct dsq_manifest *m, uint32_t pgno,
                                 void *buf, struct dsq_err *e)
{
    struct dsq_page_loc loc;
    char segkey[DSQ_KEY_MAX];
    int found;
    dsq_rc rc = locate(db, m, pgno, &loc, segkey, sizeof(segkey), &found, e);
    if (rc != DSQ_OK)
        return rc;
    if (!found) {
        memset(buf, 0, m->page_size);
        return DSQ_OK;
    }
    return fetch_page(db, segkey, &loc, m->page_size, buf, 1, e);
}

dsq_rc dsq_snap_read_page(struct dsq_snap *s, uint32_t pgno, void *buf,
                          struct dsq_err *e)
{
    if (!s->m || pgno == 0 || pgno > s->m->page_count)
        return dsq_err_set(e, DSQ_ERANGE,
                           "page %u is outside the database (%u pages)", pgno,
                           s->m ? s->m->page_count : 0);
    return manifest_read_page(s->db, s->m, pgno, buf, e);
}

struct want {
    uint32_t idx; /* page index within the request */
    struct dsq_page_loc loc;
    char *segkey;
};

static int want_cmp(const void *a, const void *b)
{
    const struct want *x = a, *y = b;
    int c = strcmp(x->segkey, y->segkey);
    if (c)
        return c;
    return x->loc.offset < y->loc.offset ? -1 : x->loc.offset > y->loc.offset;
}

/* Parallel fetching of the runs of one dsq_snap_read_pages call. */
#define READ_THREADS 4

struct run_job {
    struct dsq_db *db;
    struct want *w;
    const size_t *runs; /* run i is w[runs[i] .. runs[i+1]) */
    size_t nruns;
    uint32_t ps;
    uint8_t *out;
    pthread_mutex_t mu; /* guards next, rc, err */
    size_t next;
    dsq_rc rc;
    struct dsq_err err;
};

static dsq_rc fetch_run(struct dsq_db *db, struct want *w, size_t a, size_t b,
                        uint32_t ps, uint8_t *out, struct dsq_buf *rb,
                        struct dsq_err *e)
{
    uint64_t start = w[a].loc.offset;
    uint64_t end = w[b - 1].loc.offset + w[b - 1].loc.length;
    char full[DSQ_KEY_MAX];
    full_key(db, w[a].segkey, full, sizeof(full));
    dsq_buf_reset(rb);
    dsq_rc rc = obj_get(db, w[a].segkey, start, end - start, rb, NULL, e);
    if (rc == DSQ_ENOTFOUND)
        return DSQ_CORRUPT(e, "segment %s is missing", full);
    if (rc != DSQ_OK)
        return rc;
    if (rb->len != end - start)
        return DSQ_CORRUPT(e,
                           "segment %s is truncated (wanted bytes "
                           "%llu..%llu)",
                           full, (unsigned long long)start,
                           (unsigned long long)end);
    for (size_t k = a; k < b; k++) {
        rc = dsq_page_decode(rb->data + (w[k].loc.offset - start),
                             w[k].loc.length, &w[k].loc, ps,
                             out + (size_t)w[k].idx * ps, full, e);
        if (rc != DSQ_OK)
            return rc;
    }
    dsq_cache_write(db->dcache, w[a].segkey, start, rb->data, rb->len);
    return DSQ_OK;
}

static void *run_worker(void *arg)
{
    struct run_job *j = arg;
    struct dsq_buf rb;
    dsq_buf_init(&rb, COALESCE_MAX + DSQ_STORED_PAGE_MAX);
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->next++;
        int stop = j->rc != DSQ_OK || i >= j->nruns;
        pthread_mutex_unlock(&j->mu);
        if (stop)
            break;
        struct dsq_err e;
        dsq_err_clear(&e);
        dsq_rc rc = fetch_run(j->db, j->w, j->runs[i], j->runs[i + 1], j->ps,
                              j->out, &rb, &e);
        if (rc != DSQ_OK) {
            pthread_mutex_lock(&j->mu);
            if (j->rc == DSQ_OK) {
                j->rc = rc;
                j->err = e;
            }
            pthread_mutex_unlock(&j->mu);
        }
    }
    dsq_buf_cleanup(&rb);
    return NULL;
}

dsq_rc dsq_snap_read_pages(struct dsq_snap *s, uint32_t first, uint32_t count,
                           void *buf, struct dsq_err *e)
{
    struct dsq_db *db = s->db;
    if (count == 0)
        return DSQ_OK;
    if (!s->m || first == 0 || first > s->m->page_count ||
        count > s->m->page_count - first + 1)
        return dsq_err_set(e, DSQ_ERANGE,
                           "pages %u..%u are outside the database (%u "
                           "pages)",
                           first, first + count - 1,
                           s->m ? s->m->page_count : 0);
    const uint32_t ps = s->m->page_size;
    uint8_t *out = buf;
    struct want *w = calloc(count, sizeof(*w));
    size_t nw = 0;
    dsq_rc rc = DSQ_OK;
    struct dsq_buf rb;
    dsq_buf_init(&rb, COALESCE_MAX + DSQ_STORED_PAGE_MAX);
    if (!w)
        return DSQ_ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        char segkey[DSQ_KEY_MAX];
        int found;
        rc = locate(db, s->m, first + i, &w[nw].loc, segkey, sizeof(segkey),
                    &found, e);
        if (rc != DSQ_OK)
            goto out;
        if (!found) {
            memset(out + (size_t)i * ps, 0, ps);
            continue;
        }
        if (db->dcache) {
            char full[DSQ_KEY_MAX];
            full_key(db, segkey, full, sizeof(full));
            dsq_buf_reset(&rb);
            if (disk_cached_page(db, segkey, &w[nw].loc, ps,
                                 out + (size_t)i * ps, full, &rb))
                continue;
        }
        w[nw].idx = i;
        w[nw].segkey = strdup(segkey);
        if (!w[nw].segkey) {
            rc = DSQ_ENOMEM;
            goto out;
        }
        nw++;
    }
    qsort(w, nw, sizeof(*w), want_cmp);
    /* runs: same object, close offsets, bounded size */
    size_t *runs = malloc((nw + 1) * sizeof(*runs)), nruns = 0;
    if (!runs) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    for (size_t a = 0; a < nw;) {
        size_t b = a + 1;
        uint64_t start = w[a].loc.offset;
        uint64_t end = start + w[a].loc.length;
        while (b < nw && strcmp(w[b].segkey, w[a].segkey) == 0 &&
               w[b].loc.offset >= end &&
               w[b].loc.offset - end <= COALESCE_GAP &&
               w[b].loc.offset + w[b].loc.length - start <= COALESCE_MAX) {
            end = w[b].loc.offset + w[b].loc.length;
            b++;
        }
        runs[nruns++] = a;
        a = b;
    }
    runs[nruns] = nw;
    struct run_job job = {.db = db,
                          .w = w,
                          .runs = runs,
                          .nruns = nruns,
                          .ps = ps,
                          .out = out,
                          .rc = DSQ_OK};
    pthread_mutex_init(&job.mu, NULL);
    size_t nthreads = nruns < READ_THREADS ? nruns : READ_THREADS;
    pthread_t th[READ_THREADS];
    size_t started = 0;
    for (size_t i = 1; i < nthreads; i++)
        if (pthread_create(&th[started], NULL, run_worker, &job) == 0)
            started++;
    run_worker(&job); /* this thread works too */
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&job.mu);
    free(runs);
    rc = job.rc;
    if (rc != DSQ_OK && e)
        *e = job.err;
out:
    for (size_t i = 0; i < nw; i++)
        free(w[i].segkey);
    free(w);
    dsq_buf_cleanup(&rb);
    return rc;
}

/* ------------------------------------------------------------------ */
/* 6. transactions                                                      */
/* ------------------------------------------------------------------ */

/* A growable list of owned strings. */
struct strlist {
    char **v;
    size_t n, cap;
};

static dsq_rc strlist_add(struct strlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        char **nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return DSQ_ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n] = strdup(s);
    if (!l->v[l->n])
        return DSQ_ENOMEM;
    l->n++;
    return DSQ_OK;
}

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* A growable array of page locations. */
struct loclist {
    struct dsq_page_loc *v;
    size_t n, cap;
};

static dsq_rc loclist_add(struct loclist *l, const struct dsq_page_loc *loc)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        struct dsq_page_loc *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return DSQ_ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = *loc;
    return DSQ_OK;
}

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
    struct strlist segs;  /* segments holding our pages */
    struct strlist extra; /* per-attempt objects (chunks, page-1) */
    uint64_t objects_written;
    uint64_t bytes_written;
};

dsq_rc dsq_txn_begin(struct dsq_snap *s, unsigned flags, struct dsq_txn **out,
                     struct dsq_err *e)
{
    struct dsq_txn *t = calloc(1, sizeof(*t));
    if (!t)
        return DSQ_ENOMEM;
    t->db = s->db;
    t->snap = dsq_snap_ref(s);
    t->flags = flags;
    dsq_random_hex32(t->txn_id);
    t->page_size = dsq_snap_page_size(s);
    t->page_count = dsq_snap_page_count(s);
    t->base_count = t->page_count;
    t->low_water = t->page_count;
    if ((flags & DSQ_TXN_STREAM)) {
        t->page_count = 0;
        t->low_water = 0;
        t->truncated = t->base_count > 0;
    }
    *out = t;
    (void)e;
    return DSQ_OK;
}

uint32_t dsq_txn_page_size(const struct dsq_txn *t)
{
    return t->page_size;
}

uint32_t dsq_txn_page_count(const struct dsq_txn *t)
{
    return t->page_count;
}

uint64_t dsq_txn_snapshot_version(const struct dsq_txn *t)
{
    return t->snap->version;
}

size_t dsq_txn_dirty_pages(const struct dsq_txn *t)
{
    if (t->flags & DSQ_TXN_STREAM)
        return t->last_pgno;
    return t->buf ? dsq_pgbuf_count(t->buf) : 0;
}

dsq_rc dsq_txn_set_page_size(struct dsq_txn *t, uint32_t page_size,
                             struct dsq_err *e)
{
    if (!dsq_page_size_valid(page_size))
        return dsq_err_set(e, DSQ_EINVAL, "invalid page size %u", page_size);
    if (page_size == t->page_size)
        return DSQ_OK;
    int stream = (t->flags & DSQ_TXN_STREAM) != 0;
    if ((!stream && t->base_count > 0) || t->buf || t->sb)
        return dsq_err_set(e, DSQ_EINVAL,
                           "the page size (%u) can only change by replacing "
                           "the whole database",
                           t->page_size);
    t->page_size = page_size;
    return DSQ_OK;
}

static dsq_rc need_page_size(struct dsq_txn *t, struct dsq_err *e)
{
    if (t->page_size == 0)
        return dsq_err_set(e, DSQ_EINVAL,
                           "the database is empty: set a page size first");
    return DSQ_OK;
}

static dsq_rc stream_flush_segment(struct dsq_txn *t, struct dsq_err *e);
static dsq_rc stream_finish_chunk(struct dsq_txn *t, struct dsq_err *e);

dsq_rc dsq_txn_write_page(struct dsq_txn *t, uint32_t pgno, const void *page,
                          struct dsq_err *e)
{
    dsq_rc rc = need_page_size(t, e);
    if (rc != DSQ_OK)
        return rc;
    if (t->finished)
        return dsq_err_set(e, DSQ_EINVAL, "transaction already finished");
    if (pgno == 0 || pgno > 0xfffffffeu)
        return dsq_err_set(e, DSQ_ERANGE, "page number %u out of range", pgno);
    if (t->flags & DSQ_TXN_STREAM) {
        if (pgno != t->last_pgno + 1)
            return dsq_err_set(e, DSQ_EINVAL,
                               "streamed pages must arrive in order: got "
                               "page %u after page %u",
                               pgno, t->last_pgno);
        if (!t->sb) {
            rc = dsq_seg_builder_new(t->page_size, t->db->compress, t->txn_id,
                                     &t->sb);
            if (rc != DSQ_OK)
                return rc;
        }
        if (pgno == 1) {
            t->page1 = malloc(t->page_size);
            if (!t->page1)
                return DSQ_ENOMEM;
            memcpy(t->page1, page, t->page_size);
        }
        rc = dsq_seg_builder_add(t->sb, pgno, page);
        if (rc != DSQ_OK)
            return rc;
        t->last_pgno = pgno;
        t->page_count = pgno;
        t->low_water = pgno;
        if (dsq_seg_builder_size(t->sb) >= t->db->segment_max)
            return stream_flush_segment(t, e);
        return DSQ_OK;
    }
    if (!t->buf) {
        rc = dsq_pgbuf_new(t->page_size, t->db->txn_mem, t->db->spill_dir,
                           &t->buf);
        if (rc != DSQ_OK)
            return rc;
    }
    rc = dsq_pgbuf_put(t->buf, pgno, page, e);
    if (rc != DSQ_OK)
        return rc;
    if (pgno > t->page_count)
        t->page_count = pgno;
    return DSQ_OK;
}

dsq_rc dsq_txn_read_page(struct dsq_txn *t, uint32_t pgno, void *buf,
                         struct dsq_err *e)
{
    if (t->flags & DSQ_TXN_STREAM)
        return dsq_err_set(e, DSQ_EINVAL,
                           "a streaming transaction cannot be read");
    if (pgno == 0 || pgno > t->page_count)
        return dsq_err_set(e, DSQ_ERANGE,
                           "page %u is outside the database (%u pages)", pgno,
                           t->page_count);
    if (t->buf) {
        dsq_rc rc = dsq_pgbuf_get(t->buf, pgno, buf, e);
        if (rc != DSQ_ENOTFOUND)
            return rc;
    }
    if (pgno > t->low_water) {
        memset(buf, 0, t->page_size);
        return DSQ_OK;
    }
    return dsq_snap_read_page(t->snap, pgno, buf, e);
}

dsq_rc dsq_txn_set_page_count(struct dsq_txn *t, uint32_t n, struct dsq_err *e)
{
    if (n > 0xfffffffeu)
        return dsq_err_set(e, DSQ_ERANGE, "page count %u out of range", n);
    if (t->flags & DSQ_TXN_STREAM) {
        if (n != t->last_pgno)
            return dsq_err_set(e, DSQ_EINVAL,
                               "a streaming transaction's page count is the "
                               "number of pages written (%u)",
                               t->last_pgno);
        return DSQ_OK;
    }
    if (n > 0) {
        dsq_rc rc = need_page_size(t, e);
        if (rc != DSQ_OK)
            return rc;
    }
    if (n < t->page_count && t->buf)
        dsq_pgbuf_truncate(t->buf, n);
    if (n < t->low_water)
        t->low_water = n;
    if (n < t->base_count)
        t->truncated = 1;
    t->page_count = n;
    return DSQ_OK;
}

void dsq_txn_free(struct dsq_txn *t)
{
    if (!t)
        return;
    dsq_pgbuf_free(t->buf);
    dsq_seg_builder_free(t->sb);
    free(t->page1);
    strlist_free(&t->cur_segs);
    free(t->cur_locs.v);
    for (size_t i = 0; i < t->n_chunks; i++)
        free(t->chunks[i].key);
    free(t->chunks);
    strlist_free(&t->segs);
    strlist_free(&t->extra);
    dsq_snap_release(t->snap);
    free(t);
}

/* ------------------------------------------------------------------ */
/* 7. commit                                                            */
/* ------------------------------------------------------------------ */

static void new_object_key(const char *dir, const char *ext, char out[96])
{
    char hex[33];
    dsq_random_hex32(hex);
    snprintf(out, 96, "%s/%s.%s", dir, hex, ext);
}

/* Upload an immutable object under a fresh key; remember it in list. */
static dsq_rc upload_new(struct dsq_txn *t, const char *dir, const char *ext,
                         const struct dsq_buf *data, struct strlist *list,
                         char key_out[96], struct dsq_err *e)
{
    new_object_key(dir, ext, key_out);
    dsq_rc rc = obj_put(t->db, key_out, data->data, data->len, e);
    if (rc != DSQ_OK) {
        dsq_err_prefix(e, "uploading %s/%s", t->db->prefix, key_out);
        return rc;
    }
    t->objects_written++;
    t->bytes_written += data->len;
    /* write-through: what this handle uploads it is the likeliest to read
       next (the next transaction's base pages, its readers) */
    if (data->len <= WRITE_THROUGH_MAX)
        dsq_cache_write(t->db->dcache, key_out, 0, data->data, data->len);
    return strlist_add(list, key_out);
}

/*
 * Finish the builder, upload it as a segment, and report each page's
 * location (seg = index of the segment in t->segs) through fn.
 */
typedef dsq_rc (*loc_sink)(struct dsq_txn *t, void *arg,
                           const struct dsq_page_loc *loc, const char *segkey,
                           struct dsq_err *e);

static dsq_rc upload_segment(struct dsq_txn *t, struct dsq_seg_builder *sb,
                             loc_sink sink, void *arg, struct dsq_err *e)
{
    struct dsq_buf buf;
    struct dsq_page_loc *locs = NULL;
    size_t n = 0;
    char key[96];
    dsq_buf_init(&buf, SIZE_MAX);
    dsq_rc rc = dsq_seg_builder_finish(sb, &buf, &locs, &n);
    if (rc != DSQ_OK)
        goto out;
    rc = upload_new(t, "segments", "seg", &buf, &t->segs, key, e);
    if (rc != DSQ_OK)
        goto out;
    for (size_t i = 0; i < n && rc == DSQ_OK; i++) {
        locs[i].seg = (uint32_t)(t->segs.n - 1);
        rc = sink(t, arg, &locs[i], key, e);
    }
    dsq_seg_builder_reset(sb);
out:
    free(locs);
    dsq_buf_cleanup(&buf);
    return rc;
}

static dsq_rc encode_upload_chunk(struct dsq_txn *t, uint32_t index,
                                  uint32_t chunk_pages, char **segs,
                                  size_t n_segs, struct dsq_page_loc *entries,
                                  size_t n_entries, struct strlist *list,
                                  struct dsq_chunk_ref *ref, struct dsq_err *e)
{
    struct dsq_chunk c = {.index = index,
                          .chunk_pages = chunk_pages,
                          .page_size = t->page_size,
                          .segments = segs,
                          .n_segments = n_segs,
                          .entries = entries,
                          .n_entries = n_entries};
    struct dsq_buf buf;
    char key[96];
    dsq_buf_init(&buf, SIZE_MAX);
    dsq_rc rc = dsq_chunk_encode(&c, &buf, e);
    if (rc == DSQ_OK)
        rc = upload_new(t, "pagetables", "ptc", &buf, list, key, e);
    if (rc == DSQ_OK) {
        ref->index = index;
        ref->key = strdup(key);
        ref->size = buf.len;
        ref->checksum = dsq_object_checksum(buf.data, buf.len);
        if (!ref->key)
            rc = DSQ_ENOMEM;
    }
    dsq_buf_cleanup(&buf);
    return rc;
}

/* stream mode: pages flow into per-chunk accumulators */
static dsq_rc stream_sink(struct dsq_txn *t, void *arg,
                          const struct dsq_page_loc *loc, const char *segkey,
                          struct dsq_err *e)
{
    (void)arg;
    uint32_t idx = (loc->pgno - 1) / CHUNK_PAGES_DEFAULT;
    dsq_rc rc;
    if (t->cur_locs.n > 0 && idx != t->cur_chunk) {
        rc = stream_finish_chunk(t, e);
        if (rc != DSQ_OK)
            return rc;
    }
    t->cur_chunk = idx;
    if (t->cur_segs.n == 0 ||
        strcmp(t->cur_segs.v[t->cur_segs.n - 1], segkey) != 0) {
        rc = strlist_add(&t->cur_segs, segkey);
        if (rc != DSQ_OK)
            return rc;
    }
    struct dsq_page_loc l = *loc;
    l.seg = (uint32_t)(t->cur_segs.n - 1);
    return loclist_add(&t->cur_locs, &l);
}

static dsq_rc stream_flush_segment(struct dsq_txn *t, struct dsq_err *e)
{
    if (!t->sb || dsq_seg_builder_count(t->sb) == 0)
        return DSQ_OK;
    return upload_segment(t, t->sb, stream_sink, NULL, e);
}

static dsq_rc stream_finish_chunk(struct dsq_txn *t, struct dsq_err *e)
{
    if (t->cur_locs.n == 0)
        return DSQ_OK;
    if (t->n_chunks == t->cap_chunks) {
        size_t nc = t->cap_chunks ? t->cap_chunks * 2 : 16;
        struct dsq_chunk_ref *nv = realloc(t->chunks, nc * sizeof(*nv));
        if (!nv)
            return DSQ_ENOMEM;
        t->chunks = nv;
        t->cap_chunks = nc;
    }
    struct strlist keep = {0};
    dsq_rc rc = encode_upload_chunk(
        t, t->cur_chunk, CHUNK_PAGES_DEFAULT, t->cur_segs.v, t->cur_segs.n,
        t->cur_locs.v, t->cur_locs.n, &keep, &t->chunks[t->n_chunks], e);
    strlist_free(&keep);
    if (rc != DSQ_OK)
        return rc;
    t->n_chunks++;
    strlist_free(&t->cur_segs);
    t->cur_locs.n = 0;
    return DSQ_OK;
}

/* What the transaction did, relative to its snapshot. */
struct effects {
    uint32_t *pgnos; /* pages written, sorted (normal mode) */
    size_t n_pgnos;
    struct dsq_range *write_set;
    size_t n_write;
    struct dsq_range *freed;
    size_t n_freed;
    uint32_t *conf; /* written or freed, minus page 1, sorted */
    size_t n_conf;
    enum dsq_page1_change page1;
    uint32_t page_count;
    int count_changed;
};

static void effects_free(struct effects *ef)
{
    free(ef->pgnos);
    free(ef->write_set);
    free(ef->freed);
    free(ef->conf);
    memset(ef, 0, sizeof(*ef));
}

/* Sorted unique pgnos -> ranges. */
static dsq_rc to_ranges(const uint32_t *v, size_t n, struct dsq_range **out,
                        size_t *nout)
{
    struct dsq_range *r = malloc((n ? n : 1) * sizeof(*r));
    size_t k = 0;
    if (!r)
        return DSQ_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && r[k - 1].start + r[k - 1].count == v[i])
            r[k - 1].count++;
        else
            r[k++] = (struct dsq_range){v[i], 1};
    }
    *out = r;
    *nout = k;
    return DSQ_OK;
}

static int u32_in(const uint32_t *v, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] == x)
            return 1;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static dsq_rc txn_reader(void *ctx, uint32_t pgno, uint8_t *buf,
                         struct dsq_err *e)
{
    return dsq_txn_read_page(ctx, pgno, buf, e);
}

static dsq_rc snap_reader(void *ctx, uint32_t pgno, uint8_t *buf,
                          struct dsq_err *e)
{
    return dsq_snap_read_page(ctx, pgno, buf, e);
}

static dsq_rc compute_effects(struct dsq_txn *t, struct effects *ef,
                              struct dsq_err *e)
{
    const uint32_t ps = t->page_size;
    uint8_t *newp1 = NULL, *oldp1 = NULL;
    uint32_t *fl_new = NULL, *fl_old = NULL;
    size_t n_fl_new = 0, n_fl_old = 0;
    uint32_t *freed = NULL;
    size_t n_freed = 0;
    dsq_rc rc = DSQ_OK;

    memset(ef, 0, sizeof(*ef));
    ef->page_count = t->page_count;
    ef->count_changed = t->page_count != t->base_count;
    int stream = (t->flags & DSQ_TXN_STREAM) != 0;

    if (stream) {
        size_t n = t->last_pgno;
        ef->pgnos = malloc((n ? n : 1) * sizeof(uint32_t));
        if (!ef->pgnos)
            return DSQ_ENOMEM;
        for (size_t i = 0; i < n; i++)
            ef->pgnos[i] = (uint32_t)(i + 1);
        ef->n_pgnos = n;
        ef->page1 = DSQ_PAGE1_CHANGED;
    } else if (t->buf) {
        rc = dsq_pgbuf_pgnos(t->buf, &ef->pgnos, &ef->n_pgnos);
        if (rc != DSQ_OK)
            return rc;
    } else {
        ef->pgnos = malloc(sizeof(uint32_t));
        if (!ef->pgnos)
            return DSQ_ENOMEM;
    }

    if (!stream && ef->n_pgnos > 0 && ef->pgnos[0] == 1) {
        newp1 = malloc(ps);
        oldp1 = malloc(ps);
        if (!newp1 || !oldp1) {
            rc = DSQ_ENOMEM;
            goto out;
        }
        rc = dsq_pgbuf_get(t->buf, 1, newp1, e);
        if (rc != DSQ_OK)
            goto out;
        if (t->base_count >= 1 && t->snap->m && t->snap->m->page_size == ps) {
            rc = dsq_snap_read_page(t->snap, 1, oldp1, e);
            if (rc != DSQ_OK)
                goto out;
            if (memcmp(oldp1, newp1, ps) == 0) {
                /* rewritten unchanged: not a write */
                memmove(ef->pgnos, ef->pgnos + 1,
                        (ef->n_pgnos - 1) * sizeof(uint32_t));
                ef->n_pgnos--;
                ef->page1 = DSQ_PAGE1_NONE;
            } else if (dsq_sqlite_page1_counters_only(oldp1, newp1, ps)) {
                ef->page1 = DSQ_PAGE1_COUNTERS;
            } else {
                ef->page1 = DSQ_PAGE1_CHANGED;
            }
        } else {
            ef->page1 = DSQ_PAGE1_CHANGED;
        }
    }
    if (ef->count_changed)
        ef->page1 = DSQ_PAGE1_CHANGED;

    /* freed pages: truncated away, or newly on the freelist (SQLite) */
    uint32_t ntrunc = 0;
    if (t->base_count > t->low_water)
        ntrunc = t->base_count - t->low_water;
    size_t fl_cap = ntrunc;
    /* any written page may be a trunk page, so walk whenever page 1 moved */
    if (!stream && ef->page1 != DSQ_PAGE1_NONE && newp1 && t->base_count >= 1 &&
        dsq_sqlite_is_db(newp1, ps) && dsq_sqlite_is_db(oldp1, ps)) {
        rc = dsq_sqlite_freelist(newp1, ps, t->page_count, txn_reader, t,
                                 &fl_new, &n_fl_new, e);
        if (rc == DSQ_OK)
            rc = dsq_sqlite_freelist(oldp1, ps, t->base_count, snap_reader,
                                     t->snap, &fl_old, &n_fl_old, e);
        if (rc != DSQ_OK) {
            dsq_err_prefix(e, "reading the SQLite freelist");
            goto out;
        }
        fl_cap += n_fl_new;
    }
    freed = malloc((fl_cap ? fl_cap : 1) * sizeof(*freed));
    if (!freed) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_fl_new; i++) {
        uint32_t p = fl_new[i];
        if (p <= t->low_water && p <= t->base_count &&
            !u32_in(fl_old, n_fl_old, p) && !u32_in(ef->pgnos, ef->n_pgnos, p))
            freed[n_freed++] = p;
    }
    for (uint32_t p = t->low_water + 1; p <= t->base_count; p++)
        if (!u32_in(ef->pgnos, ef->n_pgnos, p))
            freed[n_freed++] = p;
    /* both parts are sorted and the second lies above the first */
    rc = to_ranges(ef->pgnos, ef->n_pgnos, &ef->write_set, &ef->n_write);
    if (rc == DSQ_OK)
        rc = to_ranges(freed, n_freed, &ef->freed, &ef->n_freed);
    if (rc != DSQ_OK)
        goto out;
    ef->conf = malloc((ef->n_pgnos + n_freed + 1) * sizeof(uint32_t));
    if (!ef->conf) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    {
        size_t i = 0, j = 0;
        while (i < ef->n_pgnos || j < n_freed) {
            uint32_t p;
            if (j >= n_freed || (i < ef->n_pgnos && ef->pgnos[i] < freed[j]))
                p = ef->pgnos[i++];
            else
                p = freed[j++];
            if (p != 1)
                ef->conf[ef->n_conf++] = p;
        }
    }
out:
    free(newp1);
    free(oldp1);
    free(fl_new);
    free(fl_old);
    free(freed);
    if (rc != DSQ_OK)
        effects_free(ef);
    return rc;
}

/* Does committed version x meet our effects?  *page gets a witness. */
static int overlaps(const struct effects *ef, const struct dsq_manifest *x,
                    uint32_t *page)
{
    /* pages first, so the witness names the page that really collides */
    for (size_t i = 0; i < ef->n_conf; i++) {
        uint32_t p = ef->conf[i];
        if (dsq_ranges_contain(x->write_set, x->n_write, p) ||
            dsq_ranges_contain(x->freed_set, x->n_freed, p)) {
            *page = p;
            return 1;
        }
    }
    enum dsq_page1_change xp1 = x->page1;
    if (xp1 == DSQ_PAGE1_NONE &&
        (dsq_ranges_contain(x->write_set, x->n_write, 1) ||
         dsq_ranges_contain(x->freed_set, x->n_freed, 1)))
        xp1 = DSQ_PAGE1_CHANGED;
    if (ef->page1 != DSQ_PAGE1_NONE && xp1 != DSQ_PAGE1_NONE &&
        (ef->page1 == DSQ_PAGE1_CHANGED || xp1 == DSQ_PAGE1_CHANGED)) {
        *page = 1;
        return 1;
    }
    return 0;
}

/* Interning of segment keys into a manifest's or chunk's key table. */
struct keytab {
    struct strlist l;
};

static dsq_rc keytab_idx(struct keytab *kt, const char *key, uint32_t *idx)
{
    for (size_t i = kt->l.n; i > 0; i--)
        if (strcmp(kt->l.v[i - 1], key) == 0) {
            *idx = (uint32_t)(i - 1);
            return DSQ_OK;
        }
    dsq_rc rc = strlist_add(&kt->l, key);
    if (rc == DSQ_OK)
        *idx = (uint32_t)(kt->l.n - 1);
    return rc;
}

/* Our pages (normal mode), with the segment key of each. */
struct ours {
    uint8_t *warm;             /* scratch page: insert what we upload into
                                  the page cache (small transactions) */
    struct loclist locs;       /* sorted by pgno; seg indexes t->segs */
    struct strlist p1segs;     /* page-1 merge segments, newest last */
    struct dsq_page_loc p1loc; /* override for page 1 when p1segs.n > 0 */
};

static const char *ours_key(const struct dsq_txn *t, const struct ours *o,
                            const struct dsq_page_loc *l)
{
    if (l->pgno == 1 && o->p1segs.n > 0)
        return o->p1segs.v[o->p1segs.n - 1];
    return t->segs.v[l->seg];
}

static const struct dsq_page_loc *ours_loc(const struct ours *o, size_t i)
{
    const struct dsq_page_loc *l = &o->locs.v[i];
    if (l->pgno == 1 && o->p1segs.n > 0)
        return &o->p1loc;
    return l;
}

static dsq_rc normal_sink(struct dsq_txn *t, void *arg,
                          const struct dsq_page_loc *loc, const char *segkey,
                          struct dsq_err *e)
{
    struct ours *o = arg;
    (void)e;
    dsq_rc rc = loclist_add(&o->locs, loc);
    struct dsq_err ig;
    if (rc == DSQ_OK && o->warm &&
        dsq_pgbuf_get(t->buf, loc->pgno, o->warm, &ig) == DSQ_OK)
        pc_insert(t->db, segkey, loc->offset, loc->pgno, o->warm, t->page_size);
    return rc;
}

static dsq_rc upload_pages(struct dsq_txn *t, const struct effects *ef,
                           struct ours *o, struct dsq_err *e)
{
    struct dsq_seg_builder *sb = NULL;
    uint8_t *page = malloc(t->page_size);
    dsq_rc rc = page ? dsq_seg_builder_new(t->page_size, t->db->compress,
                                           t->txn_id, &sb)
                     : DSQ_ENOMEM;
    /* the next transaction reads these pages back (to drop unchanged
       ones, to classify page 1) and so may local readers: keep them in
       the page cache unless the transaction is big next to it */
    if (rc == DSQ_OK && ef->n_pgnos <= t->db->pc_max / 4)
        o->warm = malloc(t->page_size);
    for (size_t i = 0; rc == DSQ_OK && i < ef->n_pgnos; i++) {
        rc = dsq_pgbuf_get(t->buf, ef->pgnos[i], page, e);
        if (rc == DSQ_OK)
            rc = dsq_seg_builder_add(sb, ef->pgnos[i], page);
        if (rc == DSQ_OK && dsq_seg_builder_size(sb) >= t->db->segment_max)
            rc = upload_segment(t, sb, normal_sink, o, e);
    }
    if (rc == DSQ_OK && sb && dsq_seg_builder_count(sb) > 0)
        rc = upload_segment(t, sb, normal_sink, o, e);
    dsq_seg_builder_free(sb);
    free(page);
    free(o->warm);
    o->warm = NULL;
    return rc;
}

static int chunk_index_of(uint32_t pgno, uint32_t cp)
{
    return (int)((pgno - 1) / cp);
}

/*
 * Checkpoint nm: rewrite the chunks the overlay touches (or truncation
 * cuts), keep the others, empty the overlay.  bm is the base manifest whose
 * chunks nm inherited.  New chunk objects are listed in objs.
 */
static dsq_rc checkpoint(struct dsq_txn *t, const struct dsq_manifest *bm,
                         struct dsq_manifest *nm, struct strlist *objs,
                         struct dsq_err *e)
{
    const uint32_t cp = nm->chunk_pages;
    const uint32_t pc = nm->page_count;
    const uint32_t eff = nm->ckpt_page_limit; /* old entries valid below */
    struct dsq_chunk_ref *refs = NULL;
    size_t n_refs = 0;
    size_t io = 0, ic = 0;
    dsq_rc rc = DSQ_OK;
    size_t max_refs = nm->n_chunks + nm->n_overlay + 1;

    refs = calloc(max_refs, sizeof(*refs));
    if (!refs)
        return DSQ_ENOMEM;
    while (io < nm->n_overlay || ic < nm->n_chunks) {
        uint32_t idx = UINT32_MAX;
        if (io < nm->n_overlay)
            idx = (uint32_t)chunk_index_of(nm->overlay[io].pgno, cp);
        if (ic < nm->n_chunks && nm->chunks[ic].index < idx)
            idx = nm->chunks[ic].index;
        uint64_t lo = (uint64_t)idx * cp + 1, hi = lo + cp - 1;
        if (lo > pc)
            break;
        const struct dsq_chunk_ref *old =
            (ic < nm->n_chunks && nm->chunks[ic].index == idx) ? &nm->chunks[ic]
                                                               : NULL;
        if (old)
            ic++;
        size_t ov_first = io;
        while (io < nm->n_overlay && nm->overlay[io].pgno <= hi)
            io++;
        size_t ov_n = io - ov_first;
        if (old && ov_n == 0 && hi <= eff) {
            refs[n_refs] = *old;
            refs[n_refs].key = strdup(old->key);
            if (!refs[n_refs].key) {
                rc = DSQ_ENOMEM;
                goto out;
            }
            n_refs++;
            continue;
        }
        /* rebuild this chunk: valid old entries merged with the overlay */
        struct dsq_chunk *oc = NULL;
        if (old && lo <= eff) {
            rc = chunk_fetch(t->db, old, bm->page_size, cp, &oc, e);
            if (rc != DSQ_OK)
                goto out;
        }
        struct keytab kt = {0};
        struct dsq_page_loc *ent =
            malloc((ov_n + (oc ? oc->n_entries : 0) + 1) * sizeof(*ent));
        size_t ne = 0, a = 0, b = ov_first;
        if (!ent)
            rc = DSQ_ENOMEM;
        while (rc == DSQ_OK) {
            const struct dsq_page_loc *la = NULL, *lb = NULL;
            while (oc && a < oc->n_entries && oc->entries[a].pgno > eff)
                a++;
            if (oc && a < oc->n_entries && oc->entries[a].pgno <= eff)
                la = &oc->entries[a];
            if (b < io)
                lb = &nm->overlay[b];
            if (!la && !lb)
                break;
            const struct dsq_page_loc *pick;
            const char *key;
            if (lb && (!la || lb->pgno <= la->pgno)) {
                pick = lb;
                key = nm->segments[lb->seg];
                if (la && la->pgno == lb->pgno)
                    a++;
                b++;
            } else {
                pick = la;
                key = oc->segments[la->seg];
                a++;
            }
            ent[ne] = *pick;
            rc = keytab_idx(&kt, key, &ent[ne].seg);
            ne++;
        }
        if (rc == DSQ_OK && ne > 0) {
            rc = encode_upload_chunk(t, idx, cp, kt.l.v, kt.l.n, ent, ne, objs,
                                     &refs[n_refs], e);
            if (rc == DSQ_OK)
                n_refs++;
        }
        free(ent);
        strlist_free(&kt.l);
        dsq_chunk_free(oc);
        if (rc != DSQ_OK)
            goto out;
    }
    /* install */
    for (size_t i = 0; i < nm->n_chunks; i++)
        free(nm->chunks[i].key);
    free(nm->chunks);
    nm->chunks = refs;
    nm->n_chunks = n_refs;
    refs = NULL;
    for (size_t i = 0; i < nm->n_segments; i++)
        free(nm->segments[i]);
    free(nm->segments);
    nm->segments = NULL;
    nm->n_segments = 0;
    free(nm->overlay);
    nm->overlay = NULL;
    nm->n_overlay = 0;
    nm->ckpt_version = nm->version;
    nm->ckpt_page_limit = pc;
out:
    if (refs) {
        for (size_t i = 0; i < n_refs; i++)
            free(refs[i].key);
        free(refs);
    }
    return rc;
}

static dsq_rc dup_ranges(const struct dsq_range *r, size_t n,
                         struct dsq_range **out)
{
    *out = malloc((n ? n : 1) * sizeof(*r));
    if (!*out)
        return DSQ_ENOMEM;
    if (n)
        memcpy(*out, r, n * sizeof(*r));
    return DSQ_OK;
}

/* Build manifest base+1 for our transaction.  New objects go to objs. */
static dsq_rc build_manifest(struct dsq_txn *t, const struct dsq_snap *base,
                             const struct effects *ef, const struct ours *o,
                             struct strlist *objs, struct dsq_manifest **out,
                             struct dsq_err *e)
{
    const struct dsq_manifest *bm = base->m;
    const int stream = (t->flags & DSQ_TXN_STREAM) != 0;
    struct dsq_manifest *nm = calloc(1, sizeof(*nm));
    struct keytab kt = {0};
    struct strlist created = {0};
    dsq_rc rc = DSQ_OK;
    if (!nm)
        return DSQ_ENOMEM;

    nm->version = base->version + 1;
    nm->parent = base->version;
    nm->page_size = t->page_size;
    if (stream || ef->count_changed || !bm)
        nm->page_count = t->page_count;
    else
        nm->page_count = bm->page_count;
    memcpy(nm->writer_id, t->db->writer_id, 33);
    memcpy(nm->txn_id, t->txn_id, 33);
    nm->time_ms = dsq_now_ms();
    nm->page1 = ef->page1;
    rc = dup_ranges(ef->write_set, ef->n_write, &nm->write_set);
    if (rc != DSQ_OK)
        goto out;
    nm->n_write = ef->n_write;
    rc = dup_ranges(ef->freed, ef->n_freed, &nm->freed_set);
    if (rc != DSQ_OK)
        goto out;
    nm->n_freed = ef->n_freed;

    if (stream) {
        nm->ckpt_version = nm->version;
        nm->ckpt_page_limit = nm->page_count;
        nm->chunk_pages = CHUNK_PAGES_DEFAULT;
        nm->chunks = calloc(t->n_chunks + 1, sizeof(*nm->chunks));
        if (!nm->chunks) {
            rc = DSQ_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < t->n_chunks; i++) {
            nm->chunks[i] = t->chunks[i];
            nm->chunks[i].key = strdup(t->chunks[i].key);
            nm->n_chunks++;
            if (!nm->chunks[i].key) {
                rc = DSQ_ENOMEM;
                goto out;
            }
        }
    } else {
        uint32_t trunc = nm->page_count;
        if (t->truncated && t->low_water < trunc)
            trunc = t->low_water;
        /* inherit the checkpoint */
        nm->chunk_pages =
            bm && bm->chunk_pages ? bm->chunk_pages : CHUNK_PAGES_DEFAULT;
        nm->ckpt_version = bm ? bm->ckpt_version : 0;
        nm->ckpt_page_limit = bm ? bm->ckpt_page_limit : 0;
        if (nm->ckpt_page_limit > trunc)
            nm->ckpt_page_limit = trunc;
        size_t nb_chunks = bm ? bm->n_chunks : 0;
        nm->chunks = calloc(nb_chunks + 1, sizeof(*nm->chunks));
        if (!nm->chunks) {
            rc = DSQ_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < nb_chunks; i++) {
            nm->chunks[i] = bm->chunks[i];
            nm->chunks[i].key = strdup(bm->chunks[i].key);
            nm->n_chunks++;
            if (!nm->chunks[i].key) {
                rc = DSQ_ENOMEM;
                goto out;
            }
        }
        /* overlay: the base's entries (not ours, not cut) and ours */
        size_t nb = bm ? bm->n_overlay : 0, no = o->locs.n;
        nm->overlay = malloc((nb + no + 1) * sizeof(*nm->overlay));
        if (!nm->overlay) {
            rc = DSQ_ENOMEM;
            goto out;
        }
        size_t i = 0, j = 0;
        while (rc == DSQ_OK && (i < nb || j < no)) {
            const struct dsq_page_loc *lb = i < nb ? &bm->overlay[i] : NULL;
            const struct dsq_page_loc *lo = j < no ? ours_loc(o, j) : NULL;
            const struct dsq_page_loc *pick;
            const char *key;
            if (lo && (!lb || lo->pgno <= lb->pgno)) {
                if (lb && lb->pgno == lo->pgno)
                    i++;
                pick = lo;
                key = ours_key(t, o, &o->locs.v[j]);
                j++;
            } else {
                i++;
                if (lb->pgno > trunc)
                    continue;
                pick = lb;
                key = bm->segments[lb->seg];
            }
            if (pick->pgno > nm->page_count)
                continue;
            nm->overlay[nm->n_overlay] = *pick;
            rc = keytab_idx(&kt, key, &nm->overlay[nm->n_overlay].seg);
            nm->n_overlay++;
        }
        if (rc != DSQ_OK)
            goto out;
        nm->segments = kt.l.v;
        nm->n_segments = kt.l.n;
        memset(&kt, 0, sizeof(kt));
        if (nm->version - nm->ckpt_version >= t->db->checkpoint_interval ||
            nm->n_overlay > t->db->overlay_max) {
            rc = checkpoint(t, bm, nm, objs, e);
            if (rc != DSQ_OK)
                goto out;
        }
    }
    /* everything this transaction published first */
    for (size_t k = 0; rc == DSQ_OK && k < t->segs.n; k++)
        rc = strlist_add(&created, t->segs.v[k]);
    for (size_t k = 0; rc == DSQ_OK && k < o->p1segs.n; k++)
        rc = strlist_add(&created, o->p1segs.v[k]);
    for (size_t k = 0; rc == DSQ_OK && stream && k < t->n_chunks; k++)
        rc = strlist_add(&created, t->chunks[k].key);
    for (size_t k = 0; rc == DSQ_OK && k < objs->n; k++)
        rc = strlist_add(&created, objs->v[k]);
    if (rc != DSQ_OK)
        goto out;
    nm->created = created.v;
    nm->n_created = created.n;
    memset(&created, 0, sizeof(created));
    *out = nm;
    nm = NULL;
out:
    strlist_free(&kt.l);
    strlist_free(&created);
    dsq_manifest_free(nm);
    return rc;
}

/* Best-effort removal of objects nothing can reference any more. */
static void delete_objects(struct dsq_db *db, const struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct dsq_err ignore;
        if (obj_del(db, l->v[i], &ignore) != DSQ_OK)
            dsq_log(DSQ_LOG_INFO, "commit",
                    "could not remove abandoned %s/%s (recovery-scan will)",
                    db->prefix, l->v[i]);
    }
}

/*
 * The gc floor (gc.json).  0 when there is none.  info (may be NULL) gets
 * the object's etag for a compare-and-replace.
 */
static dsq_rc read_gc_floor(struct dsq_db *db, uint64_t *floor,
                            struct dsq_objinfo *info, struct dsq_err *e)
{
    struct dsq_buf buf;
    struct dsq_gcfloor g;
    char full[DSQ_KEY_MAX];
    dsq_buf_init(&buf, 65536);
    full_key(db, "gc.json", full, sizeof(full));
    dsq_rc rc = obj_get(db, "gc.json", 0, 0, &buf, info, e);
    if (rc == DSQ_ENOTFOUND) {
        *floor = 0;
        if (info)
            memset(info, 0, sizeof(*info));
        rc = DSQ_OK;
    } else if (rc == DSQ_OK) {
        rc = dsq_gcfloor_decode(buf.data, buf.len, full, &g, e);
        if (rc == DSQ_OK)
            *floor = g.floor;
    }
    dsq_buf_cleanup(&buf);
    return rc;
}

/*
 * C9: a version won on a stale base may sit in a slot gc emptied.  gc only
 * removes versions older than DSQ_GC_MIN_RETENTION_MS, so a base committed
 * recently (with a margin for clock skew) needs no check; an older one
 * costs one GET of gc.json.  *withdraw = 1 if version is below the floor.
 */
#define FLOOR_CHECK_AGE_MS (DSQ_GC_MIN_RETENTION_MS / 2)
static dsq_rc check_gc_floor(struct dsq_db *db, const struct dsq_snap *base,
                             uint64_t version, int *withdraw, struct dsq_err *e)
{
    *withdraw = 0;
    uint64_t now = dsq_now_ms();
    if (base->m && base->m->time_ms + FLOOR_CHECK_AGE_MS > now)
        return DSQ_OK;
    uint64_t floor = 0;
    dsq_rc rc = read_gc_floor(db, &floor, NULL, e);
    if (rc == DSQ_OK && version < floor)
        *withdraw = 1;
    return rc;
}

enum put_outcome { PUT_WON, PUT_LOST, PUT_FAILED };

/*
 * Create manifest key create-only and find out what happened (C3, C4):
 * a lost reply is resolved by reading the key back and comparing writer
 * and transaction ids.
 */
static enum put_outcome publish(struct dsq_txn *t, uint64_t version,
                                const struct dsq_buf *body, int *ambiguous,
                                dsq_rc *rc_out, struct dsq_err *e)
{
    struct dsq_db *db = t->db;
    char rel[64], key[DSQ_KEY_MAX];
    dsq_manifest_key(version, rel);
    full_key(db, rel, key, sizeof(key));
    for (unsigned attempt = 0;; attempt++) {
        dsq_rc rc = dsq_store_put(db->st, key, body->data, body->len,
                                  DSQ_PUT_CREATE, NULL, NULL, e);
        STAT_ADD(db, store_puts, 1);
        if (rc == DSQ_OK) {
            STAT_ADD(db, bytes_written, body->len);
            t->objects_written++;
            t->bytes_written += body->len;
            return PUT_WON;
        }
        if (rc == DSQ_EPRECOND)
            return PUT_LOST; /* the caller reads it: it may be ours */
        if (rc != DSQ_ETRANSIENT) {
            *rc_out = rc;
            dsq_err_prefix(e, "publishing %s", key);
            return PUT_FAILED;
        }
        /* outcome unknown: read it back */
        *ambiguous = 1;
        STAT_ADD(db, retries, 1);
        for (unsigned r = 0;; r++) {
            struct dsq_buf buf;
            dsq_buf_init(&buf, DSQ_MANIFEST_MAX_BYTES);
            rc = dsq_store_get(db->st, key, 0, 0, &buf, NULL, e);
            STAT_ADD(db, store_gets, 1);
            if (rc == DSQ_OK) {
                struct dsq_manifest *m = NULL;
                struct dsq_err ignore;
                int mine = dsq_manifest_decode(buf.data, buf.len, key, &m,
                                               &ignore) == DSQ_OK &&
                           strcmp(m->txn_id, t->txn_id) == 0 &&
                           strcmp(m->writer_id, db->writer_id) == 0;
                dsq_manifest_free(m);
                dsq_buf_cleanup(&buf);
                if (mine) {
                    dsq_log(DSQ_LOG_INFO, "commit",
                            "%s: reply lost, but the manifest is ours", key);
                    return PUT_WON;
                }
                return PUT_LOST;
            }
            dsq_buf_cleanup(&buf);
            if (rc == DSQ_ENOTFOUND)
                break; /* it did not land: try the create again */
            if (rc != DSQ_ETRANSIENT || r >= db->max_retries) {
                *rc_out = rc == DSQ_ETRANSIENT ? DSQ_ETRANSIENT : rc;
                dsq_err_prefix(e, "outcome of publishing %s is unknown", key);
                return PUT_FAILED;
            }
            backoff(db, r);
        }
        if (attempt >= db->max_retries) {
            *rc_out = DSQ_ERETRIES;
            dsq_err_set(e, DSQ_ERETRIES,
                        "publishing %s failed %u times with transient errors",
                        key, attempt + 1);
            return PUT_FAILED;
        }
        backoff(db, attempt);
    }
}

/* Rewrite our page 1 onto head's, counters past both (page-1 rule). */
static dsq_rc merge_page1(struct dsq_txn *t, const struct dsq_snap *head,
                          struct ours *o, struct dsq_err *e)
{
    const uint32_t ps = t->page_size;
    uint8_t *mine = malloc(ps), *theirs = malloc(ps);
    struct dsq_seg_builder *sb = NULL;
    struct dsq_buf buf;
    struct dsq_page_loc *locs = NULL;
    size_t n = 0;
    char key[96];
    dsq_rc rc = DSQ_OK;
    dsq_buf_init(&buf, SIZE_MAX);
    if (!mine || !theirs) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    rc = dsq_pgbuf_get(t->buf, 1, mine, e);
    if (rc == DSQ_OK)
        rc = manifest_read_page(t->db, head->m, 1, theirs, e);
    if (rc != DSQ_OK)
        goto out;
    uint32_t a = dsq_sqlite_counter(mine), b = dsq_sqlite_counter(theirs);
    dsq_sqlite_set_counter(theirs, (a > b ? a : b) + 1);
    rc = dsq_seg_builder_new(ps, t->db->compress, t->txn_id, &sb);
    if (rc == DSQ_OK)
        rc = dsq_seg_builder_add(sb, 1, theirs);
    if (rc == DSQ_OK)
        rc = dsq_seg_builder_finish(sb, &buf, &locs, &n);
    if (rc == DSQ_OK)
        rc = upload_new(t, "segments", "seg", &buf, &o->p1segs, key, e);
    if (rc == DSQ_OK)
        o->p1loc = locs[0];
out:
    free(locs);
    dsq_seg_builder_free(sb);
    dsq_buf_cleanup(&buf);
    free(mine);
    free(theirs);
    return rc;
}

/* Our own published manifest is a snapshot readers will want next. */
static void cache_published(struct dsq_db *db, struct dsq_manifest **nm)
{
    struct dsq_snap *s = calloc(1, sizeof(*s));
    if (!s)
        return;
    s->db = db;
    atomic_init(&s->refs, 1);
    s->version = (*nm)->version;
    s->m = *nm;
    *nm = NULL;
    snap_cache_put(db, s);
    dsq_snap_release(s);
}

/*
 * root.json is a hint, read only to start a listing near the end: a hint
 * a few versions behind costs readers nothing (one LIST page holds 1000
 * versions).  So it is written every ROOT_EVERY versions, at least once a
 * second per handle, not at every commit: one request less per commit.
 */
#define ROOT_EVERY 16
#define ROOT_MAX_AGE_MS 1000

static void update_root(struct dsq_db *db, uint64_t version)
{
    uint64_t now = dsq_now_ms();
    pthread_mutex_lock(&db->mu);
    int skip = version % ROOT_EVERY != 0 && version > 1 &&
               now < db->root_written_ms + ROOT_MAX_AGE_MS;
    if (!skip)
        db->root_written_ms = now;
    pthread_mutex_unlock(&db->mu);
    if (skip)
        return;

    struct dsq_root r = {.version = version, .time_ms = dsq_now_ms()};
    struct dsq_buf buf;
    struct dsq_err e2;
    char key[DSQ_KEY_MAX];
    dsq_buf_init(&buf, 4096);
    full_key(db, "root.json", key, sizeof(key));
    if (dsq_root_encode(&r, &buf, &e2) == DSQ_OK) {
        dsq_rc rc = dsq_store_put(db->st, key, buf.data, buf.len, DSQ_PUT_ANY,
                                  NULL, NULL, &e2);
        STAT_ADD(db, store_puts, 1);
        if (rc != DSQ_OK)
            dsq_log(DSQ_LOG_INFO, "commit", "root.json not updated: %s",
                    dsq_err_text(&e2, rc));
    }
    dsq_buf_cleanup(&buf);
}

dsq_rc dsq_txn_commit(struct dsq_txn *t, struct dsq_commit_info *info,
                      struct dsq_err *e)
{
    struct dsq_db *db = t->db;
    struct effects ef = {0};
    struct ours o = {0};
    struct dsq_snap *base = NULL;
    struct dsq_manifest *nm = NULL;
    struct strlist objs = {0};
    struct dsq_buf body;
    struct dsq_commit_info ci = {0};
    int ambiguous = 0;
    const int stream = (t->flags & DSQ_TXN_STREAM) != 0;
    dsq_rc rc = DSQ_OK;

    dsq_buf_init(&body, DSQ_MANIFEST_MAX_BYTES);
    if (t->finished)
        return dsq_err_set(e, DSQ_EINVAL, "transaction already finished");
    t->finished = 1;

    if (stream) {
        rc = stream_flush_segment(t, e);
        if (rc == DSQ_OK)
            rc = stream_finish_chunk(t, e);
        if (rc != DSQ_OK)
            goto out;
        if (t->page_size == 0) {
            rc = dsq_err_set(e, DSQ_EINVAL, "no page size for the database");
            goto out;
        }
    } else if (dsq_txn_dirty_pages(t) == 0 && t->page_count == t->base_count) {
        ci.version = t->snap->version;
        ci.noop = 1;
        goto done;
    }
    rc = compute_effects(t, &ef, e);
    if (rc != DSQ_OK)
        goto out;
    if (!stream && ef.n_pgnos == 0 && !ef.count_changed) {
        ci.version = t->snap->version;
        ci.noop = 1;
        goto done;
    }
    if (!stream) {
        rc = upload_pages(t, &ef, &o, e);
        if (rc != DSQ_OK)
            goto out;
    }
    DSQ_FAULT_POINT("commit.after_segments");

    base = dsq_snap_ref(t->snap);
    for (unsigned attempt = 0;; attempt++) {
        ci.attempts++;
        rc = build_manifest(t, base, &ef, &o, &objs, &nm, e);
        if (rc == DSQ_OK)
            rc = dsq_manifest_encode(nm, &body, e);
        if (rc != DSQ_OK)
            goto out;
        DSQ_FAULT_POINT("commit.before_manifest");
        dsq_rc prc = DSQ_OK;
        enum put_outcome po =
            publish(t, nm->version, &body, &ambiguous, &prc, e);
        if (po == PUT_FAILED) {
            rc = prc;
            goto out;
        }
        if (po == PUT_WON) {
            int withdraw = 0;
            struct dsq_err fe;
            dsq_err_clear(&fe);
            if (check_gc_floor(db, base, nm->version, &withdraw, &fe) != DSQ_OK)
                /* a won version may already carry others' commits: it
                   stands unless the floor is known to be above it */
                dsq_log(DSQ_LOG_WARNING, "commit",
                        "%s: gc floor not readable after winning version "
                        "%llu: %s",
                        db->prefix, (unsigned long long)nm->version, fe.msg);
            if (withdraw) {
                char rel[64];
                struct dsq_err ig;
                dsq_manifest_key(nm->version, rel);
                obj_del(db, rel, &ig);
                STAT_ADD(db, conflicts, 1);
                rc = dsq_err_set(e, DSQ_ECONFLICT,
                                 "%s: this transaction's snapshot (version "
                                 "%llu) was removed by gc",
                                 db->prefix,
                                 (unsigned long long)t->snap->version);
                goto out;
            }
            DSQ_FAULT_POINT("commit.after_manifest");
            ci.version = nm->version;
            note_latest(db, nm->version);
            cache_published(db, &nm);
            update_root(db, ci.version);
            DSQ_FAULT_POINT("commit.after_root");
            goto done;
        }
        /* lost the race for base+1: what was committed since? */
        uint64_t lost_at = nm->version;
        dsq_manifest_free(nm);
        nm = NULL;
        dsq_buf_reset(&body);
        uint64_t head_v;
        rc = dsq_db_latest(db, &head_v, e);
        if (rc != DSQ_OK)
            goto out;
        if (head_v < lost_at)
            head_v = lost_at; /* listing lags the create we lost */
        int p1_touched = 0;
        struct dsq_snap *x = NULL;
        for (uint64_t v = base->version + 1; v <= head_v; v++) {
            dsq_snap_release(x);
            x = NULL;
            rc = dsq_db_snapshot(db, v, &x, e);
            if (rc != DSQ_OK)
                goto out;
            if (strcmp(x->m->txn_id, t->txn_id) == 0 &&
                strcmp(x->m->writer_id, db->writer_id) == 0) {
                /* an earlier, ambiguous attempt landed after all */
                ci.version = v;
                dsq_snap_release(x);
                update_root(db, v);
                goto done;
            }
            if (v == lost_at) {
                /* lost_at is someone else's: this attempt's chunks can
                   never be referenced (C5) */
                delete_objects(db, &objs);
                strlist_free(&objs);
            }
            uint32_t witness = 0;
            if (db->isolation == DSQ_ISOLATION_SERIALIZABLE ||
                overlaps(&ef, x->m, &witness)) {
                if (db->isolation == DSQ_ISOLATION_SERIALIZABLE)
                    rc = dsq_err_set(e, DSQ_ECONFLICT,
                                     "%s: version %llu was committed since "
                                     "this transaction's snapshot (version "
                                     "%llu; serializable isolation)",
                                     db->prefix, (unsigned long long)v,
                                     (unsigned long long)t->snap->version);
                else
                    rc = dsq_err_set(e, DSQ_ECONFLICT,
                                     "%s: page %u was also changed by version "
                                     "%llu, committed since this "
                                     "transaction's snapshot (version %llu)",
                                     db->prefix, witness, (unsigned long long)v,
                                     (unsigned long long)t->snap->version);
                dsq_snap_release(x);
                STAT_ADD(db, conflicts, 1);
                if (!ambiguous) {
                    /* no PUT of ours can land any more (C5) */
                    delete_objects(db, &t->segs);
                    delete_objects(db, &o.p1segs);
                    if (stream)
                        for (size_t k = 0; k < t->n_chunks; k++) {
                            struct dsq_err ig;
                            obj_del(db, t->chunks[k].key, &ig);
                        }
                }
                goto out;
            }
            if (x->m->page1 != DSQ_PAGE1_NONE)
                p1_touched = 1;
        }
        dsq_snap_release(base);
        base = x;
        if (attempt + 1 > db->max_retries) {
            rc = dsq_err_set(e, DSQ_ERETRIES,
                             "%s: gave up after losing %u races for the "
                             "next version",
                             db->prefix, attempt + 1);
            if (!ambiguous)
                delete_objects(db, &t->segs);
            goto out;
        }
        if (p1_touched && ef.page1 == DSQ_PAGE1_COUNTERS && !stream) {
            rc = merge_page1(t, base, &o, e);
            if (rc != DSQ_OK)
                goto out;
        }
        ci.rebases++;
        STAT_ADD(db, rebases, 1);
        backoff(db, attempt);
    }
done:
    ci.objects_written = t->objects_written;
    ci.bytes_written = t->bytes_written;
    if (!ci.noop)
        STAT_ADD(db, commits, 1);
    if (info)
        *info = ci;
    rc = DSQ_OK;
out:
    dsq_snap_release(base);
    dsq_manifest_free(nm);
    strlist_free(&objs);
    strlist_free(&o.p1segs);
    free(o.locs.v);
    effects_free(&ef);
    dsq_buf_cleanup(&body);
    return rc;
}

/* ------------------------------------------------------------------ */
/* 8. admin                                                             */
/* ------------------------------------------------------------------ */

struct vlist {
    uint64_t *v;
    size_t n, cap;
    uint64_t ignored;
};

static int vlist_fn(const char *rel, const struct dsq_objinfo *info, void *arg)
{
    struct vlist *l = arg;
    uint64_t v;
    (void)info;
    if (dsq_manifest_key_parse(rel, &v) != 0) {
        l->ignored++;
        return 0;
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        uint64_t *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return 1;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = v;
    return 0;
}

static dsq_rc list_versions(struct dsq_db *db, struct vlist *l,
                            struct dsq_err *e)
{
    memset(l, 0, sizeof(*l));
    return list_rel(db, "manifests/", NULL, vlist_fn, l, e);
}

dsq_rc dsq_db_versions(struct dsq_db *db, dsq_version_fn fn, void *arg,
                       struct dsq_err *e)
{
    struct vlist l;
    dsq_rc rc = list_versions(db, &l, e);
    for (size_t i = 0; rc == DSQ_OK && i < l.n; i++) {
        struct dsq_manifest *m = NULL;
        rc = load_manifest(db, l.v[i], &m, e);
        if (rc != DSQ_OK)
            break;
        struct dsq_version_info vi = {.version = m->version,
                                      .time_ms = m->time_ms,
                                      .page_size = m->page_size,
                                      .page_count = m->page_count,
                                      .ckpt_version = m->ckpt_version};
        for (size_t k = 0; k < m->n_write; k++)
            vi.pages_written += m->write_set[k].count;
        memcpy(vi.writer_id, m->writer_id, 33);
        memcpy(vi.txn_id, m->txn_id, 33);
        dsq_manifest_free(m);
        if (fn(&vi, arg))
            break;
    }
    free(l.v);
    return rc;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strlist_sort_unique(struct strlist *l)
{
    if (l->n == 0)
        return;
    qsort(l->v, l->n, sizeof(*l->v), str_cmp);
    size_t k = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->v[i], l->v[k - 1]) == 0)
            free(l->v[i]);
        else
            l->v[k++] = l->v[i];
    }
    l->n = k;
}

static int strlist_has(const struct strlist *l, const char *s)
{
    if (l->n == 0)
        return 0;
    return bsearch(&s, l->v, l->n, sizeof(*l->v), str_cmp) != NULL;
}

/* Decoded segment page tables, by key (for verify). */
struct segidx {
    char *key;
    struct dsq_segment *seg; /* NULL if it failed to load */
};

static int segidx_cmp(const void *a, const void *b)
{
    return strcmp(((const struct segidx *)a)->key,
                  ((const struct segidx *)b)->key);
}

static void problem(struct dsq_verify_report *rep, dsq_problem_fn fn, void *arg,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void problem(struct dsq_verify_report *rep, dsq_problem_fn fn, void *arg,
                    const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rep->problems++;
    dsq_log(DSQ_LOG_ERR, "verify", "%s", msg);
    if (fn)
        fn(msg, arg);
}

/* Is loc (in segment key) a page the decoded segment really holds? */
static int loc_in_segment(const struct dsq_segment *s,
                          const struct dsq_page_loc *loc, uint32_t page_size)
{
    if (!s || s->page_size != page_size)
        return 0;
    size_t lo = 0, hi = s->n_pages;
    while (lo < hi) { /* pages are laid out in ascending offset order */
        size_t mid = lo + (hi - lo) / 2;
        const struct dsq_page_loc *p = &s->pages[mid];
        if (p->offset == loc->offset)
            return p->pgno == loc->pgno && p->length == loc->length &&
                   p->codec == loc->codec && p->checksum == loc->checksum;
        if (p->offset < loc->offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static const struct segidx *segidx_find(const struct segidx *v, size_t n,
                                        const char *key)
{
    struct segidx k = {.key = (char *)key};
    return n ? bsearch(&k, v, n, sizeof(*v), segidx_cmp) : NULL;
}

struct chunkrec {
    struct dsq_chunk_ref ref; /* key owned */
    uint32_t page_size, chunk_pages;
    struct dsq_chunk *chunk; /* NULL if it failed */
};

static int chunkrec_cmp(const void *a, const void *b)
{
    return strcmp(((const struct chunkrec *)a)->ref.key,
                  ((const struct chunkrec *)b)->ref.key);
}

dsq_rc dsq_db_verify(struct dsq_db *db, struct dsq_verify_report *rep,
                     dsq_problem_fn report_fn, dsq_progress_fn progress,
                     void *arg, struct dsq_err *e)
{
    struct vlist l;
    struct strlist segkeys = {0};
    struct chunkrec *crs = NULL;
    size_t n_crs = 0, cap_crs = 0;
    struct segidx *segs = NULL;
    size_t n_segs = 0;
    struct dsq_buf buf;
    dsq_rc rc;

    dsq_buf_init(&buf, OBJ_CAP);
    memset(rep, 0, sizeof(*rep));
    rc = list_versions(db, &l, e);
    if (rc != DSQ_OK)
        return rc;
    rep->versions = l.n;
    if (l.n == 0)
        goto out;
    rep->first_version = l.v[0];
    rep->last_version = l.v[l.n - 1];
    uint64_t total = l.n * 2, done = 0;

    /* pass 1: manifests decode, chain is contiguous; collect objects */
    for (size_t i = 0; i < l.n; i++) {
        if (i > 0 && l.v[i] != l.v[i - 1] + 1)
            problem(rep, report_fn, arg, "%s: versions %llu..%llu are missing",
                    db->prefix, (unsigned long long)l.v[i - 1] + 1,
                    (unsigned long long)l.v[i] - 1);
        struct dsq_manifest *m = NULL;
        struct dsq_err me;
        dsq_err_clear(&me);
        dsq_rc mrc = load_manifest(db, l.v[i], &m, &me);
        if (progress)
            progress(++done, total, arg);
        if (mrc == DSQ_ECORRUPT || mrc == DSQ_EUNSUPPORTED ||
            mrc == DSQ_ENOTFOUND) {
            problem(rep, report_fn, arg, "%s", dsq_err_text(&me, mrc));
            continue;
        }
        if (mrc != DSQ_OK) {
            rc = mrc;
            if (e)
                *e = me;
            goto out;
        }
        for (size_t k = 0; rc == DSQ_OK && k < m->n_segments; k++)
            rc = strlist_add(&segkeys, m->segments[k]);
        for (size_t k = 0; rc == DSQ_OK && k < m->n_chunks; k++) {
            if (n_crs == cap_crs) {
                size_t nc = cap_crs ? cap_crs * 2 : 64;
                struct chunkrec *nv = realloc(crs, nc * sizeof(*nv));
                if (!nv) {
                    rc = DSQ_ENOMEM;
                    break;
                }
                crs = nv;
                cap_crs = nc;
            }
            crs[n_crs].ref = m->chunks[k];
            crs[n_crs].ref.key = strdup(m->chunks[k].key);
            crs[n_crs].page_size = m->page_size;
            crs[n_crs].chunk_pages = m->chunk_pages;
            crs[n_crs].chunk = NULL;
            if (!crs[n_crs].ref.key)
                rc = DSQ_ENOMEM;
            else
                n_crs++;
        }
        dsq_manifest_free(m);
        if (rc != DSQ_OK)
            goto out;
    }
    /* chunks: size, checksum, decode (each distinct key once) */
    if (n_crs)
        qsort(crs, n_crs, sizeof(*crs), chunkrec_cmp);
    {
        size_t k = 0;
        for (size_t i = 0; i < n_crs; i++) {
            if (k > 0 && strcmp(crs[i].ref.key, crs[k - 1].ref.key) == 0) {
                if (crs[i].ref.checksum != crs[k - 1].ref.checksum ||
                    crs[i].ref.size != crs[k - 1].ref.size)
                    problem(rep, report_fn, arg,
                            "%s/%s is referenced with different checksums",
                            db->prefix, crs[i].ref.key);
                free(crs[i].ref.key);
                continue;
            }
            crs[k++] = crs[i];
        }
        n_crs = k;
    }
    for (size_t i = 0; i < n_crs; i++) {
        struct dsq_err ce;
        dsq_err_clear(&ce);
        dsq_rc crc = chunk_fetch(db, &crs[i].ref, crs[i].page_size,
                                 crs[i].chunk_pages, &crs[i].chunk, &ce);
        if (crc == DSQ_ECORRUPT) {
            problem(rep, report_fn, arg, "%s", dsq_err_text(&ce, crc));
            continue;
        }
        if (crc != DSQ_OK) {
            rc = crc;
            if (e)
                *e = ce;
            goto out;
        }
        rep->chunks++;
        for (size_t k = 0; rc == DSQ_OK && k < crs[i].chunk->n_segments; k++)
            rc = strlist_add(&segkeys, crs[i].chunk->segments[k]);
        if (rc != DSQ_OK)
            goto out;
    }
    /* segments: every page decodes and matches its checksum */
    strlist_sort_unique(&segkeys);
    segs = calloc(segkeys.n + 1, sizeof(*segs));
    if (!segs) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    total = l.n + segkeys.n;
    done = l.n;
    for (size_t i = 0; i < segkeys.n; i++) {
        segs[n_segs].key = segkeys.v[i];
        segs[n_segs].seg = NULL;
        n_segs++;
        char full[DSQ_KEY_MAX];
        full_key(db, segkeys.v[i], full, sizeof(full));
        dsq_buf_reset(&buf);
        struct dsq_err se;
        dsq_err_clear(&se);
        dsq_rc src = obj_get(db, segkeys.v[i], 0, 0, &buf, NULL, &se);
        if (progress)
            progress(++done, total, arg);
        if (src == DSQ_ENOTFOUND) {
            problem(rep, report_fn, arg, "segment %s is missing", full);
            continue;
        }
        if (src != DSQ_OK) {
            rc = src;
            if (e)
                *e = se;
            goto out;
        }
        src = dsq_seg_decode(buf.data, buf.len, full, &segs[i].seg, &se);
        if (src != DSQ_OK) {
            problem(rep, report_fn, arg, "%s", dsq_err_text(&se, src));
            continue;
        }
        rep->segments++;
        rep->pages_checked += segs[i].seg->n_pages;
    }
    /* pass 2: every location named points at that very page */
    for (size_t i = 0; i < n_crs; i++) {
        const struct dsq_chunk *c = crs[i].chunk;
        for (size_t k = 0; c && k < c->n_entries; k++) {
            const struct segidx *si =
                segidx_find(segs, n_segs, c->segments[c->entries[k].seg]);
            if (!si || !si->seg)
                continue; /* already reported */
            if (!loc_in_segment(si->seg, &c->entries[k], crs[i].page_size)) {
                problem(rep, report_fn, arg,
                        "%s/%s: page %u is not where it says in %s", db->prefix,
                        crs[i].ref.key, c->entries[k].pgno, si->key);
                break;
            }
        }
    }
    for (size_t i = 0; i < l.n; i++) {
        struct dsq_manifest *m = NULL;
        struct dsq_err me;
        if (load_manifest(db, l.v[i], &m, &me) != DSQ_OK)
            continue; /* reported in pass 1 */
        for (size_t k = 0; k < m->n_overlay; k++) {
            const struct segidx *si =
                segidx_find(segs, n_segs, m->segments[m->overlay[k].seg]);
            if (!si || !si->seg)
                continue;
            if (!loc_in_segment(si->seg, &m->overlay[k], m->page_size)) {
                problem(rep, report_fn, arg,
                        "version %llu: page %u is not where it says in %s",
                        (unsigned long long)m->version, m->overlay[k].pgno,
                        si->key);
                break;
            }
        }
        dsq_manifest_free(m);
    }
out:
    if (rc == DSQ_OK && rep->problems)
        rc = dsq_err_set(e, DSQ_ECORRUPT, "%s: %llu problem(s) found",
                         db->prefix, (unsigned long long)rep->problems);
    for (size_t i = 0; i < n_segs; i++)
        dsq_seg_free(segs[i].seg);
    free(segs);
    strlist_free(&segkeys);
    for (size_t i = 0; i < n_crs; i++) {
        free(crs[i].ref.key);
        dsq_chunk_free(crs[i].chunk);
    }
    free(crs);
    free(l.v);
    dsq_buf_cleanup(&buf);
    return rc;
}

struct orphan_scan {
    struct strlist *refs;
    uint64_t now, grace;
    struct strlist found;
    uint64_t *sizes, *mtimes;
    size_t cap;
};

static int orphan_fn(const char *rel, const struct dsq_objinfo *info, void *arg)
{
    struct orphan_scan *s = arg;
    if (strlist_has(s->refs, rel))
        return 0;
    if (info->mtime_ms + s->grace > s->now)
        return 0; /* may belong to a commit in flight */
    if (s->found.n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        uint64_t *a = realloc(s->sizes, nc * sizeof(*a));
        if (a)
            s->sizes = a;
        uint64_t *b = realloc(s->mtimes, nc * sizeof(*b));
        if (b)
            s->mtimes = b;
        if (!a || !b)
            return 1;
        s->cap = nc;
    }
    s->sizes[s->found.n] = info->size;
    s->mtimes[s->found.n] = info->mtime_ms;
    return strlist_add(&s->found, rel) != DSQ_OK;
}

/*
 * Add to refs every object manifest m names: what it created, its overlay
 * segments, its chunks and the segments those chunks name (each chunk is
 * read once; chunkkeys remembers which).
 */
static dsq_rc collect_refs(struct dsq_db *db, const struct dsq_manifest *m,
                           struct strlist *refs, struct strlist *chunkkeys,
                           struct dsq_err *e)
{
    dsq_rc rc = DSQ_OK;
    for (size_t k = 0; rc == DSQ_OK && k < m->n_created; k++)
        rc = strlist_add(refs, m->created[k]);
    for (size_t k = 0; rc == DSQ_OK && k < m->n_segments; k++)
        rc = strlist_add(refs, m->segments[k]);
    for (size_t k = 0; rc == DSQ_OK && k < m->n_chunks; k++) {
        rc = strlist_add(refs, m->chunks[k].key);
        if (rc != DSQ_OK || strlist_has(chunkkeys, m->chunks[k].key))
            continue;
        struct dsq_chunk *c = NULL;
        rc =
            chunk_fetch(db, &m->chunks[k], m->page_size, m->chunk_pages, &c, e);
        for (size_t j = 0; rc == DSQ_OK && j < c->n_segments; j++)
            rc = strlist_add(refs, c->segments[j]);
        dsq_chunk_free(c);
        if (rc == DSQ_OK)
            rc = strlist_add(chunkkeys, m->chunks[k].key);
        strlist_sort_unique(chunkkeys);
    }
    return rc;
}

dsq_rc dsq_db_recovery_scan(struct dsq_db *db, uint64_t grace_ms, int do_delete,
                            dsq_orphan_fn fn, void *arg, uint64_t *n_orphans,
                            struct dsq_err *e)
{
    struct vlist l;
    struct strlist refs = {0};
    struct strlist chunkkeys = {0};
    struct orphan_scan s = {0};
    dsq_rc rc = list_versions(db, &l, e);
    /* everything any manifest (or chunk it references) names */
    for (size_t i = 0; rc == DSQ_OK && i < l.n; i++) {
        struct dsq_manifest *m = NULL;
        rc = load_manifest(db, l.v[i], &m, e);
        if (rc != DSQ_OK)
            break;
        rc = collect_refs(db, m, &refs, &chunkkeys, e);
        dsq_manifest_free(m);
    }
    strlist_sort_unique(&refs);
    s.refs = &refs;
    s.now = dsq_now_ms();
    s.grace = grace_ms;
    if (rc == DSQ_OK)
        rc = list_rel(db, "segments/", NULL, orphan_fn, &s, e);
    if (rc == DSQ_OK)
        rc = list_rel(db, "pagetables/", NULL, orphan_fn, &s, e);
    for (size_t i = 0; rc == DSQ_OK && i < s.found.n; i++) {
        int deleted = 0;
        if (do_delete) {
            rc = obj_del(db, s.found.v[i], e);
            deleted = rc == DSQ_OK;
        }
        if (fn)
            fn(s.found.v[i], s.sizes[i], s.mtimes[i], deleted, arg);
    }
    if (rc == DSQ_OK && n_orphans)
        *n_orphans = s.found.n;
    strlist_free(&s.found);
    free(s.sizes);
    free(s.mtimes);
    strlist_free(&refs);
    strlist_free(&chunkkeys);
    free(l.v);
    return rc;
}

void dsq_fault_point(const char *name)
{
    const char *want = getenv("DSQLFS_FAULT");
    if (!want || strcmp(want, name) != 0)
        return;
    static atomic_int hits;
    const char *skip = getenv("DSQLFS_FAULT_SKIP");
    int n = atomic_fetch_add(&hits, 1);
    if (skip && n < (int)strtol(skip, NULL, 10))
        return;
    dsq_log(DSQ_LOG_CRIT, "fault", "fault point %s reached: exiting", name);
    _exit(86);
}

/* ---- gc ---- */

dsq_rc dsq_db_gc(struct dsq_db *db, uint64_t keep_versions, uint64_t keep_ms,
                 int dry_run, struct dsq_gc_report *rep, struct dsq_err *e)
{
    struct vlist l = {0};
    struct strlist dead = {0}, live = {0}, chunkkeys = {0};
    struct dsq_objinfo floor_info;
    uint64_t floor_old = 0;
    dsq_rc rc;

    memset(rep, 0, sizeof(*rep));
    if (keep_versions < 1)
        keep_versions = 1;
    if (keep_ms < DSQ_GC_MIN_RETENTION_MS)
        return dsq_err_set(e, DSQ_EINVAL,
                           "gc keeps every version younger than %u s at "
                           "least (writers rely on it)",
                           DSQ_GC_MIN_RETENTION_MS / 1000);
    rc = read_gc_floor(db, &floor_old, &floor_info, e);
    if (rc == DSQ_OK)
        rc = list_versions(db, &l, e);
    if (rc != DSQ_OK || l.n == 0)
        goto out;
    uint64_t head = l.v[l.n - 1];
    uint64_t floor = head >= keep_versions ? head - keep_versions + 1 : 1;
    /* also keep every version committed within keep_ms */
    uint64_t cutoff = dsq_now_ms() > keep_ms ? dsq_now_ms() - keep_ms : 0;
    for (size_t i = 0; i < l.n && l.v[i] < floor; i++) {
        struct dsq_manifest *m = NULL;
        rc = load_manifest(db, l.v[i], &m, e);
        if (rc != DSQ_OK)
            goto out;
        int young = m->time_ms >= cutoff;
        dsq_manifest_free(m);
        if (young) {
            floor = l.v[i];
            break;
        }
    }
    if (floor < floor_old)
        floor = floor_old;
    rep->floor = floor;
    rep->head = head;
    /* what the doomed versions created, and what the kept ones use */
    for (size_t i = 0; i < l.n; i++) {
        struct dsq_manifest *m = NULL;
        rc = load_manifest(db, l.v[i], &m, e);
        if (rc != DSQ_OK)
            goto out;
        if (l.v[i] < floor) {
            rep->versions_removed++;
            for (size_t k = 0; rc == DSQ_OK && k < m->n_created; k++)
                rc = strlist_add(&dead, m->created[k]);
        } else {
            rc = collect_refs(db, m, &live, &chunkkeys, e);
        }
        dsq_manifest_free(m);
        if (rc != DSQ_OK)
            goto out;
    }
    strlist_sort_unique(&dead);
    strlist_sort_unique(&live);
    for (size_t i = 0; i < dead.n; i++)
        if (!strlist_has(&live, dead.v[i]))
            rep->objects_removed++;
    if (dry_run || rep->versions_removed == 0)
        goto out;
    /* C9: the floor is durable before any manifest goes */
    if (floor > floor_old) {
        struct dsq_gcfloor g = {.floor = floor, .time_ms = dsq_now_ms()};
        struct dsq_buf buf;
        char key[DSQ_KEY_MAX];
        dsq_buf_init(&buf, 4096);
        full_key(db, "gc.json", key, sizeof(key));
        rc = dsq_gcfloor_encode(&g, &buf, e);
        if (rc == DSQ_OK)
            rc = dsq_store_put(
                db->st, key, buf.data, buf.len,
                floor_info.etag[0] ? DSQ_PUT_IF_MATCH : DSQ_PUT_CREATE,
                floor_info.etag[0] ? floor_info.etag : NULL, NULL, e);
        dsq_buf_cleanup(&buf);
        if (rc == DSQ_EPRECOND)
            rc = dsq_err_set(e, DSQ_EBUSY,
                             "%s: another gc moved the floor meanwhile; run "
                             "gc again",
                             db->prefix);
        if (rc != DSQ_OK)
            goto out;
    }
    /* manifests first (oldest first), then what only they used */
    for (size_t i = 0; i < l.n && l.v[i] < floor; i++) {
        char rel[64];
        dsq_manifest_key(l.v[i], rel);
        rc = obj_del(db, rel, e);
        if (rc != DSQ_OK)
            goto out;
    }
    for (size_t i = 0; i < dead.n; i++)
        if (!strlist_has(&live, dead.v[i])) {
            rc = obj_del(db, dead.v[i], e);
            if (rc != DSQ_OK)
                goto out;
        }
out:
    strlist_free(&dead);
    strlist_free(&live);
    strlist_free(&chunkkeys);
    free(l.v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* 9. for the FUSE daemon: freshness, changes, rollbacks                */
/* ------------------------------------------------------------------ */

dsq_rc dsq_db_head_after(struct dsq_db *db, uint64_t known, uint64_t *latest,
                         struct dsq_err *e)
{
    char rel[64], key[DSQ_KEY_MAX];
    struct dsq_objinfo info;
    dsq_manifest_key(known + 1, rel);
    full_key(db, rel, key, sizeof(key));
    dsq_rc rc = dsq_store_head(db->st, key, &info, e);
    STAT_ADD(db, store_heads, 1);
    if (rc == DSQ_ENOTFOUND) {
        *latest = known;
        return DSQ_OK;
    }
    if (rc != DSQ_OK)
        return rc;
    uint64_t v = 0;
    rc = dsq_db_latest(db, &v, e);
    if (rc != DSQ_OK)
        return rc;
    *latest = v > known ? v : known + 1; /* the listing may lag the HEAD */
    return DSQ_OK;
}

static int prange_cmp(const void *a, const void *b)
{
    const struct dsq_page_range *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static dsq_rc prange_add(struct dsq_changes *c, size_t *cap,
                         const struct dsq_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c->n_ranges == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            struct dsq_page_range *nv = realloc(c->ranges, nc * sizeof(*nv));
            if (!nv)
                return DSQ_ENOMEM;
            c->ranges = nv;
            *cap = nc;
        }
        c->ranges[c->n_ranges++] =
            (struct dsq_page_range){r[i].start, r[i].count};
    }
    return DSQ_OK;
}

dsq_rc dsq_db_changes(struct dsq_db *db, uint64_t from, uint64_t to,
                      struct dsq_changes *out, struct dsq_err *e)
{
    struct dsq_changes c = {0};
    size_t cap = 0;
    dsq_rc rc = DSQ_OK;
    uint32_t prev_count = 0;
    if (from > to)
        return dsq_err_set(e, DSQ_EINVAL, "changes from %llu to %llu",
                           (unsigned long long)from, (unsigned long long)to);
    if (from > 0) {
        struct dsq_snap *s0 = NULL;
        rc = dsq_db_snapshot(db, from, &s0, e);
        if (rc != DSQ_OK)
            return rc;
        prev_count = dsq_snap_page_count(s0);
        c.page_count = prev_count;
        dsq_snap_release(s0);
    }
    for (uint64_t v = from + 1; v <= to && rc == DSQ_OK; v++) {
        struct dsq_snap *x = NULL;
        rc = dsq_db_snapshot(db, v, &x, e);
        if (rc != DSQ_OK)
            break;
        const struct dsq_manifest *m = x->m;
        rc = prange_add(&c, &cap, m->write_set, m->n_write);
        if (rc == DSQ_OK)
            rc = prange_add(&c, &cap, m->freed_set, m->n_freed);
        if (m->page1 == DSQ_PAGE1_CHANGED || m->page_count != prev_count)
            c.page1_changed = 1;
        prev_count = m->page_count;
        c.page_count = m->page_count;
        dsq_snap_release(x);
    }
    if (rc != DSQ_OK) {
        dsq_changes_cleanup(&c);
        return rc;
    }
    if (c.n_ranges > 1) {
        qsort(c.ranges, c.n_ranges, sizeof(*c.ranges), prange_cmp);
        size_t k = 0;
        for (size_t i = 1; i < c.n_ranges; i++) {
            struct dsq_page_range *a = &c.ranges[k], *b = &c.ranges[i];
            uint64_t aend = (uint64_t)a->first + a->count;
            if (b->first <= aend) {
                uint64_t bend = (uint64_t)b->first + b->count;
                if (bend > aend)
                    a->count = (uint32_t)(bend - a->first);
            } else {
                c.ranges[++k] = *b;
            }
        }
        c.n_ranges = k + 1;
    }
    *out = c;
    return DSQ_OK;
}

void dsq_changes_cleanup(struct dsq_changes *c)
{
    if (!c)
        return;
    free(c->ranges);
    memset(c, 0, sizeof(*c));
}

dsq_rc dsq_txn_drop_unchanged(struct dsq_txn *t, size_t *remaining,
                              struct dsq_err *e)
{
    uint32_t *pgnos = NULL;
    size_t n = 0, ndrop = 0;
    uint8_t *a = NULL, *b = NULL;
    uint8_t *drop = NULL;
    struct dsq_pgbuf *nb = NULL;
    dsq_rc rc = DSQ_OK;
    if ((t->flags & DSQ_TXN_STREAM) || !t->buf || t->finished)
        goto done;
    uint32_t limit =
        t->base_count < t->low_water ? t->base_count : t->low_water;
    rc = dsq_pgbuf_pgnos(t->buf, &pgnos, &n);
    if (rc != DSQ_OK)
        goto out;
    a = malloc(t->page_size);
    b = malloc(t->page_size);
    drop = calloc(n ? n : 1, 1);
    if (!a || !b || !drop) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n && pgnos[i] <= limit; i++) {
        rc = dsq_pgbuf_get(t->buf, pgnos[i], a, e);
        if (rc == DSQ_OK)
            rc = dsq_snap_read_page(t->snap, pgnos[i], b, e);
        if (rc != DSQ_OK)
            goto out;
        if (memcmp(a, b, t->page_size) == 0) {
            drop[i] = 1;
            ndrop++;
        }
    }
    if (ndrop == 0)
        goto done;
    rc = dsq_pgbuf_new(t->page_size, t->db->txn_mem, t->db->spill_dir, &nb);
    if (rc != DSQ_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (drop[i])
            continue;
        rc = dsq_pgbuf_get(t->buf, pgnos[i], a, e);
        if (rc == DSQ_OK)
            rc = dsq_pgbuf_put(nb, pgnos[i], a, e);
        if (rc != DSQ_OK)
            goto out;
    }
    dsq_pgbuf_free(t->buf);
    t->buf = nb;
    nb = NULL;
done:
    if (remaining)
        *remaining = dsq_txn_dirty_pages(t);
out:
    dsq_pgbuf_free(nb);
    free(pgnos);
    free(a);
    free(b);
    free(drop);
    return rc;
}
