/*
 * store_file.c - the local directory backend ("file:///abs/dir").
 *
 * Layer: services (a store backend behind store.h).  Object key K lives in
 * the file DIR/K; key components become subdirectories, created on demand
 * (each creation made durable by an fsync of the parent directory).
 *
 * Invariants (docs/store.md, "Local backend"):
 *  - An object is only ever published by renaming or linking a complete,
 *    fsync'ed temporary file (".dsqtmp.<pid>.<n>.<hex>" in the destination
 *    directory) onto its final name, so a reader never sees a torn object;
 *    the directory is fsync'ed before a put returns DSQ_OK.  Objects are
 *    therefore immutable inodes: a replacement is a new inode.
 *  - DSQ_PUT_CREATE publishes with renameat2(RENAME_NOREPLACE), or link(2)
 *    where that is unsupported: both fail atomically with EEXIST, so of
 *    any number of creators (threads or processes) exactly one wins.
 *  - DSQ_PUT_ANY, DSQ_PUT_IF_MATCH and del hold an exclusive flock(2) on
 *    the key's parent directory around check-and-publish, so the etag
 *    comparison and the rename of IF_MATCH are atomic with respect to
 *    every other replacement or deletion in that directory, across threads
 *    and processes.  (CREATE needs no lock: it only turns "absent" into
 *    "present", and the locked operations never make a key absent while
 *    another holder is looking at it.)
 *  - Objects and directories it creates get exactly the store's mode
 *    (store_mode: 0600 and 0700 by default, whatever the umask): the
 *    databases are as private as the mount.
 *  - The etag is hex(inode, size, mtime in ns).  Before publishing, the
 *    temporary file's mtime is set to a fresh nanosecond timestamp that is
 *    strictly increasing within the process; rename/link do not touch
 *    mtime.  So an unchanged object keeps its etag, and a replacement that
 *    reuses a freed inode number still gets a different etag.
 *  - Names starting with ".dsqtmp" are never objects: list hides them (a
 *    listing never deletes anything); debris reports, and on request
 *    removes, the temporary files killed writers left in one directory
 *    (recovery-scan).
 *
 * Thread-safety: the store holds only immutable fields and one atomic flag;
 * every operation opens its own descriptors, and uses *at() calls relative
 * to the root descriptor, so any number of threads may call at once.
 */
#include "env.h"
#include "log.h"
#include "store.h"
#include "store_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_PREFIX ".dsqtmp"       /* reserved: never an object */
#define TMP_FILE_PREFIX ".dsqtmp." /* temporary files of writers */
#define LIST_DEFAULT_MAX 1000
#define WRITE_CHUNK (1u << 30)

struct dsq_store_file {
    struct dsq_store base; /* immutable after open */
    char *dir;             /* immutable: absolute root directory */
    int root_fd;           /* immutable: O_DIRECTORY descriptor of dir */
    atomic_int noreplace;  /* atomic: 1 while renameat2(RENAME_NOREPLACE)
                              works here, 0 once it reported EINVAL */
    mode_t mode;           /* immutable: of the objects it creates */
    mode_t dmode;          /* immutable: of the directories it creates */
};

/* --------------------------------------------------------------- errors */

static const char *errstr(int err, char *buf, size_t n)
{
    /* GNU strerror_r (we build with _GNU_SOURCE): thread-safe */
    return strerror_r(err, buf, n);
}

static dsq_rc errno_rc(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return DSQ_ENOTFOUND;
    case EACCES:
    case EPERM:
    case EROFS:
        return DSQ_EPERM;
    case ENOMEM:
        return DSQ_ENOMEM;
    case ENAMETOOLONG:
        return DSQ_EINVAL;
    default:
        return DSQ_EIO; /* ENOSPC, EDQUOT, EIO, ... */
    }
}

/* Record a failed system call: "<op> <key>: <what>: <strerror>". */
static dsq_rc sys_fail(struct dsq_err *e, dsq_rc rc, int err, const char *op,
                       const char *key, const char *what)
{
    char b[128];
    return dsq_err_set(e, rc, "file store: %s %s: %s: %s", op, key, what,
                       errstr(err, b, sizeof(b)));
}

static dsq_rc sys_err(struct dsq_err *e, int err, const char *op,
                      const char *key, const char *what)
{
    return sys_fail(e, errno_rc(err), err, op, key, what);
}

/* A put's failure: a vanished file or directory is no "not found" here. */
static dsq_rc put_err(struct dsq_err *e, int err, const char *key,
                      const char *what)
{
    dsq_rc rc = errno_rc(err);
    return sys_fail(e, rc == DSQ_ENOTFOUND ? DSQ_EIO : rc, err, "put", key,
                    what);
}

/* ------------------------------------------------------------- helpers */

static void close_keep_errno(int fd)
{
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
}

