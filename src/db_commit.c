/*
 * db_commit.c - the commit protocol: effects of a transaction (write set,
 * freed set, page 1), its pages carried inline or uploaded (the uploads
 * and checkpoints themselves are in db_upload.c), manifest building,
 * publishing with create-only and rebasing.  The transaction it commits
 * (its pages, size, mode) is db_txn.c's.
 *
 * Layer: services (the engine; shares db_int.h with db.c, db_upload.c,
 * db_admin.c and db_fresh.c).  Protocol, states and invariants: docs/commit.md,
 * cited as (C1)...  A transaction is used by one thread at a time; what it
 * shares with other threads goes through the db handle (db->mu).
 */
#include "db_int.h"

/* ------------------------------------------------------------------ */
/* 7. commit                                                            */
/* ------------------------------------------------------------------ */

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
    /* SQLite's page size other than the store's chunking (a VACUUM that
       changed page_size): the freelist cannot be read in store pages, so
       the change counts as a change of page 1 beyond its counters, which
       meets any concurrent commit that changed page 1 */
    int sqlite_ps_ok = !newp1 || !dsq_sqlite_is_db(newp1, ps) ||
                       (dsq_sqlite_page_size(newp1, ps) == ps &&
                        (!oldp1 || !dsq_sqlite_is_db(oldp1, ps) ||
                         dsq_sqlite_page_size(oldp1, ps) == ps));
    if (!sqlite_ps_ok && ef->page1 != DSQ_PAGE1_NONE)
        ef->page1 = DSQ_PAGE1_CHANGED;

    /* freed pages: truncated away, or newly on the freelist (SQLite) */
    uint32_t ntrunc = 0;
    if (t->base_count > t->low_water)
        ntrunc = t->base_count - t->low_water;
    size_t fl_cap = ntrunc;
    /* any written page may be a trunk page, so walk whenever page 1 moved */
    if (!stream && ef->page1 != DSQ_PAGE1_NONE && newp1 && t->base_count >= 1 &&
        sqlite_ps_ok && dsq_sqlite_is_db(newp1, ps) &&
        dsq_sqlite_is_db(oldp1, ps)) {
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

/*
 * Our pages (normal mode), with the segment key of each.  A small
 * transaction's pages travel inside its manifest (inline mode): they are
 * encoded once as a segment that is kept in memory, and each attempt's
 * manifest carries their stored bytes; only a checkpoint attempt uploads
 * that segment (materialize) since chunks name segments only.
 */
struct ours {
    uint8_t *warm;             /* scratch page: insert what we upload into
                                  the page cache (small transactions) */
    struct loclist locs;       /* sorted by pgno; seg indexes t->segs, or
                                  offsets into inl in inline mode */
    struct strlist p1segs;     /* page-1 merge segments, newest last */
    struct dsq_page_loc p1loc; /* override for page 1 when p1segs.n > 0 */
    int inline_mode;           /* the pages are in inl, not uploaded */
    struct dsq_buf inl;        /* inline mode: our pages as one segment */
    int inl_stale;             /* inl must be rebuilt (page 1 merged) */
    uint8_t *p1img;            /* merged page 1 (page-1 rule), or NULL */
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
    dsq_rc rc = dsq__loclist_add(&o->locs, loc);
    struct dsq_err ig;
    if (rc == DSQ_OK && o->warm &&
        dsq_pgbuf_get(t->buf, loc->pgno, o->warm, &ig) == DSQ_OK)
        dsq__pc_insert(t->db, segkey, loc, o->warm, t->page_size);
    return rc;
}

/* Our page pgno as it is committed (page 1 may have been merged). */
static dsq_rc our_page(struct dsq_txn *t, const struct ours *o, uint32_t pgno,
                       uint8_t *page, struct dsq_err *e)
{
    if (pgno == 1 && o->p1img) {
        memcpy(page, o->p1img, t->page_size);
        return DSQ_OK;
    }
    return dsq_pgbuf_get(t->buf, pgno, page, e);
}

/*
 * Stored bytes a transaction may carry inside its manifest: a commit of up
 * to this much costs one store request.  Transactions of up to
 * INLINE_TRY_MAX bytes of page images are encoded to see if they fit.
 */
#define INLINE_MAX (64u * 1024u)
#define INLINE_TRY_MAX (256u * 1024u)

/* Encode our pages as one segment in o->inl (not uploaded). */
static dsq_rc build_inline(struct dsq_txn *t, const struct effects *ef,
                           struct ours *o, struct dsq_err *e)
{
    struct dsq_seg_builder *sb = NULL;
    struct dsq_page_loc *locs = NULL;
    size_t n = 0;
    uint8_t *page = malloc(t->page_size);
    dsq_rc rc = page ? dsq_seg_builder_new(t->page_size, t->db->compress,
                                           t->txn_id, &sb)
                     : DSQ_ENOMEM;
    for (size_t i = 0; rc == DSQ_OK && i < ef->n_pgnos; i++) {
        rc = our_page(t, o, ef->pgnos[i], page, e);
        if (rc == DSQ_OK)
            rc = dsq_seg_builder_add(sb, ef->pgnos[i], page);
    }
    dsq_buf_reset(&o->inl);
    if (rc == DSQ_OK)
        rc = dsq_seg_builder_finish(sb, &o->inl, &locs, &n);
    o->locs.n = 0;
    for (size_t i = 0; rc == DSQ_OK && i < n; i++)
        rc = dsq__loclist_add(&o->locs, &locs[i]);
    if (rc == DSQ_OK)
        o->inl_stale = 0;
    free(locs);
    free(page);
    dsq_seg_builder_free(sb);
    return rc;
}

static uint64_t inline_stored(const struct ours *o)
{
    uint64_t n = 0;
    for (size_t i = 0; i < o->locs.n; i++)
        n += o->locs.v[i].length;
    return n;
}

/* Leave inline mode: upload o->inl as our segment (a checkpoint needs it). */
static dsq_rc materialize(struct dsq_txn *t, struct ours *o, struct dsq_err *e)
{
    char key[96];
    dsq_rc rc = DSQ_OK;
    o->inline_mode = 0;
    if (o->locs.n == 0)
        return DSQ_OK;
    rc = dsq__upload_new(t, "segments", "seg", &o->inl, &t->segs, key, e);
    if (rc != DSQ_OK)
        return rc;
    uint8_t *page = malloc(t->page_size);
    for (size_t i = 0; i < o->locs.n; i++) {
        struct dsq_err ig;
        o->locs.v[i].seg = (uint32_t)(t->segs.n - 1);
        if (page && our_page(t, o, o->locs.v[i].pgno, page, &ig) == DSQ_OK)
            dsq__pc_insert(t->db, key, &o->locs.v[i], page, t->page_size);
    }
    free(page);
    return DSQ_OK;
}

static dsq_rc upload_pages(struct dsq_txn *t, const struct effects *ef,
                           struct ours *o, struct dsq_err *e)
{
    if (ef->n_pgnos > 0 &&
        (uint64_t)ef->n_pgnos * t->page_size <= INLINE_TRY_MAX &&
        (uint64_t)ef->n_pgnos * t->page_size <= t->db->segment_max) {
        /* small: try carrying the pages in the manifest; if they do not
           fit, the segment encoded for it is uploaded as it is */
        dsq_rc rc = build_inline(t, ef, o, e);
        if (rc != DSQ_OK)
            return rc;
        o->inline_mode = 1;
        if (inline_stored(o) <= INLINE_MAX)
            return DSQ_OK;
        return materialize(t, o, e);
    }
    if (ef->n_pgnos == 0) {
        o->inline_mode = 1; /* nothing to carry: the manifest alone */
        return DSQ_OK;
    }
    struct dsq_seg_builder *sb = NULL;
    uint8_t *page = malloc(t->page_size);
    dsq_rc rc = page ? dsq_seg_builder_new(t->page_size, t->db->compress,
                                           t->txn_id, &sb)
                     : DSQ_ENOMEM;
    /* the next transaction reads these pages back (to drop unchanged
       ones, to classify page 1) and so may local readers: keep them in
       the page cache unless the transaction is big next to it */
    if (rc == DSQ_OK &&
        (uint64_t)ef->n_pgnos * t->page_size <= t->db->pc_max_bytes / 4)
        o->warm = malloc(t->page_size);
    for (size_t i = 0; rc == DSQ_OK && i < ef->n_pgnos; i++) {
        rc = dsq_pgbuf_get(t->buf, ef->pgnos[i], page, e);
        if (rc == DSQ_OK)
            rc = dsq_seg_builder_add(sb, ef->pgnos[i], page);
        if (rc == DSQ_OK && dsq_seg_builder_size(sb) >= t->db->segment_max)
            rc = dsq__upload_segment(t, sb, normal_sink, o, e);
    }
    if (rc == DSQ_OK && sb && dsq_seg_builder_count(sb) > 0)
        rc = dsq__upload_segment(t, sb, normal_sink, o, e);
    dsq_seg_builder_free(sb);
    free(page);
    free(o->warm);
    o->warm = NULL;
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

/*
 * Build manifest base+1 for our transaction.  New objects go to objs.  In
 * inline mode our pages go into the manifest's inline text; if this
 * version must be a checkpoint, *need_segment is set instead (and *out
 * left alone): upload the pages (materialize) and build again.
 */
static dsq_rc build_manifest(struct dsq_txn *t, const struct dsq_snap *base,
                             const struct effects *ef, const struct ours *o,
                             struct strlist *objs, struct dsq_manifest **out,
                             int *need_segment, struct dsq_err *e)
{
    const struct dsq_manifest *bm = base->m;
    const int stream = (t->flags & DSQ_TXN_STREAM) != 0;
    struct dsq_manifest *nm = calloc(1, sizeof(*nm));
    struct keytab kt = {0};
    struct strlist created = {0};
    char own[64];
    dsq_rc rc = DSQ_OK;
    *need_segment = 0;
    if (!nm)
        return DSQ_ENOMEM;

    /* a mode set once is carried to every later version; the encoder
       writes format 4 only for a version with a mode (C12) */
    nm->has_mode = t->has_mode || (bm && bm->has_mode);
    nm->mode = t->has_mode ? t->mode : (bm ? bm->mode : 0);
    nm->format_version = DSQ_MANIFEST_FORMAT; /* 3, 4 when needed */
    /* the incarnation is born with the first format-2 version */
    if (bm && bm->format_version >= 2)
        memcpy(nm->incarnation, bm->incarnation, 33);
    else
        dsq_random_hex32(nm->incarnation);
    nm->version = base->version + 1;
    nm->parent = base->version;
    dsq_manifest_key(nm->version, own);
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
            struct dsq_page_loc carried;
            if (lo && (!lb || lo->pgno <= lb->pgno)) {
                if (lb && lb->pgno == lo->pgno)
                    i++;
                pick = lo;
                key = o->inline_mode ? own : ours_key(t, o, &o->locs.v[j]);
                j++;
                if (o->inline_mode && pick->pgno <= nm->page_count) {
                    /* carried by this manifest: offsets into its text */
                    carried = *pick;
                    rc = dsq_manifest_inline_append(
                        nm, o->inl.data + pick->offset, pick->length,
                        &carried.offset);
                    if (rc != DSQ_OK)
                        break;
                    pick = &carried;
                    key = own;
                }
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
            rc = dsq__keytab_idx(&kt, key, &nm->overlay[nm->n_overlay].seg);
            nm->n_overlay++;
        }
        if (rc != DSQ_OK)
            goto out;
        nm->segments = kt.l.v;
        nm->n_segments = kt.l.n;
        memset(&kt, 0, sizeof(kt));
        if (nm->version - nm->ckpt_version >= t->db->checkpoint_interval ||
            nm->n_overlay > t->db->overlay_max) {
            if (o->inline_mode && o->locs.n > 0) {
                *need_segment = 1;
                goto out;
            }
            rc = dsq__checkpoint(t, bm, nm, objs, e);
            if (rc != DSQ_OK)
                goto out;
        }
    }
    /* everything this transaction published first */
    for (size_t k = 0; rc == DSQ_OK && k < t->segs.n; k++)
        rc = dsq__strlist_add(&created, t->segs.v[k]);
    for (size_t k = 0; rc == DSQ_OK && k < o->p1segs.n; k++)
        rc = dsq__strlist_add(&created, o->p1segs.v[k]);
    for (size_t k = 0; rc == DSQ_OK && stream && k < t->n_chunks; k++)
        rc = dsq__strlist_add(&created, t->chunks[k].key);
    for (size_t k = 0; rc == DSQ_OK && k < objs->n; k++)
        rc = dsq__strlist_add(&created, objs->v[k]);
    if (rc != DSQ_OK)
        goto out;
    nm->created = created.v;
    nm->n_created = created.n;
    memset(&created, 0, sizeof(created));
    *out = nm;
    nm = NULL;
out:
    dsq__strlist_free(&kt.l);
    dsq__strlist_free(&created);
    dsq_manifest_free(nm);
    return rc;
}

/* Best-effort removal of objects nothing can reference any more. */
static void delete_objects(struct dsq_db *db, const struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct dsq_err ignore;
        if (dsq__obj_del(db, l->v[i], &ignore) != DSQ_OK)
            dsq_log(DSQ_LOG_INFO, "commit",
                    "could not remove abandoned %s/%s (recovery-scan will)",
                    db->prefix, l->v[i]);
    }
}

