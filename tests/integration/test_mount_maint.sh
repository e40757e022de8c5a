#!/usr/bin/env bash
# Background maintenance (fuse/maint.c) with a short grace period and
# retention: mount A sweeps orphans and keeps 3 versions (gc_keep=3), while
#  - a reader on A holds a read transaction: its version stays, and every
#    page of it reads back as it was (checked against an export made
#    before), although later commits rewrote those pages;
#  - a writer on mount B (another host) stalls in a write transaction
#    until gc has removed the version its snapshot is of: its commit fails
#    cleanly (C9: no version number gc emptied is reopened), the retry
#    commits, and no acknowledged row is lost;
#  - orphans (a writer killed between segment and manifest) older than the
#    grace period go;
#  - what was removed is counted in .dsqlfs/maintenance.json and
#    metrics.prom, and df says how big the databases are.
# DSQLFS_TEST_MIN_AGE_MS shortens gc's minimum age (an hour) to 3 s for
# every process of the test (a fault-point build only).
source "$(dirname "$0")/lib.sh"
need_fuse
export DSQLFS_TEST_MIN_AGE_MS=3000
A=$T/a B=$T/b C=$T/c
"$DSQLFS" init "$STORE/app" -q
mount_store "$A" -o maint_interval=1,gc_keep=3,orphan_grace=3
mount_store "$B" -o maint_interval=0
mount_store "$C" -o maint_interval=0

mj() { # mj EXPR: a field of A's maintenance.json (python expression on d)
    $PY -c "import json,sys; d=json.load(open('$A/.dsqlfs/maintenance.json')); print($1)"
}
wait_for() { # wait_for WHAT PYEXPR: poll maintenance.json (bounded)
    for _ in $(seq 1 600); do
        [ "$(mj "$2" 2>/dev/null)" = True ] && return 0
        sleep 0.1
    done
    cat "$A/.dsqlfs/maintenance.json" >&2
    fail "waited in vain for $1"
}

log "a database with a 300-row blob table (about 250 pages)"
sq "$C/app.db" "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
    CREATE TABLE big(id INTEGER PRIMARY KEY, x BLOB);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
    INSERT INTO big SELECT i, randomblob(3000) FROM n;"

log "orphans: an import killed between its segments and its manifest"
sqlite3 "$T/x.db" "CREATE TABLE o(x); INSERT INTO o VALUES (randomblob(50000));"
rc=0
DSQLFS_FAULT=commit.after_segments "$DSQLFS" import "$T/x.db" "$STORE/app" --force -q 2>/dev/null || rc=$?
eq "$rc" 86 "the import died at the fault point"
n_orphans=$("$DSQLFS" recovery-scan "$STORE/app" --grace 0 | tail -1 | awk '{print $1}')
[ "$n_orphans" -ge 1 ] || fail "no orphan made"
log "$n_orphans orphan(s)"

v0=$("$DSQLFS" status "$STORE/app" | awk '/^version:/ {print $2}')
[ -n "$v0" ] || fail "no version from status: $("$DSQLFS" status "$STORE/app")"
"$DSQLFS" export "$STORE/app" "$T/ref.db" --version "$v0" -q
digest='import hashlib,sqlite3,sys
def digest(con):
    h = hashlib.sha256()
    for (x,) in con.execute("SELECT x FROM big ORDER BY id"):
        h.update(x)
    return h.hexdigest()'
