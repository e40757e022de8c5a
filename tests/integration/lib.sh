# lib.sh - shared by the FUSE integration tests (sourced, not run).
#
# Every test gets a private temporary directory ($T), a store, and
# cleanup in an EXIT trap that unmounts every mount and kills every daemon
# it started, even on failure.  Exit 77 = skipped, only when CI is unset;
# with CI=true a missing /dev/fuse (or S3 server) is a failure.
#
# The store: DSQ_IT_STORE=file (default) is a directory in $T;
# DSQ_IT_STORE=s3 is a fresh random prefix of the bucket that
# tests/s3/with_rgw.sh made (DSQ_S3_BUCKET and the AWS_* variables it
# exports reach every daemon and CLI call through the environment).
# $IT_S3 is 1 on S3, for the few steps that only make sense on one store.
set -euo pipefail

DSQLFS=${DSQLFS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/dsqlfs}
DSQ_BUILD=${DSQ_BUILD:-$(dirname "$DSQLFS")}
T=$(mktemp -d /tmp/dsqlfs-it.XXXXXX)
IT_S3=0
case "${DSQ_IT_STORE:-file}" in
file) STORE="file://$T/store" ;;
s3)
    if [ -z "${DSQ_S3_BUCKET:-}" ] || [ -z "${AWS_ENDPOINT_URL:-}" ]; then
        rm -rf "$T"
        if [ "${CI:-}" = true ]; then
            echo "FAIL: DSQ_IT_STORE=s3 without a server (run under tests/s3/with_rgw.sh)" >&2
            exit 1
        fi
        echo "skip: DSQ_IT_STORE=s3 without a server (run under tests/s3/with_rgw.sh)" >&2
        exit 77
    fi
    IT_S3=1
    STORE="s3://$DSQ_S3_BUCKET/it-$(basename "$T" | tr 'A-Z.' 'a-z-')-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
    ;;
*) echo "FAIL: DSQ_IT_STORE must be file or s3, not '$DSQ_IT_STORE'" >&2; rm -rf "$T"; exit 1 ;;
esac
# the engine's local cache and spill files (the disk cache is on by
# default for s3://) go into $T, never into ~/.distributed_sqlite
export DISTRIBUTED_SQLITE_CACHE_DIR="$T/cache"
MOUNTS=()
PIDS=()

# Debian's python3 (its sqlite3 module, SQLAlchemy, Alembic), not a shim
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

log() { echo "[$(date +%T)] $*" >&2; }
fail() { echo "FAIL: $*" >&2; exit 1; }

cleanup() {
    local rc=$?
    set +e
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    for m in "${MOUNTS[@]:-}"; do
        [ -n "$m" ] || continue
        if mountpoint -q "$m" 2>/dev/null; then
            fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
        fi
    done
    for p in "${DAEMONS[@]:-}"; do
        [ -n "$p" ] || continue
        for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$p" 2>/dev/null
    done
    if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -30 "$f" >&2; }; done
    fi
    for f in "${RM_AFTER[@]:-}"; do [ -n "$f" ] && rm -f "$f"; done
    rm -rf "$T"
    exit $rc
}
DAEMONS=()
RM_AFTER=()
trap cleanup EXIT

need_fuse() {
    if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
        if [ "${CI:-}" = true ]; then fail "/dev/fuse or fusermount3 missing"; fi
        echo "skip: no /dev/fuse" >&2
        exit 77
    fi
}

# mount_store DIR [opts...]: mount $STORE on DIR in the foreground
# (background job), wait until it answers; daemon pid in $LAST_DAEMON.
mount_store() {
    local dir=$1; shift
    mkdir -p "$dir"
    local logf="$T/$(basename "$dir").log"
    # DSQ_IT_MOUNT_OPTS: options every mount of the test gets (the
    # writeback variants of a test run it with "-o writeback")
    # shellcheck disable=SC2086
    "$DSQLFS" "$STORE" "$dir" -f ${DSQ_IT_DEBUG:--v} ${DSQ_IT_MOUNT_OPTS:-} "$@" >>"$logf" 2>&1 &
    LAST_DAEMON=$!
    disown "$LAST_DAEMON"
    DAEMONS+=("$LAST_DAEMON")
    MOUNTS+=("$dir")
    for _ in $(seq 1 100); do
        if mountpoint -q "$dir"; then return 0; fi
        kill -0 "$LAST_DAEMON" 2>/dev/null || fail "daemon for $dir exited: $(tail -3 "$logf")"
        sleep 0.05
    done
    fail "mount of $dir did not come up"
}

# unmount DIR: fusermount3 -u and wait for the daemon to exit.
unmount() {
    local dir=$1
    for _ in $(seq 1 50); do
        fusermount3 -u "$dir" 2>/dev/null && break
        sleep 0.1
    done
    for _ in $(seq 1 100); do
        mountpoint -q "$dir" || break
        sleep 0.05
    done
    mountpoint -q "$dir" && fail "could not unmount $dir"
    return 0
}

# wait_daemons: wait for every daemon started to have exited (after unmount)
wait_daemons() {
    for p in "${DAEMONS[@]:-}"; do
        [ -n "$p" ] || continue
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    done
}

sq() { # sq DB SQL...: the sqlite3 shell with a timeout
    local db=$1; shift
    timeout 60 sqlite3 -bail "$db" "$@"
}

eq() { # eq ACTUAL EXPECTED WHAT
    [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}
