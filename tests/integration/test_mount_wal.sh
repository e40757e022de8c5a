#!/usr/bin/env bash
# WAL mode on the mount (docs/wal.md), with the real sqlite3 and Python's
# sqlite3 on two mounts of one store:
#  - the switch sticks (stored image, every mount), each WAL transaction
#    is one version in synchronous FULL, NORMAL and OFF, the switch back;
#  - local concurrency: readers keep their snapshot while a writer
#    commits, busy_timeout works;
#  - between hosts: a reader holding a read transaction across 50 commits
#    of the other mount sees one snapshot, then the newest; 2 mounts x 100
#    increments end at exactly 200; disjoint writers on both mounts all
#    commit; a stale writer gets a BUSY variant or
#    an I/O error and its retry succeeds;
#  - a chmod between WAL commits is seen by the other mount;
#  - checkpoints of every kind publish nothing; locking_mode=EXCLUSIVE;
#    a database larger than the page cache; verify is clean.
source "$(dirname "$0")/lib.sh"
need_fuse
A=$T/a
B=$T/b
mount_store "$A"
mount_store "$B" -o page_cache_bytes=262144
nversions() { "$DSQLFS" versions "$STORE/$1" | tail -n +2 | wc -l; }

log "the switch is a version and sticks on every mount"
sq "$A/w.db" "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a');"
v0=$(nversions w)
eq "$(sq "$A/w.db" 'PRAGMA journal_mode=WAL')" wal "switch"
eq "$(($(nversions w) - v0))" 1 "versions for the switch"
eq "$(sq "$B/w.db" 'PRAGMA journal_mode')" wal "the other mount opens it in WAL mode"
"$DSQLFS" export "$STORE/w" "$T/w.db" -q
eq "$(sqlite3 "$T/w.db" 'PRAGMA journal_mode')" wal "the stored image"

log "each WAL transaction is one version, in every synchronous mode"
for sync in FULL NORMAL OFF; do
    v0=$(nversions w)
    sq "$A/w.db" "PRAGMA synchronous=$sync; INSERT INTO t(v) VALUES ('$sync-1');
      BEGIN; INSERT INTO t(v) VALUES ('$sync-2'); INSERT INTO t(v) VALUES ('$sync-3'); COMMIT;"
    eq "$(($(nversions w) - v0))" 2 "$sync: versions"
    eq "$(sq "$B/w.db" "SELECT count(*) FROM t WHERE v LIKE '$sync-%'")" 3 "$sync: seen by the other mount"
done
"$DSQLFS" export "$STORE/w" "$T/w.db" -q
eq "$(sqlite3 "$T/w.db" 'SELECT count(*) FROM t')" 10 "rows in the store"

log "local concurrency: a reader keeps its snapshot, busy_timeout works"
cat >"$T/local.py" <<'EOF'
import sqlite3, subprocess, sys
db = sys.argv[1]
r = sqlite3.connect(db, isolation_level=None)
r.execute("BEGIN")
before = r.execute("SELECT count(*) FROM t").fetchone()[0]
# another process writes while this read transaction is open
subprocess.run(["sqlite3", db, "PRAGMA busy_timeout=5000; INSERT INTO t(v) VALUES ('x1'); INSERT INTO t(v) VALUES ('x2');"], check=True, stdout=subprocess.DEVNULL)
during = r.execute("SELECT count(*) FROM t").fetchone()[0]
r.execute("COMMIT")
after = r.execute("SELECT count(*) FROM t").fetchone()[0]
# busy_timeout: a writer holds the write lock for a while, another waits
w = sqlite3.connect(db, isolation_level=None)
w.execute("BEGIN IMMEDIATE")
w.execute("INSERT INTO t(v) VALUES ('held')")
p = subprocess.Popen(["sqlite3", db, "PRAGMA busy_timeout=10000; INSERT INTO t(v) VALUES ('waited');"], stdout=subprocess.DEVNULL)
import time; time.sleep(0.5)
w.execute("COMMIT")
rc = p.wait()
print(before, during, after, rc)
EOF
set -- $("$PY" "$T/local.py" "$A/w.db")
eq "$2" "$1" "the reader's snapshot while another process committed"
eq "$3" "$(($1 + 2))" "the reader's next transaction"
eq "$4" 0 "a writer waiting in busy_timeout"
eq "$(sq "$B/w.db" "SELECT count(*) FROM t WHERE v IN ('held', 'waited')")" 2 "both writers committed"

