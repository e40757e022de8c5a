/*
 * creds.c - credential providers and refresh (see creds.h).
 *
 * Layer: services.  HTTP goes through http.c (no libcurl here); JSON
 * (container, IMDS) through jansson; STS XML through s3xml.c.
 *
 * Invariants: a chain always holds usable credentials from the provider
 * named by src (chain_new fails otherwise); cur is replaced whole, never
 * half-updated.  Thread-safety: lock guards cur, next_try_ms,
 * force_refresh and fetches; everything else is immutable after new.
 */
#include "creds.h"

#include "config.h"
#include "env.h"
#include "http.h"
#include "log.h"
#include "s3xml.h"
#include "sigv4.h"

#include <jansson.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAX (1u << 20)
#define BODY_MAX (64u << 10)
#define RETRY_AFTER_FAIL_MS 30000u

enum src { SRC_STATIC, SRC_PROFILE, SRC_WEBID, SRC_CONTAINER, SRC_IMDS };

struct dsq_creds_chain {
    pthread_mutex_t lock;
    struct dsq_creds cur;  /* guarded by lock */
    uint64_t next_try_ms;  /* guarded by lock: no refresh before */
    int force_refresh;     /* guarded by lock */
    unsigned fetches;      /* guarded by lock */

    /* immutable after dsq_creds_chain_new */
    enum src src;
    char source[160];
    struct dsq_http *http; /* not owned */
    char *region;          /* for STS */
    char *profile_region;
    char *role_arn, *token_file, *session_name, *sts_url; /* web identity */
    char *container_url, *auth_token, *auth_token_file;  /* container */
    char *imds_url;                                      /* IMDS */
};

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void dsq_creds_cleanup(struct dsq_creds *c)
{
    if (!c)
        return;
    free(c->access_key);
    free_secret(c->secret_key);
    free_secret(c->session_token);
    memset(c, 0, sizeof(*c));
}

static dsq_rc creds_copy(const struct dsq_creds *src, struct dsq_creds *dst)
{
    struct dsq_creds t = {0};
    t.access_key = strdup(src->access_key);
    t.secret_key = strdup(src->secret_key);
    if (src->session_token)
        t.session_token = strdup(src->session_token);
    t.expires_ms = src->expires_ms;
    if (!t.access_key || !t.secret_key ||
        (src->session_token && !t.session_token)) {
        dsq_creds_cleanup(&t);
        return DSQ_ENOMEM;
    }
    *dst = t;
    return DSQ_OK;
}

