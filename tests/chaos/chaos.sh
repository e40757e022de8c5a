#!/usr/bin/env bash
# The chaos test: daemons killed (SIGKILL) at random moments while
# autocommit and multi-statement writers (chaos_writer) loop on two mounts
# of one database; on S3 the mounts talk to the server through the fault
# proxy (chaosproxy: 503/500 answers, connection resets, delays, replies
# dropped after the server applied the request).  Sometimes a writer is
# killed instead, leaving a hot journal.  Then, against the store itself:
# every acknowledged commit is present, nothing that certainly failed or
# was never tried is visible, every multi-row transaction is whole,
# PRAGMA integrity_check is ok through a mount, and `dsqlfs verify` is
# clean.  Bounded and repeatable: the kill schedule, the victims and the
# proxy's faults come from one seed.
#
#   tests/chaos/chaos.sh file|s3 [KILLS] [SEED]
#
# s3 runs under tests/s3/with_rgw.sh.  Defaults: 15 kills, seed 1,
# CHAOS_PERMILLE=60 (faults per thousand requests on S3).  The counts
# table row goes to stdout, and is appended to $CHAOS_REPORT if set;
# CHAOS_KEEP=DIR keeps the writers' logs and the final image there.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
file) export DSQ_IT_STORE=file ;;
s3) export DSQ_IT_STORE=s3 ;;
*) echo "usage: chaos.sh file|s3 [KILLS] [SEED]" >&2; exit 2 ;;
esac
KILLS=${2:-15}
SEED=${3:-1}
PERMILLE=${CHAOS_PERMILLE:-60}
source "$HERE/../integration/lib.sh"
need_fuse
W=$DSQ_BUILD/tests/chaos_writer
PROXY=$DSQ_BUILD/tests/chaosproxy
[ -x "$W" ] && [ -x "$PROXY" ] || fail "build chaos_writer and chaosproxy first ($DSQ_BUILD/tests)"
"$PY" "$HERE/check.py" --selftest || fail "the verdict cannot tell a lost commit from a kept one"
RANDOM=$SEED
mkdir -p "$T/logs"
OPTS="max_retries=8,retry_base_seconds=0.01,retry_max_seconds=0.3"
STORE_ARGS=()
if [ "$IT_S3" = 1 ]; then
    "$PROXY" 127.0.0.1 "$DSQ_S3_PORT" "$T/proxy.port" --seed "$SEED" \
        --permille "$PERMILLE" --delay-max 300 > "$T/proxy.out" 2>&1 &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    for _ in $(seq 1 100); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done
    [ -s "$T/proxy.port" ] || fail "the fault proxy did not start"
    OPTS="$OPTS,endpoint=http://127.0.0.1:$(cat "$T/proxy.port")"
fi
log "chaos on $DSQ_IT_STORE: $KILLS kills, seed $SEED${PROXY_PID:+, $PERMILLE faults per 1000 requests}"

# the schema, through a mount that sees no faults
mount_store "$T/m1"
sq "$T/m1/c.db" "CREATE TABLE a(w TEXT, seq INT, pad BLOB, PRIMARY KEY(w, seq));
  CREATE TABLE m(w TEXT, txn INT, k INT, n INT, pad BLOB, PRIMARY KEY(w, txn, k));"
unmount "$T/m1"
wait_daemons

declare -A DAEMON WRITERS
# DSQ_CHAOS_WAL=1: the database in WAL mode, every writer in WAL mode
if [ "${DSQ_CHAOS_WAL:-0}" = 1 ]; then
    JOURNALS=(wal wal wal)
    mount_store "$T/m1"
    eq "$(sq "$T/m1/c.db" 'PRAGMA journal_mode=WAL')" wal "WAL switch"
    unmount "$T/m1"
    wait_daemons
else
    JOURNALS=(delete truncate persist)
fi
mount_retries=0
chaos_mount() { # chaos_mount m1|m2: a daemon through the proxy (retried:
    # the mount-time store probe may meet a fault too)
    local m=$1 dir=$T/$1
    mkdir -p "$dir"
    for attempt in 1 2 3 4 5 6; do
        echo "=== kill round $kills, attempt $attempt" >> "$T/$m.log"
        "$DSQLFS" "$STORE" "$dir" -f -v -o "$OPTS" >> "$T/$m.log" 2>&1 &
        local d=$!
        disown "$d"
        DAEMONS+=("$d")
        MOUNTS+=("$dir")
        for _ in $(seq 1 200); do
            if grep -q " $dir " /proc/self/mounts; then DAEMON[$m]=$d; return 0; fi
            kill -0 "$d" 2>/dev/null || break
            sleep 0.05
        done
        kill -9 "$d" 2>/dev/null || true
        fusermount3 -uz "$dir" 2>/dev/null || true
        mount_retries=$((mount_retries + 1))
        log "mount of $m failed (attempt $attempt): $(tail -1 "$T/$m.log")"
    done
    fail "could not mount $m"
}
start_writer() { # start_writer m1|m2 auto|multi: prints its pid
    local name="k${kills}${1}${2}$RANDOM"
    "$W" "$T/$1/c.db" "$2" "$name" "${JOURNALS[RANDOM % 3]}" \
        > "$T/logs/$name.log" 2> "$T/logs/$name.err" &
    PIDS+=("$!")
    echo $! > "$T/last.pid"
}
start() { # start m1|m2: a daemon and its two writers
    chaos_mount "$1"
    start_writer "$1" auto
    local a; a=$(cat "$T/last.pid")
    start_writer "$1" multi
    WRITERS[$1]="$a $(cat "$T/last.pid")"
}
stop_writers() { # stop_writers m1|m2: wait for them (the mount is dead)
    local p
    for p in ${WRITERS[$1]}; do
        for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}
