#!/usr/bin/env bash
# The FUSE mount with the sqlite3 shell on a local directory store:
# mount/unmount, namespace, reads of an imported database, writes in each
# rollback journal mode (each transaction one version), remount, refusals
# (unknown option, bad source, content, rm), WAL mode, O_CREAT, cp in/out,
# the status directory.
source "$(dirname "$0")/lib.sh"
need_fuse
M=$T/mnt

log "refusals at mount time"
mkdir -p "$M"
out=$("$DSQLFS" "$STORE" "$M" -o bogus_opt 2>&1) && fail "unknown option accepted"
echo "$out" | grep -q "unknown mount option 'bogus_opt'" || fail "message: $out"
out=$("$DSQLFS" "$STORE" "$M" -o staleness=abc 2>&1) && fail "bad value accepted"
echo "$out" | grep -q staleness || fail "message: $out"
out=$("$DSQLFS" "$STORE" "$T/nonexistent" 2>&1) && fail "missing mountpoint accepted"
echo "$out" | grep -q "cannot mount on" || fail "message: $out"
out=$("$DSQLFS" "nope://x" "$M" 2>&1) && fail "bad URL accepted"
[ "$(echo "$out" | wc -l)" = 1 ] || fail "not one line: $out"

log "import a database, mount, read it"
sqlite3 "$T/src.db" "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<2000)
  INSERT INTO t(v) SELECT printf('row-%05d', i) FROM c;"
"$DSQLFS" import "$T/src.db" "$STORE/shop" -q
"$DSQLFS" import "$T/src.db" "$STORE/dept/inner" -q
mount_store "$M"
ls -la "$M" >/dev/null
[ -f "$M/shop.db" ] || fail "shop.db missing"
[ -d "$M/dept" ] || fail "dept/ missing"
[ -f "$M/dept/inner.db" ] || fail "dept/inner.db missing"
eq "$(stat -c %s "$M/shop.db")" "$(stat -c %s "$T/src.db")" "size"
eq "$(sq "$M/shop.db" 'SELECT count(*), max(v) FROM t')" "2000|row-02000" "read"
eq "$(sq "$M/dept/inner.db" 'PRAGMA integrity_check')" ok "integrity nested"
[ -e "$M/shop.db-journal" ] && fail "journal shown"

log "writes in each rollback journal mode, one version per transaction"
n=0
for mode in delete truncate persist memory off; do
    v0=$("$DSQLFS" versions "$STORE/shop" | tail -n +2 | wc -l)
    sq "$M/shop.db" "PRAGMA journal_mode=$mode;" >/dev/null
    sq "$M/shop.db" "PRAGMA journal_mode=$mode; BEGIN; INSERT INTO t(v) VALUES('$mode-1'); INSERT INTO t(v) VALUES('$mode-2'); COMMIT;" >/dev/null
    sq "$M/shop.db" "PRAGMA journal_mode=$mode; UPDATE t SET v = v || '+' WHERE id = 1;" >/dev/null
    n=$((n + 3))
    v1=$("$DSQLFS" versions "$STORE/shop" | tail -n +2 | wc -l)
    [ $((v1 - v0)) -eq 2 ] || fail "$mode: $((v1 - v0)) versions for 2 transactions"
    eq "$(sq "$M/shop.db" "SELECT count(*) FROM t WHERE v LIKE '$mode-%'")" 2 "$mode rows"
    eq "$(sq "$M/shop.db" 'PRAGMA integrity_check')" ok "$mode integrity"
    # the store has it: export and compare
    "$DSQLFS" export "$STORE/shop" "$T/exp.db" -q
    eq "$(sqlite3 "$T/exp.db" "SELECT count(*) FROM t WHERE v LIKE '$mode-%'")" 2 "$mode in store"
done
[ "$(ls "$M" | grep -c journal)" -le 1 ] || fail "journals left: $(ls "$M")"

