/*
 * fuzz_s3xml.c - libFuzzer target for the S3/STS XML parsers.
 *
 * The first byte picks the parser (list, error, STS); the rest is the
 * document.  Anything may fail, nothing may crash or leak, and a listing
 * that parses has keys and prefixes that are C strings.  Seeds:
 * tests/fuzz/corpus/fuzz_s3xml/.
 */
#include "s3xml.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void page_free(struct dsq_list_page *p)
{
    for (size_t i = 0; i < p->n_entries; i++)
        free(p->entries[i].key);
    free(p->entries);
    for (size_t i = 0; i < p->n_prefixes; i++)
        free(p->common_prefixes[i]);
    free(p->common_prefixes);
    free(p->next_token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *doc = data + 1;
    size_t len = size - 1;
    switch (data[0] % 3) {
    case 0: {
        struct dsq_list_page p = {0};
        if (dsq_s3xml_parse_list(doc, len, &p, NULL) == DSQ_OK) {
            for (size_t i = 0; i < p.n_entries; i++)
                if (!p.entries[i].key || strlen(p.entries[i].key) > len)
                    __builtin_trap();
            for (size_t i = 0; i < p.n_prefixes; i++)
                if (!p.common_prefixes[i])
                    __builtin_trap();
            page_free(&p);
        }
        break;
    }
    case 1: {
        struct dsq_s3_error er;
        if (dsq_s3xml_parse_error(doc, len, &er, NULL) == DSQ_OK &&
            !er.code[0])
            __builtin_trap();
        break;
    }
    default: {
        struct dsq_s3xml_creds c;
        if (dsq_s3xml_parse_sts(doc, len, &c, NULL) == DSQ_OK)
            dsq_s3xml_creds_cleanup(&c);
        break;
    }
    }
    return 0;
}
