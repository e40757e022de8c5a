"""fuse_requests.py MOUNT [K [MOUNT_B]]: FUSE requests per SQLite
transaction.

Reads .dsqlfs/metrics.prom (dsqlfs_fuse_requests_total{op=...}) around K
one-row SELECT read transactions and around K single-row autocommit
commits (synchronous=FULL, journal_mode DELETE, then TRUNCATE and
PERSIST) on one open connection, subtracts the cost of reading the
metrics file itself (measured the same way with nothing in between) and
prints the requests per transaction, per opcode.  With MOUNT_B (a second
mount of the same store): a full scan of a 1 MB table on B after each
single-row commit on MOUNT, counted on B (what the kernel page cache of B
keeps across another host's commit).
"""
import re
import sqlite3
import sys

mnt = sys.argv[1]
k = int(sys.argv[2]) if len(sys.argv) > 2 else 200
mnt_b = sys.argv[3] if len(sys.argv) > 3 else None


def counts(m=None):
    with open((m or mnt) + "/.dsqlfs/metrics.prom") as f:
        text = f.read()
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^dsqlfs_fuse_requests_total\{op="([^"]+)"\} (\d+)$', text, re.M)}


def diff(a, b):
    return {op: b.get(op, 0) - a.get(op, 0) for op in set(a) | set(b)
            if b.get(op, 0) != a.get(op, 0)}


def per_txn(run, what, m=None, k=k):
    c0 = counts(m)
    c1 = counts(m)
    base = diff(c0, c1)  # reading the metrics file once
    c2 = counts(m)
    for _ in range(k):
        run()
    c3 = counts(m)
    d = diff(c2, c3)
    per = {op: (d.get(op, 0) - base.get(op, 0)) / k for op in d}
    per = {op: v for op, v in per.items() if abs(v) >= 0.005}
    total = sum(per.values())
    detail = " ".join("%s=%.2f" % (op, per[op]) for op in sorted(per))
    print("%-34s %6.2f requests  (%s)" % (what, total, detail), flush=True)
    return total


db = mnt + "/reqbench.db"
c = sqlite3.connect(db, isolation_level=None)
c.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
c.execute("INSERT INTO t(v) VALUES ('x')")
for _ in range(20):
    c.execute("SELECT v FROM t WHERE id = 1").fetchone()
per_txn(lambda: c.execute("SELECT v FROM t WHERE id = 1").fetchone(),
        "one-row SELECT read transaction")
c.execute("PRAGMA synchronous=FULL")
for mode in ("DELETE", "TRUNCATE", "PERSIST"):
    c.execute("PRAGMA journal_mode=%s" % mode)
    c.execute("INSERT INTO t(v) VALUES ('warm')")
    per_txn(lambda: c.execute("INSERT INTO t(v) VALUES ('y')"),
            "single-row commit, FULL, %s" % mode)

if mnt_b:
    c.execute("PRAGMA journal_mode=DELETE")
    c.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)")
    c.execute("INSERT INTO big(v) SELECT randomblob(3000) FROM "
              "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
              "FROM n WHERE i < 300) SELECT i FROM n)")
    b = sqlite3.connect(mnt_b + "/reqbench.db", isolation_level=None)
    q = "SELECT count(*), sum(length(v)) FROM big"
    b.execute(q).fetchone()

    def remote_then_scan():
        c.execute("INSERT INTO big(v) VALUES (randomblob(3000))")
        b.execute(q).fetchone()

    per_txn(remote_then_scan, "B: 1 MB scan after a commit on A", mnt_b,
            k=min(k, 50))
