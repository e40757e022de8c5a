"""modes.py A.db B.db C.db STORE DSQLFS N: every rollback journal mode x every
synchronous mode, a writer on mount A, a checker on mount B.

Each writer transaction inserts one row (a 3000-byte payload: a table
leaf, an overflow page, an index leaf and page 1 change together).  After
every commit, B's next read transaction must see exactly that commit: the
row count, the newest row's full content, the index agreeing with the
table.  Meanwhile two reader processes, one on the writer's mount A and
one on a third mount C, read without pause and fail at the first state
that is not a whole commit (table and index counts apart, ids not 1..n,
a payload that is not its row's) or at a state older than one seen.
(Not on B: a mount's snapshot moves only when no local owner holds a
lock (docs/locking.md, L1), so a reader on B that overlaps the check's
read transaction can keep it one commit behind.)
Each block of N commits must add exactly N versions to the store: pages
arriving after a commit point never become a commit of their own.
Then the kernel cache of B must stay exact across A's rewrites, deletes,
a VACUUM that shrinks the file and growth past the old end (stale_pages).
"""
import hashlib
import os
import sqlite3
import subprocess
import sys
import time

MODES = ["DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF"]
SYNCS = ["OFF", "NORMAL", "FULL"]


def payload(i):
    seed = hashlib.sha256(b"row-%d" % i).digest()
    return (seed * (3000 // len(seed) + 1))[:3000]


def fail(what):
    print("FAIL:", what, flush=True)
    sys.exit(1)


def whole_state(c):
    """The state a read transaction sees: n, or a string naming what is
    not a whole commit."""
    c.execute("BEGIN")
    try:
        n_tab = c.execute("SELECT count(*) FROM t NOT INDEXED").fetchone()[0]
        n_idx = c.execute("SELECT count(*) FROM t INDEXED BY tk "
                          "WHERE k >= ''").fetchone()[0]
        mx = c.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()[0]
        last = c.execute("SELECT id, k, pad FROM t ORDER BY id DESC LIMIT 1"
                         ).fetchone()
    finally:
        c.execute("COMMIT")
    if n_tab != n_idx:
        return "table has %d rows, index %d" % (n_tab, n_idx)
    if mx != n_tab:
        return "max(id) %d with %d rows" % (mx, n_tab)
    if last is not None:
        i, k, pad = last
        if k != "k%08d" % i or pad != payload(i):
            return "row %d: content is not the row's" % i
    return n_tab


def reader(path, stop):
    c = sqlite3.connect(path, timeout=30, isolation_level=None)
    reads, seen, last = 0, 0, 0
    while not os.path.exists(stop):
        try:
            s = whole_state(c)
        except sqlite3.OperationalError as e:
            if "locked" in str(e):
                continue
            fail("reader on %s: %s" % (path, e))
        if isinstance(s, str):
            fail("reader on %s saw half a transaction: %s" % (path, s))
        if s < last:
            fail("reader on %s went back from %d to %d rows" % (path, last, s))
        if s != last:
            seen += 1
        last = s
        reads += 1
    print("reader %s: %d read transactions, %d distinct commits, ok"
          % (path, reads, seen), flush=True)


def nversions(dsqlfs, store):
    out = subprocess.run([dsqlfs, "versions", store + "/x"], check=True,
                         capture_output=True, text=True).stdout
    return len(out.strip().splitlines()) - 1


def main():
    if sys.argv[1] == "--reader":
        reader(sys.argv[2], sys.argv[3])
        return
    a_path, b_path, c_path, store, dsqlfs, n = sys.argv[1:7]
    n = int(n)
    stop = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".x")
    stop = os.environ.get("MODES_STOP", stop)
    A = sqlite3.connect(a_path, timeout=30, isolation_level=None)
    B = sqlite3.connect(b_path, timeout=30, isolation_level=None)
    A.executescript("""
        CREATE TABLE t(id INTEGER PRIMARY KEY, mode TEXT, sync TEXT,
                       k TEXT, pad BLOB);
        CREATE INDEX tk ON t(k);
    """)
    readers = [subprocess.Popen([sys.executable, __file__, "--reader", p,
                                 stop]) for p in (a_path, c_path)]
    i = 0
    try:
        for mode in MODES:
            got = A.execute("PRAGMA journal_mode=%s" % mode).fetchone()[0]
            if got.upper() != mode:
                fail("journal_mode=%s answered %s" % (mode, got))
            for sync in SYNCS:
                A.execute("PRAGMA synchronous=%s" % sync)
                v0 = nversions(dsqlfs, store)
                t0 = time.monotonic()
                for _ in range(n):
                    i += 1
                    A.execute("INSERT INTO t(id, mode, sync, k, pad) "
                              "VALUES (?, ?, ?, ?, ?)",
                              (i, mode, sync, "k%08d" % i, payload(i)))
                    s = whole_state(B)
                    if s != i:
                        fail("%s/%s: B sees %r after commit %d"
                             % (mode, sync, s, i))
                    row = B.execute("SELECT mode, sync FROM t WHERE id = ?",
                                    (i,)).fetchone()
                    if row != (mode, sync):
                        fail("%s/%s: B reads row %d as %r"
                             % (mode, sync, i, row))
                dt = time.monotonic() - t0
                dv = nversions(dsqlfs, store) - v0
                if dv != n:
                    fail("%s/%s: %d commits made %d versions"
                         % (mode, sync, n, dv, ))
                qc = B.execute("PRAGMA quick_check").fetchone()[0]
                if qc != "ok":
                    fail("%s/%s: quick_check on B: %s" % (mode, sync, qc))
                print("ok: journal_mode=%s synchronous=%s: %d commits, each "
                      "seen whole by B, %d versions, %.2f ms per commit+check"
                      % (mode, sync, n, dv, dt * 1000 / n), flush=True)
    finally:
        open(stop, "w").close()
        for r in readers:
            r.wait(timeout=120)
    for r in readers:
        if r.returncode != 0:
            fail("a reader failed (exit %d)" % r.returncode)
    print("ok: %d commits in %d modes" % (i, len(MODES) * len(SYNCS)))
    stale_pages(A, B)


def digest(c):
    h = hashlib.sha256()
    for row in c.execute("SELECT id, k, pad FROM t ORDER BY id"):
        h.update(repr(row).encode())
    return h.hexdigest()


def stale_pages(A, B):
    """B has every page of the file in its kernel cache; A rewrites rows
    in place, deletes, VACUUMs (the file shrinks), grows it back past the
    old end: B must read exactly A's content each time (a page kept from
    before, or a page beyond an old end, would show)."""
    A.execute("PRAGMA journal_mode=DELETE")
    for rnd in range(1, 9):
        digest(B)  # all of B's pages cached
        n = A.execute("SELECT max(id) FROM t").fetchone()[0]
        A.execute("BEGIN")
        if rnd % 3 == 0:
            A.execute("DELETE FROM t WHERE id > ?", (n // 2,))
        elif rnd % 3 == 1:
            A.execute("UPDATE t SET pad = ? WHERE id % 7 = ?",
                      (payload(1000 + rnd), rnd % 7))
        else:
            for j in range(n + 1, n + 40):
                A.execute("INSERT INTO t(id, mode, sync, k, pad) "
                          "VALUES (?, 'g', 'g', ?, ?)",
                          (j, "k%08d" % j, payload(j)))
        A.execute("COMMIT")
        if rnd % 3 == 0:
            A.execute("VACUUM")
        da, db = digest(A), digest(B)
        if da != db:
            fail("round %d: B reads other content than A (stale page)"
                 % rnd)
        ia = A.execute("PRAGMA integrity_check").fetchone()[0]
        ib = B.execute("PRAGMA integrity_check").fetchone()[0]
        if ia != "ok" or ib != "ok":
            fail("round %d: integrity_check A %s, B %s" % (rnd, ia, ib))
    print("ok: 8 rounds of rewrites, deletes, VACUUM shrinking the file "
          "and growth past the old end read exactly on B", flush=True)


main()
