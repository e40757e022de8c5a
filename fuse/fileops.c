/*
 * fileops.c - the FUSE operations on open files: open, read, write,
 * flush, release, fsync, setattr (size and mode) and the lock requests
 * (getlk, setlk, flock).  A database's operations go to dbfile.c and dblock.c
 * (its -wal and -shm to wal.c), a side file's to its local file in fs->sidedir,
 * a status file's to its rendered text.  The namespace (lookup, create, unlink,
 * directories) is fs.c's.
 *
 * Layer: FUSE front end.  Locks: fs->mu only around inode-table lookups
 * and the lock tables of non-database inodes (fs.h); dbfile.c and wal.c
 * take df->mu themselves.  Nothing here holds fs->mu across a call into
 * dbfile.c or a system call on a side file.
 */
#include "fsops.h"

#include "loop.h"
#include "names.h"
#include "views.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- attributes ---- */

void dsq_fop_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                     int to_set, struct fuse_file_info *fi)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    int r = 0;
    if (!in)
        return;
    if (to_set & FUSE_SET_ATTR_SIZE) {
        if (in->kind == DSQ_I_DB) {
            r = dsq_dbfile_truncate(in->df, (uint64_t)attr->st_size);
        } else if (in->kind == DSQ_I_SIDE) {
            int isj = 0;
            dsq_fs_is_side(in->name, &isj);
            struct dsq_dbfile *df = isj ? dsq_fs_journal_db(fs, in) : NULL;
            if (df)
                dsq_dbfile_journal_touched(df);
            if (df && attr->st_size == 0) {
                r = dsq_dbfile_journal_commit(df, "journal truncation");
                dsq_fs_gone_if_refused(fs, df);
            }
            if (r == 0) {
                int rr = fi ? ftruncate((int)fi->fh, attr->st_size)
                            : truncate(in->path, attr->st_size);
                if (rr != 0)
                    r = -errno;
            }
            struct dsq_dbfile *wdf = dsq_fs_side_db(fs, in, DSQ_SIDE_WAL);
            if (r == 0 && wdf)
                dsq_dbfile_wal_end(wdf, (int64_t)attr->st_size);
        } else {
            r = in->kind == DSQ_I_DIR || in->kind == DSQ_I_STATDIR ? -EISDIR
                                                                   : -EACCES;
        }
    }
    if (r == 0 && (to_set & FUSE_SET_ATTR_MODE)) {
        if (in->kind == DSQ_I_DB) {
            /* (L10) stored with a version: every mount shows it */
            r = fs->cfg->read_only
                    ? -EROFS
                    : dsq_dbfile_chmod(in->df, (uint32_t)attr->st_mode);
        } else if (in->kind == DSQ_I_SIDE) {
            if (chmod(in->path, attr->st_mode & DSQ_MODE_KEPT) != 0)
                r = -errno;
        } else if (in->kind != DSQ_I_DIR) {
            r = -EACCES;
        }
    }
    /* owner and times are fixed: accepted and ignored (cp -p) */
    if (r) {
        fuse_reply_err(req, -r);
        return;
    }
    struct stat st;
    dsq_fs_fill_attr(fs, in, &st);
    fuse_reply_attr(req, &st, dsq_fs_attr_timeout(in));
}

/* The database a side file of kind k belongs to (NAME-journal -> NAME). */
struct dsq_dbfile *dsq_fs_side_db(struct dsq_fs *fs, struct dsq_inode *side,
                                  enum dsq_side_kind k)
{
    char name[1024];
    size_t bl = 0;
    if (dsq_name_side(side->name, &bl) != k || bl >= sizeof(name))
        return NULL;
    memcpy(name, side->name, bl);
    name[bl] = 0;
    pthread_mutex_lock(&fs->mu);
    struct dsq_inode *db = dsq_fs_child(fs, side->parent, name);
    struct dsq_dbfile *df = db && db->kind == DSQ_I_DB ? db->df : NULL;
    pthread_mutex_unlock(&fs->mu);
    return df;
}

struct dsq_dbfile *dsq_fs_journal_db(struct dsq_fs *fs, struct dsq_inode *side)
{
    return dsq_fs_side_db(fs, side, DSQ_SIDE_JOURNAL);
}

