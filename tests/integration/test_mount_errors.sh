#!/usr/bin/env bash
# What applications see when the store cannot give a page
# (docs/errors.md): a stored object that fails its checksum, a missing
# object, and a store that is down each reach SQLite as "disk I/O error"
# (SQLITE_IOERR_READ), never as "database disk image is malformed" (what
# SQLite makes of EIO on a read); the daemon's log names the object and
# the cause.  A damaged local cache copy that is fetched again and served
# right is logged as a cache repair, not as a corrupt store object.
source "$(dirname "$0")/lib.sh"
need_fuse
M=$T/mnt
mount_store "$M"
sq "$M/e.db" "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<300)
  INSERT INTO t SELECT i, randomblob(1500) FROM c;"
want=$(sq "$M/e.db" "SELECT sum(length(b)) FROM t")
unmount "$M"
wait_daemons

read_all() { # read_all LOGNAME: a fresh mount reads every row; prints sqlite3's stderr
    : > "$T/mnt.log"
    mount_store "$M" "$@"
    timeout 60 sqlite3 "$M/e.db" "SELECT sum(length(b)) FROM t" 2>&1 >/dev/null || true
    unmount "$M"
    wait_daemons
}

expect_ioerr() { # expect_ioerr WHAT OUTPUT LOGPATTERN
    case $2 in
    *"malformed"*) fail "$1: SQLite says the database is malformed: $2" ;;
    *"disk I/O error"*) ;;
    *) fail "$1: not an I/O error: '$2'" ;;
    esac
    grep -q "$3" "$T/mnt.log" || fail "$1: the log does not say '$3': $(tail -5 "$T/mnt.log")"
    log "$1: $2"
}

if [ "$IT_S3" = 0 ]; then
    S=${STORE#file://}
    seg=$(ls -S "$S"/e/segments/*.seg | head -1)
    cp "$seg" "$T/seg.keep"
    # a damaged object: bytes in the middle of its page data changed
    printf 'damage!' | dd of="$seg" bs=1 seek=$(( $(stat -c %s "$seg") / 2 )) conv=notrunc 2>/dev/null
    read_all > "$T/out"
    out=$(cat "$T/out")
    expect_ioerr "a damaged segment" "$out" "segments/$(basename "$seg").*checksum"
    cp "$T/seg.keep" "$seg"
    # a missing object
    mv "$seg" "$T/seg.away"
    read_all > "$T/out"
    out=$(cat "$T/out")
    expect_ioerr "a missing segment" "$out" "segments/$(basename "$seg") is missing"
    mv "$T/seg.away" "$seg"
fi

if [ "$IT_S3" = 1 ]; then
    # a store that is down: the mount talks to it through the fault proxy,
    # which answers 503 to everything once told (SIGUSR1); the pages the
    # next reader wants are in no cache (disk cache off, a fresh daemon)
    PROXY=$DSQ_BUILD/tests/chaosproxy
    "$PROXY" 127.0.0.1 "$DSQ_S3_PORT" "$T/proxy.port" > "$T/proxy.out" 2>&1 &
    PIDS+=("$!")
    proxy=$!
    for _ in $(seq 1 100); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done
    [ -s "$T/proxy.port" ] || fail "the fault proxy did not start"
    : > "$T/mnt.log"
    # staleness: the read transaction does not ask for the head, so what
    # fails is the page read itself
    mount_store "$M" -o "endpoint=http://127.0.0.1:$(cat "$T/proxy.port"),disk_cache=0,staleness=3600,max_retries=2,retry_base_seconds=0.01,retry_max_seconds=0.05"
    sq "$M/e.db" "SELECT count(*) FROM sqlite_master" >/dev/null
    kill -USR1 "$proxy"
    sleep 0.2
    out=$(timeout 60 sqlite3 "$M/e.db" "SELECT sum(length(b)) FROM t" 2>&1 >/dev/null || true)
    kill -USR2 "$proxy"
    unmount "$M"
    wait_daemons
    expect_ioerr "a store that is down" "$out" "transient\|503\|SlowDown"
fi

# the disk cache: filled by one mount, damaged, the next mount repairs it
C=$T/dcache
mount_store "$M" -o "disk_cache=1,cache_dir=$C"
eq "$(sq "$M/e.db" "SELECT sum(length(b)) FROM t")" "$want" "read filling the cache"
unmount "$M"
wait_daemons
n=0
for f in $(find "$C" -type f -size +8k); do
    dd if=/dev/urandom of="$f" bs=1 count=2000 seek=3000 conv=notrunc 2>/dev/null
    n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "nothing in the disk cache to damage"
: > "$T/mnt.log"
mount_store "$M" -o "disk_cache=1,cache_dir=$C"
eq "$(sq "$M/e.db" "SELECT sum(length(b)) FROM t")" "$want" "read through a damaged cache"
eq "$(sq "$M/e.db" "PRAGMA integrity_check")" ok "integrity through a damaged cache"
unmount "$M"
wait_daemons
grep -q "cache.*repaired" "$T/mnt.log" || fail "no cache repair logged: $(tail -5 "$T/mnt.log")"
if grep -q "corrupt" "$T/mnt.log"; then
    fail "a damaged cache copy was logged as corruption: $(grep corrupt "$T/mnt.log" | head -2)"
fi
log "cache repair: $(grep -c 'repaired' "$T/mnt.log") line(s)"
"$DSQLFS" verify "$STORE/e" >/dev/null || fail "verify"
echo "test_mount_errors: ok"
