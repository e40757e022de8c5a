/*
 * store.h - the object store interface every backend implements.
 *
 * Layer: services.  The engine talks to storage only through this vtable:
 * the local directory backend (store_file.c, "file:///abs/dir") and the S3
 * backend (store_s3.c, "s3://bucket/prefix") plug in here, and test wrappers
 * (fault injection) wrap any store.
 *
 * Semantics every backend must keep (docs/architecture.md, "Store"):
 *  - Keys are UTF-8 strings without NUL, relative to the store root, with
 *    '/' separating components; no empty, "." or ".." component, no leading
 *    '/'.  Keys starting with ".dsqtmp" in any component are reserved.
 *  - put with DSQ_PUT_CREATE is atomic create-only (S3 If-None-Match: *):
 *    of any number of concurrent creators of one key, exactly one gets
 *    DSQ_OK, the others DSQ_EPRECOND.  DSQ_PUT_IF_MATCH replaces only if the
 *    current etag equals the given one (S3 If-Match), else DSQ_EPRECOND
 *    (also when the key is missing).
 *  - A put that returns DSQ_OK is durable.  A reader never sees a torn
 *    object under its final key.
 *  - Results: DSQ_OK; DSQ_ENOTFOUND (key missing); DSQ_EPRECOND (condition
 *    failed); DSQ_ETRANSIENT (retry may succeed; for a conditional put the
 *    outcome is UNKNOWN and the caller must find out by reading);
 *    DSQ_EAUTH, DSQ_EPERM, DSQ_EIO, DSQ_EINVAL ... (permanent).  The detail
 *    (HTTP status, S3 code, request id, key) goes in the struct dsq_err.
 *  - Backends may retry transient failures internally (S3 does, within the
 *    configured bounds); what they return as DSQ_ETRANSIENT is what is left.
 *
 * Threads: every operation may be called from many threads at once on one
 * store.  dsq_store_free() must not race with any call.
 */
#ifndef DSQ_STORE_H
#define DSQ_STORE_H

#include "buf.h"
#include "err.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DSQ_ETAG_MAX 128
#define DSQ_KEY_MAX 1024

/* Metadata of one object. */
struct dsq_objinfo {
    uint64_t size;
    uint64_t mtime_ms;       /* last modified, ms since epoch (0 unknown) */
    char etag[DSQ_ETAG_MAX]; /* opaque, unquoted; "" if unknown */
};

enum dsq_put_cond {
    DSQ_PUT_ANY = 0,      /* unconditional */
    DSQ_PUT_CREATE = 1,   /* only if the key does not exist */
    DSQ_PUT_IF_MATCH = 2, /* only if the current etag equals etag */
};

/* One entry of a listing. */
struct dsq_list_entry {
    char *key; /* owned by the page */
    struct dsq_objinfo info;
};

/*
 * One page of a listing, in ascending byte order of keys (S3's order).
 * With a delimiter, keys that contain it after the prefix are rolled up
 * into common_prefixes (each ending with the delimiter).
 */
struct dsq_list_page {
    struct dsq_list_entry *entries; /* owned */
    size_t n_entries;
    char **common_prefixes; /* owned */
    size_t n_prefixes;
    char *next_token; /* owned; NULL when this is the last page */
};

void dsq_list_page_cleanup(struct dsq_list_page *p);

struct dsq_list_req {
    const char *prefix;      /* may be NULL or "" */
    const char *delimiter;   /* may be NULL */
    const char *start_after; /* may be NULL: keys strictly greater */
    const char *token;       /* continuation token from a previous page */
    size_t max_keys;         /* 0 = backend default (1000) */
};

struct dsq_store;

/* One leftover temporary file (see dsq_store_ops.debris). */
typedef void (*dsq_debris_fn)(const char *name, uint64_t size,
                              uint64_t mtime_ms, int deleted, void *arg);

struct dsq_store_ops {
    const char *name; /* "file", "s3", "fault" ... */
    /*
     * Read an object, whole (len == 0 and off == 0) or the byte range
     * [off, off+len).  A range past the end returns the bytes that exist
     * (possibly none).  Appends to out (bounded by out->max: DSQ_ERANGE).
     * info may be NULL.
     */
    dsq_rc (*get)(struct dsq_store *st, const char *key, uint64_t off,
                  uint64_t len, struct dsq_buf *out, struct dsq_objinfo *info,
                  struct dsq_err *e);
    dsq_rc (*put)(struct dsq_store *st, const char *key, const void *data,
                  size_t len, enum dsq_put_cond cond, const char *if_match,
                  struct dsq_objinfo *info, struct dsq_err *e);
    dsq_rc (*head)(struct dsq_store *st, const char *key,
                   struct dsq_objinfo *info, struct dsq_err *e);
    dsq_rc (*list)(struct dsq_store *st, const struct dsq_list_req *req,
                   struct dsq_list_page *out, struct dsq_err *e);
    /* Deleting a missing key is DSQ_OK (S3 semantics). */
    dsq_rc (*del)(struct dsq_store *st, const char *key, struct dsq_err *e);
    /*
     * Optional; NULL where puts leave nothing behind (S3 publishes an
     * object whole or not at all).  The temporary files of puts that never
     * finished (the writer was killed) directly in the directory of keys
     * dir ("P/segments/"; "" is the root) whose mtime is before before_ms:
     * fn gets each one's name (dir + file name: not a valid key), size
     * and mtime; with do_delete they are removed first (deleted = 1).
     */
    dsq_rc (*debris)(struct dsq_store *st, const char *dir, uint64_t before_ms,
                     int do_delete, dsq_debris_fn fn, void *arg,
                     struct dsq_err *e);
    void (*destroy)(struct dsq_store *st);
};

