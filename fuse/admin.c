/*
 * admin.c - admin subcommands: init, import, export, versions, status,
 * verify, recovery-scan, gc, restore, fork.
 *
 * Layer: front end.  Uses only the engine facade (db.h), the store opener,
 * config and logging.  Every failure ends in one line on stderr naming the
 * cause, and a non-zero exit: 1 for a failure, 2 for bad usage.  Progress
 * goes to stderr, only when it is a terminal.
 */
#include "admin.h"

#include "config.h"
#include "db.h"
#include "env.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH_PAGES 256u
#define EXPORT_BATCH_BYTES (64u << 20)

struct args {
    const char *cmd;
    const char *pos[4];
    int npos;
    int force;
    int do_delete;
    int quiet;
    uint64_t version; /* --version N (0 = latest) */
    const char *at;   /* --at TIME */
    double grace_s;
    uint64_t keep;     /* gc --keep N */
    double keep_for_s; /* gc --keep-for SECONDS */
    int dry_run;
    int tables; /* versions --tables */
    struct dsq_config cfg;
};

static const char *const commands[] = {
    "init",          "import", "export",  "versions", "status", "verify",
    "recovery-scan", "gc",     "restore", "fork",     "hot"};

int dsq_admin_is_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(commands[i], name))
            return 1;
    return 0;
}

static int fail(const char *cmd, const struct dsq_err *e, dsq_rc rc)
{
    fprintf(stderr, "dsqlfs %s: %s\n", cmd, dsq_err_text(e, rc));
    return 1;
}

static int usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "dsqlfs %s: %s (see dsqlfs --help)\n", cmd, msg);
    return 2;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof(*a));
    a->cmd = argv[0];
    a->grace_s = 3600;
    a->keep = 10;
    a->keep_for_s = 7 * 86400;
    dsq_config_init(&a->cfg);
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_config_load_env(&a->cfg, &e);
    if (rc != DSQ_OK) {
        fail(a->cmd, &e, rc);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--force")) {
            a->force = 1;
        } else if (!strcmp(s, "--delete")) {
            a->do_delete = 1;
        } else if (!strcmp(s, "--dry-run")) {
            a->dry_run = 1;
        } else if (!strcmp(s, "--tables")) {
            a->tables = 1;
        } else if (!strcmp(s, "-q") || !strcmp(s, "--quiet")) {
            a->quiet = 1;
        } else if (!strcmp(s, "-v") || !strcmp(s, "--verbose")) {
            dsq_log_set_level(DSQ_LOG_DEBUG);
        } else if (!strcmp(s, "--version") || !strcmp(s, "--at") ||
                   !strcmp(s, "--grace") || !strcmp(s, "--keep") ||
                   !strcmp(s, "--keep-for") || !strcmp(s, "-o")) {
            if (i + 1 >= argc) {
                char m[128];
                snprintf(m, sizeof(m), "%s needs a value", s);
                return usage_error(a->cmd, m);
            }
            const char *v = argv[++i];
            char *end;
            if (!strcmp(s, "--version")) {
                errno = 0;
                unsigned long long n = strtoull(v, &end, 10);
                if (*v == '-' || end == v || *end || errno || n == 0)
                    return usage_error(a->cmd,
                                       "--version takes a version number "
                                       ">= 1");
                a->version = n;
            } else if (!strcmp(s, "--at")) {
                a->at = v;
            } else if (!strcmp(s, "--keep")) {
                errno = 0;
                unsigned long long n = strtoull(v, &end, 10);
                if (*v == '-' || end == v || *end || errno || n == 0)
                    return usage_error(a->cmd, "--keep takes a count >= 1");
                a->keep = n;
            } else if (!strcmp(s, "--keep-for")) {
                errno = 0;
                a->keep_for_s = strtod(v, &end);
                if (end == v || *end || errno || a->keep_for_s < 0)
                    return usage_error(a->cmd,
                                       "--keep-for takes seconds (>= 3600)");
            } else if (!strcmp(s, "--grace")) {
                errno = 0;
                a->grace_s = strtod(v, &end);
                if (end == v || *end || errno || a->grace_s < 0)
                    return usage_error(a->cmd, "--grace takes seconds (>= 0)");
            } else {
                rc = dsq_config_set_list(&a->cfg, v, &e);
                if (rc != DSQ_OK) {
                    fail(a->cmd, &e, rc);
                    return 2;
                }
            }
        } else if (s[0] == '-' && s[1]) {
            char m[256];
            snprintf(m, sizeof(m), "unknown flag '%s'", s);
            return usage_error(a->cmd, m);
        } else {
            if (a->npos >= 4)
                return usage_error(a->cmd, "too many arguments");
            a->pos[a->npos++] = s;
        }
    }
    return 0;
}

