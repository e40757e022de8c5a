/*
 * db_history.c - history as a first-class operation: which version stood
 * at a time, restore (a new version whose content is an old one), and
 * conflicts explained (which pages met which version, and the tables and
 * indexes those pages belong to).
 *
 * Layer: services, part of the engine (db_int.h).  Owns no state of its
 * own but db->last_conflict (guarded by db->mu, never held across a store
 * call): it reads through snapshots and commits through an ordinary
 * transaction, so the locking is that of db.c and db_commit.c.
 */
#include "db_int.h"

#include "sqlitetree.h"

/*
 * Commit times grow with versions (each is stamped after its parent was
 * read, by a clock that skew between hosts blurs by at most the skew), so
 * a binary search over the listed versions finds the answer: one listing
 * and about log2(versions) manifests, each from the snapshot cache when
 * it was read before.
 */
dsq_rc dsq_db_version_at(struct dsq_db *db, uint64_t at_ms, uint64_t *version,
                         struct dsq_err *e)
{
    struct dsq_vlist l;
    dsq_rc rc = dsq__list_versions(db, &l, e);
    size_t lo = 0, hi = l.n; /* answer: the last index < hi with time <= at */
    while (rc == DSQ_OK && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct dsq_snap *s = NULL;
        rc = dsq_db_snapshot(db, l.v[mid], &s, e);
        if (rc == DSQ_ENOTFOUND) { /* gc removed it since the listing */
            dsq_err_clear(e);
            rc = DSQ_OK;
            lo = mid + 1;
            continue;
        }
        if (rc != DSQ_OK)
            break;
        if (dsq_snap_time_ms(s) <= at_ms)
            lo = mid + 1;
        else
            hi = mid;
        dsq_snap_release(s);
    }
    if (rc == DSQ_OK)
        *version = lo ? l.v[lo - 1] : 0;
    free(l.v);
    return rc;
}

dsq_rc dsq_db_version_exists(struct dsq_db *db, uint64_t version, int *exists,
                             struct dsq_err *e)
{
    char rel[64], full[DSQ_KEY_MAX];
    struct dsq_objinfo info;
    dsq_manifest_key(version, rel);
    dsq__full_key(db, rel, full, sizeof(full));
    STAT_ADD(db, store_heads, 1);
    uint64_t depth = dsq__req_begin(db);
    dsq_rc rc = dsq_store_head(db->st, full, &info, e);
    dsq__req_end(db, depth, "HEAD", full);
    *exists = rc == DSQ_OK;
    if (rc == DSQ_ENOTFOUND) {
        dsq_err_clear(e);
        rc = DSQ_OK;
    }
    return rc;
}

/* 1 if page pgno is stored at the same place in both manifests (so the
   same bytes: objects are immutable and the checksum matches too). */
static dsq_rc same_place(struct dsq_db *db, const struct dsq_manifest *a,
                         const struct dsq_manifest *b, uint32_t pgno, int *same,
                         struct dsq_err *e)
{
    struct dsq_page_loc la, lb;
    char ka[DSQ_KEY_MAX], kb[DSQ_KEY_MAX];
    int fa = 0, fb = 0;
    *same = 0;
    dsq_rc rc = dsq__locate(db, a, pgno, &la, ka, sizeof(ka), &fa, e);
    if (rc == DSQ_OK)
        rc = dsq__locate(db, b, pgno, &lb, kb, sizeof(kb), &fb, e);
    if (rc != DSQ_OK)
        return rc;
    if (!fa && !fb)
        *same = 1;
    else if (fa && fb && la.offset == lb.offset && la.checksum == lb.checksum &&
             la.length == lb.length && !strcmp(ka, kb))
        *same = 1;
    return DSQ_OK;
}

