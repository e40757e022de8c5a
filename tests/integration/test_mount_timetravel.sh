#!/usr/bin/env bash
# History on the mount and the command line (docs/mount.md, "Versions as
# files"): restore on one mount while another reads; the reader sees the
# restored content at its next transaction, and the restored version is
# the old one byte for byte (page 1's change counters aside).  Views:
# NAME@vN.db of every version of a database made by 50 commits reads
# byte-identical to export --version N; NAME@TIME picks the right version
# around commit boundaries; writes to a view fail and change nothing; a
# view survives a commit to the live database and a remount; a WAL-mode
# version opens plainly; gc'd versions vanish.
# gc's minimum age is 3 s here (DSQLFS_TEST_MIN_AGE_MS, a test build's).
export DSQLFS_TEST_MIN_AGE_MS=3000
source "$(dirname "$0")/lib.sh"
need_fuse
mount_store "$T/m1"
mount_store "$T/m2"
DB1=$T/m1/x.db
DB2=$T/m2/x.db
U=$STORE/x

# differ DB VERSION_A VERSION_B: exports equal except page 1's counters
same_content() {
    "$DSQLFS" export -q "$U" "$T/a.db" --version "$1" || fail "export $1"
    "$DSQLFS" export -q "$U" "$T/b.db" --version "$2" || fail "export $2"
    "$PY" - "$T/a.db" "$T/b.db" <<'PY'
import sys
a = bytearray(open(sys.argv[1], "rb").read())
b = bytearray(open(sys.argv[2], "rb").read())
for x in (a, b):
    x[24:28] = b"\0" * 4
    x[92:96] = b"\0" * 4
sys.exit(0 if a == b else 1)
PY
}

log "restore: 20 versions, restore version 5 while another mount reads"
sq "$DB1" "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX tv ON t(v);"
for i in $(seq 1 19); do
    sq "$DB1" "INSERT INTO t(v) SELECT printf('r$i-%d-%s', value, hex(randomblob(40))) FROM generate_series(1, 50);" 2>/dev/null ||
        sq "$DB1" "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k+1 FROM c WHERE k<50) INSERT INTO t(v) SELECT printf('r$i-%d-%s', k, hex(randomblob(40))) FROM c;"
done
H=$("$DSQLFS" status "$U" | awk '/^version:/ {print $2}')
[ "$H" -ge 20 ] || fail "only $H versions after 20 commits"
want=$("$DSQLFS" export -q "$U" "$T/v5.db" --version 5 && sqlite3 "$T/v5.db" "SELECT count(*), max(v) FROM t")
now=$(sq "$DB2" "SELECT count(*), max(v) FROM t")
[ "$want" != "$now" ] || fail "version 5 already looks like the newest"
timeout 120 "$PY" - "$DB2" "$DSQLFS" "$U" "$want" <<'PY'
import sqlite3, subprocess, sys
db, bin_, url, want = sys.argv[1:5]
c = sqlite3.connect(db, isolation_level=None)
before = "|".join(map(str, c.execute("SELECT count(*), max(v) FROM t").fetchone()))
c.execute("BEGIN")
inside = c.execute("SELECT count(*) FROM t").fetchone()
r = subprocess.run([bin_, "restore", url, "--version", "5"], capture_output=True, text=True)
if r.returncode != 0:
    raise SystemExit("FAIL: restore: " + r.stderr)
print("ok:", r.stdout.strip())
# the open read transaction keeps its snapshot
if c.execute("SELECT count(*) FROM t").fetchone() != inside:
    raise SystemExit("FAIL: a read transaction saw the restore")
c.execute("COMMIT")
after = "|".join(map(str, c.execute("SELECT count(*), max(v) FROM t").fetchone()))
if after != want:
    raise SystemExit(f"FAIL: after restore the reader sees {after}, want {want} (before {before})")
if c.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
    raise SystemExit("FAIL: integrity after restore")
