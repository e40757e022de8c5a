/*
 * creds.c - credential providers and refresh (see creds.h).
 *
 * Layer: services.  HTTP goes through http.c (no libcurl here); JSON
 * (container, IMDS, credential_process) through jansson; STS XML through
 * s3xml.c; SigV4 for AssumeRole through sigv4.c; the shared files through
 * awsconf.c; helper commands through proc.c.
 *
 * Sections: helpers; HTTP and JSON; the providers (web identity,
 * container, IMDS, credential_process, AssumeRole); resolving a profile
 * into a provider tree; the chain (choose, get, refresh).
 *
 * A provider is a tree: AssumeRole holds the provider of its source
 * profile's credentials, fetched afresh at every refresh of the role's.
 *
 * Invariants: a chain always holds usable credentials from the provider
 * named by top->what (chain_new fails otherwise); cur is replaced whole,
 * never half-updated.  Thread-safety: lock guards cur, next_try_ms,
 * force_refresh and fetches; everything else is immutable after new.
 */
#include "creds.h"

#include "awsconf.h"
#include "config.h"
#include "env.h"
#include "http.h"
#include "log.h"
#include "proc.h"
#include "s3xml.h"
#include "sigv4.h"

#include <jansson.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BODY_MAX (64u << 10)
#define RETRY_AFTER_FAIL_MS 30000u
#define PROCESS_OUT_MAX (64u << 10)
#define PROCESS_ERR_MAX 4096u
#define PROFILE_DEPTH_MAX 8

static unsigned process_timeout_ms = 60000;

enum kind { P_STATIC, P_PROCESS, P_ASSUME, P_WEBID, P_CONTAINER, P_IMDS };

/* One credential provider (immutable after chain_new). */
struct prov {
    enum kind kind;
    char what[240];         /* names it in logs and messages */
    struct dsq_creds fixed; /* P_STATIC */
    char *profile;          /* P_PROCESS, P_ASSUME: its profile */
    char **argv;            /* P_PROCESS */
    char *role_arn;         /* P_ASSUME, P_WEBID */
    char *session_name;     /* P_ASSUME, P_WEBID */
    char *external_id;      /* P_ASSUME, or NULL */
    unsigned duration_s;    /* P_ASSUME, 0 = STS's default */
    struct prov *source;    /* P_ASSUME: owned */
    char *token_file;       /* P_WEBID */
    char *container_url;    /* P_CONTAINER */
    char *auth_token;       /* P_CONTAINER: SECRET */
    char *auth_token_file;  /* P_CONTAINER */
    char *imds_url;         /* P_IMDS */
};

struct dsq_creds_chain {
    pthread_mutex_t lock;
    struct dsq_creds cur; /* guarded by lock */
    uint64_t next_try_ms; /* guarded by lock: no refresh before */
    int force_refresh;    /* guarded by lock */
    unsigned fetches;     /* guarded by lock */

    /* immutable after dsq_creds_chain_new */
    struct prov *top;
    struct dsq_http *http; /* not owned */
    char *region;          /* STS: signing region, default endpoint */
    char *sts_url;
    char *profile_region;
    char *s3_endpoint; /* from the profile, or NULL */
    char s3_where[200];
    int ignore_endpoints;
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

static int is_true(const char *v)
{
    return v && (!strcasecmp(v, "true") || !strcmp(v, "1"));
}

static int env_true(const char *name)
{
    return is_true(env(name));
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

static dsq_rc dupset(char **slot, const char *v)
{
    if (!v)
        return DSQ_OK;
    *slot = strdup(v);
    return *slot ? DSQ_OK : DSQ_ENOMEM;
}

/* Mark an error as an authentication failure, keeping its message. */
static dsq_rc as_auth(dsq_rc rc, struct dsq_err *e)
{
    if (rc == DSQ_OK || rc == DSQ_ENOMEM)
        return rc;
    if (e)
        e->rc = DSQ_EAUTH;
    return DSQ_EAUTH;
}

/* ---- HTTP and JSON helpers ---- */

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
        rc = dsq_err_set(e, DSQ_EAUTH, "%s: answer is not a JSON object", what);
        goto out;
    }
    const char *code = json_string_value(json_object_get(j, "Code"));
    if (code && strcmp(code, "Success") != 0) {
        rc = dsq_err_set(e, DSQ_EAUTH, "%s: answered Code '%.64s'", what, code);
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
        rc = dsq_err_set(e, DSQ_EAUTH, "%s: bad Expiration '%.40s'", what, exp);
        goto out;
    }
    rc = creds_set(out, ak, sk, tok, exp_ms);
out:
    if (j)
        json_decref(j);
    return rc;
}

/* ---- providers: web identity, container, IMDS ---- */

static dsq_rc fetch_webid(struct dsq_creds_chain *c, const struct prov *p,
                          struct dsq_creds *out, struct dsq_err *e)
{
    char *tok = NULL;
    struct dsq_buf form, body;
    dsq_rc rc;
    int status = 0;

