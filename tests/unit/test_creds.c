/*
 * test_creds.c - the credential chain: options/environment, profile files
 * (their dialect: sub-sections, services sections), web identity (STS
 * stand-in), container endpoint and IMDSv2 stand-ins
 * (tests/support/minihttp), credential_process (real helper scripts),
 * AssumeRole through an STS stand-in that checks the SigV4 signature with
 * the source profile's keys, refresh of expiring credentials on a frozen
 * clock, the S3 and STS endpoint precedence (stand-in servers: the
 * request shows which endpoint was chosen), and that no secret reaches an
 * error message or a log line.
 */
#include "awsconf.h"
#include "config.h"
#include "creds.h"
#include "env.h"
#include "http.h"
#include "log.h"
#include "minihttp.h"
#include "sigv4.h"
#include "store.h"
#include "store_s3.h"
#include "testutil.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t frozen_ms;
static uint64_t frozen_now(void)
{
    return frozen_ms;
}

static const char *vars[] = {"AWS_ACCESS_KEY_ID",
                             "AWS_SECRET_ACCESS_KEY",
                             "AWS_SESSION_TOKEN",
                             "AWS_PROFILE",
                             "AWS_SHARED_CREDENTIALS_FILE",
                             "AWS_CONFIG_FILE",
                             "AWS_WEB_IDENTITY_TOKEN_FILE",
                             "AWS_ROLE_ARN",
                             "AWS_ROLE_SESSION_NAME",
                             "AWS_ENDPOINT_URL_STS",
                             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                             "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                             "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                             "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                             "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                             "AWS_REGION",
                             "AWS_DEFAULT_REGION",
                             "AWS_ENDPOINT_URL",
                             "AWS_ENDPOINT_URL_S3",
                             "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"};

static char *tmp;
static struct dsq_http *http;
static struct dsq_config cfg;

static void setup(void)
{
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    /* never reach for a real metadata service from a test */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    tmp = dsq_test_tmpdir("creds");
    char p[4096];
    snprintf(p, sizeof(p), "%s/home", tmp);
    setenv("HOME", p, 1); /* no ~/.aws of the machine */
    struct dsq_http_opts o = {0};
    ck_assert_int_eq(dsq_http_new(&o, &http, NULL), DSQ_OK);
    dsq_config_init(&cfg);
}

/* ---- every log line of a test, to look for secrets in ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char logged[1 << 18];
static size_t logged_len;

static void capture_sink(enum dsq_log_level level, const char *module,
                         const char *msg, void *arg)
{
    (void)level;
    (void)arg;
    pthread_mutex_lock(&log_lock);
    int n = snprintf(logged + logged_len, sizeof(logged) - logged_len,
                     "%s: %s\n", module, msg);
    if (n > 0 && (size_t)n < sizeof(logged) - logged_len)
        logged_len += (size_t)n;
    pthread_mutex_unlock(&log_lock);
}

static void capture_logs(void)
{
    logged_len = 0;
    logged[0] = 0;
    dsq_log_set_level(DSQ_LOG_DEBUG);
    dsq_log_set_sink(capture_sink, NULL);
}

static void no_secret_logged(const char *secret)
{
    pthread_mutex_lock(&log_lock);
    int found = strstr(logged, secret) != NULL;
    pthread_mutex_unlock(&log_lock);
    ck_assert_msg(!found, "a log line holds '%s'", secret);
}

static void teardown(void)
{
    dsq_log_set_sink(NULL, NULL);
    dsq_log_set_level(DSQ_LOG_WARNING);
    dsq_config_cleanup(&cfg);
    dsq_http_free(http);
    dsq_test_rmrf(tmp);
    free(tmp);
    dsq_env_reset();
}

static void write_tmp(const char *name, const char *text)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", tmp, name);
    dsq_test_write_file(p, text, strlen(text));
}

static char *tmp_path(const char *name)
{
    static char p[4096];
    snprintf(p, sizeof(p), "%s/%s", tmp, name);
    return p;
}

START_TEST(test_static_env)
{
    struct dsq_creds_chain *c;
    struct dsq_creds cr;
    cfg.access_key = strdup("AKIDSTATIC");
    cfg.secret_key = strdup("s3cr3t-static");
    cfg.session_token = strdup("tok-static");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, NULL), DSQ_OK);
    ck_assert_str_eq(dsq_creds_source(c), "options/environment");
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "AKIDSTATIC");
    ck_assert_str_eq(cr.secret_key, "s3cr3t-static");
    ck_assert_str_eq(cr.session_token, "tok-static");
    ck_assert_uint_eq(cr.expires_ms, 0);
    ck_assert_int_eq(dsq_creds_invalidate(c), 0);
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);
}
END_TEST

START_TEST(test_env_through_config)
{
    /* the environment reaches the chain through dsq_config_load_env */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    ck_assert_int_eq(dsq_config_load_env(&cfg, NULL), DSQ_OK);
    struct dsq_creds_chain *c;
    struct dsq_creds cr;
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "AKIDENV");
    ck_assert_str_eq(cr.session_token, "envtoken");
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);
}
END_TEST

START_TEST(test_half_static)
{
    struct dsq_creds_chain *c;
    struct dsq_err e;
    cfg.secret_key = strdup("only-a-secret");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_EAUTH);
    ck_assert_ptr_nonnull(strstr(e.msg, "without an access key"));
    ck_assert_ptr_null(strstr(e.msg, "only-a-secret"));
}
END_TEST

START_TEST(test_none)
{
    struct dsq_creds_chain *c;
    struct dsq_err e;
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_EAUTH);
    ck_assert_ptr_nonnull(strstr(e.msg, "no AWS credentials found"));
}
END_TEST

static const char cred_file[] =
    "# comment\n"
    "[default]\n"
    "aws_access_key_id = AKIDDEFAULT\n"
    "aws_secret_access_key=defaultsecret\n"
    "\n"
    "[dev]\n"
    "  ; indented lines are sub-properties, ignored\n"
    "aws_access_key_id = AKIDDEV\n"
    "aws_secret_access_key = devsecret\n"
    "aws_session_token = devtoken\n";
static const char config_file[] =
    "[default]\n"
    "region = eu-west-3\n"
    "[profile dev]\n"
    "region = ap-south-1\n"
    "s3 =\n"
    "  addressing_style = path\n"
    "[profile cfgonly]\n"
    "aws_access_key_id = AKIDCFG\n"
    "aws_secret_access_key = cfgsecret\n"
    "[dev]\n" /* not a profile in the config file */
    "region = nowhere\n";

START_TEST(test_profiles)
{
    struct dsq_creds_chain *c;
    struct dsq_creds cr;
    struct dsq_err e;
    write_tmp("credentials", cred_file);
    write_tmp("config", config_file);
    setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("credentials"), 1);
    setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);

    /* default profile */
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, NULL), DSQ_OK);
    ck_assert_str_eq(dsq_creds_source(c), "profile 'default'");
    ck_assert_str_eq(dsq_creds_profile_region(c), "eu-west-3");
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "AKIDDEFAULT");
    ck_assert_str_eq(cr.secret_key, "defaultsecret");
    ck_assert_ptr_null(cr.session_token);
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);

    /* -o profile=dev (same as AWS_PROFILE through config) with a token */
    cfg.profile = strdup("dev");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, NULL), DSQ_OK);
    ck_assert_str_eq(dsq_creds_profile_region(c), "ap-south-1");
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "AKIDDEV");
    ck_assert_str_eq(cr.session_token, "devtoken");
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);

    /* keys only in the config file */
    free(cfg.profile);
    cfg.profile = strdup("cfgonly");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "AKIDCFG");
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);

    /* a named profile that does not exist is an error, not a fall-through */
    free(cfg.profile);
    cfg.profile = strdup("nosuch");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_EAUTH);
    ck_assert_ptr_nonnull(strstr(e.msg, "profile 'nosuch' not found"));

    /* AWS_PROFILE arrives through the config */
    free(cfg.profile);
    cfg.profile = NULL;
    setenv("AWS_PROFILE", "dev", 1);
    ck_assert_int_eq(dsq_config_load_env(&cfg, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "AKIDDEV");
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);
}
END_TEST

