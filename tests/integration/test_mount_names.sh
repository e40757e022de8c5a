#!/usr/bin/env bash
# Any file name is a database, content decides, any write order on an
# empty file, POSIX answers (docs/mount.md, "Names"):
#  - the names frameworks use create databases, with working side files
#    in every rollback journal mode; they survive ls, a remount and a
#    second mount; stores written with the NAME.db rule keep their names;
#  - names that cannot be store keys (or are the store's own) are refused
#    with one errno and one log line, leaving nothing behind;
#  - a file whose first bytes are not a SQLite header is refused at the
#    write that proves it, and is gone from the listing and the store;
#  - scrambled first writes, one-byte size hints and truncations up end
#    byte-identical to the same program on local disk;
#  - symlink/link/rename EPERM, chmod stored (no setuid/setgid bits; every mount, a remount, the
#    create mode of a new file, SQLite's journal), dot names listed, truncation
#    of a database with data refused without allow_delete;
#  - a database deleted and created again under its name while another
#    mount holds it: the other mount serves the new one or a clean error.
source "$(dirname "$0")/lib.sh"
need_fuse
M=$T/mnt
M2=$T/mnt2
LOCAL=$T/local
mkdir -p "$LOCAL"

log "a store written with the NAME.db rule"
sqlite3 "$T/src.db" "CREATE TABLE t(x); INSERT INTO t VALUES (7);"
"$DSQLFS" import "$T/src.db" "$STORE/shop" -q
"$DSQLFS" import "$T/src.db" "$STORE/dept/inner" -q
mount_store "$M"
mount_store "$M2"
eq "$(sq "$M/shop.db" 'SELECT x FROM t')" 7 "legacy name"
eq "$(sq "$M/dept/inner.db" 'SELECT x FROM t')" 7 "legacy nested name"

log "the names applications use are databases"
names=("db.sqlite3" "development.sqlite3" "x.sqlite" "x.db3" "test.db2"
       "test2.database" "noext" "Data File.DB" "new.db" "wow!" ".hidden.db")
for n in "${names[@]}"; do
    sq "$M/$n" "CREATE TABLE t(v); INSERT INTO t VALUES ('$n');"
done
for n in "${names[@]}"; do
    eq "$(sq "$M/$n" 'SELECT v FROM t')" "$n" "read back $n"
    eq "$(sq "$M2/$n" 'SELECT v FROM t')" "$n" "$n on the second mount"
done
# side files in every rollback journal mode, for a name without .db
for mode in delete truncate persist memory off; do
    sq "$M/db.sqlite3" "PRAGMA journal_mode=$mode; BEGIN; INSERT INTO t VALUES ('$mode'); COMMIT;" >/dev/null
    eq "$(sq "$M2/db.sqlite3" "SELECT count(*) FROM t WHERE v='$mode'")" 1 "$mode commit seen by the second mount"
done
eq "$(sq "$M/db.sqlite3" 'PRAGMA integrity_check')" ok "integrity"
# a super-journal: one transaction over two attached databases
sq "$M/x.sqlite" "PRAGMA journal_mode=delete; ATTACH '$M/test.db2' AS two;
  BEGIN; INSERT INTO t VALUES ('multi'); INSERT INTO two.t VALUES ('multi'); COMMIT;"
eq "$(sq "$M2/test.db2" "SELECT count(*) FROM t WHERE v='multi'")" 1 "multi-database commit"

log "ls round trip: exactly the names created, on both mounts and after a remount"
want=$(printf '%s\n' "${names[@]}" shop.db | sort)
got=$(ls -A "$M" | grep -v '^\.dsqlfs$' | grep -v '^dept$' | grep -v -- '-journal$' | sort)
eq "$got" "$want" "listing"
got2=$(ls -A "$M2" | grep -v '^\.dsqlfs$' | grep -v '^dept$' | grep -v -- '-journal$' | sort)
eq "$got2" "$want" "listing on the second mount"
for n in "${names[@]}"; do
    [ -f "$M/$n" ] || fail "stat $n"
done
# every listed name opens as the database it names
ls -A "$M" | grep -v -- '-journal$' | while IFS= read -r n; do
    [ -f "$M/$n" ] || continue
    sq "$M/$n" 'PRAGMA quick_check' | grep -qx ok || fail "listed $n does not open"
done
# the store prefixes (docs/mount.md): NAME.db -> NAME, anything else -> NAME!
if [ "$IT_S3" = 0 ]; then
    [ -d "$T/store/db.sqlite3!" ] || fail "prefix of db.sqlite3: $(ls "$T/store")"
    [ -d "$T/store/new" ] || fail "prefix of new.db: $(ls "$T/store")"
    [ -d "$T/store/wow!!" ] || fail "prefix of wow!: $(ls "$T/store")"
