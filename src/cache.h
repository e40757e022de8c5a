/*
 * cache.h - the on-disk cache of immutable objects.
 *
 * Layer: services (used by db.c).  Segments and page-table chunks never
 * change once written, so a byte range of one can be kept locally forever
 * and needs no revalidation.  The cache keeps, for each object, a sparse
 * local file with the object's own layout: a range fetched from the store
 * is written at its offset.  Reads return whatever the file holds there
 * (zeros for a hole) and the CALLER verifies it (page checksums, chunk
 * checksums) before use, so a torn write, a hole, a crash or disk damage
 * is a miss, never wrong data.  That is also how entries are "verified on
 * load" after a restart: every read is.
 *
 * Bounded: when the files' allocated size passes max_bytes, the least
 * recently used files are removed down to 80 %.
 *
 * Layout: DIR/NAMESPACE/{segments,pagetables}/<name>, where NAMESPACE is a
 * hash of the store URL and database prefix.
 *
 * Thread-safe: files are opened per call; pwrite of the same bytes by two
 * threads is harmless; the size counter is atomic; eviction is serialised.
 */
#ifndef DSQ_CACHE_H
#define DSQ_CACHE_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

struct dsq_cache;

struct dsq_cache_stats {
    uint64_t hits, misses, writes, evictions;
    uint64_t bytes; /* approximate allocated size */
};

/* dir is created if missing.  ns names the database (any string). */
dsq_rc dsq_cache_open(const char *dir, const char *ns, uint64_t max_bytes,
                      struct dsq_cache **out, struct dsq_err *e);
void dsq_cache_close(struct dsq_cache *c);

/*
 * Copy [off, off+len) of object key into buf.  1 if the local file has
 * those bytes (unverified), 0 otherwise.  Keys must be "segments/<name>"
 * or "pagetables/<name>" with a plain name; others are never cached.
 */
int dsq_cache_read(struct dsq_cache *c, const char *key, uint64_t off,
                   size_t len, void *buf);
/* Record a miss the caller found by verification (for the stats). */
void dsq_cache_note_bad(struct dsq_cache *c);
/* Store [off, off+len) of key (best effort; failures are logged once). */
void dsq_cache_write(struct dsq_cache *c, const char *key, uint64_t off,
                     const void *data, size_t len);
void dsq_cache_get_stats(struct dsq_cache *c, struct dsq_cache_stats *out);

#endif
