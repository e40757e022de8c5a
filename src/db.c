/*
 * db.c - the engine, reading side: the handle, store calls with retry,
 * caches, versions and snapshots.  Page lookup and single-page reads are
 * in db_page.c, bulk reads in db_read.c; write transactions in db_txn.c,
 * the commit protocol in db_commit.c; verify, recovery scan, gc and the FUSE
 * daemon's helpers in db_admin.c; what they share in db_int.h.
 *
 * Layer: services.  Calls store.h (objects), manifest.h and segment.h
 * (codecs), cache.h (disk cache).  Format: docs/format.md.
 *
 * Sections, in order:
 *   1. handle, keys, stats
 *   2. store calls with retry and backoff
 *   3. caches (pages, chunks, snapshots)
 *   4. versions and snapshots
 *
 * Locking: db->mu guards the caches and stats.  It is never held across a
 * store call.  Snapshots are immutable after creation; their refcount is
 * atomic.
 */
#include "db_int.h"
#include "sqlitefmt.h"

/* Full store key of a key relative to the database prefix. */
void dsq__full_key(const struct dsq_db *db, const char *rel, char *out,
                   size_t outsz)
{
    if (dsq_key_is_foreign(rel)) {
        dsq__foreign_full_key(db, rel, out, outsz);
        return;
    }
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
    db->store_timeout_ns = (uint64_t)(cfg->store_timeout_s * 1e9);
    db->segment_max = cfg->segment_max_bytes;
    db->isolation = cfg->isolation;
    db->compress = cfg->compress;
    db->txn_mem = cfg->txn_mem_bytes;
    if (cfg->cache_dir)
        db->spill_dir = strdup(cfg->cache_dir);
    /* the bound is in bytes, whatever the page size (64 KiB pages once
       made a 32 MiB cache hold 512 MiB) */
    db->pc_max_bytes = cfg->page_cache_bytes;
    db->pc_max = cfg->page_cache_bytes / 4096;
    if (db->pc_max < 16)
        db->pc_max = 16;
    db->pc_nbuckets = 1024;
    while (db->pc_nbuckets < db->pc_max && db->pc_nbuckets < (1u << 22))
        db->pc_nbuckets *= 2;
    db->pc_hash = calloc(db->pc_nbuckets, sizeof(*db->pc_hash));
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->fresh_cv, NULL);
    pthread_cond_init(&db->ra_cv, NULL);
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
    dsq__readahead_wait(db); /* its thread holds a snapshot of ours */
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
    dsq__hot_free(db->hot);
    pthread_mutex_destroy(&db->mu);
    pthread_cond_destroy(&db->fresh_cv);
    pthread_cond_destroy(&db->ra_cv);
    dsq_cache_close(db->dcache);
    free(db->spill_dir);
    free(db->prefix);
    free(db);
}

const char *dsq_db_prefix(const struct dsq_db *db)
{
    return db->prefix;
}

