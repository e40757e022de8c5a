/*
 * proc.h - running a helper command and capturing what it prints (the
 * credential_process of an AWS profile).
 *
 * Layer: services; calls only the foundation.  The command is split into
 * words here and run without a shell (posix_spawnp: PATH lookup), its
 * standard input /dev/null, no other descriptor of ours inherited,
 * signals at their defaults and none blocked, in its own process group
 * (killed whole on timeout).
 *
 * Secrets: stdout may hold credentials; it is handed back to the caller
 * only (wipe it with dsq_proc_result_cleanup) and never logged.
 *
 * Thread-safety: reentrant (no shared state).
 */
#ifndef DSQ_PROC_H
#define DSQ_PROC_H

#include "buf.h"
#include "err.h"

/*
 * Split a command line into words: white space separates, "double
 * quotes" and 'single quotes' group (a backslash escapes '"' and '\'
 * inside double quotes, and any character outside quotes).  No variables,
 * no globbing.  *argv is a NULL-terminated array; free with
 * dsq_proc_argv_free.  DSQ_EINVAL for an empty line or an unclosed quote.
 */
dsq_rc dsq_proc_split(const char *line, char ***argv, struct dsq_err *e);
void dsq_proc_argv_free(char **argv);

struct dsq_proc_result {
    struct dsq_buf out; /* stdout, at most out_cap bytes */
    struct dsq_buf err; /* stderr, the first err_cap bytes */
    int exited;         /* 1: exit status in status */
    int status;         /* exit status, or the signal that ended it */
};

void dsq_proc_result_cleanup(struct dsq_proc_result *r);

/*
 * Run argv and wait for it to exit, at most timeout_ms in all.  DSQ_OK
 * when it ran to the end, whatever its exit status (see r).  Otherwise,
 * with a message naming argv[0] only (never the other arguments, which
 * may be secrets): DSQ_EINVAL if it cannot be started, DSQ_ERANGE if it
 * printed more than out_cap bytes, DSQ_EIO if it did not finish in time;
 * in each case its process group has been killed and the process reaped.
 * r is initialised by this call (clean it up whatever the result).
 */
dsq_rc dsq_proc_run(char *const argv[], unsigned timeout_ms, size_t out_cap,
                    size_t err_cap, struct dsq_proc_result *r,
                    struct dsq_err *e);

#endif
