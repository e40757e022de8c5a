/*
 * maint.h - the daemon's own upkeep (docs/mount.md, "Maintenance"): the
 * orphan sweep and retention gc of every database under the mounted
 * source, run in the background; the store probe behind .dsqlfs/health;
 * usage for statfs (df); and "dsqlfs maintain", one round from the
 * command line (the systemd timer's job).
 *
 * Layer: FUSE front end.  Uses the engine (db.h), the store, config and
 * logging; reads the daemon's database files (fs.h) only to learn which
 * versions its readers and writers still use, and what it serves.
 */
#ifndef DSQ_MAINT_H
#define DSQ_MAINT_H

#include "buf.h"
#include "config.h"
#include "err.h"
#include "store.h"

#include <sys/statvfs.h>

struct dsq_fs;
struct dsq_maint;

/*
 * Check the maintenance options of cfg (DSQ_EINVAL naming the option) and
 * make the state.  st, cfg and fs are borrowed and must outlive it; fs is
 * NULL on the command line.  Nothing runs until dsq_maint_start.
 */
dsq_rc dsq_maint_new(struct dsq_store *st, const struct dsq_config *cfg,
                     const char *source, struct dsq_fs *fs,
                     struct dsq_maint **out, struct dsq_err *e);
/* Start the background threads (after the daemon detached); 0 or -1. */
int dsq_maint_start(struct dsq_maint *m);
/* Stop the threads (a store call in flight is waited for) and free. */
void dsq_maint_free(struct dsq_maint *m);

/* statfs: the databases' sizes as used; see docs/mount.md for the total. */
void dsq_maint_statfs(struct dsq_maint *m, struct statvfs *sv);

/* Contents of .dsqlfs/health, .dsqlfs/maintenance.json, and the lines
   appended to .dsqlfs/metrics.prom. */
void dsq_maint_render_health(struct dsq_maint *m, struct dsq_buf *b);
void dsq_maint_render_json(struct dsq_maint *m, struct dsq_buf *b);
void dsq_maint_render_prom(struct dsq_maint *m, struct dsq_buf *b);

/* "dsqlfs maintain SOURCE [-o opt,...] [--dry-run]"; the exit status. */
int dsq_maint_main(int argc, char **argv);

#endif
