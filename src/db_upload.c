/*
 * db_upload.c - the objects a commit uploads besides its manifest:
 * segments (big transactions' in parallel, by a small pool of threads
 * while the next ones are encoded), page-table chunks, and checkpoints,
 * which first move the pages earlier manifests carry inline into a
 * segment (chunks name segments only).
 *
 * Layer: services (the engine; shares db_int.h with db.c, db_commit.c,
 * db_admin.c and db_fresh.c).  Protocol and invariants: docs/commit.md
 * (C1: the manifest waits for dsq__uploads_wait; C6, C10: checkpoints).
 * Locking: a transaction is used by one thread; its uploader's queue and
 * results are guarded by the uploader's own mutex; uploads run without
 * any lock held.
 */
#include "db_int.h"

static void new_object_key(const char *dir, const char *ext, char out[96])
{
    char hex[33];
    dsq_random_hex32(hex);
    snprintf(out, 96, "%s/%s.%s", dir, hex, ext);
}

/*
 * Segments of a big transaction are uploaded by up to UPLOAD_THREADS
 * threads while the next ones are encoded; at most UPLOAD_INFLIGHT are
 * queued or in flight, holding at most UPLOAD_INFLIGHT_BYTES together
 * (one always may, whatever its size): with the segment being encoded
 * that is the commit's memory beyond the transaction buffer, part of
 * the daemon's bound page_cache_bytes + txn_mem_bytes + 64 MiB
 * (tests/integration/test_mount_big.sh).  The manifest waits for all of
 * them (C1): dsq__uploads_wait().
 *
 * An uploaded segment's buffer is kept (at most UPLOAD_SPARE of them, and
 * only while the queued ones and the kept ones hold no more than
 * UPLOAD_INFLIGHT_BYTES + one stream segment together) for the next
 * segment to be written into: a fresh buffer per segment costs its page
 * faults, about a fifth of an import's CPU.
 * A streaming transaction's page-table chunks go through the same queue
 * (they name segments only and the manifest waits for them all), so the
 * encoder never waits for a round trip.
 *
 * A streaming transaction (import, a file copied in) cuts its segments
 * at a third of UPLOAD_INFLIGHT_BYTES (8 MiB; segment_max_bytes if that
 * is less), so that three are in flight at once: with 16 MiB segments
 * only one fits, and one upload at a time leaves a store that serves
 * requests in parallel half idle (the S3 test server: an import of
 * 551 MB took 1.26-1.33x one whole-object PUT of the file with 16 MiB
 * segments, 0.99-1.10x with 8 MiB ones).  Its memory: the segment being
 * encoded and the one being finished (8 MiB each) plus at most
 * UPLOAD_INFLIGHT_BYTES + 8 MiB queued, in flight or kept: about 56 MiB
 * whatever the size of the import.
 */
#define UPLOAD_THREADS 4
#define UPLOAD_INFLIGHT 4
#define UPLOAD_INFLIGHT_BYTES (24u << 20)
#define UPLOAD_SPARE 2

uint64_t dsq__stream_segment_max(const struct dsq_db *db)
{
    uint64_t m = UPLOAD_INFLIGHT_BYTES / 3;
    return db->segment_max < m ? db->segment_max : m;
}

struct upjob {
    char key[96];
    struct dsq_buf buf;
    int keep; /* a segment's: its buffer may serve the next one */
    struct upjob *next;
};

static struct upjob *upjob_new(void)
{
    struct upjob *j = calloc(1, sizeof(*j));
    if (j)
        dsq_buf_init(&j->buf, SIZE_MAX);
    return j;
}

static void upjob_free(struct upjob *j)
{
    if (j) {
        dsq_buf_cleanup(&j->buf);
        free(j);
    }
}

struct uploader {
    struct dsq_db *db;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    struct upjob *head, *tail;
    unsigned pending;     /* queued + being uploaded */
    size_t pending_bytes; /* their encoded size */
    unsigned nthreads, idle;
    int stop;
    pthread_t th[UPLOAD_THREADS];
    dsq_rc rc; /* first failure */
    struct dsq_err err;
    uint64_t objects, bytes;
    struct dsq_buf spare[UPLOAD_SPARE]; /* uploaded buffers kept for reuse */
    unsigned n_spare;
    size_t spare_bytes; /* the bytes they held (what they have touched) */
    size_t keep_max;    /* pending_bytes + spare_bytes stay within this */
};

