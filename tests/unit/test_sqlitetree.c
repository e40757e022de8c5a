/*
 * test_sqlitetree.c - which b-tree a page belongs to (src/sqlitetree.c),
 * against SQLite's own answer (the dbstat virtual table) for every page of
 * real databases: tables with indexes, rows that overflow, a freelist, an
 * autovacuum database (its pointer-map pages stay unnamed); the read
 * budget; hostile images never crash and leave pages unnamed.  The links
 * of one page (dsq_sqlite_page_links: children, the schema's roots)
 * against dbstat's page types.
 */
#include "err.h"
#include "sqlitetree.h"
#include "testutil.h"

#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct image {
    uint8_t *data;
    size_t len;
    uint32_t ps;
    size_t reads;
};

static dsq_rc read_page(void *ctx, uint32_t pgno, uint8_t *buf,
                        struct dsq_err *e)
{
    struct image *im = ctx;
    (void)e;
    im->reads++;
    if ((size_t)pgno * im->ps > im->len)
        return DSQ_ERANGE;
    memcpy(buf, im->data + (size_t)(pgno - 1) * im->ps, im->ps);
    return DSQ_OK;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK,
                  "%s: %s", sql, err ? err : "");
}

/* Compare our owner of every page with dbstat's. */
static void check_db(const char *path, int want_ptrmap)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    struct image im = {0};
    im.data = dsq_test_read_file(path, &im.len);
    ck_assert_ptr_nonnull(im.data);
    im.ps = dsq_sqlite_page_size(im.data, im.len);
    uint32_t n = (uint32_t)(im.len / im.ps);
    uint32_t *pages = malloc(n * sizeof(*pages));
    struct dsq_page_owner *out = calloc(n, sizeof(*out));
    for (uint32_t i = 0; i < n; i++)
        pages[n - 1 - i] = i + 1; /* any order */
    struct dsq_err e;
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_sqlite_page_owners(im.data, im.ps, n, read_page, &im,
                                            pages, n, out, 100000, &e),
                     DSQ_OK);
    /* every page once at most (the freelist trunk pages and the schema) */
    ck_assert_uint_le(im.reads, (size_t)n + 2);
    char **want = calloc(n + 1, sizeof(*want));
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT name, pageno FROM dbstat",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint32_t p = (uint32_t)sqlite3_column_int64(st, 1);
        ck_assert_uint_le(p, n);
        want[p] = strdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    size_t named = 0, freel = 0, unnamed = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = out[i].pgno;
        ck_assert_uint_eq(p, pages[i]);
        if (want[p]) {
            ck_assert_msg(!strcmp(out[i].name, want[p]), "page %u: %s, want %s",
                          p, out[i].name, want[p]);
            named++;
        } else if (!strcmp(out[i].name, "(freelist)")) {
            freel++;
        } else {
            ck_assert_msg(out[i].name[0] == 0, "page %u: %s, dbstat: none", p,
                          out[i].name);
            unnamed++;
        }
        if (!strcmp(out[i].name, "a_v")) {
            ck_assert(out[i].is_index);
            ck_assert_str_eq(out[i].table, "a");
        }
    }
    ck_assert_uint_gt(named, 10);
    if (want_ptrmap)
        ck_assert_uint_gt(unnamed, 0); /* pointer-map pages */
    else
        ck_assert_uint_eq(unnamed, 0);
    int fl = 0;
    ck_assert_int_eq(
        sqlite3_prepare_v2(db, "PRAGMA freelist_count", -1, &st, NULL),
        SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    fl = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    ck_assert_uint_eq(freel, (size_t)fl);
    for (uint32_t i = 0; i <= n; i++)
        free(want[i]);
    free(want);
    free(pages);
    free(out);
    free(im.data);
    sqlite3_close(db);
}

static void fill(sqlite3 *db)
{
    exec(db, "CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT, w BLOB);"
             "CREATE INDEX a_v ON a(v);"
             "CREATE TABLE b(k TEXT PRIMARY KEY, n INT) WITHOUT ROWID;"
             "CREATE TABLE c(x);"
             "CREATE VIEW vv AS SELECT * FROM a;");
    exec(db, "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s "
             "WHERE i < 3000) INSERT INTO a SELECT i, printf('%08d-%s', i, "
             "hex(randomblob(20))), CASE WHEN i % 50 = 0 THEN "
             "randomblob(9000) END FROM s;");
    exec(db, "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s "
             "WHERE i < 2000) INSERT INTO b SELECT printf('k%06d', i), i FROM "
             "s;");
    exec(db, "INSERT INTO c SELECT randomblob(100000);"); /* long chain */
    exec(db, "CREATE TABLE d(x); INSERT INTO d SELECT randomblob(3000) FROM a "
             "LIMIT 100; DROP TABLE d;"); /* a freelist */
}

START_TEST(test_owners_match_dbstat)
{
    char *dir = dsq_test_tmpdir("sqlitetree");
    char path[4096];
    int ps[] = {1024, 4096, 65536};
    for (size_t k = 0; k < 3; k++) {
        snprintf(path, sizeof(path), "%s/t%d.db", dir, ps[k]);
        sqlite3 *db;
        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA page_size=%d", ps[k]);
        exec(db, sql);
        fill(db);
        sqlite3_close(db);
        check_db(path, 0);
    }
    snprintf(path, sizeof(path), "%s/auto.db", dir);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    exec(db, "PRAGMA page_size=1024; PRAGMA auto_vacuum=FULL;");
    fill(db);
    exec(db, "PRAGMA auto_vacuum=FULL;");
    sqlite3_close(db);
    check_db(path, 1);
    dsq_test_rmrf(dir);
    free(dir);
}
END_TEST

