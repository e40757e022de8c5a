/*
 * test_inline.c - manifest format 2 in the engine (docs/format.md section
 * 5, docs/commit.md): a small transaction travels inside its manifest and
 * costs one store request; its pages read back with one ranged GET of
 * that manifest; checkpoints move such pages into a segment; gc keeps a
 * manifest whose pages later versions still read; verify checks inline
 * pages and names a damaged one; a format-1 store keeps reading and its
 * next commit starts an incarnation.
 */
#include "db.h"
#include "enginetest.h"
#include "env.h"
#include "fault_store.h"
#include "manifest.h"
#include "store.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PS 4096u

static char *tmp;

static void setup(void)
{
    tmp = dsq_test_tmpdir("inline");
}

static void teardown(void)
{
    dsq_env_reset();
    dsq_test_rmrf(tmp);
    free(tmp);
}

static const char *dir_of(const char *sub)
{
    static char d[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(d[k], sizeof(d[k]), "%s/%s", tmp, sub);
    return d[k];
}

/* Page image of page p in version v: random (incompressible) or text. */
static void page_for(uint8_t *page, uint32_t p, uint64_t v, int random)
{
    uint32_t x = 2463534242u ^ (p * 2654435761u) ^ (uint32_t)(v * 40503u);
    for (uint32_t i = 0; i < PS; i++) {
        if (random) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            page[i] = (uint8_t)x;
        } else {
            page[i] = (uint8_t)("inline page text "[i % 17] + (p % 7));
        }
    }
    memcpy(page, &p, 4);
    memcpy(page + 4, &v, 8);
}

/* When set, its counts are zeroed just before each commit's
   dsq_txn_commit: they count what the commit itself costs. */
static struct dsq_store *count_fs;

/* Commit pages[0..n) of version "newest + 1" on db; returns the info. */
static struct dsq_commit_info commit(struct dsq_db *db, const uint32_t *pages,
                                     int n, int random)
{
    struct dsq_snap *s;
    struct dsq_txn *t;
    struct dsq_commit_info ci;
    struct dsq_err e;
    uint8_t page[PS];
    ck_assert_int_eq(dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_txn_begin(s, 0, &t, NULL), DSQ_OK);
    if (dsq_snap_page_count(s) == 0)
        ck_assert_int_eq(dsq_txn_set_page_size(t, PS, NULL), DSQ_OK);
    for (int i = 0; i < n; i++) {
        page_for(page, pages[i], dsq_snap_version(s) + 1, random);
        ck_assert_int_eq(dsq_txn_write_page(t, pages[i], page, NULL), DSQ_OK);
    }
    if (count_fs)
        dsq_fault_store_reset_counts(count_fs);
    dsq_rc rc = dsq_txn_commit(t, &ci, &e);
    ck_assert_msg(rc == DSQ_OK, "commit: %s", dsq_err_text(&e, rc));
    dsq_txn_free(t);
    dsq_snap_release(s);
    return ci;
}

static void range(uint32_t *v, uint32_t first, int n)
{
    for (int i = 0; i < n; i++)
        v[i] = first + (uint32_t)i;
}

/* Expected image of every page of version v: the last writer's. */
struct model {
    uint64_t written[256]; /* version that last wrote page p, 0 none */
    int random[256];
};

static void model_commit(struct model *m, uint64_t v, const uint32_t *pages,
                         int n, int random)
{
    for (int i = 0; i < n; i++) {
        m->written[pages[i]] = v;
        m->random[pages[i]] = random;
    }
}

/* never written: a page the file grew past reads as zeros */
static void want_page(uint8_t *want, const struct model *m, uint32_t p)
{
    if (m->written[p])
        page_for(want, p, m->written[p], m->random[p]);
    else
        memset(want, 0, PS);
}