static dsq_rc creds_set(struct dsq_creds *out, const char *ak, const char *sk,
                        const char *tok, uint64_t exp)
{
    struct dsq_creds t = {ak ? strdup(ak) : NULL, sk ? strdup(sk) : NULL,
                          tok && *tok ? strdup(tok) : NULL, exp};
    if (!t.access_key || !t.secret_key || (tok && *tok && !t.session_token)) {
        dsq_creds_cleanup(&t);
        return DSQ_ENOMEM;
    }
    *out = t;
    return DSQ_OK;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int env_true(const char *name)
{
    const char *v = env(name);
    return v && (!strcasecmp(v, "true") || !strcmp(v, "1"));
}

static char *home_path(const char *rel)
{
    const char *home = env("HOME");
    if (!home) {
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

/*
 * Read a small file whole (NUL-terminated).  ENOTFOUND if missing;
 * ERANGE over cap.  The buffer may hold secrets: free with free_secret.
 */
static dsq_rc read_small(const char *path, size_t cap, char **out,
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

/* ---- shared files ---- */

struct profile {
    int found;
    char *ak, *sk, *tok, *region, *role_arn, *wit_file, *session_name;
};

static void profile_cleanup(struct profile *p)
{
    free(p->ak);
    free_secret(p->sk);
    free_secret(p->tok);
    free(p->region);
    free(p->role_arn);
    free(p->wit_file);
    free(p->session_name);
    memset(p, 0, sizeof(*p));
}

/*
 * Merge the section for profile name of one file into p (values already
 * set win: the credentials file is read first).  is_config selects the
 * "[profile NAME]" spelling.
 */
static dsq_rc ini_read(const char *path, const char *name, int is_config,
                       struct profile *p, struct dsq_err *e)
{
    char *text = NULL;
    dsq_rc rc = read_small(path, FILE_MAX, &text, e);
    if (rc == DSQ_ENOTFOUND)
        return DSQ_OK;
    if (rc != DSQ_OK)
        return rc;
    int in = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (*line == ' ' || *line == '\t')
            continue; /* nested sub-properties (s3 = ...) */
        char *l = trim(line);
        if (!*l || *l == '#' || *l == ';')
            continue;
        if (*l == '[') {
            char *end = strchr(l, ']');
            if (!end) {
                in = 0;
                continue;
            }
            *end = 0;
            char *sec = trim(l + 1);
            if (is_config && !strncmp(sec, "profile", 7) &&
                isspace((unsigned char)sec[7]))
                sec = trim(sec + 8);
            else if (is_config && strcmp(sec, "default") != 0)
                sec = NULL; /* "[x]" in config is not a profile */
            in = sec && !strcmp(sec, name);
            if (in)
                p->found = 1;
            continue;
        }
        if (!in)
            continue;
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq = 0;
        char *k = trim(l), *v = trim(eq + 1);
        char **slot = NULL;
        if (!strcasecmp(k, "aws_access_key_id"))
            slot = &p->ak;
        else if (!strcasecmp(k, "aws_secret_access_key"))
            slot = &p->sk;
        else if (!strcasecmp(k, "aws_session_token"))
            slot = &p->tok;
        else if (!strcasecmp(k, "region"))
            slot = &p->region;
        else if (!strcasecmp(k, "role_arn"))
            slot = &p->role_arn;
        else if (!strcasecmp(k, "web_identity_token_file"))
            slot = &p->wit_file;
        else if (!strcasecmp(k, "role_session_name"))
            slot = &p->session_name;
        if (slot && !*slot && *v) {
            *slot = strdup(v);
            if (!*slot) {
                rc = DSQ_ENOMEM;
                break;
            }
        }
    }
    explicit_bzero(text, strlen(text));
    free(text);
    return rc;
}

/* ---- HTTP helpers ---- */

/* GET/PUT/POST url with header lines; 2xx body into out. */
static dsq_rc fetch(struct dsq_creds_chain *c, const char *method,
                    const char *url, const char *const *hdrs, size_t nh,
                    const char *body, unsigned timeout_ms, unsigned attempts,
                    const char *what, struct dsq_buf *out, int *status,
                    struct dsq_err *e)
{
    dsq_rc rc = DSQ_OK;
    char host[256];
    dsq_http_url_host(url, host, sizeof(host));
    for (unsigned a = 0; a < attempts; a++) {
        struct dsq_http_req r = {0};
        struct dsq_http_resp resp;
        r.method = method;
        r.url = url;
        r.headers = hdrs;
        r.n_headers = nh;
        r.body = body;
        r.body_len = body ? strlen(body) : 0;
        r.body_out = out;
        r.timeout_ms = timeout_ms;
        dsq_buf_reset(out);
        rc = dsq_http_do(c->http, &r, &resp, e);
        if (rc == DSQ_OK) {
            *status = resp.status;
            if (resp.status >= 400 && resp.err_body.len) {
                /* keep the body for an STS error message */
                dsq_buf_reset(out);
                dsq_buf_append(out, resp.err_body.data, resp.err_body.len);
            }
            dsq_http_resp_cleanup(&resp);
            if (resp.status >= 500 && a + 1 < attempts) {
                dsq_env.sleep_ms(100u << a);
                continue;
            }
            return DSQ_OK;
        }
        dsq_http_resp_cleanup(&resp);
        if (rc != DSQ_ETRANSIENT)
            break;
        if (a + 1 < attempts)
            dsq_env.sleep_ms(100u << a);
    }
    dsq_err_prefix(e, "%s", what);
    if (rc == DSQ_ETRANSIENT) {
        rc = DSQ_EAUTH;
        if (e)
            e->rc = rc;
    }
    return rc;
}

/* Credentials from a container/IMDS JSON document. */
static dsq_rc parse_json_creds(const struct dsq_buf *b, const char *what,
                               struct dsq_creds *out, struct dsq_err *e)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)b->data, b->len, 0, &jerr);
    dsq_rc rc = DSQ_OK;
    if (!j || !json_is_object(j)) {
        rc = dsq_err_set(e, DSQ_EAUTH, "%s: answer is not a JSON object",
                         what);
        goto out;
    }
    const char *code = json_string_value(json_object_get(j, "Code"));
    if (code && strcmp(code, "Success") != 0) {
        rc = dsq_err_set(e, DSQ_EAUTH, "%s: answered Code '%.64s'", what,
                         code);
        goto out;
    }
    const char *ak = json_string_value(json_object_get(j, "AccessKeyId"));
    const char *sk = json_string_value(json_object_get(j, "SecretAccessKey"));
    const char *tok = json_string_value(json_object_get(j, "Token"));
    const char *exp = json_string_value(json_object_get(j, "Expiration"));
    uint64_t exp_ms = 0;
    if (!ak || !*ak || !sk || !*sk) {
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "%s: answer lacks AccessKeyId/SecretAccessKey", what);
        goto out;
    }
    if (exp && dsq_parse_iso8601_ms(exp, &exp_ms) != 0) {
        rc = dsq_err_set(e, DSQ_EAUTH, "%s: bad Expiration '%.40s'", what,
                         exp);
        goto out;
    }
    rc = creds_set(out, ak, sk, tok, exp_ms);
