/*
 * test_golden.c - the committed golden objects in tests/data/golden/ must
 * decode forever, field by field, to the values written below.  They form
 * one consistent little database "golden":
 *
 *   segment.seg   segments/4b1f0c3a9e2d47c58a6f1e0d2c3b4a59.seg, page size
 *                 1024, pages 7 (zeros, zstd), 2 (random, raw), 5 (text,
 *                 zstd), 1 (random, raw), added in that order
 *   chunk.ptc     pagetables/9d8c7b6a5f4e4d3c8b2a190817263544.ptc, chunk 0
 *                 of 64 pages: pages 1, 2, 5, 7 of segment.seg and page 64
 *                 of another segment
 *   manifest.json manifests/v00000000000000000012.json: checkpoint at 10
 *                 with chunk.ptc, overlay pages 2 (segment.seg) and 69
 *   root.json     version 12
 *   manifest_v2.json  manifests/v00000000000000000013.json, format_version
 *                 2: carries pages 5 (text, zstd) and 70 (random, raw)
 *                 inline, page 2 from segment.seg, checkpoint as above
 *
 *   chunk_v2.ptc  pagetables/00000000000000000000000000000003.ptc of the
 *                 fork "forkgolden" (a sibling of golden), chunk format
 *                 2: page 2 in golden's segment.seg, named
 *                 ../golden/segments/..., and page 9 in a segment of its own
 *   manifest_v3.json  forkgolden's manifests/v00000000000000000001.json,
 *                 format_version 3: version 1 of a fork of golden at
 *                 version 12, naming golden's chunk.ptc and segment.seg
 *   forkpin.json  golden's forks/f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0.json:
 *                 the pin of version 12
 *   manifest_v4.json  manifest_v2.json's version in format_version 4,
 *                 with the permission mode 0640 a chmod stored
 *
 * Regenerating (only when the format itself changes, with a new format
 * version and new file names so the old files keep being tested):
 *     DSQ_REGEN_GOLDEN=1 ./tests/test_golden     (format 1 files)
 *     DSQ_REGEN_GOLDEN=2 ./tests/test_golden     (format 2 files only)
 *     DSQ_REGEN_GOLDEN=3 ./tests/test_golden     (fork files only)
 *     DSQ_REGEN_GOLDEN=4 ./tests/test_golden     (format 4, from format 2)
 * writes the files into the source tree and prints the values to paste.
 * Format: docs/format.md.
 */
#include "codec_eq.h"
#include "log.h"
#include "manifest.h"
#include "segment.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GDIR DSQ_TEST_DATA "/golden/"
#define SEG_KEY "segments/4b1f0c3a9e2d47c58a6f1e0d2c3b4a59.seg"
#define SEG2_KEY "segments/00000000000000000000000000000001.seg"
#define CHUNK_KEY "pagetables/9d8c7b6a5f4e4d3c8b2a190817263544.ptc"
#define SEG_TXN "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define WRITER "a1a2a3a4b1b2c1c2d1d2e1e2e3e4e5e6"
#define M_TXN "f0e1d2c3b4a5968778695a4b3c2d1e0f"
#define T_MS 1764089099123ull /* 2025-11-25T16:44:59.123Z */
#define PS 1024
#define INC2 "c0ffee00c0ffee01c0ffee02c0ffee03"
#define TXN2 "1234567890abcdef1234567890abcdef"
#define KEY13 "manifests/v00000000000000000013.json"

/* ---- the page images (must never change) ---- */

static void golden_page(uint32_t pgno, uint8_t *p)
{
    if (pgno == 7) {
        memset(p, 0, PS);
    } else if (pgno == 5) {
        for (int i = 0; i < PS; i++)
            p[i] = (uint8_t) "golden page five, line of text\n"[i % 31];
    } else {
        uint32_t x = 2463534242u + pgno;
        for (int i = 0; i < PS; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            p[i] = (uint8_t)x;
        }
    }
}

static const uint32_t seg_order[4] = {7, 2, 5, 1};

/* ---- expected values (printed by the generator, then frozen) ---- */

static struct dsq_page_loc seg_locs[4] = {
    {7, 0, 154, 19, 1, 0x9eb77b8d6b605674ull},
    {2, 0, 173, 1024, 0, 0x5d0b20e6d51a6463ull},
    {5, 0, 1197, 49, 1, 0x0b2e79cf71545346ull},
    {1, 0, 1246, 1024, 0, 0x881c02b630a1da13ull},
};
#define SEG_SIZE 2270u
#define CHUNK_SIZE 267u
#define CHUNK_SUM 0x95dbc251e26fc69aull
#define P64_SUM 0x1111111111111111ull
#define P69_SUM 0x2222222222222222ull
/* variables so that the generator can update them in one run */
static uint64_t chunk_size = CHUNK_SIZE, chunk_sum = CHUNK_SUM;

/* ---- the expected structs ---- */

