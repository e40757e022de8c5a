/*
 * dbfile.c - one database shown as NAME.db: the pinned snapshot, the
 * transaction buffer, its reads and writes, and the commit points read
 * off SQLite's journal (docs/locking.md).  Its lock requests, where
 * transactions start and end, are dblock.c.
 *
 * Layer: FUSE front end, over the engine facade (db.h).
 *
 * Invariants:
 *  (L1) The served snapshot moves only while no owner holds a lock on the
 *       file and no transaction is dsq__df_buffered: a local reader never sees
 * it move under it. (L2) Writes made under a write lock belong to a SQLite
 * transaction and commit only at a journal commit point (unlink, truncate to 0,
 *       header zeroed) or, with no journal (MEMORY, OFF), at the explicit
 *       release of the EXCLUSIVE lock.  A close that drops a write lock
 *       (the process died) discards them: the journal, if any, is hot and
 *       SQLite rolls the file back.
 *  (L3) Writes made with no write lock held (cp, dd) commit at fsync, at
 *       a close, or at the last release.
 *  (L4) A failed commit discards the buffer and fails the call; the kernel
 *       cache of the file is dropped so no uncommitted page stays visible.
 *  (L5) An EXCLUSIVE refused for a snapshot stays refused until the
 *       snapshot moves.  The first refusal of an attempt is EAGAIN
 *       (SQLITE_BUSY); the busy handler's retries of that attempt (the
 *       owner kept its RESERVED) are EDEADLK, which SQLite does not retry
 *       (SQLITE_IOERR_LOCK): the conflict is certain, waiting out
 *       busy_timeout would change nothing.
 *  (L6) The snapshot does not move while the local journal is hot: the
 *       rollback SQLite plays from it restores pages of that snapshot,
 *       so it writes nothing new and commits nothing (pages rewritten
 *       unchanged are dropped).
 *  (L7) A database with no pages stages its first content in a local
 *       file, byte for byte, until its commit point.
 *  (L8) Emptying or shrinking a database with data with no write lock
 *       held is refused (EPERM) unless the mount allows deleting.
 *  (L9) A write that proves the content is not SQLite is refused
 *       (EINVAL); a database created here and never committed is gone.
 *  (L10) A chmod is stored: a version that changes only the mode (or,
 *       while nothing is committed, the first content's version), so
 *       stat shows it on every mount from that mount's next read
 *       transaction, and on this one at once.
 * Threads: every function takes df->mu (fs.h); invalidations are sent
 * with it released, under inval_busy.
 */
#include "conflicts.h"
#include "dbfile_int.h"

#include "env.h"
#include "listing.h"
#include "log.h"
#include "loop.h"
#include "sqlitefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DSQ_ATTR_WAIT_MS 50 /* a getattr waits for df->mu at most this */

uint64_t dsq__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * Take df->mu from a request handler.  Its holder may be waiting for a
 * request of its own (the daemon reads and writes -shm files through the
 * mount, wal.c): a thread about to wait for the mutex first lets another
 * thread read the device.
 */
void dsq__df_lock(struct dsq_dbfile *df)
{
    if (pthread_mutex_trylock(&df->mu) == 0)
        return;
    dsq_loop_may_block();
    pthread_mutex_lock(&df->mu);
}

/* ---- life cycle ---- */

struct dsq_dbfile *dsq_dbfile_new(struct dsq_fs *fs, const char *prefix,
                                  const char *name, uint64_t ino,
                                  struct dsq_err *e)
{
    struct dsq_dbfile *df = calloc(1, sizeof(*df));
    if (!df)
        return NULL;
    df->fs = fs;
    df->ino = ino;
    df->stage_fd = -1;
    df->mode_new = df->mode_set = -1;
    atomic_init(&df->attr_mode, DSQ_DEFAULT_MODE);
    df->prefix = strdup(prefix);
    df->name = strdup(name);
    df->journal_path = dsq_fs_side_path(fs, name, "-journal");
    if (!df->prefix || !df->name || !df->journal_path)
        goto fail;
    pthread_mutex_init(&df->mu, NULL);
    pthread_mutex_init(&df->wb_mu, NULL);
    pthread_cond_init(&df->cv, NULL);
    atomic_init(&df->journal_maybe_hot, 1);
    if (dsq_wal_init(df) != 0)
        goto fail;
    if (dsq_db_open(fs->st, prefix, fs->cfg, &df->db, e) != DSQ_OK)
        goto fail;
    return df;
fail:
    free(df->prefix);
    free(df->name);
    free(df->journal_path);
    free(df);
    return NULL;
}

void dsq_dbfile_free(struct dsq_dbfile *df)
{
    if (!df)
        return;
    dsq_wb_close(df);
    dsq_txn_free(df->txn);
    if (df->stage_fd >= 0)
        close(df->stage_fd);
    dsq_wal_cleanup(df);
    dsq_conflicts_free(df->conflicts);
    dsq_snap_release(df->snap);
    dsq_db_close(df->db);
    dsq_locks_free(&df->locks);
    dsq_locks_free(&df->flocks);
    pthread_mutex_destroy(&df->mu);
    pthread_mutex_destroy(&df->wb_mu);
    pthread_cond_destroy(&df->cv);
    free(df->prefix);
    free(df->name);
    free(df->journal_path);
    free(df);
}

void dsq__df_log_rc(struct dsq_dbfile *df, const char *what,
                    const struct dsq_err *e, dsq_rc rc)
{
    dsq_log(DSQ_LOG_ERR, "fs", "%s: %s: %s", df->name, what,
            dsq_err_text(e, rc));
}

/* Something is buffered: a transaction, or an empty database's staged
   first content. */
int dsq__df_buffered(const struct dsq_dbfile *df)
{
    return df->txn != NULL || df->stage_fd >= 0;
}

/* ---- snapshots ---- */

