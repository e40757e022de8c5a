/*
 * test_segment.c - the segment and page-table chunk codecs (segment.c):
 * round trips, the exact-size property of the builder, ranged page
 * decoding, and rejection of truncated, flipped, hostile and out-of-range
 * objects.  Format: docs/format.md.
 */
#include "codec_eq.h"
#include "log.h"
#include "segment.h"

#include <check.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

static const char *TXN = "0123456789abcdef0123456789abcdef";

/* ---- helpers ---- */

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* kind 0 random (incompressible), 1 zeros, 2 text-like (compressible) */
static void fill_page(uint8_t *p, uint32_t size, int kind, uint32_t pgno)
{
    switch (kind) {
    case 0:
        for (uint32_t i = 0; i < size; i++)
            p[i] = (uint8_t)rng();
        break;
    case 1:
        memset(p, 0, size);
        break;
    default:
        for (uint32_t i = 0; i < size; i++)
            p[i] = (uint8_t)("page line \n"[i % 11] + (i / 64 + pgno) % 3);
    }
}

struct built {
    struct dsq_buf obj;
    struct dsq_page_loc *locs;
    size_t n;
    uint8_t **pages; /* image of locs[i] */
    uint32_t page_size;
};

/* A segment of n pages with kinds cycling over random/zero/text. */
static void build(struct built *b, uint32_t page_size, int compress, size_t n,
                  uint32_t first_pgno)
{
    struct dsq_seg_builder *sb;
    ck_assert_int_eq(dsq_seg_builder_new(page_size, compress, TXN, &sb),
                     DSQ_OK);
    b->pages = calloc(n ? n : 1, sizeof(*b->pages));
    b->page_size = page_size;
    for (size_t i = 0; i < n; i++) {
        /* add in a scrambled order */
        uint32_t pgno = first_pgno + (uint32_t)((i * 7) % n);
        b->pages[i] = malloc(page_size);
        fill_page(b->pages[i], page_size, (int)(i % 3), pgno);
        ck_assert_int_eq(dsq_seg_builder_add(sb, pgno, b->pages[i]), DSQ_OK);
    }
    ck_assert_uint_eq(dsq_seg_builder_count(sb), n);
    uint64_t size = dsq_seg_builder_size(sb);
    dsq_buf_init(&b->obj, 1u << 30);
    ck_assert_int_eq(dsq_seg_builder_finish(sb, &b->obj, &b->locs, &b->n),
                     DSQ_OK);
    ck_assert_uint_eq(b->n, n);
    ck_assert_uint_eq(b->obj.len, size);
    dsq_seg_builder_free(sb);
}

static void built_free(struct built *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->pages[i]);
    free(b->pages);
    free(b->locs);
    dsq_buf_cleanup(&b->obj);
}

/* The image added under pgno, or NULL. */
static const uint8_t *image_of(const struct built *b, uint32_t pgno)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->locs[i].pgno == pgno)
            return b->pages[i];
    return NULL;
}

/* Decode every page of s from data; all must match b's images. */
static void check_pages(const struct built *b, const struct dsq_segment *s,
                        const uint8_t *data)
{
    uint8_t *img = malloc(b->page_size);
    ck_assert_uint_eq(s->n_pages, b->n);
    for (size_t i = 0; i < s->n_pages; i++) {
        const struct dsq_page_loc *l = &s->pages[i];
        struct dsq_err e;
        ck_assert_int_eq(dsq_page_decode(data + l->offset, l->length, l,
                                         b->page_size, img, "t", &e),
                         DSQ_OK);
        const uint8_t *want = image_of(b, l->pgno);
        ck_assert_ptr_nonnull(want);
        ck_assert_mem_eq(img, want, b->page_size);
    }
    free(img);
}

/* ---- page size, checksums ---- */

START_TEST(test_page_size_valid)
{
    ck_assert(dsq_page_size_valid(512));
    ck_assert(dsq_page_size_valid(4096));
    ck_assert(dsq_page_size_valid(65536));
    ck_assert(!dsq_page_size_valid(0));
    ck_assert(!dsq_page_size_valid(256));
    ck_assert(!dsq_page_size_valid(1000));
    ck_assert(!dsq_page_size_valid(131072));
    ck_assert(!dsq_page_size_valid(4097));
}
END_TEST

/* The test vectors recorded in docs/format.md, "Checksums". */
START_TEST(test_checksum_vectors)
{
    uint8_t page[4096];
    for (int i = 0; i < 4096; i++)
        page[i] = (uint8_t)(i * 7 + 3);
    ck_assert_uint_eq(dsq_page_checksum(page, 4096, 1), 0xe73cedd789dd09d7ull);
    ck_assert_uint_eq(dsq_page_checksum(page, 4096, 2), 0xf30ad30f8c240f85ull);
    memset(page, 0, sizeof(page));
    ck_assert_uint_eq(dsq_page_checksum(page, 4096, 1), 0xeca1fdafb7b0bd2aull);
    ck_assert_uint_eq(dsq_object_checksum("dsqlfs", 6), 0x0cee486884e97dafull);
    ck_assert_uint_eq(dsq_object_checksum("", 0), 0x2d06800538d394c2ull);
}
END_TEST

