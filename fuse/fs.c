/*
 * fs.c - the FUSE low-level operations table, the inode table, the
 * namespace (databases by name, prefixes as directories, local side
 * files: lookup, create, unlink, directories), and the one dsq_rc -> errno
 * table (reproduced in docs/errors.md).  Operations on open files are
 * fileops.c's.
 *
 * Layer: FUSE front end.  Threads and locks: see fs.h.
 *
 * Invariants:
 *  (N1) Any regular-file name is a database (names.c maps it to a store
 *       prefix), except SQLite's side files (NAME-journal, -wal, -shm,
 *       -mj...); names that cannot be store keys are refused with one log
 *       line.  A database created here exists in the store from its first
 *       commit; until then it shows only on this mount, and a write that
 *       proves it is not a SQLite file removes it (dbfile.c, L9).
 *  (N2) Side files live only in fs->sidedir on this host, at a path that
 *       is a pure function of their path on the mount (dbfile.c finds
 *       journals there).
 *  (N3) A missing name is answered with a cacheable negative entry.
 *  (N4) Inodes of databases and directories live as long as the mount;
 *       side-file and status inodes are freed when the kernel forgets
 *       them (their numbers are reused with a new generation).
 */
#include "fs.h"
#include "fsops.h"

#include "devio.h"
#include "listing.h"
#include "log.h"
#include "loop.h"
#include "names.h"
#include "views.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* ---- the errno table (docs/errors.md) ---- */

int dsq_rc_errno(dsq_rc rc)
{
    switch (rc) {
    case DSQ_OK:
        return 0;
    case DSQ_ENOMEM:
        return ENOMEM;
    case DSQ_EINVAL:
        return EINVAL;
    case DSQ_EIO:
        return EIO;
    case DSQ_ENOTFOUND:
        return ENOENT;
    case DSQ_EPRECOND:
        return EIO;
    /* What SQLite makes of each (os_unix.c, docs/errors.md): on a read,
       EIO (also ERANGE, ENXIO) is SQLITE_IOERR_CORRUPTFS, reported as
       "database disk image is malformed", any other errno
       SQLITE_IOERR_READ "disk I/O error"; on a lock EAGAIN, EACCES,
       EBUSY, EINTR, ETIMEDOUT, ENOLCK are SQLITE_BUSY, EPERM SQLITE_PERM,
       any other SQLITE_IOERR_LOCK.  A store that is down, an object that
       fails its checksum or is missing is none of "malformed" or
       "locked": each has its own errno, each an I/O error to SQLite. */
    case DSQ_ETRANSIENT:
        return EREMOTEIO; /* the store is down or overloaded */
    case DSQ_ECORRUPT:
        return EBADMSG; /* stored data failed its checksum or checks */
    case DSQ_EMISSING:
        return ENODATA; /* a referenced object is not in the store */
    case DSQ_ECONFLICT:
        return EIO; /* at a lock: EAGAIN, see dblock.c */
    case DSQ_EAUTH:
        return EPERM; /* EACCES would be SQLITE_BUSY at a lock */
    case DSQ_EBUSY:
        return EBUSY;
    case DSQ_ERANGE:
        return EFBIG;
    case DSQ_EEXIST:
        return EEXIST;
    case DSQ_EUNSUPPORTED:
        return EOPNOTSUPP;
    case DSQ_ERETRIES:
        return EIO;
    case DSQ_EPERM:
        return EPERM;
    default:
        return EIO;
    }
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- names (the rules: names.c) ---- */

int dsq_fs_is_side(const char *name, int *is_journal)
{
    enum dsq_side_kind k = dsq_name_side(name, NULL);
    if (is_journal)
        *is_journal = k == DSQ_SIDE_JOURNAL;
    return k != DSQ_SIDE_NONE;
}

static char *join(const char *dir, const char *name, size_t namelen)
{
    size_t dl = strlen(dir);
    char *s = malloc(dl + namelen + 2);
    if (!s)
        return NULL;
    if (dl) {
        memcpy(s, dir, dl);
        s[dl++] = '/';
    }
    memcpy(s + dl, name, namelen);
    s[dl + namelen] = 0;
    return s;
}

/* (N2) sidedir/escaped(path); '/' and '%' are %-escaped. */
char *dsq_fs_side_path(const struct dsq_fs *fs, const char *path,
                       const char *suffix)
{
    size_t cap = strlen(fs->sidedir) + strlen(path) * 3 + strlen(suffix) + 2;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t n = (size_t)snprintf(out, cap, "%s/", fs->sidedir);
    for (const char *s = path; *s; s++) {
        if (*s == '/' || *s == '%')
            n +=
                (size_t)snprintf(out + n, cap - n, "%%%02X", (unsigned char)*s);
        else
            out[n++] = *s;
    }
    snprintf(out + n, cap - n, "%s", suffix);
    return out;
}

static char *side_path(struct dsq_fs *fs, const char *dir, const char *name)
{
    char *full = join(dir, name, strlen(name));
    if (!full)
        return NULL;
    char *out = dsq_fs_side_path(fs, full, "");
    free(full);
    return out;
}

/* ---- inode table (fs->mu held) ---- */

struct dsq_inode *dsq_fs_ino(struct dsq_fs *fs, fuse_ino_t ino)
{
    if (ino == 0 || ino > fs->n_inodes)
        return NULL;
    return fs->inodes[ino - 1];
}

struct dsq_inode *dsq_fs_child(struct dsq_fs *fs, fuse_ino_t parent,
                               const char *name)
{
    for (size_t i = 0; i < fs->n_inodes; i++) {
        struct dsq_inode *in = fs->inodes[i];
        if (in && in->parent == parent && !in->unlinked &&
            !strcmp(in->name, name))
            return in;
    }
    return NULL;
}

static struct dsq_inode *ino_add(struct dsq_fs *fs, enum dsq_ikind kind,
                                 fuse_ino_t parent, const char *name,
                                 const char *path)
{
    struct dsq_inode *in = calloc(1, sizeof(*in));
    if (!in)
        return NULL;
    in->kind = kind;
    in->parent = parent;
    in->name = strdup(name);
    in->path = strdup(path);
    in->mtime_ms = wall_ms();
    if (!in->name || !in->path)
        goto fail;
    size_t slot = fs->n_inodes;
    for (size_t i = 1; i < fs->n_inodes; i++)
        if (!fs->inodes[i]) {
            slot = i;
            break;
        }
    if (slot == fs->n_inodes) {
        if (fs->n_inodes == fs->cap_inodes) {
            size_t nc = fs->cap_inodes ? fs->cap_inodes * 2 : 64;
            struct dsq_inode **nv = realloc(fs->inodes, nc * sizeof(*nv));
            if (!nv)
                goto fail;
            fs->inodes = nv;
            fs->cap_inodes = nc;
        }
        fs->n_inodes++;
    }
    fs->inodes[slot] = in;
    in->ino = slot + 1;
    in->generation = ++fs->next_generation;
    return in;
fail:
    free(in->name);
    free(in->path);
    free(in);
    return NULL;
}

static void db_unref_locked(struct dsq_fs *fs, uint64_t ino);

static void ino_free(struct dsq_fs *fs, struct dsq_inode *in)
{
    fs->inodes[in->ino - 1] = NULL;
    if (in->view) {
        uint64_t base = dsq_view_base_ino(in->view);
        dsq_view_free(in->view);
        db_unref_locked(fs, base);
    }
    dsq_dbfile_free(in->df);
    dsq_locks_free(&in->locks);
    free(in->name);
    free(in->path);
    free(in);
}

static void ino_forget(struct dsq_fs *fs, fuse_ino_t ino, uint64_t n)
{
    struct dsq_inode *in = dsq_fs_ino(fs, ino);
    if (!in || ino == FUSE_ROOT_ID)
        return;
    in->nlookup = in->nlookup > n ? in->nlookup - n : 0;
    if (in->nlookup > 0)
        return;
    if (in->kind == DSQ_I_SIDE || in->kind == DSQ_I_STATFILE ||
        in->kind == DSQ_I_VIEW ||
        (in->kind == DSQ_I_DB && in->unlinked && !in->view_refs))
        ino_free(fs, in);
}

static void db_unref_locked(struct dsq_fs *fs, uint64_t ino)
{
    struct dsq_inode *in = dsq_fs_ino(fs, ino);
    if (!in || in->kind != DSQ_I_DB || !in->view_refs)
        return;
    if (--in->view_refs == 0 && in->unlinked && in->nlookup == 0)
        ino_free(fs, in);
}

void dsq_fs_db_unref(struct dsq_fs *fs, uint64_t ino)
{
    pthread_mutex_lock(&fs->mu);
    db_unref_locked(fs, ino);
    pthread_mutex_unlock(&fs->mu);
}

void dsq_fs_each_db(struct dsq_fs *fs,
                    void (*fn)(struct dsq_dbfile *df, void *arg), void *arg)
{
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < fs->n_inodes; i++) {
        struct dsq_inode *in = fs->inodes[i];
        if (in && in->kind == DSQ_I_DB && !in->unlinked && in->df)
            fn(in->df, arg);
    }
    pthread_mutex_unlock(&fs->mu);
}

