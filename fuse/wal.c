/*
 * wal.c - WAL mode of a database on the mount (docs/wal.md).
 *
 * Layer: FUSE front end, over the engine (db.h) and SQLite's formats
 * (walfmt.h).  Sections: commit points (frames written to NAME-wal),
 * the end of a WAL cycle, bringing other versions into the local WAL
 * (inject, reset), the -shm locks and their hooks.
 *
 * Invariants (docs/wal.md cites them as W1..W7):
 *  (W1) A transaction is published at the write that completes its
 *       commit frame, before that write is acknowledged; if the publish
 *       fails the commit frame is zeroed before the write fails, so no
 *       WAL recovery can ever replay it, and every later write into
 *       that frame fails until a frame is written over it from its
 *       header (the kernel's retry of a short write never commits).
 *  (W2) During a WAL cycle, writes to the database file are SQLite's
 *       checkpoints of frames already published: they go to a local
 *       checkpoint buffer over the db file's version and never commit.
 *  (W3) The local WAL holds, from frame 1 to the last commit frame mx,
 *       exactly the versions base_version .. view_version (each commit
 *       frame the version it made), unless view_exact is 0: a local
 *       commit was rebased over others' versions, whose pages the WAL
 *       lacks until they are injected.
 *  (W4) A read transaction starts (a READ lock on the -shm) only on an
 *       exact view: a pending injection is made first, or the lock waits.
 *  (W5) Other hosts' versions enter the local WAL as frames appended by
 *       the daemon holding the WAL write lock (no local writer runs):
 *       readers in progress keep their snapshot, new ones see them.
 *  (W6) The db file's version moves only while no WAL read mark, write
 *       or checkpoint lock is held (a reset), or to the version the WAL
 *       had when SQLite restarts or ends it after a full checkpoint
 *       (the bytes served do not change then).
 *  (W7) The first process to open the -shm (nobody holds its locks)
 *       starts a new cycle: the -wal left by any earlier one is emptied
 *       (all of it is published already), so SQLite's recovery never
 *       replays frames over a newer db file.
 * Threads: everything runs with df->mu held (fs.h), except the store
 * round trips of a commit (publish: the writer's WAL write lock keeps the
 * state still meanwhile) and the daemon's own reads and writes of the
 * -shm and -wal (io_begin/io_end: io_busy keeps it still).
 */
#include "conflicts.h"
#include "dbfile_int.h"

#include "env.h"
#include "log.h"
#include "loop.h"
#include "selfio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_BYTE(i) ((uint64_t)DSQ_SHM_LOCK_BASE + (i))
#define INJECT_MAX_PAGES 4096u   /* more: reset instead (memory bound) */
#define INJECT_MAX_VERSIONS 256u /* more, and nobody reading: reset */
#define WAL_RESET_FRAMES 4096u   /* a WAL this long is reset when idle */

/* ---- life cycle ---- */

int dsq_wal_init(struct dsq_dbfile *df)
{
    struct dsq_wal *w = &df->wal;
    memset(w, 0, sizeof(*w));
    w->view_exact = 1;
    atomic_init(&w->mfd, NULL);
    w->wal_path = dsq_fs_side_path(df->fs, df->name, "-wal");
    size_t n = strlen(df->fs->mountpoint) + strlen(df->name) + 8;
    w->shm_mpath = malloc(n);
    if (!w->wal_path || !w->shm_mpath)
        return -ENOMEM;
    snprintf(w->shm_mpath, n, "%s/%s-shm", df->fs->mountpoint, df->name);
    return 0;
}

void dsq_wal_cleanup(struct dsq_dbfile *df)
{
    struct dsq_wal *w = &df->wal;
    struct dsq_selfio *m = atomic_exchange(&w->mfd, NULL);
    if (m) {
        dsq_loop_may_block();
        dsq_selfio_close(m);
    }
    dsq_txn_free(w->ckpt);
    dsq_locks_free(&w->shm);
    free(w->commits);
    free(w->wal_path);
    free(w->shm_mpath);
    memset(w, 0, sizeof(*w));
}

void dsq_wal_replaced(struct dsq_dbfile *df)
{
    struct dsq_wal *w = &df->wal;
    w->replaced = 1;
    w->view_version = 0;
    w->base_version = 0;
    w->n_commits = 0;
    w->mx = 0;
    w->view_exact = 1;
}

int dsq_wal_db_io(struct dsq_dbfile *df)
{
    return df->wal.active;
}

/* ---- the versions of this cycle ---- */

/* The version the frames up to commit frame `frame` make (0: the db
   file's); UINT64_MAX if not a version (unknown, or a rebased mix). */
static uint64_t version_at(const struct dsq_wal *w, uint32_t frame)
{
    if (frame == 0)
        return w->base_version;
    for (size_t i = w->n_commits; i-- > 0;)
        if (w->commits[i].frame == frame)
            return w->commits[i].version;
    return UINT64_MAX;
}

