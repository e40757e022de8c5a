/*
 * db_read.c - the engine's bulk reads: many pages at once (a FUSE read of
 * several pages, export, the pages a checkpoint moves), served from the
 * caches where they can be and otherwise sorted by object and offset,
 * coalesced into ranged GETs of up to COALESCE_MAX and fetched by up to
 * READ_THREADS threads at once; and read-ahead: reads of one handle that
 * follow each other page after page (a table scan through the mount)
 * fetch a growing window of the pages after them into the page cache, in
 * parallel ranges of RA_RUN_MAX; and page-table chunks fetched in one
 * wave: a cold handle's, and those of a bulk read's range.  Single-page
 * reads and the caches are in db.c; threads that send requests together
 * are db_par.c's.
 *
 * Layer: services (the engine; shares db_int.h with db.c).  Locking: the
 * threads of one read share a job struct whose mutex guards its cursor
 * and first error; db->mu is taken only inside the cache helpers.
 */
#include "db_int.h"

struct want {
    uint32_t idx; /* page index within the request */
    struct dsq_page_loc loc;
    char *segkey;
    uint64_t span; /* bytes of the object holding the page */
    int inl;       /* carried inline by a manifest (base64) */
    int repair;    /* the disk cache's copy was damaged */
};

static int want_cmp(const void *a, const void *b)
{
    const struct want *x = a, *y = b;
    int c = strcmp(x->segkey, y->segkey);
    if (c)
        return c;
    return x->loc.offset < y->loc.offset ? -1 : x->loc.offset > y->loc.offset;
}

/* Parallel fetching of the runs of one bulk read. */
#define READ_THREADS 8

/* Bulk reads of at most this many pages keep what they fetch in the page
   cache (FUSE reads); bigger ones (export) would only churn it. */
#define READ_PAGES_CACHE_MAX 256u

/* Read-ahead: the window starts at 4 reads' worth and doubles up to
   RA_MAX_BYTES (and a quarter of the page cache); it is fetched in ranges
   of at most RA_RUN_MAX, READ_THREADS at once. */
#define RA_MAX_BYTES (16u << 20)
#define RA_RUN_MAX (1u << 20)
/* How far (pages) a read may start from where the last one ended and
   still count as sequential. */
#define RA_SLACK 64u

struct run_job {
    struct dsq_db *db;
    uint64_t run_max; /* bytes per ranged GET */
    struct want *w;
    const size_t *runs; /* run i is w[runs[i] .. runs[i+1]) */
    size_t nruns;
    uint32_t ps;
    uint8_t *out;
    int warm; /* insert what is fetched into the page cache */
    struct dsq_buf bufs[READ_THREADS]; /* one per thread (slot) */
    pthread_mutex_t mu;                /* guards rc, err */
    dsq_rc rc;
    struct dsq_err err;
};

static dsq_rc fetch_run(const struct run_job *j, size_t a, size_t b,
                        struct dsq_buf *rb, struct dsq_err *e)
{
    struct dsq_db *db = j->db;
    struct want *w = j->w;
    const uint32_t ps = j->ps;
    uint64_t start = w[a].loc.offset;
    uint64_t end = w[b - 1].loc.offset + w[b - 1].span;
    char full[DSQ_KEY_MAX];
    dsq__full_key(db, w[a].segkey, full, sizeof(full));
    dsq_buf_reset(rb);
    dsq_rc rc = dsq__obj_get(db, w[a].segkey, start, end - start, rb, NULL, e);
    if (rc == DSQ_ENOTFOUND)
        return dsq__missing(e, "%s %s is missing",
                            w[a].inl ? "manifest" : "segment", full);
    if (rc != DSQ_OK)
        return rc;
    if (rb->len != end - start)
        return DSQ_CORRUPT(e,
                           "%s is truncated (wanted bytes "
                           "%llu..%llu)",
                           full, (unsigned long long)start,
                           (unsigned long long)end);
    size_t repaired = 0;
    for (size_t k = a; k < b; k++) {
        uint8_t *dst = j->out + (size_t)w[k].idx * ps;
        const uint8_t *src = rb->data + (w[k].loc.offset - start);
        if (w[k].inl)
            rc = dsq__inline_decode((const char *)src, w[k].span, &w[k].loc, ps,
                                    dst, full, e);
        else
            rc = dsq_page_decode(src, w[k].loc.length, &w[k].loc, ps, dst, full,
                                 e);
        if (rc != DSQ_OK)
            return rc;
        repaired += w[k].repair != 0;
        if (j->warm)
            dsq__pc_insert(db, w[k].segkey, &w[k].loc, dst, ps);
    }
    if (!w[a].inl)
        dsq_cache_write(db->dcache, w[a].segkey, start, rb->data, rb->len);
    if (repaired)
        dsq__log_cache_repair(full, w[a].loc.pgno, repaired);
    return DSQ_OK;
}

