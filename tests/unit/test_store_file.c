/*
 * test_store_file.c - the store contract on the local directory backend,
 * the generic parts of store.c (key rules, dispatchers, URL open, listing
 * helpers) and the fault-injecting wrapper of tests/support.
 *
 * The concurrency tests fork real processes (and start threads) against
 * one directory: create-only races, if-match counters, and writers killed
 * with SIGKILL mid-put.  Grandchildren never call ck_assert: they report
 * through exit codes and shared memory.
 */
#include "env.h"
#include "fault_store.h"
#include "store.h"
#include "store_file.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *g_dir;
static struct dsq_store *g_st;

static void setup(void)
{
    struct dsq_err e = {0};
    g_dir = dsq_test_tmpdir("store");
    dsq_rc rc = dsq_store_file_open(g_dir, &g_st, &e);
    ck_assert_msg(rc == DSQ_OK, "open: %s", dsq_err_text(&e, rc));
}

static void teardown(void)
{
    dsq_store_free(g_st);
    g_st = NULL;
    dsq_test_rmrf(g_dir);
    free(g_dir);
    g_dir = NULL;
}

/* ---------------------------------------------------------------- helpers */

static dsq_rc put_str(struct dsq_store *st, const char *key, const char *s,
                      enum dsq_put_cond cond, const char *etag,
                      struct dsq_objinfo *info)
{
    struct dsq_err e = {0};
    return dsq_store_put(st, key, s, strlen(s), cond, etag, info, &e);
}

static void put_ok(struct dsq_store *st, const char *key, const char *s)
{
    struct dsq_err e = {0};
    dsq_rc rc =
        dsq_store_put(st, key, s, strlen(s), DSQ_PUT_ANY, NULL, NULL, &e);
    ck_assert_msg(rc == DSQ_OK, "put %s: %s", key, dsq_err_text(&e, rc));
}

/* Whole object as a malloc'd string, NULL if not found (asserts others). */
static char *get_str(struct dsq_store *st, const char *key)
{
    struct dsq_buf b;
    struct dsq_err e = {0};
    dsq_buf_init(&b, 1u << 30);
    dsq_rc rc = dsq_store_get(st, key, 0, 0, &b, NULL, &e);
    if (rc == DSQ_ENOTFOUND) {
        dsq_buf_cleanup(&b);
        return NULL;
    }
    ck_assert_msg(rc == DSQ_OK, "get %s: %s", key, dsq_err_text(&e, rc));
    ck_assert_int_eq(dsq_buf_terminate(&b), DSQ_OK);
    return (char *)dsq_buf_detach(&b, NULL);
}

static char *range_str(struct dsq_store *st, const char *key, uint64_t off,
                       uint64_t len)
{
    struct dsq_buf b;
    struct dsq_err e = {0};
    dsq_buf_init(&b, 1u << 20);
    dsq_rc rc = dsq_store_get(st, key, off, len, &b, NULL, &e);
    ck_assert_msg(rc == DSQ_OK, "get %s: %s", key, dsq_err_text(&e, rc));
    ck_assert_int_eq(dsq_buf_terminate(&b), DSQ_OK);
    if (!b.data)
        return strdup("");
    return (char *)dsq_buf_detach(&b, NULL);
}

static int path_exists(const char *rel)
{
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/%s", g_dir, rel);
    return lstat(p, &sb) == 0;
}

static void write_raw(const char *rel, const char *content)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", g_dir, rel);
    /* mkdir -p of the parent */
    for (char *s = p + strlen(g_dir) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0777);
        *s = '/';
    }
    dsq_test_write_file(p, content, strlen(content));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A list page flattened: entries and prefixes, in page order. */
struct flat {
    char **keys;
    size_t n;
    char **cps;
    size_t ncp;
    size_t pages;
};

static void flat_free(struct flat *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->keys[i]);
    for (size_t i = 0; i < f->ncp; i++)
        free(f->cps[i]);
    free(f->keys);
    free(f->cps);
    memset(f, 0, sizeof(*f));
}

/* List everything by following tokens; asserts page bounds. */
static void list_flat(struct dsq_store *st, const char *prefix,
                      const char *delim, const char *start_after,
                      size_t max_keys, struct flat *f)
{
    char *token = NULL;
    memset(f, 0, sizeof(*f));
    for (;;) {
        struct dsq_list_req req = {.prefix = prefix,
                                   .delimiter = delim,
                                   .start_after = start_after,
                                   .token = token,
                                   .max_keys = max_keys};
        struct dsq_list_page pg;
        struct dsq_err e = {0};
        dsq_rc rc = dsq_store_list(st, &req, &pg, &e);
        ck_assert_msg(rc == DSQ_OK, "list: %s", dsq_err_text(&e, rc));
        f->pages++;
        if (max_keys)
            ck_assert_uint_le(pg.n_entries + pg.n_prefixes, max_keys);
        if (pg.next_token)
            ck_assert_uint_gt(pg.n_entries + pg.n_prefixes, 0);
        f->keys = realloc(f->keys, (f->n + pg.n_entries + 1) * sizeof(char *));
        for (size_t i = 0; i < pg.n_entries; i++)
            f->keys[f->n++] = strdup(pg.entries[i].key);
        f->cps = realloc(f->cps, (f->ncp + pg.n_prefixes + 1) * sizeof(char *));
        for (size_t i = 0; i < pg.n_prefixes; i++)
            f->cps[f->ncp++] = strdup(pg.common_prefixes[i]);
        free(token);
        token = pg.next_token ? strdup(pg.next_token) : NULL;
        dsq_list_page_cleanup(&pg);
        if (!token)
            break;
        ck_assert_uint_lt(f->pages, 100000);
    }
}

/* ------------------------------------------------------------ key rules */

START_TEST(test_key_valid)
{
    static const char *bad[] = {
        "",
        "/a",
        "a//b",
        "a/../b",
        "./a",
        "a/.",
        "a/",
        "..",
        ".",
        "a/..",
        ".dsqtmp",
        ".dsqtmp.1234",
        "a/.dsqtmp",
        "a/.dsqtmpX/b",
        "x/.dsqtmp-lock",
        "\xff",
        "a/\xc0\xaf",
        "\xed\xa0\x80",
        "\xe2\x82",
        "ok/\xf5\x80\x80\x80",
    };
    static const char *good[] = {
        "a",           "a/b/c",
        ".hidden",     "a/..b",
        "a/b..",       "a.dsqtmp",
        "x/y.dsqtmp",  "db/manifests/v00000000000000000001.json",
        "caf\xc3\xa9", "\xf0\x9f\x98\x80/x",
        "a b/c+d=e",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!dsq_store_key_valid(bad[i]), "accepted '%s'", bad[i]);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(dsq_store_key_valid(good[i]), "rejected '%s'", good[i]);
    ck_assert(!dsq_store_key_valid(NULL));

    char longkey[DSQ_KEY_MAX + 1];
    memset(longkey, 'k', sizeof(longkey));
    longkey[DSQ_KEY_MAX - 1] = 0; /* 1023 bytes: the longest */
    for (size_t i = 100; i < DSQ_KEY_MAX - 1; i += 100)
        longkey[i] = '/';
    ck_assert(dsq_store_key_valid(longkey));
    longkey[DSQ_KEY_MAX - 1] = 'k';
    longkey[DSQ_KEY_MAX] = 0; /* 1024 */
    ck_assert(!dsq_store_key_valid(longkey));
}
END_TEST

START_TEST(test_dispatch_rejects)
{
    struct dsq_err e = {0};
    struct dsq_buf b;
    dsq_buf_init(&b, 1024);
    static const char *bad[] = {"",       "/abs", "a//b",
                                "a/../b", "./a",  "q/.dsqtmp.x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *k = bad[i];
        dsq_err_clear(&e);
        ck_assert_int_eq(
            dsq_store_put(g_st, k, "x", 1, DSQ_PUT_ANY, NULL, NULL, &e),
            DSQ_EINVAL);
        ck_assert_msg(strstr(e.msg, k) != NULL, "msg '%s' lacks key '%s'",
                      e.msg, k);
        dsq_err_clear(&e);
        ck_assert_int_eq(dsq_store_get(g_st, k, 0, 0, &b, NULL, &e),
                         DSQ_EINVAL);
        ck_assert(strstr(e.msg, k) != NULL);
        ck_assert_int_eq(dsq_store_head(g_st, k, NULL, &e), DSQ_EINVAL);
        ck_assert_int_eq(dsq_store_del(g_st, k, &e), DSQ_EINVAL);
    }
    ck_assert_int_eq(
        dsq_store_put(g_st, "k", "x", 1, DSQ_PUT_IF_MATCH, NULL, NULL, &e),
        DSQ_EINVAL);
    ck_assert_int_eq(
        dsq_store_put(g_st, "k", "x", 1, DSQ_PUT_IF_MATCH, "", NULL, &e),
        DSQ_EINVAL);
    ck_assert_int_eq(
        dsq_store_put(g_st, "k", "x", 1, (enum dsq_put_cond)7, NULL, NULL, &e),
        DSQ_EINVAL);
    ck_assert_int_eq(
        dsq_store_put(g_st, "k", NULL, 5, DSQ_PUT_ANY, NULL, NULL, &e),
        DSQ_EINVAL);
    /* nothing was written, not even a temporary file */
    ck_assert(!path_exists("k"));
    dsq_buf_cleanup(&b);
}
END_TEST

