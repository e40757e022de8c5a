#!/usr/bin/env bash
# Run a command against a fresh real S3 server (Ceph RGW via tests/s3/rgw.sh):
#
#   tests/s3/with_rgw.sh CMD [ARGS...]
#
# Starts radosgw in a temporary directory on a free loopback port (or
# uses the one DSQ_RGW_DIR names, when that one is running), makes a
# bucket, exports AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
# AWS_ENDPOINT_URL / AWS_REGION plus DSQ_S3_BUCKET, DSQ_S3_PORT and
# AWS_EC2_METADATA_DISABLED=true, runs CMD, then stops the server it
# started whatever happens.  Exit status: CMD's.  When the server cannot
# be installed or started: 77 (skip), except under CI=true where that is
# a failure (1).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RGW="$HERE/rgw.sh"

unavailable() {
    if [ "${CI:-}" = true ]; then
        echo "with_rgw.sh: FAIL: $* (CI=true: the real S3 server is required)" >&2
        exit 1
    fi
    echo "with_rgw.sh: SKIP: $*" >&2
    exit 77
}

[ "$#" -ge 1 ] || { echo "usage: with_rgw.sh CMD [ARGS...]" >&2; exit 2; }

# A server already started by the caller (scripts/test.sh exports
# DSQ_RGW_DIR): use it with a fresh bucket, and leave it running.
if [ -n "${DSQ_RGW_DIR:-}" ] && [ -f "$DSQ_RGW_DIR/env" ] &&
    "$RGW" status "$DSQ_RGW_DIR" >/dev/null 2>&1; then
    # shellcheck disable=SC1091
    . "$DSQ_RGW_DIR/env"
    BUCKET="dsq-test-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
    "$RGW" mkbucket "$DSQ_RGW_DIR" "$BUCKET" >/dev/null ||
        unavailable "cannot create bucket $BUCKET"
    PORT=${AWS_ENDPOINT_URL##*:}
    PORT=${PORT%%/*}
    export DSQ_S3_BUCKET="$BUCKET" DSQ_S3_PORT="$PORT" DSQ_S3_DIR="$DSQ_RGW_DIR"
    export AWS_EC2_METADATA_DISABLED=true
    exec "$@"
fi
"$RGW" install >/dev/null 2>&1 || unavailable "cannot install radosgw (rgw.sh install)"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=
for _ in $(seq 1 50); do
    base=$(( 20000 + (RANDOM % 3000) * 10 ))
    ok=1
    for p in $(seq "$base" $((base + 9))); do
        port_free "$p" || { ok=0; break; }
    done
    if [ "$ok" = 1 ]; then PORT=$base; break; fi
done
[ -n "$PORT" ] || unavailable "no free port range for radosgw"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/dsq-rgw-XXXXXX")
cleanup() {
    "$RGW" stop "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "$RGW" start "$DIR" "$PORT" >"$DIR/start.log" 2>&1; then
    cat "$DIR/start.log" >&2
    unavailable "radosgw did not start"
fi
# shellcheck disable=SC1091
. "$DIR/env"
BUCKET="dsq-test-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
"$RGW" mkbucket "$DIR" "$BUCKET" >/dev/null || unavailable "cannot create bucket $BUCKET"
export DSQ_S3_BUCKET="$BUCKET" DSQ_S3_PORT="$PORT" DSQ_S3_DIR="$DIR"
export AWS_EC2_METADATA_DISABLED=true
"$@"
