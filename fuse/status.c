/*
 * status.c - the read-only .dsqlfs/ directory at the mount root: one JSON
 * file per database known to this daemon (version, head, lag, commits,
 * conflicts, retries, cache hits and misses, store requests) and
 * metrics.prom in Prometheus' text format.
 *
 * Besides them: health (first line "ok" or "fail": whether the store
 * answered recently, for liveness probes) and maintenance.json (what the
 * background upkeep removed), both from maint.c, whose counters are also
 * appended to metrics.prom.
 *
 * Layer: FUSE front end.  Content is rendered at open (and at getattr for
 * the size); files are opened direct_io so sizes may change.
 */
#include "conflicts.h"
#include "dbfile_int.h"
#include "devio.h"
#include "fs.h"
#include "loop.h"
#include "maint.h"

#include <inttypes.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dsq_status_name(const char *prefix, char *out, size_t outsz)
{
    size_t k = 0;
    for (const char *s = prefix; *s && k + 8 < outsz; s++) {
        if (*s == '/' || *s == '%')
            k += (size_t)snprintf(out + k, outsz - k, "%%%02X",
                                  (unsigned char)*s);
        else
            out[k++] = *s;
    }
    snprintf(out + k, outsz - k, ".json");
}

struct render {
    struct dsq_buf *b;
    const char *prefix;
    int prom;
};

static void each(struct dsq_dbfile *df, void *arg)
{
    struct render *r = arg;
    if (r->prom || !strcmp(df->prefix, r->prefix))
        dsq_dbfile_status(df, r->b, r->prom);
}

const char *const dsq_status_files[] = {"health", "maintenance.json", NULL};

int dsq_status_is_file(const char *name)
{
    for (const char *const *f = dsq_status_files; *f; f++)
        if (!strcmp(*f, name))
            return 1;
    return 0;
}

void dsq_status_statfs(struct dsq_fs *fs, struct statvfs *sv)
{
    if (fs->maint) {
        dsq_maint_statfs(fs->maint, sv);
        return;
    }
    memset(sv, 0, sizeof(*sv));
    sv->f_bsize = sv->f_frsize = 4096;
    sv->f_namemax = 255;
}

char *dsq_status_render(struct dsq_fs *fs, const char *prefix, size_t *len)
{
    struct dsq_buf b;
    dsq_buf_init(&b, 64u << 20);
    struct render r = {.b = &b, .prefix = prefix, .prom = prefix[0] == 0};
    if (prefix[0] == '/') {
        if (!fs->maint)
            dsq_buf_printf(&b, "fail\nno maintenance state\n");
        else if (!strcmp(prefix + 1, "health"))
            dsq_maint_render_health(fs->maint, &b);
        else if (!strcmp(prefix + 1, "maintenance.json"))
            dsq_maint_render_json(fs->maint, &b);
        goto done;
    }
    if (r.prom)
        dsq_buf_printf(&b, "# dsqlfs metrics, one series per database "
                           "(label db)\n# TYPE dsqlfs_version gauge\n");
    dsq_fs_each_db(fs, each, &r);
    if (r.prom && fs->maint)
        dsq_maint_render_prom(fs->maint, &b);
    if (r.prom) {
        const char *names[64];
        unsigned long counts[64];
        size_t n = dsq_loop_counts(names, counts, 64);
        dsq_buf_printf(&b, "# TYPE dsqlfs_fuse_requests_total counter\n");
        for (size_t i = 0; i < n; i++)
            dsq_buf_printf(&b, "dsqlfs_fuse_requests_total{op=\"%s\"} %lu\n",
                           names[i], counts[i]);
        dsq_buf_printf(&b,
                       "# TYPE dsqlfs_fuse_handle_killpriv gauge\n"
                       "dsqlfs_fuse_handle_killpriv %d\n",
                       dsq_devio_killpriv_added());
        uint64_t c_sleep, c_spin;
        unsigned long epochs;
        int way = dsq_loop_spin(&c_sleep, &c_spin, &epochs);
        if (way >= 0)
            dsq_buf_printf(
                &b,
                "# TYPE dsqlfs_fuse_spin gauge\n"
                "dsqlfs_fuse_spin %d\n"
                "# TYPE dsqlfs_fuse_spin_trial_cost_us gauge\n"
                "dsqlfs_fuse_spin_trial_cost_us{way=\"sleep\"} %" PRIu64 "\n"
                "dsqlfs_fuse_spin_trial_cost_us{way=\"spin\"} %" PRIu64 "\n"
                "# TYPE dsqlfs_fuse_spin_trials_total counter\n"
                "dsqlfs_fuse_spin_trials_total %lu\n",
                way, c_sleep, c_spin, epochs);
    }
done:;
    size_t n = 0;
    dsq_buf_terminate(&b);
    char *s = (char *)dsq_buf_detach(&b, &n);
    *len = n;
    return s;
}

