/*
 * sqlitetree.h - which table or index a page of a SQLite database belongs
 * to: the b-trees named in sqlite_schema (root pages), walked from their
 * roots through interior pages, leaves and overflow chains, plus the
 * freelist.  Used to explain a commit conflict by the tables whose pages
 * collided (docs/commit.md, "Conflicts explained").
 *
 * Layer: pure codec (pages are read through a callback; no I/O of its
 * own, no shared state: thread-safe).  Everything read is untrusted:
 * every offset, count and page number is checked, the walk reads at most
 * a caller-given number of pages and never visits a page twice.
 * Format: https://www.sqlite.org/fileformat2.html, sections 1.6 and 2.
 */
#ifndef DSQ_SQLITETREE_H
#define DSQ_SQLITETREE_H

#include "err.h"
#include "sqlitefmt.h"

#include <stddef.h>
#include <stdint.h>

#define DSQ_TREE_NAME_MAX 128

/* What one page is. */
struct dsq_page_owner {
    uint32_t pgno;
    /* "a" (a table or index name from sqlite_schema, cut to fit),
       "sqlite_schema", "(freelist)", or "" when not found (a pointer-map
       page, a page past the walk's budget, a damaged tree) */
    char name[DSQ_TREE_NAME_MAX];
    int is_index; /* the b-tree is an index (its table is then in table) */
    char table[DSQ_TREE_NAME_MAX]; /* tbl_name of the schema row */
};

/*
 * Name the owners of pages[0..n) (any order) of the database whose page 1
 * is given (page_size bytes, SQLite's page size equal to page_size),
 * page_count pages, reading pages through read.  out[i] describes
 * pages[i].  At most max_reads pages are read (the walk stops early once
 * every page is named).  DSQ_EINVAL if page 1 is not a SQLite header of
 * that page size; a damaged tree leaves its pages unnamed rather than
 * failing; a read failure is returned.
 */
dsq_rc dsq_sqlite_page_owners(const uint8_t *page1, uint32_t page_size,
                              uint32_t page_count, dsq_page_reader read,
                              void *ctx, const uint32_t *pages, size_t n,
                              struct dsq_page_owner *out, size_t max_reads,
                              struct dsq_err *e);

/*
 * What one b-tree page (pgno, page_size bytes; usable bytes per page from
 * page 1's byte 20) points to: *kind is 2 or 5 for an interior page (then
 * out gets its children, the right-most last), 10 or 13 for a leaf, 0
 * when it is no b-tree page.  With schema set (a page of sqlite_schema),
 * a leaf's rows give the root pages of the tables and indexes they
 * describe.  At most max numbers are written; *n gets how many.  Pure;
 * an untrusted page gives at most a shorter list.
 */
void dsq_sqlite_page_links(const uint8_t *page, uint32_t pgno,
                           uint32_t page_size, uint32_t usable, int schema,
                           uint32_t *out, size_t max, size_t *n, int *kind);

#endif
