/*
 * enginetest.h - helpers for engine tests: local stores in temporary
 * directories, and committing the page-level difference between a
 * snapshot and a real SQLite file (made with the sqlite3 library).
 */
#ifndef DSQ_ENGINETEST_H
#define DSQ_ENGINETEST_H

#include "config.h"
#include "db.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* A config for tests: fast backoff, the given checkpoint interval. */
void dsq_test_config(struct dsq_config *cfg, unsigned checkpoint_interval);

/* Open a file store at dir and the database "db" in it; aborts on error. */
void dsq_test_open(const char *dir, const struct dsq_config *cfg,
                   struct dsq_store **st, struct dsq_db **db);

/*
 * Begin a transaction on snapshot s that turns it into the image of the
 * SQLite file at path: every page that differs is written and the page
 * count set.  Returns the transaction (not committed) or NULL on error.
 */
struct dsq_txn *dsq_test_txn_from_file(struct dsq_snap *s, const char *path);

/* Commit the file's image on top of the newest version; returns rc. */
dsq_rc dsq_test_commit_file(struct dsq_db *db, const char *path,
                            uint64_t *version, struct dsq_err *e);

/* Read the whole image of a snapshot (malloc'd; *len bytes). */
uint8_t *dsq_test_snap_image(struct dsq_snap *s, size_t *len);

/*
 * Racing committers in separate processes.  Each child gets a config
 * (dsq_test_config, interval 50, the given isolation), opens its own store
 * and handle with open_fn, pins version base_v, writes its pages filled
 * with its byte, says it is ready; when all are ready they commit at once.
 * codes[i] gets child i's result: DSQ_TEST_COMMITTED, _CONFLICT or _OTHER.
 */
enum {
    DSQ_TEST_COMMITTED = 0,
    DSQ_TEST_CONFLICT = 10,
    DSQ_TEST_OTHER = 20,
};
struct dsq_test_racer {
    uint32_t pages[4];
    int npages;
    int fill;
};
typedef void (*dsq_test_open_fn)(void *arg, struct dsq_config *cfg,
                                 struct dsq_store **st, struct dsq_db **db);
void dsq_test_race(int n, dsq_test_open_fn open_fn, void *arg,
                   uint64_t base_v, const struct dsq_test_racer *r,
                   enum dsq_isolation iso, int *codes);

/* Run SQL on a SQLite file with the sqlite3 library; aborts on error. */
void dsq_test_sql(const char *path, const char *sql);
/* First column of the first row as an integer. */
long long dsq_test_sql_int(const char *path, const char *sql);
/* "ok" if PRAGMA integrity_check passes (static buffer otherwise). */
const char *dsq_test_integrity(const char *path);

#endif
