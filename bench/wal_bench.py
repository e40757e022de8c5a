"""wal_bench.py LOCAL_DIR MOUNT_DIR [REPS]: WAL mode on local disk and on
the mount, side by side, interleaved REPS times (default 3); prints the
minimum and median of each figure and the ratio of the medians.

  read mix: 5000 point SELECTs by primary key + 50 range scans, each its
            own read transaction
  commits:  300 single-row autocommit UPDATEs, synchronous=FULL and NORMAL
            (median latency per commit)
  reader while writing: the read mix while another process commits
            continuously (WAL's readers-do-not-block-writers case)
"""
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time

local_dir, mount_dir = sys.argv[1], sys.argv[2]
REPS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
N_ROWS = 20000


def setup(path):
    for s in ("", "-wal", "-shm"):
        if os.path.exists(path + s):
            os.unlink(path + s)
    c = sqlite3.connect(path, isolation_level=None)
    assert c.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    c.execute("CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT, n INT)")
    c.execute("BEGIN")
    c.executemany("INSERT INTO kv VALUES (?, ?, ?)",
                  ((i, "value-%08d" % i * 4, i % 97) for i in range(N_ROWS)))
    c.execute("COMMIT")
    c.close()


def read_mix(path):
    c = sqlite3.connect(path, isolation_level=None)
    rnd = random.Random(1)
    t0 = time.perf_counter()
    for i in range(5000):
        c.execute("SELECT v FROM kv WHERE id = ?",
                  (rnd.randrange(N_ROWS),)).fetchone()
        if i % 100 == 0:
            lo = rnd.randrange(N_ROWS - 500)
            c.execute("SELECT sum(n) FROM kv WHERE id BETWEEN ? AND ?",
                      (lo, lo + 500)).fetchone()
    c.close()
    return time.perf_counter() - t0


def commits(path, sync):
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA synchronous=%s" % sync)
    lat = []
    rnd = random.Random(2)
    for _ in range(300):
        t0 = time.perf_counter()
        c.execute("UPDATE kv SET n = n + 1 WHERE id = ?",
                  (rnd.randrange(N_ROWS),))
        lat.append(time.perf_counter() - t0)
    c.close()
    return statistics.median(lat)


WRITER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
end = time.monotonic() + 600
i = 0
while time.monotonic() < end:
    c.execute("UPDATE kv SET n = n + 1 WHERE id = ?", (i % 20000,))
    i += 1
"""


def read_while_writing(path):
    w = subprocess.Popen([sys.executable, "-c", WRITER, path])
    try:
        time.sleep(0.2)
        return read_mix(path)
    finally:
        w.kill()
        w.wait()


FIGURES = [
    ("read mix (5k selects)", "s", read_mix),
    ("commit, synchronous=FULL", "ms", lambda p: commits(p, "FULL") * 1e3),
    ("commit, synchronous=NORMAL", "ms", lambda p: commits(p, "NORMAL") * 1e3),
    ("read mix, writer running", "s", read_while_writing),
]

res = {(f, t): [] for f, _, _ in FIGURES for t in ("local", "mount")}
paths = {"local": os.path.join(local_dir, "wal.db"),
         "mount": os.path.join(mount_dir, "wal.db")}
for t, p in paths.items():
    setup(p)
for rep in range(REPS):
    for name, _, fn in FIGURES:
        for t in ("local", "mount"):
            res[(name, t)].append(fn(paths[t]))

print("%-28s %18s %18s %7s" % ("WAL mode, %d runs" % REPS,
                               "local min/median", "dsqlfs min/median",
                               "ratio"))
for name, unit, _ in FIGURES:
    l, m = res[(name, "local")], res[(name, "mount")]
    fmt = "%7.3f/%-7.3f" if unit == "s" else "%7.2f/%-7.2f"
    print("%-28s %15s%-3s %15s%-3s %6.1fx" % (
        name, fmt % (min(l), statistics.median(l)), unit,
        fmt % (min(m), statistics.median(m)), unit,
        statistics.median(m) / statistics.median(l)))
