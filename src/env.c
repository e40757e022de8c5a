/*
 * env.c - real clock, randomness and sleep behind the dsq_env table.
 * Layer: foundation.
 */
#include "env.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static uint64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t real_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void real_sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void real_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* getrandom cannot fail on Linux >= 3.17 once seeded; keep going
               with the clock rather than returning predictable zeros */
            uint64_t t = real_mono_ns();
            size_t k = n < sizeof(t) ? n : sizeof(t);
            memcpy(p, &t, k);
            r = (ssize_t)k;
        }
        p += r;
        n -= (size_t)r;
    }
}

struct dsq_env_ops dsq_env = {real_now_ms, real_mono_ns, real_sleep_ms,
                              real_random};

void dsq_env_reset(void)
{
    dsq_env.now_ms = real_now_ms;
    dsq_env.mono_ns = real_mono_ns;
    dsq_env.sleep_ms = real_sleep_ms;
    dsq_env.random = real_random;
}

uint64_t dsq_random_below(uint64_t n)
{
    if (n <= 1)
        return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do {
        dsq_env.random(&v, sizeof(v));
    } while (v >= limit);
    return v % n;
}

void dsq_random_hex32(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    dsq_env.random(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 1 */
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[32] = 0;
}

void dsq_format_time_ms(uint64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(ms % 1000));
}

int dsq_parse_time_ms(const char *s, uint64_t *ms)
{
    struct tm tm;
    unsigned frac = 0;
    int n = 0;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3uZ%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &frac,
               &n) != 7 ||
        s[n] != 0 || n != 24)
        return -1;
    if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
        tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    *ms = (uint64_t)t * 1000u + frac;
    return 0;
}

static int digits(const char *s, size_t len, size_t *i, unsigned n,
                  unsigned *out)
{
    unsigned v = 0;
    for (unsigned k = 0; k < n; k++, (*i)++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[*i] - '0');
    }
    *out = v;
    return 0;
}

static int lit(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return -1;
    (*i)++;
    return 0;
}

int dsq_parse_time_user(const char *s, size_t len, uint64_t *ms)
{
    unsigned y, mo, d, h, mi, sec = 0, frac = 0, oh = 0, om = 0;
    size_t i = 0;
    if (digits(s, len, &i, 4, &y) || lit(s, len, &i, '-') ||
        digits(s, len, &i, 2, &mo) || lit(s, len, &i, '-') ||
        digits(s, len, &i, 2, &d) || lit(s, len, &i, 'T') ||
        digits(s, len, &i, 2, &h) || lit(s, len, &i, ':') ||
        digits(s, len, &i, 2, &mi))
        return -1;
    if (i < len && s[i] == ':') {
        i++;
        if (digits(s, len, &i, 2, &sec))
            return -1;
        if (i < len && s[i] == '.') {
            i++;
            unsigned nd = 0;
            while (i < len && s[i] >= '0' && s[i] <= '9' && nd < 3) {
                frac = frac * 10 + (unsigned)(s[i] - '0');
                i++;
                nd++;
            }
            if (nd == 0)
                return -1;
            for (; nd < 3; nd++)
                frac *= 10;
        }
    }
    int sign = 0;
    if (i < len && s[i] == 'Z') {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        sign = s[i] == '+' ? 1 : -1;
        i++;
        if (digits(s, len, &i, 2, &oh) || lit(s, len, &i, ':') ||
            digits(s, len, &i, 2, &om) || oh > 23 || om > 59)
            return -1;
    } else {
        return -1;
    }
    if (i != len || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
        h > 23 || mi > 59 || sec > 59)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = (int)y - 1900;
    tm.tm_mon = (int)mo - 1;
    tm.tm_mday = (int)d;
    tm.tm_hour = (int)h;
    tm.tm_min = (int)mi;
    tm.tm_sec = (int)sec;
    time_t t = timegm(&tm);
    if (t < 0 || tm.tm_mday != (int)d || tm.tm_mon != (int)mo - 1)
        return -1; /* 2026-02-30 normalised into March */
    int64_t v = (int64_t)t * 1000 + frac;
    v -= (int64_t)sign * ((int64_t)oh * 3600 + (int64_t)om * 60) * 1000;
    if (v < 0)
        return -1;
    *ms = (uint64_t)v;
    return 0;
}
