#!/usr/bin/env bash
# A store that is down does not freeze the namespace (docs/mount.md, "A
# slow store"): the mount talks to the S3 server through the fault proxy;
# after one listing of each directory, the proxy answers every request 503
# (SIGUSR1) and then
#  - `ls` of the root and of a subdirectory still lists every database
#    (the last listing, with one log line saying so), corrected by what
#    the mount itself did since that listing: a database it created and
#    committed is there, one it deleted is not (a program that deletes
#    test.db* by a glob and recreates the database must find it),
#  - `stat` of a database already looked up answers with its size,
#  - an operation that needs the store (a new name's lookup) fails with a
#    clear error once the store's retries are spent, not for ever;
# the store comes back (SIGUSR2): a database created meanwhile on another
# mount appears in the next `ls`.  After more databases created here than
# the mount keeps notes of (1024 per directory), a store that is down makes
# `ls` fail rather than answer with the listing that lacks them.
if [ -z "${DSQ_S3_BUCKET:-}" ]; then
    exec bash "$(cd "$(dirname "$0")/../s3" && pwd)/with_rgw.sh" bash "$0" "$@"
fi
export DSQ_IT_STORE=s3
source "$(dirname "$0")/lib.sh"
need_fuse
PROXY=$DSQ_BUILD/tests/chaosproxy
[ -x "$PROXY" ] || fail "build chaosproxy first ($DSQ_BUILD/tests)"
"$PROXY" 127.0.0.1 "$DSQ_S3_PORT" "$T/proxy.port" --permille 0 >"$T/proxy.out" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
for _ in $(seq 1 100); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done
[ -s "$T/proxy.port" ] || fail "the fault proxy did not start"
A=$T/a B=$T/b
# through the proxy, with a short retry budget so refused operations end
mount_store "$A" -o "endpoint=http://127.0.0.1:$(cat "$T/proxy.port"),max_retries=2,retry_base_seconds=0.05,retry_max_seconds=0.2,store_timeout=3,allow_delete"
mount_store "$B"
sq "$B/one.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
sq "$B/app.sqlite3" "CREATE TABLE t(x); INSERT INTO t VALUES (2);"
mkdir -p "$B/sub"
sq "$B/sub/two.db" "CREATE TABLE t(x); INSERT INTO t VALUES (3);"
root_ls=$(ls "$A" | sort | tr '\n' ' ')
eq "$root_ls" "app.sqlite3 one.db sub " "ls of the root with the store up"
eq "$(ls "$A/sub" | tr '\n' ' ')" "two.db " "ls of sub with the store up"
size=$(stat -c %s "$A/one.db")
[ "$size" -gt 0 ] || fail "size of one.db"
# after that listing, and with no listing since: a database made and one
# deleted on A itself
sq "$A/made.db" "CREATE TABLE t(x); INSERT INTO t VALUES (4);"
rm "$A/app.sqlite3"
sq "$A/sub/made2.db" "CREATE TABLE t(x);"
root_ls="made.db one.db sub "

log "the store goes down"
kill -USR1 "$PROXY_PID"
sleep 0.2
eq "$(ls "$A" | sort | tr '\n' ' ')" "$root_ls" "ls of the root while the store is down"
eq "$(ls "$A/sub" | sort | tr '\n' ' ')" "made2.db two.db " "ls of sub while the store is down"
eq "$(stat -c %s "$A/one.db")" "$size" "stat of a known database while the store is down"
grep -q 'answered with the listing of' "$T/a.log" || fail "no log line for a listing answered from the last one"
# a name never seen needs the store: an error, not a hang
if stat "$A/never-seen.db" 2>"$T/stat.err"; then fail "a new name resolved without the store"; fi
log "a new name while the store is down: $(cat "$T/stat.err")"

log "the store comes back"
sq "$B/three.db" "CREATE TABLE t(x);"
kill -USR2 "$PROXY_PID"
sleep 0.2
found=0
for _ in $(seq 1 50); do
    if ls "$A" | grep -qx three.db; then found=1; break; fi
    sleep 0.1
done
eq "$found" 1 "a database created meanwhile appears in ls"

log "more changes since a listing than the mount keeps notes of (1024)"
mkdir "$A/bulk"
eq "$(ls "$A/bulk" | wc -l)" 0 "ls of a new directory"
python3 - "$A/bulk" <<'PY'
import sqlite3, sys
from concurrent.futures import ThreadPoolExecutor
def make(i):
    c = sqlite3.connect("%s/m%04d.db" % (sys.argv[1], i), isolation_level=None)
    c.execute("CREATE TABLE t(x)")
    c.close()
with ThreadPoolExecutor(8) as ex:  # eight at a time: a shorter test
    list(ex.map(make, range(1030)))
PY
kill -USR1 "$PROXY_PID"
sleep 0.2
# the last listing lacks them and no note says so: no answer, not that one
if ls "$A/bulk" >"$T/bulk.ls" 2>"$T/bulk.err"; then
    fail "ls answered with a listing older than 1030 changes of its own ($(wc -l <"$T/bulk.ls") names)"
fi
log "ls of bulk while the store is down: $(cat "$T/bulk.err")"
kill -USR2 "$PROXY_PID"
sleep 0.2
eq "$(ls "$A/bulk" | wc -l)" 1030 "ls of bulk with the store back"
unmount "$A"
unmount "$B"
echo "test_s3_slowstore: ok"
