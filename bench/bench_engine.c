/*
 * bench_engine.c - engine costs on a store, side by side with a baseline.
 *
 *   bench_engine STORE_URL [MB] [COMMITS]
 *
 * 1. import: a MB-sized image streamed as version 1 (seconds, objects,
 *    bytes written), against writing the same bytes to a local file with
 *    fsync (the baseline);
 * 2. single-page commits on that database: latency median and p99,
 *    objects and bytes per commit, against a one-row SQLite commit on a
 *    local file in DELETE journal mode (the baseline);
 * 3. a full read of the newest version (export) against reading the local
 *    file back.
 * Prints each figure and its ratio to the baseline.
 */
#include "config.h"
#include "db.h"
#include "env.h"
#include "store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double now_s(void)
{
    return (double)dsq_mono_ns() / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, dsq_rc rc, const struct dsq_err *e)
{
    fprintf(stderr, "bench: %s: %s\n", what, dsq_err_text(e, rc));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_engine STORE_URL [MB] [COMMITS]\n");
        return 2;
    }
    const char *url = argv[1];
    unsigned mb = argc > 2 ? (unsigned)atoi(argv[2]) : 100;
    unsigned ncommits = argc > 3 ? (unsigned)atoi(argv[3]) : 200;
    const uint32_t ps = 4096;
    uint32_t npages = (uint32_t)((uint64_t)mb * 1024 * 1024 / ps);
    struct dsq_config cfg;
    struct dsq_err e;
    struct dsq_store *st;
    struct dsq_db *db;
    dsq_config_init(&cfg);
    dsq_err_clear(&e);
    dsq_rc rc = dsq_config_load_env(&cfg, &e);
    if (rc != DSQ_OK)
        die("config", rc, &e);
    rc = dsq_store_open(url, &cfg, &st, &e);
    if (rc != DSQ_OK)
        die("store", rc, &e);
    char name[64];
    snprintf(name, sizeof(name), "bench-%u", (unsigned)getpid());
    rc = dsq_db_open(st, name, &cfg, &db, &e);
    if (rc != DSQ_OK)
        die("open", rc, &e);

    /* page images: half random (incompressible), half text-like */
    uint8_t *page = malloc(ps);
    char tmpl[] = "/tmp/dsqlfs-bench-XXXXXX";
    int fd = mkstemp(tmpl);
    double t0 = now_s();
    for (uint32_t p = 1; p <= npages; p++) {
        for (uint32_t i = 0; i < ps; i += 4) {
            uint32_t v = (p & 1) ? (uint32_t)rand() : (p * 2654435761u + i / 64);
            memcpy(page + i, &v, 4);
        }
        if (write(fd, page, ps) != (ssize_t)ps)
            return 1;
    }
    fsync(fd);
    double base_import = now_s() - t0;

    struct dsq_snap *s;
    struct dsq_txn *t;
    struct dsq_commit_info ci;
    rc = dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, &e);
    if (rc == DSQ_OK)
        rc = dsq_txn_begin(s, DSQ_TXN_STREAM, &t, &e);
    if (rc == DSQ_OK)
        rc = dsq_txn_set_page_size(t, ps, &e);
    if (rc != DSQ_OK)
        die("begin", rc, &e);
    t0 = now_s();
    for (uint32_t p = 1; p <= npages; p++) {
        if (pread(fd, page, ps, (off_t)(p - 1) * ps) != (ssize_t)ps)
            return 1;
        rc = dsq_txn_write_page(t, p, page, &e);
        if (rc != DSQ_OK)
            die("write", rc, &e);
    }
    rc = dsq_txn_commit(t, &ci, &e);
    if (rc != DSQ_OK)
        die("import commit", rc, &e);
    double import_s = now_s() - t0;
    dsq_txn_free(t);
    dsq_snap_release(s);
    printf("import %u MB: %.2f s (%.0f MB/s), %llu objects, %llu bytes "
           "written; local write+fsync %.2f s; ratio %.2f\n",
           mb, import_s, mb / import_s,
           (unsigned long long)ci.objects_written,
           (unsigned long long)ci.bytes_written, base_import,
           import_s / base_import);

    /* single-page commits */
    double *lat = calloc(ncommits, sizeof(double));
    uint64_t objs = 0, bytes = 0;
    struct dsq_db_stats st0, st1;
    dsq_db_get_stats(db, &st0);
    for (unsigned i = 0; i < ncommits; i++) {
        uint32_t pg = 2 + (uint32_t)(rand() % (npages - 1));
        memset(page, (int)i, ps);
        t0 = now_s();
        rc = dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, &e);
        if (rc == DSQ_OK)
            rc = dsq_txn_begin(s, 0, &t, &e);
        if (rc == DSQ_OK)
            rc = dsq_txn_write_page(t, pg, page, &e);
        if (rc == DSQ_OK)
            rc = dsq_txn_commit(t, &ci, &e);
        if (rc != DSQ_OK)
            die("commit", rc, &e);
        lat[i] = now_s() - t0;
        objs += ci.objects_written;
        bytes += ci.bytes_written;
        dsq_txn_free(t);
        dsq_snap_release(s);
    }
    dsq_db_get_stats(db, &st1);
    double reqs = (double)((st1.store_gets - st0.store_gets) +
                           (st1.store_puts - st0.store_puts) +
                           (st1.store_lists - st0.store_lists) +
                           (st1.store_heads - st0.store_heads)) /
                  ncommits;
    qsort(lat, ncommits, sizeof(double), cmp_d);
    /* baseline: one-row commits into a local SQLite file */
    char dbpath[64];
    snprintf(dbpath, sizeof(dbpath), "%s.db", tmpl);
    sqlite3 *sq;
    sqlite3_open(dbpath, &sq);
    sqlite3_exec(sq, "PRAGMA journal_mode=DELETE; CREATE TABLE t(x);", 0, 0,
                 0);
    double *bl = calloc(ncommits, sizeof(double));
    for (unsigned i = 0; i < ncommits; i++) {
        t0 = now_s();
        sqlite3_exec(sq, "INSERT INTO t VALUES(randomblob(100))", 0, 0, 0);
        bl[i] = now_s() - t0;
    }
    sqlite3_close(sq);
    qsort(bl, ncommits, sizeof(double), cmp_d);
    double med = lat[ncommits / 2], p99 = lat[ncommits * 99 / 100];
    double bmed = bl[ncommits / 2], bp99 = bl[ncommits * 99 / 100];
    printf("single-page commit on %u MB (%u commits): median %.2f ms, p99 "
           "%.2f ms, %.1f objects, %.0f bytes and %.1f store requests per "
           "commit; local SQLite one-row commit median %.2f ms, p99 %.2f "
           "ms; ratio median %.2f, p99 %.2f\n",
           mb, ncommits, med * 1e3, p99 * 1e3, (double)objs / ncommits,
           (double)bytes / ncommits, reqs, bmed * 1e3, bp99 * 1e3,
           med / bmed, p99 / bp99);

    /* single-page reads, cold: no memory or disk cache */
    {
        struct dsq_config cold = cfg;
        cold.page_cache_bytes = 0;
        cold.disk_cache = 0;
        struct dsq_db *cdb;
        rc = dsq_db_open(st, name, &cold, &cdb, &e);
        if (rc != DSQ_OK)
            die("open", rc, &e);
        rc = dsq_db_snapshot(cdb, DSQ_VERSION_LATEST, &s, &e);
        if (rc != DSQ_OK)
            die("snapshot", rc, &e);
        enum { NR = 400 };
        double rl[NR], bl2[NR];
        for (int i = 0; i < NR; i++) {
            uint32_t pg = 1 + (uint32_t)(rand() % npages);
            t0 = now_s();
            rc = dsq_snap_read_page(s, pg, page, &e);
            if (rc != DSQ_OK)
                die("read", rc, &e);
            rl[i] = now_s() - t0;
            t0 = now_s();
            if (pread(fd, page, ps, (off_t)(pg - 1) * ps) != (ssize_t)ps)
                return 1;
            bl2[i] = now_s() - t0;
        }
        qsort(rl, NR, sizeof(double), cmp_d);
        qsort(bl2, NR, sizeof(double), cmp_d);
        printf("cold single-page read (one ranged GET each, %d reads): "
               "median %.3f ms, p99 %.3f ms; local pread median %.4f ms; "
               "ratio median %.0f\n",
               NR, rl[NR / 2] * 1e3, rl[NR * 99 / 100] * 1e3,
               bl2[NR / 2] * 1e3, rl[NR / 2] / bl2[NR / 2]);
        dsq_snap_release(s);
        dsq_db_close(cdb);
    }

    /* full read of the newest version */
    rc = dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, &e);
    if (rc != DSQ_OK)
        die("snapshot", rc, &e);
    uint8_t *big = malloc((size_t)4096 * ps);
    t0 = now_s();
    for (uint32_t p = 1; p <= npages; p += 4096) {
        uint32_t k = npages - p + 1 < 4096 ? npages - p + 1 : 4096;
        rc = dsq_snap_read_pages(s, p, k, big, &e);
        if (rc != DSQ_OK)
            die("read", rc, &e);
    }
    double read_s = now_s() - t0;
    t0 = now_s();
    for (uint32_t p = 1; p <= npages; p += 256) {
        uint32_t k = npages - p + 1 < 256 ? npages - p + 1 : 256;
        if (pread(fd, big, (size_t)k * ps, (off_t)(p - 1) * ps) < 0)
            return 1;
    }
    double base_read = now_s() - t0;
    printf("read all %u MB of the newest version: %.2f s (%.0f MB/s); local "
           "file read %.3f s; ratio %.1f\n",
           mb, read_s, mb / read_s, base_read, read_s / base_read);
    dsq_snap_release(s);
    close(fd);
    unlink(tmpl);
    unlink(dbpath);
    free(big);
    free(page);
    free(lat);
    free(bl);
    dsq_db_close(db);
    dsq_store_free(st);
    dsq_config_cleanup(&cfg);
    return 0;
}
