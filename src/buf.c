/*
 * buf.c - bounded growable byte buffer.  Layer: foundation.
 */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dsq_buf_init(struct dsq_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void dsq_buf_cleanup(struct dsq_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void dsq_buf_reset(struct dsq_buf *b)
{
    b->len = 0;
}

dsq_rc dsq_buf_reserve(struct dsq_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return DSQ_ERANGE;
    size_t need = b->len + n + 1; /* room for a terminator */
    if (need <= b->cap)
        return DSQ_OK;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    if (ncap > b->max + 1 && need <= b->max + 1)
        ncap = b->max + 1;
    uint8_t *p = realloc(b->data, ncap);
    if (!p)
        return DSQ_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return DSQ_OK;
}

dsq_rc dsq_buf_append(struct dsq_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return DSQ_OK;
    dsq_rc rc = dsq_buf_reserve(b, n);
    if (rc != DSQ_OK)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return DSQ_OK;
}

dsq_rc dsq_buf_append_str(struct dsq_buf *b, const char *s)
{
    return dsq_buf_append(b, s, strlen(s));
}

dsq_rc dsq_buf_printf(struct dsq_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return DSQ_EINVAL;
    dsq_rc rc = dsq_buf_reserve(b, (size_t)n);
    if (rc != DSQ_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return DSQ_OK;
}

dsq_rc dsq_buf_terminate(struct dsq_buf *b)
{
    dsq_rc rc = dsq_buf_reserve(b, 0);
    if (rc != DSQ_OK)
        return rc;
    if (!b->data) {
        b->data = malloc(1);
        if (!b->data)
            return DSQ_ENOMEM;
        b->cap = 1;
    }
    b->data[b->len] = 0;
    return DSQ_OK;
}

uint8_t *dsq_buf_detach(struct dsq_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
