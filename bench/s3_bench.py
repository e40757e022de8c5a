"""s3_bench.py: dsqlfs against the S3 test server, with the raw requests
of the same server measured side by side, in one run.

Run by bench/s3_bench.sh (which builds, starts the server and sets the
environment): DSQLFS, BENCH_RAW, DSQ_S3_BUCKET, AWS_* and BENCH_GB.

Prints one line per figure, then the table:
  raw PUT / GET round trips (4 KiB, create-only PUT as a manifest is)
  commit latency median / p99 and store requests per commit, single-row
    autocommit UPDATEs through a mount, staleness 0 and 1
  store requests per read transaction (point SELECTs) with 1, 4 and 16
    concurrent readers at staleness 0
  cold first query on a generated BENCH_GB database: time, requests,
    requests in a row (store_chain) and bytes, then a second process on the same mount; a cold full scan of
    it on a fresh mount (MB/s) vs one whole-object GET
  two mounts writing disjoint tables of one database vs one mount alone
  import / export of that database vs one whole-object PUT / GET
"""
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

DSQLFS = os.environ["DSQLFS"]
BENCH_RAW = os.environ["BENCH_RAW"]
BUCKET = os.environ["DSQ_S3_BUCKET"]
GB = float(os.environ.get("BENCH_GB", "1"))
COMMITS = int(os.environ.get("BENCH_COMMITS", "300"))
# BENCH_ONLY=commits,readers,two,cold: a subset (all by default)
ONLY = set(os.environ.get("BENCH_ONLY", "commits,readers,two,cold").split(","))
W = tempfile.mkdtemp(prefix="dsqlfs-s3bench.")
STORE = "s3://%s/bench-%d" % (BUCKET, os.getpid())
rows = []
daemons = []


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def row(name, value, base="", ratio=""):
    rows.append((name, value, base, ratio))
    print("%-44s %-26s %-22s %s" % (name, value, base, ratio), flush=True)


def mount(name, opts):
    mnt = os.path.join(W, name)
    os.makedirs(mnt, exist_ok=True)
    cache = os.path.join(W, "cache-" + name)
    o = "cache_dir=%s" % cache
    if opts:
        o += "," + opts
    p = subprocess.Popen([DSQLFS, STORE, mnt, "-f", "-o", o],
                         stderr=open(os.path.join(W, name + ".log"), "w"))
    daemons.append((p, mnt))
    for _ in range(200):
        if os.path.ismount(mnt):
            return mnt
        if p.poll() is not None:
            raise SystemExit("mount %s failed: see %s.log" % (name, name))
        time.sleep(0.05)
    raise SystemExit("mount %s: timeout" % name)


def umount(mnt):
    subprocess.call(["fusermount3", "-u", mnt])
    for p, m in daemons:
        if m == mnt:
            p.wait(timeout=30)


def status(mnt, db):
    with open(os.path.join(mnt, ".dsqlfs", db + ".json")) as f:
        return json.load(f)


def reqs(mnt, db):
    s = status(mnt, db)
    return s["store_requests"], s["store"]["bytes_read"]


def connect(path, timeout=30.0):
    return sqlite3.connect(path, timeout=timeout, isolation_level=None)


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))]


def ms(x):
    return "%.2f ms" % (x * 1e3)


# ---------------------------------------------------------------- raw
def raw():
    out = subprocess.check_output([BENCH_RAW, "rtt", STORE + "/raw", "200"],
                                  text=True)
    kv = dict(l.split("=") for l in out.split())
    return {k: float(v) for k, v in kv.items()}


# ---------------------------------------------------------------- commits
def make_kv(path, n=2000):
    c = connect(path)
    c.execute("CREATE TABLE IF NOT EXISTS kv(id INTEGER PRIMARY KEY, n INT, "
              "v TEXT)")
    c.execute("BEGIN")
    c.executemany("INSERT OR REPLACE INTO kv VALUES (?, 0, ?)",
                  ((i, "x" * 40) for i in range(n)))
    c.execute("COMMIT")
    c.close()


def commits(staleness, raw_put_ms):
    mnt = mount("c%d" % staleness, "staleness=%d" % staleness)
    db = "commit%d" % staleness
    path = os.path.join(mnt, db + ".db")
    make_kv(path)
    c = connect(path)
    rnd = random.Random(2)
    lat = []
    r0, _ = reqs(mnt, db)
    for _ in range(COMMITS):
        t0 = time.perf_counter()
        c.execute("UPDATE kv SET n = n + 1 WHERE id = ?",
                  (rnd.randrange(2000),))
        lat.append(time.perf_counter() - t0)
    r1, _ = reqs(mnt, db)
    c.close()
    umount(mnt)
    med, p99 = statistics.median(lat), pct(lat, 0.99)
    per = (r1 - r0) / COMMITS
    row("commit staleness=%d median" % staleness, ms(med),
        "raw PUT %.2f ms" % raw_put_ms,
        "%.2f PUT round trips" % (med * 1e3 / raw_put_ms))
    row("commit staleness=%d p99" % staleness, ms(p99), "", "")
    row("requests per commit staleness=%d" % staleness, "%.2f" % per, "", "")