/* The transaction's uploader, made on first use. */
static struct uploader *uploader_of(struct dsq_txn *t)
{
    struct uploader *u = t->up;
    if (u)
        return u;
    u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->db = t->db;
    u->keep_max =
        UPLOAD_INFLIGHT_BYTES + (size_t)dsq__stream_segment_max(t->db);
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    t->up = u;
    return u;
}

/* A kept buffer for the next object (len 0), or an empty one. */
static void take_spare(struct dsq_txn *t, struct dsq_buf *b)
{
    struct uploader *u = uploader_of(t);
    dsq_buf_init(b, SIZE_MAX);
    if (!u)
        return;
    pthread_mutex_lock(&u->mu);
    if (u->n_spare > 0) {
        *b = u->spare[--u->n_spare];
        u->spare_bytes -= b->len;
        b->len = 0;
    }
    pthread_mutex_unlock(&u->mu);
}

/* Keep an uploaded buffer for reuse or free it; u->mu held. */
static void give_back(struct uploader *u, struct dsq_buf *b)
{
    if (u->n_spare < UPLOAD_SPARE && !u->stop &&
        u->pending_bytes + u->spare_bytes + b->len <= u->keep_max) {
        u->spare[u->n_spare++] = *b; /* len kept until taken */
        u->spare_bytes += b->len;
        dsq_buf_init(b, SIZE_MAX);
        return;
    }
    dsq_buf_cleanup(b);
}

static void *upload_worker(void *arg)
{
    struct uploader *u = arg;
    pthread_mutex_lock(&u->mu);
    for (;;) {
        while (!u->head && !u->stop) {
            u->idle++;
            pthread_cond_wait(&u->cv, &u->mu);
            u->idle--;
        }
        if (!u->head)
            break;
        struct upjob *j = u->head;
        u->head = j->next;
        if (!u->head)
            u->tail = NULL;
        int skip = u->rc != DSQ_OK; /* the commit fails anyway */
        pthread_mutex_unlock(&u->mu);
        struct dsq_err e;
        dsq_err_clear(&e);
        dsq_rc rc =
            skip ? DSQ_OK
                 : dsq__obj_put(u->db, j->key, j->buf.data, j->buf.len, &e);
        if (rc == DSQ_OK && !skip && j->buf.len <= WRITE_THROUGH_MAX)
            dsq_cache_write(u->db->dcache, j->key, 0, j->buf.data, j->buf.len);
        pthread_mutex_lock(&u->mu);
        if (rc != DSQ_OK && u->rc == DSQ_OK) {
            u->rc = rc;
            u->err = e;
            dsq_err_prefix(&u->err, "uploading %s/%s", u->db->prefix, j->key);
        } else if (rc == DSQ_OK && !skip) {
            u->objects++;
            u->bytes += j->buf.len;
        }
        u->pending--;
        u->pending_bytes -= j->buf.len;
        if (j->keep)
            give_back(u, &j->buf);
        else
            dsq_buf_cleanup(&j->buf);
        pthread_cond_broadcast(&u->cv);
        free(j);
    }
    pthread_mutex_unlock(&u->mu);
    return NULL;
}

