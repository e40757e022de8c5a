/*
 * test_engine.c - the engine on the local store: versions, checkpoints,
 * concurrent committers in separate processes, the page-1 and freed-page
 * rules, isolation, root.json hints, orphans and corruption.
 * Invariants cited are those of docs/commit.md.
 */
#include "db.h"
#include "enginetest.h"
#include "env.h"
#include "manifest.h"
#include "store.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *tmp;

static void setup(void)
{
    tmp = dsq_test_tmpdir("engine");
}

static void teardown(void)
{
    dsq_test_rmrf(tmp);
    free(tmp);
}

static char *path_in(const char *name)
{
    static char p[8][4096];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof(p[k]), "%s/%s", tmp, name);
    return p[k];
}

/* ---- 200 commits with checkpoints: every version exports identically */

struct vcheck {
    int checkpoints;
};

static int count_ckpt(const struct dsq_version_info *v, void *arg)
{
    struct vcheck *c = arg;
    if (v->ckpt_version == v->version)
        c->checkpoints++;
    return 0;
}

static size_t manifest_size(struct dsq_store *st, uint64_t v)
{
    char rel[64], key[256];
    struct dsq_objinfo info;
    dsq_manifest_key(v, rel);
    snprintf(key, sizeof(key), "db/%s", rel);
    ck_assert_int_eq(dsq_store_head(st, key, &info, NULL), DSQ_OK);
    return (size_t)info.size;
}

START_TEST(test_every_version_exports_identical)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_err e;
    enum { N = 200 };
    uint8_t **imgs = calloc(N + 1, sizeof(*imgs));
    size_t *lens = calloc(N + 1, sizeof(*lens));
    const char *ref = path_in("ref.db");

    dsq_test_config(&cfg, 50);
    cfg.overlay_max_pages = 64; /* some checkpoints forced by size too */
    dsq_test_open(path_in("store"), &cfg, &st, &db);
    dsq_test_sql(ref, "PRAGMA page_size=1024; PRAGMA journal_mode=DELETE;"
                      "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
                      "CREATE INDEX tv ON t(v);");
    srand(42);
    for (int v = 1; v <= N; v++) {
        char sql[512];
        int r = rand() % 10;
        if (v == 1 || r < 5)
            snprintf(sql, sizeof(sql),
                     "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT "
                     "i+1 FROM c WHERE i<%d) INSERT INTO t(v) SELECT "
                     "randomblob(%d) FROM c;",
                     1 + rand() % 30, 10 + rand() % 300);
        else if (r < 8)
            snprintf(sql, sizeof(sql),
                     "UPDATE t SET v=randomblob(%d) WHERE id %% %d = 0;",
                     10 + rand() % 200, 2 + rand() % 20);
        else if (r < 9)
            snprintf(sql, sizeof(sql), "DELETE FROM t WHERE id %% %d = 1;",
                     2 + rand() % 5);
        else
            snprintf(sql, sizeof(sql), "VACUUM;");
        /* always change something, so every round is a version */
        dsq_test_sql(ref, sql);
        dsq_test_sql(ref, "INSERT INTO t(v) VALUES(randomblob(8));");
        uint64_t got = 0;
        dsq_err_clear(&e);
        dsq_rc rc = dsq_test_commit_file(db, ref, &got, &e);
        ck_assert_msg(rc == DSQ_OK, "commit %d: %s", v, dsq_err_text(&e, rc));
        ck_assert_uint_eq(got, (uint64_t)v);
        imgs[v] = dsq_test_read_file(ref, &lens[v]);
    }
    /* a fresh handle (cold caches) reads every version back */
    dsq_db_close(db);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    for (int v = 1; v <= N; v++) {
        struct dsq_snap *s;
        ck_assert_int_eq(dsq_db_snapshot(db, (uint64_t)v, &s, NULL), DSQ_OK);
        size_t len;
        uint8_t *img = dsq_test_snap_image(s, &len);
        ck_assert_ptr_nonnull(img);
        ck_assert_msg(len == lens[v] && memcmp(img, imgs[v], len) == 0,
                      "version %d differs from the reference", v);
        free(img);
        dsq_snap_release(s);
    }
    struct vcheck vc = {0};
    ck_assert_int_eq(dsq_db_versions(db, count_ckpt, &vc, NULL), DSQ_OK);
    ck_assert_int_ge(vc.checkpoints, 4);
    /* manifest size does not grow with the number of versions */
    size_t early = 0, late = 0;
    for (int v = 1; v <= 60; v++)
        if (manifest_size(st, (uint64_t)v) > early)
            early = manifest_size(st, (uint64_t)v);
    for (int v = 141; v <= N; v++)
        if (manifest_size(st, (uint64_t)v) > late)
            late = manifest_size(st, (uint64_t)v);
    ck_assert_msg(late < early * 2 + 8192, "manifests grew: %zu -> %zu", early,
                  late);
    struct dsq_verify_report rep;
    dsq_rc rc = dsq_db_verify(db, &rep, NULL, NULL, NULL, &e);
    ck_assert_msg(rc == DSQ_OK, "verify: %s", dsq_err_text(&e, rc));
    ck_assert_uint_eq(rep.versions, N);
    ck_assert_uint_eq(rep.problems, 0);
    for (int v = 0; v <= N; v++)
        free(imgs[v]);
    free(imgs);
    free(lens);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

/* ---- concurrency between processes ---- */