/*
 * The gc floor (gc.json).  0 when there is none.  info (may be NULL) gets
 * the object's etag for a compare-and-replace.
 */
dsq_rc dsq__read_gc_floor(struct dsq_db *db, uint64_t *floor,
                          struct dsq_objinfo *info, struct dsq_err *e)
{
    struct dsq_buf buf;
    struct dsq_gcfloor g;
    char full[DSQ_KEY_MAX];
    dsq_buf_init(&buf, 65536);
    dsq__full_key(db, "gc.json", full, sizeof(full));
    dsq_rc rc = dsq__obj_get(db, "gc.json", 0, 0, &buf, info, e);
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
static dsq_rc check_gc_floor(struct dsq_db *db, const struct dsq_snap *base,
                             uint64_t version, int *withdraw, struct dsq_err *e)
{
    *withdraw = 0;
    uint64_t now = dsq_now_ms();
    uint64_t check_age_ms = dsq_db_gc_min_retention_ms() / 2;
    if (base->m && base->m->time_ms + check_age_ms > now)
        return DSQ_OK;
    uint64_t floor = 0;
    dsq_rc rc = dsq__read_gc_floor(db, &floor, NULL, e);
    if (rc == DSQ_OK && version < floor)
        *withdraw = 1;
    return rc;
}

enum put_outcome { PUT_WON, PUT_LOST, PUT_FAILED };

/*
 * After a lost race that met nothing of ours (a race for the slot, not
 * for the pages): the first SLOT_FREE_ROUNDS retry at once, later ones
 * after a uniform time in [0, round * 2^k) (k = 0, 1, ... for the rounds
 * after those, at most 4; and at most retry_max_seconds), where "round" is how
 * long our last attempt took (the PUT, then finding out what won).  The scale
 * is the store's own speed, not retry_base_seconds: after a lost slot,
 * sleeping 50 ms on a store that answers in 2 ms lets the other writer
 * take 25 more slots, whose manifests must then be read.  The doubling
 * keeps a writer that keeps losing (its rounds a little slower than the
 * other's back-to-back commits) from spending its retries in a burst;
 * the randomness breaks that lock-step.
 */
#define SLOT_FREE_ROUNDS 3
#define SLOT_ROUNDS_PER_RETRY 4 /* lost slots allowed per max_retries */
#define SLOT_MAX_DOUBLINGS 4    /* a wait never exceeds 16 rounds */
static void slot_backoff(const struct dsq_db *db, uint64_t round_ns,
                         unsigned lost)
{
    if (lost <= SLOT_FREE_ROUNDS)
        return;
    unsigned k = lost - SLOT_FREE_ROUNDS - 1;
    double cap =
        (double)round_ns / 1e9 *
        pow(2.0, (double)(k < SLOT_MAX_DOUBLINGS ? k : SLOT_MAX_DOUBLINGS));
    if (cap > db->retry_max_s)
        cap = db->retry_max_s;
    uint64_t us = (uint64_t)(cap * 1e6);
    if (us >= 1000)
        dsq_env.sleep_ms(dsq_random_below(us / 1000 + 1));
}

struct latest_job {
    struct dsq_db *db;
    uint64_t v;
    dsq_rc rc;
    struct dsq_err e;
};

static void *latest_main(void *arg)
{
    struct latest_job *j = arg;
    dsq_err_clear(&j->e);
    j->rc = dsq_db_latest(j->db, &j->v, &j->e);
    return NULL;
}

/*
 * After losing version `lost`: the newest version (a LIST) and manifest
 * `lost` (which the rebase reads first) at the same time, so the next
 * attempt is one round trip away, not two.  *head gets the newest.
 */
static dsq_rc latest_and_fetch(struct dsq_db *db, uint64_t lost, uint64_t *head,
                               struct dsq_err *e)
{
    struct latest_job j = {.db = db};
    pthread_t th;
    int threaded = pthread_create(&th, NULL, latest_main, &j) == 0;
    if (!threaded)
        latest_main(&j);
    struct dsq_snap *s = NULL;
    struct dsq_err ignore;
    if (dsq_db_snapshot(db, lost, &s, &ignore) == DSQ_OK)
        dsq_snap_release(s); /* now cached; failures are met again */
    if (threaded)
        pthread_join(th, NULL);
    if (j.rc != DSQ_OK) {
        if (e)
            *e = j.e;
        return j.rc;
    }
    *head = j.v;
    return DSQ_OK;
}

/*
 * Create manifest key create-only and find out what happened (C3, C4):
 * a lost reply is resolved by reading the key back and comparing writer
 * and transaction ids.
 */
static enum put_outcome publish(struct dsq_txn *t, uint64_t version,
                                const struct dsq_buf *body, int *ambiguous,
                                uint64_t *sent_ns, struct dsq_objinfo *info,
                                dsq_rc *rc_out, struct dsq_err *e)
{
    struct dsq_db *db = t->db;
    char rel[64], key[DSQ_KEY_MAX];
    dsq_manifest_key(version, rel);
    dsq__full_key(db, rel, key, sizeof(key));
    memset(info, 0, sizeof(*info));
    /* if it lands, version was free when the first attempt was sent: the
       head was version - 1 then (freshness, db_fresh.c) */
    *sent_ns = dsq_mono_ns();
    const uint64_t start = *sent_ns;
    for (unsigned attempt = 0;; attempt++) {
        dsq_rc rc = dsq_store_put(db->st, key, body->data, body->len,
                                  DSQ_PUT_CREATE, NULL, info, e);
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
            rc = dsq_store_get(db->st, key, 0, 0, &buf, info, e);
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
            if (rc != DSQ_ETRANSIENT || !dsq__retry(db, r, start, e)) {
                *rc_out = rc == DSQ_ETRANSIENT ? DSQ_ETRANSIENT : rc;
                dsq_err_prefix(e, "outcome of publishing %s is unknown", key);
                return PUT_FAILED;
            }
        }
        if (!dsq__retry(db, attempt, start, e)) {
            *rc_out = DSQ_ERETRIES;
            dsq_err_prefix(e,
                           "publishing %s failed %u times with transient "
                           "errors",
                           key, attempt + 1);
            return PUT_FAILED;
        }
    }
}

