#!/usr/bin/env bash
# Real S3 test server: Ceph RADOS Gateway (one mon, one memstore OSD, radosgw)
# running entirely under one directory, on 127.0.0.1.
#
#   tests/s3/rgw.sh install               apt-get the Debian packages if missing
#   tests/s3/rgw.sh start DIR [PORT]      start mon+osd+radosgw; S3 on 127.0.0.1:PORT (7480)
#   tests/s3/rgw.sh mkbucket DIR NAME     create a bucket over S3
#   tests/s3/rgw.sh stop DIR              stop everything started in DIR (idempotent)
#   tests/s3/rgw.sh status DIR            show the daemons and whether S3 answers
#
# After start, `. DIR/env` exports AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_ENDPOINT_URL and AWS_REGION.  See docs/s3-test-server.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
S3REQ="$HERE/s3req.py"
# the system interpreter (ceph-common needs it anyway); a pyenv shim costs ~0.4 s a call
PY=${RGW_PYTHON:-$(command -v /usr/bin/python3 || command -v python3 || true)}

ACCESS_KEY=DSQTESTACCESSKEY
SECRET_KEY=dsqTestSecretKey0123456789abcdefghijklmn   # 40 chars
REGION=us-east-1
S3_USER=dsqtest
PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
START_TIMEOUT=${RGW_START_TIMEOUT:-60}
MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-2147483648}   # 2 GiB cap on the in-RAM store
DAEMONS=(rgw osd mon)                               # stop order

die() { echo "rgw.sh: $*" >&2; exit 1; }
usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- install
have_binaries() {
    command -v ceph-mon && command -v ceph-osd && command -v radosgw &&
        command -v radosgw-admin && command -v ceph && command -v monmaptool
} >/dev/null 2>&1

cmd_install() {
    if have_binaries; then
        echo "rgw.sh: ceph-mon, ceph-osd, radosgw, ceph-common already installed"
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "install needs root (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -y -q -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef
               -o Dpkg::Options::=--force-confold)
    # Refresh the package lists only when apt does not know the packages yet.
    local p need_update=0
    for p in "${PACKAGES[@]}"; do
        if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            need_update=1
        fi
    done
    if [ "$need_update" = 1 ]; then
        "${apt[@]}" update >/dev/null || die "apt-get update failed"
    fi
    if ! "${apt[@]}" install --no-install-recommends "${PACKAGES[@]}" >/tmp/rgw-install.$$.log 2>&1; then
        # The lists may be stale (a package version gone from the mirror).
        "${apt[@]}" update >/dev/null || die "apt-get update failed"
        "${apt[@]}" install --no-install-recommends "${PACKAGES[@]}" >/tmp/rgw-install.$$.log 2>&1 ||
            { tail -n 30 /tmp/rgw-install.$$.log >&2; die "apt-get install failed"; }
    fi
    rm -f /tmp/rgw-install.$$.log
    have_binaries || die "packages installed but binaries missing"
    echo "rgw.sh: installed ${PACKAGES[*]}"
}

# ---------------------------------------------------------------- helpers
abs_dir() { mkdir -p "$1" && (cd "$1" && pwd -P); }
existing_dir() { (cd "$1" 2>/dev/null && pwd -P); }

