/*
 * status.c - the read-only .dsqlfs/ directory at the mount root: one JSON
 * file per database known to this daemon (version, head, lag, commits,
 * conflicts, retries, cache hits and misses, store requests) and
 * metrics.prom in Prometheus' text format.
 *
 * Besides them: health (first line "ok" or "fail": whether the store
 * answered recently, for liveness probes) and maintenance.json (what the
 * background upkeep removed), both from maint.c, whose counters are also
 * appended to metrics.prom.
 *
 * Layer: FUSE front end.  Content is rendered at open (and at getattr for
 * the size); files are opened direct_io so sizes may change.
 */
#include "fs.h"
#include "loop.h"
#include "maint.h"

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

const char *const dsq_status_files[] = {"health", "maintenance.json", NULL};

int dsq_status_is_file(const char *name)
{
    for (const char *const *f = dsq_status_files; *f; f++)
        if (!strcmp(*f, name))
            return 1;
    return 0;
}

void dsq_status_statfs(struct dsq_fs *fs, struct statvfs *sv)
{
    if (fs->maint) {
        dsq_maint_statfs(fs->maint, sv);
        return;
    }
    memset(sv, 0, sizeof(*sv));
    sv->f_bsize = sv->f_frsize = 4096;
    sv->f_namemax = 255;
}

char *dsq_status_render(struct dsq_fs *fs, const char *prefix, size_t *len)
{
    struct dsq_buf b;
    dsq_buf_init(&b, 64u << 20);
    struct render r = {.b = &b, .prefix = prefix, .prom = prefix[0] == 0};
    if (prefix[0] == '/') {
        if (!fs->maint)
            dsq_buf_printf(&b, "fail\nno maintenance state\n");
        else if (!strcmp(prefix + 1, "health"))
            dsq_maint_render_health(fs->maint, &b);
        else if (!strcmp(prefix + 1, "maintenance.json"))
            dsq_maint_render_json(fs->maint, &b);
        goto done;
    }
    if (r.prom)
        dsq_buf_printf(&b, "# dsqlfs metrics, one series per database "
                           "(label db)\n# TYPE dsqlfs_version gauge\n");
    dsq_fs_each_db(fs, each, &r);
    if (r.prom && fs->maint)
        dsq_maint_render_prom(fs->maint, &b);
    if (r.prom) {
        const char *names[64];
        unsigned long counts[64];
        size_t n = dsq_loop_counts(names, counts, 64);
        dsq_buf_printf(&b, "# TYPE dsqlfs_fuse_requests_total counter\n");
        for (size_t i = 0; i < n; i++)
            dsq_buf_printf(&b, "dsqlfs_fuse_requests_total{op=\"%s\"} %lu\n",
                           names[i], counts[i]);
    }
done:;
    size_t n = 0;
    dsq_buf_terminate(&b);
    char *s = (char *)dsq_buf_detach(&b, &n);
    *len = n;
    return s;
}