START_TEST(test_budget_and_targets)
{
    char *dir = dsq_test_tmpdir("sqlitetree");
    char path[4096];
    snprintf(path, sizeof(path), "%s/t.db", dir);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    exec(db, "PRAGMA page_size=1024");
    fill(db);
    /* the last page of table b */
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT max(pageno) FROM dbstat WHERE "
                                        "name = 'a_v'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    uint32_t target = (uint32_t)sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    struct image im = {0};
    im.data = dsq_test_read_file(path, &im.len);
    im.ps = 1024;
    uint32_t n = (uint32_t)(im.len / im.ps);
    struct dsq_page_owner out;
    struct dsq_err e;
    ck_assert_int_eq(dsq_sqlite_page_owners(im.data, im.ps, n, read_page, &im,
                                            &target, 1, &out, 100000, &e),
                     DSQ_OK);
    ck_assert_str_eq(out.name, "a_v");
    ck_assert(out.is_index);
    /* a budget of 3 pages cannot reach it: unnamed, no failure */
    im.reads = 0;
    ck_assert_int_eq(dsq_sqlite_page_owners(im.data, im.ps, n, read_page, &im,
                                            &target, 1, &out, 3, &e),
                     DSQ_OK);
    ck_assert_str_eq(out.name, "");
    ck_assert_uint_le(im.reads, 3 + 4); /* + the freelist trunks */
    /* hostile: every byte of the schema's page and of page 2 flipped in
       turn, and loops: never a crash, never more reads than the budget */
    for (size_t off = 100; off < 2048; off += 7) {
        uint8_t *copy = malloc(im.len);
        memcpy(copy, im.data, im.len);
        copy[off] ^= 0xff;
        struct image h = {copy, im.len, 1024, 0};
        dsq_sqlite_page_owners(copy, 1024, n, read_page, &h, &target, 1, &out,
                               500, &e);
        ck_assert_uint_le(h.reads, 500 + 64);
        free(copy);
    }
    /* not a SQLite header */
    uint8_t junk[1024] = {0};
    ck_assert_int_eq(dsq_sqlite_page_owners(junk, 1024, 1, read_page, &im,
                                            &target, 1, &out, 10, &e),
                     DSQ_EINVAL);
    free(im.data);
    dsq_test_rmrf(dir);
    free(dir);
}
END_TEST

START_TEST(test_page_links)
{
    char *dir = dsq_test_tmpdir("sqlitetree");
    char path[4096];
    snprintf(path, sizeof(path), "%s/l.db", dir);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    exec(db, "PRAGMA page_size=1024");
    fill(db);
    struct image im = {0};
    im.data = dsq_test_read_file(path, &im.len);
    im.ps = 1024;
    uint32_t n = (uint32_t)(im.len / im.ps);
    /* dbstat's page types; every page some interior page or the schema
       names must be a b-tree page, each named once */
    char *type = calloc(n + 1, 1);
    unsigned *named = calloc(n + 1, sizeof(*named));
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT pageno, pagetype FROM dbstat",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint32_t p = (uint32_t)sqlite3_column_int64(st, 0);
        const char *t = (const char *)sqlite3_column_text(st, 1);
        type[p] = t[0]; /* 'i'nternal, 'l'eaf, 'o'verflow */
    }
    sqlite3_finalize(st);
    uint32_t links[1024];
    size_t nl, interior = 0;
    int kind;
    dsq_sqlite_page_links(im.data, 1, 1024, 1024, 1, links, 1024, &nl, &kind);
    ck_assert(kind == 13 || kind == 5);
    ck_assert_uint_ge(nl, kind == 13 ? 3u : 2u);
    for (uint32_t p = 2; p <= n; p++) {
        dsq_sqlite_page_links(im.data + (size_t)(p - 1) * 1024, p, 1024, 1024,
                              0, links, 1024, &nl, &kind);
        if (type[p] == 'i') {
            ck_assert_msg(kind == 2 || kind == 5, "page %u: kind %d", p, kind);
            ck_assert_uint_ge(nl, 2);
            interior++;
            for (size_t k = 0; k < nl; k++) {
                ck_assert_uint_le(links[k], n);
                ck_assert_msg(type[links[k]] == 'i' || type[links[k]] == 'l',
                              "page %u names %u (%c)", p, links[k],
                              type[links[k]] ? type[links[k]] : '-');
                named[links[k]]++;
            }
        } else if (type[p] == 'l') {
            ck_assert(kind == 10 || kind == 13);
            ck_assert_uint_eq(nl, 0);
        }
    }
    ck_assert_uint_gt(interior, 3);
    for (uint32_t p = 1; p <= n; p++)
        ck_assert_uint_le(named[p], 1);
    /* a short list, a hostile page: never more than max */
    dsq_sqlite_page_links(im.data, 1, 1024, 1024, 1, links, 1, &nl, &kind);
    ck_assert_uint_le(nl, 1);
    for (size_t off = 0; off < 1024; off++) {
        uint8_t copy[1024];
        memcpy(copy, im.data + 1024, 1024);
        copy[off] ^= 0xa5;
        dsq_sqlite_page_links(copy, 2, 1024, 1024, off & 1, links, 8, &nl,
                              &kind);
        ck_assert_uint_le(nl, 8);
    }
    dsq_sqlite_page_links(im.data, 2, 1024, 100, 0, links, 8, &nl, &kind);
    ck_assert_int_eq(kind, 0); /* usable size out of range */
    sqlite3_close(db);
    free(type);
    free(named);
    free(im.data);
    dsq_test_rmrf(dir);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sqlitetree");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_owners_match_dbstat);
    tcase_add_test(tc, test_budget_and_targets);
    tcase_add_test(tc, test_page_links);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