START_TEST(test_key_valid)
{
    const char *good[] = {"segments/0123456789abcdef0123456789abcdef.seg",
                          "segments/a", "segments/x/y.seg",
                          "segments/\xc3\xa9t\xc3\xa9.seg",
                          "segments/quote\"back\\slash"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        ck_assert_msg(
            dsq_object_key_valid(good[i], strlen(good[i]), "segments/"), "%s",
            good[i]);
    const char *bad[] = {"segments/",
                         "segments",
                         "pagetables/a.ptc",
                         "/segments/a",
                         "segments//a",
                         "segments/a/",
                         "segments/./a",
                         "segments/../a",
                         "segments/..",
                         "segments/.dsqtmp-1",
                         "segments/a\nb",
                         "segments/a\x7f",
                         "segments/\xc3",
                         "segments/\xff",
                         "segments/\xed\xa0\x80", /* surrogate */
                         "segments/\xc0\xaf",     /* overlong */
                         "Segments/a",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        ck_assert_msg(
            !dsq_object_key_valid(bad[i], strlen(bad[i]), "segments/"), "#%zu",
            i);
    ck_assert(!dsq_object_key_valid("segments/a\0b", 11, "segments/"));
    char longk[DSQ_OBJECT_KEY_MAX + 2];
    memset(longk, 'a', sizeof(longk));
    memcpy(longk, "segments/", 9);
    ck_assert(dsq_object_key_valid(longk, DSQ_OBJECT_KEY_MAX, "segments/"));
    ck_assert(
        !dsq_object_key_valid(longk, DSQ_OBJECT_KEY_MAX + 1, "segments/"));
    ck_assert(dsq_object_key_valid("pagetables/a.ptc", 16, "pagetables/"));
    /* a directory that is empty (a key whose first component starts with
       a NUL byte gave one), and foreign keys holding NUL bytes: refused,
       never read before the key (found by fuzz_chunk) */
    ck_assert(!dsq_object_key_valid("segments/a.seg", 14, ""));
    ck_assert(
        dsq_foreign_key_valid("../golden/segments/a.seg", 24, "segments/"));
    ck_assert(!dsq_foreign_key_valid("../\0\0\0\x80golden/segments/a.seg", 28,
                                     "segments/"));
    ck_assert(
        !dsq_foreign_key_valid("../gol\0den/segments/a.seg", 25, "segments/"));
}
END_TEST

/* ---- builder and round trips ---- */

START_TEST(test_roundtrip_sizes)
{
    static const uint32_t sizes[] = {512, 1024, 4096, 8192, 65536};
    for (size_t si = 0; si < sizeof(sizes) / sizeof(*sizes); si++) {
        for (int compress = 0; compress <= 1; compress++) {
            struct built b;
            build(&b, sizes[si], compress, 9, 1);
            struct dsq_segment *s = NULL;
            struct dsq_err e;
            ck_assert_int_eq(dsq_seg_decode(b.obj.data, b.obj.len, "t", &s, &e),
                             DSQ_OK);
            ck_assert_uint_eq(s->page_size, sizes[si]);
            ck_assert_str_eq(s->txn_id, TXN);
            ck_assert_uint_eq(s->n_pages, 9);
            int zstd = 0, raw = 0;
            for (size_t i = 0; i < 9; i++) {
                ck_assert(dsq_eq_loc(&s->pages[i], &b.locs[i]));
                ck_assert_uint_eq(s->pages[i].seg, 0);
                if (s->pages[i].codec == DSQ_CODEC_ZSTD) {
                    zstd++;
                    ck_assert_uint_lt(s->pages[i].length, sizes[si]);
                } else {
                    raw++;
                    ck_assert_uint_eq(s->pages[i].length, sizes[si]);
                }
            }
            if (compress) {
                ck_assert_int_eq(zstd, 6); /* zero and text pages */
                ck_assert_int_eq(raw, 3);  /* random pages */
            } else {
                ck_assert_int_eq(zstd, 0);
            }
            check_pages(&b, s, b.obj.data);
            dsq_seg_free(s);
            built_free(&b);
        }
    }
}
END_TEST

/* Ranged bytes: copy exactly the stored bytes, as a ranged GET returns. */
START_TEST(test_ranged_decode)
{
    struct built b;
    build(&b, 4096, 1, 12, 100);
    for (size_t i = 0; i < b.n; i++) {
        const struct dsq_page_loc *l = &b.locs[i];
        uint8_t *stored = malloc(l->length);
        uint8_t *img = malloc(4096);
        memcpy(stored, b.obj.data + l->offset, l->length);
        ck_assert_int_eq(
            dsq_page_decode(stored, l->length, l, 4096, img, "t", NULL),
            DSQ_OK);
        ck_assert_mem_eq(img, b.pages[i], 4096);

        /* served under the wrong page number: checksum failure */
        struct dsq_page_loc wrong = *l;
        wrong.pgno = l->pgno + 1;
        memset(img, 0xa5, 4096);
        struct dsq_err e;
        dsq_err_clear(&e);
        ck_assert_int_eq(
            dsq_page_decode(stored, l->length, &wrong, 4096, img, "t", &e),
            DSQ_ECORRUPT);
        ck_assert_ptr_nonnull(strstr(e.msg, "checksum"));
        /* out-parameter untouched on failure */
        for (int k = 0; k < 4096; k++)
            ck_assert_uint_eq(img[k], 0xa5);

        /* wrong checksum, wrong length, one byte short */
        wrong = *l;
        wrong.checksum ^= 1;
        ck_assert_int_eq(
            dsq_page_decode(stored, l->length, &wrong, 4096, img, "t", NULL),
            DSQ_ECORRUPT);
        ck_assert_int_eq(
            dsq_page_decode(stored, l->length - 1, l, 4096, img, "t", NULL),
            DSQ_ECORRUPT);
        wrong = *l;
        wrong.length--;
        ck_assert_int_eq(dsq_page_decode(stored, l->length - 1, &wrong, 4096,
                                         img, "t", NULL),
                         DSQ_ECORRUPT);
        /* page size does not match */
        ck_assert_int_ne(
            dsq_page_decode(stored, l->length, l, 8192, img, "t", NULL),
            DSQ_OK);
        free(stored);
        free(img);
    }
    built_free(&b);
}
END_TEST

/* dsq_seg_builder_size is exact at every count and across every msgpack
   width boundary (array 16, fixint/uint8/16/32 page numbers). */
START_TEST(test_exact_size)
{
    static const uint32_t pgnos[] = {
        1,          2,          127,        128, 255, 256, 65535, 65536,
        0x7fffffff, 0xfffffffe, 0xffffffff, 3,   4,   5,   6,     7,
        8,          9,          10,         11,  12,  13};
    static const uint32_t sizes[] = {512, 65536};
    for (size_t si = 0; si < 2; si++) {
        uint32_t ps = sizes[si];
        uint8_t *page = malloc(ps);
        struct dsq_seg_builder *sb;
        ck_assert_int_eq(dsq_seg_builder_new(ps, 1, TXN, &sb), DSQ_OK);
        struct dsq_buf out;
        dsq_buf_init(&out, 1u << 28);
        for (size_t i = 0; i < sizeof(pgnos) / sizeof(*pgnos); i++) {
            fill_page(page, ps, (int)(i % 3), pgnos[i]);
            ck_assert_int_eq(dsq_seg_builder_add(sb, pgnos[i], page), DSQ_OK);
            struct dsq_page_loc *locs;
            size_t n;
            dsq_buf_reset(&out);
            uint64_t size = dsq_seg_builder_size(sb);
            ck_assert_int_eq(dsq_seg_builder_finish(sb, &out, &locs, &n),
                             DSQ_OK);
            ck_assert_uint_eq(out.len, size);
            ck_assert_uint_eq(n, i + 1);
            struct dsq_segment *s;
            ck_assert_int_eq(dsq_seg_decode(out.data, out.len, "t", &s, NULL),
                             DSQ_OK);
            dsq_seg_free(s);
            free(locs);
        }
        /* an empty builder, after reset */
        dsq_seg_builder_reset(sb);
        ck_assert_uint_eq(dsq_seg_builder_count(sb), 0);
        dsq_buf_reset(&out);
        struct dsq_page_loc *locs = NULL;
        size_t n = 99;
        uint64_t size = dsq_seg_builder_size(sb);
        ck_assert_int_eq(dsq_seg_builder_finish(sb, &out, &locs, &n), DSQ_OK);
        ck_assert_uint_eq(n, 0);
        ck_assert_uint_eq(out.len, size);
        struct dsq_segment *s;
        ck_assert_int_eq(dsq_seg_decode(out.data, out.len, "t", &s, NULL),
                         DSQ_OK);
        ck_assert_uint_eq(s->n_pages, 0);
        dsq_seg_free(s);
        free(locs);
        dsq_buf_cleanup(&out);
        dsq_seg_builder_free(sb);
        free(page);
    }
}
END_TEST

/* Across the array16 -> array32 boundary of "pages" (65536 entries). */
START_TEST(test_exact_size_many)
{
    uint8_t page[512];
    memset(page, 0, sizeof(page));
    struct dsq_seg_builder *sb;
    ck_assert_int_eq(dsq_seg_builder_new(512, 1, TXN, &sb), DSQ_OK);
    struct dsq_buf out;
    dsq_buf_init(&out, 1u << 28);
    for (uint32_t p = 1; p <= 65537; p++) {
        ck_assert_int_eq(dsq_seg_builder_add(sb, p, page), DSQ_OK);
        if (p == 15 || p == 16 || p == 65535 || p == 65536 || p == 65537) {
            struct dsq_page_loc *locs;
            size_t n;
            dsq_buf_reset(&out);
            uint64_t size = dsq_seg_builder_size(sb);
            ck_assert_int_eq(dsq_seg_builder_finish(sb, &out, &locs, &n),
                             DSQ_OK);
            ck_assert_uint_eq(out.len, size);
            free(locs);
        }
    }
    struct dsq_segment *s;
    ck_assert_int_eq(dsq_seg_decode(out.data, out.len, "t", &s, NULL), DSQ_OK);
    ck_assert_uint_eq(s->n_pages, 65537);
    dsq_seg_free(s);
    dsq_buf_cleanup(&out);
    dsq_seg_builder_free(sb);
}
END_TEST

START_TEST(test_builder_rejects)
{
    struct dsq_seg_builder *sb = NULL;
    uint8_t page[1024] = {0};
    ck_assert_int_eq(dsq_seg_builder_new(1000, 1, TXN, &sb), DSQ_EINVAL);
    ck_assert_int_eq(dsq_seg_builder_new(1024, 1, "0123", &sb), DSQ_EINVAL);
    ck_assert_int_eq(
        dsq_seg_builder_new(1024, 1, "0123456789ABCDEF0123456789abcdef", &sb),
        DSQ_EINVAL);
    ck_assert_ptr_null(sb);
    ck_assert_int_eq(dsq_seg_builder_new(1024, 0, TXN, &sb), DSQ_OK);
    ck_assert_int_eq(dsq_seg_builder_add(sb, 0, page), DSQ_EINVAL);
    ck_assert_int_eq(dsq_seg_builder_add(sb, 5, page), DSQ_OK);
    ck_assert_int_eq(dsq_seg_builder_add(sb, 5, page), DSQ_EINVAL);
    /* many pages: the hash set grows, duplicates still found */
    for (uint32_t p = 6; p < 3000; p++)
        ck_assert_int_eq(dsq_seg_builder_add(sb, p * 977, page), DSQ_OK);
    for (uint32_t p = 6; p < 3000; p += 97)
        ck_assert_int_eq(dsq_seg_builder_add(sb, p * 977, page), DSQ_EINVAL);
    ck_assert_int_eq(dsq_seg_builder_add(sb, 5, page), DSQ_EINVAL);
    ck_assert_uint_eq(dsq_seg_builder_count(sb), 2995);
    /* after reset a pgno may be added again */
    dsq_seg_builder_reset(sb);
    ck_assert_int_eq(dsq_seg_builder_add(sb, 5, page), DSQ_OK);
    /* an output buffer too small: ERANGE, out unchanged */
    struct dsq_buf out;
    dsq_buf_init(&out, 100);
    struct dsq_page_loc *locs = NULL;
    size_t n = 0;
    ck_assert_int_eq(dsq_seg_builder_finish(sb, &out, &locs, &n), DSQ_ERANGE);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_ptr_null(locs);
    dsq_buf_cleanup(&out);
    dsq_seg_builder_free(sb);
    dsq_seg_builder_free(NULL);
}
END_TEST

/* Reuse after finish + reset gives an independent, valid object. */
START_TEST(test_builder_reuse)
{
    uint8_t page[2048];
    struct dsq_seg_builder *sb;
    ck_assert_int_eq(dsq_seg_builder_new(2048, 1, TXN, &sb), DSQ_OK);
    for (int round = 0; round < 3; round++) {
        for (uint32_t p = 1; p <= 5; p++) {
            fill_page(page, 2048, (int)(p + round) % 3, p);
            ck_assert_int_eq(dsq_seg_builder_add(sb, p, page), DSQ_OK);
        }
        struct dsq_buf out;
        dsq_buf_init(&out, 1u << 20);
        struct dsq_page_loc *locs;
        size_t n;
        ck_assert_int_eq(dsq_seg_builder_finish(sb, &out, &locs, &n), DSQ_OK);
        ck_assert_uint_eq(n, 5);
        struct dsq_segment *s;
        ck_assert_int_eq(dsq_seg_decode(out.data, out.len, "t", &s, NULL),
                         DSQ_OK);
        for (size_t i = 0; i < n; i++)
            ck_assert(dsq_eq_loc(&s->pages[i], &locs[i]));
        dsq_seg_free(s);
        free(locs);
        dsq_buf_cleanup(&out);
        dsq_seg_builder_reset(sb);
    }
    dsq_seg_builder_free(sb);
}
END_TEST

/* ---- rejection of damaged objects ---- */

START_TEST(test_truncations)
{
    struct built b;
    build(&b, 512, 1, 4, 1);
    for (size_t len = 0; len < b.obj.len; len++) {
        /* a fresh copy of exactly len bytes so ASan sees any overread */
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, b.obj.data, len);
        struct dsq_segment *s = NULL;
        struct dsq_err e;
        dsq_err_clear(&e);
        ck_assert_int_eq(dsq_seg_decode(copy, len, "segments/t.seg", &s, &e),
                         DSQ_ECORRUPT);
        ck_assert_ptr_null(s);
        ck_assert_ptr_nonnull(strstr(e.msg, "segments/t.seg"));
        free(copy);
    }
    built_free(&b);
}
END_TEST

START_TEST(test_flips)
{
    struct built b;
    build(&b, 512, 1, 4, 1);
    static const uint8_t masks[] = {0x01, 0x10, 0x80, 0xff};
    uint8_t *copy = malloc(b.obj.len);
    size_t accepted = 0;
    for (size_t pos = 0; pos < b.obj.len; pos++) {
        for (size_t m = 0; m < sizeof(masks); m++) {
            memcpy(copy, b.obj.data, b.obj.len);
            copy[pos] ^= masks[m];
            struct dsq_segment *s = NULL;
            dsq_rc rc = dsq_seg_decode(copy, b.obj.len, "t", &s, NULL);
            if (rc != DSQ_OK) {
                /* "format" turned into another number: unsupported */
                ck_assert(rc == DSQ_ECORRUPT || rc == DSQ_EUNSUPPORTED);
                continue;
            }
            /* accepted (e.g. another hex digit of "txn"): every page must
               still be the one that was written */
            accepted++;
            ck_assert_uint_eq(s->n_pages, b.n);
            check_pages(&b, s, copy);
            dsq_seg_free(s);
        }
    }
    /* only flips inside "txn" that leave lowercase hex can be accepted */
    ck_assert_uint_le(accepted, 32 * 2);
    free(copy);
    built_free(&b);
}
END_TEST

/* ---- hand-built objects ---- */

struct pent {
    uint64_t pgno, codec, length, checksum;
};

/* Integer overrides: 0 keeps the valid value, ZERO asks for 0. */
#define ZERO INT64_MIN

static uint64_t ov(int64_t v, uint64_t def)
{
    return v == 0 ? def : v == ZERO ? 0 : (uint64_t)v;
}

/* Overrides of a valid one-page segment; zero fields mean "as valid". */
struct segp {
    const char *magic;
    int64_t format;
    int64_t nkeys;
    int64_t page_size;
    const char *txn;
    int swap;          /* page_size and txn swapped */
    int page_size_str; /* page_size as a string */
    int pages_map;     /* "pages" as a map */
    int entry_len;     /* elements per entry (0: 4) */
    int data_tag;      /* 0: 0xc6 */
    int64_t data_len;
    int extra_key;           /* a 7th key at the end */
    int trailing;            /* bytes after the object */
    const struct pent *ents; /* NULL: one raw page 1 of zeros */
    size_t n_ents;
    const uint8_t *data;
    size_t n_data;
};

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void seg_make(const struct segp *p, msgpack_sbuffer *sb)
{
    static uint8_t zero[512];
    struct pent def = {1, 0, 512, 0};
    def.checksum = dsq_page_checksum(zero, 512, 1);
    const struct pent *ents = p->ents ? p->ents : &def;
    size_t n = p->ents ? p->n_ents : 1;
    const uint8_t *data = p->ents ? p->data : zero;
    size_t n_data = p->ents ? p->n_data : 512;

    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (size_t)ov(p->nkeys, 6));
    pk_str(&pk, "magic");
    pk_str(&pk, p->magic ? p->magic : DSQ_SEG_MAGIC);
    pk_str(&pk, "format");
    msgpack_pack_uint64(&pk, ov(p->format, 1));
    for (int k = 0; k < 2; k++) {
        if ((k == 0) != (p->swap != 0)) {
            pk_str(&pk, "page_size");
            if (p->page_size_str)
                pk_str(&pk, "512");
            else
                msgpack_pack_uint64(&pk, ov(p->page_size, 512));
        } else {
            pk_str(&pk, "txn");
            pk_str(&pk, p->txn ? p->txn : TXN);
        }
    }
    pk_str(&pk, "pages");
    if (p->pages_map)
        msgpack_pack_map(&pk, n);
    else
        msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        int el = p->entry_len ? p->entry_len : 4;
        msgpack_pack_array(&pk, (size_t)el);
        uint64_t v[5] = {ents[i].pgno, ents[i].codec, ents[i].length,
                         ents[i].checksum, 0};
        for (int k = 0; k < el; k++)
            msgpack_pack_uint64(&pk, v[k < 5 ? k : 4]);
    }
    pk_str(&pk, "data");
    uint32_t dl = (uint32_t)ov(p->data_len, n_data);
    if (p->data_tag == 0xc4) {
        msgpack_pack_bin(&pk, n_data); /* shortest form: bin8/bin16 */
    } else if (p->data_tag == 0xd9) {
        msgpack_pack_str(&pk, n_data);
    } else {
        uint8_t h[5] = {0xc6, (uint8_t)(dl >> 24), (uint8_t)(dl >> 16),
                        (uint8_t)(dl >> 8), (uint8_t)dl};
        msgpack_sbuffer_write(sb, (const char *)h, 5);
    }
    msgpack_sbuffer_write(sb, (const char *)data, n_data);
    if (p->extra_key) {
        pk_str(&pk, "extra");
        msgpack_pack_uint64(&pk, 1);
    }
    if (p->trailing)
        msgpack_sbuffer_write(sb, "\xc0", 1);
}

