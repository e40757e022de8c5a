/*
 * maint.c - the daemon's own upkeep (maint.h; docs/mount.md,
 * "Maintenance").
 *
 * Layer: FUSE front end.  Sections, in order:
 *   1. the walk over every database under the source (one LIST per prefix)
 *   2. one round: per database, the orphan sweep (recovery scan with
 *      delete, objects older than orphan_grace, and the temporary files
 *      killed writes left) and, when asked for, the
 *      retention gc (gc_keep, gc_keep_for) that never removes a version
 *      this daemon still serves or a transaction still uses, nor one
 *      younger than the gc floor's minimum age (C9: the floor is written
 *      before anything goes, by dsq_db_gc_pinned); hot.seg rewritten for
 *      the newest version when it was written for another
 *   3. the threads: rounds every maint_interval seconds; the health probe
 *      (a one-key LIST) every health_interval seconds
 *   4. usage for statfs
 *   5. rendering .dsqlfs/health, maintenance.json and metrics lines
 *   6. "dsqlfs maintain"
 *
 * Locking: m->mu guards the counters, the per-database table, the health
 * fields and the usage cache; it is never held across a store call.
 * m->round_mu serialises rounds and usage walks with each other (a walk
 * runs with it held, store calls included; nobody else waits on it but
 * those two, and a df before any usage figure exists).  The fs's locks are
 * taken only inside dsq_fs_each_db callbacks (fs->mu, then each df->mu: the
 * documented order), for reading a few fields, never across a store call.  A
 * round makes its own engine handle per database, so nothing here touches a
 * database file's caches.
 */
#include "maint.h"

#include "db.h"
#include "env.h"
#include "fs.h"
#include "log.h"
#include "loop.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WALK_MAX_DEPTH 32
#define USAGE_TTL_MS 5000u
#define S3_FREE_BYTES (1ULL << 50) /* 1 PiB: S3 has no quota to report */
#define STATFS_FRSIZE 512u         /* SQLite pages are multiples of 512 */
#define MAX_TRACKED_DBS 10000u

struct dbcount {
    char *prefix;
    uint64_t rounds, orphans_removed, versions_removed, objects_removed;
    uint64_t floor, head, errors;
    char last_error[256];
};

struct dsq_maint {
    struct dsq_store *st;         /* borrowed */
    const struct dsq_config *cfg; /* borrowed */
    struct dsq_fs *fs;            /* borrowed; NULL on the command line */
    char *source;
    int read_only;
    int do_gc;
    uint64_t keep_versions, keep_ms, grace_ms;

    pthread_mutex_t round_mu; /* see the top comment */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* stop requested */
    /* guarded by mu: */
    int stop;
    int started;
    pthread_t round_th, health_th;
    uint64_t rounds, round_errors;
    uint64_t orphans_removed, versions_removed, objects_removed;
    uint64_t last_round_ms, last_round_took_ms;
    struct dbcount *dbs;
    size_t n_dbs, cap_dbs;
    /* health */
    uint64_t h_probes, h_failures;
    uint64_t h_last_ok_ms, h_last_probe_ms;
    int h_last_ok;
    char h_error[512];
    /* usage */
    uint64_t u_bytes, u_dbs, u_at_ms;
    int u_valid;
};

static uint64_t wall_ms(void)
{
    return dsq_now_ms();
}

/* ---- 1. the walk ---- */

typedef void (*db_fn)(struct dsq_maint *m, const char *prefix, void *arg);

static int stopping(struct dsq_maint *m)
{
    pthread_mutex_lock(&m->mu);
    int s = m->stop;
    pthread_mutex_unlock(&m->mu);
    return s;
}

