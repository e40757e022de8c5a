/*
 * sqlitefmt.h - the little the engine must know about SQLite's file format.
 *
 * Layer: pure codec (no I/O: pages are read through a callback).  Used by
 * the commit path for the page-1 rule (only the change counters moved?)
 * and the freed-page rule (pages put on the freelist or truncated away
 * count as written), see docs/commit.md.  Offsets are those of SQLite's
 * database header (https://www.sqlite.org/fileformat2.html, section 1.3).
 * Everything read here is untrusted: loops are bounded, page numbers
 * checked.  Thread-safe: no shared state.
 */
#ifndef DSQ_SQLITEFMT_H
#define DSQ_SQLITEFMT_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

#define DSQ_SQLITE_HDR_CHANGE_COUNTER 24
#define DSQ_SQLITE_HDR_PAGE_COUNT 28
#define DSQ_SQLITE_HDR_FREELIST_TRUNK 32
#define DSQ_SQLITE_HDR_FREELIST_COUNT 36
#define DSQ_SQLITE_HDR_VERSION_VALID_FOR 92

uint32_t dsq_be32(const uint8_t *p);
void dsq_put_be32(uint8_t *p, uint32_t v);

/* 1 if page 1 starts with "SQLite format 3\0". */
int dsq_sqlite_is_db(const uint8_t *page1, size_t len);

/* Page size from the header (bytes 16-17; 1 means 65536); 0 if invalid. */
uint32_t dsq_sqlite_page_size(const uint8_t *page1, size_t len);

/*
 * 1 if writing the n bytes of buf at offset off of a database file keeps
 * its first bytes a possible SQLite header: bytes 0..15 must be
 * "SQLite format 3\0", bytes 16..17 (when both are written) a valid page
 * size, bytes 18..19 1 or 2, and bytes 21..23 64, 32, 32 (SQLite's
 * payload fractions).  Bytes outside 0..23 are not looked at.
 */
int dsq_sqlite_header_write_ok(const void *buf, size_t n, uint64_t off);

/* 1 if the header says WAL mode (write/read versions, bytes 18-19, == 2). */
int dsq_sqlite_is_wal(const uint8_t *page1, size_t len);

/*
 * 1 if a and b (page 1 images of page_size bytes) differ at most in the
 * file change counter (24..27) and version-valid-for (92..95).
 */
int dsq_sqlite_page1_counters_only(const uint8_t *a, const uint8_t *b,
                                   uint32_t page_size);

/* Set both counters of a page-1 image to v. */
void dsq_sqlite_set_counter(uint8_t *page1, uint32_t v);
uint32_t dsq_sqlite_counter(const uint8_t *page1);

/* Reads page pgno (page_size bytes) into buf. */
typedef dsq_rc (*dsq_page_reader)(void *ctx, uint32_t pgno, uint8_t *buf,
                                  struct dsq_err *e);

/*
 * Collect the freelist (trunk and leaf pages) of a database image whose
 * page 1 is given: a sorted, unique array in *pages (malloc'd).  A freelist
 * that points outside 1..page_count, loops, or disagrees with its count is
 * DSQ_ECORRUPT.
 */
dsq_rc dsq_sqlite_freelist(const uint8_t *page1, uint32_t page_size,
                           uint32_t page_count, dsq_page_reader read, void *ctx,
                           uint32_t **pages, size_t *n, struct dsq_err *e);

/*
 * The in-header database size (bytes 28-31, in SQLite pages) when SQLite
 * counts it valid: non-zero and the change counter (24) equal to
 * version-valid-for (92).  0 when it is not valid or not a SQLite header.
 */
uint32_t dsq_sqlite_header_pages(const uint8_t *page1, size_t len);

#endif