static dsq_rc open_db(struct args *a, const char *url, struct dsq_store **st,
                      struct dsq_db **db, struct dsq_err *e)
{
    char *store_url = NULL, *prefix = NULL;
    dsq_rc rc = dsq_url_split(url, &store_url, &prefix, e);
    if (rc != DSQ_OK)
        return rc;
    rc = dsq_store_open(store_url, &a->cfg, st, e);
    /* commands that write need a store that honours create-only */
    if (rc == DSQ_OK &&
        (!strcmp(a->cmd, "init") || !strcmp(a->cmd, "import") ||
         !strcmp(a->cmd, "restore") || (!strcmp(a->cmd, "gc") && !a->dry_run) ||
         (!strcmp(a->cmd, "recovery-scan") && a->do_delete))) {
        rc = dsq_store_check_conditional(*st, e);
        if (rc != DSQ_OK) {
            dsq_store_free(*st);
            *st = NULL;
        }
    }
    if (rc == DSQ_OK) {
        rc = dsq_db_open(*st, prefix, &a->cfg, db, e);
        if (rc != DSQ_OK) {
            dsq_store_free(*st);
            *st = NULL;
        }
    }
    free(store_url);
    free(prefix);
    return rc;
}

/* ---- progress on a terminal ---- */

struct progress {
    const char *what;
    int tty;
    uint64_t last_ms;
};

static void progress_show(uint64_t done, uint64_t total, void *arg)
{
    struct progress *p = arg;
    if (!p->tty)
        return;
    uint64_t now = dsq_now_ms();
    if (done < total && now - p->last_ms < 200)
        return;
    p->last_ms = now;
    fprintf(stderr, "\r%s: %3u%% (%" PRIu64 "/%" PRIu64 ")", p->what,
            total ? (unsigned)(done * 100 / total) : 100, done, total);
    if (done >= total)
        fputc('\n', stderr);
    fflush(stderr);
}

/* ---- init ---- */

static int cmd_init(struct args *a)
{
    struct dsq_err e;
    struct dsq_store *st = NULL;
    struct dsq_db *db = NULL;
    int created = 0;
    dsq_err_clear(&e);
    if (a->npos != 1)
        return usage_error(a->cmd, "usage: init URL");
    dsq_rc rc = open_db(a, a->pos[0], &st, &db, &e);
    if (rc == DSQ_OK)
        rc = dsq_db_init(db, &created, &e);
    if (rc == DSQ_OK && !a->quiet)
        printf("%s %s\n", created ? "created" : "already exists:", a->pos[0]);
    dsq_db_close(db);
    dsq_store_free(st);
    return rc == DSQ_OK ? 0 : fail(a->cmd, &e, rc);
}

/* ---- import ---- */

static int file_nonempty(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && sb.st_size > 0;
}

