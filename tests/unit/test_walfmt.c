/*
 * test_walfmt.c - the WAL and wal-index formats (fuse/walfmt.c) against
 * files the real SQLite library writes: a WAL database with many
 * transactions (more frames than the first wal-index block holds) is
 * left open, its -wal and -shm read, and every header, frame checksum
 * and hash table is decoded, checked and rebuilt byte for byte.
 */
#include "testutil.h"
#include "walfmt.h"

#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tmp;

static void setup(void)
{
    tmp = dsq_test_tmpdir("walfmt");
}

static void teardown(void)
{
    dsq_test_rmrf(tmp);
    free(tmp);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ? err : "?");
}

START_TEST(test_real_wal_and_shm)
{
    char path[4096], wal[4200], shm[4200];
    snprintf(path, sizeof(path), "%s/w.db", tmp);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    snprintf(shm, sizeof(shm), "%s-shm", path);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    exec(db, "PRAGMA page_size=512; PRAGMA journal_mode=WAL; "
             "PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x)");
    /* many small transactions, then one big one: more than 4062 frames */
    for (int i = 0; i < 40; i++)
        exec(db, "INSERT INTO t VALUES (randomblob(300))");
    exec(db, "BEGIN; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 "
             "FROM c WHERE i<6000) INSERT INTO t SELECT randomblob(300) FROM "
             "c; COMMIT");
    exec(db, "UPDATE t SET x = randomblob(300) WHERE rowid % 97 = 0");

    size_t nw = 0, ns = 0;
    uint8_t *w = slurp(wal, &nw), *s = slurp(shm, &ns);

    /* WAL header: decodes, re-encodes to the same bytes */
    struct dsq_walhdr h;
    ck_assert_int_eq(dsq_wal_hdr_decode(w, &h), 0);
    ck_assert_uint_eq(h.page_size, 512);
    uint8_t enc[32];
    struct dsq_walhdr h2 = h;
    dsq_wal_hdr_encode(&h2, enc);
    ck_assert_mem_eq(enc, w, 32);
    uint8_t bad[32];
    memcpy(bad, w, 32);
    bad[13] ^= 1;
    ck_assert_int_eq(dsq_wal_hdr_decode(bad, &h2), -1);

    /* wal-index header */
    struct dsq_shmhdr sh;
    uint32_t nbackfill = 99;
    ck_assert_int_eq(dsq_shm_hdr_read(s, &sh, &nbackfill), 0);
    ck_assert_uint_eq(nbackfill, 0);
    ck_assert_mem_eq(sh.salt, h.salt, 8);
    uint8_t shenc[48];
    struct dsq_shmhdr sh2 = sh;
    dsq_shm_hdr_encode(&sh2, shenc);
    ck_assert_mem_eq(shenc, s, 48);

    /* every frame: checksum chain, re-encoded header equal */
    uint32_t ck[2] = {h.cksum[0], h.cksum[1]},
             ck2[2] = {h.cksum[0], h.cksum[1]};
    uint32_t nframes = (uint32_t)((nw - 32) / (24 + 512)), last_commit = 0;
    uint32_t *pg = calloc(nframes + 1, sizeof(*pg));
    uint32_t commit_size = 0, commit_ck[2] = {0, 0};
    for (uint32_t f = 1; f <= nframes; f++) {
        const uint8_t *fh = w + dsq_wal_frame_off(f, 512);
        ck_assert_msg(dsq_wal_frame_check(&h, fh, fh + 24, ck), "frame %u", f);
        struct dsq_walframe fr;
        dsq_wal_frame_decode(fh, &fr);
        uint8_t fenc[24];
        dsq_wal_frame_encode(&h, fr.pgno, fr.db_size, fh + 24, ck2, fenc);
        ck_assert_mem_eq(fenc, fh, 24);
        pg[f] = fr.pgno;
        if (fr.db_size) {
            last_commit = f;
            commit_size = fr.db_size;
            commit_ck[0] = ck[0];
            commit_ck[1] = ck[1];
        }
    }
    ck_assert_uint_gt(last_commit, 4062 + 100); /* into block 1 */
    ck_assert_uint_eq(sh.mx_frame, last_commit);
    ck_assert_uint_eq(sh.n_page, commit_size);
    ck_assert_uint_eq(sh.frame_cksum[0], commit_ck[0]);
    ck_assert_uint_eq(sh.frame_cksum[1], commit_ck[1]);

    /* a damaged frame breaks the chain */
    uint32_t c3[2] = {h.cksum[0], h.cksum[1]};
    uint8_t *copy = malloc(24 + 512);
    memcpy(copy, w + dsq_wal_frame_off(1, 512), 24 + 512);
    copy[24 + 100] ^= 0x40;
    ck_assert_int_eq(dsq_wal_frame_check(&h, copy, copy + 24, c3), 0);
    free(copy);

    /* the hash tables, rebuilt from the frames, equal SQLite's */
    unsigned blocks = dsq_shm_frame_block(last_commit) + 1;
    ck_assert_uint_ge(ns, (size_t)blocks * DSQ_SHM_BLOCK);
    for (unsigned b = 0; b < blocks; b++) {
        uint8_t *blk = calloc(1, DSQ_SHM_BLOCK);
        memcpy(blk, s + (size_t)b * DSQ_SHM_BLOCK, b == 0 ? 136 : 0);
        uint32_t first = dsq_shm_block_zero(b) + 1;
        for (uint32_t f = first;
             f <= last_commit && dsq_shm_frame_block(f) == b; f++)
            ck_assert_int_eq(dsq_shm_index_append(blk, b, f, pg[f]), 0);
        ck_assert_msg(
            memcmp(blk, s + (size_t)b * DSQ_SHM_BLOCK, DSQ_SHM_BLOCK) == 0,
            "wal-index block %u differs from SQLite's", b);
        /* lookups: the newest frame of a page */
        for (uint32_t f = first;
             f <= last_commit && dsq_shm_frame_block(f) == b; f += 37) {
            uint32_t newest = 0;
            for (uint32_t g = first;
                 g <= last_commit && dsq_shm_frame_block(g) == b; g++)
                if (pg[g] == pg[f])
                    newest = g;
            ck_assert_uint_eq(dsq_shm_index_find(blk, b, last_commit, pg[f]),
                              newest);
        }
        free(blk);
    }
    /* entries of abandoned frames are dropped when a frame is reused */
    uint8_t *blk = calloc(1, DSQ_SHM_BLOCK);
    for (uint32_t f = 1; f <= 10; f++)
        ck_assert_int_eq(dsq_shm_index_append(blk, 0, f, 1000 + f), 0);
    ck_assert_int_eq(dsq_shm_index_append(blk, 0, 6, 7), 0); /* 6..10 gone */
    ck_assert_uint_eq(dsq_shm_index_find(blk, 0, 10, 1008), 0);
    ck_assert_uint_eq(dsq_shm_index_find(blk, 0, 10, 1005), 5);
    ck_assert_uint_eq(dsq_shm_index_find(blk, 0, 10, 7), 6);
    free(blk);

    free(pg);
    free(w);
    free(s);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_big_endian_checksums)
{
    /* a WAL written on a big-endian host: magic ...83 */
    struct dsq_walhdr h = {.magic = DSQ_WAL_MAGIC | 1u,
                           .version = DSQ_WAL_VERSION,
                           .page_size = 4096,
                           .ckpt_seq = 3,
                           .salt = {1, 2, 3, 4, 5, 6, 7, 8}};
    uint8_t b[32];
    dsq_wal_hdr_encode(&h, b);
    struct dsq_walhdr d;
    ck_assert_int_eq(dsq_wal_hdr_decode(b, &d), 0);
    ck_assert_int_ne(dsq_wal_native(&d), dsq_wal_native(&(struct dsq_walhdr){
                                             .magic = DSQ_WAL_MAGIC}));
    uint8_t *page = calloc(1, 4096), fh[24];
    page[7] = 9;
    uint32_t ck[2] = {d.cksum[0], d.cksum[1]},
             ck2[2] = {d.cksum[0], d.cksum[1]};
    dsq_wal_frame_encode(&d, 5, 5, page, ck, fh);
    ck_assert_int_eq(dsq_wal_frame_check(&d, fh, page, ck2), 1);
    ck_assert_uint_eq(ck2[0], ck[0]);
    free(page);
    b[8] = 0x7f; /* page size not a power of two */
    ck_assert_int_eq(dsq_wal_hdr_decode(b, &d), -1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("walfmt");
    TCase *tc = tcase_create("walfmt");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_real_wal_and_shm);
    tcase_add_test(tc, test_big_endian_checksums);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
