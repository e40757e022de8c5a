/*
 * awsconf.c - reading the AWS shared credentials and config files into
 * sections of key/value pairs (see awsconf.h for the dialect).
 *
 * Layer: services; calls only the foundation.  Invariants: every value
 * stored is non-empty, keys are lower case, sections keep file order
 * (the credentials file's first) so a lookup takes the first match.  Every
 * string is wiped before being freed (values may be secrets).
 * Thread-safety: none needed; a loaded set is read-only.
 */
#include "awsconf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FILE_MAX (1u << 20)

enum sec_kind { SEC_PROFILE, SEC_SERVICES };

struct kv {
    char *key;
    char *val;
};

struct sec {
    enum sec_kind kind;
    char *name;
    struct kv *kv;
    size_t n, cap;
};

struct dsq_awsconf {
    struct sec *s;
    size_t n, cap;
    char *cred_path;
    char *conf_path;
};

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

struct dsq_awsconf *dsq_awsconf_new(void)
{
    return calloc(1, sizeof(struct dsq_awsconf));
}

void dsq_awsconf_free(struct dsq_awsconf *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        struct sec *s = &a->s[i];
        for (size_t j = 0; j < s->n; j++) {
            wipe_free(s->kv[j].key);
            wipe_free(s->kv[j].val);
        }
        free(s->kv);
        free(s->name);
    }
    free(a->s);
    free(a->cred_path);
    free(a->conf_path);
    free(a);
}

dsq_rc dsq_awsconf_read_file(const char *path, size_t cap, char **out,
                             struct dsq_err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return DSQ_ENOTFOUND;
        return dsq_err_set(e, DSQ_EIO, "cannot read %s: %s", path,
                           strerror(errno));
    }
    char *buf = malloc(cap + 1);
    size_t len = 0;
    dsq_rc rc = DSQ_OK;
    if (!buf) {
        close(fd);
        return DSQ_ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            char c;
            if (read(fd, &c, 1) > 0)
                rc = dsq_err_set(e, DSQ_ERANGE, "%s is larger than %zu bytes",
                                 path, cap);
            break;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = dsq_err_set(e, DSQ_EIO, "cannot read %s: %s", path,
                             strerror(errno));
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = 0;
    if (rc != DSQ_OK) {
        explicit_bzero(buf, len);
        free(buf);
        return rc;
    }
    *out = buf;
    return DSQ_OK;
}

/* Trim in place (both ends). */
static char *trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* Cut a value at a '#' or ';' that follows white space. */
static void cut_comment(char *v)
{
    for (char *p = v; *p; p++)
        if ((*p == '#' || *p == ';') && p > v &&
            isspace((unsigned char)p[-1])) {
            *p = 0;
            return;
        }
}

static struct sec *find_sec(const struct dsq_awsconf *a, enum sec_kind kind,
                            const char *name, size_t from)
{
    for (size_t i = from; i < a->n; i++)
        if (a->s[i].kind == kind && !strcmp(a->s[i].name, name))
            return &a->s[i];
    return NULL;
}

static struct sec *add_sec(struct dsq_awsconf *a, enum sec_kind kind,
                           const char *name)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 8;
        struct sec *ns = realloc(a->s, nc * sizeof(*ns));
        if (!ns)
            return NULL;
        a->s = ns;
        a->cap = nc;
    }
    struct sec *s = &a->s[a->n];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->name = strdup(name);
    if (!s->name)
        return NULL;
    a->n++;
    return s;
}

static const char *sec_get(const struct sec *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->kv[i].key, key))
            return s->kv[i].val;
    return NULL;
}

/* Add key (already "parent.key" for a sub-property) unless present. */
static dsq_rc add_kv(struct sec *s, const char *key, const char *val)
{
    if (!*val || sec_get(s, key))
        return DSQ_OK;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        struct kv *nk = realloc(s->kv, nc * sizeof(*nk));
        if (!nk)
            return DSQ_ENOMEM;
        s->kv = nk;
        s->cap = nc;
    }
    char *k = strdup(key), *v = strdup(val);
    if (!k || !v) {
        free(k);
        wipe_free(v);
        return DSQ_ENOMEM;
    }
    for (char *p = k; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    s->kv[s->n].key = k;
    s->kv[s->n].val = v;
    s->n++;
    return DSQ_OK;
}

/*
 * The section a header names: profile or services (config file), or NULL
 * for one that is neither.  *kind and *name are set; name points into l.
 */
static int header(char *l, int is_config, enum sec_kind *kind, char **name)
{
    char *end = strchr(l, ']');
    if (!end)
        return 0;
    *end = 0;
    char *sec = trim(l + 1);
    *kind = SEC_PROFILE;
    if (!is_config) {
        *name = sec;
        return *sec != 0;
    }
    if (!strncmp(sec, "profile", 7) && isspace((unsigned char)sec[7])) {
        *name = trim(sec + 8);
        return **name != 0;
    }
    if (!strncmp(sec, "services", 8) && isspace((unsigned char)sec[8])) {
        *kind = SEC_SERVICES;
        *name = trim(sec + 9);
        return **name != 0;
    }
    if (!strcmp(sec, "default")) {
        *name = sec;
        return 1;
    }
    return 0; /* "[x]" in the config file is not a profile */
}