static struct dsq_chunk *golden_chunk(void)
{
    static char *segs[2] = {SEG_KEY, SEG2_KEY};
    static struct dsq_page_loc ents[5];
    static struct dsq_chunk c;
    /* sorted by pgno: 1, 2, 5, 7 from segment.seg, 64 from the other */
    const int order[4] = {3, 1, 2, 0};
    for (int i = 0; i < 4; i++)
        ents[i] = seg_locs[order[i]];
    ents[4] = (struct dsq_page_loc){64, 1, 4242, 1024, 0, P64_SUM};
    c = (struct dsq_chunk){0, 64, PS, segs, 2, ents, 5};
    return &c;
}

static struct dsq_manifest *golden_manifest(void)
{
    static struct dsq_range ws[2] = {{1, 2}, {69, 2}};
    static struct dsq_range fs[1] = {{71, 3}};
    static char *created[1] = {SEG2_KEY};
    static struct dsq_chunk_ref chunks[1];
    static char *segs[2] = {SEG2_KEY, SEG_KEY};
    static struct dsq_page_loc ov[2];
    static struct dsq_manifest m;
    chunks[0] = (struct dsq_chunk_ref){0, CHUNK_KEY, chunk_size, chunk_sum};
    ov[0] = seg_locs[1]; /* page 2 */
    ov[0].seg = 1;
    ov[1] = (struct dsq_page_loc){69, 0, 57, 1024, 0, P69_SUM};
    memset(&m, 0, sizeof(m));
    m.version = 12;
    m.parent = 11;
    m.page_size = PS;
    m.page_count = 70;
    strcpy(m.writer_id, WRITER);
    strcpy(m.txn_id, M_TXN);
    m.time_ms = T_MS;
    m.write_set = ws;
    m.n_write = 2;
    m.freed_set = fs;
    m.n_freed = 1;
    m.page1 = DSQ_PAGE1_COUNTERS;
    m.created = created;
    m.n_created = 1;
    m.ckpt_version = 10;
    m.ckpt_page_limit = 64;
    m.chunk_pages = 64;
    m.chunks = chunks;
    m.n_chunks = 1;
    m.segments = segs;
    m.n_segments = 2;
    m.overlay = ov;
    m.n_overlay = 2;
    return &m;
}

/* frozen values of manifest_v2.json (printed by the generator) */
static struct dsq_page_loc v2_inline[2] = {
    {5, 0, 57, 49, 1, 0x0b2e79cf71545346ull},
    {70, 0, 125, 1024, 0, 0xf2367deb4f516abdull},
};
#define V2_SIZE 2174u

static struct dsq_manifest *golden_manifest_v2(void)
{
    static struct dsq_range ws[2] = {{5, 1}, {70, 1}};
    static struct dsq_chunk_ref chunks[1];
    static char *segs[2] = {KEY13, SEG_KEY};
    static struct dsq_page_loc ov[3];
    static struct dsq_manifest m;
    chunks[0] = (struct dsq_chunk_ref){0, CHUNK_KEY, chunk_size, chunk_sum};
    ov[0] = seg_locs[1]; /* page 2, in segment.seg */
    ov[0].seg = 1;
    ov[1] = v2_inline[0];
    ov[2] = v2_inline[1];
    memset(&m, 0, sizeof(m));
    m.format_version = 2;
    strcpy(m.incarnation, INC2);
    m.version = 13;
    m.parent = 12;
    m.page_size = PS;
    m.page_count = 70;
    strcpy(m.writer_id, WRITER);
    strcpy(m.txn_id, TXN2);
    m.time_ms = T_MS + 1000;
    m.write_set = ws;
    m.n_write = 2;
    m.page1 = DSQ_PAGE1_NONE;
    m.ckpt_version = 10;
    m.ckpt_page_limit = 64;
    m.chunk_pages = 64;
    m.chunks = chunks;
    m.n_chunks = 1;
    m.segments = segs;
    m.n_segments = 2;
    m.overlay = ov;
    m.n_overlay = 3;
    return &m;
}

/* ---- the fork "forkgolden" (format 3 manifest, format 2 chunk) ---- */

#define INC3 "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"
#define TXN3 "0badc0de0badc0de0badc0de0badc0de"
#define F_SEG "../golden/" SEG_KEY
#define F_CHUNK "../golden/" CHUNK_KEY
#define OWN_SEG3 "segments/00000000000000000000000000000002.seg"
#define KEY_V1 "manifests/v00000000000000000001.json"
/* frozen sizes (printed by the generator) */
#define CHUNK_V2_SIZE 223u
#define V3_SIZE 643u
#define V4_SIZE 2185u
#define PIN_SIZE 94u

static struct dsq_chunk *golden_chunk_v2(void)
{
    static char *segs[2] = {F_SEG, OWN_SEG3};
    static struct dsq_page_loc ents[2];
    static struct dsq_chunk c;
    ents[0] = seg_locs[1]; /* page 2, in golden's segment.seg */
    ents[0].seg = 0;
    ents[1] = (struct dsq_page_loc){9, 1, 57, 1024, 0, 0x3333333333333333ull};
    c = (struct dsq_chunk){0, 64, PS, segs, 2, ents, 2};
    return &c;
}

