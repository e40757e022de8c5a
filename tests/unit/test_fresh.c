/*
 * test_fresh.c - freshness checks (dsq_db_fresh, docs/commit.md
 * "Freshness") on the local store, with the store calls counted by the
 * fault-injecting wrapper, in both of its strategies: the local one (stats
 * of N+1 and N) and the remote one (one LIST), forced by clearing the
 * wrapper's DSQ_STORE_LOCAL flag.  Checked: what one check costs when
 * nothing moved, that a commit of this handle answers read transactions
 * that started before its PUT was sent and no later one, that concurrent
 * read transactions share a check only when they started before it was
 * sent, that gc removing the version after the known one while the handle
 * was idle does not hide newer versions, and that a database deleted and
 * created again is reported replaced, is not served from the caches, and
 * refuses commits on the old snapshot.
 */
#include "db.h"
#include "enginetest.h"
#include "env.h"
#include "fault_store.h"
#include "store.h"
#include "testutil.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *tmp;

static void setup(void)
{
    tmp = dsq_test_tmpdir("fresh");
}

static void teardown(void)
{
    dsq_env_reset();
    dsq_test_rmrf(tmp);
    free(tmp);
}

/* A counted store over a file store in tmp/sub; local or remote mode. */
struct fx {
    struct dsq_store *inner, *fs;
    struct dsq_db *db;
    struct dsq_config cfg;
};

static void fx_open(struct fx *x, const char *sub, int remote)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", tmp, sub);
    dsq_test_config(&x->cfg, 50);
    ck_assert_int_eq(dsq_store_file_open(dir, &x->inner, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_fault_store_new(x->inner, 0, &x->fs), DSQ_OK);
    if (remote)
        x->fs->flags &= ~(unsigned)DSQ_STORE_LOCAL;
    ck_assert_int_eq(dsq_db_open(x->fs, "db", &x->cfg, &x->db, NULL), DSQ_OK);
}

static void fx_close(struct fx *x)
{
    dsq_db_close(x->db);
    dsq_store_free(x->fs);
    dsq_store_free(x->inner);
}

/* Commit pages first..first+n-1 filled with fill on the newest version. */
static uint64_t commit(struct dsq_db *db, uint32_t first, uint32_t n, int fill)
{
    struct dsq_snap *s;
    struct dsq_txn *t;
    struct dsq_commit_info ci;
    struct dsq_err e;
    uint8_t page[1024];
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    if (dsq_snap_page_count(s) == 0)
        ck_assert_int_eq(dsq_txn_set_page_size(t, 1024, NULL), DSQ_OK);
    for (uint32_t p = first; p < first + n; p++) {
        memset(page, fill, sizeof(page));
        ck_assert_int_eq(dsq_txn_write_page(t, p, page, NULL), DSQ_OK);
    }
    dsq_rc rc = dsq_txn_commit(t, &ci, &e);
    ck_assert_msg(rc == DSQ_OK, "commit: %s", dsq_err_text(&e, rc));
    dsq_txn_free(t);
    dsq_snap_release(s);
    return ci.version;
}

/* Another handle (another host) on the same directory commits. */
static unsigned elsewhere_interval = 50;
static uint64_t commit_elsewhere(const char *sub, uint32_t first, uint32_t n,
                                 int fill)
{
    char dir[4096];
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    snprintf(dir, sizeof(dir), "%s/%s", tmp, sub);
    dsq_test_config(&cfg, elsewhere_interval);
    dsq_test_open(dir, &cfg, &st, &db);
    uint64_t v = commit(db, first, n, fill);
    dsq_db_close(db);
    dsq_store_free(st);
    return v;
}

static struct dsq_fresh fresh(struct fx *x, const struct dsq_snap *s,
                              uint64_t started)
{
    struct dsq_fresh f;
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_db_fresh(x->db, s, started, &f, &e);
    ck_assert_msg(rc == DSQ_OK, "fresh: %s", dsq_err_text(&e, rc));
    return f;
}