/* Opens and replies; returns the error replied (0 or -errno). */
int dsq_fop_open_common(fuse_req_t req, struct dsq_inode *in,
                        struct fuse_file_info *fi, int created)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    int r = 0;
    int acc = fi->flags & O_ACCMODE;
    switch (in->kind) {
    case DSQ_I_DB:
        if (acc != O_RDONLY && fs->cfg->read_only) {
            r = -EROFS;
            break;
        }
        r = dsq_dbfile_on_open(in->df,
                               (fi->flags & O_TRUNC) && acc != O_RDONLY);
        fi->keep_cache = 1;
        /* (B5) a WAL database is written through: its checkpoints must
           reach the daemon at write(2) (writeback.c) */
        if (r == 0 && fs->cfg->writeback && dsq_dbfile_is_wal(in->df))
            fi->direct_io = 1;
        fi->fh = 0;
        break;
    case DSQ_I_SIDE: {
        struct dsq_dbfile *wdf = dsq_fs_side_db(fs, in, DSQ_SIDE_WAL);
        if (wdf)
            dsq_dbfile_wal_seen(wdf, in->ino);
        /* a rollback journal's page records (4 + page size + 4 bytes at
           unaligned offsets) would each be split at every kernel page
           boundary through the page cache: written direct, one write(2)
           is one request; and no open of it ever sees a stale cached
           header */
        enum dsq_side_kind sk = dsq_name_side(in->name, NULL);
        if (sk == DSQ_SIDE_JOURNAL || sk == DSQ_SIDE_SUPER)
            fi->direct_io = 1;
        /* (B1) with the writeback cache a -wal frame would sit in the
           kernel past its commit point: every side file but the -shm
           (SQLite maps it shared) is written through */
        if (fs->cfg->writeback && sk != DSQ_SIDE_SHM)
            fi->direct_io = 1;
        if (created)
            break; /* fh set by create */
        int fd = open(in->path,
                      (fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY)) | O_CLOEXEC);
        if (fd < 0)
            r = -errno;
        fi->fh = (uint64_t)fd;
        fi->keep_cache = 1;
        break;
    }
    case DSQ_I_VIEW:
        /* read-only: SQLite then opens it O_RDONLY and says "attempt to
           write a readonly database" at any write */
        if (acc != O_RDONLY || (fi->flags & O_TRUNC)) {
            r = -EROFS;
            break;
        }
        fi->keep_cache = 1; /* immutable: the kernel may keep its pages */
        fi->fh = 0;
        break;
    case DSQ_I_STATFILE: {
        if (acc != O_RDONLY) {
            r = -EACCES;
            break;
        }
        struct dsq_statbuf *sb = calloc(1, sizeof(*sb));
        if (!sb) {
            r = -ENOMEM;
            break;
        }
        sb->p = dsq_status_render(fs, in->path, &sb->len);
        fi->fh = (uint64_t)(uintptr_t)sb;
        fi->direct_io = 1; /* not a SQLite file: sizes vary */
        break;
    }
    default:
        r = -EISDIR;
    }
    if (r) {
        fuse_reply_err(req, -r);
        return r;
    }
    if (created) {
        struct fuse_entry_param ep;
        dsq_fs_entry_param(fs, in, &ep);
        if (fuse_reply_create(req, &ep, fi) == -ENOENT &&
            in->kind == DSQ_I_SIDE)
            close((int)fi->fh);
    } else {
        fuse_reply_open(req, fi);
    }
    return 0;
}

void dsq_fop_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    if (in)
        dsq_fop_open_common(req, in, fi, 0);
}