out:
    if (j)
        json_decref(j);
    return rc;
}

/* ---- providers ---- */

static dsq_rc fetch_webid(struct dsq_creds_chain *c, struct dsq_creds *out,
                          struct dsq_err *e)
{
    char *tok = NULL;
    struct dsq_buf form, body;
    dsq_rc rc;
    int status = 0;

    dsq_buf_init(&form, 1u << 20);
    dsq_buf_init(&body, BODY_MAX);
    rc = read_small(c->token_file, 1u << 20, &tok, e);
    if (rc == DSQ_ENOTFOUND)
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "web identity token file %s does not exist",
                         c->token_file);
    if (rc != DSQ_OK)
        goto out;
    struct dsq_sigv4_pair q[] = {
        {"Action", "AssumeRoleWithWebIdentity"},
        {"Version", "2011-06-15"},
        {"RoleArn", c->role_arn},
        {"RoleSessionName", c->session_name},
        {"WebIdentityToken", trim(tok)},
    };
    rc = dsq_sigv4_query(q, sizeof(q) / sizeof(q[0]), &form);
    if (rc == DSQ_OK)
        rc = dsq_buf_terminate(&form);
    if (rc != DSQ_OK)
        goto out;
    const char *hdrs[] = {
        "Content-Type: application/x-www-form-urlencoded; charset=utf-8"};
    rc = fetch(c, "POST", c->sts_url, hdrs, 1, (const char *)form.data, 10000,
               3, "STS AssumeRoleWithWebIdentity", &body, &status, e);
    if (rc != DSQ_OK)
        goto out;
    if (status != 200) {
        struct dsq_s3_error er;
        if (dsq_s3xml_parse_error(body.data, body.len, &er, NULL) == DSQ_OK)
            rc = dsq_err_set(e, DSQ_EAUTH,
                             "STS AssumeRoleWithWebIdentity for %s refused "
                             "(HTTP %d, %s): %s",
                             c->role_arn, status, er.code, er.message);
        else
            rc = dsq_err_set(e, DSQ_EAUTH,
                             "STS AssumeRoleWithWebIdentity for %s refused "
                             "(HTTP %d)",
                             c->role_arn, status);
        goto out;
    }
    struct dsq_s3xml_creds sc;
    rc = dsq_s3xml_parse_sts(body.data, body.len, &sc, e);
    if (rc != DSQ_OK) {
        dsq_err_prefix(e, "STS AssumeRoleWithWebIdentity");
        rc = DSQ_EAUTH;
        if (e)
            e->rc = rc;
        goto out;
    }
    rc = creds_set(out, sc.access_key, sc.secret_key, sc.session_token,
                   sc.expires_ms);
    dsq_s3xml_creds_cleanup(&sc);
out:
    if (tok)
        free_secret(tok);
    if (form.data)
        explicit_bzero(form.data, form.len);
    if (body.data)
        explicit_bzero(body.data, body.len);
    dsq_buf_cleanup(&form);
    dsq_buf_cleanup(&body);
    return rc;
}

static dsq_rc fetch_container(struct dsq_creds_chain *c, struct dsq_creds *out,
                              struct dsq_err *e)
{
    char *tok = NULL;
    char *hline = NULL;
    struct dsq_buf body;
    dsq_rc rc = DSQ_OK;
    int status = 0;
    const char *hdrs[1];
    size_t nh = 0;