static uint64_t calls(struct fx *x)
{
    return dsq_fault_store_calls(x->fs);
}

/* What a check costs when nothing moved, and that it sees new versions. */
static void costs(int remote)
{
    struct fx x;
    const char *sub = remote ? "r" : "l";
    fx_open(&x, sub, remote);
    struct dsq_fresh f = fresh(&x, NULL, 0);
    ck_assert_uint_eq(f.version, 0);
    commit_elsewhere(sub, 1, 3, 1);
    commit_elsewhere(sub, 2, 1, 2);
    f = fresh(&x, NULL, 0);
    ck_assert_uint_eq(f.version, 2);
    ck_assert_int_eq(f.replaced, 0);
    struct dsq_snap *s;
    ck_assert_int_eq(dsq_db_snapshot(x.db, 2, &s, NULL), DSQ_OK);
    for (int i = 0; i < 3; i++) {
        dsq_fault_store_reset_counts(x.fs);
        f = fresh(&x, s, 0);
        ck_assert_uint_eq(f.version, 2);
        ck_assert_int_eq(f.replaced, 0);
        ck_assert_int_eq(f.shared, 0);
        /* one LIST, or two stats (N+1 missing, N unchanged) */
        if (remote) {
            ck_assert_uint_eq(calls(&x), 1);
            ck_assert_uint_eq(dsq_fault_store_op_calls(x.fs, DSQ_FOP_LIST), 1);
        } else {
            ck_assert_uint_eq(calls(&x), 2);
            ck_assert_uint_eq(dsq_fault_store_op_calls(x.fs, DSQ_FOP_HEAD), 2);
        }
    }
    /* something moved: seen, and on a remote store still one request */
    commit_elsewhere(sub, 3, 1, 3);
    commit_elsewhere(sub, 4, 1, 4);
    uint64_t before = calls(&x);
    f = fresh(&x, s, 0);
    ck_assert_uint_eq(f.version, 4);
    ck_assert_int_eq(f.replaced, 0);
    if (remote)
        ck_assert_uint_eq(calls(&x) - before, 1);
    dsq_snap_release(s);
    fx_close(&x);
}

START_TEST(test_cost_when_nothing_moved_local)
{
    costs(0);
}
END_TEST

START_TEST(test_cost_when_nothing_moved_remote)
{
    costs(1);
}
END_TEST

/*
 * A commit of this handle is a freshness check sent when its PUT was:
 * a read transaction that started before it needs no request, one that
 * started after it does.  The commit itself is one request.
 */
START_TEST(test_own_commit_answers_earlier_readers)
{
    struct fx x;
    fx_open(&x, "own", 1);
    commit(x.db, 1, 4, 1);
    struct dsq_snap *s;
    ck_assert_int_eq(dsq_db_snapshot(x.db, DSQ_VERSION_LATEST, &s, NULL),
                     DSQ_OK);
    struct dsq_fresh f = fresh(&x, s, 0); /* knows version 1 now */
    ck_assert_uint_eq(f.version, 1);
    uint64_t before_txn = dsq_mono_ns();
    struct dsq_txn *t;
    uint8_t page[1024];
    memset(page, 9, sizeof(page));
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_write_page(t, 2, page, NULL), DSQ_OK);
    dsq_fault_store_reset_counts(x.fs);
    struct dsq_commit_info ci;
    ck_assert_int_eq(dsq_txn_commit(t, &ci, NULL), DSQ_OK);
    dsq_txn_free(t);
    ck_assert_uint_eq(ci.version, 2);
    /* the create-only PUT alone (root.json waits for the 256th version) */
    ck_assert_uint_eq(calls(&x), 1);
    ck_assert_uint_eq(dsq_fault_store_op_calls(x.fs, DSQ_FOP_PUT), 1);
    uint64_t c0;
    uint64_t after_commit = dsq_mono_ns();
    /* started before the PUT was sent: answered, no request */
    c0 = calls(&x);
    f = fresh(&x, s, before_txn);
    ck_assert_uint_eq(f.version, 2);
    ck_assert_int_eq(f.shared, 1);
    ck_assert_uint_eq(calls(&x), c0);
    /* started after: a request of its own */
    f = fresh(&x, s, after_commit);
    ck_assert_uint_eq(f.version, 2);
    ck_assert_int_eq(f.shared, 0);
    ck_assert_uint_eq(calls(&x) - c0, 1);
    dsq_snap_release(s);
    fx_close(&x);
}
END_TEST