static void check_image(struct dsq_db *db, uint64_t v, const struct model *m,
                        uint32_t npages)
{
    struct dsq_snap *s;
    struct dsq_err e;
    uint8_t got[PS], want[PS];
    ck_assert_int_eq(dsq_db_snapshot(db, v, &s, NULL), DSQ_OK);
    ck_assert_uint_eq(dsq_snap_page_count(s), npages);
    for (uint32_t p = 1; p <= npages; p++) {
        dsq_err_clear(&e);
        dsq_rc rc = dsq_snap_read_page(s, p, got, &e);
        ck_assert_msg(rc == DSQ_OK, "v%llu page %u: %s", (unsigned long long)v,
                      p, dsq_err_text(&e, rc));
        want_page(want, m, p);
        ck_assert_msg(memcmp(got, want, PS) == 0, "v%llu page %u differs",
                      (unsigned long long)v, p);
    }
    /* the bulk path reads the same */
    uint8_t *all = malloc((size_t)npages * PS);
    ck_assert_int_eq(dsq_snap_read_pages(s, 1, npages, all, NULL), DSQ_OK);
    for (uint32_t p = 1; p <= npages; p++) {
        want_page(want, m, p);
        ck_assert(memcmp(all + (size_t)(p - 1) * PS, want, PS) == 0);
    }
    free(all);
    dsq_snap_release(s);
}

static void verify_ok(struct dsq_db *db)
{
    struct dsq_verify_report rep;
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_db_verify(db, &rep, NULL, NULL, NULL, &e);
    ck_assert_msg(rc == DSQ_OK, "verify: %s", dsq_err_text(&e, rc));
    uint64_t orphans = 99;
    ck_assert_int_eq(dsq_db_recovery_scan(db, 0, 0, NULL, NULL, &orphans, NULL),
                     DSQ_OK);
    ck_assert_uint_eq(orphans, 0);
}

static size_t file_size(const char *path)
{
    size_t n = 0;
    uint8_t *d = dsq_test_read_file(path, &n);
    free(d);
    return d ? n : 0;
}