/* Every database under dir ("" or "a/b/"), depth first, in key order. */
static dsq_rc walk(struct dsq_maint *m, const char *dir, int depth, db_fn fn,
                   void *arg, struct dsq_err *e)
{
    size_t dl = strlen(dir);
    char **kids = NULL;
    size_t nk = 0, capk = 0;
    int is_db = 0;
    char *token = NULL;
    dsq_rc rc = DSQ_OK;
    do {
        struct dsq_list_req req = {
            .prefix = dir, .delimiter = "/", .token = token, .max_keys = 1000};
        struct dsq_list_page pg = {0};
        rc = dsq_store_list(m->st, &req, &pg, e);
        free(token);
        token = NULL;
        if (rc != DSQ_OK)
            break;
        for (size_t i = 0; i < pg.n_entries; i++)
            if (!strcmp(pg.entries[i].key + dl, "root.json"))
                is_db = 1;
        for (size_t i = 0; i < pg.n_prefixes && rc == DSQ_OK; i++) {
            const char *cp = pg.common_prefixes[i];
            if (!strcmp(cp + dl, "manifests/")) {
                is_db = 1;
                continue;
            }
            if (cp[dl] == '.') /* hidden: probes, temporary objects */
                continue;
            if (nk == capk) {
                size_t nc = capk ? capk * 2 : 16;
                char **nv = realloc(kids, nc * sizeof(*nv));
                if (!nv) {
                    rc = DSQ_ENOMEM;
                    break;
                }
                kids = nv;
                capk = nc;
            }
            if (!(kids[nk] = strdup(cp)))
                rc = DSQ_ENOMEM;
            else
                nk++;
        }
        if (rc == DSQ_OK && pg.next_token && !(token = strdup(pg.next_token)))
            rc = DSQ_ENOMEM;
        dsq_list_page_cleanup(&pg);
    } while (rc == DSQ_OK && token);
    free(token);
    if (rc == DSQ_OK && is_db && dl > 0) {
        char *p = strndup(dir, dl - 1);
        if (!p)
            rc = DSQ_ENOMEM;
        else
            fn(m, p, arg);
        free(p);
    } else if (rc == DSQ_OK && !is_db && depth < WALK_MAX_DEPTH) {
        for (size_t i = 0; i < nk && rc == DSQ_OK && !stopping(m); i++)
            rc = walk(m, kids[i], depth + 1, fn, arg, e);
    }
    for (size_t i = 0; i < nk; i++)
        free(kids[i]);
    free(kids);
    return rc;
}

/* ---- 2. one round ---- */

static struct dbcount *dbcount_get(struct dsq_maint *m, const char *prefix)
{
    for (size_t i = 0; i < m->n_dbs; i++)
        if (!strcmp(m->dbs[i].prefix, prefix))
            return &m->dbs[i];
    if (m->n_dbs >= MAX_TRACKED_DBS)
        return NULL;
    if (m->n_dbs == m->cap_dbs) {
        size_t nc = m->cap_dbs ? m->cap_dbs * 2 : 16;
        struct dbcount *nv = realloc(m->dbs, nc * sizeof(*nv));
        if (!nv)
            return NULL;
        m->dbs = nv;
        m->cap_dbs = nc;
    }
    struct dbcount *d = &m->dbs[m->n_dbs];
    memset(d, 0, sizeof(*d));
    if (!(d->prefix = strdup(prefix)))
        return NULL;
    m->n_dbs++;
    return d;
}

struct pin_scan {
    const char *prefix;
    uint64_t oldest; /* 0 = none */
};

static void pin_fn(struct dsq_dbfile *df, void *arg)
{
    struct pin_scan *p = arg;
    if (strcmp(df->prefix, p->prefix) != 0)
        return;
    /* the served snapshot counts while someone may still read it: the
       file is open or locked, or a read transaction may reuse it without
       asking the store (staleness); otherwise the next open moves it */
    int reuse = df->fs->cfg->staleness_s > 0;
    pthread_mutex_lock(&df->mu);
    int in_use = reuse || df->open_count > 0 || df->locks.n > 0 || df->txn;
    uint64_t v[2] = {df->snap && in_use ? dsq_snap_version(df->snap) : 0,
                     df->txn ? dsq_txn_snapshot_version(df->txn) : 0};
    pthread_mutex_unlock(&df->mu);
    for (int i = 0; i < 2; i++)
        if (v[i] && (!p->oldest || v[i] < p->oldest))
            p->oldest = v[i];
}

struct round {
    int dry_run;
    FILE *out; /* command line: one line per database */
    unsigned dbs, failed;
};

