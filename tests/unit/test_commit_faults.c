/*
 * test_commit_faults.c - torture test of the commit path (docs/commit.md,
 * invariants C1-C5): a commit workload runs once to count store calls,
 * then again for every call index N and every fault mode, with call N
 * failing (not performed; performed but reported failed; permanent).
 * After each run, on the real store underneath:
 *   - versions are contiguous and verify finds every referenced object
 *     intact (no manifest references a missing segment);
 *   - every acknowledged commit is present with its pages;
 *   - nothing unacknowledged is visible (versions == acknowledged commits).
 */
#include "db.h"
#include "enginetest.h"
#include "fault_store.h"
#include "store.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K 10 /* commits in the workload */
#define PS 1024u
#define BIG                                                                    \
    300 /* commit 4 writes this many incompressible pages:                     \
           several segments, uploaded in parallel */

struct ack {
    int ok;
    uint64_t version;
};

/*
 * Commit k writes pages (k, k+1, 2k) with byte 16*k+p%16 at both ends;
 * k=1 makes 8; k=4 writes pages 1..BIG with random bytes in between.
 */
static void commit_pages(int k, uint32_t *pages, int *n)
{
    if (k == 4) {
        for (int i = 0; i < BIG; i++)
            pages[i] = (uint32_t)i + 1;
        *n = BIG;
        return;
    }
    if (k == 1) {
        for (int i = 0; i < 8; i++)
            pages[i] = (uint32_t)i + 1;
        *n = 8;
        return;
    }
    pages[0] = (uint32_t)k;
    pages[1] = (uint32_t)k + 1;
    pages[2] = (uint32_t)(2 * k);
    *n = 3;
}

static uint8_t byte_for(int k, uint32_t p)
{
    return (uint8_t)(16 * k + (int)(p % 16));
}

/*
 * Every other commit uses a fresh handle (as a new process would: root.json
 * hint, listing, manifest fetch); the others reuse one (its known version,
 * its cached manifest) and check freshness first, as the mount does.
 */
static void run_workload(struct dsq_store *st, const struct dsq_config *cfg,
                         struct ack *acks)
{
    uint8_t page[PS];
    struct dsq_db *keep = NULL;
    if (dsq_db_open(st, "db", cfg, &keep, NULL) != DSQ_OK)
        return;
    for (int k = 1; k <= K; k++) {
        struct dsq_db *fresh = NULL;
        if (k % 2 == 0 && dsq_db_open(st, "db", cfg, &fresh, NULL) != DSQ_OK)
            continue;
        struct dsq_db *db = fresh ? fresh : keep;
        struct dsq_snap *s = NULL;
        struct dsq_txn *t = NULL;
        struct dsq_commit_info ci;
        struct dsq_err e;
        uint32_t pages[BIG];
        int n;
        acks[k].ok = 0;
        if (!fresh) {
            /* the reused handle checks freshness as a mount would */
            struct dsq_fresh f;
            if (dsq_db_fresh(db, NULL, 0, &f, &e) != DSQ_OK)
                goto next;
        }
        if (dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, &e) != DSQ_OK)
            goto next;
        if (dsq_txn_begin(s, 0, &t, &e) != DSQ_OK)
            goto next;
        if (dsq_snap_page_count(s) == 0 &&
            dsq_txn_set_page_size(t, PS, &e) != DSQ_OK)
            goto next;
        commit_pages(k, pages, &n);
        for (int i = 0; i < n; i++) {
            memset(page, byte_for(k, pages[i]), PS);
            if (n == BIG) {
                uint32_t x = 2463534242u + pages[i];
                for (uint32_t b = 1; b + 1 < PS; b++) {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    page[b] = (uint8_t)x;
                }
            }
            if (dsq_txn_write_page(t, pages[i], page, &e) != DSQ_OK)
                goto next;
        }
        if (dsq_txn_commit(t, &ci, &e) == DSQ_OK) {
            acks[k].ok = 1;
            acks[k].version = ci.version;
        }
    next:
        dsq_txn_free(t);
        dsq_snap_release(s);
        dsq_db_close(fresh);
    }
    dsq_db_close(keep);
}

/* Check the invariants on the real store; returns a message or NULL. */
static const char *check_invariants(struct dsq_store *inner,
                                    const struct ack *acks)
{
    static char msg[512];
    struct dsq_config cfg;
    struct dsq_db *db;
    struct dsq_err e;
    uint64_t latest = 0;
    int acked = 0;
    dsq_test_config(&cfg, 3);
    dsq_err_clear(&e);
    if (dsq_db_open(inner, "db", &cfg, &db, &e) != DSQ_OK)
        return "open";
    for (int k = 1; k <= K; k++)
        acked += acks[k].ok;
    const char *bad = NULL;
    if (dsq_db_latest(db, &latest, &e) != DSQ_OK) {
        bad = "latest failed";
        goto out;
    }
    if (latest != (uint64_t)acked) {
        snprintf(msg, sizeof(msg), "%llu versions but %d acknowledged commits",
                 (unsigned long long)latest, acked);
        bad = msg;
        goto out;
    }
    struct dsq_verify_report rep;
    dsq_rc rc = dsq_db_verify(db, &rep, NULL, NULL, NULL, &e);
    if (rc != DSQ_OK) {
        snprintf(msg, sizeof(msg), "verify: %s", dsq_err_text(&e, rc));
        bad = msg;
        goto out;
    }
    /* each acknowledged commit's pages are in its version */
    for (int k = 1; k <= K; k++) {
        if (!acks[k].ok)
            continue;
        struct dsq_snap *s;
        uint8_t page[PS];
        uint32_t pages[BIG];
        int n;
        if (dsq_db_snapshot(db, acks[k].version, &s, &e) != DSQ_OK) {
            snprintf(msg, sizeof(msg), "acknowledged version %llu missing",
                     (unsigned long long)acks[k].version);
            bad = msg;
            goto out;
        }
        commit_pages(k, pages, &n);
        for (int i = 0; i < n && !bad; i++) {
            if (dsq_snap_read_page(s, pages[i], page, &e) != DSQ_OK ||
                page[0] != byte_for(k, pages[i]) ||
                page[PS - 1] != byte_for(k, pages[i])) {
                snprintf(msg, sizeof(msg),
                         "commit %d (version %llu): page %u wrong", k,
                         (unsigned long long)acks[k].version, pages[i]);
                bad = msg;
            }
        }
        dsq_snap_release(s);
        if (bad)
            goto out;
    }
out:
    dsq_db_close(db);
    return bad;
}