/*
 * Rewrite our page 1 onto head's, counters past both (page-1 rule); in
 * segment mode the result is uploaded as a one-page segment.
 */
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
        rc = dsq__manifest_read_page(t->db, head->m, 1, theirs, e);
    if (rc != DSQ_OK)
        goto out;
    uint32_t a = dsq_sqlite_counter(mine), b = dsq_sqlite_counter(theirs);
    dsq_sqlite_set_counter(theirs, (a > b ? a : b) + 1);
    if (!o->p1img && !(o->p1img = malloc(ps))) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    memcpy(o->p1img, theirs, ps);
    if (o->inline_mode) {
        o->inl_stale = 1; /* carried by the next attempt's manifest */
        goto out;
    }
    rc = dsq_seg_builder_new(ps, t->db->compress, t->txn_id, &sb);
    if (rc == DSQ_OK)
        rc = dsq_seg_builder_add(sb, 1, theirs);
    if (rc == DSQ_OK)
        rc = dsq_seg_builder_finish(sb, &buf, &locs, &n);
    if (rc == DSQ_OK)
        rc = dsq__upload_new(t, "segments", "seg", &buf, &o->p1segs, key, e);
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

/* The pages our manifest carries go into the page cache. */
static void warm_inline(struct dsq_txn *t, const struct ours *o,
                        const struct dsq_manifest *nm)
{
    char own[64];
    uint8_t *page = malloc(t->page_size);
    dsq_manifest_key(nm->version, own);
    for (size_t i = 0; page && i < nm->n_overlay; i++) {
        const struct dsq_page_loc *l = &nm->overlay[i];
        struct dsq_err ig;
        if (strcmp(nm->segments[l->seg], own) == 0 &&
            our_page(t, o, l->pgno, page, &ig) == DSQ_OK)
            dsq__pc_insert(t->db, own, l, page, t->page_size);
    }
    free(page);
}