static struct dsq_manifest *golden_manifest_v3(void)
{
    static struct dsq_range ws[1] = {{1, 70}};
    static struct dsq_chunk_ref chunks[1];
    static char *segs[1] = {F_SEG};
    static struct dsq_page_loc ov[1];
    static struct dsq_manifest m;
    chunks[0] = (struct dsq_chunk_ref){0, F_CHUNK, chunk_size, chunk_sum};
    ov[0] = seg_locs[1]; /* page 2 */
    ov[0].seg = 0;
    memset(&m, 0, sizeof(m));
    m.format_version = 2; /* the encoder writes 3: it names foreign keys */
    strcpy(m.incarnation, INC3);
    m.version = 1;
    m.parent = 0;
    m.page_size = PS;
    m.page_count = 70;
    strcpy(m.writer_id, WRITER);
    strcpy(m.txn_id, TXN3);
    m.time_ms = T_MS + 2000;
    m.write_set = ws;
    m.n_write = 1;
    m.page1 = DSQ_PAGE1_CHANGED;
    m.ckpt_version = 1;
    m.ckpt_page_limit = 64;
    m.chunk_pages = 64;
    m.chunks = chunks;
    m.n_chunks = 1;
    m.segments = segs;
    m.n_segments = 1;
    m.overlay = ov;
    m.n_overlay = 1;
    return &m;
}

static void regenerate_v3(void)
{
    struct dsq_buf out;
    dsq_buf_init(&out, 1u << 20);
    if (dsq_chunk_encode(golden_chunk_v2(), &out, NULL) != DSQ_OK)
        abort();
    dsq_test_write_file(GDIR "chunk_v2.ptc", out.data, out.len);
    printf("#define CHUNK_V2_SIZE %zuu\n", out.len);
    dsq_buf_reset(&out);
    if (dsq_manifest_encode(golden_manifest_v3(), &out, NULL) != DSQ_OK)
        abort();
    dsq_test_write_file(GDIR "manifest_v3.json", out.data, out.len);
    printf("#define V3_SIZE %zuu\n", out.len);
    dsq_buf_reset(&out);
    struct dsq_forkpin pin = {12, T_MS + 2000};
    if (dsq_forkpin_encode(&pin, &out, NULL) != DSQ_OK)
        abort();
    dsq_test_write_file(GDIR "forkpin.json", out.data, out.len);
    printf("#define PIN_SIZE %zuu\n", out.len);
    dsq_buf_cleanup(&out);
}

/* ---- generator ---- */

static void print_loc(const struct dsq_page_loc *l)
{
    printf("    {%u, %u, %llu, %u, %u, 0x%016llxull},\n", l->pgno, l->seg,
           (unsigned long long)l->offset, l->length, l->codec,
           (unsigned long long)l->checksum);
}

/* Format 2 only: manifest_v2.json from the golden pages. */
static void regenerate_v2(void)
{
    uint8_t page[PS];
    struct dsq_seg_builder *sb;
    struct dsq_buf seg, out;
    struct dsq_page_loc *locs;
    size_t n;
    static const uint32_t pages[2] = {5, 70};
    dsq_buf_init(&seg, 1u << 20);
    dsq_buf_init(&out, 1u << 20);
    if (dsq_seg_builder_new(PS, 1, TXN2, &sb) != DSQ_OK)
        abort();
    for (int i = 0; i < 2; i++) {
        golden_page(pages[i], page);
        if (dsq_seg_builder_add(sb, pages[i], page) != DSQ_OK)
            abort();
    }
    if (dsq_seg_builder_finish(sb, &seg, &locs, &n) != DSQ_OK)
        abort();
    struct dsq_manifest *m = golden_manifest_v2();
    m->inline_text = NULL;
    m->inline_len = 0;
    printf("static struct dsq_page_loc v2_inline[2] = {\n");
    for (size_t i = 0; i < n; i++) {
        uint64_t off;
        if (dsq_manifest_inline_append(m, seg.data + locs[i].offset,
                                       locs[i].length, &off) != DSQ_OK)
            abort();
        locs[i].offset = off;
        m->overlay[1 + i] = locs[i];
        print_loc(&locs[i]);
    }
    if (dsq_manifest_encode(m, &out, NULL) != DSQ_OK)
        abort();
    dsq_test_write_file(GDIR "manifest_v2.json", out.data, out.len);
    printf("};\n#define V2_SIZE %zuu\n", out.len);
    free(m->inline_text);
    free(locs);
    dsq_seg_builder_free(sb);
    dsq_buf_cleanup(&seg);
    dsq_buf_cleanup(&out);
}

