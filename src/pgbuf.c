/*
 * pgbuf.c - a transaction's dirty pages in memory, spilling to a file.
 * Layer: services.  See pgbuf.h.
 *
 * An open-addressing hash maps pgno -> slot.  A slot is either a malloc'd
 * page (while the memory limit allows) or an offset in the spill file.
 * Truncated slots are tombstoned.
 */
#include "pgbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct slot {
    uint32_t pgno;     /* 0 = empty, UINT32_MAX = tombstone */
    uint8_t *mem;      /* page in memory, or NULL */
    uint64_t file_off; /* valid when mem == NULL */
};

#define TOMB UINT32_MAX

struct dsq_pgbuf {
    uint32_t page_size;
    uint64_t mem_limit;
    char *spill_dir;
    struct slot *slots;
    size_t cap;  /* power of two */
    size_t used; /* live + tombstones */
    size_t live;
    uint64_t mem_bytes;
    int fd; /* spill file, -1 until needed */
    uint64_t file_end;
};

dsq_rc dsq_pgbuf_new(uint32_t page_size, uint64_t mem_limit,
                     const char *spill_dir, struct dsq_pgbuf **out)
{
    struct dsq_pgbuf *b = calloc(1, sizeof(*b));
    if (!b)
        return DSQ_ENOMEM;
    b->page_size = page_size;
    b->mem_limit = mem_limit;
    b->fd = -1;
    b->cap = 64;
    b->slots = calloc(b->cap, sizeof(*b->slots));
    if (spill_dir)
        b->spill_dir = strdup(spill_dir);
    if (!b->slots || (spill_dir && !b->spill_dir)) {
        dsq_pgbuf_free(b);
        return DSQ_ENOMEM;
    }
    *out = b;
    return DSQ_OK;
}

void dsq_pgbuf_free(struct dsq_pgbuf *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->cap; i++)
        free(b->slots[i].mem);
    free(b->slots);
    if (b->fd >= 0)
        close(b->fd);
    free(b->spill_dir);
    free(b);
}

static size_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static struct slot *find(const struct dsq_pgbuf *b, uint32_t pgno)
{
    size_t mask = b->cap - 1;
    for (size_t i = hash32(pgno) & mask;; i = (i + 1) & mask) {
        struct slot *s = &b->slots[i];
        if (s->pgno == pgno)
            return s;
        if (s->pgno == 0)
            return NULL;
    }
}

static dsq_rc grow(struct dsq_pgbuf *b)
{
    size_t ncap = b->cap * 2;
    struct slot *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return DSQ_ENOMEM;
    for (size_t i = 0; i < b->cap; i++) {
        struct slot *s = &b->slots[i];
        if (s->pgno == 0 || s->pgno == TOMB)
            continue;
        size_t j = hash32(s->pgno) & (ncap - 1);
        while (ns[j].pgno != 0)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(b->slots);
    b->slots = ns;
    b->cap = ncap;
    b->used = b->live;
    return DSQ_OK;
}

/* mkdir -p dir (0700): the cache directory need not exist yet (with the
   disk cache off nothing else creates it). */
static void mkdirs(const char *dir)
{
    char p[4096];
    int n = snprintf(p, sizeof(p), "%s", dir);
    if (n <= 0 || (size_t)n >= sizeof(p))
        return;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        mkdir(p, 0700);
        *s = '/';
    }
    mkdir(p, 0700);
}

dsq_rc dsq_spill_file_open(const char *dir, int *fd, struct dsq_err *e)
{
    if (!dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    int f = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (f < 0 && errno == ENOENT) {
        mkdirs(dir);
        f = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    }
    if (f < 0) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/dsqlfs-txn-XXXXXX", dir);
        f = mkostemp(path, O_CLOEXEC);
        if (f >= 0)
            unlink(path);
    }
    if (f < 0)
        return dsq_err_set(e, DSQ_EIO, "cannot create a spill file in %s: %s",
                           dir, strerror(errno));
    *fd = f;
    return DSQ_OK;
}

static dsq_rc open_spill(struct dsq_pgbuf *b, struct dsq_err *e)
{
    return dsq_spill_file_open(b->spill_dir, &b->fd, e);
}