/* Our own published manifest is a snapshot readers will want next. */
static void cache_published(struct dsq_db *db, struct dsq_manifest **nm,
                            const char *etag, uint64_t epoch)
{
    struct dsq_snap *s = calloc(1, sizeof(*s));
    if (!s)
        return;
    s->db = db;
    atomic_init(&s->refs, 1);
    s->version = (*nm)->version;
    s->m = *nm;
    s->epoch = epoch;
    snprintf(s->etag, sizeof(s->etag), "%s", etag);
    *nm = NULL;
    dsq__snap_cache_put(db, s);
    dsq_snap_release(s);
}

/*
 * root.json is a hint, read only to start a listing near the end: a hint
 * a few versions behind costs readers nothing (one LIST page holds 1000
 * versions, and a handle that knows nothing lists from the start while it
 * reads the hint).  So it is written every ROOT_EVERY versions, and when
 * this handle last wrote it more than ROOT_MAX_AGE_MS ago, not at every
 * commit: one request less per commit.
 */
#define ROOT_EVERY 256
#define ROOT_MAX_AGE_MS 10000

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
    dsq__full_key(db, "root.json", key, sizeof(key));
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

    const uint64_t t0_ns = dsq_mono_ns();
    dsq_buf_init(&body, DSQ_MANIFEST_MAX_BYTES);
    dsq_buf_init(&o.inl, SIZE_MAX);
    if (t->finished)
        return dsq_err_set(e, DSQ_EINVAL, "transaction already finished");
    t->finished = 1;

    if (stream) {
        rc = dsq__stream_flush_segment(t, e);
        if (rc == DSQ_OK)
            rc = dsq__stream_finish_chunk(t, e);
        if (rc == DSQ_OK)
            rc = dsq__uploads_wait(t, e); /* C1: every segment is stored */
        if (rc != DSQ_OK)
            goto out;
        if (t->page_size == 0) {
            rc = dsq_err_set(e, DSQ_EINVAL, "no page size for the database");
            goto out;
        }
    } else if (dsq_txn_dirty_pages(t) == 0 && t->page_count == t->base_count &&
               !dsq__txn_mode_changes(t)) {
        ci.version = t->snap->version;
        ci.noop = 1;
        goto done;
    }
    pthread_mutex_lock(&db->mu);
    int replaced = t->snap->epoch != db->epoch;
    pthread_mutex_unlock(&db->mu);
    if (replaced) {
        /* its versions' slots may now hold another database's */
        rc = dsq_err_set(e, DSQ_ECONFLICT,
                         "%s: the database was deleted or created again "
                         "since this transaction's snapshot (version %llu)",
                         db->prefix, (unsigned long long)t->snap->version);
        STAT_ADD(db, conflicts, 1);
        goto out;
    }
    rc = compute_effects(t, &ef, e);
    if (rc != DSQ_OK)
        goto out;
    if (!stream && ef.n_pgnos == 0 && !ef.count_changed && !dsq__txn_mode_changes(t)) {
        ci.version = t->snap->version;
        ci.noop = 1;
        goto done;
    }
    if (!stream) {
        rc = upload_pages(t, &ef, &o, e);
        if (rc == DSQ_OK)
            rc = dsq__uploads_wait(t, e); /* C1: every segment is stored */
        if (rc != DSQ_OK)
            goto out;
    }
    DSQ_FAULT_POINT("commit.after_segments");

    base = dsq_snap_ref(t->snap);
    for (unsigned attempt = 0;; attempt++) {
        ci.attempts++;
        const uint64_t round_ns = dsq_mono_ns();
        int need_segment = 0;
        if (o.inline_mode && o.inl_stale)
            rc = build_inline(t, &ef, &o, e);
        if (rc == DSQ_OK)
            rc = build_manifest(t, base, &ef, &o, &objs, &nm, &need_segment, e);
        if (rc == DSQ_OK && need_segment) {
            /* this version is a checkpoint: our pages must be in a
               segment the chunks can name */
            rc = materialize(t, &o, e);
            if (rc == DSQ_OK)
                rc = build_manifest(t, base, &ef, &o, &objs, &nm, &need_segment,
                                    e);
        }
        if (rc == DSQ_OK) /* C1: a checkpoint's objects, page 1's segment */
            rc = dsq__uploads_wait(t, e);
        if (rc == DSQ_OK)
            rc = dsq_manifest_encode(nm, &body, e);
        if (rc != DSQ_OK)
            goto out;
        DSQ_FAULT_POINT("commit.before_manifest");
        dsq_rc prc = DSQ_OK;
        pthread_mutex_lock(&db->mu);
        uint64_t epoch = db->epoch;
        pthread_mutex_unlock(&db->mu);
        uint64_t sent_ns = 0;
        struct dsq_objinfo pinfo;
        enum put_outcome po = publish(t, nm->version, &body, &ambiguous,
                                      &sent_ns, &pinfo, &prc, e);
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
                dsq__obj_del(db, rel, &ig);
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
            dsq__note_latest(db, nm->version);
            if (o.inline_mode)
                warm_inline(t, &o, nm);
            dsq__note_published(db, nm, pinfo.etag, sent_ns);
            cache_published(db, &nm, pinfo.etag, epoch);
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
        rc = latest_and_fetch(db, lost_at, &head_v, e);
        if (rc != DSQ_OK)
            goto out;
        if (head_v < lost_at)
            head_v = lost_at; /* listing lags the create we lost */
        dsq_log(DSQ_LOG_DEBUG, "commit",
                "%s: version %llu was taken (attempt %u, %.1f ms into the "
                "commit); newest %llu, snapshot %llu",
                db->prefix, (unsigned long long)lost_at, attempt + 1,
                (double)(dsq_mono_ns() - t0_ns) / 1e6,
                (unsigned long long)head_v,
                (unsigned long long)t->snap->version);
        int p1_touched = 0;
        struct dsq_snap *x = NULL;
        for (uint64_t v = base->version + 1; v <= head_v; v++) {
            dsq_snap_release(x);
            x = NULL;
            if ((v - base->version - 1) % (SNAP_CACHE_MAX / 2) == 0)
                dsq__prefetch_versions(db, v, head_v); /* in parallel */
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
                dsq__strlist_free(&objs);
            }
            uint32_t witness = 0;
            int any = db->isolation == DSQ_ISOLATION_SERIALIZABLE ||
                      (t->flags & DSQ_TXN_NO_REBASE);
            if (any || overlaps(&ef, x->m, &witness)) {
                if (any)
                    rc = dsq_err_set(e, DSQ_ECONFLICT,
                                     "%s: version %llu was committed since "
                                     "this transaction's snapshot (version "
                                     "%llu; %s)",
                                     db->prefix, (unsigned long long)v,
                                     (unsigned long long)t->snap->version,
                                     (t->flags & DSQ_TXN_NO_REBASE)
                                         ? "this transaction cannot rebase"
                                         : "serializable isolation");
                else
                    rc = dsq_err_set(e, DSQ_ECONFLICT,
                                     "%s: page %u was also changed by version "
                                     "%llu, committed since this "
                                     "transaction's snapshot (version %llu)",
                                     db->prefix, witness, (unsigned long long)v,
                                     (unsigned long long)t->snap->version);
                dsq__note_conflict(db, t->snap->version, x->m, ef.conf,
                                   ef.n_conf, witness == 1);
                dsq_snap_release(x);
                STAT_ADD(db, conflicts, 1);
                if (!ambiguous) {
                    /* no PUT of ours can land any more (C5) */
                    delete_objects(db, &t->segs);
                    delete_objects(db, &o.p1segs);
                    if (stream)
                        for (size_t k = 0; k < t->n_chunks; k++) {
                            struct dsq_err ig;
                            dsq__obj_del(db, t->chunks[k].key, &ig);
                        }
                }
                goto out;
            }
            if (x->m->page1 != DSQ_PAGE1_NONE)
                p1_touched = 1;
        }
        dsq_snap_release(base);
        base = x;
        /* every lost slot is someone else's progress, and a conflict
           ends the commit at once: what is bounded here is a writer
           outpaced by others for long */
        if (attempt + 1 > SLOT_ROUNDS_PER_RETRY * db->max_retries) {
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
        /* nothing met ours: lost the slot, not the pages */
        slot_backoff(db, dsq_mono_ns() - round_ns, attempt + 1);
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
    dsq__strlist_free(&objs);
    dsq__strlist_free(&o.p1segs);
    free(o.locs.v);
    free(o.p1img);
    dsq_buf_cleanup(&o.inl);
    effects_free(&ef);
    dsq_buf_cleanup(&body);
    return rc;
}