static void note_error(struct dsq_maint *m, const char *prefix,
                       const char *what, const struct dsq_err *e, dsq_rc rc)
{
    const char *msg = dsq_err_text(e, rc);
    dsq_log(DSQ_LOG_WARNING, "maint", "%s: %s: %s", prefix, what, msg);
    pthread_mutex_lock(&m->mu);
    struct dbcount *d = dbcount_get(m, prefix);
    if (d) {
        d->errors++;
        snprintf(d->last_error, sizeof(d->last_error), "%s: %s", what, msg);
    }
    m->round_errors++;
    pthread_mutex_unlock(&m->mu);
}

static void orphan_log(const char *key, uint64_t size, uint64_t mtime_ms,
                       int deleted, void *arg)
{
    (void)mtime_ms;
    const char *prefix = arg;
    dsq_log(DSQ_LOG_NOTICE, "maint", "%s: orphan %s (%" PRIu64 " bytes)%s",
            prefix, key, size, deleted ? " removed" : "");
}

static void round_db(struct dsq_maint *m, const char *prefix, void *arg)
{
    struct round *r = arg;
    struct dsq_db *db = NULL;
    struct dsq_err e;
    dsq_err_clear(&e);
    r->dbs++;
    if (m->read_only)
        return;
    dsq_rc rc = dsq_db_open(m->st, prefix, m->cfg, &db, &e);
    if (rc != DSQ_OK) {
        note_error(m, prefix, "open", &e, rc);
        r->failed++;
        return;
    }
    uint64_t orphans = 0;
    struct dsq_gc_report rep = {0};
    int failed = 0;
    if (m->cfg->orphan_sweep) {
        rc = dsq_db_recovery_scan(db, m->grace_ms, !r->dry_run, orphan_log,
                                  (void *)prefix, &orphans, &e);
        if (rc != DSQ_OK) {
            note_error(m, prefix, "orphan sweep", &e, rc);
            failed = 1;
            orphans = 0;
        }
        /* and the temporary files of writes that were killed (file://):
           counted with the orphans */
        uint64_t tmpfiles = 0;
        dsq_err_clear(&e);
        rc = dsq_db_debris_scan(db, m->grace_ms, !r->dry_run, orphan_log,
                                (void *)prefix, &tmpfiles, &e);
        if (rc != DSQ_OK) {
            note_error(m, prefix, "temporary file sweep", &e, rc);
            failed = 1;
        } else {
            orphans += tmpfiles;
        }
    }
    if (!r->dry_run && !stopping(m)) {
        /* hot.seg for the newest version, so that cold opens stay one
           request per level short (a hint: a failure is only logged) */
        size_t hot = 0;
        dsq_err_clear(&e);
        rc = dsq_db_hot_refresh(db, &hot, &e);
        if (rc != DSQ_OK)
            note_error(m, prefix, "hot pages", &e, rc);
        else if (hot)
            dsq_log(DSQ_LOG_INFO, "maint", "%s: %zu hot pages rewritten",
                    prefix, hot);
    }
    if (m->do_gc && !stopping(m)) {
        struct pin_scan pin = {.prefix = prefix};
        if (m->fs)
            dsq_fs_each_db(m->fs, pin_fn, &pin);
        dsq_err_clear(&e);
        rc = dsq_db_gc_pinned(db, m->keep_versions, m->keep_ms, pin.oldest,
                              r->dry_run, &rep, &e);
        if (rc != DSQ_OK) {
            note_error(m, prefix, "gc", &e, rc);
            failed = 1;
            memset(&rep, 0, sizeof(rep));
        }
    }
    dsq_db_close(db);
    if (failed)
        r->failed++;
    if (!r->dry_run) {
        pthread_mutex_lock(&m->mu);
        struct dbcount *d = dbcount_get(m, prefix);
        if (d) {
            d->rounds++;
            d->orphans_removed += orphans;
            d->versions_removed += rep.versions_removed;
            d->objects_removed += rep.objects_removed;
            if (rep.head) {
                d->head = rep.head;
                d->floor = rep.floor;
            }
        }
        m->orphans_removed += orphans;
        m->versions_removed += rep.versions_removed;
        m->objects_removed += rep.objects_removed;
        pthread_mutex_unlock(&m->mu);
    }
    if (orphans || rep.versions_removed)
        dsq_log(DSQ_LOG_NOTICE, "maint",
                "%s: %s %" PRIu64 " orphan(s), %" PRIu64
                " version(s) and %" PRIu64 " object(s) they alone used",
                prefix, r->dry_run ? "would remove" : "removed", orphans,
                rep.versions_removed, rep.objects_removed);
    if (r->out) {
        fprintf(r->out, "%s: %s %" PRIu64 " orphan(s)", prefix,
                r->dry_run ? "would remove" : "removed", orphans);
        if (m->do_gc && rep.head)
            fprintf(r->out,
                    ", %" PRIu64 " version(s) below %" PRIu64 " and %" PRIu64
                    " object(s) only they used; versions %" PRIu64 "..%" PRIu64
                    " stay",
                    rep.versions_removed, rep.floor, rep.objects_removed,
                    rep.floor, rep.head);
        fprintf(r->out, "%s\n", failed ? " (with errors, see above)" : "");
    }
}

