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
