/*
 * chaos_writer.c - one writer of the chaos harness (tests/chaos/chaos.sh):
 * a loop of SQLite transactions through a mount, reporting each one's
 * outcome as the application sees it, until the mount goes away.
 *
 *   chaos_writer DB MODE NAME JOURNAL
 *
 * MODE auto: one INSERT per transaction (autocommit) into a(w, seq, pad);
 * MODE multi: BEGIN (IMMEDIATE on even ids), 2..8 INSERTs into
 * m(w, txn, k, n, pad), COMMIT.  NAME is the w column (unique per
 * writer).  JOURNAL: delete, truncate or persist.
 *
 * stdout, one line per event, each written with one write(2):
 *   try ID N            a transaction of N rows starts
 *   ok ID               it committed (SQLITE_OK returned)
 *   retry ID CODE ERRNO it certainly did not commit (SQLITE_BUSY, or
 *                       SQLITE_IOERR_LOCK: refused at a lock); ID again
 *   fail ID CODE ERRNO  it failed; if ERRNO is EREMOTEIO the outcome is
 *                       unknown (the store may have it), otherwise it
 *                       certainly did not commit; the next ID is new
 *   stop CODE ERRNO     the mount is gone (the daemon was killed): exit
 *                       (the transaction in flight, if any, may or may
 *                       not have committed)
 * ERRNO is what the failing system call set, caught by a VFS that wraps
 * SQLite's unix VFS and reads errno right after each failed file call
 * (sqlite3_system_errno() reads it later, when other calls may have
 * changed it).  A call the kernel aborted because the daemon died under
 * it (ECONNABORTED) means the mount is gone, with the outcome unknown;
 * otherwise whether the mount is gone is asked of the daemon itself
 * (statvfs: ENOTCONN) after a failure.  Not stat: the kernel answers that
 * from its attribute cache without the daemon, dead or alive.
 * Single-threaded.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(line) && write(1, line, (size_t)n) < 0)
        exit(3);
}

/* errno of the first file call that failed in this attempt (0: none) */
static int last_oserr;

/*
 * A VFS over SQLite's "unix" one that only notes errno when a call fails.
 * Each file is the shim's header followed by the real file.
 */
struct shim_file {
    sqlite3_file base;
    sqlite3_file *real; /* the unix VFS's file, right after this struct */
};

static sqlite3_vfs *unix_vfs;
static sqlite3_vfs shim_vfs;
static sqlite3_io_methods shim_io;

/* the first failure of an attempt is the one that decided it */
static int note(int rc)
{
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY && errno && !last_oserr)
        last_oserr = errno;
    return rc;
}

#define REAL(f) (((struct shim_file *)(f))->real)
static int s_close(sqlite3_file *f)
{
    int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : 0;
    return note(rc);
}
static int s_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    int rc = REAL(f)->pMethods->xRead(REAL(f), b, n, o);
    return rc == SQLITE_IOERR_SHORT_READ ? rc : note(rc);
}
static int s_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    return note(REAL(f)->pMethods->xWrite(REAL(f), b, n, o));
}
static int s_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return note(REAL(f)->pMethods->xTruncate(REAL(f), size));
}
static int s_sync(sqlite3_file *f, int flags)
{
    return note(REAL(f)->pMethods->xSync(REAL(f), flags));
}
static int s_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return note(REAL(f)->pMethods->xFileSize(REAL(f), size));
}
static int s_lock(sqlite3_file *f, int l)
{
    return note(REAL(f)->pMethods->xLock(REAL(f), l));
}
static int s_unlock(sqlite3_file *f, int l)
{
    return note(REAL(f)->pMethods->xUnlock(REAL(f), l));
}
static int s_check(sqlite3_file *f, int *out)
{
    return note(REAL(f)->pMethods->xCheckReservedLock(REAL(f), out));
}
static int s_fcntl(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int s_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int s_caps(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int s_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **p)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, p);
}
static int s_shmlock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void s_shmbarrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int s_shmunmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int s_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
{
    return REAL(f)->pMethods->xFetch(REAL(f), o, n, p);
}
static int s_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static int s_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags,
                  int *out)
{
    (void)v;
    struct shim_file *sf = (struct shim_file *)f;
    sf->real = (sqlite3_file *)(sf + 1);
    int rc = note(unix_vfs->xOpen(unix_vfs, name, sf->real, flags, out));
    if (rc != SQLITE_OK || !sf->real->pMethods) {
        sf->base.pMethods = NULL;
        return rc;
    }
    shim_io.iVersion = sf->real->pMethods->iVersion;
    sf->base.pMethods = &shim_io;
    return SQLITE_OK;
}
static int s_delete(sqlite3_vfs *v, const char *name, int sync)
{
    (void)v;
    return note(unix_vfs->xDelete(unix_vfs, name, sync));
}
static int s_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return note(unix_vfs->xAccess(unix_vfs, name, flags, out));
}

