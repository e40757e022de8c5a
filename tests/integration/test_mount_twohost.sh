#!/usr/bin/env bash
# Two mounts of one store stand for two hosts: visibility at the next read
# transaction, stable snapshots inside one, disjoint writers both commit,
# same-row writers: the loser gets SQLITE_BUSY and retries, the freed-page
# case conflicts, a late conflict (after a cache spill) is an I/O error
# and rolls back.  Serializable isolation refuses any commit since the
# snapshot.
source "$(dirname "$0")/lib.sh"
need_fuse
mount_store "$T/m1"
mount_store "$T/m2"
timeout 300 "$PY" "$(dirname "$0")/twohost.py" "$T/m1/x.db" "$T/m2/x.db"
"$DSQLFS" verify "$STORE/x" >/dev/null || fail "verify"

log "serializable isolation: a commit on another table still conflicts"
unmount "$T/m1"; unmount "$T/m2"
mount_store "$T/s1" -o isolation=serializable
mount_store "$T/s2" -o isolation=serializable
timeout 60 "$PY" - "$T/s1/x.db" "$T/s2/x.db" <<'PY'
import sqlite3, sys
A = sqlite3.connect(sys.argv[1], timeout=0.2, isolation_level=None)
B = sqlite3.connect(sys.argv[2], timeout=0.2, isolation_level=None)
A.execute("SELECT count(*) FROM t1").fetchone()
A.execute("BEGIN")
A.execute("SELECT v FROM t1 WHERE id = 1").fetchone()
B.execute("UPDATE t2 SET v = v + 1 WHERE id = 1")
try:
    A.execute("UPDATE t1 SET v = v + 1 WHERE id = 1")
    A.execute("COMMIT")
    raise SystemExit("FAIL: serializable commit after a remote commit")
except sqlite3.OperationalError as e:
    print("ok: refused:", e)
try:
    A.execute("ROLLBACK")
except sqlite3.OperationalError:
    pass
A.execute("UPDATE t1 SET v = v + 1 WHERE id = 1")
print("ok: retry")
PY
echo "test_mount_twohost: ok"
