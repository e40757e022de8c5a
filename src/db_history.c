/*
 * db_history.c - history as a first-class operation: which version stood
 * at a time, and restore (a new version whose content is an old one).
 *
 * Layer: services, part of the engine (db_int.h).  Owns no state of its
 * own: it reads through snapshots and commits through an ordinary
 * transaction, so the locking is that of db.c and db_commit.c (db->mu is
 * never held here).
 */
#include "db_int.h"

struct at_state {
    uint64_t at_ms;
    uint64_t best;
};

static int at_fn(const struct dsq_version_info *v, void *arg)
{
    struct at_state *s = arg;
    if (v->time_ms <= s->at_ms)
        s->best = v->version;
    return 0;
}

dsq_rc dsq_db_version_at(struct dsq_db *db, uint64_t at_ms, uint64_t *version,
                         struct dsq_err *e)
{
    struct at_state s = {.at_ms = at_ms};
    dsq_rc rc = dsq_db_versions(db, at_fn, &s, e);
    if (rc != DSQ_OK)
        return rc;
    *version = s.best;
    return DSQ_OK;
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