/* ---------------------------------------------------------- basic ops */

START_TEST(test_roundtrip)
{
    struct dsq_err e = {0};
    struct dsq_objinfo pi, hi, gi;
    char *s;

    ck_assert_int_eq(put_str(g_st, "hello", "world", DSQ_PUT_ANY, NULL, &pi),
                     DSQ_OK);
    ck_assert_uint_eq(pi.size, 5);
    ck_assert(pi.etag[0] != 0);
    ck_assert_uint_gt(pi.mtime_ms, 1600000000000ull);
    s = get_str(g_st, "hello");
    ck_assert_str_eq(s, "world");
    free(s);
    ck_assert_int_eq(dsq_store_head(g_st, "hello", &hi, &e), DSQ_OK);
    ck_assert_uint_eq(hi.size, 5);
    ck_assert_str_eq(hi.etag, pi.etag);
    ck_assert_uint_eq(hi.mtime_ms, pi.mtime_ms);

    /* binary data with NULs, read back with info */
    uint8_t bin[70000];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (uint8_t)(i * 7 + (i >> 8));
    ck_assert_int_eq(dsq_store_put(g_st, "x/y/z/bin", bin, sizeof(bin),
                                   DSQ_PUT_CREATE, NULL, &pi, &e),
                     DSQ_OK);
    ck_assert(path_exists("x/y/z/bin"));
    struct dsq_buf b;
    dsq_buf_init(&b, 1u << 20);
    ck_assert_int_eq(dsq_store_get(g_st, "x/y/z/bin", 0, 0, &b, &gi, &e),
                     DSQ_OK);
    ck_assert_uint_eq(b.len, sizeof(bin));
    ck_assert(memcmp(b.data, bin, sizeof(bin)) == 0);
    ck_assert_str_eq(gi.etag, pi.etag);
    ck_assert_uint_eq(gi.size, sizeof(bin));
    dsq_buf_cleanup(&b);

    /* empty object */
    ck_assert_int_eq(
        dsq_store_put(g_st, "empty", NULL, 0, DSQ_PUT_ANY, NULL, &pi, &e),
        DSQ_OK);
    ck_assert_uint_eq(pi.size, 0);
    s = get_str(g_st, "empty");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "");
    free(s);

    /* replace, delete, missing */
    put_ok(g_st, "hello", "again!");
    s = get_str(g_st, "hello");
    ck_assert_str_eq(s, "again!");
    free(s);
    ck_assert_int_eq(dsq_store_del(g_st, "hello", &e), DSQ_OK);
    ck_assert_ptr_null(get_str(g_st, "hello"));
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_store_head(g_st, "hello", &hi, &e), DSQ_ENOTFOUND);
    ck_assert(strstr(e.msg, "hello") != NULL);
    ck_assert_int_eq(dsq_store_del(g_st, "hello", &e), DSQ_OK);
    ck_assert_int_eq(dsq_store_del(g_st, "no/such/dir/key", &e), DSQ_OK);
    dsq_buf_init(&b, 100);
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_store_get(g_st, "no/such", 0, 0, &b, NULL, &e),
                     DSQ_ENOTFOUND);
    ck_assert(strstr(e.msg, "no/such") != NULL);
    ck_assert_uint_eq(b.len, 0);
    dsq_buf_cleanup(&b);

    /* no temporary files left behind by successful puts */
    struct flat f;
    list_flat(g_st, "", NULL, NULL, 0, &f);
    ck_assert_uint_eq(f.n, 2);
    ck_assert_str_eq(f.keys[0], "empty");
    ck_assert_str_eq(f.keys[1], "x/y/z/bin");
    flat_free(&f);
    ck_assert(!path_exists(".dsqtmp-lock"));
}
END_TEST

START_TEST(test_ranges)
{
    char *s;
    put_ok(g_st, "r", "0123456789");
    s = range_str(g_st, "r", 2, 3);
    ck_assert_str_eq(s, "234");
    free(s);
    s = range_str(g_st, "r", 0, 10);
    ck_assert_str_eq(s, "0123456789");
    free(s);
    s = range_str(g_st, "r", 8, 5); /* straddles the end */
    ck_assert_str_eq(s, "89");
    free(s);
    s = range_str(g_st, "r", 10, 5); /* at the end */
    ck_assert_str_eq(s, "");
    free(s);
    s = range_str(g_st, "r", 1000, 1); /* past the end */
    ck_assert_str_eq(s, "");
    free(s);
    s = range_str(g_st, "r", 4, 0); /* len 0: to the end */
    ck_assert_str_eq(s, "456789");
    free(s);
    s = range_str(g_st, "r", UINT64_MAX - 1, UINT64_MAX);
    ck_assert_str_eq(s, "");
    free(s);
    s = range_str(g_st, "r", 9, UINT64_MAX);
    ck_assert_str_eq(s, "9");
    free(s);

    /* get appends to what the buffer holds */
    struct dsq_buf b;
    struct dsq_err e = {0};
    dsq_buf_init(&b, 12);
    ck_assert_int_eq(dsq_buf_append_str(&b, "ab"), DSQ_OK);
    ck_assert_int_eq(dsq_store_get(g_st, "r", 0, 0, &b, NULL, &e), DSQ_OK);
    ck_assert_uint_eq(b.len, 12);
    ck_assert(memcmp(b.data, "ab0123456789", 12) == 0);
    /* the cap: nothing appended, DSQ_ERANGE naming the key */
    ck_assert_int_eq(dsq_store_get(g_st, "r", 0, 1, &b, NULL, &e), DSQ_ERANGE);
    ck_assert(strstr(e.msg, "r") != NULL);
    ck_assert_uint_eq(b.len, 12);
    dsq_buf_reset(&b);
    ck_assert_int_eq(dsq_buf_append_str(&b, "abc"), DSQ_OK);
    ck_assert_int_eq(dsq_store_get(g_st, "r", 0, 0, &b, NULL, &e), DSQ_ERANGE);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(dsq_store_get(g_st, "r", 0, 9, &b, NULL, &e), DSQ_OK);
    ck_assert_uint_eq(b.len, 12);
    dsq_buf_cleanup(&b);
}
END_TEST

static void create_only(void)
{
    struct dsq_err e = {0};
    struct dsq_objinfo info;
    ck_assert_int_eq(
        put_str(g_st, "m/v1", "first", DSQ_PUT_CREATE, NULL, &info), DSQ_OK);
    dsq_rc rc = dsq_store_put(g_st, "m/v1", "second", 6, DSQ_PUT_CREATE, NULL,
                              &info, &e);
    ck_assert_int_eq(rc, DSQ_EPRECOND);
    ck_assert(strstr(e.msg, "m/v1") != NULL);
    char *s = get_str(g_st, "m/v1");
    ck_assert_str_eq(s, "first");
    free(s);
    /* the loser left no temporary file */
    struct flat f;
    list_flat(g_st, "", NULL, NULL, 0, &f);
    ck_assert_uint_eq(f.n, 1);
    flat_free(&f);
    char p[4096];
    snprintf(p, sizeof(p), "%s/m", g_dir);
    snprintf(p, sizeof(p), "ls -A %s/m | wc -l | grep -qx 1", g_dir);
    ck_assert_int_eq(system(p), 0);

    /* after a delete the key can be created again */
    ck_assert_int_eq(dsq_store_del(g_st, "m/v1", &e), DSQ_OK);
    ck_assert_int_eq(put_str(g_st, "m/v1", "third", DSQ_PUT_CREATE, NULL, NULL),
                     DSQ_OK);
    s = get_str(g_st, "m/v1");
    ck_assert_str_eq(s, "third");
    free(s);
}

START_TEST(test_create_only)
{
    create_only();
}
END_TEST

START_TEST(test_create_only_link)
{
    dsq__store_file_force_link(g_st);
    create_only();
    /* the etag survives the link/unlink dance unchanged */
    struct dsq_objinfo a, b;
    ck_assert_int_eq(put_str(g_st, "m/v2", "x", DSQ_PUT_CREATE, NULL, &a),
                     DSQ_OK);
    ck_assert_int_eq(dsq_store_head(g_st, "m/v2", &b, NULL), DSQ_OK);
    ck_assert_str_eq(a.etag, b.etag);
    ck_assert_int_eq(put_str(g_st, "m/v2", "y", DSQ_PUT_IF_MATCH, a.etag, NULL),
                     DSQ_OK);
}
END_TEST