fi
"$DSQLFS" verify "$STORE/db.sqlite3!" >/dev/null || fail "verify db.sqlite3!"
eq "$(ls -a "$M/.dsqlfs" | grep -c '^\.hidden\.json$')" 1 "status file of a dot name"

log "refused names: one errno, one log line, nothing left"
refuse() { # refuse NAME ERRNO-TEXT
    local n=$1 want=$2 before
    before=$(grep -c "create .* refused" "$T/mnt.log" || true)
    err=$(sqlite3 "$M/$n" "CREATE TABLE t(x)" 2>&1) && fail "name '$n' accepted"
    err=$( (: >"$M/$n") 2>&1) && fail "name '$n' created by a redirect"
    echo "$err" | grep -q "$want" || fail "name '$n': '$err', expected '$want'"
    [ -e "$M/$n" ] && fail "refused name '$n' is listed"
    after=$(grep -c "create .* refused" "$T/mnt.log" || true)
    [ "$after" -gt "$before" ] || fail "no log line for '$n'"
}
refuse "$(printf 'bad\001name.db')" "Invalid argument"
refuse ".dsqtmp.x" "Operation not permitted"
refuse "_dsqlfs-probe.db" "Operation not permitted"
refuse "shop@v3.db" "Read-only file system" # a version view (docs/mount.md)
refuse "shop@2026-12-01T10:00:00Z.db" "Read-only file system"
refuse "$(head -c 248 /dev/zero | tr '\0' a)" "File name too long"
err=$(mkdir "$M/dir!" 2>&1) && fail "directory ending with ! made"
echo "$err" | grep -q "Invalid argument" || fail "mkdir dir!: $err"
err=$(mkdir "$M/shop" 2>&1) && fail "directory over the prefix of shop.db made"
echo "$err" | grep -q "File exists" || fail "mkdir shop: $err"
# 247 bytes is the longest name: its -journal is 255
long=$(head -c 247 /dev/zero | tr '\0' b)
sq "$M/$long" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
eq "$(sq "$M2/$long" 'SELECT x FROM t')" 1 "the longest name"

log "content decides: not SQLite is refused at the write that proves it"
for f in notes.txt data.db; do
    err=$( (echo hello >"$M/$f") 2>&1) && fail "text written to $f"
    echo "$err" | grep -q "Invalid argument" || fail "$f: $err"
    [ -e "$M/$f" ] && fail "$f still listed"
done
err=$(cp /etc/services "$M/services.db" 2>&1) && fail "cp of a text file accepted"
[ -e "$M/services.db" ] && fail "services.db listed"
# the magic alone is not enough: a bad page size is refused too
err=$( (printf 'SQLite format 3\000\377\377' >"$M/badps.db") 2>&1) && fail "bad page size accepted"
[ -e "$M/badps.db" ] && fail "badps.db listed"
# the content of an existing database is not replaced by garbage
err=$(dd if=/dev/urandom of="$M/shop.db" bs=4096 count=1 conv=notrunc 2>&1) && fail "garbage over page 1 accepted"
eq "$(sq "$M/shop.db" 'SELECT x FROM t')" 7 "shop intact"
for p in notes.txt! data badps services; do
    "$DSQLFS" status "$STORE/$p" >/dev/null 2>&1 && fail "the store has $p"
done
[ "$IT_S3" = 1 ] || ! ls -A "$T/store" | grep -qE '^(notes|data|badps|services)' ||
    fail "objects left in the store: $(ls -A "$T/store")"
# an empty file is an empty database on this mount, never in the store
touch "$M/empty.sqlite"
[ -f "$M/empty.sqlite" ] || fail "touch"
eq "$(stat -c %s "$M/empty.sqlite")" 0 "empty size"
[ -e "$M2/empty.sqlite" ] && fail "an empty file reached the store"

log "any write order on an empty file ends as on local disk"
cat >"$T/order.py" <<'EOF'
import hashlib, os, sqlite3, sys
src = sys.argv[1]
c = sqlite3.connect(src)
c.execute("CREATE TABLE t(x)")
c.executemany("INSERT INTO t VALUES (?)", [(bytes([i % 251]) * 300,) for i in range(300)])
c.commit(); c.close()
data = open(src, "rb").read()
ps = 4096
n = len(data) // ps
for d in sys.argv[2:]:
    p = os.path.join(d, "order.db")
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b"\0", 4095)          # SQLite's size hint: one byte
    os.ftruncate(fd, 64 * ps)           # a chunk size, up
    for pg in [5, 3] + list(range(n, 0, -1)):
        os.pwrite(fd, data[(pg - 1) * ps:pg * ps], (pg - 1) * ps)
    os.ftruncate(fd, n * ps)
    os.fsync(fd)
    os.close(fd)
    print(os.path.getsize(p), hashlib.sha1(open(p, "rb").read()).hexdigest())