static void run_one(void *arg, size_t i, size_t slot)
{
    struct run_job *j = arg;
    pthread_mutex_lock(&j->mu);
    int stop = j->rc != DSQ_OK;
    pthread_mutex_unlock(&j->mu);
    if (stop)
        return;
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = fetch_run(j, j->runs[i], j->runs[i + 1], &j->bufs[slot], &e);
    if (rc != DSQ_OK) {
        pthread_mutex_lock(&j->mu);
        if (j->rc == DSQ_OK) {
            j->rc = rc;
            j->err = e;
        }
        pthread_mutex_unlock(&j->mu);
    }
}

/*
 * Fetch the wanted pages from the store: sorted by object and offset,
 * neighbours coalesced into ranged GETs of up to COALESCE_MAX, the runs
 * fetched by up to READ_THREADS threads at once.
 */
static dsq_rc fetch_wants(struct dsq_db *db, struct want *w, size_t nw,
                          uint32_t ps, uint8_t *out, int warm, uint64_t run_max,
                          struct dsq_err *e)
{
    if (nw == 0)
        return DSQ_OK;
    dsq__count_reads(db, 0, nw);
    qsort(w, nw, sizeof(*w), want_cmp);
    /* runs: same object, close offsets, bounded size */
    size_t *runs = malloc((nw + 1) * sizeof(*runs)), nruns = 0;
    if (!runs)
        return DSQ_ENOMEM;
    for (size_t a = 0; a < nw;) {
        size_t b = a + 1;
        uint64_t start = w[a].loc.offset;
        uint64_t end = start + w[a].span;
        while (b < nw && strcmp(w[b].segkey, w[a].segkey) == 0 &&
               w[b].loc.offset >= end &&
               w[b].loc.offset - end <= COALESCE_GAP &&
               w[b].loc.offset + w[b].span - start <= run_max) {
            end = w[b].loc.offset + w[b].span;
            b++;
        }
        runs[nruns++] = a;
        a = b;
    }
    runs[nruns] = nw;
    struct run_job job = {.db = db,
                          .run_max = run_max,
                          .w = w,
                          .runs = runs,
                          .nruns = nruns,
                          .ps = ps,
                          .out = out,
                          .warm = warm,
                          .rc = DSQ_OK};
    pthread_mutex_init(&job.mu, NULL);
    for (size_t k = 0; k < READ_THREADS; k++)
        dsq_buf_init(&job.bufs[k],
                     COALESCE_MAX + dsq_b64_len(DSQ_STORED_PAGE_MAX));
    dsq__run_together(nruns, READ_THREADS, run_one, &job);
    for (size_t k = 0; k < READ_THREADS; k++)
        dsq_buf_cleanup(&job.bufs[k]);
    pthread_mutex_destroy(&job.mu);
    free(runs);
    if (job.rc != DSQ_OK && e)
        *e = job.err;
    return job.rc;
}

/*
 * Add one wanted page unless a local copy serves it (the page cache, a
 * manifest in the snapshot cache, the disk cache).  1 if it was served,
 * 0 if added, -1 on allocation failure.
 */