START_TEST(test_if_match)
{
    struct dsq_err e = {0};
    struct dsq_objinfo i1, i2, h;
    ck_assert_int_eq(put_str(g_st, "root.json", "v1", DSQ_PUT_ANY, NULL, &i1),
                     DSQ_OK);
    /* stable for an unchanged object */
    ck_assert_int_eq(dsq_store_head(g_st, "root.json", &h, &e), DSQ_OK);
    ck_assert_str_eq(h.etag, i1.etag);
    ck_assert_int_eq(dsq_store_head(g_st, "root.json", &h, &e), DSQ_OK);
    ck_assert_str_eq(h.etag, i1.etag);

    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_store_put(g_st, "root.json", "bad", 3,
                                   DSQ_PUT_IF_MATCH, "not-the-etag", &i2, &e),
                     DSQ_EPRECOND);
    ck_assert(strstr(e.msg, "root.json") != NULL);
    char *s = get_str(g_st, "root.json");
    ck_assert_str_eq(s, "v1");
    free(s);

    ck_assert_int_eq(
        put_str(g_st, "root.json", "v2", DSQ_PUT_IF_MATCH, i1.etag, &i2),
        DSQ_OK);
    ck_assert_str_ne(i2.etag, i1.etag);
    ck_assert_int_eq(dsq_store_head(g_st, "root.json", &h, &e), DSQ_OK);
    ck_assert_str_eq(h.etag, i2.etag);
    s = get_str(g_st, "root.json");
    ck_assert_str_eq(s, "v2");
    free(s);
    /* the old etag no longer matches */
    ck_assert_int_eq(
        put_str(g_st, "root.json", "v3", DSQ_PUT_IF_MATCH, i1.etag, NULL),
        DSQ_EPRECOND);
    /* missing key */
    ck_assert_int_eq(
        put_str(g_st, "nothere", "v", DSQ_PUT_IF_MATCH, i2.etag, NULL),
        DSQ_EPRECOND);
    ck_assert(!path_exists("nothere"));
    ck_assert_int_eq(
        put_str(g_st, "dir/nothere", "v", DSQ_PUT_IF_MATCH, i2.etag, NULL),
        DSQ_EPRECOND);
    /* the listing reports the same etag as head */
    struct dsq_list_req req = {.prefix = "root"};
    struct dsq_list_page pg;
    ck_assert_int_eq(dsq_store_list(g_st, &req, &pg, &e), DSQ_OK);
    ck_assert_uint_eq(pg.n_entries, 1);
    ck_assert_str_eq(pg.entries[0].info.etag, i2.etag);
    ck_assert_uint_eq(pg.entries[0].info.size, 2);
    ck_assert_uint_eq(pg.entries[0].info.mtime_ms, i2.mtime_ms);
    dsq_list_page_cleanup(&pg);
}
END_TEST

START_TEST(test_etag_changes)
{
    /* same size, same content, replaced as fast as possible: every
       version's etag differs from every other */
    enum { N = 300 };
    static char tags[N][DSQ_ETAG_MAX];
    struct dsq_objinfo info;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(
            put_str(g_st, "same", "constant", DSQ_PUT_ANY, NULL, &info),
            DSQ_OK);
        memcpy(tags[i], info.etag, DSQ_ETAG_MAX);
        if (i > 0)
            ck_assert_int_eq(put_str(g_st, "same", "constant", DSQ_PUT_IF_MATCH,
                                     tags[i - 1], NULL),
                             DSQ_EPRECOND);
    }
    char **sorted = malloc(N * sizeof(char *));
    for (int i = 0; i < N; i++)
        sorted[i] = tags[i];
    qsort(sorted, N, sizeof(char *), cmp_str);
    for (int i = 1; i < N; i++)
        ck_assert_str_ne(sorted[i - 1], sorted[i]);
    free(sorted);
}
END_TEST

START_TEST(test_dir_conflicts)
{
    struct dsq_err e = {0};
    struct dsq_buf b;
    dsq_buf_init(&b, 100);
    put_ok(g_st, "d/x", "1");
    ck_assert_int_eq(put_str(g_st, "d", "2", DSQ_PUT_ANY, NULL, NULL),
                     DSQ_EUNSUPPORTED);
    ck_assert_int_eq(put_str(g_st, "d", "2", DSQ_PUT_CREATE, NULL, NULL),
                     DSQ_EUNSUPPORTED);
    ck_assert_int_eq(dsq_store_get(g_st, "d", 0, 0, &b, NULL, &e),
                     DSQ_ENOTFOUND);
    ck_assert_int_eq(dsq_store_head(g_st, "d", NULL, &e), DSQ_ENOTFOUND);
    ck_assert_int_eq(dsq_store_del(g_st, "d", &e), DSQ_OK);
    char *s = get_str(g_st, "d/x");
    ck_assert_str_eq(s, "1");
    free(s);
    put_ok(g_st, "f", "file");
    dsq_err_clear(&e);
    ck_assert_int_eq(
        dsq_store_put(g_st, "f/y", "3", 1, DSQ_PUT_ANY, NULL, NULL, &e),
        DSQ_EUNSUPPORTED);
    ck_assert(strstr(e.msg, "f/y") != NULL);
    ck_assert_int_eq(
        dsq_store_put(g_st, "f/y/z", "3", 1, DSQ_PUT_CREATE, NULL, NULL, &e),
        DSQ_EUNSUPPORTED);
    ck_assert_int_eq(dsq_store_get(g_st, "f/y", 0, 0, &b, NULL, &e),
                     DSQ_ENOTFOUND);
    ck_assert_int_eq(dsq_store_head(g_st, "f/y", NULL, &e), DSQ_ENOTFOUND);
    ck_assert_int_eq(dsq_store_del(g_st, "f/y", &e), DSQ_OK);
    dsq_buf_cleanup(&b);
}
END_TEST

START_TEST(test_fifo_is_not_an_object)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/pipe", g_dir);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    struct dsq_buf b;
    struct dsq_err e = {0};
    dsq_buf_init(&b, 100);
    ck_assert_int_eq(dsq_store_get(g_st, "pipe", 0, 0, &b, NULL, &e),
                     DSQ_ENOTFOUND);
    ck_assert_int_eq(dsq_store_head(g_st, "pipe", NULL, &e), DSQ_ENOTFOUND);
    struct flat f;
    list_flat(g_st, "", NULL, NULL, 0, &f);
    ck_assert_uint_eq(f.n, 0);
    flat_free(&f);
    dsq_buf_cleanup(&b);
}
END_TEST

/* --------------------------------------------------------------- list */

static const char *const tree_keys[] = {
    "a",   "b/1", "b/2", "b/c/3",     "c",       "ca",
    "d.x", "d/x", "d0",  "e/f/g/h/i", ".hidden",
};

static void make_tree(void)
{
    for (size_t i = 0; i < sizeof(tree_keys) / sizeof(tree_keys[0]); i++)
        put_ok(g_st, tree_keys[i], tree_keys[i]);
    /* debris that must stay invisible */
    write_raw(".dsqtmp.123.4.abc", "partial");
    write_raw("b/.dsqtmp.9.9.zz", "partial");
    write_raw(".dsqtmp-lock", "");
    write_raw(".dsqtmpdir/x", "no");
    write_raw("b/c/.dsqtmp.1.1.q", "partial");
    /* a directory holding only debris is no object and no common prefix */
    write_raw("zz-empty/.dsqtmp.7.7.x", "p");
}

static void assert_keys(const struct flat *f, const char *const *want, size_t n)
{
    for (size_t i = 0; i < f->n && i < n; i++)
        ck_assert_msg(strcmp(f->keys[i], want[i]) == 0,
                      "entry %zu: got '%s' want '%s'", i, f->keys[i], want[i]);
    ck_assert_uint_eq(f->n, n);
}

static void assert_cps(const struct flat *f, const char *const *want, size_t n)
{
    for (size_t i = 0; i < f->ncp && i < n; i++)
        ck_assert_msg(strcmp(f->cps[i], want[i]) == 0,
                      "prefix %zu: got '%s' want '%s'", i, f->cps[i], want[i]);
    ck_assert_uint_eq(f->ncp, n);
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_list_basic)
{
    struct flat f;
    make_tree();

    static const char *const all[] = {
        ".hidden", "a",   "b/1", "b/2", "b/c/3",     "c",
        "ca",      "d.x", "d/x", "d0",  "e/f/g/h/i",
    };
    for (size_t mk = 0; mk <= 4; mk++) {
        list_flat(g_st, NULL, NULL, NULL, mk, &f);
        assert_keys(&f, all, N_OF(all));
        flat_free(&f);
    }

    static const char *const top[] = {".hidden", "a", "c", "ca", "d.x", "d0"};
    static const char *const top_cp[] = {"b/", "d/", "e/"};
    for (size_t mk = 0; mk <= 3; mk++) {
        list_flat(g_st, "", "/", NULL, mk, &f);
        assert_keys(&f, top, N_OF(top));
        assert_cps(&f, top_cp, N_OF(top_cp));
        flat_free(&f);
    }

    static const char *const b_all[] = {"b/1", "b/2", "b/c/3"};
    list_flat(g_st, "b/", NULL, NULL, 0, &f);
    assert_keys(&f, b_all, N_OF(b_all));
    flat_free(&f);
    static const char *const b_cp[] = {"b/c/"};
    list_flat(g_st, "b/", "/", NULL, 0, &f);
    assert_keys(&f, b_all, 2);
    assert_cps(&f, b_cp, 1);
    flat_free(&f);

    static const char *const c_keys[] = {"c", "ca"};
    list_flat(g_st, "c", NULL, NULL, 0, &f);
    assert_keys(&f, c_keys, 2);
    flat_free(&f);

    static const char *const d_keys[] = {"d.x", "d/x", "d0"};
    list_flat(g_st, "d", NULL, NULL, 1, &f);
    assert_keys(&f, d_keys, 3);
    flat_free(&f);
    static const char *const d_cp[] = {"d/"};
    list_flat(g_st, "d", "/", NULL, 1, &f);
    static const char *const d_flat[] = {"d.x", "d0"};
    assert_keys(&f, d_flat, 2);
    assert_cps(&f, d_cp, 1);
    flat_free(&f);

    list_flat(g_st, "b/c", NULL, NULL, 0, &f);
    assert_keys(&f, (const char *const[]){"b/c/3"}, 1);
    flat_free(&f);

    /* deep prefix through several directories, and a deep delimiter */
    list_flat(g_st, "e/f/g/", NULL, NULL, 0, &f);
    assert_keys(&f, (const char *const[]){"e/f/g/h/i"}, 1);
    flat_free(&f);
    list_flat(g_st, "e/", "/", NULL, 0, &f);
    assert_keys(&f, NULL, 0);
    assert_cps(&f, (const char *const[]){"e/f/"}, 1);
    flat_free(&f);

    /* start_after */
    static const char *const after_b1[] = {"b/2", "b/c/3", "c",  "ca",
                                           "d.x", "d/x",   "d0", "e/f/g/h/i"};
    list_flat(g_st, NULL, NULL, "b/1", 2, &f);
    assert_keys(&f, after_b1, N_OF(after_b1));
    flat_free(&f);
    list_flat(g_st, NULL, NULL, "b/", 0, &f); /* a directory-like point */
    assert_keys(&f, all + 2, N_OF(all) - 2);
    flat_free(&f);
    list_flat(g_st, NULL, NULL, "zzz", 0, &f);
    assert_keys(&f, NULL, 0);
    flat_free(&f);
    list_flat(g_st, "b/", NULL, "b/1", 0, &f);
    assert_keys(&f, b_all + 1, 2);
    flat_free(&f);
    /* start_after inside a rolled-up prefix: the prefix still shows */
    list_flat(g_st, "", "/", "b/1", 0, &f);
    static const char *const after_top[] = {"c", "ca", "d.x", "d0"};
    assert_keys(&f, after_top, N_OF(after_top));
    assert_cps(&f, top_cp, N_OF(top_cp));
    flat_free(&f);

    /* a multi-character delimiter */
    list_flat(g_st, "", "/c/", NULL, 0, &f);
    ck_assert_uint_eq(f.n, N_OF(all) - 1);
    assert_cps(&f, (const char *const[]){"b/c/"}, 1);
    flat_free(&f);

    /* no match */
    list_flat(g_st, "nope/", "/", NULL, 0, &f);
    ck_assert_uint_eq(f.n + f.ncp, 0);
    ck_assert_uint_eq(f.pages, 1);
    flat_free(&f);
}
END_TEST