dsq_rc dsq_db_restore(struct dsq_db *db, uint64_t version,
                      struct dsq_restore_info *info, struct dsq_err *e)
{
    struct dsq_snap *old = NULL, *cur = NULL;
    struct dsq_txn *t = NULL;
    uint8_t *page = NULL, *p1 = NULL;
    struct dsq_restore_info ri = {0};
    dsq_rc rc = dsq_db_snapshot(db, version, &old, e);
    if (rc != DSQ_OK)
        goto out;
    if (!old->m) {
        rc = dsq_err_set(e, DSQ_ENOTFOUND, "%s has no version %llu", db->prefix,
                         (unsigned long long)version);
        goto out;
    }
    rc = dsq_db_snapshot(db, DSQ_VERSION_LATEST, &cur, e);
    if (rc != DSQ_OK)
        goto out;
    ri.from = cur->version;
    ri.restored = version;
    const struct dsq_manifest *om = old->m;
    uint32_t ps = om->page_size, n = om->page_count;
    /* a page size change, or nothing to diff against: the whole image */
    int whole = !cur->m || cur->m->page_size != ps;
    rc = dsq_txn_begin(cur, DSQ_TXN_NO_REBASE | (whole ? DSQ_TXN_STREAM : 0),
                       &t, e);
    if (rc != DSQ_OK)
        goto out;
    if (whole) {
        rc = dsq_txn_set_page_size(t, ps, e);
        if (rc != DSQ_OK)
            goto out;
    }
    page = malloc(ps);
    p1 = malloc(ps);
    if (!page || !p1) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    /*
     * Page 1's change counters only move forward: SQLite on other hosts
     * keeps its cache while the counter it saw is unchanged, so a counter
     * that went back could one day meet a value it cached.  The restored
     * page 1 gets the newest counter + 1.
     */
    uint32_t counter = 0;
    if (cur->m && cur->m->page_count > 0) {
        rc = dsq_snap_read_page(cur, 1, p1, e);
        if (rc != DSQ_OK)
            goto out;
        if (dsq_sqlite_is_db(p1, cur->m->page_size))
            counter = dsq_sqlite_counter(p1);
    }
    for (uint32_t pg = 1; pg <= n; pg++) {
        int same = 0;
        if (!whole && pg != 1 && pg <= cur->m->page_count) {
            rc = same_place(db, om, cur->m, pg, &same, e);
            if (rc != DSQ_OK)
                goto out;
        }
        if (same)
            continue;
        rc = dsq_snap_read_page(old, pg, page, e);
        if (rc != DSQ_OK)
            goto out;
        if (pg == 1 && dsq_sqlite_is_db(page, ps)) {
            uint32_t c = dsq_sqlite_counter(page);
            dsq_sqlite_set_counter(page, (c > counter ? c : counter) + 1);
        }
        rc = dsq_txn_write_page(t, pg, page, e);
        if (rc != DSQ_OK)
            goto out;
        ri.pages_written++;
    }
    if (!whole) {
        rc = dsq_txn_set_page_count(t, n, e);
        if (rc != DSQ_OK)
            goto out;
        /* pages written back to what the newest version already holds
           are not a change */
        rc = dsq_txn_drop_unchanged(t, NULL, e);
        if (rc != DSQ_OK)
            goto out;
    }
    struct dsq_commit_info ci;
    rc = dsq_txn_commit(t, &ci, e);
    dsq_txn_free(t);
    t = NULL;
    if (rc == DSQ_ECONFLICT && e)
        dsq_err_prefix(e,
                       "version %llu was not restored (nothing was "
                       "committed; run the restore again)",
                       (unsigned long long)version);
    if (rc != DSQ_OK)
        goto out;
    ri.version = ci.version;
    ri.noop = ci.noop;
    dsq_log_msg(
        DSQ_LOG_INFO, "history",
        "%s: restored version %llu as version %llu (%llu pages written)",
        db->prefix, (unsigned long long)version, (unsigned long long)ci.version,
        (unsigned long long)ri.pages_written);
out:
    if (t)
        dsq_txn_free(t);
    free(page);
    free(p1);
    dsq_snap_release(old);
    dsq_snap_release(cur);
    if (info)
        *info = ri;
    return rc;
}

/* ---- conflicts explained ---- */

static int page1_moved(const struct dsq_manifest *x)
{
    return x->page1 == DSQ_PAGE1_CHANGED ||
           (x->page1 == DSQ_PAGE1_NONE &&
            (dsq_ranges_contain(x->write_set, x->n_write, 1) ||
             dsq_ranges_contain(x->freed_set, x->n_freed, 1)));
}

/* The pages of conf x wrote or freed, into c. */
static void met_pages(struct dsq_conflict *c, const struct dsq_manifest *x,
                      const uint32_t *conf, size_t n)
{
    c->n_pages = 0;
    for (size_t i = 0; i < n && c->n_pages < DSQ_CONFLICT_PAGES_MAX; i++)
        if (dsq_ranges_contain(x->write_set, x->n_write, conf[i]) ||
            dsq_ranges_contain(x->freed_set, x->n_freed, conf[i]))
            c->pages[c->n_pages++] = conf[i];
}

void dsq__note_conflict(struct dsq_db *db, uint64_t snapshot,
                        const struct dsq_manifest *x, const uint32_t *conf,
                        size_t n_conf, int page1)
{
    struct dsq_conflict c;
    memset(&c, 0, sizeof(c));
    c.snapshot = snapshot;
    c.other_version = x->version;
    memcpy(c.other_writer, x->writer_id, 33);
    c.time_ms = dsq_now_ms();
    met_pages(&c, x, conf, n_conf);
    c.page1 = page1 || (c.n_pages == 0 && page1_moved(x));
    pthread_mutex_lock(&db->mu);
    db->last_conflict = c;
    db->has_conflict = 1;
    pthread_mutex_unlock(&db->mu);
}