static int add_commit(struct dsq_wal *w, uint32_t frame, uint64_t version)
{
    while (w->n_commits && w->commits[w->n_commits - 1].frame >= frame)
        w->n_commits--;
    if (w->n_commits == w->cap_commits) {
        size_t nc = w->cap_commits ? w->cap_commits * 2 : 64;
        struct dsq_wal_commit *nv = realloc(w->commits, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        w->commits = nv;
        w->cap_commits = nc;
    }
    w->commits[w->n_commits++] = (struct dsq_wal_commit){frame, version};
    return 0;
}

/* Frames past `frame` are gone from the local WAL (a writer overwrote
   them, or SQLite never indexed them). */
static void forget_after(struct dsq_wal *w, uint32_t frame)
{
    dsq_log(DSQ_LOG_DEBUG, "wal", "forget frames after %u (model mx %u)", frame,
            w->mx);
    while (w->n_commits && w->commits[w->n_commits - 1].frame > frame)
        w->n_commits--;
    w->mx = frame;
    uint64_t v = version_at(w, frame);
    if (v != UINT64_MAX) {
        w->view_version = v;
        w->view_exact = 1;
    }
}

/*
 * A new cycle over the db file's current version: no frames.  The
 * checkpoint buffer is dropped only by the callers that move or fold the
 * db file.
 */
static void cycle_begin(struct dsq_dbfile *df)
{
    struct dsq_wal *w = &df->wal;
    w->have_hdr = 0;
    w->mx = 0;
    w->failed = 0;
    w->n_commits = 0;
    w->base_version = df->snap ? dsq_snap_version(df->snap) : 0;
    w->view_version = w->base_version;
    w->view_exact = 1;
}

/*
 * (W6) The db file becomes version v (>= what it shows): the checkpoint
 * buffer is dropped, the kernel told what changed.
 */
static int move_db(struct dsq_dbfile *df, uint64_t v, struct inval *iv)
{
    uint64_t cur = df->snap ? dsq_snap_version(df->snap) : 0;
    struct dsq_wal *w = &df->wal;
    if (v != cur || !df->snap) {
        struct dsq_err e;
        dsq_err_clear(&e);
        struct dsq_snap *ns = NULL;
        dsq_rc rc = dsq_db_snapshot(df->db, v, &ns, &e);
        if (rc != DSQ_OK) {
            dsq__df_log_rc(df, "reading a version for the db file", &e, rc);
            return -dsq_rc_errno(rc);
        }
        uint32_t ps = dsq_snap_page_size(ns);
        if (df->snap && dsq_snap_page_size(df->snap) == ps && ps)
            dsq__df_inval_between(df, cur, v, ps, iv);
        else
            dsq__inval_whole(iv);
        dsq_snap_release(df->snap);
        df->snap = ns;
        df->st.snapshot_moves++;
    }
    /* the file keeps its size: SQLite rounds truncations up to its chunk
       size, so the file may be longer than the database */
    uint32_t keep = w->ckpt ? dsq_txn_page_count(w->ckpt) : 0;
    dsq_txn_free(w->ckpt);
    w->ckpt = NULL;
    if (keep > dsq_snap_page_count(df->snap)) {
        struct dsq_err e;
        dsq_err_clear(&e);
        if (dsq_txn_begin(df->snap, 0, &w->ckpt, &e) != DSQ_OK ||
            dsq_txn_set_page_count(w->ckpt, keep, &e) != DSQ_OK) {
            dsq_txn_free(w->ckpt);
            w->ckpt = NULL;
        }
    }
    if (v > df->head)
        df->head = v;
    return 0;
}

/* ---- commit points: frames written to NAME-wal ---- */

/* The transaction's page count for a database of n pages of ps bytes. */
static uint32_t bytes_to_pages(struct dsq_txn *t, uint32_t n, uint32_t ps)
{
    uint32_t tps = dsq_txn_page_size(t);
    if (!tps || tps == ps)
        return n;
    uint64_t bytes = (uint64_t)n * ps;
    return (uint32_t)((bytes + tps - 1) / tps);
}

static ssize_t full_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k =
            pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        done += (size_t)k;
    }
    return (ssize_t)n;
}

/*
 * 1 if a SQLite writer is behind the frames written: a holder of the WAL
 * write lock on the -shm, or, when nobody uses the -shm (a wal-index of
 * its own: locking_mode=EXCLUSIVE, or a VFS with its own shared memory),
 * a connection holding the database file.  Frames written otherwise (a
 * copy of a -wal file) are data, never a commit.
 */
static int writer_present(struct dsq_dbfile *df)
{
    struct dsq_wal *w = &df->wal;
    if (w->shm.n)
        return dsq_locks_conflict(&w->shm, 0, LOCK_BYTE(DSQ_SHM_WRITE),
                                  LOCK_BYTE(DSQ_SHM_WRITE), F_WRLCK) != NULL;
    return dsq_locks_any(&df->locks, 0);
}

/*
 * (W1) Publish frames mx+1 .. frame (a commit frame) of the local -wal
 * at fd as one version.  0 or -errno.
 */
static int publish(struct dsq_dbfile *df, int fd, uint32_t frame)
{
    struct dsq_wal *w = &df->wal;
    uint32_t ps = w->hdr.page_size;
    uint32_t db_size = 0;
    uint64_t base = version_at(w, w->mx);
    if (base == UINT64_MAX || !w->view_exact) {
        dsq_log(DSQ_LOG_ERR, "wal",
                "%s: commit frame %u refused (EIO): the local WAL does not "
                "hold a published version at frame %u",
                df->name, frame, w->mx);
        return -EIO;
    }
    struct dsq_err e;
    dsq_err_clear(&e);
    struct dsq_snap *s = NULL;
    struct dsq_txn *t = NULL;
    uint8_t *buf = malloc(DSQ_WAL_FRAME_HDR + (size_t)ps);
    dsq_rc rc = buf ? dsq_db_snapshot(df->db, base, &s, &e) : DSQ_ENOMEM;
    unsigned flags = w->shm.n ? 0 : DSQ_TXN_NO_REBASE;
    if (rc == DSQ_OK)
        rc = dsq_txn_begin(s, flags, &t, &e);
    if (rc == DSQ_OK && dsq_snap_page_count(s) == 0)
        rc = dsq_txn_set_page_size(t, ps, &e);
    for (uint32_t f = w->mx + 1; rc == DSQ_OK && f <= frame; f++) {
        ssize_t k = dsq__full_pread(fd, buf, DSQ_WAL_FRAME_HDR + (size_t)ps,
                                    dsq_wal_frame_off(f, ps));
        if (k != (ssize_t)(DSQ_WAL_FRAME_HDR + ps)) {
            rc = dsq_err_set(&e, DSQ_EIO, "frame %u of the local WAL: %s", f,
                             k < 0 ? strerror((int)-k) : "short read");
            break;
        }
        struct dsq_walframe fr;
        dsq_wal_frame_decode(buf, &fr);
        if (fr.pgno == 0 || fr.pgno > 0xfffffffeu ||
            (memcmp(fr.salt, w->hdr.salt, 8) != 0 &&
             memcmp(fr.salt, "\0\0\0\0\0\0\0\0", 8) != 0)) {
            rc = dsq_err_set(&e, DSQ_EIO,
                             "frame %u of the local WAL is not of this "
                             "WAL (salt or page number)",
                             f);
            break;
        }
        /* pages of the WAL's size at their byte offset: the store's page
           size is the file's chunking, SQLite's may differ (VACUUM with
           a new page_size) */
        rc = dsq__txn_write_bytes(t, (const char *)buf + DSQ_WAL_FRAME_HDR, ps,
                                  (uint64_t)(fr.pgno - 1) * ps, &e);
        db_size = fr.db_size;
    }
    if (rc == DSQ_OK)
        rc = dsq_txn_set_page_count(t, bytes_to_pages(t, db_size, ps), &e);
    /* pages written back unchanged are not written (padding frames) */
    if (rc == DSQ_OK)
        rc = dsq_txn_drop_unchanged(t, NULL, &e);
    free(buf);
    if (rc != DSQ_OK) {
        dsq__df_log_rc(df, "preparing a WAL commit", &e, rc);
        dsq_txn_free(t);
        dsq_snap_release(s);
        df->st.commit_failures++;
        return -dsq_rc_errno(rc);
    }
    struct dsq_commit_info ci;
    uint64_t t0 = dsq__mono_ns();
    /* the store round trips run without df->mu: readers start and end
       their read transactions meanwhile (WAL's readers never wait for
       the writer).  Nothing else changes the WAL state while this
       writer holds the WAL write lock: injections and resets wait for
       it, checkpoints only copy published frames into the db file. */
    pthread_mutex_unlock(&df->mu);
    uint64_t from = dsq_snap_version(s);
    rc = dsq_txn_commit(t, &ci, &e);
    dsq__df_lock(df);
    dsq_txn_free(t);
    dsq_snap_release(s);
    if (rc != DSQ_OK) {
        df->st.commit_failures++;
        dsq_log(rc == DSQ_ECONFLICT ? DSQ_LOG_NOTICE : DSQ_LOG_ERR, "wal",
                "%s: WAL commit (frames %u..%u) failed, the transaction is "
                "not committed: %s",
                df->name, w->mx + 1, frame, dsq_err_text(&e, rc));
        if (rc == DSQ_ECONFLICT)
            dsq_conflicts_commit_refused(df, from);
        return rc == DSQ_ECONFLICT ? -EIO : -dsq_rc_errno(rc);
    }
    df->st.local_commits++;
    w->commits_published++;
    dsq__df_now_exists(df);
    if (ci.version > df->head)
        df->head = ci.version;
    int exact = ci.noop || (ci.version == base + 1 && ci.rebases == 0);
    add_commit(w, frame, exact ? (ci.noop ? base : ci.version) : UINT64_MAX);
    w->mx = frame;
    if (exact) {
        w->view_version = ci.noop ? base : ci.version;
    } else {
        w->view_exact = 0; /* (W3) others' pages come in at the unlock */
    }
    dsq_log(DSQ_LOG_INFO, "wal",
            "%s: %s version %" PRIu64 " at WAL frame %u (on version %" PRIu64
            ", %u rebase(s), %.1f ms)",
            df->name, ci.noop ? "nothing changed in" : "committed",
            ci.noop ? base : ci.version, frame, base, ci.rebases,
            (double)(dsq__mono_ns() - t0) / 1e6);
    return 0;
}

