/*
 * err.h - return codes and error details shared by every dsqlfs module.
 *
 * Layer: foundation (includes nothing else from the project).
 *
 * Every function that can fail returns a dsq_rc and writes its results to
 * out-parameters only on success.  The numeric values are part of the
 * project's contract (they appear in logs and tests): never renumber a
 * released value, only append.
 *
 * struct dsq_err carries the detail a user needs to act on a failure: a
 * one-line message naming the cause (object key, option, S3 error code) and,
 * for store errors, the HTTP status and request id.  It never holds secrets.
 */
#ifndef DSQ_ERR_H
#define DSQ_ERR_H

#include <stddef.h>

typedef enum {
    DSQ_OK = 0,
    DSQ_ENOMEM = 1,        /* allocation failed */
    DSQ_EINVAL = 2,        /* bad argument, option or input from the user */
    DSQ_EIO = 3,           /* local I/O failed, or a permanent store error */
    DSQ_ENOTFOUND = 4,     /* object, database or version does not exist */
    DSQ_EPRECOND = 5,      /* conditional write lost: the key exists or the
                              etag did not match */
    DSQ_ETRANSIENT = 6,    /* retryable: 5xx, SlowDown, timeout, reset; on a
                              conditional write the outcome is unknown */
    DSQ_ECORRUPT = 7,      /* data read from the store or cache failed
                              validation (checksum, framing, schema) */
    DSQ_ECONFLICT = 8,     /* commit conflicts with a commit made since the
                              transaction's snapshot */
    DSQ_EAUTH = 9,         /* credentials refused or missing */
    DSQ_EBUSY = 10,        /* resource busy (retry later) */
    DSQ_ERANGE = 11,       /* value or size out of range, cap exceeded */
    DSQ_EEXIST = 12,       /* already exists (user-level, e.g. import) */
    DSQ_EUNSUPPORTED = 13, /* store or input lacks a required feature */
    DSQ_ERETRIES = 14,     /* retries exhausted (transient errors or rebase
                              rounds) */
    DSQ_EPERM = 15,        /* operation not permitted (read-only, policy) */
    DSQ_EMISSING = 16,     /* an object a manifest references is not in the
                              store (lost or deleted by hand) */
    DSQ_RC_COUNT_          /* not a code: one past the last */
} dsq_rc;

/* Static string for a code; never NULL, also for unknown values. */
const char *dsq_strerror(dsq_rc rc);

/* Short stable name ("DSQ_ECONFLICT") for logs and tests. */
const char *dsq_rc_name(dsq_rc rc);

#define DSQ_ERR_MSG_MAX 512

/*
 * Detail of the last failure of one call.  Caller-owned, usually on the
 * stack; passing NULL where a function takes one is always allowed.
 */
struct dsq_err {
    dsq_rc rc;
    int http_status;           /* 0 when not an HTTP error */
    char code[64];             /* S3 error code ("NoSuchBucket"), or "" */
    char request_id[128];      /* x-amz-request-id, or "" */
    char msg[DSQ_ERR_MSG_MAX]; /* one line naming the cause */
};

void dsq_err_clear(struct dsq_err *e);

/*
 * Record rc and a printf-style message in e (if e is not NULL) and return
 * rc, so a failure is reported where it is decided:
 *     return dsq_err_set(e, DSQ_ECORRUPT, "segment %s: bad magic", key);
 */
dsq_rc dsq_err_set(struct dsq_err *e, dsq_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the existing message with more context ("import x.db: ..."). */
void dsq_err_prefix(struct dsq_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The message if one was set, else dsq_strerror(rc). */
const char *dsq_err_text(const struct dsq_err *e, dsq_rc rc);

/*
 * Corruption is marked where it is found: logs file:line and the message,
 * sets e and evaluates to DSQ_ECORRUPT.
 */
dsq_rc dsq__corrupt(struct dsq_err *e, const char *file, int line,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define DSQ_CORRUPT(e, ...) dsq__corrupt((e), __FILE__, __LINE__, __VA_ARGS__)

/* The same for a referenced object the store does not have: logged,
   DSQ_EMISSING. */
dsq_rc dsq__missing(struct dsq_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Always-on invariant check: a breach could corrupt a remote database, so
 * it logs and aborts in every build type.
 */
void dsq__invariant_failed(const char *expr, const char *file, int line)
    __attribute__((noreturn));
#define DSQ_INVARIANT(x)                                                       \
    do {                                                                       \
        if (!(x))                                                              \
            dsq__invariant_failed(#x, __FILE__, __LINE__);                     \
    } while (0)

#endif