static dsq_rc seg_try(const struct segp *p)
{
    msgpack_sbuffer sb;
    seg_make(p, &sb);
    struct dsq_segment *s = NULL;
    dsq_rc rc =
        dsq_seg_decode((const uint8_t *)sb.data, sb.size, "t", &s, NULL);
    if (rc == DSQ_OK)
        dsq_seg_free(s);
    else
        ck_assert_ptr_null(s);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

#define SEGP(...) (&(struct segp){__VA_ARGS__})

START_TEST(test_handbuilt_valid)
{
    /* the reference object decodes: the variations below are the cause */
    ck_assert_int_eq(seg_try(SEGP(.magic = NULL)), DSQ_OK);
}
END_TEST

START_TEST(test_bad_framing)
{
    ck_assert_int_eq(seg_try(SEGP(.magic = "dsqlfs-segmenT")), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.magic = "dsqlfs-pagetable")), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.format = 2)), DSQ_EUNSUPPORTED);
    ck_assert_int_eq(seg_try(SEGP(.format = ZERO)), DSQ_EUNSUPPORTED);
    ck_assert_int_eq(seg_try(SEGP(.format = 2, .nkeys = 9)), DSQ_EUNSUPPORTED);
    ck_assert_int_eq(seg_try(SEGP(.nkeys = 5)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.nkeys = 7, .extra_key = 1)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.extra_key = 1)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.swap = 1)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.page_size_str = 1)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.pages_map = 1)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.entry_len = 3)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.entry_len = 5)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.data_tag = 0xc4)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.data_tag = 0xd9)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.trailing = 1)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.data_len = 511)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.data_len = 513)), DSQ_ECORRUPT);
    /* txn */
    ck_assert_int_eq(seg_try(SEGP(.txn = "0123456789ABCDEF0123456789abcdef")),
                     DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.txn = "0123456789abcdef0123456789abcde")),
                     DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.txn = "0123456789abcdef0123456789abcdef0")),
                     DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.txn = "0123456789abcdef0123456789abcdeg")),
                     DSQ_ECORRUPT);
    /* page size */
    ck_assert_int_eq(seg_try(SEGP(.page_size = 1000)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.page_size = 256)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.page_size = 131072)), DSQ_ECORRUPT);
    ck_assert_int_eq(seg_try(SEGP(.page_size = (int64_t)1 << 41)),
                     DSQ_ECORRUPT);
    /* not a map at all */
    struct dsq_segment *s = NULL;
    ck_assert_int_eq(
        dsq_seg_decode((const uint8_t *)"\x93\x01\x02\x03", 4, "t", &s, NULL),
        DSQ_ECORRUPT);
    ck_assert_int_eq(dsq_seg_decode(NULL, 0, "t", &s, NULL), DSQ_ECORRUPT);
}
END_TEST

