"""bank.py DB SEED N: N random transfers between accounts, each one
transaction, retried on any sqlite3 error (BUSY, I/O error at commit).
Prints the number of retries."""
import random
import sqlite3
import sys
import time

db, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
con = sqlite3.connect(db, timeout=2, isolation_level=None)
retries = 0
# the other processes' transactions may keep the lock for longer than the
# busy timeout: the first read retries like the transfers do
while True:
    try:
        (accounts,) = con.execute("SELECT count(*) FROM acct").fetchone()
        break
    except sqlite3.OperationalError:
        retries += 1
done = 0
deadline = time.time() + 240
while done < n:
    a, b = rnd.randrange(1, accounts + 1), rnd.randrange(1, accounts + 1)
    amt = rnd.randrange(1, 50)
    try:
        con.execute("BEGIN IMMEDIATE")
        (ba,) = con.execute("SELECT bal FROM acct WHERE id=?", (a,)).fetchone()
        con.execute("UPDATE acct SET bal = bal - ? WHERE id = ?", (amt, a))
        con.execute("UPDATE acct SET bal = bal + ? WHERE id = ?", (amt, b))
        con.execute("COMMIT")
        done += 1
    except sqlite3.OperationalError:
        retries += 1
        try:
            con.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass
        if time.time() > deadline:
            raise SystemExit("bank: out of time after %d transfers" % done)
        time.sleep(rnd.random() * 0.02)
print(retries)