/* Raw (non-SQLite) pages filled with a byte. */
static void fill(uint8_t *p, size_t n, int c)
{
    memset(p, c, n);
}

static void make_base(const char *dir, uint32_t pages)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    struct dsq_txn *t;
    uint8_t page[4096];
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_set_page_size(t, 4096, NULL), DSQ_OK);
    for (uint32_t p = 1; p <= pages; p++) {
        fill(page, sizeof(page), (int)p);
        ck_assert_int_eq(dsq_txn_write_page(t, p, page, NULL), DSQ_OK);
    }
    ck_assert_int_eq(dsq_txn_commit(t, NULL, NULL), DSQ_OK);
    dsq_txn_free(t);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
}

/* Racers open a file store in the directory given as arg. */
static void open_dir(void *arg, struct dsq_config *cfg, struct dsq_store **st,
                     struct dsq_db **db)
{
    dsq_test_open(arg, cfg, st, db);
}

static void race(const char *dir, uint64_t base_v,
                 const struct dsq_test_racer *r, int n, int *codes,
                 enum dsq_isolation iso)
{
    dsq_test_race(n, open_dir, (void *)dir, base_v, r, iso, codes);
}

static int page_byte(const char *dir, uint64_t v, uint32_t pgno)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    uint8_t page[4096];
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, v, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_snap_read_page(s, pgno, page, NULL), DSQ_OK);
    for (size_t i = 1; i < sizeof(page); i++)
        ck_assert_int_eq(page[i], page[0]);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
    return page[0];
}

static uint64_t latest(const char *dir)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    uint64_t v = 0;
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_latest(db, &v, NULL), DSQ_OK);
    dsq_db_close(db);
    dsq_store_free(st);
    return v;
}

START_TEST(test_disjoint_pages_both_commit)
{
    const char *dir = path_in("store");
    make_base(dir, 16);
    struct dsq_test_racer r[4] = {{{3, 4}, 2, 0xa1},
                                  {{7}, 1, 0xb2},
                                  {{10, 11, 12}, 3, 0xc3},
                                  {{20}, 1, 0xd4}}; /* 20 grows the file */
    int codes[4];
    race(dir, 1, r, 4, codes, DSQ_ISOLATION_SNAPSHOT);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(codes[i], DSQ_TEST_COMMITTED);
    ck_assert_uint_eq(latest(dir), 5);
    ck_assert_int_eq(page_byte(dir, 5, 3), 0xa1);
    ck_assert_int_eq(page_byte(dir, 5, 4), 0xa1);
    ck_assert_int_eq(page_byte(dir, 5, 7), 0xb2);
    ck_assert_int_eq(page_byte(dir, 5, 12), 0xc3);
    ck_assert_int_eq(page_byte(dir, 5, 20), 0xd4);
    ck_assert_int_eq(page_byte(dir, 5, 5), 5);  /* untouched */
    ck_assert_int_eq(page_byte(dir, 5, 17), 0); /* zero-filled gap */
}
END_TEST

START_TEST(test_overlapping_pages_one_wins)
{
    const char *dir = path_in("store");
    make_base(dir, 16);
    struct dsq_test_racer r[3] = {
        {{5, 6}, 2, 0x11}, {{5}, 1, 0x22}, {{9, 5}, 2, 0x33}};
    int codes[3];
    race(dir, 1, r, 3, codes, DSQ_ISOLATION_SNAPSHOT);
    int won = -1, lost = 0;
    for (int i = 0; i < 3; i++) {
        if (codes[i] == DSQ_TEST_COMMITTED)
            won = i;
        else if (codes[i] == DSQ_TEST_CONFLICT)
            lost++;
        else
            ck_abort_msg("child %d failed with %d", i, codes[i]);
    }
    ck_assert_int_eq(lost, 2);
    ck_assert_uint_eq(latest(dir), 2);
    ck_assert_int_eq(page_byte(dir, 2, 5), r[won].fill);
}
END_TEST

START_TEST(test_serializable_refuses_any_concurrent_commit)
{
    const char *dir = path_in("store");
    make_base(dir, 16);
    struct dsq_test_racer r[2] = {{{3}, 1, 0x11}, {{9}, 1, 0x22}};
    int codes[2];
    race(dir, 1, r, 2, codes, DSQ_ISOLATION_SERIALIZABLE);
    ck_assert_int_eq(codes[0] + codes[1], DSQ_TEST_CONFLICT);
    ck_assert_uint_eq(latest(dir), 2);
}
END_TEST

/* ---- the SQLite rules ---- */

static void sqlite_pair_race(const char *dir, const char *fa, const char *fb,
                             dsq_rc *ra, dsq_rc *rb, struct dsq_err *ea,
                             struct dsq_err *eb, int a_first)
{
    /* both transactions are built on version 1, then committed in order */
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *dba, *dbb;
    struct dsq_snap *s;
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir, &cfg, &st, &dba);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &dbb, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_db_snapshot(dba, 1, &s, NULL), DSQ_OK);
    struct dsq_txn *ta = dsq_test_txn_from_file(s, fa);
    dsq_snap_release(s);
    ck_assert_int_eq(dsq_db_snapshot(dbb, 1, &s, NULL), DSQ_OK);
    struct dsq_txn *tb = dsq_test_txn_from_file(s, fb);
    dsq_snap_release(s);
    ck_assert_ptr_nonnull(ta);
    ck_assert_ptr_nonnull(tb);
    dsq_err_clear(ea);
    dsq_err_clear(eb);
    if (a_first) {
        *ra = dsq_txn_commit(ta, NULL, ea);
        *rb = dsq_txn_commit(tb, NULL, eb);
    } else {
        *rb = dsq_txn_commit(tb, NULL, eb);
        *ra = dsq_txn_commit(ta, NULL, ea);
    }
    dsq_txn_free(ta);
    dsq_txn_free(tb);
    dsq_db_close(dba);
    dsq_db_close(dbb);
    dsq_store_free(st);
}