print("ok: reader sees version 5's content at its next transaction")
PY
head=$("$DSQLFS" status "$U" | awk '/^version:/ {print $2}')
eq "$head" $((H + 1)) "restore commits one version"
same_content 5 $((H + 1)) || fail "version $((H + 1)) is not version 5's content"
eq "$(sq "$DB1" "SELECT count(*), max(v) FROM t")" "$want" "the writer mount sees the restore"
log "history stays: version $H still reads; writing on top of the restore works"
"$DSQLFS" export -q "$U" "$T/vh.db" --version $H || fail "export $H"
eq "$(sqlite3 "$T/vh.db" "SELECT count(*) FROM t")" 950 "version $H after the restore"
sq "$DB1" "INSERT INTO t(v) VALUES('after-restore')"
eq "$(sq "$DB2" "SELECT count(*) FROM t WHERE v = 'after-restore'")" 1 "a commit on top of the restore"
eq "$(sq "$DB2" "PRAGMA integrity_check")" ok "integrity after a commit on the restore"

log "restore --at: the version current at a time (with an offset)"
t10=$("$DSQLFS" versions "$U" | awk '$1 == 10 {print $2}')
# the same instant written as +01:00
at=$("$PY" -c "import datetime,sys; t=datetime.datetime.strptime(sys.argv[1],'%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc); print(t.astimezone(datetime.timezone(datetime.timedelta(hours=1))).isoformat(timespec='milliseconds'))" "$t10")
"$DSQLFS" restore "$U" --at "$at" | grep -q 'content of version 10' || fail "restore --at $at"
same_content 10 $((H + 3)) || fail "version $((H + 3)) is not version 10's content"
eq "$(sq "$DB2" "SELECT count(*) FROM t")" "$(sqlite3 "$T/a.db" "SELECT count(*) FROM t")" "reader after restore --at"

log "restore while another mount writes: exactly version 5, or a conflict"
timeout 120 "$PY" - "$DB2" "$DSQLFS" "$U" "$T" <<'PY'
import sqlite3, subprocess, sys, threading, time
db, bin_, url, tmp = sys.argv[1:5]
stop = threading.Event()
def writer():
    c = sqlite3.connect(db, timeout=30, isolation_level=None)
    i = 0
    while not stop.is_set():
        c.execute("INSERT INTO t(v) VALUES('concurrent')")
        i += 1
        time.sleep(0.0 if i % 3 else 0.1) # bursts, then quiet
th = threading.Thread(target=writer)
th.start()
ok = conflicts = 0
def image(v):
    out = f"{tmp}/r{v}.db"
    subprocess.run([bin_, "export", "-q", url, out, "--version", str(v)], check=True)
    b = bytearray(open(out, "rb").read())
    b[24:28] = b[92:96] = b"\0" * 4
    return bytes(b)
want = image(5)
try:
    for i in range(8):
        r = subprocess.run([bin_, "restore", "-q", url, "--version", "5"], capture_output=True, text=True)
        if r.returncode == 0:
            ok += 1
        elif "was not restored" in r.stderr and r.stderr.count("\n") == 1:
            conflicts += 1
        else:
            raise SystemExit("FAIL: restore: " + r.stderr)
        time.sleep(0.05)
finally:
    stop.set()
    th.join()
# every restore that succeeded committed exactly version 5's content
n = 0
for line in subprocess.run([bin_, "versions", url], capture_output=True, text=True, check=True).stdout.splitlines()[1:]:
    v = int(line.split()[0])
    if v > 5 and image(v) == want:
        n += 1
if ok == 0 or conflicts == 0:
    print(f"note: {ok} committed, {conflicts} conflicts (timing)")
if n < ok:
    raise SystemExit(f"FAIL: {ok} restores succeeded but {n} versions hold version 5")
print(f"ok: {ok} restore(s) committed version 5 exactly, {conflicts} refused as conflicts")
PY

log "restore errors: one line naming the cause"
out=$("$DSQLFS" restore "$U" --version 99999 2>&1) && fail "restore of a missing version succeeded"
case $out in *99999*) ;; *) fail "restore --version 99999: '$out'" ;; esac
out=$("$DSQLFS" restore "$U" --at 1999-01-01T00:00Z 2>&1) && fail "restore before the first version succeeded"
case $out in *"no version committed at or before"*) ;; *) fail "restore --at 1999: '$out'" ;; esac
rc=0; out=$("$DSQLFS" restore "$U" 2>&1) || rc=$?
[ $rc = 2 ] || fail "restore without a version: exit $rc ($out)"
"$DSQLFS" verify "$U" >/dev/null || fail "verify after restores"