/* The served snapshot, pinning the newest version at first use. */
int dsq__df_ensure_snap(struct dsq_dbfile *df)
{
    if (df->snap)
        return 0;
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_db_snapshot(df->db, DSQ_VERSION_LATEST, &df->snap, &e);
    if (rc != DSQ_OK) {
        dsq__df_log_rc(df, "reading the newest version", &e, rc);
        return -dsq_rc_errno(rc);
    }
    df->head = dsq_snap_version(df->snap);
    df->head_checked_ns = dsq__mono_ns();
    return 0;
}

/*
 * Ask the store for the head unless the staleness bound allows not to.
 * force (the early-conflict check at EXCLUSIVE): unless the last answer is
 * a few round trips young (dsq_db_fresh_recent): within that window the
 * commit's own create-only PUT finds a race just as well, without a
 * request of its own.  started_ns (dsq_mono_ns; 0 = now) is when the read
 * transaction started: any answer to a request sent since will do.  0, 1
 * if the database was deleted or created again since the snapshot (drop
 * everything cached), or -errno.
 */
static int check_head_since(struct dsq_dbfile *df, int force,
                            uint64_t started_ns)
{
    uint64_t now = dsq__mono_ns();
    double stale = df->fs->cfg->staleness_s;
    if (stale > 0 && (double)(now - df->head_checked_ns) < stale * 1e9)
        return 0;
    struct dsq_err e;
    dsq_err_clear(&e);
    struct dsq_fresh f;
    /* a read transaction starts now: a check sent from now on answers */
    dsq_rc rc = force ? dsq_db_fresh_recent(df->db, df->snap, &f, &e)
                      : dsq_db_fresh(df->db, df->snap, started_ns, &f, &e);
    if (rc != DSQ_OK) {
        dsq__df_log_rc(df, "checking for new versions", &e, rc);
        return -dsq_rc_errno(rc);
    }
    df->head = f.version;
    df->head_checked_ns = now;
    if (f.replaced)
        dsq_wal_replaced(df);
    return f.replaced;
}

int dsq__df_check_head(struct dsq_dbfile *df, int force)
{
    return check_head_since(df, force, 0);
}

/*
 * (L1) Move the served snapshot to the newest version: only with no lock
 * held and nothing dsq__df_buffered.  Collects what the kernel must drop in iv.
 */
/* (B4) Another host's version grows the file: the kernel's size is
   grown with the invalidation (inval.c), by the file's true last byte.
   Nothing is sent if that byte cannot be read (the reader then sees the
   old size and SQLite reports the database as damaged: logged). */
static void wb_grow(struct dsq_dbfile *df, struct dsq_snap *ns,
                    struct inval *iv)
{
    if (!df->fs->cfg->writeback)
        return;
    uint64_t ps = dsq_snap_page_size(ns), n = dsq_snap_page_count(ns);
    if (!ps || !n ||
        (df->snap && (uint64_t)dsq_snap_page_count(df->snap) *
                             dsq_snap_page_size(df->snap) >=
                         n * ps))
        return;
    uint8_t *pg = malloc(ps);
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = pg ? dsq_snap_read_page(ns, (uint32_t)n, pg, &e) : DSQ_ENOMEM;
    if (rc == DSQ_OK) {
        iv->grow = n * ps;
        iv->grow_last = pg[ps - 1];
    } else {
        dsq__df_log_rc(df, "reading the last page to grow the file", &e, rc);
    }
    free(pg);
}

int dsq__df_refresh(struct dsq_dbfile *df, struct inval *iv,
                    uint64_t owner_except)
{
    /* the read transaction starts now: the newest version found by
       ensure_snap's own listing answers it, if that comes first */
    uint64_t started = dsq_mono_ns();
    int r = dsq__df_ensure_snap(df);
    if (r || dsq__df_buffered(df) || dsq_locks_any(&df->locks, owner_except))
        return r;
    if (dsq__df_journal_hot(df)) {
        /* (L6) a hot journal holds the pages of this snapshot: SQLite
           rolls back against it first */
        return 0;
    }
    r = check_head_since(df, 0, started);
    if (r < 0)
        return r;
    const int replaced = r;
    uint64_t cur = dsq_snap_version(df->snap);
    if (df->head <= cur && !replaced)
        return 0;
    struct dsq_err e;
    dsq_err_clear(&e);
    struct dsq_snap *ns = NULL;
    dsq_rc rc = dsq_db_snapshot(df->db, df->head, &ns, &e);
    if (rc != DSQ_OK) {
        dsq__df_log_rc(df, "reading a new version", &e, rc);
        return -dsq_rc_errno(rc);
    }
    uint32_t ops = dsq_snap_page_size(df->snap);
    if (replaced || df->head - cur > DSQ_INVAL_MAX_VERSIONS || ops == 0 ||
        ops != dsq_snap_page_size(ns)) {
        dsq__inval_whole(iv);
    } else {
        struct dsq_changes c;
        rc = dsq_db_changes(df->db, cur, df->head, &c, &e);
        if (rc != DSQ_OK) {
            dsq__inval_whole(iv);
        } else {
            dsq__inval_take(iv, &c, ops);
            dsq_changes_cleanup(&c);
        }
    }
    iv->ps = iv->ps ? iv->ps : 1;
    wb_grow(df, ns, iv);
    dsq_snap_release(df->snap);
    df->snap = ns;
    df->refused = 0;
    df->refused_held = 0;
    df->st.snapshot_moves++;
    /* a WAL cycle's checkpoints are part of the newer version */
    dsq_txn_free(df->wal.ckpt);
    df->wal.ckpt = NULL;
    return 0;
}

/* ---- journal ---- */

/*
 * 1 if the local journal is hot as SQLite judges it: it exists and its
 * first byte is not zero (TRUNCATE leaves it empty, PERSIST zeroes the
 * header, an unsynced journal has a zero magic).  Asked at every read
 * transaction: the journal lives in our private directory and changes
 * only through fs.c, which sets journal_maybe_hot before every write, so
 * a "not hot" answer stands until then and costs no open().  The flag is
 * cleared before looking, so a write racing with the look sets it again.
 */