    dsq_buf_init(&body, BODY_MAX);
    if (c->auth_token_file) {
        rc = read_small(c->auth_token_file, 16384, &tok, e);
        if (rc == DSQ_ENOTFOUND)
            rc = dsq_err_set(e, DSQ_EAUTH,
                             "container authorization token file %s does "
                             "not exist",
                             c->auth_token_file);
        if (rc != DSQ_OK)
            goto out;
    } else if (c->auth_token) {
        tok = strdup(c->auth_token);
        if (!tok) {
            rc = DSQ_ENOMEM;
            goto out;
        }
    }
    if (tok) {
        const char *t = trim(tok);
        if (strpbrk(t, "\r\n")) {
            rc = dsq_err_set(e, DSQ_EAUTH,
                             "container authorization token has a line "
                             "break");
            goto out;
        }
        size_t n = strlen(t) + 32;
        hline = malloc(n);
        if (!hline) {
            rc = DSQ_ENOMEM;
            goto out;
        }
        snprintf(hline, n, "Authorization: %s", t);
        hdrs[nh++] = hline;
    }
    rc = fetch(c, "GET", c->container_url, hdrs, nh, NULL, 5000, 3,
               "container credentials endpoint", &body, &status, e);
    if (rc != DSQ_OK)
        goto out;
    if (status != 200) {
        char host[256];
        dsq_http_url_host(c->container_url, host, sizeof(host));
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "container credentials endpoint %s answered HTTP %d",
                         host, status);
        goto out;
    }
    rc = parse_json_creds(&body, "container credentials endpoint", out, e);
out:
    free_secret(tok);
    free_secret(hline);
    if (body.data)
        explicit_bzero(body.data, body.len);
    dsq_buf_cleanup(&body);
    return rc;
}

static dsq_rc fetch_imds(struct dsq_creds_chain *c, struct dsq_creds *out,
                         struct dsq_err *e)
{
    struct dsq_buf tok, body;
    char url[1024], hline[1200];
    dsq_rc rc;
    int status = 0;

    dsq_buf_init(&tok, 4096);
    dsq_buf_init(&body, BODY_MAX);
    snprintf(url, sizeof(url), "%s/latest/api/token", c->imds_url);
    const char *th[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600"};
    rc = fetch(c, "PUT", url, th, 1, NULL, 1000, 2,
               "instance metadata (IMDSv2 token)", &tok, &status, e);
    if (rc != DSQ_OK)
        goto out;
    if (status != 200 || tok.len == 0 ||
        memchr(tok.data, '\n', tok.len) || memchr(tok.data, '\r', tok.len)) {
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "instance metadata: no IMDSv2 session token "
                         "(HTTP %d)",
                         status);
        goto out;
    }
    snprintf(hline, sizeof(hline), "X-aws-ec2-metadata-token: %.*s",
             (int)tok.len, (const char *)tok.data);
    const char *h[] = {hline};
    snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/",
             c->imds_url);
    rc = fetch(c, "GET", url, h, 1, NULL, 1000, 2, "instance metadata (role)",
               &body, &status, e);
    if (rc != DSQ_OK)
        goto out;
    if (status != 200 || body.len == 0) {
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "instance metadata: no IAM role attached (HTTP %d)",
                         status);
        goto out;
    }
    char role[256];
    size_t rl = strcspn((const char *)body.data, "\r\n");
    if (rl > body.len)
        rl = body.len;
    if (rl == 0 || rl >= sizeof(role)) {
        rc = dsq_err_set(e, DSQ_EAUTH, "instance metadata: bad role name");
        goto out;
    }
    memcpy(role, body.data, rl);
    role[rl] = 0;
    if (strchr(role, '/')) {
        rc = dsq_err_set(e, DSQ_EAUTH, "instance metadata: bad role name");
        goto out;
    }
    snprintf(url, sizeof(url),
             "%s/latest/meta-data/iam/security-credentials/%s", c->imds_url,
             role);
    rc = fetch(c, "GET", url, h, 1, NULL, 1000, 2,
               "instance metadata (credentials)", &body, &status, e);
    if (rc != DSQ_OK)
        goto out;
    if (status != 200) {
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "instance metadata: credentials of role %s: HTTP %d",
                         role, status);
        goto out;
    }
    rc = parse_json_creds(&body, "instance metadata", out, e);
