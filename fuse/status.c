/*
 * status.c - the read-only .dsqlfs/ directory at the mount root: one JSON
 * file per database known to this daemon (version, head, lag, commits,
 * conflicts, retries, cache hits and misses, store requests) and
 * metrics.prom in Prometheus' text format.
 *
 * Layer: FUSE front end.  Content is rendered at open (and at getattr for
 * the size); files are opened direct_io so sizes may change.
 */
#include "fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dsq_status_name(const char *prefix, char *out, size_t outsz)
{
    size_t k = 0;
    for (const char *s = prefix; *s && k + 8 < outsz; s++) {
        if (*s == '/' || *s == '%')
            k += (size_t)snprintf(out + k, outsz - k, "%%%02X",
                                  (unsigned char)*s);
        else
            out[k++] = *s;
    }
    snprintf(out + k, outsz - k, ".json");
}

struct render {
    struct dsq_buf *b;
    const char *prefix;
    int prom;
};

static void each(struct dsq_dbfile *df, void *arg)
{
    struct render *r = arg;
    if (r->prom || !strcmp(df->prefix, r->prefix))
        dsq_dbfile_status(df, r->b, r->prom);
}

char *dsq_status_render(struct dsq_fs *fs, const char *prefix, size_t *len)
{
    struct dsq_buf b;
    dsq_buf_init(&b, 64u << 20);
    struct render r = {.b = &b, .prefix = prefix, .prom = prefix[0] == 0};
    if (r.prom)
        dsq_buf_printf(&b, "# dsqlfs metrics, one series per database "
                           "(label db)\n# TYPE dsqlfs_version gauge\n");
    dsq_fs_each_db(fs, each, &r);
    size_t n = 0;
    dsq_buf_terminate(&b);
    char *s = (char *)dsq_buf_detach(&b, &n);
    *len = n;
    return s;
}
