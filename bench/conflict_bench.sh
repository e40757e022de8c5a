#!/usr/bin/env bash
# Cross-host conflicts against the commits themselves (docs/locking.md,
# "Early conflicts"): two mounts of one store increment one counter N
# times each with busy_timeout = 30 s, beside the baseline of one mount
# making the same 2 x N increments alone (no conflicts), for each kind of
# transaction; prints both times and their ratio.
#   bench/conflict_bench.sh [N]            (default 100)
# DSQ_BENCH_STORE=s3 uses the real S3 server: run it under
# tests/s3/with_rgw.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
BIN=${DSQLFS:-$PWD/build/dsqlfs}   # DSQLFS=... compares another build
[ -x "$BIN" ] || scripts/build.sh
D=$(mktemp -d /tmp/dsqlfs-bench.XXXXXX)
mkdir -p "$D/m1" "$D/m2"
cleanup() {
    fusermount3 -u "$D/m1" 2>/dev/null || true
    fusermount3 -u "$D/m2" 2>/dev/null || true
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
for m in m1 m2; do
    "$BIN" "$STORE" "$D/$m" -o "cache_dir=$D/cache-$m"
    for _ in $(seq 1 100); do mountpoint -q "$D/$m" && break; sleep 0.05; done
done
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
C=tests/integration/counter.py
sqlite3 "$D/m1/c.db" "CREATE TABLE counter(id INTEGER PRIMARY KEY, v INT); INSERT INTO counter VALUES (1, 0);"
echo "store: $STORE, 2 x $N increments, busy_timeout 30 s"
printf '%-11s %12s %14s %8s %10s\n' kind "alone (s)" "2 mounts (s)" ratio conflicts
for mode in immediate deferred autocommit; do
    alone=$("$PY" "$C" "$D/m1/c.db" $((2 * N)) 30000 "$mode" | sed -n 2p)
    t0=$(date +%s.%N)
    "$PY" "$C" "$D/m1/c.db" "$N" 30000 "$mode" > "$D/r1" &
    p1=$!
    "$PY" "$C" "$D/m2/c.db" "$N" 30000 "$mode" > "$D/r2" &
    p2=$!
    wait "$p1" "$p2"
    both=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')
    conflicts=$(( $(head -1 "$D/r1") + $(head -1 "$D/r2") ))
    printf '%-11s %12.2f %14.2f %8.2f %10d\n' "$mode" "$alone" "$both" \
        "$(awk -v a="$both" -v b="$alone" 'BEGIN { print a / b }')" "$conflicts"
done
