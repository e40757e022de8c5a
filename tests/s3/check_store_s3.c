/*
 * check_store_s3.c - the S3 backend against the real S3 server.
 *
 * Run by tests/integration/test_s3_store.sh under tests/s3/with_rgw.sh,
 * which exports AWS_* (the server's keys and endpoint) and DSQ_S3_BUCKET.
 * Each test works under its own random prefix of that bucket.  Faults are
 * injected by tests/support/faultproxy between the client and the server.
 */
#include "config.h"
#include "env.h"
#include "faultproxy.h"
#include "minihttp.h"
#include "store.h"
#include "store_s3.h"
#include "testutil.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *bucket;
static int s3_port;

static void need_env(void)
{
    bucket = getenv("DSQ_S3_BUCKET");
    const char *port = getenv("DSQ_S3_PORT");
    if (!bucket || !port || !getenv("AWS_ENDPOINT_URL")) {
        fprintf(stderr,
                "check_store_s3: run me through tests/s3/with_rgw.sh\n");
        exit(2);
    }
    s3_port = atoi(port);
}

typedef void (*tweak_fn)(struct dsq_config *c, void *arg);

/* Open s3://bucket/<prefix> with the environment's settings + tweak. */
static dsq_rc open_store(const char *prefix, tweak_fn tweak, void *arg,
                         struct dsq_store **out, struct dsq_err *e)
{
    struct dsq_config cfg;
    char url[1024];
    dsq_config_init(&cfg);
    ck_assert_int_eq(dsq_config_load_env(&cfg, NULL), DSQ_OK);
    cfg.max_retries = 4;
    cfg.retry_base_s = 0.01;
    cfg.retry_max_s = 0.1;
    if (tweak)
        tweak(&cfg, arg);
    snprintf(url, sizeof(url), "s3://%s/%s", bucket, prefix);
    dsq_rc rc = dsq_store_s3_open(url, &cfg, out, e);
    dsq_config_cleanup(&cfg);
    return rc;
}

static struct dsq_store *must_open(const char *prefix, tweak_fn tweak,
                                   void *arg)
{
    struct dsq_store *st = NULL;
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = open_store(prefix, tweak, arg, &st, &e);
    ck_assert_msg(rc == DSQ_OK, "open: %s", e.msg);
    return st;
}

static char *rand_prefix(const char *stem)
{
    char hex[33];
    static char buf[256];
    dsq_random_hex32(hex);
    snprintf(buf, sizeof(buf), "t-%s-%.8s", stem, hex);
    return buf;
}

static void put_ok(struct dsq_store *st, const char *key, const char *data,
                   enum dsq_put_cond cond, const char *etag,
                   struct dsq_objinfo *info)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc =
        dsq_store_put(st, key, data, strlen(data), cond, etag, info, &e);
    ck_assert_msg(rc == DSQ_OK, "put %s: %s (%s)", key, dsq_rc_name(rc), e.msg);
}

static void get_eq(struct dsq_store *st, const char *key, const char *want)
{
    struct dsq_buf b;
    struct dsq_err e;
    struct dsq_objinfo info;
    dsq_buf_init(&b, 64 << 20);
    dsq_err_clear(&e);
    dsq_rc rc = dsq_store_get(st, key, 0, 0, &b, &info, &e);
    ck_assert_msg(rc == DSQ_OK, "get %s: %s (%s)", key, dsq_rc_name(rc), e.msg);
    ck_assert_uint_eq(b.len, strlen(want));
    if (b.len)
        ck_assert_int_eq(memcmp(b.data, want, b.len), 0);
    ck_assert_uint_eq(info.size, strlen(want));
    dsq_buf_cleanup(&b);
}

/* ------------------------------------------------------------- basics */