dsq_rc dsq_awsconf_parse(struct dsq_awsconf *a, const char *text, int is_config,
                         struct dsq_err *e)
{
    (void)e;
    char *copy = strdup(text);
    if (!copy)
        return DSQ_ENOMEM;
    dsq_rc rc = DSQ_OK;
    size_t sec = (size_t)-1; /* index of the current section */
    char parent[64] = "";    /* key whose sub-section is open */
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line && rc == DSQ_OK;
         line = strtok_r(NULL, "\n", &save)) {
        int indented = *line == ' ' || *line == '\t';
        char *l = trim(line);
        if (!*l || *l == '#' || *l == ';')
            continue;
        if (*l == '[' && !indented) {
            enum sec_kind kind;
            char *name;
            parent[0] = 0;
            sec = (size_t)-1;
            if (!header(l, is_config, &kind, &name))
                continue;
            struct sec *s = add_sec(a, kind, name);
            if (!s) {
                rc = DSQ_ENOMEM;
                break;
            }
            sec = a->n - 1;
            continue;
        }
        if (sec == (size_t)-1)
            continue;
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq = 0;
        char *k = trim(l), *v = eq + 1;
        cut_comment(v);
        v = trim(v);
        if (!*k)
            continue;
        if (indented) {
            if (!parent[0])
                continue; /* a continuation line: not supported, skipped */
            char full[160];
            snprintf(full, sizeof(full), "%s.%.64s", parent, k);
            rc = add_kv(&a->s[sec], full, v);
        } else if (!*v) {
            snprintf(parent, sizeof(parent), "%.63s", k);
            for (char *p = parent; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        } else {
            parent[0] = 0;
            rc = add_kv(&a->s[sec], k, v);
        }
    }
    explicit_bzero(copy, strlen(text));
    free(copy);
    return rc;
}

static char *home_path(const char *rel)
{
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home)
        return NULL;
    size_t n = strlen(home) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", home, rel);
    return p;
}

static char *env_path(const char *var, const char *rel)
{
    const char *v = getenv(var);
    return v && *v ? strdup(v) : home_path(rel);
}

static dsq_rc load_one(struct dsq_awsconf *a, const char *path, int is_config,
                       struct dsq_err *e)
{
    char *text = NULL;
    if (!path)
        return DSQ_OK;
    dsq_rc rc = dsq_awsconf_read_file(path, FILE_MAX, &text, e);
    if (rc == DSQ_ENOTFOUND)
        return DSQ_OK;
    if (rc != DSQ_OK)
        return rc;
    rc = dsq_awsconf_parse(a, text, is_config, e);
    explicit_bzero(text, strlen(text));
    free(text);
    return rc;
}

dsq_rc dsq_awsconf_load(struct dsq_awsconf **out, struct dsq_err *e)
{
    struct dsq_awsconf *a = dsq_awsconf_new();
    if (!a)
        return DSQ_ENOMEM;
    a->cred_path = env_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    a->conf_path = env_path("AWS_CONFIG_FILE", ".aws/config");
    dsq_rc rc = load_one(a, a->cred_path, 0, e);
    if (rc == DSQ_OK)
        rc = load_one(a, a->conf_path, 1, e);
    if (rc != DSQ_OK) {
        dsq_awsconf_free(a);
        return rc;
    }
    *out = a;
    return DSQ_OK;
}

int dsq_awsconf_has_profile(const struct dsq_awsconf *a, const char *profile)
{
    return find_sec(a, SEC_PROFILE, profile, 0) != NULL;
}

static const char *get_kind(const struct dsq_awsconf *a, enum sec_kind kind,
                            const char *name, const char *key)
{
    char k[160];
    snprintf(k, sizeof(k), "%s", key);
    for (char *p = k; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (size_t i = 0; i < a->n; i++) {
        if (a->s[i].kind != kind || strcmp(a->s[i].name, name) != 0)
            continue;
        const char *v = sec_get(&a->s[i], k);
        if (v)
            return v;
    }
    return NULL;
}

const char *dsq_awsconf_get(const struct dsq_awsconf *a, const char *profile,
                            const char *key)
{
    return get_kind(a, SEC_PROFILE, profile, key);
}

const char *dsq_awsconf_services_get(const struct dsq_awsconf *a,
                                     const char *name, const char *key)
{
    return get_kind(a, SEC_SERVICES, name, key);
}

const char *dsq_awsconf_endpoint(const struct dsq_awsconf *a,
                                 const char *profile, const char *service,
                                 const char **where)
{
    char key[64];
    snprintf(key, sizeof(key), "%.40s.endpoint_url", service);
    const char *v = dsq_awsconf_get(a, profile, key);
    const char *w = "its sub-section";
    if (!v) {
        const char *svc = dsq_awsconf_get(a, profile, "services");
        if (svc) {
            v = dsq_awsconf_services_get(a, svc, key);
            w = "its services section";
        }
    }
    if (!v) {
        v = dsq_awsconf_get(a, profile, "endpoint_url");
        w = "its endpoint_url";
    }
    if (v && where)
        *where = w;
    return v;
}

const char *dsq_awsconf_credentials_path(const struct dsq_awsconf *a)
{
    return a->cred_path ? a->cred_path : "~/.aws/credentials";
}

const char *dsq_awsconf_config_path(const struct dsq_awsconf *a)
{
    return a->conf_path ? a->conf_path : "~/.aws/config";
}
