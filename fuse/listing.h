/*
 * listing.h - the store's view of one directory of the mount: which
 * databases and directories it holds (listing.c).
 */
#ifndef DSQ_LISTING_H
#define DSQ_LISTING_H

#include <stddef.h>

struct dsq_fs;

/* A set of names (no duplicates). */
struct dsq_namelist {
    char **v;
    size_t n, cap;
};

void dsq_names_add(struct dsq_namelist *l, const char *s);
void dsq_names_free(struct dsq_namelist *l);

/* The time a readdir waits for a fresh listing of the store before it
   is answered from the last one (ms). */
#define DSQ_LISTING_WAIT_MS 100

/*
 * The databases (file names) and directories of `dir` ("" = the root)
 * in the store.  A fresh listing is started at every call; when it has
 * not answered within DSQ_LISTING_WAIT_MS and an earlier one of the same
 * directory exists, that one is returned (*stale_ms = its age) and the
 * fresh one finishes in the background, for the next call.  Without an
 * earlier one the call waits for the store (its retries and timeout).
 * 0, or -errno (the store's error, logged).
 */
int dsq_listing_get(struct dsq_fs *fs, const char *dir,
                    struct dsq_namelist *dbs, struct dsq_namelist *dirs,
                    unsigned *stale_ms);

/*
 * This mount created (first commit, present 1) or deleted (0) the
 * database at mount path `path` ("team/db.sqlite3"): listings that
 * started before now answer accordingly.
 */
void dsq_listing_note(struct dsq_fs *fs, const char *path, int present);

/* Waits for the listings in flight, frees the cache (at unmount). */
void dsq_listing_shutdown(struct dsq_fs *fs);

#endif
