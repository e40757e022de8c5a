#!/usr/bin/env bash
# The main job on the embedded default (a local directory store): build,
# mount the store with FUSE, work on a database with the sqlite3 shell,
# look at its versions and status, unmount, remount, and check the data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
BIN=$PWD/build/dsqlfs
DIR=$(mktemp -d /tmp/dsqlfs-demo.XXXXXX)
MNT=$DIR/mnt
STORE="file://$DIR/store"
mkdir -p "$MNT"
cleanup() {
    mountpoint -q "$MNT" 2>/dev/null && fusermount3 -u "$MNT" 2>/dev/null
    sleep 0.2
    rm -rf "$DIR"
}
trap cleanup EXIT
mount_it() {
    "$BIN" "$STORE" "$MNT" -o cache_dir="$DIR/cache"
    for _ in $(seq 1 100); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
    echo "demo: the mount did not come up" >&2
    exit 1
}

echo "== mount $STORE on $MNT"
mount_it
echo "== a sqlite3 session on $MNT/shop.db (each transaction is one version)"
sqlite3 "$MNT/shop.db" <<'SQL'
PRAGMA journal_mode=DELETE;
CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT, qty INT);
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<5000)
INSERT INTO orders(item, qty) SELECT 'item-' || i, i % 7 FROM c;
COMMIT;
UPDATE orders SET qty = qty + 100 WHERE id <= 10;
SELECT 'orders: ' || count(*) || ', total qty: ' || sum(qty) FROM orders;
SQL
echo "== another process sees the same data"
sqlite3 "$MNT/shop.db" "SELECT 'order 1 has qty ' || qty FROM orders WHERE id=1"
ls -l "$MNT"
echo "== versions in the store"
"$BIN" versions "$STORE/shop"
echo "== status (.dsqlfs/shop.json)"
cat "$MNT/.dsqlfs/shop.json"; echo
echo "== copy a database in (it becomes a new database) and read it back"
sqlite3 "$DIR/local.db" "CREATE TABLE t(x); INSERT INTO t VALUES ('copied in');"
cp "$DIR/local.db" "$MNT/copied.db"
sqlite3 "$MNT/copied.db" "SELECT x FROM t"
cmp "$DIR/local.db" "$MNT/copied.db" && echo "copied.db is byte-identical through the mount"
echo "== unmount, mount again: the data is in the store"
fusermount3 -u "$MNT"
sleep 0.2
mount_it
sqlite3 "$MNT/shop.db" "SELECT 'after remount: ' || (SELECT count(*) FROM orders) || ' orders, integrity ' || (SELECT * FROM pragma_integrity_check)"
echo "== an older version, exported from the store"
"$BIN" export "$STORE/shop" "$DIR/v2.db" --version 2
sqlite3 "$DIR/v2.db" "SELECT 'version 2: order 1 has qty ' || qty FROM orders WHERE id=1"
"$BIN" verify "$STORE/shop"
fusermount3 -u "$MNT"
echo "== done"