START_TEST(test_bad_entries)
{
    uint8_t a[512], z[1024];
    memset(a, 0x11, sizeof(a));
    uint64_t ca1 = dsq_page_checksum(a, 512, 1);
    uint64_t ca2 = dsq_page_checksum(a, 512, 2);
    /* two raw pages: baseline valid */
    uint8_t data[1024];
    memcpy(data, a, 512);
    memcpy(data + 512, a, 512);
    struct pent ok[2] = {{1, 0, 512, ca1}, {2, 0, 512, ca2}};
    ck_assert_int_eq(
        seg_try(SEGP(.ents = ok, .n_ents = 2, .data = data, .n_data = 1024)),
        DSQ_OK);
    struct pent dup[2] = {{1, 0, 512, ca1}, {1, 0, 512, ca1}};
    ck_assert_int_eq(
        seg_try(SEGP(.ents = dup, .n_ents = 2, .data = data, .n_data = 1024)),
        DSQ_ECORRUPT);
    struct pent swapped[2] = {{1, 0, 512, ca2}, {2, 0, 512, ca1}};
    ck_assert_int_eq(seg_try(SEGP(.ents = swapped, .n_ents = 2, .data = data,
                                  .n_data = 1024)),
                     DSQ_ECORRUPT);
    struct pent p0[1] = {{0, 0, 512, ca1}};
    ck_assert_int_eq(
        seg_try(SEGP(.ents = p0, .n_ents = 1, .data = data, .n_data = 512)),
        DSQ_ECORRUPT);
    struct pent pbig[1] = {{1ull << 32, 0, 512, ca1}};
    ck_assert_int_eq(
        seg_try(SEGP(.ents = pbig, .n_ents = 1, .data = data, .n_data = 512)),
        DSQ_ECORRUPT);
    struct pent codec2[1] = {{1, 2, 512, ca1}};
    ck_assert_int_eq(
        seg_try(SEGP(.ents = codec2, .n_ents = 1, .data = data, .n_data = 512)),
        DSQ_ECORRUPT);
    struct pent rawshort[1] = {{1, 0, 511, ca1}};
    ck_assert_int_eq(seg_try(SEGP(.ents = rawshort, .n_ents = 1, .data = data,
                                  .n_data = 511)),
                     DSQ_ECORRUPT);
    /* zstd: real frame, then length 0, too long, raw bytes as zstd */
    size_t zl = ZSTD_compress(z, sizeof(z), a, 512, 1);
    ck_assert(!ZSTD_isError(zl));
    struct pent zs[1] = {{1, 1, zl, ca1}};
    ck_assert_int_eq(
        seg_try(SEGP(.ents = zs, .n_ents = 1, .data = z, .n_data = zl)),
        DSQ_OK);
    struct pent zs0[1] = {{1, 1, 0, ca1}};
    ck_assert_int_eq(
        seg_try(SEGP(.ents = zs0, .n_ents = 1, .data = z, .n_data = 0)),
        DSQ_ECORRUPT);
    struct pent zsbig[1] = {{1, 1, DSQ_STORED_PAGE_MAX + 1, ca1}};
    ck_assert_int_eq(seg_try(SEGP(.ents = zsbig, .n_ents = 1, .data = z,
                                  .n_data = 16, .data_len = 16)),
                     DSQ_ECORRUPT);
    struct pent notz[1] = {{1, 1, 512, ca1}};
    ck_assert_int_eq(
        seg_try(SEGP(.ents = notz, .n_ents = 1, .data = a, .n_data = 512)),
        DSQ_ECORRUPT);
    /* a page whose checksum does not match */
    struct pent badsum[1] = {{1, 0, 512, ca1 ^ 0x100}};
    ck_assert_int_eq(
        seg_try(SEGP(.ents = badsum, .n_ents = 1, .data = a, .n_data = 512)),
        DSQ_ECORRUPT);
}
END_TEST