out:
    explicit_bzero(hline, sizeof(hline));
    if (tok.data)
        explicit_bzero(tok.data, tok.len);
    if (body.data)
        explicit_bzero(body.data, body.len);
    dsq_buf_cleanup(&tok);
    dsq_buf_cleanup(&body);
    return rc;
}

/* Fetch from the chain's provider (no lock needed: c->http is MT-safe). */
static dsq_rc provider_fetch(struct dsq_creds_chain *c, struct dsq_creds *out,
                             struct dsq_err *e)
{
    switch (c->src) {
    case SRC_WEBID:
        return fetch_webid(c, out, e);
    case SRC_CONTAINER:
        return fetch_container(c, out, e);
    case SRC_IMDS:
        return fetch_imds(c, out, e);
    default:
        return dsq_err_set(e, DSQ_EAUTH,
                           "credentials from %s cannot be refreshed",
                           c->source);
    }
}

static int loopback_or_ecs(const char *url)
{
    char host[256];
    dsq_http_url_host(url, host, sizeof(host));
    /* strip the port */
    char *h = host;
    if (*h == '[') {
        char *end = strchr(h, ']');
        if (!end)
            return 0;
        *end = 0;
        h++;
    } else {
        char *colon = strrchr(h, ':');
        if (colon)
            *colon = 0;
    }
    return !strcmp(h, "localhost") || !strncmp(h, "127.", 4) ||
           !strcmp(h, "::1") || !strcmp(h, "169.254.170.2") ||
           !strcmp(h, "169.254.170.23") || !strcasecmp(h, "fd00:ec2::23");
}

static dsq_rc dupset(char **slot, const char *v)
{
    if (!v)
        return DSQ_OK;
    *slot = strdup(v);
    return *slot ? DSQ_OK : DSQ_ENOMEM;
}

void dsq_creds_chain_free(struct dsq_creds_chain *c)
{
    if (!c)
        return;
    dsq_creds_cleanup(&c->cur);
    pthread_mutex_destroy(&c->lock);
    free(c->region);
    free(c->profile_region);
    free(c->role_arn);
    free(c->token_file);
    free(c->session_name);
    free(c->sts_url);
    free(c->container_url);
    free_secret(c->auth_token);
    free(c->auth_token_file);
    free(c->imds_url);
    free(c);
}

static dsq_rc setup_webid(struct dsq_creds_chain *c, const char *role,
                          const char *file, const char *session)
{
    char name[64];
    char url[512];
    if (!session) {
        char hex[33];
        dsq_random_hex32(hex);
        snprintf(name, sizeof(name), "dsqlfs-%.12s", hex);
        session = name;
    }
    const char *sts = env("AWS_ENDPOINT_URL_STS");
    if (!sts) {
        snprintf(url, sizeof(url), "https://sts.%s.amazonaws.com/",
                 c->region);
        sts = url;
    }
    c->src = SRC_WEBID;
    snprintf(c->source, sizeof(c->source), "web identity (role %.100s)", role);
    if (dupset(&c->role_arn, role) || dupset(&c->token_file, file) ||
        dupset(&c->session_name, session) || dupset(&c->sts_url, sts))
        return DSQ_ENOMEM;
    return DSQ_OK;
}

/* Decide the provider; ENOTFOUND when none is configured. */
static dsq_rc choose(struct dsq_creds_chain *c, const struct dsq_config *cfg,
                     struct dsq_err *e)
{
    dsq_rc rc;
    /* 1. options / environment */
    if (cfg->access_key || cfg->secret_key) {
        if (!cfg->access_key || !*cfg->access_key || !cfg->secret_key ||
            !*cfg->secret_key)
            return dsq_err_set(e, DSQ_EAUTH,
                               "%s is set without %s (options or "
                               "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
                               cfg->access_key ? "the access key"
                                               : "the secret key",
                               cfg->access_key ? "a secret key"
                                               : "an access key");
        c->src = SRC_STATIC;
        snprintf(c->source, sizeof(c->source), "options/environment");
        return creds_set(&c->cur, cfg->access_key, cfg->secret_key,
                         cfg->session_token, 0);
    }

