/*
 * config.c - the option table, parsers and environment loading.
 * Layer: foundation.  See config.h.  Path options are made absolute
 * against the working directory as they are parsed (the daemon runs in
 * "/" once it has detached).  No locking: a config is filled by one
 * thread before anyone reads it.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_kind {
    K_UINT,
    K_DOUBLE,
    K_BOOL,
    K_STR,
    K_PATH, /* a string; a relative path is made absolute at parse time */
    K_SIZE,
    K_ISOLATION,
    K_TRISTATE,
    K_MODE /* octal file mode: read/write bits, the owner's both */
};

struct opt {
    const char *name;
    const char *env;  /* NULL if none */
    const char *env2; /* second environment name, lower priority */
    enum opt_kind kind;
    size_t off;
    double min, max; /* for numbers */
};

#define OFF(f) offsetof(struct dsq_config, f)

static const struct opt opts[] = {
    {"checkpoint_interval", "DISTRIBUTED_SQLITE_CHECKPOINT_INTERVAL", NULL,
     K_UINT, OFF(checkpoint_interval), 1, 100000},
    {"overlay_max_pages", NULL, NULL, K_UINT, OFF(overlay_max_pages), 1,
     10000000},
    {"max_retries", "DISTRIBUTED_SQLITE_MAX_RETRIES", NULL, K_UINT,
     OFF(max_retries), 0, 1000},
    {"retry_base_seconds", "DISTRIBUTED_SQLITE_RETRY_BASE_SECONDS", NULL,
     K_DOUBLE, OFF(retry_base_s), 0, 3600},
    {"retry_max_seconds", "DISTRIBUTED_SQLITE_RETRY_MAX_SECONDS", NULL,
     K_DOUBLE, OFF(retry_max_s), 0, 86400},
    {"segment_max_bytes", NULL, NULL, K_SIZE, OFF(segment_max_bytes), 65536,
     4.0 * 1024 * 1024 * 1024},
    {"isolation", NULL, NULL, K_ISOLATION, OFF(isolation), 0, 0},
    {"compress", NULL, NULL, K_BOOL, OFF(compress), 0, 0},
    {"cache_dir", "DISTRIBUTED_SQLITE_CACHE_DIR", NULL, K_PATH, OFF(cache_dir),
     0, 0},
    {"page_cache_bytes", NULL, NULL, K_SIZE, OFF(page_cache_bytes), 0, 1e15},
    {"txn_mem_bytes", NULL, NULL, K_SIZE, OFF(txn_mem_bytes), 65536, 1e15},
    {"disk_cache", NULL, NULL, K_TRISTATE, OFF(disk_cache), 0, 0},
    {"store_mode", NULL, NULL, K_MODE, OFF(store_mode), 0, 0},
    {"disk_cache_bytes", NULL, NULL, K_SIZE, OFF(disk_cache_bytes), 0, 1e15},
    {"endpoint", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", K_STR,
     OFF(endpoint), 0, 0},
    {"region", "AWS_REGION", "AWS_DEFAULT_REGION", K_STR, OFF(region), 0, 0},
    {"access_key", "AWS_ACCESS_KEY_ID", NULL, K_STR, OFF(access_key), 0, 0},
    {"secret_key", "AWS_SECRET_ACCESS_KEY", NULL, K_STR, OFF(secret_key), 0, 0},
    {"session_token", "AWS_SESSION_TOKEN", NULL, K_STR, OFF(session_token), 0,
     0},
    {"profile", "AWS_PROFILE", NULL, K_STR, OFF(profile), 0, 0},
    {"ca_file", "AWS_CA_BUNDLE", NULL, K_PATH, OFF(ca_file), 0, 0},
    {"insecure", NULL, NULL, K_BOOL, OFF(insecure), 0, 0},
    {"path_style", NULL, NULL, K_TRISTATE, OFF(path_style), 0, 0},
    {"connect_timeout", NULL, NULL, K_UINT, OFF(connect_timeout_s), 1, 3600},
    {"request_timeout", NULL, NULL, K_UINT, OFF(request_timeout_s), 1, 3600},
    {"store_timeout", "DSQLFS_STORE_TIMEOUT", NULL, K_DOUBLE,
     OFF(store_timeout_s), 0.001, 86400},
    {"ro", NULL, NULL, K_BOOL, OFF(read_only), 0, 0},
    {"allow_delete", NULL, NULL, K_BOOL, OFF(allow_delete), 0, 0},
    {"writeback", NULL, NULL, K_BOOL, OFF(writeback), 0, 0},
    {"allow_other", NULL, NULL, K_BOOL, OFF(allow_other), 0, 0},
    {"staleness", NULL, NULL, K_DOUBLE, OFF(staleness_s), 0, 86400},
    {"spin_us", NULL, NULL, K_UINT, OFF(spin_us), 0, 1000000},
    {"maint_interval", NULL, NULL, K_UINT, OFF(maint_interval_s), 0,
     31 * 86400},
    {"orphan_sweep", NULL, NULL, K_BOOL, OFF(orphan_sweep), 0, 0},
    {"orphan_grace", NULL, NULL, K_UINT, OFF(orphan_grace_s), 0, 365 * 86400},
    {"gc_keep", NULL, NULL, K_UINT, OFF(gc_keep), 0, 1000000000},
    {"gc_keep_for", NULL, NULL, K_UINT, OFF(gc_keep_for_s), 0, 3650.0 * 86400},
    {"health_interval", NULL, NULL, K_UINT, OFF(health_interval_s), 1, 3600},
};