/* Headers that announce huge counts or lengths: rejected without trying to
   allocate what they claim (ASan would abort on a ~100 GiB request). */
START_TEST(test_hostile_headers)
{
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        {"\xdf\xff\xff\xff\xff", 5},               /* map32 */
        {"\xdd\xff\xff\xff\xff", 5},               /* array32 */
        {"\xdb\xff\xff\xff\xff", 5},               /* str32 */
        {"\xc6\xff\xff\xff\xff", 5},               /* bin32 */
        {"\x86\xa5magic\xdb\xff\xff\xff\xff", 12}, /* magic str32 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct dsq_segment *s = NULL;
        struct dsq_chunk *c = NULL;
        ck_assert_int_eq(dsq_seg_decode((const uint8_t *)cases[i].bytes,
                                        cases[i].len, "t", &s, NULL),
                         DSQ_ECORRUPT);
        ck_assert_int_eq(dsq_chunk_decode((const uint8_t *)cases[i].bytes,
                                          cases[i].len, "t", &c, NULL),
                         DSQ_ECORRUPT);
    }
    /* a valid prefix then "pages" as array32 of 2^32-1 entries, or a
       "data" bin32 of 4 GiB */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    pk_str(&pk, "magic");
    pk_str(&pk, DSQ_SEG_MAGIC);
    pk_str(&pk, "format");
    msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "page_size");
    msgpack_pack_uint64(&pk, 4096);
    pk_str(&pk, "txn");
    pk_str(&pk, TXN);
    pk_str(&pk, "pages");
    size_t mark = sb.size;
    msgpack_sbuffer_write(&sb, "\xdd\xff\xff\xff\xff", 5);
    for (int i = 0; i < 64; i++)
        msgpack_sbuffer_write(&sb, "\x94\x01\x00\x01\x00", 5);
    struct dsq_segment *s = NULL;
    ck_assert_int_eq(
        dsq_seg_decode((const uint8_t *)sb.data, sb.size, "t", &s, NULL),
        DSQ_ECORRUPT);
    /* 2^20 + 1 entries announced with enough bytes: over the cap */
    sb.size = mark;
    msgpack_sbuffer_write(&sb, "\xdd\x00\x10\x00\x01", 5);
    ck_assert_int_eq(
        dsq_seg_decode((const uint8_t *)sb.data, sb.size, "t", &s, NULL),
        DSQ_ECORRUPT);
    sb.size = mark;
    msgpack_pack_array(&pk, 0);
    pk_str(&pk, "data");
    msgpack_sbuffer_write(&sb, "\xc6\xff\xff\xff\xff", 5);
    ck_assert_int_eq(
        dsq_seg_decode((const uint8_t *)sb.data, sb.size, "t", &s, NULL),
        DSQ_ECORRUPT);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ---- hostile zstd frames in dsq_page_decode ---- */

static dsq_rc zdecode(const uint8_t *frame, size_t len, const uint8_t *img,
                      uint32_t ps)
{
    struct dsq_page_loc l = {
        7, 0, 0, (uint32_t)len, DSQ_CODEC_ZSTD, dsq_page_checksum(img, ps, 7)};
    uint8_t *out = malloc(ps); /* exactly page_size: ASan catches overflow */
    dsq_rc rc = dsq_page_decode(frame, len, &l, ps, out, "t", NULL);
    if (rc == DSQ_OK)
        ck_assert_mem_eq(out, img, ps);
    free(out);
    return rc;
}

