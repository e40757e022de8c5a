"""mount_bench.py LOCAL_DIR MOUNT_DIR: the same workloads on a database on
local disk and on the mount; prints each figure and the ratio.

  read mix: 20000 point SELECTs by primary key + 200 range scans, each its
            own read transaction (as a web app does)
  commit:   500 single-row UPDATE transactions; median and p99 latency
"""
import os
import random
import sqlite3
import statistics
import sys
import time

local_dir, mount_dir = sys.argv[1], sys.argv[2]
N_ROWS = 20000


def setup(path):
    if os.path.exists(path):
        os.unlink(path)
    c = sqlite3.connect(path, isolation_level=None)
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
    for i in range(20000):
        c.execute("SELECT v FROM kv WHERE id = ?",
                  (rnd.randrange(N_ROWS),)).fetchone()
        if i % 100 == 0:
            lo = rnd.randrange(N_ROWS - 500)
            c.execute("SELECT sum(n) FROM kv WHERE id BETWEEN ? AND ?",
                      (lo, lo + 500)).fetchone()
    return time.perf_counter() - t0


def commits(path):
    c = sqlite3.connect(path, isolation_level=None)
    lat = []
    rnd = random.Random(2)
    for _ in range(500):
        t0 = time.perf_counter()
        c.execute("UPDATE kv SET n = n + 1 WHERE id = ?",
                  (rnd.randrange(N_ROWS),))
        lat.append(time.perf_counter() - t0)
    lat.sort()
    return statistics.median(lat), lat[int(len(lat) * 0.99) - 1]


res = {}
for name, d in (("local", local_dir), ("mount", mount_dir)):
    p = os.path.join(d, "bench.db")
    setup(p)
    res[name] = (read_mix(p), commits(p))

lr, (lm, lp) = res["local"]
mr, (mm, mp) = res["mount"]
print("%-28s %12s %12s %8s" % ("", "local disk", "dsqlfs", "ratio"))
print("%-28s %11.3fs %11.3fs %7.1fx" % ("read mix (20k selects)", lr, mr, mr / lr))
print("%-28s %10.2fms %10.2fms %7.1fx" % ("commit latency median", lm * 1e3, mm * 1e3, mm / lm))
print("%-28s %10.2fms %10.2fms %7.1fx" % ("commit latency p99", lp * 1e3, mp * 1e3, mp / lp))
