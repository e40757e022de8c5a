#!/usr/bin/env bash
# bench/compare.sh: the mount beside the local disk it replaces, as one
# command (issue 9's table): every workload on every target, interleaved
# (repetition r runs each target once before r+1 starts), min, median and
# ratios.  A benchmark, not a test: nothing is asserted on time.
#
#   bench/compare.sh [-q] [-n REPS] [-z SIZE] [-b MB] [-t TARGETS]
#
#   -q          quick: 1 repetition, speedtest1 --size 25, 128 MB
#               transaction (explicit options after -q still win)
#   -n REPS     repetitions (default 3)
#   -z SIZE     speedtest1 --size (default 150)
#   -b MB       the big transaction's size (default 1024; the S3 target
#               writes at most 300: the test server keeps objects in RAM)
#   -t TARGETS  comma list of local, fuse, fusewb, file, filewb, s3, s3wb
#               (default all;
#               s3 starts the real S3 test server through
#               tests/s3/with_rgw.sh unless DSQ_S3_BUCKET is set)
#
# Targets: local disk (a directory under $TMPDIR), libfuse's
# passthrough_ll (a FUSE file system doing no work: the FUSE floor) by
# default and with -o writeback, dsqlfs on file:// and on S3
# (staleness=1), each with page_cache_bytes=64M,txn_mem_bytes=64M (and
# DSQ_BENCH_OPTS, comma-separated -o options, e.g. spin_us=0), and
# each also with dsqlfs's -o writeback (filewb, s3wb).
# Workloads:
#   speedtest1   SQLite's speedtest1 --size SIZE (DELETE journal), wall s
#   select       one one-row SELECT read transaction, µs (speedtest1's
#                tests 410 and 510, as in the issue)
#   commit       one single-row autocommit INSERT, synchronous=FULL, DELETE
#                journal, ms (median of 300 on one connection)
#   bigtxn       one transaction writing -b MB (64 KiB pages, random
#                blobs), MB/s; on dsqlfs also `dsqlfs import` of the same
#                file into a fresh store (MB/s) and the daemon's peak RSS
#                (VmHWM) against page_cache_bytes + txn_mem_bytes + 64 MiB
#
# speedtest1 comes from tests/sqlite/build.sh (Debian's sqlite3 source
# package, built once, cached outside the clone).  passthrough_ll: the one
# tests/sqlite/build.sh builds from Debian's fuse3 source package; or, if
# DSQ_PASSTHROUGH_LL_C names libfuse's example/passthrough_ll.c (e.g. from
# a checkout of github.com/libfuse/libfuse at the tag of the installed
# version: `git show fuse-3.14.0:example/passthrough_ll.c`, with
# passthrough_helpers.h beside it), that file compiled here against the
# installed libfuse3-dev headers.  Its code is never part of this project.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
reps=3 size=150 bigmb=1024 targets=local,fuse,fusewb,file,filewb,s3,s3wb
args=("$@")
while [ $# -gt 0 ]; do
    case $1 in
    -q) reps=1 size=25 bigmb=128; shift ;;
    -n) reps=$2; shift 2 ;;
    -z) size=$2; shift 2 ;;
    -b) bigmb=$2; shift 2 ;;
    -t) targets=$2; shift 2 ;;
    *) sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
IFS=, read -r -a TARGETS <<<"$targets"
for t in "${TARGETS[@]}"; do
    case $t in
    local | fuse | fusewb | file | filewb | s3 | s3wb) ;;
    *) echo "compare.sh: unknown target '$t'" >&2; exit 2 ;;
    esac
done
if [[ ",$targets," == *,s3* ]] && [ -z "${DSQ_S3_BUCKET:-}" ]; then
    # the test server keeps objects in RAM and hangs writes when full:
    # room for three repetitions' imports (the mounts' databases are
    # deleted after each workload, down)
    export RGW_MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-8589934592}
    exec bash tests/s3/with_rgw.sh bash "$0" "${args[@]}"
fi
BIN=${DSQLFS:-$ROOT/build/dsqlfs}
[ -x "$BIN" ] || scripts/build.sh
eval "$(tests/sqlite/build.sh --env)"
SPEED="$DSQ_SQLITE_DIR/speedtest1"

D=$(mktemp -d /tmp/dsqlfs-compare.XXXXXX)
MNT="$D/mnt"
mkdir -p "$MNT"
PTLL="$DSQ_FUSE_DIR/passthrough_ll"
if [ -n "${DSQ_PASSTHROUGH_LL_C:-}" ]; then
    # shellcheck disable=SC2046
    # with passthrough_helpers.h from the same example/ directory
    cc -O2 -Wall -I"$(dirname "$DSQ_PASSTHROUGH_LL_C")" -o "$D/passthrough_ll" \
        "$DSQ_PASSTHROUGH_LL_C" $(pkg-config --cflags --libs fuse3) -lpthread
    PTLL="$D/passthrough_ll"
