#!/usr/bin/env bash
# Benchmarks of the mount against local disk (docs/mount.md): a read-heavy
# mix and single-row commit latency, printed with ratios.
#   bench/mount_bench.sh [extra -o options for the mount]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/build/dsqlfs
[ -x "$BIN" ] || scripts/build.sh
D=$(mktemp -d /tmp/dsqlfs-bench.XXXXXX)
mkdir -p "$D/local" "$D/mnt"
cleanup() {
    fusermount3 -u "$D/mnt" 2>/dev/null || true
    sleep 0.3
    rm -rf "$D"
}
trap cleanup EXIT
"$BIN" "file://$D/store" "$D/mnt" "$@"
for _ in $(seq 1 100); do mountpoint -q "$D/mnt" && break; sleep 0.05; done
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
"$PY" bench/mount_bench.py "$D/local" "$D/mnt"
