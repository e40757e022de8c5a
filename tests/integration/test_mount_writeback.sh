#!/usr/bin/env bash
# -o writeback (docs/writeback.md, fuse/writeback.c B1-B5): the kernel's
# writeback cache on database files, and what it must never cost.
#  - A commit with synchronous=OFF returns only once it is in the store:
#    the daemon is killed right after each of 40 such commits, and every
#    one of them is in the store (B2: without the flush at the commit
#    point the pages would still be in the kernel).
#  - Another host's commits that grow and shrink the file are read
#    exactly by a connection that stays open on a writeback mount (B4:
#    the kernel keeps its own size of the file).
#  - Switching to WAL mode is refused with one log line naming the cause,
#    and leaves the database as it was; a database already in WAL mode
#    works on the writeback mount, both ways with a plain mount (B5).
#  - Content that is not SQLite is refused at the latest at close, and
#    nothing reaches the store (L9 through the cache).
#  - A transaction whose cached write fails never commits (B3): the
#    refused WAL switch is such a write.
source "$(dirname "$0")/lib.sh"
need_fuse
A="$T/a" B="$T/b"
count() { "$DSQLFS" export "$STORE/$1" "$T/exp.db" -q && sqlite3 "$T/exp.db" "$2"; }

log "synchronous=OFF commits are in the store when they return (daemon killed after each)"
mount_store "$A" -o writeback
sq "$A/k.db" "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
for i in $(seq 1 40); do
    # journal mode rotates; each commit writes page 1, a leaf and, every
    # few rows, a new page past the old end
    case $((i % 4)) in 0) jm=DELETE ;; 1) jm=TRUNCATE ;; 2) jm=PERSIST ;; 3) jm=MEMORY ;; esac
    # the daemon dies while the writer still holds the file open: a close
    # would write the cached pages back and commit them anyway
    "$PY" - "$A/k.db" "$jm" "$i" "$LAST_DAEMON" <<'PY'
import os, signal, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA journal_mode=%s" % sys.argv[2]).fetchone()
c.execute("PRAGMA synchronous=OFF")
c.execute("INSERT INTO t(id, v) VALUES (?, randomblob(3000))", (int(sys.argv[3]),))
os.kill(int(sys.argv[4]), signal.SIGKILL)
os._exit(0)
PY
    for _ in $(seq 1 100); do kill -0 "$LAST_DAEMON" 2>/dev/null || break; sleep 0.02; done
    fusermount3 -uz "$A" 2>/dev/null || umount -l "$A" 2>/dev/null || true
    got=$(count k "SELECT count(*), max(id) FROM t")
    eq "$got" "$i|$i" "rows in the store after commit $i and a daemon kill"
    mount_store "$A" -o writeback
done
"$DSQLFS" verify "$STORE/k" >/dev/null || fail "verify k"

log "another host grows and shrinks the file under an open connection"
mount_store "$B" -o writeback
"$PY" - "$A/g.db" "$B/g.db" <<'PY'
import sqlite3, sys
a = sqlite3.connect(sys.argv[1], isolation_level=None)
b = sqlite3.connect(sys.argv[2], isolation_level=None)
a.execute("PRAGMA auto_vacuum=NONE")
a.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
b.execute("SELECT count(*) FROM sqlite_master").fetchone()  # B's inode cached
rows = 0
for rnd in range(6):
    a.execute("BEGIN")
    a.executemany("INSERT INTO t(v) VALUES (randomblob(4000))",
                  [()] * (50 * (rnd + 1)))
    a.execute("COMMIT")
    rows += 50 * (rnd + 1)
    n, s = b.execute("SELECT count(*), sum(length(v)) FROM t").fetchone()
    assert (n, s) == (rows, rows * 4000), ("after growth", rnd, n, s, rows)
    assert b.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    if rnd % 2:
        a.execute("DELETE FROM t WHERE id % 3 != 0")
        a.execute("VACUUM")  # the file shrinks
        rows = a.execute("SELECT count(*) FROM t").fetchone()[0]
        n = b.execute("SELECT count(*) FROM t").fetchone()[0]
        assert n == rows, ("after shrink", rnd, n, rows)
        assert b.execute("PRAGMA quick_check").fetchone()[0] == "ok"
print("grow/shrink ok,", rows, "rows")
PY

log "switching to WAL is refused with one line naming the cause"
sq "$A/r.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
v0=$("$DSQLFS" versions "$STORE/r" | grep -c '^ *v\?[0-9]')
sq "$A/r.db" "PRAGMA journal_mode=WAL;" >/dev/null 2>&1 && fail "the switch to WAL was accepted"
eq "$(sq "$A/r.db" 'PRAGMA journal_mode; SELECT x FROM t; PRAGMA integrity_check;' | tr '\n' ' ')" \
    "delete 1 ok " "r.db after the refused switch (A)"
eq "$(sq "$B/r.db" 'PRAGMA journal_mode; SELECT x FROM t;' | tr '\n' ' ')" "delete 1 " \
    "r.db after the refused switch (B)"
v1=$("$DSQLFS" versions "$STORE/r" | grep -c '^ *v\?[0-9]')
eq "$v1" "$v0" "versions after the refused switch"
n=$(grep -c "r.db: switching to WAL mode is refused (EINVAL) on a mount with -o writeback" "$T/a.log")
eq "$n" 1 "log lines naming the refused switch"
sq "$A/r.db" "INSERT INTO t VALUES (2);"
eq "$(sq "$B/r.db" 'SELECT count(*) FROM t')" 2 "a commit after the refused switch"

log "a database in WAL mode works on the writeback mount"
P="$T/p"
mount_store "$P"
sq "$P/w.db" "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (0);" >/dev/null
for i in $(seq 1 10); do
    sq "$A/w.db" "PRAGMA synchronous=OFF; INSERT INTO t VALUES ($i);"
    eq "$(sq "$P/w.db" 'SELECT count(*), max(x) FROM t')" "$((2 * i))|$i" "plain mount after WAL commit $i on A"
    sq "$P/w.db" "INSERT INTO t VALUES (-$i);"
    eq "$(sq "$A/w.db" 'SELECT count(*), min(x) FROM t')" "$((2 * i + 1))|-$i" "A after WAL commit $i on the plain mount"
done
eq "$(sq "$A/w.db" 'PRAGMA journal_mode; PRAGMA integrity_check;' | tr '\n' ' ')" "wal ok " "w.db on A"

log "content that is not SQLite is refused, nothing reaches the store"
"$PY" - "$A/notes.txt" <<'PY' && fail "a text file was written and closed without an error"
import sys
f = open(sys.argv[1], "w")
f.write("hello, not a database\n")
f.close()  # the cached write reaches the daemon here at the latest
PY
ls -a "$A" | grep -qx notes.txt && fail "notes.txt is still listed"
"$DSQLFS" ls "$STORE" 2>/dev/null | grep -q notes && fail "notes.txt reached the store"

unmount "$P"
unmount "$B"
unmount "$A"
"$DSQLFS" verify "$STORE/g" >/dev/null || fail "verify g"
"$DSQLFS" verify "$STORE/r" >/dev/null || fail "verify r"
"$DSQLFS" verify "$STORE/w" >/dev/null || fail "verify w"
echo "test_mount_writeback: ok"