int dsq__df_journal_hot(struct dsq_dbfile *df)
{
    if (!atomic_exchange(&df->journal_maybe_hot, 0))
        return 0;
    uint8_t m[1];
    int fd = open(df->journal_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, m, 1, 0);
    close(fd);
    int hot = n == 1 && m[0] != 0;
    if (hot || n < 0)
        atomic_store(&df->journal_maybe_hot, 1);
    return hot;
}

void dsq_dbfile_journal_touched(struct dsq_dbfile *df)
{
    atomic_store(&df->journal_maybe_hot, 1);
}

/* ---- transactions ---- */

void dsq__df_discard(struct dsq_dbfile *df, struct inval *iv, const char *why)
{
    if (!dsq__df_buffered(df))
        return;
    if (df->stage_fd >= 0) {
        dsq_log(DSQ_LOG_NOTICE, "fs",
                "%s: %" PRIu64 " staged byte(s) of a new database "
                "discarded: %s",
                df->name, df->stage_size, why);
        close(df->stage_fd);
        df->stage_fd = -1;
        df->stage_size = 0;
    } else {
        size_t n = dsq_txn_dirty_pages(df->txn);
        dsq_txn_free(df->txn);
        df->txn = NULL;
        dsq_log(DSQ_LOG_NOTICE, "fs", "%s: %zu buffered page(s) discarded: %s",
                df->name, n, why);
    }
    df->txn_plain = 0;
    df->wb_failed = 0;
    dsq__inval_whole(iv);
}

/* ---- staging: an empty database's first content ---- */

/*
 * (L7) A database with no pages takes its first content into a local
 * file, byte for byte, whatever the order of the writes (SQLite spills
 * pages before page 1, extends files by one-byte writes, truncates up to
 * a chunk size): it reads and sizes exactly as on a local disk.  At the
 * commit point the header must be SQLite's; the pages then stream into
 * a whole-image transaction.
 */
static int stage_begin(struct dsq_dbfile *df)
{
    if (df->stage_fd >= 0)
        return 0;
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_db_spill_file(df->db, &df->stage_fd, &e);
    if (rc != DSQ_OK) {
        dsq__df_log_rc(df, "staging a new database", &e, rc);
        return -dsq_rc_errno(rc);
    }
    df->stage_size = 0;
    df->txn_plain = !dsq_locks_any_write(&df->locks);
    return 0;
}

/* 1 if writes to this database go to the staging file. */
static int stages(struct dsq_dbfile *df)
{
    return df->stage_fd >= 0 ||
           (!df->txn && df->snap && dsq_snap_page_count(df->snap) == 0);
}

ssize_t dsq__full_pread(int fd, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k =
            pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            break;
        done += (size_t)k;
    }
    return (ssize_t)done;
}

/*
 * Turn the staged bytes into a whole-image transaction in df->txn (the
 * stage is closed).  -EINVAL if they are not a SQLite database (the
 * caller refuses the content).
 */
static int stage_to_txn(struct dsq_dbfile *df)
{
    uint8_t hdr[100];
    memset(hdr, 0, sizeof(hdr));
    ssize_t n = dsq__full_pread(df->stage_fd, hdr, sizeof(hdr), 0);
    if (n < 0) {
        dsq_log(DSQ_LOG_ERR, "fs", "%s: reading the staged content: %s",
                df->name, strerror((int)-n));
        return (int)n;
    }
    uint32_t ps = dsq_sqlite_page_size(hdr, sizeof(hdr));
    if (ps == 0 || !dsq_sqlite_header_write_ok(hdr, sizeof(hdr), 0)) {
        dsq_log(DSQ_LOG_ERR, "fs",
                "%s: refused (EINVAL): the content is not a SQLite "
                "database (no valid SQLite header at offset 0)",
                df->name);
        return -EINVAL;
    }
    uint64_t count = (df->stage_size + ps - 1) / ps;
    if (count > 0xfffffffeu)
        return -EFBIG;
    struct dsq_err e;
    dsq_err_clear(&e);
    struct dsq_txn *t = NULL;
    uint8_t *page = malloc(ps);
    dsq_rc rc =
        page ? dsq_txn_begin(df->snap, DSQ_TXN_STREAM, &t, &e) : DSQ_ENOMEM;
    if (rc == DSQ_OK)
        rc = dsq_txn_set_page_size(t, ps, &e);
    if (rc == DSQ_OK && df->mode_new >= 0) /* (L10) */
        rc = dsq_txn_set_mode(t, (uint32_t)df->mode_new, &e);
    for (uint64_t p = 1; rc == DSQ_OK && p <= count; p++) {
        memset(page, 0, ps);
        ssize_t k = dsq__full_pread(df->stage_fd, page, ps, (p - 1) * ps);
        if (k < 0) {
            rc = dsq_err_set(&e, DSQ_EIO, "reading the staged content: %s",
                             strerror((int)-k));
            break;
        }
        rc = dsq_txn_write_page(t, (uint32_t)p, page, &e);
    }
    free(page);
    if (rc != DSQ_OK) {
        dsq__df_log_rc(df, "preparing the first commit", &e, rc);
        dsq_txn_free(t);
        return -dsq_rc_errno(rc);
    }
    close(df->stage_fd);
    df->stage_fd = -1;
    df->stage_size = 0;
    df->txn = t;
    return 0;
}

void dsq__df_now_exists(struct dsq_dbfile *df)
{
    if (!atomic_exchange(&df->exists, 1))
        dsq_listing_note(df->fs, df->name, 1);
}

