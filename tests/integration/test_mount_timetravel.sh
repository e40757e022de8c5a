#!/usr/bin/env bash
# History on the mount and the command line (docs/mount.md, "Versions as
# files"): restore on one mount while another reads; the reader sees the
# restored content at its next transaction, and the restored version is
# the old one byte for byte (page 1's change counters aside).
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

log "restore errors: one line naming the cause"
out=$("$DSQLFS" restore "$U" --version 99 2>&1) && fail "restore of a missing version succeeded"
case $out in *99*) ;; *) fail "restore --version 99: '$out'" ;; esac
out=$("$DSQLFS" restore "$U" --at 1999-01-01T00:00Z 2>&1) && fail "restore before the first version succeeded"
case $out in *"no version committed at or before"*) ;; *) fail "restore --at 1999: '$out'" ;; esac
rc=0; out=$("$DSQLFS" restore "$U" 2>&1) || rc=$?
[ $rc = 2 ] || fail "restore without a version: exit $rc ($out)"
"$DSQLFS" verify "$U" >/dev/null || fail "verify after restores"
echo "test_mount_timetravel: ok"