restart() { # restart m1|m2 after its daemon died
    stop_writers "$1"
    fusermount3 -uz "$T/$1" 2>/dev/null || true
    for _ in $(seq 1 50); do grep -q " $T/$1 " /proc/self/mounts || break; sleep 0.1; done
    start "$1"
}

kills=0 app_kills=0
start m1
start m2
t0=$(date +%s)
for round in $(seq 1 "$KILLS"); do
    # a random moment: 50 ms .. 1.5 s into the writers' work
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", 0.05 + (r % 1450) / 1000 }')"
    v=$((RANDOM % 10))
    if [ "$v" = 9 ]; then
        # an application killed mid-transaction (a hot journal may stay),
        # replaced by a new writer of the same kind
        m=m$((RANDOM % 2 + 1))
        read -r wa wm <<< "${WRITERS[$m]}"
        if [ $((RANDOM % 2)) = 0 ]; then
            kill -9 "$wa" 2>/dev/null || true; wait "$wa" 2>/dev/null || true
            start_writer "$m" auto; wa=$(cat "$T/last.pid")
        else
            kill -9 "$wm" 2>/dev/null || true; wait "$wm" 2>/dev/null || true
            start_writer "$m" multi; wm=$(cat "$T/last.pid")
        fi
        WRITERS[$m]="$wa $wm"
        app_kills=$((app_kills + 1))
        continue
    fi
    case $v in
    [0-3]) victims="m1" ;;
    [4-7]) victims="m2" ;;
    *) victims="m1 m2" ;;
    esac
    for m in $victims; do kill -9 "${DAEMON[$m]}" 2>/dev/null || true; kills=$((kills + 1)); done
    for m in $victims; do restart "$m"; done
done
elapsed=$(( $(date +%s) - t0 ))
for m in m1 m2; do
    for p in ${WRITERS[$m]}; do kill -TERM "$p" 2>/dev/null || true; done
    stop_writers "$m"
done
unmount "$T/m1"
unmount "$T/m2"
wait_daemons
if [ -n "${PROXY_PID:-}" ]; then
    kill -TERM "$PROXY_PID"
    wait "$PROXY_PID" || true
    log "fault proxy: $(cat "$T/proxy.out")"
fi

# the checks, against the store itself (no proxy)
mount_store "$T/check"
integrity=$(sq "$T/check/c.db" "PRAGMA integrity_check" 2>&1 | head -1)
unmount "$T/check"
wait_daemons
"$DSQLFS" export -q "$STORE/c" "$T/final.db" || fail "export of the final version"
if "$DSQLFS" verify "$STORE/c" > "$T/verify.out" 2>&1; then verify=clean; else verify=FAILED; fi
set +e
counts=$("$PY" "$HERE/check.py" "$T/final.db" "$T"/logs/*.log)
check_rc=$?
set -e
row="store $DSQ_IT_STORE seed $SEED kills $kills app_kills $app_kills mount_retries $mount_retries $counts integrity $integrity verify $verify seconds $elapsed"
echo "$row"
[ -n "${CHAOS_REPORT:-}" ] && echo "$row" >> "$CHAOS_REPORT"
if [ -n "${CHAOS_KEEP:-}" ]; then # keep the evidence (writer logs, the final image)
    mkdir -p "$CHAOS_KEEP"
    cp -r "$T/logs" "$T/final.db" "$T/verify.out" "$CHAOS_KEEP/"
    cp "$T"/*.log "$CHAOS_KEEP/" 2>/dev/null || true
fi
if [ "$integrity" != ok ]; then
    # say which pages and whether the store's image itself is damaged or
    # only what the mount served of it
    echo "integrity_check through a mount (first 20 lines):"
    mount_store "$T/check"
    sq "$T/check/c.db" "PRAGMA integrity_check" 2>&1 | head -20 || true
    unmount "$T/check"
    echo "integrity_check of the exported image: $(sqlite3 "$T/final.db" 'PRAGMA integrity_check' 2>&1 | head -20)"
    fail "integrity_check: $integrity"
fi
[ "$verify" = clean ] || fail "verify: $(tail -3 "$T/verify.out")"
[ "$check_rc" = 0 ] || fail "acknowledged commits lost, phantoms or partial transactions (above)"
echo "chaos ($DSQ_IT_STORE): ok"
