/*
 * test_engine_checks.c - what verify and the reader check beyond the
 * codecs (docs/format.md, "Cross-checks"): a manifest against its own
 * page 1, against its parent (checkpoint chain, page count), its write
 * set, and its transaction against the segments it created.  Each case
 * damages a real store the way a bad writer or a hand edit would and
 * expects the problem named; legitimate chains (a VACUUM that shrinks the
 * file, committed as its pages then its truncation) verify clean.
 */
#include "db.h"
#include "enginetest.h"
#include "manifest.h"
#include "sqlitefmt.h"
#include "store.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tmp;
static char store_dir[4096];

static void setup(void)
{
    tmp = dsq_test_tmpdir("checks");
    snprintf(store_dir, sizeof(store_dir), "%s/store", tmp);
}

static void teardown(void)
{
    dsq_test_rmrf(tmp);
    free(tmp);
}

/* Problems verify reports, collected in one buffer. */
static char problems[16384];
static void on_problem(const char *what, void *arg)
{
    (void)arg;
    size_t l = strlen(problems);
    snprintf(problems + l, sizeof(problems) - l, "%s\n", what);
}

/* Verify a fresh handle's view of the store; returns the problem count. */
static uint64_t verify_store(void)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_verify_report rep;
    dsq_test_config(&cfg, 3);
    dsq_test_open(store_dir, &cfg, &st, &db);
    problems[0] = 0;
    dsq_rc rc = dsq_db_verify(db, &rep, on_problem, NULL, NULL, NULL);
    ck_assert(rc == DSQ_OK || rc == DSQ_ECORRUPT);
    ck_assert_int_eq(rc == DSQ_ECORRUPT, rep.problems > 0);
    dsq_db_close(db);
    dsq_store_free(st);
    return rep.problems;
}

/* The newest version opened by a fresh handle: its rc, *pages. */
static dsq_rc open_latest(uint32_t *pages, char *msg, size_t msgsz)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s = NULL;
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_test_config(&cfg, 3);
    dsq_test_open(store_dir, &cfg, &st, &db);
    dsq_rc rc = dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, &e);
    if (rc == DSQ_OK) {
        *pages = dsq_snap_page_count(s);
        dsq_snap_release(s);
    }
    snprintf(msg, msgsz, "%s", dsq_err_text(&e, rc));
    dsq_db_close(db);
    dsq_store_free(st);
    return rc;
}

static char *manifest_path(uint64_t v)
{
    static char p[4096 + 64];
    char rel[64];
    dsq_manifest_key(v, rel);
    snprintf(p, sizeof(p), "%s/db/%s", store_dir, rel);
    return p;
}

/* Replace the first "from" in manifest v's text by "to" (hand edit). */
static void edit_manifest(uint64_t v, const char *from, const char *to)
{
    size_t len;
    char *text = (char *)dsq_test_read_file(manifest_path(v), &len);
    ck_assert_ptr_nonnull(text);
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "'%s' not in manifest %llu", from,
                  (unsigned long long)v);
    size_t fl = strlen(from), tl = strlen(to);
    char *out = malloc(len - fl + tl + 1);
    memcpy(out, text, (size_t)(at - text));
    memcpy(out + (at - text), to, tl);
    memcpy(out + (at - text) + tl, at + fl, len - (size_t)(at - text) - fl);
    dsq_test_write_file(manifest_path(v), out, len - fl + tl);
    free(out);
    free(text);
}

/* The value of integer field name in manifest v. */
static long long manifest_int(uint64_t v, const char *name)
{
    size_t len;
    char *text = (char *)dsq_test_read_file(manifest_path(v), &len);
    char key[128];
    snprintf(key, sizeof(key), "\"%s\":", name);
    char *at = strstr(text, key);
    ck_assert_ptr_nonnull(at);
    long long n = atoll(at + strlen(key));
    free(text);
    return n;
}

/* The 32-hex string field name of manifest v (static buffer). */
static const char *manifest_str(uint64_t v, const char *name)
{
    static char out[64];
    size_t len;
    char *text = (char *)dsq_test_read_file(manifest_path(v), &len);
    char key[128];
    snprintf(key, sizeof(key), "\"%s\":\"", name);
    char *at = strstr(text, key);
    ck_assert_ptr_nonnull(at);
    snprintf(out, 33, "%s", at + strlen(key));
    free(text);
    return out;
}

/*
 * A real SQLite database, committed version by version: 1 creates and
 * fills a table, 2 grows it, 3 updates in place, 4 grows again (with a
 * checkpoint every 3 versions).  Returns the newest version.
 */