START_TEST(test_selftest)
{
    struct dsq_store *st = must_open(rand_prefix("self"), NULL, NULL);
    struct dsq_err e;
    dsq_err_clear(&e);
    ck_assert_msg(dsq_store_s3_selftest(st, &e) == DSQ_OK, "%s", e.msg);
    /* the probe is gone */
    struct dsq_list_req lr = {0};
    struct dsq_list_page pg = {0};
    ck_assert_int_eq(dsq_store_list(st, &lr, &pg, &e), DSQ_OK);
    ck_assert_uint_eq(pg.n_entries, 0);
    dsq_list_page_cleanup(&pg);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_basic_ops)
{
    struct dsq_store *st = must_open(rand_prefix("basic"), NULL, NULL);
    struct dsq_objinfo pi, hi;
    struct dsq_err e;
    uint64_t t0 = dsq_now_ms();
    put_ok(st, "db/a", "hello world", DSQ_PUT_ANY, NULL, &pi);
    ck_assert_uint_eq(pi.size, 11);
    ck_assert_str_ne(pi.etag, "");
    ck_assert_ptr_null(strchr(pi.etag, '"'));
    get_eq(st, "db/a", "hello world");
    ck_assert_int_eq(dsq_store_head(st, "db/a", &hi, &e), DSQ_OK);
    ck_assert_uint_eq(hi.size, 11);
    ck_assert_str_eq(hi.etag, pi.etag);
    ck_assert_uint_ge(hi.mtime_ms + 5000, t0);
    ck_assert_uint_le(hi.mtime_ms, dsq_now_ms() + 5000);

    /* overwrite, empty object */
    put_ok(st, "db/a", "second", DSQ_PUT_ANY, NULL, NULL);
    get_eq(st, "db/a", "second");
    put_ok(st, "db/empty", "", DSQ_PUT_ANY, NULL, NULL);
    get_eq(st, "db/empty", "");

    /* missing keys */
    struct dsq_buf b;
    dsq_buf_init(&b, 1024);
    dsq_buf_append(&b, "keep", 4);
    ck_assert_int_eq(dsq_store_get(st, "db/nope", 0, 0, &b, NULL, &e),
                     DSQ_ENOTFOUND);
    ck_assert_uint_eq(b.len, 4); /* out untouched on failure */
    ck_assert_int_eq(e.http_status, 404);
    ck_assert_str_eq(e.code, "NoSuchKey");
    ck_assert_str_ne(e.request_id, "");
    ck_assert_ptr_nonnull(strstr(e.msg, "db/nope"));
    ck_assert_int_eq(dsq_store_head(st, "db/nope", &hi, &e), DSQ_ENOTFOUND);

    /* delete, twice */
    ck_assert_int_eq(dsq_store_del(st, "db/a", &e), DSQ_OK);
    ck_assert_int_eq(dsq_store_del(st, "db/a", &e), DSQ_OK);
    ck_assert_int_eq(dsq_store_head(st, "db/a", &hi, &e), DSQ_ENOTFOUND);
    dsq_buf_cleanup(&b);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_key_encoding)
{
    static const char *keys[] = {"sp ace/a b",
                                 "plus/a+b",
                                 "pct/100%25 %",
                                 "uni/caf\xc3\xa9",
                                 "uni/\xe2\x98\x83 snow",
                                 "sym/=&?#[]{}@!$'()*,;:",
                                 "tilde/~x_y-z.w",
                                 "ctl/tab\there",
                                 "deep/a/b/c/d/e/f"};
    size_t n = sizeof(keys) / sizeof(keys[0]);
    struct dsq_store *st = must_open(rand_prefix("keys"), NULL, NULL);
    for (size_t i = 0; i < n; i++)
        put_ok(st, keys[i], keys[i], DSQ_PUT_CREATE, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        get_eq(st, keys[i], keys[i]);
    /* the listing returns the very same keys, in byte order */
    struct dsq_list_req lr = {0};
    struct dsq_list_page pg = {0};
    struct dsq_err e;
    ck_assert_int_eq(dsq_store_list(st, &lr, &pg, &e), DSQ_OK);
    ck_assert_uint_eq(pg.n_entries, n);
    for (size_t i = 0; i < pg.n_entries; i++) {
        int found = 0;
        for (size_t j = 0; j < n; j++)
            found |= !strcmp(pg.entries[i].key, keys[j]);
        ck_assert_msg(found, "unexpected key '%s'", pg.entries[i].key);
        if (i)
            ck_assert_int_lt(strcmp(pg.entries[i - 1].key, pg.entries[i].key),
                             0);
    }
    dsq_list_page_cleanup(&pg);
    /* a prefix with a space and a plus */
    lr.prefix = "plus/a+";
    ck_assert_int_eq(dsq_store_list(st, &lr, &pg, &e), DSQ_OK);
    ck_assert_uint_eq(pg.n_entries, 1);
    ck_assert_str_eq(pg.entries[0].key, "plus/a+b");
    dsq_list_page_cleanup(&pg);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_conditional)
{
    struct dsq_store *st = must_open(rand_prefix("cond"), NULL, NULL);
    struct dsq_objinfo i1, i2;
    struct dsq_err e;
    /* create-only */
    put_ok(st, "m/1", "first", DSQ_PUT_CREATE, NULL, &i1);
    ck_assert_int_eq(
        dsq_store_put(st, "m/1", "second", 6, DSQ_PUT_CREATE, NULL, NULL, &e),
        DSQ_EPRECOND);
    ck_assert_msg(e.http_status == 412 || e.http_status == 409, "%d",
                  e.http_status);
    get_eq(st, "m/1", "first");

    /* if-match with the current etag (unquoted and quoted) */
    put_ok(st, "m/1", "third", DSQ_PUT_IF_MATCH, i1.etag, &i2);
    get_eq(st, "m/1", "third");
    ck_assert_str_ne(i1.etag, i2.etag);
    char quoted[DSQ_ETAG_MAX + 2];
    snprintf(quoted, sizeof(quoted), "\"%s\"", i2.etag);
    put_ok(st, "m/1", "fourth", DSQ_PUT_IF_MATCH, quoted, NULL);
    get_eq(st, "m/1", "fourth");
    /* a stale etag loses */
    ck_assert_int_eq(dsq_store_put(st, "m/1", "fifth", 5, DSQ_PUT_IF_MATCH,
                                   i1.etag, NULL, &e),
                     DSQ_EPRECOND);
    get_eq(st, "m/1", "fourth");
    /* if-match on a missing key loses too */
    ck_assert_int_eq(dsq_store_put(st, "m/none", "x", 1, DSQ_PUT_IF_MATCH,
                                   i1.etag, NULL, &e),
                     DSQ_EPRECOND);
    ck_assert_int_eq(dsq_store_head(st, "m/none", NULL, &e), DSQ_ENOTFOUND);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_ranges)
{
    struct dsq_store *st = must_open(rand_prefix("range"), NULL, NULL);
    struct dsq_buf b;
    struct dsq_objinfo info;
    struct dsq_err e;
    put_ok(st, "r", "0123456789", DSQ_PUT_ANY, NULL, NULL);
    dsq_buf_init(&b, 1024);

    dsq_buf_append(&b, "pre:", 4); /* get appends */
    ck_assert_int_eq(dsq_store_get(st, "r", 2, 3, &b, &info, &e), DSQ_OK);
    ck_assert_uint_eq(b.len, 7);
    ck_assert_int_eq(memcmp(b.data, "pre:234", 7), 0);
    ck_assert_uint_eq(info.size, 10);
    ck_assert_str_ne(info.etag, "");

    dsq_buf_reset(&b);
    ck_assert_int_eq(dsq_store_get(st, "r", 8, 100, &b, &info, &e), DSQ_OK);
    ck_assert_uint_eq(b.len, 2);
    ck_assert_int_eq(memcmp(b.data, "89", 2), 0);
    ck_assert_uint_eq(info.size, 10);

    dsq_buf_reset(&b);
    ck_assert_int_eq(dsq_store_get(st, "r", 10, 5, &b, &info, &e), DSQ_OK);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(info.size, 10);

    dsq_buf_reset(&b);
    ck_assert_int_eq(dsq_store_get(st, "r", 50, 5, &b, &info, &e), DSQ_OK);
    ck_assert_uint_eq(b.len, 0);

    dsq_buf_reset(&b);
    ck_assert_int_eq(dsq_store_get(st, "r", 7, 0, &b, &info, &e), DSQ_OK);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(memcmp(b.data, "789", 3), 0);

    /* a cap on the output buffer */
    struct dsq_buf small;
    dsq_buf_init(&small, 4);
    ck_assert_int_eq(dsq_store_get(st, "r", 0, 0, &small, NULL, &e),
                     DSQ_ERANGE);
    ck_assert_uint_eq(small.len, 0);
    dsq_buf_cleanup(&small);
    dsq_buf_cleanup(&b);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_large_object)
{
    struct dsq_store *st = must_open(rand_prefix("large"), NULL, NULL);
    size_t n = 12u << 20;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    struct dsq_err e;
    struct dsq_buf b;
    dsq_buf_init(&b, 64u << 20);
    ck_assert_int_eq(
        dsq_store_put(st, "big", data, n, DSQ_PUT_CREATE, NULL, NULL, &e),
        DSQ_OK);
    ck_assert_int_eq(dsq_store_get(st, "big", 0, 0, &b, NULL, &e), DSQ_OK);
    ck_assert_uint_eq(b.len, n);
    ck_assert_int_eq(memcmp(b.data, data, n), 0);
    dsq_buf_reset(&b);
    ck_assert_int_eq(dsq_store_get(st, "big", n - 100000, 200000, &b, NULL, &e),
                     DSQ_OK);
    ck_assert_uint_eq(b.len, 100000);
    ck_assert_int_eq(memcmp(b.data, data + n - 100000, 100000), 0);
    dsq_buf_cleanup(&b);
    free(data);
    dsq_store_free(st);
}
END_TEST

struct collect {
    unsigned n;
    char last[256];
};

static int collect_fn(const struct dsq_list_entry *ent, void *arg)
{
    struct collect *c = arg;
    ck_assert_int_lt(strcmp(c->last, ent->key), 0);
    snprintf(c->last, sizeof(c->last), "%s", ent->key);
    c->n++;
    return 0;
}

START_TEST(test_list)
{
    char root[256];
    snprintf(root, sizeof(root), "%s", rand_prefix("list"));
    char other[300];
    snprintf(other, sizeof(other), "%s-other", root);
    struct dsq_store *st = must_open(root, NULL, NULL);
    struct dsq_store *st2 = must_open(other, NULL, NULL);
    struct dsq_err e;
    char key[64];
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof(key), "db/seg/%03d", i);
        put_ok(st, key, "s", DSQ_PUT_ANY, NULL, NULL);
    }
    put_ok(st, "db/manifest", "m", DSQ_PUT_ANY, NULL, NULL);
    put_ok(st, "db2/x", "x", DSQ_PUT_ANY, NULL, NULL);
    put_ok(st2, "db/seg/000", "not mine", DSQ_PUT_ANY, NULL, NULL);

    /* delimiter */
    struct dsq_list_req lr = {.prefix = "db/", .delimiter = "/"};
    struct dsq_list_page pg = {0};
    ck_assert_int_eq(dsq_store_list(st, &lr, &pg, &e), DSQ_OK);
    ck_assert_uint_eq(pg.n_entries, 1);
    ck_assert_str_eq(pg.entries[0].key, "db/manifest");
    ck_assert_uint_eq(pg.entries[0].info.size, 1);
    ck_assert_str_ne(pg.entries[0].info.etag, "");
    ck_assert_uint_gt(pg.entries[0].info.mtime_ms, 0);
    ck_assert_uint_eq(pg.n_prefixes, 1);
    ck_assert_str_eq(pg.common_prefixes[0], "db/seg/");
    ck_assert_ptr_null(pg.next_token);
    dsq_list_page_cleanup(&pg);

    /* pages of 3 */
    struct dsq_list_req pr = {.prefix = "db/seg/", .max_keys = 3};
    unsigned total = 0, pages = 0;
    char *tok = NULL;
    do {
        pr.token = tok;
        ck_assert_int_eq(dsq_store_list(st, &pr, &pg, &e), DSQ_OK);
        total += (unsigned)pg.n_entries;
        pages++;
        free(tok);
        tok = pg.next_token ? strdup(pg.next_token) : NULL;
        dsq_list_page_cleanup(&pg);
    } while (tok);
    ck_assert_uint_eq(total, 7);
    ck_assert_uint_eq(pages, 3);

    /* start_after */
    struct dsq_list_req sa = {.prefix = "db/seg/", .start_after = "db/seg/004"};
    ck_assert_int_eq(dsq_store_list(st, &sa, &pg, &e), DSQ_OK);
    ck_assert_uint_eq(pg.n_entries, 2);
    ck_assert_str_eq(pg.entries[0].key, "db/seg/005");
    dsq_list_page_cleanup(&pg);

    /* the whole store, via the generic helper; the sibling prefix is not
       seen */
    struct collect c = {0};
    ck_assert_int_eq(dsq_store_list_all(st, NULL, NULL, collect_fn, &c, &e),
                     DSQ_OK);
    ck_assert_uint_eq(c.n, 9);
    dsq_store_free(st);
    dsq_store_free(st2);
}
END_TEST