START_TEST(test_small_commit_is_one_request)
{
    struct dsq_config cfg;
    struct dsq_store *inner, *fs;
    struct dsq_db *db;
    struct model m = {0};
    uint32_t pages[32];
    dsq_test_config(&cfg, 50);
    ck_assert_int_eq(dsq_store_file_open(dir_of("one"), &inner, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_fault_store_new(inner, 0, &fs), DSQ_OK);
    ck_assert_int_eq(dsq_db_open(fs, "db", &cfg, &db, NULL), DSQ_OK);
    count_fs = fs;
    range(pages, 1, 20);
    struct dsq_commit_info ci = commit(db, pages, 20, 1); /* 80 KiB random */
    model_commit(&m, 1, pages, 20, 1);
    ck_assert_uint_eq(ci.objects_written, 2); /* segment + manifest */
    /* 64 KiB of incompressible pages: the manifest alone, one request */
    range(pages, 3, 16);
    ci = commit(db, pages, 16, 1);
    model_commit(&m, 2, pages, 16, 1);
    ck_assert_uint_eq(ci.version, 2);
    ck_assert_uint_eq(ci.objects_written, 1);
    ck_assert_uint_eq(dsq_fault_store_calls(fs), 1);
    ck_assert_uint_eq(dsq_fault_store_op_calls(fs, DSQ_FOP_PUT), 1);
    ck_assert_uint_gt(file_size(dir_of("one/db/manifests/"
                                       "v00000000000000000002.json")),
                      16 * PS);
    /* one page more no longer fits: a segment, then the manifest */
    range(pages, 1, 17);
    ci = commit(db, pages, 17, 1);
    model_commit(&m, 3, pages, 17, 1);
    ck_assert_uint_eq(ci.objects_written, 2);
    ck_assert_uint_eq(dsq_fault_store_op_calls(fs, DSQ_FOP_PUT), 2);
    /* compressible pages: far more than 64 KiB of pages still fit */
    range(pages, 21, 32);
    ci = commit(db, pages, 32, 0);
    model_commit(&m, 4, pages, 32, 0);
    ck_assert_uint_eq(ci.objects_written, 1);
    ck_assert_uint_eq(dsq_fault_store_calls(fs), 1);
    /* the committing handle reads its pages back without a request */
    count_fs = NULL;
    dsq_fault_store_reset_counts(fs);
    check_image(db, 4, &m, 52);
    ck_assert_uint_eq(dsq_fault_store_op_calls(fs, DSQ_FOP_GET), 0);
    dsq_db_close(db);
    /* a cold handle: the manifest once, then one ranged GET per page it
       carries (no segment involved) */
    ck_assert_int_eq(dsq_db_open(fs, "db", &cfg, &db, NULL), DSQ_OK);
    struct dsq_snap *s;
    uint8_t got[PS], want[PS];
    ck_assert_int_eq(dsq_db_snapshot(db, 2, &s, NULL), DSQ_OK);
    dsq_fault_store_reset_counts(fs);
    ck_assert_int_eq(dsq_snap_read_page(s, 10, got, NULL), DSQ_OK);
    page_for(want, 10, 2, 1);
    ck_assert_mem_eq(got, want, PS);
    /* served from the cached manifest's inline text: no request at all */
    ck_assert_uint_eq(dsq_fault_store_calls(fs), 0);
    dsq_snap_release(s);
    dsq_db_close(db);
    /* version 4 read from version 2's manifest by ranged GET: a handle
       that has only version 4's manifest */
    ck_assert_int_eq(dsq_db_open(fs, "db", &cfg, &db, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_db_snapshot(db, 4, &s, NULL), DSQ_OK);
    dsq_fault_store_reset_counts(fs);
    ck_assert_int_eq(dsq_snap_read_page(s, 4, got, NULL), DSQ_OK);
    page_for(want, 4, 3, 1);
    ck_assert_mem_eq(got, want, PS); /* page 4: version 3's segment */
    ck_assert_int_eq(dsq_snap_read_page(s, 25, got, NULL), DSQ_OK);
    page_for(want, 25, 4, 0);
    ck_assert_mem_eq(got, want, PS); /* page 25: version 4 itself */
    ck_assert_int_eq(dsq_snap_read_page(s, 18, got, NULL), DSQ_OK);
    page_for(want, 18, 2, 1);
    ck_assert_mem_eq(got, want, PS); /* page 18: version 2, inline */
    ck_assert_uint_eq(dsq_fault_store_op_calls(fs, DSQ_FOP_GET), 2);
    dsq_snap_release(s);
    for (uint64_t v = 1; v <= 4; v++) {
        uint32_t n = v < 4 ? 20 : 52;
        struct model mv = {0};
        /* replay the model up to v */
        uint32_t p1[20], p2[16], p3[17], p4[32];
        range(p1, 1, 20);
        range(p2, 3, 16);
        range(p3, 1, 17);
        range(p4, 21, 32);
        model_commit(&mv, 1, p1, 20, 1);
        if (v >= 2)
            model_commit(&mv, 2, p2, 16, 1);
        if (v >= 3)
            model_commit(&mv, 3, p3, 17, 1);
        if (v >= 4)
            model_commit(&mv, 4, p4, 32, 0);
        check_image(db, v, &mv, n);
    }
    verify_ok(db);
    dsq_db_close(db);
    dsq_store_free(fs);
    dsq_store_free(inner);
}
END_TEST

/* Every version reads right through checkpoints that move inline pages. */
START_TEST(test_checkpoints_move_inline_pages)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct model m = {0}, hist[13];
    uint32_t pages[8];
    dsq_test_config(&cfg, 4);
    dsq_test_open(dir_of("ck"), &cfg, &st, &db);
    memset(hist, 0, sizeof(hist));
    for (uint64_t v = 1; v <= 12; v++) {
        int n = v == 1 ? 8 : 2;
        if (v == 1)
            range(pages, 1, 8);
        else {
            pages[0] = (uint32_t)(v % 8) + 1;
            pages[1] = (uint32_t)v + 8; /* grows the file */
        }
        commit(db, pages, n, (int)(v % 2));
        model_commit(&m, v, pages, n, (int)(v % 2));
        hist[v] = m;
    }
    dsq_db_close(db);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    for (uint64_t v = 1; v <= 12; v++) {
        struct dsq_snap *s;
        ck_assert_int_eq(dsq_db_snapshot(db, v, &s, NULL), DSQ_OK);
        uint32_t n = dsq_snap_page_count(s);
        dsq_snap_release(s);
        check_image(db, v, &hist[v], n);
    }
    /* at a checkpoint the overlay is empty: no version before it is read
       by the ones after */
    for (uint64_t v = 4; v <= 12; v += 4) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/db/manifests/v%020llu.json",
                 dir_of("ck"), (unsigned long long)v);
        size_t len;
        uint8_t *d = dsq_test_read_file(path, &len);
        struct dsq_manifest *mf;
        ck_assert_int_eq(dsq_manifest_decode(d, len, path, &mf, NULL), DSQ_OK);
        ck_assert_uint_eq(mf->ckpt_version, v);
        ck_assert_uint_eq(mf->n_overlay, 0);
        ck_assert_uint_eq(mf->inline_len, 0);
        dsq_manifest_free(mf);
        free(d);
    }
    verify_ok(db);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

