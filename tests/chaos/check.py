"""check.py FINAL.db WRITER.log...: the chaos harness's verdict.

Each log is one chaos_writer's account of its transactions (see
chaos_writer.c): "try ID N", then "ok ID", "retry ID CODE ERRNO" (certainly
not committed, tried again), "fail ID CODE ERRNO" (not committed, unless
ERRNO is EREMOTEIO: outcome unknown), or nothing (the writer or its daemon
died: outcome unknown).  FINAL.db is the newest version, exported from the
store.  Prints one line of counts; exits 1 when an acknowledged
transaction is missing or incomplete (lost), a row belongs to no
transaction that may have committed (phantom), or a multi-row
transaction is present in part (partial)."""
import os
import sqlite3
import sys

EREMOTEIO = 121


def parse(path):
    name = os.path.basename(path)[: -len(".log")]
    acked, maybe, failed = {}, {}, {}
    cur = None  # (id, n) of the transaction without an outcome yet
    with open(path) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            if p[0] == "try":
                cur = (int(p[1]), int(p[2]))
            elif p[0] == "ok" and cur and int(p[1]) == cur[0]:
                acked[cur[0]] = cur[1]
                cur = None
            elif p[0] == "retry" and cur and int(p[1]) == cur[0]:
                cur = None
            elif p[0] == "fail" and cur and int(p[1]) == cur[0]:
                if int(p[3]) == EREMOTEIO:
                    maybe[cur[0]] = cur[1]
                else:
                    failed[cur[0]] = cur[1]
                cur = None
            elif p[0] == "stop":
                break
    if cur:
        maybe[cur[0]] = cur[1]  # in flight when the writer or daemon died
    return name, acked, maybe, failed


def main():
    db, logs = sys.argv[1], sys.argv[2:]
    con = sqlite3.connect(db)
    present = {}  # (w, id) -> (rows, n declared)
    for w, seq, cnt in con.execute("SELECT w, seq, count(*) FROM a GROUP BY w, seq"):
        present[(w, seq)] = (cnt, 1)
    for w, txn, cnt, n1, n2 in con.execute(
            "SELECT w, txn, count(*), min(n), max(n) FROM m GROUP BY w, txn"):
        present[(w, txn)] = (cnt, n1 if n1 == n2 else -1)
    acked_txns = acked_rows = maybe_n = maybe_landed = failed_n = 0
    lost, phantom, partial = [], [], []
    known = set()
    for path in logs:
        name, acked, maybe, failed = parse(path)
        for i, n in acked.items():
            acked_txns += 1
            acked_rows += n
            known.add((name, i))
            got = present.get((name, i))
            if got is None:
                lost.append((name, i))
            elif got != (n, n):
                partial.append((name, i, got, n))
        for i, n in maybe.items():
            maybe_n += 1
            known.add((name, i))
            got = present.get((name, i))
            if got is not None:
                maybe_landed += 1
                if got != (n, n):
                    partial.append((name, i, got, n))
        failed_n += len(failed)
    for key in present:
        if key not in known:
            phantom.append(key)
    bylog = {os.path.basename(p)[: -len(".log")]: p for p in logs}
    for what, v in (("LOST", lost), ("PHANTOM", phantom), ("PARTIAL", partial)):
        for x in v[:20]:
            print(what, x, file=sys.stderr)
            # what the writer said of that transaction
            if x[0] in bylog:
                with open(bylog[x[0]]) as f:
                    said = [l.strip() for l in f
                            if len(l.split()) > 1 and l.split()[1] == str(x[1])]
                print("   ", "; ".join(said[:8]), file=sys.stderr)
    print("acknowledged_txns %d acknowledged_rows %d unknown_outcome %d "
          "unknown_landed %d failed %d lost %d phantom %d partial %d" % (
              acked_txns, acked_rows, maybe_n, maybe_landed, failed_n,
              len(lost), len(phantom), len(partial)))
    return 1 if lost or phantom or partial else 0


def selftest():
    """The verdict must be able to fail: one lost, one phantom and one
    partial transaction among legitimate ones are each found."""
    import tempfile
    d = tempfile.mkdtemp(prefix="chaos-check-")
    db = os.path.join(d, "final.db")
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE a(w TEXT, seq INT, pad BLOB, PRIMARY KEY(w, seq));
        CREATE TABLE m(w TEXT, txn INT, k INT, n INT, pad BLOB,
                       PRIMARY KEY(w, txn, k));
        INSERT INTO a VALUES ('x', 1, NULL), ('x', 3, NULL), ('x', 4, NULL);
        INSERT INTO m VALUES ('y', 1, 1, 3, NULL), ('y', 1, 2, 3, NULL),
                             ('y', 2, 1, 2, NULL), ('y', 2, 2, 2, NULL);""")
    con.commit()
    con.close()
    logs = {"x": "try 1 1\nok 1\ntry 2 1\nok 2\ntry 3 1\nfail 3 778 5\n"
                 "try 4 1\nretry 4 3850 35\ntry 4 1\nok 4\n",
            "y": "try 1 3\nok 1\ntry 2 2\nfail 2 2570 121\ntry 3 2\n"}
    paths = []
    for name, text in logs.items():
        paths.append(os.path.join(d, name + ".log"))
        with open(paths[-1], "w") as f:
            f.write(text)
    sys.argv = ["check.py", db] + paths
    import io
    out, err = io.StringIO(), io.StringIO()
    so, se = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        rc = main()
    finally:
        sys.stdout, sys.stderr = so, se
    want = "lost 1 phantom 1 partial 1"
    ok = rc == 1 and want in out.getvalue() and "unknown_landed 1" in out.getvalue()
    ok = ok and "('x', 2)" in err.getvalue() and "('x', 3)" in err.getvalue()
    print("check.py selftest:", "ok" if ok else "FAILED: " + out.getvalue() +
          err.getvalue())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(selftest() if sys.argv[1:] == ["--selftest"] else main())
