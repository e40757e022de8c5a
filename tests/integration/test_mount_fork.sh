#!/usr/bin/env bash
# Forks (docs/format.md section 9, docs/commit.md C11): a fork of a 1 GB
# database takes well under a second and a handful of store requests (it
# names the source's objects); a fork reads byte-identical to the source
# version (@vN, @TIME); fork and source diverge on two mounts; gc on each
# keeps the other whole (verify on both, content checked); a fork into
# another store copies.  DSQ_FORK_MB sets the big database's size (1024).
export DSQLFS_TEST_MIN_AGE_MS=3000 # gc's minimum age, for every process
source "$(dirname "$0")/lib.sh"
need_fuse
mount_store "$T/m1"
mount_store "$T/m2"
ver() { "$DSQLFS" status "$1" | awk '/^version:/ {print $2}'; }

log "a small database: fork at a version and at a time, byte for byte"
sq "$T/m1/s.db" "PRAGMA page_size=1024; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX tv ON t(v);"
sq "$T/m1/s.db" "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<20000) INSERT INTO t SELECT i, printf('%040d', i) FROM c;"
for i in 1 2 3 4 5; do sq "$T/m1/s.db" "INSERT INTO t(v) VALUES('s$i'); UPDATE t SET v = 'u$i' WHERE id = $i * 100;"; done
K=$(( $(ver "$STORE/s") - 3 ))
out=$("$DSQLFS" fork "$STORE/s@v$K" "$STORE/f") || fail "fork: $out"
log "$out"
"$DSQLFS" export -q "$STORE/s" "$T/s.db" --version "$K"
"$DSQLFS" export -q "$STORE/f" "$T/f.db"
cmp -s "$T/s.db" "$T/f.db" || fail "the fork's version 1 differs from version $K"
eq "$(ver "$STORE/f")" 1 "the fork's versions"
tK=$("$DSQLFS" versions "$STORE/s" | awk -v k="$K" '$1 == k {print $2}')
"$DSQLFS" fork "$STORE/s@$tK" "$STORE/ft" >/dev/null || fail "fork @TIME"
"$DSQLFS" export -q "$STORE/ft" "$T/ft.db"
cmp -s "$T/s.db" "$T/ft.db" || fail "fork @$tK is not version $K"
"$DSQLFS" verify "$STORE/f" >/dev/null || fail "verify the fork"
out=$("$DSQLFS" fork "$STORE/s" "$STORE/f" 2>&1) && fail "a fork over an existing database"
case $out in *"already has"*) ;; *) fail "fork onto f: $out" ;; esac

log "fork and source diverge, through two mounts, past a checkpoint"
for i in $(seq 1 55); do
    sq "$T/m2/f.db" "INSERT INTO t(v) VALUES('fork$i'); UPDATE t SET v = 'f$i' WHERE id = $i * 7;"
done
for i in 1 2 3; do sq "$T/m1/s.db" "DELETE FROM t WHERE id % 10 = $i"; done
eq "$(sq "$T/m1/f.db" "SELECT count(*) FROM t WHERE v LIKE 'fork%'")" 55 "the fork's rows on the other mount"
eq "$(sq "$T/m2/s.db" "SELECT count(*) FROM t WHERE v LIKE 'fork%'")" 0 "the source does not see the fork's rows"
eq "$(sq "$T/m2/f.db" "SELECT count(*) FROM t WHERE id % 10 = 1 AND id <= 20000")" 2000 "the fork does not see the source's deletes"
eq "$(sq "$T/m1/s.db" "SELECT count(*) FROM t WHERE id % 10 = 1")" 0 "the source's deletes"
eq "$(sq "$T/m1/f.db" "PRAGMA integrity_check")" ok "the fork's integrity"
eq "$(sq "$T/m2/s.db" "PRAGMA integrity_check")" ok "the source's integrity"

log "a fork of a fork (its chunks name the first source's segments)"
"$DSQLFS" fork "$STORE/f" "$STORE/g" >/dev/null || fail "fork of a fork"
"$DSQLFS" export -q "$STORE/f" "$T/fl.db"
"$DSQLFS" export -q "$STORE/g" "$T/g.db"
cmp -s "$T/fl.db" "$T/g.db" || fail "the fork of a fork differs"
"$DSQLFS" verify "$STORE/g" >/dev/null || fail "verify the fork of a fork"
sq "$T/m2/g.db" "INSERT INTO t(v) VALUES('g')"
eq "$(sq "$T/m1/g.db" "SELECT count(*) FROM t WHERE v = 'g'")" 1 "a commit on the fork of a fork"