/* Format 4 only: manifest_v4.json is manifest_v2.json with a mode. */
static void regenerate_v4(void)
{
    size_t len;
    uint8_t *data = dsq_test_read_file(GDIR "manifest_v2.json", &len);
    struct dsq_manifest *m = NULL;
    struct dsq_buf out;
    dsq_buf_init(&out, 1u << 20);
    if (!data || dsq_manifest_decode(data, len, KEY13, &m, NULL) != DSQ_OK)
        abort();
    m->format_version = 2; /* the encoder picks 4 for a mode */
    m->has_mode = 1;
    m->mode = 0640;
    if (dsq_manifest_encode(m, &out, NULL) != DSQ_OK)
        abort();
    dsq_test_write_file(GDIR "manifest_v4.json", out.data, out.len);
    printf("#define V4_SIZE %zuu\n", out.len);
    dsq_manifest_free(m);
    dsq_buf_cleanup(&out);
    free(data);
}

static void regenerate(void)
{
    uint8_t page[PS];
    struct dsq_seg_builder *sb;
    struct dsq_buf out;
    struct dsq_page_loc *locs;
    size_t n;
    dsq_buf_init(&out, 1u << 20);
    if (dsq_seg_builder_new(PS, 1, SEG_TXN, &sb) != DSQ_OK)
        abort();
    for (int i = 0; i < 4; i++) {
        golden_page(seg_order[i], page);
        if (dsq_seg_builder_add(sb, seg_order[i], page) != DSQ_OK)
            abort();
    }
    if (dsq_seg_builder_finish(sb, &out, &locs, &n) != DSQ_OK)
        abort();
    dsq_test_write_file(GDIR "segment.seg", out.data, out.len);
    printf("static struct dsq_page_loc seg_locs[4] = {\n");
    for (size_t i = 0; i < n; i++)
        print_loc(&locs[i]);
    printf("};\n#define SEG_SIZE %zuu\n", out.len);
    /* the chunk and the manifest use the new locations */
    memcpy(seg_locs, locs, sizeof(seg_locs));
    free(locs);
    dsq_seg_builder_free(sb);

    dsq_buf_reset(&out);
    if (dsq_chunk_encode(golden_chunk(), &out, NULL) != DSQ_OK)
        abort();
    dsq_test_write_file(GDIR "chunk.ptc", out.data, out.len);
    chunk_size = out.len;
    chunk_sum = dsq_object_checksum(out.data, out.len);
    printf("#define CHUNK_SIZE %zuu\n#define CHUNK_SUM 0x%016llxull\n", out.len,
           (unsigned long long)chunk_sum);

    dsq_buf_reset(&out);
    if (dsq_manifest_encode(golden_manifest(), &out, NULL) != DSQ_OK)
        abort();
    dsq_test_write_file(GDIR "manifest.json", out.data, out.len);
    dsq_buf_reset(&out);
    struct dsq_root r = {12, T_MS};
    if (dsq_root_encode(&r, &out, NULL) != DSQ_OK)
        abort();
    dsq_test_write_file(GDIR "root.json", out.data, out.len);
    dsq_buf_cleanup(&out);
}

/* ---- tests ---- */

static uint8_t *load(const char *name, size_t *len)
{
    uint8_t *p = dsq_test_read_file(name, len);
    ck_assert_msg(p != NULL, "missing golden file %s", name);
    return p;
}

START_TEST(test_golden_segment)
{
    size_t len;
    uint8_t *data = load(GDIR "segment.seg", &len);
    ck_assert_uint_eq(len, SEG_SIZE);
    struct dsq_segment *s = NULL;
    struct dsq_err e;
    ck_assert_int_eq(dsq_seg_decode(data, len, SEG_KEY, &s, &e), DSQ_OK);
    ck_assert_uint_eq(s->page_size, PS);
    ck_assert_str_eq(s->txn_id, SEG_TXN);
    ck_assert_uint_eq(s->n_pages, 4);
    int zstd = 0;
    for (int i = 0; i < 4; i++) {
        const struct dsq_page_loc *l = &s->pages[i];
        ck_assert(dsq_eq_loc(l, &seg_locs[i]));
        ck_assert_uint_eq(l->pgno, seg_order[i]);
        zstd += l->codec == DSQ_CODEC_ZSTD;
        uint8_t want[PS], got[PS];
        golden_page(l->pgno, want);
        ck_assert_uint_eq(l->checksum, dsq_page_checksum(want, PS, l->pgno));
        ck_assert_int_eq(dsq_page_decode(data + l->offset, l->length, l, PS,
                                         got, SEG_KEY, &e),
                         DSQ_OK);
        ck_assert_mem_eq(got, want, PS);
    }
    ck_assert_int_eq(zstd, 2);
    /* the framing, byte for byte, up to the first key */
    static const uint8_t head[] = {0x86, 0xa5, 'm', 'a', 'g', 'i', 'c', 0xae};
    ck_assert_mem_eq(data, head, sizeof(head));
    /* bin32 header just before the first page */
    ck_assert_uint_eq(data[seg_locs[0].offset - 5], 0xc6);
    dsq_seg_free(s);
    free(data);
}
END_TEST

