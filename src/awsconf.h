/*
 * awsconf.h - the AWS shared files: ~/.aws/credentials and ~/.aws/config.
 *
 * Layer: services (reads two small files, nothing else).  The files are
 * the SDKs' INI dialect:
 *   - credentials file: "[NAME]" sections are profiles;
 *   - config file: "[default]" and "[profile NAME]" are profiles,
 *     "[services NAME]" are services sections, anything else is ignored;
 *   - "key = value" lines (keys are case-insensitive, stored lower case;
 *     a value ends before a '#' or ';' that follows white space);
 *   - a key with an empty value opens a sub-section: the indented
 *     "key = value" lines under it are stored as "parent.key" (so
 *     "s3 =" / "  endpoint_url = URL" is the key "s3.endpoint_url");
 *   - lines starting with '#' or ';' are comments.
 * For one profile the credentials file beats the config file, and within
 * one file the first value of a key wins.  A missing file is an empty one.
 *
 * Secrets: values (aws_secret_access_key, aws_session_token) are kept as
 * read and wiped before being freed; nothing here logs.
 *
 * Thread-safety: a loaded struct dsq_awsconf is immutable.
 */
#ifndef DSQ_AWSCONF_H
#define DSQ_AWSCONF_H

#include "err.h"

#include <stddef.h>

struct dsq_awsconf;

/*
 * Read AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials) and
 * AWS_CONFIG_FILE (default ~/.aws/config).  DSQ_EIO when a file exists
 * but cannot be read, DSQ_ERANGE past 1 MiB; the message names the file.
 */
dsq_rc dsq_awsconf_load(struct dsq_awsconf **out, struct dsq_err *e);

/* Parse one file's text (tests, fuzzing); is_config picks the dialect. */
dsq_rc dsq_awsconf_parse(struct dsq_awsconf *a, const char *text, int is_config,
                         struct dsq_err *e);

/* An empty set (then dsq_awsconf_parse). */
struct dsq_awsconf *dsq_awsconf_new(void);
void dsq_awsconf_free(struct dsq_awsconf *a);

/* 1 if either file has a section for this profile. */
int dsq_awsconf_has_profile(const struct dsq_awsconf *a, const char *profile);

/*
 * The profile's value for key ("region", "s3.endpoint_url"), NULL when
 * unset or empty.  Borrowed: valid until dsq_awsconf_free.
 */
const char *dsq_awsconf_get(const struct dsq_awsconf *a, const char *profile,
                            const char *key);

/* The same for a "[services NAME]" section of the config file. */
const char *dsq_awsconf_services_get(const struct dsq_awsconf *a,
                                     const char *name, const char *key);

/*
 * The endpoint the profile gives for service ("s3", "sts"), in the SDKs'
 * order: the profile's own "<service> =" sub-section endpoint_url, then
 * the one in the "[services NAME]" section its "services" key names, then
 * the profile's endpoint_url.  NULL if none.  *where (if not NULL) is set
 * to a static description of which of the three it was.
 */
const char *dsq_awsconf_endpoint(const struct dsq_awsconf *a,
                                 const char *profile, const char *service,
                                 const char **where);

/*
 * Read a small file whole, NUL-terminated (token files, the shared
 * files).  DSQ_ENOTFOUND if it does not exist, DSQ_ERANGE past cap bytes,
 * DSQ_EIO otherwise (the message names the file).  The text may be a
 * secret: wipe it before freeing.
 */
dsq_rc dsq_awsconf_read_file(const char *path, size_t cap, char **out,
                             struct dsq_err *e);

/* The paths read (for messages); "~/.aws/..." when HOME is unknown. */
const char *dsq_awsconf_credentials_path(const struct dsq_awsconf *a);
const char *dsq_awsconf_config_path(const struct dsq_awsconf *a);

#endif
