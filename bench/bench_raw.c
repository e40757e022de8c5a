/*
 * bench_raw.c - raw store requests, the baselines of bench/s3_bench.py:
 * what one request costs through the same store backend (HTTP, signing,
 * connection reuse) that the engine uses.
 *
 *   bench_raw rtt STORE_URL N      N PUTs then N GETs of 4 KiB objects
 *   bench_raw whole STORE_URL FILE one PUT of FILE as a single object,
 *                                  then one GET of it back into a file
 *                                  (written and fsynced, as a download)
 *
 * Prints key=value lines (times in ms or s) for the orchestrator; cleans
 * up its objects.
 */
#include "config.h"
#include "env.h"
#include "store.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    fprintf(stderr, "bench_raw: %s: %s\n", what, dsq_err_text(e, rc));
    exit(1);
}

static void pct(const char *name, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    printf("%s_median_ms=%.3f\n%s_p99_ms=%.3f\n", name, v[n / 2] * 1e3, name,
           v[n * 99 / 100] * 1e3);
}

static int rtt(struct dsq_store *st, int n)
{
    uint8_t body[4096];
    double *put = calloc((size_t)n, sizeof(double));
    double *get = calloc((size_t)n, sizeof(double));
    struct dsq_err e;
    char key[128];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "bench-raw-%d/%06d", (int)getpid(), i);
        double t0 = now_s();
        /* create-only, as a manifest is */
        dsq_rc rc = dsq_store_put(st, key, body, sizeof(body), DSQ_PUT_CREATE,
                                  NULL, NULL, &e);
        put[i] = now_s() - t0;
        if (rc != DSQ_OK)
            die("put", rc, &e);
    }
    struct dsq_buf b;
    dsq_buf_init(&b, 1u << 20);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "bench-raw-%d/%06d", (int)getpid(), i);
        dsq_buf_reset(&b);
        double t0 = now_s();
        dsq_rc rc = dsq_store_get(st, key, 0, 0, &b, NULL, &e);
        get[i] = now_s() - t0;
        if (rc != DSQ_OK)
            die("get", rc, &e);
    }
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "bench-raw-%d/%06d", (int)getpid(), i);
        dsq_store_del(st, key, &e);
    }
    pct("put", put, n);
    pct("get", get, n);
    dsq_buf_cleanup(&b);
    free(put);
    free(get);
    return 0;
}

static int whole(struct dsq_store *st, const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat sb;
    struct dsq_err e;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        perror(path);
        return 1;
    }
    size_t len = (size_t)sb.st_size;
    uint8_t *data = malloc(len ? len : 1);
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, data + got, len - got);
        if (r <= 0) {
            perror(path);
            return 1;
        }
        got += (size_t)r;
    }
    close(fd);
    char key[128];
    snprintf(key, sizeof(key), "bench-raw-%d/whole", (int)getpid());
    double t0 = now_s();
    dsq_rc rc = dsq_store_put(st, key, data, len, DSQ_PUT_ANY, NULL, NULL, &e);
    double put_s = now_s() - t0;
    if (rc != DSQ_OK)
        die("put", rc, &e);
    struct dsq_buf b;
    dsq_buf_init(&b, len + 1);
    if (dsq_buf_reserve(&b, len) != DSQ_OK)
        return 1;
    /* a download, as export is one: GET, then the file written and
       fsynced */
    char dl[4200];
    snprintf(dl, sizeof(dl), "%s.download", path);
    t0 = now_s();
    rc = dsq_store_get(st, key, 0, 0, &b, NULL, &e);
    if (rc != DSQ_OK)
        die("get", rc, &e);
    double get_mem_s = now_s() - t0;
    int dfd = open(dl, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t off = 0;
    while (dfd >= 0 && off < b.len) {
        ssize_t w = write(dfd, b.data + off, b.len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (dfd < 0 || off != b.len || fsync(dfd) != 0 || close(dfd) != 0) {
        perror(dl);
        return 1;
    }
    double get_s = now_s() - t0;
    unlink(dl);
    if (b.len != len || memcmp(b.data, data, len) != 0) {
        fprintf(stderr, "bench_raw: GET returned other bytes\n");
        return 1;
    }
    dsq_store_del(st, key, &e);
    printf("whole_bytes=%zu\nwhole_put_s=%.3f\nwhole_get_s=%.3f\n"
           "whole_get_mem_s=%.3f\n",
           len, put_s, get_s, get_mem_s);
    dsq_buf_cleanup(&b);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_raw rtt URL N | whole URL FILE\n");
        return 2;
    }
    struct dsq_config cfg;
    struct dsq_err e;
    struct dsq_store *st = NULL;
    dsq_config_init(&cfg);
    dsq_err_clear(&e);
    dsq_rc rc = dsq_config_load_env(&cfg, &e);
    if (rc == DSQ_OK)
        rc = dsq_store_open(argv[2], &cfg, &st, &e);
    if (rc != DSQ_OK)
        die("store", rc, &e);
    int r = 2;
    if (strcmp(argv[1], "rtt") == 0)
        r = rtt(st, atoi(argv[3]));
    else if (strcmp(argv[1], "whole") == 0)
        r = whole(st, argv[3]);
    dsq_store_free(st);
    dsq_config_cleanup(&cfg);
    return r;
}