static int cmd_import(struct args *a)
{
    struct dsq_err e;
    struct dsq_store *st = NULL;
    struct dsq_db *db = NULL;
    struct dsq_snap *snap = NULL;
    struct dsq_txn *txn = NULL;
    sqlite3 *lockdb = NULL;
    uint8_t *buf = NULL;
    int fd = -1;
    dsq_rc rc = DSQ_OK;
    dsq_err_clear(&e);
    if (a->npos != 2)
        return usage_error(a->cmd, "usage: import FILE.db URL [--force]");
    const char *file = a->pos[0];
    char side[4096];

    /* a consistent image: SQLite's own shared lock while we read */
    snprintf(side, sizeof(side), "%s-wal", file);
    if (file_nonempty(side)) {
        rc = dsq_err_set(&e, DSQ_EINVAL,
                         "%s has a non-empty %s: checkpoint it first "
                         "(sqlite3 %s 'PRAGMA wal_checkpoint(TRUNCATE)')",
                         file, side, file);
        goto out;
    }
    snprintf(side, sizeof(side), "%s-journal", file);
    if (file_nonempty(side)) {
        rc = dsq_err_set(&e, DSQ_EINVAL,
                         "%s has a hot journal %s: open it with sqlite3 "
                         "once to roll it back",
                         file, side);
        goto out;
    }
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = dsq_err_set(&e, DSQ_EIO, "cannot open %s: %s", file,
                         strerror(errno));
        goto out;
    }
    if (sqlite3_open_v2(file, &lockdb, SQLITE_OPEN_READONLY, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(lockdb, "BEGIN; SELECT count(*) FROM sqlite_master;", NULL,
                     NULL, NULL) != SQLITE_OK) {
        rc = dsq_err_set(&e, DSQ_EINVAL,
                         "%s is not a readable SQLite "
                         "database: %s",
                         file, lockdb ? sqlite3_errmsg(lockdb) : "open failed");
        goto out;
    }
    struct stat sb;
    uint8_t hdr[100];
    if (fstat(fd, &sb) != 0 || pread(fd, hdr, sizeof(hdr), 0) != 100 ||
        memcmp(hdr, "SQLite format 3", 16) != 0) {
        rc = dsq_err_set(&e, DSQ_EINVAL, "%s is not a SQLite database", file);
        goto out;
    }
    uint32_t ps = ((uint32_t)hdr[16] << 8) | hdr[17];
    if (ps == 1)
        ps = 65536;
    if (ps < 512 || ps > 65536 || (ps & (ps - 1))) {
        rc = dsq_err_set(&e, DSQ_EINVAL, "%s: invalid page size %u", file, ps);
        goto out;
    }
    if (hdr[18] == 2 || hdr[19] == 2) {
        rc = dsq_err_set(&e, DSQ_EINVAL,
                         "%s is in WAL mode, which dsqlfs does not store "
                         "yet: run sqlite3 %s 'PRAGMA journal_mode=DELETE' "
                         "first",
                         file, file);
        goto out;
    }
    if (sb.st_size % ps != 0 || (uint64_t)sb.st_size / ps > 0xfffffffeu) {
        rc = dsq_err_set(&e, DSQ_EINVAL,
                         "%s: size %lld is not a whole number of %u-byte "
                         "pages",
                         file, (long long)sb.st_size, ps);
        goto out;
    }
    uint32_t npages = (uint32_t)(sb.st_size / ps);

    rc = open_db(a, a->pos[1], &st, &db, &e);
    if (rc != DSQ_OK)
        goto out;
    rc = dsq_db_snapshot(db, DSQ_VERSION_LATEST, &snap, &e);
    if (rc != DSQ_OK)
        goto out;
    if (dsq_snap_version(snap) > 0 && !a->force) {
        rc = dsq_err_set(&e, DSQ_EEXIST,
                         "%s already has %llu version(s); use --force to "
                         "store %s as the next version",
                         a->pos[1], (unsigned long long)dsq_snap_version(snap),
                         file);
        goto out;
    }
    rc = dsq_db_init(db, NULL, &e);
    if (rc == DSQ_OK)
        rc = dsq_txn_begin(snap, DSQ_TXN_STREAM, &txn, &e);
    if (rc == DSQ_OK)
        rc = dsq_txn_set_page_size(txn, ps, &e);
    if (rc != DSQ_OK)
        goto out;
    buf = malloc((size_t)BATCH_PAGES * ps);
    if (!buf) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    struct progress pr = {.what = "import", .tty = isatty(2) && !a->quiet};
    uint64_t t0 = dsq_mono_ns();
    for (uint32_t p = 0; p < npages;) {
        uint32_t n = npages - p < BATCH_PAGES ? npages - p : BATCH_PAGES;
        size_t want = (size_t)n * ps, got = 0;
        while (got < want) {
            ssize_t r =
                pread(fd, buf + got, want - got, (off_t)p * ps + (off_t)got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                rc = dsq_err_set(&e, DSQ_EIO, "reading %s: %s", file,
                                 r < 0 ? strerror(errno) : "file shrank");
                goto out;
            }
            got += (size_t)r;
        }
        for (uint32_t i = 0; i < n && rc == DSQ_OK; i++)
            rc = dsq_txn_write_page(txn, p + i + 1, buf + (size_t)i * ps, &e);
        if (rc != DSQ_OK)
            goto out;
        p += n;
        progress_show((uint64_t)p * ps, (uint64_t)npages * ps, &pr);
    }
    struct dsq_commit_info ci;
    rc = dsq_txn_commit(txn, &ci, &e);
    if (rc != DSQ_OK)
        goto out;
    /* the pages a first query walks, for cold opens (a hint: a failure
       only makes them slower) */
    struct dsq_snap *hs = NULL;
    struct dsq_err he;
    dsq_err_clear(&he);
    dsq_rc hrc = dsq_db_snapshot(db, ci.version, &hs, &he);
    if (hrc == DSQ_OK)
        hrc = dsq_db_hot_write(db, hs, NULL, &he);
    dsq_snap_release(hs);
    if (hrc != DSQ_OK)
        dsq_log(DSQ_LOG_WARNING, "import", "hot pages not written: %s",
                dsq_err_text(&he, hrc));
    double secs = (double)(dsq_mono_ns() - t0) / 1e9;
    if (!a->quiet)
        printf("imported %s as version %llu of %s: %u pages of %u bytes, "
               "%llu objects, %llu bytes written, %.2f s\n",
               file, (unsigned long long)ci.version, a->pos[1], npages, ps,
               (unsigned long long)ci.objects_written,
               (unsigned long long)ci.bytes_written, secs);
out:
    dsq_txn_free(txn);
    dsq_snap_release(snap);
    dsq_db_close(db);
    dsq_store_free(st);
    if (lockdb)
        sqlite3_close(lockdb);
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc == DSQ_OK ? 0 : fail(a->cmd, &e, rc);
}

/* ---- export ---- */

/*
 * The version --version or --at names (--at: the newest committed at or
 * before it); DSQ_VERSION_LATEST when neither is given.
 */