int dsq_db_last_conflict(struct dsq_db *db, struct dsq_conflict *out)
{
    pthread_mutex_lock(&db->mu);
    int has = db->has_conflict;
    if (has)
        *out = db->last_conflict;
    pthread_mutex_unlock(&db->mu);
    return has;
}

dsq_rc dsq_db_conflict_find(struct dsq_db *db, uint64_t from, uint64_t to,
                            const uint32_t *pages, size_t n,
                            struct dsq_conflict *out, struct dsq_err *e)
{
    memset(out, 0, sizeof(*out));
    out->snapshot = from;
    out->time_ms = dsq_now_ms();
    for (uint64_t v = from + 1; v <= to; v++) {
        struct dsq_snap *s = NULL;
        dsq_rc rc = dsq_db_snapshot(db, v, &s, e);
        if (rc != DSQ_OK)
            return rc;
        const struct dsq_manifest *x = s->m;
        if (x) {
            met_pages(out, x, pages, n);
            int p1 = page1_moved(x);
            if (out->n_pages || p1) {
                out->other_version = v;
                memcpy(out->other_writer, x->writer_id, 33);
                out->page1 = out->n_pages == 0 && p1;
                dsq_snap_release(s);
                return DSQ_OK;
            }
        }
        dsq_snap_release(s);
    }
    return DSQ_OK;
}

static dsq_rc snap_reader(void *ctx, uint32_t pgno, uint8_t *buf,
                          struct dsq_err *e)
{
    return dsq_snap_read_page(ctx, pgno, buf, e);
}

dsq_rc dsq_db_page_owners(struct dsq_db *db, uint64_t version,
                          const uint32_t *pages, size_t n,
                          struct dsq_page_owner *out, struct dsq_err *e)
{
    struct dsq_snap *s = NULL;
    uint8_t *p1 = NULL;
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].pgno = pages[i];
    }
    dsq_rc rc = dsq_db_snapshot(db, version, &s, e);
    if (rc != DSQ_OK || !s->m || s->m->page_count == 0)
        goto out;
    uint32_t ps = s->m->page_size;
    p1 = malloc(ps);
    if (!p1) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    rc = dsq_snap_read_page(s, 1, p1, e);
    if (rc == DSQ_OK)
        rc = dsq_sqlite_page_owners(p1, ps, s->m->page_count, snap_reader, s,
                                    pages, n, out, DSQ_OWNER_MAX_READS, e);
out:
    free(p1);
    dsq_snap_release(s);
    return rc;
}

dsq_rc dsq_db_version_tables(struct dsq_db *db, uint64_t version,
                             struct dsq_buf *out, struct dsq_err *e)
{
    struct dsq_snap *s = NULL;
    dsq_rc rc = dsq_db_snapshot(db, version, &s, e);
    if (rc != DSQ_OK)
        return rc;
    const struct dsq_manifest *m = s->m;
    uint32_t pages[DSQ_TABLES_PAGES_MAX];
    size_t n = 0;
    int schema = m && m->page1 == DSQ_PAGE1_CHANGED;
    for (size_t i = 0; m && i < m->n_write && n < DSQ_TABLES_PAGES_MAX; i++)
        for (uint64_t k = 0;
             k < m->write_set[i].count && n < DSQ_TABLES_PAGES_MAX; k++) {
            uint64_t p = m->write_set[i].start + k;
            if (p != 1 && p <= m->page_count)
                pages[n++] = (uint32_t)p;
        }
    dsq_snap_release(s);
    struct dsq_page_owner *own = calloc(n ? n : 1, sizeof(*own));
    if (!own)
        return DSQ_ENOMEM;
    rc = n ? dsq_db_page_owners(db, version, pages, n, own, e) : DSQ_OK;
    size_t shown = 0;
    if (rc == DSQ_OK && schema) {
        dsq_buf_append_str(out, "sqlite_schema");
        shown++;
    }
    for (size_t i = 0; rc == DSQ_OK && i < n; i++) {
        const char *nm = own[i].name[0] ? own[i].name : "(unknown)";
        size_t j = 0;
        while (j < i && strcmp(own[j].name[0] ? own[j].name : "(unknown)", nm))
            j++;
        if (j < i || (schema && !strcmp(nm, "sqlite_schema")))
            continue;
        dsq_buf_printf(out, "%s%s", shown++ ? "," : "", nm);
    }
    free(own);
    dsq_buf_terminate(out);
    return rc;
}
