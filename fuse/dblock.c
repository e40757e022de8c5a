/*
 * dblock.c - a database file's lock requests (SETLK, GETLK, flock): where
 * SQLite's read and write transactions start and end as the daemon sees
 * them, and the early conflict check that refuses RESERVED or EXCLUSIVE
 * with SQLITE_BUSY instead of failing the commit (docs/locking.md).
 *
 * Layer: FUSE front end, over dbfile.c (dbfile_int.h) and the lock table
 * (locks.c).  The invariants L1, L2 and L5 are stated in dbfile.c.
 * Threads: every function takes df->mu (fs.h) itself; invalidations are
 * sent with it released, under inval_busy.
 */
#include "conflicts.h"
#include "dbfile_int.h"

#include "log.h"
#include "loop.h"
#include "sqlitefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* A RESERVED asked this soon after the head check that started its read
   transaction (an autocommit write, BEGIN IMMEDIATE) uses that check. */
#define HEAD_FRESH_NS 2000000u
#define JOURNAL_MAX_RECORDS 50000000u

static const uint8_t journal_magic[8] = {0xd9, 0xd5, 0x05, 0xf9,
                                         0x20, 0xa1, 0x63, 0xd7};

static int u32cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * The page numbers a rollback journal records (SQLite's format: headers
 * of one sector, magic d9d505f920a163d7, nRec, nonce, initial size,
 * sector size, page size; records of pgno + page + checksum).  -1 if
 * there is no journal or it cannot be parsed.
 */
static int journal_pages(const char *path, uint32_t **out, size_t *nout)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat sb;
    uint32_t *v = NULL;
    size_t n = 0, cap = 0;
    int ret = -1;
    if (fstat(fd, &sb) != 0)
        goto out;
    uint64_t size = (uint64_t)sb.st_size, pos = 0;
    while (pos + 28 <= size) {
        uint8_t h[28];
        static const uint8_t zero[8];
        /* before its first sync SQLite leaves the magic zeroed */
        if (pread(fd, h, 28, (off_t)pos) != 28 ||
            (memcmp(h, journal_magic, 8) != 0 &&
             (pos != 0 || memcmp(h, zero, 8) != 0)))
            break;
        uint32_t nrec = dsq_be32(h + 8), sector = dsq_be32(h + 20),
                 ps = dsq_be32(h + 24);
        if (sector < 32 || sector > 65536 || ps < 512 || ps > 65536 ||
            (ps & (ps - 1)))
            goto out;
        uint64_t rec = (uint64_t)ps + 8, p = pos + sector;
        uint64_t want = (nrec == 0 || nrec == 0xffffffffu) ? UINT64_MAX : nrec;
        uint64_t k = 0;
        for (; k < want && p + rec <= size; k++, p += rec) {
            uint8_t pg[4];
            if (pread(fd, pg, 4, (off_t)p) != 4)
                goto out;
            if (n == cap) {
                if (cap >= JOURNAL_MAX_RECORDS)
                    goto out;
                size_t nc = cap ? cap * 2 : 64;
                uint32_t *nv = realloc(v, nc * sizeof(*nv));
                if (!nv)
                    goto out;
                v = nv;
                cap = nc;
            }
            v[n++] = dsq_be32(pg);
        }
        if (want == UINT64_MAX || k < want)
            break;
        pos = (p + sector - 1) / sector * sector; /* next header */
    }
    if (n > 1) {
        qsort(v, n, sizeof(*v), u32cmp);
        size_t k = 1;
        for (size_t i = 1; i < n; i++)
            if (v[i] != v[k - 1])
                v[k++] = v[i];
        n = k;
    }
    *out = v;
    *nout = n;
    v = NULL;
    ret = 0;
out:
    free(v);
    close(fd);
    return ret;
}

static int ranges_contain(const struct dsq_page_range *r, size_t n, uint32_t p)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p < r[mid].first)
            hi = mid;
        else if (p >= r[mid].first + r[mid].count)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/*
 * Early conflict: at EXCLUSIVE, 1 if what was committed since the
 * snapshot meets the pages the journal names (or, in serializable
 * isolation or with no journal, if anything was committed at all).
 * fresh: the head known is recent enough, do not ask the store.
 */
