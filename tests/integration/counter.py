"""counter.py DB N [busy_ms]: increment counter row 1 N times, one
transaction each (BEGIN IMMEDIATE), retrying on SQLITE_BUSY / I/O errors.
Prints the number of retries."""
import sqlite3
import sys
import time

db, n = sys.argv[1], int(sys.argv[2])
busy = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
con = sqlite3.connect(db, timeout=busy / 1000.0, isolation_level=None)
retries = 0
done = 0
while done < n:
    try:
        con.execute("BEGIN IMMEDIATE")
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