/* One database's counters, as JSON or Prometheus text (df->mu taken). */
void dsq_dbfile_status(struct dsq_dbfile *df, struct dsq_buf *b, int prom)
{
    struct dsq_db_stats s;
    dsq_db_get_stats(df->db, &s);
    dsq__df_lock(df);
    uint64_t v = df->snap ? dsq_snap_version(df->snap) : 0;
    uint64_t head = df->head > v ? df->head : v;
    struct dsq_dbstat d = df->st;
    int txn = df->txn != NULL;
    size_t dirty = df->txn ? dsq_txn_dirty_pages(df->txn) : 0;
    size_t locks = df->locks.n;
    pthread_mutex_unlock(&df->mu);
    uint64_t reqs = s.store_gets + s.store_puts + s.store_lists +
                    s.store_heads + s.store_dels;
    if (!prom) {
        dsq_buf_printf(
            b,
            "{\n  \"database\": \"%s\",\n  \"version\": %" PRIu64
            ",\n  \"head\": %" PRIu64 ",\n  \"lag\": %" PRIu64
            ",\n  \"commits\": %" PRIu64 ",\n  \"conflicts\": %" PRIu64
            ",\n  \"rebases\": %" PRIu64 ",\n  \"retries\": %" PRIu64
            ",\n  \"busy_refusals\": %" PRIu64
            ",\n  \"commit_failures\": %" PRIu64
            ",\n  \"wal_commits\": %" PRIu64
            ",\n  \"wal_injected_frames\": %" PRIu64
            ",\n  \"wal_resets\": %" PRIu64 ",\n  \"read_txns\": %" PRIu64
            ",\n  \"snapshot_moves\": %" PRIu64 ",\n  \"cache_hits\": %" PRIu64
            ",\n  \"cache_misses\": %" PRIu64 ",\n  \"cache_hit_ratio\": %.4f"
            ",\n  \"readahead_pages\": %" PRIu64
            ",\n  \"store_requests\": %" PRIu64 ",\n  \"store_chain\": %" PRIu64
            ",\n  \"hot_pages\": %" PRIu64 ",\n  \"store\": {\"get\": %" PRIu64
            ", \"put\": %" PRIu64 ", \"list\": %" PRIu64 ", \"head\": %" PRIu64
            ", \"delete\": %" PRIu64 ", \"bytes_read\": %" PRIu64
            ", \"bytes_written\": %" PRIu64
            "},\n  \"transaction_open\": %s,\n  \"dirty_pages\": %zu"
            ",\n  \"locks\": %zu",
            df->prefix, v, head, head - v, s.commits, s.conflicts, s.rebases,
            s.retries, d.busy_refusals, d.commit_failures,
            df->wal.commits_published, df->wal.injected_frames, df->wal.resets,
            d.read_txns, d.snapshot_moves, s.cache_hits, s.cache_misses,
            s.cache_hits + s.cache_misses
                ? (double)s.cache_hits / (double)(s.cache_hits + s.cache_misses)
                : 0.0,
            s.readahead_pages, reqs, s.store_chain, s.hot_pages, s.store_gets,
            s.store_puts, s.store_lists, s.store_heads, s.store_dels,
            s.bytes_read, s.bytes_written, txn ? "true" : "false", dirty,
            locks);
        dsq_conflicts_json(df, b);
        dsq_buf_printf(b, "\n}\n");
        return;
    }
#define PROM(name, val)                                                        \
    dsq_buf_printf(b, "dsqlfs_%s{db=\"%s\"} %" PRIu64 "\n", name, df->prefix,  \
                   (uint64_t)(val))
    PROM("version", v);
    PROM("head_version", head);
    PROM("lag_versions", head - v);
    PROM("commits_total", s.commits);
    PROM("conflicts_total", s.conflicts);
    PROM("rebases_total", s.rebases);
    PROM("retries_total", s.retries);
    PROM("busy_refusals_total", d.busy_refusals);
    PROM("commit_failures_total", d.commit_failures);
    PROM("read_transactions_total", d.read_txns);
    PROM("cache_hits_total", s.cache_hits);
    PROM("cache_misses_total", s.cache_misses);
    PROM("readahead_pages_total", s.readahead_pages);
    PROM("store_requests_total", reqs);
    PROM("store_chain", s.store_chain);
    PROM("hot_pages_total", s.hot_pages);
    PROM("store_bytes_read_total", s.bytes_read);
    PROM("store_bytes_written_total", s.bytes_written);
#undef PROM
    dsq_conflicts_prom(df, b);
}