/* One round over every database; DSQ_OK unless the walk itself failed. */
static dsq_rc run_round(struct dsq_maint *m, struct round *r, struct dsq_err *e)
{
    uint64_t t0 = dsq_mono_ns();
    pthread_mutex_lock(&m->round_mu);
    dsq_rc rc = walk(m, "", 0, round_db, r, e);
    pthread_mutex_unlock(&m->round_mu);
    if (!r->dry_run) {
        pthread_mutex_lock(&m->mu);
        m->rounds++;
        m->last_round_ms = wall_ms();
        m->last_round_took_ms = (dsq_mono_ns() - t0) / 1000000u;
        if (rc != DSQ_OK)
            m->round_errors++;
        pthread_mutex_unlock(&m->mu);
    }
    if (rc != DSQ_OK)
        dsq_log(DSQ_LOG_WARNING, "maint", "listing %s: %s", m->source,
                dsq_err_text(e, rc));
    return rc;
}

/* ---- 3. threads ---- */

/* Wait up to ms for a stop; 1 if stopping. */
static int wait_stop(struct dsq_maint *m, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->mu);
    while (!m->stop)
        if (pthread_cond_timedwait(&m->cv, &m->mu, &ts) == ETIMEDOUT)
            break;
    int s = m->stop;
    pthread_mutex_unlock(&m->mu);
    return s;
}

static void *round_thread(void *arg)
{
    struct dsq_maint *m = arg;
    /* the first round soon after mounting, then every interval */
    uint64_t wait = m->cfg->maint_interval_s < 10
                        ? (uint64_t)m->cfg->maint_interval_s * 1000u
                        : 10000u;
    while (!wait_stop(m, wait)) {
        struct round r = {0};
        struct dsq_err e;
        dsq_err_clear(&e);
        run_round(m, &r, &e);
        wait = (uint64_t)m->cfg->maint_interval_s * 1000u;
    }
    return NULL;
}

static void probe(struct dsq_maint *m)
{
    struct dsq_list_req req = {.prefix = "", .max_keys = 1};
    struct dsq_list_page pg = {0};
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_store_list(m->st, &req, &pg, &e);
    dsq_list_page_cleanup(&pg);
    uint64_t now = wall_ms();
    pthread_mutex_lock(&m->mu);
    m->h_probes++;
    m->h_last_probe_ms = now;
    m->h_last_ok = rc == DSQ_OK;
    if (rc == DSQ_OK) {
        m->h_last_ok_ms = now;
        m->h_error[0] = 0;
    } else {
        m->h_failures++;
        snprintf(m->h_error, sizeof(m->h_error), "%s", dsq_err_text(&e, rc));
    }
    pthread_mutex_unlock(&m->mu);
    if (rc != DSQ_OK)
        dsq_log(DSQ_LOG_WARNING, "health", "the store did not answer: %s",
                dsq_err_text(&e, rc));
}

static void *health_thread(void *arg)
{
    struct dsq_maint *m = arg;
    do
        probe(m);
    while (!wait_stop(m, (uint64_t)m->cfg->health_interval_s * 1000u));
    return NULL;
}