dsq_rc dsq_db_spill_file(struct dsq_db *db, int *fd, struct dsq_err *e)
{
    return dsq_spill_file_open(db->spill_dir, fd, e);
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

/* Full jitter: sleep a uniform time in [0, min(max, base * 2^attempt)),
   never past store_timeout. */
int dsq__retry(struct dsq_db *db, unsigned attempt, uint64_t start_ns,
               struct dsq_err *e)
{
    if (attempt >= db->max_retries)
        return 0;
    uint64_t now = dsq_mono_ns();
    uint64_t spent = now - start_ns;
    if (spent + 1000000u >= db->store_timeout_ns) { /* < 1 ms left */
        dsq_err_prefix(e,
                       "no answer from the store within %.1f s "
                       "(store_timeout)",
                       (double)db->store_timeout_ns / 1e9);
        return 0;
    }
    STAT_ADD(db, retries, 1);
    double cap = db->retry_base_s * pow(2.0, (double)attempt);
    if (cap > db->retry_max_s)
        cap = db->retry_max_s;
    double left = (double)(db->store_timeout_ns - spent) / 1e9;
    if (cap > left)
        cap = left;
    uint64_t ms = (uint64_t)(cap * 1000.0);
    if (ms > 0)
        dsq_env.sleep_ms(dsq_random_below(ms + 1));
    return 1;
}

/* GET (whole or range) of a relative key, retrying transient failures. */
dsq_rc dsq__obj_get(struct dsq_db *db, const char *rel, uint64_t off,
                    uint64_t len, struct dsq_buf *out, struct dsq_objinfo *info,
                    struct dsq_err *e)
{
    char key[DSQ_KEY_MAX];
    dsq__full_key(db, rel, key, sizeof(key));
    dsq_rc rc;
    const uint64_t start = dsq_mono_ns();
    for (unsigned attempt = 0;; attempt++) {
        size_t before = out->len;
        uint64_t depth = dsq__req_begin(db);
        rc = dsq_store_get(db->st, key, off, len, out, info, e);
        dsq__req_end(db, depth, "GET", key);
        STAT_ADD(db, store_gets, 1);
        if (rc == DSQ_OK) {
            STAT_ADD(db, bytes_read, out->len - before);
            return rc;
        }
        out->len = before;
        if (rc != DSQ_ETRANSIENT || !dsq__retry(db, attempt, start, e))
            return rc;
    }
}

/* Idempotent PUT (unconditional) of a relative key, with retries. */
dsq_rc dsq__obj_put(struct dsq_db *db, const char *rel, const void *data,
                    size_t len, struct dsq_err *e)
{
    char key[DSQ_KEY_MAX];
    dsq__full_key(db, rel, key, sizeof(key));
    dsq_rc rc;
    const uint64_t start = dsq_mono_ns();
    for (unsigned attempt = 0;; attempt++) {
        uint64_t depth = dsq__req_begin(db);
        rc = dsq_store_put(db->st, key, data, len, DSQ_PUT_ANY, NULL, NULL, e);
        dsq__req_end(db, depth, "PUT", key);
        STAT_ADD(db, store_puts, 1);
        if (rc == DSQ_OK) {
            STAT_ADD(db, bytes_written, len);
            return rc;
        }
        if (rc != DSQ_ETRANSIENT || !dsq__retry(db, attempt, start, e))
            return rc;
    }
}

dsq_rc dsq__obj_del(struct dsq_db *db, const char *rel, struct dsq_err *e)
{
    char key[DSQ_KEY_MAX];
    dsq__full_key(db, rel, key, sizeof(key));
    dsq_rc rc;
    const uint64_t start = dsq_mono_ns();
    for (unsigned attempt = 0;; attempt++) {
        uint64_t depth = dsq__req_begin(db);
        rc = dsq_store_del(db->st, key, e);
        dsq__req_end(db, depth, "DELETE", key);
        STAT_ADD(db, store_dels, 1);
        if (rc != DSQ_ETRANSIENT || !dsq__retry(db, attempt, start, e))
            return rc;
    }
}

static dsq_rc obj_list(struct dsq_db *db, const struct dsq_list_req *req,
                       struct dsq_list_page *out, struct dsq_err *e)
{
    dsq_rc rc;
    const uint64_t start = dsq_mono_ns();
    for (unsigned attempt = 0;; attempt++) {
        memset(out, 0, sizeof(*out));
        uint64_t depth = dsq__req_begin(db);
        rc = dsq_store_list(db->st, req, out, e);
        dsq__req_end(db, depth, "LIST", req->prefix);
        STAT_ADD(db, store_lists, 1);
        if (rc != DSQ_ETRANSIENT || !dsq__retry(db, attempt, start, e))
            return rc;
    }
}

/*
 * List every key under a relative prefix (e.g. "manifests/"), starting
 * after a relative key; fn gets the key relative to the db prefix.
 */
static dsq_rc list_rel_pages(struct dsq_db *db, const char *relprefix,
                             const char *start_after_rel, dsq__rel_list_fn fn,
                             void *arg, int one_page, int *more,
                             struct dsq_err *e);

dsq_rc dsq__list_rel(struct dsq_db *db, const char *relprefix,
                     const char *start_after_rel, dsq__rel_list_fn fn,
                     void *arg, struct dsq_err *e)
{
    return list_rel_pages(db, relprefix, start_after_rel, fn, arg, 0, NULL, e);
}

/* The same; with one_page, only the first page (*more: others follow). */
static dsq_rc list_rel_pages(struct dsq_db *db, const char *relprefix,
                             const char *start_after_rel, dsq__rel_list_fn fn,
                             void *arg, int one_page, int *more,
                             struct dsq_err *e)
{
    if (more)
        *more = 0;
    char prefix[DSQ_KEY_MAX], after[DSQ_KEY_MAX];
    dsq__full_key(db, relprefix, prefix, sizeof(prefix));
    if (start_after_rel)
        dsq__full_key(db, start_after_rel, after, sizeof(after));
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
        if (token && one_page) {
            if (more)
                *more = 1;
            free(token);
            return DSQ_OK;
        }
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

/*
 * Copy a cached page out; 1 on hit.  The page number and checksum must
 * match too: a manifest key names different bytes in a database deleted
 * and created again.
 */
int dsq__pc_lookup(struct dsq_db *db, const char *segkey,
                   const struct dsq_page_loc *loc, void *out,
                   uint32_t page_size)
{
    size_t b;
    int hit = 0;
    pthread_mutex_lock(&db->mu);
    struct pc_entry *p = pc_find(db, segkey, loc->offset, &b);
    if (p && p->pgno == loc->pgno && p->checksum == loc->checksum) {
        memcpy(out, p->page, page_size);
        pc_unlink_lru(db, p);
        pc_push_front(db, p);
        hit = 1;
    }
    pthread_mutex_unlock(&db->mu);
    return hit;
}

int dsq__pc_has(struct dsq_db *db, const char *segkey,
                const struct dsq_page_loc *loc)
{
    size_t b;
    pthread_mutex_lock(&db->mu);
    struct pc_entry *p = pc_find(db, segkey, loc->offset, &b);
    int has = p && p->pgno == loc->pgno && p->checksum == loc->checksum;
    pthread_mutex_unlock(&db->mu);
    return has;
}

/* Page reads served without a store request (memory or disk cache) and
   with one; page cache lookups themselves are not counted. */
void dsq__count_reads(struct dsq_db *db, uint64_t hits, uint64_t misses)
{
    pthread_mutex_lock(&db->mu);
    db->stats.cache_hits += hits;
    db->stats.cache_misses += misses;
    pthread_mutex_unlock(&db->mu);
}

void dsq__pc_insert(struct dsq_db *db, const char *segkey,
                    const struct dsq_page_loc *loc, const void *page,
                    uint32_t page_size)
{
    uint64_t offset = loc->offset;
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
    n->pgno = loc->pgno;
    n->checksum = loc->checksum;
    n->cost = page_size + strlen(segkey) + 1 + sizeof(*n) + 3 * 16;
    memcpy(n->page, page, page_size);
    size_t b;
    pthread_mutex_lock(&db->mu);
    struct pc_entry *old = pc_find(db, segkey, offset, &b);
    if (old && (old->pgno != n->pgno || old->checksum != n->checksum)) {
        /* stale (another incarnation's manifest): replace it */
        memcpy(old->page, page, page_size);
        old->pgno = n->pgno;
        old->checksum = n->checksum;
    }
    if (old) {
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
    db->pc_bytes += n->cost;
    while (db->pc_bytes > db->pc_max_bytes && db->pc_tail) {
        struct pc_entry *v = db->pc_tail;
        size_t vb;
        pc_find(db, v->segkey, v->offset, &vb);
        struct pc_entry **pp = &db->pc_hash[vb];
        while (*pp != v)
            pp = &(*pp)->hnext;
        *pp = v->hnext;
        pc_unlink_lru(db, v);
        free(v->segkey);
        db->pc_bytes -= v->cost;
        free(v->page);
        free(v);
        db->pc_count--;
    }
    pthread_mutex_unlock(&db->mu);
}

static int loc_cmp_pgno(const void *k, const void *el)
{
    uint32_t p = *(const uint32_t *)k;
    const struct dsq_page_loc *l = el;
    return p < l->pgno ? -1 : p > l->pgno;
}

const struct dsq_page_loc *dsq__find_loc(const struct dsq_page_loc *v, size_t n,
                                         uint32_t pgno)
{
    if (n == 0)
        return NULL;
    return bsearch(&pgno, v, n, sizeof(*v), loc_cmp_pgno);
}

/* Load, verify and decode a chunk object (no caching). */
dsq_rc dsq__chunk_fetch(struct dsq_db *db, const struct dsq_chunk_ref *ref,
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
        rc = dsq__obj_get(db, ref->key, 0, 0, &buf, NULL, e);
    }
    if (rc == DSQ_ENOTFOUND) {
        rc = dsq__missing(e, "page-table chunk %s/%s is missing", db->prefix,
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
        c->chunk_pages != chunk_pages ||
        (dsq_key_is_foreign(ref->key) && dsq__chunk_rebase(c, ref->key) != 0)) {
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
struct dsq_chunk *dsq__chunk_cached(struct dsq_db *db, const char *key)
{
    for (int i = 0; i < CHUNK_CACHE_MAX; i++)
        if (db->chunks[i].key && strcmp(db->chunks[i].key, key) == 0) {
            db->chunks[i].stamp = ++db->chunk_clock;
            return db->chunks[i].chunk;
        }
    return NULL;
}

/* Caller holds db->mu.  Takes ownership of c (frees it if not kept). */
struct dsq_chunk *dsq__chunk_store(struct dsq_db *db, const char *key,
                                   struct dsq_chunk *c)
{
    struct dsq_chunk *have = dsq__chunk_cached(db, key);
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

dsq_rc dsq__chunk_lookup(struct dsq_db *db, const struct dsq_chunk_ref *ref,
                         uint32_t page_size, uint32_t chunk_pages,
                         uint32_t pgno, struct dsq_page_loc *loc, char *segkey,
                         size_t segkey_sz, struct dsq_err *e)
{
    pthread_mutex_lock(&db->mu);
    struct dsq_chunk *c = dsq__chunk_cached(db, ref->key);
    if (!c) {
        pthread_mutex_unlock(&db->mu);
        struct dsq_chunk *fresh = NULL;
        dsq_rc rc =
            dsq__chunk_fetch(db, ref, page_size, chunk_pages, &fresh, e);
        if (rc != DSQ_OK)
            return rc;
        pthread_mutex_lock(&db->mu);
        c = dsq__chunk_store(db, ref->key, fresh);
        if (!c) {
            pthread_mutex_unlock(&db->mu);
            dsq_chunk_free(fresh);
            return DSQ_ENOMEM;
        }
    }
    const struct dsq_page_loc *l =
        dsq__find_loc(c->entries, c->n_entries, pgno);
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
    dsq__full_key(db, "root.json", key, sizeof(key));
    const uint64_t start = dsq_mono_ns();
    for (unsigned attempt = 0;; attempt++) {
        uint64_t depth = dsq__req_begin(db);
        rc = dsq_store_put(db->st, key, buf.data, buf.len, DSQ_PUT_CREATE, NULL,
                           NULL, e);
        dsq__req_end(db, depth, "PUT", key);
        STAT_ADD(db, store_puts, 1);
        /* outcome unknown: the next create-only attempt tells us */
        if (rc != DSQ_ETRANSIENT || !dsq__retry(db, attempt, start, e))
            break;
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
    dsq__full_key(db, "root.json", key, sizeof(key));
    uint64_t depth = dsq__req_begin(db);
    dsq_rc rc = dsq_store_head(db->st, key, &info, e);
    dsq__req_end(db, depth, "HEAD", key);
    STAT_ADD(db, store_heads, 1);
    if (rc == DSQ_OK) {
        *exists = 1;
        return DSQ_OK;
    }
    if (rc != DSQ_ENOTFOUND)
        return rc;
    int any = 0;
    rc = dsq__list_rel(db, "manifests/", NULL, any_fn, &any, e);
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
    dsq_rc rc = dsq__obj_get(db, "root.json", 0, 0, &buf, NULL, e);
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
    char max_etag[DSQ_ETAG_MAX];
};

static int scan_fn(const char *rel, const struct dsq_objinfo *info, void *arg)
{
    struct scan_state *s = arg;
    uint64_t v;
    if (dsq_manifest_key_parse(rel, &v) != 0)
        return 0; /* not a manifest key: ignore */
    if (s->count == 0)
        s->first = v;
    if (s->count == 0 || v > s->max) {
        s->max = v;
        memcpy(s->max_etag, info->etag, sizeof(s->max_etag));
    }
    s->count++;
    return 0;
}

void dsq__note_latest(struct dsq_db *db, uint64_t v)
{
    pthread_mutex_lock(&db->mu);
    if (v > db->known_latest)
        db->known_latest = v;
    pthread_mutex_unlock(&db->mu);
}

dsq_rc dsq_db_latest(struct dsq_db *db, uint64_t *version, struct dsq_err *e)
{
    return dsq__latest(db, version, NULL, e);
}

/* Found: the newest is s->max, as of a LIST sent at sent_ns. */
static void latest_found(struct dsq_db *db, const struct scan_state *s,
                         uint64_t sent_ns, uint64_t *version,
                         char etag[DSQ_ETAG_MAX])
{
    dsq__note_latest(db, s->max);
    *version = s->max;
    if (etag)
        memcpy(etag, s->max_etag, DSQ_ETAG_MAX);
    pthread_mutex_lock(&db->mu);
    db->listed_ms = dsq_now_ms(); /* dsq_db_head_after */
    if (db->head.sent_ns == 0) {
        /* the first thing this handle learns of the head: a freshness
           check may share it (db_fresh.c) */
        db->head.version = s->max;
        memcpy(db->head.etag, s->max_etag, DSQ_ETAG_MAX);
        db->head.sent_ns = sent_ns;
    }
    pthread_mutex_unlock(&db->mu);
}

struct hint_job {
    struct dsq_db *db;
    uint64_t hint;
    dsq_rc hard;
    struct dsq_err e;
    atomic_int sent; /* its request is in flight (dsq__go_mark) */
};

static void *hint_main(void *arg)
{
    struct hint_job *h = arg;
    dsq__go_mark(&h->sent);
    dsq_err_clear(&h->e);
    h->hint = read_hint(h->db, &h->hard, &h->e);
    dsq__go_done(&h->sent);
    return NULL;
}

dsq_rc dsq__latest(struct dsq_db *db, uint64_t *version,
                   char etag[DSQ_ETAG_MAX], struct dsq_err *e)
{
    struct scan_state s = {0};
    dsq_rc rc;
    uint64_t sent;
    if (etag)
        etag[0] = 0;
    /* a version this handle saw is as good a start as root.json's hint,
       and saves reading it: one LIST */
    pthread_mutex_lock(&db->mu);
    uint64_t known = db->known_latest;
    pthread_mutex_unlock(&db->mu);
    if (known > 0) {
        char after[64];
        dsq_manifest_key(known - 1, after);
        sent = dsq_mono_ns();
        rc = dsq__list_rel(db, "manifests/", after, scan_fn, &s, e);
        if (rc != DSQ_OK)
            return rc;
        if (s.count > 0 && s.first == known) {
            latest_found(db, &s, sent, version, etag);
            return DSQ_OK;
        }
        memset(&s, 0, sizeof(s)); /* gone (gc): start from the hint */
    }
    /* nothing known: the hint and the first page of a full listing at
       the same time; a short history (gc keeps few versions) is all in
       that page, and the hint is only needed for a long one */
    struct hint_job hj = {.db = db};
    atomic_init(&hj.sent, 0);
    pthread_t th;
    int threaded = pthread_create(&th, NULL, hint_main, &hj) == 0;
    if (threaded) /* sent at the same time, not one after the other */
        dsq__go_wait(&hj.sent);
    int more = 0;
    sent = dsq_mono_ns();
    rc = threaded
             ? list_rel_pages(db, "manifests/", NULL, scan_fn, &s, 1, &more, e)
             : DSQ_OK;
    if (threaded)
        pthread_join(th, NULL);
    else
        more = 1, hint_main(&hj);
    if (rc != DSQ_OK)
        return rc;
    if (!more) {
        latest_found(db, &s, sent, version, etag);
        return DSQ_OK;
    }
    memset(&s, 0, sizeof(s));
    if (hj.hard != DSQ_OK) {
        if (e)
            *e = hj.e;
        return hj.hard;
    }
    uint64_t hint = hj.hint;
    if (hint > 0) {
        char after[64];
        dsq_manifest_key(hint - 1, after);
        sent = dsq_mono_ns();
        rc = dsq__list_rel(db, "manifests/", after, scan_fn, &s, e);
        if (rc != DSQ_OK)
            return rc;
        if (s.count > 0 && s.first == hint) {
            latest_found(db, &s, sent, version, etag);
            return DSQ_OK;
        }
        dsq_log(DSQ_LOG_WARNING, "db",
                "%s/root.json names version %llu, which does not exist; "
                "listing every manifest",
                db->prefix, (unsigned long long)hint);
        memset(&s, 0, sizeof(s));
    }
    sent = dsq_mono_ns();
    rc = dsq__list_rel(db, "manifests/", NULL, scan_fn, &s, e);
    if (rc != DSQ_OK)
        return rc;
    latest_found(db, &s, sent, version, etag);
    return DSQ_OK;
}

dsq_rc dsq__load_manifest(struct dsq_db *db, uint64_t version,
                          struct dsq_manifest **out, struct dsq_err *e)
{
    return dsq__load_manifest_info(db, version, out, NULL, e);
}

dsq_rc dsq__load_manifest_info(struct dsq_db *db, uint64_t version,
                               struct dsq_manifest **out,
                               struct dsq_objinfo *info, struct dsq_err *e)
{
    char rel[64];
    struct dsq_buf buf;
    dsq_manifest_key(version, rel);
    dsq_buf_init(&buf, DSQ_MANIFEST_MAX_BYTES);
    dsq_rc rc = dsq__obj_get(db, rel, 0, 0, &buf, info, e);
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
    dsq__full_key(db, rel, full, sizeof(full));
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

/* SQLite never writes the page holding its lock bytes (offset 2^30). */
#define SQLITE_PENDING_BYTE 0x40000000u

dsq_rc dsq__manifest_check_image(struct dsq_db *db,
                                 const struct dsq_manifest *m,
                                 uint64_t *image_bytes, struct dsq_err *e)
{
    if (image_bytes)
        *image_bytes = 0;
    if (m->page_count == 0)
        return DSQ_OK;
    uint8_t *p1 = malloc(m->page_size);
    if (!p1)
        return DSQ_ENOMEM;
    struct dsq_err re;
    dsq_err_clear(&re);
    dsq_rc rc = dsq__manifest_read_page(db, m, 1, p1, &re);
    if (rc != DSQ_OK) {
        /* nothing to compare: whoever reads page 1 meets (and reports)
           the same failure; ENOMEM is ours */
        free(p1);
        return rc == DSQ_ENOMEM ? dsq_err_set(e, rc, "%s", re.msg) : DSQ_OK;
    }
    /* SQLite's page size may differ from the store's page size (PRAGMA
       page_size then VACUUM through the mount): compare bytes */
    uint32_t hps = dsq_sqlite_page_size(p1, m->page_size);
    uint32_t hpages = dsq_sqlite_header_pages(p1, m->page_size);
    free(p1);
    if (!hps || !hpages)
        return DSQ_OK; /* not a SQLite image, or no valid size: nothing */
    uint64_t need = (uint64_t)hpages * hps;
    /* a database ending at the lock-byte page does not store that page */
    if ((uint64_t)(hpages - 1) * hps == SQLITE_PENDING_BYTE / hps * hps &&
        need > hps)
        need -= hps;
    uint64_t have = (uint64_t)m->page_count * m->page_size;
    if (image_bytes)
        *image_bytes = need;
    if (have < need)
        return DSQ_CORRUPT(e,
                           "%s version %llu is inconsistent: page 1 says the "
                           "database has %u pages of %u bytes (%llu bytes), "
                           "the manifest's page_count %u of %u bytes holds "
                           "only %llu",
                           db->prefix, (unsigned long long)m->version, hpages,
                           hps, (unsigned long long)need, m->page_count,
                           m->page_size, (unsigned long long)have);
    return DSQ_OK;
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

struct dsq_snap *dsq__snap_cache_get(struct dsq_db *db, uint64_t version)
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

void dsq__snap_cache_flush(struct dsq_db *db)
{
    struct dsq_snap *old[SNAP_CACHE_MAX];
    pthread_mutex_lock(&db->mu);
    memcpy(old, db->snaps, sizeof(old));
    memset(db->snaps, 0, sizeof(db->snaps));
    pthread_mutex_unlock(&db->mu);
    for (int i = 0; i < SNAP_CACHE_MAX; i++)
        dsq_snap_release(old[i]);
}

void dsq__snap_cache_put(struct dsq_db *db, struct dsq_snap *s)
{
    struct dsq_snap *evict = NULL;
    pthread_mutex_lock(&db->mu);
    if (s->epoch != db->epoch) {
        /* read before the database was found replaced */
        pthread_mutex_unlock(&db->mu);
        return;
    }
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
    struct dsq_snap *s = dsq__snap_cache_get(db, version);
    if (s) {
        *out = s;
        return DSQ_OK;
    }
    struct dsq_manifest *m = NULL;
    struct dsq_objinfo info = {0};
    pthread_mutex_lock(&db->mu);
    uint64_t epoch = db->epoch;
    pthread_mutex_unlock(&db->mu);
    int cold = 0;
    if (version > 0) {
        /* a cold handle: hot.seg is fetched alongside the manifest, then
           the chunks in one wave, before page 1 is read (db_hot.c) */
        pthread_mutex_lock(&db->mu);
        cold = !db->chunks_warmed;
        db->chunks_warmed = 1;
        pthread_mutex_unlock(&db->mu);
        struct dsq__hot_fetch *hot = cold ? dsq__hot_start(db) : NULL;
        rc = dsq__load_manifest_info(db, version, &m, &info, e);
        if (cold)
            dsq__hot_finish(db, hot, rc == DSQ_OK ? m : NULL);
        if (rc != DSQ_OK && cold) {
            pthread_mutex_lock(&db->mu);
            db->chunks_warmed = 0;
            pthread_mutex_unlock(&db->mu);
        }
        /* its page 1 is read now rather than by the first reader: no
           extra request, and a version that cannot be served whole is
           refused before anything of it is */
        if (rc == DSQ_OK)
            rc = dsq__manifest_check_image(db, m, NULL, e);
        if (rc != DSQ_OK) {
            dsq_manifest_free(m);
            return rc;
        }
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
    s->epoch = epoch;
    memcpy(s->etag, info.etag, sizeof(s->etag));
    dsq__snap_cache_put(db, s);
    *out = s;
    return DSQ_OK;
}

/* Parallel loading of a range of manifests into the snapshot cache. */
#define PREFETCH_THREADS 8

struct prefetch {
    struct dsq_db *db;
    pthread_mutex_t mu; /* guards next */
    uint64_t next, last;
};

static void *prefetch_worker(void *arg)
{
    struct prefetch *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        uint64_t v = p->next <= p->last ? p->next++ : 0;
        pthread_mutex_unlock(&p->mu);
        if (!v)
            return NULL;
        struct dsq_snap *s = NULL;
        struct dsq_err ignore;
        /* failures only mean the caller fetches it itself and sees why */
        if (dsq_db_snapshot(p->db, v, &s, &ignore) == DSQ_OK)
            dsq_snap_release(s);
    }
}

void dsq__prefetch_versions(struct dsq_db *db, uint64_t first, uint64_t last)
{
    if (first == 0)
        first = 1;
    while (first <= last) { /* skip what is cached already */
        struct dsq_snap *s = dsq__snap_cache_get(db, first);
        if (!s)
            break;
        dsq_snap_release(s);
        first++;
    }
    if (first >= last) /* nothing, or one: the caller's own fetch */
        return;
    if (last - first + 1 > SNAP_CACHE_MAX / 2)
        last = first + SNAP_CACHE_MAX / 2 - 1;
    struct prefetch p = {.db = db, .next = first, .last = last};
    pthread_mutex_init(&p.mu, NULL);
    pthread_t th[PREFETCH_THREADS];
    size_t n = 0, want = last - first + 1;
    if (want > PREFETCH_THREADS)
        want = PREFETCH_THREADS;
    for (size_t i = 1; i < want; i++)
        if (pthread_create(&th[n], NULL, prefetch_worker, &p) == 0)
            n++;
    prefetch_worker(&p);
    for (size_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.mu);
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

int64_t dsq_snap_mode(const struct dsq_snap *s)
{
    return s->m && s->m->has_mode ? (int64_t)s->m->mode : -1;
}

const char *dsq_snap_incarnation(const struct dsq_snap *s)
{
    return s->m ? s->m->incarnation : "";
}
