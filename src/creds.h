/*
 * creds.h - AWS credentials: the provider chain and refresh.
 *
 * Layer: services.  Order (the AWS SDKs'):
 *   1. options / environment: -o access_key=,secret_key=,session_token= or
 *      AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *      (already merged into struct dsq_config);
 *   2. the shared files (awsconf.h), profile from -o profile= /
 *      AWS_PROFILE / "default".  In the profile, in this order:
 *      role_arn with web_identity_token_file (as 3), or with
 *      source_profile / credential_source (STS AssumeRole signed with the
 *      source's credentials; role_session_name, external_id,
 *      duration_seconds); aws_access_key_id + aws_secret_access_key
 *      (+ aws_session_token); credential_process (a command printing the
 *      JSON of the SDKs' process protocol).  A source profile resolves the
 *      same way except that its keys beat its own role_arn;
 *   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      (AWS_ROLE_SESSION_NAME) through STS AssumeRoleWithWebIdentity;
 *   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on 169.254.170.2)
 *      or _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE];
 *   5. EC2 instance metadata, IMDSv2 (session token first), unless
 *      AWS_EC2_METADATA_DISABLED=true; AWS_EC2_METADATA_SERVICE_ENDPOINT
 *      overrides the address.
 * The first provider that is configured decides: if it fails, the chain
 * fails with its error (no silent fall-through to another identity).
 * STS is reached at AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else the
 * profile's sts endpoint (awsconf.h), else https://sts.REGION.amazonaws.com/
 * (the environment and profile are skipped when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS or the profile's
 * ignore_configured_endpoint_urls is true).
 *
 * Temporary credentials (with an expiry) are refreshed by dsq_creds_get()
 * from the same provider once less than DSQ_CREDS_REFRESH_MS is left (an
 * AssumeRole fetches its source's credentials afresh first); if a refresh
 * fails while the old ones are still valid, those keep being used (a
 * warning is logged, the next attempt waits 30 s).  Credentials that
 * arrive already inside the window are not fetched again for 30 s.
 *
 * Secrets (secret key, session token, web identity token, container
 * authorization token, a credential_process's output) are never logged
 * nor put in a dsq_err message, and are wiped before being freed.  Of a
 * credential_process only argv[0] is ever named.
 *
 * Thread-safety: one chain is shared by all threads of a store; lock
 * guards cur, next_try_ms and the provider's state; dsq_creds_get copies
 * out under it (a refresh holds it during its HTTP round trip or while
 * the credential_process runs).
 */
#ifndef DSQ_CREDS_H
#define DSQ_CREDS_H

#include "err.h"

#include <stdint.h>

struct dsq_config;
struct dsq_http;

#define DSQ_CREDS_REFRESH_MS (5u * 60u * 1000u)

/* A copy handed to a signer (strings owned; dsq_creds_cleanup wipes). */
struct dsq_creds {
    char *access_key;
    char *secret_key;    /* SECRET */
    char *session_token; /* SECRET; NULL if none */
    uint64_t expires_ms; /* 0 = does not expire */
};

void dsq_creds_cleanup(struct dsq_creds *c);

struct dsq_creds_chain;

/*
 * Find the first configured provider and fetch credentials from it.  http
 * is used for STS/container/IMDS and must outlive the chain.  DSQ_EAUTH
 * when nothing is configured (the message lists what was tried).
 */
dsq_rc dsq_creds_chain_new(const struct dsq_config *cfg, struct dsq_http *http,
                           struct dsq_creds_chain **out, struct dsq_err *e);
void dsq_creds_chain_free(struct dsq_creds_chain *c);

/* Current credentials (refreshed first when due). */
dsq_rc dsq_creds_get(struct dsq_creds_chain *c, struct dsq_creds *out,
                     struct dsq_err *e);

/*
 * The server said the token expired: refresh at the next get.  Returns 1
 * if the provider can refresh at all (temporary credentials), else 0.
 */
int dsq_creds_invalidate(struct dsq_creds_chain *c);

/*
 * What the credentials come from, for messages: "options/environment",
 * "profile 'x'", "credential_process of profile 'x'", "role ARN of
 * profile 'x'", "web identity (role ARN)", "container endpoint",
 * "instance metadata".
 */
const char *dsq_creds_source(const struct dsq_creds_chain *c);

/* Region named by the profile (or NULL), for the store. */
const char *dsq_creds_profile_region(const struct dsq_creds_chain *c);

/*
 * The S3 endpoint the profile names (its "s3 =" sub-section
 * endpoint_url, its services section's, its endpoint_url), NULL if none
 * or when configured endpoints are ignored; *where (if not NULL) gets
 * "profile 'x' (...)" for messages.
 */
const char *dsq_creds_profile_endpoint(const struct dsq_creds_chain *c,
                                       const char **where);

/*
 * 1 if AWS_IGNORE_CONFIGURED_ENDPOINT_URLS or the profile's
 * ignore_configured_endpoint_urls is true: endpoints from the environment
 * and the files are then not used (an -o endpoint still is).
 */
int dsq_creds_ignore_configured_endpoints(const struct dsq_creds_chain *c);

/* The STS endpoint AssumeRole and web identity use (tests, messages). */
const char *dsq_creds_sts_endpoint(const struct dsq_creds_chain *c);

/* How many times credentials were fetched (tests). */
unsigned dsq_creds_fetches(const struct dsq_creds_chain *c);

/*
 * Bound on one run of a credential_process (default 60 s; tests make it
 * short).  Set before chains are made; not locked.
 */
void dsq_creds_process_timeout(unsigned ms);

#endif
