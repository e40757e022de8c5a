/*
 * log.h - leveled logging with a pluggable sink.
 *
 * Layer: foundation.  Thread-safe: each message is formatted into a local
 * buffer and handed to the sink in one call.
 *
 * Levels are syslog's.  dsq_log() checks the level before formatting.  The
 * default sink writes "dsqlfs[module]: message" lines to stderr; the daemon
 * switches to syslog when it detaches.  Never pass secrets (secret key,
 * session token, Authorization header) to the logger.
 */
#ifndef DSQ_LOG_H
#define DSQ_LOG_H

#include <stdarg.h>

enum dsq_log_level {
    DSQ_LOG_CRIT = 2,
    DSQ_LOG_ERR = 3,
    DSQ_LOG_WARNING = 4,
    DSQ_LOG_NOTICE = 5,
    DSQ_LOG_INFO = 6,
    DSQ_LOG_DEBUG = 7,
};

typedef void (*dsq_log_sink)(enum dsq_log_level level, const char *module,
                             const char *msg, void *arg);

/* Messages above this level are dropped (default DSQ_LOG_WARNING). */
void dsq_log_set_level(enum dsq_log_level level);
enum dsq_log_level dsq_log_get_level(void);

/* Replace the sink; NULL restores the stderr sink. */
void dsq_log_set_sink(dsq_log_sink sink, void *arg);

/* Use syslog (openlog done by the caller or lazily with ident "dsqlfs"). */
void dsq_log_use_syslog(void);

void dsq_log_msg(enum dsq_log_level level, const char *module, const char *fmt,
                 ...) __attribute__((format(printf, 3, 4)));
void dsq_log_vmsg(enum dsq_log_level level, const char *module, const char *fmt,
                  va_list ap);

extern volatile int dsq__log_level;

#define dsq_log(level, module, ...)                                            \
    do {                                                                       \
        if ((int)(level) <= dsq__log_level)                                    \
            dsq_log_msg((level), (module), __VA_ARGS__);                       \
    } while (0)

#endif
