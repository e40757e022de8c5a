/*
 * db_txn.c - a write transaction before its commit: begun on a snapshot,
 * its pages (kept by pgbuf.c: memory, then a spill file), page size,
 * page count and mode, read back through it; and the engine's small
 * string and location lists.  The commit itself is db_commit.c's.
 *
 * Layer: services (the engine; shares db_int.h).  A transaction is used
 * by one thread at a time and owns everything it points to but its
 * snapshot (a reference).
 */
#include "db_int.h"

/* ------------------------------------------------------------------ */
/* 6. transactions                                                      */
/* ------------------------------------------------------------------ */

dsq_rc dsq__strlist_add(struct strlist *l, const char *s)
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

void dsq__strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

dsq_rc dsq__loclist_add(struct loclist *l, const struct dsq_page_loc *loc)
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

dsq_rc dsq_txn_set_mode(struct dsq_txn *t, uint32_t mode, struct dsq_err *e)
{
    if (mode > DSQ_MANIFEST_MODE_MAX)
        return dsq_err_set(e, DSQ_EINVAL, "mode %o: not permission bits", mode);
    if (t->page_size == 0)
        return dsq_err_set(e, DSQ_EINVAL,
                           "the database is empty: no version to hold a "
                           "mode");
    t->mode = mode;
    t->has_mode = 1;
    return DSQ_OK;
}

/* 1 if the transaction sets a mode its snapshot does not have. */
int dsq__txn_mode_changes(const struct dsq_txn *t)
{
    return t->has_mode && (int64_t)t->mode != dsq_snap_mode(t->snap);
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
        if (dsq_seg_builder_size(t->sb) >= dsq__stream_segment_max(t->db))
            return dsq__stream_flush_segment(t, e);
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
    dsq__uploads_wait(t, NULL); /* abandoned: recovery-scan finds them */
    dsq_pgbuf_free(t->buf);
    dsq_seg_builder_free(t->sb);
    free(t->page1);
    dsq__strlist_free(&t->cur_segs);
    free(t->cur_locs.v);
    for (size_t i = 0; i < t->n_chunks; i++)
        free(t->chunks[i].key);
    free(t->chunks);
    dsq__strlist_free(&t->segs);
    dsq__strlist_free(&t->extra);
    dsq_snap_release(t->snap);
    free(t);
}
