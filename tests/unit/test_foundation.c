/*
 * test_foundation.c - options, error codes, buffers, the transaction page
 * buffer (memory then spill file) and the SQLite header/freelist parser.
 */
#include "buf.h"
#include "config.h"
#include "enginetest.h"
#include "env.h"
#include "err.h"
#include "pgbuf.h"
#include "sqlitefmt.h"
#include "testutil.h"

#include <sched.h>
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(test_every_rc_has_text)
{
    for (int rc = 0; rc < DSQ_RC_COUNT_; rc++) {
        ck_assert_str_ne(dsq_strerror((dsq_rc)rc), "unknown error");
        ck_assert_str_ne(dsq_rc_name((dsq_rc)rc), "DSQ_E?");
    }
    ck_assert_str_eq(dsq_strerror((dsq_rc)999), "unknown error");
}
END_TEST

START_TEST(test_err_one_line_and_prefix)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_err_set(&e, DSQ_EIO, "a\nb\rc"), DSQ_EIO);
    ck_assert_str_eq(e.msg, "a b c");
    dsq_err_prefix(&e, "ctx %d", 7);
    ck_assert_str_eq(e.msg, "ctx 7: a b c");
    ck_assert_int_eq(dsq_err_set(NULL, DSQ_EINVAL, "x"), DSQ_EINVAL);
}
END_TEST

START_TEST(test_config_precedence_and_errors)
{
    struct dsq_config c;
    struct dsq_err e;
    dsq_config_init(&c);
    ck_assert_uint_eq(c.checkpoint_interval, 50);
    ck_assert_uint_eq(c.max_retries, 10);
    ck_assert(c.retry_base_s == 0.05 && c.retry_max_s == 30.0);
    setenv("DISTRIBUTED_SQLITE_CHECKPOINT_INTERVAL", "7", 1);
    setenv("DISTRIBUTED_SQLITE_RETRY_MAX_SECONDS", "2.5", 1);
    setenv("AWS_DEFAULT_REGION", "eu-west-3", 1);
    unsetenv("AWS_REGION");
    ck_assert_int_eq(dsq_config_load_env(&c, &e), DSQ_OK);
    ck_assert_uint_eq(c.checkpoint_interval, 7);
    ck_assert(c.retry_max_s == 2.5);
    ck_assert_str_eq(c.region, "eu-west-3");
    /* an option beats the environment */
    ck_assert_int_eq(dsq_config_set_list(&c,
                                         "checkpoint_interval=9,ro,"
                                         "isolation=serializable,"
                                         "segment_max_bytes=8M",
                                         &e),
                     DSQ_OK);
    ck_assert_uint_eq(c.checkpoint_interval, 9);
    ck_assert_int_eq(c.read_only, 1);
    ck_assert_int_eq(c.isolation, DSQ_ISOLATION_SERIALIZABLE);
    ck_assert_uint_eq(c.segment_max_bytes, 8u << 20);
    /* errors name the option */
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_config_set(&c, "nosuch", "1", &e), DSQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "nosuch"));
    ck_assert_int_eq(dsq_config_set(&c, "max_retries", "-1", &e), DSQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "max_retries"));
    ck_assert_int_eq(dsq_config_set(&c, "isolation", "weird", &e), DSQ_EINVAL);
    ck_assert_int_eq(dsq_config_set(&c, "ro", "maybe", &e), DSQ_EINVAL);
    ck_assert_int_eq(dsq_config_set(&c, "segment_max_bytes", "12Q", &e),
                     DSQ_EINVAL);
    setenv("DISTRIBUTED_SQLITE_MAX_RETRIES", "lots", 1);
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_config_load_env(&c, &e), DSQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "DISTRIBUTED_SQLITE_MAX_RETRIES"));
    unsetenv("DISTRIBUTED_SQLITE_MAX_RETRIES");
    /* secrets: accepted, never echoed in errors */
    ck_assert_int_eq(dsq_config_set(&c, "secret_key", "s3cr3t", &e), DSQ_OK);
    ck_assert_str_eq(c.secret_key, "s3cr3t");
    dsq_config_cleanup(&c);
}
END_TEST

/* spin_us: 0 with one usable CPU, else 100; an option wins */
START_TEST(test_config_spin_default)
{
    struct dsq_config c;
    struct dsq_err e;
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    unsigned want = CPU_COUNT(&set) >= 2 ? 100 : 0;
    ck_assert_uint_eq(dsq_config_default_spin_us(), want);
    dsq_config_init(&c);
    ck_assert_uint_eq(c.spin_us, want);
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_config_set(&c, "spin_us", "37", &e), DSQ_OK);
    ck_assert_uint_eq(c.spin_us, 37);
    dsq_config_cleanup(&c);
    /* one CPU only: 0 */
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set)) {
            CPU_SET(i, &one);
            break;
        }
    ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);
    ck_assert_uint_eq(dsq_config_default_spin_us(), 0);
    ck_assert_int_eq(sched_setaffinity(0, sizeof(set), &set), 0);
}
END_TEST