/* (L2)(L3)(L4) Commit the dsq__df_buffered transaction; 0 or -errno. */
int dsq__df_commit(struct dsq_dbfile *df, const char *why, struct inval *iv)
{
    if (df->wb_failed) {
        df->wb_failed = 0;
        dsq__df_discard(df, iv, "a cached write of the transaction failed");
        dsq__inval_whole(iv);
        df->st.commit_failures++;
        return -EIO;
    }
    if (df->stage_fd >= 0) {
        if (df->stage_size == 0) {
            /* nothing but an empty file: nothing to commit */
            close(df->stage_fd);
            df->stage_fd = -1;
            df->txn_plain = 0;
            df->st.noop_commits++;
            return 0;
        }
        int plain = df->txn_plain;
        int r = stage_to_txn(df);
        if (r) {
            if (r == -EINVAL)
                df->content_refused = 1;
            dsq__df_discard(df, iv, "the first commit failed");
            df->st.commit_failures++;
            return r;
        }
        df->txn_plain = plain;
    }
    if (!df->txn)
        return 0;
    struct dsq_err e;
    dsq_err_clear(&e);
    size_t left = 0;
    uint32_t base_count = dsq_snap_page_count(df->snap);
    uint32_t ps = dsq_txn_page_size(df->txn);
    dsq_rc rc = dsq_txn_drop_unchanged(df->txn, &left, &e);
    if (rc == DSQ_OK && left == 0 &&
        dsq_txn_page_count(df->txn) == base_count) {
        dsq_txn_free(df->txn);
        df->txn = NULL;
        df->st.noop_commits++;
        return 0;
    }
    if (rc != DSQ_OK) {
        dsq__df_log_rc(df, "preparing the commit", &e, rc);
        dsq__df_discard(df, iv, "commit failed");
        df->st.commit_failures++;
        return -dsq_rc_errno(rc);
    }
    uint64_t from = dsq_snap_version(df->snap);
    struct dsq_commit_info ci;
    uint64_t t0 = dsq__mono_ns();
    rc = dsq_txn_commit(df->txn, &ci, &e);
    dsq_txn_free(df->txn);
    df->txn = NULL;
    df->txn_plain = 0;
    if (rc != DSQ_OK) {
        df->st.commit_failures++;
        dsq__inval_whole(iv);
        dsq_log(rc == DSQ_ECONFLICT ? DSQ_LOG_NOTICE : DSQ_LOG_ERR, "fs",
                "%s: commit at %s failed, the transaction is rolled "
                "back: %s",
                df->name, why, dsq_err_text(&e, rc));
        if (rc == DSQ_ECONFLICT)
            dsq_conflicts_commit_refused(df, from);
        return rc == DSQ_ECONFLICT ? -EIO : -dsq_rc_errno(rc);
    }
    df->st.local_commits++;
    dsq__df_now_exists(df);
    dsq_log(DSQ_LOG_INFO, "fs",
            "%s: committed version %" PRIu64 " at %s (%u rebase(s), "
            "%.1f ms)",
            df->name, ci.version, why, ci.rebases,
            (double)(dsq__mono_ns() - t0) / 1e6);
    if (ci.noop)
        return 0;
    struct dsq_snap *ns = NULL;
    rc = dsq_db_snapshot(df->db, ci.version, &ns, &e);
    if (rc != DSQ_OK) {
        /* committed, but the new version cannot be read back now: serve
           it at the next dsq__df_refresh */
        dsq__df_log_rc(df, "reading the version just committed", &e, rc);
        dsq__inval_whole(iv);
        if (ci.version > df->head)
            df->head = ci.version;
        return 0;
    }
    if (ci.version != from + 1 || ci.rebases) {
        /* others committed in between: drop their pages and page 1 */
        struct dsq_changes c;
        if (ci.version - 1 > from &&
            dsq_db_changes(df->db, from, ci.version - 1, &c, &e) == DSQ_OK) {
            dsq__inval_take(iv, &c, ps);
            dsq_changes_cleanup(&c);
            struct dsq_page_range *nr =
                realloc(iv->r, (iv->n + 1) * sizeof(*nr));
            if (nr) {
                iv->r = nr;
                memmove(iv->r + 1, iv->r, iv->n * sizeof(*nr));
                iv->r[0] = (struct dsq_page_range){1, 1};
                iv->n++;
            } else {
                dsq__inval_whole(iv);
            }
        } else {
            dsq__inval_whole(iv);
        }
    }
    iv->ps = iv->ps ? iv->ps : ps;
    dsq_snap_release(df->snap);
    df->snap = ns;
    if (ci.version > df->head)
        df->head = ci.version;
    df->refused = 0;
    df->refused_held = 0;
    return 0;
}

static int begin_txn(struct dsq_dbfile *df)
{
    if (df->txn)
        return 0;
    int r = dsq__df_ensure_snap(df);
    if (r)
        return r;
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = dsq_txn_begin(df->snap, 0, &df->txn, &e);
    if (rc != DSQ_OK) {
        dsq__df_log_rc(df, "starting a transaction", &e, rc);
        return -dsq_rc_errno(rc);
    }
    df->txn_plain = !dsq_locks_any_write(&df->locks);
    return 0;
}

/* ---- file operations ---- */

uint64_t dsq__df_file_size(struct dsq_dbfile *df)
{
    if (df->stage_fd >= 0)
        return df->stage_size;
    if (df->txn)
        return (uint64_t)dsq_txn_page_count(df->txn) *
               dsq_txn_page_size(df->txn);
    if (df->wal.ckpt)
        return (uint64_t)dsq_txn_page_count(df->wal.ckpt) *
               dsq_txn_page_size(df->wal.ckpt);
    if (df->snap)
        return (uint64_t)dsq_snap_page_count(df->snap) *
               dsq_snap_page_size(df->snap);
    return 0;
}

/*
 * (L8) Emptying or shrinking a database with data, with no write lock
 * held (truncate -s, ": > NAME", an O_TRUNC open), is refused unless the
 * mount allows deleting databases: a shell redirect must not do what rm
 * may not.  SQLite truncates only under its EXCLUSIVE lock.
 */
static int plain_shrink_refused(struct dsq_dbfile *df, uint64_t size)
{
    if (df->fs->cfg->allow_delete || dsq_locks_any_write(&df->locks) ||
        dsq_wal_db_io(df))
        return 0;
    uint64_t cur = dsq__df_file_size(df);
    if (size >= cur || cur == 0 || df->stage_fd >= 0)
        return 0;
    dsq_log(DSQ_LOG_NOTICE, "fs",
            "%s: truncation to %" PRIu64 " bytes refused (EPERM): the "
            "database has data and no SQLite lock is held; mount with -o "
            "allow_delete to replace databases",
            df->name, size);
    return 1;
}

