/*
 * db_fresh.c - the engine's freshness checks: which version is the newest,
 * asked of the store as cheaply as the store allows, shared by concurrent
 * read transactions where that is correct, and not fooled by gc or by a
 * database deleted and created again (docs/commit.md, "Freshness").
 *
 * Layer: services (the engine; shares db_int.h with db.c, db_commit.c and
 * db_admin.c).  Calls store.h through the db.c helpers.
 *
 * What a check knows: the head state (db->head) says "version N was the
 * newest when the request that told us was sent", with the identity of
 * manifest N (etag, transaction, incarnation).  A check compares the
 * store with it:
 *  - on a remote store, one LIST from just before N: manifest N with the
 *    same etag and nothing after it is "nothing moved" (one request); the
 *    newer ones, when there are any, come in the same answer;
 *  - on a local directory, a stat of N+1 then of N (a listing reads the
 *    whole directory);
 *  - N missing (gc removed it while the handle was idle, or the database
 *    was deleted) or N with another etag: the incarnation of the newest
 *    manifest decides between "moved on" and "replaced".
 * A create-only PUT that this handle won is a check too: when it was sent,
 * the version below it was the newest.
 *
 * Sharing (DESIGN's rule): a read transaction that started at T may use
 * the answer of a request sent at or after T; it may wait for one in
 * flight that was sent at or after T, never for one sent before.
 *
 * Locking: db->mu guards db->head, db->epoch and the in-flight count; it
 * is never held across a store call; waiters sleep on db->fresh_cv.
 */
#include "db_int.h"

/* What a check starts from (a copy of the head state). */
struct known {
    uint64_t version;
    char etag[DSQ_ETAG_MAX];
    char txn_id[33];
    char incarnation[33];
    int valid; /* 0: nothing known, find the newest from scratch */
};

/* What a check found. */
struct found {
    struct dsq_head head; /* sent_ns filled by the caller */
    int replaced;
};

void dsq__note_published(struct dsq_db *db, const struct dsq_manifest *m,
                         const char *etag, uint64_t sent_ns)
{
    pthread_mutex_lock(&db->mu);
    if (sent_ns >= db->head.sent_ns) {
        db->head.version = m->version;
        snprintf(db->head.etag, sizeof(db->head.etag), "%s", etag);
        memcpy(db->head.txn_id, m->txn_id, 33);
        memcpy(db->head.incarnation, m->incarnation, 33);
        db->head.sent_ns = sent_ns;
    }
    pthread_mutex_unlock(&db->mu);
}

struct scan {
    uint64_t first, max, count;
    char first_etag[DSQ_ETAG_MAX], max_etag[DSQ_ETAG_MAX];
};

static int scan_fn(const char *rel, const struct dsq_objinfo *info, void *arg)
{
    struct scan *s = arg;
    uint64_t v;
    if (dsq_manifest_key_parse(rel, &v) != 0)
        return 0;
    if (s->count == 0 || v < s->first) {
        s->first = v;
        memcpy(s->first_etag, info->etag, sizeof(s->first_etag));
    }
    if (s->count == 0 || v > s->max) {
        s->max = v;
        memcpy(s->max_etag, info->etag, sizeof(s->max_etag));
    }
    s->count++;
    return 0;
}

/* List the manifests from version `from` on (all of them for 0). */
static dsq_rc scan_from(struct dsq_db *db, uint64_t from, struct scan *s,
                        struct dsq_err *e)
{
    char after[64];
    memset(s, 0, sizeof(*s));
    if (from > 0)
        dsq_manifest_key(from - 1, after);
    return dsq__list_rel(db, "manifests/", from > 0 ? after : NULL, scan_fn, s,
                         e);
}