static void export_latest(const char *dir, const char *out)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    size_t len;
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    uint8_t *img = dsq_test_snap_image(s, &len);
    ck_assert_ptr_nonnull(img);
    dsq_test_write_file(out, img, len);
    free(img);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
}

static void import_file(const char *dir, const char *file)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_err e;
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir, &cfg, &st, &db);
    dsq_rc rc = dsq_test_commit_file(db, file, NULL, &e);
    ck_assert_msg(rc == DSQ_OK, "import: %s", dsq_err_text(&e, rc));
    dsq_db_close(db);
    dsq_store_free(st);
}

static void copy_file(const char *from, const char *to)
{
    size_t len;
    uint8_t *p = dsq_test_read_file(from, &len);
    ck_assert_ptr_nonnull(p);
    dsq_test_write_file(to, p, len);
    free(p);
}

START_TEST(test_page1_counters_merge)
{
    const char *dir = path_in("store");
    const char *base = path_in("base.db"), *fa = path_in("a.db"),
               *fb = path_in("b.db"), *out = path_in("out.db");
    dsq_test_sql(base, "PRAGMA journal_mode=DELETE;"
                       "CREATE TABLE t1(id INTEGER PRIMARY KEY, v TEXT);"
                       "CREATE TABLE t2(id INTEGER PRIMARY KEY, v TEXT);"
                       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 "
                       "FROM c WHERE i<200) INSERT INTO t1 SELECT i, "
                       "printf('%0100d', i) FROM c;"
                       "INSERT INTO t2 SELECT id, v FROM t1;");
    import_file(dir, base);
    copy_file(base, fa);
    copy_file(base, fb);
    /* same-size updates: no page allocation, page 1 only counters */
    dsq_test_sql(fa, "UPDATE t1 SET v=printf('%0100d', -1) WHERE id=7;");
    dsq_test_sql(fb, "UPDATE t2 SET v=printf('%0100d', -2) WHERE id=150;");
    dsq_rc ra, rb;
    struct dsq_err ea, eb;
    sqlite_pair_race(dir, fa, fb, &ra, &rb, &ea, &eb, 1);
    ck_assert_msg(ra == DSQ_OK, "a: %s", dsq_err_text(&ea, ra));
    ck_assert_msg(rb == DSQ_OK, "b: %s", dsq_err_text(&eb, rb));
    ck_assert_uint_eq(latest(dir), 3);
    export_latest(dir, out);
    ck_assert_str_eq(dsq_test_integrity(out), "ok");
    ck_assert_int_eq(dsq_test_sql_int(out, "SELECT count(*) FROM t1 WHERE "
                                           "v=printf('%0100d', -1)"),
                     1);
    ck_assert_int_eq(dsq_test_sql_int(out, "SELECT count(*) FROM t2 WHERE "
                                           "v=printf('%0100d', -2)"),
                     1);
    /* the change counter moved past both transactions */
    long long c1 = dsq_test_sql_int(fa, "SELECT 0") >= 0 ? 0 : 0;
    (void)c1;
    size_t la, lo;
    uint8_t *pa = dsq_test_read_file(fa, &la),
            *po = dsq_test_read_file(out, &lo);
    uint32_t ca = ((uint32_t)pa[24] << 24) | ((uint32_t)pa[25] << 16) |
                  ((uint32_t)pa[26] << 8) | pa[27];
    uint32_t co = ((uint32_t)po[24] << 24) | ((uint32_t)po[25] << 16) |
                  ((uint32_t)po[26] << 8) | po[27];
    ck_assert_uint_gt(co, ca);
    ck_assert_int_eq(memcmp(po + 24, po + 92, 4), 0);
    free(pa);
    free(po);
}
END_TEST

START_TEST(test_page1_real_change_conflicts)
{
    const char *dir = path_in("store");
    const char *base = path_in("base.db"), *fa = path_in("a.db"),
               *fb = path_in("b.db");
    dsq_test_sql(base, "PRAGMA journal_mode=DELETE;"
                       "CREATE TABLE t1(id INTEGER PRIMARY KEY, v TEXT);"
                       "INSERT INTO t1 VALUES(1, 'x');");
    import_file(dir, base);
    copy_file(base, fa);
    copy_file(base, fb);
    /* a changes the schema (schema cookie on page 1) */
    dsq_test_sql(fa, "CREATE TABLE t3(x);");
    dsq_test_sql(fb, "UPDATE t1 SET v='y' WHERE id=1;");
    dsq_rc ra, rb;
    struct dsq_err ea, eb;
    sqlite_pair_race(dir, fa, fb, &ra, &rb, &ea, &eb, 1);
    ck_assert_int_eq(ra, DSQ_OK);
    ck_assert_int_eq(rb, DSQ_ECONFLICT);
    ck_assert_uint_eq(latest(dir), 2);
}
END_TEST