EOF
out=$("$PY" "$T/order.py" "$T/order-src.db" "$LOCAL" "$M")
[ "$(echo "$out" | sort -u | wc -l)" = 1 ] || fail "write order: local and mount differ: $out"
cmp "$LOCAL/order.db" "$M2/order.db" || fail "the second mount differs"
# a big first transaction (SQLite spills pages before page 1)
for d in "$LOCAL" "$M"; do
    sq "$d/spill.db" "PRAGMA cache_size=5; BEGIN; CREATE TABLE s(a, b);
      WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<5000)
      INSERT INTO s SELECT i, printf('%0300d', i) FROM c; CREATE INDEX si ON s(b); COMMIT;"
done
cmp "$LOCAL/spill.db" "$M/spill.db" || fail "a spilling first transaction differs from local disk"
cmp "$LOCAL/spill.db" "$M2/spill.db" || fail "the second mount's copy differs"
# a first transaction that fails (here: a constraint) leaves nothing
sq "$M/rolled.db" "CREATE TABLE r(x UNIQUE); BEGIN; INSERT INTO r VALUES (1); INSERT INTO r VALUES (1); COMMIT;" 2>/dev/null && fail "constraint"
eq "$(sq "$M/rolled.db" 'SELECT count(*) FROM r')" 0 "rolled back"

log "POSIX answers: link, symlink, rename EPERM"
err=$(ln "$M/shop.db" "$M/hard.db" 2>&1) && fail "link"
echo "$err" | grep -q "Operation not permitted" || fail "link: $err"
err=$(ln -s shop.db "$M/soft.db" 2>&1) && fail "symlink"
echo "$err" | grep -q "Operation not permitted" || fail "symlink: $err"
err=$(mv "$M/shop.db" "$M/moved.db" 2>&1) && fail "rename"
echo "$err" | grep -q "Operation not permitted" || fail "rename: $err"

log "chmod is stored: every mount shows it, and SQLite's journal gets it"
eq "$(stat -c %a "$M2/new.db")" 644 "mode before chmod"
chmod 0640 "$M/new.db"
eq "$(stat -c %a "$M/new.db")" 640 "mode after chmod"
grep -q "new.db: committed version .* at chmod 0640" "$T/mnt.log" || fail "no version for the chmod"
sq "$M2/new.db" "SELECT count(*) FROM t" >/dev/null  # a read transaction
eq "$(stat -c %a "$M2/new.db")" 640 "mode on the second mount"
eq "$(sq "$M2/new.db" 'SELECT v FROM t')" new.db "content after chmod"
sq "$M/new.db" "PRAGMA journal_mode=persist; INSERT INTO t VALUES ('j');" >/dev/null
eq "$(stat -c %a "$M/new.db-journal")" 640 "the journal's mode"
sq "$M/new.db" "PRAGMA journal_mode=delete; DELETE FROM t WHERE v='j';" >/dev/null
eq "$(stat -c %a "$M/new.db")" 640 "mode after a commit"
# no file keeps a setuid or setgid bit (DSQ_MODE_KEPT: the daemon tells
# the kernel it clears them itself, fuse/devio.c)
chmod 6755 "$M/new.db"
eq "$(stat -c %a "$M/new.db")" 755 "setuid and setgid bits of a database"
sq "$M/new.db" "PRAGMA journal_mode=persist; INSERT INTO t VALUES ('j');" >/dev/null
chmod 6640 "$M/new.db-journal"
eq "$(stat -c %a "$M/new.db-journal")" 640 "setuid and setgid bits of a journal"
sq "$M/new.db" "PRAGMA journal_mode=delete; DELETE FROM t WHERE v='j';" >/dev/null
python3 -c "import os, sys; os.close(os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o6644))" "$M/suid.db"
eq "$(stat -c %a "$M/suid.db")" 644 "setuid and setgid bits of a new database"
chmod 0 "$M/new.db"
eq "$(stat -c %a "$M/new.db")" 0 "chmod 0"
chmod 0640 "$M/new.db"
# a new database takes open()'s mode (SQLite: 0644 less the umask)
(umask 077 && sq "$M/private.db" "CREATE TABLE t(v); INSERT INTO t VALUES (1);")
eq "$(stat -c %a "$M/private.db")" 600 "create mode"
eq "$(sq "$M2/private.db" 'SELECT v FROM t')" 1 "private.db on the second mount"
eq "$(stat -c %a "$M2/private.db")" 600 "create mode on the second mount"
# chmod of a database created here before its first commit
touch "$M/early.db"
chmod 0604 "$M/early.db"
eq "$(stat -c %a "$M/early.db")" 604 "chmod before the first commit"
sq "$M/early.db" "CREATE TABLE t(v);"
eq "$(stat -c %a "$M2/early.db")" 604 "first commit carries the mode"
mount_store "$T/ro" -o ro
err=$(chmod 0600 "$T/ro/new.db" 2>&1) && fail "chmod on a ro mount"
echo "$err" | grep -q "Read-only file system" || fail "chmod ro: $err"
eq "$(stat -c %a "$T/ro/new.db")" 440 "mode on a ro mount (less write bits)"
unmount "$T/ro"