fi
cleanup() {
    mountpoint -q "$MNT" 2>/dev/null && { fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"; }
    sleep 0.2
    rm -rf "$D"
}
trap cleanup EXIT
MOUNT_OPTS="page_cache_bytes=67108864,txn_mem_bytes=67108864${DSQ_BENCH_OPTS:+,$DSQ_BENCH_OPTS}"
BOUND_KB=$(((64 + 64 + 64) * 1024))

wait_mount() { # wait_mount TARGET
    for _ in $(seq 1 300); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
    echo "compare.sh: mount on $MNT did not come up: $(tail -3 "$D/$1.log" 2>/dev/null)" >&2
    exit 1
}
unmount() {
    for _ in $(seq 1 50); do fusermount3 -u "$MNT" 2>/dev/null && break; sleep 0.1; done
    for _ in $(seq 1 100); do mountpoint -q "$MNT" || return 0; sleep 0.05; done
}
store_of() { # store_of TARGET TAG
    if [ "$1" = s3 ] || [ "$1" = s3wb ]; then
        # each S3 target in a prefix of its own: the bucket is not wiped
        echo "s3://$DSQ_S3_BUCKET/cmp-$(basename "$D" | tr 'A-Z.' 'a-z-')-$1-$2"
    else
        echo "file://$D/src"
    fi
}
# up TARGET TAG: a fresh directory ($DIR), mounted for the FUSE targets;
# the daemon's pid in $DPID, the target in $CUR
up() {
    CUR=$1
    rm -rf "$D/src" "$D/cache"
    mkdir -p "$D/src"
    DPID=
    case $1 in
    local) DIR="$D/src"; return 0 ;;
    fuse) "$PTLL" -f -o "source=$D/src" "$MNT" 2>>"$D/$1.log" & ;;
    fusewb) "$PTLL" -f -o "source=$D/src" -o writeback "$MNT" 2>>"$D/$1.log" & ;;
    file) "$BIN" "$(store_of "$1" "$2")" "$MNT" -f -o "cache_dir=$D/cache,$MOUNT_OPTS" 2>>"$D/$1.log" & ;;
    filewb) "$BIN" "$(store_of "$1" "$2")" "$MNT" -f -o "cache_dir=$D/cache,writeback,$MOUNT_OPTS" 2>>"$D/$1.log" & ;;
    s3) "$BIN" "$(store_of "$1" "$2")" "$MNT" -f -o "cache_dir=$D/cache,staleness=1,allow_delete,$MOUNT_OPTS" 2>>"$D/$1.log" & ;;
    s3wb) "$BIN" "$(store_of "$1" "$2")" "$MNT" -f -o "cache_dir=$D/cache,staleness=1,writeback,allow_delete,$MOUNT_OPTS" 2>>"$D/$1.log" & ;;
    esac
    DPID=$!
    wait_mount "$1"
    DIR=$MNT
}
# down: unmounts; on S3 the workload's databases are deleted first (the
# server's memory is the bench's limit, not what is measured)
down() {
    [ "$DIR" = "$MNT" ] || return 0
    case $CUR in
    s3 | s3wb) rm -f "$MNT"/*.db ;;
    esac
    unmount
}
rec() { echo "$*" >>"$D/results"; }
say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

w_speedtest1() { # TARGET REP
    up "$1" "st-$2"
    local out="$D/st-$1-$2.txt" t0=$EPOCHREALTIME rc=0
    "$SPEED" --size "$size" "$DIR/speed.db" >"$out" 2>&1 || rc=$?
    local secs
    secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
    down
    if [ $rc -ne 0 ] || grep -qi error "$out"; then
        say "$1 speedtest1 FAILED: $(grep -i -m1 error "$out" || tail -1 "$out")"
        return 0
    fi
    rec speedtest1 "$1" "$2" "$secs"
    awk '/^ *(410|510) - [0-9]+ SELECTS/ { n += $3; s += $NF + 0 }
         END { if (n) printf "%.2f\n", s / n * 1e6 }' "$out" |
        while read -r us; do rec select "$1" "$2" "$us"; done
    say "$1 speedtest1 rep $2: ${secs}s"
}

w_commit() { # TARGET REP
    up "$1" "c-$2"
    local ms
    ms=$(python3 - "$DIR/c.db" <<'PY'
import sqlite3, statistics, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA journal_mode=DELETE")
c.execute("PRAGMA synchronous=FULL")
c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
for _ in range(20):
    c.execute("INSERT INTO t(v) VALUES ('warm')")
d = []
for _ in range(300):
    t0 = time.perf_counter()
    c.execute("INSERT INTO t(v) VALUES ('row')")
    d.append(time.perf_counter() - t0)
print("%.3f" % (statistics.median(d) * 1e3))
PY
) || { down; say "$1 commit FAILED"; return 0; }
    down
    rec commit "$1" "$2" "$ms"
    say "$1 commit rep $2: ${ms} ms"
}

w_bigtxn() { # TARGET REP
    local t=$1 mb=$bigmb
    case $t in s3*) [ "$mb" -gt 300 ] && mb=300 ;; esac
    case $t in fuse | fusewb) return 0 ;; esac
    up "$t" "b-$2"
    local t0=$EPOCHREALTIME
    sqlite3 "$DIR/big.db" "PRAGMA page_size=65536; PRAGMA cache_size=-16000;
      PRAGMA journal_mode=DELETE;
      CREATE TABLE b(x BLOB);
      BEGIN;
      WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<$((mb * 16)))
      INSERT INTO b SELECT randomblob(65000) FROM c;
      COMMIT;" >/dev/null
    local secs hwm=0
    secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
    [ -n "$DPID" ] && hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status")
    local bytes
    bytes=$(stat -c %s "$DIR/big.db")
    if [ "$t" != local ]; then
        # the same file through `dsqlfs import` into a fresh store
        sqlite3 "$DIR/big.db" ".backup $D/big-local.db"
        down
        local ist
        ist=$(store_of "$t" "bi-$2")
        case $t in file*) ist="file://$D/imp" ;; esac
        rm -rf "$D/imp"
        local i0=$EPOCHREALTIME
        "$BIN" import "$D/big-local.db" "$ist/big" >/dev/null
        local isecs
        isecs=$(awk -v a="$i0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
        rm -f "$D/big-local.db"
        rm -rf "$D/imp"
        rec import "$t" "$2" "$(awk -v n="$bytes" -v s="$isecs" 'BEGIN { printf "%.1f", n / 1048576 / s }')"
        rec rss "$t" "$2" "$((hwm / 1024))"
    else
        down
    fi
    rec bigtxn "$t" "$2" "$(awk -v n="$bytes" -v s="$secs" 'BEGIN { printf "%.1f", n / 1048576 / s }')"
    say "$t ${mb} MB transaction rep $2: ${secs}s${DPID:+, daemon peak RSS $((hwm / 1024)) MB (bound $((BOUND_KB / 1024)))}"
}

echo "bench/compare.sh: $reps repetition(s), interleaved; speedtest1 --size $size; ${bigmb} MB transaction (S3 at most 300); $(nproc) CPUs; SQLite $(cat "$DSQ_SQLITE_DIR/VERSION"), libfuse $(cat "$DSQ_FUSE_DIR/VERSION"); dsqlfs $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
: >"$D/results"
for rep in $(seq 1 "$reps"); do
    for w in speedtest1 commit bigtxn; do
        for t in "${TARGETS[@]}"; do "w_$w" "$t" "$rep"; done
    done
done

python3 - "$D/results" "$BOUND_KB" "${TARGETS[@]}" <<'EOF'
import statistics, sys
path, bound_kb, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
names = {"local": "local", "fuse": "passthrough_ll", "fusewb": "pt_ll -o writeback",
         "file": "dsqlfs file://", "filewb": "file:// -o writeback",
         "s3": "dsqlfs S3 (st=1)", "s3wb": "S3 -o writeback"}
vals = {}
for line in open(path):
    w, t, rep, v = line.split()
    vals.setdefault((w, t), []).append(float(v))
rows = [("speedtest1", "speedtest1 s"), ("select", "one-row SELECT µs"),
        ("commit", "FULL commit ms"), ("bigtxn", "big txn MB/s"),
        ("import", "dsqlfs import MB/s"), ("rss", "daemon peak RSS MB")]
def cell(w, t):
    v = vals.get((w, t))
    if not v:
        return "-"
    return "%.4g (%.4g)" % (statistics.median(v), min(v) if w not in ("bigtxn", "import") else max(v))
def med(w, t):
    v = vals.get((w, t))
    return statistics.median(v) if v else None
print()
print("median (best) per target; best = min, for MB/s max")
hdr = "%-20s" % "workload" + "".join("%-20s" % names[t] for t in targets)
print(hdr)
for w, label in rows:
    print("%-20s" % label + "".join("%-20s" % cell(w, t) for t in targets))
print()
print("ratios of medians (time: target / reference; MB/s: target / reference)")
def ratio(w, a, b):
    x, y = med(w, a), med(w, b)
    return "%.2f" % (x / y) if x and y else "-"
for t in targets:
    if t == "local":
        continue
    parts = []
    for w, label in rows[:3]:
        parts.append("%s x local %s" % (w, ratio(w, t, "local")))
        if t in ("file", "filewb", "s3", "s3wb"):
            parts.append("%s x pt_ll-wb %s" % (w, ratio(w, t, "fusewb")))
    if t in ("file", "filewb", "s3", "s3wb"):
        b, i = med("bigtxn", t), med("import", t)
        parts.append("bigtxn / import %s" % ("%.2f" % (b / i) if b and i else "-"))
        r = vals.get(("rss", t))
        if r:
            parts.append("peak RSS %d MB, bound %d MB: %s" % (max(r), bound_kb // 1024,
                                                          "within" if max(r) * 1024 <= bound_kb else "OVER"))
    print("%-20s %s" % (names[t], "; ".join(parts)))
EOF