/* Queue job for upload (ownership passes); waits while too many are. */
static dsq_rc upload_submit(struct dsq_txn *t, struct upjob *j)
{
    struct uploader *u = uploader_of(t);
    if (!u)
        return DSQ_ENOMEM;
    pthread_mutex_lock(&u->mu);
#define FULL_UP                                                                \
    (u->pending >= UPLOAD_INFLIGHT ||                                          \
     (u->pending > 0 &&                                                        \
      u->pending_bytes + j->buf.len > UPLOAD_INFLIGHT_BYTES))
    if (FULL_UP) {
        pthread_mutex_unlock(&u->mu);
        dsq_store_will_wait(t->db->st);
        pthread_mutex_lock(&u->mu);
        while (FULL_UP)
            pthread_cond_wait(&u->cv, &u->mu);
    }
#undef FULL_UP
    j->next = NULL;
    if (u->tail)
        u->tail->next = j;
    else
        u->head = j;
    u->tail = j;
    u->pending++;
    u->pending_bytes += j->buf.len;
    if (u->idle == 0 && u->nthreads < UPLOAD_THREADS &&
        pthread_create(&u->th[u->nthreads], NULL, upload_worker, u) == 0)
        u->nthreads++;
    pthread_cond_signal(&u->cv);
    int none = u->nthreads == 0;
    pthread_mutex_unlock(&u->mu);
    if (none) {
        /* no thread could be started: upload it here */
        pthread_mutex_lock(&u->mu);
        u->stop = 1;
        pthread_mutex_unlock(&u->mu);
        upload_worker(u);
        pthread_mutex_lock(&u->mu);
        u->stop = 0;
        pthread_mutex_unlock(&u->mu);
    }
    return DSQ_OK;
}

/* Wait for every queued upload; the first failure, if any. */
dsq_rc dsq__uploads_wait(struct dsq_txn *t, struct dsq_err *e)
{
    struct uploader *u = t->up;
    if (!u)
        return DSQ_OK;
    pthread_mutex_lock(&u->mu);
    int busy = u->pending > 0;
    pthread_mutex_unlock(&u->mu);
    if (busy)
        dsq_store_will_wait(t->db->st);
    pthread_mutex_lock(&u->mu);
    u->stop = 1;
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
    for (unsigned i = 0; i < u->nthreads; i++)
        pthread_join(u->th[i], NULL);
    dsq_rc rc = u->rc;
    if (rc != DSQ_OK && e)
        *e = u->err;
    t->objects_written += u->objects;
    t->bytes_written += u->bytes;
    for (unsigned i = 0; i < u->n_spare; i++)
        dsq_buf_cleanup(&u->spare[i]);
    pthread_mutex_destroy(&u->mu);
    pthread_cond_destroy(&u->cv);
    free(u);
    t->up = NULL;
    return rc;
}

/*
 * Upload an immutable object under a fresh key, remembered in list: a
 * copy of data is queued, so that a checkpoint's objects (our segment,
 * the moved inline pages, its chunks) go out together; the commit waits
 * for them with dsq__uploads_wait before its manifest (C1), and that
 * reports a failure.
 */
dsq_rc dsq__upload_new(struct dsq_txn *t, const char *dir, const char *ext,
                       const struct dsq_buf *data, struct strlist *list,
                       char key_out[96], struct dsq_err *e)
{
    (void)e;
    new_object_key(dir, ext, key_out);
    struct upjob *j = upjob_new();
    if (!j)
        return DSQ_ENOMEM;
    snprintf(j->key, sizeof(j->key), "%s", key_out);
    dsq_rc rc = dsq_buf_append(&j->buf, data->data, data->len);
    if (rc == DSQ_OK)
        rc = dsq__strlist_add(list, key_out);
    if (rc == DSQ_OK)
        rc = upload_submit(t, j);
    if (rc != DSQ_OK)
        upjob_free(j);
    return rc;
}

/*
 * Finish the builder, queue it for upload as a segment, and report each
 * page's location (seg = index of the segment in t->segs) through fn.
 */
dsq_rc dsq__upload_segment(struct dsq_txn *t, struct dsq_seg_builder *sb,
                           loc_sink sink, void *arg, struct dsq_err *e)
{
    struct upjob *j = calloc(1, sizeof(*j));
    struct dsq_page_loc *locs = NULL;
    size_t n = 0;
    if (!j)
        return DSQ_ENOMEM;
    take_spare(t, &j->buf);
    j->keep = 1;
    dsq_rc rc = dsq_seg_builder_finish(sb, &j->buf, &locs, &n);
    if (rc == DSQ_OK) {
        new_object_key("segments", "seg", j->key);
        /* listed now (indexes are fixed); if its upload fails, so does
           the commit, and deleting a key never written is harmless */
        rc = dsq__strlist_add(&t->segs, j->key);
    }
    for (size_t i = 0; i < n && rc == DSQ_OK; i++) {
        locs[i].seg = (uint32_t)(t->segs.n - 1);
        rc = sink(t, arg, &locs[i], j->key, e);
    }
    if (rc == DSQ_OK) {
        rc = upload_submit(t, j);
        j = rc == DSQ_OK ? NULL : j;
    }
    if (j) {
        dsq_buf_cleanup(&j->buf);
        free(j);
    }
    dsq_seg_builder_reset(sb);
    free(locs);
    return rc;
}