/* Concurrent read transactions that all started before any check. */
struct reader {
    struct fx *x;
    uint64_t started;
    struct dsq_fresh f;
    dsq_rc rc;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    r->rc = dsq_db_fresh(r->x->db, NULL, r->started, &r->f, NULL);
    return NULL;
}

START_TEST(test_readers_share_a_check_sent_after_they_started)
{
    struct fx x;
    fx_open(&x, "share", 1);
    commit_elsewhere("share", 1, 2, 1);
    struct dsq_fresh f = fresh(&x, NULL, 0);
    ck_assert_uint_eq(f.version, 1);
    commit_elsewhere("share", 1, 1, 2);
    struct dsq_db_stats st0, st1;
    dsq_db_get_stats(x.db, &st0);
    uint64_t c0 = calls(&x);
    /* 16 read transactions start at T; then they check at once: the first
       check sent (after T) answers every one of them */
    enum { N = 16 };
    struct reader r[N];
    pthread_t th[N];
    uint64_t t = dsq_mono_ns();
    for (int i = 0; i < N; i++) {
        r[i] = (struct reader){.x = &x, .started = t};
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(r[i].rc, DSQ_OK);
        ck_assert_uint_eq(r[i].f.version, 2);
    }
    dsq_db_get_stats(x.db, &st1);
    ck_assert_uint_eq(st1.fresh_checks - st0.fresh_checks, 1);
    ck_assert_uint_eq(st1.fresh_shared - st0.fresh_shared, N - 1);
    ck_assert_uint_eq(calls(&x) - c0, 1);
    /* one that starts after that check was sent may not use it */
    commit_elsewhere("share", 1, 1, 3);
    f = fresh(&x, NULL, 0);
    ck_assert_uint_eq(f.version, 3);
    ck_assert_int_eq(f.shared, 0);
    fx_close(&x);
}
END_TEST

/* A fake monotonic clock: each reading advances it by 1 us. */
static uint64_t fake_ns = 1000000000ull;
static uint64_t fake_mono(void)
{
    return fake_ns += 1000;
}

/* The early-conflict form: an answer a few round trips young is enough. */
START_TEST(test_recent_answer_is_enough_at_a_write_lock)
{
    struct fx x;
    fx_open(&x, "recent", 1);
    commit_elsewhere("recent", 1, 2, 1);
    dsq_env.mono_ns = fake_mono;
    struct dsq_fresh f = fresh(&x, NULL, 0);
    ck_assert_uint_eq(f.version, 1);
    struct dsq_db_stats st;
    dsq_db_get_stats(x.db, &st);
    uint64_t c0 = calls(&x);
    /* right after: shared, no request */
    ck_assert_int_eq(dsq_db_fresh_recent(x.db, NULL, &f, NULL), DSQ_OK);
    ck_assert_int_eq(f.shared, 1);
    ck_assert_uint_eq(calls(&x), c0);
    /* a second later (far more than 8 round trips of a few us): asked */
    fake_ns += 1000000000ull;
    commit_elsewhere("recent", 1, 1, 2);
    ck_assert_int_eq(dsq_db_fresh_recent(x.db, NULL, &f, NULL), DSQ_OK);
    ck_assert_int_eq(f.shared, 0);
    ck_assert_uint_eq(f.version, 2);
    ck_assert_uint_eq(calls(&x) - c0, 1);
    fx_close(&x);
}
END_TEST

/* store_timeout: a store that keeps failing ends the call, on a clock
   that only the backoff sleeps move (no real time involved) */
static void fake_sleep(uint64_t ms)
{
    fake_ns += ms * 1000000ull;
}