    dsq_buf_init(&form, 1u << 20);
    dsq_buf_init(&body, BODY_MAX);
    rc = dsq_awsconf_read_file(p->token_file, 1u << 20, &tok, e);
    if (rc == DSQ_ENOTFOUND)
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "web identity token file %s does not exist",
                         p->token_file);
    if (rc != DSQ_OK)
        goto out;
    struct dsq_sigv4_pair q[] = {
        {"Action", "AssumeRoleWithWebIdentity"},
        {"Version", "2011-06-15"},
        {"RoleArn", p->role_arn},
        {"RoleSessionName", p->session_name},
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
                             p->role_arn, status, er.code, er.message);
        else
            rc = dsq_err_set(e, DSQ_EAUTH,
                             "STS AssumeRoleWithWebIdentity for %s refused "
                             "(HTTP %d)",
                             p->role_arn, status);
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

static dsq_rc fetch_container(struct dsq_creds_chain *c, const struct prov *p,
                              struct dsq_creds *out, struct dsq_err *e)
{
    char *tok = NULL;
    char *hline = NULL;
    struct dsq_buf body;
    dsq_rc rc = DSQ_OK;
    int status = 0;
    const char *hdrs[1];
    size_t nh = 0;

    dsq_buf_init(&body, BODY_MAX);
    if (p->auth_token_file) {
        rc = dsq_awsconf_read_file(p->auth_token_file, 16384, &tok, e);
        if (rc == DSQ_ENOTFOUND)
            rc = dsq_err_set(e, DSQ_EAUTH,
                             "container authorization token file %s does "
                             "not exist",
                             p->auth_token_file);
        if (rc != DSQ_OK)
            goto out;
    } else if (p->auth_token) {
        tok = strdup(p->auth_token);
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
    rc = fetch(c, "GET", p->container_url, hdrs, nh, NULL, 5000, 3,
               "container credentials endpoint", &body, &status, e);
    if (rc != DSQ_OK)
        goto out;
    if (status != 200) {
        char host[256];
        dsq_http_url_host(p->container_url, host, sizeof(host));
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

static dsq_rc fetch_imds(struct dsq_creds_chain *c, const struct prov *p,
                         struct dsq_creds *out, struct dsq_err *e)
{
    struct dsq_buf tok, body;
    char url[1024], hline[1200];
    dsq_rc rc;
    int status = 0;

    dsq_buf_init(&tok, 4096);
    dsq_buf_init(&body, BODY_MAX);
    snprintf(url, sizeof(url), "%s/latest/api/token", p->imds_url);
    const char *th[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600"};
    rc = fetch(c, "PUT", url, th, 1, NULL, 1000, 2,
               "instance metadata (IMDSv2 token)", &tok, &status, e);
    if (rc != DSQ_OK)
        goto out;
    if (status != 200 || tok.len == 0 || memchr(tok.data, '\n', tok.len) ||
        memchr(tok.data, '\r', tok.len)) {
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
             p->imds_url);
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
             "%s/latest/meta-data/iam/security-credentials/%s", p->imds_url,
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

/* ---- credential_process ---- */

/* stderr of a failed helper as one printable line, at most cap-1 bytes. */
static void one_line(const struct dsq_buf *b, char *out, size_t cap)
{
    size_t o = 0;
    int space = 0;
    for (size_t i = 0; i < b->len && o + 4 < cap; i++) {
        unsigned char ch = b->data[i];
        if (ch < 0x20 || ch == 0x7f) {
            space = o > 0;
            continue;
        }
        if (space && ch != ' ')
            out[o++] = ' ';
        space = 0;
        if (ch != ' ' || (o && out[o - 1] != ' '))
            out[o++] = (char)ch;
    }
    while (o && out[o - 1] == ' ')
        o--;
    if (o + 4 >= cap && b->len > o) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
}

static dsq_rc fetch_process(const struct prov *p, struct dsq_creds *out,
                            struct dsq_err *e)
{
    struct dsq_proc_result r;
    json_t *j = NULL;
    dsq_rc rc = dsq_proc_run(p->argv, process_timeout_ms, PROCESS_OUT_MAX,
                             PROCESS_ERR_MAX, &r, e);
    if (rc != DSQ_OK) {
        dsq_err_prefix(e, "%s", p->what);
        rc = as_auth(rc, e);
        goto out;
    }
    if (!r.exited || r.status != 0) {
        char why[320];
        one_line(&r.err, why, sizeof(why));
        if (r.exited)
            rc = dsq_err_set(e, DSQ_EAUTH, "%s: %s exited with status %d%s%s",
                             p->what, p->argv[0], r.status, *why ? ": " : "",
                             why);
        else
            rc = dsq_err_set(e, DSQ_EAUTH, "%s: %s was killed by signal %d",
                             p->what, p->argv[0], r.status);
        goto out;
    }
    json_error_t jerr;
    j = json_loadb((const char *)r.out.data, r.out.len, 0, &jerr);
    if (!j || !json_is_object(j)) {
        /* never quote the output: it may hold the secret */
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "%s: %s printed no JSON object (%zu bytes on "
                         "stdout)",
                         p->what, p->argv[0], r.out.len);
        goto out;
    }
    json_t *ver = json_object_get(j, "Version");
    if (!ver || !json_is_integer(ver)) {
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "%s: the JSON %s printed has no \"Version\": 1",
                         p->what, p->argv[0]);
        goto out;
    }
    if (json_integer_value(ver) != 1) {
        rc = dsq_err_set(
            e, DSQ_EAUTH, "%s: %s printed Version %lld (only 1 is known)",
            p->what, p->argv[0], (long long)json_integer_value(ver));
        goto out;
    }
    json_t *jak = json_object_get(j, "AccessKeyId");
    json_t *jsk = json_object_get(j, "SecretAccessKey");
    json_t *jtok = json_object_get(j, "SessionToken");
    json_t *jexp = json_object_get(j, "Expiration");
    const char *ak = json_string_value(jak), *sk = json_string_value(jsk);
    if (!ak || !*ak || !sk || !*sk) {
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "%s: the JSON %s printed lacks AccessKeyId or "
                         "SecretAccessKey",
                         p->what, p->argv[0]);
        goto out;
    }
    if ((jtok && !json_is_null(jtok) && !json_is_string(jtok)) ||
        (jexp && !json_is_null(jexp) && !json_is_string(jexp))) {
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "%s: SessionToken and Expiration in the JSON %s "
                         "printed must be strings",
                         p->what, p->argv[0]);
        goto out;
    }
    const char *exp = json_string_value(jexp);
    uint64_t exp_ms = 0;
    if (exp && dsq_parse_iso8601_ms(exp, &exp_ms) != 0) {
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "%s: %s printed a bad Expiration '%.40s' (expected "
                         "RFC 3339, e.g. 2030-01-01T00:00:00Z)",
                         p->what, p->argv[0], exp);
        goto out;
    }
    if (exp && exp_ms <= dsq_now_ms()) {
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "%s: %s printed credentials that expired at %.40s",
                         p->what, p->argv[0], exp);
        goto out;
    }
    rc = creds_set(out, ak, sk, json_string_value(jtok), exp_ms);