/* Store flags (struct dsq_store.flags). */
enum dsq_store_flags {
    /* calls are local system calls (a HEAD is a stat, a LIST reads a
       directory): the engine prefers a few HEADs to a LIST */
    DSQ_STORE_LOCAL = 1,
};

/* Common header of every store; backends embed it first. */
struct dsq_store {
    const struct dsq_store_ops *ops;
    char *url;      /* owned: what the user gave, without credentials */
    unsigned flags; /* enum dsq_store_flags; set at open, then read only */
};

/* Thin dispatchers that also validate keys (DSQ_EINVAL naming the key). */
dsq_rc dsq_store_get(struct dsq_store *st, const char *key, uint64_t off,
                     uint64_t len, struct dsq_buf *out,
                     struct dsq_objinfo *info, struct dsq_err *e);
dsq_rc dsq_store_put(struct dsq_store *st, const char *key, const void *data,
                     size_t len, enum dsq_put_cond cond, const char *if_match,
                     struct dsq_objinfo *info, struct dsq_err *e);
dsq_rc dsq_store_head(struct dsq_store *st, const char *key,
                      struct dsq_objinfo *info, struct dsq_err *e);
dsq_rc dsq_store_list(struct dsq_store *st, const struct dsq_list_req *req,
                      struct dsq_list_page *out, struct dsq_err *e);
/*
 * hook runs before each store call that may take long (every call to a
 * remote store; puts and deletes on a local directory), in the calling
 * thread: the FUSE daemon hands its request loop to another thread
 * there.  Set once, before any store is used from more than one thread.
 */
void dsq_store_set_wait_hook(void (*hook)(void));
/* Run the hook as a call to st would: the caller is about to wait for
   another thread's call to st. */
void dsq_store_will_wait(struct dsq_store *st);

dsq_rc dsq_store_del(struct dsq_store *st, const char *key, struct dsq_err *e);
/* ops->debris, or DSQ_OK with nothing found when the backend has none. */
dsq_rc dsq_store_debris(struct dsq_store *st, const char *dir,
                        uint64_t before_ms, int do_delete, dsq_debris_fn fn,
                        void *arg, struct dsq_err *e);
void dsq_store_free(struct dsq_store *st);

/*
 * Callback form of a full listing (follows tokens).  fn returns 0 to go on,
 * non-zero to stop (the value is returned as DSQ_OK).
 */
typedef int (*dsq_list_fn)(const struct dsq_list_entry *ent, void *arg);
dsq_rc dsq_store_list_all(struct dsq_store *st, const char *prefix,
                          const char *start_after, dsq_list_fn fn, void *arg,
                          struct dsq_err *e);

/* 1 if key is acceptable (see the rules above), else 0. */
int dsq_store_key_valid(const char *key);

/*
 * Open a store from a URL: "file:///abs/dir" (the directory is created if
 * missing) or "s3://bucket[/prefix]" (options from opts, see s3 docs).
 * opts may be NULL.  On success *out is owned by the caller
 * (dsq_store_free).  For URLs naming a database (file:///dir/name), the
 * caller splits the last component off first (dsq_url_split).
 */
struct dsq_config;
dsq_rc dsq_store_open(const char *url, const struct dsq_config *cfg,
                      struct dsq_store **out, struct dsq_err *e);

/*
 * Prove that the store enforces create-only writes (S3: PUT a probe key
 * twice with If-None-Match: *; the second must be refused).  DSQ_OK, or
 * DSQ_EUNSUPPORTED with a message saying why read-write use is refused.
 */
dsq_rc dsq_store_check_conditional(struct dsq_store *st, struct dsq_err *e);

/*
 * Split a database URL into the store URL and the database prefix: the
 * last path component names the database ("file:///d/app" -> "file:///d"
 * and "app"; "s3://b/p/app" -> "s3://b/p" and "app").  Both malloc'd.
 */
dsq_rc dsq_url_split(const char *url, char **store_url, char **prefix,
                     struct dsq_err *e);

/* Backend constructors (used by dsq_store_open and tests). */
#define DSQ_STORE_MODE_DEFAULT 0600u /* file store objects: owner only */
dsq_rc dsq_store_file_open(const char *dir, struct dsq_store **out,
                           struct dsq_err *e);
/*
 * The same with the mode of the objects it creates (read/write bits,
 * owner's both: 0600, 0640, 0644...); directories it creates get the
 * matching search bits (dsq_store_dir_mode: 0700, 0750, 0755...).
 */
dsq_rc dsq_store_file_open_mode(const char *dir, unsigned mode,
                                struct dsq_store **out, struct dsq_err *e);
mode_t dsq_store_dir_mode(unsigned mode);

#endif