log "views: every version of a database made by 50 commits"
V=$STORE/v
sq "$T/m1/v.db" "CREATE TABLE a(id INTEGER PRIMARY KEY, s TEXT); CREATE INDEX a_s ON a(s);"
for i in $(seq 1 49); do
    sq "$T/m1/v.db" "INSERT INTO a(s) VALUES(printf('%0${i}d-%s', $i, hex(randomblob($i * 20)))); UPDATE a SET s = s || '.' WHERE id % 7 = $i % 7;"
done
HV=$("$DSQLFS" status "$V" | awk '/^version:/ {print $2}')
[ "$HV" -ge 50 ] || fail "only $HV versions of v"
for n in $(seq 1 "$HV"); do
    "$DSQLFS" export -q "$V" "$T/e.db" --version "$n" || fail "export v $n"
    cmp -s "$T/e.db" "$T/m2/v@v$n.db" || fail "v@v$n.db differs from export --version $n"
done
[ "$(sq "$T/m2/v@v$HV.db" "SELECT count(*) FROM a")" = 49 ] || fail "the newest view's rows"
[ "$(sq "file:$T/m2/v@v20.db?mode=ro" "PRAGMA integrity_check")" = ok ] || fail "view integrity (mode=ro)"
ls -a "$T/m2" | grep -q '@' && fail "views are listed: $(ls -a "$T/m2")"

log "views by time: around commit boundaries"
"$DSQLFS" versions "$V" | awk 'NR > 1 {print $1, $2}' >"$T/times"
"$PY" - "$T/times" "$T/m2" "$DSQLFS" "$V" "$T" <<'PY'
import datetime, filecmp, os, subprocess, sys
times, mnt, bin_, url, tmp = sys.argv[1:6]
rows = [(int(v), datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc))
        for v, t in (l.split() for l in open(times))]
def check(name, want):
    p = os.path.join(mnt, name)
    if want is None:
        if os.path.exists(p):
            raise SystemExit(f"FAIL: {name} exists, want ENOENT")
        return
    out = os.path.join(tmp, "t.db")
    subprocess.run([bin_, "export", "-q", url, out, "--version", str(want)], check=True)
    if not filecmp.cmp(out, p, shallow=False):
        raise SystemExit(f"FAIL: {name} is not version {want}")
ms = datetime.timedelta(milliseconds=1)
iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)
check("v@" + iso(rows[0][1] - ms) + ".db", None)         # before the first
check("v@" + iso(rows[0][1]) + ".db", rows[0][0])
n = 0
for (v0, t0), (v1, t1), (v2, t2) in zip(rows, rows[1:], rows[2:] + [(0, rows[-1][1] + 10 * ms)]):
    if t1 - t0 < 2 * ms or t2 - t1 < 2 * ms or n >= 10:
        continue
    n += 1
    check("v@" + iso(t1 - ms) + ".db", v0)              # just before
    check("v@" + iso(t1) + ".db", v1)                   # at the commit
    plus1 = (t1 + ms).astimezone(datetime.timezone(datetime.timedelta(hours=1)))
    check("v@" + plus1.isoformat(timespec="milliseconds") + ".db", v1)  # offset
if n < 3:
    raise SystemExit("FAIL: too few commit boundaries 2 ms apart")
last = rows[-1][1] + datetime.timedelta(seconds=5)
check("v@" + last.strftime("%Y-%m-%dT%H:%M:%SZ") + ".db", rows[-1][0])  # seconds
mins = (rows[-1][1] + datetime.timedelta(seconds=60)).replace(second=0, microsecond=0)
check("v@" + mins.strftime("%Y-%m-%dT%H:%MZ") + ".db", rows[-1][0])  # minutes only
print(f"ok: {n} commit boundaries, before/at/offset")
PY

