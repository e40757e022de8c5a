/*
 * check_engine_s3.c - the engine (db.h) on the S3 backend against the real
 * S3 server: versions of a real SQLite file read back identical, racing
 * committers in separate processes (disjoint pages all commit, overlapping
 * pages: one wins), a commit whose manifest PUT reply is lost (resolved
 * by reading, docs/commit.md C3) through the fault proxy, one-request
 * commits and freshness checks (one LIST; a re-created database is
 * reported replaced).
 *
 * Run by tests/integration/test_s3_engine.sh under tests/s3/with_rgw.sh.
 */
#include "config.h"
#include "db.h"
#include "enginetest.h"
#include "env.h"
#include "faultproxy.h"
#include "store.h"
#include "store_s3.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bucket;
static int s3_port;
static char *tmp;
static char url[512];
static const char *endpoint; /* NULL: the environment's */

static void setup(void)
{
    char hex[33];
    tmp = dsq_test_tmpdir("s3engine");
    dsq_random_hex32(hex);
    snprintf(url, sizeof(url), "s3://%s/eng-%.10s", bucket, hex);
    endpoint = NULL;
}

static void teardown(void)
{
    dsq_test_rmrf(tmp);
    free(tmp);
    dsq_env_reset();
}

static void s3_open(struct dsq_config *cfg, struct dsq_store **st,
                    struct dsq_db **db)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_config_load_env(cfg, NULL), DSQ_OK);
    if (endpoint) {
        free(cfg->endpoint);
        cfg->endpoint = strdup(endpoint);
    }
    dsq_rc rc = dsq_store_s3_open(url, cfg, st, &e);
    ck_assert_msg(rc == DSQ_OK, "open %s: %s", url, e.msg);
    rc = dsq_store_s3_selftest(*st, &e);
    ck_assert_msg(rc == DSQ_OK, "selftest: %s", e.msg);
    rc = dsq_db_open(*st, "db", cfg, db, &e);
    ck_assert_msg(rc == DSQ_OK, "db open: %s", e.msg);
}

START_TEST(test_versions_roundtrip)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_err e;
    enum { N = 40 };
    uint8_t *imgs[N + 1] = {0};
    size_t lens[N + 1] = {0};
    char ref[4096];
    snprintf(ref, sizeof(ref), "%s/ref.db", tmp);

    dsq_test_config(&cfg, 10);
    s3_open(&cfg, &st, &db);
    dsq_test_sql(ref, "PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;"
                      "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
                      "CREATE INDEX tv ON t(v);");
    srand(7);
    for (int v = 1; v <= N; v++) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM "
                 "c WHERE i<%d) INSERT INTO t(v) SELECT randomblob(%d) FROM "
                 "c; DELETE FROM t WHERE id %% %d = 0;",
                 1 + rand() % 40, 10 + rand() % 400, 7 + rand() % 5);
        dsq_test_sql(ref, sql);
        uint64_t got = 0;
        dsq_err_clear(&e);
        dsq_rc rc = dsq_test_commit_file(db, ref, &got, &e);
        ck_assert_msg(rc == DSQ_OK, "commit %d: %s", v, dsq_err_text(&e, rc));
        ck_assert_uint_eq(got, (uint64_t)v);
        imgs[v] = dsq_test_read_file(ref, &lens[v]);
    }
    dsq_db_close(db);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    for (int v = 1; v <= N; v++) {
        struct dsq_snap *s;
        ck_assert_int_eq(dsq_db_snapshot(db, (uint64_t)v, &s, NULL), DSQ_OK);
        size_t len;
        uint8_t *img = dsq_test_snap_image(s, &len);
        ck_assert_msg(img && len == lens[v] && !memcmp(img, imgs[v], len),
                      "version %d differs", v);
        free(img);
        dsq_snap_release(s);
        free(imgs[v]);
    }
    struct dsq_verify_report rep;
    dsq_rc rc = dsq_db_verify(db, &rep, NULL, NULL, NULL, &e);
    ck_assert_msg(rc == DSQ_OK, "verify: %s", dsq_err_text(&e, rc));
    ck_assert_uint_eq(rep.versions, N);
    ck_assert_uint_eq(rep.problems, 0);
    dsq_db_close(db);
    dsq_store_free(st);
    dsq_config_cleanup(&cfg);
}
END_TEST