static void make_info(const struct stat *sb, struct dsq_objinfo *info)
{
    uint64_t mns = (uint64_t)sb->st_mtim.tv_sec * 1000000000u +
                   (uint64_t)sb->st_mtim.tv_nsec;
    info->size = (uint64_t)sb->st_size;
    info->mtime_ms = mns / 1000000u;
    snprintf(info->etag, sizeof(info->etag), "%" PRIx64 "-%" PRIx64 "-%" PRIx64,
             (uint64_t)sb->st_ino, (uint64_t)sb->st_size, mns);
}

/*
 * A fresh wall-clock timestamp in ns, strictly greater than any returned
 * before in this process.  Deliberately the real clock, not dsq_env: the
 * etag's uniqueness must not depend on a test freezing time.
 */
static struct timespec unique_mtime(void)
{
    static _Atomic uint64_t last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t prev = atomic_load(&last);
    uint64_t v;
    do {
        v = now > prev ? now : prev + 1;
    } while (!atomic_compare_exchange_weak(&last, &prev, v));
    ts.tv_sec = (time_t)(v / 1000000000u);
    ts.tv_nsec = (long)(v % 1000000000u);
    return ts;
}

static int lock_dir(int dfd)
{
    while (flock(dfd, LOCK_EX) != 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t chunk = n < WRITE_CHUNK ? n : WRITE_CHUNK;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync the directory containing rel (a path relative to the root; the
   root itself for a single component).  0, or -1 with errno set. */
static int fsync_parent_of(int root_fd, const char *rel)
{
    const char *slash = strrchr(rel, '/');
    char parent[DSQ_KEY_MAX];
    if (!slash) {
        snprintf(parent, sizeof(parent), ".");
    } else {
        size_t n = (size_t)(slash - rel);
        memcpy(parent, rel, n);
        parent[n] = 0;
    }
    int fd = openat(root_fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close_keep_errno(fd);
    return r;
}

/*
 * Create the directory path rel (relative to the root, no trailing '/')
 * and its missing ancestors.  Each directory that exists after mkdirat
 * (made by us or by a racing creator) gets its parent fsync'ed, so it is
 * durable before anything is published inside.  Slow path only: called
 * when the key's parent directory did not open.
 */
static dsq_rc make_dirs(struct dsq_store_file *fs, const char *rel,
                        const char *key, struct dsq_err *e)
{
    char path[DSQ_KEY_MAX];
    size_t n = strlen(rel);
    memcpy(path, rel, n + 1);
    for (size_t i = 0; i <= n; i++) {
        if (path[i] != '/' && path[i] != 0)
            continue;
        char saved = path[i];
        path[i] = 0;
        int made = mkdirat(fs->root_fd, path, fs->dmode) == 0;
        if (made && fchmodat(fs->root_fd, path, fs->dmode, 0) != 0) {
            int err = errno;
            path[i] = saved;
            return put_err(e, err, key, "chmod directory");
        }
        if (!made && errno != EEXIST) {
            int err = errno;
            path[i] = saved;
            if (err == ENOTDIR)
                return dsq_err_set(e, DSQ_EUNSUPPORTED,
                                   "file store: put %s: a path component is "
                                   "an object; the file store cannot hold "
                                   "both key X and keys under X/",
                                   key);
            return put_err(e, err, key, "mkdir");
        }
        if (fsync_parent_of(fs->root_fd, path) != 0) {
            int err = errno;
            path[i] = saved;
            return sys_fail(e, DSQ_EIO, err, "put", key, "fsync directory");
        }
        path[i] = saved;
    }
    return DSQ_OK;
}

/*
 * Open the directory holding key (a fresh descriptor: flock needs one per
 * operation) and point *leaf at the last component.  With create, missing
 * directories are made.  Without create, a missing directory is
 * DSQ_ENOTFOUND.
 */
static dsq_rc open_parent(struct dsq_store_file *fs, const char *key,
                          int create, int *dfd_out, const char **leaf,
                          const char *op, struct dsq_err *e)
{
    const char *slash = strrchr(key, '/');
    char parent[DSQ_KEY_MAX];
    if (!slash) {
        snprintf(parent, sizeof(parent), ".");
        *leaf = key;
    } else {
        size_t n = (size_t)(slash - key);
        memcpy(parent, key, n);
        parent[n] = 0;
        *leaf = slash + 1;
    }
    int dfd = openat(fs->root_fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT && create && slash) {
        dsq_rc rc = make_dirs(fs, parent, key, e);
        if (rc != DSQ_OK)
            return rc;
        dfd = openat(fs->root_fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (dfd < 0) {
        int err = errno;
        if (create && err == ENOTDIR)
            return dsq_err_set(e, DSQ_EUNSUPPORTED,
                               "file store: %s %s: a path component is an "
                               "object; the file store cannot hold both key "
                               "X and keys under X/",
                               op, key);
        if (create && err == ENOENT)
            return sys_fail(e, DSQ_EIO, err, op, key, "open directory");
        return sys_err(e, err, op, key, "open directory");
    }
    *dfd_out = dfd;
    return DSQ_OK;
}

static dsq_rc dir_conflict(struct dsq_err *e, const char *key)
{
    return dsq_err_set(e, DSQ_EUNSUPPORTED,
                       "file store: put %s: a directory of keys '%s/...' "
                       "exists; the file store cannot hold both",
                       key, key);
}

/* ------------------------------------------------------------------ get */

static dsq_rc file_get(struct dsq_store *st, const char *key, uint64_t off,
                       uint64_t len, struct dsq_buf *out,
                       struct dsq_objinfo *info, struct dsq_err *e)
{
    struct dsq_store_file *fs = (struct dsq_store_file *)st;
    dsq_rc rc = DSQ_OK;
    struct stat sb;
    size_t old_len = out->len;

    /* O_NONBLOCK: a FIFO planted in the tree must not hang us */
    int fd = openat(fs->root_fd, key, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return sys_err(e, errno, "get", key, "open");
    if (fstat(fd, &sb) != 0) {
        rc = sys_err(e, errno, "get", key, "fstat");
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc =
            dsq_err_set(e, DSQ_ENOTFOUND, "file store: get %s: not found", key);
        goto out;
    }
    uint64_t size = (uint64_t)sb.st_size;
    uint64_t n = 0;
    if (off < size) {
        n = size - off;
        if (len > 0 && len < n)
            n = len;
    }
    if (n > SIZE_MAX || out->len > out->max || n > out->max - out->len) {
        rc = dsq_err_set(e, DSQ_ERANGE,
                         "file store: get %s: %" PRIu64
                         " bytes exceed the buffer cap of %zu",
                         key, n, out->max);
        goto out;
    }
    if (dsq_buf_reserve(out, (size_t)n) != DSQ_OK) {
        rc = dsq_err_set(e, DSQ_ENOMEM, "file store: get %s: out of memory",
                         key);
        goto out;
    }
    uint64_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, out->data + out->len + done, (size_t)(n - done),
                          (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = sys_fail(e, DSQ_EIO, errno, "get", key, "read");
            goto out;
        }
        if (r == 0) {
            /* objects are immutable: only an outside hand truncates one */
            rc = dsq_err_set(e, DSQ_EIO,
                             "file store: get %s: object shrank while being "
                             "read",
                             key);
            goto out;
        }
        done += (uint64_t)r;
    }
    out->len = old_len + (size_t)n;
    if (info)
        make_info(&sb, info);
out:
    if (rc != DSQ_OK)
        out->len = old_len;
    close(fd);
    return rc;
}

/* ----------------------------------------------------------------- head */

static dsq_rc file_head(struct dsq_store *st, const char *key,
                        struct dsq_objinfo *info, struct dsq_err *e)
{
    struct dsq_store_file *fs = (struct dsq_store_file *)st;
    struct stat sb;
    if (fstatat(fs->root_fd, key, &sb, 0) != 0)
        return sys_err(e, errno, "head", key, "stat");
    if (!S_ISREG(sb.st_mode))
        return dsq_err_set(e, DSQ_ENOTFOUND, "file store: head %s: not found",
                           key);
    if (info)
        make_info(&sb, info);
    return DSQ_OK;
}

/* ------------------------------------------------------------------ put */

/* Publish tmp as leaf only if leaf does not exist; *tmp_gone = 1 once the
   temporary name no longer exists. */
static dsq_rc publish_create(struct dsq_store_file *fs, int dfd,
                             const char *tmp, const char *leaf, const char *key,
                             int *tmp_gone, struct dsq_err *e)
{
    int err;
    if (atomic_load(&fs->noreplace)) {
        if (renameat2(dfd, tmp, dfd, leaf, RENAME_NOREPLACE) == 0) {
            *tmp_gone = 1;
            return DSQ_OK;
        }
        err = errno;
        if (err == EEXIST)
            goto exists;
        if (err != EINVAL && err != ENOSYS && err != EOPNOTSUPP)
            return put_err(e, err, key, "rename");
        atomic_store(&fs->noreplace, 0);
        dsq_log(DSQ_LOG_INFO, "store",
                "file store %s: no renameat2(RENAME_NOREPLACE), using link",
                fs->dir);
    }
    if (linkat(dfd, tmp, dfd, leaf, 0) != 0) {
        err = errno;
        if (err == EEXIST)
            goto exists;
        if (err == EPERM || err == EOPNOTSUPP)
            return sys_fail(e, DSQ_EUNSUPPORTED, err, "put", key,
                            "link (the file store needs hard links or "
                            "renameat2 for create-only puts)");
        return put_err(e, err, key, "link");
    }
    /* published; the temporary name is now just a second link */
    if (unlinkat(dfd, tmp, 0) == 0)
        *tmp_gone = 1;
    return DSQ_OK;

exists:;
    struct stat sb;
    if (fstatat(dfd, leaf, &sb, 0) == 0 && S_ISDIR(sb.st_mode))
        return dir_conflict(e, key);
    return dsq_err_set(e, DSQ_EPRECOND, "file store: put %s: already exists",
                       key);
}

static dsq_rc file_put(struct dsq_store *st, const char *key, const void *data,
                       size_t len, enum dsq_put_cond cond, const char *if_match,
                       struct dsq_objinfo *info, struct dsq_err *e)
{
    struct dsq_store_file *fs = (struct dsq_store_file *)st;
    dsq_rc rc;
    int dfd = -1, fd = -1;
    int tmp_made = 0, tmp_gone = 0;
    const char *leaf = NULL;
    char tmp[128];
    char hex[33];
    static _Atomic uint64_t tmp_seq;
    struct stat sb;

    rc = open_parent(fs, key, 1, &dfd, &leaf, "put", e);
    if (rc != DSQ_OK)
        return rc;

    for (int tries = 0;; tries++) {
        dsq_random_hex32(hex);
        /* pid and counter keep names apart even if a test made the
           random source deterministic */
        snprintf(tmp, sizeof(tmp), "%s%ld.%" PRIu64 ".%s", TMP_FILE_PREFIX,
                 (long)getpid(), atomic_fetch_add(&tmp_seq, 1), hex);
        fd =
            openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, fs->mode);
        if (fd >= 0)
            break;
        if (errno != EEXIST || tries >= 3) {
            rc = put_err(e, errno, key, "create temporary file");
            goto out;
        }
    }
    tmp_made = 1;
    /* exactly the store's mode, whatever the umask (it may widen it) */
    if (fchmod(fd, fs->mode) != 0) {
        rc = put_err(e, errno, key, "chmod");
        goto out;
    }
    if (write_all(fd, data, len) != 0) {
        rc = put_err(e, errno, key, "write");
        goto out;
    }
    struct timespec times[2];
    times[0].tv_sec = 0;
    times[0].tv_nsec = UTIME_OMIT;
    times[1] = unique_mtime();
    if (futimens(fd, times) != 0) {
        rc = put_err(e, errno, key, "set mtime");
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = sys_fail(e, DSQ_EIO, errno, "put", key, "fsync");
        goto out;
    }

    switch (cond) {
    case DSQ_PUT_CREATE:
        rc = publish_create(fs, dfd, tmp, leaf, key, &tmp_gone, e);
        if (rc != DSQ_OK)
            goto out;
        break;
    case DSQ_PUT_IF_MATCH:
    case DSQ_PUT_ANY:
        /* held until out: (closing dfd releases it) */
        if (lock_dir(dfd) != 0) {
            rc = sys_fail(e, DSQ_EIO, errno, "put", key, "lock directory");
            goto out;
        }
        if (cond == DSQ_PUT_IF_MATCH) {
            struct dsq_objinfo cur;
            if (fstatat(dfd, leaf, &sb, 0) != 0) {
                if (errno == ENOENT) {
                    rc = dsq_err_set(e, DSQ_EPRECOND,
                                     "file store: put %s: if-match %s: key "
                                     "does not exist",
                                     key, if_match);
                    goto out;
                }
                rc = put_err(e, errno, key, "stat");
                goto out;
            }
            if (!S_ISREG(sb.st_mode)) {
                rc = dsq_err_set(e, DSQ_EPRECOND,
                                 "file store: put %s: if-match %s: key does "
                                 "not exist",
                                 key, if_match);
                goto out;
            }
            make_info(&sb, &cur);
            if (strcmp(cur.etag, if_match) != 0) {
                rc = dsq_err_set(e, DSQ_EPRECOND,
                                 "file store: put %s: etag is %s, not %s", key,
                                 cur.etag, if_match);
                goto out;
            }
        }
        if (renameat(dfd, tmp, dfd, leaf) != 0) {
            if (errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST)
                rc = dir_conflict(e, key);
            else
                rc = put_err(e, errno, key, "rename");
            goto out;
        }
        tmp_gone = 1;
        break;
    default: /* the dispatcher lets no other value through */
        rc = dsq_err_set(e, DSQ_EINVAL, "file store: put %s: bad condition",
                         key);
        goto out;
    }

    /* still ours (under the lock for ANY/IF_MATCH): the published etag */
    if (fstat(fd, &sb) != 0) {
        rc = put_err(e, errno, key, "fstat");
        goto out;
    }
    if (fsync(dfd) != 0) {
        /* the object is visible but maybe not durable: report it */
        rc = sys_fail(e, DSQ_EIO, errno, "put", key,
                      "fsync directory (object may be visible)");
        goto out;
    }
    if (info)
        make_info(&sb, info);
    rc = DSQ_OK;
out:
    if (tmp_made && !tmp_gone && unlinkat(dfd, tmp, 0) != 0 &&
        errno != ENOENT) {
        char b[128];
        dsq_log(DSQ_LOG_WARNING, "store",
                "file store: put %s: cannot remove temporary %s: %s", key, tmp,
                errstr(errno, b, sizeof(b)));
    }
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd); /* also drops the flock */
    return rc;
}

/* --------------------------------------------------------------- debris */

/* Temporary files of puts that never finished, directly in dir. */
static dsq_rc file_debris(struct dsq_store *st, const char *dir,
                          uint64_t before_ms, int do_delete, dsq_debris_fn fn,
                          void *arg, struct dsq_err *e)
{
    struct dsq_store_file *fs = (struct dsq_store_file *)st;
    char name[DSQ_KEY_MAX + 256];
    int dfd = openat(fs->root_fd, dir[0] ? dir : ".",
                     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return DSQ_OK;
        return sys_err(e, errno, "debris", dir, "open directory");
    }
    DIR *d = fdopendir(dfd);
    if (!d) {
        dsq_rc rc = sys_err(e, errno, "debris", dir, "opendir");
        close(dfd);
        return rc;
    }
    dsq_rc rc = DSQ_OK;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno != 0)
                rc = sys_err(e, errno, "debris", dir, "readdir");
            break;
        }
        if (strncmp(de->d_name, TMP_FILE_PREFIX, sizeof(TMP_FILE_PREFIX) - 1))
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(sb.st_mode))
            continue;
        uint64_t mtime_ms = (uint64_t)sb.st_mtim.tv_sec * 1000u +
                            (uint64_t)sb.st_mtim.tv_nsec / 1000000u;
        if (mtime_ms >= before_ms)
            continue; /* may be a put in progress */
        int deleted = 0;
        if (do_delete) {
            if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                deleted = 1;
            else if (errno != ENOENT) {
                rc = sys_err(e, errno, "debris", de->d_name, "unlink");
                break;
            } else {
                continue; /* removed by someone else meanwhile */
            }
        }
        snprintf(name, sizeof(name), "%s%s", dir, de->d_name);
        if (fn)
            fn(name, (uint64_t)sb.st_size, mtime_ms, deleted, arg);
    }
    if (rc == DSQ_OK && do_delete && fsync(dirfd(d)) != 0)
        rc = sys_fail(e, DSQ_EIO, errno, "debris", dir, "fsync directory");
    closedir(d);
    return rc;
}