START_TEST(test_profile_default_home)
{
    /* ~/.aws/credentials is found through HOME */
    char p[4096];
    snprintf(p, sizeof(p), "%s/home/.aws", tmp);
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", p);
    ck_assert_int_eq(system(cmd), 0);
    write_tmp("home/.aws/credentials", cred_file);
    struct dsq_creds_chain *c;
    struct dsq_creds cr;
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "AKIDDEFAULT");
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);
}
END_TEST

/* ---- container endpoint stand-in ---- */

struct stand_in {
    int fail;   /* answer 500 */
    int forbid; /* answer 403 */
    unsigned served;
    uint64_t ttl_ms;     /* Expiration = now + ttl */
    char want_auth[256]; /* required Authorization value */
    char seen_path[256];
};

static void container_fn(const struct dsq_minihttp_req *rq,
                         struct dsq_minihttp_resp *rs, void *arg)
{
    struct stand_in *si = arg;
    char auth[512] = "";
    dsq_minihttp_header(rq, "Authorization", auth, sizeof(auth));
    snprintf(si->seen_path, sizeof(si->seen_path), "%s", rq->path);
    if (si->fail) {
        rs->status = 500;
        return;
    }
    if (si->forbid || (si->want_auth[0] && strcmp(auth, si->want_auth))) {
        rs->status = 403;
        snprintf(rs->body, sizeof(rs->body), "{\"message\":\"denied\"}");
        return;
    }
    si->served++;
    char exp[32];
    dsq_format_time_ms(dsq_now_ms() + si->ttl_ms, exp);
    snprintf(rs->body, sizeof(rs->body),
             "{\"AccessKeyId\":\"ASIA%u\",\"SecretAccessKey\":\"csecret%u\","
             "\"Token\":\"ctoken%u\",\"Expiration\":\"%s\","
             "\"RoleArn\":\"arn:x\"}",
             si->served, si->served, si->served, exp);
}

START_TEST(test_container_refresh)
{
    struct stand_in si = {0};
    si.ttl_ms = 10 * 60 * 1000;
    snprintf(si.want_auth, sizeof(si.want_auth), "Bearer abc");
    struct dsq_minihttp *srv = dsq_minihttp_start(container_fn, &si);
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/creds",
             dsq_minihttp_port(srv));
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer abc", 1);
    frozen_ms = 1700000000000ull;
    dsq_env.now_ms = frozen_now;

    struct dsq_creds_chain *c;
    struct dsq_creds cr;
    struct dsq_err e;
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, NULL), DSQ_OK);
    ck_assert_str_eq(dsq_creds_source(c), "container endpoint");
    ck_assert_str_eq(si.seen_path, "/v2/creds");
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIA1");
    ck_assert_str_eq(cr.session_token, "ctoken1");
    ck_assert_uint_eq(cr.expires_ms, frozen_ms + si.ttl_ms);
    dsq_creds_cleanup(&cr);
    ck_assert_uint_eq(dsq_creds_fetches(c), 1);

    /* 4 minutes later: still more than 5 left, no refresh */
    frozen_ms += 4 * 60 * 1000;
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIA1");
    dsq_creds_cleanup(&cr);
    ck_assert_uint_eq(si.served, 1);

    /* 6 minutes after start: refreshed before expiry, no remount needed */
    frozen_ms += 2 * 60 * 1000;
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIA2");
    ck_assert_str_eq(cr.secret_key, "csecret2");
    dsq_creds_cleanup(&cr);
    ck_assert_uint_eq(si.served, 2);

    /* the endpoint fails while the creds are still valid: keep them */
    si.fail = 1;
    frozen_ms += 6 * 60 * 1000; /* 4 min left */
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIA2");
    dsq_creds_cleanup(&cr);

    /* expired and the endpoint still fails: a clear error */
    frozen_ms += 5 * 60 * 1000;
    ck_assert_int_eq(dsq_creds_get(c, &cr, &e), DSQ_EAUTH);
    ck_assert_ptr_nonnull(strstr(e.msg, "expired"));
    ck_assert_ptr_null(strstr(e.msg, "Bearer"));

    /* it comes back */
    si.fail = 0;
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIA3");
    dsq_creds_cleanup(&cr);

    /* the server said ExpiredToken: refresh at once */
    ck_assert_int_eq(dsq_creds_invalidate(c), 1);
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIA4");
    dsq_creds_cleanup(&cr);

    dsq_creds_chain_free(c);
    dsq_minihttp_stop(srv);
}
END_TEST

START_TEST(test_container_token_file_and_errors)
{
    struct stand_in si = {0};
    si.ttl_ms = 3600 * 1000;
    snprintf(si.want_auth, sizeof(si.want_auth), "file-token-XYZ");
    struct dsq_minihttp *srv = dsq_minihttp_start(container_fn, &si);
    char url[256];
    snprintf(url, sizeof(url), "http://localhost:%d/creds",
             dsq_minihttp_port(srv));
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    write_tmp("token", "file-token-XYZ\n");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tmp_path("token"), 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored", 1);

    struct dsq_creds_chain *c;
    struct dsq_err e;
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, NULL), DSQ_OK);
    dsq_creds_chain_free(c);

    /* refused: the message names the endpoint, never the token */
    write_tmp("token", "wrong-token-ABC");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_EAUTH);
    ck_assert_ptr_nonnull(strstr(e.msg, "HTTP 403"));
    ck_assert_ptr_null(strstr(e.msg, "wrong-token-ABC"));
    dsq_minihttp_stop(srv);

    /* plain http to a non-loopback host is refused without a request */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.1/creds", 1);
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_EAUTH);
    ck_assert_ptr_nonnull(strstr(e.msg, "FULL_URI"));
}
END_TEST

/* ---- STS stand-in ---- */

static void sts_fn(const struct dsq_minihttp_req *rq,
                   struct dsq_minihttp_resp *rs, void *arg)
{
    unsigned *n = arg;
    if (strcmp(rq->method, "POST") != 0 ||
        !strstr(rq->body, "Action=AssumeRoleWithWebIdentity") ||
        !strstr(rq->body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123%3Arole%2Fr") ||
        !strstr(rq->body, "RoleSessionName=sess") ||
        !strstr(rq->body, "Version=2011-06-15")) {
        rs->status = 400;
        snprintf(rs->body, sizeof(rs->body),
                 "<ErrorResponse><Error><Code>InvalidParameterValue</Code>"
                 "<Message>bad</Message></Error></ErrorResponse>");
        return;
    }
    if (!strstr(rq->body, "WebIdentityToken=jwt.token.value")) {
        rs->status = 400;
        snprintf(rs->body, sizeof(rs->body),
                 "<ErrorResponse><Error><Code>InvalidIdentityToken</Code>"
                 "<Message>token rejected</Message></Error>"
                 "<RequestId>req-1</RequestId></ErrorResponse>");
        return;
    }
    (*n)++;
    char exp[32];
    dsq_format_time_ms(dsq_now_ms() + 3600 * 1000, exp);
    snprintf(
        rs->body, sizeof(rs->body),
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
        "<Credentials><AccessKeyId>ASIAWEB%u</AccessKeyId>"
        "<SecretAccessKey>websecret</SecretAccessKey>"
        "<SessionToken>webtoken</SessionToken>"
        "<Expiration>%s</Expiration></Credentials>"
        "</AssumeRoleWithWebIdentityResult>"
        "</AssumeRoleWithWebIdentityResponse>",
        *n, exp);
}

START_TEST(test_web_identity)
{
    unsigned n = 0;
    struct dsq_minihttp *srv = dsq_minihttp_start(sts_fn, &n);
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", dsq_minihttp_port(srv));
    setenv("AWS_ENDPOINT_URL_STS", url, 1);
    write_tmp("jwt", "jwt.token.value\n");
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tmp_path("jwt"), 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123:role/r", 1);
    setenv("AWS_ROLE_SESSION_NAME", "sess", 1);

    struct dsq_creds_chain *c;
    struct dsq_creds cr;
    struct dsq_err e;
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_OK);
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIAWEB1");
    ck_assert_str_eq(cr.session_token, "webtoken");
    ck_assert_uint_gt(cr.expires_ms, 0);
    dsq_creds_cleanup(&cr);
    ck_assert_int_eq(dsq_creds_invalidate(c), 1);
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIAWEB2");
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);

    /* a rejected token: STS's code, never the token itself */
    write_tmp("jwt", "other.jwt.secretpart");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_EAUTH);
    ck_assert_ptr_nonnull(strstr(e.msg, "InvalidIdentityToken"));
    ck_assert_ptr_null(strstr(e.msg, "secretpart"));

    /* the profile form: role_arn + web_identity_token_file */
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ROLE_ARN");
    write_tmp("jwt", "jwt.token.value");
    char conf[8192];
    snprintf(conf, sizeof(conf),
             "[profile wi]\nrole_arn = arn:aws:iam::123:role/r\n"
             "web_identity_token_file = %s\nrole_session_name = sess\n",
             tmp_path("jwt"));
    write_tmp("config", conf);
    setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
    cfg.profile = strdup("wi");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_OK);
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIAWEB3");
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);
    dsq_minihttp_stop(srv);
}
END_TEST