static int want_add(struct dsq_db *db, struct want *w, size_t *nw, uint32_t idx,
                    const char *segkey, const struct dsq_page_loc *loc,
                    uint32_t ps, const char *inc, uint8_t *dst, int keep,
                    struct dsq_buf *scratch)
{
    const int inl = dsq__is_inline_key(segkey);
    int served = dsq__pc_lookup(db, segkey, loc, dst, ps);
    if (!served && inl && dsq__inline_cached(db, segkey, loc, ps, inc, dst))
        served = 1;
    int damaged = 0;
    if (!served && !inl && db->dcache) {
        char full[DSQ_KEY_MAX];
        dsq__full_key(db, segkey, full, sizeof(full));
        dsq_buf_reset(scratch);
        int cached =
            dsq__disk_cached_page(db, segkey, loc, ps, dst, full, scratch);
        served = cached > 0;
        damaged = cached < 0;
        if (served && keep)
            dsq__pc_insert(db, segkey, loc, dst, ps);
    }
    if (served) {
        dsq__count_reads(db, 1, 0);
        return 1;
    }
    struct want *x = &w[*nw];
    x->idx = idx;
    x->loc = *loc;
    x->inl = inl;
    x->repair = damaged;
    x->span = inl ? dsq_b64_len(loc->length) : loc->length;
    x->segkey = strdup(segkey);
    if (!x->segkey)
        return -1;
    (*nw)++;
    return 0;
}

dsq_rc dsq__read_locs(struct dsq_db *db, size_t n, char *const *keys,
                      const struct dsq_page_loc *locs, uint32_t ps,
                      const char *inc, uint8_t *out, struct dsq_err *e)
{
    struct want *w = calloc(n ? n : 1, sizeof(*w));
    size_t nw = 0;
    dsq_rc rc = DSQ_OK;
    struct dsq_buf scratch;
    dsq_buf_init(&scratch, DSQ_STORED_PAGE_MAX);
    if (!w)
        return DSQ_ENOMEM;
    for (size_t i = 0; i < n && rc == DSQ_OK; i++)
        if (want_add(db, w, &nw, (uint32_t)i, keys[i], &locs[i], ps, inc,
                     out + i * ps, 1, &scratch) < 0)
            rc = DSQ_ENOMEM;
    if (rc == DSQ_OK)
        rc = fetch_wants(db, w, nw, ps, out, 1, COALESCE_MAX, e);
    for (size_t i = 0; i < nw; i++)
        free(w[i].segkey);
    free(w);
    dsq_buf_cleanup(&scratch);
    return rc;
}

/* ---- a cold handle's chunks ---- */

/*
 * Fetch page-table chunks of m at once, one wave of requests: with idx
 * NULL all of them (a cold handle's first manifest, so that the first
 * query's lookups do not each wait for their chunk in turn, and the hot
 * pages of db_hot.c can be checked against their locations) if they fit
 * CHUNK_CACHE_MAX and WARM_CHUNK_BYTES, else none; with idx the chunks
 * with those indexes (a bulk read's range), within the same bounds.  At
 * most WARM_THREADS requests at a time; best effort (a failure is met
 * again by the lookup that needs it).
 */
#define WARM_THREADS 64
#define WARM_CHUNK_BYTES (16u << 20)

struct warm {
    struct dsq_db *db;
    const struct dsq_manifest *m;
    const struct dsq_chunk_ref **refs;
};

static void warm_one(void *arg, size_t i, size_t slot)
{
    (void)slot;
    struct warm *w = arg;
    const struct dsq_chunk_ref *ref = w->refs[i];
    struct dsq_chunk *c = NULL;
    struct dsq_err ignore;
    if (dsq__chunk_fetch(w->db, ref, w->m->page_size, w->m->chunk_pages, &c,
                         &ignore) != DSQ_OK)
        return;
    pthread_mutex_lock(&w->db->mu);
    if (!dsq__chunk_store(w->db, ref->key, c))
        dsq_chunk_free(c);
    pthread_mutex_unlock(&w->db->mu);
}

static int ref_idx_cmp(const void *k, const void *el)
{
    uint32_t i = *(const uint32_t *)k;
    const struct dsq_chunk_ref *r = el;
    return i < r->index ? -1 : i > r->index;
}

void dsq__warm_chunks(struct dsq_db *db, const struct dsq_manifest *m,
                      const uint32_t *idx, size_t n_idx)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < m->n_chunks; i++)
        bytes += m->chunks[i].size;
    const int all =
        !idx && m->n_chunks <= CHUNK_CACHE_MAX && bytes <= WARM_CHUNK_BYTES;
    const size_t cand = all ? m->n_chunks : m->n_chunks ? n_idx : 0;
    const struct dsq_chunk_ref **refs =
        malloc((cand ? cand : 1) * sizeof(*refs));
    if (!refs)
        return;
    size_t n = 0;
    bytes = 0;
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < cand && n < CHUNK_CACHE_MAX; i++) {
        const struct dsq_chunk_ref *r =
            all ? &m->chunks[i]
                : bsearch(&idx[i], m->chunks, m->n_chunks, sizeof(*m->chunks),
                          ref_idx_cmp);
        if (!r || dsq__chunk_cached(db, r->key) ||
            bytes + r->size > WARM_CHUNK_BYTES)
            continue;
        bytes += r->size;
        refs[n++] = r;
    }
    pthread_mutex_unlock(&db->mu);
    struct warm w = {.db = db, .m = m, .refs = refs};
    dsq__run_together(n, WARM_THREADS, warm_one, &w);
    free(refs);
}

