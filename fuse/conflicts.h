/*
 * conflicts.h - conflicts explained: when a commit or a write lock is
 * refused as a conflict, the tables and indexes whose pages collided, the
 * other writer and its version, in one log line and in the status file
 * (conflicts_by_table, last_conflict).  docs/mount.md, "Conflicts".
 *
 * Layer: FUSE front end.  The state is per database (df->conflicts, made
 * at the first conflict) with its own mutex, taken last: callers may hold
 * df->mu (dbfile.c, wal.c do), never the other way round.
 */
#ifndef DSQ_FUSE_CONFLICTS_H
#define DSQ_FUSE_CONFLICTS_H

#include "buf.h"
#include "db.h"

struct dsq_dbfile;
struct dsq_conflicts;

/*
 * A conflict of df's transaction on c->snapshot, found at `where` ("the
 * commit", "EXCLUSIVE"): name the pages' tables at the other version
 * (reads through df->db's caches), count them, log one line.
 */
void dsq_conflicts_explain(struct dsq_dbfile *df, const struct dsq_conflict *c,
                           const char *where);
/* The commit of a transaction on snapshot `from` failed with
   DSQ_ECONFLICT: explain it from the engine's record. */
void dsq_conflicts_commit_refused(struct dsq_dbfile *df, uint64_t from);
/* A write lock was refused: versions from+1..to met pages[0..n). */
void dsq_conflicts_lock_refused(struct dsq_dbfile *df, uint64_t from,
                                uint64_t to, const uint32_t *pages, size_t n);
/* ",\n  \"conflicts_by_table\": {...},\n  \"last_conflict\": {...}" */
void dsq_conflicts_json(struct dsq_dbfile *df, struct dsq_buf *b);
void dsq_conflicts_prom(struct dsq_dbfile *df, struct dsq_buf *b);
void dsq_conflicts_free(struct dsq_conflicts *c);

#endif