START_TEST(test_golden_chunk)
{
    size_t len;
    uint8_t *data = load(GDIR "chunk.ptc", &len);
    ck_assert_uint_eq(len, CHUNK_SIZE);
    ck_assert_uint_eq(dsq_object_checksum(data, len), CHUNK_SUM);
    struct dsq_chunk *c = NULL;
    struct dsq_err e;
    ck_assert_int_eq(dsq_chunk_decode(data, len, CHUNK_KEY, &c, &e), DSQ_OK);
    ck_assert_uint_eq(c->index, 0);
    ck_assert_uint_eq(c->chunk_pages, 64);
    ck_assert_uint_eq(c->page_size, PS);
    ck_assert_uint_eq(c->n_segments, 2);
    ck_assert_str_eq(c->segments[0], SEG_KEY);
    ck_assert_str_eq(c->segments[1], SEG2_KEY);
    ck_assert_uint_eq(c->n_entries, 5);
    static const uint32_t pg[5] = {1, 2, 5, 7, 64};
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(c->entries[i].pgno, pg[i]);
    ck_assert(dsq_eq_chunk(c, golden_chunk()));
    /* the encoder still writes exactly these bytes */
    struct dsq_buf out;
    dsq_buf_init(&out, 1u << 20);
    ck_assert_int_eq(dsq_chunk_encode(c, &out, NULL), DSQ_OK);
    ck_assert_uint_eq(out.len, len);
    ck_assert_mem_eq(out.data, data, len);
    dsq_buf_cleanup(&out);
    dsq_chunk_free(c);
    free(data);
}
END_TEST

START_TEST(test_golden_manifest)
{
    size_t len;
    uint8_t *data = load(GDIR "manifest.json", &len);
    struct dsq_manifest *m = NULL;
    struct dsq_err e;
    ck_assert_int_eq(dsq_manifest_decode(data, len,
                                         "manifests/v00000000000000000012.json",
                                         &m, &e),
                     DSQ_OK);
    ck_assert_uint_eq(m->version, 12);
    ck_assert_uint_eq(m->parent, 11);
    ck_assert_uint_eq(m->page_size, PS);
    ck_assert_uint_eq(m->page_count, 70);
    ck_assert_str_eq(m->writer_id, WRITER);
    ck_assert_str_eq(m->txn_id, M_TXN);
    ck_assert_uint_eq(m->time_ms, T_MS);
    ck_assert_uint_eq(m->n_write, 2);
    ck_assert_uint_eq(m->write_set[0].start, 1);
    ck_assert_uint_eq(m->write_set[0].count, 2);
    ck_assert_uint_eq(m->write_set[1].start, 69);
    ck_assert_uint_eq(m->write_set[1].count, 2);
    ck_assert_uint_eq(m->n_freed, 1);
    ck_assert_uint_eq(m->freed_set[0].start, 71);
    ck_assert_uint_eq(m->freed_set[0].count, 3);
    ck_assert_int_eq(m->page1, DSQ_PAGE1_COUNTERS);
    ck_assert_uint_eq(m->n_created, 1);
    ck_assert_str_eq(m->created[0], SEG2_KEY);
    ck_assert_uint_eq(m->ckpt_version, 10);
    ck_assert_uint_eq(m->ckpt_page_limit, 64);
    ck_assert_uint_eq(m->chunk_pages, 64);
    ck_assert_uint_eq(m->n_chunks, 1);
    ck_assert_uint_eq(m->chunks[0].index, 0);
    ck_assert_str_eq(m->chunks[0].key, CHUNK_KEY);
    ck_assert_uint_eq(m->chunks[0].size, CHUNK_SIZE);
    ck_assert_uint_eq(m->chunks[0].checksum, CHUNK_SUM);
    ck_assert_uint_eq(m->n_segments, 2);
    ck_assert_str_eq(m->segments[0], SEG2_KEY);
    ck_assert_str_eq(m->segments[1], SEG_KEY);
    ck_assert_uint_eq(m->n_overlay, 2);
    ck_assert_uint_eq(m->overlay[0].pgno, 2);
    ck_assert_uint_eq(m->overlay[0].seg, 1);
    ck_assert_uint_eq(m->overlay[0].offset, seg_locs[1].offset);
    ck_assert_uint_eq(m->overlay[0].length, 1024);
    ck_assert_uint_eq(m->overlay[0].codec, DSQ_CODEC_RAW);
    ck_assert_uint_eq(m->overlay[0].checksum, seg_locs[1].checksum);
    ck_assert_uint_eq(m->overlay[1].pgno, 69);
    ck_assert_uint_eq(m->overlay[1].seg, 0);
    ck_assert_uint_eq(m->overlay[1].offset, 57);
    ck_assert_uint_eq(m->overlay[1].length, 1024);
    ck_assert_uint_eq(m->overlay[1].codec, DSQ_CODEC_RAW);
    ck_assert_uint_eq(m->overlay[1].checksum, P69_SUM);
    ck_assert(dsq_eq_manifest(m, golden_manifest()));
    struct dsq_buf out;
    dsq_buf_init(&out, 1u << 20);
    ck_assert_int_eq(dsq_manifest_encode(m, &out, NULL), DSQ_OK);
    ck_assert_uint_eq(out.len, len);
    ck_assert_mem_eq(out.data, data, len);
    dsq_buf_cleanup(&out);
    dsq_manifest_free(m);
    free(data);
}
END_TEST