/* -------------------------------------------------------------- errors */

struct tw {
    const char *endpoint;
    const char *secret;
    const char *access;
    const char *token;
    const char *ca_file;
    int insecure;
    unsigned low_speed;
    unsigned retries;
};

static void tweak(struct dsq_config *c, void *arg)
{
    struct tw *t = arg;
    if (t->endpoint) {
        free(c->endpoint);
        c->endpoint = strdup(t->endpoint);
    }
    if (t->secret) {
        free(c->secret_key);
        c->secret_key = strdup(t->secret);
    }
    if (t->access) {
        free(c->access_key);
        c->access_key = strdup(t->access);
    }
    if (t->token) {
        free(c->session_token);
        c->session_token = strdup(t->token);
    }
    if (t->ca_file) {
        free(c->ca_file);
        c->ca_file = strdup(t->ca_file);
    }
    c->insecure = t->insecure;
    if (t->low_speed)
        c->request_timeout_s = t->low_speed;
    if (t->retries)
        c->max_retries = t->retries;
}

/* Run a HEAD through a store opened with t; expect rc; print the line. */
static void expect_error(const char *what, struct tw *t, const char *bkt,
                         dsq_rc want, const char *needle)
{
    struct dsq_store *st = NULL;
    struct dsq_err e;
    struct dsq_config cfg;
    char url[512];
    dsq_config_init(&cfg);
    ck_assert_int_eq(dsq_config_load_env(&cfg, NULL), DSQ_OK);
    cfg.max_retries = 1;
    cfg.retry_base_s = 0.001;
    cfg.retry_max_s = 0.001;
    tweak(&cfg, t);
    snprintf(url, sizeof(url), "s3://%s/errors", bkt ? bkt : bucket);
    dsq_err_clear(&e);
    dsq_rc rc = dsq_store_s3_open(url, &cfg, &st, &e);
    ck_assert_msg(rc == DSQ_OK, "open: %s", e.msg);
    dsq_err_clear(&e);
    rc = dsq_store_s3_selftest(st, &e);
    printf("error case %-22s -> %s: %s\n", what, dsq_rc_name(rc), e.msg);
    ck_assert_msg(rc == want, "%s: got %s: %s", what, dsq_rc_name(rc), e.msg);
    ck_assert_msg(strstr(e.msg, needle), "%s: '%s' lacks '%s'", what, e.msg,
                  needle);
    ck_assert_ptr_null(strchr(e.msg, '\n'));
    /* never a secret in a message */
    ck_assert_ptr_null(strstr(e.msg, getenv("AWS_SECRET_ACCESS_KEY")));
    ck_assert_ptr_null(strstr(e.msg, getenv("AWS_ACCESS_KEY_ID")));
    if (t->secret)
        ck_assert_ptr_null(strstr(e.msg, t->secret));
    if (t->token)
        ck_assert_ptr_null(strstr(e.msg, t->token));
    dsq_store_free(st);
    dsq_config_cleanup(&cfg);
}