# ---------------------------------------------------------------- readers
def readers():
    mnt = mount("r", "staleness=0")
    db = "readers"
    path = os.path.join(mnt, db + ".db")
    make_kv(path)
    for n in (1, 4, 16):
        per_reader = 1600 // n
        r0, _ = reqs(mnt, db)
        errs = []

        def work(k):
            try:
                c = connect(path)
                rnd = random.Random(k)
                for _ in range(per_reader):
                    c.execute("SELECT v FROM kv WHERE id = ?",
                              (rnd.randrange(2000),)).fetchone()
                c.close()
            except Exception as e:  # reported below
                errs.append(e)

        th = [threading.Thread(target=work, args=(k,)) for k in range(n)]
        t0 = time.perf_counter()
        for t in th:
            t.start()
        for t in th:
            t.join()
        dt = time.perf_counter() - t0
        r1, _ = reqs(mnt, db)
        if errs:
            raise SystemExit("readers: %s" % errs[0])
        total = per_reader * n
        row("requests per read txn, %2d readers" % n,
            "%.3f" % ((r1 - r0) / total),
            "%.0f SELECTs/s" % (total / dt), "")
    umount(mnt)


# ---------------------------------------------------------------- big db
def make_big(path):
    rows_n = int(GB * 1024 * 1024 * 1024 / 1000)
    c = sqlite3.connect(path)
    c.execute("PRAGMA page_size=4096")
    c.execute("PRAGMA journal_mode=OFF")
    c.execute("PRAGMA synchronous=OFF")
    c.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)")
    c.execute("CREATE TABLE small(k TEXT PRIMARY KEY, v INT)")
    c.execute("CREATE INDEX small_v ON small(v)")
    c.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
              "WHERE x < ?) INSERT INTO big SELECT x, randomblob(900) FROM c",
              (rows_n,))
    c.execute("INSERT INTO small VALUES ('a', 1), ('b', 2)")
    c.commit()
    c.close()
    return rows_n


FIRST_QUERY = r"""
import sqlite3, sys, time
t0 = time.perf_counter()
c = sqlite3.connect(sys.argv[1])
v = c.execute("SELECT length(v) FROM big WHERE id = ?", (int(sys.argv[2]),)).fetchone()
dt = time.perf_counter() - t0
assert v and v[0] == 900, v
print(dt)
"""