/* ---- store probes ---- */

/*
 * What the store holds under prefix/: *is_db when it is a database
 * (root.json or manifests/), else *is_dir when it holds anything.  One
 * listing request.  0, or -errno on a store error (logged).
 */
static int store_probe(struct dsq_fs *fs, const char *prefix, int *is_db,
                       int *is_dir)
{
    char key[DSQ_KEY_MAX];
    struct dsq_err e;
    dsq_err_clear(&e);
    *is_db = *is_dir = 0;
    int n = snprintf(key, sizeof(key), "%s/", prefix);
    if (n < 0 || (size_t)n >= sizeof(key))
        return 0; /* no key can have it: nothing there */
    struct dsq_list_req req = {.prefix = key, .delimiter = "/"};
    struct dsq_list_page pg = {0};
    dsq_rc rc = dsq_store_list(fs->st, &req, &pg, &e);
    if (rc != DSQ_OK) {
        dsq_log(DSQ_LOG_ERR, "fs", "store: %s", dsq_err_text(&e, rc));
        return -dsq_rc_errno(rc);
    }
    size_t kl = (size_t)n;
    for (size_t i = 0; i < pg.n_entries; i++)
        if (!strcmp(pg.entries[i].key + kl, "root.json"))
            *is_db = 1;
    for (size_t i = 0; i < pg.n_prefixes; i++)
        if (!strcmp(pg.common_prefixes[i] + kl, "manifests/"))
            *is_db = 1;
    *is_dir = !*is_db && (pg.n_entries > 0 || pg.n_prefixes > 0);
    dsq_list_page_cleanup(&pg);
    return 0;
}

int dsq_fs_store_probe(struct dsq_fs *fs, const char *prefix, int *is_db,
                       int *is_dir)
{
    return store_probe(fs, prefix, is_db, is_dir);
}

static int store_db_exists(struct dsq_fs *fs, const char *prefix)
{
    int db, dir;
    int r = store_probe(fs, prefix, &db, &dir);
    return r < 0 ? r : db;
}

/* ---- attributes ---- */