static void shim_install(void)
{
    unix_vfs = sqlite3_vfs_find("unix");
    shim_vfs = *unix_vfs;
    shim_vfs.zName = "chaos";
    shim_vfs.szOsFile = (int)sizeof(struct shim_file) + unix_vfs->szOsFile;
    shim_vfs.xOpen = s_open;
    shim_vfs.xDelete = s_delete;
    shim_vfs.xAccess = s_access;
    shim_io = (sqlite3_io_methods){
        3,        s_close,  s_read,    s_write,      s_truncate, s_sync,
        s_size,   s_lock,   s_unlock,  s_check,      s_fcntl,    s_sector,
        s_caps,   s_shmmap, s_shmlock, s_shmbarrier, s_shmunmap, s_fetch,
        s_unfetch};
    sqlite3_vfs_register(&shim_vfs, 1);
}

/* The mount is gone (its daemon died): every later call fails. */
static int gone(const char *db, int code, int err)
{
    struct statvfs sv;
    if (err == ENOTCONN || err == ECONNABORTED || code == SQLITE_CANTOPEN)
        return 1;
    return statvfs(db, &sv) != 0 && (errno == ENOTCONN || errno == ENOENT);
}

/* errno of the first failed file call of this attempt, if any */
static int fail_errno(sqlite3 *h)
{
    return last_oserr ? last_oserr : sqlite3_system_errno(h);
}

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: chaos_writer DB auto|multi NAME JOURNAL\n");
        return 2;
    }
    const char *db = argv[1], *name = argv[3], *journal = argv[4];
    int multi = !strcmp(argv[2], "multi");
    for (const char *c = name; *c; c++)
        rng = rng * 31 + (unsigned char)*c;
    shim_install();
    sqlite3 *h = NULL;
    int rc = sqlite3_open(db, &h);
    if (rc != SQLITE_OK) {
        say("stop %d %d\n", sqlite3_extended_errcode(h),
            sqlite3_system_errno(h));
        return 0;
    }
    sqlite3_busy_timeout(h, 3000);
    char sql[512];
    snprintf(sql, sizeof(sql), "PRAGMA journal_mode=%s", journal);
    sqlite3_exec(h, sql, NULL, NULL, NULL);
    sqlite3_stmt *ins = NULL;
    rc = sqlite3_prepare_v2(h,
                            multi ? "INSERT INTO m(w, txn, k, n, pad) VALUES "
                                    "(?1, ?2, ?3, ?4, randomblob(?5))"
                                  : "INSERT INTO a(w, seq, pad) VALUES "
                                    "(?1, ?2, randomblob(?5))",
                            -1, &ins, NULL);
    if (rc != SQLITE_OK) {
        say("stop %d %d\n", sqlite3_extended_errcode(h),
            sqlite3_system_errno(h));
        sqlite3_close(h);
        return 0;
    }
    for (long id = 1;; id++) {
        int n = multi ? 2 + (int)rnd(7) : 1;
        for (;;) { /* retried while it certainly did not commit */
            say("try %ld %d\n", id, n);
            last_oserr = 0;
            rc = SQLITE_OK;
            if (multi)
                rc = sqlite3_exec(h, id % 2 ? "BEGIN" : "BEGIN IMMEDIATE", NULL,
                                  NULL, NULL);
            for (int k = 1; rc == SQLITE_OK && k <= n; k++) {
                sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
                sqlite3_bind_int64(ins, 2, id);
                sqlite3_bind_int(ins, 3, k);
                sqlite3_bind_int(ins, 4, n);
                sqlite3_bind_int(ins, 5, 100 + (int)rnd(1900));
                rc = sqlite3_step(ins);
                rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
                sqlite3_reset(ins);
            }
            if (multi && rc == SQLITE_OK)
                rc = sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
            if (rc == SQLITE_OK) {
                say("ok %ld\n", id);
                break;
            }
            int code = sqlite3_extended_errcode(h);
            int err = fail_errno(h);
            if (!sqlite3_get_autocommit(h))
                sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
            if (gone(db, code, err)) {
                say("stop %d %d\n", code, err);
                sqlite3_finalize(ins);
                sqlite3_close(h);
                return 0;
            }
            if ((code & 0xff) == SQLITE_BUSY || code == SQLITE_IOERR_LOCK) {
                say("retry %ld %d %d\n", id, code, err);
                usleep(1000 + rnd(5000));
                continue;
            }
            say("fail %ld %d %d\n", id, code, err);
            usleep(1000 + rnd(5000));
            break;
        }
    }
}
