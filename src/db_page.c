/*
 * db_page.c - one page of a version: where it is stored (the manifest's
 * overlay, else the checkpoint's page-table chunk for its range, else
 * zero-filled), and its read through the page cache, the disk cache, a
 * manifest's inline text or one ranged GET, checked against the
 * location's checksum.  Bulk reads are db_read.c's; the caches and
 * snapshots db.c's.
 *
 * Layer: services (the engine; shares db_int.h with db.c).  Locking:
 * db->mu only inside the cache helpers, never across a store call.
 */
#include "db_int.h"
#include "sqlitefmt.h"

/* ------------------------------------------------------------------ */
/* page lookup and reads                                             */
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
dsq_rc dsq__locate(struct dsq_db *db, const struct dsq_manifest *m,
                   uint32_t pgno, struct dsq_page_loc *loc, char *segkey,
                   size_t segkey_sz, int *found, struct dsq_err *e)
{
    *found = 0;
    const struct dsq_page_loc *l =
        dsq__find_loc(m->overlay, m->n_overlay, pgno);
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
    dsq_rc rc = dsq__chunk_lookup(db, ref, m->page_size, m->chunk_pages, pgno,
                                  loc, segkey, segkey_sz, e);
    if (rc == DSQ_ENOTFOUND)
        return DSQ_OK;
    if (rc == DSQ_OK)
        *found = 1;
    return rc;
}

int dsq__locate_cached(struct dsq_db *db, const struct dsq_manifest *m,
                       uint32_t pgno, struct dsq_page_loc *loc, char *segkey,
                       size_t segkey_sz)
{
    const struct dsq_page_loc *l =
        dsq__find_loc(m->overlay, m->n_overlay, pgno);
    if (l) {
        *loc = *l;
        snprintf(segkey, segkey_sz, "%s", m->segments[l->seg]);
        return 1;
    }
    if (pgno > m->ckpt_page_limit || m->n_chunks == 0)
        return 0;
    const struct dsq_chunk_ref *ref =
        find_chunk_ref(m, (pgno - 1) / m->chunk_pages);
    if (!ref)
        return 0;
    int found = 0;
    pthread_mutex_lock(&db->mu);
    struct dsq_chunk *c = dsq__chunk_cached(db, ref->key);
    if (c) {
        l = dsq__find_loc(c->entries, c->n_entries, pgno);
        if (l) {
            *loc = *l;
            snprintf(segkey, segkey_sz, "%s", c->segments[l->seg]);
            found = 1;
        }
    }
    pthread_mutex_unlock(&db->mu);
    return found;
}

/*
 * Try the disk cache for one page: 1 if it held the stored bytes and they
 * decoded and matched the checksum (out filled); 0 if it did not hold them;
 * -1 if its copy is damaged (not the store's fault: the caller fetches the
 * page again, which rewrites the copy, and logs the repair).  buf is
 * scratch.
 */
int dsq__disk_cached_page(struct dsq_db *db, const char *segkey,
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
    if (dsq_page_decode_quiet(buf->data, loc->length, loc, page_size, out, full,
                              &ignore) == DSQ_OK)
        return 1;
    dsq_cache_note_bad(db->dcache);
    return -1;
}

void dsq__log_cache_repair(const char *full, uint32_t pgno, size_t n)
{
    if (n == 1)
        dsq_log(DSQ_LOG_NOTICE, "cache",
                "the disk cache's copy of page %u of %s was damaged: "
                "fetched from the store again, served and repaired",
                pgno, full);
    else
        dsq_log(DSQ_LOG_NOTICE, "cache",
                "the disk cache's copies of %zu pages of %s were damaged: "
                "fetched from the store again, served and repaired",
                n, full);
}

/*
 * Decode a page carried inline by a manifest from the bytes of that
 * manifest object at [loc->offset, + dsq_b64_len(loc->length)).
 */
dsq_rc dsq__inline_decode(const char *text, size_t len,
                          const struct dsq_page_loc *loc, uint32_t page_size,
                          void *out, const char *full, struct dsq_err *e)
{
    uint8_t stored[DSQ_STORED_PAGE_MAX];
    if (loc->length > sizeof(stored) || len != dsq_b64_len(loc->length) ||
        dsq_b64_decode(text, len, stored, loc->length) != 0)
        return DSQ_CORRUPT(e,
                           "%s: page %u at offset %llu is not base64 of %u "
                           "bytes",
                           full, loc->pgno, (unsigned long long)loc->offset,
                           loc->length);
    return dsq_page_decode(stored, loc->length, loc, page_size, out, full, e);
}

/*
 * A page carried inline by manifest `segkey` whose decoded manifest is in
 * the snapshot cache (of the same incarnation): 1 with out filled.
 */
