#!/usr/bin/env bash
# Smoke test of the real S3 test server: start it in a temporary directory,
# check the S3 behaviour dsqlfs relies on, stop it, check nothing is left.
#   tests/s3/smoke.sh [PORT]        (needs 'tests/s3/rgw.sh install' first)
# Exits non-zero on any failure, naming what failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RGW="$HERE/rgw.sh"
PY=${RGW_PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
PORT=${1:-7480}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/dsqlfs-s3-smoke.XXXXXX")
passed=0
failed=0

cleanup() {
    "$RGW" stop "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT

ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

s3() { "$PY" "$HERE/s3req.py" "$@"; }
# expect STATUS DESCRIPTION s3req-args...: checks the first line of the output
expect() {
    local want=$1 what=$2 out; shift 2
    out=$(s3 "$@" 2>&1)
    if [ "$(head -n 1 <<<"$out")" = "HTTP $want" ]; then
        ok "$what"
        LAST=$out
        return 0
    fi
    bad "$what: wanted HTTP $want, got: $(head -c 400 <<<"$out")"
    LAST=$out
    return 1
}
body() { tail -n +2 <<<"$LAST"; }

t0=$(date +%s.%N)
if ! "$RGW" start "$DIR" "$PORT" >/dev/null; then
    echo "FAIL: rgw.sh start"
    echo "0 passed, 1 failed"
    exit 1
fi
set -a
# shellcheck source=/dev/null
. "$DIR/env"
set +a
bucket=smoke-$$-$RANDOM
if "$RGW" mkbucket "$DIR" "$bucket"; then ok "mkbucket $bucket"; else bad "mkbucket $bucket"; fi

data="hello, dsqlfs $(date +%s.%N)"
expect 200 "PUT object" PUT "/$bucket/dir/obj 1" -d "$data"
t1=$(date +%s.%N)
echo "start to first PUT: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
if expect 200 "GET object" GET "/$bucket/dir/obj 1"; then
    if [ "$(body)" = "$data" ]; then ok "GET returns what was PUT"; else bad "GET body '$(body)' != '$data'"; fi
fi
expect 200 "HEAD object" HEAD "/$bucket/dir/obj 1"

expect 412 "PUT If-None-Match: * on an existing key" \
    PUT "/$bucket/dir/obj 1" -H "If-None-Match: *" -d "other"
expect 200 "PUT If-None-Match: * on a new key" \
    PUT "/$bucket/dir/obj 2" -H "If-None-Match: *" -d "new"
if expect 200 "GET after the refused conditional PUT" GET "/$bucket/dir/obj 1"; then
    if [ "$(body)" = "$data" ]; then ok "object unchanged by the refused PUT"; else bad "object changed by a refused conditional PUT: '$(body)'"; fi
fi

LAST=$(AWS_SECRET_ACCESS_KEY=not-the-secret s3 GET "/$bucket/dir/obj 1" 2>&1)
if [ "$(head -n 1 <<<"$LAST")" = "HTTP 403" ] && grep -q SignatureDoesNotMatch <<<"$LAST"; then
    ok "wrong secret: 403 SignatureDoesNotMatch"
else
    bad "wrong secret: wanted 403 SignatureDoesNotMatch, got: $(head -c 400 <<<"$LAST")"
fi

if expect 206 "ranged GET" GET "/$bucket/dir/obj 1" -H "Range: bytes=7-12"; then
    if [ "$(body)" = "${data:7:6}" ]; then ok "ranged GET body"; else bad "ranged GET body '$(body)' != '${data:7:6}'"; fi
fi

if expect 200 "LIST with prefix" LIST "$bucket" -q prefix=dir/; then
    n=$(body | grep -o '<Key>[^<]*</Key>' | wc -l)
    if [ "$n" = 2 ]; then ok "LIST finds both keys"; else bad "LIST found $n keys, wanted 2: $(body)"; fi
fi
expect 204 "DELETE object" DELETE "/$bucket/dir/obj 2"
expect 404 "GET deleted object" GET "/$bucket/dir/obj 2"

if "$RGW" stop "$DIR" >/dev/null; then ok "stop"; else bad "stop"; fi
left=""
for c in /proc/[0-9]*/cmdline; do
    pid=${c#/proc/}; pid=${pid%/cmdline}
    cmd=$(tr '\0' ' ' 2>/dev/null <"$c") || continue
    case $cmd in *"$DIR/"*) ;; *) continue ;; esac
    state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    if [ -n "$state" ] && [ "$state" != Z ]; then left="$left $pid(${cmd:0:60})"; fi
done
if [ -z "$left" ]; then ok "no process left running from $DIR"; else bad "processes left running: $left"; fi
if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then ok "port $PORT closed"; else bad "port $PORT still answers"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
