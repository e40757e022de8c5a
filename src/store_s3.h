/*
 * store_s3.h - the S3 backend of struct dsq_store ("s3://bucket[/prefix]").
 *
 * Layer: services.  See store.h for the contract and docs/s3.md for how
 * it maps to S3: addressing, SigV4 signing, retries with full-jitter
 * backoff, conditional writes (If-None-Match: * / If-Match, etag sent
 * unquoted), credentials (creds.h) and the error table.
 *
 * Thread-safety: as store.h (every op from any thread at once).
 */
#ifndef DSQ_STORE_S3_H
#define DSQ_STORE_S3_H

#include "err.h"
#include "store.h"

#include <stdint.h>

struct dsq_config;

/*
 * Open "s3://bucket[/prefix]" with the S3 options of cfg (endpoint,
 * region, credentials, TLS, addressing, timeouts, retry bounds).
 * Credentials are resolved here (DSQ_EAUTH when none); no request is sent
 * to the bucket: call dsq_store_s3_selftest() for that.
 */
dsq_rc dsq_store_s3_open(const char *url, const struct dsq_config *cfg,
                         struct dsq_store **out, struct dsq_err *e);

/*
 * Prove the bucket is reachable and that the server enforces conditional
 * writes: lists the prefix, PUTs a probe under "<prefix>/.dsqlfs-probe/"
 * twice with If-None-Match: * (the second must fail 412/409), checks that
 * If-Match with a wrong etag fails and with the right (unquoted) one
 * succeeds, then deletes the probe.  DSQ_EUNSUPPORTED with a message
 * saying why read-write use is refused; other failures as for any op.
 */
dsq_rc dsq_store_s3_selftest(struct dsq_store *st, struct dsq_err *e);

/* Counters (tests, stats).  Monotonic; read without locking. */
struct dsq_s3_stats {
    uint64_t requests;     /* HTTP attempts sent */
    uint64_t retries;      /* attempts after the first of an op */
    uint64_t ambiguous;    /* conditional PUTs answered DSQ_ETRANSIENT */
    uint64_t creds_refreshes; /* forced by the server (ExpiredToken) */
};
void dsq_store_s3_stats(struct dsq_store *st, struct dsq_s3_stats *out);

#endif