START_TEST(test_error_messages)
{
    char ep[256];
    struct tw t;

    memset(&t, 0, sizeof(t));
    t.secret = "wrongSecretKey0123456789abcdefghijklmnop";
    expect_error("wrong secret", &t, NULL, DSQ_EAUTH, "secret key is wrong");

    /* the same through a HEAD, whose error has no body */
    memset(&t, 0, sizeof(t));
    t.secret = "wrongSecretKey0123456789abcdefghijklmnop";
    {
        struct dsq_store *st = must_open("errors", tweak, &t);
        struct dsq_err e;
        ck_assert_int_eq(dsq_store_head(st, "x", NULL, &e), DSQ_EAUTH);
        printf("error case %-22s -> %s\n", "wrong secret (HEAD)", e.msg);
        ck_assert_ptr_nonnull(strstr(e.msg, "secret key is wrong"));
        ck_assert_ptr_nonnull(strstr(e.msg, "HEAD s3://"));
        dsq_store_free(st);
    }

    memset(&t, 0, sizeof(t));
    t.access = "NOSUCHACCESSKEY";
    expect_error("unknown access key", &t, NULL, DSQ_EAUTH,
                 "access key id is not known");

    memset(&t, 0, sizeof(t));
    expect_error("missing bucket", &t, "dsq-no-such-bucket", DSQ_EIO,
                 "bucket 'dsq-no-such-bucket' does not exist");

    /* a port nothing listens on (the monitor range of a stopped server) */
    memset(&t, 0, sizeof(t));
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 1);
    t.endpoint = ep;
    expect_error("connection refused", &t, NULL, DSQ_ETRANSIENT,
                 "cannot connect to 127.0.0.1:1");

    /* DNS: a label over 63 bytes fails in the resolver library itself, so
       no query leaves the machine */
    memset(&t, 0, sizeof(t));
    snprintf(ep, sizeof(ep), "http://%s.invalid:80",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
             "aaaaa");
    t.endpoint = ep;
    expect_error("DNS failure", &t, NULL, DSQ_ETRANSIENT,
                 "cannot resolve host");

    /* TLS to a plain-HTTP port */
    memset(&t, 0, sizeof(t));
    snprintf(ep, sizeof(ep), "https://127.0.0.1:%d", s3_port);
    t.endpoint = ep;
    expect_error("TLS handshake failure", &t, NULL, DSQ_EIO, "TLS");
}
END_TEST

static void tls_passes(struct tw *t)
{
    struct dsq_store *st = must_open("tls", tweak, t);
    struct dsq_list_req lr = {0};
    struct dsq_list_page pg = {0};
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_store_list(st, &lr, &pg, &e);
    printf("TLS %s -> %s: %s\n", t->insecure ? "insecure" : "with ca_file",
           dsq_rc_name(rc), e.msg);
    /* past TLS: the toy server's HTML is no S3 listing */
    ck_assert_int_eq(rc, DSQ_ECORRUPT);
    ck_assert_ptr_null(strstr(e.msg, "TLS"));
    dsq_list_page_cleanup(&pg);
    dsq_store_free(st);
}

/* A TLS server with a self-signed certificate: verification is on by
   default; -o ca_file= and -o insecure get past it. */
