/*
 * faultproxy.h - a fault-injecting HTTP/1.1 proxy for tests.
 *
 * Listens on 127.0.0.1 (free port) and forwards each request to one
 * upstream (the real S3 server), keeping connections alive on both sides.
 * It understands just enough HTTP (Content-Length and chunked bodies) to
 * act per request: the next `count` requests whose method matches get the
 * configured fault, later ones pass.
 *
 * Thread per client connection (finished ones are reaped as new ones
 * come, so a proxy can serve any number of them); set/stats are
 * thread-safe.
 */
#ifndef DSQ_FAULTPROXY_H
#define DSQ_FAULTPROXY_H

enum dsq_fault_mode {
    DSQ_FAULT_PASS = 0,
    DSQ_FAULT_DELAY,      /* wait arg ms, then forward */
    DSQ_FAULT_STATUS,     /* answer HTTP arg (500, 503 SlowDown ...) with
                             an S3 error body; nothing is forwarded */
    DSQ_FAULT_RESET,      /* reset the client connection; nothing is
                             forwarded */
    DSQ_FAULT_DROP_REPLY, /* forward (the server applies it), read the
                             reply, then reset the client connection */
    DSQ_FAULT_ACK,        /* answer 200 + an ETag without forwarding: a
                             server that ignores conditions */
};

struct dsq_faultproxy;

/* Start (aborts on failure). */
struct dsq_faultproxy *dsq_faultproxy_start(const char *upstream_ip,
                                            int upstream_port);
int dsq_faultproxy_port(const struct dsq_faultproxy *p);
/* Apply mode to the next count requests with this method (NULL: any). */
void dsq_faultproxy_set(struct dsq_faultproxy *p, enum dsq_fault_mode mode,
                        int arg, unsigned count, const char *method);
/* S3 error code of DSQ_FAULT_STATUS answers (default by status:
   503 SlowDown, 500 InternalError, 501 NotImplemented); NULL resets. */
void dsq_faultproxy_set_code(struct dsq_faultproxy *p, const char *code);
/*
 * Random faults, besides the plan of dsq_faultproxy_set (which goes
 * first): each request gets a fault with probability permille/1000, its
 * mode drawn from modes (a mask of 1 << DSQ_FAULT_*; STATUS answers 503
 * or 500, DELAY waits up to delay_max_ms), from a generator seeded with
 * seed (one draw per request, in arrival order).  permille 0 stops it.
 */
void dsq_faultproxy_set_random(struct dsq_faultproxy *p, unsigned seed,
                               unsigned permille, unsigned modes,
                               int delay_max_ms);
/* Requests seen / faults injected so far. */
unsigned dsq_faultproxy_requests(struct dsq_faultproxy *p);
unsigned dsq_faultproxy_faults(struct dsq_faultproxy *p);
/* Faults injected so far of one mode (DSQ_FAULT_STATUS counts both). */
unsigned dsq_faultproxy_faults_of(struct dsq_faultproxy *p,
                                  enum dsq_fault_mode mode);
void dsq_faultproxy_stop(struct dsq_faultproxy *p);

#endif
