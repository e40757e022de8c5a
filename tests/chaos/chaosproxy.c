/*
 * chaosproxy.c - the fault proxy (tests/support/faultproxy.c) as a program
 * for the chaos harness: forwards 127.0.0.1:PORT to the S3 test server,
 * injecting random faults from a seeded generator.
 *
 *   chaosproxy UPSTREAM_IP UPSTREAM_PORT PORTFILE [--seed N]
 *              [--permille P] [--delay-max MS] [--down]
 *
 * Writes the port it listens on to PORTFILE, runs until SIGTERM or SIGINT,
 * then prints its counts on stdout:
 *   requests N faults N status N reset N delay N drop_reply N
 * Faults: 503/500 answers, connection resets (nothing forwarded), delays,
 * and replies dropped after the server applied the request.  --down
 * answers every request 503 (a store that is down); SIGUSR1 takes the
 * store down that way, SIGUSR2 brings it back.
 * Single-threaded main; the proxy's threads do the work.
 */
#include "faultproxy.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop, down_req = -1;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        down_req = 1;
    else if (sig == SIGUSR2)
        down_req = 0;
    else
        stop = 1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: chaosproxy UPSTREAM_IP UPSTREAM_PORT PORTFILE "
                        "[--seed N] [--permille P] [--delay-max MS] "
                        "[--down]\n");
        return 2;
    }
    unsigned seed = 1, permille = 0;
    int delay_max = 200, down = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--permille") && i + 1 < argc)
            permille = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--delay-max") && i + 1 < argc)
            delay_max = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--down"))
            down = 1;
        else {
            fprintf(stderr, "chaosproxy: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct dsq_faultproxy *p = dsq_faultproxy_start(argv[1], atoi(argv[2]));
    if (down)
        dsq_faultproxy_set(p, DSQ_FAULT_STATUS, 503, UINT_MAX, NULL);
    else
        dsq_faultproxy_set_random(
            p, seed, permille,
            (1u << DSQ_FAULT_STATUS) | (1u << DSQ_FAULT_RESET) |
                (1u << DSQ_FAULT_DELAY) | (1u << DSQ_FAULT_DROP_REPLY),
            delay_max);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", dsq_faultproxy_port(p)) < 0 || fclose(f) ||
        rename(tmp, argv[3]) != 0) {
        perror("chaosproxy: port file");
        return 1;
    }
    while (!stop) {
        if (down_req >= 0) {
            dsq_faultproxy_set(p, DSQ_FAULT_STATUS, 503,
                               down_req ? UINT_MAX : 0, NULL);
            down_req = -1;
        }
        usleep(20000);
    }
    printf("requests %u faults %u status %u reset %u delay %u drop_reply %u\n",
           dsq_faultproxy_requests(p), dsq_faultproxy_faults(p),
           dsq_faultproxy_faults_of(p, DSQ_FAULT_STATUS),
           dsq_faultproxy_faults_of(p, DSQ_FAULT_RESET),
           dsq_faultproxy_faults_of(p, DSQ_FAULT_DELAY),
           dsq_faultproxy_faults_of(p, DSQ_FAULT_DROP_REPLY));
    fflush(stdout);
    dsq_faultproxy_stop(p);
    return 0;
}