static void wait_io(struct dsq_dbfile *df);
static void io_begin(struct dsq_dbfile *df);
static void io_end(struct dsq_dbfile *df);

/* The frame the local -shm says SQLite indexed last (a writer's base), or
   -1 if it cannot be read.  df->mu held (released meanwhile). */
static int64_t shm_mx_frame(struct dsq_dbfile *df)
{
    struct dsq_selfio *m = atomic_load(&df->wal.mfd);
    if (!df->wal.shm.n || !m)
        return -1; /* no -shm in use: locking_mode=EXCLUSIVE */
    uint8_t info[DSQ_SHM_INFO_SIZE];
    struct dsq_shmhdr h;
    int64_t mx = -1;
    io_begin(df);
    if (dsq_selfio_pread(m, info, sizeof(info), 0) == (ssize_t)sizeof(info) &&
        dsq_shm_hdr_read(info, &h, NULL) == 0)
        mx = h.mx_frame;
    io_end(df);
    return mx;
}

/* 1 if frame n repeats commit frame n - 1 (header fields and page). */
static int is_padding(struct dsq_dbfile *df, int fd, uint32_t n)
{
    struct dsq_wal *w = &df->wal;
    if (n < 2 || version_at(w, n - 1) == UINT64_MAX)
        return 0;
    size_t fsz = DSQ_WAL_FRAME_HDR + (size_t)w->hdr.page_size;
    uint8_t *a = malloc(fsz), *b = malloc(fsz);
    int same =
        a && b &&
        dsq__full_pread(fd, a, fsz,
                        dsq_wal_frame_off(n - 1, w->hdr.page_size)) ==
            (ssize_t)fsz &&
        dsq__full_pread(fd, b, fsz, dsq_wal_frame_off(n, w->hdr.page_size)) ==
            (ssize_t)fsz &&
        memcmp(a, b, 8) == 0 &&
        memcmp(a + DSQ_WAL_FRAME_HDR, b + DSQ_WAL_FRAME_HDR,
               w->hdr.page_size) == 0;
    free(a);
    free(b);
    return same;
}

/*
 * (W1) The kernel hands the daemon SQLite's writes cut at page-cache
 * boundaries, so a frame is read back from the -wal, never taken from
 * one write: the write that ends at the last byte of a commit frame is
 * the commit point.  It is published before this write is acknowledged;
 * if that fails, the frame's header is zeroed (no recovery can replay
 * it) and the write fails.
 */
ssize_t dsq_wal_write(struct dsq_dbfile *df, int fd, const char *buf,
                      size_t size, off_t off, uint64_t ino)
{
    struct dsq_wal *w = &df->wal;
    uint64_t o = (uint64_t)off, end = o + size;
    dsq__df_lock(df);
    wait_io(df);
    w->wal_ino = ino;
    ssize_t r = 0;
    if (w->failed && w->have_hdr) {
        /* (W1) the kernel cuts a write at page boundaries and, when a
           later piece fails, returns a short count: SQLite then writes the
           rest again.  The frame whose publish failed stays failed until
           a frame is written over it from its header on. */
        uint64_t fo = dsq_wal_frame_off(w->failed, w->hdr.page_size);
        uint64_t fe = fo + DSQ_WAL_FRAME_HDR + w->hdr.page_size;
        if (o == fo || o < DSQ_WAL_HDR_SIZE) {
            w->failed = 0;
        } else if (o < fe && end > fo) {
            r = -EIO;
            goto out;
        }
    }
    r = full_pwrite(fd, buf, size, o);
    if (r < 0)
        goto out;
    if (o < DSQ_WAL_HDR_SIZE && end >= DSQ_WAL_HDR_SIZE) {
        /* a new WAL header: a new cycle */
        uint8_t hb[DSQ_WAL_HDR_SIZE];
        struct dsq_walhdr h;
        if (dsq__full_pread(fd, hb, sizeof(hb), 0) == (ssize_t)sizeof(hb) &&
            dsq_wal_hdr_decode(hb, &h) == 0) {
            struct inval iv = {0};
            /* (W6) SQLite restarts a WAL it checkpointed fully: the db
               file then is the version the WAL had */
            if (w->view_exact && !w->replaced &&
                w->view_version != w->base_version)
                move_db(df, w->view_version, &iv);
            free(iv.r);
            cycle_begin(df);
            w->active = 1;
            w->have_hdr = 1;
            w->hdr = h;
        } else {
            char hex[2 * DSQ_WAL_HDR_SIZE + 1];
            for (int i = 0; i < DSQ_WAL_HDR_SIZE; i++)
                snprintf(hex + 2 * i, 3, "%02x", hb[i]);
            w->have_hdr = 0;
            dsq_log(DSQ_LOG_WARNING, "wal",
                    "%s: a WAL header that is not valid was written (%s); "
                    "its frames will not commit",
                    df->name, hex);
        }
    }
    if (!w->have_hdr || end <= DSQ_WAL_HDR_SIZE)
        goto out;
    uint32_t ps = w->hdr.page_size;
    uint64_t fsz = DSQ_WAL_FRAME_HDR + (uint64_t)ps;
    if ((end - DSQ_WAL_HDR_SIZE) % fsz != 0)
        goto out; /* not the end of a frame */
    uint32_t n = (uint32_t)((end - DSQ_WAL_HDR_SIZE) / fsz);
    uint8_t fh[DSQ_WAL_FRAME_HDR];
    struct dsq_walframe f;
    if (dsq__full_pread(fd, fh, sizeof(fh), dsq_wal_frame_off(n, ps)) !=
        (ssize_t)sizeof(fh))
        goto out;
    dsq_wal_frame_decode(fh, &f);
    if (f.db_size == 0)
        goto out;
    if (memcmp(f.salt, w->hdr.salt, 8) != 0 &&
        memcmp(f.salt, "\0\0\0\0\0\0\0\0", 8) != 0)
        goto out; /* not of this WAL: never a commit */
    /* a commit frame: the transaction is frames mx+1 .. n (mx was set
       from the -shm when this writer took the write lock, W3) */
    if (n <= w->mx)
        forget_after(w, n - 1);
    dsq_log(DSQ_LOG_DEBUG, "wal",
            "%s: commit frame %u (db size %u), model mx %u, view %" PRIu64 "%s",
            df->name, n, f.db_size, w->mx, w->view_version,
            w->view_exact ? "" : " (inexact)");
    if (n == w->mx + 1 && is_padding(df, fd, n)) {
        /* SQLite pads a commit to a sector boundary with copies of its
           commit frame: no new transaction */
        add_commit(w, n, version_at(w, w->mx));
        w->mx = n;
        goto out;
    }
    if (!writer_present(df)) {
        dsq_log(DSQ_LOG_DEBUG, "wal",
                "%s: frame %u written by no SQLite writer: not a commit",
                df->name, n);
        goto out;
    }
    r = publish(df, fd, n);
    if (r < 0) {
        /* never replayable: the frame is zeroed (the kernel keeps no copy
           of the page of a write that fails; the header's may be cached,
           but a frame checks out only with its page) */
        uint8_t *zero = calloc(1, fsz);
        if (zero) {
            full_pwrite(fd, zero, fsz, dsq_wal_frame_off(n, ps));
            free(zero);
        }
        w->failed = n;
    }
out:
    pthread_mutex_unlock(&df->mu);
    return r < 0 ? r : (ssize_t)size;
}

