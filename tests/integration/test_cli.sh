#!/usr/bin/env bash
# The admin command line on a local directory store: import, export at
# every version, versions, status, verify, recovery-scan, and the one-line
# errors a user meets.
set -euo pipefail
BIN=${DSQLFS:-$(dirname "$0")/../../build/dsqlfs}
T=$(mktemp -d /tmp/dsqlfs-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
expect_fail() { # expect_fail "message part" command...
    local want=$1; shift
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    if [ "$rc" = 0 ]; then bad "$* succeeded"; return; fi
    if [ "$(printf '%s\n' "$out" | wc -l)" != 1 ]; then bad "$*: not one line: $out"; return; fi
    case $out in *"$want"*) ok ;; *) bad "$*: '$out' lacks '$want'" ;; esac
}

U="file://$T/store/app"
sqlite3 "$T/app.db" "PRAGMA page_size=1024; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<3000)
  INSERT INTO t SELECT i, printf('%050d', i) FROM c;"
cp "$T/app.db" "$T/ref1.db"
"$BIN" import -q "$T/app.db" "$U" && ok || bad "import"
for v in 2 3 4 5; do
    sqlite3 "$T/app.db" "UPDATE t SET v='v$v' WHERE id % $v = 0; INSERT INTO t(v) VALUES('x$v');"
    cp "$T/app.db" "$T/ref$v.db"
    "$BIN" import -q --force "$T/app.db" "$U" && ok || bad "import --force v$v"
done
for v in 1 2 3 4 5; do
    "$BIN" export -q "$U" "$T/out$v.db" --version $v && ok || bad "export v$v"
    cmp -s "$T/ref$v.db" "$T/out$v.db" && ok || bad "version $v differs"
done
"$BIN" export -q "$U" "$T/latest.db"
cmp -s "$T/ref5.db" "$T/latest.db" && ok || bad "latest differs"
[ "$(sqlite3 "$T/latest.db" 'PRAGMA integrity_check')" = ok ] && ok || bad "integrity"
[ "$("$BIN" versions "$U" | tail -n +2 | wc -l)" = 5 ] && ok || bad "versions lists 5"
"$BIN" status "$U" | grep -q '^version: *5$' && ok || bad "status"
"$BIN" verify "$U" | grep -q '0 problem' && ok || bad "verify clean"
"$BIN" init "file://$T/store/empty" | grep -q created && ok || bad "init"
"$BIN" init "file://$T/store/empty" | grep -q 'already exists' && ok || bad "init twice"

# --at picks the newest version at or before a time
at=$("$BIN" versions "$U" | awk 'NR==3 {print $2}')
"$BIN" export -q "$U" "$T/at.db" --at "$at" && cmp -s "$T/ref2.db" "$T/at.db" && ok || bad "export --at"

# errors: one line, naming the cause
expect_fail "not a URL" "$BIN" export /no/scheme "$T/x.db"
expect_fail "names no database" "$BIN" versions "file:///"
expect_fail "already has 5 version" "$BIN" import "$T/app.db" "$U"
expect_fail "does not exist" "$BIN" export "$U" "$T/x.db" --version 99
expect_fail "has no versions" "$BIN" export "file://$T/store/empty" "$T/x.db"
expect_fail "unknown option" "$BIN" versions "$U" -o nosuch=1
expect_fail "checkpoint_interval" "$BIN" versions "$U" -o checkpoint_interval=abc
expect_fail "cannot open" "$BIN" import "$T/missing.db" "file://$T/store/m"
printf 'hello, not a database at all, but long enough to be read as one\n%.0s' {1..10} > "$T/junk.db"
expect_fail "not" "$BIN" import "$T/junk.db" "file://$T/store/j"
expect_fail "unknown command" "$BIN" frobnicate
expect_fail "unknown flag" "$BIN" versions "$U" --bogus
sqlite3 "$T/wal.db" "PRAGMA journal_mode=WAL; CREATE TABLE x(a);" >/dev/null
expect_fail "WAL" "$BIN" import "$T/wal.db" "file://$T/store/w"

# gc: young versions stay; a retention shorter than an hour is refused
"$BIN" gc "$U" --keep 1 | grep -q 'nothing to remove' && ok || bad "gc keeps young versions"
expect_fail "at least" "$BIN" gc "$U" --keep 1 --keep-for 60
[ "$("$BIN" versions "$U" | tail -n +2 | wc -l)" = 5 ] && ok || bad "gc removed versions"

# an orphan segment is found, and only after its grace period
printf 'junk' > "$T/store/app/segments/00000000000000000000000000000000.seg"
"$BIN" recovery-scan "$U" | grep -q '^0 orphan' && ok || bad "grace period"
"$BIN" recovery-scan "$U" --grace 0 | grep -q '^1 orphan' && ok || bad "orphan found"
"$BIN" recovery-scan "$U" --grace 0 --delete | grep -q 'deleted' && ok || bad "orphan deleted"
"$BIN" recovery-scan "$U" --grace 0 | grep -q '^0 orphan' && ok || bad "orphan gone"

# temporary files killed writers left (named as the store names them) in
# every directory a database writes: reported once older than the grace
# period, removed by --delete; a younger one (a put in progress) stays
for d in "" manifests/ segments/ pagetables/; do
    mkdir -p "$T/store/app/$d"
    printf 'partial' > "$T/store/app/$d.dsqtmp.4242.7.0123456789abcdef0123456789abcdef"
    touch -d '2 hours ago' "$T/store/app/$d.dsqtmp.4242.7.0123456789abcdef0123456789abcdef"
done
printf 'partial' > "$T/store/app/segments/.dsqtmp.4242.8.fedcba9876543210fedcba9876543210"
out=$("$BIN" recovery-scan "$U")
printf '%s\n' "$out" | grep -q '^4 temporary file' && ok || bad "temporary files reported: $out"
[ "$(printf '%s\n' "$out" | grep -c '^tmpfile .*manifests/.dsqtmp')" = 1 ] && ok || bad "temporary file named: $out"
[ "$(find "$T/store/app" -name '.dsqtmp.*' | wc -l)" = 5 ] && ok || bad "reporting deleted something"
"$BIN" recovery-scan "$U" --delete | grep -q '^4 temporary file.*deleted' && ok || bad "temporary files deleted"
[ "$(find "$T/store/app" -name '.dsqtmp.*' | wc -l)" = 1 ] && ok || bad "young temporary file kept"
"$BIN" recovery-scan "$U" | grep -q '^0 temporary file' && ok || bad "temporary files gone"
"$BIN" verify "$U" | grep -q '0 problem' && ok || bad "verify after the sweep"

# damage is found by verify and refused by export, naming the object
for seg in "$T"/store/app/segments/*.seg; do
    sz=$(stat -c %s "$seg")
    printf '\377\377\377\377' | dd of="$seg" bs=1 seek=$((sz - 50)) conv=notrunc 2>/dev/null
done
rc=0; "$BIN" verify -q "$U" >"$T/verify.out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "problem: .*segments/" "$T/verify.out" && ok || bad "verify finds damage (rc=$rc)"
rc=0; "$BIN" export -q "$U" "$T/bad.db" --version 1 2>"$T/export.err" || rc=$?
[ "$rc" = 1 ] && grep -q "segments/" "$T/export.err" && ok || bad "export of damaged data (rc=$rc)"
[ ! -e "$T/bad.db" ] && ok || bad "a damaged export left a file"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