    /* 2. shared files */
    const char *pname = cfg->profile && *cfg->profile ? cfg->profile : NULL;
    int explicit_profile = pname != NULL;
    if (!pname)
        pname = "default";
    char *cred_file = env("AWS_SHARED_CREDENTIALS_FILE")
                          ? strdup(env("AWS_SHARED_CREDENTIALS_FILE"))
                          : home_path(".aws/credentials");
    char *conf_file = env("AWS_CONFIG_FILE") ? strdup(env("AWS_CONFIG_FILE"))
                                             : home_path(".aws/config");
    struct profile p = {0};
    rc = DSQ_OK;
    if (cred_file)
        rc = ini_read(cred_file, pname, 0, &p, e);
    if (rc == DSQ_OK && conf_file)
        rc = ini_read(conf_file, pname, 1, &p, e);
    if (rc == DSQ_OK && p.region)
        rc = dupset(&c->profile_region, p.region);
    if (rc == DSQ_OK && p.found) {
        if (p.ak && p.sk) {
            c->src = SRC_STATIC;
            snprintf(c->source, sizeof(c->source), "profile '%.100s'", pname);
            rc = creds_set(&c->cur, p.ak, p.sk, p.tok, 0);
        } else if (p.role_arn && p.wit_file) {
            rc = setup_webid(c, p.role_arn, p.wit_file, p.session_name);
            if (rc == DSQ_OK)
                rc = fetch_webid(c, &c->cur, e);
        } else if (p.ak || p.sk || explicit_profile) {
            rc = dsq_err_set(e, DSQ_EAUTH,
                             "profile '%s' has no aws_access_key_id and "
                             "aws_secret_access_key (nor role_arn and "
                             "web_identity_token_file)",
                             pname);
        } else {
            rc = DSQ_ENOTFOUND; /* default profile with only a region */
        }
    } else if (rc == DSQ_OK && explicit_profile) {
        rc = dsq_err_set(e, DSQ_EAUTH, "profile '%s' not found in %s or %s",
                         pname, cred_file ? cred_file : "~/.aws/credentials",
                         conf_file ? conf_file : "~/.aws/config");
    } else if (rc == DSQ_OK) {
        rc = DSQ_ENOTFOUND;
    }
    profile_cleanup(&p);
    free(cred_file);
    free(conf_file);
    if (rc != DSQ_ENOTFOUND)
        return rc;

    /* 3. web identity */
    if (env("AWS_WEB_IDENTITY_TOKEN_FILE") && env("AWS_ROLE_ARN")) {
        rc = setup_webid(c, env("AWS_ROLE_ARN"),
                         env("AWS_WEB_IDENTITY_TOKEN_FILE"),
                         env("AWS_ROLE_SESSION_NAME"));
        if (rc == DSQ_OK)
            rc = fetch_webid(c, &c->cur, e);
        return rc;
    }

    /* 4. container */
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (rel || full) {
        char url[2048];
        if (rel) {
            snprintf(url, sizeof(url), "http://169.254.170.2%s%s",
                     rel[0] == '/' ? "" : "/", rel);
        } else {
            if (strncmp(full, "https://", 8) != 0 &&
                !(strncmp(full, "http://", 7) == 0 && loopback_or_ecs(full)))
                return dsq_err_set(e, DSQ_EAUTH,
                                   "AWS_CONTAINER_CREDENTIALS_FULL_URI must be "
                                   "https, or http on a loopback or the "
                                   "container credentials address");
            snprintf(url, sizeof(url), "%s", full);
        }
        c->src = SRC_CONTAINER;
        snprintf(c->source, sizeof(c->source), "container endpoint");
        if (dupset(&c->container_url, url) ||
            dupset(&c->auth_token_file,
                   env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) ||
            dupset(&c->auth_token, env("AWS_CONTAINER_AUTHORIZATION_TOKEN")))
            return DSQ_ENOMEM;
        return fetch_container(c, &c->cur, e);
    }

    /* 5. IMDSv2 */
    if (!env_true("AWS_EC2_METADATA_DISABLED")) {
        const char *ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        char url[512];
        snprintf(url, sizeof(url), "%s", ep ? ep : "http://169.254.169.254");
        size_t n = strlen(url);
        while (n && url[n - 1] == '/')
            url[--n] = 0;
        c->src = SRC_IMDS;
        snprintf(c->source, sizeof(c->source), "instance metadata");
        if (dupset(&c->imds_url, url))
            return DSQ_ENOMEM;
        struct dsq_err e2;
        dsq_err_clear(&e2);
        rc = fetch_imds(c, &c->cur, &e2);
        if (rc == DSQ_OK)
            return rc;
        dsq_log(DSQ_LOG_INFO, "creds", "no instance metadata credentials: %s",
                e2.msg);
        if (ep) { /* configured explicitly: its failure is the answer */
            if (e)
                *e = e2;
            return rc;
        }
    }
    return DSQ_ENOTFOUND;
}