log "truncation of a database with data: refused without allow_delete"
size=$(stat -c %s "$M/shop.db")
err=$(truncate -s 0 "$M/shop.db" 2>&1) && fail "truncate -s 0 accepted"
echo "$err" | grep -q "Operation not permitted" || fail "truncate: $err"
err=$( (: >"$M/shop.db") 2>&1) && fail "': >' accepted"
eq "$(stat -c %s "$M/shop.db")" "$size" "size after refused truncations"
eq "$(sq "$M2/shop.db" 'SELECT x FROM t')" 7 "data after refused truncations"
# SQLite's own truncations work: VACUUM shrinks the file
sq "$M/spill.db" "DELETE FROM s WHERE a > 100; VACUUM;"
[ "$(stat -c %s "$M/spill.db")" -lt "$(stat -c %s "$LOCAL/spill.db")" ] || fail "VACUUM did not shrink"
eq "$(sq "$M2/spill.db" 'SELECT count(*) FROM s; PRAGMA integrity_check')" "100
ok" "after VACUUM"

log "database identity: deleted and created again while another mount holds it"
unmount "$M"
unmount "$M2"
mount_store "$M" -o allow_delete
mount_store "$M2"
eq "$(stat -c %a "$M/new.db")" 640 "mode after a remount"
cat >"$T/ident.py" <<'EOF'
import sqlite3, subprocess, sys
mine, other, mode = sys.argv[1], sys.argv[2], sys.argv[3]
con = sqlite3.connect(other, isolation_level=None)
assert con.execute("SELECT group_concat(v) FROM t").fetchone()[0] == "old1,old2"
# the first mount deletes it and creates a new one under the same name
subprocess.run(["rm", mine], check=True)
subprocess.run(["sqlite3", mine, "PRAGMA journal_mode=%s; CREATE TABLE u(w); "
                "INSERT INTO u VALUES ('new');" % mode],
               check=True, stdout=subprocess.DEVNULL)
# the next read transaction here: the new database, or a clean error for
# the old one, never a mix ("malformed")
try:
    rows = con.execute("SELECT w FROM u").fetchall()
    ok = con.execute("PRAGMA integrity_check").fetchone()[0]
    print("new" if rows == [("new",)] and ok == "ok" else "bad %r %r" % (rows, ok))
except sqlite3.DatabaseError as e:
    print("malformed" if "malformed" in str(e) else "error")
con.close()
con = sqlite3.connect(other)
print(con.execute("SELECT w FROM u").fetchone()[0],
      con.execute("PRAGMA integrity_check").fetchone()[0])
EOF
for mode in delete wal; do
    sq "$M/ident.db" "PRAGMA journal_mode=$mode; CREATE TABLE t(v); INSERT INTO t VALUES ('old1'), ('old2');" >/dev/null
    out=$("$PY" "$T/ident.py" "$M/ident.db" "$M2/ident.db" "$mode")
    case "$(echo "$out" | head -1)" in new | error) ;; *) fail "$mode: the other mount served: $out" ;; esac
    eq "$(echo "$out" | tail -1)" "new ok" "$mode: a new connection on the other mount"
    rm "$M/ident.db"
done
unmount "$M"
unmount "$M2"
log "remount: the same names"
mount_store "$M"
got=$(ls -A "$M" | grep -v '^\.dsqlfs$' | grep -v '^dept$' | grep -v -- '-journal$' | sort)
for n in "${names[@]}" shop.db order.db spill.db "$long"; do
    echo "$got" | grep -qxF -- "$n" || fail "$n missing after remount"
done
echo "$got" | grep -qx 'empty.sqlite' && fail "an empty file survived the mount"
echo "test_mount_names: ok"