/* ---- IMDSv2 stand-in ---- */

static void imds_fn(const struct dsq_minihttp_req *rq,
                    struct dsq_minihttp_resp *rs, void *arg)
{
    (void)arg;
    char v[256];
    if (!strcmp(rq->method, "PUT") && !strcmp(rq->path, "/latest/api/token")) {
        if (dsq_minihttp_header(rq, "X-aws-ec2-metadata-token-ttl-seconds", v,
                                sizeof(v)) != 0) {
            rs->status = 400;
            return;
        }
        snprintf(rs->body, sizeof(rs->body), "imds-session-token");
        return;
    }
    if (dsq_minihttp_header(rq, "X-aws-ec2-metadata-token", v, sizeof(v)) ||
        strcmp(v, "imds-session-token")) {
        rs->status = 401; /* IMDSv1 is off */
        return;
    }
    if (!strcmp(rq->path, "/latest/meta-data/iam/security-credentials/")) {
        snprintf(rs->body, sizeof(rs->body), "my-role\n");
        return;
    }
    if (!strcmp(rq->path,
                "/latest/meta-data/iam/security-credentials/my-role")) {
        snprintf(
            rs->body, sizeof(rs->body),
            "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\","
            "\"AccessKeyId\":\"ASIAIMDS\",\"SecretAccessKey\":\"isecret\","
            "\"Token\":\"itoken\",\"Expiration\":\"2099-01-01T00:00:00Z\"}");
        return;
    }
    rs->status = 404;
}

START_TEST(test_imds)
{
    struct dsq_minihttp *srv = dsq_minihttp_start(imds_fn, NULL);
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", dsq_minihttp_port(srv));
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    struct dsq_creds_chain *c;
    struct dsq_creds cr;
    struct dsq_err e;
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_OK);
    ck_assert_str_eq(dsq_creds_source(c), "instance metadata");
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIAIMDS");
    ck_assert_str_eq(cr.session_token, "itoken");
    ck_assert_uint_eq(cr.expires_ms, 4070908800000ull);
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);
    ck_assert_uint_eq(dsq_minihttp_count(srv), 3);

    /* disabled: nothing is asked */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_EAUTH);
    ck_assert_uint_eq(dsq_minihttp_count(srv), 3);
    dsq_minihttp_stop(srv);
}
END_TEST

START_TEST(test_order)
{
    /* options/environment beat profile files, which beat the container */
    write_tmp("credentials", cred_file);
    setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("credentials"), 1);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/", 1);
    struct dsq_creds_chain *c;
    struct dsq_creds cr;
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, NULL), DSQ_OK);
    ck_assert_str_eq(dsq_creds_source(c), "profile 'default'");
    dsq_creds_chain_free(c);
    cfg.access_key = strdup("AKIDOPT");
    cfg.secret_key = strdup("optsecret");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, NULL), DSQ_OK);
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "AKIDOPT");
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);
}
END_TEST

/* The chain's current access key is ak. */
static void get_is(struct dsq_creds_chain *c, const char *ak)
{
    struct dsq_creds cr;
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, ak);
    dsq_creds_cleanup(&cr);
}

/* ---- the shared files' dialect ---- */

START_TEST(test_awsconf_dialect)
{
    struct dsq_awsconf *a = dsq_awsconf_new();
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(
        dsq_awsconf_parse(a,
                          "[dup]\n"
                          "region = from-credentials\n"
                          "[x]\n"
                          "AWS_Access_Key_ID = AKIDX ; an inline comment\n",
                          0, NULL),
        DSQ_OK);
    ck_assert_int_eq(
        dsq_awsconf_parse(a,
                          "# comment\n"
                          "; comment\n"
                          "[profile dup]\n"
                          "region = from-config\n"
                          "output = json\n"
                          "[ profile  spaced ]\n"
                          "region = r1 # comment\n"
                          "region = second-ignored\n"
                          "s3 =\n"
                          "  endpoint_url = http://nested:1\n"
                          "\taddressing_style = path\n"
                          "sts =\n"
                          "  endpoint_url = http://sts-nested:2\n"
                          "endpoint_url = http://global:3\n"
                          "  indented = continuation, not a sub-property\n"
                          "services = shared\n"
                          "[services shared]\n"
                          "s3 =\n"
                          "  endpoint_url = http://svc-s3:4\n"
                          "[profile viasvc]\n"
                          "services = shared\n"
                          "endpoint_url = http://global:5\n"
                          "[profile globalonly]\n"
                          "endpoint_url = http://global:6\n"
                          "[x]\n" /* not a profile in the config file */
                          "region = nowhere\n"
                          "[sso-session corp]\n"
                          "sso_region = us-east-1\n"
                          "[default]\n"
                          "region = dflt\n",
                          1, NULL),
        DSQ_OK);
    /* the credentials file beats the config file */
    ck_assert_str_eq(dsq_awsconf_get(a, "dup", "region"), "from-credentials");
    ck_assert_str_eq(dsq_awsconf_get(a, "dup", "output"), "json");
    /* keys are case-insensitive; inline comments go */
    ck_assert_str_eq(dsq_awsconf_get(a, "x", "aws_access_key_id"), "AKIDX");
    ck_assert_ptr_null(dsq_awsconf_get(a, "x", "region"));
    /* first value wins; sub-sections are parent.key */
    ck_assert_str_eq(dsq_awsconf_get(a, "spaced", "region"), "r1");
    ck_assert_str_eq(dsq_awsconf_get(a, "spaced", "s3.addressing_style"),
                     "path");
    ck_assert_ptr_null(dsq_awsconf_get(a, "spaced", "endpoint_url.indented"));
    ck_assert_str_eq(dsq_awsconf_get(a, "default", "region"), "dflt");
    ck_assert_int_eq(dsq_awsconf_has_profile(a, "corp"), 0);
    ck_assert_int_eq(dsq_awsconf_has_profile(a, "nosuch"), 0);

    /* endpoints: sub-section, services section, endpoint_url */
    const char *w = NULL;
    ck_assert_str_eq(dsq_awsconf_endpoint(a, "spaced", "s3", &w),
                     "http://nested:1");
    ck_assert_str_eq(w, "its sub-section");
    ck_assert_str_eq(dsq_awsconf_endpoint(a, "spaced", "sts", NULL),
                     "http://sts-nested:2");
    ck_assert_str_eq(dsq_awsconf_endpoint(a, "viasvc", "s3", &w),
                     "http://svc-s3:4");
    ck_assert_str_eq(w, "its services section");
    ck_assert_str_eq(dsq_awsconf_endpoint(a, "viasvc", "sts", &w),
                     "http://global:5");
    ck_assert_str_eq(w, "its endpoint_url");
    ck_assert_str_eq(dsq_awsconf_endpoint(a, "globalonly", "s3", NULL),
                     "http://global:6");
    ck_assert_ptr_null(dsq_awsconf_endpoint(a, "dup", "s3", NULL));
    dsq_awsconf_free(a);
}
END_TEST

/* ---- credential_process ---- */

static void write_exec(const char *name, const char *text)
{
    write_tmp(name, text);
    ck_assert_int_eq(chmod(tmp_path(name), 0755), 0);
}