START_TEST(test_golden_root)
{
    size_t len;
    uint8_t *data = load(GDIR "root.json", &len);
    struct dsq_root r;
    ck_assert_int_eq(dsq_root_decode(data, len, "root.json", &r, NULL), DSQ_OK);
    ck_assert_uint_eq(r.version, 12);
    ck_assert_uint_eq(r.time_ms, T_MS);
    static const char want[] =
        "{\"format\":\"dsqlfs-root\",\"format_version\":1,\"version\":12,"
        "\"time\":\"2025-11-25T16:44:59.123Z\"}";
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_mem_eq(data, want, len);
    free(data);
}
END_TEST

/* The reader's lookup rule on the golden database: page 2 from the
   overlay, 5 from the chunk, 64 from the chunk's other segment, 65 and 70
   zero-filled (above the checkpoint's page limit, not in the overlay). */
START_TEST(test_golden_lookup)
{
    size_t len;
    uint8_t *md = load(GDIR "manifest.json", &len);
    struct dsq_manifest *m;
    ck_assert_int_eq(dsq_manifest_decode(md, len, "m", &m, NULL), DSQ_OK);
    uint8_t *cd = load(GDIR "chunk.ptc", &len);
    struct dsq_chunk *c;
    ck_assert_int_eq(dsq_chunk_decode(cd, len, "c", &c, NULL), DSQ_OK);
    for (uint32_t p = 1; p <= m->page_count; p++) {
        const struct dsq_page_loc *hit = NULL;
        const char *seg = NULL;
        for (size_t i = 0; i < m->n_overlay; i++)
            if (m->overlay[i].pgno == p) {
                hit = &m->overlay[i];
                seg = m->segments[hit->seg];
            }
        if (!hit && p <= m->ckpt_page_limit) {
            ck_assert_uint_eq((p - 1) / m->chunk_pages, m->chunks[0].index);
            for (size_t i = 0; i < c->n_entries; i++)
                if (c->entries[i].pgno == p) {
                    hit = &c->entries[i];
                    seg = c->segments[hit->seg];
                }
        }
        if (p == 1 || p == 2 || p == 5 || p == 7) {
            ck_assert_ptr_nonnull(hit);
            ck_assert_str_eq(seg, SEG_KEY);
        } else if (p == 64 || p == 69) {
            ck_assert_ptr_nonnull(hit);
            ck_assert_str_eq(seg, SEG2_KEY);
        } else {
            ck_assert_ptr_null(hit); /* zero-filled */
        }
        if (p == 2)
            ck_assert_ptr_eq(hit, &m->overlay[0]);
    }
    dsq_chunk_free(c);
    dsq_manifest_free(m);
    free(cd);
    free(md);
}
END_TEST

/*
 * manifest_v2.json decodes to the frozen values; the pages it carries
 * inline are where its overlay says, in the file's own bytes, and decode
 * to the golden images; the encoder writes the same bytes again.
 */
START_TEST(test_golden_manifest_v2)
{
    size_t len;
    uint8_t *data = load(GDIR "manifest_v2.json", &len);
    ck_assert_uint_eq(len, V2_SIZE);
    ck_assert_mem_eq(data, DSQ_MANIFEST_PREFIX2, DSQ_MANIFEST_INLINE_OFFSET);
    struct dsq_manifest *m = NULL;
    struct dsq_err e;
    ck_assert_int_eq(dsq_manifest_decode(data, len, KEY13, &m, &e), DSQ_OK);
    ck_assert_uint_eq(m->format_version, 2);
    ck_assert_str_eq(m->incarnation, INC2);
    ck_assert_uint_eq(m->version, 13);
    ck_assert_uint_eq(m->page_count, 70);
    ck_assert_uint_eq(m->n_overlay, 3);
    ck_assert_str_eq(m->segments[0], KEY13);
    ck_assert_str_eq(m->segments[1], SEG_KEY);
    ck_assert_uint_eq(m->overlay[0].pgno, 2);
    ck_assert_uint_eq(m->overlay[0].offset, seg_locs[1].offset);
    for (int i = 0; i < 2; i++) {
        const struct dsq_page_loc *l = &m->overlay[1 + i];
        ck_assert(dsq_eq_loc(l, &v2_inline[i]));
        uint8_t stored[PS + 16], got[PS], want[PS];
        /* the bytes a ranged GET of the object returns */
        ck_assert_uint_le(l->offset + dsq_b64_len(l->length), len);
        ck_assert_int_eq(dsq_b64_decode((const char *)data + l->offset,
                                        dsq_b64_len(l->length), stored,
                                        l->length),
                         0);
        ck_assert_int_eq(
            dsq_page_decode(stored, l->length, l, PS, got, KEY13, &e), DSQ_OK);
        golden_page(l->pgno, want);
        ck_assert_mem_eq(got, want, PS);
    }
    ck_assert_uint_eq(m->overlay[1].codec, DSQ_CODEC_ZSTD);
    ck_assert_uint_eq(m->overlay[2].codec, DSQ_CODEC_RAW);
    struct dsq_buf out;
    dsq_buf_init(&out, 1u << 20);
    ck_assert_int_eq(dsq_manifest_encode(m, &out, NULL), DSQ_OK);
    ck_assert_uint_eq(out.len, len);
    ck_assert_mem_eq(out.data, data, len);
    dsq_buf_cleanup(&out);
    dsq_manifest_free(m);
    free(data);
}
END_TEST