void dsq_fop_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                  struct fuse_file_info *fi)
{
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    if (!in)
        return;
    if (in->kind == DSQ_I_STATFILE) {
        struct dsq_statbuf *sb = (struct dsq_statbuf *)(uintptr_t)fi->fh;
        if (!sb->p || (size_t)off >= sb->len) {
            fuse_reply_buf(req, NULL, 0);
            return;
        }
        size_t n = sb->len - (size_t)off;
        fuse_reply_buf(req, sb->p + off, n < size ? n : size);
        return;
    }
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    ssize_t n;
    if (in->kind == DSQ_I_DB)
        n = dsq_dbfile_read(in->df, buf, size, off);
    else if (in->kind == DSQ_I_VIEW)
        n = dsq_view_read(in->view, buf, size, off);
    else {
        n = pread((int)fi->fh, buf, size, off);
        if (n < 0)
            n = -errno;
    }
    if (n < 0)
        fuse_reply_err(req, (int)-n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/*
 * (N1) A database created here whose content proved not to be SQLite
 * leaves the namespace: the name is free again, nothing is in the store.
 */
void dsq_fs_gone_if_refused(struct dsq_fs *fs, struct dsq_dbfile *df)
{
    if (!df || !dsq_dbfile_content_refused(df))
        return;
    pthread_mutex_lock(&fs->mu);
    struct dsq_inode *in = dsq_fs_ino(fs, df->ino);
    int was = 1;
    uint64_t parent = 0;
    char *name = NULL;
    if (in && in->df == df) {
        was = in->unlinked;
        in->unlinked = 1;
        parent = in->parent;
        name = strdup(in->name);
    }
    pthread_mutex_unlock(&fs->mu);
    if (!was && name && fs->se) {
        dsq_loop_may_block();
        fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name));
    }
    free(name);
}

void dsq_fop_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
                   off_t off, struct fuse_file_info *fi)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    struct dsq_dbfile *wdf = NULL;
    if (!in)
        return;
    ssize_t n;
    if (in->kind == DSQ_I_DB) {
        n = dsq_dbfile_write(in->df, buf, size, off);
        if (n < 0)
            dsq_fs_gone_if_refused(fs, in->df);
    } else if (in->kind == DSQ_I_SIDE &&
               (wdf = dsq_fs_side_db(fs, in, DSQ_SIDE_WAL)) != NULL) {
        n = dsq_wal_write(wdf, (int)fi->fh, buf, size, off, in->ino);
    } else if (in->kind == DSQ_I_SIDE) {
        int isj = 0;
        n = 0;
        dsq_fs_is_side(in->name, &isj);
        struct dsq_dbfile *df = isj ? dsq_fs_journal_db(fs, in) : NULL;
        if (df)
            dsq_dbfile_journal_touched(df); /* before the write lands */
        if (df && off == 0 && size >= 8 &&
            all_zero(buf, size < 28 ? size : 28)) {
            /* PERSIST: the journal header zeroed is the commit point */
            n = dsq_dbfile_journal_commit(df, "journal header zeroed");
            dsq_fs_gone_if_refused(fs, df);
        }
        if (n == 0) {
            n = pwrite((int)fi->fh, buf, size, off);
            if (n < 0)
                n = -errno;
        }
    } else {
        n = -EACCES;
    }
    if (n < 0)
        fuse_reply_err(req, (int)-n);
    else
        fuse_reply_write(req, (size_t)n);
}

void dsq_fop_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    if (!in)
        return;
    int r = 0;
    if (in->kind == DSQ_I_DB) {
        r = dsq_dbfile_flush(in->df, fi->lock_owner);
        dsq_fs_gone_if_refused(fs, in->df);
    } else {
        struct dsq_dbfile *sdf = in->kind == DSQ_I_SIDE
                                     ? dsq_fs_side_db(fs, in, DSQ_SIDE_SHM)
                                     : NULL;
        if (sdf)
            dsq_wal_shm_release(sdf, fi->lock_owner);
        pthread_mutex_lock(&fs->mu);
        dsq_locks_release_owner(&in->locks, fi->lock_owner);
        pthread_mutex_unlock(&fs->mu);
    }
    fuse_reply_err(req, -r);
}

void dsq_fop_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    if (!in)
        return;
    if (in->kind == DSQ_I_DB) {
        if (fi->flock_release)
            dsq_dbfile_flock_release(in->df, fi->lock_owner);
        dsq_dbfile_on_release(in->df);
        dsq_fs_gone_if_refused(fs, in->df);
    } else if (in->kind == DSQ_I_SIDE) {
        close((int)fi->fh);
        if (fi->flock_release) {
            pthread_mutex_lock(&fs->mu);
            dsq_locks_release_owner(&in->locks, fi->lock_owner);
            pthread_mutex_unlock(&fs->mu);
        }
    } else if (in->kind == DSQ_I_STATFILE) {
        struct dsq_statbuf *sb = (struct dsq_statbuf *)(uintptr_t)fi->fh;
        if (sb) {
            free(sb->p);
            free(sb);
        }
    }
    fuse_reply_err(req, 0);
}