int dsq_dbfile_on_open(struct dsq_dbfile *df, int trunc)
{
    struct inval iv = {0};
    dsq__df_lock(df);
    dsq__df_wait_inval(df);
    int r = dsq__df_refresh(df, &iv, 0);
    if (r == 0 && trunc && plain_shrink_refused(df, 0))
        r = -EPERM;
    if (r == 0)
        df->open_count++;
    dsq__df_unlock_inval(df, &iv);
    if (r == 0 && trunc) {
        r = dsq_dbfile_truncate(df, 0);
        if (r) {
            dsq__df_lock(df);
            df->open_count--;
            pthread_mutex_unlock(&df->mu);
        }
    }
    return r;
}

void dsq_dbfile_on_release(struct dsq_dbfile *df)
{
    struct inval iv = {0};
    dsq__df_lock(df);
    if (df->open_count)
        df->open_count--;
    if (df->open_count == 0 && dsq__df_buffered(df) && df->txn_plain &&
        !dsq_locks_any_write(&df->locks))
        dsq__df_commit(df, "the last close", &iv);
    int one_left = df->open_count == 1;
    dsq__df_unlock_inval(df, &iv);
    if (one_left && df->fs->cfg->writeback)
        dsq_wb_close(df); /* (B2) if the one left is the flush child's */
}

/* (L10) The mode shown; df->mu held. */
static uint32_t mode_shown(struct dsq_dbfile *df)
{
    int empty = !df->snap || dsq_snap_page_count(df->snap) == 0;
    if (empty && df->mode_new >= 0)
        return (uint32_t)df->mode_new;
    if (df->mode_set >= 0 &&
        (!df->snap || dsq_snap_version(df->snap) < df->mode_set_ver))
        return (uint32_t)df->mode_set;
    int64_t m = df->snap ? dsq_snap_mode(df->snap) : -1;
    return m >= 0 ? (uint32_t)m : DSQ_DEFAULT_MODE;
}

void dsq_dbfile_create_mode(struct dsq_dbfile *df, uint32_t mode)
{
    dsq__df_lock(df);
    if (!atomic_load(&df->exists) && (mode & DSQ_MODE_KEPT) != DSQ_DEFAULT_MODE)
        df->mode_new = mode & DSQ_MODE_KEPT;
    pthread_mutex_unlock(&df->mu);
}

int dsq_dbfile_chmod(struct dsq_dbfile *df, uint32_t mode)
{
    mode &= DSQ_MODE_KEPT;
    dsq__df_lock(df);
    int r = dsq__df_ensure_snap(df);
    if (r == 0 && (dsq_snap_page_count(df->snap) == 0 || df->stage_fd >= 0) &&
        df->head <= dsq_snap_version(df->snap)) {
        /* nothing stored yet: the first content carries it */
        df->mode_new = mode;
        pthread_mutex_unlock(&df->mu);
        return 0;
    }
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = DSQ_OK;
    struct dsq_commit_info ci = {0};
    dsq_loop_may_block();
    for (int attempt = 0; r == 0 && attempt < 4; attempt++) {
        /* on the newest version: a mode alone meets no page, so only
           isolation=serializable can refuse it, and a retry then wins */
        struct dsq_snap *s = NULL;
        struct dsq_txn *t = NULL;
        dsq_err_clear(&e);
        rc = dsq_db_snapshot(df->db, DSQ_VERSION_LATEST, &s, &e);
        if (rc == DSQ_OK)
            rc = dsq_txn_begin(s, 0, &t, &e);
        if (rc == DSQ_OK)
            rc = dsq_txn_set_mode(t, mode, &e);
        if (rc == DSQ_OK)
            rc = dsq_txn_commit(t, &ci, &e);
        dsq_txn_free(t);
        dsq_snap_release(s);
        if (rc != DSQ_ECONFLICT)
            break;
    }
    if (r == 0 && rc != DSQ_OK) {
        dsq_log(DSQ_LOG_ERR, "fs", "%s: chmod %04o failed: %s", df->name, mode,
                dsq_err_text(&e, rc));
        r = rc == DSQ_ECONFLICT ? -EIO : -dsq_rc_errno(rc);
    } else if (r == 0) {
        df->mode_set = mode;
        df->mode_set_ver = ci.version;
        if (ci.version > df->head)
            df->head = ci.version;
        if (!ci.noop) {
            df->st.local_commits++;
            dsq_log(DSQ_LOG_INFO, "fs",
                    "%s: committed version %" PRIu64 " at chmod %04o", df->name,
                    ci.version, mode);
        }
    }
    pthread_mutex_unlock(&df->mu);
    return r;
}

void dsq_dbfile_attr(struct dsq_dbfile *df, uint64_t *size, uint64_t *mtime_ms,
                     uint32_t *mode)
{
    /* a stat never waits long for another request's store call (a slow
       store): after DSQ_ATTR_WAIT_MS it gets what was last served */
    if (pthread_mutex_trylock(&df->mu) != 0) {
        dsq_loop_may_block();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += DSQ_ATTR_WAIT_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_mutex_timedlock(&df->mu, &ts) != 0) {
            uint64_t m = atomic_load(&df->attr_mtime);
            if (m) {
                *size = atomic_load(&df->attr_size);
                *mtime_ms = m;
                *mode = atomic_load(&df->attr_mode);
                return;
            }
            dsq__df_lock(df); /* never served: wait */
        }
    }
    dsq__df_ensure_snap(df);
    *size = dsq__df_file_size(df);
    if (dsq__df_buffered(df)) {
        *mtime_ms = wall_ms();
    } else if (df->snap && dsq_snap_time_ms(df->snap)) {
        *mtime_ms = dsq_snap_time_ms(df->snap);
    } else {
        *mtime_ms = df->fs->start_ms;
    }
    *mode = mode_shown(df) & DSQ_MODE_KEPT; /* older versions may have more */
    atomic_store(&df->attr_size, *size);
    atomic_store(&df->attr_mode, *mode);
    atomic_store(&df->attr_mtime, *mtime_ms ? *mtime_ms : 1);
    pthread_mutex_unlock(&df->mu);
}