log "the cost of a view: its lookup, then only pages no cache holds"
reqs() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['store_requests'])" "$T/m2/.dsqlfs/v.json"; }
sq "$T/m2/v.db" "SELECT count(*) FROM a" >/dev/null # the live file's pages cached
sleep 1.1 # the kernel forgets the view's entry (1 s)
r0=$(reqs)
stat "$T/m2/v@v$HV.db" >/dev/null
r1=$(reqs)
sq "$T/m2/v@v$HV.db" "SELECT count(*) FROM a" >/dev/null
r2=$(reqs)
sq "$T/m2/v@v$HV.db" "SELECT count(*) FROM a" >/dev/null
r3=$(reqs)
log "view of the newest version: lookup $((r1 - r0)) request(s), first query $((r2 - r1)), second $((r3 - r2))"
[ $((r1 - r0)) -le 2 ] || fail "a view's lookup cost $((r1 - r0)) requests"
[ $((r3 - r2)) -le 2 ] || fail "a second query on a view cost $((r3 - r2)) requests"

log "writes to a view fail and change nothing"
cp "$T/m2/v@v30.db" "$T/v30.before"
out=$(sqlite3 "$T/m2/v@v30.db" "INSERT INTO a(s) VALUES('nope')" 2>&1) && fail "a write to a view succeeded"
case $out in *"readonly database"*) ;; *) fail "write to a view: '$out'" ;; esac
out=$(sqlite3 "$T/m2/v@v30.db" "PRAGMA journal_mode=WAL; CREATE TABLE z(x)" 2>&1) && fail "WAL on a view succeeded"
if (echo junk >>"$T/m2/v@v30.db") 2>/dev/null; then fail "appending to a view worked"; fi
if : >"$T/m2/v@v30.db-journal" 2>/dev/null; then fail "a journal next to a view was made"; fi
if rm -f "$T/m2/v@v30.db" 2>/dev/null && [ ! -e "$T/m2/v@v30.db" ]; then fail "rm of a view"; fi
cmp -s "$T/v30.before" "$T/m2/v@v30.db" || fail "the view changed"
"$DSQLFS" export -q "$V" "$T/e.db" --version 30
cmp -s "$T/e.db" "$T/m2/v@v30.db" || fail "version 30 changed"
eq "$("$DSQLFS" status "$V" | awk '/^version:/ {print $2}')" "$HV" "versions after writes to views"

log "a view has its live database's mode, less write bits"
eq "$(stat -c %a "$T/m2/v@v30.db")" 444 "a view's mode"
chmod 0600 "$T/m2/v.db"
sleep 1.1 # the kernel keeps a view's attributes for a second
eq "$(stat -c %a "$T/m2/v@v30.db")" 400 "a view's mode after chmod 0600 of its database"
chmod 0644 "$T/m2/v.db"

log "a view survives a commit to the live database and a remount"
timeout 60 "$PY" - "$T/m2/v@v25.db" "$T/m1/v.db" <<'PY'
import sqlite3, sys
v = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
before = v.execute("SELECT count(*), max(s) FROM a").fetchall()
live = sqlite3.connect(sys.argv[2], isolation_level=None)
live.execute("INSERT INTO a(s) VALUES('live')")
live.execute("DELETE FROM a WHERE id < 10")
if v.execute("SELECT count(*), max(s) FROM a").fetchall() != before:
    raise SystemExit("FAIL: the view moved with the live database")
print("ok: view unchanged across a commit")
PY
unmount "$T/m2"
mount_store "$T/m2"
"$DSQLFS" export -q "$V" "$T/e.db" --version 25
cmp -s "$T/e.db" "$T/m2/v@v25.db" || fail "v@v25.db after a remount"

log "a WAL-mode database's versions open plainly"
sq "$T/m1/w.db" "PRAGMA journal_mode=WAL; CREATE TABLE t(x);" >/dev/null
for i in 1 2 3; do sq "$T/m1/w.db" "INSERT INTO t VALUES($i)"; done
HW=$("$DSQLFS" status "$STORE/w" | awk '/^version:/ {print $2}')
eq "$(sq "$T/m2/w@v$HW.db" "SELECT count(*) FROM t")" 3 "plain open of a WAL-mode version"
eq "$(sq "file:$T/m2/w@v$HW.db?mode=ro" "SELECT count(*) FROM t")" 3 "mode=ro open of a WAL-mode version"
eq "$(sq "file:$T/m2/w@v$((HW - 1)).db?immutable=1" "SELECT count(*) FROM t")" 2 "immutable open of a WAL-mode version"

