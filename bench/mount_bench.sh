#!/usr/bin/env bash
# Benchmarks of the mount against local disk (docs/mount.md): a read-heavy
# mix and single-row commit latency, printed with ratios.
#   bench/mount_bench.sh [extra -o options for the mount]
# The store is a local directory; DSQ_BENCH_STORE=s3 uses the real S3
# server instead: run it under tests/s3/with_rgw.sh (or with DSQ_RGW_DIR
# naming a running one), e.g.
#   DSQ_BENCH_STORE=s3 tests/s3/with_rgw.sh bench/mount_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DSQLFS:-$PWD/build/dsqlfs}   # DSQLFS=... compares another build
[ -x "$BIN" ] || scripts/build.sh
D=$(mktemp -d /tmp/dsqlfs-bench.XXXXXX)
mkdir -p "$D/local" "$D/mnt"
cleanup() {
    fusermount3 -u "$D/mnt" 2>/dev/null || true
    sleep 0.3
    rm -rf "$D"
}
trap cleanup EXIT
if [ "${DSQ_BENCH_STORE:-file}" = s3 ]; then
    [ -n "${DSQ_S3_BUCKET:-}" ] || { echo "DSQ_BENCH_STORE=s3: run under tests/s3/with_rgw.sh" >&2; exit 2; }
    STORE="s3://$DSQ_S3_BUCKET/bench-$(basename "$D" | tr 'A-Z.' 'a-z-')"
else
    STORE="file://$D/store"
fi
echo "store: $STORE  options: ${*:-(none)}"
"$BIN" "$STORE" "$D/mnt" -o "cache_dir=$D/cache" "$@"
for _ in $(seq 1 100); do mountpoint -q "$D/mnt" && break; sleep 0.05; done
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
# DSQ_BENCH_PY: another workload over the same mount (bench/wal_bench.sh)
"$PY" "${DSQ_BENCH_PY:-bench/mount_bench.py}" "$D/local" "$D/mnt" ${DSQ_BENCH_ARGS:-}
