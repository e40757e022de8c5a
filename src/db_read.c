/*
 * db_read.c - the engine's bulk reads: many pages at once (a FUSE read of
 * several pages, export, the pages a checkpoint moves), served from the
 * caches where they can be and otherwise sorted by object and offset,
 * coalesced into ranged GETs of up to COALESCE_MAX and fetched by up to
 * READ_THREADS threads at once.  Single-page reads and the caches are in
 * db.c.
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

struct run_job {
    struct dsq_db *db;
    struct want *w;
    const size_t *runs; /* run i is w[runs[i] .. runs[i+1]) */
    size_t nruns;
    uint32_t ps;
    uint8_t *out;
    int warm;           /* insert what is fetched into the page cache */
    pthread_mutex_t mu; /* guards next, rc, err */
    size_t next;
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

static void *run_worker(void *arg)
{
    struct run_job *j = arg;
    struct dsq_buf rb;
    dsq_buf_init(&rb, COALESCE_MAX + dsq_b64_len(DSQ_STORED_PAGE_MAX));
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->next++;
        int stop = j->rc != DSQ_OK || i >= j->nruns;
        pthread_mutex_unlock(&j->mu);
        if (stop)
            break;
        struct dsq_err e;
        dsq_err_clear(&e);
        dsq_rc rc = fetch_run(j, j->runs[i], j->runs[i + 1], &rb, &e);
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

/*
 * Fetch the wanted pages from the store: sorted by object and offset,
 * neighbours coalesced into ranged GETs of up to COALESCE_MAX, the runs
 * fetched by up to READ_THREADS threads at once.
 */
static dsq_rc fetch_wants(struct dsq_db *db, struct want *w, size_t nw,
                          uint32_t ps, uint8_t *out, int warm,
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
               w[b].loc.offset + w[b].span - start <= COALESCE_MAX) {
            end = w[b].loc.offset + w[b].span;
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
                          .warm = warm,
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
        rc = fetch_wants(db, w, nw, ps, out, 1, e);
    for (size_t i = 0; i < nw; i++)
        free(w[i].segkey);
    free(w);
    dsq_buf_cleanup(&scratch);
    return rc;
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
    const int keep = count <= READ_PAGES_CACHE_MAX;
    uint8_t *out = buf;
    struct want *w = calloc(count, sizeof(*w));
    size_t nw = 0;
    dsq_rc rc = DSQ_OK;
    struct dsq_buf rb;
    dsq_buf_init(&rb, DSQ_STORED_PAGE_MAX);
    if (!w)
        return DSQ_ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        char segkey[DSQ_KEY_MAX];
        struct dsq_page_loc loc;
        int found;
        rc = dsq__locate(db, s->m, first + i, &loc, segkey, sizeof(segkey),
                         &found, e);
        if (rc != DSQ_OK)
            goto out;
        if (!found) {
            memset(out + (size_t)i * ps, 0, ps);
            continue;
        }
        if (want_add(db, w, &nw, i, segkey, &loc, ps, s->m->incarnation,
                     out + (size_t)i * ps, keep, &rb) < 0) {
            rc = DSQ_ENOMEM;
            goto out;
        }
    }
    rc = fetch_wants(db, w, nw, ps, out, keep, e);
out:
    for (size_t i = 0; i < nw; i++)
        free(w[i].segkey);
    free(w);
    dsq_buf_cleanup(&rb);
    return rc;
}
