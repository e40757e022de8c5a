/*
 * mount.c - the FUSE daemon's entry: command line and "-o" options (ours
 * go to the config table, mount(8)'s generic ones to the kernel or are
 * dropped, anything else fails the mount naming it), the store probe, the
 * multi-threaded session loop, signals, daemonizing and syslog.
 *
 * Layer: FUSE front end.  A mount that cannot work fails here, before the
 * kernel mount, with one line on stderr and exit status 1 (2 for bad
 * usage).  Every path (the mount point, path options, TMPDIR and the AWS
 * variables naming files) is made absolute before the daemon detaches,
 * because libfuse then changes directory to "/" (even with -f).
 * Single-threaded until the session loop starts.
 */
#include "mount.h"

#include "config.h"
#include "devio.h"
#include "fs.h"
#include "log.h"
#include "loop.h"
#include "maint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: dsqlfs SOURCE MOUNTPOINT [-f] [-d] [-s] [-o opt,...]\n"
               "\n"
               "SOURCE is file:///abs/dir or s3://BUCKET[/PREFIX]; every "
               "database under it\nshows as MOUNTPOINT/NAME.db.\n"
               "  -f   stay in the foreground (logs to stderr)\n"
               "  -d   debug: foreground, FUSE and dsqlfs debug logs\n"
               "  -v   more logging (info)\n"
               "  -s   single-threaded\n"
               "  -o   ro, allow_other, allow_delete, staleness=SECONDS,\n"
               "       isolation=snapshot|serializable, cache_dir=DIR,\n"
               "       page_cache_bytes=N, txn_mem_bytes=N, endpoint=URL, ...\n"
               "       (docs/mount.md, docs/options.md)\n");
}

/* mount(8) options passed to the kernel mount as they are. */
static const char *const pass_opts[] = {"nodev",
                                        "nosuid",
                                        "noexec",
                                        "noatime",
                                        "dev",
                                        "suid",
                                        "exec",
                                        "atime",
                                        "relatime",
                                        "norelatime",
                                        "strictatime",
                                        "lazytime",
                                        "nolazytime",
                                        "dirsync",
                                        "sync",
                                        "async",
                                        "default_permissions",
                                        "auto_unmount",
                                        "allow_root",
                                        NULL};
/* mount(8) and fstab options with no meaning here: dropped. */
static const char *const drop_opts[] = {
    "defaults", "auto",  "noauto", "nofail", "_netdev",       "user", "users",
    "nouser",   "owner", "group",  "rw",     "noexec_helper", NULL};

static int in_list(const char *const *l, const char *s)
{
    for (; *l; l++)
        if (!strcmp(*l, s))
            return 1;
    return 0;
}

struct mopts {
    const char *source;
    const char *mountpoint;
    int foreground, debug, single, verbose;
    char kopts[4096]; /* options for the kernel mount */
};

static int add_kopt(struct mopts *m, const char *o)
{
    size_t l = strlen(m->kopts);
    int n =
        snprintf(m->kopts + l, sizeof(m->kopts) - l, "%s%s", l ? "," : "", o);
    return n < 0 || (size_t)n >= sizeof(m->kopts) - l ? -1 : 0;
}