#define ROWS30                                                                 \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "          \
    "WHERE x < 30) INSERT INTO t(b) SELECT randomblob(600) FROM c;"

static uint64_t build_chain(void)
{
    char sq[4096 + 16];
    snprintf(sq, sizeof(sq), "%s/app.db", tmp);
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    uint64_t v = 0;
    dsq_test_config(&cfg, 3);
    dsq_test_open(store_dir, &cfg, &st, &db);
    const char *steps[] = {
        "PRAGMA page_size=4096; CREATE TABLE t(id INTEGER PRIMARY KEY, "
        "b);" ROWS30,
        ROWS30,
        "UPDATE t SET b = randomblob(600) WHERE id = 3;",
        ROWS30,
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        dsq_test_sql(sq, steps[i]);
        ck_assert_int_eq(dsq_test_commit_file(db, sq, &v, NULL), DSQ_OK);
    }
    dsq_db_close(db);
    dsq_store_free(st);
    return v;
}

START_TEST(test_clean_chain_verifies)
{
    uint64_t v = build_chain();
    ck_assert_uint_eq(v, 4);
    ck_assert_uint_eq(verify_store(), 0);
    uint32_t pages = 0;
    char msg[512];
    ck_assert_int_eq(open_latest(&pages, msg, sizeof(msg)), DSQ_OK);
    ck_assert_uint_eq(pages, (uint32_t)manifest_int(4, "page_count"));
}
END_TEST

/*
 * What the mount commits for a VACUUM that shrinks the file: the new
 * pages at the journal's commit point with the old page count (SQLite
 * truncates only after it), then the truncation: page_count above page
 * 1's size is legitimate, it reads and verifies clean.
 */
START_TEST(test_vacuum_shrink_versions_are_clean)
{
    char sq[4096 + 16];
    snprintf(sq, sizeof(sq), "%s/app.db", tmp);
    uint64_t v = build_chain();
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    struct dsq_txn *t;
    dsq_test_config(&cfg, 3);
    dsq_test_open(store_dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, v, &s, NULL), DSQ_OK);
    uint32_t old_count = dsq_snap_page_count(s);
    dsq_test_sql(sq, "DELETE FROM t WHERE id > 5; VACUUM;");
    t = dsq_test_txn_from_file(s, sq);
    ck_assert_ptr_nonnull(t);
    uint32_t new_count = dsq_txn_page_count(t);
    ck_assert_uint_lt(new_count, old_count);
    /* first the pages, at the old size */
    ck_assert_int_eq(dsq_txn_set_page_count(t, old_count, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_commit(t, NULL, NULL), DSQ_OK);
    dsq_txn_free(t);
    dsq_snap_release(s);
    /* then the truncation */
    ck_assert_int_eq(dsq_db_snapshot(db, v + 1, &s, NULL), DSQ_OK);
    ck_assert_uint_eq(dsq_snap_page_count(s), old_count);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_set_page_count(t, new_count, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_commit(t, NULL, NULL), DSQ_OK);
    dsq_txn_free(t);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
    ck_assert_uint_eq(verify_store(), 0);
}
END_TEST

/* The defect: page_count raised by 1000 in the newest manifest. */
START_TEST(test_page_count_raised_is_found)
{
    uint64_t v = build_chain();
    long long n = manifest_int(v, "page_count");
    char from[64], to[64];
    snprintf(from, sizeof(from), "\"page_count\":%lld,", n);
    snprintf(to, sizeof(to), "\"page_count\":%lld,", n + 1000);
    edit_manifest(v, from, to);
    ck_assert_uint_ge(verify_store(), 1);
    ck_assert_ptr_nonnull(strstr(problems, "page_count grew"));
    ck_assert_ptr_nonnull(strstr(problems, "version 4"));
}
END_TEST

/* A manifest whose page 1 says the database is larger than it stores:
   the reader refuses the version, naming it, and verify reports it. */