/* ------------------------------------------------------------------ del */

static dsq_rc file_del(struct dsq_store *st, const char *key, struct dsq_err *e)
{
    struct dsq_store_file *fs = (struct dsq_store_file *)st;
    const char *leaf = NULL;
    int dfd = -1;
    dsq_rc rc = open_parent(fs, key, 0, &dfd, &leaf, "del", e);
    if (rc == DSQ_ENOTFOUND) {
        dsq_err_clear(e);
        return DSQ_OK; /* no directory, no object */
    }
    if (rc != DSQ_OK)
        return rc;
    if (lock_dir(dfd) != 0) {
        rc = sys_fail(e, DSQ_EIO, errno, "del", key, "lock directory");
        goto out;
    }
    if (unlinkat(dfd, leaf, 0) != 0) {
        if (errno == ENOENT || errno == EISDIR)
            rc = DSQ_OK; /* missing (a directory is not an object) */
        else
            rc = sys_err(e, errno, "del", key, "unlink");
        goto out;
    }
    if (fsync(dfd) != 0)
        rc = sys_fail(e, DSQ_EIO, errno, "del", key, "fsync directory");
out:
    close(dfd);
    return rc;
}

/* ----------------------------------------------------------------- list */

/*
 * The listing walks the tree depth-first in key order: within a directory
 * the entries are sorted by their key, a subdirectory's key ending in '/'.
 * Since no name contains '/', every key below subdirectory "d/" sorts
 * exactly where "d/" does relative to its siblings, so the walk emits keys
 * in ascending byte order and can stop after max_keys + 1 items.
 *
 * Continuation token: "k:<key>" (resume after key) or "p:<prefix>" (resume
 * after every key under a rolled-up common prefix).
 */
