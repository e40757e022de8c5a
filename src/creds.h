/*
 * creds.h - AWS credentials: the provider chain and refresh.
 *
 * Layer: services.  Order (the AWS SDKs'):
 *   1. options / environment: -o access_key=,secret_key=,session_token= or
 *      AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *      (already merged into struct dsq_config);
 *   2. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 *      AWS_CONFIG_FILE (~/.aws/config), profile from -o profile= /
 *      AWS_PROFILE / "default"; a profile with role_arn and
 *      web_identity_token_file goes to 3;
 *   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      (AWS_ROLE_SESSION_NAME) through STS AssumeRoleWithWebIdentity
 *      (AWS_ENDPOINT_URL_STS overrides the STS endpoint);
 *   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on 169.254.170.2)
 *      or _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE];
 *   5. EC2 instance metadata, IMDSv2 (session token first), unless
 *      AWS_EC2_METADATA_DISABLED=true; AWS_EC2_METADATA_SERVICE_ENDPOINT
 *      overrides the address.
 * The first provider that is configured decides: if it fails, the chain
 * fails with its error (no silent fall-through to another identity).
 *
 * Temporary credentials (with an expiry) are refreshed by dsq_creds_get()
 * from the same provider once less than DSQ_CREDS_REFRESH_MS is left; if a
 * refresh fails while the old ones are still valid, those keep being used
 * (a warning is logged, the next attempt waits 30 s).
 *
 * Secrets (secret key, session token, web identity token, container
 * authorization token) are never logged nor put in a dsq_err message, and
 * are wiped before being freed.
 *
 * Thread-safety: one chain is shared by all threads of a store; lock
 * guards cur, next_try_ms and the provider's state; dsq_creds_get copies
 * out under it (a refresh holds it during its HTTP round trip).
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
    char *secret_key;     /* SECRET */
    char *session_token;  /* SECRET; NULL if none */
    uint64_t expires_ms;  /* 0 = does not expire */
};

void dsq_creds_cleanup(struct dsq_creds *c);

struct dsq_creds_chain;

/*
 * Find the first configured provider and fetch credentials from it.  http
 * is used for STS/container/IMDS and must outlive the chain.  DSQ_EAUTH
 * when nothing is configured (the message lists what was tried).
 */
dsq_rc dsq_creds_chain_new(const struct dsq_config *cfg,
                           struct dsq_http *http,
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

/* "environment", "profile 'x'", "web identity", "container", "imds". */
const char *dsq_creds_source(const struct dsq_creds_chain *c);

/* Region named by the profile's config section (or NULL), for the store. */
const char *dsq_creds_profile_region(const struct dsq_creds_chain *c);

/* How many times credentials were fetched (tests). */
unsigned dsq_creds_fetches(const struct dsq_creds_chain *c);

#endif