void dsq_fs_fill_attr(struct dsq_fs *fs, struct dsq_inode *in, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = in->ino;
    st->st_uid = fs->uid;
    st->st_gid = fs->gid;
    st->st_nlink = 1;
    st->st_blksize = 4096;
    uint64_t mt = in->mtime_ms;
    switch (in->kind) {
    case DSQ_I_DIR:
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
        break;
    case DSQ_I_STATDIR:
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        break;
    case DSQ_I_DB: {
        uint64_t size = 0;
        uint32_t mode = DSQ_DEFAULT_MODE;
        dsq_dbfile_attr(in->df, &size, &mt, &mode);
        st->st_mode = S_IFREG | (fs->cfg->read_only ? (mode & ~0222u) : mode);
        st->st_size = (off_t)size;
        break;
    }
    case DSQ_I_SIDE: {
        struct stat ls;
        st->st_mode = S_IFREG | 0644;
        if (!in->unlinked && stat(in->path, &ls) == 0) {
            st->st_mode = S_IFREG | (ls.st_mode & DSQ_MODE_KEPT);
            st->st_size = ls.st_size;
            mt = (uint64_t)ls.st_mtim.tv_sec * 1000 +
                 (uint64_t)ls.st_mtim.tv_nsec / 1000000;
        }
        break;
    }
    case DSQ_I_VIEW: {
        uint64_t size = 0, bsize, bmt;
        dsq_view_attr(in->view, &size, &mt);
        /* the live database's mode, less write bits: a chmod that closes
           a database closes its history too (the base inode lives while
           views of it do) */
        uint32_t mode = DSQ_DEFAULT_MODE;
        pthread_mutex_lock(&fs->mu);
        struct dsq_inode *b = dsq_fs_ino(fs, dsq_view_base_ino(in->view));
        struct dsq_dbfile *bdf = b && b->kind == DSQ_I_DB ? b->df : NULL;
        pthread_mutex_unlock(&fs->mu);
        if (bdf)
            dsq_dbfile_attr(bdf, &bsize, &bmt, &mode);
        st->st_mode = S_IFREG | (mode & 0444);
        st->st_size = (off_t)size;
        break;
    }
    case DSQ_I_STATFILE: {
        size_t len = 0;
        char *s = dsq_status_render(fs, in->path, &len);
        free(s);
        st->st_mode = S_IFREG | 0444;
        st->st_size = (off_t)len;
        mt = wall_ms();
        break;
    }
    }
    st->st_blocks = (st->st_size + 511) / 512;
    st->st_mtim.tv_sec = (time_t)(mt / 1000);
    st->st_mtim.tv_nsec = (long)(mt % 1000) * 1000000;
    st->st_ctim = st->st_mtim;
    st->st_atim = st->st_mtim;
}

double dsq_fs_attr_timeout(const struct dsq_inode *in)
{
    return in->kind == DSQ_I_STATFILE ? 0.0 : DSQ_ATTR_TIMEOUT;
}

void dsq_fs_entry_param(struct dsq_fs *fs, struct dsq_inode *in,
                        struct fuse_entry_param *ep)
{
    memset(ep, 0, sizeof(*ep));
    ep->ino = in->ino;
    ep->generation = in->generation;
    dsq_fs_fill_attr(fs, in, &ep->attr);
    ep->attr_timeout = dsq_fs_attr_timeout(in);
    ep->entry_timeout =
        in->kind == DSQ_I_SIDE ? DSQ_SIDE_TIMEOUT : DSQ_ENTRY_TIMEOUT;
}

void dsq_fs_reply_entry(fuse_req_t req, struct dsq_fs *fs, struct dsq_inode *in)
{
    struct fuse_entry_param ep;
    dsq_fs_entry_param(fs, in, &ep);
    fuse_reply_entry(req, &ep);
}

static void reply_negative(fuse_req_t req, double timeout)
{
    struct fuse_entry_param ep;
    memset(&ep, 0, sizeof(ep));
    ep.ino = 0; /* (N3) cacheable "no such name" */
    ep.entry_timeout = timeout;
    fuse_reply_entry(req, &ep);
}

/* ---- init, destroy ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct dsq_fs *fs = userdata;
    if (conn->capable & FUSE_CAP_POSIX_LOCKS)
        conn->want |= FUSE_CAP_POSIX_LOCKS;
    if (conn->capable & FUSE_CAP_FLOCK_LOCKS)
        conn->want |= FUSE_CAP_FLOCK_LOCKS;
    /* DESIGN 4: no writeback cache on database files; invalidations are
       ranged, so no whole-file drop on every mtime change either */
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
    if (fs && fs->cfg->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
    /* a size change seen in a reply (another host's commit grew the file)
       must not drop the whole page cache: the ranges those versions wrote
       are invalidated exactly (dbfile.c); a shrink still truncates */
    if (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA)
        conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
    /* no file here keeps a setuid/setgid bit (DSQ_MODE_KEPT), so the
       kernel need not fetch attributes before each chown to clear them
       (devio.c: libfuse 3.14 leaves the flag out of its reply) */
    if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV) {
        conn->want |= FUSE_CAP_HANDLE_KILLPRIV;
        dsq_devio_want_killpriv();
    }
    conn->max_write = 1024 * 1024;
}

/* ---- lookup, forget, getattr ---- */

/* fs->mu held.  mpath: the database's path on the mount. */
static struct dsq_inode *add_db_inode(struct dsq_fs *fs, fuse_ino_t parent,
                                      const char *name, const char *prefix,
                                      const char *mpath)
{
    struct dsq_inode *in = ino_add(fs, DSQ_I_DB, parent, name, prefix);
    if (!in)
        return NULL;
    struct dsq_err e;
    dsq_err_clear(&e);
    in->df = dsq_dbfile_new(fs, prefix, mpath, in->ino, &e);
    if (!in->df) {
        dsq_log(DSQ_LOG_ERR, "fs", "%s: %s", mpath, dsq_err_text(&e, e.rc));
        ino_free(fs, in);
        return NULL;
    }
    return in;
}

/*
 * What name (in the directory whose store prefix and mount path is
 * dir) stands for in the store: a database (its prefix in *path), a
 * directory, or nothing (*kind 0).  0 or -errno.
 */