/* The freed-page case, in both orders. */
static void freed_case(int a_first)
{
    const char *dir = path_in("store");
    const char *base = path_in("base.db"), *fa = path_in("a.db"),
               *fb = path_in("b.db"), *out = path_in("out.db");
    dsq_test_sql(base, "PRAGMA journal_mode=DELETE; PRAGMA page_size=1024;"
                       "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 "
                       "FROM c WHERE i<400) INSERT INTO t SELECT i, "
                       "printf('%0150d', i) FROM c;");
    import_file(dir, base);
    copy_file(base, fa);
    copy_file(base, fb);
    /* a empties a run of leaves (they go to the freelist);
       b writes into one of them from the same snapshot */
    dsq_test_sql(fa, "DELETE FROM t WHERE id BETWEEN 100 AND 300;");
    dsq_test_sql(fb, "UPDATE t SET v=printf('%0150d', -5) WHERE id=200;");
    dsq_rc ra, rb;
    struct dsq_err ea, eb;
    sqlite_pair_race(dir, fa, fb, &ra, &rb, &ea, &eb, a_first);
    if (a_first) {
        ck_assert_int_eq(ra, DSQ_OK);
        ck_assert_msg(rb == DSQ_ECONFLICT, "b: %s", dsq_err_text(&eb, rb));
        /* the conflict names a freed leaf, not page 1 */
        ck_assert_msg(strstr(eb.msg, "page 1 ") == NULL, "%s", eb.msg);
    } else {
        ck_assert_int_eq(rb, DSQ_OK);
        ck_assert_msg(ra == DSQ_ECONFLICT, "a: %s", dsq_err_text(&ea, ra));
        ck_assert_msg(strstr(ea.msg, "page 1 ") == NULL, "%s", ea.msg);
    }
    ck_assert_uint_eq(latest(dir), 2);
    export_latest(dir, out);
    ck_assert_str_eq(dsq_test_integrity(out), "ok");
}

START_TEST(test_freed_page_conflicts_a_first)
{
    freed_case(1);
}
END_TEST

START_TEST(test_freed_page_conflicts_b_first)
{
    freed_case(0);
}
END_TEST

/* ---- newest version: root.json is only a hint ---- */

START_TEST(test_root_hint_never_trusted)
{
    const char *dir = path_in("store");
    make_base(dir, 4);
    struct dsq_test_racer r[1] = {{{2}, 1, 0x44}};
    int codes[1];
    race(dir, 1, r, 1, codes, DSQ_ISOLATION_SNAPSHOT);
    ck_assert_int_eq(codes[0], 0);
    char root[4096];
    snprintf(root, sizeof(root), "%s/db/root.json", dir);
    /* stale hint */
    dsq_test_write_file(root,
                        "{\"format\":\"dsqlfs-root\",\"format_version\":1,"
                        "\"version\":1,\"time\":\"2026-01-01T00:00:00.000Z\"}",
                        89);
    ck_assert_uint_eq(latest(dir), 2);
    /* a hint from the future */
    dsq_test_write_file(
        root,
        "{\"format\":\"dsqlfs-root\",\"format_version\":1,"
        "\"version\":999,\"time\":\"2026-01-01T00:00:00.000Z\"}",
        91);
    ck_assert_uint_eq(latest(dir), 2);
    /* garbage, then none */
    dsq_test_write_file(root, "{{{", 3);
    ck_assert_uint_eq(latest(dir), 2);
    unlink(root);
    ck_assert_uint_eq(latest(dir), 2);
}
END_TEST

/* ---- streaming import and the cost of a one-page commit ---- */

