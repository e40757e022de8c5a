/*
 * fsops.h - what fs.c (the namespace) and fileops.c (operations on open
 * files) share: inode lookups, attributes, the database a side file
 * belongs to, and the open-file operations fs.c puts in its table.
 *
 * Layer: FUSE front end, internal to fs.c and fileops.c.  Locks: as in
 * fs.h; dsq_fs_ino() and dsq_fs_child() need fs->mu held, every other
 * function here takes what it needs.
 */
#ifndef DSQ_FUSE_FSOPS_H
#define DSQ_FUSE_FSOPS_H

#include "fs.h"
#include "names.h"

#include <sys/stat.h>

#define DSQ_ENTRY_TIMEOUT 1.0
#define DSQ_ATTR_TIMEOUT 1.0
#define DSQ_SIDE_TIMEOUT 60.0

/* An open status file: its text, rendered at open. */
struct dsq_statbuf {
    char *p;
    size_t len;
};

static inline struct dsq_fs *dsq_fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* The inode table (fs->mu held). */
struct dsq_inode *dsq_fs_ino(struct dsq_fs *fs, fuse_ino_t ino);
struct dsq_inode *dsq_fs_child(struct dsq_fs *fs, fuse_ino_t parent,
                               const char *name);
/* An inode for an operation; NULL after replying ENOENT (takes fs->mu). */
struct dsq_inode *dsq_fs_get_or_reply(fuse_req_t req, fuse_ino_t ino);

void dsq_fs_fill_attr(struct dsq_fs *fs, struct dsq_inode *in, struct stat *st);
double dsq_fs_attr_timeout(const struct dsq_inode *in);

/* Reply to a lookup with in's entry. */
/* The entry reply for in: attributes and the timeouts of its kind. */
void dsq_fs_entry_param(struct dsq_fs *fs, struct dsq_inode *in,
                        struct fuse_entry_param *ep);
void dsq_fs_reply_entry(fuse_req_t req, struct dsq_fs *fs,
                        struct dsq_inode *in);

/* ---- for views.c (each takes fs->mu itself) ---- */
/*
 * The database file name in directory parent (store prefix ppath), made
 * known to the inode table if the store has it (as a lookup would, without
 * a kernel reference); NULL if there is none.  Takes a view reference on
 * its inode (*ino): the database stays while a view of it does.
 */
struct dsq_dbfile *dsq_fs_db_named(struct dsq_fs *fs, fuse_ino_t parent,
                                   const char *ppath, const char *name,
                                   uint64_t *ino);
void dsq_fs_db_unref(struct dsq_fs *fs, uint64_t ino);
/*
 * The inode of view vw (owned from here on) named name in parent, with a
 * kernel reference: the existing one if it shows the same version (vw is
 * then freed), else a new one (an older one of that name leaves the
 * namespace).  NULL if out of memory (vw freed).
 */
struct dsq_inode *dsq_fs_view_inode(struct dsq_fs *fs, fuse_ino_t parent,
                                    const char *name, struct dsq_view *vw);

/* Whether name is one of SQLite's side files (*is_journal: NAME-journal). */
int dsq_fs_is_side(const char *name, int *is_journal);
/* The database a side file of kind k belongs to (NAME-journal -> NAME),
   NULL if none is open under that name. */
struct dsq_dbfile *dsq_fs_side_db(struct dsq_fs *fs, struct dsq_inode *side,
                                  enum dsq_side_kind k);
struct dsq_dbfile *dsq_fs_journal_db(struct dsq_fs *fs, struct dsq_inode *side);
/* (N1) A database whose content proved not to be SQLite leaves the
   namespace. */
void dsq_fs_gone_if_refused(struct dsq_fs *fs, struct dsq_dbfile *df);

/* Opens in and replies (fuse_reply_create when created); returns the
   error replied (0 or -errno). */
int dsq_fop_open_common(fuse_req_t req, struct dsq_inode *in,
                        struct fuse_file_info *fi, int created);

void dsq_fop_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                     int to_set, struct fuse_file_info *fi);
void dsq_fop_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void dsq_fop_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                  struct fuse_file_info *fi);
void dsq_fop_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
                   off_t off, struct fuse_file_info *fi);
void dsq_fop_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void dsq_fop_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void dsq_fop_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                   struct fuse_file_info *fi);
void dsq_fop_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                   struct flock *lock);
void dsq_fop_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                   struct flock *lock, int sleep);
void dsq_fop_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                   int op);

#endif
