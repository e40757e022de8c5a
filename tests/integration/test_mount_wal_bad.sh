#!/usr/bin/env bash
# WAL mode fed bad input (docs/wal.md, "Opening"): a -wal copied in with a
# frame whose checksum does not match, one cut short in the middle of a
# frame, one whose header is not a WAL header, and a -shm full of garbage.
# Each ends as the same files end on local disk: the mount shows what
# SQLite's own recovery of that -wal shows there, the store gains a
# version only for frames SQLite would replay, the other mount sees the
# same, and verify is clean.  Never a commit of data SQLite did not commit.
source "$(dirname "$0")/lib.sh"
need_fuse
A=$T/a
B=$T/b
mount_store "$A"
mount_store "$B"
nversions() { "$DSQLFS" versions "$STORE/$1" | tail -n +2 | wc -l; }

# A -wal made by the real SQLite on local disk over the stored image:
# rows 2 (one transaction) and 3 (another), copied while the writer keeps
# it open (no checkpoint), then the writer exits without closing.
make_wal() { # make_wal NAME -> $T/NAME.db (the image) and $T/NAME.db-wal
    "$DSQLFS" export "$STORE/$1" "$T/$1.db" -q
    "$PY" - "$T/$1.db" <<'PY'
import os, shutil, sqlite3, sys
db = sys.argv[1]
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("INSERT INTO t VALUES (2)")
c.execute("INSERT INTO t VALUES (3)")
shutil.copy(db + "-wal", db + "-wal.copy")
os._exit(0)
PY
    mv "$T/$1.db-wal.copy" "$T/$1.db-wal"
    rm -f "$T/$1.db-shm"
}
# what SQLite on local disk recovers from the image and a -wal
local_rows() { # local_rows NAME WALFILE
    rm -rf "$T/ref"; mkdir "$T/ref"
    cp "$T/$1.db" "$T/ref/r.db"; cp "$2" "$T/ref/r.db-wal"
    sqlite3 "$T/ref/r.db" 'SELECT group_concat(x) FROM (SELECT x FROM t ORDER BY x)'
}
new_db() { # new_db NAME: one row, WAL mode, closed
    sq "$A/$1.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1); PRAGMA journal_mode=WAL;" >/dev/null
}
# page size 4096: frame k starts at 32 + (k-1) * 4120
frame_off() { echo $((32 + ($1 - 1) * 4120)); }
nframes() { echo $((($(stat -c %s "$1") - 32) / 4120)); }

check() { # check NAME WALFILE WHAT: copy it in, open, compare
    local name=$1 wal=$2 what=$3
    local want; want=$(local_rows "$name" "$wal")
    local v0; v0=$(nversions "$name")
    cp "$wal" "$A/$name.db-wal"
    eq "$(sq "$A/$name.db" 'SELECT group_concat(x) FROM (SELECT x FROM t ORDER BY x)')" "$want" "$what: rows on the mount (as local disk recovers them)"
    eq "$(sq "$B/$name.db" 'SELECT group_concat(x) FROM (SELECT x FROM t ORDER BY x)')" "$want" "$what: rows on the other mount"
    local added=$(($(nversions "$name") - v0))
    if [ "$want" = 1 ]; then
        eq "$added" 0 "$what: versions added"
    else
        eq "$added" 1 "$what: versions added"
    fi
    eq "$(sq "$A/$name.db" 'PRAGMA integrity_check')" ok "$what: integrity"
}

log "a valid -wal copied in is recovered as SQLite recovers it"
new_db good
make_wal good
eq "$(local_rows good "$T/good.db-wal")" "1,2,3" "the reference recovery"
check good "$T/good.db-wal" "valid -wal"

log "a frame with a bad checksum: only the transactions before it"
new_db cks
make_wal cks
n=$(nframes "$T/cks.db-wal")
# one byte of the last frame's page: its checksum no longer matches
printf '\x5a' | dd of="$T/cks.db-wal" bs=1 seek=$(($(frame_off "$n") + 24 + 2000)) conv=notrunc status=none
eq "$(local_rows cks "$T/cks.db-wal")" "1,2" "the reference recovery"
check cks "$T/cks.db-wal" "bad checksum"

log "a frame whose salt is not the header's"
new_db salt
make_wal salt
n=$(nframes "$T/salt.db-wal")
printf '\xff\xff\xff\xff' | dd of="$T/salt.db-wal" bs=1 seek=$(($(frame_off "$n") + 8)) conv=notrunc status=none
eq "$(local_rows salt "$T/salt.db-wal")" "1,2" "the reference recovery"
check salt "$T/salt.db-wal" "bad salt"

log "a -wal cut short in the middle of its last frame"
new_db cut
make_wal cut
n=$(nframes "$T/cut.db-wal")
truncate -s $(($(frame_off "$n") + 1000)) "$T/cut.db-wal"
eq "$(local_rows cut "$T/cut.db-wal")" "1,2" "the reference recovery"
check cut "$T/cut.db-wal" "truncated -wal"

log "a -wal whose header is not a WAL header: nothing to recover"
new_db hdr
make_wal hdr
printf 'garbage!' | dd of="$T/hdr.db-wal" bs=1 seek=0 conv=notrunc status=none
eq "$(local_rows hdr "$T/hdr.db-wal")" "1" "the reference recovery"
check hdr "$T/hdr.db-wal" "bad header"

log "a -shm written by something else while nobody has it open"
new_db shm
head -c 32768 /dev/urandom > "$A/shm.db-shm"
eq "$(sq "$A/shm.db" 'SELECT count(*) FROM t')" 1 "rows after a garbage -shm"
sq "$A/shm.db" "INSERT INTO t VALUES (2);"
eq "$(sq "$B/shm.db" 'SELECT count(*) FROM t')" 2 "a commit after it, on the other mount"
eq "$(sq "$A/shm.db" 'PRAGMA integrity_check')" ok "integrity"

unmount "$A"
unmount "$B"
wait_daemons
for d in good cks salt cut hdr shm; do
    "$DSQLFS" verify "$STORE/$d" >/dev/null || fail "verify $d"
done
echo "test_mount_wal_bad: ok"