static dsq_rc file_write(struct dsq_pgbuf *b, uint64_t off, const void *page,
                         struct dsq_err *e)
{
    const uint8_t *p = page;
    size_t left = b->page_size;
    while (left) {
        ssize_t n = pwrite(b->fd, p, left, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return dsq_err_set(e, DSQ_EIO,
                               "transaction spill file write failed: %s",
                               n < 0 ? strerror(errno) : "short write");
        p += n;
        off += (uint64_t)n;
        left -= (size_t)n;
    }
    return DSQ_OK;
}

dsq_rc dsq_pgbuf_put(struct dsq_pgbuf *b, uint32_t pgno, const void *page,
                     struct dsq_err *e)
{
    if (pgno == 0 || pgno == TOMB)
        return dsq_err_set(e, DSQ_EINVAL, "page number %u out of range", pgno);
    struct slot *s = find(b, pgno);
    if (s) {
        if (s->mem) {
            memcpy(s->mem, page, b->page_size);
            return DSQ_OK;
        }
        return file_write(b, s->file_off, page, e);
    }
    if ((b->used + 1) * 4 > b->cap * 3) {
        dsq_rc rc = grow(b);
        if (rc != DSQ_OK)
            return rc;
    }
    struct slot ns = {.pgno = pgno};
    if (b->mem_bytes + b->page_size <= b->mem_limit) {
        ns.mem = malloc(b->page_size);
        if (!ns.mem)
            return DSQ_ENOMEM;
        memcpy(ns.mem, page, b->page_size);
        b->mem_bytes += b->page_size;
    } else {
        if (b->fd < 0) {
            dsq_rc rc = open_spill(b, e);
            if (rc != DSQ_OK)
                return rc;
        }
        ns.file_off = b->file_end;
        dsq_rc rc = file_write(b, ns.file_off, page, e);
        if (rc != DSQ_OK)
            return rc;
        b->file_end += b->page_size;
    }
    size_t mask = b->cap - 1;
    size_t i = hash32(pgno) & mask;
    while (b->slots[i].pgno != 0 && b->slots[i].pgno != TOMB)
        i = (i + 1) & mask;
    if (b->slots[i].pgno == 0)
        b->used++;
    b->slots[i] = ns;
    b->live++;
    return DSQ_OK;
}

dsq_rc dsq_pgbuf_get(struct dsq_pgbuf *b, uint32_t pgno, void *page,
                     struct dsq_err *e)
{
    struct slot *s = (pgno == 0 || pgno == TOMB) ? NULL : find(b, pgno);
    if (!s)
        return DSQ_ENOTFOUND;
    if (s->mem) {
        memcpy(page, s->mem, b->page_size);
        return DSQ_OK;
    }
    uint8_t *p = page;
    size_t left = b->page_size;
    uint64_t off = s->file_off;
    while (left) {
        ssize_t n = pread(b->fd, p, left, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return dsq_err_set(e, DSQ_EIO,
                               "transaction spill file read failed: %s",
                               n < 0 ? strerror(errno) : "short read");
        p += n;
        off += (uint64_t)n;
        left -= (size_t)n;
    }
    return DSQ_OK;
}

int dsq_pgbuf_has(const struct dsq_pgbuf *b, uint32_t pgno)
{
    return pgno != 0 && pgno != TOMB && find(b, pgno) != NULL;
}

void dsq_pgbuf_truncate(struct dsq_pgbuf *b, uint32_t max_pgno)
{
    for (size_t i = 0; i < b->cap; i++) {
        struct slot *s = &b->slots[i];
        if (s->pgno == 0 || s->pgno == TOMB || s->pgno <= max_pgno)
            continue;
        if (s->mem) {
            free(s->mem);
            b->mem_bytes -= b->page_size;
        }
        s->mem = NULL;
        s->pgno = TOMB;
        b->live--;
    }
}

size_t dsq_pgbuf_count(const struct dsq_pgbuf *b)
{
    return b->live;
}

uint32_t dsq_pgbuf_page_size(const struct dsq_pgbuf *b)
{
    return b->page_size;
}

uint64_t dsq_pgbuf_mem_bytes(const struct dsq_pgbuf *b)
{
    return b->mem_bytes;
}

uint64_t dsq_pgbuf_spill_bytes(const struct dsq_pgbuf *b)
{
    return b->file_end;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

dsq_rc dsq_pgbuf_pgnos(const struct dsq_pgbuf *b, uint32_t **pgnos, size_t *n)
{
    uint32_t *v = malloc((b->live ? b->live : 1) * sizeof(*v));
    if (!v)
        return DSQ_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < b->cap; i++)
        if (b->slots[i].pgno != 0 && b->slots[i].pgno != TOMB)
            v[k++] = b->slots[i].pgno;
    qsort(v, k, sizeof(*v), cmp_u32);
    *pgnos = v;
    *n = k;
    return DSQ_OK;
}