/* Counts its runs in DIR/count; fails while DIR/fail exists. */
static const char proc_sh[] =
    "#!/bin/sh\n"
    "# usage: proc.sh DIR [EXPIRATION]\n"
    "if [ -e \"$1/fail\" ]; then echo 'helper: the vault is sealed' >&2; "
    "exit 1; fi\n"
    "n=$(cat \"$1/count\" 2>/dev/null || echo 0); n=$((n + 1))\n"
    "echo \"$n\" > \"$1/count\"\n"
    "exp=; [ -n \"$2\" ] && exp=\", \\\"Expiration\\\": \\\"$2\\\"\"\n"
    "printf '{\"Version\": 1, \"AccessKeyId\": \"ASIAPROC%s\", "
    "\"SecretAccessKey\": \"procsecret%s\", \"SessionToken\": "
    "\"proctoken%s\"%s}\\n' \"$n\" \"$n\" \"$n\" \"$exp\"\n";

/* 1700000000000 ms is 2023-11-14T22:13:20Z */
#define FROZEN 1700000000000ull

START_TEST(test_credential_process)
{
    capture_logs();
    frozen_ms = FROZEN;
    dsq_env.now_ms = frozen_now;
    ck_assert_int_eq(system(NULL) != 0, 1);
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s/with space'", tmp);
    ck_assert_int_eq(system(cmd), 0);
    write_exec("with space/proc.sh", proc_sh);
    char conf[8192];
    /* a path with a space, quoted as the SDKs want it */
    snprintf(conf, sizeof(conf),
             "[profile p]\n"
             "credential_process = \"%s/with space/proc.sh\" \"%s/with "
             "space\" 2023-11-14T22:23:20Z\n"
             "region = eu-north-1\n"
             "[profile forever]\n"
             "credential_process = \"%s/with space/proc.sh\" \"%s/with "
             "space\"\n",
             tmp, tmp, tmp, tmp);
    write_tmp("config", conf);
    setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
    cfg.profile = strdup("p");

    struct dsq_creds_chain *c;
    struct dsq_creds cr;
    struct dsq_err e;
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_OK);
    ck_assert_str_eq(dsq_creds_source(c), "credential_process of profile 'p'");
    ck_assert_str_eq(dsq_creds_profile_region(c), "eu-north-1");
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIAPROC1");
    ck_assert_str_eq(cr.secret_key, "procsecret1");
    ck_assert_str_eq(cr.session_token, "proctoken1");
    ck_assert_uint_eq(cr.expires_ms, FROZEN + 10 * 60 * 1000);
    dsq_creds_cleanup(&cr);

    /* 4 minutes on: more than 5 left, not run again */
    frozen_ms += 4 * 60 * 1000;
    get_is(c, "ASIAPROC1");
    /* 6 minutes on: run again before Expiration */
    frozen_ms += 2 * 60 * 1000;
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIAPROC2");
    ck_assert_str_eq(cr.session_token, "proctoken2");
    dsq_creds_cleanup(&cr);
    /* it prints the same fixed Expiration, now 4 minutes away: no run at
       every request, the next one only after 30 s */
    get_is(c, "ASIAPROC2");
    frozen_ms += 31 * 1000;
    get_is(c, "ASIAPROC3");

    /* the helper fails while the credentials are still valid: keep them */
    snprintf(cmd, sizeof(cmd), "%s/with space/fail", tmp);
    dsq_test_write_file(cmd, "", 0);
    frozen_ms += 31 * 1000;
    get_is(c, "ASIAPROC3");
    /* expired and still failing: the profile, the cause */
    frozen_ms = FROZEN + 11 * 60 * 1000;
    ck_assert_int_eq(dsq_creds_get(c, &cr, &e), DSQ_EAUTH);
    ck_assert_ptr_nonnull(strstr(e.msg, "expired"));
    ck_assert_ptr_nonnull(strstr(e.msg, "credential_process of profile 'p'"));
    ck_assert_ptr_nonnull(strstr(e.msg, "exited with status 1"));
    ck_assert_ptr_nonnull(strstr(e.msg, "the vault is sealed"));
    unlink(cmd);
    dsq_creds_chain_free(c);

    /* no Expiration: never run again by time, but again when the server
       says the token expired */
    frozen_ms = FROZEN;
    free(cfg.profile);
    cfg.profile = strdup("forever");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_OK);
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIAPROC4");
    ck_assert_uint_eq(cr.expires_ms, 0);
    dsq_creds_cleanup(&cr);
    frozen_ms += 365ull * 86400 * 1000;
    get_is(c, "ASIAPROC4");
    ck_assert_int_eq(dsq_creds_invalidate(c), 1);
    get_is(c, "ASIAPROC5");
    dsq_creds_chain_free(c);

    /* keys in the profile beat its credential_process */
    snprintf(conf, sizeof(conf),
             "[profile both]\n"
             "aws_access_key_id = AKIDBOTH\n"
             "aws_secret_access_key = bothsecret\n"
             "credential_process = /nonexistent/never-run\n");
    write_tmp("config", conf);
    free(cfg.profile);
    cfg.profile = strdup("both");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_OK);
    ck_assert_str_eq(dsq_creds_source(c), "profile 'both'");
    dsq_creds_chain_free(c);

    for (int i = 1; i <= 5; i++) {
        char sec[32];
        snprintf(sec, sizeof(sec), "procsecret%d", i);
        no_secret_logged(sec);
        snprintf(sec, sizeof(sec), "proctoken%d", i);
        no_secret_logged(sec);
        snprintf(sec, sizeof(sec), "ASIAPROC%d", i);
        no_secret_logged(sec);
    }
    ck_assert_ptr_nonnull(strstr(logged, "credential_process of profile"));
}
END_TEST

/* Misbehaving helpers: each is a clear error, never a secret. */
static const char bad_sh[] =
    "#!/bin/sh\n"
    "case \"$1\" in\n"
    "exit3) echo 'cannot reach the token service' >&2\n"
    "  echo '{\"Version\": 1, \"AccessKeyId\": \"AKIDLEAK\", "
    "\"SecretAccessKey\": \"leaksecret\"}'; exit 3;;\n"
    "trunc) printf '{\"Version\": 1, \"AccessKeyId\": \"AKIDLEAK\", "
    "\"SecretAccessKey\": \"leaksecret';;\n"
    "v2) echo '{\"Version\": 2, \"AccessKeyId\": \"AKIDLEAK\", "
    "\"SecretAccessKey\": \"leaksecret\"}';;\n"
    "nov) echo '{\"AccessKeyId\": \"AKIDLEAK\", \"SecretAccessKey\": "
    "\"leaksecret\"}';;\n"
    "nosk) echo '{\"Version\": 1, \"AccessKeyId\": \"AKIDLEAK\"}';;\n"
    "numtok) echo '{\"Version\": 1, \"AccessKeyId\": \"AKIDLEAK\", "
    "\"SecretAccessKey\": \"leaksecret\", \"SessionToken\": 7}';;\n"
    "badexp) echo '{\"Version\": 1, \"AccessKeyId\": \"AKIDLEAK\", "
    "\"SecretAccessKey\": \"leaksecret\", \"Expiration\": \"tomorrow\"}';;\n"
    "old) echo '{\"Version\": 1, \"AccessKeyId\": \"AKIDLEAK\", "
    "\"SecretAccessKey\": \"leaksecret\", \"Expiration\": "
    "\"2020-01-01T00:00:00Z\"}';;\n"
    "hang) sleep 30 & wait;;\n"
    "flood) exec yes leaksecret;;\n"
    "signal) kill -9 $$;;\n"
    "esac\n";

