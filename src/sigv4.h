/*
 * sigv4.h - AWS Signature Version 4: canonical request, string to sign,
 * signing key and Authorization header.
 *
 * Layer: services (pure).  No I/O, no clock, no libcurl: the caller passes
 * the request time and everything that is signed, so the published AWS
 * test vectors can be checked byte for byte.  OpenSSL is used here (and
 * for SHA-256 helpers) and nowhere else in the S3 path.
 *
 * Encoding rules (S3 flavour, which is also what the generic test suite
 * expects for paths that need no normalisation):
 *  - the path is given RAW (unencoded UTF-8, '/' separated) and is
 *    URI-encoded exactly once, '/' kept; no "." / ".." / "//" folding
 *    (S3 keys are opaque).
 *  - query parameters are given RAW as name/value pairs, each encoded
 *    (RFC 3986 unreserved kept, everything else %XX uppercase, '/' too),
 *    then sorted by encoded name, then encoded value.
 *  - header names are lowercased, values trimmed and inner runs of spaces
 *    collapsed; repeated names are joined with ',' in the order given;
 *    headers are sorted by name.  Every header passed in is signed.
 *  The wire request must use dsq_sigv4_encode_path()/dsq_sigv4_query() so
 *  what is sent is exactly what was signed.
 *
 * Secrets: the secret key is read, never copied into any output except
 * through HMAC; temporary key material is wiped.  Output buffers never
 * contain the secret (the session token appears only where the caller
 * passes it as a header value to sign).
 *
 * Thread-safety: all functions are reentrant.
 */
#ifndef DSQ_SIGV4_H
#define DSQ_SIGV4_H

#include "buf.h"
#include "err.h"

#include <stddef.h>
#include <stdint.h>

#define DSQ_SHA256_HEX_LEN 64
/* sha256 of the empty string, hex */
#define DSQ_SHA256_EMPTY                                                       \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct dsq_sigv4_pair {
    const char *name;
    const char *value; /* NULL is the same as "" */
};

struct dsq_sigv4_req {
    const char *method;      /* "GET", "PUT", ... */
    const char *path;        /* raw, starts with '/' ("" means "/") */
    const struct dsq_sigv4_pair *query; /* raw pairs, any order */
    size_t n_query;
    const struct dsq_sigv4_pair *headers; /* must include host and
                                             x-amz-date */
    size_t n_headers;
    const char *payload_hash; /* hex sha256 or "UNSIGNED-PAYLOAD" */
};

struct dsq_sigv4_scope {
    const char *amz_date; /* "20150830T123600Z" */
    const char *region;   /* "us-east-1" */
    const char *service;  /* "s3", "sts", "service" */
};

/* Hex SHA-256 of data (65 bytes with NUL). */
void dsq_sha256_hex(const void *data, size_t len, char out[65]);

/* "20150830T123600Z" for ms since the epoch. */
void dsq_sigv4_amz_date(uint64_t ms, char out[17]);

/*
 * Append the RFC 3986 encoding of s (unreserved A-Za-z0-9-._~ kept; '/'
 * kept unless encode_slash).  DSQ_ERANGE past out->max.
 */
dsq_rc dsq_sigv4_encode(const char *s, int encode_slash, struct dsq_buf *out);

/* Encoded path as sent on the wire ("/" for an empty path). */
dsq_rc dsq_sigv4_encode_path(const char *path, struct dsq_buf *out);

/*
 * The canonical (sorted, encoded) query string without '?': also the form
 * to send on the wire.  Appends nothing for n == 0.
 */
dsq_rc dsq_sigv4_query(const struct dsq_sigv4_pair *q, size_t n,
                       struct dsq_buf *out);

/*
 * The canonical request text, and (if signed_headers is not NULL) the
 * "host;x-amz-date" list appended to signed_headers.
 */
dsq_rc dsq_sigv4_canonical_request(const struct dsq_sigv4_req *r,
                                   struct dsq_buf *out,
                                   struct dsq_buf *signed_headers);

/* "AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex sha256(creq)>". */
dsq_rc dsq_sigv4_string_to_sign(const struct dsq_sigv4_scope *s,
                                const char *creq, size_t creq_len,
                                struct dsq_buf *out);

/*
 * kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, yyyymmdd), region),
 * service), "aws4_request").
 */
void dsq_sigv4_signing_key(const char *secret, const char *yyyymmdd,
                           const char *region, const char *service,
                           uint8_t key[32]);

/*
 * Full signature: writes the lowercase hex signature (65 bytes) and
 * appends the Authorization header VALUE ("AWS4-HMAC-SHA256 Credential=
 * ..., SignedHeaders=..., Signature=...") to authz.
 */
dsq_rc dsq_sigv4_sign(const struct dsq_sigv4_req *r,
                      const struct dsq_sigv4_scope *s, const char *access_key,
                      const char *secret_key, char signature[65],
                      struct dsq_buf *authz);

#endif