log "between hosts: a read transaction keeps its snapshot across 50 commits"
cat >"$T/remote.py" <<'EOF'
import sqlite3, subprocess, sys
a, b = sys.argv[1], sys.argv[2]
r = sqlite3.connect(a, isolation_level=None)
r.execute("BEGIN")
first = r.execute("SELECT count(*), max(id) FROM t").fetchone()
w = sqlite3.connect(b, isolation_level=None, timeout=10)
seen = set()
for i in range(50):
    w.execute("INSERT INTO t(v) VALUES (?)", ("remote-%d" % i,))
    seen.add(r.execute("SELECT count(*), max(id) FROM t").fetchone())
r.execute("COMMIT")
last = r.execute("SELECT count(*) FROM t WHERE v LIKE 'remote-%'").fetchone()[0]
print(len(seen), seen == {first}, last)
EOF
eq "$("$PY" "$T/remote.py" "$A/w.db" "$B/w.db")" "1 True 50" "one snapshot, then all 50 commits"

log "between hosts: 2 mounts x 100 increments"
sq "$A/w.db" "CREATE TABLE counter(id INTEGER PRIMARY KEY, v INT); INSERT INTO counter VALUES (1, 0);"
"$PY" "$(dirname "$0")/counter.py" "$A/w.db" 100 10000 >"$T/inc-a" 2>&1 &
pa=$!
PIDS+=($pa)
"$PY" "$(dirname "$0")/counter.py" "$B/w.db" 100 10000 >"$T/inc-b" 2>&1 &
pb=$!
PIDS+=($pb)
wait "$pa" || fail "increments on a: $(cat "$T/inc-a")"
wait "$pb" || fail "increments on b: $(cat "$T/inc-b")"
log "retries (a, b): $(head -1 "$T/inc-a"), $(head -1 "$T/inc-b")"
eq "$(sq "$A/w.db" 'SELECT v FROM counter')" 200 "the counter on a"
eq "$(sq "$B/w.db" 'SELECT v FROM counter')" 200 "the counter on b"

log "between hosts: disjoint writers on two mounts both commit"
sq "$A/w.db" "CREATE TABLE da(i INTEGER PRIMARY KEY, v TEXT); CREATE TABLE db(i INTEGER PRIMARY KEY, v TEXT);"
cat >"$T/disjoint.py" <<'EOF'
import sqlite3, sys
db, table, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = sqlite3.connect(db, isolation_level=None, timeout=10)
retries = 0
for i in range(n):
    while True:
        try:
            con.execute("INSERT INTO %s(v) VALUES (?)" % table, ("%s-%d" % (table, i),))
            break
        except sqlite3.OperationalError:
            retries += 1
print(retries)
EOF
"$PY" "$T/disjoint.py" "$A/w.db" da 100 >"$T/dj-a" 2>&1 &
pa=$!
"$PY" "$T/disjoint.py" "$B/w.db" db 100 >"$T/dj-b" 2>&1 &
pb=$!
wait "$pa" || fail "disjoint writer on a: $(cat "$T/dj-a")"
wait "$pb" || fail "disjoint writer on b: $(cat "$T/dj-b")"
log "retries (a, b): $(cat "$T/dj-a"), $(cat "$T/dj-b")"
eq "$(sq "$B/w.db" 'SELECT count(*) FROM da')|$(sq "$A/w.db" 'SELECT count(*) FROM db')" "100|100" "each mount sees the other's 100 rows"