int dsq_dbfile_content_refused(struct dsq_dbfile *df)
{
    dsq__df_lock(df);
    int r = df->content_refused;
    pthread_mutex_unlock(&df->mu);
    return r;
}

ssize_t dsq_dbfile_read(struct dsq_dbfile *df, char *buf, size_t size,
                        off_t off)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq__df_lock(df);
    int r = dsq__df_ensure_snap(df);
    if (r) {
        pthread_mutex_unlock(&df->mu);
        return r;
    }
    dsq_rc rc = DSQ_OK;
    ssize_t done = 0;
    if (df->stage_fd >= 0) {
        uint64_t fsize = df->stage_size;
        if ((uint64_t)off >= fsize) {
            pthread_mutex_unlock(&df->mu);
            return 0;
        }
        if ((uint64_t)off + size > fsize)
            size = (size_t)(fsize - (uint64_t)off);
        ssize_t n = dsq__full_pread(df->stage_fd, buf, size, (uint64_t)off);
        pthread_mutex_unlock(&df->mu);
        if (n < 0)
            return n;
        /* a hole past what the file holds reads as zeros */
        if ((size_t)n < size)
            memset(buf + n, 0, size - (size_t)n);
        return (ssize_t)size;
    } else if (df->txn || df->wal.ckpt) {
        struct dsq_txn *t = df->txn ? df->txn : df->wal.ckpt;
        uint32_t ps = dsq_txn_page_size(t);
        uint64_t fsize = (uint64_t)dsq_txn_page_count(t) * ps;
        if ((uint64_t)off >= fsize || ps == 0) {
            pthread_mutex_unlock(&df->mu);
            return 0;
        }
        if ((uint64_t)off + size > fsize)
            size = (size_t)(fsize - (uint64_t)off);
        uint8_t *page = malloc(ps);
        if (!page) {
            pthread_mutex_unlock(&df->mu);
            return -ENOMEM;
        }
        while ((size_t)done < size && rc == DSQ_OK) {
            uint64_t pos = (uint64_t)off + (uint64_t)done;
            uint32_t pg = (uint32_t)(pos / ps) + 1, in = (uint32_t)(pos % ps);
            size_t k = ps - in;
            if (k > size - (size_t)done)
                k = size - (size_t)done;
            rc = dsq_txn_read_page(t, pg, page, &e);
            if (rc == DSQ_OK)
                memcpy(buf + done, page + in, k);
            done += (ssize_t)k;
        }
        free(page);
        pthread_mutex_unlock(&df->mu);
    } else {
        struct dsq_snap *s = dsq_snap_ref(df->snap);
        pthread_mutex_unlock(&df->mu);
        uint32_t ps = dsq_snap_page_size(s);
        uint64_t fsize = (uint64_t)dsq_snap_page_count(s) * ps;
        if ((uint64_t)off >= fsize || ps == 0) {
            dsq_snap_release(s);
            return 0;
        }
        if ((uint64_t)off + size > fsize)
            size = (size_t)(fsize - (uint64_t)off);
        uint32_t first = (uint32_t)((uint64_t)off / ps) + 1;
        uint32_t last = (uint32_t)(((uint64_t)off + size - 1) / ps) + 1;
        uint32_t in = (uint32_t)((uint64_t)off % ps);
        if (in == 0 && size == (size_t)(last - first + 1) * ps) {
            rc = dsq_snap_read_pages(s, first, last - first + 1, buf, &e);
        } else {
            uint8_t *tmp = malloc((size_t)(last - first + 1) * ps);
            if (!tmp) {
                dsq_snap_release(s);
                return -ENOMEM;
            }
            rc = dsq_snap_read_pages(s, first, last - first + 1, tmp, &e);
            if (rc == DSQ_OK)
                memcpy(buf, tmp + in, size);
            free(tmp);
        }
        done = (ssize_t)size;
        dsq_snap_release(s);
    }
    if (rc != DSQ_OK) {
        dsq__df_log_rc(df, "read", &e, rc);
        return -dsq_rc_errno(rc);
    }
    return done;
}

/* (W2) The checkpoint buffer of a WAL cycle, over the db file's version. */
static int ckpt_txn(struct dsq_dbfile *df, struct dsq_txn **out)
{
    struct dsq_wal *w = &df->wal;
    if (!w->ckpt) {
        struct dsq_err e;
        dsq_err_clear(&e);
        dsq_rc rc = dsq_txn_begin(df->snap, 0, &w->ckpt, &e);
        if (rc == DSQ_OK && dsq_snap_page_count(df->snap) == 0) {
            if (!w->have_hdr)
                rc = dsq_err_set(&e, DSQ_EINVAL,
                                 "a checkpoint with no WAL header");
            else
                rc = dsq_txn_set_page_size(w->ckpt, w->hdr.page_size, &e);
        }
        if (rc != DSQ_OK) {
            dsq_txn_free(w->ckpt);
            w->ckpt = NULL;
            dsq__df_log_rc(df, "a WAL checkpoint", &e, rc);
            return -dsq_rc_errno(rc);
        }
    }
    *out = w->ckpt;
    return 0;
}

/* (L9) Content decides: a write that makes the first bytes of the file
   anything but a SQLite header is refused. */
static int refuse_content(struct dsq_dbfile *df, struct inval *iv, uint64_t off)
{
    dsq_log(DSQ_LOG_ERR, "fs",
            "%s: write at offset %" PRIu64 " refused (EINVAL): the content "
            "is not a SQLite database (its first bytes must be a SQLite "
            "header)",
            df->name, off);
    if (!atomic_load(&df->exists)) {
        /* a file created here and never committed: it goes away */
        df->content_refused = 1;
        dsq__df_discard(df, iv, "not a SQLite database");
    }
    return -EINVAL;
}

