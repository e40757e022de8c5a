#!/usr/bin/env bash
# The main job on the embedded default (a local directory store): build,
# import a SQLite database, commit more versions, list them, export old and
# new versions and check them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
BIN=$PWD/build/dsqlfs
DIR=$(mktemp -d /tmp/dsqlfs-demo.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
STORE="file://$DIR/store"
echo "== a SQLite database made with the sqlite3 shell"
sqlite3 "$DIR/shop.db" "CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT, qty INT);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<5000)
  INSERT INTO orders(item, qty) SELECT 'item-' || i, i % 7 FROM c;"
ls -l "$DIR/shop.db"
echo "== import it as version 1 of $STORE/shop"
"$BIN" import "$DIR/shop.db" "$STORE/shop"
echo "== change it and store the result as version 2"
sqlite3 "$DIR/shop.db" "UPDATE orders SET qty = qty + 100 WHERE id <= 10;"
"$BIN" import --force "$DIR/shop.db" "$STORE/shop"
echo "== versions"
"$BIN" versions "$STORE/shop"
echo "== export version 1 and the newest, and query them"
"$BIN" export "$STORE/shop" "$DIR/v1.db" --version 1
"$BIN" export "$STORE/shop" "$DIR/latest.db"
echo "version 1: qty of order 1 = $(sqlite3 "$DIR/v1.db" 'SELECT qty FROM orders WHERE id=1')"
echo "newest:    qty of order 1 = $(sqlite3 "$DIR/latest.db" 'SELECT qty FROM orders WHERE id=1')"
cmp "$DIR/shop.db" "$DIR/latest.db" && echo "newest export is byte-identical to the source"
echo "integrity_check: $(sqlite3 "$DIR/latest.db" 'PRAGMA integrity_check')"
echo "== verify every object and checksum"
"$BIN" verify "$STORE/shop"
echo "== objects in the store"
(cd "$DIR/store" && find . -type f | sort)