/*
 * Encode a chunk and upload it: now (its key listed in list), or, with
 * list NULL, through the transaction's upload queue (a streaming
 * transaction: dsq__uploads_wait reports its failure).
 */
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
    if (rc == DSQ_OK && list)
        rc = dsq__upload_new(t, "pagetables", "ptc", &buf, list, key, e);
    else if (rc == DSQ_OK)
        new_object_key("pagetables", "ptc", key);
    if (rc == DSQ_OK) {
        ref->index = index;
        ref->key = strdup(key);
        ref->size = buf.len;
        ref->checksum = dsq_object_checksum(buf.data, buf.len);
        if (!ref->key)
            rc = DSQ_ENOMEM;
    }
    if (rc == DSQ_OK && !list) {
        struct upjob *j = calloc(1, sizeof(*j));
        if (!j) {
            rc = DSQ_ENOMEM;
        } else {
            snprintf(j->key, sizeof(j->key), "%s", key);
            j->buf = buf;
            dsq_buf_init(&buf, SIZE_MAX);
            rc = upload_submit(t, j);
            if (rc != DSQ_OK) {
                dsq_buf_cleanup(&j->buf);
                free(j);
            }
        }
        if (rc != DSQ_OK) {
            free(ref->key);
            ref->key = NULL;
        }
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
        rc = dsq__stream_finish_chunk(t, e);
        if (rc != DSQ_OK)
            return rc;
    }
    t->cur_chunk = idx;
    if (t->cur_segs.n == 0 ||
        strcmp(t->cur_segs.v[t->cur_segs.n - 1], segkey) != 0) {
        rc = dsq__strlist_add(&t->cur_segs, segkey);
        if (rc != DSQ_OK)
            return rc;
    }
    struct dsq_page_loc l = *loc;
    l.seg = (uint32_t)(t->cur_segs.n - 1);
    return dsq__loclist_add(&t->cur_locs, &l);
}

dsq_rc dsq__stream_flush_segment(struct dsq_txn *t, struct dsq_err *e)
{
    if (!t->sb || dsq_seg_builder_count(t->sb) == 0)
        return DSQ_OK;
    return dsq__upload_segment(t, t->sb, stream_sink, NULL, e);
}

dsq_rc dsq__stream_finish_chunk(struct dsq_txn *t, struct dsq_err *e)
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
    dsq_rc rc = encode_upload_chunk(
        t, t->cur_chunk, CHUNK_PAGES_DEFAULT, t->cur_segs.v, t->cur_segs.n,
        t->cur_locs.v, t->cur_locs.n, NULL, &t->chunks[t->n_chunks], e);
    if (rc != DSQ_OK)
        return rc;
    t->n_chunks++;
    dsq__strlist_free(&t->cur_segs);
    t->cur_locs.n = 0;
    return DSQ_OK;
}

dsq_rc dsq__keytab_idx(struct keytab *kt, const char *key, uint32_t *idx)
{
    for (size_t i = kt->l.n; i > 0; i--)
        if (strcmp(kt->l.v[i - 1], key) == 0) {
            *idx = (uint32_t)(i - 1);
            return DSQ_OK;
        }
    dsq_rc rc = dsq__strlist_add(&kt->l, key);
    if (rc == DSQ_OK)
        *idx = (uint32_t)(kt->l.n - 1);
    return rc;
}

static int chunk_index_of(uint32_t pgno, uint32_t cp)
{
    return (int)((pgno - 1) / cp);
}

