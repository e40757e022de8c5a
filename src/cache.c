/*
 * cache.c - the on-disk cache of immutable objects.  See cache.h.
 * Layer: services.
 */
#include "cache.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct dsq_cache {
    char *root; /* DIR/NAMESPACE */
    uint64_t max_bytes;
    atomic_uint_fast64_t bytes; /* approximate allocated size */
    atomic_uint_fast64_t hits, misses, writes, evictions;
    atomic_int warned;
    pthread_mutex_t evict_mu; /* one eviction at a time */
};

static uint64_t fnv64(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Sum of allocated bytes of the files in one directory. */
static uint64_t dir_bytes(const char *dir)
{
    uint64_t sum = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat sb;
        if (de->d_name[0] == '.')
            continue;
        if (fstatat(dirfd(d), de->d_name, &sb, 0) == 0 && S_ISREG(sb.st_mode))
            sum += (uint64_t)sb.st_blocks * 512u;
    }
    closedir(d);
    return sum;
}

dsq_rc dsq_cache_open(const char *dir, const char *ns, uint64_t max_bytes,
                      struct dsq_cache **out, struct dsq_err *e)
{
    struct dsq_cache *c = calloc(1, sizeof(*c));
    char path[4096];
    if (!c)
        return DSQ_ENOMEM;
    snprintf(path, sizeof(path), "%s/%016llx", dir,
             (unsigned long long)fnv64(ns));
    c->root = strdup(path);
    if (!c->root) {
        free(c);
        return DSQ_ENOMEM;
    }
    char sub[4200];
    snprintf(sub, sizeof(sub), "%s/segments", path);
    int r1 = mkdirs(sub);
    snprintf(sub, sizeof(sub), "%s/pagetables", path);
    int r2 = mkdirs(sub);
    if (r1 != 0 || r2 != 0) {
        dsq_rc rc = dsq_err_set(e, DSQ_EIO, "cache directory %s: %s", path,
                                strerror(errno));
        free(c->root);
        free(c);
        return rc;
    }
    /* a note of what this namespace caches, for people looking */
    snprintf(sub, sizeof(sub), "%s/NAME", path);
    FILE *f = fopen(sub, "w");
    if (f) {
        fprintf(f, "%s\n", ns);
        fclose(f);
    }
    c->max_bytes = max_bytes;
    pthread_mutex_init(&c->evict_mu, NULL);
    snprintf(sub, sizeof(sub), "%s/segments", path);
    uint64_t b = dir_bytes(sub);
    snprintf(sub, sizeof(sub), "%s/pagetables", path);
    b += dir_bytes(sub);
    atomic_init(&c->bytes, b);
    *out = c;
    return DSQ_OK;
}

void dsq_cache_close(struct dsq_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->evict_mu);
    free(c->root);
    free(c);
}

/* Local path of a key, or -1 if the key is not cacheable. */
static int key_path(const struct dsq_cache *c, const char *key, char *out,
                    size_t outsz)
{
    const char *name;
    /* another database's object (a fork's source): names are 128 random
       bits, so its own directory and name identify it */
    while (!strncmp(key, "../", 3)) {
        const char *d = strstr(key, "/segments/");
        const char *t = strstr(key, "/pagetables/");
        const char *x = d && (!t || d < t) ? d : t;
        if (!x)
            return -1;
        key = x + 1;
    }
    if (!strncmp(key, "segments/", 9))
        name = key + 9;
    else if (!strncmp(key, "pagetables/", 11))
        name = key + 11;
    else
        return -1;
    if (!*name || strlen(name) > 200)
        return -1;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            return -1;
    if (name[0] == '.')
        return -1;
    snprintf(out, outsz, "%s/%s/%s", c->root,
             key[0] == 's' ? "segments" : "pagetables", name);
    return 0;
}

int dsq_cache_read(struct dsq_cache *c, const char *key, uint64_t off,
                   size_t len, void *buf)
{
    char path[4096];
    if (!c || key_path(c, key, path, sizeof(path)) != 0)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        atomic_fetch_add(&c->misses, 1);
        return 0;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r =
            pread(fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    /* mark recently used, at most once a minute per file */
    struct stat sb;
    time_t now = time(NULL);
    if (got == len && fstat(fd, &sb) == 0 && sb.st_mtime + 60 < now)
        futimens(fd, NULL);
    close(fd);
    if (got != len) {
        atomic_fetch_add(&c->misses, 1);
        return 0;
    }
    atomic_fetch_add(&c->hits, 1);
    return 1;
}

void dsq_cache_note_bad(struct dsq_cache *c)
{
    if (c) {
        atomic_fetch_sub(&c->hits, 1);
        atomic_fetch_add(&c->misses, 1);
    }
}

struct victim {
    char path[4096];
    time_t mtime;
    uint64_t bytes;
};

static int victim_cmp(const void *a, const void *b)
{
    const struct victim *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

static void collect(const char *dir, struct victim **v, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat sb;
        if (de->d_name[0] == '.' ||
            fstatat(dirfd(d), de->d_name, &sb, 0) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 256;
            struct victim *nv = realloc(*v, nc * sizeof(**v));
            if (!nv)
                break;
            *v = nv;
            *cap = nc;
        }
        snprintf((*v)[*n].path, sizeof((*v)[*n].path), "%s/%s", dir,
                 de->d_name);
        (*v)[*n].mtime = sb.st_mtime;
        (*v)[*n].bytes = (uint64_t)sb.st_blocks * 512u;
        (*n)++;
    }
    closedir(d);
}

static void evict(struct dsq_cache *c)
{
    if (pthread_mutex_trylock(&c->evict_mu) != 0)
        return;
    struct victim *v = NULL;
    size_t n = 0, cap = 0;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/segments", c->root);
    collect(dir, &v, &n, &cap);
    snprintf(dir, sizeof(dir), "%s/pagetables", c->root);
    collect(dir, &v, &n, &cap);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i].bytes;
    qsort(v, n, sizeof(*v), victim_cmp);
    uint64_t target = c->max_bytes / 10 * 8;
    for (size_t i = 0; i < n && total > target; i++) {
        if (unlink(v[i].path) == 0) {
            total -= v[i].bytes;
            atomic_fetch_add(&c->evictions, 1);
        }
    }
    atomic_store(&c->bytes, total);
    free(v);
    pthread_mutex_unlock(&c->evict_mu);
}

void dsq_cache_write(struct dsq_cache *c, const char *key, uint64_t off,
                     const void *data, size_t len)
{
    char path[4096];
    if (!c || c->max_bytes == 0 || key_path(c, key, path, sizeof(path)) != 0)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, (const uint8_t *)data + done, len - done,
                           (off_t)(off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    close(fd);
    if (done != len)
        goto fail;
    atomic_fetch_add(&c->writes, 1);
    /* approximate: page-rounded */
    uint64_t b = atomic_fetch_add(&c->bytes, (len + 4095) & ~(size_t)4095);
    if (b > c->max_bytes)
        evict(c);
    return;
fail:
    if (atomic_exchange(&c->warned, 1) == 0)
        dsq_log(DSQ_LOG_WARNING, "cache",
                "cannot write %s: %s (the disk "
                "cache is skipped where it fails)",
                path, strerror(errno));
}

void dsq_cache_get_stats(struct dsq_cache *c, struct dsq_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!c)
        return;
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->writes = atomic_load(&c->writes);
    out->evictions = atomic_load(&c->evictions);
    out->bytes = atomic_load(&c->bytes);
}
