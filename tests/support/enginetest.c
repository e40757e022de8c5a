/*
 * enginetest.c - helpers for engine tests.  See enginetest.h.
 */
#include "enginetest.h"

#include "testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void dsq_test_config(struct dsq_config *cfg, unsigned checkpoint_interval)
{
    dsq_config_init(cfg);
    cfg->checkpoint_interval = checkpoint_interval;
    cfg->retry_base_s = 0.0005;
    cfg->retry_max_s = 0.01;
    cfg->max_retries = 20;
    /* no disk cache unless a test asks for one (with its own cache_dir):
       "auto" turns it on for the fault store and S3, under ~ */
    cfg->disk_cache = 0;
}

void dsq_test_open(const char *dir, const struct dsq_config *cfg,
                   struct dsq_store **st, struct dsq_db **db)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_store_file_open(dir, st, &e);
    if (rc == DSQ_OK)
        rc = dsq_db_open(*st, "db", cfg, db, &e);
    if (rc != DSQ_OK) {
        fprintf(stderr, "open %s: %s\n", dir, dsq_err_text(&e, rc));
        abort();
    }
}

struct dsq_txn *dsq_test_txn_from_file(struct dsq_snap *s, const char *path)
{
    size_t len;
    uint8_t *img = dsq_test_read_file(path, &len);
    struct dsq_err e;
    struct dsq_txn *t = NULL;
    dsq_err_clear(&e);
    if (!img || len < 100)
        goto fail;
    uint32_t ps = ((uint32_t)img[16] << 8) | img[17];
    if (ps == 1)
        ps = 65536;
    if (len % ps)
        goto fail;
    uint32_t n = (uint32_t)(len / ps);
    if (dsq_txn_begin(s, 0, &t, &e) != DSQ_OK)
        goto fail;
    if (dsq_snap_page_count(s) == 0 &&
        dsq_txn_set_page_size(t, ps, &e) != DSQ_OK)
        goto fail;
    if (dsq_txn_page_size(t) != ps)
        goto fail;
    uint8_t *old = malloc(ps);
    for (uint32_t p = 1; p <= n; p++) {
        int same = 0;
        if (p <= dsq_snap_page_count(s)) {
            if (dsq_snap_read_page(s, p, old, &e) != DSQ_OK) {
                free(old);
                goto fail;
            }
            same = memcmp(old, img + (size_t)(p - 1) * ps, ps) == 0;
        }
        if (!same && dsq_txn_write_page(t, p, img + (size_t)(p - 1) * ps, &e) !=
                         DSQ_OK) {
            free(old);
            goto fail;
        }
    }
    free(old);
    if (dsq_txn_set_page_count(t, n, &e) != DSQ_OK)
        goto fail;
    free(img);
    return t;
fail:
    fprintf(stderr, "txn_from_file %s: %s\n", path, dsq_err_text(&e, 0));
    dsq_txn_free(t);
    free(img);
    return NULL;
}

dsq_rc dsq_test_commit_file(struct dsq_db *db, const char *path,
                            uint64_t *version, struct dsq_err *e)
{
    struct dsq_snap *s = NULL;
    dsq_rc rc = dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, e);
    if (rc != DSQ_OK)
        return rc;
    struct dsq_txn *t = dsq_test_txn_from_file(s, path);
    dsq_snap_release(s);
    if (!t)
        return dsq_err_set(e, DSQ_EIO, "cannot build txn from %s", path);
    struct dsq_commit_info ci;
    rc = dsq_txn_commit(t, &ci, e);
    dsq_txn_free(t);
    if (rc == DSQ_OK && version)
        *version = ci.version;
    return rc;
}

uint8_t *dsq_test_snap_image(struct dsq_snap *s, size_t *len)
{
    uint32_t ps = dsq_snap_page_size(s), n = dsq_snap_page_count(s);
    uint8_t *img = malloc((size_t)ps * n + 1);
    struct dsq_err e;
    dsq_err_clear(&e);
    if (!img)
        return NULL;
    if (n && dsq_snap_read_pages(s, 1, n, img, &e) != DSQ_OK) {
        fprintf(stderr, "snap_image: %s\n", dsq_err_text(&e, 0));
        free(img);
        return NULL;
    }
    *len = (size_t)ps * n;
    return img;
}

void dsq_test_sql(const char *path, const char *sql)
{
    sqlite3 *db;
    char *err = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sql on %s: %s\n", path,
                err ? err : sqlite3_errmsg(db));
        abort();
    }
    sqlite3_close(db);
}

long long dsq_test_sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "sql on %s: %s\n", path, sqlite3_errmsg(db));
        abort();
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

const char *dsq_test_integrity(const char *path)
{
    static char out[512];
    sqlite3 *db;
    sqlite3_stmt *st;
    snprintf(out, sizeof(out), "cannot open");
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return out;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, sizeof(out), "%s",
                 (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static int race_child(dsq_test_open_fn open_fn, void *arg, uint64_t base_v,
                      const struct dsq_test_racer *r, enum dsq_isolation iso,
                      int ready_fd, int go_fd)
{
    struct dsq_config cfg;
    struct dsq_store *st;
    struct dsq_db *db;
    struct dsq_snap *s;
    struct dsq_txn *t;
    struct dsq_err e;
    uint8_t page[4096];
    dsq_test_config(&cfg, 50);
    cfg.isolation = iso;
    open_fn(arg, &cfg, &st, &db);
    dsq_err_clear(&e);
    if (dsq_db_snapshot(db, base_v, &s, &e) != DSQ_OK ||
        dsq_txn_begin(s, 0, &t, &e) != DSQ_OK)
        return DSQ_TEST_OTHER;
    for (int i = 0; i < r->npages; i++) {
        memset(page, r->fill, sizeof(page));
        if (dsq_txn_write_page(t, r->pages[i], page, &e) != DSQ_OK)
            return DSQ_TEST_OTHER;
    }
    char b = 1;
    if (write(ready_fd, &b, 1) != 1 || read(go_fd, &b, 1) != 1)
        return DSQ_TEST_OTHER;
    dsq_rc rc = dsq_txn_commit(t, NULL, &e);
    if (rc == DSQ_ECONFLICT)
        return DSQ_TEST_CONFLICT;
    if (rc != DSQ_OK) {
        fprintf(stderr, "child commit: %s\n", dsq_err_text(&e, rc));
        return DSQ_TEST_OTHER;
    }
    return DSQ_TEST_COMMITTED;
}

void dsq_test_race(int n, dsq_test_open_fn open_fn, void *arg, uint64_t base_v,
                   const struct dsq_test_racer *r, enum dsq_isolation iso,
                   int *codes)
{
    int ready[2], go[2];
    pid_t pids[16];
    if (n < 1 || n > 16 || pipe(ready) != 0 || pipe(go) != 0)
        abort();
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            abort();
        if (pids[i] == 0)
            _exit(
                race_child(open_fn, arg, base_v, &r[i], iso, ready[1], go[0]));
    }
    char b;
    for (int i = 0; i < n; i++)
        if (read(ready[0], &b, 1) != 1)
            break; /* a child died before it was ready: codes tell */
    char gos[16];
    size_t count = (size_t)n <= sizeof(gos) ? (size_t)n : sizeof(gos);
    memset(gos, 1, sizeof(gos));
    if (write(go[1], gos, count) != (ssize_t)count)
        abort();
    for (int i = 0; i < n; i++) {
        int status;
        codes[i] = -1;
        if (waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status))
            codes[i] = WEXITSTATUS(status);
    }
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
}
