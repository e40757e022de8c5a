/*
 * walfmt.c - SQLite's WAL and wal-index formats (walfmt.h, docs/wal.md).
 *
 * Layer: FUSE front end; pure functions over buffers, no I/O, no locks.
 * Written from SQLite's published file format; tests check it against
 * WAL and -shm files the real sqlite3 wrote (tests/unit/test_walfmt.c).
 */
#include "walfmt.h"

#include <string.h>

#define NPAGE 4096u                 /* frames per wal-index block */
#define NSLOT 8192u                 /* hash slots per block */
#define NPAGE_ONE (NPAGE - 136 / 4) /* block 0 holds the header */
#define HASH_MUL 383u

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t host_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void put_host_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static int host_big_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 0;
}

static uint32_t bswap32(uint32_t x)
{
    return (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) |
           (x << 24);
}

void dsq_wal_cksum(int native, const uint8_t *data, size_t n,
                   const uint32_t *in, uint32_t *out)
{
    uint32_t s1 = in ? in[0] : 0, s2 = in ? in[1] : 0;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint32_t a = host_u32(data + i), b = host_u32(data + i + 4);
        if (!native) {
            a = bswap32(a);
            b = bswap32(b);
        }
        s1 += a + s2;
        s2 += b + s1;
    }
    out[0] = s1;
    out[1] = s2;
}

int dsq_wal_native(const struct dsq_walhdr *h)
{
    return (int)(h->magic & 1u) == host_big_endian();
}

static int page_size_ok(uint32_t ps)
{
    return ps >= 512 && ps <= 65536 && (ps & (ps - 1)) == 0;
}

int dsq_wal_hdr_decode(const uint8_t *buf, struct dsq_walhdr *h)
{
    struct dsq_walhdr t;
    t.magic = be32(buf);
    t.version = be32(buf + 4);
    t.page_size = be32(buf + 8);
    t.ckpt_seq = be32(buf + 12);
    memcpy(t.salt, buf + 16, 8);
    t.cksum[0] = be32(buf + 24);
    t.cksum[1] = be32(buf + 28);
    if ((t.magic & ~1u) != DSQ_WAL_MAGIC || t.version != DSQ_WAL_VERSION ||
        !page_size_ok(t.page_size))
        return -1;
    uint32_t ck[2];
    dsq_wal_cksum(dsq_wal_native(&t), buf, 24, NULL, ck);
    if (ck[0] != t.cksum[0] || ck[1] != t.cksum[1])
        return -1;
    *h = t;
    return 0;
}

void dsq_wal_hdr_encode(struct dsq_walhdr *h, uint8_t *out)
{
    put_be32(out, h->magic);
    put_be32(out + 4, h->version);
    put_be32(out + 8, h->page_size);
    put_be32(out + 12, h->ckpt_seq);
    memcpy(out + 16, h->salt, 8);
    dsq_wal_cksum(dsq_wal_native(h), out, 24, NULL, h->cksum);
    put_be32(out + 24, h->cksum[0]);
    put_be32(out + 28, h->cksum[1]);
}

void dsq_wal_frame_decode(const uint8_t *buf, struct dsq_walframe *f)
{
    f->pgno = be32(buf);
    f->db_size = be32(buf + 4);
    memcpy(f->salt, buf + 8, 8);
    f->cksum[0] = be32(buf + 16);
    f->cksum[1] = be32(buf + 20);
}

void dsq_wal_frame_encode(const struct dsq_walhdr *h, uint32_t pgno,
                          uint32_t db_size, const uint8_t *page, uint32_t *ck,
                          uint8_t *out)
{
    int native = dsq_wal_native(h);
    put_be32(out, pgno);
    put_be32(out + 4, db_size);
    memcpy(out + 8, h->salt, 8);
    dsq_wal_cksum(native, out, 8, ck, ck);
    dsq_wal_cksum(native, page, h->page_size, ck, ck);
    put_be32(out + 16, ck[0]);
    put_be32(out + 20, ck[1]);
}

int dsq_wal_frame_check(const struct dsq_walhdr *h, const uint8_t *fhdr,
                        const uint8_t *page, uint32_t *ck)
{
    struct dsq_walframe f;
    dsq_wal_frame_decode(fhdr, &f);
    if (memcmp(f.salt, h->salt, 8) != 0 || f.pgno == 0)
        return 0;
    int native = dsq_wal_native(h);
    uint32_t c[2] = {ck[0], ck[1]};
    dsq_wal_cksum(native, fhdr, 8, c, c);
    dsq_wal_cksum(native, page, h->page_size, c, c);
    if (c[0] != f.cksum[0] || c[1] != f.cksum[1])
        return 0;
    ck[0] = c[0];
    ck[1] = c[1];
    return 1;
}

/* ---- the wal-index header ---- */