/* Per-call state of one listing (on the caller's stack: never shared). */
struct walk_ent {
    char *key;        /* owned: full key, a directory's ends with '/' */
    const char *name; /* into key: the directory entry's name */
    int is_dir;
};

struct walk {
    struct dsq_store_file *fs;
    const char *prefix;
    size_t plen;
    const char *delim; /* NULL: no delimiter */
    size_t dlen;
    const char *start; /* only keys > start; NULL: all */
    const char *skip;  /* keys starting with skip are rolled up already */
    size_t skiplen;
    size_t max;
    /* the page being built (moved to the caller on success) */
    struct dsq_list_entry *ents;
    size_t n_ents, cap_ents;
    char **cps;
    size_t n_cps, cap_cps;
    const char *last; /* last item added (owned by ents/cps) */
    int last_is_cp;
    int done; /* page full and one more item seen */
    struct dsq_err *e;
};

static int ent_cmp(const void *a, const void *b)
{
    const struct walk_ent *x = a, *y = b;
    return strcmp(x->key, y->key);
}

static dsq_rc oom(struct walk *w)
{
    return dsq_err_set(w->e, DSQ_ENOMEM, "file store: list: out of memory");
}

/* Offer one key (a regular file's) to the page. */
static dsq_rc emit(struct walk *w, int dfd, const char *name, const char *key)
{
    if (w->dlen) {
        const char *d =
            memmem(key + w->plen, strlen(key + w->plen), w->delim, w->dlen);
        if (d) {
            if (w->n_ents + w->n_cps >= w->max) {
                w->done = 1;
                return DSQ_OK;
            }
            if (w->n_cps == w->cap_cps) {
                size_t cap = w->cap_cps ? 2 * w->cap_cps : 16;
                char **p = realloc(w->cps, cap * sizeof(*p));
                if (!p)
                    return oom(w);
                w->cps = p;
                w->cap_cps = cap;
            }
            size_t cplen = (size_t)(d - key) + w->dlen;
            char *cp = strndup(key, cplen);
            if (!cp)
                return oom(w);
            w->cps[w->n_cps++] = cp;
            w->last = cp;
            w->last_is_cp = 1;
            w->skip = cp;
            w->skiplen = cplen;
            return DSQ_OK;
        }
    }
    struct stat sb;
    if (fstatat(dfd, name, &sb, 0) != 0) {
        if (errno == ENOENT)
            return DSQ_OK; /* deleted since readdir */
        return sys_err(w->e, errno, "list", key, "stat");
    }
    if (!S_ISREG(sb.st_mode))
        return DSQ_OK;
    if (w->n_ents + w->n_cps >= w->max) {
        w->done = 1;
        return DSQ_OK;
    }
    if (w->n_ents == w->cap_ents) {
        size_t cap = w->cap_ents ? 2 * w->cap_ents : 64;
        struct dsq_list_entry *p = realloc(w->ents, cap * sizeof(*p));
        if (!p)
            return oom(w);
        w->ents = p;
        w->cap_ents = cap;
    }
    struct dsq_list_entry *ent = &w->ents[w->n_ents];
    memset(ent, 0, sizeof(*ent));
    ent->key = strdup(key);
    if (!ent->key)
        return oom(w);
    make_info(&sb, &ent->info);
    w->n_ents++;
    w->last = ent->key;
    w->last_is_cp = 0;
    return DSQ_OK;
}