START_TEST(test_stream_import_and_small_commit_cost)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    struct dsq_txn *t;
    struct dsq_commit_info ci;
    struct dsq_err e;
    enum { PAGES = 20000 };
    uint8_t page[4096];
    dsq_test_config(&cfg, 50);
    cfg.segment_max_bytes = 8u << 20; /* several segments */
    dsq_test_open(path_in("store"), &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, DSQ_TXN_STREAM, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_set_page_size(t, 4096, NULL), DSQ_OK);
    for (uint32_t p = 1; p <= PAGES; p++) {
        for (size_t i = 0; i < sizeof(page); i += 8)
            memcpy(page + i, &p, 4), memcpy(page + i + 4, &i, 4);
        ck_assert_int_eq(dsq_txn_write_page(t, p, page, NULL), DSQ_OK);
    }
    /* out of order is refused in a stream */
    ck_assert_int_eq(dsq_txn_write_page(t, 5, page, NULL), DSQ_EINVAL);
    dsq_rc rc = dsq_txn_commit(t, &ci, &e);
    ck_assert_msg(rc == DSQ_OK, "%s", dsq_err_text(&e, rc));
    ck_assert_uint_eq(ci.version, 1);
    ck_assert_uint_ge(ci.objects_written, 1 + 2 + 5); /* segs+chunks+mf */
    dsq_txn_free(t);
    dsq_snap_release(s);

    /* one page changed: the manifest carries it, one object of a few KB */
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    memset(page, 0x5a, sizeof(page));
    ck_assert_int_eq(dsq_txn_write_page(t, 12345, page, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_commit(t, &ci, NULL), DSQ_OK);
    ck_assert_uint_eq(ci.version, 2);
    ck_assert_uint_eq(ci.objects_written, 1);
    ck_assert_uint_lt(ci.bytes_written, 16384);
    dsq_txn_free(t);
    dsq_snap_release(s);

    ck_assert_int_eq(dsq_db_snapshot(db, 2, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_snap_read_page(s, 12345, page, NULL), DSQ_OK);
    ck_assert_int_eq(page[100], 0x5a);
    ck_assert_int_eq(dsq_snap_read_page(s, 12346, page, NULL), DSQ_OK);
    uint32_t got;
    memcpy(&got, page, 4);
    ck_assert_uint_eq(got, 12346);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

/* ---- recovery scan and corruption ---- */

static int count_orphans;
static void on_orphan(const char *key, uint64_t size, uint64_t mtime,
                      int deleted, void *arg)
{
    (void)key;
    (void)size;
    (void)mtime;
    (void)deleted;
    (void)arg;
    count_orphans++;
}

START_TEST(test_recovery_scan_finds_only_orphans)
{
    const char *dir = path_in("store");
    make_base(dir, 8);
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    uint64_t n = 99;
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_recovery_scan(db, 0, 0, NULL, NULL, &n, NULL),
                     DSQ_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(dsq_store_put(st, "db/segments/0123.seg", "x", 1,
                                   DSQ_PUT_ANY, NULL, NULL, NULL),
                     DSQ_OK);
    /* within the grace period it is left alone */
    ck_assert_int_eq(dsq_db_recovery_scan(db, 3600000, 0, NULL, NULL, &n, NULL),
                     DSQ_OK);
    ck_assert_uint_eq(n, 0);
    count_orphans = 0;
    ck_assert_int_eq(dsq_db_recovery_scan(db, 0, 1, on_orphan, NULL, &n, NULL),
                     DSQ_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(count_orphans, 1);
    ck_assert_int_eq(dsq_store_head(st, "db/segments/0123.seg", NULL, NULL),
                     DSQ_ENOTFOUND);
    struct dsq_verify_report rep;
    ck_assert_int_eq(dsq_db_verify(db, &rep, NULL, NULL, NULL, NULL), DSQ_OK);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

static int corrupt_segment(const char *dir)
{
    char segdir[4096], cmd[8192];
    snprintf(segdir, sizeof(segdir), "%s/db/segments", dir);
    /* flip one byte near the end of the first segment (page data) */
    snprintf(cmd, sizeof(cmd),
             "f=$(ls %s/*.seg | head -1); sz=$(stat -c %%s $f); "
             "printf '\\377' | dd of=$f bs=1 seek=$((sz-100)) conv=notrunc "
             "2>/dev/null",
             segdir);
    return system(cmd);
}

START_TEST(test_corruption_is_an_error_naming_the_object)
{
    const char *dir = path_in("store");
    make_base(dir, 8);
    /* big enough for a segment (not carried by the manifest): the bad
       page is the last one written */
    make_base(dir, 80);
    ck_assert_int_eq(corrupt_segment(dir), 0);
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    struct dsq_err e;
    uint8_t page[4096];
    dsq_test_config(&cfg, 50);
    cfg.compress = 0;
    dsq_test_open(dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, 2, &s, NULL), DSQ_OK);
    int bad = 0;
    for (uint32_t p = 1; p <= 80; p++) {
        dsq_err_clear(&e);
        dsq_rc rc = dsq_snap_read_page(s, p, page, &e);
        if (rc != DSQ_OK) {
            ck_assert_int_eq(rc, DSQ_ECORRUPT);
            ck_assert_ptr_nonnull(strstr(e.msg, "segments/"));
            bad++;
        }
    }
    ck_assert_int_eq(bad, 1);
    struct dsq_verify_report rep;
    ck_assert_int_eq(dsq_db_verify(db, &rep, NULL, NULL, NULL, NULL),
                     DSQ_ECORRUPT);
    ck_assert_uint_ge(rep.problems, 1);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

/* ---- one handle, many threads ---- */

#include <pthread.h>

struct mt {
    struct dsq_db *db;
    int id;
    int errors;
    int commits;
};

static void mt_page(uint8_t *p, uint32_t pgno, uint8_t fill)
{
    memset(p, fill, 4096);
    memcpy(p, &pgno, 4);
}

static void *mt_writer(void *arg)
{
    struct mt *m = arg;
    uint8_t page[4096];
    for (int i = 0; i < 40; i++) {
        struct dsq_snap *s;
        struct dsq_txn *t;
        struct dsq_err e;
        if (dsq_db_snapshot(m->db, DSQ_VERSION_LATEST, &s, &e) != DSQ_OK) {
            m->errors++;
            continue;
        }
        dsq_txn_begin(s, 0, &t, &e);
        /* writer k owns pages 2+k, 10+k, 18+k ...: disjoint */
        for (uint32_t p = 2 + (uint32_t)m->id; p <= 64; p += 8) {
            mt_page(page, p, (uint8_t)(i + 1));
            dsq_txn_write_page(t, p, page, &e);
        }
        dsq_rc rc = dsq_txn_commit(t, NULL, &e);
        if (rc == DSQ_OK)
            m->commits++;
        else
            m->errors++;
        dsq_txn_free(t);
        dsq_snap_release(s);
    }
    return NULL;
}

static void *mt_reader(void *arg)
{
    struct mt *m = arg;
    uint8_t page[4096];
    for (int i = 0; i < 300; i++) {
        struct dsq_snap *s;
        if (dsq_db_snapshot(m->db, DSQ_VERSION_LATEST, &s, NULL) != DSQ_OK) {
            m->errors++;
            continue;
        }
        for (uint32_t p = 2; p <= dsq_snap_page_count(s); p += 3) {
            if (dsq_snap_read_page(s, p, page, NULL) != DSQ_OK) {
                m->errors++;
                break;
            }
            uint32_t got;
            memcpy(&got, page, 4);
            if (got != p || page[4095] != page[4]) {
                m->errors++;
                break;
            }
        }
        dsq_snap_release(s);
    }
    return NULL;
}

START_TEST(test_many_threads_one_handle)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    struct dsq_txn *t;
    uint8_t page[4096];
    dsq_test_config(&cfg, 10);
    cfg.page_cache_bytes = 64 * 4096; /* small: evictions under load */
    dsq_test_open(path_in("store"), &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_set_page_size(t, 4096, NULL), DSQ_OK);
    for (uint32_t p = 1; p <= 64; p++) {
        mt_page(page, p, 0);
        ck_assert_int_eq(dsq_txn_write_page(t, p, page, NULL), DSQ_OK);
    }
    ck_assert_int_eq(dsq_txn_commit(t, NULL, NULL), DSQ_OK);
    dsq_txn_free(t);
    dsq_snap_release(s);
    pthread_t th[6];
    struct mt m[6];
    for (int i = 0; i < 6; i++) {
        m[i] = (struct mt){.db = db, .id = i};
        pthread_create(&th[i], NULL, i < 2 ? mt_writer : mt_reader, &m[i]);
    }
    int commits = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(m[i].errors, 0);
        commits += m[i].commits;
    }
    ck_assert_int_eq(commits, 80);
    uint64_t v;
    ck_assert_int_eq(dsq_db_latest(db, &v, NULL), DSQ_OK);
    ck_assert_uint_eq(v, 81);
    struct dsq_verify_report rep;
    ck_assert_int_eq(dsq_db_verify(db, &rep, NULL, NULL, NULL, NULL), DSQ_OK);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

/* ---- the disk cache ---- */

START_TEST(test_disk_cache_survives_restart_and_is_verified)
{
    const char *dir = path_in("store");
    const char *cdir = path_in("cache");
    make_base(dir, 100); /* in a segment: the disk cache holds segments */
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    uint8_t page[4096];
    dsq_test_config(&cfg, 50);
    cfg.disk_cache = 1;
    cfg.cache_dir = strdup(cdir);
    /* 1: read everything once, filling the disk cache */
    dsq_test_open(dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, 1, &s, NULL), DSQ_OK);
    for (uint32_t p = 1; p <= 64; p++)
        ck_assert_int_eq(dsq_snap_read_page(s, p, page, NULL), DSQ_OK);
    dsq_snap_release(s);
    dsq_db_close(db);
    /* 2: "restart" with the store's segments gone: served from disk */
    char cmd[8400];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p %s/hide && mv %s/db/segments/* %s/hide/", dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_db_snapshot(db, 1, &s, NULL), DSQ_OK);
    for (uint32_t p = 1; p <= 64; p++) {
        ck_assert_int_eq(dsq_snap_read_page(s, p, page, NULL), DSQ_OK);
        ck_assert_int_eq(page[0], (int)p);
    }
    dsq_snap_release(s);
    dsq_db_close(db);
    /* 3: damage the cached copy: verified on load, so the store serves */
    snprintf(cmd, sizeof(cmd),
             "mv %s/hide/* %s/db/segments/ && for f in $(find %s -name "
             "'*.seg'); do dd if=/dev/urandom of=$f bs=1 count=3000 "
             "seek=200 conv=notrunc 2>/dev/null; done",
             dir, dir, cdir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_db_snapshot(db, 1, &s, NULL), DSQ_OK);
    size_t len;
    uint8_t *img = dsq_test_snap_image(s, &len);
    ck_assert_ptr_nonnull(img);
    for (uint32_t p = 1; p <= 64; p++)
        ck_assert_int_eq(img[(size_t)(p - 1) * 4096 + 100], (int)p);
    free(img);
    dsq_snap_release(s);
    dsq_db_close(db);
    /* 4: bounded: incompressible pages in several segments */
    free(cfg.cache_dir);
    cfg.cache_dir = strdup(path_in("small"));
    cfg.disk_cache_bytes = 64 * 1024;
    cfg.segment_max_bytes = 65536;
    ck_assert_int_eq(dsq_db_open(st, "db2", &cfg, &db, NULL), DSQ_OK);
    struct dsq_txn *t;
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_set_page_size(t, 4096, NULL), DSQ_OK);
    for (uint32_t p = 1; p <= 128; p++) {
        for (size_t i = 0; i < sizeof(page); i++)
            page[i] = (uint8_t)rand();
        ck_assert_int_eq(dsq_txn_write_page(t, p, page, NULL), DSQ_OK);
    }
    ck_assert_int_eq(dsq_txn_commit(t, NULL, NULL), DSQ_OK);
    dsq_txn_free(t);
    dsq_snap_release(s);
    ck_assert_int_eq(dsq_db_snapshot(db, 1, &s, NULL), DSQ_OK);
    for (uint32_t p = 1; p <= 128; p++)
        ck_assert_int_eq(dsq_snap_read_page(s, p, page, NULL), DSQ_OK);
    dsq_snap_release(s);
    dsq_db_close(db);
    snprintf(cmd, sizeof(cmd), "test $(du -sk %s | cut -f1) -le 160",
             cfg.cache_dir);
    ck_assert_int_eq(system(cmd), 0);
    free(cfg.cache_dir);
    dsq_store_free(st);
}
END_TEST

/* ---- gc and its floor ---- */

static uint64_t clock_offset_ms;
static uint64_t shifted_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
           clock_offset_ms;
}