static int resolve_name(struct dsq_fs *fs, const char *dir, int at_root,
                        const char *name, enum dsq_ikind *kind, char **path)
{
    char comp[DSQ_KEY_MAX];
    const char *why;
    int db, isdir, r;
    *kind = 0;
    *path = NULL;
    size_t n = strlen(name);
    if (dsq_name_db_component(name, at_root, comp, sizeof(comp), &why) == 0) {
        char *p = join(dir, comp, strlen(comp));
        if (!p)
            return -ENOMEM;
        r = store_probe(fs, p, &db, &isdir);
        if (r == 0 && db) {
            *kind = DSQ_I_DB;
            *path = p;
            return 0;
        }
        free(p);
        if (r < 0)
            return r;
    }
    /* a directory: never NAME.db, and not a database's own prefix */
    if ((n > 3 && !strcmp(name + n - 3, ".db")) ||
        dsq_name_dir_check(name, at_root, &why) != 0)
        return 0;
    char *p = join(dir, name, n);
    if (!p)
        return -ENOMEM;
    r = store_probe(fs, p, &db, &isdir);
    if (r == 0 && isdir) {
        *kind = DSQ_I_DIR;
        *path = p;
        return 0;
    }
    free(p);
    return r < 0 ? r : 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    pthread_mutex_lock(&fs->mu);
    struct dsq_inode *p = dsq_fs_ino(fs, parent), *in;
    if (!p) {
        pthread_mutex_unlock(&fs->mu);
        fuse_reply_err(req, ENOENT);
        return;
    }
    in = dsq_fs_child(fs, parent, name);
    if (in && in->kind != DSQ_I_VIEW) { /* a view is checked again: gc */
        in->nlookup++;
        pthread_mutex_unlock(&fs->mu);
        dsq_fs_reply_entry(req, fs, in);
        return;
    }
    enum dsq_ikind pk = p->kind;
    char *ppath = strdup(p->path);
    pthread_mutex_unlock(&fs->mu);
    if (!ppath) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    enum dsq_ikind kind = 0;
    char *path = NULL;
    struct dsq_view_name vn;
    double neg = fs->db_neg_timeout;
    int r = 0;
    if (pk == DSQ_I_STATDIR) {
        char sn[DSQ_KEY_MAX];
        neg = 0;
        if (!strcmp(name, "metrics.prom")) {
            kind = DSQ_I_STATFILE;
            path = strdup("");
        } else if (dsq_status_is_file(name)) {
            kind = DSQ_I_STATFILE;
            size_t pl = strlen(name) + 2;
            path = malloc(pl);
            if (path)
                snprintf(path, pl, "/%s", name);
        } else {
            /* a status file per known database */
            pthread_mutex_lock(&fs->mu);
            for (size_t i = 0; i < fs->n_inodes && !path; i++) {
                struct dsq_inode *d = fs->inodes[i];
                if (!d || d->kind != DSQ_I_DB || d->unlinked)
                    continue;
                dsq_status_name(d->path, sn, sizeof(sn));
                if (!strcmp(sn, name)) {
                    kind = DSQ_I_STATFILE;
                    path = strdup(d->path);
                }
            }
            pthread_mutex_unlock(&fs->mu);
        }
    } else if (pk != DSQ_I_DIR) {
        r = -ENOTDIR;
    } else if (parent == FUSE_ROOT_ID && !strcmp(name, ".dsqlfs")) {
        kind = DSQ_I_STATDIR;
        path = strdup("");
    } else if (dsq_name_view(name, &vn)) {
        dsq_view_lookup(req, parent, ppath, name, &vn);
        free(ppath);
        return;
    } else if (dsq_fs_is_side(name, NULL)) {
        neg = fs->side_neg_timeout;
        path = side_path(fs, ppath, name);
        struct stat ls;
        if (path && stat(path, &ls) == 0)
            kind = DSQ_I_SIDE;
    } else {
        r = resolve_name(fs, ppath, parent == FUSE_ROOT_ID, name, &kind, &path);
    }
    if (r < 0 || (!path && kind)) {
        free(ppath);
        free(path);
        fuse_reply_err(req, r < 0 ? -r : ENOMEM);
        return;
    }
    if (!kind) {
        free(ppath);
        free(path);
        reply_negative(req, neg);
        return;
    }
    char *mpath = kind == DSQ_I_DB ? join(ppath, name, strlen(name)) : NULL;
    free(ppath);
    pthread_mutex_lock(&fs->mu);
    in = dsq_fs_child(fs, parent, name); /* raced with another lookup? */
    if (!in && (kind != DSQ_I_DB || mpath)) {
        if (kind == DSQ_I_DB)
            in = add_db_inode(fs, parent, name, path, mpath);
        else
            in = ino_add(fs, kind, parent, name, path);
        if (in && kind == DSQ_I_DB)
            atomic_store(&in->df->exists, 1);
    }
    if (in)
        in->nlookup++;
    pthread_mutex_unlock(&fs->mu);
    free(path);
    free(mpath);
    if (!in) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    dsq_fs_reply_entry(req, fs, in);
}

struct dsq_dbfile *dsq_fs_db_named(struct dsq_fs *fs, fuse_ino_t parent,
                                   const char *ppath, const char *name,
                                   uint64_t *ino)
{
    pthread_mutex_lock(&fs->mu);
    struct dsq_inode *in = dsq_fs_child(fs, parent, name);
    int known = in != NULL;
    pthread_mutex_unlock(&fs->mu);
    enum dsq_ikind kind = 0;
    char *path = NULL, *mpath = NULL;
    if (!known) {
        if (resolve_name(fs, ppath, parent == FUSE_ROOT_ID, name, &kind,
                         &path) < 0 ||
            kind != DSQ_I_DB) {
            free(path);
            return NULL;
        }
        mpath = join(ppath, name, strlen(name));
    }
    struct dsq_dbfile *df = NULL;
    pthread_mutex_lock(&fs->mu);
    in = dsq_fs_child(fs, parent, name);
    if (!in && path && mpath) {
        in = add_db_inode(fs, parent, name, path, mpath);
        if (in)
            atomic_store(&in->df->exists, 1);
    }
    if (in && in->kind == DSQ_I_DB && atomic_load(&in->df->exists)) {
        in->view_refs++;
        *ino = in->ino;
        df = in->df;
    }
    pthread_mutex_unlock(&fs->mu);
    free(path);
    free(mpath);
    return df;
}