dsq_rc dsq_maint_new(struct dsq_store *st, const struct dsq_config *cfg,
                     const char *source, struct dsq_fs *fs,
                     struct dsq_maint **out, struct dsq_err *e)
{
    uint64_t min_ms = dsq_db_gc_min_retention_ms();
    if (cfg->gc_keep_for_s && (uint64_t)cfg->gc_keep_for_s * 1000u < min_ms)
        return dsq_err_set(e, DSQ_EINVAL,
                           "option gc_keep_for (-o): %u s is less than %llu "
                           "s, the least age of a version gc removes "
                           "(writers rely on it)",
                           cfg->gc_keep_for_s,
                           (unsigned long long)(min_ms / 1000));
    if ((uint64_t)cfg->orphan_grace_s * 1000u < min_ms)
        return dsq_err_set(e, DSQ_EINVAL,
                           "option orphan_grace (-o): %u s is less than %llu "
                           "s (an orphan that young may be a commit in "
                           "flight)",
                           cfg->orphan_grace_s,
                           (unsigned long long)(min_ms / 1000));
    struct dsq_maint *m = calloc(1, sizeof(*m));
    if (!m || !(m->source = strdup(source))) {
        free(m);
        return DSQ_ENOMEM;
    }
    m->st = st;
    m->cfg = cfg;
    m->fs = fs;
    m->read_only = cfg->read_only;
    m->do_gc = cfg->gc_keep > 0 || cfg->gc_keep_for_s > 0;
    m->keep_versions = cfg->gc_keep ? cfg->gc_keep : 1;
    m->keep_ms = (uint64_t)cfg->gc_keep_for_s * 1000u;
    if (m->keep_ms < min_ms)
        m->keep_ms = min_ms;
    m->grace_ms = (uint64_t)cfg->orphan_grace_s * 1000u;
    m->h_last_ok = 1; /* the mount's own probe just succeeded */
    m->h_last_ok_ms = m->h_last_probe_ms = wall_ms();
    pthread_mutex_init(&m->round_mu, NULL);
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = m;
    return DSQ_OK;
}

