/*
 * proc.c - splitting a command line into words and running it with its
 * output captured, bounded in size and time (see proc.h).
 *
 * Layer: services; calls only the foundation.  posix_spawnp (vfork-like,
 * safe in a threaded daemon) with file actions that give the child
 * /dev/null, our two pipes and nothing else.  Invariants: every exit path
 * of dsq_proc_run has reaped the child; the pipes are closed.  No shared
 * state: reentrant.
 */
#include "proc.h"

#include "env.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void dsq_proc_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
    }
    free(argv);
}

dsq_rc dsq_proc_split(const char *line, char ***out, struct dsq_err *e)
{
    size_t n = strlen(line);
    char **v = calloc(n / 2 + 2, sizeof(*v));
    char *w = malloc(n + 1);
    size_t nw = 0, wl = 0;
    int inword = 0;
    dsq_rc rc = DSQ_OK;
    if (!v || !w) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0;; i++) {
        char c = line[i];
        if (!c || isspace((unsigned char)c)) {
            if (inword) {
                w[wl] = 0;
                v[nw] = strdup(w);
                if (!v[nw]) {
                    rc = DSQ_ENOMEM;
                    goto out;
                }
                nw++;
                wl = 0;
                inword = 0;
            }
            if (!c)
                break;
            continue;
        }
        inword = 1;
        if (c == '"' || c == '\'') {
            for (i++; line[i] && line[i] != c; i++) {
                if (c == '"' && line[i] == '\\' &&
                    (line[i + 1] == '"' || line[i + 1] == '\\'))
                    i++;
                w[wl++] = line[i];
            }
            if (!line[i]) {
                rc = dsq_err_set(e, DSQ_EINVAL,
                                 "the command line has an unclosed %s quote",
                                 c == '"' ? "double" : "single");
                goto out;
            }
            continue;
        }
        if (c == '\\' && line[i + 1])
            c = line[++i];
        w[wl++] = c;
    }
    if (nw == 0) {
        rc = dsq_err_set(e, DSQ_EINVAL, "the command line is empty");
        goto out;
    }
out:
    if (w) {
        explicit_bzero(w, n + 1);
        free(w);
    }
    if (rc != DSQ_OK) {
        dsq_proc_argv_free(v);
        return rc;
    }
    *out = v;
    return DSQ_OK;
}

void dsq_proc_result_cleanup(struct dsq_proc_result *r)
{
    if (r->out.data)
        explicit_bzero(r->out.data, r->out.len);
    if (r->err.data)
        explicit_bzero(r->err.data, r->err.len);
    dsq_buf_cleanup(&r->out);
    dsq_buf_cleanup(&r->err);
}

static void kill_reap(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static int64_t left_ms(uint64_t deadline_ns)
{
    uint64_t now = dsq_mono_ns();
    return now >= deadline_ns ? 0 : (int64_t)((deadline_ns - now) / 1000000u);
}

dsq_rc dsq_proc_run(char *const argv[], unsigned timeout_ms, size_t out_cap,
                    size_t err_cap, struct dsq_proc_result *r,
                    struct dsq_err *e)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    pid_t pid = -1;
    dsq_rc rc = DSQ_OK;
    char buf[4096];

    memset(r, 0, sizeof(*r));
    dsq_buf_init(&r->out, out_cap);
    dsq_buf_init(&r->err, err_cap);
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
        rc = dsq_err_set(e, DSQ_EIO, "cannot run %s: pipe: %s", argv[0],
                         strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    extern char **environ;
    int err = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    if (err != 0) {
        pid = -1;
        rc = dsq_err_set(e, DSQ_EINVAL, "cannot run %s: %s", argv[0],
                         strerror(err));
        goto out;
    }

    uint64_t deadline = dsq_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    int fds[2] = {po[0], pe[0]};
    while (fds[0] >= 0 || fds[1] >= 0) {
        struct pollfd p[2];
        int np = 0;
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0)
                p[np++] = (struct pollfd){fds[i], POLLIN, 0};
        int64_t ms = left_ms(deadline);
        if (ms <= 0)
            goto timeout;
        int pr = poll(p, (nfds_t)np, (int)(ms > 1000000 ? 1000000 : ms));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            rc = dsq_err_set(e, DSQ_EIO, "running %s: poll: %s", argv[0],
                             strerror(errno));
            goto kill_out;
        }
        for (int k = 0; k < np; k++) {
            if (!p[k].revents)
                continue;
            ssize_t got = read(p[k].fd, buf, sizeof(buf));
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            int which = p[k].fd == fds[0] ? 0 : 1;
            if (got <= 0) {
                fds[which] = -1;
                continue;
            }
            if (which == 0) {
                if (r->out.len + (size_t)got > out_cap) {
                    rc = dsq_err_set(e, DSQ_ERANGE,
                                     "%s printed more than %zu bytes", argv[0],
                                     out_cap);
                    goto kill_out;
                }
                dsq_buf_append(&r->out, buf, (size_t)got);
            } else if (r->err.len < err_cap) {
                size_t keep = err_cap - r->err.len;
                dsq_buf_append(&r->err, buf,
                               (size_t)got < keep ? (size_t)got : keep);
            }
        }
    }
    explicit_bzero(buf, sizeof(buf));
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            r->exited = WIFEXITED(st);
            r->status = r->exited ? WEXITSTATUS(st) : WTERMSIG(st);
            pid = -1;
            break;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = dsq_err_set(e, DSQ_EIO, "waiting for %s: %s", argv[0],
                             strerror(errno));
            pid = -1;
            goto out;
        }
        if (left_ms(deadline) <= 0)
            goto timeout;
        dsq_env.sleep_ms(5);
    }
    goto out;

timeout:
    rc = dsq_err_set(e, DSQ_EIO, "%s did not finish within %u s (killed)",
                     argv[0], (timeout_ms + 999) / 1000);
kill_out:
    kill_reap(pid);
    pid = -1;
out:
    explicit_bzero(buf, sizeof(buf));
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    return rc;
}