START_TEST(test_list_byte_order)
{
    /* unsigned byte order: UTF-8 after ASCII, '/' between '.' and '0' */
    static const char *const want[] = {
        "a-b", "a.b", "a/b", "a0", "z", "~", "\xc3\xa9", "\xf0\x9f\x98\x80"};
    for (size_t i = N_OF(want); i-- > 0;)
        put_ok(g_st, want[i], "v");
    struct flat f;
    list_flat(g_st, NULL, NULL, NULL, 3, &f);
    assert_keys(&f, want, N_OF(want));
    flat_free(&f);
}
END_TEST

START_TEST(test_list_odd_requests)
{
    struct dsq_err e = {0};
    struct flat f;
    make_tree();
    /* prefixes no valid key can have: empty, never an escape */
    static const char *const odd[] = {"../", "..",    "/",       "b//",
                                      "./b", "b/../", ".dsqtmp", ".dsqtmpdir/"};
    for (size_t i = 0; i < N_OF(odd); i++) {
        list_flat(g_st, odd[i], NULL, NULL, 0, &f);
        ck_assert_msg(f.n + f.ncp == 0, "prefix '%s' listed %zu", odd[i], f.n);
        flat_free(&f);
    }
    /* a prefix that ends inside a name */
    list_flat(g_st, "b/c/", NULL, NULL, 0, &f);
    ck_assert_uint_eq(f.n, 1);
    flat_free(&f);
    /* bad continuation tokens */
    struct dsq_list_req req = {.token = "garbage"};
    struct dsq_list_page pg;
    ck_assert_int_eq(dsq_store_list(g_st, &req, &pg, &e), DSQ_EINVAL);
    req.token = "k:";
    ck_assert_int_eq(dsq_store_list(g_st, &req, &pg, &e), DSQ_EINVAL);
    /* max_keys above 1000 is capped like S3 */
    req.token = NULL;
    req.max_keys = 100000;
    ck_assert_int_eq(dsq_store_list(g_st, &req, &pg, &e), DSQ_OK);
    ck_assert_uint_eq(pg.n_entries, N_OF(tree_keys));
    ck_assert_ptr_null(pg.next_token);
    dsq_list_page_cleanup(&pg);
    dsq_list_page_cleanup(&pg); /* idempotent */
    dsq_list_page_cleanup(NULL);
}
END_TEST

/* Temporary files are never listed, and a listing deletes nothing, not
   even debris hours old (recovery-scan reports and sweeps that: debris) */
START_TEST(test_list_hides_temps_deletes_nothing)
{
    char p[4096];
    put_ok(g_st, "k/obj", "x");
    write_raw("k/.dsqtmp.1.1.old", "debris");
    write_raw("k/.dsqtmp.1.2.new", "in progress");
    write_raw(".dsqtmp-lock", "");
    snprintf(p, sizeof(p), "%s/k/.dsqtmp.1.1.old", g_dir);
    struct timespec ts[2] = {{.tv_sec = time(NULL) - 7200},
                             {.tv_sec = time(NULL) - 7200}};
    ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
    struct flat f;
    list_flat(g_st, "", NULL, NULL, 0, &f);
    ck_assert_uint_eq(f.n, 1);
    ck_assert_str_eq(f.keys[0], "k/obj");
    flat_free(&f);
    ck_assert(path_exists("k/.dsqtmp.1.1.old"));
    ck_assert(path_exists("k/.dsqtmp.1.2.new"));
    ck_assert(path_exists(".dsqtmp-lock"));
}
END_TEST

/* Keys for the pagination test: flat files and nested directories. */
static char **make_many(size_t n)
{
    char **keys = malloc(n * sizeof(char *));
    char k[256];
    for (size_t i = 0; i < n; i++) {
        switch (i % 5) {
        case 0:
            snprintf(k, sizeof(k), "pg/d%02zu/k%05zu", i % 37, i);
            break;
        case 1:
            snprintf(k, sizeof(k), "pg/d%02zu/e/%05zu", i % 11, i);
            break;
        case 2:
            snprintf(k, sizeof(k), "pg/d%02zu.%05zu", i % 13, i);
            break;
        default:
            snprintf(k, sizeof(k), "pg/k%05zu", (i * 7919) % 100000);
            break;
        }
        keys[i] = strdup(k);
        write_raw(k, k); /* layout is the backend's contract: fast setup */
    }
    qsort(keys, n, sizeof(char *), cmp_str);
    return keys;
}

static int count_cb(const struct dsq_list_entry *ent, void *arg)
{
    size_t *c = arg;
    (void)ent;
    (*c)++;
    return 0;
}

struct collect {
    char **keys;
    size_t n;
    size_t stop_at;
};

static int collect_cb(const struct dsq_list_entry *ent, void *arg)
{
    struct collect *c = arg;
    c->keys[c->n++] = strdup(ent->key);
    return c->stop_at && c->n >= c->stop_at;
}