void dsq_wal_end(struct dsq_dbfile *df, int64_t size, struct inval *iv)
{
    struct dsq_wal *w = &df->wal;
    wait_io(df);
    if (size > 0)
        return;
    /* (W6) SQLite empties or deletes the WAL after a full checkpoint */
    if (w->view_exact && w->active && !w->replaced && w->view_version)
        move_db(df, w->view_version, iv);
    cycle_begin(df);
    if (size < 0 && !w->shm.n)
        w->active = 0;
}

/* ---- the daemon's own I/O of the -wal and -shm ---- */

/*
 * The daemon reads and writes the -shm through the mount (SQLite maps it:
 * only the kernel's page cache has its current bytes) and drops the
 * kernel's copy of the -wal after writing its backing file.  Each of
 * those may wait for requests other threads answer, which may need
 * df->mu (or fs->mu, taken before a df->mu): so that I/O runs with
 * df->mu released, while io_busy holds back everything else that looks
 * at or changes the WAL state.  Nobody holds the WAL write lock then
 * (the callers make sure), so no frame is written meanwhile.
 */
static void io_begin(struct dsq_dbfile *df)
{
    df->wal.io_busy = 1;
    pthread_mutex_unlock(&df->mu);
    dsq_loop_may_block();
}

static void io_end(struct dsq_dbfile *df)
{
    dsq__df_lock(df);
    df->wal.io_busy = 0;
    pthread_cond_broadcast(&df->cv);
}

static void wait_io(struct dsq_dbfile *df)
{
    if (df->wal.io_busy)
        dsq_loop_may_block();
    while (df->wal.io_busy)
        pthread_cond_wait(&df->cv, &df->mu);
}

/* The -shm opened through the mount, kept while SQLite uses it.  Called
   with no lock held (the open is a request of our own). */
static void ensure_mfd(struct dsq_dbfile *df)
{
    struct dsq_selfio *cur = atomic_load(&df->wal.mfd);
    if (cur && dsq_selfio_alive(cur))
        return;
    dsq_loop_may_block();
    if (cur) {
        /* its child is gone (killed on its own): a new one.  It is taken
           out with df->mu held and no I/O running, so no thread is
           using it */
        dsq__df_lock(df);
        wait_io(df);
        int mine = atomic_compare_exchange_strong(&df->wal.mfd, &cur, NULL);
        pthread_mutex_unlock(&df->mu);
        if (mine) {
            dsq_log(DSQ_LOG_WARNING, "wal",
                    "%s: the -shm helper process ended; starting another",
                    df->name);
            dsq_loop_may_block();
            dsq_selfio_close(cur);
        }
    }
    struct dsq_selfio *m = dsq_selfio_open(df->wal.shm_mpath);
    if (!m)
        return;
    struct dsq_selfio *none = NULL;
    if (!atomic_compare_exchange_strong(&df->wal.mfd, &none, m))
        dsq_selfio_close(m); /* (still without the leader role) */
}

static void put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* SQLite's restart rule: salt-1 (big-endian) moves on by one, salt-2 is
   new, so no frame of an earlier cycle can match the new header. */
static void next_salts(const uint8_t *old, uint8_t *out)
{
    uint32_t s1 = ((uint32_t)old[0] << 24) | ((uint32_t)old[1] << 16) |
                  ((uint32_t)old[2] << 8) | old[3];
    s1++;
    out[0] = (uint8_t)(s1 >> 24);
    out[1] = (uint8_t)(s1 >> 16);
    out[2] = (uint8_t)(s1 >> 8);
    out[3] = (uint8_t)s1;
    for (int i = 4; i < 8; i++)
        out[i] = (uint8_t)dsq_random_below(256);
}

/* Write a wal-index header the way SQLite's writer does: copy 1, then
   copy 0. */
static int shm_write_hdr(struct dsq_selfio *m, struct dsq_shmhdr *h)
{
    uint8_t b[DSQ_SHM_HDR_SIZE];
    dsq_shm_hdr_encode(h, b);
    if (dsq_selfio_pwrite(m, b, sizeof(b), DSQ_SHM_HDR_SIZE) < 0 ||
        dsq_selfio_pwrite(m, b, sizeof(b), 0) < 0)
        return -EIO;
    return 0;
}

static uint16_t sz_page_of(uint32_t ps)
{
    return (uint16_t)((ps & 0xff00u) | (ps >> 16));
}

/* Drop the kernel's copy of the -wal (with df->mu released). */
static void inval_wal_file(struct dsq_dbfile *df, uint64_t ino)
{
    if (!ino || !df->fs->se)
        return;
    fuse_lowlevel_notify_inval_inode(df->fs->se, ino, 0, 0);
}