/* Apply one -o list; 0 or prints the error and returns 2. */
static int apply_opts(struct mopts *m, struct dsq_config *cfg, const char *list)
{
    char *dup = strdup(list), *save = NULL;
    if (!dup)
        return 2;
    for (char *tok = strtok_r(dup, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char name[256];
        const char *eq = strchr(tok, '=');
        snprintf(name, sizeof(name), "%.*s",
                 (int)(eq ? (size_t)(eq - tok) : strlen(tok)), tok);
        if (dsq_config_known(name)) {
            struct dsq_err e;
            dsq_err_clear(&e);
            dsq_rc rc = dsq_config_set(cfg, name, eq ? eq + 1 : NULL, &e);
            if (rc != DSQ_OK) {
                fprintf(stderr, "dsqlfs: %s\n", dsq_err_text(&e, rc));
                free(dup);
                return 2;
            }
        } else if (in_list(pass_opts, name) || !strcmp(name, "fsname") ||
                   !strcmp(name, "subtype") || !strcmp(name, "max_read")) {
            if (add_kopt(m, tok)) {
                fprintf(stderr, "dsqlfs: too many options\n");
                free(dup);
                return 2;
            }
        } else if (in_list(drop_opts, name) || !strncmp(name, "x-", 2) ||
                   !strcmp(name, "comment")) {
            /* fstab/mount(8) only */
        } else {
            fprintf(stderr,
                    "dsqlfs: unknown mount option '%s' (see dsqlfs --help "
                    "and docs/mount.md)\n",
                    name);
            free(dup);
            return 2;
        }
    }
    free(dup);
    return 0;
}

/*
 * Probe the store: it answers a listing, and (read-write mounts) honours
 * create-only writes: a second If-None-Match: * PUT of one key must fail
 * (DESIGN 5).  Backends with a richer self-test (S3) plug in here.
 */
static dsq_rc probe_store(struct dsq_store *st, int read_only,
                          struct dsq_err *e)
{
    struct dsq_list_req req = {.prefix = "", .delimiter = "/", .max_keys = 1};
    struct dsq_list_page pg = {0};
    dsq_rc rc = dsq_store_list(st, &req, &pg, e);
    dsq_list_page_cleanup(&pg);
    if (rc != DSQ_OK || read_only)
        return rc;
    rc = dsq_store_check_conditional(st, e);
    if (rc == DSQ_EUNSUPPORTED)
        dsq_err_prefix(e, "refusing to mount read-write (use -o ro)");
    else if (rc != DSQ_OK)
        dsq_err_prefix(e, "probing conditional writes (mount with -o ro "
                          "to only read)");
    return rc;
}

/*
 * A file:// store's directory open to users the store_mode does not let in
 * (an older store, or a directory made by hand) exposes every database in
 * it, although the mount and the cache are private: say so.
 */
static void warn_store_access(const char *source, const struct dsq_config *cfg)
{
    if (strncmp(source, "file://", 7) != 0)
        return;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", source + 7);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = 0;
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return;
    mode_t extra = sb.st_mode & 077 & ~dsq_store_dir_mode(cfg->store_mode);
    if (extra)
        dsq_log(DSQ_LOG_WARNING, "mount",
                "the store directory %s is open to %s (mode %04o): they can "
                "read every database in it; chmod go-rwx %s (or widen "
                "store_mode to share it on purpose)",
                dir, (extra & 07) ? "other users" : "its group",
                (unsigned)(sb.st_mode & 07777), dir);
}

static void rm_sidedir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[4096];
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* Environment variables naming files or directories read after the daemon
   has changed directory to "/" (credential refreshes, journals). */
static const char *const path_envs[] = {
    "TMPDIR",
    "HOME",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    NULL};

/* Make the variables of path_envs absolute; 0 or prints why and -1. */
static int absolute_envs(void)
{
    for (const char *const *n = path_envs; *n; n++) {
        const char *v = getenv(*n);
        if (!v || !*v || v[0] == '/')
            continue;
        char *abs = dsq_path_absolute(v);
        if (!abs || setenv(*n, abs, 1) != 0) {
            fprintf(stderr, "dsqlfs: cannot make %s=%s absolute: %s\n", *n, v,
                    strerror(errno));
            free(abs);
            return -1;
        }
        free(abs);
    }
    return 0;
}

/*
 * The daemon's memory bound (page_cache_bytes + txn_mem_bytes + a fixed
 * slack) must hold whatever its threads allocate.  glibc gives every new
 * thread its own arena (up to 8 per core) and raises its mmap threshold
 * each time a large block is freed, after which large blocks come from
 * the arenas and stay there: read-ahead and upload threads then keep tens
 * of MiB they no longer use.  A fixed threshold returns every buffer of
 * 256 KiB or more to the system when it is freed, and four arenas are
 * enough for the threads one request runs on.
 */
static void bound_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    mallopt(M_ARENA_MAX, 4);
}