START_TEST(test_tls_verification)
{
    char *dir = dsq_test_tmpdir("tls");
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem "
             "-out c.pem -days 1 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             dir);
    ck_assert_int_eq(system(cmd), 0);
    int port = 0;
    pid_t pid = 0;
    for (int tries = 0; tries < 20 && !pid; tries++) {
        port = 30000 + (int)dsq_random_below(20000);
        pid = fork();
        if (pid == 0) {
            char p[16];
            snprintf(p, sizeof(p), "%d", port);
            if (chdir(dir) != 0)
                _exit(1);
            freopen("/dev/null", "w", stdout);
            freopen("/dev/null", "w", stderr);
            execlp("openssl", "openssl", "s_server", "-accept", p, "-4",
                   "-cert", "c.pem", "-key", "k.pem", "-www", "-quiet",
                   (char *)NULL);
            _exit(127);
        }
        usleep(500000);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            pid = 0; /* port taken: try another */
    }
    ck_assert_int_gt(pid, 0);

    char ep[128], ca[4096];
    snprintf(ep, sizeof(ep), "https://127.0.0.1:%d", port);
    snprintf(ca, sizeof(ca), "%s/c.pem", dir);
    struct tw t;
    memset(&t, 0, sizeof(t));
    t.endpoint = ep;
    expect_error("TLS untrusted cert", &t, NULL, DSQ_EIO,
                 "TLS certificate of 127.0.0.1");
    /* with the CA, or insecure, TLS passes (the toy server then answers
       something that is not S3: any error but a TLS one) */
    t.low_speed = 2;
    t.ca_file = ca;
    tls_passes(&t);
    t.ca_file = NULL;
    t.insecure = 1;
    tls_passes(&t);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    dsq_test_rmrf(dir);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------- faults */

static struct dsq_faultproxy *proxy;
static char proxy_ep[64];
static uint64_t slept[64];
static unsigned n_slept;

static void record_sleep(uint64_t ms)
{
    if (n_slept < 64)
        slept[n_slept] = ms;
    n_slept++;
}

static void proxy_setup(void)
{
    proxy = dsq_faultproxy_start("127.0.0.1", s3_port);
    snprintf(proxy_ep, sizeof(proxy_ep), "http://127.0.0.1:%d",
             dsq_faultproxy_port(proxy));
    n_slept = 0;
    dsq_env.sleep_ms = record_sleep; /* instant backoff, recorded */
}

static void proxy_teardown(void)
{
    dsq_faultproxy_stop(proxy);
    dsq_env_reset();
}

static struct dsq_store *open_proxied(const char *stem, unsigned retries)
{
    struct tw t;
    memset(&t, 0, sizeof(t));
    t.endpoint = proxy_ep;
    t.retries = retries;
    return must_open(rand_prefix(stem), tweak, &t);
}

START_TEST(test_retry_5xx)
{
    struct dsq_store *st = open_proxied("r5xx", 5);
    struct dsq_s3_stats s0, s1;
    struct dsq_err e;
    put_ok(st, "k", "v1", DSQ_PUT_ANY, NULL, NULL);

    dsq_store_s3_stats(st, &s0);
    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 503, 2, "GET");
    get_eq(st, "k", "v1");
    dsq_store_s3_stats(st, &s1);
    ck_assert_uint_eq(s1.retries - s0.retries, 2);
    ck_assert_uint_eq(n_slept, 2);

    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 500, 1, "PUT");
    put_ok(st, "k", "v2", DSQ_PUT_ANY, NULL, NULL);
    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 502, 1, "HEAD");
    ck_assert_int_eq(dsq_store_head(st, "k", NULL, &e), DSQ_OK);
    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 504, 1, "DELETE");
    ck_assert_int_eq(dsq_store_del(st, "k", &e), DSQ_OK);

    /* exhausted: 1 + 5 attempts, then DSQ_ETRANSIENT naming the code */
    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 503, 100, "GET");
    struct dsq_buf b;
    dsq_buf_init(&b, 1024);
    ck_assert_int_eq(dsq_store_get(st, "k", 0, 0, &b, NULL, &e),
                     DSQ_ETRANSIENT);
    printf("retries exhausted -> %s\n", e.msg);
    ck_assert_ptr_nonnull(strstr(e.msg, "SlowDown"));
    ck_assert_ptr_nonnull(strstr(e.msg, "6 attempts"));
    ck_assert_int_eq(e.http_status, 503);
    dsq_faultproxy_set(proxy, DSQ_FAULT_PASS, 0, 0, NULL);
    dsq_buf_cleanup(&b);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_backoff_full_jitter)
{
    /* sleep(n) = random(0, min(max, base * 2^n)) */
    struct tw t;
    memset(&t, 0, sizeof(t));
    t.endpoint = proxy_ep;
    t.retries = 8;
    struct dsq_store *st = NULL;
    struct dsq_err e;
    struct dsq_config cfg;
    char url[512];
    dsq_config_init(&cfg);
    ck_assert_int_eq(dsq_config_load_env(&cfg, NULL), DSQ_OK);
    tweak(&cfg, &t);
    cfg.retry_base_s = 0.1;
    cfg.retry_max_s = 1.0;
    snprintf(url, sizeof(url), "s3://%s/%s", bucket, rand_prefix("jit"));
    ck_assert_int_eq(dsq_store_s3_open(url, &cfg, &st, &e), DSQ_OK);
    dsq_config_cleanup(&cfg);
    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 503, 100, "HEAD");
    for (int round = 0; round < 10; round++) {
        n_slept = 0;
        ck_assert_int_eq(dsq_store_head(st, "x", NULL, &e), DSQ_ETRANSIENT);
        ck_assert_uint_eq(n_slept <= 8 ? 1 : 0, 1);
        for (unsigned i = 0; i < n_slept && i < 64; i++) {
            double cap = 100.0 * (double)(1u << i);
            if (cap > 1000.0)
                cap = 1000.0;
            ck_assert_msg((double)slept[i] <= cap, "sleep %u = %llu > %g", i,
                          (unsigned long long)slept[i], cap);
        }
    }
    dsq_faultproxy_set(proxy, DSQ_FAULT_PASS, 0, 0, NULL);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_reset_and_drop)
{
    struct dsq_store *st = open_proxied("reset", 4);
    struct dsq_err e;
    put_ok(st, "k", "v", DSQ_PUT_ANY, NULL, NULL);
    /* GET on a reset connection: retried */
    dsq_faultproxy_set(proxy, DSQ_FAULT_RESET, 0, 2, "GET");
    get_eq(st, "k", "v");
    /* an unconditional PUT whose reply is lost: retried */
    dsq_faultproxy_set(proxy, DSQ_FAULT_DROP_REPLY, 0, 1, "PUT");
    put_ok(st, "k", "v2", DSQ_PUT_ANY, NULL, NULL);
    get_eq(st, "k", "v2");
    /* a list whose reply is lost */
    dsq_faultproxy_set(proxy, DSQ_FAULT_DROP_REPLY, 0, 1, "GET");
    struct dsq_list_req lr = {0};
    struct dsq_list_page pg = {0};
    ck_assert_int_eq(dsq_store_list(st, &lr, &pg, &e), DSQ_OK);
    ck_assert_uint_eq(pg.n_entries, 1);
    dsq_list_page_cleanup(&pg);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_conditional_ambiguous)
{
    struct dsq_store *st = open_proxied("ambig", 4);
    struct dsq_s3_stats s0, s1;
    struct dsq_err e;
    unsigned before;

    /* 503 on a create-only PUT: not retried, outcome unknown */
    before = dsq_faultproxy_requests(proxy);
    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 503, 1, "PUT");
    ck_assert_int_eq(
        dsq_store_put(st, "v/1", "mine", 4, DSQ_PUT_CREATE, NULL, NULL, &e),
        DSQ_ETRANSIENT);
    printf("conditional 503 -> %s\n", e.msg);
    ck_assert_ptr_nonnull(strstr(e.msg, "outcome unknown"));
    ck_assert_uint_eq(dsq_faultproxy_requests(proxy) - before, 1);
    /* it was not applied (the proxy answered): the key is free */
    ck_assert_int_eq(dsq_store_head(st, "v/1", NULL, &e), DSQ_ENOTFOUND);

    /* the PUT reaches the server, the reply is lost: outcome unknown, and
       reading shows it did land; no blind retry turned it into a 412 */
    dsq_store_s3_stats(st, &s0);
    for (int i = 0; i < 3; i++) {
        char key[32], val[32];
        snprintf(key, sizeof(key), "v/%d", 10 + i);
        snprintf(val, sizeof(val), "mine-%d", i);
        /* warm the connection so the drop hits a reused one (where
           libcurl itself would re-send) as well as fresh ones */
        if (i == 1)
            ck_assert_int_eq(dsq_store_head(st, "v/1", NULL, &e),
                             DSQ_ENOTFOUND);
        dsq_faultproxy_set(proxy, DSQ_FAULT_DROP_REPLY, 0, 1, "PUT");
        dsq_rc rc = dsq_store_put(st, key, val, strlen(val), DSQ_PUT_CREATE,
                                  NULL, NULL, &e);
        ck_assert_msg(rc == DSQ_ETRANSIENT || rc == DSQ_OK, "%s: %s",
                      dsq_rc_name(rc), e.msg);
        ck_assert_msg(rc != DSQ_EPRECOND, "lost reply became a 412");
        get_eq(st, key, val);
    }
    dsq_store_s3_stats(st, &s1);
    ck_assert_uint_ge(s1.ambiguous - s0.ambiguous, 1);

    /* the same for if-match */
    struct dsq_objinfo info;
    put_ok(st, "m", "a", DSQ_PUT_CREATE, NULL, &info);
    dsq_faultproxy_set(proxy, DSQ_FAULT_DROP_REPLY, 0, 1, "PUT");
    dsq_rc rc =
        dsq_store_put(st, "m", "b", 1, DSQ_PUT_IF_MATCH, info.etag, NULL, &e);
    ck_assert_msg(rc == DSQ_ETRANSIENT || rc == DSQ_OK, "%s", e.msg);
    get_eq(st, "m", "b");

    /* a conditional PUT that never connected is retried safely */
    dsq_faultproxy_set(proxy, DSQ_FAULT_PASS, 0, 0, NULL);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_timeout)
{
    struct tw t;
    memset(&t, 0, sizeof(t));
    t.endpoint = proxy_ep;
    t.low_speed = 1;
    t.retries = 1;
    struct dsq_store *st = must_open(rand_prefix("slow"), tweak, &t);
    struct dsq_err e;
    put_ok(st, "k", "v", DSQ_PUT_ANY, NULL, NULL);
    /* one slow answer: the retry gets through */
    dsq_faultproxy_set(proxy, DSQ_FAULT_DELAY, 2500, 1, "GET");
    get_eq(st, "k", "v");
    /* always slow: gives up with a timeout message */
    dsq_faultproxy_set(proxy, DSQ_FAULT_DELAY, 2500, 2, "GET");
    struct dsq_buf b;
    dsq_buf_init(&b, 1024);
    ck_assert_int_eq(dsq_store_get(st, "k", 0, 0, &b, NULL, &e),
                     DSQ_ETRANSIENT);
    printf("timeout -> %s\n", e.msg);
    ck_assert_ptr_nonnull(strstr(e.msg, "timed out"));
    dsq_buf_cleanup(&b);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_selftest_refuses)
{
    struct dsq_store *st = open_proxied("noncond", 2);
    struct dsq_err e;
    /* a server that ignores If-None-Match (every PUT "succeeds") */
    dsq_faultproxy_set(proxy, DSQ_FAULT_ACK, 0, 100, "PUT");
    ck_assert_int_eq(dsq_store_s3_selftest(st, &e), DSQ_EUNSUPPORTED);
    printf("no conditional writes -> %s\n", e.msg);
    ck_assert_ptr_nonnull(strstr(e.msg, "does not enforce create-only"));
    ck_assert_ptr_nonnull(strstr(e.msg, "read-write use is refused"));
    /* a server answering 501 NotImplemented to conditional PUTs */
    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 501, 100, "PUT");
    ck_assert_int_eq(dsq_store_s3_selftest(st, &e), DSQ_EUNSUPPORTED);
    printf("501 on conditional PUT -> %s\n", e.msg);
    ck_assert_ptr_nonnull(strstr(e.msg, "refuses create-only"));
    dsq_faultproxy_set(proxy, DSQ_FAULT_PASS, 0, 0, NULL);
    ck_assert_int_eq(dsq_store_s3_selftest(st, &e), DSQ_OK);
    dsq_store_free(st);
}
END_TEST