static uint64_t clock_offset_ms;
static uint64_t shifted_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
           clock_offset_ms;
}

/* gc keeps a manifest whose inline pages a kept version reads. */
START_TEST(test_gc_keeps_manifests_kept_versions_read)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct model m = {0};
    uint32_t pages[40];
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir_of("gc"), &cfg, &st, &db);
    range(pages, 1, 40);
    commit(db, pages, 40, 1); /* a segment */
    model_commit(&m, 1, pages, 40, 1);
    pages[0] = 5;
    commit(db, pages, 1, 0); /* version 2 carries page 5 */
    model_commit(&m, 2, pages, 1, 0);
    for (uint64_t v = 3; v <= 12; v++) {
        pages[0] = 1;
        commit(db, pages, 1, 0);
        model_commit(&m, v, pages, 1, 0);
    }
    clock_offset_ms = 2 * 3600 * 1000;
    dsq_env.now_ms = shifted_now;
    struct dsq_gc_report rep;
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_db_gc(db, 3, 3600 * 1000, 0, &rep, &e);
    ck_assert_msg(rc == DSQ_OK, "gc: %s", dsq_err_text(&e, rc));
    /* the newest 3 would be 10..12, but they read page 5 from version 2 */
    ck_assert_uint_eq(rep.floor, 2);
    ck_assert_uint_eq(rep.versions_removed, 1);
    dsq_db_close(db);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    check_image(db, 12, &m, 40);
    verify_ok(db);
    /* after a checkpoint has moved page 5, gc may go past version 2 */
    cfg.checkpoint_interval = 1;
    dsq_db_close(db);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    pages[0] = 2;
    commit(db, pages, 1, 0); /* version 13, a checkpoint */
    model_commit(&m, 13, pages, 1, 0);
    struct model m13 = m;
    cfg.checkpoint_interval = 50;
    dsq_db_close(db);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    for (uint64_t v = 14; v <= 15; v++) {
        pages[0] = 3;
        commit(db, pages, 1, 0);
        model_commit(&m, v, pages, 1, 0);
    }
    dsq_err_clear(&e);
    rc = dsq_db_gc(db, 3, 3600 * 1000, 0, &rep, &e);
    ck_assert_msg(rc == DSQ_OK, "gc: %s", dsq_err_text(&e, rc));
    ck_assert_uint_eq(rep.floor, 13);
    dsq_db_close(db);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    check_image(db, 15, &m, 40);
    check_image(db, 13, &m13, 40);
    verify_ok(db);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

/* A damaged inline page is an error naming its manifest; verify finds it. */
START_TEST(test_damaged_inline_page_is_named)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    uint32_t pages[4];
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir_of("bad"), &cfg, &st, &db);
    range(pages, 1, 4);
    commit(db, pages, 4, 1);
    dsq_db_close(db);
    /* change one base64 character inside page 2's text (still valid
       base64, so the manifest decodes; the page's checksum fails) */
    char path[4200];
    snprintf(path, sizeof(path), "%s/db/manifests/v%020llu.json", dir_of("bad"),
             1ull);
    size_t len;
    uint8_t *d = dsq_test_read_file(path, &len);
    struct dsq_manifest *mf;
    ck_assert_int_eq(dsq_manifest_decode(d, len, path, &mf, NULL), DSQ_OK);
    ck_assert_uint_eq(mf->n_overlay, 4);
    size_t at = (size_t)mf->overlay[1].offset + 100;
    dsq_manifest_free(mf);
    d[at] = d[at] == 'A' ? 'B' : 'A';
    dsq_test_write_file(path, d, len);
    free(d);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    struct dsq_snap *s;
    uint8_t page[PS];
    struct dsq_err e;
    ck_assert_int_eq(dsq_db_snapshot(db, 1, &s, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_snap_read_page(s, 1, page, NULL), DSQ_OK);
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_snap_read_page(s, 2, page, &e), DSQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(e.msg, "manifests/v00000000000000000001"));
    dsq_snap_release(s);
    struct dsq_verify_report rep;
    ck_assert_int_eq(dsq_db_verify(db, &rep, NULL, NULL, NULL, NULL),
                     DSQ_ECORRUPT);
    ck_assert_uint_eq(rep.problems, 1);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