START_TEST(test_image_larger_than_page_count_is_refused)
{
    uint64_t v = build_chain();
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    struct dsq_txn *t;
    uint8_t page[4096];
    dsq_test_config(&cfg, 3);
    dsq_test_open(store_dir, &cfg, &st, &db);
    ck_assert_int_eq(dsq_db_snapshot(db, v, &s, NULL), DSQ_OK);
    uint32_t n = dsq_snap_page_count(s);
    ck_assert_int_eq(dsq_snap_read_page(s, 1, page, NULL), DSQ_OK);
    ck_assert_uint_eq(dsq_sqlite_header_pages(page, sizeof(page)), n);
    /* a writer that commits page 1 saying n + 5 pages, storing n */
    dsq_put_be32(page + DSQ_SQLITE_HDR_PAGE_COUNT, n + 5);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_write_page(t, 1, page, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_commit(t, NULL, NULL), DSQ_OK);
    dsq_txn_free(t);
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);

    uint32_t pages = 0;
    char msg[512];
    ck_assert_int_eq(open_latest(&pages, msg, sizeof(msg)), DSQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(msg, "version 5"));
    ck_assert_ptr_nonnull(strstr(msg, "page 1 says"));
    ck_assert_uint_ge(verify_store(), 1);
    ck_assert_ptr_nonnull(strstr(problems, "page 1 says"));
}
END_TEST

/* Chain links: a version that names another checkpoint than its parent
   builds on, and one whose page count changed without a page-1 change. */
START_TEST(test_chain_links_are_checked)
{
    uint64_t v = build_chain();
    /* version 3 is a checkpoint (interval 3); 4 builds on it and grows */
    ck_assert_int_gt(manifest_int(4, "page_count"),
                     manifest_int(3, "page_count"));
    edit_manifest(v, "\"page1\":\"changed\"", "\"page1\":\"counters\"");
    ck_assert_uint_ge(verify_store(), 1);
    ck_assert_ptr_nonnull(strstr(problems, "does not say page 1 changed"));
    edit_manifest(v, "\"page1\":\"counters\"", "\"page1\":\"changed\"");
    ck_assert_uint_eq(verify_store(), 0);
    /* version 4 says it builds on checkpoint 2; its parent made 3 */
    edit_manifest(v, "\"checkpoint\":{\"version\":3,",
                  "\"checkpoint\":{\"version\":2,");
    ck_assert_uint_ge(verify_store(), 1);
    ck_assert_ptr_nonnull(strstr(problems, "builds on checkpoint 2"));
}
END_TEST

/* Writer and transaction fields: a manifest copied from another version
   (the same transaction twice), and a write set the overlay does not
   hold or that says page 1 was not written. */
START_TEST(test_txn_and_write_set_are_checked)
{
    uint64_t v = build_chain();
    (void)v;
    char t1[64], t2[64];
    snprintf(t1, sizeof(t1), "\"txn_id\":\"%s\"", manifest_str(1, "txn_id"));
    snprintf(t2, sizeof(t2), "\"txn_id\":\"%s\"", manifest_str(2, "txn_id"));
    /* a version that created a segment is also caught by the segment's
       own transaction id; one that carries its pages inline (format 2)
       has none */
    size_t mlen;
    char *mtext = (char *)dsq_test_read_file(manifest_path(2), &mlen);
    ck_assert_ptr_nonnull(mtext);
    int made_segment = strstr(mtext, "\"created\":[]") == NULL;
    free(mtext);
    edit_manifest(2, t2, t1);
    ck_assert_uint_ge(verify_store(), made_segment ? 2 : 1);
    ck_assert_ptr_nonnull(strstr(problems, "recorded by more than one"));
    if (made_segment)
        ck_assert_ptr_nonnull(strstr(problems, "says it was written by"));
    edit_manifest(2, t1, t2);
    ck_assert_uint_eq(verify_store(), 0);
    /* version 2 (no checkpoint) wrote page 1: say it did not */
    edit_manifest(2, "\"page1\":\"changed\"", "\"page1\":\"none\"");
    ck_assert_uint_ge(verify_store(), 1);
    ck_assert_ptr_nonnull(strstr(problems, "holds page 1 but"));
    edit_manifest(2, "\"page1\":\"none\"", "\"page1\":\"changed\"");
    /* a write set naming a page past the end */
    edit_manifest(2, "]],\"freed_set\"", "],[900,1]],\"freed_set\"");
    ck_assert_uint_ge(verify_store(), 1);
    ck_assert_ptr_nonnull(strstr(problems, "past its page_count"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_checks");
    TCase *tc = tcase_create("all");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_clean_chain_verifies);
    tcase_add_test(tc, test_vacuum_shrink_versions_are_clean);
    tcase_add_test(tc, test_page_count_raised_is_found);
    tcase_add_test(tc, test_image_larger_than_page_count_is_refused);
    tcase_add_test(tc, test_chain_links_are_checked);
    tcase_add_test(tc, test_txn_and_write_set_are_checked);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
