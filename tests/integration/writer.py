"""writer.py DB START: insert rows START, START+1, ... one transaction
each, printing "try N" before and "ok N" after each commit, until an
error (the daemon died).  Journal mode from $DSQ_JOURNAL (default
delete)."""
import os
import sqlite3
import sys

db, i = sys.argv[1], int(sys.argv[2])
try:
    con = sqlite3.connect(db, timeout=5, isolation_level=None)
    con.execute("PRAGMA journal_mode=%s" % os.environ.get("DSQ_JOURNAL", "delete"))
    while True:
        print("try", i, flush=True)
        con.execute("INSERT INTO w VALUES (?, randomblob(500))", (i,))
        print("ok", i, flush=True)
        i += 1
except Exception as e:  # the daemon went away
    print("stop", repr(e), flush=True)