/* ---- racing processes ---- */

static void make_base(uint32_t pages)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    struct dsq_txn *t;
    uint8_t page[4096];
    dsq_test_config(&cfg, 50);
    s3_open(&cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_set_page_size(t, 4096, NULL), DSQ_OK);
    for (uint32_t p = 1; p <= pages; p++) {
        memset(page, (int)p, sizeof(page));
        ck_assert_int_eq(dsq_txn_write_page(t, p, page, NULL), DSQ_OK);
    }
    ck_assert_int_eq(dsq_txn_commit(t, NULL, NULL), DSQ_OK);
    dsq_txn_free(t);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
    dsq_config_cleanup(&cfg);
}

static void open_s3(void *arg, struct dsq_config *cfg, struct dsq_store **st,
                    struct dsq_db **db)
{
    (void)arg;
    s3_open(cfg, st, db);
}

/* n committers from version 1, one page each */
static void race(const uint32_t *pg, const int *fill, int n, int *codes)
{
    struct dsq_test_racer r[8];
    for (int i = 0; i < n; i++)
        r[i] = (struct dsq_test_racer){{pg[i]}, 1, fill[i]};
    dsq_test_race(n, open_s3, NULL, 1, r, DSQ_ISOLATION_SNAPSHOT, codes);
}

static int page_byte(uint64_t v, uint32_t pgno)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    uint8_t page[4096];
    dsq_test_config(&cfg, 50);
    s3_open(&cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, v, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_snap_read_page(s, pgno, page, NULL), DSQ_OK);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
    dsq_config_cleanup(&cfg);
    return page[0];
}

static uint64_t latest(void)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    uint64_t v = 0;
    dsq_test_config(&cfg, 50);
    s3_open(&cfg, &st, &db);
    ck_assert_int_eq(dsq_db_latest(db, &v, NULL), DSQ_OK);
    dsq_db_close(db);
    dsq_store_free(st);
    dsq_config_cleanup(&cfg);
    return v;
}

START_TEST(test_disjoint_pages_all_commit)
{
    make_base(8);
    uint32_t pg[4] = {3, 4, 5, 6};
    int fill[4] = {0xA3, 0xA4, 0xA5, 0xA6};
    int codes[4];
    race(pg, fill, 4, codes);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(codes[i], DSQ_TEST_COMMITTED);
    ck_assert_uint_eq(latest(), 5);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(page_byte(5, pg[i]), fill[i]);
    ck_assert_int_eq(page_byte(5, 2), 2);
}
END_TEST

START_TEST(test_overlapping_pages_one_wins)
{
    make_base(8);
    uint32_t pg[3] = {4, 4, 4};
    int fill[3] = {0xB1, 0xB2, 0xB3};
    int codes[3];
    race(pg, fill, 3, codes);
    int won = -1, lost = 0;
    for (int i = 0; i < 3; i++) {
        if (codes[i] == DSQ_TEST_COMMITTED) {
            ck_assert_int_eq(won, -1);
            won = i;
        } else {
            ck_assert_int_eq(codes[i], DSQ_TEST_CONFLICT);
            lost++;
        }
    }
    ck_assert_int_ge(won, 0);
    ck_assert_int_eq(lost, 2);
    ck_assert_uint_eq(latest(), 2);
    ck_assert_int_eq(page_byte(2, 4), fill[won]);
}
END_TEST

/* ---- faults under the engine ---- */

static void instant(uint64_t ms)
{
    (void)ms;
}

