/*
 * segment.c - codecs for page segments (segments/{uuid}.seg) and page-table
 * chunks (pagetables/{uuid}.ptc).
 *
 * Layer: pure codec.  Encoding goes through msgpack-c's packer (shortest
 * forms), except the segment's "data" header, which is always bin32.
 * Decoding uses the strict cursor reader below instead of msgpack_unpack:
 * msgpack-c allocates count * sizeof(msgpack_object) for an array header
 * before reading its elements, so a 5-byte hostile object could ask for
 * ~100 GiB.  The reader accepts exactly the types the format names (any
 * msgpack width of them), checks every count against the hard caps and the
 * bytes left before allocating, and rejects trailing bytes.
 *
 * Invariants: a decoder returns DSQ_OK only for an object that satisfies
 * every rule of docs/format.md ("Segment", "Page-table chunk"); an encoder
 * never writes an object its decoder would refuse.  Out-parameters are
 * written only on success.
 *
 * Thread-safety: no shared mutable state.  Page decompression uses one
 * ZSTD_DCtx and one scratch page per thread, and each thread keeps one
 * spare ZSTD_CCtx for builders (pthread keys, freed at thread exit); a
 * builder belongs to one thread at a time.
 */
#include "segment.h"

#include <msgpack.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

#define ZSTD_LEVEL 1
#define OBJ_NAME(key) ((key) ? (key) : "(unnamed)")

/* ------------------------------------------------------------------ */
/* small helpers shared by both codecs                                  */

int dsq_page_size_valid(uint32_t page_size)
{
    return page_size >= DSQ_PAGE_SIZE_MIN && page_size <= DSQ_PAGE_SIZE_MAX &&
           (page_size & (page_size - 1)) == 0;
}

uint64_t dsq_page_checksum(const void *page, uint32_t page_size, uint32_t pgno)
{
    return XXH3_64bits_withSeed(page, page_size, pgno);
}

