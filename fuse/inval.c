/*
 * inval.c - the kernel's page cache of a database file: which ranges to
 * drop when the served version moves (from the engine's list of pages
 * changed between two versions), and sending the drops with df->mu
 * released under the inval_busy protocol (fs.h): lock requests wait
 * until inval_busy clears, so no reader proceeds on a moved snapshot
 * before its stale pages are gone.
 *
 * Layer: FUSE front end, for dbfile.c and wal.c (dbfile_int.h).  Locks:
 * every function is called with df->mu held; the senders release it
 * around the notifications and hold it again (or release it, as named)
 * on return.
 */
#include "dbfile_int.h"

#include "log.h"
#include "loop.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void dsq__inval_whole(struct inval *iv)
{
    iv->whole = 1;
}

void dsq__inval_take(struct inval *iv, struct dsq_changes *c, uint32_t ps)
{
    free(iv->r);
    iv->r = c->ranges;
    iv->n = c->n_ranges;
    iv->ps = ps;
    c->ranges = NULL;
    c->n_ranges = 0;
}

/* (B4) With the writeback cache the kernel keeps its own size of the
   file and takes no size from a reply.  A file another host grew is grown
   by a store notification of its true last byte (a notification of no
   bytes moves no size). */
static void grow_to(struct dsq_dbfile *df, uint64_t size, uint8_t last)
{
    struct fuse_session *se = df->fs->se;
    if (!se || size == 0)
        return;
    struct fuse_bufvec one = FUSE_BUFVEC_INIT(1);
    one.buf[0].mem = &last;
    int r = fuse_lowlevel_notify_store(se, df->ino, (off_t)size - 1, &one, 0);
    if (r && r != -ENOENT)
        dsq_log(DSQ_LOG_WARNING, "fs",
                "%s: telling the kernel the size %" PRIu64 " failed: %s",
                df->name, size, strerror(-r));
}

/* Called with df->mu released and inval_busy set by the caller. */
static void inval_send(struct dsq_dbfile *df, struct inval *iv)
{
    struct fuse_session *se = df->fs->se;
    if (se && (iv->whole || iv->n)) {
        if (iv->whole || !iv->ps || iv->n > 4096) {
            fuse_lowlevel_notify_inval_inode(se, df->ino, 0, 0);
            df->st.inval_ranges++;
        } else {
            for (size_t i = 0; i < iv->n; i++)
                fuse_lowlevel_notify_inval_inode(
                    se, df->ino, (off_t)(iv->r[i].first - 1) * iv->ps,
                    (off_t)iv->r[i].count * iv->ps);
            df->st.inval_ranges += iv->n;
        }
    } else if (se) {
        /* attributes only (size, mtime) */
        fuse_lowlevel_notify_inval_inode(se, df->ino, -1, 0);
    }
    free(iv->r);
    memset(iv, 0, sizeof(*iv));
}

void dsq__df_inval_now(struct dsq_dbfile *df, struct inval *iv)
{
    if (!iv->whole && !iv->n && !iv->ps)
        return;
    df->inval_busy = 1;
    pthread_mutex_unlock(&df->mu);
    /* dropping pages waits for page locks held by READs still queued for
       the daemon: someone else must be reading the device meanwhile */
    dsq_loop_may_block();
    struct inval local = *iv;
    memset(iv, 0, sizeof(*iv));
    uint64_t grow = local.grow;
    uint8_t last = local.grow_last;
    inval_send(df, &local);
    if (grow)
        grow_to(df, grow, last);
    dsq__df_lock(df);
    df->inval_busy = 0;
    pthread_cond_broadcast(&df->cv);
}

/* Unlock df->mu after sending iv (if any) with inval_busy protocol. */
void dsq__df_unlock_inval(struct dsq_dbfile *df, struct inval *iv)
{
    dsq__df_inval_now(df, iv);
    pthread_mutex_unlock(&df->mu);
}

void dsq__df_wait_inval(struct dsq_dbfile *df)
{
    if (df->inval_busy)
        dsq_loop_may_block(); /* the kernel may wait for a READ of ours */
    while (df->inval_busy)
        pthread_cond_wait(&df->cv, &df->mu);
}

void dsq__df_inval_between(struct dsq_dbfile *df, uint64_t from, uint64_t to,
                           uint32_t ps, struct inval *iv)
{
    struct dsq_err e;
    dsq_err_clear(&e);
    struct dsq_changes c;
    if (to <= from)
        return;
    if (to - from > DSQ_INVAL_MAX_VERSIONS || iv->whole ||
        (iv->ps && iv->ps != ps) ||
        dsq_db_changes(df->db, from, to, &c, &e) != DSQ_OK) {
        dsq__inval_whole(iv);
        return;
    }
    if (!iv->n) {
        dsq__inval_take(iv, &c, ps);
    } else {
        struct dsq_page_range *nr =
            realloc(iv->r, (iv->n + c.n_ranges) * sizeof(*nr));
        if (!nr) {
            dsq__inval_whole(iv);
        } else {
            memcpy(nr + iv->n, c.ranges, c.n_ranges * sizeof(*nr));
            iv->r = nr;
            iv->n += c.n_ranges;
        }
    }
    dsq_changes_cleanup(&c);
}
