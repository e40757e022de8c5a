/*
 * codec_eq.h - field-by-field equality of decoded codec structs, shared by
 * the unit tests and the fuzzers (header-only: the fuzzers link only
 * dsqcore).  Each function returns 1 if equal, 0 if not.
 */
#ifndef DSQ_CODEC_EQ_H
#define DSQ_CODEC_EQ_H

#include "manifest.h"
#include "segment.h"

#include <string.h>

static inline int dsq_eq_loc(const struct dsq_page_loc *a,
                             const struct dsq_page_loc *b)
{
    return a->pgno == b->pgno && a->seg == b->seg && a->offset == b->offset &&
           a->length == b->length && a->codec == b->codec &&
           a->checksum == b->checksum;
}

static inline int dsq_eq_keys(char *const *a, char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

static inline int dsq_eq_chunk(const struct dsq_chunk *a,
                               const struct dsq_chunk *b)
{
    if (a->index != b->index || a->chunk_pages != b->chunk_pages ||
        a->page_size != b->page_size || a->n_segments != b->n_segments ||
        a->n_entries != b->n_entries)
        return 0;
    if (!dsq_eq_keys(a->segments, b->segments, a->n_segments))
        return 0;
    for (size_t i = 0; i < a->n_entries; i++)
        if (!dsq_eq_loc(&a->entries[i], &b->entries[i]))
            return 0;
    return 1;
}

static inline int dsq_eq_ranges(const struct dsq_range *a,
                                const struct dsq_range *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].start != b[i].start || a[i].count != b[i].count)
            return 0;
    return 1;
}

static inline int dsq_eq_manifest(const struct dsq_manifest *a,
                                  const struct dsq_manifest *b)
{
    unsigned fa = a->format_version ? a->format_version : 1;
    unsigned fb = b->format_version ? b->format_version : 1;
    if (fa != fb || strcmp(a->incarnation, b->incarnation) != 0 ||
        a->inline_len != b->inline_len ||
        (a->inline_len &&
         memcmp(a->inline_text, b->inline_text, a->inline_len) != 0))
        return 0;
    if (a->version != b->version || a->parent != b->parent ||
        a->page_size != b->page_size || a->page_count != b->page_count ||
        strcmp(a->writer_id, b->writer_id) != 0 ||
        strcmp(a->txn_id, b->txn_id) != 0 || a->time_ms != b->time_ms ||
        a->n_write != b->n_write || a->n_freed != b->n_freed ||
        a->page1 != b->page1 || a->n_created != b->n_created ||
        a->ckpt_version != b->ckpt_version ||
        a->ckpt_page_limit != b->ckpt_page_limit ||
        a->chunk_pages != b->chunk_pages || a->n_chunks != b->n_chunks ||
        a->n_segments != b->n_segments || a->n_overlay != b->n_overlay)
        return 0;
    if (!dsq_eq_ranges(a->write_set, b->write_set, a->n_write) ||
        !dsq_eq_ranges(a->freed_set, b->freed_set, a->n_freed) ||
        !dsq_eq_keys(a->created, b->created, a->n_created) ||
        !dsq_eq_keys(a->segments, b->segments, a->n_segments))
        return 0;
    for (size_t i = 0; i < a->n_chunks; i++)
        if (a->chunks[i].index != b->chunks[i].index ||
            strcmp(a->chunks[i].key, b->chunks[i].key) != 0 ||
            a->chunks[i].size != b->chunks[i].size ||
            a->chunks[i].checksum != b->chunks[i].checksum)
            return 0;
    for (size_t i = 0; i < a->n_overlay; i++)
        if (!dsq_eq_loc(&a->overlay[i], &b->overlay[i]))
            return 0;
    return 1;
}

#endif