struct dsq_inode *dsq_fs_view_inode(struct dsq_fs *fs, fuse_ino_t parent,
                                    const char *name, struct dsq_view *vw)
{
    pthread_mutex_lock(&fs->mu);
    struct dsq_inode *in = dsq_fs_child(fs, parent, name);
    if (in && in->kind == DSQ_I_VIEW &&
        dsq_view_version(in->view) == dsq_view_version(vw)) {
        uint64_t base = dsq_view_base_ino(vw);
        dsq_view_free(vw);
        db_unref_locked(fs, base);
    } else {
        if (in) /* @TIME now names a newer version */
            in->unlinked = 1;
        struct dsq_dbfile *bdf = NULL;
        struct dsq_inode *b = dsq_fs_ino(fs, dsq_view_base_ino(vw));
        if (b)
            bdf = b->df;
        in = ino_add(fs, DSQ_I_VIEW, parent, name, bdf ? bdf->prefix : "");
        if (!in) {
            uint64_t base = dsq_view_base_ino(vw);
            dsq_view_free(vw);
            db_unref_locked(fs, base);
            pthread_mutex_unlock(&fs->mu);
            return NULL;
        }
        in->view = vw;
    }
    in->nlookup++;
    pthread_mutex_unlock(&fs->mu);
    return in;
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    pthread_mutex_lock(&fs->mu);
    ino_forget(fs, ino, nlookup);
    pthread_mutex_unlock(&fs->mu);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < count; i++)
        ino_forget(fs, forgets[i].ino, forgets[i].nlookup);
    pthread_mutex_unlock(&fs->mu);
    fuse_reply_none(req);
}

/* Look an inode up for an operation; NULL after replying ENOENT. */
struct dsq_inode *dsq_fs_get_or_reply(fuse_req_t req, fuse_ino_t ino)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    pthread_mutex_lock(&fs->mu);
    struct dsq_inode *in = dsq_fs_ino(fs, ino);
    pthread_mutex_unlock(&fs->mu);
    if (!in)
        fuse_reply_err(req, ENOENT);
    return in;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    (void)fi;
    struct dsq_fs *fs = dsq_fs_of(req);
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    if (!in)
        return;
    struct stat st;
    dsq_fs_fill_attr(fs, in, &st);
    fuse_reply_attr(req, &st, dsq_fs_attr_timeout(in));
}

/* ---- directories ---- */

struct dirbuf {
    char *p;
    size_t size;
    int built; /* listed (at the first readdir, not at opendir) */
};

static void dirbuf_add(fuse_req_t req, struct dirbuf *b, const char *name,
                       fuse_ino_t ino, mode_t mode)
{
    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_ino = ino ? ino : 0xffffffffu;
    st.st_mode = mode;
    size_t old = b->size;
    size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
    char *np = realloc(b->p, old + need);
    if (!np)
        return;
    b->p = np;
    b->size += need;
    fuse_add_direntry(req, b->p + old, need, name, &st, (off_t)b->size);
}

/*
 * The entries of directory in, listed into b (0 or -errno).  Called at
 * the first readdir of a handle: SQLite opens the directory of a new
 * journal only to fsync it, at every write transaction, and that must
 * not cost a store listing.
 */
static int fill_dir(fuse_req_t req, struct dsq_fs *fs, struct dsq_inode *in,
                    struct dirbuf *b)
{
    fuse_ino_t ino = in->ino;
    struct dsq_namelist dbs = {0}, dirs = {0}, files = {0};
    dirbuf_add(req, b, ".", ino, S_IFDIR);
    dirbuf_add(req, b, "..", in->parent ? in->parent : ino, S_IFDIR);
    if (in->kind == DSQ_I_STATDIR) {
        pthread_mutex_lock(&fs->mu);
        for (size_t i = 0; i < fs->n_inodes; i++) {
            struct dsq_inode *d = fs->inodes[i];
            char sn[DSQ_KEY_MAX];
            if (d && d->kind == DSQ_I_DB && !d->unlinked) {
                dsq_status_name(d->path, sn, sizeof(sn));
                dsq_names_add(&files, sn);
            }
        }
        pthread_mutex_unlock(&fs->mu);
        dsq_names_add(&files, "metrics.prom");
        for (const char *const *f = dsq_status_files; *f; f++)
            dsq_names_add(&files, *f);
        for (size_t i = 0; i < files.n; i++)
            dirbuf_add(req, b, files.v[i], 0, S_IFREG);
        goto done;
    }
    pthread_mutex_lock(&fs->mu);
    char *dir = strdup(in->path);
    pthread_mutex_unlock(&fs->mu);
    unsigned stale_ms = 0;
    int r = dir ? dsq_listing_get(fs, dir, &dbs, &dirs, &stale_ms) : -ENOMEM;
    if (r < 0) {
        free(dir);
        dsq_names_free(&dbs);
        dsq_names_free(&dirs);
        return r;
    }
    /* local side files and directories made by mkdir */
    DIR *sd = opendir(fs->sidedir);
    struct dirent *de;
    while (sd && (de = readdir(sd))) {
        if (de->d_name[0] == '.')
            continue;
        char full[1024];
        size_t k = 0;
        for (const char *s = de->d_name; *s && k + 1 < sizeof(full); s++) {
            unsigned v;
            if (s[0] == '%' && sscanf(s + 1, "%2x", &v) == 1) {
                full[k++] = (char)v;
                s += 2;
            } else {
                full[k++] = *s;
            }
        }
        full[k] = 0;
        const char *slash = strrchr(full, '/');
        size_t dl = slash ? (size_t)(slash - full) : 0;
        if (dl == strlen(dir) && !strncmp(full, dir, dl))
            dsq_names_add(&files, slash ? slash + 1 : full);
    }
    if (sd)
        closedir(sd);
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < fs->n_inodes; i++) {
        struct dsq_inode *d = fs->inodes[i];
        if (!d || d->parent != ino || d->unlinked)
            continue;
        if (d->kind == DSQ_I_DIR && d->local_dir)
            dsq_names_add(&dirs, d->name);
        /* databases created here, nothing committed yet */
        if (d->kind == DSQ_I_DB && !atomic_load(&d->df->exists))
            dsq_names_add(&dbs, d->name);
    }
    pthread_mutex_unlock(&fs->mu);
    free(dir);
    if (ino == FUSE_ROOT_ID)
        dirbuf_add(req, b, ".dsqlfs", 0, S_IFDIR);
    for (size_t i = 0; i < dirs.n; i++)
        dirbuf_add(req, b, dirs.v[i], 0, S_IFDIR);
    for (size_t i = 0; i < dbs.n; i++)
        dirbuf_add(req, b, dbs.v[i], 0, S_IFREG);
    for (size_t i = 0; i < files.n; i++)
        dirbuf_add(req, b, files.v[i], 0, S_IFREG);
