/*
 * sqlitefmt.c - SQLite header and freelist parsing for the commit rules.
 * Layer: pure codec.  See sqlitefmt.h.
 */
#include "sqlitefmt.h"

#include <stdlib.h>
#include <string.h>

uint32_t dsq_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

void dsq_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int dsq_sqlite_is_db(const uint8_t *page1, size_t len)
{
    return len >= 100 && memcmp(page1, "SQLite format 3", 16) == 0;
}

uint32_t dsq_sqlite_page_size(const uint8_t *page1, size_t len)
{
    if (!dsq_sqlite_is_db(page1, len))
        return 0;
    uint32_t v = ((uint32_t)page1[16] << 8) | page1[17];
    if (v == 1)
        return 65536;
    if (v < 512 || v > 32768 || (v & (v - 1)))
        return 0;
    return v;
}

int dsq_sqlite_header_write_ok(const void *buf, size_t n, uint64_t off)
{
    static const uint8_t fixed[24] = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f',
                                      'o', 'r', 'm', 'a', 't', ' ', '3', 0,
                                      0,   0,   0,   0,   0,   64,  32,  32};
    const uint8_t *p = buf;
    if (off >= 24)
        return 1;
    for (size_t i = 0; i < n && off + i < 24; i++) {
        uint64_t at = off + i;
        uint8_t c = p[i];
        if (at < 16 || at >= 21) {
            if (c != fixed[at])
                return 0;
        } else if (at == 18 || at == 19) {
            if (c != 1 && c != 2)
                return 0;
        }
    }
    if (off <= 16 && off + n >= 18) {
        uint32_t v = ((uint32_t)p[16 - off] << 8) | p[17 - off];
        if (v != 1 && (v < 512 || v > 32768 || (v & (v - 1))))
            return 0;
    }
    return 1;
}

int dsq_sqlite_is_wal(const uint8_t *page1, size_t len)
{
    return dsq_sqlite_is_db(page1, len) && (page1[18] == 2 || page1[19] == 2);
}

int dsq_sqlite_page1_counters_only(const uint8_t *a, const uint8_t *b,
                                   uint32_t page_size)
{
    if (page_size < 100)
        return memcmp(a, b, page_size) == 0;
    if (memcmp(a, b, DSQ_SQLITE_HDR_CHANGE_COUNTER) != 0)
        return 0;
    if (memcmp(a + 28, b + 28, DSQ_SQLITE_HDR_VERSION_VALID_FOR - 28) != 0)
        return 0;
    return memcmp(a + 96, b + 96, page_size - 96) == 0;
}

void dsq_sqlite_set_counter(uint8_t *page1, uint32_t v)
{
    dsq_put_be32(page1 + DSQ_SQLITE_HDR_CHANGE_COUNTER, v);
    dsq_put_be32(page1 + DSQ_SQLITE_HDR_VERSION_VALID_FOR, v);
}

uint32_t dsq_sqlite_counter(const uint8_t *page1)
{
    return dsq_be32(page1 + DSQ_SQLITE_HDR_CHANGE_COUNTER);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

dsq_rc dsq_sqlite_freelist(const uint8_t *page1, uint32_t page_size,
                           uint32_t page_count, dsq_page_reader read, void *ctx,
                           uint32_t **pages, size_t *n, struct dsq_err *e)
{
    uint32_t trunk = dsq_be32(page1 + DSQ_SQLITE_HDR_FREELIST_TRUNK);
    uint32_t total = dsq_be32(page1 + DSQ_SQLITE_HDR_FREELIST_COUNT);
    uint32_t *v = NULL;
    uint8_t *buf = NULL;
    size_t k = 0;
    dsq_rc rc = DSQ_OK;

    if (total > page_count)
        return DSQ_CORRUPT(e, "freelist count %u exceeds page count %u", total,
                           page_count);
    v = malloc(((size_t)total + 1) * sizeof(*v));
    buf = malloc(page_size);
    if (!v || !buf) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    /* each trunk adds at least one page, so total+1 iterations bound it */
    while (trunk != 0) {
        if (trunk > page_count || k >= total) {
            rc = DSQ_CORRUPT(e,
                             "freelist trunk %u out of range "
                             "(page count %u, freelist count %u)",
                             trunk, page_count, total);
            goto out;
        }
        v[k++] = trunk;
        rc = read(ctx, trunk, buf, e);
        if (rc != DSQ_OK)
            goto out;
        uint32_t next = dsq_be32(buf);
        uint32_t leaves = dsq_be32(buf + 4);
        if (leaves > page_size / 4 - 2 || leaves > total - k) {
            rc = DSQ_CORRUPT(e, "freelist trunk %u holds %u leaves", trunk,
                             leaves);
            goto out;
        }
        for (uint32_t i = 0; i < leaves; i++) {
            uint32_t leaf = dsq_be32(buf + 8 + 4 * i);
            if (leaf == 0 || leaf > page_count) {
                rc = DSQ_CORRUPT(e, "freelist leaf %u out of range", leaf);
                goto out;
            }
            v[k++] = leaf;
        }
        trunk = next;
    }
    qsort(v, k, sizeof(*v), cmp_u32);
    for (size_t i = 1; i < k; i++)
        if (v[i] == v[i - 1]) {
            rc = DSQ_CORRUPT(e, "freelist names page %u twice", v[i]);
            goto out;
        }
    *pages = v;
    *n = k;
    v = NULL;
out:
    free(v);
    free(buf);
    return rc;
}

uint32_t dsq_sqlite_header_pages(const uint8_t *page1, size_t len)
{
    if (!dsq_sqlite_is_db(page1, len))
        return 0;
    if (dsq_be32(page1 + DSQ_SQLITE_HDR_CHANGE_COUNTER) !=
        dsq_be32(page1 + DSQ_SQLITE_HDR_VERSION_VALID_FOR))
        return 0;
    return dsq_be32(page1 + DSQ_SQLITE_HDR_PAGE_COUNT);
}