/* One frame without a content size in its header. */
static size_t z_stream(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
    ZSTD_inBuffer in = {src, n, 0};
    ZSTD_outBuffer out = {dst, cap, 0};
    size_t r = ZSTD_compressStream2(c, &out, &in, ZSTD_e_end);
    ck_assert_uint_eq(r, 0);
    ZSTD_freeCCtx(c);
    return out.pos;
}

START_TEST(test_hostile_zstd)
{
    const uint32_t ps = 4096;
    uint8_t *img = calloc(1, 2 * ps);
    for (uint32_t i = 0; i < 2 * ps; i++)
        img[i] = (uint8_t)(i % 13);
    uint8_t frame[3 * 4096];
    /* valid: declared size, and unknown size decoding to page_size */
    size_t n = ZSTD_compress(frame, sizeof(frame), img, ps, 3);
    ck_assert_int_eq(zdecode(frame, n, img, ps), DSQ_OK);
    n = z_stream(img, ps, frame, sizeof(frame));
    ck_assert_uint_eq(ZSTD_getFrameContentSize(frame, n),
                      ZSTD_CONTENTSIZE_UNKNOWN);
    ck_assert_int_eq(zdecode(frame, n, img, ps), DSQ_OK);
    /* declares 2 pages */
    n = ZSTD_compress(frame, sizeof(frame), img, 2 * ps, 3);
    ck_assert_int_eq(zdecode(frame, n, img, ps), DSQ_ECORRUPT);
    /* unknown size, decodes to 2 pages: must stop at page_size */
    n = z_stream(img, 2 * ps, frame, sizeof(frame));
    ck_assert_int_eq(zdecode(frame, n, img, ps), DSQ_ECORRUPT);
    /* unknown size, decodes to less than a page */
    n = z_stream(img, ps - 1, frame, sizeof(frame));
    ck_assert_int_eq(zdecode(frame, n, img, ps), DSQ_ECORRUPT);
    /* two frames of half a page each */
    n = ZSTD_compress(frame, sizeof(frame), img, ps / 2, 3);
    size_t n2 =
        ZSTD_compress(frame + n, sizeof(frame) - n, img + ps / 2, ps / 2, 3);
    ck_assert_int_eq(zdecode(frame, n + n2, img, ps), DSQ_ECORRUPT);
    /* a frame then garbage */
    n = ZSTD_compress(frame, sizeof(frame), img, ps, 3);
    frame[n] = 0;
    ck_assert_int_eq(zdecode(frame, n + 1, img, ps), DSQ_ECORRUPT);
    /* every truncation of a valid frame */
    for (size_t k = 0; k < n; k++) {
        uint8_t *t = malloc(k ? k : 1);
        memcpy(t, frame, k);
        ck_assert_int_eq(zdecode(t, k, img, ps), DSQ_ECORRUPT);
        free(t);
    }
    /* a whole-page frame followed by a skippable frame (zstd itself would
       skip it and report a full page) */
    n = ZSTD_compress(frame, sizeof(frame), img, ps, 3);
    static const uint8_t skip8[16] = {0x50, 0x2a, 0x4d, 0x18, 8, 0, 0, 0};
    memcpy(frame + n, skip8, sizeof(skip8));
    ck_assert_int_eq(zdecode(frame, n + sizeof(skip8), img, ps), DSQ_ECORRUPT);
    /* a skippable frame */
    uint8_t skip[16] = {0x50, 0x2a, 0x4d, 0x18, 8, 0, 0, 0};
    ck_assert_int_eq(zdecode(skip, sizeof(skip), img, ps), DSQ_ECORRUPT);
    /* garbage */
    uint8_t junk[64];
    memset(junk, 0x5a, sizeof(junk));
    ck_assert_int_eq(zdecode(junk, sizeof(junk), img, ps), DSQ_ECORRUPT);
    /* a zstd page may not be longer than DSQ_STORED_PAGE_MAX */
    struct dsq_page_loc l = {1, 0, 0, DSQ_STORED_PAGE_MAX + 1, 1, 0};
    uint8_t *big = calloc(1, DSQ_STORED_PAGE_MAX + 1);
    uint8_t *out = malloc(ps);
    ck_assert_int_eq(
        dsq_page_decode(big, DSQ_STORED_PAGE_MAX + 1, &l, ps, out, "t", NULL),
        DSQ_ECORRUPT);
    /* unknown codec */
    l.codec = 9;
    l.length = ps;
    ck_assert_int_eq(dsq_page_decode(big, ps, &l, ps, out, "t", NULL),
                     DSQ_ECORRUPT);
    free(out);
    free(big);
    free(img);
}
END_TEST

/* ---- page-table chunks ---- */

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* A valid chunk: index 2 of 64-page chunks (pages 129..192). */
static struct dsq_chunk *chunk_sample(size_t n_entries)
{
    struct dsq_chunk *c = calloc(1, sizeof(*c));
    c->index = 2;
    c->chunk_pages = 64;
    c->page_size = 4096;
    c->n_segments = 3;
    c->segments = calloc(3, sizeof(char *));
    c->segments[0] = xstrdup("segments/00000000000000000000000000000001.seg");
    c->segments[1] = xstrdup("segments/00000000000000000000000000000002.seg");
    c->segments[2] = xstrdup("segments/\xc3\xa9\"\\.seg");
    c->n_entries = n_entries;
    c->entries = calloc(n_entries ? n_entries : 1, sizeof(*c->entries));
    for (size_t i = 0; i < n_entries; i++) {
        struct dsq_page_loc *p = &c->entries[i];
        p->pgno = 129 + (uint32_t)i;
        p->seg = (uint32_t)(i % 3);
        p->offset = i * 5000 + (i == 3 ? (1ull << 40) : 0);
        p->codec = (uint8_t)(i % 2);
        p->length = p->codec ? (uint32_t)(1 + i * 100) : 4096;
        p->checksum = rng();
    }
    return c;
}

static void chunk_roundtrip(const struct dsq_chunk *c, struct dsq_buf *out)
{
    dsq_buf_init(out, 1u << 26);
    struct dsq_err e;
    ck_assert_int_eq(dsq_chunk_encode(c, out, &e), DSQ_OK);
    struct dsq_chunk *d = NULL;
    ck_assert_int_eq(dsq_chunk_decode(out->data, out->len, "t", &d, &e),
                     DSQ_OK);
    ck_assert(dsq_eq_chunk(c, d));
    struct dsq_buf again;
    dsq_buf_init(&again, 1u << 26);
    ck_assert_int_eq(dsq_chunk_encode(d, &again, &e), DSQ_OK);
    ck_assert_uint_eq(again.len, out->len);
    ck_assert_mem_eq(again.data, out->data, out->len);
    dsq_buf_cleanup(&again);
    dsq_chunk_free(d);
}

