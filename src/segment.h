/*
 * segment.h - codecs for the immutable binary objects: page segments
 * (segments/{uuid}.seg) and page-table chunks (pagetables/{uuid}.ptc).
 *
 * Layer: pure codec (bytes in, structs out; no network, no disk).  The only
 * home of msgpack, zstd and xxhash in the project.  Every decoder validates
 * its input completely and never trusts a length, count or type read from
 * it; malformed input is DSQ_ECORRUPT with a message naming the object key.
 * Byte-exact layout: docs/format.md, sections "Segment" and "Page-table
 * chunk".  Thread-safe: no shared state.
 */
#ifndef DSQ_SEGMENT_H
#define DSQ_SEGMENT_H

#include "buf.h"
#include "err.h"

#include <stddef.h>
#include <stdint.h>

#define DSQ_SEG_MAGIC "dsqlfs-segment"
#define DSQ_CHUNK_MAGIC "dsqlfs-pagetable"
#define DSQ_SEG_FORMAT 1
#define DSQ_CHUNK_FORMAT 1
/* chunks naming a segment of another database (a fork's, docs/format.md
   section 9) are written in format 2; format 1 is written otherwise */
#define DSQ_CHUNK_FORMAT_FOREIGN 2

#define DSQ_PAGE_SIZE_MIN 512
#define DSQ_PAGE_SIZE_MAX 65536
/* Largest stored page: zstd's bound for the largest page. */
#define DSQ_STORED_PAGE_MAX (DSQ_PAGE_SIZE_MAX + 1024)
/* Hard caps on decoded objects (hostile input). */
#define DSQ_SEG_MAX_PAGES (1u << 20)
#define DSQ_CHUNK_MAX_SEGMENTS 65536
/* Pages per page-table chunk: a power of two in this range. */
#define DSQ_CHUNK_PAGES_MIN 64u
#define DSQ_CHUNK_PAGES_MAX (1u << 20)
/* Longest object key (relative to the db prefix) in any object. */
#define DSQ_OBJECT_KEY_MAX 1024

enum dsq_codec {
    DSQ_CODEC_RAW = 0,  /* the page image itself, page_size bytes */
    DSQ_CODEC_ZSTD = 1, /* one zstd frame decoding to page_size bytes */
};

/*
 * Where the stored bytes of one page are.  checksum is
 * XXH3_64bits_withSeed(page image, page_size, seed = pgno), over the
 * decoded image, so a page served under the wrong number fails too.
 */
struct dsq_page_loc {
    uint32_t pgno;   /* >= 1 */
    uint32_t seg;    /* index into the owner's segment-key table */
    uint64_t offset; /* byte offset of the stored bytes in the segment */
    uint32_t length; /* stored length, 1..DSQ_STORED_PAGE_MAX */
    uint8_t codec;   /* enum dsq_codec */
    uint64_t checksum;
};

int dsq_page_size_valid(uint32_t page_size);
uint64_t dsq_page_checksum(const void *page, uint32_t page_size, uint32_t pgno);
/* XXH3_64bits of a whole object (page-table chunks, cache files). */
uint64_t dsq_object_checksum(const void *data, size_t len);

/*
 * 1 if key (len bytes, relative to the db prefix) may be stored in a
 * segment, chunk or manifest as the name of an object under dir
 * ("segments/" or "pagetables/"); rules in docs/format.md, "Keys".
 */
int dsq_object_key_valid(const char *key, size_t len, const char *dir);
/*
 * A key naming an object of another database of the same store (forks,
 * docs/format.md section 9): k >= 1 times "../", then that database's
 * prefix relative to the ancestor reached (one or more components), then
 * a valid key under dir with exactly one component after dir
 * ("../src/segments/{32 hex}.seg").  1 if valid.
 */
int dsq_foreign_key_valid(const char *key, size_t len, const char *dir);
/* 1 if key starts with "../" (then it must be a valid foreign key). */
static inline int dsq_key_is_foreign(const char *key)
{
    return key[0] == '.' && key[1] == '.' && key[2] == '/';
}
/*
 * Resolve key (relative to the database whose own keys are relative to
 * base: "" for this database, "../src/" for another) into out, relative
 * to this database, normalised ("../src/" + "../orig/segments/x" ->
 * "../orig/segments/x").  0, or -1 if it does not fit or goes nowhere.
 */