static dsq_rc head_of(struct dsq_db *db, uint64_t v, struct dsq_objinfo *info,
                      struct dsq_err *e)
{
    char rel[64], key[DSQ_KEY_MAX];
    dsq_manifest_key(v, rel);
    dsq__full_key(db, rel, key, sizeof(key));
    dsq_rc rc;
    const uint64_t start = dsq_mono_ns();
    for (unsigned attempt = 0;; attempt++) {
        uint64_t depth = dsq__req_begin(db);
        rc = dsq_store_head(db->st, key, info, e);
        dsq__req_end(db, depth, "HEAD", key);
        STAT_ADD(db, store_heads, 1);
        if (rc != DSQ_ETRANSIENT || !dsq__retry(db, attempt, start, e))
            return rc;
    }
}

/*
 * Is version k->version still the manifest we know?  By etag when both
 * are known, else by reading it (transaction id).  *same = 0 if missing.
 */
static dsq_rc same_manifest(struct dsq_db *db, const struct known *k,
                            const char *etag_now, int *same, struct dsq_err *e)
{
    if (k->etag[0] && etag_now[0]) {
        *same = strcmp(k->etag, etag_now) == 0;
        return DSQ_OK;
    }
    struct dsq_manifest *m = NULL;
    dsq_rc rc = dsq__load_manifest(db, k->version, &m, e);
    if (rc == DSQ_ENOTFOUND) {
        *same = 0;
        return DSQ_OK;
    }
    if (rc != DSQ_OK)
        return rc;
    *same = !k->txn_id[0] || strcmp(m->txn_id, k->txn_id) == 0;
    dsq_manifest_free(m);
    return DSQ_OK;
}

/*
 * Version k->version is gone but newer ones exist: gc removed it while we
 * were idle (same incarnation), or the database was created again.
 */
static dsq_rc judge_by_incarnation(struct dsq_db *db, const struct known *k,
                                   uint64_t newest, int *replaced,
                                   struct dsq_err *e)
{
    struct dsq_manifest *m = NULL;
    dsq_rc rc = dsq__load_manifest(db, newest, &m, e);
    if (rc != DSQ_OK)
        return rc;
    *replaced =
        !k->incarnation[0] || strcmp(m->incarnation, k->incarnation) != 0;
    dsq_manifest_free(m);
    return DSQ_OK;
}

/* The newest version from scratch (root.json hint and a listing). */
static dsq_rc from_scratch(struct dsq_db *db, struct found *f,
                           struct dsq_err *e)
{
    pthread_mutex_lock(&db->mu);
    db->known_latest = 0; /* a start for listing we no longer trust */
    pthread_mutex_unlock(&db->mu);
    return dsq__latest(db, &f->head.version, f->head.etag, e);
}

/* Remote store: one LIST from just before the known version. */
static dsq_rc check_remote(struct dsq_db *db, const struct known *k,
                           struct found *f, struct dsq_err *e)
{
    struct scan s;
    dsq_rc rc = scan_from(db, k->version, &s, e);
    if (rc != DSQ_OK)
        return rc;
    if (s.count == 0) {
        if (k->version == 0) {
            f->head.version = 0; /* still empty */
            return DSQ_OK;
        }
        /* nothing at or after the known version: deleted, or created
           again with fewer versions */
        f->replaced = 1;
        return from_scratch(db, f, e);
    }
    f->head.version = s.max;
    memcpy(f->head.etag, s.max_etag, sizeof(f->head.etag));
    if (k->version == 0)
        return DSQ_OK;
    if (s.first == k->version) {
        int same = 0;
        rc = same_manifest(db, k, s.first_etag, &same, e);
        f->replaced = !same;
        return rc;
    }
    return judge_by_incarnation(db, k, s.max, &f->replaced, e);
}