done:
    dsq_names_free(&dbs);
    dsq_names_free(&dirs);
    dsq_names_free(&files);
    b->built = 1;
    return 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
    if (!in)
        return;
    if (in->kind != DSQ_I_DIR && in->kind != DSQ_I_STATDIR) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    struct dirbuf *b = calloc(1, sizeof(*b));
    if (!b) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)b;
    fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    struct dirbuf *b = (struct dirbuf *)(uintptr_t)fi->fh;
    if (!b->built) {
        struct dsq_inode *in = dsq_fs_get_or_reply(req, ino);
        if (!in)
            return;
        int r = fill_dir(req, dsq_fs_of(req), in, b);
        if (r < 0) {
            free(b->p);
            b->p = NULL;
            b->size = 0;
            fuse_reply_err(req, -r);
            return;
        }
    }
    if ((size_t)off >= b->size) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    size_t n = b->size - (size_t)off;
    fuse_reply_buf(req, b->p + off, n < size ? n : size);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
    (void)ino;
    struct dirbuf *b = (struct dirbuf *)(uintptr_t)fi->fh;
    if (b) {
        free(b->p);
        free(b);
    }
    fuse_reply_err(req, 0);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode)
{
    (void)mode;
    struct dsq_fs *fs = dsq_fs_of(req);
    if (fs->cfg->read_only) {
        fuse_reply_err(req, EROFS);
        return;
    }
    const char *why = NULL;
    size_t nl = strlen(name);
    int r = dsq_name_dir_check(name, parent == FUSE_ROOT_ID, &why);
    if (r == 0 && ((nl > 3 && !strcmp(name + nl - 3, ".db")) ||
                   dsq_fs_is_side(name, NULL))) {
        why = "NAME.db and SQLite's side-file names are files, not "
              "directories";
        r = -EPERM;
    }
    if (r) {
        dsq_log(DSQ_LOG_INFO, "fs", "mkdir %s refused (%s): %s", name,
                strerror(-r), why);
        fuse_reply_err(req, -r);
        return;
    }
    /* the prefix of a database shown as NAME.db is not a directory */
    pthread_mutex_lock(&fs->mu);
    struct dsq_inode *p = dsq_fs_ino(fs, parent), *in = NULL;
    char *ppath = p && p->kind == DSQ_I_DIR ? strdup(p->path) : NULL;
    pthread_mutex_unlock(&fs->mu);
    int err = 0;
    if (ppath) {
        char *path = join(ppath, name, nl);
        int db = 0, isdir = 0;
        int pr = path ? store_probe(fs, path, &db, &isdir) : -ENOMEM;
        free(path);
        if (pr < 0)
            err = -pr;
        else if (db) {
            dsq_log(DSQ_LOG_INFO, "fs",
                    "mkdir %s refused (EEXIST): its store prefix holds the "
                    "database %s.db",
                    name, name);
            err = EEXIST;
        }
        free(ppath);
    }
    pthread_mutex_lock(&fs->mu);
    p = dsq_fs_ino(fs, parent);
    if (err)
        ;
    else if (!p || p->kind != DSQ_I_DIR)
        err = p ? ENOTDIR : ENOENT;
    else if (dsq_fs_child(fs, parent, name))
        err = EEXIST;
    else {
        char *path = join(p->path, name, strlen(name));
        in = path ? ino_add(fs, DSQ_I_DIR, parent, name, path) : NULL;
        free(path);
        if (in) {
            in->local_dir = 1;
            in->nlookup++;
        } else {
            err = ENOMEM;
        }
    }
    pthread_mutex_unlock(&fs->mu);
    if (err)
        fuse_reply_err(req, err);
    else
        dsq_fs_reply_entry(req, fs, in);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    int err = 0;
    pthread_mutex_lock(&fs->mu);
    struct dsq_inode *in = dsq_fs_child(fs, parent, name);
    if (!in) {
        err = ENOENT;
    } else if (in->kind != DSQ_I_DIR) {
        err = ENOTDIR;
    } else if (!in->local_dir) {
        err = ENOTEMPTY; /* a prefix in the store holds databases */
    } else {
        for (size_t i = 0; i < fs->n_inodes; i++)
            if (fs->inodes[i] && fs->inodes[i]->parent == in->ino &&
                !fs->inodes[i]->unlinked)
                err = ENOTEMPTY;
        if (!err)
            in->unlinked = 1;
    }
    pthread_mutex_unlock(&fs->mu);
    fuse_reply_err(req, err);
}

/* A side file (journal, -wal, -shm, -mj): a local file in fs->sidedir. */
static void create_side(fuse_req_t req, fuse_ino_t parent, const char *ppath,
                        const char *name, mode_t mode,
                        struct fuse_file_info *fi)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    struct dsq_inode *in = NULL;
    int err = 0;
    size_t bl = 0;
    if (dsq_name_side(name, &bl) == DSQ_SIDE_JOURNAL) {
        /* a journal appears (or is truncated): journal_hot() must look at
           it again (dbfile.c) */
        char dbname[1024];
        if (bl < sizeof(dbname)) {
            memcpy(dbname, name, bl);
            dbname[bl] = 0;
            pthread_mutex_lock(&fs->mu);
            struct dsq_inode *db = dsq_fs_child(fs, parent, dbname);
            if (db && db->kind == DSQ_I_DB)
                dsq_dbfile_journal_touched(db->df);
            pthread_mutex_unlock(&fs->mu);
        }
    }
    char *path = side_path(fs, ppath, name);
    int fd = path ? open(path,
                         O_CREAT | O_RDWR | O_CLOEXEC |
                             (fi->flags & (O_EXCL | O_TRUNC)),
                         mode & DSQ_MODE_KEPT)
                  : -1;
    if (fd < 0) {
        err = path ? errno : ENOMEM;
    } else {
        pthread_mutex_lock(&fs->mu);
        in = dsq_fs_child(fs, parent, name);
        if (!in)
            in = ino_add(fs, DSQ_I_SIDE, parent, name, path);
        if (in)
            in->nlookup++;
        pthread_mutex_unlock(&fs->mu);
        if (!in) {
            close(fd);
            err = ENOMEM;
        } else {
            fi->fh = (uint64_t)fd;
            fi->keep_cache = 1;
        }
    }
    free(path);
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    dsq_fop_open_common(req, in, fi, 1);
}