/* The fork's objects: decoded field by field, encoded to the same bytes;
   the same bytes under the older format number are refused. */
START_TEST(test_golden_fork)
{
    size_t len;
    struct dsq_err e;
    struct dsq_buf out;
    dsq_buf_init(&out, 1u << 20);
    /* chunk format 2 */
    uint8_t *data = load(GDIR "chunk_v2.ptc", &len);
    ck_assert_uint_eq(len, CHUNK_V2_SIZE);
    struct dsq_chunk *c = NULL;
    ck_assert_int_eq(dsq_chunk_decode(data, len, "pagetables/x.ptc", &c, &e),
                     DSQ_OK);
    ck_assert_str_eq(c->segments[0], F_SEG);
    ck_assert_str_eq(c->segments[1], OWN_SEG3);
    ck_assert(dsq_eq_chunk(c, golden_chunk_v2()));
    ck_assert_int_eq(dsq_chunk_encode(c, &out, NULL), DSQ_OK);
    ck_assert_uint_eq(out.len, len);
    ck_assert_mem_eq(out.data, data, len);
    dsq_chunk_free(c);
    /* the format byte follows the key "format" */
    uint8_t *f = memmem(data, len,
                        "\xa6"
                        "format",
                        7);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(f[7], 2);
    f[7] = 1; /* format 1 never names another database's segment */
    ck_assert_int_eq(dsq_chunk_decode(data, len, "pagetables/x.ptc", &c, &e),
                     DSQ_ECORRUPT);
    free(data);
    /* manifest format 3 */
    data = load(GDIR "manifest_v3.json", &len);
    ck_assert_uint_eq(len, V3_SIZE);
    ck_assert_mem_eq(data, DSQ_MANIFEST_PREFIX3, DSQ_MANIFEST_INLINE_OFFSET);
    struct dsq_manifest *m = NULL;
    ck_assert_int_eq(dsq_manifest_decode(data, len, KEY_V1, &m, &e), DSQ_OK);
    ck_assert_uint_eq(m->format_version, 3);
    ck_assert_str_eq(m->incarnation, INC3);
    ck_assert_str_eq(m->chunks[0].key, F_CHUNK);
    ck_assert_str_eq(m->segments[0], F_SEG);
    ck_assert_uint_eq(m->overlay[0].pgno, 2);
    m->format_version = 2; /* as the committer builds it */
    ck_assert(dsq_eq_manifest(m, golden_manifest_v3()));
    dsq_buf_reset(&out);
    ck_assert_int_eq(dsq_manifest_encode(m, &out, NULL), DSQ_OK);
    ck_assert_uint_eq(out.len, len);
    ck_assert_mem_eq(out.data, data, len);
    dsq_manifest_free(m);
    data[45] = '2'; /* "format_version":2 with foreign keys */
    ck_assert_int_eq(dsq_manifest_decode(data, len, KEY_V1, &m, &e),
                     DSQ_ECORRUPT);
    free(data);
    /* the pin */
    data = load(GDIR "forkpin.json", &len);
    ck_assert_uint_eq(len, PIN_SIZE);
    struct dsq_forkpin pin;
    ck_assert_int_eq(dsq_forkpin_decode(data, len, "forks/x.json", &pin, &e),
                     DSQ_OK);
    ck_assert_uint_eq(pin.version, 12);
    ck_assert_uint_eq(pin.time_ms, T_MS + 2000);
    free(data);
    dsq_buf_cleanup(&out);
}
END_TEST