START_TEST(test_chunk_roundtrip)
{
    for (size_t n = 0; n <= 64; n += (n < 20 ? 1 : 11)) {
        struct dsq_chunk *c = chunk_sample(n);
        struct dsq_buf out;
        chunk_roundtrip(c, &out);
        dsq_buf_cleanup(&out);
        dsq_chunk_free(c);
    }
    /* the last possible chunk of 2^20-page chunks, full */
    struct dsq_chunk *c = chunk_sample(0);
    c->chunk_pages = DSQ_CHUNK_PAGES_MAX;
    c->index = (uint32_t)((1ull << 32) / DSQ_CHUNK_PAGES_MAX - 1);
    c->page_size = 512;
    c->n_entries = 3;
    free(c->entries);
    c->entries = calloc(3, sizeof(*c->entries));
    uint32_t lo = c->index * DSQ_CHUNK_PAGES_MAX + 1;
    uint32_t pg[3] = {lo, lo + 1000, 0xffffffff};
    for (int i = 0; i < 3; i++)
        c->entries[i] = (struct dsq_page_loc){pg[i], 0, UINT64_MAX - 512,
                                              512,   0, UINT64_MAX};
    struct dsq_buf out;
    chunk_roundtrip(c, &out);
    dsq_buf_cleanup(&out);
    dsq_chunk_free(c);
}
END_TEST

/* The encoder refuses what the decoder would refuse (EINVAL). */
START_TEST(test_chunk_encode_rejects)
{
    struct dsq_buf out;
    dsq_buf_init(&out, 1u << 20);
    for (int k = 0; k < 13; k++) {
        struct dsq_chunk *c = chunk_sample(5);
        switch (k) {
        case 0:
            c->chunk_pages = 100;
            break;
        case 1:
            c->chunk_pages = 32;
            break;
        case 2:
            c->index = (uint32_t)((1ull << 32) / 64);
            break;
        case 3:
            c->page_size = 1000;
            break;
        case 4:
            c->entries[0].pgno = 128; /* below the chunk */
            break;
        case 5:
            c->entries[4].pgno = 193; /* above the chunk */
            break;
        case 6:
            c->entries[2].pgno = c->entries[1].pgno; /* duplicate */
            break;
        case 7:
            c->entries[1].seg = 3;
            break;
        case 8:
            c->entries[0].length = 4095; /* raw */
            break;
        case 9:
            c->entries[1].length = 0; /* zstd */
            break;
        case 10:
            c->entries[1].codec = 2;
            break;
        case 11:
            free(c->segments[1]);
            c->segments[1] = xstrdup("pagetables/x.ptc");
            break;
        case 12:
            c->entries[0].offset = UINT64_MAX - 100;
            break;
        }
        ck_assert_msg(dsq_chunk_encode(c, &out, NULL) == DSQ_EINVAL, "case %d",
                      k);
        ck_assert_uint_eq(out.len, 0);
        dsq_chunk_free(c);
    }
    dsq_buf_cleanup(&out);
    dsq_chunk_free(NULL);
}
END_TEST

START_TEST(test_chunk_damage)
{
    struct dsq_chunk *c = chunk_sample(6);
    struct dsq_buf out;
    chunk_roundtrip(c, &out);
    /* every truncation */
    for (size_t len = 0; len < out.len; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, out.data, len);
        struct dsq_chunk *d = NULL;
        ck_assert_int_eq(dsq_chunk_decode(copy, len, "t", &d, NULL),
                         DSQ_ECORRUPT);
        ck_assert_ptr_null(d);
        free(copy);
    }
    /* trailing bytes */
    uint8_t *copy = malloc(out.len + 1);
    memcpy(copy, out.data, out.len);
    copy[out.len] = 0xc0;
    struct dsq_chunk *d = NULL;
    ck_assert_int_eq(dsq_chunk_decode(copy, out.len + 1, "t", &d, NULL),
                     DSQ_ECORRUPT);
    /* flips: never a crash; an accepted object is a valid chunk (the
       manifest's object checksum is what catches these) */
    for (size_t pos = 0; pos < out.len; pos++) {
        for (int m = 0; m < 3; m++) {
            memcpy(copy, out.data, out.len);
            copy[pos] ^= (uint8_t)(m == 0 ? 0x01 : m == 1 ? 0x40 : 0xff);
            dsq_rc rc = dsq_chunk_decode(copy, out.len, "t", &d, NULL);
            if (rc == DSQ_OK) {
                struct dsq_buf re;
                dsq_buf_init(&re, 1u << 20);
                ck_assert_int_eq(dsq_chunk_encode(d, &re, NULL), DSQ_OK);
                dsq_buf_cleanup(&re);
                dsq_chunk_free(d);
            } else {
                ck_assert(rc == DSQ_ECORRUPT || rc == DSQ_EUNSUPPORTED);
            }
        }
    }
    ck_assert_uint_ne(dsq_object_checksum(out.data, out.len),
                      dsq_object_checksum(copy, out.len));
    free(copy);
    dsq_buf_cleanup(&out);
    dsq_chunk_free(c);
}
END_TEST

/* Hand-built chunks: header variations and hostile counts. */
struct chp {
    const char *magic;
    int64_t format;
    int64_t nkeys;
    int64_t index;
    int64_t chunk_pages;
    int swap;              /* index and chunk_pages swapped */
    int seg_bin;           /* a segment key as bin */
    int64_t n_segs_hdr;    /* announced count */
    int64_t n_entries_hdr; /* announced count */
    int entry_len;
};