/* Classify a directory entry: 1 regular file, 2 directory, 0 neither. */
static int entry_kind(int dfd, const struct dirent *de)
{
    struct stat sb;
    switch (de->d_type) {
    case DT_REG:
        return 1;
    case DT_DIR:
        return 2;
    case DT_LNK:
        /* a symlink to a file reads like one; never descend through one */
        return fstatat(dfd, de->d_name, &sb, 0) == 0 && S_ISREG(sb.st_mode);
    case DT_UNKNOWN:
        if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            return 0;
        if (S_ISREG(sb.st_mode))
            return 1;
        if (S_ISDIR(sb.st_mode))
            return 2;
        if (S_ISLNK(sb.st_mode))
            return fstatat(dfd, de->d_name, &sb, 0) == 0 && S_ISREG(sb.st_mode);
        return 0;
    default:
        return 0;
    }
}

/* Should the walk keep entry key (length klen)? */
static int wanted(const struct walk *w, const char *key, size_t klen,
                  int is_dir)
{
    size_t n = klen < w->plen ? klen : w->plen;
    if (memcmp(key, w->prefix, n) != 0)
        return 0;
    if (!is_dir && klen < w->plen)
        return 0;
    if (w->start) {
        int c = strcmp(key, w->start);
        if (!is_dir && c <= 0)
            return 0;
        /* every key below "d/" sorts before start unless start is inside */
        if (is_dir && c < 0 && strncmp(w->start, key, klen) != 0)
            return 0;
    }
    return 1;
}