START_TEST(test_gc_keeps_what_is_needed_and_fences_stale_writers)
{
    const char *dir = path_in("store");
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s, *old;
    struct dsq_txn *t, *stale;
    struct dsq_err e;
    uint8_t page[4096];
    dsq_test_config(&cfg, 5); /* checkpoints inside the removed range */
    dsq_test_open(dir, &cfg, &st, &db);
    for (int v = 1; v <= 30; v++) {
        ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL),
                         DSQ_OK);
        ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
        if (v == 1)
            ck_assert_int_eq(dsq_txn_set_page_size(t, 4096, NULL), DSQ_OK);
        for (uint32_t p = 1; p <= (v == 1 ? 40u : 2u); p++) {
            uint32_t pg = p; /* versions after 1 rewrite pages 1-2 */
            memset(page, v, sizeof(page));
            ck_assert_int_eq(dsq_txn_write_page(t, pg, page, NULL), DSQ_OK);
        }
        ck_assert_int_eq(dsq_txn_commit(t, NULL, NULL), DSQ_OK);
        dsq_txn_free(t);
        dsq_snap_release(s);
    }
    /* a writer that took its snapshot at version 3 and stalled */
    ck_assert_int_eq(dsq_db_snapshot(db, 3, &old, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(old, 0, &stale, NULL), DSQ_OK);
    memset(page, 0x77, sizeof(page));
    ck_assert_int_eq(dsq_txn_write_page(stale, 39, page, NULL), DSQ_OK);
    /* references images of the versions that stay */
    size_t n26, n30;
    ck_assert_int_eq(dsq_db_snapshot(db, 26, &s, NULL), DSQ_OK);
    uint8_t *img26 = dsq_test_snap_image(s, &n26);
    dsq_snap_release(s);
    ck_assert_int_eq(dsq_db_snapshot(db, 30, &s, NULL), DSQ_OK);
    uint8_t *img30 = dsq_test_snap_image(s, &n30);
    dsq_snap_release(s);

    /* too short a retention is refused */
    struct dsq_gc_report rep;
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_db_gc(db, 5, 60000, 0, &rep, &e), DSQ_EINVAL);
    /* two hours later: keep the last five */
    clock_offset_ms = 2 * 3600 * 1000;
    dsq_env.now_ms = shifted_now;
    ck_assert_int_eq(dsq_db_gc(db, 5, 3600 * 1000, 1, &rep, &e), DSQ_OK);
    ck_assert_uint_eq(rep.versions_removed, 25);
    uint64_t v;
    ck_assert_int_eq(dsq_db_versions(db, count_ckpt, &(struct vcheck){0}, NULL),
                     DSQ_OK); /* dry run removed nothing */
    dsq_rc rc = dsq_db_gc(db, 5, 3600 * 1000, 0, &rep, &e);
    ck_assert_msg(rc == DSQ_OK, "gc: %s", dsq_err_text(&e, rc));
    ck_assert_uint_eq(rep.floor, 26);
    ck_assert_uint_eq(rep.versions_removed, 25);
    /* the checkpoints 5..20 made segments and chunks nothing kept uses
       (the other versions carried their pages in their manifests) */
    ck_assert_uint_ge(rep.objects_removed, 8);
    ck_assert_int_eq(dsq_db_latest(db, &v, NULL), DSQ_OK);
    ck_assert_uint_eq(v, 30);
    /* kept versions read back identical on a cold handle; verify passes;
       nothing is left orphaned (the stale transaction keeps its handle) */
    struct dsq_db *stale_db = db;
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    size_t len;
    ck_assert_int_eq(dsq_db_snapshot(db, 26, &s, NULL), DSQ_OK);
    uint8_t *img = dsq_test_snap_image(s, &len);
    ck_assert(len == n26 && memcmp(img, img26, len) == 0);
    free(img);
    dsq_snap_release(s);
    ck_assert_int_eq(dsq_db_snapshot(db, 30, &s, NULL), DSQ_OK);
    img = dsq_test_snap_image(s, &len);
    ck_assert(len == n30 && memcmp(img, img30, len) == 0);
    free(img);
    dsq_snap_release(s);
    ck_assert_int_eq(dsq_db_snapshot(db, 25, &s, &e), DSQ_ENOTFOUND);
    struct dsq_verify_report vr;
    ck_assert_int_eq(dsq_db_verify(db, &vr, NULL, NULL, NULL, NULL), DSQ_OK);
    ck_assert_uint_eq(vr.first_version, 26);
    uint64_t orphans = 99;
    ck_assert_int_eq(dsq_db_recovery_scan(db, 0, 0, NULL, NULL, &orphans, NULL),
                     DSQ_OK);
    ck_assert_uint_eq(orphans, 0);
    /* C9: the stale writer "wins" the emptied slot 4, sees the floor and
       withdraws */
    dsq_err_clear(&e);
    rc = dsq_txn_commit(stale, NULL, &e);
    dsq_txn_free(stale);
    dsq_snap_release(old);
    dsq_db_close(stale_db);
    ck_assert_msg(rc == DSQ_ECONFLICT, "stale commit: %s",
                  dsq_err_text(&e, rc));
    ck_assert_ptr_nonnull(strstr(e.msg, "gc"));
    ck_assert_int_eq(dsq_store_head(st,
                                    "db/manifests/v00000000000000000004.json",
                                    NULL, NULL),
                     DSQ_ENOTFOUND);
    ck_assert_int_eq(dsq_db_latest(db, &v, NULL), DSQ_OK);
    ck_assert_uint_eq(v, 30);
    dsq_env_reset();
    free(img26);
    free(img30);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