static void expect_process_error(const char *args, const char *needle)
{
    char conf[8192];
    struct dsq_creds_chain *c = NULL;
    struct dsq_err e;
    snprintf(conf, sizeof(conf), "[profile bad]\ncredential_process = %s\n",
             args);
    write_tmp("config", conf);
    dsq_err_clear(&e);
    dsq_rc rc = dsq_creds_chain_new(&cfg, http, &c, &e);
    ck_assert_msg(rc == DSQ_EAUTH, "%s: got %s (%s)", args, dsq_rc_name(rc),
                  e.msg);
    ck_assert_msg(strstr(e.msg, "credential_process of profile 'bad'"),
                  "%s: '%s' does not name the profile", args, e.msg);
    ck_assert_msg(strstr(e.msg, needle), "%s: '%s' lacks '%s'", args, e.msg,
                  needle);
    ck_assert_msg(!strstr(e.msg, "leaksecret") && !strstr(e.msg, "AKIDLEAK"),
                  "%s: a secret in '%s'", args, e.msg);
    ck_assert_ptr_null(strchr(e.msg, '\n'));
}

START_TEST(test_credential_process_errors)
{
    capture_logs();
    write_exec("bad.sh", bad_sh);
    setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
    cfg.profile = strdup("bad");
    char a[4200];
#define BAD(mode, needle)                                                      \
    do {                                                                       \
        snprintf(a, sizeof(a), "%s " mode, tmp_path("bad.sh"));                \
        expect_process_error(a, needle);                                       \
    } while (0)
    BAD("exit3", "exited with status 3: cannot reach the token service");
    BAD("trunc", "printed no JSON object");
    BAD("v2", "Version 2 (only 1 is known)");
    BAD("nov", "no \"Version\": 1");
    BAD("nosk", "lacks AccessKeyId or SecretAccessKey");
    BAD("numtok", "must be strings");
    BAD("badexp", "bad Expiration 'tomorrow'");
    BAD("old", "expired at 2020-01-01T00:00:00Z");
    BAD("flood", "printed more than 65536 bytes");
    BAD("signal", "was killed by signal 9");
    dsq_creds_process_timeout(300);
    BAD("hang", "did not finish within 1 s");
#undef BAD
    expect_process_error("/nonexistent/helper --password hunter2",
                         "cannot run /nonexistent/helper");
    expect_process_error("\"/bin/echo unclosed", "unclosed double quote");
    /* arguments other than the program's path are never shown */
    struct dsq_err e;
    struct dsq_creds_chain *c;
    write_tmp("config", "[profile bad]\ncredential_process = /nonexistent/x "
                        "--password hunter2\n");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_EAUTH);
    ck_assert_ptr_null(strstr(e.msg, "hunter2"));
    no_secret_logged("hunter2");
    no_secret_logged("leaksecret");
    no_secret_logged("AKIDLEAK");
}
END_TEST

/* ---- AssumeRole through an STS stand-in that checks SigV4 ---- */

struct sts {
    unsigned issued;      /* ASIAROLE<n> handed out */
    unsigned served;      /* requests answered 200 */
    unsigned duration;    /* expected DurationSeconds (0: none) */
    char external_id[64]; /* expected ExternalId ("" : none) */
    char last_key[64];    /* access key of the last signed request */
    char refused[256];    /* why the last refused request was refused */
};

/* The secret and token STS expects for an access key, or 0. */
static int sts_key(const char *ak, char *sk, size_t skn, char *tok, size_t tokn)
{
    unsigned n;
    *tok = 0;
    if (!strcmp(ak, "AKIDBASE")) {
        snprintf(sk, skn, "basesecret");
        return 1;
    }
    if (sscanf(ak, "ASIAROLE%u", &n) == 1) {
        snprintf(sk, skn, "rolesecret%u", n);
        snprintf(tok, tokn, "roletoken%u", n);
        return 1;
    }
    if (sscanf(ak, "ASIAPROC%u", &n) == 1) {
        snprintf(sk, skn, "procsecret%u", n);
        snprintf(tok, tokn, "proctoken%u", n);
        return 1;
    }
    if (!strcmp(ak, "ASIAIMDS")) {
        snprintf(sk, skn, "isecret");
        snprintf(tok, tokn, "itoken");
        return 1;
    }
    return 0;
}

/* Value of name in an x-www-form-urlencoded body (still encoded). */
static int form_get(const char *body, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = body; p && *p;
         p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (!strncmp(p, name, nl) && p[nl] == '=') {
            size_t vl = strcspn(p + nl + 1, "&");
            snprintf(out, cap, "%.*s", (int)vl, p + nl + 1);
            return 1;
        }
    }
    return 0;
}

static void sts_refuse(struct dsq_minihttp_resp *rs, struct sts *st, int code,
                       const char *err, const char *why)
{
    rs->status = code;
    snprintf(st->refused, sizeof(st->refused), "%s", why);
    snprintf(rs->body, sizeof(rs->body),
             "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/"
             "2011-06-15/\"><Error><Type>Sender</Type><Code>%s</Code>"
             "<Message>%s</Message></Error><RequestId>sts-req-1</RequestId>"
             "</ErrorResponse>",
             err, why);
}

static void assume_fn(const struct dsq_minihttp_req *rq,
                      struct dsq_minihttp_resp *rs, void *arg)
{
    struct sts *st = arg;
    char auth[2048] = "", date[32] = "", v[512];
    if (strcmp(rq->method, "POST") != 0 ||
        dsq_minihttp_header(rq, "Authorization", auth, sizeof(auth)) ||
        dsq_minihttp_header(rq, "X-Amz-Date", date, sizeof(date))) {
        sts_refuse(rs, st, 400, "MissingAuthenticationToken", "unsigned");
        return;
    }
    /* AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/sts/aws4_request,
       SignedHeaders=a;b, Signature=hex */
    char ak[128], day[16], region[64], service[32], signed_h[512], sig[80];
    if (sscanf(auth,
               "AWS4-HMAC-SHA256 Credential=%127[^/]/%15[^/]/%63[^/]/%31[^/]/"
               "aws4_request, SignedHeaders=%511[^,], Signature=%79s",
               ak, day, region, service, signed_h, sig) != 6 ||
        strcmp(service, "sts") != 0 || strncmp(date, day, 8) != 0) {
        sts_refuse(rs, st, 400, "IncompleteSignature", "bad Authorization");
        return;
    }
    snprintf(st->last_key, sizeof(st->last_key), "%s", ak);
    char sk[64], tok[64], have_tok[256] = "";
    if (!sts_key(ak, sk, sizeof(sk), tok, sizeof(tok))) {
        sts_refuse(rs, st, 403, "InvalidClientTokenId", "unknown key");
        return;
    }
    dsq_minihttp_header(rq, "X-Amz-Security-Token", have_tok, sizeof(have_tok));
    if (strcmp(tok, have_tok) != 0 ||
        (*tok && !strstr(signed_h, "x-amz-security-token"))) {
        sts_refuse(rs, st, 403, "InvalidClientTokenId", "wrong token");
        return;
    }
    /* recompute the signature over what arrived, with the key's secret */
    struct dsq_sigv4_pair h[8];
    char vals[8][512];
    size_t nh = 0;
    char list[512];
    snprintf(list, sizeof(list), "%s", signed_h);
    char *save = NULL;
    for (char *n = strtok_r(list, ";", &save); n && nh < 8;
         n = strtok_r(NULL, ";", &save)) {
        if (dsq_minihttp_header(rq, n, vals[nh], sizeof(vals[nh]))) {
            sts_refuse(rs, st, 403, "SignatureDoesNotMatch", "header gone");
            return;
        }
        h[nh] = (struct dsq_sigv4_pair){n, vals[nh]};
        nh++;
    }
    if (!strstr(signed_h, "host") || !strstr(signed_h, "content-type")) {
        sts_refuse(rs, st, 403, "SignatureDoesNotMatch", "host unsigned");
        return;
    }
    char hash[65], mine[65];
    dsq_sha256_hex(rq->body, rq->body_len, hash);
    struct dsq_sigv4_req sr = {rq->method, rq->path, NULL, 0, h, nh, hash};
    struct dsq_sigv4_scope sc = {date, region, "sts"};
    struct dsq_buf az;
    dsq_buf_init(&az, 4096);
    ck_assert_int_eq(dsq_sigv4_sign(&sr, &sc, ak, sk, mine, &az), DSQ_OK);
    dsq_buf_cleanup(&az);
    if (strcmp(mine, sig) != 0) {
        sts_refuse(rs, st, 403, "SignatureDoesNotMatch",
                   "The request signature we calculated does not match");
        return;
    }
    /* the parameters */
    unsigned dur = 3600;
    if (!form_get(rq->body, "Action", v, sizeof(v)) ||
        strcmp(v, "AssumeRole") ||
        !form_get(rq->body, "Version", v, sizeof(v)) ||
        strcmp(v, "2011-06-15") ||
        !form_get(rq->body, "RoleArn", v, sizeof(v)) ||
        strncmp(v, "arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2F", 42) ||
        !form_get(rq->body, "RoleSessionName", v, sizeof(v)) || !*v) {
        sts_refuse(rs, st, 400, "ValidationError", "bad parameters");
        return;
    }
    if (st->external_id[0] &&
        (!form_get(rq->body, "ExternalId", v, sizeof(v)) ||
         strcmp(v, st->external_id))) {
        sts_refuse(rs, st, 403, "AccessDenied", "external id");
        return;
    }
    if (form_get(rq->body, "DurationSeconds", v, sizeof(v)))
        dur = (unsigned)strtoul(v, NULL, 10);
    if (st->duration && dur != st->duration) {
        sts_refuse(rs, st, 400, "ValidationError", "duration");
        return;
    }
    st->served++;
    unsigned n = ++st->issued;
    char exp[32];
    dsq_format_time_ms(dsq_now_ms() + (uint64_t)dur * 1000, exp);
    snprintf(rs->body, sizeof(rs->body),
             "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/"
             "2011-06-15/\"><AssumeRoleResult><AssumedRoleUser>"
             "<AssumedRoleId>AROA3XFRBF535PLBIFPI4:s</AssumedRoleId>"
             "<Arn>arn:aws:sts::123456789012:assumed-role/db/s</Arn>"
             "</AssumedRoleUser><Credentials>"
             "<AccessKeyId>ASIAROLE%u</AccessKeyId>"
             "<SecretAccessKey>rolesecret%u</SecretAccessKey>"
             "<SessionToken>roletoken%u</SessionToken>"
             "<Expiration>%s</Expiration></Credentials>"
             "<PackedPolicySize>6</PackedPolicySize></AssumeRoleResult>"
             "<ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-"
             "cbc7ccf896c7</RequestId></ResponseMetadata>"
             "</AssumeRoleResponse>",
             n, n, n, exp);
}