int dsq_mount_main(int argc, char **argv)
{
    bound_malloc();
    struct mopts m;
    struct dsq_config cfg;
    struct dsq_err e;
    memset(&m, 0, sizeof(m));
    dsq_config_init(&cfg);
    dsq_err_clear(&e);
    int ret = 2;
    char *mnt_abs = NULL;
    if (absolute_envs() != 0)
        goto out_cfg;
    dsq_rc rc = dsq_config_load_env(&cfg, &e);
    if (rc != DSQ_OK) {
        fprintf(stderr, "dsqlfs: %s\n", dsq_err_text(&e, rc));
        goto out_cfg;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-f")) {
            m.foreground = 1;
        } else if (!strcmp(a, "-d")) {
            m.debug = m.foreground = 1;
        } else if (!strcmp(a, "-s")) {
            m.single = 1;
        } else if (!strcmp(a, "-v")) {
            m.verbose = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            ret = 0;
            goto out_cfg;
        } else if (!strncmp(a, "-o", 2)) {
            const char *list = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!list) {
                fprintf(stderr, "dsqlfs: -o needs a value\n");
                goto out_cfg;
            }
            if (apply_opts(&m, &cfg, list))
                goto out_cfg;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "dsqlfs: unknown flag '%s' (see dsqlfs --help)\n",
                    a);
            goto out_cfg;
        } else if (!m.source) {
            m.source = a;
        } else if (!m.mountpoint) {
            m.mountpoint = a;
        } else {
            fprintf(stderr, "dsqlfs: too many arguments ('%s')\n", a);
            goto out_cfg;
        }
    }
    if (!m.source || !m.mountpoint) {
        usage(stderr);
        goto out_cfg;
    }
    ret = 1;
    if (m.debug)
        dsq_log_set_level(DSQ_LOG_DEBUG);
    else if (m.verbose)
        dsq_log_set_level(DSQ_LOG_INFO);
    struct stat sb;
    if (stat(m.mountpoint, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "dsqlfs: cannot mount on %s: %s\n", m.mountpoint,
                errno && stat(m.mountpoint, &sb) != 0 ? strerror(errno)
                                                      : "not a directory");
        goto out_cfg;
    }
    /* fusermount3 -u at exit runs from "/": it needs the absolute name */
    mnt_abs = realpath(m.mountpoint, NULL);
    if (!mnt_abs) {
        fprintf(stderr, "dsqlfs: cannot mount on %s: %s\n", m.mountpoint,
                strerror(errno));
        goto out_cfg;
    }
    m.mountpoint = mnt_abs;
    if (!strstr(m.source, "://")) {
        fprintf(stderr,
                "dsqlfs: '%s' is not a store URL (use file:///abs/dir or "
                "s3://BUCKET[/PREFIX])\n",
                m.source);
        ret = 2;
        goto out_cfg;
    }
    struct dsq_store *st = NULL;
    rc = dsq_store_open(m.source, &cfg, &st, &e);
    if (rc == DSQ_OK)
        rc = probe_store(st, cfg.read_only, &e);
    if (rc != DSQ_OK) {
        fprintf(stderr, "dsqlfs: cannot mount %s: %s\n", m.source,
                dsq_err_text(&e, rc));
        dsq_store_free(st);
        goto out_cfg;
    }
    warn_store_access(m.source, &cfg);
    const char *tmpdir = getenv("TMPDIR");
    char sidedir[4096];
    snprintf(sidedir, sizeof(sidedir), "%s/dsqlfs-side.XXXXXX",
             tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(sidedir)) {
        fprintf(stderr,
                "dsqlfs: cannot create a directory for journals in "
                "%s: %s\n",
                tmpdir && *tmpdir ? tmpdir : "/tmp", strerror(errno));
        dsq_store_free(st);
        goto out_cfg;
    }
    struct dsq_fs *fs = dsq_fs_new(st, &cfg, m.source, sidedir);
    if (fs) {
        char *mp = realpath(m.mountpoint, NULL);
        if (mp) {
            free(fs->mountpoint);
            fs->mountpoint = mp;
        }
    }
    if (!fs) {
        fprintf(stderr, "dsqlfs: out of memory\n");
        rm_sidedir(sidedir);
        dsq_store_free(st);
        goto out_cfg;
    }
    /* background upkeep (maint.c); its threads start after detaching */
    struct dsq_maint *maint = NULL;
    rc = dsq_maint_new(st, &cfg, m.source, fs, &maint, &e);
    if (rc != DSQ_OK) {
        fprintf(stderr, "dsqlfs: %s\n", dsq_err_text(&e, rc));
        ret = rc == DSQ_EINVAL ? 2 : 1;
        goto out_fs;
    }
    fs->maint = maint;
    char fsname[1200], *q = fsname;
    memcpy(q, "fsname=", 7);
    q += 7;
    for (const char *s = m.source; *s && q < fsname + sizeof(fsname) - 3; s++) {
        if (*s == ',' || *s == '\\')
            *q++ = '\\';
        *q++ = *s;
    }
    *q = 0;
    add_kopt(&m, fsname);
    add_kopt(&m, "subtype=dsqlfs");
    if (cfg.read_only)
        add_kopt(&m, "ro");
    if (cfg.allow_other)
        add_kopt(&m, "allow_other");

    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    fuse_opt_add_arg(&args, argv[0]);
    fuse_opt_add_arg(&args, "-o");
    fuse_opt_add_arg(&args, m.kopts);
    if (m.debug)
        fuse_opt_add_arg(&args, "-d");
    struct fuse_session *se = fuse_session_new(
        &args, dsq_fs_ops(), sizeof(struct fuse_lowlevel_ops), fs);
    fuse_opt_free_args(&args);
    if (!se) {
        fprintf(stderr,
                "dsqlfs: cannot start a FUSE session (options: "
                "%s)\n",
                m.kopts);
        goto out_fs;
    }
    fs->se = se;
    if (fuse_set_signal_handlers(se) != 0) {
        fprintf(stderr, "dsqlfs: cannot install signal handlers\n");
        goto out_se;
    }
    if (fuse_session_mount(se, m.mountpoint) != 0) {
        fprintf(stderr,
                "dsqlfs: cannot mount on %s (is /dev/fuse "
                "available, and the mount point free?)\n",
                m.mountpoint);
        goto out_sig;
    }
    int dr = dsq_devio_attach(se);
    if (dr != 0)
        dsq_log(DSQ_LOG_NOTICE, "mount",
                "libfuse's own device io kept (%s): a chown as root costs "
                "the kernel an attribute fetch first",
                strerror(-dr));
    if (fuse_daemonize(m.foreground) != 0) {
        fprintf(stderr, "dsqlfs: cannot detach\n");
        goto out_mnt;
    }
    if (!m.foreground)
        dsq_log_use_syslog();
    dsq_maint_start(maint);
    dsq_log(DSQ_LOG_NOTICE, "mount", "%s mounted on %s%s", m.source,
            m.mountpoint, cfg.read_only ? " (read-only)" : "");
    /* -s: one thread; otherwise a pool (fuse/loop.c) */
    dsq_store_set_wait_hook(dsq_loop_may_block);
    int lr = dsq_loop_run(se, cfg.spin_us, m.single ? 1 : 64);
    ret = lr == 0 ? 0 : 1;
    dsq_log(DSQ_LOG_NOTICE, "mount", "%s unmounted from %s", m.source,
            m.mountpoint);
out_mnt:
    fuse_session_unmount(se);
out_sig:
    fuse_remove_signal_handlers(se);
out_se:
    fuse_session_destroy(se);
out_fs:
    /* the maintenance threads use the fs and the store: stop them first */
    dsq_maint_free(fs->maint);
    fs->maint = NULL;
    dsq_fs_free(fs);
    rm_sidedir(sidedir);
    dsq_store_free(st);
out_cfg:
    dsq_config_cleanup(&cfg);
    free(mnt_abs);
    return ret;
}
