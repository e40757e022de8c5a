/*
 * views.h - version views: NAME@vN.EXT and NAME@TIME.EXT open one version
 * of a database read-only (docs/mount.md, "Versions as files").
 *
 * Layer: FUSE front end.  fs.c calls dsq_view_lookup from its lookup and
 * the refusal helpers from create and unlink; fileops.c calls
 * dsq_view_read.  A struct dsq_view is immutable once made (a pinned
 * snapshot of the base database's own handle, so pages come from the same
 * caches); its inode owns it.
 */
#ifndef DSQ_FUSE_VIEWS_H
#define DSQ_FUSE_VIEWS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include "names.h"

#include <stdint.h>
#include <sys/types.h>

struct dsq_fs;
struct dsq_view;

/*
 * Look up the view named name (parsed into vn) in directory parent (whose
 * store prefix is ppath) and reply: an entry, or ENOENT for a version that
 * does not exist (gc removed it, not committed yet, a time before the
 * first version, no such database), with one log line naming the cause.
 */
void dsq_view_lookup(fuse_req_t req, fuse_ino_t parent, const char *ppath,
                     const char *name, const struct dsq_view_name *vn);

void dsq_view_free(struct dsq_view *v);
uint64_t dsq_view_version(const struct dsq_view *v);
uint64_t dsq_view_base_ino(const struct dsq_view *v);
void dsq_view_attr(const struct dsq_view *v, uint64_t *size,
                   uint64_t *mtime_ms);
/* Bytes read (<= size), or -errno. */
ssize_t dsq_view_read(struct dsq_view *v, char *buf, size_t size, off_t off);

#endif