static struct dsq_minihttp *start_sts(struct sts *st)
{
    struct dsq_minihttp *srv = dsq_minihttp_start(assume_fn, st);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", dsq_minihttp_port(srv));
    setenv("AWS_ENDPOINT_URL_STS", url, 1);
    return srv;
}

START_TEST(test_assume_role)
{
    capture_logs();
    struct sts st = {0};
    st.duration = 1800;
    snprintf(st.external_id, sizeof(st.external_id), "ext-42");
    struct dsq_minihttp *srv = start_sts(&st);
    frozen_ms = FROZEN;
    dsq_env.now_ms = frozen_now;
    write_tmp("credentials", "[base]\n"
                             "aws_access_key_id = AKIDBASE\n"
                             "aws_secret_access_key = basesecret\n");
    write_tmp("config", "[profile db]\n"
                        "role_arn = arn:aws:iam::123456789012:role/db\n"
                        "source_profile = base\n"
                        "role_session_name = mount-1\n"
                        "external_id = ext-42\n"
                        "duration_seconds = 1800\n"
                        "[profile base]\n"
                        "region = eu-west-1\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("credentials"), 1);
    setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
    cfg.profile = strdup("db");

    struct dsq_creds_chain *c;
    struct dsq_creds cr;
    struct dsq_err e;
    ck_assert_msg(dsq_creds_chain_new(&cfg, http, &c, &e) == DSQ_OK, "%s (%s)",
                  e.msg, st.refused);
    ck_assert_str_eq(dsq_creds_source(c),
                     "role arn:aws:iam::123456789012:role/db of profile 'db'");
    ck_assert_str_eq(st.last_key, "AKIDBASE");
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIAROLE1");
    ck_assert_str_eq(cr.secret_key, "rolesecret1");
    ck_assert_str_eq(cr.session_token, "roletoken1");
    ck_assert_uint_eq(cr.expires_ms, FROZEN + 1800 * 1000);
    dsq_creds_cleanup(&cr);

    /* refreshed before expiry: 24 min on, no; 26 min on, yes */
    frozen_ms += 24 * 60 * 1000;
    get_is(c, "ASIAROLE1");
    frozen_ms += 2 * 60 * 1000;
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIAROLE2");
    ck_assert_uint_eq(cr.expires_ms, frozen_ms + 1800 * 1000);
    dsq_creds_cleanup(&cr);
    /* ExpiredToken from the server: again at once */
    ck_assert_int_eq(dsq_creds_invalidate(c), 1);
    get_is(c, "ASIAROLE3");
    ck_assert_uint_eq(st.served, 3);
    dsq_creds_chain_free(c);

    /* a wrong source secret: STS's refusal, the profile, no secret */
    write_tmp("credentials", "[base]\n"
                             "aws_access_key_id = AKIDBASE\n"
                             "aws_secret_access_key = wrongsecret\n");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_EAUTH);
    ck_assert_ptr_nonnull(strstr(e.msg, "of profile 'db'"));
    ck_assert_ptr_nonnull(strstr(e.msg, "HTTP 403, SignatureDoesNotMatch"));
    ck_assert_ptr_null(strstr(e.msg, "wrongsecret"));
    ck_assert_ptr_null(strstr(e.msg, "AKIDBASE"));
    dsq_minihttp_stop(srv);

    no_secret_logged("basesecret");
    no_secret_logged("wrongsecret");
    no_secret_logged("rolesecret");
    no_secret_logged("roletoken");
    no_secret_logged("ASIAROLE");
    no_secret_logged("AKIDBASE");
}
END_TEST

START_TEST(test_assume_role_chains)
{
    capture_logs();
    struct sts st = {0};
    struct dsq_minihttp *srv = start_sts(&st);
    frozen_ms = FROZEN;
    dsq_env.now_ms = frozen_now;
    write_exec("proc.sh", proc_sh);
    char conf[8192];
    snprintf(conf, sizeof(conf),
             "[profile base]\n"
             "aws_access_key_id = AKIDBASE\n"
             "aws_secret_access_key = basesecret\n"
             /* a source's keys beat its role_arn */
             "role_arn = arn:aws:iam::123456789012:role/never\n"
             "source_profile = nosuch\n"
             "[profile first]\n"
             "role_arn = arn:aws:iam::123456789012:role/first\n"
             "source_profile = base\n"
             "[profile second]\n"
             "role_arn = arn:aws:iam::123456789012:role/second\n"
             "source_profile = first\n"
             "[profile helper]\n"
             "credential_process = %s %s\n"
             "[profile viaproc]\n"
             "role_arn = arn:aws:iam::123456789012:role/p\n"
             "source_profile = helper\n"
             "[profile self]\n"
             "aws_access_key_id = AKIDBASE\n"
             "aws_secret_access_key = basesecret\n"
             "role_arn = arn:aws:iam::123456789012:role/self\n"
             "source_profile = self\n"
             "[profile viaimds]\n"
             "role_arn = arn:aws:iam::123456789012:role/i\n"
             "credential_source = Ec2InstanceMetadata\n",
             tmp_path("proc.sh"), tmp);
    write_tmp("config", conf);
    setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
    struct dsq_creds_chain *c;
    struct dsq_creds cr;
    struct dsq_err e;

    /* role chaining: second's call is signed with first's session */
    cfg.profile = strdup("second");
    ck_assert_msg(dsq_creds_chain_new(&cfg, http, &c, &e) == DSQ_OK, "%s (%s)",
                  e.msg, st.refused);
    ck_assert_uint_eq(st.served, 2);
    ck_assert_str_eq(st.last_key, "ASIAROLE1");
    get_is(c, "ASIAROLE2");
    /* a refresh takes both hops again, with fresh source credentials */
    ck_assert_int_eq(dsq_creds_invalidate(c), 1);
    ck_assert_int_eq(dsq_creds_get(c, &cr, NULL), DSQ_OK);
    ck_assert_str_eq(cr.access_key, "ASIAROLE4");
    ck_assert_str_eq(st.last_key, "ASIAROLE3");
    dsq_creds_cleanup(&cr);
    dsq_creds_chain_free(c);

    /* the source is a credential_process */
    free(cfg.profile);
    cfg.profile = strdup("viaproc");
    ck_assert_msg(dsq_creds_chain_new(&cfg, http, &c, &e) == DSQ_OK, "%s (%s)",
                  e.msg, st.refused);
    ck_assert_str_eq(st.last_key, "ASIAPROC1");
    dsq_creds_chain_free(c);

    /* a profile that is its own source: its keys sign the AssumeRole */
    free(cfg.profile);
    cfg.profile = strdup("self");
    ck_assert_msg(dsq_creds_chain_new(&cfg, http, &c, &e) == DSQ_OK, "%s (%s)",
                  e.msg, st.refused);
    ck_assert_str_eq(st.last_key, "AKIDBASE");
    ck_assert_str_eq(dsq_creds_source(c),
                     "role arn:aws:iam::123456789012:role/self of profile "
                     "'self'");
    dsq_creds_chain_free(c);

    /* credential_source = Ec2InstanceMetadata: IMDS signs the AssumeRole */
    struct dsq_minihttp *imds = dsq_minihttp_start(imds_fn, NULL);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", dsq_minihttp_port(imds));
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    free(cfg.profile);
    cfg.profile = strdup("viaimds");
    ck_assert_int_eq(dsq_creds_chain_new(&cfg, http, &c, &e), DSQ_EAUTH);
    ck_assert_ptr_nonnull(strstr(e.msg, "AWS_EC2_METADATA_DISABLED"));
    unsetenv("AWS_EC2_METADATA_DISABLED");
    ck_assert_msg(dsq_creds_chain_new(&cfg, http, &c, &e) == DSQ_OK, "%s (%s)",
                  e.msg, st.refused);
    ck_assert_str_eq(st.last_key, "ASIAIMDS");
    dsq_creds_chain_free(c);
    dsq_minihttp_stop(imds);
    dsq_minihttp_stop(srv);
    no_secret_logged("basesecret");
    no_secret_logged("rolesecret");
    no_secret_logged("procsecret");
    no_secret_logged("isecret");
}
END_TEST

