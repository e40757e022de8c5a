/*
 * views.c - version views: the read-only files NAME@vN.EXT and
 * NAME@TIME.EXT (docs/mount.md, "Versions as files").
 *
 * Owns struct dsq_view: a snapshot pinned from the base database's own
 * handle (df->db), so a view shares its page, chunk, snapshot and disk
 * caches and costs no request beyond its lookup and the pages it reads
 * that are not cached.  A view is immutable once made: reads run without
 * any lock on its snapshot reference.  The inode table (fs->mu) holds the
 * view inode and the base inode's view count; nothing here holds fs->mu
 * across a store call.
 *
 * A WAL-mode version is served with page 1's read/write versions (bytes
 * 18 and 19) set to 1 (rollback mode): the image is complete (every
 * version is a whole database), so a plain open reads it without -wal
 * or -shm files, which a read-only view could never create.
 */
#include "views.h"

#include "env.h"
#include "fsops.h"
#include "log.h"
#include "sqlitefmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dsq_view {
    struct dsq_snap *snap; /* owned reference */
    uint64_t version;
    uint64_t base_ino; /* the database's inode (its view count) */
    uint32_t page_size;
    uint32_t page_count;
    uint64_t time_ms;
    int wal_header; /* page 1 says WAL: served as rollback mode */
};

void dsq_view_free(struct dsq_view *v)
{
    if (!v)
        return;
    dsq_snap_release(v->snap);
    free(v);
}

uint64_t dsq_view_version(const struct dsq_view *v)
{
    return v->version;
}

uint64_t dsq_view_base_ino(const struct dsq_view *v)
{
    return v->base_ino;
}

void dsq_view_attr(const struct dsq_view *v, uint64_t *size, uint64_t *mtime_ms)
{
    *size = (uint64_t)v->page_count * v->page_size;
    *mtime_ms = v->time_ms;
}

/* One log line and -ENOENT, or -errno for a store failure. */
static int not_there(const char *name, const char *why, dsq_rc rc,
                     const struct dsq_err *e)
{
    if (rc == DSQ_OK || rc == DSQ_ENOTFOUND) {
        dsq_log(DSQ_LOG_NOTICE, "views", "%s: %s", name, why);
        return -ENOENT;
    }
    dsq_log(DSQ_LOG_ERR, "views", "%s: %s", name, dsq_err_text(e, rc));
    return -dsq_rc_errno(rc);
}

static int view_make(struct dsq_fs *fs, fuse_ino_t parent, const char *ppath,
                     const char *name, const struct dsq_view_name *vn,
                     struct dsq_view **out)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    uint64_t base_ino = 0;
    struct dsq_dbfile *df =
        dsq_fs_db_named(fs, parent, ppath, vn->base, &base_ino);
    if (!df)
        return not_there(name, "no such database", DSQ_OK, &e);
    uint64_t v = vn->version;
    dsq_rc rc;
    if (vn->by_time) {
        rc = dsq_db_version_at(df->db, vn->at_ms, &v, &e);
        if (rc != DSQ_OK || v == 0) {
            char t[32];
            dsq_format_time_ms(vn->at_ms, t);
            char why[128];
            snprintf(why, sizeof(why),
                     "no version committed at or before %s (gc removed "
                     "it, or the database is younger)",
                     t);
            dsq_fs_db_unref(fs, base_ino);
            return not_there(name, why, rc, &e);
        }
    } else {
        /* a cached snapshot does not prove the version is still there */
        int exists = 0;
        rc = dsq_db_version_exists(df->db, v, &exists, &e);
        if (rc != DSQ_OK || !exists) {
            dsq_fs_db_unref(fs, base_ino);
            return not_there(name,
                             "no such version (gc removed it, or it was "
                             "never committed)",
                             rc, &e);
        }
    }
    struct dsq_snap *s = NULL;
    rc = dsq_db_snapshot(df->db, v, &s, &e);
    if (rc != DSQ_OK || dsq_snap_version(s) != v) {
        dsq_snap_release(s);
        dsq_fs_db_unref(fs, base_ino);
        return not_there(name, "no such version", rc, &e);
    }
    struct dsq_view *vw = calloc(1, sizeof(*vw));
    if (!vw) {
        dsq_snap_release(s);
        dsq_fs_db_unref(fs, base_ino);
        return -ENOMEM;
    }
    vw->snap = s;
    vw->version = v;
    vw->base_ino = base_ino;
    vw->page_size = dsq_snap_page_size(s);
    vw->page_count = dsq_snap_page_count(s);
    vw->time_ms = dsq_snap_time_ms(s);
    if (vw->page_count > 0) {
        uint8_t *p1 = malloc(vw->page_size);
        if (p1 && dsq_snap_read_page(s, 1, p1, &e) == DSQ_OK)
            vw->wal_header = dsq_sqlite_is_wal(p1, vw->page_size);
        free(p1);
    }
    *out = vw;
    return 0;
}

void dsq_view_lookup(fuse_req_t req, fuse_ino_t parent, const char *ppath,
                     const char *name, const struct dsq_view_name *vn)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    struct dsq_view *vw = NULL;
    int r = view_make(fs, parent, ppath, name, vn, &vw);
    if (r < 0) {
        fuse_reply_err(req, -r);
        return;
    }
    struct dsq_inode *in = dsq_fs_view_inode(fs, parent, name, vw);
    if (!in) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    dsq_fs_reply_entry(req, fs, in);
}

ssize_t dsq_view_read(struct dsq_view *v, char *buf, size_t size, off_t off)
{
    uint64_t total = (uint64_t)v->page_count * v->page_size;
    if (off < 0)
        return -EINVAL;
    if ((uint64_t)off >= total || size == 0)
        return 0;
    if (size > total - (uint64_t)off)
        size = (size_t)(total - (uint64_t)off);
    uint32_t ps = v->page_size;
    uint32_t first = (uint32_t)((uint64_t)off / ps) + 1;
    uint32_t last = (uint32_t)(((uint64_t)off + size - 1) / ps) + 1;
    uint32_t count = last - first + 1;
    uint8_t *tmp = malloc((size_t)count * ps);
    if (!tmp)
        return -ENOMEM;
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_snap_read_pages(v->snap, first, count, tmp, &e);
    if (rc != DSQ_OK) {
        dsq_log(DSQ_LOG_ERR, "views", "version %llu: %s",
                (unsigned long long)v->version, dsq_err_text(&e, rc));
        free(tmp);
        return -dsq_rc_errno(rc);
    }
    if (first == 1 && v->wal_header)
        tmp[18] = tmp[19] = 1;
    memcpy(buf, tmp + ((uint64_t)off - (uint64_t)(first - 1) * ps), size);
    free(tmp);
    return (ssize_t)size;
}
