#!/usr/bin/env bash
# bench/spin_bench.sh [REPS] [SPINS...]: the daemon's spin_us against the
# latency of what SQLite does most through the mount.  For each spin_us
# (default 0 25 100 200) a fresh mount of a file:// store; interleaved
# repetitions (REPS, default 3) of 3000 one-row SELECT read transactions
# and 300 single-row autocommit commits (synchronous=FULL, DELETE journal)
# on one connection, plus each daemon's CPU while idle for 3 s after them
# (must stay 0 ticks: a spinning daemon that never sleeps would show).
# SPIN_LOAD=1 adds one busy loop per CPU (nice 10) to stand for a loaded
# machine.  Prints median and min per setting, µs per transaction.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DSQLFS=${DSQLFS:-$here/../build/dsqlfs}
REPS=${1:-3}
shift || true
SPINS=("$@")
[ ${#SPINS[@]} -gt 0 ] || SPINS=(0 25 100 200)
W=$(mktemp -d /tmp/dsq-spin.XXXXXX)
LOADP=()
cleanup() {
    for p in "${LOADP[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    for s in "${SPINS[@]}"; do fusermount3 -u "$W/m$s" 2>/dev/null || true; done
    sleep 0.3
    rm -rf "$W"
}
trap cleanup EXIT
declare -A PID A
for s in "${SPINS[@]}"; do
    mkdir -p "$W/m$s"
    "$DSQLFS" "file://$W/store$s" "$W/m$s" -f -o spin_us=$s 2>"$W/log$s" &
    PID[$s]=$!
    for _ in $(seq 100); do mountpoint -q "$W/m$s" && break; sleep 0.05; done
done
if [ "${SPIN_LOAD:-0}" = 1 ]; then
    for _ in $(seq "$(nproc)"); do nice -n 10 sh -c 'while :; do :; done' & LOADP+=($!); done
fi
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "cpus $(nproc), load ${SPIN_LOAD:-0}, $REPS repetitions, interleaved"
for r in $(seq "$REPS"); do
    for s in "${SPINS[@]}"; do
        python3 - "$W/m$s/s.db" <<'PY' | sed "s/^/$s /" >> "$W/res"
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
c.execute("INSERT INTO t(v) VALUES ('x')")
c.execute("PRAGMA synchronous=FULL")
for _ in range(200):
    c.execute("SELECT v FROM t WHERE id = 1").fetchone()
t0 = time.perf_counter()
for _ in range(3000):
    c.execute("SELECT v FROM t WHERE id = 1").fetchone()
t1 = time.perf_counter()
for _ in range(300):
    c.execute("INSERT INTO t(v) VALUES ('y')")
t2 = time.perf_counter()
print("select %.1f" % ((t1 - t0) / 3000 * 1e6))
print("commit %.1f" % ((t2 - t1) / 300 * 1e6))
PY
    done
done
# idle: every daemon at once, 3 s, after the workloads (and past the
# maintenance's first round, 10 s after mounting)
sleep $((SECONDS < 12 ? 12 - SECONDS : 1))
for s in "${SPINS[@]}"; do A[$s]=$(ticks "${PID[$s]}"); done
sleep 3
for s in "${SPINS[@]}"; do echo "$s idle $(($(ticks "${PID[$s]}") - A[$s]))" >> "$W/res"; done
printf '%-8s %-22s %-22s %s\n' spin_us "SELECT µs med (min)" "commit µs med (min)" "idle ticks in 3 s"
for s in "${SPINS[@]}"; do
    stat() { awk -v s="$s" -v k="$1" '$1 == s && $2 == k {print $3}' "$W/res" | sort -n |
        awk '{v[NR] = $1} END {printf "%.1f (%.1f)", v[int((NR + 1) / 2)], v[1]}'; }
    idle=$(awk -v s="$s" '$1 == s && $2 == "idle" {print $3}' "$W/res")
    printf '%-8s %-22s %-22s %s\n' "$s" "$(stat select)" "$(stat commit)" "$idle"
done