int dsq_maint_start(struct dsq_maint *m)
{
    pthread_mutex_lock(&m->mu);
    int ok = pthread_create(&m->health_th, NULL, health_thread, m) == 0;
    if (ok) {
        m->started = 1;
        if (m->cfg->maint_interval_s > 0 && !m->read_only) {
            if (pthread_create(&m->round_th, NULL, round_thread, m) == 0)
                m->started = 2;
            else
                ok = 0;
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (!ok)
        dsq_log(DSQ_LOG_ERR, "maint", "cannot start the maintenance threads");
    return ok ? 0 : -1;
}

void dsq_maint_free(struct dsq_maint *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = 1;
    int started = m->started;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (started >= 1)
        pthread_join(m->health_th, NULL);
    if (started >= 2)
        pthread_join(m->round_th, NULL);
    for (size_t i = 0; i < m->n_dbs; i++)
        free(m->dbs[i].prefix);
    free(m->dbs);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->round_mu);
    free(m->source);
    free(m);
}

/* ---- 4. usage ---- */

struct served {
    const char *prefix;
    int known;
    uint64_t size;
};

static void served_fn(struct dsq_dbfile *df, void *arg)
{
    struct served *s = arg;
    if (s->known || strcmp(df->prefix, s->prefix) != 0)
        return;
    pthread_mutex_lock(&df->mu);
    if (df->snap) {
        s->known = 1;
        s->size = (uint64_t)dsq_snap_page_count(df->snap) *
                  dsq_snap_page_size(df->snap);
    }
    pthread_mutex_unlock(&df->mu);
}

struct usage {
    uint64_t bytes, dbs;
    int failed;
};

static void usage_db(struct dsq_maint *m, const char *prefix, void *arg)
{
    struct usage *u = arg;
    u->dbs++;
    /* what the mount serves, where it serves the database already */
    struct served s = {.prefix = prefix};
    if (m->fs)
        dsq_fs_each_db(m->fs, served_fn, &s);
    if (s.known) {
        u->bytes += s.size;
        return;
    }
    struct dsq_db *db = NULL;
    struct dsq_snap *snap = NULL;
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_db_open(m->st, prefix, m->cfg, &db, &e);
    if (rc == DSQ_OK)
        rc = dsq_db_snapshot(db, DSQ_VERSION_LATEST, &snap, &e);
    if (rc == DSQ_OK)
        u->bytes +=
            (uint64_t)dsq_snap_page_count(snap) * dsq_snap_page_size(snap);
    else
        u->failed = 1;
    dsq_snap_release(snap);
    dsq_db_close(db);
}

static uint64_t free_bytes(struct dsq_maint *m)
{
    if (strncmp(m->source, "file://", 7) != 0)
        return S3_FREE_BYTES;
    struct statvfs v;
    if (statvfs(m->source + 7, &v) != 0)
        return 0;
    return (uint64_t)v.f_bavail * v.f_frsize;
}

void dsq_maint_statfs(struct dsq_maint *m, struct statvfs *sv)
{
    uint64_t now = wall_ms();
    pthread_mutex_lock(&m->mu);
    int fresh = m->u_valid && now - m->u_at_ms < USAGE_TTL_MS;
    int have = m->u_valid;
    pthread_mutex_unlock(&m->mu);
    /* one walk at a time; a df during a long round gets the last figure,
       or waits for the round when there is none yet */
    int walk_now = 0;
    if (!fresh) {
        if (have) {
            walk_now = pthread_mutex_trylock(&m->round_mu) == 0;
        } else {
            dsq_loop_may_block(); /* a round may hold it for a while */
            pthread_mutex_lock(&m->round_mu);
            walk_now = 1;
        }
    }
    if (walk_now) {
        struct usage u = {0};
        struct dsq_err e;
        dsq_err_clear(&e);
        dsq_rc rc = walk(m, "", 0, usage_db, &u, &e);
        pthread_mutex_unlock(&m->round_mu);
        pthread_mutex_lock(&m->mu);
        if (rc == DSQ_OK && !u.failed) {
            m->u_bytes = u.bytes;
            m->u_dbs = u.dbs;
            m->u_at_ms = now;
            m->u_valid = 1;
        }
        pthread_mutex_unlock(&m->mu);
        if (rc != DSQ_OK)
            dsq_log(DSQ_LOG_WARNING, "maint", "statfs: listing %s: %s",
                    m->source, dsq_err_text(&e, rc));
    }
    pthread_mutex_lock(&m->mu);
    uint64_t used = m->u_bytes, dbs = m->u_dbs;
    pthread_mutex_unlock(&m->mu);
    uint64_t avail = free_bytes(m);
    memset(sv, 0, sizeof(*sv));
    sv->f_bsize = 4096;
    sv->f_frsize = STATFS_FRSIZE;
    sv->f_blocks =
        (used + STATFS_FRSIZE - 1) / STATFS_FRSIZE + avail / STATFS_FRSIZE;
    sv->f_bfree = sv->f_bavail = avail / STATFS_FRSIZE;
    sv->f_ffree = sv->f_favail = 1u << 30;
    sv->f_files = sv->f_ffree + dbs;
    sv->f_namemax = 255;
}

/* ---- 5. rendering ---- */

static void json_str(struct dsq_buf *b, const char *s)
{
    dsq_buf_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            dsq_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            dsq_buf_printf(b, "\\u%04x", c);
        else
            dsq_buf_printf(b, "%c", c);
    }
    dsq_buf_printf(b, "\"");
}

/* 1 if the store answered within three probe intervals, the last probe
   included. */
static int healthy(const struct dsq_maint *m, uint64_t now)
{
    uint64_t window = 3ull * m->cfg->health_interval_s * 1000u;
    return m->h_last_ok && now - m->h_last_ok_ms <= window;
}

