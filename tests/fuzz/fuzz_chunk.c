/*
 * fuzz_chunk.c - libFuzzer target for dsq_chunk_decode.
 *
 * A chunk that decodes must encode, decode to an equal struct, and
 * re-encode to the same bytes.  Seeds: tests/fuzz/corpus/fuzz_chunk/.
 */
#include "../support/codec_eq.h"
#include "log.h"
#include "segment.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        dsq_log_set_level(DSQ_LOG_CRIT);
        init = 1;
    }
    struct dsq_chunk *c = NULL, *c2 = NULL;
    if (dsq_chunk_decode(data, size, "fuzz", &c, NULL) != DSQ_OK)
        return 0;
    struct dsq_buf a, b;
    dsq_buf_init(&a, (size_t)1 << 30);
    dsq_buf_init(&b, (size_t)1 << 30);
    if (dsq_chunk_encode(c, &a, NULL) != DSQ_OK ||
        dsq_chunk_decode(a.data, a.len, "fuzz", &c2, NULL) != DSQ_OK ||
        !dsq_eq_chunk(c, c2) || dsq_chunk_encode(c2, &b, NULL) != DSQ_OK ||
        a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        __builtin_trap();
    dsq_buf_cleanup(&a);
    dsq_buf_cleanup(&b);
    dsq_chunk_free(c2);
    dsq_chunk_free(c);
    return 0;
}