log "an explicit ROLLBACK commits nothing"
v0=$("$DSQLFS" versions "$STORE/shop" | tail -n +2 | wc -l)
sq "$M/shop.db" "PRAGMA journal_mode=delete; PRAGMA cache_size=2; BEGIN; UPDATE t SET v = hex(randomblob(200)); ROLLBACK;" >/dev/null
v1=$("$DSQLFS" versions "$STORE/shop" | tail -n +2 | wc -l)
eq "$v1" "$v0" "versions after a rollback"
eq "$(sq "$M/shop.db" "SELECT v FROM t WHERE id=2")" "row-00002" "rolled back"

log "unmount, remount: same data"
before=$(sq "$M/shop.db" 'SELECT count(*), sum(length(v)) FROM t')
unmount "$M"
mount_store "$M"
eq "$(sq "$M/shop.db" 'SELECT count(*), sum(length(v)) FROM t')" "$before" "after remount"
eq "$(sq "$M/shop.db" 'PRAGMA integrity_check')" ok "integrity after remount"

log "O_CREAT makes a database; the shell creates and fills it"
sq "$M/fresh.db" "CREATE TABLE a(x); INSERT INTO a VALUES (42);"
eq "$(sq "$M/fresh.db" 'SELECT x FROM a')" 42 "fresh"
"$DSQLFS" export "$STORE/fresh" "$T/fresh.db" -q
eq "$(sqlite3 "$T/fresh.db" 'SELECT x FROM a')" 42 "fresh in store"

log "refusals: content that is not SQLite, rm, WAL"
err=$( (echo hello > "$M/notes.txt") 2>&1) && fail "a text file was written"
echo "$err" | grep -q "Invalid argument" || fail "echo: $err"
[ -e "$M/notes.txt" ] && fail "the refused file is still listed: $(ls -a "$M")"
ls "$T/store" | grep -q notes && fail "the refused file left objects in the store: $(ls "$T/store" 2>/dev/null)"
err=$(rm "$M/shop.db" 2>&1) && fail "rm allowed"
echo "$err" | grep -q "Operation not permitted" || fail "rm: $err"
[ -f "$M/shop.db" ] || fail "shop.db gone"
log "WAL mode: the switch sticks, commits are versions, the switch back too"
eq "$(sq "$M/fresh.db" 'PRAGMA journal_mode=WAL')" wal "WAL switch"
eq "$(sq "$M/fresh.db" 'PRAGMA journal_mode')" wal "journal mode after the switch"
v0=$("$DSQLFS" versions "$STORE/fresh" | tail -n +2 | wc -l)
sq "$M/fresh.db" "INSERT INTO a VALUES (43);"
sq "$M/fresh.db" "BEGIN; INSERT INTO a VALUES (44); INSERT INTO a VALUES (45); COMMIT;"
v1=$("$DSQLFS" versions "$STORE/fresh" | tail -n +2 | wc -l)
eq "$((v1 - v0))" 2 "versions for two WAL transactions"
"$DSQLFS" export "$STORE/fresh" "$T/fresh-wal.db" -q
eq "$(sqlite3 "$T/fresh-wal.db" 'PRAGMA journal_mode; SELECT count(*) FROM a')" "wal
4" "WAL commits in the store"
eq "$(sq "$M/fresh.db" 'PRAGMA journal_mode=DELETE')" delete "switch back"
eq "$(sq "$M/fresh.db" 'PRAGMA journal_mode; SELECT count(*) FROM a; PRAGMA integrity_check')" "delete
4
ok" "rollback mode again"
[ -e "$M/fresh.db-wal" ] && fail "-wal left"