/* path options are absolute once parsed: the daemon runs in "/" later */
START_TEST(test_config_paths_absolute)
{
    struct dsq_config c;
    struct dsq_err e;
    char cwd[4096], want[8192];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    dsq_config_init(&c);
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_config_set(&c, "cache_dir", "relcache", &e), DSQ_OK);
    snprintf(want, sizeof(want), "%s/relcache", cwd);
    ck_assert_str_eq(c.cache_dir, want);
    ck_assert_int_eq(dsq_config_set(&c, "cache_dir", "./a/b", &e), DSQ_OK);
    snprintf(want, sizeof(want), "%s/a/b", cwd);
    ck_assert_str_eq(c.cache_dir, want);
    ck_assert_int_eq(dsq_config_set(&c, "cache_dir", "/abs/x", &e), DSQ_OK);
    ck_assert_str_eq(c.cache_dir, "/abs/x");
    ck_assert_int_eq(dsq_config_set(&c, "ca_file", "certs/ca.pem", &e), DSQ_OK);
    snprintf(want, sizeof(want), "%s/certs/ca.pem", cwd);
    ck_assert_str_eq(c.ca_file, want);
    /* and from the environment */
    setenv("DISTRIBUTED_SQLITE_CACHE_DIR", "envcache", 1);
    ck_assert_int_eq(dsq_config_load_env(&c, &e), DSQ_OK);
    unsetenv("DISTRIBUTED_SQLITE_CACHE_DIR");
    snprintf(want, sizeof(want), "%s/envcache", cwd);
    ck_assert_str_eq(c.cache_dir, want);
    /* store_mode is octal, read/write bits with the owner's both */
    ck_assert_uint_eq(c.store_mode, 0600);
    ck_assert_int_eq(dsq_config_set(&c, "store_mode", "0640", &e), DSQ_OK);
    ck_assert_uint_eq(c.store_mode, 0640);
    ck_assert_int_eq(dsq_config_set(&c, "store_mode", "644", &e), DSQ_OK);
    ck_assert_uint_eq(c.store_mode, 0644);
    const char *bad[] = {"0700", "0400", "0666x", "9", "", "01600"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dsq_err_clear(&e);
        ck_assert_int_eq(dsq_config_set(&c, "store_mode", bad[i], &e),
                         DSQ_EINVAL);
        ck_assert_ptr_nonnull(strstr(e.msg, "store_mode"));
    }
    char *p = dsq_path_absolute(".");
    ck_assert_str_eq(p, cwd);
    free(p);
    dsq_config_cleanup(&c);
}
END_TEST

START_TEST(test_buf_cap)
{
    struct dsq_buf b;
    dsq_buf_init(&b, 10);
    ck_assert_int_eq(dsq_buf_append(&b, "0123456789", 10), DSQ_OK);
    ck_assert_int_eq(dsq_buf_append(&b, "x", 1), DSQ_ERANGE);
    ck_assert_uint_eq(b.len, 10);
    ck_assert_int_eq(dsq_buf_terminate(&b), DSQ_OK);
    ck_assert_str_eq((char *)b.data, "0123456789");
    dsq_buf_reset(&b);
    ck_assert_int_eq(dsq_buf_printf(&b, "%d-%s", 42, "ab"), DSQ_OK);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_int_eq(dsq_buf_printf(&b, "%s", "too long!"), DSQ_ERANGE);
    dsq_buf_cleanup(&b);
}
END_TEST