log "gc on each keeps the other whole"
sleep 4
"$DSQLFS" gc "$STORE/s" --keep 1 --keep-for 3 || fail "gc on the source"
"$DSQLFS" gc "$STORE/f" --keep 1 --keep-for 3 || fail "gc on the fork"
first_s=$("$DSQLFS" versions "$STORE/s" | awk 'NR == 2 {print $1}')
[ "$first_s" -le "$K" ] || fail "gc on the source removed the pinned version $K (first kept: $first_s)"
first_f=$("$DSQLFS" versions "$STORE/f" | awk 'NR == 2 {print $1}')
[ "$first_f" -gt 1 ] || fail "gc on the fork removed nothing (first kept: $first_f)"
"$DSQLFS" verify "$STORE/s" >/dev/null || fail "verify the source after both gc"
"$DSQLFS" verify "$STORE/f" >/dev/null || fail "verify the fork after both gc"
"$DSQLFS" verify "$STORE/ft" >/dev/null || fail "verify the @TIME fork after both gc"
"$DSQLFS" verify "$STORE/g" >/dev/null || fail "verify the fork of a fork after both gc"
"$DSQLFS" export -q "$STORE/ft" "$T/ft2.db"
cmp -s "$T/s.db" "$T/ft2.db" || fail "the untouched fork changed after gc"
eq "$(sq "$T/m1/f.db" "PRAGMA integrity_check")" ok "the fork after gc"
eq "$(sq "$T/m2/f.db" "SELECT count(*) FROM t WHERE v LIKE 'fork%'")" 55 "the fork's rows after gc"
eq "$(sq "$T/m1/s.db" "PRAGMA integrity_check")" ok "the source after gc"

log "a fork into another store copies"
if [ "$IT_S3" = 0 ]; then
    out=$("$DSQLFS" fork "$STORE/s" "file://$T/other/c") || fail "fork across stores: $out"
    case $out in *"copied (another store)"*) ;; *) fail "across stores: $out" ;; esac
    "$DSQLFS" verify "file://$T/other/c" >/dev/null || fail "verify the copy"
    "$DSQLFS" export -q "$STORE/s" "$T/sl.db"
    "$DSQLFS" export -q "file://$T/other/c" "$T/c.db"
    cmp -s "$T/sl.db" "$T/c.db" || fail "the copied fork differs"
fi

log "a source with forks is not deleted (allow_delete)"
unmount "$T/m1"
mount_store "$T/m1" -o allow_delete
if rm "$T/m1/s.db" 2>/dev/null; then fail "rm of a forked source worked"; fi
grep -q 'unlink s.db refused (EBUSY): a fork uses its objects' "$T/m1.log" || fail "no log line for the refused rm"
"$DSQLFS" verify "$STORE/s" >/dev/null || fail "verify the source after the refused rm"
rm "$T/m1/ft.db" || fail "rm of a fork"
[ -e "$T/m1/ft.db" ] && fail "the fork is still there"
"$DSQLFS" verify "$STORE/s" >/dev/null || fail "verify the source after its fork's rm"

MB=${DSQ_FORK_MB:-1024}
log "a fork of a ${MB} MB database: time and requests"
sqlite3 "$T/big.db" "PRAGMA page_size=4096; PRAGMA journal_mode=OFF; CREATE TABLE b(id INTEGER PRIMARY KEY, v TEXT);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < $MB * 1024)
  INSERT INTO b SELECT i, printf('%0900d', i) FROM c;" >/dev/null
size=$(stat -c %s "$T/big.db")
[ "$size" -ge $((MB * 1000 * 1000)) ] || fail "the big database is only $size bytes"
"$DSQLFS" import -q "$T/big.db" "$STORE/big" || fail "import big"
rm -f "$T/big.db"
sq "$T/m1/big.db" "INSERT INTO b(v) VALUES('after import')"
out=$("$DSQLFS" fork "$STORE/big" "$STORE/bigf") || fail "fork big: $out"
log "$out"
reqs=$(sed -n 's/.* \([0-9]*\) store requests.*/\1/p' <<<"$out")
ms=$(sed -n 's/.*requests, \([0-9.]*\) ms.*/\1/p' <<<"$out")
[ -n "$reqs" ] && [ "$reqs" -le 24 ] || fail "fork of $MB MB: $reqs store requests"
"$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1000 else 1)" "$ms" || fail "fork of $MB MB took $ms ms"
eq "$(sq "$T/m2/bigf.db" "SELECT count(*) FROM b")" $((MB * 1024 + 1)) "rows of the big fork"
eq "$(sq "$T/m2/bigf.db" "SELECT v FROM b WHERE id = 777")" "$(printf '%0900d' 777)" "a row of the big fork"
sq "$T/m2/bigf.db" "UPDATE b SET v = 'forked' WHERE id = 1"
eq "$(sq "$T/m1/big.db" "SELECT v FROM b WHERE id = 1")" "$(printf '%0900d' 1)" "the big source after the fork's commit"
echo "fork of $MB MB: $reqs requests, $ms ms" >&2
echo "test_mount_fork: ok"
