#!/usr/bin/env bash
# SQLite's speedtest1 on local disk, on libfuse's passthrough_ll (the FUSE
# floor: a FUSE file system doing no work; default and -o writeback) and
# on dsqlfs, side by side in one run, interleaved, with ratios.
#
#   bench/sqlite_bench.sh [-n REPS] [-z SIZE] [-t TARGETS] [-- SPEEDTEST1 OPTIONS]
#
#   -n REPS     repetitions of every target (default 3)
#   -z SIZE     speedtest1 --size (default 150)
#   -t TARGETS  comma list of local, fuse, fusewb, file, s3
#               (default local,fuse,fusewb,file; s3 needs the S3 test
#               server: run under tests/s3/with_rgw.sh)
#   DSQ_BENCH_MOUNT_OPTS  extra -o options for the dsqlfs mounts
#
# speedtest1 and passthrough_ll come from tests/sqlite/build.sh (built once
# from Debian's source packages, cached outside the clone).  Every run
# gets a fresh directory or mount and a fresh database file.  Printed per
# target: min and median wall time, the median time per one-row SELECT
# (speedtest1's tests 410 and 510), and ratios to local disk and to
# passthrough_ll -o writeback.  A benchmark, not a test: nothing is
# asserted on time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
reps=3 size=150 targets=local,fuse,fusewb,file
while [ $# -gt 0 ]; do
    case $1 in
    -n) reps=$2; shift 2 ;;
    -z) size=$2; shift 2 ;;
    -t) targets=$2; shift 2 ;;
    --) shift; break ;;
    *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
EXTRA=("$@")
BIN=${DSQLFS:-$ROOT/build/dsqlfs}
IFS=, read -r -a TARGETS <<<"$targets"
for t in "${TARGETS[@]}"; do
    case $t in
    local | fuse | fusewb) ;;
    file | s3) [ -x "$BIN" ] || scripts/build.sh ;;
    *) echo "sqlite_bench.sh: unknown target '$t'" >&2; exit 2 ;;
    esac
    if [ "$t" = s3 ] && [ -z "${DSQ_S3_BUCKET:-}" ]; then
        echo "sqlite_bench.sh: target s3: run under tests/s3/with_rgw.sh" >&2; exit 2
    fi
done
eval "$(tests/sqlite/build.sh --env)"
SPEED="$DSQ_SQLITE_DIR/speedtest1"
PTLL="$DSQ_FUSE_DIR/passthrough_ll"

D=$(mktemp -d /tmp/dsqlfs-sqlbench.XXXXXX)
MNT="$D/mnt"
mkdir -p "$MNT"
cleanup() {
    mountpoint -q "$MNT" 2>/dev/null && { fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"; }
    sleep 0.2
    rm -rf "$D"
}
trap cleanup EXIT

wait_mount() {
    for _ in $(seq 1 100); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
    echo "sqlite_bench.sh: mount on $MNT did not come up" >&2
    exit 1
}
unmount() {
    for _ in $(seq 1 50); do fusermount3 -u "$MNT" 2>/dev/null && break; sleep 0.1; done
    for _ in $(seq 1 100); do mountpoint -q "$MNT" || return 0; sleep 0.05; done
}

run_one() { # run_one TARGET REP: one speedtest1 run; appends to $D/results
    local t=$1 rep=$2 dir out
    rm -rf "$D/src" "$D/cache"
    mkdir -p "$D/src"
    case $t in
    local) dir="$D/src" ;;
    fuse | fusewb)
        local wb=()
        [ "$t" = fusewb ] && wb=(-o writeback)
        "$PTLL" -f -o "source=$D/src" "${wb[@]}" "$MNT" 2>"$D/$t.log" &
        wait_mount
        dir=$MNT
        ;;
    file | s3)
        local store="file://$D/src"
        [ "$t" = s3 ] && store="s3://$DSQ_S3_BUCKET/sqlbench-$(basename "$D" | tr 'A-Z.' 'a-z-')-$rep"
        "$BIN" "$store" "$MNT" -f -o "cache_dir=$D/cache${DSQ_BENCH_MOUNT_OPTS:+,$DSQ_BENCH_MOUNT_OPTS}" 2>"$D/$t.log" &
        wait_mount
        dir=$MNT
        ;;
    esac
    out="$D/out-$t-$rep.txt"
    local t0=$EPOCHREALTIME rc=0
    "$SPEED" --size "$size" "${EXTRA[@]}" "$dir/speed.db" >"$out" 2>&1 || rc=$?
    local secs
    secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
    [ "$dir" = "$MNT" ] && unmount
    if [ $rc -ne 0 ] || grep -qi 'error' "$out"; then
        echo "$t $rep FAIL $(grep -i -m1 'error' "$out" || tail -1 "$out")" >>"$D/results"
    else
        # one-row SELECTs: tests 410 and 510 ("N SELECTS on ...   S.SSSs")
        local sel
        sel=$(awk '/^ *(410|510) - [0-9]+ SELECTS/ { n += $3; s += $NF + 0 }
                   END { if (n) printf "%.2f", s / n * 1e6; else print "-" }' "$out")
        echo "$t $rep $secs $sel" >>"$D/results"
    fi
    printf '[%s] %-7s rep %s: %ss\n' "$(date +%T)" "$t" "$rep" "$secs" >&2
}

echo "speedtest1 --size $size ${EXTRA[*]} ($reps repetitions, interleaved; SQLite $(cat "$DSQ_SQLITE_DIR/VERSION"), libfuse $(cat "$DSQ_FUSE_DIR/VERSION"))"
for rep in $(seq 1 "$reps"); do
    for t in "${TARGETS[@]}"; do run_one "$t" "$rep"; done
done

python3 - "$D/results" "${TARGETS[@]}" <<'EOF'
import statistics, sys
path, targets = sys.argv[1], sys.argv[2:]
names = {"local": "local disk", "fuse": "passthrough_ll", "fusewb": "passthrough_ll -o writeback",
         "file": "dsqlfs file://", "s3": "dsqlfs S3"}
runs = {t: [] for t in targets}
sel = {t: [] for t in targets}
fails = []
for line in open(path):
    f = line.split()
    if f[2] == "FAIL":
        fails.append("%s rep %s: %s" % (names[f[0]], f[1], " ".join(f[3:])))
        continue
    runs[f[0]].append(float(f[2]))
    if f[3] != "-":
        sel[f[0]].append(float(f[3]))
med = {t: statistics.median(v) for t, v in runs.items() if v}
print("%-28s %8s %8s %12s %8s %10s" % ("target", "min s", "median s", "SELECT us", "x local", "x fuse-wb"))
for t in targets:
    if t not in med:
        print("%-28s %8s" % (names[t], "failed"))
        continue
    r_local = "%.2f" % (med[t] / med["local"]) if "local" in med else "-"
    r_wb = "%.2f" % (med[t] / med["fusewb"]) if "fusewb" in med else "-"
    s = "%.1f" % statistics.median(sel[t]) if sel[t] else "-"
    print("%-28s %8.2f %8.2f %12s %8s %10s" % (names[t], min(runs[t]), med[t], s, r_local, r_wb))
for f in fails:
    print("failed: " + f)
EOF
