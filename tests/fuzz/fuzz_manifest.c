/*
 * fuzz_manifest.c - libFuzzer target for dsq_manifest_decode,
 * dsq_root_decode and dsq_manifest_key_parse.
 *
 * A manifest (or root) that decodes must encode, decode to an equal
 * struct, and re-encode to the same bytes.
 * Seeds: tests/fuzz/corpus/fuzz_manifest/.
 */
#include "../support/codec_eq.h"
#include "log.h"
#include "manifest.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void manifest(const uint8_t *data, size_t size)
{
    struct dsq_manifest *m = NULL, *m2 = NULL, *c = NULL;
    if (dsq_manifest_decode(data, size, "fuzz", &m, NULL) != DSQ_OK)
        return;
    struct dsq_buf a, b;
    dsq_buf_init(&a, DSQ_MANIFEST_MAX_BYTES);
    dsq_buf_init(&b, DSQ_MANIFEST_MAX_BYTES);
    if (dsq_manifest_encode(m, &a, NULL) != DSQ_OK ||
        dsq_manifest_decode(a.data, a.len, "fuzz", &m2, NULL) != DSQ_OK ||
        !dsq_eq_manifest(m, m2) ||
        dsq_manifest_encode(m2, &b, NULL) != DSQ_OK || a.len != b.len ||
        memcmp(a.data, b.data, a.len) != 0)
        __builtin_trap();
    if (dsq_manifest_clone(m, &c) != DSQ_OK || !dsq_eq_manifest(m, c))
        __builtin_trap();
    for (size_t i = 0; i < m->n_write; i++)
        if (!dsq_ranges_contain(m->write_set, m->n_write,
                                m->write_set[i].start))
            __builtin_trap();
    dsq_manifest_free(c);
    dsq_buf_cleanup(&a);
    dsq_buf_cleanup(&b);
    dsq_manifest_free(m2);
    dsq_manifest_free(m);
}

static void root(const uint8_t *data, size_t size)
{
    struct dsq_root r, r2;
    if (dsq_root_decode(data, size, "fuzz", &r, NULL) != DSQ_OK)
        return;
    struct dsq_buf a;
    dsq_buf_init(&a, 4096);
    if (dsq_root_encode(&r, &a, NULL) != DSQ_OK ||
        dsq_root_decode(a.data, a.len, "fuzz", &r2, NULL) != DSQ_OK ||
        r.version != r2.version || r.time_ms != r2.time_ms)
        __builtin_trap();
    dsq_buf_cleanup(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        dsq_log_set_level(DSQ_LOG_CRIT);
        init = 1;
    }
    manifest(data, size);
    root(data, size);
    if (size < 128) {
        char key[128];
        uint64_t v;
        memcpy(key, data, size);
        key[size] = 0;
        if (dsq_manifest_key_parse(key, &v) == 0) {
            char back[64];
            dsq_manifest_key(v, back);
            if (strcmp(back, key) != 0)
                __builtin_trap();
        }
    }
    return 0;
}