/* 1 if an owner other than `owner` holds a lock on shm bytes [a, b]. */
static int shm_held(struct dsq_dbfile *df, uint64_t owner, unsigned a,
                    unsigned b)
{
    return dsq_locks_conflict(&df->wal.shm, owner, LOCK_BYTE(a), LOCK_BYTE(b),
                              F_WRLCK) != NULL;
}

/* ---- other versions into the local WAL (W5) ---- */

/* Frames to append, made ready with df->mu held, written without it. */
struct inj {
    /* in */
    uint32_t expect_mx; /* the frames the -shm must index now */
    uint32_t ps;        /* page size of the frames */
    uint32_t count;     /* database pages after them */
    uint32_t n;         /* pages */
    uint32_t *pgno;
    uint8_t *data; /* n pages of ps bytes */
    int have_hdr;  /* hdr is this cycle's WAL header */
    struct dsq_walhdr hdr;
    uint64_t wal_ino;
    char *wal_path;
    struct dsq_selfio *mfd;
    /* out */
    uint32_t shm_mx; /* what the -shm indexed (-ESTALE) */
    uint32_t last;   /* last frame written */
    struct dsq_walhdr out_hdr;
};

static void inj_free(struct inj *j)
{
    free(j->pgno);
    free(j->data);
    free(j->wal_path);
}

/* The writing half (df->mu released): 0, -EAGAIN (the -shm header is
   being rebuilt), -ESTALE (it indexes other than expected: j->shm_mx),
   -ENOSPC (a reset is needed), -errno. */
static int inject_io(struct dsq_dbfile *df, struct inj *j)
{
    uint8_t info[DSQ_SHM_INFO_SIZE];
    struct dsq_shmhdr h;
    uint32_t nbackfill = 0;
    if (dsq_selfio_pread(j->mfd, info, sizeof(info), 0) !=
            (ssize_t)sizeof(info) ||
        dsq_shm_hdr_read(info, &h, &nbackfill) != 0)
        return -EAGAIN;
    if (h.mx_frame != j->expect_mx) {
        j->shm_mx = h.mx_frame;
        return -ESTALE;
    }
    if (h.mx_frame == 0 && nbackfill != 0)
        return -ENOSPC;
    struct dsq_walhdr wh;
    uint32_t ck[2];
    int bfd = open(j->wal_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (bfd < 0)
        return -errno;
    int r = 0;
    if (h.mx_frame == 0) {
        /* a new WAL header, checksums in the host's order as SQLite
           writes them */
        memset(&wh, 0, sizeof(wh));
        wh.magic = DSQ_WAL_MAGIC;
        if (!dsq_wal_native(&wh))
            wh.magic |= 1u;
        wh.version = DSQ_WAL_VERSION;
        wh.page_size = j->ps;
        wh.ckpt_seq = j->have_hdr ? j->hdr.ckpt_seq + 1 : 0;
        next_salts(h.salt, wh.salt);
        uint8_t hb[DSQ_WAL_HDR_SIZE];
        dsq_wal_hdr_encode(&wh, hb);
        if (full_pwrite(bfd, hb, sizeof(hb), 0) < 0)
            r = -EIO;
        ck[0] = wh.cksum[0];
        ck[1] = wh.cksum[1];
    } else {
        if (!j->have_hdr || memcmp(j->hdr.salt, h.salt, 8) != 0 ||
            j->hdr.page_size != j->ps) {
            close(bfd);
            return -ENOSPC;
        }
        wh = j->hdr;
        ck[0] = h.frame_cksum[0];
        ck[1] = h.frame_cksum[1];
    }
    size_t fsz = DSQ_WAL_FRAME_HDR + (size_t)j->ps;
    uint8_t *fb = malloc(fsz), *blk = malloc(DSQ_SHM_BLOCK);
    if (!fb || !blk)
        r = -ENOMEM;
    uint32_t frame = h.mx_frame;
    unsigned cur = UINT32_MAX;
    for (uint32_t i = 0; r == 0 && i < j->n; i++) {
        frame++;
        memcpy(fb + DSQ_WAL_FRAME_HDR, j->data + (size_t)i * j->ps, j->ps);
        dsq_wal_frame_encode(&wh, j->pgno[i], i + 1 == j->n ? j->count : 0,
                             fb + DSQ_WAL_FRAME_HDR, ck, fb);
        if (full_pwrite(bfd, fb, fsz, dsq_wal_frame_off(frame, j->ps)) < 0) {
            r = -EIO;
            break;
        }
        unsigned b = dsq_shm_frame_block(frame);
        if (b != cur) {
            size_t base = cur == 0 ? DSQ_SHM_INFO_SIZE : 0;
            if (cur != UINT32_MAX &&
                dsq_selfio_pwrite(j->mfd, blk + base, DSQ_SHM_BLOCK - base,
                                  (uint64_t)cur * DSQ_SHM_BLOCK + base) < 0) {
                r = -EIO;
                break;
            }
            memset(blk, 0, DSQ_SHM_BLOCK);
            dsq_selfio_pread(j->mfd, blk, DSQ_SHM_BLOCK,
                             (uint64_t)b * DSQ_SHM_BLOCK);
            cur = b;
        }
        if (dsq_shm_index_append(blk, b, frame, j->pgno[i]) != 0)
            r = -ENOSPC;
    }
    if (r == 0 && cur != UINT32_MAX) {
        size_t base = cur == 0 ? DSQ_SHM_INFO_SIZE : 0;
        if (dsq_selfio_pwrite(j->mfd, blk + base, DSQ_SHM_BLOCK - base,
                              (uint64_t)cur * DSQ_SHM_BLOCK + base) < 0)
            r = -EIO;
    }
    close(bfd);
    free(fb);
    free(blk);
    if (r == 0) {
        inval_wal_file(df, j->wal_ino);
        h.version = DSQ_WAL_VERSION;
        h.change++;
        h.big_end_cksum = (uint8_t)(wh.magic & 1u);
        h.sz_page = sz_page_of(j->ps);
        h.mx_frame = frame;
        h.n_page = j->count;
        h.frame_cksum[0] = ck[0];
        h.frame_cksum[1] = ck[1];
        memcpy(h.salt, wh.salt, 8);
        r = shm_write_hdr(j->mfd, &h);
    }
    j->last = frame;
    j->out_hdr = wh;
    return r;
}

/* The pages between the local WAL's version and target, read with
   df->mu held.  0, -ENOSPC (too many, or another page size), -errno. */
static int inject_prepare(struct dsq_dbfile *df, uint64_t target, struct inj *j)
{
    struct dsq_wal *w = &df->wal;
    struct dsq_err e;
    dsq_err_clear(&e);
    struct dsq_snap *ts = NULL;
    struct dsq_changes c = {0};
    memset(j, 0, sizeof(*j));
    dsq_rc rc = dsq_db_snapshot(df->db, target, &ts, &e);
    if (rc == DSQ_OK)
        rc = dsq_db_changes(df->db, w->view_version, target, &c, &e);
    if (rc != DSQ_OK) {
        dsq__df_log_rc(df, "reading versions for the local WAL", &e, rc);
        dsq_snap_release(ts);
        return -dsq_rc_errno(rc);
    }
    uint32_t ps = dsq_snap_page_size(ts), count = dsq_snap_page_count(ts);
    uint64_t n = 0;
    for (size_t i = 0; i < c.n_ranges; i++)
        for (uint32_t k = 0; k < c.ranges[i].count; k++)
            if (c.ranges[i].first + k <= count)
                n++;
    int r = 0;
    if (ps == 0 || (w->have_hdr && w->hdr.page_size != ps) ||
        n > INJECT_MAX_PAGES)
        r = -ENOSPC;
    j->pgno = r ? NULL : malloc((n ? n : 1) * sizeof(*j->pgno));
    j->data = r ? NULL : malloc((n ? n : 1) * (size_t)ps);
    j->wal_path = r ? NULL : strdup(w->wal_path);
    if (!r && (!j->pgno || !j->data || !j->wal_path))
        r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < c.n_ranges; i++)
        for (uint32_t k = 0; r == 0 && k < c.ranges[i].count; k++) {
            uint32_t pg = c.ranges[i].first + k;
            if (pg > count)
                continue;
            rc = dsq_snap_read_page(ts, pg, j->data + (size_t)j->n * ps, &e);
            if (rc != DSQ_OK) {
                dsq__df_log_rc(df, "reading a page for the local WAL", &e, rc);
                r = -dsq_rc_errno(rc);
            }
            j->pgno[j->n++] = pg;
        }
    dsq_changes_cleanup(&c);
    dsq_snap_release(ts);
    j->expect_mx = w->mx;
    j->ps = ps;
    j->count = count;
    j->have_hdr = w->have_hdr;
    j->hdr = w->hdr;
    j->wal_ino = w->wal_ino;
    j->mfd = atomic_load(&w->mfd);
    if (r == 0 && !j->mfd)
        r = -EAGAIN;
    return r;
}

