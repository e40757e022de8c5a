/*
 * test_readahead.c - read-ahead of sequential bulk reads (src/db_read.c):
 * a handle read page after page in FUSE-sized pieces fetches the pages
 * ahead of the reader in large ranges (far fewer store GETs than pieces),
 * every page read is still the right one, a reader that jumps about
 * fetches nothing ahead, a new version starts the window again, and
 * closing a handle while a read-ahead runs is safe (ASan run).
 */
#include "db.h"
#include "enginetest.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PS 4096u
#define PAGES 4096u /* 16 MiB */
#define PIECE 32u   /* pages per read, as a FUSE read of 128 KiB */

static char *tmp;
static char store_dir[4096];

static void page_of(uint32_t pgno, uint64_t version, uint8_t *p)
{
    /* distinct, incompressible enough that pages are stored raw */
    uint64_t x = pgno * 0x9e3779b97f4a7c15ull + version;
    for (uint32_t i = 0; i < PS; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
}

static void setup(void)
{
    tmp = dsq_test_tmpdir("readahead");
    snprintf(store_dir, sizeof(store_dir), "%s/store", tmp);
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    struct dsq_txn *t;
    uint8_t page[PS];
    dsq_test_config(&cfg, 50);
    dsq_test_open(store_dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, DSQ_TXN_STREAM, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_set_page_size(t, PS, NULL), DSQ_OK);
    for (uint32_t p = 1; p <= PAGES; p++) {
        page_of(p, 1, page);
        ck_assert_int_eq(dsq_txn_write_page(t, p, page, NULL), DSQ_OK);
    }
    ck_assert_int_eq(dsq_txn_commit(t, NULL, NULL), DSQ_OK);
    dsq_txn_free(t);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
}

static void teardown(void)
{
    dsq_test_rmrf(tmp);
    free(tmp);
}

/* Read pieces in the given order; check every page; return store GETs. */
static uint64_t read_pieces(struct dsq_db *db, const uint32_t *order, size_t n,
                            uint64_t version, uint64_t *ahead)
{
    struct dsq_snap *s;
    static uint8_t buf[PIECE * PS];
    uint8_t want[PS];
    struct dsq_db_stats before, after;
    dsq_db_get_stats(db, &before);
    ck_assert_int_eq(dsq_db_snapshot(db, version, &s, NULL), DSQ_OK);
    for (size_t i = 0; i < n; i++) {
        uint32_t first = order[i] * PIECE + 1;
        ck_assert_int_eq(dsq_snap_read_pages(s, first, PIECE, buf, NULL),
                         DSQ_OK);
        for (uint32_t k = 0; k < PIECE; k++) {
            page_of(first + k, 1, want);
            ck_assert_msg(memcmp(buf + (size_t)k * PS, want, PS) == 0,
                          "page %u is not its own", first + k);
        }
    }
    dsq_snap_release(s);
    dsq_db_get_stats(db, &after);
    *ahead = after.readahead_pages - before.readahead_pages;
    return after.store_gets - before.store_gets;
}

START_TEST(test_sequential_reads_fetch_ahead)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    uint32_t order[PAGES / PIECE];
    const size_t n = PAGES / PIECE;
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    dsq_test_config(&cfg, 50);
    dsq_test_open(store_dir, &cfg, &st, &db);
    uint64_t ahead = 0;
    uint64_t gets = read_pieces(db, order, n, 1, &ahead);
    /* 128 pieces; without read-ahead one GET each (plus the manifest's
       and the chunk's) */
    ck_assert_uint_gt(ahead, PAGES / 2);
    ck_assert_uint_lt(gets, n / 2);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_random_reads_fetch_nothing_ahead)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    const size_t n = PAGES / PIECE;
    uint32_t order[PAGES / PIECE];
    /* a stride that never makes two pieces follow each other */
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)((i * 37) % n);
    dsq_test_config(&cfg, 50);
    dsq_test_open(store_dir, &cfg, &st, &db);
    uint64_t ahead = 1;
    uint64_t gets = read_pieces(db, order, n, 1, &ahead);
    ck_assert_uint_eq(ahead, 0);
    ck_assert_uint_ge(gets, n);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_close_while_reading_ahead)
{
    for (int round = 0; round < 20; round++) {
        struct dsq_config cfg;
        struct dsq_store *st;
        struct dsq_db *db;
        uint32_t order[4] = {0, 1, 2, 3};
        dsq_test_config(&cfg, 50);
        dsq_test_open(store_dir, &cfg, &st, &db);
        uint64_t ahead = 0;
        read_pieces(db, order, 4, 1, &ahead);
        dsq_db_close(db); /* waits for the read-ahead thread */
        dsq_store_free(st);
    }
}
END_TEST

static Suite *readahead_suite(void)
{
    Suite *s = suite_create("readahead");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sequential_reads_fetch_ahead);
    tcase_add_test(tc, test_random_reads_fetch_nothing_ahead);
    tcase_add_test(tc, test_close_while_reading_ahead);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(readahead_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