/* Walk the directory dfd (owned: closed here) whose keys start with dkey. */
static dsq_rc walk_dir(struct walk *w, int dfd, const char *dkey)
{
    dsq_rc rc = DSQ_OK;
    size_t dklen = strlen(dkey);
    struct walk_ent *v = NULL;
    size_t n = 0, cap = 0;
    char kb[DSQ_KEY_MAX + 1];
    DIR *d = fdopendir(dfd);
    if (!d) {
        rc = sys_err(w->e, errno, "list", dkey[0] ? dkey : "/", "opendir");
        close(dfd);
        return rc;
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno != 0) {
                rc = sys_err(w->e, errno, "list", dkey[0] ? dkey : "/",
                             "readdir");
                goto out;
            }
            break;
        }
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (strncmp(name, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0)
            continue; /* never an object (debris: file_debris) */
        /* names that cannot be keys (bad UTF-8, too long) are not objects */
        size_t nlen = strlen(name);
        if (dklen + nlen >= DSQ_KEY_MAX || !dsq_store_key_valid(name))
            continue;
        int kind = entry_kind(dirfd(d), de);
        if (kind == 0)
            continue;
        int is_dir = kind == 2;
        size_t klen = dklen + nlen + (size_t)is_dir;
        if (is_dir && klen + 1 >= DSQ_KEY_MAX)
            continue; /* no key below it can be short enough */
        memcpy(kb, dkey, dklen);
        memcpy(kb + dklen, name, nlen);
        if (is_dir)
            kb[klen - 1] = '/';
        kb[klen] = 0;
        if (!wanted(w, kb, klen, is_dir))
            continue;
        char *key = malloc(klen + 1);
        if (!key) {
            rc = oom(w);
            goto out;
        }
        memcpy(key, kb, klen + 1);
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 32;
            struct walk_ent *p = realloc(v, ncap * sizeof(*p));
            if (!p) {
                free(key);
                rc = oom(w);
                goto out;
            }
            v = p;
            cap = ncap;
        }
        v[n].key = key;
        v[n].name = key + dklen;
        v[n].is_dir = is_dir;
        n++;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), ent_cmp);
    for (size_t i = 0; i < n && !w->done; i++) {
        if (w->skip && strncmp(v[i].key, w->skip, w->skiplen) == 0)
            continue;
        if (!v[i].is_dir) {
            rc = emit(w, dirfd(d), v[i].name, v[i].key);
            if (rc != DSQ_OK)
                goto out;
            continue;
        }
        /* v[i].name ends with '/': fine for openat of a directory */
        int cfd =
            openat(dirfd(d), v[i].name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cfd < 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                continue; /* gone since readdir */
            rc = sys_err(w->e, errno, "list", v[i].key, "open directory");
            goto out;
        }
        rc = walk_dir(w, cfd, v[i].key);
        if (rc != DSQ_OK)
            goto out;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(v[i].key);
    free(v);
    closedir(d);
    return rc;
}