void dsq_maint_render_health(struct dsq_maint *m, struct dsq_buf *b)
{
    uint64_t now = wall_ms();
    pthread_mutex_lock(&m->mu);
    int ok = healthy(m, now);
    double ago = (double)(now - m->h_last_ok_ms) / 1000.0;
    dsq_buf_printf(b, "%s\n", ok ? "ok" : "fail");
    if (ok)
        dsq_buf_printf(b,
                       "the store %s answered %.1f s ago (probed every %u "
                       "s)\n",
                       m->source, ago, m->cfg->health_interval_s);
    else if (!m->h_last_ok)
        dsq_buf_printf(b,
                       "the store %s did not answer the last probe (last "
                       "answer %.1f s ago): %s\n",
                       m->source, ago, m->h_error);
    else
        dsq_buf_printf(b,
                       "the store %s has not answered for %.1f s (a probe "
                       "is still waiting)\n",
                       m->source, ago);
    pthread_mutex_unlock(&m->mu);
}

void dsq_maint_render_json(struct dsq_maint *m, struct dsq_buf *b)
{
    char t[32];
    pthread_mutex_lock(&m->mu);
    dsq_buf_printf(b, "{\n  \"source\": ");
    json_str(b, m->source);
    dsq_buf_printf(
        b,
        ",\n  \"background\": %s,\n  \"interval_seconds\": %u"
        ",\n  \"orphan_sweep\": %s,\n  \"orphan_grace_seconds\": %u"
        ",\n  \"gc\": %s,\n  \"gc_keep\": %u,\n  \"gc_keep_for_seconds\": %u"
        ",\n  \"rounds\": %" PRIu64 ",\n  \"last_round\": ",
        m->started >= 2 ? "true" : "false", m->cfg->maint_interval_s,
        m->cfg->orphan_sweep && !m->read_only ? "true" : "false",
        m->cfg->orphan_grace_s, m->do_gc && !m->read_only ? "true" : "false",
        m->cfg->gc_keep, m->cfg->gc_keep_for_s, m->rounds);
    if (m->last_round_ms) {
        dsq_format_time_ms(m->last_round_ms, t);
        dsq_buf_printf(b, "\"%s\"", t);
    } else {
        dsq_buf_printf(b, "null");
    }
    dsq_buf_printf(b,
                   ",\n  \"last_round_ms\": %" PRIu64
                   ",\n  \"orphans_removed\": %" PRIu64
                   ",\n  \"versions_removed\": %" PRIu64
                   ",\n  \"objects_removed\": %" PRIu64
                   ",\n  \"errors\": %" PRIu64 ",\n  \"databases\": {",
                   m->last_round_took_ms, m->orphans_removed,
                   m->versions_removed, m->objects_removed, m->round_errors);
    for (size_t i = 0; i < m->n_dbs; i++) {
        const struct dbcount *d = &m->dbs[i];
        dsq_buf_printf(b, "%s\n    ", i ? "," : "");
        json_str(b, d->prefix);
        dsq_buf_printf(
            b,
            ": {\"rounds\": %" PRIu64 ", \"orphans_removed\": %" PRIu64
            ", \"versions_removed\": %" PRIu64 ", \"objects_removed\": %" PRIu64
            ", \"floor\": %" PRIu64 ", \"head\": %" PRIu64
            ", \"errors\": %" PRIu64 ", \"last_error\": ",
            d->rounds, d->orphans_removed, d->versions_removed,
            d->objects_removed, d->floor, d->head, d->errors);
        if (d->last_error[0])
            json_str(b, d->last_error);
        else
            dsq_buf_printf(b, "null");
        dsq_buf_printf(b, "}");
    }
    dsq_buf_printf(b, "%s}\n}\n", m->n_dbs ? "\n  " : "");
    pthread_mutex_unlock(&m->mu);
}