log "gc'd versions vanish from view"
sleep 4
"$DSQLFS" gc "$V" --keep 5 --keep-for 3 >/dev/null || fail "gc"
floor=$("$DSQLFS" versions "$V" | awk 'NR == 2 {print $1}')
[ "$floor" -gt 10 ] || fail "gc left version $floor"
sleep 1.2 # the kernel's entry cache (1 s)
[ -e "$T/m2/v@v3.db" ] && fail "v@v3.db still there after gc"
[ -e "$T/m1/v@v3.db" ] && fail "v@v3.db still there after gc (m1)"
grep -q 'v@v3.db: no such version' "$T/m2.log" || fail "no log line for the gc'd view"
"$DSQLFS" export -q "$V" "$T/e.db" --version "$floor"
cmp -s "$T/e.db" "$T/m2/v@v$floor.db" || fail "the oldest kept version"

log "conflicts explained: two mounts on table a, table b untouched"
sq "$T/m1/c.db" "CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX a_v ON a(v);
  CREATE TABLE b(id INTEGER PRIMARY KEY, w TEXT);
  INSERT INTO a VALUES(1, 'one'), (2, 'two'); INSERT INTO b VALUES(1, 'bee');"
timeout 60 "$PY" - "$T/m1/c.db" "$T/m2/c.db" <<'PY'
import sqlite3, sys
A = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
B = sqlite3.connect(sys.argv[2], timeout=0, isolation_level=None)
A.execute("BEGIN")
A.execute("SELECT count(*) FROM a").fetchone()
B.execute("UPDATE a SET v = 'b-wins' WHERE id = 1")
try:
    A.execute("UPDATE a SET v = 'a-loses' WHERE id = 1")
    A.execute("COMMIT")
    raise SystemExit("FAIL: both writers of row 1 committed")
except sqlite3.OperationalError as e:
    print("ok: refused:", e)
try:
    A.execute("ROLLBACK")
except sqlite3.OperationalError:
    pass
PY
line=$(grep 'c.db: conflict at' "$T/m1.log" | tail -1)
[ -n "$line" ] || fail "no conflict line in the log"
case $line in *"table a (page"*) ;; *) fail "the conflict line does not name table a: $line" ;; esac
case $line in *"index a_v (page"*) ;; *) fail "the conflict line does not name index a_v: $line" ;; esac
case $line in *" b "*|*"table b"*) fail "the conflict line names table b: $line" ;; esac
"$PY" - "$T/m1/.dsqlfs/c.json" "$line" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
by = st["conflicts_by_table"]
if by.get("a", 0) < 1 or by.get("a_v", 0) < 1 or "b" in by:
    raise SystemExit(f"FAIL: conflicts_by_table {by}")
lc = st["last_conflict"]
names = {t["name"]: t["kind"] for t in lc["tables"]}
if names.get("a") != "table" or names.get("a_v") != "index" or "b" in names:
    raise SystemExit(f"FAIL: last_conflict {lc}")
if len(lc["other_writer"]) != 32 or lc["other_writer"] not in sys.argv[2]:
    raise SystemExit(f"FAIL: other writer {lc['other_writer']} not in the log line")
if lc["other_version"] <= lc["snapshot"] or not lc["pages"]:
    raise SystemExit(f"FAIL: last_conflict {lc}")
print("ok: status names", by, "writer", lc["other_writer"][:8], "version", lc["other_version"])
PY
grep "c.db: conflict at" "$T/m1.log" | tail -1 >&2

log "versions --tables: which tables each version changed"
sq "$T/m1/c.db" "UPDATE b SET w = 'bee2' WHERE id = 1"
"$DSQLFS" versions "$STORE/c" --tables >"$T/vt" || fail "versions --tables"
cat "$T/vt" >&2
last=$(tail -1 "$T/vt" | awk '{print $NF}')
eq "$last" b "tables of the commit on b"
lc_v=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['last_conflict']['other_version'])" "$T/m1/.dsqlfs/c.json")
eq "$(awk -v v="$lc_v" '$1 == v {print $NF}' "$T/vt")" "a,a_v" "tables of the conflicting commit"
awk 'NR == 2 {print $NF}' "$T/vt" | grep -q sqlite_schema || fail "the first version changes the schema"
echo "test_mount_timetravel: ok"