static dsq_rc file_list(struct dsq_store *st, const struct dsq_list_req *req,
                        struct dsq_list_page *out, struct dsq_err *e)
{
    struct dsq_store_file *fs = (struct dsq_store_file *)st;
    struct walk w = {0};
    dsq_rc rc = DSQ_OK;
    char *token_copy = NULL;
    char *next = NULL;

    w.fs = fs;
    w.e = e;
    w.prefix = req->prefix ? req->prefix : "";
    w.plen = strlen(w.prefix);
    if (req->delimiter && req->delimiter[0]) {
        w.delim = req->delimiter;
        w.dlen = strlen(req->delimiter);
    }
    w.max = req->max_keys ? req->max_keys : LIST_DEFAULT_MAX;
    if (w.max > LIST_DEFAULT_MAX)
        w.max = LIST_DEFAULT_MAX; /* S3's cap, so callers meet pages here */
    w.start = req->start_after && req->start_after[0] ? req->start_after : NULL;

    if (req->token) {
        if ((strncmp(req->token, "k:", 2) != 0 &&
             strncmp(req->token, "p:", 2) != 0) ||
            !req->token[2] || strlen(req->token) >= DSQ_KEY_MAX + 2)
            return dsq_err_set(e, DSQ_EINVAL,
                               "file store: list: bad continuation token "
                               "'%.80s'",
                               req->token);
        token_copy = strdup(req->token + 2);
        if (!token_copy)
            return oom(&w);
        if (!w.start || strcmp(token_copy, w.start) > 0)
            w.start = token_copy;
        if (req->token[0] == 'p') {
            w.skip = token_copy;
            w.skiplen = strlen(token_copy);
        }
    }