START_TEST(test_lost_manifest_reply)
{
    struct dsq_faultproxy *px = dsq_faultproxy_start("127.0.0.1", s3_port);
    char ep[64];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", dsq_faultproxy_port(px));
    endpoint = ep;
    dsq_env.sleep_ms = instant;
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_err e;
    char ref[4096];
    snprintf(ref, sizeof(ref), "%s/ref.db", tmp);
    dsq_test_config(&cfg, 50);
    s3_open(&cfg, &st, &db);
    dsq_test_sql(ref, "PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;"
                      "CREATE TABLE t(x);");
    for (int v = 1; v <= 12; v++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "INSERT INTO t VALUES(%d);", v);
        dsq_test_sql(ref, sql);
        /* every PUT of this commit in turn: segment(s), chunks, manifest */
        unsigned which = (unsigned)(v % 4);
        dsq_faultproxy_set(px,
                           which == 3   ? DSQ_FAULT_STATUS
                           : which == 2 ? DSQ_FAULT_RESET
                                        : DSQ_FAULT_DROP_REPLY,
                           503, 1 + (unsigned)(v % 3), "PUT");
        uint64_t got = 0;
        dsq_err_clear(&e);
        dsq_rc rc = dsq_test_commit_file(db, ref, &got, &e);
        ck_assert_msg(rc == DSQ_OK, "commit %d: %s", v, dsq_err_text(&e, rc));
        ck_assert_uint_eq(got, (uint64_t)v);
    }
    dsq_faultproxy_set(px, DSQ_FAULT_PASS, 0, 0, NULL);
    ck_assert_uint_gt(dsq_faultproxy_faults(px), 12);
    struct dsq_verify_report rep;
    dsq_rc rc = dsq_db_verify(db, &rep, NULL, NULL, NULL, &e);
    ck_assert_msg(rc == DSQ_OK, "verify: %s", dsq_err_text(&e, rc));
    ck_assert_uint_eq(rep.versions, 12);
    ck_assert_uint_eq(rep.problems, 0);
    struct dsq_snap *s;
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    size_t len, rlen;
    uint8_t *img = dsq_test_snap_image(s, &len);
    uint8_t *want = dsq_test_read_file(ref, &rlen);
    ck_assert(img && len == rlen && !memcmp(img, want, len));
    free(img);
    free(want);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
    dsq_config_cleanup(&cfg);
    dsq_faultproxy_stop(px);
}
END_TEST

/* ---- one-request commits and freshness checks on S3 ---- */

static uint64_t requests(struct dsq_db *db)
{
    struct dsq_db_stats s;
    dsq_db_get_stats(db, &s);
    return s.store_gets + s.store_puts + s.store_lists + s.store_heads +
           s.store_dels;
}

static uint64_t commit_small(struct dsq_db *db, int fill)
{
    struct dsq_snap *s;
    struct dsq_txn *t;
    struct dsq_commit_info ci;
    struct dsq_err e;
    uint8_t page[4096];
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    if (dsq_snap_page_count(s) == 0)
        ck_assert_int_eq(dsq_txn_set_page_size(t, 4096, NULL), DSQ_OK);
    memset(page, fill, sizeof(page));
    for (uint32_t p = 1; p <= 3; p++)
        ck_assert_int_eq(dsq_txn_write_page(t, p, page, NULL), DSQ_OK);
    dsq_rc rc = dsq_txn_commit(t, &ci, &e);
    ck_assert_msg(rc == DSQ_OK, "commit: %s", dsq_err_text(&e, rc));
    dsq_txn_free(t);
    dsq_snap_release(s);
    return ci.version;
}

static int del_fn(const struct dsq_list_entry *ent, void *arg)
{
    ck_assert_int_eq(dsq_store_del(arg, ent->key, NULL), DSQ_OK);
    return 0;
}

