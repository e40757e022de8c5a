"""twohost.py A.db B.db: the same database through two mounts (two hosts).
Sequenced in one process with one connection per mount."""
import sqlite3
import sys

a_path, b_path = sys.argv[1], sys.argv[2]


def conn(p, timeout=0.3):
    c = sqlite3.connect(p, timeout=timeout, isolation_level=None)
    return c


def one(c, sql, args=()):
    return c.execute(sql, args).fetchone()[0]


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)
    print("ok:", what, flush=True)


A, B = conn(a_path), conn(b_path)
A.execute("PRAGMA journal_mode=DELETE")
A.executescript("""
CREATE TABLE t1(id INTEGER PRIMARY KEY, v INT, pad TEXT);
CREATE TABLE t2(id INTEGER PRIMARY KEY, v INT, pad TEXT);
CREATE TABLE t3(id INTEGER PRIMARY KEY, v INT, pad TEXT);
""")
for t in ("t1", "t2", "t3"):
    A.execute("BEGIN")
    for i in range(1, 201):
        A.execute("INSERT INTO %s VALUES (?, 0, ?)" % t, (i, "x" * 300))
    A.execute("COMMIT")

# 1. a commit on A is seen by B's next read transaction
check(one(B, "SELECT count(*) FROM t3") == 200, "B sees A's tables")
A.execute("UPDATE t1 SET v = 7 WHERE id = 5")
check(one(B, "SELECT v FROM t1 WHERE id = 5") == 7, "B sees A's commit")
B.execute("UPDATE t1 SET v = 8 WHERE id = 5")
check(one(A, "SELECT v FROM t1 WHERE id = 5") == 8, "A sees B's commit")

# a reader's snapshot does not move inside its transaction
B.execute("BEGIN")
before = one(B, "SELECT v FROM t1 WHERE id = 5")
A.execute("UPDATE t1 SET v = 9 WHERE id = 5")
check(one(B, "SELECT v FROM t1 WHERE id = 5") == before,
      "B's read transaction keeps its snapshot")
B.execute("COMMIT")
check(one(B, "SELECT v FROM t1 WHERE id = 5") == 9,
      "B's next transaction sees the new version")

# 2. writers on disjoint tables both succeed
A.execute("BEGIN IMMEDIATE")
A.execute("UPDATE t1 SET v = v + 1 WHERE id = 1")
B.execute("UPDATE t2 SET v = v + 1 WHERE id = 1")   # commits first
A.execute("COMMIT")                                  # rebases
check(one(A, "SELECT v FROM t2 WHERE id = 1") == 1, "A sees B's t2 write")
check(one(B, "SELECT v FROM t1 WHERE id = 1") == 1, "B sees A's t1 write")

# 3. writers on the same row: the loser gets BUSY, is rolled back, retries
A.execute("BEGIN IMMEDIATE")
A.execute("UPDATE t1 SET v = v + 10 WHERE id = 2")
B.execute("UPDATE t1 SET v = v + 100 WHERE id = 2")  # B wins
try:
    A.execute("COMMIT")
    check(False, "A's conflicting commit must fail")
except sqlite3.OperationalError as e:
    check("locked" in str(e) or "I/O" in str(e), "A gets BUSY: %s" % e)
try:
    A.execute("ROLLBACK")
except sqlite3.OperationalError:
    pass
check(one(A, "SELECT v FROM t1 WHERE id = 2") == 100,
      "A's transaction rolled back, B's write kept")
A.execute("UPDATE t1 SET v = v + 10 WHERE id = 2")   # the retry
check(one(B, "SELECT v FROM t1 WHERE id = 2") == 110, "A's retry succeeds")
check(one(A, "PRAGMA integrity_check") == "ok", "integrity on A")
check(one(B, "PRAGMA integrity_check") == "ok", "integrity on B")

# 4. the freed-page case: B frees t3's pages, A (older snapshot) writes
# into one of them: A must not commit
A.execute("BEGIN IMMEDIATE")
A.execute("UPDATE t3 SET v = 1 WHERE id = 150")
B.execute("DELETE FROM t3 WHERE id > 100")           # pages to the freelist
try:
    A.execute("COMMIT")
    check(False, "A's write into a freed page must fail")
except sqlite3.OperationalError as e:
    check(True, "A's write into a freed page fails: %s" % e)
try:
    A.execute("ROLLBACK")
except sqlite3.OperationalError:
    pass
check(one(A, "SELECT count(*) FROM t3") == 100, "B's delete kept")
check(one(A, "PRAGMA integrity_check") == "ok", "integrity after freed pages")

# 5. a conflict found only at the commit point (no journal at EXCLUSIVE
# time names the page: cache spill takes EXCLUSIVE early) still fails
# cleanly: SQLITE_IOERR, rolled back
A.execute("PRAGMA cache_size=2")
A.execute("BEGIN IMMEDIATE")
A.execute("UPDATE t2 SET pad = hex(randomblob(150))")   # spills: EXCLUSIVE
B.execute("UPDATE t2 SET v = 5 WHERE id = 3")
try:
    A.execute("COMMIT")
    check(False, "A's commit after a spill must fail")
except sqlite3.OperationalError as e:
    check(True, "A's late conflict fails: %s" % e)
try:
    A.execute("ROLLBACK")
except sqlite3.OperationalError:
    pass
check(one(A, "SELECT v FROM t2 WHERE id = 3") == 5, "B's write kept")
check(one(A, "SELECT count(*) FROM t2 WHERE pad = ?", ("x" * 300,)) == 200,
      "A's spilled transaction rolled back")
check(one(A, "PRAGMA integrity_check") == "ok", "integrity after a late conflict")
check(one(B, "PRAGMA integrity_check") == "ok", "integrity on B at the end")
print("twohost: all ok")