START_TEST(test_list_pagination)
{
    enum { N = 2600 };
    char **keys = make_many(N);
    size_t n = N;
    /* dedupe (the flat k%05d keys are distinct, but be safe) */
    size_t w = 1;
    for (size_t i = 1; i < n; i++)
        if (strcmp(keys[i], keys[w - 1]) != 0)
            keys[w++] = keys[i];
        else
            free(keys[i]);
    n = w;
    ck_assert_uint_gt(n, 2500);
    write_raw("pg/.dsqtmp.5.5.debris", "x");
    write_raw("pg/d03/.dsqtmp.5.6.debris", "x");

    struct flat f;
    static const size_t sizes[] = {7, 100, 999, 1000, 0};
    for (size_t s = 0; s < N_OF(sizes); s++) {
        list_flat(g_st, "pg/", NULL, NULL, sizes[s], &f);
        ck_assert_uint_eq(f.n, n);
        for (size_t i = 0; i < n; i++)
            ck_assert_str_eq(f.keys[i], keys[i]);
        if (sizes[s] == 7)
            ck_assert_uint_eq(f.pages, (n + 6) / 7);
        flat_free(&f);
    }

    /* start_after in the middle, paged */
    list_flat(g_st, "pg/", NULL, keys[1234], 13, &f);
    ck_assert_uint_eq(f.n, n - 1235);
    for (size_t i = 0; i < f.n; i++)
        ck_assert_str_eq(f.keys[i], keys[1235 + i]);
    flat_free(&f);

    /* delimiter, paged: entries and prefixes each once, in order */
    struct flat all;
    list_flat(g_st, "pg/", "/", NULL, 0, &all);
    static const size_t dsizes[] = {3, 50};
    for (size_t di = 0; di < N_OF(dsizes); di++) {
        list_flat(g_st, "pg/", "/", NULL, dsizes[di], &f);
        ck_assert_uint_eq(f.n, all.n);
        ck_assert_uint_eq(f.ncp, all.ncp);
        for (size_t i = 0; i < f.n; i++)
            ck_assert_str_eq(f.keys[i], all.keys[i]);
        for (size_t i = 0; i < f.ncp; i++)
            ck_assert_str_eq(f.cps[i], all.cps[i]);
        flat_free(&f);
    }
    /* the expected roll-up, computed from the key list */
    size_t want_flat = 0, want_cp = 0;
    char last_cp[256] = "";
    for (size_t i = 0; i < n; i++) {
        const char *rest = keys[i] + 3;
        const char *sl = strchr(rest, '/');
        if (!sl) {
            ck_assert_uint_lt(want_flat, all.n);
            ck_assert_str_eq(all.keys[want_flat], keys[i]);
            want_flat++;
        } else {
            size_t l = (size_t)(sl - keys[i]) + 1;
            if (strlen(last_cp) != l || strncmp(last_cp, keys[i], l) != 0) {
                memcpy(last_cp, keys[i], l);
                last_cp[l] = 0;
                ck_assert_uint_lt(want_cp, all.ncp);
                ck_assert_str_eq(all.cps[want_cp], last_cp);
                want_cp++;
            }
        }
    }
    ck_assert_uint_eq(all.n, want_flat);
    ck_assert_uint_eq(all.ncp, want_cp);
    ck_assert_uint_eq(want_cp, 37); /* d00..d36 */
    flat_free(&all);

    /* list_all follows the tokens; a callback may stop early */
    size_t c = 0;
    struct dsq_err e = {0};
    ck_assert_int_eq(dsq_store_list_all(g_st, "pg/", NULL, count_cb, &c, &e),
                     DSQ_OK);
    ck_assert_uint_eq(c, n);
    struct collect col = {.keys = malloc(n * sizeof(char *))};
    ck_assert_int_eq(
        dsq_store_list_all(g_st, "pg/", keys[10], collect_cb, &col, &e),
        DSQ_OK);
    ck_assert_uint_eq(col.n, n - 11);
    for (size_t i = 0; i < col.n; i++) {
        ck_assert_str_eq(col.keys[i], keys[11 + i]);
        free(col.keys[i]);
    }
    col.n = 0;
    col.stop_at = 1500;
    ck_assert_int_eq(dsq_store_list_all(g_st, NULL, NULL, collect_cb, &col, &e),
                     DSQ_OK);
    ck_assert_uint_eq(col.n, 1500);
    for (size_t i = 0; i < col.n; i++) {
        ck_assert_str_eq(col.keys[i], keys[i]);
        free(col.keys[i]);
    }
    free(col.keys);

    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}
END_TEST

/* ---------------------------------------------------------- URL open */

START_TEST(test_open_url)
{
    struct dsq_err e = {0};
    struct dsq_store *st = NULL;
    char url[4096];
    snprintf(url, sizeof(url), "file://%s/new/nested/", g_dir);
    ck_assert_int_eq(dsq_store_open(url, NULL, &st, &e), DSQ_OK);
    ck_assert_str_eq(st->ops->name, "file");
    ck_assert(path_exists("new/nested"));
    put_ok(st, "k", "v");
    ck_assert(path_exists("new/nested/k"));
    url[strlen(url) - 1] = 0;
    ck_assert_str_eq(st->url, url);
    dsq_store_free(st);
    dsq_store_free(NULL);

    st = NULL;
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_store_open("file://relative/dir", NULL, &st, &e),
                     DSQ_EINVAL);
    ck_assert(strstr(e.msg, "file://relative/dir") != NULL);
    ck_assert_ptr_null(st);
    dsq_err_clear(&e);
    /* s3:// reaches the S3 backend (which may want credentials) */
    dsq_rc s3rc = dsq_store_open("s3://bucket/prefix", NULL, &st, &e);
    ck_assert_int_ne(s3rc, DSQ_EINVAL);
    if (s3rc == DSQ_OK) {
        dsq_store_free(st);
        st = NULL;
    }
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_store_open("http://example.com/x", NULL, &st, &e),
                     DSQ_EINVAL);
    ck_assert(strstr(e.msg, "http://example.com/x") != NULL);
    ck_assert(strchr(e.msg, '\n') == NULL);
    ck_assert_int_eq(dsq_store_open("/abs/no/scheme", NULL, &st, &e),
                     DSQ_EINVAL);
    ck_assert_int_eq(dsq_store_open(NULL, NULL, &st, &e), DSQ_EINVAL);
    ck_assert_int_eq(dsq_store_file_open("relative", &st, &e), DSQ_EINVAL);
    ck_assert_ptr_null(st);
    /* a regular file where the directory should be */
    write_raw("plain", "x");
    snprintf(url, sizeof(url), "file://%s/plain", g_dir);
    dsq_err_clear(&e);
    ck_assert_int_eq(dsq_store_open(url, NULL, &st, &e), DSQ_EINVAL);
    ck_assert(strstr(e.msg, "plain") != NULL);
    ck_assert_ptr_null(st);
}
END_TEST

/* --------------------------------------------------- process races */

enum { RACE_PROCS = 8, RACE_ROUNDS = 200 };

struct race_shm {
    pthread_barrier_t bar;
    int rc[RACE_ROUNDS][RACE_PROCS];
};

static void run_children(int nproc, void (*fn)(int idx, void *arg), void *arg)
{
    pid_t pids[64];
    ck_assert_int_le(nproc, 64);
    for (int i = 0; i < nproc; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            fn(i, arg);
            _exit(0);
        }
    }
    for (int i = 0; i < nproc; i++) {
        int status = 0;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child %d failed (status 0x%x)", i, status);
    }
}

/* Children publish creates with link(2) instead of renameat2 when set. */
static int g_force_link;

static struct dsq_store *child_store(void)
{
    struct dsq_store *st = NULL;
    if (dsq_store_file_open(g_dir, &st, NULL) != DSQ_OK)
        _exit(10);
    if (g_force_link)
        dsq__store_file_force_link(st);
    return st;
}

static void race_child(int idx, void *arg)
{
    struct race_shm *shm = arg;
    struct dsq_store *st = child_store();
    char key[64], val[64];
    for (int r = 0; r < RACE_ROUNDS; r++) {
        snprintf(key, sizeof(key), "race/r%03d/manifest", r);
        snprintf(val, sizeof(val), "winner %d of round %d", idx, r);
        pthread_barrier_wait(&shm->bar);
        shm->rc[r][idx] = dsq_store_put(st, key, val, strlen(val),
                                        DSQ_PUT_CREATE, NULL, NULL, NULL);
    }
    dsq_store_free(st);
}

static void create_race(void)
{
    struct race_shm *shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(shm, MAP_FAILED);
    pthread_barrierattr_t ba;
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&shm->bar, &ba, RACE_PROCS);
    run_children(RACE_PROCS, race_child, shm);
    for (int r = 0; r < RACE_ROUNDS; r++) {
        int winners = 0, winner = -1;
        for (int i = 0; i < RACE_PROCS; i++) {
            if (shm->rc[r][i] == DSQ_OK) {
                winners++;
                winner = i;
            } else {
                ck_assert_msg(shm->rc[r][i] == DSQ_EPRECOND,
                              "round %d proc %d: %s", r, i,
                              dsq_rc_name(shm->rc[r][i]));
            }
        }
        ck_assert_msg(winners == 1, "round %d: %d winners", r, winners);
        char key[64], want[64];
        snprintf(key, sizeof(key), "race/r%03d/manifest", r);
        snprintf(want, sizeof(want), "winner %d of round %d", winner, r);
        char *s = get_str(g_st, key);
        ck_assert_str_eq(s, want);
        free(s);
    }
    /* the losers' temporary files are gone */
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "test -z \"$(find %s -name '.dsqtmp*' -print -quit)\"", g_dir);
    ck_assert_int_eq(system(cmd), 0);
    pthread_barrier_destroy(&shm->bar);
    munmap(shm, sizeof(*shm));
}

START_TEST(test_proc_create_race)
{
    create_race();
}
END_TEST

START_TEST(test_proc_create_race_link)
{
    g_force_link = 1;
    create_race();
}
END_TEST

enum { CTR_PROCS = 6, CTR_INCS = 60, CTR_MAX = 1024 };

struct ctr_shm {
    int claimed[CTR_MAX]; /* claimed[v]: how many incrementers wrote v */
    int retries[64];
};

/* Read-etag / replace-if-match increment; returns retries, <0 on error. */
static int increment(struct dsq_store *st, const char *key, int *claimed)
{
    int retries = 0;
    for (;;) {
        struct dsq_buf b;
        struct dsq_objinfo info;
        char val[32];
        dsq_buf_init(&b, 64);
        dsq_rc rc = dsq_store_get(st, key, 0, 0, &b, &info, NULL);
        if (rc != DSQ_OK || dsq_buf_terminate(&b) != DSQ_OK) {
            dsq_buf_cleanup(&b);
            return -1;
        }
        long v = strtol((char *)b.data, NULL, 10);
        dsq_buf_cleanup(&b);
        snprintf(val, sizeof(val), "%ld", v + 1);
        rc = dsq_store_put(st, key, val, strlen(val), DSQ_PUT_IF_MATCH,
                           info.etag, NULL, NULL);
        if (rc == DSQ_OK) {
            if (v + 1 < CTR_MAX)
                __atomic_add_fetch(&claimed[v + 1], 1, __ATOMIC_SEQ_CST);
            return retries;
        }
        if (rc != DSQ_EPRECOND)
            return -2;
        retries++;
    }
}