START_TEST(test_store_timeout_ends_retries)
{
    struct fx x;
    fx_open(&x, "timeout", 1);
    commit(x.db, 1, 2, 1);
    dsq_db_close(x.db);
    x.cfg.max_retries = 1000;
    x.cfg.retry_base_s = 1.0;
    x.cfg.retry_max_s = 2.0;
    x.cfg.store_timeout_s = 20;
    ck_assert_int_eq(dsq_db_open(x.fs, "db", &x.cfg, &x.db, NULL), DSQ_OK);
    dsq_env.mono_ns = fake_mono;
    dsq_env.sleep_ms = fake_sleep;
    dsq_fault_store_reset_counts(x.fs);
    dsq_fault_store_fail_from(x.fs, 1, DSQ_FAULT_ERROR);
    uint64_t t0 = fake_ns;
    struct dsq_snap *s = NULL;
    struct dsq_err e;
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_db_snapshot(x.db, 1, &s, &e), DSQ_ETRANSIENT);
    ck_assert_ptr_nonnull(strstr(e.msg, "store_timeout"));
    /* stopped at 20 s of retrying (the sleeps never pass the deadline),
       after far fewer than max_retries attempts */
    ck_assert_uint_le(fake_ns - t0, 21000000000ull);
    ck_assert_uint_ge(fake_ns - t0, 19000000000ull);
    ck_assert_uint_lt(dsq_fault_store_calls(x.fs), 60);
    ck_assert_uint_gt(dsq_fault_store_calls(x.fs), 5);
    dsq_fault_store_clear(x.fs);
    fx_close(&x);
}
END_TEST

/* ---- gc while idle ---- */

static uint64_t clock_offset_ms;
static uint64_t shifted_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
           clock_offset_ms;
}

static void gc_while_idle(int remote)
{
    struct fx x;
    const char *sub = remote ? "gcr" : "gcl";
    fx_open(&x, sub, remote);
    commit(x.db, 1, 3, 1);
    commit(x.db, 1, 1, 2);
    struct dsq_snap *s;
    ck_assert_int_eq(dsq_db_snapshot(x.db, 2, &s, NULL), DSQ_OK);
    ck_assert_uint_eq(fresh(&x, s, 0).version, 2);
    /* others commit 3..20 (checkpoints every 4: later versions read
       nothing from old manifests); two hours later gc keeps the newest 5:
       3 is gone, and so is 2, the version this handle knows */
    elsewhere_interval = 4;
    for (int v = 3; v <= 20; v++)
        commit_elsewhere(sub, 2, 1, v);
    elsewhere_interval = 50;
    clock_offset_ms = 2 * 3600 * 1000;
    dsq_env.now_ms = shifted_now;
    {
        char dir[4096];
        struct dsq_config cfg;
        struct dsq_store *st;
        struct dsq_db *gdb;
        struct dsq_gc_report rep;
        snprintf(dir, sizeof(dir), "%s/%s", tmp, sub);
        dsq_test_config(&cfg, 50);
        dsq_test_open(dir, &cfg, &st, &gdb);
        ck_assert_int_eq(dsq_db_gc(gdb, 5, 3600 * 1000, 0, &rep, NULL), DSQ_OK);
        ck_assert_uint_ge(rep.floor, 4);
        ck_assert_uint_le(rep.floor, 16);
        dsq_db_close(gdb);
        dsq_store_free(st);
    }
    struct dsq_fresh f = fresh(&x, s, 0);
    ck_assert_uint_eq(f.version, 20);
    ck_assert_int_eq(f.replaced, 0);
    dsq_snap_release(s);
    fx_close(&x);
}

START_TEST(test_gc_while_idle_local)
{
    gc_while_idle(0);
}
END_TEST

START_TEST(test_gc_while_idle_remote)
{
    gc_while_idle(1);
}
END_TEST

/* ---- deleted and created again ---- */

