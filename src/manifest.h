/*
 * manifest.h - codecs for the JSON objects: manifests
 * (manifests/v{N:020d}.json) and the root hint (root.json).
 *
 * Layer: pure codec.  The only home of jansson.  Decoders validate every
 * field (types, ranges, ordering, cross-references) and reject what does
 * not fit with DSQ_ECORRUPT naming the key; an unknown format_version is
 * DSQ_EUNSUPPORTED.  Unknown extra keys are ignored (forward compatible).
 * Byte-exact layout: docs/format.md, sections "Manifest" and "root.json".
 * Thread-safe: no shared state.
 */
#ifndef DSQ_MANIFEST_H
#define DSQ_MANIFEST_H

#include "buf.h"
#include "err.h"
#include "segment.h"

#include <stddef.h>
#include <stdint.h>

/* format_version written (2; 3 when a key names another database's
   object: forks, docs/format.md section 9; 4 when the version has a
   permission mode, section 5 "Format 4"), the newest read (4) and the
   oldest one read (1).  The encoder picks the oldest format that can say
   what the manifest holds, so stores that use neither stay format 2. */
#define DSQ_MANIFEST_FORMAT 2
#define DSQ_MANIFEST_FORMAT_FOREIGN 3
#define DSQ_MANIFEST_FORMAT_MODE 4
#define DSQ_MANIFEST_FORMAT_MAX 4
#define DSQ_MANIFEST_FORMAT_MIN 1
/*
 * Format 2 carries the pages of a small transaction inline, as base64 in
 * its "inline" string, which starts at this byte of the object: every
 * format-2 manifest begins with exactly DSQ_MANIFEST_PREFIX2.
 */
#define DSQ_MANIFEST_PREFIX2                                                   \
    "{\"format\":\"dsqlfs-manifest\",\"format_version\":2,\"inline\":\""
#define DSQ_MANIFEST_PREFIX3                                                   \
    "{\"format\":\"dsqlfs-manifest\",\"format_version\":3,\"inline\":\""
#define DSQ_MANIFEST_PREFIX4                                                   \
    "{\"format\":\"dsqlfs-manifest\",\"format_version\":4,\"inline\":\""
/* Largest permission mode a format-4 manifest holds. */
#define DSQ_MANIFEST_MODE_MAX 07777u
#define DSQ_MANIFEST_INLINE_OFFSET 57u
/* Cap on the stored bytes one manifest carries inline (readers). */
#define DSQ_MANIFEST_INLINE_MAX (1u << 20)
#define DSQ_MANIFEST_MAX_BYTES (256u << 20) /* cap on a manifest body */
#define DSQ_ROOT_MAX_BYTES (64u << 10)      /* cap on a root.json body */
/* Caps on the arrays of one manifest (checked before allocating). */
#define DSQ_MANIFEST_MAX_RANGES (1u << 24)  /* write_set, freed_set each */
#define DSQ_MANIFEST_MAX_KEYS (1u << 20)    /* created, overlay segments */
#define DSQ_MANIFEST_MAX_CHUNKS (1u << 24)  /* checkpoint chunks */
#define DSQ_MANIFEST_MAX_OVERLAY (1u << 24) /* overlay pages */
/* Every integer in the JSON objects is at most 2^53 - 1 (exact in a
   double, so any JSON reader gets it right). */
#define DSQ_JSON_INT_MAX ((1ull << 53) - 1)
/* Largest page count (SQLite's own limit). */
#define DSQ_PAGE_COUNT_MAX 4294967294u

/* A run of page numbers [start, start+count). */
struct dsq_range {
    uint32_t start; /* >= 1 */
    uint32_t count; /* >= 1 */
};

/* A checkpoint's reference to one page-table chunk object. */
struct dsq_chunk_ref {
    uint32_t index;
    char *key;         /* owned: "pagetables/{uuid}.ptc" */
    uint64_t size;     /* object size in bytes */
    uint64_t checksum; /* dsq_object_checksum of the whole object */
};

enum dsq_page1_change {
    DSQ_PAGE1_NONE = 0,     /* page 1 not written */
    DSQ_PAGE1_COUNTERS = 1, /* only bytes 24..27 and 92..95 changed */
    DSQ_PAGE1_CHANGED = 2,  /* anything else on page 1 changed */
};

/*
 * Manifest version N: the whole database at N.
 *
 * A page p <= page_count is found as: the overlay entry for p if any, else
 * (if p <= ckpt_page_limit) the entry of chunk (p-1)/chunk_pages, else a
 * zero-filled page.
 */
struct dsq_manifest {
    unsigned format_version; /* 1..4 (0 is taken as 1 by the encoder) */
    char incarnation[33];    /* format 2: 32 hex, the same for every
                                version since the database was created
                                (or first written in format 2); format 1:
                                "" */
    int has_mode;            /* the version has a mode (format 4) */
    uint32_t mode;           /* the permission bits a chmod set
                                (0..07777), carried to every later
                                version */
    uint64_t version;        /* >= 1 */
    uint64_t parent;         /* version - 1 */
    uint32_t page_size;      /* power of two, 512..65536 */
    uint32_t page_count;
    char writer_id[33]; /* 32 hex: the process that committed */
    char txn_id[33];    /* 32 hex: the transaction */
    uint64_t time_ms;   /* commit time, ms since epoch */

