#!/usr/bin/env bash
# POSIX locks through the mount: two local processes each increment one
# counter 500 times in transactions with busy_timeout: the final value is
# 1000 (no lost update); the sqlite3 shell sees "database is locked" while
# another process holds a write transaction; locks are dropped when the
# holder closes (or dies).
source "$(dirname "$0")/lib.sh"
need_fuse
M=$T/mnt
mount_store "$M"
sq "$M/c.db" "CREATE TABLE counter(id INTEGER PRIMARY KEY, v INT); INSERT INTO counter VALUES (1, 0);"

log "two processes x 500 increments"
"$PY" "$(dirname "$0")/counter.py" "$M/c.db" 500 > "$T/r1" &
p1=$!; PIDS+=("$p1")
"$PY" "$(dirname "$0")/counter.py" "$M/c.db" 500 > "$T/r2" &
p2=$!; PIDS+=("$p2")
wait "$p1" || fail "process 1 failed"
wait "$p2" || fail "process 2 failed"
eq "$(sq "$M/c.db" 'SELECT v FROM counter')" 1000 "counter"
log "retries: $(head -1 "$T/r1") $(head -1 "$T/r2")"
eq "$(sq "$M/c.db" 'PRAGMA integrity_check')" ok "integrity"

log "a held write lock makes others busy; closing releases it"
"$PY" - "$M/c.db" "$T/held" <<'PY' &
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")
con.execute("UPDATE counter SET v = v + 1")
open(sys.argv[2], "w").close()
time.sleep(3)
con.execute("COMMIT")
PY
holder=$!; PIDS+=("$holder")
for _ in $(seq 1 200); do [ -e "$T/held" ] && break; sleep 0.05; done
out=$(timeout 20 sqlite3 "$M/c.db" "PRAGMA busy_timeout=0; BEGIN IMMEDIATE; UPDATE counter SET v = v + 100; COMMIT;" 2>&1) && fail "second writer not refused"
echo "$out" | grep -q "database is locked" || fail "unexpected: $out"
wait "$holder"
eq "$(sq "$M/c.db" 'SELECT v FROM counter')" 1001 "after holder"

log "a process killed inside a write transaction: its locks go, nothing commits"
"$PY" - "$M/c.db" "$T/victim" <<'PY' &
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA cache_size=1")
con.execute("BEGIN IMMEDIATE")
con.execute("CREATE TABLE junk(x)")
con.execute("INSERT INTO junk SELECT randomblob(1000) FROM (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<2000) SELECT i FROM c)")
open(sys.argv[2], "w").close()
time.sleep(30)
PY
victim=$!; PIDS+=("$victim")
for _ in $(seq 1 200); do [ -e "$T/victim" ] && break; sleep 0.05; done
kill -9 "$victim"; wait "$victim" 2>/dev/null || true
eq "$(sq "$M/c.db" 'SELECT v FROM counter')" 1001 "after the kill"
eq "$(sq "$M/c.db" "SELECT count(*) FROM sqlite_master WHERE name='junk'")" 0 "junk table"
eq "$(sq "$M/c.db" 'PRAGMA integrity_check')" ok "integrity after the kill"
sq "$M/c.db" "UPDATE counter SET v = v + 1"
eq "$(sq "$M/c.db" 'SELECT v FROM counter')" 1002 "writable after the kill"

log "flock"
exec 9<"$M/c.db"
flock -x 9
if timeout 5 flock -n -x "$M/c.db" true; then fail "flock not exclusive"; fi
flock -u 9
timeout 5 flock -n -x "$M/c.db" true || fail "flock not released"
exec 9<&-

unmount "$M"
echo "test_mount_locks: ok"