log "a stale writer: BUSY or an I/O error, then its retry succeeds"
cat >"$T/stale.py" <<'EOF'
import sqlite3, subprocess, sys
a, b = sys.argv[1], sys.argv[2]
con = sqlite3.connect(a, isolation_level=None)
con.execute("BEGIN")
(v,) = con.execute("SELECT v FROM counter WHERE id = 1").fetchone()
subprocess.run(["sqlite3", b, "UPDATE counter SET v = v + 1000 WHERE id = 1;"], check=True)
try:
    con.execute("UPDATE counter SET v = ? WHERE id = 1", (v + 1,))
    con.execute("COMMIT")
    print("committed")
except sqlite3.OperationalError as e:
    if con.in_transaction:  # SQLite rolls back by itself after an I/O error
        con.execute("ROLLBACK")
    print("busy" if "locked" in str(e) or "busy" in str(e) else "ioerr")
con.execute("BEGIN IMMEDIATE")
(v,) = con.execute("SELECT v FROM counter WHERE id = 1").fetchone()
con.execute("UPDATE counter SET v = ? WHERE id = 1", (v + 1,))
con.execute("COMMIT")
print(con.execute("SELECT v FROM counter").fetchone()[0])
EOF
out=$("$PY" "$T/stale.py" "$A/w.db" "$B/w.db")
case "$(echo "$out" | head -1)" in busy | ioerr) ;; *) fail "a stale write was not refused: $out" ;; esac
eq "$(echo "$out" | tail -1)" 1201 "the retry on top of the other mount's commit"
eq "$(sq "$B/w.db" 'SELECT v FROM counter')" 1201 "the other mount"

log "the daemon's -shm helper process killed: the next transactions work"
# a connection keeps the -shm in use on a, so its daemon keeps a helper
"$PY" -c "
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM counter').fetchall()
time.sleep(30)" "$A/w.db" &
holder=$!
helpers=""
for _ in $(seq 1 100); do
    helpers=$(pgrep -P "${DAEMONS[0]}" || true)
    [ -n "$helpers" ] && break
    sleep 0.05
done
[ -n "$helpers" ] || fail "no -shm helper process under a's daemon"
kill -KILL $helpers
sq "$B/w.db" "UPDATE counter SET v = v + 1 WHERE id = 1;"
eq "$(sq "$A/w.db" 'SELECT v FROM counter')" 1202 "a commit on b seen on a after the helpers died"
sq "$A/w.db" "UPDATE counter SET v = v + 1 WHERE id = 1;"
eq "$(sq "$B/w.db" 'SELECT v FROM counter')" 1203 "and back"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
grep -q 'the -shm helper process ended; starting another' "$T/a.log" || fail "no log line for the helper's end"

log "checkpoints publish nothing and keep the -wal bounded"
sq "$A/w.db" "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<200)
  INSERT INTO t(v) SELECT hex(randomblob(500)) FROM c;" >/dev/null
v0=$(nversions w)
for kind in PASSIVE FULL RESTART TRUNCATE; do
    sq "$A/w.db" "PRAGMA wal_checkpoint($kind);" >/dev/null
done
eq "$(nversions w)" "$v0" "versions after four checkpoints"
# (the -wal is a local file: TRUNCATE empties it while a connection is open)
cat >"$T/ckpt.py" <<'EOF'
import os, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("INSERT INTO t(v) VALUES ('c')"); con.commit()
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(os.path.getsize(sys.argv[1] + "-wal"))
EOF
eq "$("$PY" "$T/ckpt.py" "$A/w.db")" 0 "-wal size after a TRUNCATE checkpoint"
eq "$(sq "$B/w.db" 'PRAGMA integrity_check')" ok "integrity on b"
eq "$(sq "$A/w.db" 'SELECT count(*) FROM t')" "$(sq "$B/w.db" 'SELECT count(*) FROM t')" "the same rows on both mounts"

