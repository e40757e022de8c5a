/*
 * err.c - return code names and error detail helpers.
 * Layer: foundation.  Calls only log.h for corruption reports.
 */
#include "err.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    const char *text;
} rc_table[DSQ_RC_COUNT_] = {
    [DSQ_OK] = {"DSQ_OK", "success"},
    [DSQ_ENOMEM] = {"DSQ_ENOMEM", "out of memory"},
    [DSQ_EINVAL] = {"DSQ_EINVAL", "invalid argument"},
    [DSQ_EIO] = {"DSQ_EIO", "I/O error"},
    [DSQ_ENOTFOUND] = {"DSQ_ENOTFOUND", "not found"},
    [DSQ_EPRECOND] = {"DSQ_EPRECOND", "precondition failed"},
    [DSQ_ETRANSIENT] = {"DSQ_ETRANSIENT", "transient error"},
    [DSQ_ECORRUPT] = {"DSQ_ECORRUPT", "corrupt data"},
    [DSQ_ECONFLICT] = {"DSQ_ECONFLICT", "conflicting commit"},
    [DSQ_EAUTH] = {"DSQ_EAUTH", "authentication failed"},
    [DSQ_EBUSY] = {"DSQ_EBUSY", "busy"},
    [DSQ_ERANGE] = {"DSQ_ERANGE", "out of range"},
    [DSQ_EEXIST] = {"DSQ_EEXIST", "already exists"},
    [DSQ_EUNSUPPORTED] = {"DSQ_EUNSUPPORTED", "not supported"},
    [DSQ_ERETRIES] = {"DSQ_ERETRIES", "retries exhausted"},
    [DSQ_EPERM] = {"DSQ_EPERM", "not permitted"},
    [DSQ_EMISSING] = {"DSQ_EMISSING", "a referenced object is missing"},
};

const char *dsq_strerror(dsq_rc rc)
{
    if ((int)rc < 0 || rc >= DSQ_RC_COUNT_ || !rc_table[rc].text)
        return "unknown error";
    return rc_table[rc].text;
}

const char *dsq_rc_name(dsq_rc rc)
{
    if ((int)rc < 0 || rc >= DSQ_RC_COUNT_ || !rc_table[rc].name)
        return "DSQ_E?";
    return rc_table[rc].name;
}

void dsq_err_clear(struct dsq_err *e)
{
    if (e)
        memset(e, 0, sizeof(*e));
}

static void set_msg(struct dsq_err *e, const char *fmt, va_list ap)
{
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    /* one line: fold newlines that came from the outside world */
    for (char *p = e->msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

dsq_rc dsq_err_set(struct dsq_err *e, dsq_rc rc, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        e->rc = rc;
        va_start(ap, fmt);
        set_msg(e, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void dsq_err_prefix(struct dsq_err *e, const char *fmt, ...)
{
    if (!e)
        return;
    char pre[DSQ_ERR_MSG_MAX];
    char old[DSQ_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    if (old[0])
        snprintf(e->msg, sizeof(e->msg), "%s: %s", pre, old);
    else
        snprintf(e->msg, sizeof(e->msg), "%s: %s", pre, dsq_strerror(e->rc));
}

const char *dsq_err_text(const struct dsq_err *e, dsq_rc rc)
{
    if (e && e->msg[0])
        return e->msg;
    return dsq_strerror(rc);
}

dsq_rc dsq__corrupt(struct dsq_err *e, const char *file, int line,
                    const char *fmt, ...)
{
    char msg[DSQ_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dsq_log(DSQ_LOG_ERR, "corrupt", "%s (detected at %s:%d)", msg, file, line);
    return dsq_err_set(e, DSQ_ECORRUPT, "%s", msg);
}

dsq_rc dsq__missing(struct dsq_err *e, const char *fmt, ...)
{
    char msg[DSQ_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dsq_log(DSQ_LOG_ERR, "missing", "%s", msg);
    return dsq_err_set(e, DSQ_EMISSING, "%s", msg);
}

void dsq__invariant_failed(const char *expr, const char *file, int line)
{
    dsq_log(DSQ_LOG_CRIT, "invariant", "%s failed at %s:%d", expr, file, line);
    abort();
}