/* Rewrite manifest v of the store at dir as format 1 (no inline pages). */
static void to_format1(const char *dir, uint64_t v)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/db/manifests/v%020llu.json", dir,
             (unsigned long long)v);
    size_t len;
    uint8_t *d = dsq_test_read_file(path, &len);
    struct dsq_manifest *mf;
    ck_assert_int_eq(dsq_manifest_decode(d, len, path, &mf, NULL), DSQ_OK);
    ck_assert_uint_eq(mf->inline_len, 0);
    mf->format_version = 1;
    mf->incarnation[0] = 0;
    struct dsq_buf out;
    dsq_buf_init(&out, DSQ_MANIFEST_MAX_BYTES);
    ck_assert_int_eq(dsq_manifest_encode(mf, &out, NULL), DSQ_OK);
    ck_assert_mem_eq(out.data,
                     "{\"format\":\"dsqlfs-manifest\","
                     "\"format_version\":1,",
                     44);
    dsq_test_write_file(path, out.data, out.len);
    dsq_buf_cleanup(&out);
    dsq_manifest_free(mf);
    free(d);
}

START_TEST(test_format1_store_reads_and_gets_an_incarnation)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct model m = {0};
    uint32_t pages[40];
    const char *dir = dir_of("f1");
    dsq_test_config(&cfg, 50);
    dsq_test_open(dir, &cfg, &st, &db);
    range(pages, 1, 40);
    commit(db, pages, 40, 1);
    model_commit(&m, 1, pages, 40, 1);
    dsq_db_close(db);
    to_format1(dir, 1);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    struct dsq_snap *s;
    ck_assert_int_eq(dsq_db_snapshot(db, 1, &s, NULL), DSQ_OK);
    ck_assert_str_eq(dsq_snap_incarnation(s), "");
    dsq_snap_release(s);
    check_image(db, 1, &m, 40);
    /* new commits write format 2; the first one starts the incarnation */
    pages[0] = 7;
    commit(db, pages, 1, 0);
    model_commit(&m, 2, pages, 1, 0);
    pages[0] = 8;
    commit(db, pages, 1, 0);
    model_commit(&m, 3, pages, 1, 0);
    dsq_db_close(db);
    ck_assert_int_eq(dsq_db_open(st, "db", &cfg, &db, NULL), DSQ_OK);
    char inc[33];
    ck_assert_int_eq(dsq_db_snapshot(db, 2, &s, NULL), DSQ_OK);
    snprintf(inc, sizeof(inc), "%s", dsq_snap_incarnation(s));
    ck_assert_uint_eq(strlen(inc), 32);
    dsq_snap_release(s);
    ck_assert_int_eq(dsq_db_snapshot(db, 3, &s, NULL), DSQ_OK);
    ck_assert_str_eq(dsq_snap_incarnation(s), inc);
    dsq_snap_release(s);
    check_image(db, 3, &m, 40);
    verify_ok(db);
    dsq_db_close(db);
    dsq_store_free(st);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("inline");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_small_commit_is_one_request);
    tcase_add_test(tc, test_checkpoints_move_inline_pages);
    tcase_add_test(tc, test_gc_keeps_manifests_kept_versions_read);
    tcase_add_test(tc, test_damaged_inline_page_is_named);
    tcase_add_test(tc, test_format1_store_reads_and_gets_an_incarnation);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