/*
 * (W5) Append the pages that differ between the local WAL's version and
 * `target` as frames of one commit, and index them in the -shm, as a
 * writer of SQLite's would.  The caller has made sure no local writer
 * holds the WAL write lock.  df->mu held (released meanwhile).  0;
 * -EAGAIN if the -shm header cannot be read (SQLite is rebuilding it);
 * -ENOSPC if a reset is needed instead; other -errno.
 */
static int inject(struct dsq_dbfile *df, uint64_t target)
{
    struct dsq_wal *w = &df->wal;
    for (int attempt = 0;; attempt++) {
        if (target <= w->view_version && w->view_exact)
            return 0;
        struct inj j;
        int r = inject_prepare(df, target, &j);
        if (r == 0 && j.n == 0) {
            /* nothing changed in the pages: the WAL already is target */
            inj_free(&j);
            w->view_version = target;
            w->view_exact = 1;
            return 0;
        }
        if (r == 0) {
            io_begin(df);
            r = inject_io(df, &j);
            io_end(df);
        }
        if (r == -ESTALE && attempt == 0 && j.shm_mx < w->mx &&
            version_at(w, j.shm_mx) != UINT64_MAX) {
            /* the -shm indexes less than the daemon saw committed (a
               writer died between its commit frame and its index) */
            forget_after(w, j.shm_mx);
            inj_free(&j);
            continue;
        }
        if (r == -ESTALE)
            r = -ENOSPC;
        if (r == 0) {
            w->hdr = j.out_hdr;
            w->have_hdr = 1;
            add_commit(w, j.last, target);
            w->injected_frames += j.last - w->mx;
            w->mx = j.last;
            w->view_version = target;
            w->view_exact = 1;
            w->active = 1;
            if (target > df->head)
                df->head = target;
            dsq_log(DSQ_LOG_INFO, "wal",
                    "%s: version %" PRIu64 " brought into the local WAL "
                    "(%u page(s), frames up to %u)",
                    df->name, target, j.n, j.last);
        } else if (r != -ENOSPC && r != -EAGAIN) {
            dsq_log(DSQ_LOG_ERR, "wal",
                    "%s: bringing version %" PRIu64 " into the local WAL: %s",
                    df->name, target, strerror(-r));
        }
        inj_free(&j);
        return r;
    }
}

/* The writing half of a reset (df->mu released). */
static int reset_io(struct dsq_dbfile *df, const char *wal_path,
                    uint64_t wal_ino, struct dsq_selfio *mfd, uint32_t npage)
{
    if (truncate(wal_path, 0) != 0 && errno != ENOENT)
        return -errno;
    inval_wal_file(df, wal_ino);
    if (!mfd)
        return 0;
    uint8_t info[DSQ_SHM_INFO_SIZE];
    struct dsq_shmhdr h;
    if (dsq_selfio_pread(mfd, info, sizeof(info), 0) != (ssize_t)sizeof(info) ||
        dsq_shm_hdr_read(info, &h, NULL) != 0)
        return 0; /* an uninitialised -shm: SQLite builds it from the
                     empty WAL */
    uint8_t ns[8];
    next_salts(h.salt, ns);
    memcpy(h.salt, ns, 8);
    h.change++;
    h.mx_frame = 0;
    h.n_page = npage;
    h.frame_cksum[0] = h.frame_cksum[1] = 0;
    int r = shm_write_hdr(mfd, &h);
    /* checkpoint info as SQLite's restart leaves it: nothing backfilled,
       read mark 1 at 0, the others unused */
    uint8_t ci[24];
    put_u32(ci, 0);
    put_u32(ci + 4, 0);
    put_u32(ci + 8, 0);
    for (int i = 0; i < 3; i++)
        put_u32(ci + 12 + 4 * i, 0xffffffffu);
    if (r == 0 && dsq_selfio_pwrite(mfd, ci, sizeof(ci), 96) < 0)
        r = -EIO;
    uint8_t z[4] = {0, 0, 0, 0};
    if (r == 0 && dsq_selfio_pwrite(mfd, z, 4, 128) < 0)
        r = -EIO;
    return r;
}

/*
 * (W6) With no WAL lock held by anyone but the caller's DMS: the db file
 * becomes the newest version, the WAL empty (SQLite's restart rule for
 * the -shm header and read marks; the -wal truncated).  df->mu held
 * (released meanwhile).
 */
static int reset(struct dsq_dbfile *df, struct inval *iv)
{
    struct dsq_wal *w = &df->wal;
    uint64_t target = df->head > w->view_version ? df->head : w->view_version;
    int r = move_db(df, target, iv);
    if (r)
        return r;
    /* the kernel drops the db file's changed pages before the -shm says
       the WAL is empty: no reader may find old pages then */
    dsq__df_inval_now(df, iv);
    char *wp = strdup(w->wal_path);
    if (!wp)
        return -ENOMEM;
    uint64_t ino = w->wal_ino;
    struct dsq_selfio *mfd = atomic_load(&w->mfd);
    uint32_t npage = df->snap ? dsq_snap_page_count(df->snap) : 0;
    io_begin(df);
    r = reset_io(df, wp, ino, mfd, npage);
    io_end(df);
    free(wp);
    if (r)
        return r;
    cycle_begin(df);
    w->active = 1;
    w->resets++;
    dsq_log(DSQ_LOG_INFO, "wal", "%s: local WAL reset at version %" PRIu64,
            df->name, target);
    return 0;
}