/* ---- a chmod's mode is stored, carried, and survives a rebase ---- */

static int64_t mode_at(const char *dir, uint64_t v)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, v, &s, NULL), DSQ_OK);
    int64_t m = dsq_snap_mode(s);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
    return m;
}

static char manifest_format(struct dsq_store *st, uint64_t v)
{
    char rel[64], key[256];
    struct dsq_buf b;
    dsq_manifest_key(v, rel);
    snprintf(key, sizeof(key), "db/%s", rel);
    dsq_buf_init(&b, 1u << 20);
    ck_assert_int_eq(dsq_store_get(st, key, 0, 0, &b, NULL, NULL), DSQ_OK);
    ck_assert_uint_ge(b.len, DSQ_MANIFEST_INLINE_OFFSET);
    char c = (char)b.data[45]; /* ..."format_version":N,"inline":" */
    dsq_buf_cleanup(&b);
    return c;
}

START_TEST(test_mode_is_stored_and_carried)
{
    const char *dir = path_in("store");
    make_base(dir, 4); /* v1: no mode */
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    struct dsq_txn *t, *a, *b;
    struct dsq_commit_info ci;
    struct dsq_err e;
    uint8_t page[4096];
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, 1, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_snap_mode(s), -1);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_set_mode(t, 010000, &e), DSQ_EINVAL);
    /* a mode alone is a version with no pages */
    ck_assert_int_eq(dsq_txn_set_mode(t, 0640, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_commit(t, &ci, NULL), DSQ_OK);
    ck_assert(!ci.noop);
    ck_assert_uint_eq(ci.version, 2);
    dsq_txn_free(t);
    dsq_snap_release(s);
    ck_assert_int_eq(manifest_format(st, 1), '2');
    ck_assert_int_eq(manifest_format(st, 2), '4');
    ck_assert_int_eq(mode_at(dir, 2), 0640);
    ck_assert_int_eq(mode_at(dir, 1), -1);
    ck_assert_int_eq(page_byte(dir, 2, 3), 3);
    /* the same mode again changes nothing */
    ck_assert_int_eq(dsq_db_snapshot(db, 2, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_set_mode(t, 0640, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_commit(t, &ci, NULL), DSQ_OK);
    ck_assert(ci.noop);
    dsq_txn_free(t);
    /* a page commit carries the mode; a mode set on an older snapshot
       rebases over a page commit and keeps its pages */
    ck_assert_int_eq(dsq_txn_begin(s, 0, &a, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &b, NULL), DSQ_OK);
    fill(page, sizeof(page), 0x5e);
    ck_assert_int_eq(dsq_txn_write_page(b, 3, page, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_commit(b, &ci, NULL), DSQ_OK);
    ck_assert_uint_eq(ci.version, 3);
    ck_assert_int_eq(dsq_txn_set_mode(a, 0600, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_commit(a, &ci, NULL), DSQ_OK);
    ck_assert_uint_eq(ci.version, 4);
    dsq_txn_free(a);
    dsq_txn_free(b);
    dsq_snap_release(s);
    ck_assert_int_eq(mode_at(dir, 3), 0640);
    ck_assert_int_eq(mode_at(dir, 4), 0600);
    /* chmod 000 is a mode too */
    ck_assert_int_eq(dsq_db_snapshot(db, 4, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_set_mode(t, 0, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_commit(t, &ci, NULL), DSQ_OK);
    ck_assert_uint_eq(ci.version, 5);
    dsq_txn_free(t);
    dsq_snap_release(s);
    ck_assert_int_eq(mode_at(dir, 5), 0);
    ck_assert_int_eq(page_byte(dir, 4, 3), 0x5e);
    struct dsq_verify_report rep;
    ck_assert_int_eq(dsq_db_verify(db, &rep, NULL, NULL, NULL, NULL), DSQ_OK);
    ck_assert_uint_eq(rep.problems, 0);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

static Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("versions");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_every_version_exports_identical);
    tcase_add_test(tc, test_root_hint_never_trusted);
    tcase_add_test(tc, test_stream_import_and_small_commit_cost);
    tcase_add_test(tc, test_recovery_scan_finds_only_orphans);
    tcase_add_test(tc, test_corruption_is_an_error_naming_the_object);
    tcase_add_test(tc, test_disk_cache_survives_restart_and_is_verified);
    tcase_add_test(tc, test_gc_keeps_what_is_needed_and_fences_stale_writers);
    suite_add_tcase(s, tc);
    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_disjoint_pages_both_commit);
    tcase_add_test(tc, test_overlapping_pages_one_wins);
    tcase_add_test(tc, test_serializable_refuses_any_concurrent_commit);
    tcase_add_test(tc, test_many_threads_one_handle);
    suite_add_tcase(s, tc);
    tc = tcase_create("sqlite_rules");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_page1_counters_merge);
    tcase_add_test(tc, test_page1_real_change_conflicts);
    tcase_add_test(tc, test_freed_page_conflicts_a_first);
    tcase_add_test(tc, test_freed_page_conflicts_b_first);
    tcase_add_test(tc, test_mode_is_stored_and_carried);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(engine_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