/* 1 if the served file's header says WAL mode; df->mu held. */
static int served_is_wal(struct dsq_dbfile *df)
{
    if (!df->snap || dsq_snap_page_count(df->snap) == 0)
        return 0;
    uint8_t *pg = malloc(dsq_snap_page_size(df->snap));
    struct dsq_err e;
    dsq_err_clear(&e);
    int wal = pg && dsq_snap_read_page(df->snap, 1, pg, &e) == DSQ_OK &&
              dsq_sqlite_is_wal(pg, dsq_snap_page_size(df->snap));
    free(pg);
    return wal;
}

int dsq_dbfile_is_wal(struct dsq_dbfile *df)
{
    dsq__df_lock(df);
    int wal = served_is_wal(df);
    pthread_mutex_unlock(&df->mu);
    return wal;
}

static ssize_t dbfile_write(struct dsq_dbfile *df, const char *buf, size_t size,
                            off_t off)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    struct inval iv = {0};
    if (df->fs->cfg->read_only)
        return -EROFS;
    dsq__df_lock(df);
    if (df->content_refused) {
        pthread_mutex_unlock(&df->mu);
        return -EINVAL;
    }
    int r = dsq__df_ensure_snap(df);
    if (r == 0 && !dsq_sqlite_header_write_ok(buf, size, (uint64_t)off)) {
        r = refuse_content(df, &iv, (uint64_t)off);
        dsq__df_unlock_inval(df, &iv);
        return r;
    }
    if (r == 0 && df->fs->cfg->writeback && off == 0 &&
        dsq_sqlite_is_wal((const uint8_t *)buf, size) && !dsq_wal_db_io(df) &&
        !served_is_wal(df)) {
        /* (B5) checkpoints through the writeback cache would reach the
           daemon after it moved the file's version (wal.c W6) */
        pthread_mutex_unlock(&df->mu);
        dsq_log(DSQ_LOG_ERR, "fs",
                "%s: switching to WAL mode is refused (EINVAL) on a mount "
                "with -o writeback: use a mount without it for WAL "
                "databases; the database stays in its rollback journal mode",
                df->name);
        return -EINVAL;
    }
    if (r == 0 && !dsq_wal_db_io(df) && stages(df)) {
        r = stage_begin(df);
        if (r == 0) {
            size_t done = 0;
            while (done < size) {
                ssize_t k = pwrite(df->stage_fd, buf + done, size - done,
                                   off + (off_t)done);
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0) {
                    r = k < 0 ? -errno : -EIO;
                    break;
                }
                done += (size_t)k;
            }
            if (r == 0 && (uint64_t)off + size > df->stage_size)
                df->stage_size = (uint64_t)off + size;
        }
        pthread_mutex_unlock(&df->mu);
        if (r)
            dsq_log(DSQ_LOG_ERR, "fs", "%s: staging a write: %s", df->name,
                    strerror(-r));
        return r ? r : (ssize_t)size;
    }
    struct dsq_txn *t = NULL;
    if (r == 0 && dsq_wal_db_io(df)) {
        /* (W2) a checkpoint of frames already published */
        r = ckpt_txn(df, &t);
    } else if (r == 0) {
        r = begin_txn(df);
        t = df->txn;
    }
    if (r) {
        pthread_mutex_unlock(&df->mu);
        return r;
    }
    dsq_rc rc = dsq__txn_write_bytes(t, buf, size, (uint64_t)off, &e);
    pthread_mutex_unlock(&df->mu);
    if (rc != DSQ_OK) {
        dsq__df_log_rc(df, "write", &e, rc);
        return rc == DSQ_ERANGE ? -EFBIG : -dsq_rc_errno(rc);
    }
    return (ssize_t)size;
}

ssize_t dsq_dbfile_write(struct dsq_dbfile *df, const char *buf, size_t size,
                         off_t off)
{
    ssize_t n = dbfile_write(df, buf, size, off);
    if (df->fs->cfg->writeback) {
        dsq__df_lock(df);
        df->wb_synced = 0;
        if (n < 0 && !df->content_refused) {
            /* (B3) the writer's write(2) returned long ago */
            df->wb_failed = 1;
            dsq_log(DSQ_LOG_ERR, "fs",
                    "%s: a cached write at offset %lld failed (%s): the "
                    "transaction will not commit",
                    df->name, (long long)off, strerror((int)-n));
        }
        pthread_mutex_unlock(&df->mu);
    }
    return n;
}

/* Write bytes into a transaction's pages (partial pages read first). */
dsq_rc dsq__txn_write_bytes(struct dsq_txn *t, const char *buf, size_t size,
                            uint64_t off, struct dsq_err *ep)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    dsq_rc rc = DSQ_OK;
    uint32_t ps = dsq_txn_page_size(t);
    uint8_t *page = malloc(ps);
    if (!page)
        rc = DSQ_ENOMEM;
    size_t done = 0;
    while (rc == DSQ_OK && done < size) {
        uint64_t pos = off + done;
        uint64_t pg64 = pos / ps + 1;
        if (pg64 > 0xfffffffeu) {
            rc = dsq_err_set(&e, DSQ_ERANGE,
                             "offset past the largest "
                             "database");
            break;
        }
        uint32_t pg = (uint32_t)pg64, in = (uint32_t)(pos % ps);
        size_t k = ps - in;
        if (k > size - done)
            k = size - done;
        if (k == ps) {
            rc = dsq_txn_write_page(t, pg, buf + done, &e);
        } else {
            if (pg <= dsq_txn_page_count(t))
                rc = dsq_txn_read_page(t, pg, page, &e);
            else
                memset(page, 0, ps);
            if (rc == DSQ_OK) {
                memcpy(page + in, buf + done, k);
                rc = dsq_txn_write_page(t, pg, page, &e);
            }
        }
        done += k;
    }
    free(page);
    if (rc != DSQ_OK)
        *ep = e;
    return rc;
}

