/*
 * conflicts.c - conflicts explained (conflicts.h): the tables and indexes
 * whose pages collided, the other writer and version, counters by table.
 *
 * Owns struct dsq_conflicts (one per database, df->conflicts, made at the
 * first conflict under df->mu and then kept; its fields under its own
 * mutex, taken last).  Naming pages reads the other version's b-trees
 * through the database's engine handle (src/sqlitetree.c, at most
 * DSQ_OWNER_MAX_READS pages, mostly from the caches: the pages are the
 * ones this host just read or wrote).
 */
#include "conflicts.h"

#include "env.h"
#include "fs.h"
#include "log.h"
#include "sqlitetree.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLES_MAX 64 /* distinct names counted; the rest as "(other)" */
#define LAST_NAMES 8

struct counter {
    char name[DSQ_TREE_NAME_MAX];
    uint64_t n;
};

struct dsq_conflicts {
    pthread_mutex_t mu;
    struct counter by_table[TABLES_MAX + 1];
    size_t n_tables;
    int has_last;
    struct dsq_conflict last;
    char where[32];
    char names[LAST_NAMES][DSQ_TREE_NAME_MAX]; /* last conflict's b-trees */
    int is_index[LAST_NAMES];
    size_t n_names;
};

void dsq_conflicts_free(struct dsq_conflicts *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* df->mu held: made once, then read by status without df->mu. */
static struct dsq_conflicts *state(struct dsq_dbfile *df)
{
    if (!df->conflicts) {
        struct dsq_conflicts *c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        pthread_mutex_init(&c->mu, NULL);
        __atomic_store_n(&df->conflicts, c, __ATOMIC_RELEASE);
    }
    return df->conflicts;
}

static struct dsq_conflicts *state_if_any(struct dsq_dbfile *df)
{
    return __atomic_load_n(&df->conflicts, __ATOMIC_ACQUIRE);
}

static void count(struct dsq_conflicts *c, const char *name)
{
    for (size_t i = 0; i < c->n_tables; i++)
        if (!strcmp(c->by_table[i].name, name)) {
            c->by_table[i].n++;
            return;
        }
    size_t i = c->n_tables < TABLES_MAX ? c->n_tables++ : TABLES_MAX;
    if (i == TABLES_MAX && strcmp(c->by_table[i].name, "(other)"))
        snprintf(c->by_table[i].name, sizeof(c->by_table[i].name), "(other)");
    else if (i < TABLES_MAX)
        snprintf(c->by_table[i].name, sizeof(c->by_table[i].name), "%s", name);
    c->by_table[i].n++;
}

void dsq_conflicts_explain(struct dsq_dbfile *df, const struct dsq_conflict *c,
                           const char *where)
{
    struct dsq_conflicts *cs = state(df);
    struct dsq_page_owner own[DSQ_CONFLICT_PAGES_MAX];
    struct dsq_err e;
    dsq_err_clear(&e);
    size_t n = c->n_pages;
    if (n && c->other_version &&
        dsq_db_page_owners(df->db, c->other_version, c->pages, n, own, &e) !=
            DSQ_OK) {
        dsq_log(DSQ_LOG_DEBUG, "fs", "%s: naming the conflict's pages: %s",
                df->name, e.msg);
        for (size_t i = 0; i < n; i++)
            own[i].name[0] = 0;
    }
    /* distinct b-trees, in page order, each with its pages */
    char names[LAST_NAMES][DSQ_TREE_NAME_MAX];
    int is_index[LAST_NAMES];
    size_t nn = 0;
    struct dsq_buf line;
    dsq_buf_init(&line, 64 * 1024);
    for (size_t i = 0; i < n; i++) {
        const char *nm = own[i].name[0] ? own[i].name : "(unknown)";
        size_t k = 0;
        while (k < nn && strcmp(names[k], nm))
            k++;
        if (k == nn && nn < LAST_NAMES) {
            snprintf(names[nn], sizeof(names[nn]), "%s", nm);
            is_index[nn++] = own[i].is_index;
        }
    }
    if (c->page1 && nn < LAST_NAMES) {
        snprintf(names[nn], sizeof(names[nn]), "sqlite_schema");
        is_index[nn++] = 0;
    }
    for (size_t k = 0; k < nn; k++) {
        dsq_buf_printf(&line, "%s%s %s (page", k ? ", " : "",
                       is_index[k] ? "index" : "table", names[k]);
        int first = 1;
        for (size_t i = 0; i < n; i++) {
            const char *nm = own[i].name[0] ? own[i].name : "(unknown)";
            if (strcmp(nm, names[k]))
                continue;
            dsq_buf_printf(&line, "%s %" PRIu32, first ? "" : ",", own[i].pgno);
            first = 0;
        }
        if (!strcmp(names[k], "sqlite_schema") && c->page1)
            dsq_buf_printf(&line, "%s 1", first ? "" : ",");
        dsq_buf_printf(&line, ")");
    }
    dsq_buf_terminate(&line);
    dsq_log(DSQ_LOG_NOTICE, "fs",
            "%s: conflict at %s: version %" PRIu64 " by writer %s, committed "
            "since snapshot %" PRIu64 ", changed the same pages of %s",
            df->name, where, c->other_version,
            c->other_writer[0] ? c->other_writer : "(unknown)", c->snapshot,
            nn ? (const char *)line.data
               : "the database (any commit "
                 "conflicts: serializable or WAL)");
    dsq_buf_cleanup(&line);
    if (!cs)
        return;
    pthread_mutex_lock(&cs->mu);
    for (size_t k = 0; k < nn; k++)
        count(cs, names[k]);
    cs->last = *c;
    cs->has_last = 1;
    snprintf(cs->where, sizeof(cs->where), "%s", where);
    memcpy(cs->names, names, sizeof(names));
    memcpy(cs->is_index, is_index, sizeof(is_index));
    cs->n_names = nn;
    pthread_mutex_unlock(&cs->mu);
}

void dsq_conflicts_commit_refused(struct dsq_dbfile *df, uint64_t from)
{
    struct dsq_conflict c;
    if (!dsq_db_last_conflict(df->db, &c) || c.snapshot != from)
        return; /* not one the engine explains (the database replaced) */
    dsq_conflicts_explain(df, &c, "the commit");
}

void dsq_conflicts_lock_refused(struct dsq_dbfile *df, uint64_t from,
                                uint64_t to, const uint32_t *pages, size_t n)
{
    struct dsq_conflict c;
    struct dsq_err e;
    dsq_err_clear(&e);
    uint32_t *sorted = malloc((n ? n : 1) * sizeof(*sorted));
    if (!sorted)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (pages[i] != 1) /* page 1: its counters always move */
            sorted[k++] = pages[i];
    n = k;
    if (dsq_db_conflict_find(df->db, from, to, sorted, n, &c, &e) == DSQ_OK) {
        if (!c.other_version)
            c.other_version = to;
        dsq_conflicts_explain(df, &c, "EXCLUSIVE");
    }
    free(sorted);
}

void dsq_conflicts_json(struct dsq_dbfile *df, struct dsq_buf *b)
{
    struct dsq_conflicts *cs = state_if_any(df);
    dsq_buf_printf(b, ",\n  \"conflicts_by_table\": {");
    if (!cs) {
        dsq_buf_printf(b, "},\n  \"last_conflict\": null");
        return;
    }
    pthread_mutex_lock(&cs->mu);
    size_t nt = cs->n_tables + (cs->by_table[TABLES_MAX].n ? 1 : 0);
    for (size_t i = 0, k = 0; i <= TABLES_MAX && k < nt; i++) {
        if (!cs->by_table[i].n)
            continue;
        dsq_buf_printf(b, "%s\"%s\": %" PRIu64, k++ ? ", " : "",
                       cs->by_table[i].name, cs->by_table[i].n);
    }
    dsq_buf_printf(b, "}");
    if (!cs->has_last) {
        dsq_buf_printf(b, ",\n  \"last_conflict\": null");
    } else {
        char t[32];
        dsq_format_time_ms(cs->last.time_ms, t);
        dsq_buf_printf(b,
                       ",\n  \"last_conflict\": {\"time\": \"%s\", \"at\": "
                       "\"%s\", \"snapshot\": %" PRIu64
                       ", \"other_version\": %" PRIu64
                       ", \"other_writer\": \"%s\", \"tables\": [",
                       t, cs->where, cs->last.snapshot, cs->last.other_version,
                       cs->last.other_writer);
        for (size_t k = 0; k < cs->n_names; k++)
            dsq_buf_printf(b, "%s{\"name\": \"%s\", \"kind\": \"%s\"}",
                           k ? ", " : "", cs->names[k],
                           cs->is_index[k] ? "index" : "table");
        dsq_buf_printf(b, "], \"pages\": [");
        for (size_t i = 0; i < cs->last.n_pages; i++)
            dsq_buf_printf(b, "%s%" PRIu32, i ? ", " : "", cs->last.pages[i]);
        dsq_buf_printf(b, "]}");
    }
    pthread_mutex_unlock(&cs->mu);
}

void dsq_conflicts_prom(struct dsq_dbfile *df, struct dsq_buf *b)
{
    struct dsq_conflicts *cs = state_if_any(df);
    if (!cs)
        return;
    pthread_mutex_lock(&cs->mu);
    for (size_t i = 0; i <= TABLES_MAX; i++)
        if (cs->by_table[i].n)
            dsq_buf_printf(b,
                           "dsqlfs_conflicts_by_table_total{db=\"%s\",table="
                           "\"%s\"} %" PRIu64 "\n",
                           df->prefix, cs->by_table[i].name, cs->by_table[i].n);
    pthread_mutex_unlock(&cs->mu);
}
