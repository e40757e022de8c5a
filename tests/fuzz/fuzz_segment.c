/*
 * fuzz_segment.c - libFuzzer target for dsq_seg_decode and dsq_page_decode.
 *
 * Every input is decoded as a whole segment; a segment that decodes is
 * rebuilt with the builder from its decoded pages and must decode again to
 * the same pages.  The input is also fed to dsq_page_decode as one stored
 * zstd page (hostile frames) and, if it has the size, as a raw page.
 * Seeds: tests/fuzz/corpus/fuzz_segment/.
 */
#include "log.h"
#include "segment.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void rebuild(const uint8_t *data, const struct dsq_segment *s)
{
    struct dsq_seg_builder *b;
    uint8_t *img = malloc((size_t)s->page_size * (s->n_pages ? s->n_pages : 1));
    if (!img || dsq_seg_builder_new(s->page_size, 1, s->txn_id, &b) != DSQ_OK)
        __builtin_trap();
    for (size_t i = 0; i < s->n_pages; i++) {
        const struct dsq_page_loc *l = &s->pages[i];
        uint8_t *p = img + (size_t)i * s->page_size;
        if (dsq_page_decode(data + l->offset, l->length, l, s->page_size, p,
                            "fuzz", NULL) != DSQ_OK ||
            dsq_seg_builder_add(b, l->pgno, p) != DSQ_OK)
            __builtin_trap();
    }
    struct dsq_buf out;
    struct dsq_page_loc *locs;
    size_t n;
    dsq_buf_init(&out, (size_t)1 << 30);
    uint64_t want = dsq_seg_builder_size(b);
    if (dsq_seg_builder_finish(b, &out, &locs, &n) != DSQ_OK ||
        out.len != want || n != s->n_pages)
        __builtin_trap();
    struct dsq_segment *s2;
    if (dsq_seg_decode(out.data, out.len, "fuzz", &s2, NULL) != DSQ_OK ||
        s2->n_pages != s->n_pages || strcmp(s2->txn_id, s->txn_id) != 0 ||
        s2->page_size != s->page_size)
        __builtin_trap();
    uint8_t *page = malloc(s->page_size);
    for (size_t i = 0; i < n; i++) {
        const struct dsq_page_loc *l = &s2->pages[i];
        if (l->pgno != s->pages[i].pgno ||
            l->checksum != s->pages[i].checksum ||
            l->offset != locs[i].offset ||
            dsq_page_decode(out.data + l->offset, l->length, l, s->page_size,
                            page, "fuzz", NULL) != DSQ_OK ||
            memcmp(page, img + (size_t)i * s->page_size, s->page_size) != 0)
            __builtin_trap();
    }
    free(page);
    dsq_seg_free(s2);
    free(locs);
    dsq_buf_cleanup(&out);
    dsq_seg_builder_free(b);
    free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        dsq_log_set_level(DSQ_LOG_CRIT);
        init = 1;
    }
    struct dsq_segment *s = NULL;
    if (dsq_seg_decode(data, size, "fuzz", &s, NULL) == DSQ_OK) {
        rebuild(data, s);
        dsq_seg_free(s);
    }

    /* the input as one stored page, into a buffer of exactly page_size */
    static const uint32_t sizes[] = {512, 4096};
    for (int i = 0; i < 2; i++) {
        uint8_t *page = malloc(sizes[i]);
        struct dsq_page_loc l = {1, 0, 0, (uint32_t)size, DSQ_CODEC_ZSTD, 0};
        if (size <= DSQ_STORED_PAGE_MAX) {
            dsq_page_decode(data, size, &l, sizes[i], page, "fuzz", NULL);
            l.codec = DSQ_CODEC_RAW;
            dsq_page_decode(data, size, &l, sizes[i], page, "fuzz", NULL);
        }
        free(page);
    }
    return 0;
}