uint64_t dsq_object_checksum(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

static int chunk_pages_valid(uint64_t p)
{
    return p >= DSQ_CHUNK_PAGES_MIN && p <= DSQ_CHUNK_PAGES_MAX &&
           (p & (p - 1)) == 0;
}

static int is_hex32(const uint8_t *s, size_t len)
{
    if (len != 32)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* stored length fits the codec (raw: the page; zstd: a frame) */
static int stored_len_valid(uint64_t codec, uint64_t length, uint32_t page_size)
{
    if (codec == DSQ_CODEC_RAW)
        return length == page_size;
    if (codec == DSQ_CODEC_ZSTD)
        return length >= 1 && length <= DSQ_STORED_PAGE_MAX;
    return 0;
}

/* Length of the UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t k;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        k = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

int dsq_object_key_valid(const char *key, size_t len, const char *dir)
{
    const uint8_t *s = (const uint8_t *)key;
    size_t dl = strlen(dir);
    if (!key || len == 0 || len > DSQ_OBJECT_KEY_MAX || dl == 0 || len <= dl ||
        memcmp(key, dir, dl) != 0 || dir[dl - 1] != '/')
        return 0;
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return 0;
        size_t k = utf8_seq(s + i, len - i);
        if (k == 0)
            return 0;
        i += k;
    }
    /* components: none empty, ".", ".." or starting with ".dsqtmp" */
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && key[i] != '/')
            continue;
        size_t cl = i - start;
        const char *c = key + start;
        if (cl == 0 || (cl == 1 && c[0] == '.') ||
            (cl == 2 && c[0] == '.' && c[1] == '.') ||
            (cl >= 7 && memcmp(c, ".dsqtmp", 7) == 0))
            return 0;
        start = i + 1;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* per-thread decompression context                                     */

struct zscratch {
    ZSTD_DCtx *dctx;
    uint8_t page[DSQ_PAGE_SIZE_MAX];
};

static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;
static int zkey_ok;

static void zscratch_free(void *p)
{
    struct zscratch *z = p;
    if (z) {
        ZSTD_freeDCtx(z->dctx);
        free(z);
    }
}

static void zkey_init(void)
{
    zkey_ok = pthread_key_create(&zkey, zscratch_free) == 0;
}

static struct zscratch *zscratch_new(void)
{
    struct zscratch *z = malloc(sizeof(*z));
    if (!z)
        return NULL;
    z->dctx = ZSTD_createDCtx();
    if (!z->dctx) {
        free(z);
        return NULL;
    }
    return z;
}

/* This thread's scratch; *owned = 1 if the caller must zscratch_free it. */
static struct zscratch *zscratch_get(int *owned)
{
    pthread_once(&zonce, zkey_init);
    *owned = 0;
    if (zkey_ok) {
        struct zscratch *z = pthread_getspecific(zkey);
        if (z)
            return z;
        z = zscratch_new();
        if (z && pthread_setspecific(zkey, z) == 0)
            return z;
        if (!z)
            return NULL;
        *owned = 1;
        return z;
    }
    *owned = 1;
    return zscratch_new();
}

/*
 * Decode one page's stored bytes into img (page_size bytes, may be
 * clobbered on failure) and verify its checksum.  NULL on success, else a
 * static reason.
 */
static const char *page_decode_into(ZSTD_DCtx *dctx, const uint8_t *stored,
                                    size_t len, uint32_t pgno, uint8_t codec,
                                    uint64_t checksum, uint32_t page_size,
                                    uint8_t *img, const uint8_t **image)
{
    if (codec == DSQ_CODEC_RAW) {
        if (len != page_size)
            return "raw page length is not the page size";
        *image = stored;
    } else if (codec == DSQ_CODEC_ZSTD) {
        if (len < 4 || len > DSQ_STORED_PAGE_MAX)
            return "zstd page length out of range";
        uint32_t magic = (uint32_t)stored[0] | (uint32_t)stored[1] << 8 |
                         (uint32_t)stored[2] << 16 | (uint32_t)stored[3] << 24;
        if (magic != ZSTD_MAGICNUMBER)
            return "not a zstd frame";
        size_t fsz = ZSTD_findFrameCompressedSize(stored, len);
        if (ZSTD_isError(fsz))
            return "truncated or malformed zstd frame";
        if (fsz != len)
            return "bytes after the zstd frame";
        unsigned long long cs = ZSTD_getFrameContentSize(stored, len);
        if (cs == ZSTD_CONTENTSIZE_ERROR)
            return "malformed zstd frame header";
        if (cs != ZSTD_CONTENTSIZE_UNKNOWN && cs != page_size)
            return "zstd frame content size is not the page size";
        /* the output is bounded by page_size whatever the frame says */
        size_t r = ZSTD_decompressDCtx(dctx, img, page_size, stored, len);
        if (ZSTD_isError(r))
            return "zstd frame does not decompress";
        if (r != page_size)
            return "zstd frame does not decompress to the page size";
        *image = img;
    } else {
        return "unknown codec";
    }
    if (dsq_page_checksum(*image, page_size, pgno) != checksum)
        return "page checksum mismatch";
    return NULL;
}

/* DSQ_CORRUPT (logged), or with quiet only set in e. */
#define PAGE_CORRUPT(quiet, e, ...)                                            \
    ((quiet) ? dsq_err_set((e), DSQ_ECORRUPT, __VA_ARGS__)                     \
             : DSQ_CORRUPT((e), __VA_ARGS__))

static dsq_rc page_decode(const uint8_t *stored, size_t len,
                          const struct dsq_page_loc *loc, uint32_t page_size,
                          void *page_out, const char *key, int quiet,
                          struct dsq_err *e)
{
    if (!dsq_page_size_valid(page_size))
        return dsq_err_set(e, DSQ_EINVAL, "page decode: bad page size %u",
                           page_size);
    if (len != loc->length)
        return PAGE_CORRUPT(quiet, e,
                            "segment %s: page %u at offset %llu: got %zu "
                            "stored bytes, expected %u",
                            OBJ_NAME(key), loc->pgno,
                            (unsigned long long)loc->offset, len, loc->length);
    int owned = 0;
    struct zscratch *z = NULL;
    if (loc->codec == DSQ_CODEC_ZSTD) {
        z = zscratch_get(&owned);
        if (!z)
            return dsq_err_set(e, DSQ_ENOMEM, "page decode: out of memory");
    }
    const uint8_t *image = NULL;
    const char *why =
        page_decode_into(z ? z->dctx : NULL, stored, len, loc->pgno, loc->codec,
                         loc->checksum, page_size, z ? z->page : NULL, &image);
    dsq_rc rc = DSQ_OK;
    if (why)
        rc = PAGE_CORRUPT(quiet, e, "segment %s: page %u at offset %llu: %s",
                          OBJ_NAME(key), loc->pgno,
                          (unsigned long long)loc->offset, why);
    else
        memmove(page_out, image, page_size); /* may be in place */
    if (owned)
        zscratch_free(z);
    return rc;
}

dsq_rc dsq_page_decode(const uint8_t *stored, size_t len,
                       const struct dsq_page_loc *loc, uint32_t page_size,
                       void *page_out, const char *key, struct dsq_err *e)
{
    return page_decode(stored, len, loc, page_size, page_out, key, 0, e);
}

dsq_rc dsq_page_decode_quiet(const uint8_t *stored, size_t len,
                             const struct dsq_page_loc *loc, uint32_t page_size,
                             void *page_out, const char *key, struct dsq_err *e)
{
    return page_decode(stored, len, loc, page_size, page_out, key, 1, e);
}

/* ------------------------------------------------------------------ */
/* msgpack writing                                                      */

struct mpw {
    struct dsq_buf *out;
    dsq_rc rc;
};

static int mpw_write(void *data, const char *buf, size_t len)
{
    struct mpw *w = data;
    if (w->rc != DSQ_OK)
        return -1;
    w->rc = dsq_buf_append(w->out, buf, len);
    return w->rc == DSQ_OK ? 0 : -1;
}

static void mp_put_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Encoded sizes of the shortest msgpack forms (what the packer writes). */
static uint64_t mp_uint_size(uint64_t v)
{
    return v < 0x80           ? 1
           : v <= 0xff        ? 2
           : v <= 0xffff      ? 3
           : v <= 0xffffffffu ? 5
                              : 9;
}

static uint64_t mp_str_size(uint64_t n)
{
    return n + (n < 32 ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : 5);
}

static uint64_t mp_array_size(uint64_t n)
{
    return n < 16 ? 1 : n <= 0xffff ? 3 : 5;
}

/* ------------------------------------------------------------------ */
/* msgpack reading                                                      */

struct mpr {
    const uint8_t *p;
    size_t len;
    size_t off;
};

static size_t mpr_left(const struct mpr *r)
{
    return r->len - r->off;
}

static uint64_t be_read(const uint8_t *p, int k)
{
    uint64_t v = 0;
    for (int i = 0; i < k; i++)
        v = v << 8 | p[i];
    return v;
}

/* Read the k-byte big-endian length/value after a tag. */
static int mpr_be(struct mpr *r, int k, uint64_t *v)
{
    if (mpr_left(r) < (size_t)k)
        return -1;
    *v = be_read(r->p + r->off, k);
    r->off += (size_t)k;
    return 0;
}

static int mpr_tag(struct mpr *r, uint8_t *tag)
{
    if (mpr_left(r) < 1)
        return -1;
    *tag = r->p[r->off++];
    return 0;
}

/* Unsigned integer: positive fixint or uint 8/16/32/64. */
static int mpr_uint(struct mpr *r, uint64_t *v)
{
    uint8_t t;
    if (mpr_tag(r, &t) < 0)
        return -1;
    if (t <= 0x7f) {
        *v = t;
        return 0;
    }
    switch (t) {
    case 0xcc:
        return mpr_be(r, 1, v);
    case 0xcd:
        return mpr_be(r, 2, v);
    case 0xce:
        return mpr_be(r, 4, v);
    case 0xcf:
        return mpr_be(r, 8, v);
    default:
        return -1;
    }
}

/* String: fixstr or str 8/16/32; *s points into the input. */
static int mpr_str(struct mpr *r, const uint8_t **s, size_t *n)
{
    uint8_t t;
    uint64_t len;
    if (mpr_tag(r, &t) < 0)
        return -1;
    if (t >= 0xa0 && t <= 0xbf)
        len = t & 0x1f;
    else if (t == 0xd9 && mpr_be(r, 1, &len) == 0)
        ;
    else if (t == 0xda && mpr_be(r, 2, &len) == 0)
        ;
    else if (t == 0xdb && mpr_be(r, 4, &len) == 0)
        ;
    else
        return -1;
    if (mpr_left(r) < len)
        return -1;
    *s = r->p + r->off;
    *n = (size_t)len;
    r->off += (size_t)len;
    return 0;
}

static int mpr_array(struct mpr *r, uint64_t *n)
{
    uint8_t t;
    if (mpr_tag(r, &t) < 0)
        return -1;
    if (t >= 0x90 && t <= 0x9f) {
        *n = t & 0x0f;
        return 0;
    }
    if (t == 0xdc)
        return mpr_be(r, 2, n);
    if (t == 0xdd)
        return mpr_be(r, 4, n);
    return -1;
}

static int mpr_map(struct mpr *r, uint64_t *n)
{
    uint8_t t;
    if (mpr_tag(r, &t) < 0)
        return -1;
    if (t >= 0x80 && t <= 0x8f) {
        *n = t & 0x0f;
        return 0;
    }
    if (t == 0xde)
        return mpr_be(r, 2, n);
    if (t == 0xdf)
        return mpr_be(r, 4, n);
    return -1;
}

/* A map key that must be exactly name. */
static int mpr_key(struct mpr *r, const char *name)
{
    const uint8_t *s;
    size_t n;
    if (mpr_str(r, &s, &n) < 0)
        return -1;
    return n == strlen(name) && memcmp(s, name, n) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* segment builder                                                      */

struct seg_ent {
    uint32_t pgno;
    uint32_t length;
    uint64_t checksum;
    uint8_t codec;
};

struct dsq_seg_builder {
    uint32_t page_size;
    int compress;
    unsigned zskip;    /* pages left to store without trying zstd */
    unsigned zbackoff; /* the last skip length (0: zstd paid last time) */
    char txn_id[33];
    ZSTD_CCtx *cctx;
    uint8_t *zbuf; /* zstd output, then the zrun frame: 2 * zcap */
    size_t zcap;
    struct seg_ent *ents;
    size_t n, cap;
    uint64_t ents_bytes; /* encoded size of the "pages" entries */
    struct dsq_buf data; /* stored page bytes, in order */
    uint32_t *set;       /* open-addressing set of pgnos, 0 = empty */
    size_t set_cap;      /* power of two, > 2 * n */
};

/*
 * One spare compression context per thread: a builder takes it (or makes
 * one) and gives it back when freed, to the thread that frees it.  A
 * small commit compresses a page or two, and a fresh ZSTD_CCtx costs
 * about as much as those compressions.
 */
static pthread_key_t ckey;
static pthread_once_t conce = PTHREAD_ONCE_INIT;
static int ckey_ok;

static void cctx_free(void *p)
{
    ZSTD_freeCCtx(p);
}

static void ckey_init(void)
{
    ckey_ok = pthread_key_create(&ckey, cctx_free) == 0;
}

static ZSTD_CCtx *cctx_take(void)
{
    pthread_once(&conce, ckey_init);
    ZSTD_CCtx *c = ckey_ok ? pthread_getspecific(ckey) : NULL;
    if (c && pthread_setspecific(ckey, NULL) == 0)
        return c;
    return ZSTD_createCCtx();
}

static void cctx_give(ZSTD_CCtx *c)
{
    if (!c)
        return;
    pthread_once(&conce, ckey_init);
    if (ckey_ok && !pthread_getspecific(ckey) &&
        pthread_setspecific(ckey, c) == 0)
        return;
    ZSTD_freeCCtx(c);
}

/*
 * Compression that is cheap when it does not pay.  zstd at level 1 costs
 * ~1 ns a byte; pages of incompressible content (blobs of random or
 * already compressed bytes) save only their unallocated space with it,
 * which is one run of zero bytes between the cell pointers and the cell
 * content.  zrun_frame() writes that page as a zstd frame by hand: a raw
 * block, an RLE block for the run, a raw block (RFC 8878 §3.1.1), which
 * any zstd decoder reads; it costs a scan and a copy.  Each page gets the
 * zrun frame when it is smaller than the page; zstd is tried as well
 * unless it recently did not pay: when zstd saves less than an eighth
 * over the zrun frame (or the raw page), the next 1, 2, 4 ... 64 pages
 * skip it, and the first page where it pays again resets the backoff.
 */
#define ZRUN_MIN 32      /* a shorter run is not worth a frame */
#define ZRUN_OVERHEAD 17 /* frame header 7, three block headers, RLE byte */
#define ZSKIP_MAX 64

static void put_le24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
}

/* Longest run of zero bytes in page: its start and length. */
static void longest_zero_run(const uint8_t *page, uint32_t n, uint32_t *start,
                             uint32_t *len)
{
    uint32_t best = 0, best_at = 0, i = 0;
    while (i < n) {
        /* skip non-zero bytes eight at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, page + i, 8);
            if (w == 0)
                break;
            i += 8;
        }
        while (i < n && page[i] != 0)
            i++;
        uint32_t at = i;
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, page + i, 8);
            if (w != 0)
                break;
            i += 8;
        }
        while (i < n && page[i] == 0)
            i++;
        if (i - at > best) {
            best = i - at;
            best_at = at;
        }
    }
    *start = best_at;
    *len = best;
}

/*
 * page as one zstd frame of raw + RLE(0) + raw blocks into out (room for
 * page_size + ZRUN_OVERHEAD); its size, or 0 when the page has no zero
 * run worth it.
 */
static size_t zrun_frame(const uint8_t *page, uint32_t ps, uint8_t *out)
{
    uint32_t at, run;
    longest_zero_run(page, ps, &at, &run);
    if (run < ZRUN_MIN)
        return 0;
    uint32_t tail = ps - at - run;
    uint8_t *p = out;
    /* magic; descriptor: 2-byte content size, single segment, no
       checksum, no dictionary; content size - 256 (page sizes 512..64K) */
    const uint8_t hdr[7] = {0x28,
                            0xb5,
                            0x2f,
                            0xfd,
                            0x60,
                            (uint8_t)(ps - 256),
                            (uint8_t)((ps - 256) >> 8)};
    memcpy(p, hdr, sizeof(hdr));
    p += sizeof(hdr);
    if (at > 0) { /* raw block */
        put_le24(p, (at << 3) | (0u << 1));
        memcpy(p + 3, page, at);
        p += 3 + at;
    }
    put_le24(p, (run << 3) | (1u << 1) | (tail == 0)); /* RLE block */
    p[3] = 0;
    p += 4;
    if (tail > 0) { /* raw block, the last */
        put_le24(p, (tail << 3) | (0u << 1) | 1u);
        memcpy(p + 3, page + at + run, tail);
        p += 3 + tail;
    }
    return (size_t)(p - out);
}

dsq_rc dsq_seg_builder_new(uint32_t page_size, int compress, const char *txn_id,
                           struct dsq_seg_builder **out)
{
    if (!dsq_page_size_valid(page_size) || !txn_id ||
        !is_hex32((const uint8_t *)txn_id, strlen(txn_id)))
        return DSQ_EINVAL;
    struct dsq_seg_builder *b = calloc(1, sizeof(*b));
    if (!b)
        return DSQ_ENOMEM;
    b->page_size = page_size;
    b->compress = compress != 0;
    memcpy(b->txn_id, txn_id, 33);
    dsq_buf_init(&b->data, UINT32_MAX); /* bin32 holds at most this */
    if (b->compress) {
        b->zcap = ZSTD_compressBound(page_size);
        if (b->zcap < (size_t)page_size + ZRUN_OVERHEAD)
            b->zcap = (size_t)page_size + ZRUN_OVERHEAD;
        b->cctx = cctx_take();
        b->zbuf = malloc(2 * b->zcap);
        if (!b->cctx || !b->zbuf) {
            dsq_seg_builder_free(b);
            return DSQ_ENOMEM;
        }
    }
    *out = b;
    return DSQ_OK;
}

static size_t set_slot(uint32_t pgno, size_t cap)
{
    return (size_t)((pgno * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

/* 1 if present; else the empty slot where it goes in *slot. */
static int set_find(const uint32_t *set, size_t cap, uint32_t pgno,
                    size_t *slot)
{
    size_t i = set_slot(pgno, cap);
    while (set[i] != 0) {
        if (set[i] == pgno)
            return 1;
        i = (i + 1) & (cap - 1);
    }
    *slot = i;
    return 0;
}

static dsq_rc set_grow(struct dsq_seg_builder *b, size_t need)
{
    if (need * 2 < b->set_cap)
        return DSQ_OK;
    size_t ncap = b->set_cap ? b->set_cap * 2 : 64;
    while (need * 2 >= ncap)
        ncap *= 2;
    uint32_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return DSQ_ENOMEM;
    for (size_t i = 0; i < b->set_cap; i++) {
        size_t slot;
        if (b->set[i] && !set_find(ns, ncap, b->set[i], &slot))
            ns[slot] = b->set[i];
    }
    free(b->set);
    b->set = ns;
    b->set_cap = ncap;
    return DSQ_OK;
}

dsq_rc dsq_seg_builder_add(struct dsq_seg_builder *b, uint32_t pgno,
                           const void *page)
{
    size_t slot = 0;
    if (pgno == 0)
        return DSQ_EINVAL;
    if (b->set_cap && set_find(b->set, b->set_cap, pgno, &slot))
        return DSQ_EINVAL;
    if (b->n >= DSQ_SEG_MAX_PAGES)
        return DSQ_ERANGE;

    const uint8_t *stored = page;
    uint32_t length = b->page_size;
    uint8_t codec = DSQ_CODEC_RAW;
    if (b->compress) {
        /* the zrun frame goes in the second half of zbuf, zstd's in the
           first */
        uint8_t *zr = b->zbuf + b->zcap;
        size_t r = zrun_frame(page, b->page_size, zr);
        size_t plain = r && r < b->page_size ? r : b->page_size;
        if (plain < b->page_size) {
            stored = zr;
            length = (uint32_t)r;
            codec = DSQ_CODEC_ZSTD;
        }
        if (b->zskip > 0) {
            b->zskip--;
        } else {
            size_t z = ZSTD_compressCCtx(b->cctx, b->zbuf, b->zcap, page,
                                         b->page_size, ZSTD_LEVEL);
            if (!ZSTD_isError(z) && z < plain) {
                stored = b->zbuf;
                length = (uint32_t)z;
                codec = DSQ_CODEC_ZSTD;
            }
            if (ZSTD_isError(z) || z > plain - plain / 8) {
                b->zbackoff = b->zbackoff ? b->zbackoff * 2 : 1;
                if (b->zbackoff > ZSKIP_MAX)
                    b->zbackoff = ZSKIP_MAX;
                b->zskip = b->zbackoff;
            } else {
                b->zbackoff = 0;
            }
        }
    }
    /* make room for everything first: a failure leaves b unchanged */
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        struct seg_ent *ne = realloc(b->ents, ncap * sizeof(*ne));
        if (!ne)
            return DSQ_ENOMEM;
        b->ents = ne;
        b->cap = ncap;
    }
    dsq_rc rc = set_grow(b, b->n + 1);
    if (rc != DSQ_OK)
        return rc;
    rc = dsq_buf_append(&b->data, stored, length);
    if (rc != DSQ_OK)
        return rc;

    struct seg_ent *en = &b->ents[b->n++];
    en->pgno = pgno;
    en->length = length;
    en->codec = codec;
    en->checksum = dsq_page_checksum(page, b->page_size, pgno);
    b->ents_bytes += 1 + mp_uint_size(pgno) + mp_uint_size(codec) +
                     mp_uint_size(length) + mp_uint_size(en->checksum);
    set_find(b->set, b->set_cap, pgno, &slot);
    b->set[slot] = pgno;
    return DSQ_OK;
}

size_t dsq_seg_builder_count(const struct dsq_seg_builder *b)
{
    return b->n;
}

uint64_t dsq_seg_builder_size(const struct dsq_seg_builder *b)
{
    return 1                                                     /* map 6 */
           + mp_str_size(5) + mp_str_size(strlen(DSQ_SEG_MAGIC)) /* magic */
           + mp_str_size(6) + mp_uint_size(DSQ_SEG_FORMAT)       /* format */
           + mp_str_size(9) + mp_uint_size(b->page_size)         /* page_size */
           + mp_str_size(3) + mp_str_size(32)                    /* txn */
           + mp_str_size(5) + mp_array_size(b->n) + b->ents_bytes /* pages */
           + mp_str_size(4) + 5 + b->data.len;                    /* data */
}

dsq_rc dsq_seg_builder_finish(struct dsq_seg_builder *b, struct dsq_buf *out,
                              struct dsq_page_loc **locs, size_t *n_locs)
{
    size_t base = out->len;
    uint64_t size = dsq_seg_builder_size(b);
    if (size > SIZE_MAX)
        return DSQ_ERANGE;
    struct dsq_page_loc *l = NULL;
    if (b->n) {
        l = calloc(b->n, sizeof(*l));
        if (!l)
            return DSQ_ENOMEM;
    }
    dsq_rc rc = dsq_buf_reserve(out, (size_t)size);
    if (rc != DSQ_OK)
        goto out;

    struct mpw w = {out, DSQ_OK};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, mpw_write);
    msgpack_pack_map(&pk, 6);
    mp_put_str(&pk, "magic");
    mp_put_str(&pk, DSQ_SEG_MAGIC);
    mp_put_str(&pk, "format");
    msgpack_pack_uint32(&pk, DSQ_SEG_FORMAT);
    mp_put_str(&pk, "page_size");
    msgpack_pack_uint32(&pk, b->page_size);
    mp_put_str(&pk, "txn");
    mp_put_str(&pk, b->txn_id);
    mp_put_str(&pk, "pages");
    msgpack_pack_array(&pk, b->n);
    for (size_t i = 0; i < b->n; i++) {
        msgpack_pack_array(&pk, 4);
        msgpack_pack_uint32(&pk, b->ents[i].pgno);
        msgpack_pack_uint32(&pk, b->ents[i].codec);
        msgpack_pack_uint32(&pk, b->ents[i].length);
        msgpack_pack_uint64(&pk, b->ents[i].checksum);
    }
    mp_put_str(&pk, "data");
    uint8_t hdr[5] = {0xc6, (uint8_t)(b->data.len >> 24),
                      (uint8_t)(b->data.len >> 16), (uint8_t)(b->data.len >> 8),
                      (uint8_t)b->data.len};
    mpw_write(&w, (const char *)hdr, sizeof(hdr));
    rc = w.rc;
    if (rc != DSQ_OK)
        goto out;
    uint64_t off = out->len - base;
    rc = dsq_buf_append(out, b->data.data, b->data.len);
    if (rc != DSQ_OK)
        goto out;
    DSQ_INVARIANT(out->len - base == size);
    for (size_t i = 0; i < b->n; i++) {
        l[i].pgno = b->ents[i].pgno;
        l[i].seg = 0;
        l[i].offset = off;
        l[i].length = b->ents[i].length;
        l[i].codec = b->ents[i].codec;
        l[i].checksum = b->ents[i].checksum;
        off += b->ents[i].length;
    }
    *locs = l;
    *n_locs = b->n;
    l = NULL;
out:
    if (rc != DSQ_OK)
        out->len = base;
    free(l);
    return rc;
}

void dsq_seg_builder_reset(struct dsq_seg_builder *b)
{
    b->n = 0;
    b->ents_bytes = 0;
    dsq_buf_reset(&b->data);
    if (b->set)
        memset(b->set, 0, b->set_cap * sizeof(*b->set));
}

void dsq_seg_builder_free(struct dsq_seg_builder *b)
{
    if (!b)
        return;
    cctx_give(b->cctx);
    free(b->zbuf);
    free(b->ents);
    free(b->set);
    dsq_buf_cleanup(&b->data);
    free(b);
}

/* ------------------------------------------------------------------ */
/* segment decoder                                                      */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* format != ours: unsupported, naming both */
static dsq_rc unsupported(struct dsq_err *e, const char *what, const char *key,
                          uint64_t format, unsigned ours)
{
    return dsq_err_set(e, DSQ_EUNSUPPORTED,
                       "%s %s: format %llu is not supported (this build "
                       "reads format %u)",
                       what, OBJ_NAME(key), (unsigned long long)format, ours);
}

dsq_rc dsq_seg_decode(const uint8_t *data, size_t len, const char *key,
                      struct dsq_segment **out, struct dsq_err *e)
{
    struct mpr r = {data, len, 0};
    struct dsq_segment *s = NULL;
    uint32_t *pgnos = NULL;
    struct zscratch *z = NULL;
    int owned = 0;
    const char *why = NULL;
    const uint8_t *str;
    size_t sl;
    uint64_t nkeys, v, n, fmt;
    dsq_rc rc = DSQ_OK;

#define SEG_BAD(msg)                                                           \
    do {                                                                       \
        why = (msg);                                                           \
        goto bad;                                                              \
    } while (0)

    if (mpr_map(&r, &nkeys) < 0)
        SEG_BAD("not a msgpack map");
    if (nkeys < 2 || mpr_key(&r, "magic") < 0 || mpr_str(&r, &str, &sl) < 0 ||
        sl != strlen(DSQ_SEG_MAGIC) || memcmp(str, DSQ_SEG_MAGIC, sl) != 0)
        SEG_BAD("not a segment (bad magic)");
    if (mpr_key(&r, "format") < 0 || mpr_uint(&r, &fmt) < 0)
        SEG_BAD("bad \"format\"");
    if (fmt != DSQ_SEG_FORMAT)
        return unsupported(e, "segment", key, fmt, DSQ_SEG_FORMAT);
    if (nkeys != 6)
        SEG_BAD("the map does not have exactly 6 keys");

    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = dsq_err_set(e, DSQ_ENOMEM, "segment %s: out of memory",
                         OBJ_NAME(key));
        goto out;
    }
    if (mpr_key(&r, "page_size") < 0 || mpr_uint(&r, &v) < 0 ||
        v > UINT32_MAX || !dsq_page_size_valid((uint32_t)v))
        SEG_BAD("bad \"page_size\"");
    s->page_size = (uint32_t)v;
    if (mpr_key(&r, "txn") < 0 || mpr_str(&r, &str, &sl) < 0 ||
        !is_hex32(str, sl))
        SEG_BAD("bad \"txn\"");
    memcpy(s->txn_id, str, 32);
    s->txn_id[32] = 0;

    if (mpr_key(&r, "pages") < 0 || mpr_array(&r, &n) < 0)
        SEG_BAD("bad \"pages\"");
    /* an entry takes at least 5 bytes: cap before allocating */
    if (n > DSQ_SEG_MAX_PAGES || n > mpr_left(&r) / 5)
        SEG_BAD("\"pages\" count exceeds the cap or the object");
    if (n) {
        s->pages = calloc(n, sizeof(*s->pages));
        pgnos = malloc(n * sizeof(*pgnos));
        if (!s->pages || !pgnos) {
            rc = dsq_err_set(e, DSQ_ENOMEM, "segment %s: out of memory",
                             OBJ_NAME(key));
            goto out;
        }
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        struct dsq_page_loc *p = &s->pages[i];
        uint64_t an, pgno, codec, length, sum;
        if (mpr_array(&r, &an) < 0 || an != 4)
            SEG_BAD("a \"pages\" entry is not an array of 4");
        if (mpr_uint(&r, &pgno) < 0 || pgno == 0 || pgno > UINT32_MAX)
            SEG_BAD("bad page number");
        if (mpr_uint(&r, &codec) < 0 || codec > DSQ_CODEC_ZSTD)
            SEG_BAD("bad codec");
        if (mpr_uint(&r, &length) < 0 ||
            !stored_len_valid(codec, length, s->page_size))
            SEG_BAD("bad stored length for the codec");
        if (mpr_uint(&r, &sum) < 0)
            SEG_BAD("bad checksum");
        p->pgno = (uint32_t)pgno;
        p->codec = (uint8_t)codec;
        p->length = (uint32_t)length;
        p->checksum = sum;
        p->seg = 0;
        pgnos[i] = p->pgno;
        total += length;
    }
    s->n_pages = n;
    if (n > 1) {
        qsort(pgnos, n, sizeof(*pgnos), cmp_u32);
        for (size_t i = 1; i < n; i++)
            if (pgnos[i] == pgnos[i - 1])
                SEG_BAD("duplicate page number");
    }

    if (mpr_key(&r, "data") < 0)
        SEG_BAD("bad \"data\" key");
    uint8_t t;
    if (mpr_tag(&r, &t) < 0 || t != 0xc6 || mpr_be(&r, 4, &v) < 0)
        SEG_BAD("\"data\" is not bin32");
    if (v != total)
        SEG_BAD("\"data\" length is not the sum of the page lengths");
    if (mpr_left(&r) < v)
        SEG_BAD("truncated \"data\"");
    if (mpr_left(&r) > v)
        SEG_BAD("trailing bytes after the object");

    uint64_t off = r.off;
    for (size_t i = 0; i < n; i++) {
        s->pages[i].offset = off;
        off += s->pages[i].length;
    }
    /* every page must decode and match its checksum */
    for (size_t i = 0; i < n; i++) {
        struct dsq_page_loc *p = &s->pages[i];
        if (p->codec == DSQ_CODEC_ZSTD && !z) {
            z = zscratch_get(&owned);
            if (!z) {
                rc = dsq_err_set(e, DSQ_ENOMEM, "segment %s: out of memory",
                                 OBJ_NAME(key));
                goto out;
            }
        }
        const uint8_t *img;
        const char *pw = page_decode_into(
            z ? z->dctx : NULL, data + p->offset, p->length, p->pgno, p->codec,
            p->checksum, s->page_size, z ? z->page : NULL, &img);
        if (pw) {
            rc = DSQ_CORRUPT(e, "segment %s: page %u at offset %llu: %s",
                             OBJ_NAME(key), p->pgno,
                             (unsigned long long)p->offset, pw);
            goto out;
        }
    }
    *out = s;
    s = NULL;
    goto out;
#undef SEG_BAD

bad:
    rc = DSQ_CORRUPT(e, "segment %s: %s (at byte %zu)", OBJ_NAME(key), why,
                     r.off);
out:
    if (owned)
        zscratch_free(z);
    free(pgnos);
    dsq_seg_free(s);
    return rc;
}

void dsq_seg_free(struct dsq_segment *s)
{
    if (!s)
        return;
    free(s->pages);
    free(s);
}

int dsq_foreign_key_valid(const char *key, size_t len, const char *dir)
{
    size_t i = 0;
    while (i + 3 <= len && !memcmp(key + i, "../", 3))
        i += 3;
    if (i == 0 || i >= len || len > DSQ_OBJECT_KEY_MAX ||
        memchr(key, 0, len) != NULL)
        return 0;
    /* the last two components: dir and one name */
    size_t last = len;
    while (last > i && key[last - 1] != '/')
        last--;
    if (last <= i + 1)
        return 0;
    size_t prev = last - 1;
    while (prev > i && key[prev - 1] != '/')
        prev--;
    size_t dl = strlen(dir);
    if (prev <= i || len - prev <= dl || memcmp(key + prev, dir, dl) != 0 ||
        memchr(key + prev + dl, '/', len - prev - dl))
        return 0;
    /* the whole tail is a valid key under its first component's "dir" */
    char first[DSQ_OBJECT_KEY_MAX + 2];
    size_t fl = 0;
    while (i + fl < len && key[i + fl] != '/')
        fl++;
    memcpy(first, key + i, fl);
    first[fl] = '/';
    first[fl + 1] = 0;
    return dsq_object_key_valid(key + i, len - i, first) &&
           dsq_object_key_valid(key + prev, len - prev, dir);
}

void dsq_key_base(const char *key, char *out, size_t outsz)
{
    size_t n = strlen(key), slashes = 0, cut = 0;
    if (!dsq_key_is_foreign(key)) {
        snprintf(out, outsz, "%s", "");
        return;
    }
    for (size_t i = n; i > 0; i--)
        if (key[i - 1] == '/' && ++slashes == 2) {
            cut = i;
            break;
        }
    snprintf(out, outsz, "%.*s", (int)cut, key);
}

int dsq_key_rebase(const char *base, const char *key, char *out, size_t outsz)
{
    char tmp[2 * DSQ_OBJECT_KEY_MAX + 2];
    if (strlen(base) + strlen(key) + 1 > sizeof(tmp))
        return -1;
    snprintf(tmp, sizeof(tmp), "%s%s", base, key);
    /* components; "X/.." with X not ".." cancel */
    const char *comp[512];
    size_t cl[512], n = 0;
    for (const char *p = tmp; *p;) {
        const char *q = strchr(p, '/');
        size_t l = q ? (size_t)(q - p) : strlen(p);
        int up = l == 2 && p[0] == '.' && p[1] == '.';
        if (up && n > 0 && !(cl[n - 1] == 2 && !memcmp(comp[n - 1], "..", 2))) {
            n--;
        } else {
            if (n == 512)
                return -1;
            comp[n] = p;
            cl[n++] = l;
        }
        p = q ? q + 1 : p + l;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k + cl[i] + 2 > outsz)
            return -1;
        if (i)
            out[k++] = '/';
        memcpy(out + k, comp[i], cl[i]);
        k += cl[i];
    }
    out[k] = 0;
    return n ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* page-table chunks                                                    */

/* NULL if c satisfies every rule, else why not (into why). */
static const char *chunk_check(const struct dsq_chunk *c, char *why, size_t wn)
{
    if (!chunk_pages_valid(c->chunk_pages))
        return "bad \"chunk_pages\"";
    if ((uint64_t)c->index >= (1ull << 32) / c->chunk_pages)
        return "\"index\" out of range for \"chunk_pages\"";
    if (!dsq_page_size_valid(c->page_size))
        return "bad \"page_size\"";
    if (c->n_segments > DSQ_CHUNK_MAX_SEGMENTS)
        return "too many segments";
    if (c->n_entries > c->chunk_pages)
        return "more entries than pages in the chunk";
    for (size_t i = 0; i < c->n_segments; i++) {
        const char *k = c->segments[i];
        if (!k || !(dsq_object_key_valid(k, strlen(k), "segments/") ||
                    dsq_foreign_key_valid(k, strlen(k), "segments/"))) {
            snprintf(why, wn, "bad segment key #%zu", i);
            return why;
        }
    }
    uint64_t lo = (uint64_t)c->index * c->chunk_pages + 1;
    uint64_t hi = lo + c->chunk_pages - 1;
    for (size_t i = 0; i < c->n_entries; i++) {
        const struct dsq_page_loc *p = &c->entries[i];
        const char *w = NULL;
        if (p->pgno < lo || p->pgno > hi)
            w = "page number outside the chunk";
        else if (i > 0 && p->pgno <= c->entries[i - 1].pgno)
            w = "page numbers not sorted and unique";
        else if (p->seg >= c->n_segments)
            w = "segment index out of range";
        else if (!stored_len_valid(p->codec, p->length, c->page_size))
            w = "bad codec or stored length";
        else if (p->offset > UINT64_MAX - p->length)
            w = "offset overflows";
        if (w) {
            snprintf(why, wn, "entry #%zu (page %u): %s", i, p->pgno, w);
            return why;
        }
    }
    return NULL;
}

dsq_rc dsq_chunk_encode(const struct dsq_chunk *c, struct dsq_buf *out,
                        struct dsq_err *e)
{
    char whybuf[128];
    const char *why = chunk_check(c, whybuf, sizeof(whybuf));
    if (why)
        return dsq_err_set(e, DSQ_EINVAL, "page-table chunk %u: %s", c->index,
                           why);
    size_t base = out->len;
    struct mpw w = {out, DSQ_OK};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, mpw_write);
    msgpack_pack_map(&pk, 7);
    mp_put_str(&pk, "magic");
    mp_put_str(&pk, DSQ_CHUNK_MAGIC);
    unsigned cfmt = DSQ_CHUNK_FORMAT;
    for (size_t i = 0; i < c->n_segments; i++)
        if (dsq_key_is_foreign(c->segments[i]))
            cfmt = DSQ_CHUNK_FORMAT_FOREIGN;
    mp_put_str(&pk, "format");
    msgpack_pack_uint32(&pk, cfmt);
    mp_put_str(&pk, "index");
    msgpack_pack_uint32(&pk, c->index);
    mp_put_str(&pk, "chunk_pages");
    msgpack_pack_uint32(&pk, c->chunk_pages);
    mp_put_str(&pk, "page_size");
    msgpack_pack_uint32(&pk, c->page_size);
    mp_put_str(&pk, "segments");
    msgpack_pack_array(&pk, c->n_segments);
    for (size_t i = 0; i < c->n_segments; i++)
        mp_put_str(&pk, c->segments[i]);
    mp_put_str(&pk, "entries");
    msgpack_pack_array(&pk, c->n_entries);
    for (size_t i = 0; i < c->n_entries; i++) {
        const struct dsq_page_loc *p = &c->entries[i];
        msgpack_pack_array(&pk, 6);
        msgpack_pack_uint32(&pk, p->pgno);
        msgpack_pack_uint32(&pk, p->seg);
        msgpack_pack_uint64(&pk, p->offset);
        msgpack_pack_uint32(&pk, p->length);
        msgpack_pack_uint32(&pk, p->codec);
        msgpack_pack_uint64(&pk, p->checksum);
    }
    if (w.rc != DSQ_OK) {
        out->len = base;
        return dsq_err_set(e, w.rc, "page-table chunk %u: encoding: %s",
                           c->index, dsq_strerror(w.rc));
    }
    return DSQ_OK;
}

dsq_rc dsq_chunk_decode(const uint8_t *data, size_t len, const char *key,
                        struct dsq_chunk **out, struct dsq_err *e)
{
    struct mpr r = {data, len, 0};
    struct dsq_chunk *c = NULL;
    const char *why = NULL;
    char whybuf[128];
    const uint8_t *str;
    size_t sl;
    uint64_t nkeys, v, n, fmt;
    dsq_rc rc = DSQ_OK;

#define CHUNK_BAD(msg)                                                         \
    do {                                                                       \
        why = (msg);                                                           \
        goto bad;                                                              \
    } while (0)

    if (mpr_map(&r, &nkeys) < 0)
        CHUNK_BAD("not a msgpack map");
    if (nkeys < 2 || mpr_key(&r, "magic") < 0 || mpr_str(&r, &str, &sl) < 0 ||
        sl != strlen(DSQ_CHUNK_MAGIC) || memcmp(str, DSQ_CHUNK_MAGIC, sl) != 0)
        CHUNK_BAD("not a page-table chunk (bad magic)");
    if (mpr_key(&r, "format") < 0 || mpr_uint(&r, &fmt) < 0)
        CHUNK_BAD("bad \"format\"");
    if (fmt != DSQ_CHUNK_FORMAT && fmt != DSQ_CHUNK_FORMAT_FOREIGN)
        return unsupported(e, "page-table chunk", key, fmt,
                           DSQ_CHUNK_FORMAT_FOREIGN);
    if (nkeys != 7)
        CHUNK_BAD("the map does not have exactly 7 keys");

    c = calloc(1, sizeof(*c));
    if (!c)
        goto nomem;
    if (mpr_key(&r, "index") < 0 || mpr_uint(&r, &v) < 0 || v > UINT32_MAX)
        CHUNK_BAD("bad \"index\"");
    c->index = (uint32_t)v;
    if (mpr_key(&r, "chunk_pages") < 0 || mpr_uint(&r, &v) < 0 ||
        !chunk_pages_valid(v))
        CHUNK_BAD("bad \"chunk_pages\"");
    c->chunk_pages = (uint32_t)v;
    if (mpr_key(&r, "page_size") < 0 || mpr_uint(&r, &v) < 0 ||
        v > UINT32_MAX || !dsq_page_size_valid((uint32_t)v))
        CHUNK_BAD("bad \"page_size\"");
    c->page_size = (uint32_t)v;

    if (mpr_key(&r, "segments") < 0 || mpr_array(&r, &n) < 0)
        CHUNK_BAD("bad \"segments\"");
    /* a key takes at least 1 + strlen("segments/x") bytes */
    if (n > DSQ_CHUNK_MAX_SEGMENTS || n > mpr_left(&r) / 11)
        CHUNK_BAD("\"segments\" count exceeds the cap or the object");
    if (n) {
        c->segments = calloc(n, sizeof(*c->segments));
        if (!c->segments)
            goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        if (mpr_str(&r, &str, &sl) < 0 ||
            !(dsq_object_key_valid((const char *)str, sl, "segments/") ||
              (fmt == DSQ_CHUNK_FORMAT_FOREIGN &&
               dsq_foreign_key_valid((const char *)str, sl, "segments/"))))
            CHUNK_BAD("bad segment key");
        c->segments[i] = malloc(sl + 1);
        if (!c->segments[i])
            goto nomem;
        memcpy(c->segments[i], str, sl);
        c->segments[i][sl] = 0;
        c->n_segments = i + 1;
    }

    if (mpr_key(&r, "entries") < 0 || mpr_array(&r, &n) < 0)
        CHUNK_BAD("bad \"entries\"");
    /* an entry takes at least 7 bytes */
    if (n > c->chunk_pages || n > mpr_left(&r) / 7)
        CHUNK_BAD("\"entries\" count exceeds the chunk or the object");
    if (n) {
        c->entries = calloc(n, sizeof(*c->entries));
        if (!c->entries)
            goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        struct dsq_page_loc *p = &c->entries[i];
        uint64_t an, pgno, seg, off, length, codec, sum;
        if (mpr_array(&r, &an) < 0 || an != 6 || mpr_uint(&r, &pgno) < 0 ||
            mpr_uint(&r, &seg) < 0 || mpr_uint(&r, &off) < 0 ||
            mpr_uint(&r, &length) < 0 || mpr_uint(&r, &codec) < 0 ||
            mpr_uint(&r, &sum) < 0)
            CHUNK_BAD("an \"entries\" item is not an array of 6 integers");
        if (pgno == 0 || pgno > UINT32_MAX || seg > UINT32_MAX ||
            length > UINT32_MAX || codec > 255)
            CHUNK_BAD("an \"entries\" value is out of range");
        p->pgno = (uint32_t)pgno;
        p->seg = (uint32_t)seg;
        p->offset = off;
        p->length = (uint32_t)length;
        p->codec = (uint8_t)codec;
        p->checksum = sum;
    }
    c->n_entries = n;
    if (mpr_left(&r) != 0)
        CHUNK_BAD("trailing bytes after the object");
    why = chunk_check(c, whybuf, sizeof(whybuf));
    if (why) {
        rc = DSQ_CORRUPT(e, "page-table chunk %s: %s", OBJ_NAME(key), why);
        goto out;
    }
    *out = c;
    c = NULL;
    goto out;
#undef CHUNK_BAD

nomem:
    rc = dsq_err_set(e, DSQ_ENOMEM, "page-table chunk %s: out of memory",
                     OBJ_NAME(key));
    goto out;
bad:
    rc = DSQ_CORRUPT(e, "page-table chunk %s: %s (at byte %zu)", OBJ_NAME(key),
                     why, r.off);
out:
    dsq_chunk_free(c);
    return rc;
}

void dsq_chunk_free(struct dsq_chunk *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_segments; i++)
        free(c->segments[i]);
    free(c->segments);
    free(c->entries);
    free(c);
}
