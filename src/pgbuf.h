/*
 * pgbuf.h - a write transaction's dirty pages: pgno -> page image.
 *
 * Layer: services (used by db.c).  Pages live in memory up to a byte limit,
 * then in an unlinked temporary file, so a multi-gigabyte transaction does
 * not exhaust memory.  Rewriting a page replaces it in place.  Not
 * thread-safe: owned by one transaction, used by one thread at a time.
 */
#ifndef DSQ_PGBUF_H
#define DSQ_PGBUF_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

struct dsq_pgbuf;

/* spill_dir: where the temporary file goes (NULL: $TMPDIR or /tmp). */
dsq_rc dsq_pgbuf_new(uint32_t page_size, uint64_t mem_limit,
                     const char *spill_dir, struct dsq_pgbuf **out);
void dsq_pgbuf_free(struct dsq_pgbuf *b);

/*
 * An unlinked temporary file for spilled data in dir (NULL: $TMPDIR or
 * /tmp; created if missing), mode 0600.  *fd is the caller's to close.
 */
dsq_rc dsq_spill_file_open(const char *dir, int *fd, struct dsq_err *e);

dsq_rc dsq_pgbuf_put(struct dsq_pgbuf *b, uint32_t pgno, const void *page,
                     struct dsq_err *e);
/* DSQ_ENOTFOUND if the page is not in the buffer. */
dsq_rc dsq_pgbuf_get(struct dsq_pgbuf *b, uint32_t pgno, void *page,
                     struct dsq_err *e);
int dsq_pgbuf_has(const struct dsq_pgbuf *b, uint32_t pgno);
/* Forget pages above max_pgno (truncation). */
void dsq_pgbuf_truncate(struct dsq_pgbuf *b, uint32_t max_pgno);
size_t dsq_pgbuf_count(const struct dsq_pgbuf *b);
uint32_t dsq_pgbuf_page_size(const struct dsq_pgbuf *b);
/* Bytes held in memory / in the spill file. */
uint64_t dsq_pgbuf_mem_bytes(const struct dsq_pgbuf *b);
uint64_t dsq_pgbuf_spill_bytes(const struct dsq_pgbuf *b);

/* The page numbers held, ascending (malloc'd array of *n). */
dsq_rc dsq_pgbuf_pgnos(const struct dsq_pgbuf *b, uint32_t **pgnos, size_t *n);

#endif