static int early_conflict(struct dsq_dbfile *df, int any_commit, int fresh)
{
    int fr = fresh ? 0 : dsq__df_check_head(df, 1);
    if (fr < 0)
        return 0; /* the commit will tell */
    if (fr > 0)
        return 1; /* deleted or created again: BUSY, then a new snapshot */
    uint64_t sv = dsq_snap_version(df->snap);
    if (df->head <= sv)
        return 0;
    if (any_commit || df->fs->cfg->isolation == DSQ_ISOLATION_SERIALIZABLE)
        return 1;
    struct dsq_changes c;
    struct dsq_err e;
    dsq_err_clear(&e);
    if (df->head - sv > DSQ_INVAL_MAX_VERSIONS)
        return 1;
    if (dsq_db_changes(df->db, sv, df->head, &c, &e) != DSQ_OK)
        return 0;
    int conflict = c.page1_changed;
    uint32_t *pg = NULL;
    size_t n = 0;
    if (!conflict) {
        if (journal_pages(df->journal_path, &pg, &n) != 0) {
            conflict = 1; /* no journal: MEMORY or OFF, be conservative */
        } else {
            for (size_t i = 0; i < n && !conflict; i++)
                if (pg[i] != 1 && ranges_contain(c.ranges, c.n_ranges, pg[i]))
                    conflict = 1;
        }
    }
    if (conflict)
        dsq_conflicts_lock_refused(df, sv, df->head, pg, n);
    dsq_log(DSQ_LOG_DEBUG, "lock",
            "%s: early check: snapshot %" PRIu64 ", head %" PRIu64
            ", %zu changed range(s), page 1 %s, %zu journaled page(s): %s",
            df->name, sv, df->head, c.n_ranges,
            c.page1_changed ? "changed" : "counters only", n,
            conflict ? "conflict" : "no conflict");
    free(pg);
    dsq_changes_cleanup(&c);
    return conflict;
}

/* ---- lock requests ---- */

int dsq_dbfile_getlk(struct dsq_dbfile *df, uint64_t owner, struct flock *lk)
{
    uint64_t start = (uint64_t)lk->l_start;
    uint64_t end =
        lk->l_len == 0 ? UINT64_MAX : start + (uint64_t)lk->l_len - 1;
    dsq__df_lock(df);
    const struct dsq_lock *c =
        dsq_locks_conflict(&df->locks, owner, start, end, lk->l_type);
    if (c) {
        lk->l_type = (short)c->type;
        lk->l_start = (off_t)c->start;
        lk->l_len = c->end == UINT64_MAX ? 0 : (off_t)(c->end - c->start + 1);
        lk->l_pid = c->pid;
    } else {
        lk->l_type = F_UNLCK;
    }
    pthread_mutex_unlock(&df->mu);
    return 0;
}

int dsq__df_lock_wait(struct dsq_dbfile *df, const struct dsq_locktab *t,
                      uint64_t owner, uint64_t start, uint64_t end, int type,
                      int sleep, fuse_req_t req,
                      void (*each_turn)(struct dsq_dbfile *df))
{
    for (;;) {
        if (each_turn)
            each_turn(df);
        if (type == F_UNLCK || !dsq_locks_conflict(t, owner, start, end, type))
            return 0;
        if (!sleep || (req && fuse_req_interrupted(req)) ||
            (df->fs->se && fuse_session_exited(df->fs->se))) {
            pthread_mutex_unlock(&df->mu);
            return sleep ? -EINTR : -EAGAIN;
        }
        pthread_mutex_unlock(&df->mu);
        dsq_loop_may_block();
        usleep(5000);
        dsq__df_lock(df);
    }
}