static void replaced(int remote, int new_versions)
{
    struct fx x;
    char sub[32], cmd[8300];
    snprintf(sub, sizeof(sub), "rep%d%d", remote, new_versions);
    fx_open(&x, sub, remote);
    for (int v = 1; v <= 3; v++)
        commit(x.db, 1, 2, 10 + v);
    struct dsq_snap *s;
    uint8_t page[1024];
    ck_assert_int_eq(dsq_db_snapshot(x.db, 3, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_snap_read_page(s, 1, page, NULL), DSQ_OK);
    ck_assert_int_eq(page[0], 13);
    char inc[33];
    snprintf(inc, sizeof(inc), "%s", dsq_snap_incarnation(s));
    ck_assert_uint_eq(strlen(inc), 32);
    ck_assert_uint_eq(fresh(&x, s, 0).version, 3);
    /* a transaction on the old database, committed after the change */
    struct dsq_txn *t;
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    memset(page, 0x66, sizeof(page));
    ck_assert_int_eq(dsq_txn_write_page(t, 2, page, NULL), DSQ_OK);
    /* deleted; created again elsewhere with new_versions versions */
    snprintf(cmd, sizeof(cmd), "rm -rf %s/%s/db", tmp, sub);
    ck_assert_int_eq(system(cmd), 0);
    for (int v = 1; v <= new_versions; v++)
        commit_elsewhere(sub, 1, 2, 100 + v);
    struct dsq_fresh f = fresh(&x, s, 0);
    ck_assert_int_eq(f.replaced, 1);
    ck_assert_uint_eq(f.version, (uint64_t)new_versions);
    /* a later check against the same old snapshot says so again */
    f = fresh(&x, s, 0);
    ck_assert_int_eq(f.replaced, 1);
    /* the old snapshot's transaction is refused, nothing is written */
    struct dsq_err e;
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_txn_commit(t, NULL, &e), DSQ_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(e.msg, "created again"));
    dsq_txn_free(t);
    dsq_snap_release(s);
    if (new_versions > 0) {
        /* the new database's version 3 (or its newest), not the cached
           old one */
        uint64_t v = new_versions < 3 ? (uint64_t)new_versions : 3;
        ck_assert_int_eq(dsq_db_snapshot(x.db, v, &s, NULL), DSQ_OK);
        ck_assert_str_ne(dsq_snap_incarnation(s), inc);
        ck_assert_int_eq(dsq_snap_read_page(s, 1, page, NULL), DSQ_OK);
        ck_assert_int_eq(page[0], 100 + (int)v);
        f = fresh(&x, s, 0);
        ck_assert_int_eq(f.replaced, 0);
        ck_assert_uint_eq(f.version, (uint64_t)new_versions);
        dsq_snap_release(s);
        /* and commits go on top of the new one */
        ck_assert_uint_eq(commit(x.db, 3, 1, 7), (uint64_t)new_versions + 1);
    }
    fx_close(&x);
}

START_TEST(test_replaced_same_count_local)
{
    replaced(0, 3);
}
END_TEST

START_TEST(test_replaced_same_count_remote)
{
    replaced(1, 3);
}
END_TEST

START_TEST(test_replaced_fewer_and_more)
{
    replaced(0, 1);
    replaced(1, 1);
    replaced(0, 5);
    replaced(1, 5);
    replaced(0, 0);
    replaced(1, 0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("fresh");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cost_when_nothing_moved_local);
    tcase_add_test(tc, test_cost_when_nothing_moved_remote);
    tcase_add_test(tc, test_own_commit_answers_earlier_readers);
    tcase_add_test(tc, test_readers_share_a_check_sent_after_they_started);
    tcase_add_test(tc, test_recent_answer_is_enough_at_a_write_lock);
    tcase_add_test(tc, test_store_timeout_ends_retries);
    tcase_add_test(tc, test_gc_while_idle_local);
    tcase_add_test(tc, test_gc_while_idle_remote);
    tcase_add_test(tc, test_replaced_same_count_local);
    tcase_add_test(tc, test_replaced_same_count_remote);
    tcase_add_test(tc, test_replaced_fewer_and_more);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