/* Refuse a database name with errno r and one log line. */
static void refuse_create(fuse_req_t req, const char *name, int r,
                          const char *why)
{
    dsq_log(DSQ_LOG_INFO, "fs", "create %s refused (%s): %s", name,
            strerror(-r), why);
    fuse_reply_err(req, -r);
}

/*
 * A database: an inode with no store object yet (N1).  The store has it
 * from its first commit; a create that fails leaves nothing.
 */
static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    struct dsq_view_name vn;
    if (dsq_name_view_side(name) || dsq_name_view(name, &vn)) {
        /* no journal, -wal or -shm next to a view, no view made by hand */
        dsq_log(DSQ_LOG_INFO, "fs",
                "create %s refused (%s): a version view is read-only", name,
                strerror(EROFS));
        fuse_reply_err(req, EROFS);
        return;
    }
    if (fs->cfg->read_only) {
        fuse_reply_err(req, EROFS);
        return;
    }
    pthread_mutex_lock(&fs->mu);
    struct dsq_inode *p = dsq_fs_ino(fs, parent);
    char *ppath = p && p->kind == DSQ_I_DIR ? strdup(p->path) : NULL;
    pthread_mutex_unlock(&fs->mu);
    if (!ppath) {
        fuse_reply_err(req, p ? (p->kind == DSQ_I_STATDIR ? EACCES : ENOTDIR)
                              : ENOENT);
        return;
    }
    if (dsq_fs_is_side(name, NULL)) {
        create_side(req, parent, ppath, name, mode, fi);
        free(ppath);
        return;
    }
    char comp[DSQ_KEY_MAX];
    const char *why = NULL;
    int r = dsq_name_db_component(name, parent == FUSE_ROOT_ID, comp,
                                  sizeof(comp), &why);
    char *prefix = r == 0 ? join(ppath, comp, strlen(comp)) : NULL;
    char *mpath = r == 0 ? join(ppath, name, strlen(name)) : NULL;
    free(ppath);
    if (r == 0 && (!prefix || !mpath))
        r = -ENOMEM, why = "out of memory";
    /* its longest object key, segments/ or pagetables/ + 36, must fit */
    if (r == 0 && strlen(prefix) + strlen(fs->source) + 48 >= DSQ_KEY_MAX)
        r = -ENAMETOOLONG, why = "its store keys would pass 1024 bytes";
    if (r == 0 && !dsq_name_component_marked(comp)) {
        /* NAME.db and the directory NAME share a prefix: one or the
           other */
        int db = 0, isdir = 0;
        pthread_mutex_lock(&fs->mu);
        struct dsq_inode *d = dsq_fs_child(fs, parent, comp);
        isdir = d && d->kind == DSQ_I_DIR;
        pthread_mutex_unlock(&fs->mu);
        if (!isdir) {
            int pr = store_probe(fs, prefix, &db, &isdir);
            if (pr < 0)
                r = pr, why = "the store cannot be asked";
        }
        if (r == 0 && isdir)
            r = -EEXIST, why = "its store prefix is the directory of the "
                               "same name without .db";
    }
    if (r) {
        refuse_create(req, name, r, why);
        free(prefix);
        free(mpath);
        return;
    }
    pthread_mutex_lock(&fs->mu);
    struct dsq_inode *in = dsq_fs_child(fs, parent, name);
    int fresh = in == NULL;
    if (!in)
        in = add_db_inode(fs, parent, name, prefix, mpath);
    if (in)
        in->nlookup++;
    pthread_mutex_unlock(&fs->mu);
    free(mpath);
    if (!in) {
        free(prefix);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (fresh)
        dsq_dbfile_create_mode(in->df, (uint32_t)mode);
    if (fi->flags & O_EXCL) {
        int exists = !fresh;
        if (!exists) {
            int pr = store_db_exists(fs, prefix);
            if (pr < 0) {
                r = pr;
            } else if (pr > 0) {
                atomic_store(&in->df->exists, 1);
                exists = 1;
            }
        }
        if (r == 0 && exists)
            r = -EEXIST;
    }
    free(prefix);
    if (r == 0)
        r = dsq_fop_open_common(req, in, fi, 1);
    else
        fuse_reply_err(req, -r);
    if (r && fresh && !atomic_load(&in->df->exists)) {
        /* nothing left behind */
        pthread_mutex_lock(&fs->mu);
        in->unlinked = 1;
        pthread_mutex_unlock(&fs->mu);
    }
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct dsq_fs *fs = dsq_fs_of(req);
    pthread_mutex_lock(&fs->mu);
    struct dsq_inode *in = dsq_fs_child(fs, parent, name);
    pthread_mutex_unlock(&fs->mu);
    if (!in) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (fs->cfg->read_only || in->kind == DSQ_I_VIEW) {
        fuse_reply_err(req, EROFS);
        return;
    }
    int r = 0;
    if (in->kind == DSQ_I_SIDE) {
        int isj = 0;
        dsq_fs_is_side(name, &isj);
        struct dsq_dbfile *df = isj ? dsq_fs_journal_db(fs, in) : NULL;
        if (df) {
            r = dsq_dbfile_journal_commit(df, "journal unlink");
            dsq_fs_gone_if_refused(fs, df);
        }
        if (r == 0 && unlink(in->path) != 0 && errno != ENOENT)
            r = -errno;
        struct dsq_dbfile *wdf = dsq_fs_side_db(fs, in, DSQ_SIDE_WAL);
        if (r == 0 && wdf)
            dsq_dbfile_wal_end(wdf, -1);
    } else if (in->kind == DSQ_I_DB) {
        if (!fs->cfg->allow_delete) {
            dsq_log(DSQ_LOG_INFO, "fs",
                    "unlink %s refused (EPERM): mount with -o allow_delete "
                    "to delete databases",
                    name);
            r = -EPERM;
        } else if (atomic_load(&in->df->exists)) {
            struct dsq_err e;
            dsq_err_clear(&e);
            char pre[DSQ_KEY_MAX];
            snprintf(pre, sizeof(pre), "%s/", in->path);
            struct dsq_namelist keys = {0};
            char *token = NULL;
            do {
                struct dsq_list_req lr = {.prefix = pre, .token = token};
                struct dsq_list_page pg = {0};
                dsq_rc rc = dsq_store_list(fs->st, &lr, &pg, &e);
                free(token);
                token = NULL;
                if (rc != DSQ_OK) {
                    r = -dsq_rc_errno(rc);
                    break;
                }
                for (size_t i = 0; i < pg.n_entries; i++)
                    dsq_names_add(&keys, pg.entries[i].key);
                if (pg.next_token)
                    token = strdup(pg.next_token);
                dsq_list_page_cleanup(&pg);
            } while (token);
            /* a fork names this database's objects (its pin, forks/) */
            for (size_t i = 0; i < keys.n && r == 0; i++)
                if (!strncmp(keys.v[i] + strlen(pre), "forks/", 6)) {
                    dsq_log(DSQ_LOG_NOTICE, "fs",
                            "unlink %s refused (EBUSY): a fork uses its "
                            "objects (pin %s)",
                            name, keys.v[i]);
                    r = -EBUSY;
                }
            /* root.json and manifests first: the database disappears
               before its segments do */
            for (int pass = 0; pass < 2 && r == 0; pass++)
                for (size_t i = 0; i < keys.n && r == 0; i++) {
                    int meta = strstr(keys.v[i], "/segments/") == NULL;
                    if (meta != (pass == 0))
                        continue;
                    dsq_rc rc = dsq_store_del(fs->st, keys.v[i], &e);
                    if (rc != DSQ_OK)
                        r = -dsq_rc_errno(rc);
                }
            dsq_names_free(&keys);
            if (r == 0) {
                /* a maintenance round may have written hot.seg after the
                   listing (db_hot.c checks for versions after it writes,
                   this catches the write it raced with): a hint, so
                   deleting one another host just wrote costs nothing */
                char hot[DSQ_KEY_MAX];
                struct dsq_err ignore;
                dsq_err_clear(&ignore);
                snprintf(hot, sizeof(hot), "%shot.seg", pre);
                (void)dsq_store_del(fs->st, hot, &ignore);
            }
            if (r && r != -EBUSY)
                dsq_log(DSQ_LOG_ERR, "fs", "deleting %s: %s", name,
                        dsq_err_text(&e, e.rc));
        }
    } else {
        r = in->kind == DSQ_I_STATFILE ? -EACCES : -EISDIR;
    }
    if (r == 0) {
        pthread_mutex_lock(&fs->mu);
        in->unlinked = 1;
        pthread_mutex_unlock(&fs->mu);
        if (in->kind == DSQ_I_DB)
            dsq_listing_note(fs, in->df->name, 0);
    }
    fuse_reply_err(req, -r);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags)
{
    (void)parent;
    (void)name;
    (void)newparent;
    (void)newname;
    (void)flags;
    fuse_reply_err(req, EPERM);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name)
{
    (void)link;
    (void)parent;
    dsq_log(DSQ_LOG_INFO, "fs",
            "symlink %s refused (EPERM): the mount holds databases only", name);
    fuse_reply_err(req, EPERM);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname)
{
    (void)ino;
    (void)newparent;
    dsq_log(DSQ_LOG_INFO, "fs",
            "link %s refused (EPERM): a database has one name", newname);
    fuse_reply_err(req, EPERM);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev)
{
    (void)parent;
    (void)name;
    (void)mode;
    (void)rdev;
    fuse_reply_err(req, EPERM);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct statvfs sv;
    dsq_status_statfs(dsq_fs_of(req), &sv); /* status.c, maint.c */
    fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = dsq_fop_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .symlink = op_symlink,
    .link = op_link,
    .open = dsq_fop_open,
    .read = dsq_fop_read,
    .write = dsq_fop_write,
    .flush = dsq_fop_flush,
    .release = dsq_fop_release,
    .fsync = dsq_fop_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .create = op_create,
    .getlk = dsq_fop_getlk,
    .setlk = dsq_fop_setlk,
    .flock = dsq_fop_flock,
};