int dsq__inline_cached(struct dsq_db *db, const char *segkey,
                       const struct dsq_page_loc *loc, uint32_t page_size,
                       const char *inc, void *out)
{
    uint64_t v;
    if (!dsq_key_is_manifest(segkey, &v))
        return 0;
    struct dsq_snap *s = dsq__snap_cache_get(db, v);
    int ok = 0;
    if (s && s->m && s->m->inline_text && inc &&
        strcmp(s->m->incarnation, inc) == 0 &&
        loc->offset >= DSQ_MANIFEST_INLINE_OFFSET &&
        loc->offset - DSQ_MANIFEST_INLINE_OFFSET <= s->m->inline_len &&
        dsq_b64_len(loc->length) <=
            s->m->inline_len - (loc->offset - DSQ_MANIFEST_INLINE_OFFSET)) {
        struct dsq_err ignore;
        ok = dsq__inline_decode(s->m->inline_text +
                                    (loc->offset - DSQ_MANIFEST_INLINE_OFFSET),
                                dsq_b64_len(loc->length), loc, page_size, out,
                                segkey, &ignore) == DSQ_OK;
    }
    dsq_snap_release(s);
    return ok;
}

/*
 * Read one page at a known location: the page cache, then the manifest
 * (inline pages) or disk cache (segments), then a ranged GET.  inc is the
 * incarnation of the manifest that named the location ("" for format 1).
 */
static dsq_rc fetch_page(struct dsq_db *db, const char *segkey,
                         const struct dsq_page_loc *loc, uint32_t page_size,
                         void *out, int use_cache, const char *inc,
                         struct dsq_err *e)
{
    if (use_cache && dsq__pc_lookup(db, segkey, loc, out, page_size)) {
        dsq__count_reads(db, 1, 0);
        return DSQ_OK;
    }
    const int inl = dsq__is_inline_key(segkey);
    struct dsq_buf buf;
    char full[DSQ_KEY_MAX];
    dsq__full_key(db, segkey, full, sizeof(full));
    dsq_buf_init(&buf, dsq_b64_len(DSQ_STORED_PAGE_MAX));
    int cached = inl ? dsq__inline_cached(db, segkey, loc, page_size, inc, out)
                     : dsq__disk_cached_page(db, segkey, loc, page_size, out,
                                             full, &buf);
    if (cached > 0) {
        dsq__count_reads(db, 1, 0);
        if (use_cache)
            dsq__pc_insert(db, segkey, loc, out, page_size);
        dsq_buf_cleanup(&buf);
        return DSQ_OK;
    }
    dsq__count_reads(db, 0, 1);
    uint64_t span = inl ? dsq_b64_len(loc->length) : loc->length;
    dsq_rc rc = dsq__obj_get(db, segkey, loc->offset, span, &buf, NULL, e);
    if (rc == DSQ_ENOTFOUND) {
        rc = dsq__missing(e, "%s %s is missing (page %u)",
                          inl ? "manifest" : "segment", full, loc->pgno);
        goto out;
    }
    if (rc != DSQ_OK)
        goto out;
    if (buf.len != span) {
        rc = DSQ_CORRUPT(e,
                         "%s is truncated (page %u at offset "
                         "%llu)",
                         full, loc->pgno, (unsigned long long)loc->offset);
        goto out;
    }
    if (inl)
        rc = dsq__inline_decode((const char *)buf.data, buf.len, loc, page_size,
                                out, full, e);
    else
        rc = dsq_page_decode(buf.data, buf.len, loc, page_size, out, full, e);
    if (rc == DSQ_OK && !inl)
        dsq_cache_write(db->dcache, segkey, loc->offset, buf.data, buf.len);
    if (rc == DSQ_OK && cached < 0)
        dsq__log_cache_repair(full, loc->pgno, 1);
    if (rc == DSQ_OK && use_cache)
        dsq__pc_insert(db, segkey, loc, out, page_size);
out:
    dsq_buf_cleanup(&buf);
    return rc;
}

dsq_rc dsq__read_loc(struct dsq_db *db, const char *segkey,
                     const struct dsq_page_loc *loc, uint32_t page_size,
                     const char *inc, void *out, struct dsq_err *e)
{
    return fetch_page(db, segkey, loc, page_size, out, 1, inc, e);
}

dsq_rc dsq__manifest_read_page(struct dsq_db *db, const struct dsq_manifest *m,
                               uint32_t pgno, void *buf, struct dsq_err *e)
{
    struct dsq_page_loc loc;
    char segkey[DSQ_KEY_MAX];
    int found;
    if (dsq__hot_page(db, m, pgno, buf))
        return DSQ_OK;
    dsq_rc rc =
        dsq__locate(db, m, pgno, &loc, segkey, sizeof(segkey), &found, e);
    if (rc != DSQ_OK)
        return rc;
    if (!found) {
        memset(buf, 0, m->page_size);
        return DSQ_OK;
    }
    return fetch_page(db, segkey, &loc, m->page_size, buf, 1, m->incarnation,
                      e);
}

dsq_rc dsq_snap_read_page(struct dsq_snap *s, uint32_t pgno, void *buf,
                          struct dsq_err *e)
{
    if (!s->m || pgno == 0 || pgno > s->m->page_count)
        return dsq_err_set(e, DSQ_ERANGE,
                           "page %u is outside the database (%u pages)", pgno,
                           s->m ? s->m->page_count : 0);
    return dsq__manifest_read_page(s->db, s->m, pgno, buf, e);
}