void dsq_fop_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                   struct fuse_file_info *fi)
{
    (void)datasync;
    (void)fi;
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    if (!in)
        return;
    int r = 0;
    if (in->kind == DSQ_I_DB) {
        r = dsq_dbfile_fsync(in->df);
        dsq_fs_gone_if_refused(dsq_fs_of(req), in->df);
    }
    /* side files need no durability: a journal only matters while this
       daemon holds the transaction it protects (docs/locking.md) */
    fuse_reply_err(req, -r);
}

/* ---- locks ---- */

void dsq_fop_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                   struct flock *lock)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    if (!in)
        return;
    struct dsq_dbfile *sdf =
        in->kind == DSQ_I_SIDE ? dsq_fs_side_db(fs, in, DSQ_SIDE_SHM) : NULL;
    if (in->kind == DSQ_I_DB) {
        dsq_dbfile_getlk(in->df, fi->lock_owner, lock);
    } else if (sdf) {
        dsq_wal_shm_getlk(sdf, fi->lock_owner, lock);
    } else {
        uint64_t start = (uint64_t)lock->l_start;
        uint64_t end =
            lock->l_len == 0 ? UINT64_MAX : start + (uint64_t)lock->l_len - 1;
        pthread_mutex_lock(&fs->mu);
        const struct dsq_lock *c = dsq_locks_conflict(
            &in->locks, fi->lock_owner, start, end, lock->l_type);
        if (c) {
            lock->l_type = (short)c->type;
            lock->l_start = (off_t)c->start;
            lock->l_len =
                c->end == UINT64_MAX ? 0 : (off_t)(c->end - c->start + 1);
            lock->l_pid = c->pid;
        } else {
            lock->l_type = F_UNLCK;
        }
        pthread_mutex_unlock(&fs->mu);
    }
    fuse_reply_lock(req, lock);
}

void dsq_fop_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                   struct flock *lock, int sleep)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    if (!in)
        return;
    int r;
    struct dsq_dbfile *sdf =
        in->kind == DSQ_I_SIDE ? dsq_fs_side_db(fs, in, DSQ_SIDE_SHM) : NULL;
    if (in->kind == DSQ_I_DB) {
        r = dsq_dbfile_setlk(in->df, fi->lock_owner, lock, sleep, req);
    } else if (in->kind == DSQ_I_VIEW && lock->l_type == F_WRLCK) {
        r = -EACCES; /* no lock past SHARED on a view */
    } else if (sdf) {
        r = dsq_wal_shm_setlk(sdf, fi->lock_owner, lock, sleep, req);
    } else {
        uint64_t start = (uint64_t)lock->l_start;
        uint64_t end =
            lock->l_len == 0 ? UINT64_MAX : start + (uint64_t)lock->l_len - 1;
        pthread_mutex_lock(&fs->mu);
        for (;;) {
            if (lock->l_type == F_UNLCK ||
                !dsq_locks_conflict(&in->locks, fi->lock_owner, start, end,
                                    lock->l_type)) {
                r = dsq_locks_apply(&in->locks, fi->lock_owner, start, end,
                                    lock->l_type, lock->l_pid);
                break;
            }
            if (!sleep || fuse_req_interrupted(req) ||
                fuse_session_exited(fs->se)) {
                r = sleep ? -EINTR : -EAGAIN;
                break;
            }
            pthread_mutex_unlock(&fs->mu);
            dsq_loop_may_block();
            usleep(5000);
            pthread_mutex_lock(&fs->mu);
        }
        pthread_mutex_unlock(&fs->mu);
    }
    fuse_reply_err(req, -r);
}

void dsq_fop_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                   int op)
{
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    if (!in)
        return;
    int r = 0;
    if (in->kind == DSQ_I_DB)
        r = dsq_dbfile_flock(in->df, fi->lock_owner, op, req);
    /* flock on side files: accepted (only SQLite uses them, without
       flock) */
    fuse_reply_err(req, -r);
}