const struct fuse_lowlevel_ops *dsq_fs_ops(void)
{
    return &ops;
}

struct dsq_fs *dsq_fs_new(struct dsq_store *st, struct dsq_config *cfg,
                          const char *source, const char *sidedir)
{
    struct dsq_fs *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return NULL;
    fs->st = st;
    fs->cfg = cfg;
    fs->source = strdup(source);
    fs->sidedir = strdup(sidedir);
    fs->mountpoint = strdup("");
    fs->uid = getuid();
    fs->gid = getgid();
    fs->start_ms = wall_ms();
    fs->db_neg_timeout = cfg->staleness_s > 0 ? cfg->staleness_s : 1.0;
    fs->side_neg_timeout = DSQ_SIDE_TIMEOUT;
    pthread_mutex_init(&fs->mu, NULL);
    struct dsq_inode *root = ino_add(fs, DSQ_I_DIR, 0, "", "");
    if (!fs->source || !fs->sidedir || !root || root->ino != FUSE_ROOT_ID) {
        dsq_fs_free(fs);
        return NULL;
    }
    root->nlookup = 1;
    return fs;
}

void dsq_fs_free(struct dsq_fs *fs)
{
    if (!fs)
        return;
    dsq_listing_shutdown(fs);
    for (size_t i = 0; i < fs->n_inodes; i++)
        if (fs->inodes[i])
            ino_free(fs, fs->inodes[i]);
    free(fs->inodes);
    pthread_mutex_destroy(&fs->mu);
    free(fs->source);
    free(fs->sidedir);
    free(fs->mountpoint);
    free(fs);
}
