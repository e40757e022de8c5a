/*
 * testutil.h - helpers shared by the unit tests: temporary directories,
 * reading files, running shell commands.
 */
#ifndef DSQ_TESTUTIL_H
#define DSQ_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* mkdtemp under $TMPDIR (or /tmp) with the given stem; returns malloc'd
   path or aborts. */
char *dsq_test_tmpdir(const char *stem);
/* rm -rf path (best effort). */
void dsq_test_rmrf(const char *path);
/* Read a whole file (malloc'd, NUL added); NULL if missing. */
uint8_t *dsq_test_read_file(const char *path, size_t *len);
/* Write a whole file; aborts on failure. */
void dsq_test_write_file(const char *path, const void *data, size_t len);

#endif