static dsq_rc chunk_try(const struct chp *p)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (size_t)ov(p->nkeys, 7));
    pk_str(&pk, "magic");
    pk_str(&pk, p->magic ? p->magic : DSQ_CHUNK_MAGIC);
    pk_str(&pk, "format");
    msgpack_pack_uint64(&pk, ov(p->format, 1));
    for (int k = 0; k < 2; k++) {
        if ((k == 0) != (p->swap != 0)) {
            pk_str(&pk, "index");
            msgpack_pack_uint64(&pk, ov(p->index, 0));
        } else {
            pk_str(&pk, "chunk_pages");
            msgpack_pack_uint64(&pk, ov(p->chunk_pages, 64));
        }
    }
    pk_str(&pk, "page_size");
    msgpack_pack_uint64(&pk, 4096);
    pk_str(&pk, "segments");
    msgpack_pack_array(&pk, (size_t)ov(p->n_segs_hdr, 1));
    if (p->seg_bin)
        msgpack_pack_bin_with_body(&pk, "segments/a", 10);
    else
        pk_str(&pk, "segments/a");
    pk_str(&pk, "entries");
    msgpack_pack_array(&pk, (size_t)ov(p->n_entries_hdr, 1));
    int el = p->entry_len ? p->entry_len : 6;
    msgpack_pack_array(&pk, (size_t)el);
    uint64_t v[7] = {3, 0, 1000, 4096, 0, 12345, 0};
    for (int k = 0; k < el; k++)
        msgpack_pack_uint64(&pk, v[k < 7 ? k : 6]);
    struct dsq_chunk *c = NULL;
    dsq_rc rc =
        dsq_chunk_decode((const uint8_t *)sb.data, sb.size, "t", &c, NULL);
    if (rc == DSQ_OK) {
        ck_assert_uint_eq(c->n_entries, 1);
        ck_assert_uint_eq(c->entries[0].pgno, 3);
        ck_assert_uint_eq(c->entries[0].offset, 1000);
        ck_assert_uint_eq(c->entries[0].checksum, 12345);
        dsq_chunk_free(c);
    } else {
        ck_assert_ptr_null(c);
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

#define CHP(...) (&(struct chp){__VA_ARGS__})

START_TEST(test_chunk_handbuilt)
{
    ck_assert_int_eq(chunk_try(CHP(.magic = NULL)), DSQ_OK);
    ck_assert_int_eq(chunk_try(CHP(.magic = DSQ_SEG_MAGIC)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.format = 3)), DSQ_EUNSUPPORTED);
    /* format 2 (foreign segment keys allowed) reads a format-1 body */
    ck_assert_int_eq(chunk_try(CHP(.format = 2)), DSQ_OK);
    ck_assert_int_eq(chunk_try(CHP(.nkeys = 6)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.nkeys = 8)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.swap = 1)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.seg_bin = 1)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.entry_len = 5)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.entry_len = 7)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.chunk_pages = 48)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.chunk_pages = 1ll << 21)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.chunk_pages = ZERO)), DSQ_ECORRUPT);
    /* entry page 3 is outside chunk 1 */
    ck_assert_int_eq(chunk_try(CHP(.index = 1)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.index = 1ll << 32)), DSQ_ECORRUPT);
    /* announced counts larger than the object or the caps */
    ck_assert_int_eq(chunk_try(CHP(.n_segs_hdr = 0xffffffff)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.n_segs_hdr = 65537)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.n_segs_hdr = 2)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.n_entries_hdr = 0xffffffff)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.n_entries_hdr = 65)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.n_entries_hdr = 2)), DSQ_ECORRUPT);
    ck_assert_int_eq(chunk_try(CHP(.n_entries_hdr = ZERO)), DSQ_ECORRUPT);
}
END_TEST

/*
 * Incompressible pages with a run of zeros (a SQLite page's unallocated
 * space) are stored as a hand-made zstd frame (raw + RLE + raw blocks)
 * that every decoder reads; zstd is tried again later, and compressible
 * pages after a run of incompressible ones still get it.
 */
START_TEST(test_zero_run_frames)
{
    static const uint32_t sizes[] = {512, 4096, 65536};
    for (size_t si = 0; si < 3; si++) {
        uint32_t ps = sizes[si];
        struct dsq_seg_builder *sb;
        ck_assert_int_eq(dsq_seg_builder_new(ps, 1, TXN, &sb), DSQ_OK);
        const size_t n = 300;
        uint8_t **pages = calloc(n, sizeof(*pages));
        for (size_t i = 0; i < n; i++) {
            pages[i] = malloc(ps);
            if (i >= 200) { /* compressible, no zero bytes */
                fill_page(pages[i], ps, 2, (uint32_t)i + 1);
            } else {
                fill_page(pages[i], ps, 0, (uint32_t)i + 1);
                for (uint32_t k = 0; k < ps; k++)
                    pages[i][k] |= 1; /* no zero byte outside the run */
                /* the run: in the middle, at the start, at the end, all */
                uint32_t at = i % 4 == 0   ? 0
                              : i % 4 == 1 ? ps / 3
                              : i % 4 == 2 ? ps - ps / 4
                                           : 0;
                uint32_t len = i % 4 == 3 ? ps : ps / 4 - (uint32_t)(i % 7);
                memset(pages[i] + at, 0, len);
            }
            ck_assert_int_eq(dsq_seg_builder_add(sb, (uint32_t)i + 1, pages[i]),
                             DSQ_OK);
        }
        struct dsq_buf obj;
        struct dsq_page_loc *locs;
        size_t nl;
        dsq_buf_init(&obj, 1u << 30);
        ck_assert_int_eq(dsq_seg_builder_finish(sb, &obj, &locs, &nl), DSQ_OK);
        ck_assert_uint_eq(nl, n);
        uint8_t *img = malloc(ps);
        size_t text_bytes = 0;
        for (size_t i = 0; i < n; i++) {
            struct dsq_err e;
            const struct dsq_page_loc *l = &locs[i];
            if (i < 200) {
                ck_assert_int_eq(l->codec, DSQ_CODEC_ZSTD);
                ck_assert_uint_lt(l->length, ps - ps / 4 + 64);
            } else {
                text_bytes += l->length;
            }
            ck_assert_int_eq(dsq_page_decode(obj.data + l->offset, l->length, l,
                                             ps, img, "t", &e),
                             DSQ_OK);
            ck_assert_mem_eq(img, pages[i], ps);
            if (l->codec != DSQ_CODEC_ZSTD) {
                free(pages[i]);
                continue;
            }
            /* any zstd decoder reads it, the frame says its size */
            ck_assert_uint_eq(
                ZSTD_getFrameContentSize(obj.data + l->offset, l->length), ps);
            ck_assert_uint_eq(
                ZSTD_decompress(img, ps, obj.data + l->offset, l->length), ps);
            free(pages[i]);
        }
        /* zstd came back for the compressible pages (at most one backoff
           of 64 pages stored raw) */
        ck_assert_uint_lt(text_bytes, (size_t)64 * ps + 36 * (size_t)ps / 4);
        free(img);
        free(pages);
        free(locs);
        dsq_buf_cleanup(&obj);
        dsq_seg_builder_free(sb);
    }
}
END_TEST

static Suite *segment_suite(void)
{
    Suite *s = suite_create("segment");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_page_size_valid);
    tcase_add_test(tc, test_checksum_vectors);
    tcase_add_test(tc, test_key_valid);
    tcase_add_test(tc, test_roundtrip_sizes);
    tcase_add_test(tc, test_ranged_decode);
    tcase_add_test(tc, test_zero_run_frames);
    tcase_add_test(tc, test_exact_size);
    tcase_add_test(tc, test_exact_size_many);
    tcase_add_test(tc, test_builder_rejects);
    tcase_add_test(tc, test_builder_reuse);
    tcase_add_test(tc, test_truncations);
    tcase_add_test(tc, test_flips);
    tcase_add_test(tc, test_handbuilt_valid);
    tcase_add_test(tc, test_bad_framing);
    tcase_add_test(tc, test_bad_entries);
    tcase_add_test(tc, test_hostile_headers);
    tcase_add_test(tc, test_hostile_zstd);
    tcase_add_test(tc, test_chunk_roundtrip);
    tcase_add_test(tc, test_chunk_encode_rejects);
    tcase_add_test(tc, test_chunk_damage);
    tcase_add_test(tc, test_chunk_handbuilt);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* thousands of deliberate corruptions: keep the log quiet */
    dsq_log_set_level(DSQ_LOG_CRIT);
    SRunner *sr = srunner_create(segment_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