/* Local directory: stats of N+1 and N (forward probing if it moved). */
#define PROBE_MAX 16
static dsq_rc check_local(struct dsq_db *db, const struct known *k,
                          struct found *f, struct dsq_err *e)
{
    struct dsq_objinfo next, cur;
    if (k->version == 0) {
        struct scan s;
        dsq_rc rc = scan_from(db, 0, &s, e);
        if (rc == DSQ_OK && s.count > 0) {
            f->head.version = s.max;
            memcpy(f->head.etag, s.max_etag, sizeof(f->head.etag));
        }
        return rc;
    }
    dsq_rc rc = head_of(db, k->version + 1, &next, e);
    if (rc != DSQ_OK && rc != DSQ_ENOTFOUND)
        return rc;
    const int moved = rc == DSQ_OK;
    /* N after N+1: if gc had removed N+1 it would have removed N first */
    rc = head_of(db, k->version, &cur, e);
    if (rc != DSQ_OK && rc != DSQ_ENOTFOUND)
        return rc;
    int same = 0, present = rc == DSQ_OK;
    if (present) {
        rc = same_manifest(db, k, cur.etag, &same, e);
        if (rc != DSQ_OK)
            return rc;
    }
    if (!moved) {
        if (same) {
            f->head.version = k->version;
            memcpy(f->head.etag, cur.etag, sizeof(f->head.etag));
            return DSQ_OK;
        }
        rc = from_scratch(db, f, e);
        if (rc != DSQ_OK)
            return rc;
        if (!present && f->head.version > k->version)
            /* both gone: gc, after newer versions came (or another
               database) */
            return judge_by_incarnation(db, k, f->head.version, &f->replaced,
                                        e);
        f->replaced = 1; /* another manifest, or nothing newer left */
        return DSQ_OK;
    }
    /* moved on: probe forward, list if it moved far */
    uint64_t v = k->version + 1;
    struct dsq_objinfo last = next;
    for (int i = 0; i < PROBE_MAX; i++) {
        struct dsq_objinfo info;
        rc = head_of(db, v + 1, &info, e);
        if (rc == DSQ_ENOTFOUND)
            break;
        if (rc != DSQ_OK)
            return rc;
        v++;
        last = info;
    }
    if (rc == DSQ_OK) {
        struct scan s;
        rc = scan_from(db, v, &s, e);
        if (rc != DSQ_OK)
            return rc;
        if (s.count > 0 && s.max > v) {
            v = s.max;
            memcpy(last.etag, s.max_etag, sizeof(last.etag));
        }
    }
    f->head.version = v;
    memcpy(f->head.etag, last.etag, sizeof(f->head.etag));
    if (same)
        return DSQ_OK;
    return judge_by_incarnation(db, k, v, &f->replaced, e);
}

static dsq_rc check(struct dsq_db *db, const struct known *k, struct found *f,
                    struct dsq_err *e)
{
    memset(f, 0, sizeof(*f));
    if (!k->valid)
        return from_scratch(db, f, e);
    dsq_rc rc = (db->st->flags & DSQ_STORE_LOCAL) ? check_local(db, k, f, e)
                                                  : check_remote(db, k, f, e);
    if (rc == DSQ_OK && !f->replaced && f->head.version == k->version) {
        memcpy(f->head.txn_id, k->txn_id, 33);
        memcpy(f->head.incarnation, k->incarnation, 33);
    } else if (rc == DSQ_OK && !f->replaced) {
        /* moved on within one incarnation (a format-1 store gets its
           incarnation with its first format-2 version: unknown then) */
        memcpy(f->head.incarnation, k->incarnation, 33);
    }
    return rc;
}

/* Caller holds db->mu. */
static void answer(struct dsq_db *db, const struct dsq_snap *s,
                   struct dsq_fresh *out)
{
    out->version = db->head.version;
    out->replaced = s && s->epoch != db->epoch;
    if (s && !out->replaced && s->version > out->version)
        out->version = s->version;
}