START_TEST(test_one_request_commits_and_freshness)
{
    struct dsq_config cfg;
    struct dsq_store *sa, *sb;
    struct dsq_db *a, *b;
    dsq_test_config(&cfg, 50);
    s3_open(&cfg, &sa, &a);
    s3_open(&cfg, &sb, &b);
    ck_assert_uint_eq(commit_small(a, 1), 1);
    /* a commit on a known snapshot: the create-only PUT, nothing else */
    struct dsq_snap *s;
    ck_assert_int_eq(dsq_db_snapshot(a, 1, &s, NULL), DSQ_OK);
    struct dsq_txn *t;
    uint8_t page[4096];
    memset(page, 2, sizeof(page));
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_write_page(t, 2, page, NULL), DSQ_OK);
    uint64_t r0 = requests(a);
    struct dsq_commit_info ci;
    ck_assert_int_eq(dsq_txn_commit(t, &ci, NULL), DSQ_OK);
    dsq_txn_free(t);
    dsq_snap_release(s);
    ck_assert_uint_eq(ci.version, 2);
    ck_assert_uint_eq(requests(a) - r0, 1);
    /* our own PUT's etag is what the listing shows: nothing moved, one
       LIST */
    struct dsq_fresh f;
    ck_assert_int_eq(dsq_db_snapshot(a, 2, &s, NULL), DSQ_OK);
    r0 = requests(a);
    ck_assert_int_eq(dsq_db_fresh(a, s, 0, &f, NULL), DSQ_OK);
    ck_assert_uint_eq(f.version, 2);
    ck_assert_int_eq(f.replaced, 0);
    ck_assert_uint_eq(requests(a) - r0, 1);
    /* another host's view: one LIST when nothing moved, and it sees a's
       next commit in one LIST too */
    struct dsq_snap *sbs;
    ck_assert_int_eq(dsq_db_snapshot(b, DSQ_VERSION_LATEST, &sbs, NULL),
                     DSQ_OK);
    ck_assert_uint_eq(dsq_snap_version(sbs), 2);
    for (int i = 0; i < 2; i++) {
        r0 = requests(b);
        ck_assert_int_eq(dsq_db_fresh(b, sbs, 0, &f, NULL), DSQ_OK);
        ck_assert_uint_eq(f.version, 2 + (uint64_t)i);
        ck_assert_int_eq(f.replaced, 0);
        ck_assert_uint_eq(requests(b) - r0, 1);
        if (i == 0)
            ck_assert_uint_eq(commit_small(a, 3), 3);
    }
    dsq_snap_release(sbs);
    /* deleted and created again with as many versions: replaced */
    ck_assert_int_eq(dsq_store_list_all(sa, "db/", NULL, del_fn, sa, NULL),
                     DSQ_OK);
    dsq_db_close(b);
    ck_assert_int_eq(dsq_db_open(sb, "db", &cfg, &b, NULL), DSQ_OK);
    for (int v = 1; v <= 3; v++)
        commit_small(b, 50 + v);
    ck_assert_int_eq(dsq_db_fresh(a, s, 0, &f, NULL), DSQ_OK);
    ck_assert_int_eq(f.replaced, 1);
    ck_assert_uint_eq(f.version, 3);
    dsq_snap_release(s);
    ck_assert_int_eq(dsq_db_snapshot(a, 3, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_snap_read_page(s, 1, page, NULL), DSQ_OK);
    ck_assert_int_eq(page[0], 53);
    dsq_snap_release(s);
    dsq_db_close(a);
    dsq_db_close(b);
    dsq_store_free(sa);
    dsq_store_free(sb);
    dsq_config_cleanup(&cfg);
}
END_TEST

int main(void)
{
    bucket = getenv("DSQ_S3_BUCKET");
    const char *port = getenv("DSQ_S3_PORT");
    if (!bucket || !port) {
        fprintf(stderr,
                "check_engine_s3: run me through tests/s3/with_rgw.sh\n");
        return 2;
    }
    s3_port = atoi(port);
    Suite *su = suite_create("engine_s3");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_versions_roundtrip);
    tcase_add_test(tc, test_disjoint_pages_all_commit);
    tcase_add_test(tc, test_overlapping_pages_one_wins);
    tcase_add_test(tc, test_lost_manifest_reply);
    tcase_add_test(tc, test_one_request_commits_and_freshness);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