/* The probe's first create-only PUT applied but its reply lost: the retry
   meets our own object (412), which is no reason to refuse the store;
   nor is a 503 to a probe PUT. */
START_TEST(test_selftest_lost_reply)
{
    struct dsq_store *st = open_proxied("lostprobe", 4);
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_faultproxy_set(proxy, DSQ_FAULT_DROP_REPLY, 0, 1, "PUT");
    ck_assert_msg(dsq_store_s3_selftest(st, &e) == DSQ_OK, "%s", e.msg);
    /* and one answered 503 (a conditional PUT: not retried blindly, the
       outcome is unknown): the self-test reads, then sends it again */
    for (unsigned n = 1; n <= 3; n++) {
        dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 503, n, "PUT");
        ck_assert_msg(dsq_store_s3_selftest(st, &e) == DSQ_OK, "%u: %s", n,
                      e.msg);
    }
    dsq_faultproxy_set(proxy, DSQ_FAULT_PASS, 0, 0, NULL);
    dsq_store_free(st);
}
END_TEST

START_TEST(test_expired_token)
{
    /* static credentials: a clear, permanent error */
    struct dsq_store *st = open_proxied("exp", 3);
    struct dsq_err e;
    dsq_faultproxy_set_code(proxy, "ExpiredToken");
    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 400, 1, "GET");
    struct dsq_buf b;
    dsq_buf_init(&b, 1024);
    ck_assert_int_eq(dsq_store_get(st, "k", 0, 0, &b, NULL, &e), DSQ_EAUTH);
    dsq_buf_cleanup(&b);
    printf("expired token -> %s\n", e.msg);
    ck_assert_ptr_nonnull(strstr(e.msg, "session token is expired"));
    dsq_store_free(st);
}
END_TEST