/* What to check against: the head state, else the caller's snapshot. */
static void known_from(struct dsq_db *db, const struct dsq_snap *s,
                       struct known *k)
{
    memset(k, 0, sizeof(*k));
    if (db->head.sent_ns) {
        k->version = db->head.version;
        memcpy(k->etag, db->head.etag, sizeof(k->etag));
        memcpy(k->txn_id, db->head.txn_id, 33);
        memcpy(k->incarnation, db->head.incarnation, 33);
        k->valid = 1;
    } else if (s && s->epoch == db->epoch) {
        k->version = s->version;
        memcpy(k->etag, s->etag, sizeof(k->etag));
        if (s->m) {
            memcpy(k->txn_id, s->m->txn_id, 33);
            memcpy(k->incarnation, s->m->incarnation, 33);
        }
        k->valid = 1;
    }
}

dsq_rc dsq_db_fresh(struct dsq_db *db, const struct dsq_snap *s,
                    uint64_t started_ns, struct dsq_fresh *out,
                    struct dsq_err *e)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&db->mu);
    if (!started_ns)
        started_ns = dsq_mono_ns();
    for (;;) {
        if (db->head.sent_ns && db->head.sent_ns >= started_ns) {
            answer(db, s, out);
            out->shared = 1;
            db->stats.fresh_shared++;
            pthread_mutex_unlock(&db->mu);
            return DSQ_OK;
        }
        if (!db->checks_inflight || db->inflight_sent_ns < started_ns)
            break;
        /* one sent after we started is on its way: its answer is ours */
        pthread_mutex_unlock(&db->mu);
        dsq_store_will_wait(db->st);
        pthread_mutex_lock(&db->mu);
        if (db->checks_inflight && db->inflight_sent_ns >= started_ns &&
            !(db->head.sent_ns >= started_ns))
            pthread_cond_wait(&db->fresh_cv, &db->mu);
    }
    struct known k;
    known_from(db, s, &k);
    uint64_t sent = dsq_mono_ns();
    db->checks_inflight++;
    if (sent > db->inflight_sent_ns)
        db->inflight_sent_ns = sent;
    db->stats.fresh_checks++;
    pthread_mutex_unlock(&db->mu);

    struct found f;
    dsq_rc rc = check(db, &k, &f, e);
    int flush = 0;

    pthread_mutex_lock(&db->mu);
    if (--db->checks_inflight == 0)
        db->inflight_sent_ns = 0;
    if (rc == DSQ_OK)
        db->fresh_rtt_ns = dsq_mono_ns() - sent;
    if (rc == DSQ_OK && sent >= db->head.sent_ns) {
        if (f.replaced) {
            db->epoch++;
            db->known_latest = f.head.version;
            flush = 1;
            dsq_log(DSQ_LOG_NOTICE, "db",
                    "%s: the database was deleted or created again (version "
                    "%llu is not the one this handle knew); now at version "
                    "%llu",
                    db->prefix, (unsigned long long)k.version,
                    (unsigned long long)f.head.version);
        }
        db->head = f.head;
        db->head.sent_ns = sent;
        if (!f.replaced && f.head.version > db->known_latest)
            db->known_latest = f.head.version;
    }
    if (rc == DSQ_OK)
        answer(db, s, out);
    pthread_cond_broadcast(&db->fresh_cv);
    pthread_mutex_unlock(&db->mu);
    if (flush)
        dsq__snap_cache_flush(db);
    return rc;
}

dsq_rc dsq_db_fresh_recent(struct dsq_db *db, const struct dsq_snap *s,
                           struct dsq_fresh *out, struct dsq_err *e)
{
    uint64_t now = dsq_mono_ns();
    pthread_mutex_lock(&db->mu);
    uint64_t window = DSQ_FRESH_RECENT_RTTS * db->fresh_rtt_ns;
    if (db->head.sent_ns && db->fresh_rtt_ns &&
        now - db->head.sent_ns < window) {
        memset(out, 0, sizeof(*out));
        answer(db, s, out);
        out->shared = 1;
        db->stats.fresh_shared++;
        pthread_mutex_unlock(&db->mu);
        return DSQ_OK;
    }
    pthread_mutex_unlock(&db->mu);
    return dsq_db_fresh(db, s, now, out, e);
}