static void ctr_child(int idx, void *arg)
{
    struct ctr_shm *shm = arg;
    struct dsq_store *st = child_store();
    for (int i = 0; i < CTR_INCS; i++) {
        int r = increment(st, "ctr/counter", shm->claimed);
        if (r < 0)
            _exit(20 - r);
        shm->retries[idx] += r;
    }
    dsq_store_free(st);
}

static void check_counter(const int *claimed, int total)
{
    char *s = get_str(g_st, "ctr/counter");
    ck_assert_int_eq(atoi(s), total);
    free(s);
    for (int v = 1; v <= total; v++)
        ck_assert_msg(claimed[v] == 1, "value %d written %d times", v,
                      claimed[v]);
}

START_TEST(test_proc_if_match_counter)
{
    struct ctr_shm *shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(shm, MAP_FAILED);
    put_ok(g_st, "ctr/counter", "0");
    run_children(CTR_PROCS, ctr_child, shm);
    check_counter(shm->claimed, CTR_PROCS * CTR_INCS);
    int retries = 0;
    for (int i = 0; i < CTR_PROCS; i++)
        retries += shm->retries[i];
    fprintf(stderr,
            "if-match counter: %d increments by %d processes, %d "
            "retries\n",
            CTR_PROCS * CTR_INCS, CTR_PROCS, retries);
    munmap(shm, sizeof(*shm));
}
END_TEST

/* Threads sharing one store: the same counter, plus create races. */
enum { THR_N = 4, THR_INCS = 80 };

struct thr_arg {
    int idx;
    int *claimed;
    int failed;
    int creates_won;
};

static pthread_barrier_t thr_bar;

static void *thr_main(void *p)
{
    struct thr_arg *a = p;
    char key[64];
    for (int i = 0; i < THR_INCS; i++) {
        if (increment(g_st, "ctr/counter", a->claimed) < 0)
            a->failed = 1;
        snprintf(key, sizeof(key), "tc/%03d", i);
        pthread_barrier_wait(&thr_bar);
        dsq_rc rc =
            dsq_store_put(g_st, key, "x", 1, DSQ_PUT_CREATE, NULL, NULL, NULL);
        if (rc == DSQ_OK)
            a->creates_won++;
        else if (rc != DSQ_EPRECOND)
            a->failed = 1;
    }
    return NULL;
}

START_TEST(test_thread_races)
{
    static int claimed[CTR_MAX];
    pthread_t t[THR_N];
    struct thr_arg args[THR_N];
    put_ok(g_st, "ctr/counter", "0");
    pthread_barrier_init(&thr_bar, NULL, THR_N);
    for (int i = 0; i < THR_N; i++) {
        args[i] = (struct thr_arg){.idx = i, .claimed = claimed};
        ck_assert_int_eq(pthread_create(&t[i], NULL, thr_main, &args[i]), 0);
    }
    int won = 0;
    for (int i = 0; i < THR_N; i++) {
        pthread_join(t[i], NULL);
        ck_assert(!args[i].failed);
        won += args[i].creates_won;
    }
    pthread_barrier_destroy(&thr_bar);
    ck_assert_int_eq(won, THR_INCS);
    check_counter(claimed, THR_N * THR_INCS);
}
END_TEST

/* ---------------------------------------------------- torn writes */

enum { BIG = 4 << 20 };

static int check_big(struct dsq_store *st, const char *key, int *seen)
{
    struct dsq_buf b;
    dsq_buf_init(&b, BIG);
    dsq_rc rc = dsq_store_get(st, key, 0, 0, &b, NULL, NULL);
    int ok = 1;
    if (rc == DSQ_ENOTFOUND) {
        ok = 1;
    } else if (rc != DSQ_OK || b.len != BIG) {
        ok = 0;
    } else {
        uint8_t c = b.data[0];
        for (size_t i = 0; i < b.len; i++)
            if (b.data[i] != c) {
                ok = 0;
                break;
            }
        if (seen)
            (*seen)++;
    }
    dsq_buf_cleanup(&b);
    return ok;
}

/* Temporary files (".dsqtmp.*") directly in the store directory rel. */
static size_t count_tmpfiles(const char *rel)
{
    char p[4096 + 64];
    snprintf(p, sizeof(p), "%s/%s", g_dir, rel);
    DIR *d = opendir(p);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (!strncmp(de->d_name, ".dsqtmp.", 8))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void mkdir_in(const char *rel)
{
    char p[4096 + 64];
    snprintf(p, sizeof(p), "%s/%s", g_dir, rel);
    ck_assert_int_eq(mkdir(p, 0700), 0);
}

static size_t debris_n;
static char debris_last[256];
static void on_debris(const char *name, uint64_t size, uint64_t mtime_ms,
                      int deleted, void *arg)
{
    (void)size;
    (void)mtime_ms;
    (void)deleted;
    (void)arg;
    debris_n++;
    snprintf(debris_last, sizeof(debris_last), "%s", name);
}

static void writer_child(int round)
{
    struct dsq_store *st = child_store();
    uint8_t *p = malloc(BIG);
    char key[64];
    if (!p)
        _exit(11);
    for (int i = 0;; i++) {
        memset(p, (round * 31 + i) & 0xff, BIG);
        if (dsq_store_put(st, "big/any", p, BIG, DSQ_PUT_ANY, NULL, NULL,
                          NULL) != DSQ_OK)
            _exit(12);
        snprintf(key, sizeof(key), "big/create-%03d-%04d", round, i);
        if (dsq_store_put(st, key, p, BIG, DSQ_PUT_CREATE, NULL, NULL, NULL) !=
            DSQ_OK)
            _exit(13);
    }
}

START_TEST(test_torn_write_sigkill)
{
    unsigned seed = (unsigned)time(NULL);
    int seen = 0;
    fprintf(stderr, "torn-write seed %u\n", seed);
    srand(seed);
    for (int round = 0; round < 12; round++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            writer_child(round);
        if (round == 0) {
            /* however slow the machine (sanitizers), let one put land */
            uint64_t limit = dsq_mono_ns() + 120ull * 1000000000u;
            while (seen == 0 && dsq_mono_ns() < limit)
                ck_assert(check_big(g_st, "big/any", &seen));
            ck_assert_int_gt(seen, 0);
        }
        /* read concurrently for a while, then kill mid-put */
        uint64_t until = dsq_mono_ns() + (uint64_t)(rand() % 120) * 1000000u;
        while (dsq_mono_ns() < until)
            ck_assert(check_big(g_st, "big/any", &seen));
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status), "writer exited early 0x%x", status);
        ck_assert(check_big(g_st, "big/any", &seen));
    }
    /* every created key is complete; debris is invisible */
    struct flat f;
    list_flat(g_st, "big/", NULL, NULL, 0, &f);
    ck_assert_uint_ge(f.n, 1);
    for (size_t i = 0; i < f.n; i++) {
        ck_assert_msg(strstr(f.keys[i], "dsqtmp") == NULL, "%s", f.keys[i]);
        ck_assert_msg(check_big(g_st, f.keys[i], NULL), "torn %s", f.keys[i]);
    }
    fprintf(stderr,
            "torn-write: %zu objects checked, %d full reads while "
            "writing\n",
            f.n, seen);
    flat_free(&f);
    /* what the killed writers left is what debris reports, and removes */
    size_t left = count_tmpfiles("big");
    debris_n = 0;
    ck_assert_int_eq(
        dsq_store_debris(g_st, "big/", UINT64_MAX, 0, on_debris, NULL, NULL),
        DSQ_OK);
    ck_assert_uint_eq(debris_n, left);
    ck_assert_uint_eq(count_tmpfiles("big"), left);
    fprintf(stderr, "torn-write: %zu temporary file(s) left by kills\n", left);
    debris_n = 0;
    ck_assert_int_eq(
        dsq_store_debris(g_st, "big/", UINT64_MAX, 1, on_debris, NULL, NULL),
        DSQ_OK);
    ck_assert_uint_eq(debris_n, left);
    ck_assert_uint_eq(count_tmpfiles("big"), 0);
}
END_TEST

static unsigned mode_of(const char *path)
{
    struct stat sb;
    ck_assert_msg(stat(path, &sb) == 0, "stat %s", path);
    return (unsigned)(sb.st_mode & 07777);
}

/* Objects and directories a store creates are private (0600, 0700)
   whatever the umask; store_mode widens that on purpose. */