START_TEST(test_pgbuf_spills_and_truncates)
{
    struct dsq_pgbuf *pb;
    uint8_t page[1024], got[1024];
    char *dir = dsq_test_tmpdir("pgbuf");
    /* room for 10 pages in memory, the rest goes to the file */
    ck_assert_int_eq(dsq_pgbuf_new(1024, 10 * 1024, dir, &pb), DSQ_OK);
    for (uint32_t p = 1; p <= 1000; p++) {
        memset(page, (int)(p & 0xff), sizeof(page));
        memcpy(page, &p, 4);
        ck_assert_int_eq(dsq_pgbuf_put(pb, p * 3, page, NULL), DSQ_OK);
    }
    ck_assert_uint_eq(dsq_pgbuf_mem_bytes(pb), 10 * 1024);
    ck_assert_uint_eq(dsq_pgbuf_spill_bytes(pb), 990 * 1024);
    /* rewrite in place, both kinds */
    memset(page, 0xee, sizeof(page));
    ck_assert_int_eq(dsq_pgbuf_put(pb, 3, page, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_pgbuf_put(pb, 2400, page, NULL), DSQ_OK);
    ck_assert_uint_eq(dsq_pgbuf_spill_bytes(pb), 990 * 1024);
    for (uint32_t p = 1; p <= 1000; p++) {
        ck_assert_int_eq(dsq_pgbuf_get(pb, p * 3, got, NULL), DSQ_OK);
        if (p == 1 || p == 800) {
            ck_assert_int_eq(got[0], 0xee);
        } else {
            uint32_t v;
            memcpy(&v, got, 4);
            ck_assert_uint_eq(v, p);
            ck_assert_int_eq(got[1023], (int)(p & 0xff));
        }
    }
    ck_assert_int_eq(dsq_pgbuf_get(pb, 4, got, NULL), DSQ_ENOTFOUND);
    dsq_pgbuf_truncate(pb, 1500);
    ck_assert_uint_eq(dsq_pgbuf_count(pb), 500);
    ck_assert(!dsq_pgbuf_has(pb, 1503));
    ck_assert(dsq_pgbuf_has(pb, 1500));
    uint32_t *v;
    size_t n;
    ck_assert_int_eq(dsq_pgbuf_pgnos(pb, &v, &n), DSQ_OK);
    ck_assert_uint_eq(n, 500);
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_lt(v[i - 1], v[i]);
    free(v);
    /* re-adding after truncation works */
    ck_assert_int_eq(dsq_pgbuf_put(pb, 1503, page, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_pgbuf_get(pb, 1503, got, NULL), DSQ_OK);
    ck_assert_int_eq(got[5], 0xee);
    ck_assert_int_eq(dsq_pgbuf_put(pb, 0, page, NULL), DSQ_EINVAL);
    dsq_pgbuf_free(pb);
    /* the spill file was unlinked: nothing left in dir */
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s)\"", dir);
    ck_assert_int_eq(system(cmd), 0);
    dsq_test_rmrf(dir);
    free(dir);
}
END_TEST

/* freelist parsing on pages held in memory */
static uint8_t *img;
static uint32_t img_ps;

static dsq_rc mem_reader(void *ctx, uint32_t pgno, uint8_t *buf,
                         struct dsq_err *e)
{
    (void)ctx;
    (void)e;
    memcpy(buf, img + (size_t)(pgno - 1) * img_ps, img_ps);
    return DSQ_OK;
}

START_TEST(test_freelist_real_and_hostile)
{
    char *dir = dsq_test_tmpdir("fl");
    char path[4200];
    snprintf(path, sizeof(path), "%s/a.db", dir);
    dsq_test_sql(path, "PRAGMA page_size=1024; CREATE TABLE t(x);"
                       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT "
                       "i+1 FROM c WHERE i<3000) INSERT INTO t SELECT "
                       "randomblob(300) FROM c; DELETE FROM t WHERE rowid "
                       "% 3 <> 0 OR rowid > 2000;");
    size_t len;
    img = dsq_test_read_file(path, &len);
    img_ps = dsq_sqlite_page_size(img, len);
    ck_assert_uint_eq(img_ps, 1024);
    uint32_t n = (uint32_t)(len / img_ps);
    uint32_t *fl;
    size_t nfl;
    ck_assert_int_eq(
        dsq_sqlite_freelist(img, img_ps, n, mem_reader, NULL, &fl, &nfl, NULL),
        DSQ_OK);
    ck_assert_uint_eq(nfl, dsq_be32(img + 36));
    ck_assert_uint_gt(nfl, 100);
    long long fc = dsq_test_sql_int(path, "PRAGMA freelist_count");
    ck_assert_int_eq((long long)nfl, fc);
    free(fl);
    /* hostile: a trunk pointing at itself, a leaf past the end, a count
       larger than the file */
    uint32_t trunk = dsq_be32(img + 32);
    uint8_t *t = img + (size_t)(trunk - 1) * img_ps;
    uint8_t saved[8];
    memcpy(saved, t, 8);
    dsq_put_be32(t, trunk);
    ck_assert_int_eq(
        dsq_sqlite_freelist(img, img_ps, n, mem_reader, NULL, &fl, &nfl, NULL),
        DSQ_ECORRUPT);
    memcpy(t, saved, 8);
    dsq_put_be32(t + 8, n + 5);
    ck_assert_int_eq(
        dsq_sqlite_freelist(img, img_ps, n, mem_reader, NULL, &fl, &nfl, NULL),
        DSQ_ECORRUPT);
    dsq_put_be32(t + 4, 100000);
    ck_assert_int_eq(
        dsq_sqlite_freelist(img, img_ps, n, mem_reader, NULL, &fl, &nfl, NULL),
        DSQ_ECORRUPT);
    dsq_put_be32(img + 36, n + 1);
    ck_assert_int_eq(
        dsq_sqlite_freelist(img, img_ps, n, mem_reader, NULL, &fl, &nfl, NULL),
        DSQ_ECORRUPT);
    free(img);
    dsq_test_rmrf(dir);
    free(dir);
}
END_TEST