/*
 * spin_us when no option sets it: 100 with 2 or more usable CPUs, else 0.
 * A spinning daemon thread finds the SQLite process's next request
 * without being woken up for it; on 2 cores that made speedtest1 2.5x
 * and a one-row SELECT 3x faster and a single-row FULL commit about 20%
 * slower (docs/architecture.md, "Where a FUSE round trip's time goes").
 * With one CPU the spin only delays the process it waits for.
 */
unsigned dsq_config_default_spin_us(void)
{
    long n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 2 ? 100 : 0;
}

void dsq_config_init(struct dsq_config *c)
{
    memset(c, 0, sizeof(*c));
    c->checkpoint_interval = 50;
    c->overlay_max_pages = 8192;
    c->max_retries = 10;
    c->retry_base_s = 0.05;
    c->retry_max_s = 30.0;
    c->segment_max_bytes = 16u << 20;
    c->isolation = DSQ_ISOLATION_SNAPSHOT;
    c->compress = 1;
    c->page_cache_bytes = 64u << 20;
    c->txn_mem_bytes = 64u << 20;
    c->disk_cache = -1;
    c->store_mode = 0600;
    c->disk_cache_bytes = 1u << 30;
    c->path_style = -1;
    c->connect_timeout_s = 10;
    c->request_timeout_s = 30;
    c->store_timeout_s = 30;
    c->staleness_s = 0;
    c->spin_us = dsq_config_default_spin_us();
    c->maint_interval_s = 3600;
    c->orphan_sweep = 1;
    c->orphan_grace_s = 86400;
    c->health_interval_s = 30;
}

static void free_secret(char **p)
{
    if (*p) {
        volatile char *v = *p;
        while (*v)
            *v++ = 0;
        free(*p);
        *p = NULL;
    }
}

void dsq_config_cleanup(struct dsq_config *c)
{
    free(c->cache_dir);
    free(c->endpoint);
    free(c->region);
    free(c->access_key);
    free_secret(&c->secret_key);
    free_secret(&c->session_token);
    free(c->profile);
    free(c->ca_file);
    memset(c, 0, sizeof(*c));
}

static const struct opt *find_opt(const char *name)
{
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

int dsq_config_known(const char *name)
{
    return find_opt(name) != NULL;
}

char *dsq_path_absolute(const char *path)
{
    if (!path)
        return NULL;
    if (path[0] == '/' || path[0] == 0)
        return strdup(path);
    char cwd[4096];
    if (!getcwd(cwd, sizeof(cwd)))
        return NULL;
    const char *rel = path;
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    if (!strcmp(rel, "."))
        rel = "";
    size_t n = strlen(cwd) + 1 + strlen(rel) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s%s%s", cwd, *rel && strcmp(cwd, "/") ? "/" : "",
                 rel);
    return out;
}