struct cstand {
    unsigned served;
    char ak[128], sk[128];
};

static void cstand_fn(const struct dsq_minihttp_req *rq,
                      struct dsq_minihttp_resp *rs, void *arg)
{
    struct cstand *c = arg;
    (void)rq;
    c->served++;
    char exp[32];
    /* just past the refresh window: due again 2 s from now */
    dsq_format_time_ms(dsq_now_ms() + 5 * 60 * 1000 + 2000, exp);
    snprintf(rs->body, sizeof(rs->body),
             "{\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\","
             "\"Expiration\":\"%s\"}",
             c->ak, c->sk, exp);
}

/* Take the server's keys from a container endpoint stand-in instead. */
static struct dsq_minihttp *use_container_creds(struct cstand *c)
{
    snprintf(c->ak, sizeof(c->ak), "%s", getenv("AWS_ACCESS_KEY_ID"));
    snprintf(c->sk, sizeof(c->sk), "%s", getenv("AWS_SECRET_ACCESS_KEY"));
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
    struct dsq_minihttp *srv = dsq_minihttp_start(cstand_fn, c);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/creds",
             dsq_minihttp_port(srv));
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    return srv;
}

START_TEST(test_expired_token_refresh)
{
    /* temporary credentials: the server's ExpiredToken makes the store
       fetch new ones and send again */
    struct cstand c = {0};
    struct dsq_minihttp *srv = use_container_creds(&c);
    struct dsq_store *st = open_proxied("exp2", 3);
    struct dsq_s3_stats s;
    ck_assert_uint_eq(c.served, 1);
    put_ok(st, "k", "v", DSQ_PUT_CREATE, NULL, NULL);
    dsq_faultproxy_set_code(proxy, "ExpiredToken");
    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 400, 1, "GET");
    get_eq(st, "k", "v");
    ck_assert_uint_eq(c.served, 2);
    dsq_store_s3_stats(st, &s);
    ck_assert_uint_eq(s.creds_refreshes, 1);
    /* also for a conditional PUT: refused before being applied */
    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 403, 1, "PUT");
    put_ok(st, "k2", "v2", DSQ_PUT_CREATE, NULL, NULL);
    ck_assert_uint_eq(c.served, 3);
    /* and for a HEAD, whose 403 has no body to say why */
    dsq_faultproxy_set(proxy, DSQ_FAULT_STATUS, 403, 1, "HEAD");
    ck_assert_int_eq(dsq_store_head(st, "k2", NULL, NULL), DSQ_OK);
    ck_assert_uint_eq(c.served, 4);
    dsq_store_free(st);
    dsq_minihttp_stop(srv);
}
END_TEST

/* -------------------------------------------------------- concurrency */

#define N_PROCS 4
#define N_VERSIONS 25

/* Each process commits "versions" create-only, like the engine's
   manifests: find the next free number, try to create it. */
static void committer(const char *prefix, int id, int fd)
{
    struct dsq_store *st = NULL;
    struct dsq_err e;
    if (open_store(prefix, NULL, NULL, &st, &e) != DSQ_OK)
        _exit(10);
    unsigned next = 0, wins = 0;
    while (next < N_VERSIONS) {
        char key[64], val[64];
        snprintf(key, sizeof(key), "db/v/%06u", next);
        snprintf(val, sizeof(val), "writer %d version %u", id, next);
        dsq_rc rc = dsq_store_put(st, key, val, strlen(val), DSQ_PUT_CREATE,
                                  NULL, NULL, &e);
        if (rc == DSQ_OK) {
            wins++;
            dprintf(fd, "%u %d\n", next, id);
            next++;
        } else if (rc == DSQ_EPRECOND) {
            next++;
        } else {
            _exit(11);
        }
    }
    dsq_store_free(st);
    _exit(0);
}

START_TEST(test_concurrent_committers)
{
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "%s", rand_prefix("race"));
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pids[N_PROCS];
    for (int i = 0; i < N_PROCS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(pfd[0]);
            committer(prefix, i, pfd[1]);
        }
    }
    close(pfd[1]);
    int winner[N_VERSIONS];
    for (int i = 0; i < N_VERSIONS; i++)
        winner[i] = -1;
    FILE *f = fdopen(pfd[0], "r");
    unsigned v;
    int id, total = 0;
    while (fscanf(f, "%u %d", &v, &id) == 2) {
        ck_assert_uint_lt(v, N_VERSIONS);
        ck_assert_msg(winner[v] == -1, "version %u won by %d and %d", v,
                      winner[v], id);
        winner[v] = id;
        total++;
    }
    fclose(f);
    for (int i = 0; i < N_PROCS; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "committer %d failed: %d", i, st);
    }
    ck_assert_int_eq(total, N_VERSIONS);
    /* the stored content is the winner's */
    struct dsq_store *st = must_open(prefix, NULL, NULL);
    int per[N_PROCS] = {0};
    for (int i = 0; i < N_VERSIONS; i++) {
        char key[64], val[64];
        snprintf(key, sizeof(key), "db/v/%06d", i);
        snprintf(val, sizeof(val), "writer %d version %d", winner[i], i);
        get_eq(st, key, val);
        per[winner[i]]++;
    }
    printf("concurrent committers: %d processes, %d versions, wins:", N_PROCS,
           N_VERSIONS);
    for (int i = 0; i < N_PROCS; i++)
        printf(" %d", per[i]);
    printf("\n");
    dsq_store_free(st);
}
END_TEST

struct thr {
    struct dsq_store *st;
    int id;
    int errors;
};

