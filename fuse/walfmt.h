/*
 * walfmt.h - SQLite's write-ahead log and wal-index formats, as far as
 * the daemon reads and writes them (docs/wal.md): the WAL header and
 * frame headers with their checksums, the wal-index header, and the
 * wal-index hash tables that map pages to frames.
 *
 * Layer: FUSE front end; pure functions over byte buffers (no I/O, no
 * locks), so each is a unit test away and checked against files real
 * SQLite wrote.  Everything decoded here comes from files other programs
 * write: it is validated, never trusted.
 *
 * Formats (SQLite's, https://www.sqlite.org/walformat.html):
 *  - WAL header, 32 bytes big-endian: magic 0x377f0682 (checksums in
 *    little-endian words) or 0x377f0683 (big-endian), version 3007000,
 *    page size, checkpoint sequence, salt-1, salt-2, checksum-1,
 *    checksum-2 over the first 24 bytes.
 *  - frame: 24-byte header (page number, database size after commit or
 *    0, salt-1, salt-2, checksum-1, checksum-2, big-endian) + the page;
 *    the checksum runs over the first 8 header bytes and the page,
 *    chained from the previous frame's (the WAL header's for frame 1).
 *  - wal-index (-shm): two copies of a 48-byte header in the host's byte
 *    order, then checkpoint info (nBackfill, five read marks, lock bytes
 *    120..127, ...), 136 bytes in all; then per 32 KiB block a page
 *    number array and a 8192-slot hash table of 16-bit frame indexes.
 *    Lock i (0 WRITE, 1 CKPT, 2 RECOVER, 3+k READ(k)) is byte 120+i of
 *    the -shm file; byte 128 is the "dead man switch".
 */
#ifndef DSQ_FUSE_WALFMT_H
#define DSQ_FUSE_WALFMT_H

#include <stddef.h>
#include <stdint.h>

#define DSQ_WAL_HDR_SIZE 32
#define DSQ_WAL_FRAME_HDR 24
#define DSQ_WAL_MAGIC 0x377f0682u
#define DSQ_WAL_VERSION 3007000u

#define DSQ_SHM_HDR_SIZE 48   /* one copy of the wal-index header */
#define DSQ_SHM_INFO_SIZE 136 /* both copies + checkpoint info */
#define DSQ_SHM_BLOCK 32768   /* one wal-index block (hash table) */
#define DSQ_SHM_LOCK_BASE 120
#define DSQ_SHM_NLOCK 8
#define DSQ_SHM_DMS 128
#define DSQ_SHM_WRITE 0
#define DSQ_SHM_CKPT 1
#define DSQ_SHM_RECOVER 2
#define DSQ_SHM_READ0 3

struct dsq_walhdr {
    uint32_t magic;
    uint32_t version;
    uint32_t page_size; /* decoded: 65536 for the stored 1... */
    uint32_t ckpt_seq;
    uint8_t salt[8]; /* as stored (big-endian words) */
    uint32_t cksum[2];
};

/* 0 if the 32 bytes are a valid WAL header (magic, version, page size,
   checksum); -1 if not. */
int dsq_wal_hdr_decode(const uint8_t *buf, struct dsq_walhdr *h);
/* Encode h into 32 bytes, computing its checksum (stored in h too). */
void dsq_wal_hdr_encode(struct dsq_walhdr *h, uint8_t *out);

/* 1 if the WAL's checksums are computed over host-order words. */
int dsq_wal_native(const struct dsq_walhdr *h);

/* SQLite's WAL checksum over n bytes (a multiple of 8), from in (NULL:
   0, 0) into out (may equal in). */
void dsq_wal_cksum(int native, const uint8_t *data, size_t n,
                   const uint32_t *in, uint32_t *out);

struct dsq_walframe {
    uint32_t pgno;
    uint32_t db_size; /* > 0: commit frame */
    uint8_t salt[8];
    uint32_t cksum[2];
};

void dsq_wal_frame_decode(const uint8_t *buf, struct dsq_walframe *f);
/*
 * The header of a frame for page pgno: salts of h, checksum chained from
 * ck (updated to the frame's).
 */
void dsq_wal_frame_encode(const struct dsq_walhdr *h, uint32_t pgno,
                          uint32_t db_size, const uint8_t *page, uint32_t *ck,
                          uint8_t *out);
/* 1 if the frame belongs to h (salts) and its checksum follows ck (then
   updated). */
int dsq_wal_frame_check(const struct dsq_walhdr *h, const uint8_t *fhdr,
                        const uint8_t *page, uint32_t *ck);

/* Offset of frame n (>= 1) in a WAL of page size ps. */
static inline uint64_t dsq_wal_frame_off(uint32_t n, uint32_t ps)
{
    return DSQ_WAL_HDR_SIZE + (uint64_t)(n - 1) * (DSQ_WAL_FRAME_HDR + ps);
}

/* The wal-index header (host byte order in the file). */
struct dsq_shmhdr {
    uint32_t version;
    uint32_t unused;
    uint32_t change;
    uint8_t is_init;
    uint8_t big_end_cksum;
    uint16_t sz_page; /* 65536 is stored as 1 */
    uint32_t mx_frame;
    uint32_t n_page;
    uint32_t frame_cksum[2];
    uint8_t salt[8];
    uint32_t cksum[2];
};

/*
 * Read the header from the first 136 bytes of a -shm file: 0 if both
 * copies are equal, initialised and their checksum holds; -1 if not
 * (SQLite would run recovery).  *nbackfill (may be NULL) gets the
 * checkpoint's progress.
 */
int dsq_shm_hdr_read(const uint8_t *buf, struct dsq_shmhdr *h,
                     uint32_t *nbackfill);
/* Encode h (its checksum computed, is_init set) into 48 bytes. */
void dsq_shm_hdr_encode(struct dsq_shmhdr *h, uint8_t *out);

/* The wal-index block that indexes frame n, and its first frame - 1. */
unsigned dsq_shm_frame_block(uint32_t frame);
uint32_t dsq_shm_block_zero(unsigned block);

/*
 * Record frame (>= 1) of page pgno in wal-index block `block` (the 32 KiB
 * buffer of that block, as in the -shm file, whose block 0 starts with
 * the 136-byte header), exactly as SQLite's writer does: the first frame
 * of a block clears it, entries of abandoned frames beyond frame - 1 are
 * removed first.  0, or -1 if the table is corrupt.
 */
int dsq_shm_index_append(uint8_t *blk, unsigned block, uint32_t frame,
                         uint32_t pgno);

/* The frame holding page pgno among frames 1..mx_frame indexed in blk
   (0 if none in this block). */
uint32_t dsq_shm_index_find(const uint8_t *blk, unsigned block,
                            uint32_t mx_frame, uint32_t pgno);

#endif