static void shm_hdr_decode(const uint8_t *p, struct dsq_shmhdr *h)
{
    h->version = host_u32(p);
    h->unused = host_u32(p + 4);
    h->change = host_u32(p + 8);
    h->is_init = p[12];
    h->big_end_cksum = p[13];
    memcpy(&h->sz_page, p + 14, 2);
    h->mx_frame = host_u32(p + 16);
    h->n_page = host_u32(p + 20);
    h->frame_cksum[0] = host_u32(p + 24);
    h->frame_cksum[1] = host_u32(p + 28);
    memcpy(h->salt, p + 32, 8);
    h->cksum[0] = host_u32(p + 40);
    h->cksum[1] = host_u32(p + 44);
}

int dsq_shm_hdr_read(const uint8_t *buf, struct dsq_shmhdr *h,
                     uint32_t *nbackfill)
{
    if (memcmp(buf, buf + DSQ_SHM_HDR_SIZE, DSQ_SHM_HDR_SIZE) != 0)
        return -1;
    struct dsq_shmhdr t;
    shm_hdr_decode(buf, &t);
    uint32_t ck[2];
    dsq_wal_cksum(1, buf, 40, NULL, ck);
    if (!t.is_init || ck[0] != t.cksum[0] || ck[1] != t.cksum[1])
        return -1;
    *h = t;
    if (nbackfill)
        *nbackfill = host_u32(buf + 2 * DSQ_SHM_HDR_SIZE);
    return 0;
}

void dsq_shm_hdr_encode(struct dsq_shmhdr *h, uint8_t *out)
{
    h->is_init = 1;
    put_host_u32(out, h->version);
    put_host_u32(out + 4, h->unused);
    put_host_u32(out + 8, h->change);
    out[12] = h->is_init;
    out[13] = h->big_end_cksum;
    memcpy(out + 14, &h->sz_page, 2);
    put_host_u32(out + 16, h->mx_frame);
    put_host_u32(out + 20, h->n_page);
    put_host_u32(out + 24, h->frame_cksum[0]);
    put_host_u32(out + 28, h->frame_cksum[1]);
    memcpy(out + 32, h->salt, 8);
    dsq_wal_cksum(1, out, 40, NULL, h->cksum);
    put_host_u32(out + 40, h->cksum[0]);
    put_host_u32(out + 44, h->cksum[1]);
}

/* ---- wal-index hash tables ---- */

unsigned dsq_shm_frame_block(uint32_t frame)
{
    return (unsigned)((frame + NPAGE - NPAGE_ONE - 1) / NPAGE);
}

uint32_t dsq_shm_block_zero(unsigned block)
{
    return block == 0 ? 0 : NPAGE_ONE + (uint32_t)(block - 1) * NPAGE;
}

/* Byte offset of aPgno[0] within a block, and of the hash table. */
static size_t pgno_base(unsigned block)
{
    return block == 0 ? 136 : 0;
}
#define HASH_BASE (NPAGE * 4u)

static uint32_t get_pgno(const uint8_t *blk, unsigned block, uint32_t i)
{
    return host_u32(blk + pgno_base(block) + 4u * i);
}

static uint16_t get_slot(const uint8_t *blk, uint32_t k)
{
    uint16_t v;
    memcpy(&v, blk + HASH_BASE + 2u * k, 2);
    return v;
}

static void put_slot(uint8_t *blk, uint32_t k, uint16_t v)
{
    memcpy(blk + HASH_BASE + 2u * k, &v, 2);
}

static uint32_t hash_of(uint32_t pgno)
{
    return (pgno * HASH_MUL) & (NSLOT - 1);
}

int dsq_shm_index_append(uint8_t *blk, unsigned block, uint32_t frame,
                         uint32_t pgno)
{
    if (frame == 0 || pgno == 0 || dsq_shm_frame_block(frame) != block)
        return -1;
    uint32_t idx = frame - dsq_shm_block_zero(block);
    size_t pb = pgno_base(block);
    if (idx == 1)
        memset(blk + pb, 0, DSQ_SHM_BLOCK - pb);
    if (get_pgno(blk, block, idx - 1) != 0) {
        /* remnants of an abandoned transaction past frame - 1 */
        uint32_t limit = idx - 1;
        for (uint32_t k = 0; k < NSLOT; k++)
            if (get_slot(blk, k) > limit)
                put_slot(blk, k, 0);
        memset(blk + pb + 4u * limit, 0, HASH_BASE - (pb + 4u * limit));
    }
    uint32_t k = hash_of(pgno), collide = idx;
    while (get_slot(blk, k)) {
        if (collide-- == 0)
            return -1;
        k = (k + 1) & (NSLOT - 1);
    }
    put_host_u32(blk + pb + 4u * (idx - 1), pgno);
    put_slot(blk, k, (uint16_t)idx);
    return 0;
}

uint32_t dsq_shm_index_find(const uint8_t *blk, unsigned block,
                            uint32_t mx_frame, uint32_t pgno)
{
    uint32_t zero = dsq_shm_block_zero(block), best = 0;
    uint32_t k = hash_of(pgno), n = 0;
    uint16_t idx;
    while ((idx = get_slot(blk, k)) != 0 && n++ < NSLOT) {
        uint32_t frame = zero + idx;
        if (frame <= mx_frame && frame > best &&
            get_pgno(blk, block, idx - 1) == pgno)
            best = frame;
        k = (k + 1) & (NSLOT - 1);
    }
    return best;
}