static void expect_profile_error(const char *conf, const char *profile,
                                 const char *needle)
{
    struct dsq_creds_chain *c = NULL;
    struct dsq_err e;
    write_tmp("config", conf);
    free(cfg.profile);
    cfg.profile = strdup(profile);
    dsq_err_clear(&e);
    dsq_rc rc = dsq_creds_chain_new(&cfg, http, &c, &e);
    ck_assert_msg(rc == DSQ_EAUTH, "%s: got %s (%s)", profile, dsq_rc_name(rc),
                  e.msg);
    ck_assert_msg(strstr(e.msg, needle), "%s: '%s' lacks '%s'", profile, e.msg,
                  needle);
    ck_assert_ptr_null(strstr(e.msg, "basesecret"));
}

START_TEST(test_assume_role_errors)
{
    setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
    setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1/", 1); /* never used */
    const char *base = "[profile base]\n"
                       "aws_access_key_id = AKIDBASE\n"
                       "aws_secret_access_key = basesecret\n";
    char conf[4096];
#define ROLE(extra)                                                            \
    (snprintf(conf, sizeof(conf),                                              \
              "%s[profile r]\nrole_arn = arn:aws:iam::1:role/r\n%s", base,     \
              extra),                                                          \
     conf)
    expect_profile_error(ROLE(""), "r",
                         "profile 'r' has role_arn but no source_profile, "
                         "credential_source or web_identity_token_file");
    expect_profile_error(ROLE("source_profile = nosuch\n"), "r",
                         "source_profile of profile 'r': profile 'nosuch' "
                         "not found");
    expect_profile_error(ROLE("source_profile = base\n"
                              "credential_source = Environment\n"),
                         "r", "both source_profile and credential_source");
    expect_profile_error(ROLE("credential_source = Environment\n"), "r",
                         "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not "
                         "set");
    expect_profile_error(ROLE("credential_source = Somewhere\n"), "r",
                         "credential_source 'Somewhere' is not one of");
    expect_profile_error(ROLE("credential_source = EcsContainer\n"), "r",
                         "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    expect_profile_error(ROLE("source_profile = base\n"
                              "mfa_serial = arn:aws:iam::1:mfa/u\n"),
                         "r", "needs an MFA code");
    expect_profile_error(ROLE("source_profile = base\n"
                              "duration_seconds = 100\n"),
                         "r", "duration_seconds '100' is not a number");
    expect_profile_error(ROLE("source_profile = r\n"), "r",
                         "is its own source_profile but has no "
                         "aws_access_key_id");
    /* a cycle */
    expect_profile_error("[profile a]\nrole_arn = arn:aws:iam::1:role/a\n"
                         "source_profile = b\n"
                         "[profile b]\nrole_arn = arn:aws:iam::1:role/b\n"
                         "source_profile = a\n",
                         "a", "source_profile 'a' leads back to itself");
    /* half a key pair, an SSO profile, a profile with nothing */
    expect_profile_error("[profile h]\naws_access_key_id = AKIDHALF\n", "h",
                         "has aws_access_key_id without "
                         "aws_secret_access_key");
    expect_profile_error("[profile s]\nsso_session = corp\n"
                         "sso_account_id = 1\n",
                         "s",
                         "credential_process = aws configure "
                         "export-credentials --profile s");
    expect_profile_error("[profile n]\nregion = x\n", "n",
                         "profile 'n' has no credentials");
#undef ROLE
}
END_TEST