/* The chunks of pages [first, first + count) of m, when more than one is
   missing: fetched together rather than each by the lookup that meets
   it (a scan, an export). */
static void warm_range(struct dsq_db *db, const struct dsq_manifest *m,
                       uint32_t first, uint32_t count)
{
    if (m->n_chunks < 2 || m->chunk_pages == 0 || first > m->ckpt_page_limit)
        return;
    uint32_t last = first + count - 1;
    if (last > m->ckpt_page_limit)
        last = m->ckpt_page_limit;
    uint32_t a = (first - 1) / m->chunk_pages, b = (last - 1) / m->chunk_pages;
    if (a == b)
        return;
    uint32_t idx[CHUNK_CACHE_MAX];
    size_t n = 0;
    pthread_mutex_lock(&db->mu);
    for (uint32_t i = a; i <= b && n < CHUNK_CACHE_MAX; i++) {
        const struct dsq_chunk_ref *r = bsearch(
            &i, m->chunks, m->n_chunks, sizeof(*m->chunks), ref_idx_cmp);
        if (r && !dsq__chunk_cached(db, r->key))
            idx[n++] = i;
    }
    pthread_mutex_unlock(&db->mu);
    if (n >= 2)
        dsq__warm_chunks(db, m, idx, n);
}

/*
 * Read pages [first, first + count) of s into out: each from the caches
 * where one holds it, the rest fetched in ranged GETs of up to run_max
 * (fetch_wants).  keep: what is fetched goes into the page cache.  ahead
 * (read-ahead): pages the page cache holds are skipped, not copied nor
 * counted as reads, and pages past the image are left as they are (else
 * zero-filled).  *fetched (may be NULL) gets how many pages the store
 * gave.
 */
static dsq_rc read_range(struct dsq_snap *s, uint32_t first, uint32_t count,
                         uint8_t *out, int keep, int ahead, uint64_t run_max,
                         size_t *fetched, struct dsq_err *e)
{
    struct dsq_db *db = s->db;
    const uint32_t ps = s->m->page_size;
    struct want *w = calloc(count, sizeof(*w));
    size_t nw = 0;
    dsq_rc rc = DSQ_OK;
    struct dsq_buf rb;
    if (!w)
        return DSQ_ENOMEM;
    dsq_buf_init(&rb, DSQ_STORED_PAGE_MAX);
    warm_range(db, s->m, first, count);
    for (uint32_t i = 0; i < count; i++) {
        char segkey[DSQ_KEY_MAX];
        struct dsq_page_loc loc;
        int found;
        if (dsq__hot_page(db, s->m, first + i, out + (size_t)i * ps))
            continue;
        rc = dsq__locate(db, s->m, first + i, &loc, segkey, sizeof(segkey),
                         &found, e);
        if (rc != DSQ_OK)
            goto out;
        if (!found) {
            if (!ahead)
                memset(out + (size_t)i * ps, 0, ps);
            continue;
        }
        if (ahead && dsq__pc_has(db, segkey, &loc))
            continue;
        if (want_add(db, w, &nw, i, segkey, &loc, ps, s->m->incarnation,
                     out + (size_t)i * ps, keep, &rb) < 0) {
            rc = DSQ_ENOMEM;
            goto out;
        }
    }
    rc = fetch_wants(db, w, nw, ps, out, keep, run_max, e);
out:
    if (fetched)
        *fetched = nw;
    for (size_t i = 0; i < nw; i++)
        free(w[i].segkey);
    free(w);
    dsq_buf_cleanup(&rb);
    return rc;
}

/* ---- read-ahead ---- */

/* One window of read-ahead, fetched by its own thread. */
struct ra_job {
    struct dsq_snap *snap; /* owned reference */
    uint32_t from, n;
};