void dsq_maint_render_prom(struct dsq_maint *m, struct dsq_buf *b)
{
    uint64_t now = wall_ms();
    pthread_mutex_lock(&m->mu);
    dsq_buf_printf(b,
                   "# TYPE dsqlfs_store_up gauge\ndsqlfs_store_up %d\n"
                   "dsqlfs_store_last_answer_age_seconds %.3f\n"
                   "dsqlfs_store_probe_failures_total %" PRIu64 "\n"
                   "dsqlfs_maint_rounds_total %" PRIu64 "\n"
                   "dsqlfs_maint_errors_total %" PRIu64 "\n",
                   healthy(m, now), (double)(now - m->h_last_ok_ms) / 1000.0,
                   m->h_failures, m->rounds, m->round_errors);
    for (size_t i = 0; i < m->n_dbs; i++) {
        const struct dbcount *d = &m->dbs[i];
        dsq_buf_printf(
            b,
            "dsqlfs_maint_orphans_removed_total{db=\"%s\"} %" PRIu64 "\n"
            "dsqlfs_maint_versions_removed_total{db=\"%s\"} %" PRIu64 "\n"
            "dsqlfs_maint_objects_removed_total{db=\"%s\"} %" PRIu64 "\n",
            d->prefix, d->orphans_removed, d->prefix, d->versions_removed,
            d->prefix, d->objects_removed);
    }
    pthread_mutex_unlock(&m->mu);
}

/* ---- 6. dsqlfs maintain ---- */

static void maintain_usage(FILE *f)
{
    fprintf(f, "usage: dsqlfs maintain SOURCE [-o opt,...] [--dry-run]\n"
               "  one round over every database under SOURCE (file:///dir, "
               "s3://BUCKET[/PREFIX]):\n"
               "  orphans older than orphan_grace are removed; with gc_keep "
               "or gc_keep_for,\n"
               "  old versions too (dsqlfs(8), MAINTENANCE)\n");
}

int dsq_maint_main(int argc, char **argv)
{
    struct dsq_config cfg;
    struct dsq_err e;
    const char *source = NULL;
    int dry_run = 0, ret = 2;
    struct dsq_store *st = NULL;
    struct dsq_maint *m = NULL;
    dsq_config_init(&cfg);
    dsq_err_clear(&e);
    dsq_rc rc = dsq_config_load_env(&cfg, &e);
    if (rc != DSQ_OK) {
        fprintf(stderr, "dsqlfs maintain: %s\n", dsq_err_text(&e, rc));
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--dry-run")) {
            dry_run = 1;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            dsq_log_set_level(DSQ_LOG_INFO);
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            maintain_usage(stdout);
            ret = 0;
            goto out;
        } else if (!strcmp(a, "-o")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dsqlfs maintain: -o needs a value\n");
                goto out;
            }
            rc = dsq_config_set_list(&cfg, argv[++i], &e);
            if (rc != DSQ_OK) {
                fprintf(stderr, "dsqlfs maintain: %s\n", dsq_err_text(&e, rc));
                goto out;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr,
                    "dsqlfs maintain: unknown flag '%s' (see dsqlfs "
                    "maintain --help)\n",
                    a);
            goto out;
        } else if (!source) {
            source = a;
        } else {
            fprintf(stderr, "dsqlfs maintain: too many arguments ('%s')\n", a);
            goto out;
        }
    }
    if (!source || !strstr(source, "://")) {
        maintain_usage(stderr);
        goto out;
    }
    ret = 1;
    rc = dsq_store_open(source, &cfg, &st, &e);
    if (rc == DSQ_OK && !dry_run && !cfg.read_only)
        rc = dsq_store_check_conditional(st, &e);
    if (rc == DSQ_OK)
        rc = dsq_maint_new(st, &cfg, source, NULL, &m, &e);
    if (rc != DSQ_OK) {
        fprintf(stderr, "dsqlfs maintain: %s: %s\n", source,
                dsq_err_text(&e, rc));
        ret = rc == DSQ_EINVAL ? 2 : 1;
        goto out;
    }
    struct round r = {.dry_run = dry_run, .out = stdout};
    rc = run_round(m, &r, &e);
    if (rc != DSQ_OK) {
        fprintf(stderr, "dsqlfs maintain: %s: %s\n", source,
                dsq_err_text(&e, rc));
        goto out;
    }
    printf("%u database(s)%s%s\n", r.dbs,
           cfg.read_only ? ", read-only: nothing removed" : "",
           r.failed ? ", some with errors" : "");
    ret = r.failed ? 1 : 0;
out:
    dsq_maint_free(m);
    dsq_store_free(st);
    dsq_config_cleanup(&cfg);
    return ret;
}