log "locking_mode=EXCLUSIVE with WAL"
sq "$A/w.db" "PRAGMA locking_mode=EXCLUSIVE; INSERT INTO t(v) VALUES ('excl1');
  INSERT INTO t(v) VALUES ('excl2'); SELECT count(*) FROM t WHERE v LIKE 'excl%';" | tail -1 | grep -qx 2 || fail "exclusive mode"
eq "$(sq "$B/w.db" "SELECT count(*) FROM t WHERE v LIKE 'excl%'")" 2 "exclusive mode commits on the other mount"

log "a WAL database larger than the page cache (256 KiB on b)"
sq "$B/w.db" "CREATE TABLE big(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<4000)
  INSERT INTO big SELECT randomblob(1000) FROM c;"
eq "$(sq "$A/w.db" 'SELECT count(*), sum(length(x)) FROM big')" "4000|4000000" "big table on a"
eq "$(sq "$B/w.db" 'PRAGMA integrity_check')" ok "integrity of the big database"

log "chmod of a WAL database while both mounts have it open"
cat >"$T/chmod.py" <<'EOF'
import os, sqlite3, sys
a = sqlite3.connect(sys.argv[1], isolation_level=None)
b = sqlite3.connect(sys.argv[2], isolation_level=None)
a.execute("INSERT INTO t(v) VALUES ('chmod-1')")
os.chmod(sys.argv[1], 0o600)
a.execute("INSERT INTO t(v) VALUES ('chmod-2')")
n = b.execute("SELECT count(*) FROM t WHERE v LIKE 'chmod-%'").fetchone()[0]
print(n, oct(os.stat(sys.argv[2]).st_mode & 0o7777))
b.execute("INSERT INTO t(v) VALUES ('chmod-3')")
print(a.execute("SELECT count(*) FROM t WHERE v LIKE 'chmod-%'").fetchone()[0])
EOF
eq "$("$PY" "$T/chmod.py" "$A/w.db" "$B/w.db" | tr '\n' ' ')" "2 0o600 3 " "commits around a chmod, its mode on b"
chmod 0644 "$A/w.db"

log "mixed mounts: a rollback-mode reader open on a while b switches"
sq "$A/m.db" "CREATE TABLE m(x); INSERT INTO m VALUES (1);"
cat >"$T/mixed.py" <<'EOF'
import sqlite3, subprocess, sys
a, b = sys.argv[1], sys.argv[2]
con = sqlite3.connect(a, isolation_level=None)
print(con.execute("PRAGMA journal_mode").fetchone()[0])
subprocess.run(["sqlite3", b, "PRAGMA journal_mode=WAL; INSERT INTO m VALUES (2);"], check=True, stdout=subprocess.DEVNULL)
print(con.execute("SELECT count(*) FROM m").fetchone()[0], con.execute("PRAGMA journal_mode").fetchone()[0])
con.execute("INSERT INTO m VALUES (3)")
print(con.execute("SELECT count(*) FROM m").fetchone()[0])
EOF
eq "$("$PY" "$T/mixed.py" "$A/m.db" "$B/m.db" | tr '\n' ' ')" "delete 2 wal 3 " "a connection in rollback mode follows the switch"
eq "$(sq "$B/m.db" 'SELECT count(*) FROM m')" 3 "its commit on the other mount"

log "the switch back to DELETE"
eq "$(sq "$A/w.db" 'PRAGMA journal_mode=DELETE')" delete "switch back"
eq "$(sq "$B/w.db" 'PRAGMA journal_mode')" delete "the other mount"
sq "$B/w.db" "INSERT INTO t(v) VALUES ('rollback again');"
eq "$(sq "$A/w.db" "SELECT count(*) FROM t WHERE v = 'rollback again'")" 1 "rollback mode commits again"

unmount "$A"
unmount "$B"
wait_daemons
"$DSQLFS" verify "$STORE/w" >/dev/null || fail "verify w"
"$DSQLFS" verify "$STORE/m" >/dev/null || fail "verify m"
echo "test_mount_wal: ok"
