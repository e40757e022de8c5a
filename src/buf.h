/*
 * buf.h - bounded growable byte buffer.
 *
 * Layer: foundation.  Every buffer that receives data from outside (HTTP
 * bodies, JSON, msgpack) has a hard cap fixed at init: growing past it is
 * DSQ_ERANGE, never an unbounded realloc.  Init cannot fail; the buffer owns
 * its memory until dsq_buf_cleanup() or dsq_buf_detach().  Not thread-safe:
 * one owner at a time.
 */
#ifndef DSQ_BUF_H
#define DSQ_BUF_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

struct dsq_buf {
    uint8_t *data; /* owned; NULL while empty */
    size_t len;
    size_t cap; /* allocated */
    size_t max; /* hard cap on len */
};

void dsq_buf_init(struct dsq_buf *b, size_t max);
void dsq_buf_cleanup(struct dsq_buf *b);
/* len = 0, memory kept */
void dsq_buf_reset(struct dsq_buf *b);
/* Make room for n more bytes (DSQ_ERANGE past the cap). */
dsq_rc dsq_buf_reserve(struct dsq_buf *b, size_t n);
dsq_rc dsq_buf_append(struct dsq_buf *b, const void *p, size_t n);
dsq_rc dsq_buf_append_str(struct dsq_buf *b, const char *s);
dsq_rc dsq_buf_printf(struct dsq_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append a NUL without counting it in len (for C-string use of text). */
dsq_rc dsq_buf_terminate(struct dsq_buf *b);
/* Transfer the memory to the caller (free()); the buffer becomes empty. */
uint8_t *dsq_buf_detach(struct dsq_buf *b, size_t *len);

#endif