/* ---- the -shm locks ---- */

/* A read transaction starts (W4): the local WAL brought up to date. */
static int read_start(struct dsq_dbfile *df, uint64_t owner, struct inval *iv)
{
    struct dsq_wal *w = &df->wal;
    if (dsq_locks_type_at(&w->shm, owner, LOCK_BYTE(DSQ_SHM_WRITE)) == F_WRLCK)
        return 0; /* the writer itself, restarting the WAL after a full
                     checkpoint: its snapshot must not move under it */
    int replaced = dsq__df_check_head(df, 0) > 0 || w->replaced;
    int writer = shm_held(df, owner, DSQ_SHM_WRITE, DSQ_SHM_WRITE);
    int others = shm_held(df, owner, DSQ_SHM_WRITE, DSQ_SHM_READ0 + 4);
    if (replaced) {
        /* deleted and created again elsewhere: no frame of the old one
           may stay; readers of the old one get a clean error meanwhile */
        if (others)
            return -EIO;
        w->view_version = 0;
        w->replaced = 0;
        return reset(df, iv);
    }
    if (!w->view_exact || df->head > w->view_version) {
        if (writer)
            return w->view_exact ? 0 : -EAGAIN; /* the writer first */
        int r = -ENOSPC;
        if (others || !w->view_exact ||
            df->head - w->view_version <= INJECT_MAX_VERSIONS)
            r = inject(df, df->head);
        /* else far behind: finding what changed would read every
           manifest between, a reset costs one snapshot */
        if (r == -ENOSPC && !others)
            r = reset(df, iv);
        if (r)
            return w->view_exact ? 0 : (r == -EAGAIN ? r : -EIO);
    } else if (w->mx > WAL_RESET_FRAMES && !others &&
               w->commits_published == 0) {
        /* nothing local checkpoints a WAL only the daemon appends to:
           keep it bounded */
        reset(df, iv);
    }
    return 0;
}

/*
 * (W8) A -wal this daemon did not see written (restored from a copy,
 * written by a tool): SQLite's recovery will apply its valid committed
 * frames to the db file, so they are published first, as one
 * transaction on the db file's version.  If that version is still the
 * newest, the -wal stays for SQLite to recover (*kept = 1: the local WAL
 * then holds exactly the new version); else the caller empties it.
 * 0, or -errno if the publish failed (the open then fails, the -wal
 * stays).
 */