def cold_and_bulk(whole):
    big = os.path.join(W, "big.db")
    log("generating a %.1f GB database" % GB)
    n = make_big(big)
    size = os.path.getsize(big)
    url = STORE + "/big"
    t0 = time.perf_counter()
    subprocess.check_call([DSQLFS, "import", big, url],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    imp = time.perf_counter() - t0
    out = os.path.join(W, "out.db")
    t0 = time.perf_counter()
    subprocess.check_call([DSQLFS, "export", url, out],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exp = time.perf_counter() - t0
    if subprocess.call(["cmp", "-s", big, out]) != 0:
        raise SystemExit("export differs from the imported file")
    os.unlink(out)
    wb = subprocess.check_output([BENCH_RAW, "whole", STORE + "/raw", big],
                                 text=True)
    w = dict(l.split("=") for l in wb.split())
    wput, wget = float(w["whole_put_s"]), float(w["whole_get_s"])
    mb = size / 1e6
    row("import %.0f MB" % mb, "%.2f s" % imp, "whole PUT %.2f s" % wput,
        "%.2fx" % (imp / wput))
    row("export %.0f MB" % mb, "%.2f s" % exp,
        "whole GET to a file %.2f s" % wget,
        "%.2fx (GET alone %.2f s)" % (exp / wget, float(w["whole_get_mem_s"])))

    # cold first query: fresh mount, fresh cache
    mnt = mount("cold", "staleness=0")
    q = os.path.join(W, "q.py")
    with open(q, "w") as f:
        f.write(FIRST_QUERY)
    key = n // 2 + 17
    py = shutil.which("python3") if not os.path.exists("/usr/bin/python3") \
        else "/usr/bin/python3"
    t = float(subprocess.check_output([py, q, os.path.join(mnt, "big.db"),
                                       str(key)], text=True))
    r1, b1 = reqs(mnt, "big")
    # store_chain: the longest run of requests one after another (each
    # sent after the previous one's answer) since the handle opened
    chain = status(mnt, "big").get("store_chain", 0)
    row("cold first query, %.0f MB db" % mb, ms(t),
        "raw GET %.2f ms" % whole["get_median_ms"],
        "%d requests, %d in a row, %.2f MB" % (r1, chain, b1 / 1e6))
    t2 = float(subprocess.check_output([py, q, os.path.join(mnt, "big.db"),
                                        str(key)], text=True))
    r2, b2 = reqs(mnt, "big")
    row("same query, second process", ms(t2), "",
        "%d requests, %d bytes" % (r2 - r1, b2 - b1))
    umount(mnt)
    # the same at staleness=1: the read transactions' freshness checks
    # are answered by the open's listing, what is left is the cold open
    mnt = mount("cold1", "staleness=1")
    t = float(subprocess.check_output([py, q, os.path.join(mnt, "big.db"),
                                       str(key + 1)], text=True))
    r1, b1 = reqs(mnt, "big")
    chain = status(mnt, "big").get("store_chain", 0)
    row("cold first query, staleness=1", ms(t), "",
        "%d requests, %d in a row, %.2f MB" % (r1, chain, b1 / 1e6))
    umount(mnt)

    # cold full scan: a fresh mount reads every page of the big table
    mnt = mount("scan", "staleness=1")
    t0 = time.perf_counter()
    got = subprocess.check_output(
        ["sqlite3", os.path.join(mnt, "big.db"),
         "SELECT count(*), sum(length(v)) FROM big"], text=True).strip()
    t = time.perf_counter() - t0
    if got != "%d|%d" % (n, n * 900):
        raise SystemExit("full scan: %r" % got)
    r3, b3 = reqs(mnt, "big")
    row("cold full scan, %.0f MB db" % mb, "%.0f MB/s" % (mb / t),
        "whole GET %.0f MB/s" % (mb / float(w["whole_get_mem_s"])),
        "%.2fx, %d requests, %.0f MB" % ((mb / t) / (mb / float(w["whole_get_mem_s"])),
                                          r3, b3 / 1e6))
    umount(mnt)
    os.unlink(big)


# ---------------------------------------------------------------- two mounts
def writer(path, table, n, out):
    c = connect(path, timeout=60)
    rnd = random.Random(table)
    done = retries = 0
    t0 = time.perf_counter()
    while done < n:
        try:
            c.execute("UPDATE %s SET n = n + 1 WHERE id = ?" % table,
                      (rnd.randrange(500),))
            done += 1
        except sqlite3.Error:
            retries += 1
    out[table] = (time.perf_counter() - t0, retries)
    c.close()


def two_mounts():
    a = mount("ma", "staleness=0")
    b = mount("mb", "staleness=0")
    db = "two"
    pa, pb = os.path.join(a, db + ".db"), os.path.join(b, db + ".db")
    c = connect(pa)
    for t in ("t1", "t2"):
        c.execute("CREATE TABLE %s(id INTEGER PRIMARY KEY, n INT, v TEXT)" % t)
        c.execute("BEGIN")
        c.executemany("INSERT INTO %s VALUES (?, 0, ?)" % t,
                      ((i, "y" * 60) for i in range(500)))
        c.execute("COMMIT")
    c.close()
    n = COMMITS
    out = {}
    writer(pa, "t1", n, out)
    alone = n / out["t1"][0]
    out = {}
    th = [threading.Thread(target=writer, args=(pa, "t1", n, out)),
          threading.Thread(target=writer, args=(pb, "t2", n, out))]
    for t in th:
        t.start()
    for t in th:
        t.join()
    both = 2 * n / max(out["t1"][0], out["t2"][0])
    sa, sb = status(a, db), status(b, db)
    row("two mounts, disjoint tables", "%.0f commits/s" % both,
        "one mount %.0f/s" % alone,
        "%.2fx (rebases %d+%d, retries %d+%d)" % (
            both / alone, sa["rebases"], sb["rebases"], out["t1"][1],
            out["t2"][1]))
    umount(a)
    umount(b)


def main():
    try:
        r = raw()
        row("raw PUT 4 KiB (create-only)", ms(r["put_median_ms"] / 1e3),
            "p99 " + ms(r["put_p99_ms"] / 1e3), "")
        row("raw GET 4 KiB", ms(r["get_median_ms"] / 1e3),
            "p99 " + ms(r["get_p99_ms"] / 1e3), "")
        if "commits" in ONLY:
            for s in (0, 1):
                commits(s, r["put_median_ms"])
        if "readers" in ONLY:
            readers()
        if "two" in ONLY:
            two_mounts()
        if "cold" in ONLY:
            cold_and_bulk(r)
    finally:
        for p, m in daemons:
            if p.poll() is None:
                subprocess.call(["fusermount3", "-u", m],
                                stderr=subprocess.DEVNULL)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(W, ignore_errors=True)
    print()
    print("| figure | dsqlfs | baseline | ratio / notes |")
    print("|---|---|---|---|")
    for name, v, b, q in rows:
        print("| %s | %s | %s | %s |" % (name, v, b, q))


main()