START_TEST(test_sts_endpoint)
{
    /* AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the profile's sts
       sub-section, its services section, its endpoint_url, regional */
    cfg.access_key = strdup("AKIDSTATIC");
    cfg.secret_key = strdup("staticsecret");
    write_tmp("config", "[profile nested]\n"
                        "sts =\n"
                        "  endpoint_url = http://sts-nested/\n"
                        "services = svc\n"
                        "endpoint_url = http://global/\n"
                        "[services svc]\n"
                        "sts =\n"
                        "  endpoint_url = http://sts-services/\n"
                        "[profile svconly]\n"
                        "services = svc\n"
                        "endpoint_url = http://global/\n"
                        "[profile global]\n"
                        "region = ap-east-1\n"
                        "endpoint_url = http://global/\n"
                        "[profile ignoring]\n"
                        "ignore_configured_endpoint_urls = true\n"
                        "region = ca-central-1\n"
                        "endpoint_url = http://global/\n");
    setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
    struct {
        const char *profile, *sts_env, *all_env, *ignore, *want;
    } cases[] = {
        {"nested", "http://sts-env/", "http://all-env/", NULL,
         "http://sts-env/"},
        {"nested", NULL, "http://all-env/", NULL, "http://all-env/"},
        {"nested", NULL, NULL, NULL, "http://sts-nested/"},
        {"svconly", NULL, NULL, NULL, "http://sts-services/"},
        {"global", NULL, NULL, NULL, "http://global/"},
        {"nested", "http://sts-env/", "http://all-env/", "true",
         "https://sts.us-east-1.amazonaws.com/"},
        {"ignoring", "http://sts-env/", NULL, NULL,
         "https://sts.ca-central-1.amazonaws.com/"},
        {"nosuch", NULL, NULL, NULL, "https://sts.us-east-1.amazonaws.com/"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dsq_creds_chain *c;
        struct dsq_err e;
        free(cfg.profile);
        cfg.profile = strdup(cases[i].profile);
        if (cases[i].sts_env)
            setenv("AWS_ENDPOINT_URL_STS", cases[i].sts_env, 1);
        else
            unsetenv("AWS_ENDPOINT_URL_STS");
        if (cases[i].all_env)
            setenv("AWS_ENDPOINT_URL", cases[i].all_env, 1);
        else
            unsetenv("AWS_ENDPOINT_URL");
        if (cases[i].ignore)
            setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", cases[i].ignore, 1);
        else
            unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
        ck_assert_msg(dsq_creds_chain_new(&cfg, http, &c, &e) == DSQ_OK,
                      "case %zu: %s", i, e.msg);
        ck_assert_msg(!strcmp(dsq_creds_sts_endpoint(c), cases[i].want),
                      "case %zu: STS at %s, expected %s", i,
                      dsq_creds_sts_endpoint(c), cases[i].want);
        dsq_creds_chain_free(c);
    }
}
END_TEST

/* ---- the S3 endpoint: which stand-in gets the request ---- */

static void s3_404_fn(const struct dsq_minihttp_req *rq,
                      struct dsq_minihttp_resp *rs, void *arg)
{
    (void)rq;
    (void)arg;
    rs->status = 404;
    rs->body[0] = 0;
}

START_TEST(test_s3_endpoint)
{
    enum { OPT, ENV_S3, ENV_ALL, NESTED, SERVICES, GLOBAL, N_EP };
    const char *names[N_EP] = {"option",           "AWS_ENDPOINT_URL_S3",
                               "AWS_ENDPOINT_URL", "sub-section",
                               "services",         "endpoint_url"};
    struct dsq_minihttp *srv[N_EP];
    char url[N_EP][64];
    for (int i = 0; i < N_EP; i++) {
        srv[i] = dsq_minihttp_start(s3_404_fn, NULL);
        snprintf(url[i], sizeof(url[i]), "http://127.0.0.1:%d",
                 dsq_minihttp_port(srv[i]));
    }
    char conf[4096];
    snprintf(conf, sizeof(conf),
             "[profile ep]\n"
             "s3 =\n"
             "  endpoint_url = %s\n"
             "services = svc\n"
             "endpoint_url = %s\n"
             "[services svc]\n"
             "s3 =\n"
             "  endpoint_url = %s\n"
             "[profile svconly]\n"
             "services = svc\n"
             "endpoint_url = %s\n"
             "[profile global]\n"
             "endpoint_url = %s/\n"
             "[profile ignoring]\n"
             "ignore_configured_endpoint_urls = true\n"
             "endpoint_url = %s\n"
             "[profile bad]\n"
             "endpoint_url = ftp://files.example.com\n",
             url[NESTED], url[GLOBAL], url[SERVICES], url[GLOBAL], url[GLOBAL],
             url[GLOBAL]);
    write_tmp("config", conf);
    setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDSTATIC", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "staticsecret", 1);
    struct {
        const char *profile;
        int opt, env_s3, env_all;
        const char *ignore;
        int want; /* -1: AWS's own, not contacted */
        const char *logged;
    } cases[] = {
        {"ep", 1, 1, 1, NULL, OPT, "endpoint from -o endpoint"},
        {"ep", 0, 1, 1, NULL, ENV_S3, "endpoint from AWS_ENDPOINT_URL_S3"},
        {"ep", 0, 0, 1, NULL, ENV_ALL, "endpoint from AWS_ENDPOINT_URL,"},
        {"ep", 0, 0, 0, NULL, NESTED,
         "endpoint from profile 'ep' (its sub-section)"},
        {"svconly", 0, 0, 0, NULL, SERVICES,
         "endpoint from profile 'svconly' (its services section)"},
        {"global", 0, 0, 0, NULL, GLOBAL,
         "endpoint from profile 'global' (its endpoint_url)"},
        {"ep", 1, 1, 1, "true", OPT, "endpoint from -o endpoint"},
        {"ep", 0, 1, 1, "true", -1,
         "via https://s3.us-east-1.amazonaws.com (endpoint from the "
         "region's AWS default"},
        {"ignoring", 0, 0, 0, NULL, -1,
         "via https://s3.us-east-1.amazonaws.com"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dsq_config c;
        struct dsq_store *st = NULL;
        struct dsq_err e;
        unsigned before[N_EP];
        capture_logs();
        for (int k = 0; k < N_EP; k++)
            before[k] = dsq_minihttp_count(srv[k]);
        setenv("AWS_PROFILE", cases[i].profile, 1);
        if (cases[i].env_s3)
            setenv("AWS_ENDPOINT_URL_S3", url[ENV_S3], 1);
        else
            unsetenv("AWS_ENDPOINT_URL_S3");
        if (cases[i].env_all)
            setenv("AWS_ENDPOINT_URL", url[ENV_ALL], 1);
        else
            unsetenv("AWS_ENDPOINT_URL");
        if (cases[i].ignore)
            setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", cases[i].ignore, 1);
        else
            unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
        dsq_config_init(&c);
        ck_assert_int_eq(dsq_config_load_env(&c, NULL), DSQ_OK);
        if (cases[i].opt)
            ck_assert_int_eq(dsq_config_set(&c, "endpoint", url[OPT], NULL),
                             DSQ_OK);
        c.max_retries = 0;
        ck_assert_msg(dsq_store_s3_open("s3://bkt/pre", &c, &st, &e) == DSQ_OK,
                      "case %zu: %s", i, e.msg);
        ck_assert_msg(strstr(logged, cases[i].logged),
                      "case %zu: the log lacks '%s':\n%s", i, cases[i].logged,
                      logged);
        if (cases[i].want >= 0) {
            ck_assert_int_eq(dsq_store_head(st, "k", NULL, &e), DSQ_ENOTFOUND);
            for (int k = 0; k < N_EP; k++)
                ck_assert_msg(dsq_minihttp_count(srv[k]) - before[k] ==
                                  (k == cases[i].want ? 1u : 0u),
                              "case %zu: %s got %u requests", i, names[k],
                              dsq_minihttp_count(srv[k]) - before[k]);
        }
        dsq_store_free(st);
        dsq_config_cleanup(&c);
        no_secret_logged("staticsecret");
        no_secret_logged("AKIDSTATIC");
    }
    /* a bad endpoint is refused at open, naming where it came from */
    {
        struct dsq_config c;
        struct dsq_store *st = NULL;
        struct dsq_err e;
        unsetenv("AWS_ENDPOINT_URL_S3");
        unsetenv("AWS_ENDPOINT_URL");
        unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
        setenv("AWS_PROFILE", "bad", 1);
        dsq_config_init(&c);
        ck_assert_int_eq(dsq_config_load_env(&c, NULL), DSQ_OK);
        ck_assert_int_eq(dsq_store_s3_open("s3://bkt/pre", &c, &st, &e),
                         DSQ_EINVAL);
        ck_assert_ptr_nonnull(strstr(e.msg, "ftp://files.example.com"));
        ck_assert_ptr_nonnull(strstr(e.msg, "from profile 'bad'"));
        dsq_config_cleanup(&c);
        setenv("AWS_PROFILE", "ep", 1);
        setenv("AWS_ENDPOINT_URL_S3", "s3.example.com", 1);
        dsq_config_init(&c);
        ck_assert_int_eq(dsq_config_load_env(&c, NULL), DSQ_OK);
        ck_assert_int_eq(dsq_store_s3_open("s3://bkt/pre", &c, &st, &e),
                         DSQ_EINVAL);
        ck_assert_ptr_nonnull(strstr(e.msg, "from AWS_ENDPOINT_URL_S3"));
        dsq_config_cleanup(&c);
    }
    for (int i = 0; i < N_EP; i++)
        dsq_minihttp_stop(srv[i]);
}
END_TEST

static Suite *creds_suite(void)
{
    Suite *s = suite_create("creds");
    TCase *tc = tcase_create("chain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_static_env);
    tcase_add_test(tc, test_env_through_config);
    tcase_add_test(tc, test_half_static);
    tcase_add_test(tc, test_none);
    tcase_add_test(tc, test_profiles);
    tcase_add_test(tc, test_profile_default_home);
    tcase_add_test(tc, test_container_refresh);
    tcase_add_test(tc, test_container_token_file_and_errors);
    tcase_add_test(tc, test_web_identity);
    tcase_add_test(tc, test_imds);
    tcase_add_test(tc, test_order);
    tcase_add_test(tc, test_awsconf_dialect);
    tcase_add_test(tc, test_credential_process);
    tcase_add_test(tc, test_credential_process_errors);
    tcase_add_test(tc, test_assume_role);
    tcase_add_test(tc, test_assume_role_chains);
    tcase_add_test(tc, test_assume_role_errors);
    tcase_add_test(tc, test_sts_endpoint);
    tcase_add_test(tc, test_s3_endpoint);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(creds_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
