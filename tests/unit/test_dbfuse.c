/*
 * test_dbfuse.c - the engine functions the FUSE daemon relies on:
 * dsq_db_changes (what the versions after a snapshot wrote or freed) and
 * dsq_txn_drop_unchanged (a rollback writes the original pages back: no
 * write).  Freshness checks (dsq_db_fresh): test_fresh.c.
 */
#include "db.h"
#include "enginetest.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tmp;

static void setup(void)
{
    tmp = dsq_test_tmpdir("dbfuse");
}

static void teardown(void)
{
    dsq_test_rmrf(tmp);
    free(tmp);
}

/* A database of n pages of 4096 bytes, page p filled with byte p. */
static uint64_t commit_pages(struct dsq_db *db, uint32_t first, uint32_t n,
                             uint8_t fill)
{
    struct dsq_snap *s;
    struct dsq_txn *t;
    struct dsq_commit_info ci;
    uint8_t page[4096];
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    if (dsq_snap_page_count(s) == 0)
        ck_assert_int_eq(dsq_txn_set_page_size(t, 4096, NULL), DSQ_OK);
    for (uint32_t p = first; p < first + n; p++) {
        memset(page, fill, sizeof(page));
        ck_assert_int_eq(dsq_txn_write_page(t, p, page, NULL), DSQ_OK);
    }
    ck_assert_int_eq(dsq_txn_commit(t, &ci, NULL), DSQ_OK);
    dsq_txn_free(t);
    dsq_snap_release(s);
    return ci.version;
}

START_TEST(test_changes)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_changes c;
    dsq_test_config(&cfg, 50);
    dsq_test_open(tmp, &cfg, &st, &db);
    commit_pages(db, 1, 10, 1); /* v1: pages 1..10 */
    commit_pages(db, 3, 2, 2);  /* v2: 3,4 */
    commit_pages(db, 5, 1, 3);  /* v3: 5 */
    commit_pages(db, 8, 1, 4);  /* v4: 8 */
    ck_assert_int_eq(dsq_db_changes(db, 1, 4, &c, NULL), DSQ_OK);
    ck_assert_uint_eq(c.n_ranges, 2);
    ck_assert_uint_eq(c.ranges[0].first, 3);
    ck_assert_uint_eq(c.ranges[0].count, 3);
    ck_assert_uint_eq(c.ranges[1].first, 8);
    ck_assert_uint_eq(c.ranges[1].count, 1);
    ck_assert_uint_eq(c.page_count, 10);
    ck_assert_int_eq(c.page1_changed, 0);
    dsq_changes_cleanup(&c);
    ck_assert_int_eq(dsq_db_changes(db, 4, 4, &c, NULL), DSQ_OK);
    ck_assert_uint_eq(c.n_ranges, 0);
    dsq_changes_cleanup(&c);
    commit_pages(db, 11, 2, 5); /* v5 grows the file */
    ck_assert_int_eq(dsq_db_changes(db, 4, 5, &c, NULL), DSQ_OK);
    ck_assert_int_eq(c.page1_changed, 1);
    ck_assert_uint_eq(c.page_count, 12);
    dsq_changes_cleanup(&c);
    ck_assert_int_eq(dsq_db_changes(db, 0, 1, &c, NULL), DSQ_OK);
    ck_assert_uint_eq(c.n_ranges, 1);
    ck_assert_uint_eq(c.ranges[0].count, 10);
    dsq_changes_cleanup(&c);
    dsq_db_close(db);
    dsq_store_free(st);
    dsq_config_cleanup(&cfg);
}
END_TEST

START_TEST(test_drop_unchanged)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    struct dsq_txn *t;
    struct dsq_commit_info ci;
    uint8_t page[4096];
    size_t left = 99;
    dsq_test_config(&cfg, 50);
    dsq_test_open(tmp, &cfg, &st, &db);
    commit_pages(db, 1, 4, 7);
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    /* every page written back unchanged: nothing to commit */
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    memset(page, 7, sizeof(page));
    for (uint32_t p = 1; p <= 4; p++)
        ck_assert_int_eq(dsq_txn_write_page(t, p, page, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_drop_unchanged(t, &left, NULL), DSQ_OK);
    ck_assert_uint_eq(left, 0);
    ck_assert_int_eq(dsq_txn_commit(t, &ci, NULL), DSQ_OK);
    ck_assert_int_eq(ci.noop, 1);
    dsq_txn_free(t);
    /* one page really changed, one rewritten, one appended */
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_write_page(t, 2, page, NULL), DSQ_OK);
    memset(page, 9, sizeof(page));
    ck_assert_int_eq(dsq_txn_write_page(t, 3, page, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_write_page(t, 5, page, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_drop_unchanged(t, &left, NULL), DSQ_OK);
    ck_assert_uint_eq(left, 2);
    ck_assert_int_eq(dsq_txn_read_page(t, 2, page, NULL), DSQ_OK);
    ck_assert_uint_eq(page[0], 7);
    ck_assert_int_eq(dsq_txn_read_page(t, 3, page, NULL), DSQ_OK);
    ck_assert_uint_eq(page[0], 9);
    ck_assert_int_eq(dsq_txn_commit(t, &ci, NULL), DSQ_OK);
    ck_assert_int_eq(ci.noop, 0);
    dsq_txn_free(t);
    dsq_snap_release(s);
    struct dsq_changes c;
    ck_assert_int_eq(dsq_db_changes(db, 1, 2, &c, NULL), DSQ_OK);
    ck_assert_uint_eq(c.n_ranges, 2); /* 3 and 5; not 2 */
    ck_assert_uint_eq(c.ranges[0].first, 3);
    ck_assert_uint_eq(c.ranges[0].count, 1);
    ck_assert_uint_eq(c.ranges[1].first, 5);
    ck_assert_uint_eq(c.page_count, 5);
    dsq_changes_cleanup(&c);
    dsq_db_close(db);
    dsq_store_free(st);
    dsq_config_cleanup(&cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dbfuse");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_changes);
    tcase_add_test(tc, test_drop_unchanged);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