static int parse_size(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return -1;
    double mul = 1;
    if (*end) {
        switch (*end) {
        case 'k':
        case 'K':
            mul = 1024.0;
            break;
        case 'm':
        case 'M':
            mul = 1024.0 * 1024;
            break;
        case 'g':
        case 'G':
            mul = 1024.0 * 1024 * 1024;
            break;
        case 't':
        case 'T':
            mul = 1024.0 * 1024 * 1024 * 1024;
            break;
        default:
            return -1;
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end)
            return -1;
    }
    *out = floor(v * mul);
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!s || !strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") ||
        !strcmp(s, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") ||
        !strcmp(s, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static dsq_rc apply(struct dsq_config *c, const struct opt *o,
                    const char *value, const char *source, struct dsq_err *e)
{
    char *base = (char *)c;
    double v;
    char *end;

    if (o->kind != K_BOOL && o->kind != K_TRISTATE && !value)
        return dsq_err_set(e, DSQ_EINVAL, "option %s (%s) needs a value",
                           o->name, source);
    switch (o->kind) {
    case K_UINT:
        errno = 0;
        v = strtod(value, &end);
        if (end == value || *end || errno || v != floor(v) || v < o->min ||
            v > o->max)
            goto bad_range;
        *(unsigned *)(base + o->off) = (unsigned)v;
        return DSQ_OK;
    case K_DOUBLE:
        errno = 0;
        v = strtod(value, &end);
        if (end == value || *end || errno || !isfinite(v) || v < o->min ||
            v > o->max)
            goto bad_range;
        *(double *)(base + o->off) = v;
        return DSQ_OK;
    case K_SIZE:
        if (parse_size(value, &v) != 0 || v < o->min || v > o->max)
            goto bad_range;
        *(uint64_t *)(base + o->off) = (uint64_t)v;
        return DSQ_OK;
    case K_BOOL: {
        int b;
        if (parse_bool(value, &b) != 0)
            return dsq_err_set(e, DSQ_EINVAL,
                               "option %s (%s): '%s' is not a boolean "
                               "(use 1/0, true/false, yes/no, on/off)",
                               o->name, source, value);
        *(int *)(base + o->off) = b;
        return DSQ_OK;
    }
    case K_TRISTATE: {
        int b;
        if (value && !strcmp(value, "auto")) {
            *(int *)(base + o->off) = -1;
            return DSQ_OK;
        }
        if (parse_bool(value, &b) != 0)
            return dsq_err_set(e, DSQ_EINVAL,
                               "option %s (%s): '%s' is not one of "
                               "auto/true/false",
                               o->name, source, value);
        *(int *)(base + o->off) = b;
        return DSQ_OK;
    }
    case K_STR: {
        char *dup = strdup(value);
        if (!dup)
            return DSQ_ENOMEM;
        char **slot = (char **)(base + o->off);
        if (o->off == OFF(secret_key) || o->off == OFF(session_token))
            free_secret(slot);
        else
            free(*slot);
        *slot = dup;
        if (o->off == OFF(endpoint))
            c->endpoint_src = source;
        return DSQ_OK;
    }
    case K_PATH: {
        errno = 0;
        char *abs = dsq_path_absolute(value);
        if (!abs)
            return dsq_err_set(e, DSQ_EINVAL,
                               "option %s (%s): cannot make '%s' an "
                               "absolute path: %s",
                               o->name, source, value,
                               errno ? strerror(errno) : "out of memory");
        char **slot = (char **)(base + o->off);
        free(*slot);
        *slot = abs;
        return DSQ_OK;
    }
    case K_MODE: {
        errno = 0;
        unsigned long m = strtoul(value, &end, 8);
        if (end == value || *end || errno || (m & ~0666ul) ||
            (m & 0600ul) != 0600ul)
            return dsq_err_set(e, DSQ_EINVAL,
                               "option %s (%s): '%s' is not a file mode of "
                               "read and write bits with the owner's both "
                               "(octal: 0600, 0640, 0644)",
                               o->name, source, value);
        *(unsigned *)(base + o->off) = (unsigned)m;
        return DSQ_OK;
    }
    case K_ISOLATION:
        if (!strcmp(value, "snapshot"))
            c->isolation = DSQ_ISOLATION_SNAPSHOT;
        else if (!strcmp(value, "serializable"))
            c->isolation = DSQ_ISOLATION_SERIALIZABLE;
        else
            return dsq_err_set(e, DSQ_EINVAL,
                               "option isolation (%s): '%s' is not "
                               "'snapshot' or 'serializable'",
                               source, value);
        return DSQ_OK;
    }
    return DSQ_EINVAL;
bad_range:
    /* never echo secrets; none of the numeric options is one */
    return dsq_err_set(e, DSQ_EINVAL,
                       "option %s (%s): '%s' is not a valid value "
                       "(expected a number from %g to %g)",
                       o->name, source, value, o->min, o->max);
}

dsq_rc dsq_config_load_env(struct dsq_config *c, struct dsq_err *e)
{
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        const struct opt *o = &opts[i];
        const char *name = o->env;
        const char *v = name ? getenv(name) : NULL;
        if ((!v || !*v) && o->env2) {
            name = o->env2;
            v = getenv(name);
        }
        if (!v || !*v)
            continue;
        dsq_rc rc = apply(c, o, v, name, e);
        if (rc != DSQ_OK)
            return rc;
    }
    return DSQ_OK;
}

dsq_rc dsq_config_set(struct dsq_config *c, const char *name, const char *value,
                      struct dsq_err *e)
{
    const struct opt *o = find_opt(name);
    if (!o)
        return dsq_err_set(e, DSQ_EINVAL, "unknown option '%s'", name);
    return apply(c, o, value, "-o", e);
}

dsq_rc dsq_config_set_list(struct dsq_config *c, const char *list,
                           struct dsq_err *e)
{
    char *copy = strdup(list);
    if (!copy)
        return DSQ_ENOMEM;
    dsq_rc rc = DSQ_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = 0;
        rc = dsq_config_set(c, tok, eq ? eq + 1 : NULL, e);
        if (rc != DSQ_OK)
            break;
    }
    /* the list may have held a secret */
    memset(copy, 0, strlen(list));
    free(copy);
    return rc;
}