static void *ra_worker(void *arg)
{
    struct ra_job *j = arg;
    struct dsq_snap *s = j->snap;
    struct dsq_db *db = s->db;
    uint8_t *tmp = malloc((size_t)j->n * s->m->page_size);
    size_t fetched = 0;
    if (tmp) {
        struct dsq_err e;
        dsq_err_clear(&e);
        if (read_range(s, j->from, j->n, tmp, 1, 1, RA_RUN_MAX, &fetched, &e) ==
            DSQ_OK)
            STAT_ADD(db, readahead_pages, fetched);
    }
    free(tmp);
    dsq_snap_release(s);
    free(j);
    pthread_mutex_lock(&db->mu);
    db->ra_busy--;
    pthread_cond_broadcast(&db->ra_cv);
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

void dsq__readahead_wait(struct dsq_db *db)
{
    pthread_mutex_lock(&db->mu);
    while (db->ra_busy)
        pthread_cond_wait(&db->ra_cv, &db->mu);
    pthread_mutex_unlock(&db->mu);
}

/*
 * After a read of [first, first + count): if it began where the previous
 * read of this handle ended, in the same version, a thread fetches the
 * next window of pages into the page cache while the reader goes on,
 * once the reader is less than a window short of what was fetched ahead.
 * Best effort: a failure only leaves the pages to be read when asked for.
 */
static void read_ahead(struct dsq_snap *s, uint32_t first, uint32_t count)
{
    struct dsq_db *db = s->db;
    const uint32_t ps = s->m->page_size;
    const uint32_t pages = s->m->page_count;
    uint32_t from = 0, n = 0;
    pthread_mutex_lock(&db->mu);
    uint64_t cap = RA_MAX_BYTES / ps;
    if (cap > db->pc_max_bytes / 4 / ps)
        cap = db->pc_max_bytes / 4 / ps;
    const uint32_t next = first + count;
    /* the kernel's own read-ahead sends neighbouring reads from several
       threads, so "sequential" allows a little disorder: a read near
       where the last one ended, or inside what was fetched ahead */
    const int near =
        db->ra_version == s->version &&
        ((first + RA_SLACK >= db->ra_next && first <= db->ra_next + RA_SLACK) ||
         (first >= db->ra_from && first < db->ra_end));
    if (!near) {
        db->ra_pages = 0; /* not sequential: start again */
        db->ra_seq = 0;
        db->ra_from = db->ra_end = 0;
        db->ra_next = next;
    } else {
        db->ra_seq++;
        db->ra_pages = db->ra_pages ? db->ra_pages * 2 : count * 4;
        if (db->ra_pages > cap)
            db->ra_pages = cap;
        if (next > db->ra_next)
            db->ra_next = next;
        if (db->ra_busy == 0 && db->ra_seq >= 2 && db->ra_pages > count &&
            next <= pages &&
            (db->ra_end < next || db->ra_end - next < db->ra_pages)) {
            from = db->ra_end > next ? db->ra_end : next;
            n = from <= pages ? pages - from + 1 : 0;
            if (n > db->ra_pages)
                n = db->ra_pages;
        }
    }
    db->ra_version = s->version;
    struct ra_job *j = n ? malloc(sizeof(*j)) : NULL;
    if (j) {
        *j = (struct ra_job){dsq_snap_ref(s), from, n};
        pthread_attr_t at;
        pthread_t th;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, ra_worker, j) == 0) {
            db->ra_busy++;
            db->ra_from = from;
            db->ra_end = from + n;
            j = NULL;
        }
        pthread_attr_destroy(&at);
    }
    pthread_mutex_unlock(&db->mu);
    if (j) {
        dsq_snap_release(j->snap);
        free(j);
    }
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
    const int keep = count <= READ_PAGES_CACHE_MAX;
    if (keep) {
        /* a sequential reader that caught up with the window being
           fetched ahead waits for it rather than fetching it again */
        pthread_mutex_lock(&db->mu);
        while (db->ra_busy && db->ra_version == s->version &&
               first >= db->ra_from && first < db->ra_end)
            pthread_cond_wait(&db->ra_cv, &db->mu);
        pthread_mutex_unlock(&db->mu);
    }
    dsq_rc rc =
        read_range(s, first, count, buf, keep, 0, COALESCE_MAX, NULL, e);
    if (rc == DSQ_OK && keep)
        read_ahead(s, first, count);
    return rc;
}