START_TEST(test_golden_manifest_v4)
{
    size_t len, len2;
    uint8_t *data = load(GDIR "manifest_v4.json", &len);
    uint8_t *data2 = load(GDIR "manifest_v2.json", &len2);
    ck_assert_uint_eq(len, V4_SIZE);
    ck_assert_mem_eq(data, DSQ_MANIFEST_PREFIX4, DSQ_MANIFEST_INLINE_OFFSET);
    struct dsq_manifest *m = NULL, *m2 = NULL;
    struct dsq_err e;
    ck_assert_int_eq(dsq_manifest_decode(data, len, KEY13, &m, &e), DSQ_OK);
    ck_assert_int_eq(dsq_manifest_decode(data2, len2, KEY13, &m2, &e), DSQ_OK);
    ck_assert_uint_eq(m->format_version, 4);
    ck_assert_uint_eq(m->mode, 0640);
    ck_assert_int_eq(m2->has_mode, 0);
    ck_assert_int_eq(m->has_mode, 1);
    /* everything else is the format-2 version's, the inline pages at the
       same offsets */
    ck_assert_str_eq(m->incarnation, INC2);
    ck_assert_uint_eq(m->n_overlay, m2->n_overlay);
    for (size_t i = 0; i < m->n_overlay; i++)
        ck_assert(dsq_eq_loc(&m->overlay[i], &m2->overlay[i]));
    ck_assert_uint_eq(m->inline_len, m2->inline_len);
    ck_assert_mem_eq(data + DSQ_MANIFEST_INLINE_OFFSET,
                     data2 + DSQ_MANIFEST_INLINE_OFFSET, m->inline_len);
    struct dsq_buf out;
    dsq_buf_init(&out, 1u << 20);
    ck_assert_int_eq(dsq_manifest_encode(m, &out, NULL), DSQ_OK);
    ck_assert_uint_eq(out.len, len);
    ck_assert_mem_eq(out.data, data, len);
    /* the format-2 version given a mode is written as exactly this */
    m2->has_mode = 1;
    m2->mode = 0640;
    dsq_buf_reset(&out);
    ck_assert_int_eq(dsq_manifest_encode(m2, &out, NULL), DSQ_OK);
    ck_assert_uint_eq(out.len, len);
    ck_assert_mem_eq(out.data, data, len);
    /* a fork's version given a mode is format 4 and keeps its foreign
       keys */
    struct dsq_manifest *f = NULL, *f4 = NULL;
    ck_assert_int_eq(dsq_manifest_clone(golden_manifest_v3(), &f), DSQ_OK);
    f->format_version = 2;
    f->has_mode = 1;
    f->mode = 0600;
    dsq_buf_reset(&out);
    ck_assert_int_eq(dsq_manifest_encode(f, &out, NULL), DSQ_OK);
    ck_assert_mem_eq(out.data, DSQ_MANIFEST_PREFIX4,
                     DSQ_MANIFEST_INLINE_OFFSET);
    ck_assert_int_eq(dsq_manifest_decode(out.data, out.len,
                                         "manifests/v00000000000000000001.json",
                                         &f4, &e),
                     DSQ_OK);
    ck_assert_int_eq(f4->has_mode, 1);
    ck_assert_uint_eq(f4->mode, 0600);
    ck_assert_str_eq(f4->segments[0], golden_manifest_v3()->segments[0]);
    dsq_manifest_free(f);
    dsq_manifest_free(f4);
    /* a mode in format 3 (or 1), and bits above 07777, are refused */
    m2->format_version = 3;
    ck_assert_int_eq(dsq_manifest_encode(m2, &out, &e), DSQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "format_version 4"));
    m->mode = 010000;
    ck_assert_int_eq(dsq_manifest_encode(m, &out, &e), DSQ_EINVAL);
    /* format 4 without its "mode", or with its prefix spaced out */
    char *bad = malloc(len + 1);
    memcpy(bad, data, len);
    bad[len] = 0;
    char *mk = strstr(bad, ",\"mode\":416");
    ck_assert_ptr_nonnull(mk);
    memmove(mk, mk + 11, strlen(mk + 11) + 1);
    struct dsq_manifest *mb = NULL;
    ck_assert_int_eq(
        dsq_manifest_decode((uint8_t *)bad, strlen(bad), KEY13, &mb, &e),
        DSQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(e.msg, "\"mode\""));
    free(bad);
    bad = malloc(len + 1);
    memcpy(bad, data, 9);
    bad[9] = ' '; /* {"format" :"dsqlfs-manifest",... still JSON */
    memcpy(bad + 10, data + 9, len - 9);
    ck_assert_int_eq(
        dsq_manifest_decode((uint8_t *)bad, len + 1, KEY13, &mb, &e),
        DSQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(e.msg, "must start with"));
    free(bad);
    dsq_buf_cleanup(&out);
    dsq_manifest_free(m);
    dsq_manifest_free(m2);
    free(data);
    free(data2);
}
END_TEST

static Suite *golden_suite(void)
{
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_golden_segment);
    tcase_add_test(tc, test_golden_chunk);
    tcase_add_test(tc, test_golden_manifest);
    tcase_add_test(tc, test_golden_root);
    tcase_add_test(tc, test_golden_lookup);
    tcase_add_test(tc, test_golden_manifest_v2);
    tcase_add_test(tc, test_golden_fork);
    tcase_add_test(tc, test_golden_manifest_v4);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    dsq_log_set_level(DSQ_LOG_CRIT);
    const char *regen = getenv("DSQ_REGEN_GOLDEN");
    if (regen && strcmp(regen, "4") == 0) {
        regenerate_v4();
        return EXIT_SUCCESS;
    }
    if (regen && strcmp(regen, "3") == 0) {
        regenerate_v3();
        return EXIT_SUCCESS;
    }
    if (regen && strcmp(regen, "2") == 0) {
        regenerate_v2();
        return EXIT_SUCCESS;
    }
    if (regen) {
        regenerate();
        return EXIT_SUCCESS;
    }
    SRunner *sr = srunner_create(golden_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