START_TEST(test_user_times)
{
    uint64_t ms = 0, base = 0;
    const char *z = "2026-12-01T10:00:00.000Z";
    ck_assert_int_eq(dsq_parse_time_ms(z, &base), 0);
    struct {
        const char *s;
        int64_t delta; /* ms from base, or INT64_MIN: malformed */
    } v[] = {
        {"2026-12-01T10:00Z", 0},
        {"2026-12-01T10:00:00Z", 0},
        {"2026-12-01T10:00:00.000Z", 0},
        {"2026-12-01T10:00:00.5Z", 500},
        {"2026-12-01T10:00:00.25Z", 250},
        {"2026-12-01T10:00:01.007Z", 1007},
        {"2026-12-01T11:00:00+01:00", 0},
        {"2026-12-01T05:30-04:30", 0},
        {"2026-12-01T10:00:00.000+00:00", 0},
        {"2026-12-01T10:00:00", INT64_MIN},   /* no zone */
        {"2026-12-01T10Z", INT64_MIN},        /* no minutes */
        {"2026-12-01T10:00:00.Z", INT64_MIN}, /* empty fraction */
        {"2026-12-01T10:00:00.1234Z", INT64_MIN},
        {"2026-02-30T10:00Z", INT64_MIN}, /* no such day */
        {"2026-13-01T10:00Z", INT64_MIN},
        {"2026-12-01T24:00Z", INT64_MIN},
        {"2026-12-01T10:00:60Z", INT64_MIN},
        {"2026-12-01T10:00+1:00", INT64_MIN},
        {"2026-12-01T10:00Zx", INT64_MIN},
        {"1969-12-31T23:59Z", INT64_MIN},
        {"", INT64_MIN},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        int r = dsq_parse_time_user(v[i].s, strlen(v[i].s), &ms);
        if (v[i].delta == INT64_MIN) {
            ck_assert_msg(r != 0, "%s accepted", v[i].s);
        } else {
            ck_assert_msg(r == 0, "%s refused", v[i].s);
            ck_assert_msg(ms == base + (uint64_t)v[i].delta, "%s: %llu", v[i].s,
                          (unsigned long long)ms);
        }
    }
    /* the length bounds the text: a view name's tail is not parsed */
    ck_assert_int_eq(dsq_parse_time_user("2026-12-01T10:00Z.db", 17, &ms), 0);
    ck_assert_uint_eq(ms, base);
}
END_TEST

START_TEST(test_page1_counters_rule)
{
    uint8_t a[1024], b[1024];
    memset(a, 7, sizeof(a));
    memcpy(a, "SQLite format 3", 16);
    memcpy(b, a, sizeof(a));
    dsq_sqlite_set_counter(b, 99);
    ck_assert(dsq_sqlite_page1_counters_only(a, b, 1024));
    ck_assert_uint_eq(dsq_sqlite_counter(b), 99);
    b[28] ^= 1; /* page count */
    ck_assert(!dsq_sqlite_page1_counters_only(a, b, 1024));
    b[28] ^= 1;
    b[40] ^= 1; /* schema cookie */
    ck_assert(!dsq_sqlite_page1_counters_only(a, b, 1024));
    b[40] ^= 1;
    b[1000] ^= 1; /* schema table content */
    ck_assert(!dsq_sqlite_page1_counters_only(a, b, 1024));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("foundation");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_every_rc_has_text);
    tcase_add_test(tc, test_err_one_line_and_prefix);
    tcase_add_test(tc, test_config_precedence_and_errors);
    tcase_add_test(tc, test_config_paths_absolute);
    tcase_add_test(tc, test_config_spin_default);
    tcase_add_test(tc, test_buf_cap);
    tcase_add_test(tc, test_pgbuf_spills_and_truncates);
    tcase_add_test(tc, test_freelist_real_and_hostile);
    tcase_add_test(tc, test_page1_counters_rule);
    tcase_add_test(tc, test_user_times);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