START_TEST(test_store_mode)
{
    char p[4096 + 64], root[4096 + 64];
    mode_t old = umask(022);
    snprintf(root, sizeof(root), "%s/new/root", g_dir);
    struct dsq_store *st = NULL;
    ck_assert_int_eq(dsq_store_file_open(root, &st, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_store_put(st, "db/segments/a.seg", "x", 1, DSQ_PUT_ANY,
                                   NULL, NULL, NULL),
                     DSQ_OK);
    ck_assert_int_eq(dsq_store_put(st, "db/manifests/v1", "x", 1,
                                   DSQ_PUT_CREATE, NULL, NULL, NULL),
                     DSQ_OK);
    ck_assert_uint_eq(mode_of(root), 0700);
    snprintf(p, sizeof(p), "%s/new", g_dir);
    ck_assert_uint_eq(mode_of(p), 0700);
    snprintf(p, sizeof(p), "%s/db", root);
    ck_assert_uint_eq(mode_of(p), 0700);
    snprintf(p, sizeof(p), "%s/db/segments", root);
    ck_assert_uint_eq(mode_of(p), 0700);
    snprintf(p, sizeof(p), "%s/db/segments/a.seg", root);
    ck_assert_uint_eq(mode_of(p), 0600);
    snprintf(p, sizeof(p), "%s/db/manifests/v1", root);
    ck_assert_uint_eq(mode_of(p), 0600);
    dsq_store_free(st);
    /* widened: the group may read; exact despite a strict umask */
    umask(077);
    snprintf(root, sizeof(root), "%s/shared", g_dir);
    ck_assert_int_eq(dsq_store_file_open_mode(root, 0640, &st, NULL), DSQ_OK);
    ck_assert_int_eq(
        dsq_store_put(st, "db/k", "x", 1, DSQ_PUT_ANY, NULL, NULL, NULL),
        DSQ_OK);
    ck_assert_uint_eq(mode_of(root), 0750);
    snprintf(p, sizeof(p), "%s/db", root);
    ck_assert_uint_eq(mode_of(p), 0750);
    snprintf(p, sizeof(p), "%s/db/k", root);
    ck_assert_uint_eq(mode_of(p), 0640);
    dsq_store_free(st);
    umask(old);
    /* modes that make no sense for objects are refused, naming them */
    struct dsq_err e;
    unsigned bad[] = {0700, 0400, 0200, 01600, 0644 | 0111};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dsq_err_clear(&e);
        ck_assert_int_eq(dsq_store_file_open_mode(root, bad[i], &st, &e),
                         DSQ_EINVAL);
        ck_assert_ptr_nonnull(strstr(e.msg, "mode"));
    }
}
END_TEST

/* debris: only temporary files, only older than the bound, only one
   directory; never a path outside the store */
START_TEST(test_debris_old_tmpfiles_only)
{
    char p[4096 + 64];
    ck_assert_int_eq(
        dsq_store_put(g_st, "d/obj", "x", 1, DSQ_PUT_ANY, NULL, NULL, NULL),
        DSQ_OK);
    const char *names[] = {".dsqtmp.1.2.old", ".dsqtmp.1.3.young",
                           "sub/.dsqtmp.1.4.deeper"};
    mkdir_in("d/sub");
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/d/%s", g_dir, names[i]);
        dsq_test_write_file(p, "tmp", 3);
    }
    /* "old": two hours ago */
    snprintf(p, sizeof(p), "%s/d/%s", g_dir, names[0]);
    struct timespec ts[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
    uint64_t hour_ago = dsq_now_ms() - 3600u * 1000u;
    debris_n = 0;
    debris_last[0] = 0;
    ck_assert_int_eq(
        dsq_store_debris(g_st, "d/", hour_ago, 0, on_debris, NULL, NULL),
        DSQ_OK);
    ck_assert_uint_eq(debris_n, 1);
    ck_assert_str_eq(debris_last, "d/.dsqtmp.1.2.old");
    ck_assert_uint_eq(count_tmpfiles("d"), 2);
    debris_n = 0;
    ck_assert_int_eq(
        dsq_store_debris(g_st, "d/", hour_ago, 1, on_debris, NULL, NULL),
        DSQ_OK);
    ck_assert_uint_eq(debris_n, 1);
    ck_assert_uint_eq(count_tmpfiles("d"), 1); /* the young one stays */
    ck_assert_int_eq(dsq_store_head(g_st, "d/obj", NULL, NULL), DSQ_OK);
    /* a missing directory has none; a bad one is refused */
    ck_assert_int_eq(
        dsq_store_debris(g_st, "nosuch/", UINT64_MAX, 1, on_debris, NULL, NULL),
        DSQ_OK);
    ck_assert_int_eq(
        dsq_store_debris(g_st, "../", UINT64_MAX, 1, on_debris, NULL, NULL),
        DSQ_EINVAL);
    ck_assert_int_eq(
        dsq_store_debris(g_st, "d", UINT64_MAX, 1, on_debris, NULL, NULL),
        DSQ_EINVAL);
}
END_TEST

/* --------------------------------------------------------- fault store */

