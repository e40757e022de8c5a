#!/usr/bin/env bash
# The S3 benchmark (bench/s3_bench.py): dsqlfs on the real S3 test server
# with the raw requests to the same server measured side by side.
#   bench/s3_bench.sh            BENCH_GB=1 (cold-open database size),
#                                BENCH_COMMITS=300
# Starts its own server (tests/s3/with_rgw.sh, with room for the database
# in its memory store) unless DSQ_RGW_DIR names a running one.  The machine
# should be otherwise idle: the figures are timings.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/dsqlfs ] && [ -x build/bench/bench_raw ] || scripts/build.sh
export DSQLFS=${DSQLFS:-$PWD/build/dsqlfs}
export BENCH_RAW=$PWD/build/bench/bench_raw
export RGW_MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-8589934592}
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
exec tests/s3/with_rgw.sh "$PY" bench/s3_bench.py