ref=$($PY -c "$digest
print(digest(sqlite3.connect('$T/ref.db')))")

log "a reader on A pins version $v0; a writer on B stalls on it"
cat > "$T/reader.py" <<EOF
$digest
import time, os
con = sqlite3.connect("$A/app.db", isolation_level=None)
con.execute("BEGIN")
con.execute("SELECT x FROM big WHERE id <= 3").fetchall()   # a few pages only
open("$T/reader.ready", "w").close()
while not os.path.exists("$T/reader.go"):
    time.sleep(0.05)
print(digest(con))                                          # the rest now
con.execute("COMMIT")
con.close()
EOF
cat > "$T/writer.py" <<EOF
import sqlite3, time, os
con = sqlite3.connect("$B/app.db", isolation_level=None, timeout=0)
con.execute("BEGIN IMMEDIATE")
con.execute("INSERT INTO t(v) VALUES ('stalled')")
open("$T/writer.ready", "w").close()
while not os.path.exists("$T/writer.go"):
    time.sleep(0.05)
attempts = 0
while True:
    attempts += 1
    try:
        if attempts > 1:
            con.execute("BEGIN IMMEDIATE")
            con.execute("INSERT INTO t(v) VALUES ('stalled')")
        con.execute("COMMIT")
        break
    except sqlite3.OperationalError as e:
        print("attempt", attempts, "failed:", e, flush=True)
        try:
            con.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass
        if attempts >= 50:
            raise
        time.sleep(0.2)
print("committed after", attempts, "attempts", flush=True)
EOF
$PY "$T/reader.py" > "$T/reader.out" 2>&1 &
READER=$!
$PY "$T/writer.py" > "$T/writer.out" 2>&1 &
WRITER=$!
PIDS+=("$READER" "$WRITER")
for _ in $(seq 1 300); do [ -e "$T/reader.ready" ] && [ -e "$T/writer.ready" ] && break; sleep 0.05; done
[ -e "$T/reader.ready" ] && [ -e "$T/writer.ready" ] || fail "reader/writer did not start: $(cat "$T"/reader.out "$T"/writer.out)"

log "commits on C rewrite half of the pages, then gc runs"
for i in $(seq 1 8); do
    sq "$C/app.db" "UPDATE big SET x = randomblob(3000) WHERE id % 8 = $((i % 8)); INSERT INTO t(v) VALUES ('c$i');"
done
head=$(( v0 + 8 ))
# gc_keep=3 would keep only head-2..head; the reader's version must stay
sleep 3.5   # versions older than the minimum age (3 s)
wait_for "rounds after the commits" "d['rounds'] >= 1 and d['databases']['app']['head'] >= $head"
sleep 1.2
wait_for "a round that saw head $head" "d['databases']['app']['head'] >= $head"
eq "$(mj "d['databases']['app']['floor'] <= $v0")" True "floor stays at or below the reader's version $v0"
touch "$T/reader.go"
wait "$READER" || fail "reader: $(cat "$T/reader.out")"
eq "$(tail -1 "$T/reader.out")" "$ref" "every page of version $v0 read after gc"

log "the reader is gone: gc passes version $v0; then the stalled writer commits"
sq "$C/app.db" "INSERT INTO t(v) VALUES ('c9')"
sq "$C/app.db" "INSERT INTO t(v) VALUES ('c10')"
sleep 3.5
wait_for "the floor past $v0" "d['databases']['app']['floor'] > $((v0 + 1))"
touch "$T/writer.go"
wait "$WRITER" || fail "writer: $(cat "$T/writer.out")"
log "writer: $(tr '\n' ' ' < "$T/writer.out")"
attempts=$(tail -1 "$T/writer.out" | awk '{print $3}')
[ "$attempts" -ge 2 ] || fail "the stalled writer's first commit succeeded on a removed snapshot"

log "nothing lost, nothing reopened"
eq "$(sq "$C/app.db" "SELECT group_concat(v) FROM (SELECT v FROM t ORDER BY v)")" \
    "c1,c10,c2,c3,c4,c5,c6,c7,c8,c9,stalled" "rows"
"$DSQLFS" verify "$STORE/app" >/dev/null || fail "verify"
floor=$(mj "d['databases']['app']['floor']")
first=$("$DSQLFS" versions "$STORE/app" | awk 'NR == 2 {print $1}')
[ "$first" -ge "$floor" ] || fail "version $first exists below the floor $floor"

log "orphans swept, counters"
wait_for "the orphan sweep" "d['databases']['app']['orphans_removed'] >= $n_orphans"
# the stalled writer's withdrawn attempt left its segment (C5): an orphan
# of its own, swept once older than the grace period too
left=1
for _ in $(seq 1 300); do
    left=$("$DSQLFS" recovery-scan "$STORE/app" --grace 0 | tail -1 | awk '{print $1}')
    [ "$left" = 0 ] && break
    sleep 0.1
done
eq "$left" 0 "orphans left"
[ "$(mj "d['databases']['app']['versions_removed']")" -gt 0 ] || fail "versions_removed"
grep -qE '^dsqlfs_maint_versions_removed_total\{db="app"\} [1-9]' "$A/.dsqlfs/metrics.prom" ||
    fail "metrics: $(grep maint "$A/.dsqlfs/metrics.prom")"

log "df: the databases' size as used"
size=$(stat -c %s "$C/app.db")
used=$(df -B1 --output=used "$A" | tail -1 | tr -d ' ')
eq "$used" "$size" "df used bytes"
eq "$(df --output=iused "$A" | tail -1 | tr -d ' ')" 1 "df -i: one database"
log "cache counters: a cold mount misses, the next one over the same disk cache hits"
dj() { # dj MOUNT FIELD: a counter of app in the mount's status file
    $PY -c "import json; print(json.load(open('$1/.dsqlfs/app.json'))['$2'])"
}
D=$T/d
mount_store "$D" -o maint_interval=0,cache_dir=$T/dcache,page_cache_bytes=262144
want=$(sq "$C/app.db" 'SELECT count(*) FROM sqlite_schema')
eq "$(sq "$D/app.db" 'PRAGMA integrity_check')" ok "integrity on a cold mount"
[ "$(dj "$D" cache_misses)" -gt 0 ] || fail "cold mount: cache_misses $(dj "$D" cache_misses)"
unmount "$D"
mount_store "$D" -o maint_interval=0,cache_dir=$T/dcache,page_cache_bytes=262144
eq "$(sq "$D/app.db" 'SELECT count(*) FROM sqlite_schema')" "$want" "a read over the warm disk cache"
sq "$D/app.db" 'PRAGMA integrity_check' >/dev/null
log "warm mount: $(dj "$D" cache_hits) hit(s), $(dj "$D" cache_misses) miss(es)"
if [ "$IT_S3" = 1 ]; then
    # objects come from the disk cache, not the store (file:// stores are
    # read in place: nothing to cache)
    [ "$(dj "$D" cache_hits)" -gt 0 ] || fail "warm mount on S3: no cache hit"
fi
unmount "$D"
unmount "$A"
unmount "$B"
unmount "$C"
echo "test_mount_maint: ok"