port_in_use() {   # true when something accepts connections on 127.0.0.1:$1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# PID recorded for daemon $2 in DIR $1, printed only if that process is still
# alive (not a zombie) and is really ours (its command line names DIR).
live_pid() {
    local dir=$1 name=$2 pid state
    [ -f "$dir/run/$name.pid" ] || return 1
    pid=$(cat "$dir/run/$name.pid" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/stat" ] || return 1
    state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ "$state" = Z ] && return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/ceph.conf" || return 1
    echo "$pid"
}

ceph_cli() { timeout "$(remaining)" ceph -c "$DIR/ceph.conf" "$@"; }
remaining() {   # seconds left before the start deadline (at least 1)
    local r=$((DEADLINE - $(date +%s)))
    [ "$r" -ge 1 ] && echo "$r" || echo 1
}

fail_start() {   # message, log to show
    echo "rgw.sh: $1" >&2
    if [ -n "${2:-}" ] && [ -f "$2" ]; then
        echo "---- last lines of $2 ----" >&2
        tail -n 25 "$2" >&2
        echo "----" >&2
    fi
    cmd_stop "$DIR" >/dev/null 2>&1 || true
    exit 1
}

# Run daemon $1 (a name for the pid/log file) in the foreground mode of ceph,
# detached from this shell, recording its PID.
spawn() {
    local name=$1; shift
    setsid "$@" -f </dev/null >>"$DIR/log/$name.out" 2>&1 &
    echo $! >"$DIR/run/$name.pid"
}

# ---------------------------------------------------------------- start
write_conf() {
    local fsid=$1
    cat >"$DIR/ceph.conf" <<CONF
# Generated by tests/s3/rgw.sh: a throw-away single-node cluster.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT]
mon initial members = a
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
pid file = ""
crash dir = $DIR/crash
keyring = /dev/null
# no authentication; the messenger must then use crc mode everywhere,
# otherwise clients never finish the handshake with the monitor
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
ms bind msgr1 = false
ms bind ipv4 = true
ms bind ipv6 = false
public addr = 127.0.0.1
cluster addr = 127.0.0.1
# the OSD (and every other daemon that binds) takes ports from this range only
ms bind port min = $OSD_PORT_MIN
ms bind port max = $OSD_PORT_MAX
# one OSD: pools of size one, few PGs
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
# a fast monitor: start-up goes from ~17 s to a few seconds
paxos propose interval = 0.05
paxos min wait = 0.01
mon osd min down reporters = 1
mon data avail warn = 1
mon data avail crit = 0
log to stderr = false
err to stderr = true
log flush on exit = true
debug ms = 0
mon cluster log to file = false

[mon]
mon data = $DIR/mon
mon allow pool delete = true

[osd]
osd data = $DIR/osd
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd heartbeat grace = 60
osd op num shards = 1
osd op num threads per shard = 2

[client]
rgw data = $DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw thread pool size = 64
rgw enable usage log = false
rgw enable ops log = false
rgw init timeout = 60
# memstore never gets space back until RGW's garbage collector runs
# (normally after about two hours): run it every few seconds instead
rgw gc obj min wait = 5
rgw gc processor period = 5
rgw gc processor max time = 5
CONF
}

cmd_start() {
    [ $# -ge 1 ] || usage
    DIR=$(abs_dir "$1") || die "cannot create $1"
    case $DIR in *[[:space:]]*) die "DIR must not contain white space: $DIR" ;; esac
    PORT=${2:-7480}
    if ! [[ "$PORT" =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1024 ] || [ "$PORT" -gt 65000 ]; then
        die "bad port: $PORT"
    fi
    MON_PORT=$((PORT + 1))
    OSD_PORT_MIN=$((PORT + 2))
    OSD_PORT_MAX=$((PORT + 9))
    have_binaries || die "ceph is not installed: run '$0 install' first"
    [ -n "$PY" ] || die "python3 is needed"
    local n
    for n in "${DAEMONS[@]}"; do
        if pid=$(live_pid "$DIR" "$n"); then
            die "$n is already running in $DIR (pid $pid); run '$0 stop $DIR' first"
        fi
    done
    for n in "$PORT" "$MON_PORT"; do
        port_in_use "$n" && die "port $n on 127.0.0.1 is already in use (ports $PORT-$OSD_PORT_MAX are needed)"
    done

    local t0; t0=$(now)
    DEADLINE=$(( $(date +%s) + START_TIMEOUT ))
    rm -rf "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/run" "$DIR/log" "$DIR/crash" "$DIR/env" "$DIR/monmap"
    mkdir -p "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/run" "$DIR/log" "$DIR/crash"
    local fsid osd_uuid
    fsid=$(cat /proc/sys/kernel/random/uuid)
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    write_conf "$fsid"
    local conf=(-c "$DIR/ceph.conf")

    # monitor
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" \
        >>"$DIR/log/setup.log" 2>&1 || fail_start "monmaptool failed" "$DIR/log/setup.log"
    ceph-mon "${conf[@]}" --mkfs -i a --monmap "$DIR/monmap" >>"$DIR/log/setup.log" 2>&1 ||
        fail_start "ceph-mon --mkfs failed" "$DIR/log/setup.log"
    spawn mon ceph-mon "${conf[@]}" -i a

    # OSD 0: register it with the monitor, make its (in-memory) store, start it
    local id
    id=$(ceph_cli osd new "$osd_uuid" 0 2>>"$DIR/log/setup.log") ||
        fail_start "monitor did not answer ('ceph osd new' failed)" "$DIR/log/mon.a.log"
    [ "$id" = 0 ] || fail_start "unexpected osd id '$id'" "$DIR/log/setup.log"
    ceph-osd "${conf[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/setup.log" 2>&1 ||
        fail_start "ceph-osd --mkfs failed" "$DIR/log/setup.log"
    spawn osd ceph-osd "${conf[@]}" -i 0

    # S3 user with fixed keys (radosgw-admin also creates the zone and pools,
    # before radosgw starts, so the two never race to create them)
    timeout "$(remaining)" radosgw-admin "${conf[@]}" user create --uid="$S3_USER" \
        --display-name="dsqlfs tests" --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" \
        >>"$DIR/log/setup.log" 2>&1 ||
        fail_start "radosgw-admin user create failed or timed out" "$DIR/log/osd.0.log"

    spawn rgw radosgw "${conf[@]}" -n client.rgw

    cat >"$DIR/env" <<ENV
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
export AWS_REGION=$REGION
ENV

    # wait for a signed S3 request (ListBuckets) to succeed
    local out
    while :; do
        if out=$(env_run "$PY" "$S3REQ" GET / 2>&1); then
            break
        fi
        for n in "${DAEMONS[@]}"; do
            live_pid "$DIR" "$n" >/dev/null ||
                fail_start "$n exited during start-up" "$DIR/log/$(logname "$n")"
        done
        [ "$(date +%s)" -lt "$DEADLINE" ] ||
            fail_start "no S3 answer on 127.0.0.1:$PORT after ${START_TIMEOUT}s (last: $(echo "$out" | head -n 1))" \
                "$DIR/log/client.rgw.log"
        sleep 0.1
    done
    echo "rgw.sh: S3 ready at http://127.0.0.1:$PORT in $(elapsed "$t0") s (state in $DIR; '. $DIR/env' for the credentials)"
    cat "$DIR/env"
}

logname() { case $1 in mon) echo mon.a.log ;; osd) echo osd.0.log ;; rgw) echo client.rgw.log ;; esac; }