static int recover_foreign(struct dsq_dbfile *df, int *kept)
{
    struct dsq_wal *w = &df->wal;
    *kept = 0;
    int fd = open(w->wal_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    uint8_t hb[DSQ_WAL_HDR_SIZE];
    struct dsq_walhdr h;
    if (dsq__full_pread(fd, hb, sizeof(hb), 0) != (ssize_t)sizeof(hb) ||
        dsq_wal_hdr_decode(hb, &h) != 0) {
        close(fd); /* nothing SQLite would recover */
        return 0;
    }
    /* frames up to mx of this daemon's own cycle are published already */
    uint32_t from = 0;
    uint64_t from_version = dsq_snap_version(df->snap);
    if (w->have_hdr && memcmp(h.salt, w->hdr.salt, 8) == 0 && w->mx > 0 &&
        version_at(w, w->mx) != UINT64_MAX) {
        from = w->mx;
        from_version = version_at(w, w->mx);
    }
    uint32_t ps = h.page_size, last = 0, size_after = 0;
    size_t fsz = DSQ_WAL_FRAME_HDR + (size_t)ps;
    uint8_t *fb = malloc(fsz);
    uint32_t ck[2] = {h.cksum[0], h.cksum[1]};
    for (uint32_t f = 1; fb; f++) {
        if (dsq__full_pread(fd, fb, fsz, dsq_wal_frame_off(f, ps)) !=
                (ssize_t)fsz ||
            !dsq_wal_frame_check(&h, fb, fb + DSQ_WAL_FRAME_HDR, ck))
            break;
        struct dsq_walframe fr;
        dsq_wal_frame_decode(fb, &fr);
        if (fr.db_size) {
            last = f;
            size_after = fr.db_size;
        }
    }
    int r = 0;
    struct dsq_err e;
    dsq_err_clear(&e);
    struct dsq_snap *bs = NULL;
    struct dsq_txn *t = NULL;
    if (!fb || last <= from)
        goto out;
    dsq_rc rc = dsq_db_snapshot(df->db, from_version, &bs, &e);
    if (rc == DSQ_OK)
        rc = dsq_txn_begin(bs, 0, &t, &e);
    if (rc == DSQ_OK && dsq_snap_page_count(bs) == 0)
        rc = dsq_txn_set_page_size(t, ps, &e);
    for (uint32_t f = from + 1; rc == DSQ_OK && f <= last; f++) {
        if (dsq__full_pread(fd, fb, fsz, dsq_wal_frame_off(f, ps)) !=
            (ssize_t)fsz) {
            rc = dsq_err_set(&e, DSQ_EIO, "reading frame %u", f);
            break;
        }
        struct dsq_walframe fr;
        dsq_wal_frame_decode(fb, &fr);
        rc = dsq__txn_write_bytes(t, (const char *)fb + DSQ_WAL_FRAME_HDR, ps,
                                  (uint64_t)(fr.pgno - 1) * ps, &e);
    }
    if (rc == DSQ_OK)
        rc = dsq_txn_set_page_count(t, bytes_to_pages(t, size_after, ps), &e);
    if (rc == DSQ_OK)
        rc = dsq_txn_drop_unchanged(t, NULL, &e);
    struct dsq_commit_info ci;
    if (rc == DSQ_OK)
        rc = dsq_txn_commit(t, &ci, &e);
    dsq_txn_free(t);
    t = NULL;
    if (rc != DSQ_OK) {
        dsq_log(DSQ_LOG_ERR, "wal",
                "%s: the -wal found at open holds %u frame(s) SQLite would "
                "recover; publishing them failed, the open fails: %s",
                df->name, last, dsq_err_text(&e, rc));
        r = -EIO;
        goto out;
    }
    uint64_t base = from_version;
    uint64_t v = ci.noop ? base : ci.version;
    dsq__df_now_exists(df);
    if (v > df->head)
        df->head = v;
    dsq_log(DSQ_LOG_INFO, "wal",
            "%s: the -wal found at open (%u frame(s)) committed as version "
            "%" PRIu64,
            df->name, last, v);
    if (ci.noop || (ci.version == base + 1 && ci.rebases == 0)) {
        /* SQLite's recovery makes exactly that version */
        if (from == 0)
            cycle_begin(df);
        w->have_hdr = 1;
        w->hdr = h;
        add_commit(w, last, v);
        w->mx = last;
        w->view_version = v;
        *kept = 1;
    }
out:
    dsq_txn_free(t);
    dsq_snap_release(bs);
    free(fb);
    close(fd);
    return r;
}

/* (W7) The first opener of the -shm: a new cycle.  df->mu held
   (released meanwhile). */
static int first_open(struct dsq_dbfile *df, uint64_t owner, struct inval *iv)
{
    struct dsq_wal *w = &df->wal;
    if (dsq_locks_any(&df->locks, owner)) {
        /* processes in rollback mode hold the db file: keep the WAL as
           it is (SQLite's recovery rebuilds its index) */
        w->active = 1;
        return 0;
    }
    int kept = 0;
    int r = recover_foreign(df, &kept);
    if (r)
        return r;
    w->active = 1;
    if (kept)
        return 0;
    if (dsq__df_check_head(df, 0) > 0 || w->replaced) {
        /* deleted and created again elsewhere: nothing of the old one */
        w->view_version = 0;
        w->view_exact = 1;
        w->replaced = 0;
    }
    uint64_t target = df->head > w->view_version ? df->head : w->view_version;
    if (w->view_exact || target > w->view_version)
        move_db(df, target, iv);
    dsq__df_inval_now(df, iv);
    char *wp = strdup(w->wal_path);
    uint64_t ino = w->wal_ino;
    if (wp) {
        io_begin(df);
        if (truncate(wp, 0) != 0 && errno != ENOENT)
            dsq_log(DSQ_LOG_WARNING, "wal", "%s: emptying the -wal: %s",
                    df->name, strerror(errno));
        inval_wal_file(df, ino);
        io_end(df);
        free(wp);
    }
    cycle_begin(df);
    w->active = 1;
    return 0;
}

/* Hand back the -shm fd the daemon keeps once SQLite no longer uses it
   (closed by the caller with df->mu released). */
static struct dsq_selfio *take_mfd_if_unused(struct dsq_dbfile *df)
{
    if (df->wal.shm.n)
        return NULL;
    return atomic_exchange(&df->wal.mfd, NULL);
}

/* Before each test of a -shm lock: no invalidation and no -shm I/O of
   ours in progress. */
static void shm_lock_turn(struct dsq_dbfile *df)
{
    dsq__df_wait_inval(df);
    wait_io(df);
}

int dsq_wal_shm_setlk(struct dsq_dbfile *df, uint64_t owner,
                      const struct flock *lk, int sleep, fuse_req_t req)
{
    struct dsq_wal *w = &df->wal;
    struct inval iv = {0};
    uint64_t start = (uint64_t)lk->l_start;
    uint64_t end =
        lk->l_len == 0 ? UINT64_MAX : start + (uint64_t)lk->l_len - 1;
    int type = lk->l_type, r = 0;
    if (type != F_UNLCK)
        ensure_mfd(df);
    dsq__df_lock(df);
    r = dsq__df_lock_wait(df, &w->shm, owner, start, end, type, sleep, req,
                          shm_lock_turn);
    if (r)
        return r;
    uint64_t rb0 = LOCK_BYTE(DSQ_SHM_READ0), rb4 = LOCK_BYTE(DSQ_SHM_READ0 + 4);
    uint64_t wb = LOCK_BYTE(DSQ_SHM_WRITE);
    int had_write = dsq_locks_type_at(&w->shm, owner, wb) == F_WRLCK;
    if (type == F_WRLCK && start <= DSQ_SHM_DMS && DSQ_SHM_DMS <= end &&
        !dsq_locks_any(&w->shm, owner)) {
        r = first_open(df, owner, &iv);
    } else if (type == F_RDLCK && start >= rb0 && end <= rb4) {
        int reading = 0;
        for (uint64_t b = rb0; b <= rb4; b++)
            if (dsq_locks_type_at(&w->shm, owner, b) != F_UNLCK)
                reading = 1;
        if (!reading)
            r = read_start(df, owner, &iv);
    } else if (type == F_WRLCK && start <= wb && wb <= end && !had_write &&
               (!w->view_exact || df->head > w->view_version) &&
               !shm_held(df, owner, DSQ_SHM_WRITE, DSQ_SHM_WRITE)) {
        /* a writer on an old view: bring the WAL up to date first, so
           SQLite sees the header moved (SQLITE_BUSY_SNAPSHOT) */
        int rr = inject(df, df->head);
        if (rr && !w->view_exact)
            r = -EIO;
    }
    if (r == 0 && type == F_WRLCK && start <= wb && wb <= end && !had_write) {
        /* the writer's base is what the -shm indexes now: a writer that
           died between its commit frame and its index left less (W3) */
        int64_t smx = shm_mx_frame(df);
        if (smx >= 0 && (uint64_t)smx < w->mx)
            forget_after(w, (uint32_t)smx);
    }
    if (r == 0)
        r = dsq_locks_apply(&w->shm, owner, start, end, type, lk->l_pid);
    if (r == 0 && had_write && type == F_UNLCK && start <= wb && wb <= end &&
        !w->view_exact) {
        /* (W3) a rebased commit: its others' pages come in now */
        inject(df, df->head);
    }
    struct dsq_selfio *cm = take_mfd_if_unused(df);
    dsq__df_unlock_inval(df, &iv);
    if (cm) {
        dsq_loop_may_block(); /* its FLUSH is a request of our own */
        dsq_selfio_close(cm);
    }
    return r;
}

void dsq_wal_shm_getlk(struct dsq_dbfile *df, uint64_t owner, struct flock *lk)
{
    uint64_t start = (uint64_t)lk->l_start;
    uint64_t end =
        lk->l_len == 0 ? UINT64_MAX : start + (uint64_t)lk->l_len - 1;
    dsq__df_lock(df);
    const struct dsq_lock *c =
        dsq_locks_conflict(&df->wal.shm, owner, start, end, lk->l_type);
    if (c) {
        lk->l_type = (short)c->type;
        lk->l_start = (off_t)c->start;
        lk->l_len = c->end == UINT64_MAX ? 0 : (off_t)(c->end - c->start + 1);
        lk->l_pid = c->pid;
    } else {
        lk->l_type = F_UNLCK;
    }
    pthread_mutex_unlock(&df->mu);
}

void dsq_wal_shm_release(struct dsq_dbfile *df, uint64_t owner)
{
    dsq__df_lock(df);
    wait_io(df);
    dsq_locks_release_owner(&df->wal.shm, owner);
    struct dsq_selfio *cm = take_mfd_if_unused(df);
    pthread_mutex_unlock(&df->mu);
    if (cm) {
        dsq_loop_may_block(); /* its FLUSH is a request of our own */
        dsq_selfio_close(cm);
    }
}