dsq_rc dsq_creds_chain_new(const struct dsq_config *cfg,
                           struct dsq_http *http,
                           struct dsq_creds_chain **out, struct dsq_err *e)
{
    struct dsq_creds_chain *c = calloc(1, sizeof(*c));
    if (!c)
        return DSQ_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    c->http = http;
    c->region = strdup(cfg->region && *cfg->region ? cfg->region
                                                   : "us-east-1");
    if (!c->region) {
        dsq_creds_chain_free(c);
        return DSQ_ENOMEM;
    }
    dsq_rc rc = choose(c, cfg, e);
    if (rc == DSQ_ENOTFOUND)
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "no AWS credentials found: tried options and "
                         "environment (AWS_ACCESS_KEY_ID/"
                         "AWS_SECRET_ACCESS_KEY), profile '%s' in "
                         "~/.aws/credentials and ~/.aws/config, web identity, "
                         "container and instance metadata",
                         cfg->profile && *cfg->profile ? cfg->profile
                                                       : "default");
    if (rc != DSQ_OK) {
        dsq_creds_chain_free(c);
        return rc;
    }
    c->fetches = 1;
    dsq_log(DSQ_LOG_INFO, "creds", "using credentials from %s", c->source);
    *out = c;
    return DSQ_OK;
}

static int refreshable(const struct dsq_creds_chain *c)
{
    return c->src == SRC_WEBID || c->src == SRC_CONTAINER ||
           c->src == SRC_IMDS;
}

dsq_rc dsq_creds_get(struct dsq_creds_chain *c, struct dsq_creds *out,
                     struct dsq_err *e)
{
    dsq_rc rc = DSQ_OK;
    pthread_mutex_lock(&c->lock);
    uint64_t now = dsq_now_ms();
    int due = refreshable(c) &&
              (c->force_refresh ||
               (c->cur.expires_ms &&
                now + DSQ_CREDS_REFRESH_MS >= c->cur.expires_ms));
    if (due && (now >= c->next_try_ms || c->force_refresh ||
                (c->cur.expires_ms && now >= c->cur.expires_ms))) {
        struct dsq_creds fresh = {0};
        struct dsq_err e2;
        dsq_err_clear(&e2);
        rc = provider_fetch(c, &fresh, &e2);
        c->fetches++;
        if (rc == DSQ_OK) {
            dsq_creds_cleanup(&c->cur);
            c->cur = fresh;
            c->force_refresh = 0;
            c->next_try_ms = 0;
            dsq_log(DSQ_LOG_INFO, "creds", "refreshed credentials from %s",
                    c->source);
        } else {
            c->next_try_ms = now + RETRY_AFTER_FAIL_MS;
            if (!c->force_refresh && c->cur.expires_ms &&
                now < c->cur.expires_ms) {
                dsq_log(DSQ_LOG_WARNING, "creds",
                        "refreshing credentials from %s failed, the current "
                        "ones stay valid for %llu s: %s",
                        c->source,
                        (unsigned long long)((c->cur.expires_ms - now) /
                                             1000),
                        e2.msg);
                rc = DSQ_OK;
            } else {
                if (e)
                    *e = e2;
                dsq_err_prefix(e, "credentials from %s expired and could not "
                                  "be refreshed",
                               c->source);
                rc = DSQ_EAUTH;
                if (e)
                    e->rc = rc;
            }
        }
    }
    if (rc == DSQ_OK)
        rc = creds_copy(&c->cur, out);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int dsq_creds_invalidate(struct dsq_creds_chain *c)
{
    if (!refreshable(c))
        return 0;
    pthread_mutex_lock(&c->lock);
    c->force_refresh = 1;
    pthread_mutex_unlock(&c->lock);
    return 1;
}

const char *dsq_creds_source(const struct dsq_creds_chain *c)
{
    return c->source;
}

const char *dsq_creds_profile_region(const struct dsq_creds_chain *c)
{
    return c->profile_region;
}

unsigned dsq_creds_fetches(const struct dsq_creds_chain *c)
{
    struct dsq_creds_chain *m = (struct dsq_creds_chain *)c;
    pthread_mutex_lock(&m->lock);
    unsigned n = m->fetches;
    pthread_mutex_unlock(&m->lock);
    return n;
}
