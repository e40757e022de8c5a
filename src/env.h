/*
 * env.h - the seam for time, randomness and sleeping.
 *
 * Layer: foundation.  Production code reads the clock, sleeps and draws
 * random bytes only through dsq_env, so tests can freeze the clock (SigV4
 * vectors) or make backoff instant.  Tests replace fields of dsq_env before
 * starting threads; the table is not locked.
 */
#ifndef DSQ_ENV_H
#define DSQ_ENV_H

#include <stddef.h>
#include <stdint.h>

struct dsq_env_ops {
    uint64_t (*now_ms)(void);  /* wall clock, ms since the Unix epoch */
    uint64_t (*mono_ns)(void); /* monotonic clock */
    void (*sleep_ms)(uint64_t ms);
    void (*random)(void *buf, size_t n); /* cryptographic quality */
};

extern struct dsq_env_ops dsq_env;

/* Restore the real implementations. */
void dsq_env_reset(void);

static inline uint64_t dsq_now_ms(void)
{
    return dsq_env.now_ms();
}
static inline uint64_t dsq_mono_ns(void)
{
    return dsq_env.mono_ns();
}

/* Uniform random integer in [0, n) (n > 0). */
uint64_t dsq_random_below(uint64_t n);

/* 32 lowercase hex digits of fresh randomness plus NUL (a v4 UUID's bits). */
void dsq_random_hex32(char out[33]);

/* "2026-11-25T16:44:59.123Z" for ms since the epoch (needs 25 bytes). */
void dsq_format_time_ms(uint64_t ms, char out[32]);
/* Parse that format back; 0 on success, -1 if malformed. */
int dsq_parse_time_ms(const char *s, uint64_t *ms);
/*
 * A time as a user types it, the len bytes of s (no NUL needed):
 * YYYY-MM-DDTHH:MM, then optionally :SS and .f to .fff, then Z or an
 * offset +HH:MM / -HH:MM; a real calendar date, year 1970..9999.  The
 * instant in ms since the epoch (UTC); 0 on success, -1 if malformed.
 */
int dsq_parse_time_user(const char *s, size_t len, uint64_t *ms);

#endif