log "cp in and out: identical bytes"
sqlite3 "$T/big.db" "PRAGMA page_size=1024; CREATE TABLE b(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<20000) INSERT INTO b SELECT randomblob(100) FROM c;"
cp "$T/big.db" "$M/copied.db"
cmp "$T/big.db" "$M/copied.db" || fail "cp in: bytes differ through the mount"
cp "$M/copied.db" "$T/out.db"
cmp "$T/big.db" "$T/out.db" || fail "cp out differs"
"$DSQLFS" export "$STORE/copied" "$T/out2.db" -q
cmp "$T/big.db" "$T/out2.db" || fail "the store's copy differs"
eq "$(sq "$M/copied.db" 'SELECT count(*) FROM b')" 20000 "copied rows"
# copy over an existing database: it empties the database first, which
# only a mount that allows deleting databases does
sqlite3 "$T/big.db" "DELETE FROM b WHERE rowid % 2 = 0; VACUUM;"
err=$(cp "$T/big.db" "$M/copied.db" 2>&1) && fail "cp over an existing database without allow_delete"
echo "$err" | grep -q "Operation not permitted" || fail "cp over: $err"
eq "$(sq "$M/copied.db" 'SELECT count(*) FROM b')" 20000 "untouched after the refused copy"
unmount "$M"
mount_store "$M" -o allow_delete
cp "$T/big.db" "$M/copied.db"
cmp "$T/big.db" "$M/copied.db" || fail "cp over an existing database"
eq "$(sq "$M/copied.db" 'SELECT count(*) FROM b')" 10000 "copied-over rows"

log "status directory"
sq "$M/shop.db" 'SELECT count(*) FROM t' >/dev/null # known to this daemon
ls "$M/.dsqlfs" | grep -q "shop.json" || fail "no status file: $(ls "$M/.dsqlfs")"
grep -q '"version"' "$M/.dsqlfs/shop.json" || fail "status content"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['version']>=10 and d['lag']==0, d" "$M/.dsqlfs/shop.json"
grep -q 'dsqlfs_commits_total{db="shop"}' "$M/.dsqlfs/metrics.prom" || fail "metrics"
err=$(touch "$M/.dsqlfs/x" 2>&1) && fail "status dir writable"
# the loop's spin trials (fuse/spin.c): after 400 read transactions (1,600
# lock requests) one epoch's two trials have ended; with one CPU the
# daemon never spins and says nothing
python3 - "$M/shop.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
for _ in range(400):
    c.execute("SELECT count(*) FROM t").fetchone()
PY
if [ "$(nproc)" -ge 2 ]; then
    grep -qE '^dsqlfs_fuse_spin [01]$' "$M/.dsqlfs/metrics.prom" ||
        fail "no spin choice in metrics: $(grep spin "$M/.dsqlfs/metrics.prom")"
    grep -qE '^dsqlfs_fuse_spin_trial_cost_us\{way="sleep"\} [0-9]+$' "$M/.dsqlfs/metrics.prom" ||
        fail "no sleeping trial cost in metrics"
    grep -qE '^dsqlfs_fuse_spin_trials_total [1-9]' "$M/.dsqlfs/metrics.prom" ||
        fail "no spin trials counted"
else
    grep -q '^dsqlfs_fuse_spin ' "$M/.dsqlfs/metrics.prom" && fail "spin trials with spin_us=0"
fi

# FUSE_HANDLE_KILLPRIV (fuse/devio.c): the kernel does not fetch a new
# journal's attributes before SQLite's fchown of it (done as root only),
# so a DELETE-mode commit costs one getattr (the database's), not two
grep -q '^dsqlfs_fuse_handle_killpriv 1$' "$M/.dsqlfs/metrics.prom" ||
    fail "no FUSE_HANDLE_KILLPRIV: $(grep killpriv "$M/.dsqlfs/metrics.prom")"
if [ "$(id -u)" = 0 ]; then
    getattrs() { sed -n 's/^dsqlfs_fuse_requests_total{op="getattr"} //p' "$M/.dsqlfs/metrics.prom"; }
    g0=$(getattrs)
    python3 - "$M/killpriv.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA journal_mode=DELETE")
c.execute("PRAGMA synchronous=FULL")
c.execute("CREATE TABLE k(v)")
for i in range(100):
    c.execute("INSERT INTO k VALUES (?)", (i,))
PY
    g1=$(getattrs)
    eq "$(sq "$M/killpriv.db" 'SELECT count(*) FROM k')" 100 "killpriv.db rows"
    [ $((g1 - g0)) -lt 150 ] ||
        fail "$((g1 - g0)) getattrs in 100 commits (2 each: the kernel checks setuid bits before SQLite's fchown)"
fi

log "unmount leaves nothing behind"
unmount "$M"
wait_daemons
"$DSQLFS" verify "$STORE/shop" >/dev/null || fail "verify"
echo "test_mount_basic: ok"