static void *thread_main(void *arg)
{
    struct thr *t = arg;
    struct dsq_err e;
    struct dsq_buf b;
    dsq_buf_init(&b, 1 << 20);
    for (int i = 0; i < 40; i++) {
        char key[64], val[64];
        snprintf(key, sizeof(key), "t%d/%d", t->id, i % 5);
        snprintf(val, sizeof(val), "thread %d iteration %d", t->id, i);
        if (dsq_store_put(t->st, key, val, strlen(val), DSQ_PUT_ANY, NULL, NULL,
                          &e) != DSQ_OK)
            t->errors++;
        dsq_buf_reset(&b);
        if (dsq_store_get(t->st, key, 0, 0, &b, NULL, &e) != DSQ_OK ||
            b.len != strlen(val) || memcmp(b.data, val, b.len))
            t->errors++;
    }
    dsq_buf_cleanup(&b);
    return NULL;
}

START_TEST(test_threads_share_store)
{
    struct dsq_store *st = must_open(rand_prefix("thr"), NULL, NULL);
    pthread_t th[8];
    struct thr t[8];
    for (int i = 0; i < 8; i++) {
        t[i] = (struct thr){st, i, 0};
        pthread_create(&th[i], NULL, thread_main, &t[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(t[i].errors, 0);
    }
    struct dsq_s3_stats s;
    dsq_store_s3_stats(st, &s);
    ck_assert_uint_eq(s.retries, 0);
    dsq_store_free(st);
}
END_TEST

/* ------------------------------------------------- credential refresh */

START_TEST(test_container_creds_refresh)
{
    /* the store takes its keys from a container endpoint stand-in, which
       hands out credentials about to expire; they are refreshed while the
       store keeps working, without reopening it */
    struct cstand c = {0};
    struct dsq_minihttp *srv = use_container_creds(&c);

    struct dsq_store *st = must_open(rand_prefix("cref"), NULL, NULL);
    ck_assert_uint_eq(c.served, 1);
    put_ok(st, "k", "v1", DSQ_PUT_ANY, NULL, NULL);
    ck_assert_uint_eq(c.served, 1);
    sleep(3);
    put_ok(st, "k", "v2", DSQ_PUT_ANY, NULL, NULL);
    ck_assert_uint_eq(c.served, 2);
    get_eq(st, "k", "v2");
    dsq_store_free(st);
    dsq_minihttp_stop(srv);
}
END_TEST

/* ----------------------------------------------------------- latency */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *ns, size_t n)
{
    qsort(ns, n, sizeof(*ns), cmp_u64);
    printf("latency %-14s n=%zu median %.2f ms  p99 %.2f ms  max %.2f ms\n",
           what, n, ns[n / 2] / 1e6, ns[(n * 99) / 100] / 1e6, ns[n - 1] / 1e6);
}

START_TEST(test_latency)
{
    struct dsq_store *st = must_open(rand_prefix("lat"), NULL, NULL);
    enum { N = 300 };
    static uint64_t put_ns[N], get_ns[N];
    size_t sizes[] = {4096, 1u << 20};
    struct dsq_err e;
    struct dsq_buf b;
    dsq_buf_init(&b, 4u << 20);
    for (size_t si = 0; si < 2; si++) {
        size_t sz = sizes[si];
        size_t n = sz > 65536 ? 40 : N;
        uint8_t *data = malloc(sz);
        memset(data, 'x', sz);
        for (size_t i = 0; i < n; i++) {
            char key[64];
            snprintf(key, sizeof(key), "o/%zu/%zu", sz, i);
            uint64_t t0 = dsq_mono_ns();
            ck_assert_int_eq(dsq_store_put(st, key, data, sz, DSQ_PUT_CREATE,
                                           NULL, NULL, &e),
                             DSQ_OK);
            put_ns[i] = dsq_mono_ns() - t0;
        }
        for (size_t i = 0; i < n; i++) {
            char key[64];
            snprintf(key, sizeof(key), "o/%zu/%zu", sz, i);
            dsq_buf_reset(&b);
            uint64_t t0 = dsq_mono_ns();
            ck_assert_int_eq(dsq_store_get(st, key, 0, 0, &b, NULL, &e),
                             DSQ_OK);
            get_ns[i] = dsq_mono_ns() - t0;
            ck_assert_uint_eq(b.len, sz);
        }
        char what[32];
        snprintf(what, sizeof(what), "PUT %zuK", sz / 1024);
        report(what, put_ns, n);
        snprintf(what, sizeof(what), "GET %zuK", sz / 1024);
        report(what, get_ns, n);
        free(data);
    }
    dsq_buf_cleanup(&b);
    dsq_store_free(st);
}
END_TEST

static Suite *s3_suite(void)
{
    Suite *s = suite_create("store_s3");
    TCase *tc = tcase_create("server");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_selftest);
    tcase_add_test(tc, test_basic_ops);
    tcase_add_test(tc, test_key_encoding);
    tcase_add_test(tc, test_conditional);
    tcase_add_test(tc, test_ranges);
    tcase_add_test(tc, test_large_object);
    tcase_add_test(tc, test_list);
    tcase_add_test(tc, test_error_messages);
    tcase_add_test(tc, test_tls_verification);
    tcase_add_test(tc, test_concurrent_committers);
    tcase_add_test(tc, test_threads_share_store);
    tcase_add_test(tc, test_container_creds_refresh);
    tcase_add_test(tc, test_latency);
    suite_add_tcase(s, tc);

    TCase *tf = tcase_create("faults");
    tcase_set_timeout(tf, 120);
    tcase_add_checked_fixture(tf, proxy_setup, proxy_teardown);
    tcase_add_test(tf, test_retry_5xx);
    tcase_add_test(tf, test_backoff_full_jitter);
    tcase_add_test(tf, test_reset_and_drop);
    tcase_add_test(tf, test_conditional_ambiguous);
    tcase_add_test(tf, test_timeout);
    tcase_add_test(tf, test_selftest_refuses);
    tcase_add_test(tf, test_selftest_lost_reply);
    tcase_add_test(tf, test_expired_token);
    tcase_add_test(tf, test_expired_token_refresh);
    suite_add_tcase(s, tf);
    return s;
}

int main(void)
{
    need_env();
    setvbuf(stdout, NULL, _IOLBF, 0);
    SRunner *sr = srunner_create(s3_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