    /* start at the deepest directory the prefix names completely */
    const char *slash = strrchr(w.prefix, '/');
    int dfd;
    char dkey[DSQ_KEY_MAX + 1];
    if (!slash) {
        dkey[0] = 0;
        dfd = openat(fs->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        size_t n = (size_t)(slash - w.prefix);
        memcpy(dkey, w.prefix, n);
        dkey[n] = 0;
        if (!dsq_store_key_valid(dkey))
            goto done; /* no valid key can have this prefix */
        dfd = openat(fs->root_fd, dkey, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        dkey[n] = '/';
        dkey[n + 1] = 0;
    }
    if (dfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            goto done;
        rc = sys_err(e, errno, "list", w.prefix, "open directory");
        goto fail;
    }
    rc = walk_dir(&w, dfd, dkey);
    if (rc != DSQ_OK)
        goto fail;

done:
    if (w.done) {
        size_t n = strlen(w.last);
        next = malloc(n + 3);
        if (!next) {
            rc = oom(&w);
            goto fail;
        }
        next[0] = w.last_is_cp ? 'p' : 'k';
        next[1] = ':';
        memcpy(next + 2, w.last, n + 1);
    }
    free(token_copy);
    memset(out, 0, sizeof(*out));
    out->entries = w.ents;
    out->n_entries = w.n_ents;
    out->common_prefixes = w.cps;
    out->n_prefixes = w.n_cps;
    out->next_token = next;
    return DSQ_OK;

fail:
    for (size_t i = 0; i < w.n_ents; i++)
        free(w.ents[i].key);
    free(w.ents);
    for (size_t i = 0; i < w.n_cps; i++)
        free(w.cps[i]);
    free(w.cps);
    free(token_copy);
    return rc;
}

/* ----------------------------------------------------------------- open */

static void file_destroy(struct dsq_store *st)
{
    struct dsq_store_file *fs = (struct dsq_store_file *)st;
    if (fs->root_fd >= 0)
        close(fs->root_fd);
    free(fs->dir);
    free(fs->base.url);
    free(fs);
}

static const struct dsq_store_ops file_ops = {
    .name = "file",
    .get = file_get,
    .put = file_put,
    .head = file_head,
    .list = file_list,
    .del = file_del,
    .debris = file_debris,
    .destroy = file_destroy,
};

void dsq__store_file_force_link(struct dsq_store *st)
{
    DSQ_INVARIANT(st && st->ops == &file_ops);
    atomic_store(&((struct dsq_store_file *)st)->noreplace, 0);
}

/* mkdir -p of an absolute path, fsync'ing the parent of each new one;
   new directories get dmode. */
static dsq_rc make_root(const char *dir, mode_t dmode, struct dsq_err *e)
{
    char *path = strdup(dir);
    char b[128];
    dsq_rc rc = DSQ_OK;
    if (!path)
        return dsq_err_set(e, DSQ_ENOMEM, "file store %s: out of memory", dir);
    size_t n = strlen(path);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != 0)
            continue;
        char saved = path[i];
        path[i] = 0;
        if (mkdir(path, dmode) == 0) {
            if (chmod(path, dmode) != 0) {
                int err = errno;
                rc =
                    dsq_err_set(e, errno_rc(err), "file store %s: chmod %s: %s",
                                dir, path, errstr(err, b, sizeof(b)));
                goto out;
            }
            /* new: make its entry durable */
            char *slash = strrchr(path, '/');
            *slash = 0;
            int fd = open(slash == path ? "/" : path,
                          O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0 || fsync(fd) != 0) {
                int err = errno;
                close_keep_errno(fd);
                rc = dsq_err_set(e, DSQ_EIO,
                                 "file store %s: fsync directory: %s", dir,
                                 errstr(err, b, sizeof(b)));
                goto out;
            }
            close(fd);
            *slash = '/';
        } else if (errno != EEXIST) {
            int err = errno;
            rc = dsq_err_set(
                e, errno_rc(err) == DSQ_ENOTFOUND ? DSQ_EINVAL : errno_rc(err),
                "file store %s: mkdir %s: %s", dir, path,
                errstr(err, b, sizeof(b)));
            goto out;
        }
        path[i] = saved;
    }
out:
    free(path);
    return rc;
}

dsq_rc dsq_store_file_open(const char *dir, struct dsq_store **out,
                           struct dsq_err *e)
{
    return dsq_store_file_open_mode(dir, DSQ_STORE_MODE_DEFAULT, out, e);
}

mode_t dsq_store_dir_mode(unsigned mode)
{
    /* a directory is searchable by whoever may read its objects */
    return (mode_t)(mode | ((mode & 0444) >> 2) | 0700);
}

dsq_rc dsq_store_file_open_mode(const char *dir, unsigned mode,
                                struct dsq_store **out, struct dsq_err *e)
{
    char b[128];
    dsq_rc rc;
    if (!dir || dir[0] != '/')
        return dsq_err_set(e, DSQ_EINVAL,
                           "file store '%s': directory must be an absolute "
                           "path",
                           dir ? dir : "(null)");
    if ((mode & ~0666u) || (mode & 0600u) != 0600u)
        return dsq_err_set(e, DSQ_EINVAL,
                           "file store %s: object mode %04o: only read and "
                           "write bits, with the owner's both",
                           dir, mode);
    rc = make_root(dir, dsq_store_dir_mode(mode), e);
    if (rc != DSQ_OK)
        return rc;
    struct dsq_store_file *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return dsq_err_set(e, DSQ_ENOMEM, "file store %s: out of memory", dir);
    fs->root_fd = -1;
    fs->base.ops = &file_ops;
    fs->base.flags = DSQ_STORE_LOCAL;
    fs->mode = (mode_t)mode;
    fs->dmode = dsq_store_dir_mode(mode);
    atomic_init(&fs->noreplace, 1);
    fs->dir = strdup(dir);
    size_t ulen = strlen(dir) + sizeof("file://");
    fs->base.url = malloc(ulen);
    if (!fs->dir || !fs->base.url) {
        rc = dsq_err_set(e, DSQ_ENOMEM, "file store %s: out of memory", dir);
        goto fail;
    }
    snprintf(fs->base.url, ulen, "file://%s", dir);
    fs->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->root_fd < 0) {
        int err = errno;
        rc = dsq_err_set(e, err == ENOTDIR ? DSQ_EINVAL : errno_rc(err),
                         "file store %s: open: %s", dir,
                         errstr(err, b, sizeof(b)));
        goto fail;
    }
    *out = &fs->base;
    return DSQ_OK;
fail:
    file_destroy(&fs->base);
    return rc;
}