out:
    if (j)
        json_decref(j);
    dsq_proc_result_cleanup(&r);
    return rc;
}

/* ---- AssumeRole ---- */

static dsq_rc prov_fetch(struct dsq_creds_chain *c, const struct prov *p,
                         struct dsq_creds *out, struct dsq_err *e);

/*
 * scheme://authority[/path] of an STS endpoint: the authority for the
 * signed host header, the path for the canonical request.
 */
static dsq_rc split_url(const char *url, char *host, size_t hcap, char *path,
                        size_t pcap, struct dsq_err *e)
{
    const char *sep = strstr(url, "://");
    size_t sl = sep ? (size_t)(sep - url) : 0;
    if (!sep || !((sl == 4 && !strncasecmp(url, "http", 4)) ||
                  (sl == 5 && !strncasecmp(url, "https", 5))))
        return dsq_err_set(e, DSQ_EINVAL,
                           "STS endpoint '%.200s': expected http[s]://host"
                           "[:port][/path]",
                           url);
    const char *h = sep + 3;
    size_t hl = strcspn(h, "/?#");
    const char *rest = h + hl;
    if (hl == 0 || hl >= hcap || memchr(h, '@', hl) || strpbrk(rest, "?#") ||
        strlen(rest) >= pcap ||
        strspn(rest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789-._~/") != strlen(rest))
        return dsq_err_set(e, DSQ_EINVAL,
                           "STS endpoint '%.200s': expected http[s]://host"
                           "[:port][/path] without user or query",
                           url);
    memcpy(host, h, hl);
    host[hl] = 0;
    snprintf(path, pcap, "%s", *rest ? rest : "/");
    return DSQ_OK;
}

static dsq_rc fetch_assume(struct dsq_creds_chain *c, const struct prov *p,
                           struct dsq_creds *out, struct dsq_err *e)
{
    struct dsq_creds src = {0};
    struct dsq_buf form, body, authz;
    char host[256], path[512], date[17], sig[65], hash[65], dur[16];
    char *lines[4] = {NULL, NULL, NULL, NULL};
    int status = 0;
    dsq_rc rc;

    dsq_buf_init(&form, 64u << 10);
    dsq_buf_init(&body, BODY_MAX);
    dsq_buf_init(&authz, 4096);
    rc = prov_fetch(c, p->source, &src, e);
    if (rc != DSQ_OK) {
        dsq_err_prefix(e, "%s: its source credentials", p->what);
        goto out;
    }
    rc = split_url(c->sts_url, host, sizeof(host), path, sizeof(path), e);
    if (rc != DSQ_OK) {
        rc = as_auth(rc, e);
        goto out;
    }
    struct dsq_sigv4_pair q[6];
    size_t nq = 0;
    q[nq++] = (struct dsq_sigv4_pair){"Action", "AssumeRole"};
    q[nq++] = (struct dsq_sigv4_pair){"Version", "2011-06-15"};
    q[nq++] = (struct dsq_sigv4_pair){"RoleArn", p->role_arn};
    q[nq++] = (struct dsq_sigv4_pair){"RoleSessionName", p->session_name};
    if (p->external_id)
        q[nq++] = (struct dsq_sigv4_pair){"ExternalId", p->external_id};
    if (p->duration_s) {
        snprintf(dur, sizeof(dur), "%u", p->duration_s);
        q[nq++] = (struct dsq_sigv4_pair){"DurationSeconds", dur};
    }
    rc = dsq_sigv4_query(q, nq, &form);
    if (rc == DSQ_OK)
        rc = dsq_buf_terminate(&form);
    if (rc != DSQ_OK)
        goto out;
    dsq_sha256_hex(form.data, form.len, hash);
    dsq_sigv4_amz_date(dsq_now_ms(), date);
    const char *ctype = "application/x-www-form-urlencoded; charset=utf-8";
    struct dsq_sigv4_pair h[4];
    size_t nh = 0;
    h[nh++] = (struct dsq_sigv4_pair){"content-type", ctype};
    h[nh++] = (struct dsq_sigv4_pair){"host", host};
    h[nh++] = (struct dsq_sigv4_pair){"x-amz-date", date};
    if (src.session_token)
        h[nh++] =
            (struct dsq_sigv4_pair){"x-amz-security-token", src.session_token};
    struct dsq_sigv4_req sr = {"POST", path, NULL, 0, h, nh, hash};
    struct dsq_sigv4_scope sc = {date, c->region, "sts"};
    rc = dsq_sigv4_sign(&sr, &sc, src.access_key, src.secret_key, sig, &authz);
    if (rc != DSQ_OK)
        goto out;
    size_t nl = 0;
    for (size_t i = 0; i < nh; i++) {
        size_t n = strlen(h[i].name) + strlen(h[i].value) + 3;
        if (!(lines[nl] = malloc(n))) {
            rc = DSQ_ENOMEM;
            goto out;
        }
        snprintf(lines[nl++], n, "%s: %s", h[i].name, h[i].value);
    }
    char *auth = malloc(authz.len + 16);
    if (!auth) {
        rc = DSQ_ENOMEM;
        goto out;
    }
    snprintf(auth, authz.len + 16, "Authorization: %.*s", (int)authz.len,
             (const char *)authz.data);
    const char *hl[5] = {lines[0], lines[1], lines[2], lines[3], NULL};
    hl[nl] = auth;
    rc = fetch(c, "POST", c->sts_url, hl, nl + 1, (const char *)form.data,
               10000, 3, "STS AssumeRole", &body, &status, e);
    free_secret(auth);
    if (rc != DSQ_OK) {
        dsq_err_prefix(e, "%s", p->what);
        goto out;
    }
    if (status != 200) {
        struct dsq_s3_error er;
        if (dsq_s3xml_parse_error(body.data, body.len, &er, NULL) == DSQ_OK &&
            er.code[0])
            rc = dsq_err_set(e, DSQ_EAUTH,
                             "%s: STS AssumeRole refused (HTTP %d, %s): %s",
                             p->what, status, er.code, er.message);
        else
            rc = dsq_err_set(e, DSQ_EAUTH,
                             "%s: STS AssumeRole refused (HTTP %d)", p->what,
                             status);
        goto out;
    }
    struct dsq_s3xml_creds scr;
    rc = dsq_s3xml_parse_sts(body.data, body.len, &scr, e);
    if (rc != DSQ_OK) {
        dsq_err_prefix(e, "%s: STS AssumeRole", p->what);
        rc = as_auth(rc, e);
        goto out;
    }
    rc = creds_set(out, scr.access_key, scr.secret_key, scr.session_token,
                   scr.expires_ms);
    dsq_s3xml_creds_cleanup(&scr);
out:
    for (size_t i = 0; i < 4; i++)
        free_secret(lines[i]);
    dsq_creds_cleanup(&src);
    if (body.data)
        explicit_bzero(body.data, body.len);
    if (authz.data)
        explicit_bzero(authz.data, authz.len);
    dsq_buf_cleanup(&form);
    dsq_buf_cleanup(&body);
    dsq_buf_cleanup(&authz);
    return rc;
}

/* Fetch from a provider (no lock needed: c->http is MT-safe). */
static dsq_rc prov_fetch(struct dsq_creds_chain *c, const struct prov *p,
                         struct dsq_creds *out, struct dsq_err *e)
{
    switch (p->kind) {
    case P_STATIC:
        return creds_copy(&p->fixed, out);
    case P_PROCESS:
        return fetch_process(p, out, e);
    case P_ASSUME:
        return fetch_assume(c, p, out, e);
    case P_WEBID:
        return fetch_webid(c, p, out, e);
    case P_CONTAINER:
        return fetch_container(c, p, out, e);
    case P_IMDS:
        return fetch_imds(c, p, out, e);
    }
    return DSQ_EINVAL;
}

/* ---- building providers ---- */

static void prov_free(struct prov *p)
{
    if (!p)
        return;
    dsq_creds_cleanup(&p->fixed);
    free(p->profile);
    dsq_proc_argv_free(p->argv);
    free(p->role_arn);
    free(p->session_name);
    free(p->external_id);
    prov_free(p->source);
    free(p->token_file);
    free(p->container_url);
    free_secret(p->auth_token);
    free(p->auth_token_file);
    free(p->imds_url);
    free(p);
}

static struct prov *prov_new(enum kind kind)
{
    struct prov *p = calloc(1, sizeof(*p));
    if (p)
        p->kind = kind;
    return p;
}

static dsq_rc session_name(struct prov *p, const char *given)
{
    char name[64];
    if (!given) {
        char hex[33];
        dsq_random_hex32(hex);
        snprintf(name, sizeof(name), "dsqlfs-%.12s", hex);
        given = name;
    }
    return dupset(&p->session_name, given);
}

static dsq_rc new_webid(const char *role, const char *file, const char *session,
                        struct prov **out)
{
    struct prov *p = prov_new(P_WEBID);
    if (!p)
        return DSQ_ENOMEM;
    snprintf(p->what, sizeof(p->what), "web identity (role %.100s)", role);
    if (dupset(&p->role_arn, role) || dupset(&p->token_file, file) ||
        session_name(p, session)) {
        prov_free(p);
        return DSQ_ENOMEM;
    }
    *out = p;
    return DSQ_OK;
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

/* The container endpoint from the environment; ENOTFOUND if not set. */
static dsq_rc new_container(struct prov **out, struct dsq_err *e)
{
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    char url[2048];
    if (!rel && !full)
        return DSQ_ENOTFOUND;
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
    struct prov *p = prov_new(P_CONTAINER);
    if (!p)
        return DSQ_ENOMEM;
    snprintf(p->what, sizeof(p->what), "container endpoint");
    if (dupset(&p->container_url, url) ||
        dupset(&p->auth_token_file,
               env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) ||
        dupset(&p->auth_token, env("AWS_CONTAINER_AUTHORIZATION_TOKEN"))) {
        prov_free(p);
        return DSQ_ENOMEM;
    }
    *out = p;
    return DSQ_OK;
}

static dsq_rc new_imds(struct prov **out)
{
    const char *ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    char url[512];
    snprintf(url, sizeof(url), "%s", ep ? ep : "http://169.254.169.254");
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        url[--n] = 0;
    struct prov *p = prov_new(P_IMDS);
    if (!p)
        return DSQ_ENOMEM;
    snprintf(p->what, sizeof(p->what), "instance metadata");
    if (dupset(&p->imds_url, url)) {
        prov_free(p);
        return DSQ_ENOMEM;
    }
    *out = p;
    return DSQ_OK;
}

/* Resolving profiles: the files, and the profiles being resolved. */
struct resolve {
    const struct dsq_awsconf *a;
    const char *stack[PROFILE_DEPTH_MAX];
    int depth;
};

static dsq_rc from_profile(struct resolve *x, const char *name, int top,
                           int explicit_profile, struct prov **out,
                           struct dsq_err *e);

static dsq_rc new_static(const char *name, const char *ak, const char *sk,
                         const char *tok, struct prov **out)
{
    struct prov *p = prov_new(P_STATIC);
    if (!p)
        return DSQ_ENOMEM;
    snprintf(p->what, sizeof(p->what), "profile '%.100s'", name);
    dsq_rc rc = creds_set(&p->fixed, ak, sk, tok, 0);
    if (rc != DSQ_OK) {
        prov_free(p);
        return rc;
    }
    *out = p;
    return DSQ_OK;
}

/* role_arn with source_profile or credential_source: an AssumeRole. */
static dsq_rc new_assume(struct resolve *x, const char *name, int has_static,
                         struct prov **out, struct dsq_err *e)
{
    const struct dsq_awsconf *a = x->a;
    const char *role = dsq_awsconf_get(a, name, "role_arn");
    const char *srcp = dsq_awsconf_get(a, name, "source_profile");
    const char *csrc = dsq_awsconf_get(a, name, "credential_source");
    const char *dur = dsq_awsconf_get(a, name, "duration_seconds");
    struct prov *src = NULL;
    dsq_rc rc;

    if (dsq_awsconf_get(a, name, "mfa_serial"))
        return dsq_err_set(e, DSQ_EAUTH,
                           "profile '%s' needs an MFA code (mfa_serial), "
                           "which a mount cannot ask for",
                           name);
    if (srcp && csrc)
        return dsq_err_set(e, DSQ_EAUTH,
                           "profile '%s' has both source_profile and "
                           "credential_source (use one)",
                           name);
    if (!srcp && !csrc)
        return dsq_err_set(e, DSQ_EAUTH,
                           "profile '%s' has role_arn but no source_profile, "
                           "credential_source or web_identity_token_file",
                           name);
    unsigned duration = 0;
    if (dur) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(dur, &end, 10);
        if (end == dur || *end || errno || v < 900 || v > 43200)
            return dsq_err_set(e, DSQ_EAUTH,
                               "profile '%s': duration_seconds '%.20s' is "
                               "not a number of seconds from 900 to 43200",
                               name, dur);
        duration = (unsigned)v;
    }
    if (srcp && !strcmp(srcp, name)) {
        if (!has_static)
            return dsq_err_set(e, DSQ_EAUTH,
                               "profile '%s' is its own source_profile but "
                               "has no aws_access_key_id and "
                               "aws_secret_access_key",
                               name);
        rc = new_static(name, dsq_awsconf_get(a, name, "aws_access_key_id"),
                        dsq_awsconf_get(a, name, "aws_secret_access_key"),
                        dsq_awsconf_get(a, name, "aws_session_token"), &src);
    } else if (srcp) {
        if (x->depth >= PROFILE_DEPTH_MAX)
            return dsq_err_set(e, DSQ_EAUTH,
                               "profile '%s': more than %d source profiles in "
                               "a row",
                               name, PROFILE_DEPTH_MAX);
        for (int i = 0; i < x->depth; i++)
            if (!strcmp(x->stack[i], srcp))
                return dsq_err_set(e, DSQ_EAUTH,
                                   "profile '%s': source_profile '%s' leads "
                                   "back to itself",
                                   name, srcp);
        x->stack[x->depth++] = name;
        rc = from_profile(x, srcp, 0, 1, &src, e);
        x->depth--;
        if (rc != DSQ_OK) {
            dsq_err_prefix(e, "source_profile of profile '%s'", name);
            return as_auth(rc, e);
        }
    } else if (!strcasecmp(csrc, "Ec2InstanceMetadata")) {
        if (env_true("AWS_EC2_METADATA_DISABLED"))
            return dsq_err_set(e, DSQ_EAUTH,
                               "profile '%s': credential_source is "
                               "Ec2InstanceMetadata but "
                               "AWS_EC2_METADATA_DISABLED is true",
                               name);
        rc = new_imds(&src);
    } else if (!strcasecmp(csrc, "EcsContainer")) {
        rc = new_container(&src, e);
        if (rc == DSQ_ENOTFOUND)
            return dsq_err_set(e, DSQ_EAUTH,
                               "profile '%s': credential_source is "
                               "EcsContainer but neither "
                               "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
                               "_FULL_URI is set",
                               name);
    } else if (!strcasecmp(csrc, "Environment")) {
        return dsq_err_set(e, DSQ_EAUTH,
                           "profile '%s': credential_source is Environment "
                           "but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are "
                           "not set",
                           name);
    } else {
        return dsq_err_set(e, DSQ_EAUTH,
                           "profile '%s': credential_source '%.40s' is not "
                           "one of Ec2InstanceMetadata, EcsContainer, "
                           "Environment",
                           name, csrc);
    }
    if (rc != DSQ_OK)
        return rc;

    struct prov *p = prov_new(P_ASSUME);
    if (!p) {
        prov_free(src);
        return DSQ_ENOMEM;
    }
    p->source = src;
    p->duration_s = duration;
    snprintf(p->what, sizeof(p->what), "role %.100s of profile '%.100s'", role,
             name);
    if (dupset(&p->profile, name) || dupset(&p->role_arn, role) ||
        dupset(&p->external_id, dsq_awsconf_get(a, name, "external_id")) ||
        session_name(p, dsq_awsconf_get(a, name, "role_session_name"))) {
        prov_free(p);
        return DSQ_ENOMEM;
    }
    *out = p;
    return DSQ_OK;
}

/*
 * The provider profile name describes.  top: the profile the mount names
 * (there role_arn beats keys; for a source profile keys beat role_arn, as
 * in the SDKs).  ENOTFOUND only for a top profile not named explicitly
 * that gives no credentials (the chain goes on).
 */
static dsq_rc from_profile(struct resolve *x, const char *name, int top,
                           int explicit_profile, struct prov **out,
                           struct dsq_err *e)
{
    const struct dsq_awsconf *a = x->a;
    if (!dsq_awsconf_has_profile(a, name)) {
        if (top && !explicit_profile)
            return DSQ_ENOTFOUND;
        return dsq_err_set(e, DSQ_EAUTH, "profile '%s' not found in %s or %s",
                           name, dsq_awsconf_credentials_path(a),
                           dsq_awsconf_config_path(a));
    }
    const char *ak = dsq_awsconf_get(a, name, "aws_access_key_id");
    const char *sk = dsq_awsconf_get(a, name, "aws_secret_access_key");
    const char *role = dsq_awsconf_get(a, name, "role_arn");
    const char *wit = dsq_awsconf_get(a, name, "web_identity_token_file");
    const char *cproc = dsq_awsconf_get(a, name, "credential_process");
    int has_static = ak && sk;

    if ((ak && !sk) || (sk && !ak))
        return dsq_err_set(e, DSQ_EAUTH, "profile '%s' has %s without %s", name,
                           ak ? "aws_access_key_id" : "aws_secret_access_key",
                           ak ? "aws_secret_access_key" : "aws_access_key_id");
    if (role && !(has_static && !top)) {
        if (wit)
            return new_webid(
                role, wit, dsq_awsconf_get(a, name, "role_session_name"), out);
        return new_assume(x, name, has_static, out, e);
    }
    if (has_static)
        return new_static(name, ak, sk,
                          dsq_awsconf_get(a, name, "aws_session_token"), out);
    if (cproc) {
        struct prov *p = prov_new(P_PROCESS);
        if (!p)
            return DSQ_ENOMEM;
        snprintf(p->what, sizeof(p->what),
                 "credential_process of profile '%.100s'", name);
        dsq_rc rc = dupset(&p->profile, name);
        if (rc == DSQ_OK)
            rc = dsq_proc_split(cproc, &p->argv, e);
        if (rc != DSQ_OK) {
            if (rc != DSQ_ENOMEM)
                dsq_err_prefix(e, "%s", p->what);
            prov_free(p);
            return as_auth(rc, e);
        }
        *out = p;
        return DSQ_OK;
    }
    if (dsq_awsconf_get(a, name, "sso_session") ||
        dsq_awsconf_get(a, name, "sso_start_url"))
        return dsq_err_set(e, DSQ_EAUTH,
                           "profile '%s' uses IAM Identity Center (SSO), "
                           "which dsqlfs cannot log in to; give it "
                           "credential_process = aws configure "
                           "export-credentials --profile %s --format process",
                           name, name);
    if (top && !explicit_profile)
        return DSQ_ENOTFOUND; /* a default profile with only a region */
    return dsq_err_set(e, DSQ_EAUTH,
                       "profile '%s' has no credentials (aws_access_key_id "
                       "and aws_secret_access_key, credential_process, or "
                       "role_arn with source_profile, credential_source or "
                       "web_identity_token_file)",
                       name);
}

/* Decide the provider; ENOTFOUND when none is configured. */
static dsq_rc choose(const struct dsq_config *cfg, const struct dsq_awsconf *a,
                     const char *pname, int explicit_profile, struct prov **out,
                     struct dsq_err *e)
{
    dsq_rc rc;
    struct prov *p = NULL;
    /* 1. options / environment */
    if (cfg->access_key || cfg->secret_key) {
        if (!cfg->access_key || !*cfg->access_key || !cfg->secret_key ||
            !*cfg->secret_key)
            return dsq_err_set(
                e, DSQ_EAUTH,
                "%s is set without %s (options or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
                cfg->access_key ? "the access key" : "the secret key",
                cfg->access_key ? "a secret key" : "an access key");
        p = prov_new(P_STATIC);
        if (!p)
            return DSQ_ENOMEM;
        snprintf(p->what, sizeof(p->what), "options/environment");
        rc = creds_set(&p->fixed, cfg->access_key, cfg->secret_key,
                       cfg->session_token, 0);
        if (rc != DSQ_OK) {
            prov_free(p);
            return rc;
        }
        *out = p;
        return DSQ_OK;
    }

    /* 2. shared files */
    struct resolve x = {a, {NULL}, 0};
    rc = from_profile(&x, pname, 1, explicit_profile, out, e);
    if (rc != DSQ_ENOTFOUND)
        return rc;

    /* 3. web identity */
    if (env("AWS_WEB_IDENTITY_TOKEN_FILE") && env("AWS_ROLE_ARN"))
        return new_webid(env("AWS_ROLE_ARN"),
                         env("AWS_WEB_IDENTITY_TOKEN_FILE"),
                         env("AWS_ROLE_SESSION_NAME"), out);

    /* 4. container */
    rc = new_container(out, e);
    if (rc != DSQ_ENOTFOUND)
        return rc;

    /* 5. IMDSv2 (5.: its failure, unless configured, means "none") */
    if (!env_true("AWS_EC2_METADATA_DISABLED"))
        return new_imds(out);
    return DSQ_ENOTFOUND;
}

/* STS: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the profile, regional. */
static dsq_rc choose_sts(struct dsq_creds_chain *c, const struct dsq_awsconf *a,
                         const char *pname)
{
    const char *v = NULL;
    char url[512];
    if (!c->ignore_endpoints) {
        v = env("AWS_ENDPOINT_URL_STS");
        if (!v)
            v = env("AWS_ENDPOINT_URL");
        if (!v)
            v = dsq_awsconf_endpoint(a, pname, "sts", NULL);
    }
    if (!v) {
        snprintf(url, sizeof(url), "https://sts.%.100s.amazonaws.com/",
                 c->region);
        v = url;
    }
    return dupset(&c->sts_url, v);
}

void dsq_creds_chain_free(struct dsq_creds_chain *c)
{
    if (!c)
        return;
    dsq_creds_cleanup(&c->cur);
    pthread_mutex_destroy(&c->lock);
    prov_free(c->top);
    free(c->region);
    free(c->sts_url);
    free(c->profile_region);
    free(c->s3_endpoint);
    free(c);
}

dsq_rc dsq_creds_chain_new(const struct dsq_config *cfg, struct dsq_http *http,
                           struct dsq_creds_chain **out, struct dsq_err *e)
{
    struct dsq_awsconf *a = NULL;
    struct dsq_creds_chain *c = calloc(1, sizeof(*c));
    if (!c)
        return DSQ_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    c->http = http;
    const char *pname = cfg->profile && *cfg->profile ? cfg->profile : NULL;
    int explicit_profile = pname != NULL;
    if (!pname)
        pname = "default";
    dsq_rc rc = dsq_awsconf_load(&a, e);
    if (rc != DSQ_OK)
        goto fail;

    /* what the profile says besides credentials */
    const char *preg = dsq_awsconf_get(a, pname, "region");
    c->ignore_endpoints =
        env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") ||
        is_true(dsq_awsconf_get(a, pname, "ignore_configured_endpoint_urls"));
    const char *where = NULL;
    const char *s3ep = c->ignore_endpoints
                           ? NULL
                           : dsq_awsconf_endpoint(a, pname, "s3", &where);
    if (s3ep)
        snprintf(c->s3_where, sizeof(c->s3_where), "profile '%.100s' (%s)",
                 pname, where);
    const char *region = cfg->region && *cfg->region ? cfg->region
                         : preg                      ? preg
                                                     : "us-east-1";
    if (dupset(&c->profile_region, preg) || dupset(&c->s3_endpoint, s3ep) ||
        dupset(&c->region, region) || choose_sts(c, a, pname)) {
        rc = DSQ_ENOMEM;
        goto fail;
    }

    rc = choose(cfg, a, pname, explicit_profile, &c->top, e);
    dsq_awsconf_free(a);
    a = NULL;
    if (rc == DSQ_OK) {
        struct dsq_err e2;
        dsq_err_clear(&e2);
        rc = prov_fetch(c, c->top, &c->cur, &e2);
        if (rc != DSQ_OK && c->top->kind == P_IMDS &&
            !env("AWS_EC2_METADATA_SERVICE_ENDPOINT")) {
            /* not configured explicitly: no instance, no credentials */
            dsq_log(DSQ_LOG_INFO, "creds",
                    "no instance metadata credentials: %s", e2.msg);
            rc = DSQ_ENOTFOUND;
        } else if (rc != DSQ_OK && e) {
            *e = e2;
        }
    }
    if (rc == DSQ_ENOTFOUND)
        rc = dsq_err_set(e, DSQ_EAUTH,
                         "no AWS credentials found: tried options and "
                         "environment (AWS_ACCESS_KEY_ID/"
                         "AWS_SECRET_ACCESS_KEY), profile '%s' in "
                         "~/.aws/credentials and ~/.aws/config, web identity, "
                         "container and instance metadata",
                         pname);
    if (rc != DSQ_OK)
        goto fail;
    c->fetches = 1;
    dsq_log(DSQ_LOG_INFO, "creds", "using credentials from %s", c->top->what);
    *out = c;
    return DSQ_OK;
fail:
    if (rc == DSQ_ENOMEM && e && !e->msg[0])
        dsq_err_set(e, DSQ_ENOMEM, "out of memory resolving credentials");
    dsq_awsconf_free(a);
    dsq_creds_chain_free(c);
    return rc;
}

static int refreshable(const struct dsq_creds_chain *c)
{
    return c->top->kind != P_STATIC;
}

dsq_rc dsq_creds_get(struct dsq_creds_chain *c, struct dsq_creds *out,
                     struct dsq_err *e)
{
    dsq_rc rc = DSQ_OK;
    pthread_mutex_lock(&c->lock);
    uint64_t now = dsq_now_ms();
    int due =
        refreshable(c) &&
        (c->force_refresh || (c->cur.expires_ms &&
                              now + DSQ_CREDS_REFRESH_MS >= c->cur.expires_ms));
    if (due && (now >= c->next_try_ms || c->force_refresh ||
                (c->cur.expires_ms && now >= c->cur.expires_ms))) {
        struct dsq_creds fresh = {0};
        struct dsq_err e2;
        dsq_err_clear(&e2);
        rc = prov_fetch(c, c->top, &fresh, &e2);
        c->fetches++;
        if (rc == DSQ_OK) {
            dsq_creds_cleanup(&c->cur);
            c->cur = fresh;
            c->force_refresh = 0;
            /* new ones already inside the window: not again at once */
            c->next_try_ms = fresh.expires_ms && now + DSQ_CREDS_REFRESH_MS >=
                                                     fresh.expires_ms
                                 ? now + RETRY_AFTER_FAIL_MS
                                 : 0;
            dsq_log(DSQ_LOG_INFO, "creds", "refreshed credentials from %s",
                    c->top->what);
        } else {
            c->next_try_ms = now + RETRY_AFTER_FAIL_MS;
            if (!c->force_refresh && c->cur.expires_ms &&
                now < c->cur.expires_ms) {
                dsq_log(DSQ_LOG_WARNING, "creds",
                        "refreshing credentials from %s failed, the current "
                        "ones stay valid for %llu s: %s",
                        c->top->what,
                        (unsigned long long)((c->cur.expires_ms - now) / 1000),
                        e2.msg);
                rc = DSQ_OK;
            } else {
                if (e)
                    *e = e2;
                dsq_err_prefix(e,
                               "credentials from %s expired and could not "
                               "be refreshed",
                               c->top->what);
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
    return c->top->what;
}

const char *dsq_creds_profile_region(const struct dsq_creds_chain *c)
{
    return c->profile_region;
}

const char *dsq_creds_profile_endpoint(const struct dsq_creds_chain *c,
                                       const char **where)
{
    if (c->s3_endpoint && where)
        *where = c->s3_where;
    return c->s3_endpoint;
}

int dsq_creds_ignore_configured_endpoints(const struct dsq_creds_chain *c)
{
    return c->ignore_endpoints;
}

const char *dsq_creds_sts_endpoint(const struct dsq_creds_chain *c)
{
    return c->sts_url;
}

unsigned dsq_creds_fetches(const struct dsq_creds_chain *c)
{
    struct dsq_creds_chain *m = (struct dsq_creds_chain *)c;
    pthread_mutex_lock(&m->lock);
    unsigned n = m->fetches;
    pthread_mutex_unlock(&m->lock);
    return n;
}

void dsq_creds_process_timeout(unsigned ms)
{
    process_timeout_ms = ms;
}