static struct dsq_store *new_fault(void)
{
    struct dsq_store *st = NULL;
    struct dsq_store *inner = NULL;
    ck_assert_int_eq(dsq_store_file_open(g_dir, &inner, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_fault_store_new(inner, 1, &st), DSQ_OK);
    ck_assert(dsq_fault_store_is(st));
    ck_assert(!dsq_fault_store_is(g_st));
    return st;
}

START_TEST(test_fault_counts)
{
    struct dsq_store *st = new_fault();
    struct dsq_buf b;
    struct dsq_list_page pg;
    struct dsq_list_req req = {0};
    dsq_buf_init(&b, 1024);
    ck_assert_str_eq(st->ops->name, "fault");
    ck_assert(strncmp(st->url, "fault+file://", 13) == 0);
    put_ok(st, "a", "1");
    put_ok(st, "b", "2");
    put_ok(st, "c", "3");
    ck_assert_int_eq(dsq_store_get(st, "a", 0, 0, &b, NULL, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_store_get(st, "zz", 0, 0, &b, NULL, NULL),
                     DSQ_ENOTFOUND);
    ck_assert_int_eq(dsq_store_head(st, "b", NULL, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_store_list(st, &req, &pg, NULL), DSQ_OK);
    ck_assert_uint_eq(pg.n_entries, 3);
    dsq_list_page_cleanup(&pg);
    ck_assert_int_eq(dsq_store_del(st, "c", NULL), DSQ_OK);
    /* invalid keys never reach the wrapper */
    ck_assert_int_eq(dsq_store_head(st, "/bad", NULL, NULL), DSQ_EINVAL);

    ck_assert_uint_eq(dsq_fault_store_calls(st), 8);
    ck_assert_uint_eq(dsq_fault_store_op_calls(st, DSQ_FOP_PUT), 3);
    ck_assert_uint_eq(dsq_fault_store_op_calls(st, DSQ_FOP_GET), 2);
    ck_assert_uint_eq(dsq_fault_store_op_calls(st, DSQ_FOP_HEAD), 1);
    ck_assert_uint_eq(dsq_fault_store_op_calls(st, DSQ_FOP_LIST), 1);
    ck_assert_uint_eq(dsq_fault_store_op_calls(st, DSQ_FOP_DEL), 1);
    ck_assert_uint_eq(dsq_fault_store_faults(st), 0);
    dsq_fault_store_reset_counts(st);
    ck_assert_uint_eq(dsq_fault_store_calls(st), 0);
    ck_assert_uint_eq(dsq_fault_store_op_calls(st, DSQ_FOP_PUT), 0);
    dsq_store_free(st);
    dsq_buf_cleanup(&b);
    /* the inner store was owned and freed; the files remain */
    ck_assert(path_exists("a"));
}
END_TEST

START_TEST(test_fault_modes)
{
    struct dsq_store *st = new_fault();
    struct dsq_err e = {0};
    struct dsq_objinfo info = {.size = 4242};

    /* ERROR: the 2nd call fails and is not performed */
    dsq_fault_store_fail_at(st, 2, DSQ_FAULT_ERROR);
    put_ok(st, "k1", "1");
    ck_assert_int_eq(
        dsq_store_put(st, "k2", "2", 1, DSQ_PUT_CREATE, NULL, &info, &e),
        DSQ_ETRANSIENT);
    ck_assert(strstr(e.msg, "k2") != NULL);
    ck_assert_uint_eq(info.size, 4242); /* out-param untouched */
    ck_assert(!path_exists("k2"));
    put_ok(st, "k3", "3"); /* one shot */
    ck_assert_uint_eq(dsq_fault_store_faults(st), 1);

    /* LOST_REPLY: performed, then reported as transient */
    dsq_fault_store_reset_counts(st);
    dsq_fault_store_fail_at(st, 1, DSQ_FAULT_LOST_REPLY);
    ck_assert_int_eq(
        dsq_store_put(st, "k4", "4", 1, DSQ_PUT_CREATE, NULL, &info, &e),
        DSQ_ETRANSIENT);
    ck_assert_uint_eq(info.size, 4242);
    char *s = get_str(g_st, "k4");
    ck_assert_str_eq(s, "4");
    free(s);
    /* the caller finds out by reading: a retry of the create loses */
    ck_assert_int_eq(put_str(st, "k4", "4", DSQ_PUT_CREATE, NULL, NULL),
                     DSQ_EPRECOND);

    /* LOST_REPLY on a get leaves the buffer as it was; on del deletes */
    struct dsq_buf b;
    dsq_buf_init(&b, 100);
    dsq_fault_store_reset_counts(st);
    dsq_fault_store_fail_at(st, 1, DSQ_FAULT_LOST_REPLY);
    ck_assert_int_eq(dsq_store_get(st, "k4", 0, 0, &b, NULL, &e),
                     DSQ_ETRANSIENT);
    ck_assert_uint_eq(b.len, 0);
    dsq_fault_store_reset_counts(st);
    dsq_fault_store_fail_at(st, 1, DSQ_FAULT_LOST_REPLY);
    ck_assert_int_eq(dsq_store_del(st, "k4", &e), DSQ_ETRANSIENT);
    ck_assert(!path_exists("k4"));
    dsq_fault_store_reset_counts(st);
    dsq_fault_store_fail_at(st, 1, DSQ_FAULT_LOST_REPLY);
    struct dsq_list_req req = {.prefix = "k"};
    struct dsq_list_page pg = {0};
    ck_assert_int_eq(dsq_store_list(st, &req, &pg, &e), DSQ_ETRANSIENT);
    ck_assert_ptr_null(pg.entries);

    /* PERMANENT: not performed, DSQ_EIO */
    dsq_fault_store_reset_counts(st);
    dsq_fault_store_fail_at(st, 1, DSQ_FAULT_PERMANENT);
    ck_assert_int_eq(put_str(st, "k5", "5", DSQ_PUT_ANY, NULL, NULL), DSQ_EIO);
    ck_assert(!path_exists("k5"));

    /* fail every call from the 3rd on, until cleared */
    dsq_fault_store_reset_counts(st);
    dsq_fault_store_fail_at(st, 0, DSQ_FAULT_ERROR);
    dsq_fault_store_fail_from(st, 3, DSQ_FAULT_ERROR);
    ck_assert_int_eq(dsq_store_head(st, "k1", NULL, &e), DSQ_OK);
    ck_assert_int_eq(dsq_store_head(st, "k1", NULL, &e), DSQ_OK);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(dsq_store_head(st, "k1", NULL, &e), DSQ_ETRANSIENT);
    dsq_fault_store_clear(st);
    ck_assert_int_eq(dsq_store_head(st, "k1", NULL, &e), DSQ_OK);
    ck_assert_uint_eq(dsq_fault_store_faults(st), 5);

    /* the mask: "fail the 2nd put", gets are neither failed nor numbered */
    dsq_fault_store_reset_counts(st);
    dsq_fault_store_set_mask(st, DSQ_FOP_BIT(DSQ_FOP_PUT));
    dsq_fault_store_fail_at(st, 2, DSQ_FAULT_ERROR);
    ck_assert_int_eq(dsq_store_get(st, "k1", 0, 0, &b, NULL, &e), DSQ_OK);
    put_ok(st, "m1", "x");
    ck_assert_int_eq(dsq_store_get(st, "k1", 0, 0, &b, NULL, &e), DSQ_OK);
    ck_assert_int_eq(put_str(st, "m2", "x", DSQ_PUT_ANY, NULL, NULL),
                     DSQ_ETRANSIENT);
    ck_assert_uint_eq(dsq_fault_store_calls(st), 4);
    dsq_buf_cleanup(&b);
    dsq_store_free(st);
}
END_TEST

static void random_pattern(uint64_t seed, char *pat, int n)
{
    struct dsq_store *st = new_fault();
    dsq_fault_store_fail_random(st, 0.3, seed, DSQ_FAULT_ERROR);
    for (int i = 0; i < n; i++)
        pat[i] =
            dsq_store_head(st, "k", NULL, NULL) == DSQ_ETRANSIENT ? 'F' : '.';
    pat[n] = 0;
    dsq_store_free(st);
}

START_TEST(test_fault_random)
{
    enum { N = 2000 };
    static char p1[N + 1], p2[N + 1], p3[N + 1];
    put_ok(g_st, "k", "v");
    random_pattern(42, p1, N);
    random_pattern(42, p2, N);
    random_pattern(43, p3, N);
    ck_assert_str_eq(p1, p2);
    ck_assert_str_ne(p1, p3);
    int f = 0;
    for (int i = 0; i < N; i++)
        f += p1[i] == 'F';
    ck_assert_int_gt(f, N * 25 / 100);
    ck_assert_int_lt(f, N * 35 / 100);
}
END_TEST

/* The torture pattern the engine tests use, on a toy workload. */
static dsq_rc toy_workload(struct dsq_store *st)
{
    dsq_rc rc;
    char key[32];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof(key), "t/%d", i);
        rc = put_str(st, key, "v", DSQ_PUT_CREATE, NULL, NULL);
        if (rc == DSQ_ETRANSIENT) {
            /* outcome unknown: find out by reading, then go on */
            rc = dsq_store_head(st, key, NULL, NULL);
            if (rc == DSQ_ENOTFOUND)
                rc = put_str(st, key, "v", DSQ_PUT_CREATE, NULL, NULL);
        }
        if (rc != DSQ_OK)
            return rc;
    }
    return DSQ_OK;
}

START_TEST(test_fault_torture_pattern)
{
    struct dsq_store *st = new_fault();
    ck_assert_int_eq(toy_workload(st), DSQ_OK);
    uint64_t n = dsq_fault_store_calls(st);
    ck_assert_uint_eq(n, 4);
    dsq_store_free(st);
    char tdir[4096];
    snprintf(tdir, sizeof(tdir), "%s/t", g_dir);
    for (int mode = 0; mode < 2; mode++) {
        for (uint64_t i = 1; i <= n; i++) {
            dsq_test_rmrf(tdir);
            st = new_fault();
            dsq_fault_store_fail_at(st, i, (enum dsq_fault_mode)mode);
            ck_assert_int_eq(toy_workload(st), DSQ_OK);
            ck_assert_uint_eq(dsq_fault_store_faults(st), 1);
            for (int k = 0; k < 4; k++) {
                char key[32];
                snprintf(key, sizeof(key), "t/%d", k);
                ck_assert_int_eq(dsq_store_head(g_st, key, NULL, NULL), DSQ_OK);
            }
            dsq_store_free(st);
        }
    }
}
END_TEST

struct fthr {
    struct dsq_store *st;
    int n_transient;
    int n_other;
};

static void *fault_thr(void *p)
{
    struct fthr *a = p;
    for (int i = 0; i < 500; i++) {
        dsq_rc rc = dsq_store_head(a->st, "k", NULL, NULL);
        if (rc == DSQ_ETRANSIENT)
            a->n_transient++;
        else if (rc != DSQ_OK)
            a->n_other++;
    }
    return NULL;
}

START_TEST(test_fault_threads)
{
    enum { T = 4 };
    put_ok(g_st, "k", "v");
    struct dsq_store *st = new_fault();
    dsq_fault_store_fail_random(st, 0.1, 7, DSQ_FAULT_LOST_REPLY);
    pthread_t t[T];
    struct fthr a[T];
    for (int i = 0; i < T; i++) {
        a[i] = (struct fthr){.st = st};
        ck_assert_int_eq(pthread_create(&t[i], NULL, fault_thr, &a[i]), 0);
    }
    int transient = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].n_other, 0);
        transient += a[i].n_transient;
    }
    ck_assert_uint_eq(dsq_fault_store_calls(st), T * 500);
    ck_assert_uint_eq(dsq_fault_store_op_calls(st, DSQ_FOP_HEAD), T * 500);
    ck_assert_uint_eq(dsq_fault_store_faults(st), (uint64_t)transient);
    ck_assert_int_gt(transient, 100);
    ck_assert_int_lt(transient, 300);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_permission_errors)
{
    if (geteuid() == 0) {
        fprintf(stderr, "test_permission_errors: skipped (root)\n");
        return;
    }
    struct dsq_err e = {0};
    put_ok(g_st, "ro/k", "v");
    char p[4096];
    snprintf(p, sizeof(p), "%s/ro", g_dir);
    ck_assert_int_eq(chmod(p, 0555), 0);
    ck_assert_int_eq(
        dsq_store_put(g_st, "ro/k2", "x", 1, DSQ_PUT_ANY, NULL, NULL, &e),
        DSQ_EPERM);
    ck_assert(strstr(e.msg, "ro/k2") != NULL);
    ck_assert_int_eq(dsq_store_del(g_st, "ro/k", &e), DSQ_EPERM);
    ck_assert_int_eq(chmod(p, 0755), 0);
}
END_TEST

static Suite *store_file_suite(void)
{
    Suite *s = suite_create("store_file");
    TCase *tc = tcase_create("basic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_key_valid);
    tcase_add_test(tc, test_dispatch_rejects);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_ranges);
    tcase_add_test(tc, test_create_only);
    tcase_add_test(tc, test_create_only_link);
    tcase_add_test(tc, test_if_match);
    tcase_add_test(tc, test_etag_changes);
    tcase_add_test(tc, test_dir_conflicts);
    tcase_add_test(tc, test_fifo_is_not_an_object);
    tcase_add_test(tc, test_permission_errors);
    tcase_add_test(tc, test_open_url);
    suite_add_tcase(s, tc);

    tc = tcase_create("list");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_list_basic);
    tcase_add_test(tc, test_list_byte_order);
    tcase_add_test(tc, test_list_odd_requests);
    tcase_add_test(tc, test_list_hides_temps_deletes_nothing);
    tcase_add_test(tc, test_store_mode);
    tcase_add_test(tc, test_list_pagination);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, test_proc_create_race);
    tcase_add_test(tc, test_proc_create_race_link);
    tcase_add_test(tc, test_proc_if_match_counter);
    tcase_add_test(tc, test_thread_races);
    tcase_add_test(tc, test_torn_write_sigkill);
    tcase_add_test(tc, test_debris_old_tmpfiles_only);
    suite_add_tcase(s, tc);

    tc = tcase_create("fault");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fault_counts);
    tcase_add_test(tc, test_fault_modes);
    tcase_add_test(tc, test_fault_random);
    tcase_add_test(tc, test_fault_torture_pattern);
    tcase_add_test(tc, test_fault_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_file_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
