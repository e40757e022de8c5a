"""counter.py DB N [busy_ms [mode]]: increment counter row 1 N times, one
transaction each, retrying on SQLITE_BUSY / I/O errors.  mode: immediate
(BEGIN IMMEDIATE; SELECT; UPDATE; COMMIT, the default), deferred (BEGIN;
SELECT; UPDATE; COMMIT: a read transaction that becomes a write one) or
autocommit (one UPDATE statement).  Prints the number of retries, then
the seconds the N increments took."""
import sqlite3
import sys
import time

db, n = sys.argv[1], int(sys.argv[2])
busy = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
mode = sys.argv[4] if len(sys.argv) > 4 else "immediate"
con = sqlite3.connect(db, timeout=busy / 1000.0, isolation_level=None)
retries = 0
done = 0
t0 = time.monotonic()
while done < n:
    try:
        if mode == "autocommit":
            con.execute("UPDATE counter SET v = v + 1 WHERE id = 1")
        else:
            con.execute("BEGIN IMMEDIATE" if mode == "immediate" else "BEGIN")
            (v,) = con.execute("SELECT v FROM counter WHERE id = 1").fetchone()
            con.execute("UPDATE counter SET v = ? WHERE id = 1", (v + 1,))
            con.execute("COMMIT")
        done += 1
    except sqlite3.OperationalError as e:
        retries += 1
        try:
            con.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass
        if retries > 100000:
            raise SystemExit("too many retries: %s" % e)
        time.sleep(0.001)
print(retries)
print("%.3f" % (time.monotonic() - t0))