static void torture(enum dsq_fault_mode mode)
{
    char *dir = dsq_test_tmpdir("faults");
    struct dsq_config cfg;
    struct dsq_err e;
    struct ack acks[K + 1];
    dsq_test_config(&cfg, 3); /* checkpoints inside the workload */
    cfg.compress = 1;
    cfg.segment_max_bytes = 65536; /* commit 4 makes five segments */

    /* clean run: count the calls */
    struct dsq_store *inner, *fs;
    char sub[4096];
    snprintf(sub, sizeof(sub), "%s/clean", dir);
    ck_assert_int_eq(dsq_store_file_open(sub, &inner, &e), DSQ_OK);
    ck_assert_int_eq(dsq_fault_store_new(inner, 0, &fs), DSQ_OK);
    run_workload(fs, &cfg, acks);
    for (int k = 1; k <= K; k++)
        ck_assert_msg(acks[k].ok, "clean run: commit %d failed", k);
    uint64_t calls = dsq_fault_store_calls(fs);
    ck_assert_ptr_null(check_invariants(inner, acks));
    dsq_store_free(fs);
    dsq_store_free(inner);
    ck_assert_uint_gt(calls, 20);
    fprintf(stderr,
            "commit_faults: mode %d, %llu store calls, each failed "
            "in turn\n",
            (int)mode, (unsigned long long)calls);

    int failures_seen = 0;
    for (uint64_t n = 1; n <= calls + 2; n++) {
        snprintf(sub, sizeof(sub), "%s/run%llu", dir, (unsigned long long)n);
        ck_assert_int_eq(dsq_store_file_open(sub, &inner, &e), DSQ_OK);
        ck_assert_int_eq(dsq_fault_store_new(inner, 0, &fs), DSQ_OK);
        dsq_fault_store_fail_at(fs, n, mode);
        run_workload(fs, &cfg, acks);
        dsq_store_free(fs);
        for (int k = 1; k <= K; k++)
            failures_seen += !acks[k].ok;
        const char *bad = check_invariants(inner, acks);
        ck_assert_msg(bad == NULL, "mode %d, call %llu failed: %s", (int)mode,
                      (unsigned long long)n, bad);
        dsq_store_free(inner);
        dsq_test_rmrf(sub);
    }
    /* transient faults are absorbed by retries; permanent ones fail a
       commit, and the test must have seen that happen */
    if (mode == DSQ_FAULT_PERMANENT)
        ck_assert_int_gt(failures_seen, 0);
    else
        ck_assert_int_eq(failures_seen, 0);
    dsq_test_rmrf(dir);
    free(dir);
}

START_TEST(test_fault_not_performed)
{
    torture(DSQ_FAULT_ERROR);
}
END_TEST

START_TEST(test_fault_performed_reply_lost)
{
    torture(DSQ_FAULT_LOST_REPLY);
}
END_TEST

START_TEST(test_fault_permanent)
{
    torture(DSQ_FAULT_PERMANENT);
}
END_TEST

START_TEST(test_random_faults_ten_percent)
{
    /* 10 % of all calls fail (either way) over a longer run: no error
       reaches the caller beyond retries, and the invariants hold */
    char *dir = dsq_test_tmpdir("faults10");
    struct dsq_config cfg;
    struct dsq_store *inner, *fs;
    struct ack acks[K + 1];
    dsq_test_config(&cfg, 3);
    ck_assert_int_eq(dsq_store_file_open(dir, &inner, NULL), DSQ_OK);
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(dsq_fault_store_new(inner, 0, &fs), DSQ_OK);
        dsq_fault_store_fail_random(fs, 0.10, 1234 + (uint64_t)round,
                                    round ? DSQ_FAULT_LOST_REPLY
                                          : DSQ_FAULT_ERROR);
        if (round == 1) {
            char cmd[4200];
            snprintf(cmd, sizeof(cmd), "rm -rf %s/db", dir);
            ck_assert_int_eq(system(cmd), 0);
        }
        run_workload(fs, &cfg, acks);
        ck_assert_uint_gt(dsq_fault_store_faults(fs), 0);
        for (int k = 1; k <= K; k++)
            ck_assert_msg(acks[k].ok, "round %d: commit %d failed", round, k);
        dsq_store_free(fs);
        const char *bad = check_invariants(inner, acks);
        ck_assert_msg(bad == NULL, "%s", bad);
    }
    dsq_store_free(inner);
    dsq_test_rmrf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("commit_faults");
    TCase *tc = tcase_create("torture");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_fault_not_performed);
    tcase_add_test(tc, test_fault_performed_reply_lost);
    tcase_add_test(tc, test_fault_permanent);
    tcase_add_test(tc, test_random_faults_ten_percent);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
