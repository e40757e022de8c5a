/*
 * log.c - logging sinks (stderr, syslog, or a caller's function).
 * Layer: foundation.
 */
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <syslog.h>

volatile int dsq__log_level = DSQ_LOG_WARNING;

static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static dsq_log_sink cur_sink; /* guarded by sink_mu */
static void *cur_arg;         /* guarded by sink_mu */

static void stderr_sink(enum dsq_log_level level, const char *module,
                        const char *msg, void *arg)
{
    static const char *names[] = {"emerg",   "alert",  "crit", "error",
                                  "warning", "notice", "info", "debug"};
    (void)arg;
    fprintf(stderr, "dsqlfs: %s: %s: %s\n", names[level & 7], module, msg);
}

static void syslog_sink(enum dsq_log_level level, const char *module,
                        const char *msg, void *arg)
{
    (void)arg;
    syslog((int)level, "%s: %s", module, msg);
}

void dsq_log_set_level(enum dsq_log_level level)
{
    dsq__log_level = (int)level;
}

enum dsq_log_level dsq_log_get_level(void)
{
    return (enum dsq_log_level)dsq__log_level;
}

void dsq_log_set_sink(dsq_log_sink sink, void *arg)
{
    pthread_mutex_lock(&sink_mu);
    cur_sink = sink;
    cur_arg = arg;
    pthread_mutex_unlock(&sink_mu);
}

void dsq_log_use_syslog(void)
{
    openlog("dsqlfs", LOG_PID, LOG_DAEMON);
    dsq_log_set_sink(syslog_sink, NULL);
}

void dsq_log_vmsg(enum dsq_log_level level, const char *module, const char *fmt,
                  va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    pthread_mutex_lock(&sink_mu);
    dsq_log_sink sink = cur_sink ? cur_sink : stderr_sink;
    void *arg = cur_arg;
    sink(level, module ? module : "-", msg, arg);
    pthread_mutex_unlock(&sink_mu);
}

void dsq_log_msg(enum dsq_log_level level, const char *module, const char *fmt,
                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    dsq_log_vmsg(level, module, fmt, ap);
    va_end(ap);
}