static dsq_rc pick_version(struct args *a, struct dsq_db *db, uint64_t *out,
                           struct dsq_err *e)
{
    *out = a->version ? a->version : DSQ_VERSION_LATEST;
    if (!a->at)
        return DSQ_OK;
    uint64_t at_ms, v = 0;
    if (dsq_parse_time_user(a->at, strlen(a->at), &at_ms) != 0)
        return dsq_err_set(e, DSQ_EINVAL,
                           "--at '%s': use a time like 2026-11-25T16:44:59Z "
                           "(seconds and .mmm optional, Z or +HH:MM)",
                           a->at);
    dsq_rc rc = dsq_db_version_at(db, at_ms, &v, e);
    if (rc != DSQ_OK)
        return rc;
    if (!v)
        return dsq_err_set(e, DSQ_ENOTFOUND,
                           "%s has no version committed at or before %s",
                           a->pos[0], a->at);
    *out = v;
    return DSQ_OK;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cmd_export(struct args *a)
{
    struct dsq_err e;
    struct dsq_store *st = NULL;
    struct dsq_db *db = NULL;
    struct dsq_snap *snap = NULL;
    uint8_t *buf = NULL;
    int fd = -1;
    char tmp[4096] = "";
    dsq_rc rc;
    dsq_err_clear(&e);
    if (a->npos != 2)
        return usage_error(a->cmd,
                           "usage: export URL FILE.db [--version N | --at "
                           "TIME]");
    if (a->version && a->at)
        return usage_error(a->cmd, "--version and --at exclude each other");
    const char *file = a->pos[1];
    rc = open_db(a, a->pos[0], &st, &db, &e);
    if (rc != DSQ_OK)
        goto out;
    uint64_t version;
    rc = pick_version(a, db, &version, &e);
    if (rc != DSQ_OK)
        goto out;
    rc = dsq_db_snapshot(db, version, &snap, &e);
    if (rc != DSQ_OK)
        goto out;
    if (dsq_snap_version(snap) == 0) {
        rc = dsq_err_set(&e, DSQ_ENOTFOUND, "%s has no versions", a->pos[0]);
        goto out;
    }
    uint32_t ps = dsq_snap_page_size(snap), n = dsq_snap_page_count(snap);
    snprintf(tmp, sizeof(tmp), "%s.dsqlfs-tmp-%d", file, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = dsq_err_set(&e, DSQ_EIO, "cannot create %s: %s", tmp,
                         strerror(errno));
        tmp[0] = 0;
        goto out;
    }
    /* big batches let the engine fetch several ranges at once */
    uint32_t batch = (uint32_t)(EXPORT_BATCH_BYTES / ps);
    buf = malloc((size_t)batch * ps);
    if (!buf) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    struct progress pr = {.what = "export", .tty = isatty(2) && !a->quiet};
    for (uint32_t p = 1; p <= n;) {
        uint32_t k = n - p + 1 < batch ? n - p + 1 : batch;
        rc = dsq_snap_read_pages(snap, p, k, buf, &e);
        if (rc != DSQ_OK)
            goto out;
        if (write_all(fd, buf, (size_t)k * ps) != 0) {
            rc = dsq_err_set(&e, DSQ_EIO, "writing %s: %s", tmp,
                             strerror(errno));
            goto out;
        }
        p += k;
        progress_show((uint64_t)(p - 1) * ps, (uint64_t)n * ps, &pr);
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        rc = dsq_err_set(&e, DSQ_EIO, "writing %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, file) != 0) {
        rc = dsq_err_set(&e, DSQ_EIO, "renaming %s to %s: %s", tmp, file,
                         strerror(errno));
        goto out;
    }
    tmp[0] = 0;
    if (!a->quiet)
        printf("exported version %llu of %s to %s: %u pages of %u bytes\n",
               (unsigned long long)dsq_snap_version(snap), a->pos[0], file, n,
               ps);
out:
    if (fd >= 0)
        close(fd);
    if (tmp[0])
        unlink(tmp);
    free(buf);
    dsq_snap_release(snap);
    dsq_db_close(db);
    dsq_store_free(st);
    return rc == DSQ_OK ? 0 : fail(a->cmd, &e, rc);
}

/* ---- versions, status ---- */

struct print_state {
    int header_done;
    struct dsq_db *db; /* --tables: name what each version changed */
    dsq_rc rc;
    struct dsq_err e;
};

static int print_version(const struct dsq_version_info *v, void *arg)
{
    char t[32];
    struct print_state *ps = arg;
    if (!ps->header_done) {
        printf("%10s  %-24s  %10s  %6s  %10s  %10s  %s\n", "version", "time",
               "pages", "psize", "written", "checkpoint",
               ps->db ? "writer    tables" : "writer");
        ps->header_done = 1;
    }
    dsq_format_time_ms(v->time_ms, t);
    printf("%10llu  %s  %10u  %6u  %10llu  %10llu  %.8s",
           (unsigned long long)v->version, t, v->page_count, v->page_size,
           (unsigned long long)v->pages_written,
           (unsigned long long)v->ckpt_version, v->writer_id);
    if (ps->db) {
        struct dsq_buf b;
        dsq_buf_init(&b, 1u << 20);
        ps->rc = dsq_db_version_tables(ps->db, v->version, &b, &ps->e);
        printf("  %s", b.data && b.len ? (const char *)b.data : "-");
        dsq_buf_cleanup(&b);
    }
    printf("\n");
    return ps->rc != DSQ_OK;
}

static int cmd_versions(struct args *a)
{
    struct dsq_err e;
    struct dsq_store *st = NULL;
    struct dsq_db *db = NULL;
    dsq_err_clear(&e);
    if (a->npos != 1)
        return usage_error(a->cmd, "usage: versions URL [--tables]");
    dsq_rc rc = open_db(a, a->pos[0], &st, &db, &e);
    struct print_state ps = {0};
    ps.db = a->tables ? db : NULL;
    if (rc == DSQ_OK)
        rc = dsq_db_versions(db, print_version, &ps, &e);
    if (rc == DSQ_OK && ps.rc != DSQ_OK) {
        rc = ps.rc;
        e = ps.e;
    }
    if (rc == DSQ_OK && !ps.header_done)
        printf("%s has no versions\n", a->pos[0]);
    dsq_db_close(db);
    dsq_store_free(st);
    return rc == DSQ_OK ? 0 : fail(a->cmd, &e, rc);
}

/* hot URL: write the hot pages of the newest version (hot.seg). */
static int cmd_hot(struct args *a)
{
    struct dsq_err e;
    struct dsq_store *st = NULL;
    struct dsq_db *db = NULL;
    struct dsq_snap *s = NULL;
    size_t n = 0;
    dsq_err_clear(&e);
    if (a->npos != 1)
        return usage_error(a->cmd, "usage: hot URL");
    dsq_rc rc = open_db(a, a->pos[0], &st, &db, &e);
    if (rc == DSQ_OK)
        rc = dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, &e);
    if (rc == DSQ_OK)
        rc = dsq_db_hot_write(db, s, &n, &e);
    if (rc == DSQ_OK && !a->quiet)
        printf("%s: %zu hot pages of version %llu written to hot.seg\n",
               a->pos[0], n, (unsigned long long)dsq_snap_version(s));
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
    return rc == DSQ_OK ? 0 : fail(a->cmd, &e, rc);
}

static int cmd_status(struct args *a)
{
    struct dsq_err e;
    struct dsq_store *st = NULL;
    struct dsq_db *db = NULL;
    struct dsq_snap *s = NULL;
    int exists = 0;
    dsq_err_clear(&e);
    if (a->npos != 1)
        return usage_error(a->cmd, "usage: status URL");
    dsq_rc rc = open_db(a, a->pos[0], &st, &db, &e);
    if (rc == DSQ_OK)
        rc = dsq_db_exists(db, &exists, &e);
    if (rc == DSQ_OK && !exists)
        rc = dsq_err_set(&e, DSQ_ENOTFOUND, "no database at %s", a->pos[0]);
    if (rc == DSQ_OK)
        rc = dsq_db_snapshot(db, DSQ_VERSION_LATEST, &s, &e);
    if (rc == DSQ_OK) {
        char t[32] = "-";
        if (dsq_snap_time_ms(s))
            dsq_format_time_ms(dsq_snap_time_ms(s), t);
        printf("database:  %s\nversion:   %llu\ncommitted: %s\n"
               "pages:     %u\npage size: %u\nsize:      %llu bytes\n",
               a->pos[0], (unsigned long long)dsq_snap_version(s), t,
               dsq_snap_page_count(s), dsq_snap_page_size(s),
               (unsigned long long)dsq_snap_page_count(s) *
                   dsq_snap_page_size(s));
    }
    dsq_snap_release(s);
    dsq_db_close(db);
    dsq_store_free(st);
    return rc == DSQ_OK ? 0 : fail(a->cmd, &e, rc);
}

/* ---- verify ---- */

static void print_problem(const char *what, void *arg)
{
    struct progress *p = arg;
    if (p->tty)
        fputc('\n', stderr);
    fprintf(stderr, "problem: %s\n", what);
}

static int cmd_verify(struct args *a)
{
    struct dsq_err e;
    struct dsq_store *st = NULL;
    struct dsq_db *db = NULL;
    struct dsq_verify_report rep;
    dsq_err_clear(&e);
    if (a->npos != 1)
        return usage_error(a->cmd, "usage: verify URL");
    dsq_log_set_level(DSQ_LOG_CRIT); /* problems are printed below */
    struct progress pr = {.what = "verify", .tty = isatty(2) && !a->quiet};
    dsq_rc rc = open_db(a, a->pos[0], &st, &db, &e);
    if (rc == DSQ_OK)
        rc = dsq_db_verify(db, &rep, print_problem, progress_show, &pr, &e);
    if (rc == DSQ_OK || rc == DSQ_ECORRUPT) {
        if (rep.versions == 0 && rc == DSQ_OK)
            printf("%s: no versions\n", a->pos[0]);
        else
            printf("%s: %llu version(s) %llu..%llu, %llu segment(s), %llu "
                   "page-table chunk(s), %llu page(s) checked, %llu "
                   "problem(s)\n",
                   a->pos[0], (unsigned long long)rep.versions,
                   (unsigned long long)rep.first_version,
                   (unsigned long long)rep.last_version,
                   (unsigned long long)rep.segments,
                   (unsigned long long)rep.chunks,
                   (unsigned long long)rep.pages_checked,
                   (unsigned long long)rep.problems);
    }
    dsq_db_close(db);
    dsq_store_free(st);
    return rc == DSQ_OK ? 0 : fail(a->cmd, &e, rc);
}

/* ---- recovery-scan ---- */

static void print_orphan(const char *key, uint64_t size, uint64_t mtime_ms,
                         int deleted, void *arg)
{
    char t[32];
    (void)arg;
    dsq_format_time_ms(mtime_ms, t);
    printf("orphan  %s  %llu bytes  %s%s\n", key, (unsigned long long)size, t,
           deleted ? "  deleted" : "");
}

static void print_tmpfile(const char *name, uint64_t size, uint64_t mtime_ms,
                          int deleted, void *arg)
{
    char t[32];
    (void)arg;
    dsq_format_time_ms(mtime_ms, t);
    printf("tmpfile  %s  %llu bytes  %s%s\n", name, (unsigned long long)size, t,
           deleted ? "  deleted" : "");
}

static int cmd_recovery_scan(struct args *a)
{
    struct dsq_err e;
    struct dsq_store *st = NULL;
    struct dsq_db *db = NULL;
    uint64_t n = 0;
    dsq_err_clear(&e);
    if (a->npos != 1)
        return usage_error(a->cmd,
                           "usage: recovery-scan URL [--delete] [--grace "
                           "SECONDS]");
    dsq_rc rc = open_db(a, a->pos[0], &st, &db, &e);
    /* temporary files first: the orphans' count stays the last line */
    uint64_t nt = 0;
    if (rc == DSQ_OK)
        rc = dsq_db_debris_scan(db, (uint64_t)(a->grace_s * 1000), a->do_delete,
                                print_tmpfile, NULL, &nt, &e);
    if (rc == DSQ_OK)
        printf("%llu temporary file(s) of interrupted writes older than %.0f "
               "s%s\n",
               (unsigned long long)nt, a->grace_s,
               a->do_delete && nt ? ", deleted" : "");
    if (rc == DSQ_OK)
        rc = dsq_db_recovery_scan(db, (uint64_t)(a->grace_s * 1000),
                                  a->do_delete, print_orphan, NULL, &n, &e);
    if (rc == DSQ_OK)
        printf("%llu orphan(s) older than %.0f s%s\n", (unsigned long long)n,
               a->grace_s, a->do_delete && n ? ", deleted" : "");
    dsq_db_close(db);
    dsq_store_free(st);
    return rc == DSQ_OK ? 0 : fail(a->cmd, &e, rc);
}

/* ---- restore ---- */

static int cmd_restore(struct args *a)
{
    struct dsq_err e;
    struct dsq_store *st = NULL;
    struct dsq_db *db = NULL;
    struct dsq_restore_info ri;
    dsq_err_clear(&e);
    if (a->npos != 1 || (!a->version && !a->at))
        return usage_error(a->cmd,
                           "usage: restore URL --version N | --at TIME");
    if (a->version && a->at)
        return usage_error(a->cmd, "--version and --at exclude each other");
    uint64_t version = 0;
    dsq_rc rc = open_db(a, a->pos[0], &st, &db, &e);
    if (rc == DSQ_OK)
        rc = pick_version(a, db, &version, &e);
    if (rc == DSQ_OK)
        rc = dsq_db_restore(db, version, &ri, &e);
    if (rc == DSQ_OK && !a->quiet)
        printf("%s: version %llu has the content of version %llu "
               "(%llu pages written; was at version %llu)\n",
               a->pos[0], (unsigned long long)ri.version,
               (unsigned long long)ri.restored,
               (unsigned long long)ri.pages_written,
               (unsigned long long)ri.from);
    dsq_db_close(db);
    dsq_store_free(st);
    return rc == DSQ_OK ? 0 : fail(a->cmd, &e, rc);
}

/* ---- fork ---- */

/*
 * SRC_URL[@vN|@TIME]: the URL and the version it names (DSQ_VERSION_LATEST
 * without a suffix).  0, or -1 if the suffix is malformed.
 */
static int fork_source(const char *arg, char **url, uint64_t *version,
                       uint64_t *at_ms)
{
    *version = DSQ_VERSION_LATEST;
    *at_ms = 0;
    const char *at = strrchr(arg, '@');
    const char *slash = strrchr(arg, '/');
    if (at && (!slash || at > slash)) {
        const char *t = at + 1;
        char *end;
        if (t[0] == 'v' && t[1] >= '0' && t[1] <= '9') {
            errno = 0;
            unsigned long long n = strtoull(t + 1, &end, 10);
            if (*end || errno || n == 0)
                return -1;
            *version = n;
        } else if (dsq_parse_time_user(t, strlen(t), at_ms) != 0 ||
                   *at_ms == 0) {
            return -1;
        }
        *url = strndup(arg, (size_t)(at - arg));
    } else {
        *url = strdup(arg);
    }
    return *url ? 0 : -1;
}

/* Across stores: version `version` of src copied page by page into dst. */
static dsq_rc fork_copy(struct dsq_db *src, uint64_t version,
                        struct dsq_db *dst, struct dsq_fork_info *fi,
                        struct dsq_err *e)
{
    struct dsq_snap *s = NULL, *ds = NULL;
    struct dsq_txn *t = NULL;
    uint8_t *buf = NULL;
    uint64_t dv = 0;
    dsq_rc rc = dsq_db_latest(dst, &dv, e);
    if (rc == DSQ_OK && dv)
        return dsq_err_set(e, DSQ_EEXIST,
                           "%s already has versions: a fork makes a new "
                           "database",
                           dsq_db_prefix(dst));
    if (rc == DSQ_OK)
        rc = dsq_db_snapshot(src, version, &s, e);
    if (rc == DSQ_OK && dsq_snap_version(s) == 0)
        rc = dsq_err_set(e, DSQ_ENOTFOUND, "%s has no versions",
                         dsq_db_prefix(src));
    if (rc == DSQ_OK)
        rc = dsq_db_init(dst, NULL, e);
    if (rc == DSQ_OK)
        rc = dsq_db_snapshot(dst, DSQ_VERSION_LATEST, &ds, e);
    if (rc == DSQ_OK)
        rc = dsq_txn_begin(ds, DSQ_TXN_STREAM, &t, e);
    uint32_t ps = s ? dsq_snap_page_size(s) : 0,
             n = s ? dsq_snap_page_count(s) : 0;
    if (rc == DSQ_OK)
        rc = dsq_txn_set_page_size(t, ps, e);
    if (rc == DSQ_OK && !(buf = malloc((size_t)BATCH_PAGES * ps)))
        rc = DSQ_ENOMEM;
    for (uint32_t p = 1; rc == DSQ_OK && p <= n;) {
        uint32_t k = n - p + 1 < BATCH_PAGES ? n - p + 1 : BATCH_PAGES;
        rc = dsq_snap_read_pages(s, p, k, buf, e);
        for (uint32_t i = 0; rc == DSQ_OK && i < k; i++)
            rc = dsq_txn_write_page(t, p + i, buf + (size_t)i * ps, e);
        p += k;
    }
    struct dsq_commit_info ci;
    if (rc == DSQ_OK) {
        rc = dsq_txn_commit(t, &ci, e);
        dsq_txn_free(t);
        t = NULL;
    }
    if (rc == DSQ_OK) {
        fi->version = dsq_snap_version(s);
        fi->pages = n;
        fi->page_size = ps;
        fi->pages_copied = n;
        fi->bytes_copied = (uint64_t)n * ps;
    }
    if (t)
        dsq_txn_free(t);
    free(buf);
    dsq_snap_release(s);
    dsq_snap_release(ds);
    return rc;
}

static int cmd_fork(struct args *a)
{
    struct dsq_err e;
    char *src_url = NULL, *sstore = NULL, *sprefix = NULL, *dstore = NULL,
         *dprefix = NULL;
    struct dsq_store *st = NULL, *st2 = NULL;
    struct dsq_db *src = NULL, *dst = NULL;
    struct dsq_fork_info fi;
    uint64_t version, at_ms;
    dsq_err_clear(&e);
    if (a->npos != 2)
        return usage_error(a->cmd, "usage: fork SRC_URL[@vN|@TIME] DEST_URL");
    if (fork_source(a->pos[0], &src_url, &version, &at_ms) != 0) {
        free(src_url);
        return usage_error(a->cmd, "SRC_URL@vN (N >= 1) or SRC_URL@TIME (like "
                                   "2026-12-01T10:00:00Z)");
    }
    uint64_t t0 = dsq_mono_ns();
    dsq_rc rc = dsq_url_split(src_url, &sstore, &sprefix, &e);
    if (rc == DSQ_OK)
        rc = dsq_url_split(a->pos[1], &dstore, &dprefix, &e);
    if (rc == DSQ_OK)
        rc = dsq_store_open(sstore, &a->cfg, &st, &e);
    if (rc == DSQ_OK)
        rc = dsq_store_check_conditional(st, &e);
    int same = rc == DSQ_OK && !strcmp(sstore, dstore);
    if (rc == DSQ_OK && !same) {
        rc = dsq_store_open(dstore, &a->cfg, &st2, &e);
        if (rc == DSQ_OK)
            rc = dsq_store_check_conditional(st2, &e);
    }
    if (rc == DSQ_OK)
        rc = dsq_db_open(st, sprefix, &a->cfg, &src, &e);
    if (rc == DSQ_OK)
        rc = dsq_db_open(same ? st : st2, dprefix, &a->cfg, &dst, &e);
    if (rc == DSQ_OK && at_ms) {
        rc = dsq_db_version_at(src, at_ms, &version, &e);
        if (rc == DSQ_OK && !version)
            rc = dsq_err_set(&e, DSQ_ENOTFOUND,
                             "%s has no version committed at or before %s",
                             src_url, strrchr(a->pos[0], '@') + 1);
    }
    memset(&fi, 0, sizeof(fi));
    if (rc == DSQ_OK)
        rc = same ? dsq_db_fork(src, version, dst, &fi, &e)
                  : fork_copy(src, version, dst, &fi, &e);
    double ms = (double)(dsq_mono_ns() - t0) / 1e6;
    if (rc == DSQ_OK && !a->quiet) {
        struct dsq_db_stats s1, s2;
        dsq_db_get_stats(src, &s1);
        dsq_db_get_stats(dst, &s2);
        uint64_t reqs = s1.store_gets + s1.store_puts + s1.store_lists +
                        s1.store_heads + s1.store_dels + s2.store_gets +
                        s2.store_puts + s2.store_lists + s2.store_heads +
                        s2.store_dels;
        printf("%s is a fork of %s at version %llu (%u pages of %u bytes): "
               "%s, %llu page(s) copied, %llu store requests, %.1f ms\n",
               a->pos[1], src_url, (unsigned long long)fi.version, fi.pages,
               fi.page_size, same ? "objects shared" : "copied (another store)",
               (unsigned long long)fi.pages_copied, (unsigned long long)reqs,
               ms);
    }
    dsq_db_close(src);
    dsq_db_close(dst);
    dsq_store_free(st);
    dsq_store_free(st2);
    free(src_url);
    free(sstore);
    free(sprefix);
    free(dstore);
    free(dprefix);
    return rc == DSQ_OK ? 0 : fail(a->cmd, &e, rc);
}

/* ---- gc ---- */

static int cmd_gc(struct args *a)
{
    struct dsq_err e;
    struct dsq_store *st = NULL;
    struct dsq_db *db = NULL;
    struct dsq_gc_report rep;
    dsq_err_clear(&e);
    if (a->npos != 1)
        return usage_error(a->cmd,
                           "usage: gc URL [--keep N] [--keep-for SECONDS] "
                           "[--dry-run]");
    dsq_rc rc = open_db(a, a->pos[0], &st, &db, &e);
    if (rc == DSQ_OK)
        rc = dsq_db_gc(db, a->keep, (uint64_t)(a->keep_for_s * 1000),
                       a->dry_run, &rep, &e);
    if (rc == DSQ_OK) {
        if (rep.versions_removed == 0)
            printf("%s: nothing to remove (newest version %llu)\n", a->pos[0],
                   (unsigned long long)rep.head);
        else
            printf("%s: %s %llu version(s) below %llu and %llu object(s) "
                   "only they used; versions %llu..%llu stay\n",
                   a->pos[0], a->dry_run ? "would remove" : "removed",
                   (unsigned long long)rep.versions_removed,
                   (unsigned long long)rep.floor,
                   (unsigned long long)rep.objects_removed,
                   (unsigned long long)rep.floor, (unsigned long long)rep.head);
    }
    dsq_db_close(db);
    dsq_store_free(st);
    return rc == DSQ_OK ? 0 : fail(a->cmd, &e, rc);
}

int dsq_admin_main(int argc, char **argv)
{
    struct args a;
    int r = parse_args(argc, argv, &a);
    if (r != 0) {
        dsq_config_cleanup(&a.cfg);
        return r;
    }
    const char *c = a.cmd;
    if (!strcmp(c, "init"))
        r = cmd_init(&a);
    else if (!strcmp(c, "import"))
        r = cmd_import(&a);
    else if (!strcmp(c, "export"))
        r = cmd_export(&a);
    else if (!strcmp(c, "versions"))
        r = cmd_versions(&a);
    else if (!strcmp(c, "status"))
        r = cmd_status(&a);
    else if (!strcmp(c, "verify"))
        r = cmd_verify(&a);
    else if (!strcmp(c, "gc"))
        r = cmd_gc(&a);
    else if (!strcmp(c, "restore"))
        r = cmd_restore(&a);
    else if (!strcmp(c, "fork"))
        r = cmd_fork(&a);
    else if (!strcmp(c, "hot"))
        r = cmd_hot(&a);
    else
        r = cmd_recovery_scan(&a);
    dsq_config_cleanup(&a.cfg);
    return r;
}
