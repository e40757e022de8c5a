/*
 * config.h - options from defaults, the environment and "-o name=value".
 *
 * Layer: foundation.  No I/O.  Order of precedence: an explicit option
 * beats the environment, which beats the default.  Every option is listed
 * once in the table in config.c (name, environment variable, parser), and
 * docs/options.md reproduces it.  Unknown or malformed options are
 * DSQ_EINVAL with a message naming the option.  Path options (cache_dir,
 * ca_file) are made absolute against the working directory when parsed.
 *
 * A config is filled once (single thread) and then only read.
 */
#ifndef DSQ_CONFIG_H
#define DSQ_CONFIG_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

enum dsq_isolation {
    DSQ_ISOLATION_SNAPSHOT = 0,     /* first committer wins on pages */
    DSQ_ISOLATION_SERIALIZABLE = 1, /* any commit since the snapshot
                                       conflicts */
};

struct dsq_config {
    /* engine */
    unsigned checkpoint_interval; /* deltas between checkpoints (50) */
    unsigned overlay_max_pages;   /* force a checkpoint past this (8192) */
    unsigned max_retries;         /* commit rebase / request retries (10) */
    double retry_base_s;          /* backoff base (0.05) */
    double retry_max_s;           /* backoff cap (30.0) */
    uint64_t segment_max_bytes;   /* bound on one segment (16 MiB) */
    enum dsq_isolation isolation;
    int compress;    /* zstd page compression (1) */
    char *cache_dir; /* owned, absolute; ~/.distributed_sqlite/cache */
    uint64_t page_cache_bytes; /* in-memory page cache (64 MiB) */
    uint64_t txn_mem_bytes;    /* txn buffer before spilling (64 MiB) */
    int disk_cache;            /* -1 auto (not for file://), 0, 1 */
    unsigned store_mode;       /* file:// objects' mode (0600) */
    uint64_t disk_cache_bytes; /* bound on the disk cache (1 GiB) */

    /* S3 */
    char *endpoint;           /* owned; AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL */
    const char *endpoint_src; /* static: "-o" or the variable endpoint came
                                 from; NULL if set by the program */
    char *region;             /* owned; AWS_REGION / AWS_DEFAULT_REGION */
    char *access_key;         /* owned; secret-adjacent, never logged */
    char *secret_key;    /* owned; SECRET: zeroed on cleanup, never logged */
    char *session_token; /* owned; SECRET */
    char *profile;       /* owned; AWS_PROFILE */
    char *ca_file;       /* owned, absolute */
    int insecure;        /* skip TLS verification (only on request) */
    int path_style;      /* -1 auto, 0 virtual-hosted, 1 path */
    unsigned connect_timeout_s; /* 10 */
    unsigned request_timeout_s; /* low-speed limit window (30) */
    double store_timeout_s;     /* retrying a store call stops after this
                                   (30; docs/options.md) */

    /* mount */
    int read_only;
    int allow_delete;
    int writeback; /* kernel writeback cache on database files */
    int allow_other;
    double staleness_s; /* 0 = check the store at every read txn */
    unsigned spin_us;   /* FUSE loop: poll the device this long between
                           requests before sleeping (fuse/loop.c); default
                           dsq_config_default_spin_us() */

    /* the daemon's own maintenance (fuse/maint.c) */
    unsigned maint_interval_s;  /* seconds between rounds (3600; 0 off) */
    int orphan_sweep;           /* remove orphans in each round (1) */
    unsigned orphan_grace_s;    /* orphans younger than this stay (86400) */
    unsigned gc_keep;           /* retention: newest versions kept (0 off) */
    unsigned gc_keep_for_s;     /* retention: seconds kept (0 off) */
    unsigned health_interval_s; /* store probe for .dsqlfs/health (30) */
};

/* Defaults only (never fails). */
void dsq_config_init(struct dsq_config *c);

/* spin_us's default: 100 with 2 or more CPUs usable by this process, else
   0 (measured by bench/spin_bench.sh). */
unsigned dsq_config_default_spin_us(void);
void dsq_config_cleanup(struct dsq_config *c);

/* Apply the environment variables (DISTRIBUTED_SQLITE_*, AWS_*). */
dsq_rc dsq_config_load_env(struct dsq_config *c, struct dsq_err *e);

/* Apply one "name=value" (or a bare flag "name"). */
dsq_rc dsq_config_set(struct dsq_config *c, const char *name, const char *value,
                      struct dsq_err *e);

/* Apply a comma-separated "-o" list. */
dsq_rc dsq_config_set_list(struct dsq_config *c, const char *opts,
                           struct dsq_err *e);

/*
 * path made absolute against the current working directory (leading
 * "./" dropped); absolute paths are copied as they are.  Malloc'ed; NULL
 * (errno set) if the directory cannot be named or memory is short.
 */
char *dsq_path_absolute(const char *path);

/* 1 if name is an option this table knows (the mount passes others). */
int dsq_config_known(const char *name);

#endif