/*
 * Before a checkpoint: chunks name segments only, so the overlay pages
 * that earlier manifests carry inline move into one new segment (listed
 * in objs), and their overlay entries point there.
 */
static dsq_rc move_inline(struct dsq_txn *t, struct dsq_manifest *nm,
                          struct strlist *objs, struct dsq_err *e)
{
    const uint32_t ps = nm->page_size;
    size_t n = 0;
    for (size_t i = 0; i < nm->n_overlay; i++)
        n += dsq__is_inline_key(nm->segments[nm->overlay[i].seg]);
    if (n == 0)
        return DSQ_OK;
    size_t *ix = malloc(n * sizeof(*ix));
    char **keys = malloc(n * sizeof(*keys));
    struct dsq_page_loc *locs = malloc(n * sizeof(*locs)), *nl = NULL;
    uint8_t *img = malloc((size_t)n * ps);
    char **segs = realloc(nm->segments, (nm->n_segments + 1) * sizeof(char *));
    struct dsq_seg_builder *sb = NULL;
    struct dsq_buf buf;
    size_t k = 0, nn = 0;
    char key[96];
    dsq_rc rc = DSQ_OK;
    dsq_buf_init(&buf, SIZE_MAX);
    if (segs)
        nm->segments = segs;
    if (!ix || !keys || !locs || !img || !segs) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nm->n_overlay; i++)
        if (dsq__is_inline_key(nm->segments[nm->overlay[i].seg])) {
            ix[k] = i;
            keys[k] = nm->segments[nm->overlay[i].seg];
            locs[k++] = nm->overlay[i];
        }
    rc = dsq__read_locs(t->db, n, keys, locs, ps, nm->incarnation, img, e);
    if (rc == DSQ_OK)
        rc = dsq_seg_builder_new(ps, t->db->compress, t->txn_id, &sb);
    for (k = 0; rc == DSQ_OK && k < n; k++)
        rc = dsq_seg_builder_add(sb, locs[k].pgno, img + k * ps);
    if (rc == DSQ_OK)
        rc = dsq_seg_builder_finish(sb, &buf, &nl, &nn);
    if (rc == DSQ_OK)
        rc = dsq__upload_new(t, "segments", "seg", &buf, objs, key, e);
    if (rc == DSQ_OK && !(nm->segments[nm->n_segments] = strdup(key)))
        rc = DSQ_ENOMEM;
    if (rc != DSQ_OK)
        goto out;
    for (k = 0; k < n; k++) {
        nm->overlay[ix[k]] = nl[k];
        nm->overlay[ix[k]].seg = (uint32_t)nm->n_segments;
    }
    nm->n_segments++;
out:
    if (rc != DSQ_OK)
        dsq_err_prefix(e, "moving inline pages into a segment");
    free(ix);
    free(keys);
    free(locs);
    free(nl);
    free(img);
    dsq_seg_builder_free(sb);
    dsq_buf_cleanup(&buf);
    return rc;
}

/*
 * Checkpoint nm: rewrite the chunks the overlay touches (or truncation
 * cuts), keep the others, empty the overlay.  bm is the base manifest whose
 * chunks nm inherited.  New chunk objects are listed in objs.
 */
dsq_rc dsq__checkpoint(struct dsq_txn *t, const struct dsq_manifest *bm,
                       struct dsq_manifest *nm, struct strlist *objs,
                       struct dsq_err *e)
{
    dsq_rc mrc = move_inline(t, nm, objs, e);
    if (mrc != DSQ_OK)
        return mrc;
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
            rc = dsq__chunk_fetch(t->db, old, bm->page_size, cp, &oc, e);
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
            rc = dsq__keytab_idx(&kt, key, &ent[ne].seg);
            ne++;
        }
        if (rc == DSQ_OK && ne > 0) {
            rc = encode_upload_chunk(t, idx, cp, kt.l.v, kt.l.n, ent, ne, objs,
                                     &refs[n_refs], e);
            if (rc == DSQ_OK)
                n_refs++;
        }
        free(ent);
        dsq__strlist_free(&kt.l);
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
