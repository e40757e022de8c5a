/*
 * s3xml.h - parsing the XML that S3 and STS answer: ListObjectsV2 results,
 * Error bodies, AssumeRoleWithWebIdentity results.
 *
 * Layer: services (pure).  libexpat does the XML; this module only maps
 * element paths to fields.  Input is untrusted: documents are capped
 * (DSQ_S3XML_MAX_DOC), every text field is capped, DOCTYPE declarations
 * (and with them entity tricks) are refused, and malformed input is
 * DSQ_ECORRUPT with a message, never a crash.  Outputs are written only on
 * success.
 *
 * Thread-safety: reentrant, no shared state.
 */
#ifndef DSQ_S3XML_H
#define DSQ_S3XML_H

#include "err.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* Largest document accepted (a 1000-key listing is ~350 KiB). */
#define DSQ_S3XML_MAX_DOC (16u << 20)

/* The fields of an S3 <Error> (or STS <ErrorResponse>) body. */
struct dsq_s3_error {
    char code[64];        /* "NoSuchKey", "SignatureDoesNotMatch" */
    char message[256];
    char request_id[128];
    char key[256];        /* <Key>, if given */
    char region[64];      /* <Region> of AuthorizationHeaderMalformed */
    char endpoint[256];   /* <Endpoint> of PermanentRedirect */
};

/*
 * Parse an error body.  Fields the body lacks are "".  A body that is not
 * XML (or has no <Code>) is DSQ_ECORRUPT; callers then fall back to the
 * HTTP status alone.
 */
dsq_rc dsq_s3xml_parse_error(const void *xml, size_t len,
                             struct dsq_s3_error *out, struct dsq_err *e);

/*
 * Parse a ListObjectsV2 result into out (keys exactly as S3 returned them,
 * decoded when <EncodingType>url</EncodingType>; next_token set only when
 * <IsTruncated>true</IsTruncated>).  On failure out is untouched.
 */
dsq_rc dsq_s3xml_parse_list(const void *xml, size_t len,
                            struct dsq_list_page *out, struct dsq_err *e);

/* Temporary credentials from STS (all owned, free with ..._cleanup). */
struct dsq_s3xml_creds {
    char *access_key;
    char *secret_key;     /* SECRET */
    char *session_token;  /* SECRET */
    uint64_t expires_ms;  /* 0 if the document gave none */
};

/* Wipes and frees. */
void dsq_s3xml_creds_cleanup(struct dsq_s3xml_creds *c);

/* An AssumeRoleWithWebIdentityResponse (or AssumeRoleResponse). */
dsq_rc dsq_s3xml_parse_sts(const void *xml, size_t len,
                           struct dsq_s3xml_creds *out, struct dsq_err *e);

/*
 * "2019-11-09T13:34:41Z", "2019-11-09T13:34:41.123Z" or with a numeric
 * offset ("+00:00") to ms since the epoch.  0 on success, -1 if malformed.
 */
int dsq_parse_iso8601_ms(const char *s, uint64_t *ms);

/*
 * Decode %XX escapes (and '+' as space when plus_space) of the n bytes at
 * s into a new string; NULL on a bad escape, an embedded NUL or no memory.
 */
char *dsq_url_decode(const char *s, size_t n, int plus_space);

#endif
