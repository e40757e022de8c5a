/*
 * test_creds.c - the credential chain: options/environment, profile files,
 * web identity (STS stand-in), container endpoint and IMDSv2 stand-ins
 * (tests/support/minihttp), refresh of expiring credentials on a frozen
 * clock, and that no secret reaches an error message.
 */
#include "config.h"
#include "creds.h"
#include "env.h"
#include "http.h"
#include "minihttp.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t frozen_ms;
static uint64_t frozen_now(void)
{
    return frozen_ms;
}

static const char *vars[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_REGION", "AWS_DEFAULT_REGION"};

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

static void teardown(void)
{
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
    int fail;            /* answer 500 */
    int forbid;          /* answer 403 */
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
    snprintf(rs->body, sizeof(rs->body),
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
        snprintf(rs->body, sizeof(rs->body),
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
