/*
 * mount_dsqlfs.c - the mount.dsqlfs helper: mount(8) runs it for
 * "mount -t dsqlfs" (or, linked as mount.fuse.dsqlfs, for fuse.dsqlfs
 * lines in fstab) as
 *     mount.dsqlfs SOURCE DIR [-sfnv] [-o opts] [-t type]
 * It drops what only mount(8) understands and runs
 *     dsqlfs SOURCE DIR -o opts
 * with the dsqlfs binary next to itself (after resolving links), else the
 * one in the directory it was installed for (DSQ_INSTALL_BINDIR: the
 * helper lives in /sbin, the binary in /usr/bin), else the one in PATH.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const drop[] = {"defaults", "auto",  "noauto", "nofail",
                                   "_netdev",  "user",  "users",  "nouser",
                                   "owner",    "group", "rw",     NULL};

static int dropped(const char *o)
{
    for (const char *const *d = drop; *d; d++)
        if (!strcmp(*d, o))
            return 1;
    return !strncmp(o, "x-", 2) || !strncmp(o, "comment=", 8);
}

int main(int argc, char **argv)
{
    const char *src = NULL, *dir = NULL;
    char opts[8192] = "";
    int fg = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o") && i + 1 < argc) {
            char *dup = strdup(argv[++i]), *save = NULL;
            for (char *t = strtok_r(dup, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                if (dropped(t))
                    continue;
                size_t l = strlen(opts);
                snprintf(opts + l, sizeof(opts) - l, "%s%s", l ? "," : "", t);
            }
            free(dup);
        } else if (!strcmp(a, "-t") && i + 1 < argc) {
            i++;
        } else if (!strcmp(a, "-f")) {
            fg = 1;
        } else if (a[0] == '-') {
            /* -s -n -v: sloppy, no mtab, verbose: nothing to do */
        } else if (!src) {
            src = a;
        } else if (!dir) {
            dir = a;
        }
    }
    if (!src || !dir) {
        fprintf(stderr, "usage: mount.dsqlfs SOURCE DIR [-o opts]\n");
        return 1;
    }
    char self[PATH_MAX], bin[PATH_MAX + 16];
    const char *prog = "dsqlfs";
    if (realpath("/proc/self/exe", self)) {
        snprintf(bin, sizeof(bin), "%s/dsqlfs", dirname(self));
        if (access(bin, X_OK) == 0)
            prog = bin;
    }
#ifdef DSQ_INSTALL_BINDIR
    if (prog != bin) {
        snprintf(bin, sizeof(bin), "%s/dsqlfs", DSQ_INSTALL_BINDIR);
        if (access(bin, X_OK) == 0)
            prog = bin;
    }
#endif
    char *args[8];
    int n = 0;
    args[n++] = (char *)prog;
    args[n++] = (char *)src;
    args[n++] = (char *)dir;
    if (opts[0]) {
        args[n++] = "-o";
        args[n++] = opts;
    }
    if (fg)
        args[n++] = "-f";
    args[n] = NULL;
    if (prog == bin)
        execv(prog, args);
    else
        execvp(prog, args);
    fprintf(stderr, "mount.dsqlfs: cannot run %s: %s\n", prog, strerror(errno));
    return 1;
}