    /* what the transaction that made this version did (conflicts) */
    struct dsq_range *write_set; /* owned; sorted, disjoint, non-adjacent */
    size_t n_write;
    struct dsq_range *freed_set; /* owned; pages freed or truncated away
                                    without being rewritten */
    size_t n_freed;
    enum dsq_page1_change page1;

    /* objects first published by this version (for recovery-scan) */
    char **created; /* owned: keys relative to the db prefix */
    size_t n_created;

    /* checkpoint this version builds on */
    uint64_t ckpt_version;        /* <= version; == version at a checkpoint;
                                     0 = none (no chunks) */
    uint32_t ckpt_page_limit;     /* chunk entries above this are void */
    uint32_t chunk_pages;         /* pages per chunk (power of two) */
    struct dsq_chunk_ref *chunks; /* owned; sorted by index, unique */
    size_t n_chunks;

    /* pages changed since the checkpoint (latest location of each) */
    char **segments; /* owned: overlay's segment-key table */
    size_t n_segments;
    struct dsq_page_loc *overlay; /* owned; sorted by pgno, unique,
                                     pgno <= page_count */
    size_t n_overlay;

    /*
     * Format 2: the base64 text of the pages this manifest carries itself
     * (overlay entries whose segment key is this manifest's own key; their
     * offsets are object offsets into this text).  Owned, NUL-terminated;
     * NULL when there are none.
     */
    char *inline_text;
    size_t inline_len;
};

dsq_rc dsq_manifest_encode(const struct dsq_manifest *m, struct dsq_buf *out,
                           struct dsq_err *e);
dsq_rc dsq_manifest_decode(const uint8_t *data, size_t len, const char *key,
                           struct dsq_manifest **out, struct dsq_err *e);
/* Deep copy (for building the next version). */
dsq_rc dsq_manifest_clone(const struct dsq_manifest *m,
                          struct dsq_manifest **out);
void dsq_manifest_free(struct dsq_manifest *m);

/*
 * Inline pages (format 2).  Base64 is RFC 4648's standard alphabet with
 * padding; each page's stored bytes are encoded on their own, so one
 * ranged GET of [offset, offset + dsq_b64_len(length)) of the manifest
 * object and dsq_b64_decode give the stored bytes back.
 */
size_t dsq_b64_len(size_t n);
/*
 * Decode the canonical base64 of exactly n bytes (text_len must be
 * dsq_b64_len(n)): 0, or -1 if the text is not that (bad character or
 * padding, non-zero unused bits).  On failure out may hold garbage.
 */
int dsq_b64_decode(const char *text, size_t text_len, uint8_t *out, size_t n);
/*
 * Append the base64 of one page's stored bytes to m's inline text; *offset
 * gets the object offset where it starts (what the overlay entry records).
 * Pages must be appended in increasing page-number order.
 */
dsq_rc dsq_manifest_inline_append(struct dsq_manifest *m, const uint8_t *stored,
                                  size_t len, uint64_t *offset);
/*
 * Where a page stored in manifest `version` is: 1 if key names a manifest
 * ("manifests/v{N:020d}.json"), with *version set; 0 for any other key.
 */
int dsq_key_is_manifest(const char *key, uint64_t *version);

/* 1 if pgno lies in one of the sorted ranges. */
int dsq_ranges_contain(const struct dsq_range *r, size_t n, uint32_t pgno);

/* root.json: a hint of the newest version, never trusted alone. */
struct dsq_root {
    uint64_t version;
    uint64_t time_ms;
};

dsq_rc dsq_root_encode(const struct dsq_root *r, struct dsq_buf *out,
                       struct dsq_err *e);
dsq_rc dsq_root_decode(const uint8_t *data, size_t len, const char *key,
                       struct dsq_root *out, struct dsq_err *e);

/*
 * gc.json: the durable gc floor.  Versions below floor may have been
 * removed by gc; a writer that wins a version below it has reopened a
 * slot gc emptied and must withdraw (docs/commit.md, C9).
 */
struct dsq_gcfloor {
    uint64_t floor;
    uint64_t time_ms;
};

dsq_rc dsq_gcfloor_encode(const struct dsq_gcfloor *g, struct dsq_buf *out,
                          struct dsq_err *e);
dsq_rc dsq_gcfloor_decode(const uint8_t *data, size_t len, const char *key,
                          struct dsq_gcfloor *out, struct dsq_err *e);

/*
 * A fork's pin on its source, SRC/forks/{id}.json (docs/format.md
 * section 9): {"format":"dsqlfs-fork-pin","format_version":1,
 * "version":N,"time":T}, the same shape as gc.json.
 */
struct dsq_forkpin {
    uint64_t version; /* >= 1: the source version the fork names */
    uint64_t time_ms;
};
dsq_rc dsq_forkpin_encode(const struct dsq_forkpin *p, struct dsq_buf *out,
                          struct dsq_err *e);
dsq_rc dsq_forkpin_decode(const uint8_t *data, size_t len, const char *key,
                          struct dsq_forkpin *out, struct dsq_err *e);

/* "manifests/v00000000000000000012.json" (buffer of 64 bytes). */
void dsq_manifest_key(uint64_t version, char out[64]);
/* Parse such a key (relative to the db prefix); 0 if it is one. */
int dsq_manifest_key_parse(const char *key, uint64_t *version);

#endif