int dsq_key_rebase(const char *base, const char *key, char *out, size_t outsz);
/* The base of a key: "" for an own key, "../src/" for
   "../src/pagetables/x.ptc" (everything before its last two components). */
void dsq_key_base(const char *key, char *out, size_t outsz);

/*
 * Turn the stored bytes of one page (from a ranged GET) into its image:
 * decompress if needed, require exactly page_size bytes, verify the
 * checksum.  key names the object in errors.  page_out has page_size bytes.
 */
dsq_rc dsq_page_decode(const uint8_t *stored, size_t len,
                       const struct dsq_page_loc *loc, uint32_t page_size,
                       void *page_out, const char *key, struct dsq_err *e);
/* The same without logging a failure as corruption: for copies that are
   not the store's (the local disk cache), which the caller repairs. */
dsq_rc dsq_page_decode_quiet(const uint8_t *stored, size_t len,
                             const struct dsq_page_loc *loc, uint32_t page_size,
                             void *page_out, const char *key,
                             struct dsq_err *e);

/* ---- building a segment ---- */

struct dsq_seg_builder;

/* txn_id: 32 lowercase hex digits. compress: try zstd per page. */
dsq_rc dsq_seg_builder_new(uint32_t page_size, int compress, const char *txn_id,
                           struct dsq_seg_builder **out);
/* Add one page image (page_size bytes); a pgno may be added only once. */
dsq_rc dsq_seg_builder_add(struct dsq_seg_builder *b, uint32_t pgno,
                           const void *page);
size_t dsq_seg_builder_count(const struct dsq_seg_builder *b);
/* Encoded size if finished now (exact). */
uint64_t dsq_seg_builder_size(const struct dsq_seg_builder *b);
/*
 * Encode into out (appended at out->len == 0 expected) and return the
 * location of every page in the order added, with seg = 0 and absolute
 * offsets into the encoded object.  *locs is malloc'd (caller frees).
 * The builder may be reset and reused afterwards.
 */
dsq_rc dsq_seg_builder_finish(struct dsq_seg_builder *b, struct dsq_buf *out,
                              struct dsq_page_loc **locs, size_t *n_locs);
void dsq_seg_builder_reset(struct dsq_seg_builder *b);
void dsq_seg_builder_free(struct dsq_seg_builder *b);

/* ---- decoding a whole segment (verify, recovery, tools) ---- */

struct dsq_segment {
    uint32_t page_size;
    char txn_id[33];
    struct dsq_page_loc *pages; /* owned; seg = 0, absolute offsets */
    size_t n_pages;
};

/*
 * Decode and validate a whole segment: framing, types, offsets, and every
 * page's decompression and checksum.  The page bytes stay in data (use the
 * locations); *out owns only the table.
 */
dsq_rc dsq_seg_decode(const uint8_t *data, size_t len, const char *key,
                      struct dsq_segment **out, struct dsq_err *e);
void dsq_seg_free(struct dsq_segment *s);

/* ---- page-table chunks (checkpoints) ---- */

/*
 * One chunk maps the page numbers index*chunk_pages+1 ..
 * (index+1)*chunk_pages to their locations.  Pages without an entry are
 * zero-filled.  entries are sorted by pgno, unique, within the range, and
 * every entries[i].seg < n_segments.
 */
struct dsq_chunk {
    uint32_t index;
    uint32_t chunk_pages;
    uint32_t page_size;
    char **segments; /* owned: keys relative to the db prefix */
    size_t n_segments;
    struct dsq_page_loc *entries; /* owned */
    size_t n_entries;
};

dsq_rc dsq_chunk_encode(const struct dsq_chunk *c, struct dsq_buf *out,
                        struct dsq_err *e);
dsq_rc dsq_chunk_decode(const uint8_t *data, size_t len, const char *key,
                        struct dsq_chunk **out, struct dsq_err *e);
void dsq_chunk_free(struct dsq_chunk *c);

#endif