int dsq_dbfile_setlk(struct dsq_dbfile *df, uint64_t owner,
                     const struct flock *lk, int sleep, fuse_req_t req)
{
    struct inval iv = {0};
    uint64_t start = (uint64_t)lk->l_start;
    uint64_t end =
        lk->l_len == 0 ? UINT64_MAX : start + (uint64_t)lk->l_len - 1;
    int type = lk->l_type;
    int r = 0;
    dsq_log(DSQ_LOG_DEBUG, "lock",
            "%s: setlk owner %" PRIx64 " pid %d type %d start %" PRIx64
            " len %lld sleep %d",
            df->name, owner, (int)lk->l_pid, type, start, (long long)lk->l_len,
            sleep);
    if (df->fs->cfg->writeback && type != F_WRLCK) {
        /* (B2) the release of EXCLUSIVE may be a commit point (journal
           MEMORY or OFF): its pages first */
        dsq__df_lock(df);
        int excl =
            dsq_locks_type_at(&df->locks, owner, DSQ_SHARED_FIRST) == F_WRLCK &&
            start <= DSQ_SHARED_FIRST && DSQ_SHARED_FIRST <= end;
        pthread_mutex_unlock(&df->mu);
        if (excl && dsq__df_wb_flush(df, "the release of EXCLUSIVE") != 0) {
            dsq__df_lock(df);
            dsq__df_discard(df, &iv, "its pages could not be flushed");
            dsq__df_unlock_inval(df, &iv);
            return -EIO;
        }
    }
    dsq__df_lock(df);
    r = dsq__df_lock_wait(df, &df->locks, owner, start, end, type, sleep, req,
                          dsq__df_wait_inval);
    if (r)
        return r;
    int had_excl =
        dsq_locks_type_at(&df->locks, owner, DSQ_SHARED_FIRST) == F_WRLCK;
    if (type != F_UNLCK && !dsq_locks_any(&df->locks, 0)) {
        /* a read transaction starts: pin the newest version (L1) */
        r = dsq__df_refresh(df, &iv, 0);
        df->st.read_txns++;
        if (r)
            goto out;
    }
    if (type == F_WRLCK && df->snap) {
        int reserved = start <= DSQ_RESERVED_BYTE && DSQ_RESERVED_BYTE <= end;
        int exclusive = start <= DSQ_SHARED_FIRST && DSQ_SHARED_FIRST <= end;
        uint64_t sv = dsq_snap_version(df->snap);
        /* SQLite rolls a hot journal back under EXCLUSIVE taken straight
           from SHARED: never refuse that one */
        int rollback =
            exclusive &&
            dsq_locks_type_at(&df->locks, owner, DSQ_RESERVED_BYTE) != F_WRLCK;
        if ((exclusive && !had_excl && !rollback) ||
            (reserved &&
             df->fs->cfg->isolation == DSQ_ISOLATION_SERIALIZABLE)) {
            if (df->refused && df->refused_version == sv) {
                df->st.busy_refusals++;
                /* (L5) SQLite's pager retries a refused EXCLUSIVE through
                   the busy handler until busy_timeout, and nothing can
                   change while the owner keeps its RESERVED (the snapshot
                   cannot move): its retries get EDEADLK, which SQLite
                   does not retry (SQLITE_IOERR_LOCK), so the application
                   learns the conflict at its first retry, not 30 s on. */
                r = exclusive && df->refused_held && df->refused_owner == owner
                        ? -EDEADLK
                        : -EAGAIN;
                if (exclusive) {
                    df->refused_held = 1;
                    df->refused_owner = owner;
                }
                goto out;
            }
            int any = !exclusive; /* RESERVED: serializable, any commit */
            /* a RESERVED right after its read transaction's own head check
               (autocommit, BEGIN IMMEDIATE) costs no second store call */
            int fresh = !exclusive &&
                        dsq__mono_ns() - df->head_checked_ns < HEAD_FRESH_NS;
            if (early_conflict(df, any, fresh)) {
                df->refused = 1;
                df->refused_version = sv;
                df->refused_held = exclusive;
                df->refused_owner = owner;
                df->st.busy_refusals++;
                dsq_log(DSQ_LOG_INFO, "fs",
                        "%s: %s lock refused (EAGAIN -> SQLITE_BUSY): "
                        "version %" PRIu64 " committed since snapshot %" PRIu64
                        " meets this transaction",
                        df->name, exclusive ? "EXCLUSIVE" : "RESERVED",
                        df->head, sv);
                r = -EAGAIN;
                goto out;
            }
        }
    }
    int had_reserved =
        dsq_locks_type_at(&df->locks, owner, DSQ_RESERVED_BYTE) == F_WRLCK;
    r = dsq_locks_apply(&df->locks, owner, start, end, type, lk->l_pid);
    if (r)
        goto out;
    if (type == F_WRLCK)
        df->wb_synced = 0;
    if (df->refused_held && df->refused_owner == owner &&
        dsq_locks_type_at(&df->locks, owner, DSQ_RESERVED_BYTE) != F_WRLCK)
        df->refused_held = 0; /* the refused attempt is over (L5) */
    if (had_excl && !had_reserved && !dsq__df_buffered(df) &&
        dsq_locks_type_at(&df->locks, owner, DSQ_SHARED_FIRST) != F_WRLCK) {
        /* a hot-journal rollback just ended (EXCLUSIVE straight from
           SHARED): SQLite re-reads the change counter before using its
           cache, so the snapshot may move now if nobody else holds a
           lock, and this read transaction sees what others committed */
        dsq__df_refresh(df, &iv, owner);
    }
    if (had_excl &&
        dsq_locks_type_at(&df->locks, owner, DSQ_SHARED_FIRST) != F_WRLCK &&
        dsq__df_buffered(df) && !df->txn_plain) {
        /* EXCLUSIVE released with writes dsq__df_buffered: MEMORY or OFF mode
         */
        if (dsq__df_journal_hot(df))
            dsq__df_discard(df, &iv, "EXCLUSIVE released with a hot journal");
        else
            r = dsq__df_commit(df, "the release of EXCLUSIVE", &iv);
    }
out:
    dsq__df_unlock_inval(df, &iv);
    if (r == 0 && type == F_WRLCK)
        dsq_wb_open(df); /* (B2) */
    return r;
}

int dsq_dbfile_flock(struct dsq_dbfile *df, uint64_t owner, int op,
                     fuse_req_t req)
{
    int type = (op & LOCK_UN) ? F_UNLCK : (op & LOCK_EX) ? F_WRLCK : F_RDLCK;
    int nb = (op & LOCK_NB) != 0;
    dsq__df_lock(df);
    /* flock(2)'s EWOULDBLOCK is EAGAIN */
    int r =
        dsq__df_lock_wait(df, &df->flocks, owner, 0, 0, type, !nb, req, NULL);
    if (r)
        return r;
    r = dsq_locks_apply(&df->flocks, owner, 0, 0, type, 0);
    pthread_mutex_unlock(&df->mu);
    return r;
}

void dsq_dbfile_flock_release(struct dsq_dbfile *df, uint64_t owner)
{
    dsq__df_lock(df);
    dsq_locks_release_owner(&df->flocks, owner);
    pthread_mutex_unlock(&df->mu);
}