int dsq_dbfile_truncate(struct dsq_dbfile *df, uint64_t size)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    if (df->fs->cfg->read_only)
        return -EROFS;
    dsq__df_lock(df);
    int r = dsq__df_ensure_snap(df);
    if (r == 0 && plain_shrink_refused(df, size))
        r = -EPERM;
    if (r == 0 && !dsq__df_buffered(df) && size == dsq__df_file_size(df)) {
        pthread_mutex_unlock(&df->mu);
        return 0;
    }
    if (r == 0 && dsq_wal_db_io(df)) {
        /* (W2) SQLite truncates the db file at the end of a checkpoint */
        struct dsq_txn *t = NULL;
        r = ckpt_txn(df, &t);
        uint32_t ps = r == 0 ? dsq_txn_page_size(t) : 0;
        uint64_t n = ps ? (size + ps - 1) / ps : 0;
        dsq_rc rc = r ? DSQ_OK
                    : n > 0xfffffffeu
                        ? DSQ_ERANGE
                        : dsq_txn_set_page_count(t, (uint32_t)n, &e);
        if (rc != DSQ_OK)
            r = rc == DSQ_ERANGE ? -EFBIG : -dsq_rc_errno(rc);
        pthread_mutex_unlock(&df->mu);
        return r;
    }
    if (r == 0 && stages(df)) {
        r = stage_begin(df);
        if (r == 0 && ftruncate(df->stage_fd, (off_t)size) != 0)
            r = -errno;
        if (r == 0)
            df->stage_size = size;
        pthread_mutex_unlock(&df->mu);
        return r;
    }
    if (r == 0)
        r = begin_txn(df);
    if (r == 0) {
        uint32_t ps = dsq_txn_page_size(df->txn);
        uint64_t n = (size + ps - 1) / ps;
        dsq_rc rc = n > 0xfffffffeu
                        ? DSQ_ERANGE
                        : dsq_txn_set_page_count(df->txn, (uint32_t)n, &e);
        if (rc != DSQ_OK) {
            dsq__df_log_rc(df, "truncate", &e, rc);
            r = rc == DSQ_ERANGE ? -EFBIG : -dsq_rc_errno(rc);
        }
    }
    pthread_mutex_unlock(&df->mu);
    return r;
}

int dsq_dbfile_fsync(struct dsq_dbfile *df)
{
    struct inval iv = {0};
    int r = 0;
    dsq__df_lock(df);
    if (dsq__df_buffered(df) && df->txn_plain &&
        !dsq_locks_any_write(&df->locks))
        r = dsq__df_commit(df, "fsync", &iv);
    /* (B2) the kernel wrote every dirty page back before this request */
    if (r == 0)
        df->wb_synced = 1;
    dsq__df_unlock_inval(df, &iv);
    return r;
}

/* (B2) Flushes the kernel's cached pages before a commit point unless the
   file was fsynced after its last WRITE; df->mu not held. */
int dsq__df_wb_flush(struct dsq_dbfile *df, const char *why)
{
    if (!df->fs->cfg->writeback)
        return 0;
    dsq__df_lock(df);
    int synced = df->wb_synced;
    pthread_mutex_unlock(&df->mu);
    return synced ? 0 : dsq_wb_flush(df, why);
}

int dsq_dbfile_journal_commit(struct dsq_dbfile *df, const char *why)
{
    struct inval iv = {0};
    int fr = dsq__df_wb_flush(df, why);
    dsq__df_lock(df);
    dsq__df_wait_inval(df);
    int r = 0;
    if (fr) {
        dsq__df_discard(df, &iv, "its pages could not be flushed");
        r = -EIO;
    } else if ((dsq__df_buffered(df) || df->wb_failed) && !df->txn_plain)
        r = dsq__df_commit(df, why, &iv);
    dsq__df_unlock_inval(df, &iv);
    return r;
}

/* ---- locks ---- */

int dsq_dbfile_flush(struct dsq_dbfile *df, uint64_t owner)
{
    struct inval iv = {0};
    int r = 0;
    dsq_log(DSQ_LOG_DEBUG, "lock", "%s: flush owner %" PRIx64, df->name, owner);
    dsq__df_lock(df);
    dsq__df_wait_inval(df);
    int had_write = 0;
    for (size_t i = 0; i < df->locks.n; i++)
        if (df->locks.v[i].owner == owner && df->locks.v[i].type == F_WRLCK)
            had_write = 1;
    dsq_locks_release_owner(&df->locks, owner);
    if (df->refused_owner == owner)
        df->refused_held = 0;
    /* closing any descriptor drops its process's locks (POSIX), also
       one the process opened itself while SQLite writes: with a hot
       journal the transaction stays buffered (its journal unlink commits
       it, or the next opener's rollback restores every page); with none
       (MEMORY, OFF) nothing could undo its pages: they go (L2) */
    if (had_write && dsq__df_buffered(df) && !df->txn_plain &&
        !dsq_locks_any_write(&df->locks) && !dsq__df_journal_hot(df))
        dsq__df_discard(
            df, &iv,
            "closed while holding a write lock, with no hot journal "
            "(the process ended mid-transaction)");
    if (dsq__df_buffered(df) && df->txn_plain &&
        !dsq_locks_any_write(&df->locks))
        r = dsq__df_commit(df, "close", &iv);
    dsq__df_unlock_inval(df, &iv);
    return r;
}

/* ---- WAL ---- */

void dsq_dbfile_wal_end(struct dsq_dbfile *df, int64_t size)
{
    struct inval iv = {0};
    dsq__df_lock(df);
    dsq_wal_end(df, size, &iv);
    dsq__df_unlock_inval(df, &iv);
}

void dsq_dbfile_wal_seen(struct dsq_dbfile *df, uint64_t ino)
{
    dsq__df_lock(df);
    df->wal.wal_ino = ino;
    pthread_mutex_unlock(&df->mu);
}