env_run() {   # run a command with the credentials of $DIR/env
    # shellcheck source=/dev/null
    ( set +u; . "$DIR/env"; "$@" )
}

# ---------------------------------------------------------------- bucket
cmd_mkbucket() {
    [ $# -eq 2 ] || usage
    DIR=$(existing_dir "$1") || die "no such directory: $1"
    [ -f "$DIR/env" ] || die "no server started in $DIR"
    local out
    out=$(env_run "$PY" "$S3REQ" PUT "/$2" 2>&1) || die "creating bucket $2 failed: $out"
}

# ---------------------------------------------------------------- stop
cmd_stop() {
    [ $# -eq 1 ] || usage
    DIR=$(existing_dir "$1") || { echo "rgw.sh: nothing in $1"; return 0; }
    local n pid i rc=0
    for n in "${DAEMONS[@]}"; do
        pid=$(live_pid "$DIR" "$n") || continue
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do      # 10 s, then SIGKILL
            live_pid "$DIR" "$n" >/dev/null || break
            sleep 0.1
        done
        if live_pid "$DIR" "$n" >/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                live_pid "$DIR" "$n" >/dev/null || break
                sleep 0.1
            done
        fi
        if live_pid "$DIR" "$n" >/dev/null; then
            echo "rgw.sh: $n (pid $pid) did not stop" >&2
            rc=1
        fi
    done
    [ "$rc" = 0 ] && echo "rgw.sh: stopped (state in $DIR)"
    return "$rc"
}

# ---------------------------------------------------------------- status
cmd_status() {
    [ $# -eq 1 ] || usage
    DIR=$(existing_dir "$1") || die "no such directory: $1"
    local n pid running=0 rss
    for n in "${DAEMONS[@]}"; do
        if pid=$(live_pid "$DIR" "$n"); then
            rss=$(awk '/^VmRSS/ { printf "%d MiB", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null)
            echo "$n: running (pid $pid, $rss)"
            running=$((running + 1))
        else
            echo "$n: stopped"
        fi
    done
    if grep -hoE 'full status failsafe (engaged|disengaged)' "$DIR/log/osd.0.log" 2>/dev/null |
            tail -n 1 | grep -q engaged; then
        echo "osd: FULL (memstore cap reached: writes hang; raise RGW_MEMSTORE_BYTES)"
    fi
    if [ -f "$DIR/env" ]; then
        local ep
        # shellcheck disable=SC2016
        ep=$(env_run sh -c 'echo "$AWS_ENDPOINT_URL"')
        if env_run "$PY" "$S3REQ" GET / >/dev/null 2>&1; then
            echo "s3: answering at $ep"
        else
            echo "s3: not answering at $ep"
        fi
    fi
    [ "$running" = "${#DAEMONS[@]}" ]
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    start) shift; cmd_start "$@" ;;
    mkbucket) shift; cmd_mkbucket "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    status) shift; cmd_status "$@" ;;
    *) usage ;;
esac
