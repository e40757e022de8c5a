#!/usr/bin/env bash
# WAL mode on the mount against WAL mode on local disk (docs/wal.md): a
# read mix, single-row commits (synchronous FULL and NORMAL), reads while
# a writer commits; interleaved DSQ_BENCH_REPS times (3), min/median and
# ratios.  The mount and the store are mount_bench.sh's:
#   bench/wal_bench.sh [extra -o options for the mount]
#   DSQ_BENCH_STORE=s3 tests/s3/with_rgw.sh bench/wal_bench.sh
cd "$(dirname "$0")/.."
DSQ_BENCH_PY=bench/wal_bench.py DSQ_BENCH_ARGS=${DSQ_BENCH_REPS:-3} exec bench/mount_bench.sh "$@"
