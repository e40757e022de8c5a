/*
 * writeback.c - the kernel's writeback cache on database files (-o
 * writeback): getting the pages the kernel still holds at a commit point.
 *
 * With the writeback cache a write(2) of a database page returns once the
 * page is in the kernel's page cache; the WRITE request comes later (an
 * fsync, a close, memory pressure, or ~30 s on).  SQLite with
 * synchronous=OFF never fsyncs, so at its commit point (the journal's
 * unlink, truncation or zeroed header; with no journal the release of
 * EXCLUSIVE) the daemon may hold none of the transaction's pages.  So:
 *  (B1) Side files other than the -shm are written through (direct_io):
 *       a -wal frame and a journal record reach the daemon at write(2).
 *  (B2) Before a commit point commits, the kernel's dirty pages of the
 *       file are flushed: an fsync(2) of NAME.db made by a child process
 *       (selfio.c) that holds the file open from the first write lock
 *       granted on it until the last other descriptor of it is released.
 *       The kernel writes back every dirty page and waits for every WRITE
 *       in flight, so all of the transaction's pages arrive, under its
 *       write lock, before the commit.  (A syncfs(2) is not enough: it
 *       does not wait for WRITEs in flight.)  The file is opened at a
 *       lock request, never at the commit point itself: an unlink holds
 *       its directory locked, and opening a name there could wait on it.
 *       The flush is skipped when the file was fsynced after its last
 *       WRITE and write-lock grant (synchronous NORMAL and FULL fsync it
 *       just before the commit point).  A flush that fails fails the
 *       commit point: nothing is committed.
 *  (B3) A WRITE that fails (the writer's write(2) returned long ago)
 *       fails the transaction's commit point: a transaction with a page
 *       missing never commits.
 *  (B4) The kernel is the authority for the file's size: another host's
 *       commit that grows the file is pushed to it (a store notification
 *       of the true last byte at the new end, inval.c) before the read
 *       transaction that sees it starts.
 *
 * Layer: FUSE front end, for dbfile.c.  Locking: df->wb_mu guards
 * df->wb_io and serializes the flushes of one database; called with
 * df->mu not held, since the requests a flush causes (OPEN, WRITE, FSYNC,
 * FLUSH, RELEASE) take it.
 */
#include "fs.h"

#include "log.h"
#include "loop.h"
#include "selfio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dsq_wb_open(struct dsq_dbfile *df)
{
    if (!df->fs->cfg->writeback)
        return;
    pthread_mutex_lock(&df->wb_mu);
    if (df->wb_io && !dsq_selfio_alive(df->wb_io)) {
        dsq_selfio_close(df->wb_io);
        df->wb_io = NULL;
    }
    if (!df->wb_io) {
        char *path = NULL;
        if (asprintf(&path, "%s/%s", df->fs->mountpoint, df->name) >= 0) {
            dsq_loop_may_block();
            df->wb_io = dsq_selfio_open(path);
            if (!df->wb_io)
                dsq_log(DSQ_LOG_WARNING, "fs",
                        "%s: opening the file for its commit flushes: %s "
                        "(its commit points will fail)",
                        df->name, strerror(errno));
            free(path);
        }
    }
    pthread_mutex_unlock(&df->wb_mu);
}

int dsq_wb_flush(struct dsq_dbfile *df, const char *why)
{
    if (!df->fs->cfg->writeback)
        return 0;
    dsq_loop_may_block();
    pthread_mutex_lock(&df->wb_mu);
    int r = df->wb_io ? dsq_selfio_fsync(df->wb_io) : -EBADF;
    df->wb_flushes++;
    pthread_mutex_unlock(&df->wb_mu);
    if (r)
        dsq_log(DSQ_LOG_ERR, "fs",
                "%s: flushing the kernel's cached pages at %s failed (%s): "
                "the transaction is not committed",
                df->name, why,
                r == -EBADF ? "the file is not held open for it"
                            : strerror(-r));
    return r;
}

void dsq_wb_close(struct dsq_dbfile *df)
{
    pthread_mutex_lock(&df->wb_mu);
    struct dsq_selfio *s = df->wb_io;
    df->wb_io = NULL;
    pthread_mutex_unlock(&df->wb_mu);
    if (s) {
        dsq_loop_may_block(); /* its close is a FLUSH and a RELEASE */
        dsq_selfio_close(s);
    }
}

int dsq_wb_is_ours(struct dsq_dbfile *df, pid_t pid)
{
    pthread_mutex_lock(&df->wb_mu);
    int ours = df->wb_io && dsq_selfio_pid(df->wb_io) == pid;
    pthread_mutex_unlock(&df->wb_mu);
    return ours;
}
