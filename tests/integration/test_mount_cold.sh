#!/usr/bin/env bash
# A cold open (issue 10): the first point query on a fresh mount with a
# fresh cache waits for at most 4 store requests in a row (the freshness
# LIST, the manifest GET with hot.seg beside it, the page-table chunks in
# one wave, the leaf), counted by the mount itself (store_chain in
# .dsqlfs/NAME.json: each request sent after another's answer is one
# deeper).  Without hot.seg the same query walks the b-tree one level per
# request (page 1, root, interior, leaf: more than 4).  A second process
# on the same mount reads 0 bytes.  A stale or damaged hot.seg is only
# not used: the answers stay right; a maintenance round and dsqlfs hot
# write it again.
source "$(dirname "$0")/lib.sh"
need_fuse

status() { cat "$1/.dsqlfs/$2.json"; }
field() { # field JSON KEY: a top-level number, or store.KEY
    "$PY" -c "import json,sys; d=json.loads(sys.argv[1]); k=sys.argv[2].split('.'); v=d
for x in k: v=v[x]
print(v)" "$1" "$2"
}

log "a database with a 3-level b-tree (and an index, a second table)"
"$PY" - "$T/src.db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA page_size=4096")
c.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)")
c.execute("CREATE TABLE small(k TEXT PRIMARY KEY, v INT)")
c.execute("CREATE INDEX small_v ON small(v)")
c.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
          "WHERE x < 30000) INSERT INTO big SELECT x, randomblob(900) FROM c")
c.executemany("INSERT INTO small VALUES (?, ?)",
              [("k%d" % i, i) for i in range(2000)])
c.commit()
EOF
"$DSQLFS" import "$T/src.db" "$STORE/cold" >/dev/null
# the query as a program would run it, in a process of its own
cat > "$T/q.py" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("SELECT length(v) FROM big WHERE id = ?", (int(sys.argv[2]),)).fetchone()[0])
EOF

cold_query() { # cold_query NAME KEY [OPTS]: fresh mount and cache, one query
    local m=$T/$1
    rm -rf "$T/cache-$1"
    mount_store "$m" -o cache_dir="$T/cache-$1${3:+,$3}"
    eq "$("$PY" "$T/q.py" "$m/cold.db" "$2")" 900 "first query on $1"
    status "$m" cold > "$T/$1.json"
}

log "fresh mount, fresh cache: the first query"
cold_query c1 17017 staleness=1
s=$(cat "$T/c1.json")
chain=$(field "$s" store_chain)
hot=$(field "$s" hot_pages)
gets=$(field "$s" store.get)
log "first query: $(field "$s" store_requests) requests ($gets GETs), $chain in a row, $hot hot pages"
[ "$IT_S3" = 0 ] || [ "$chain" -le 4 ] || fail "first query: $chain store requests in a row (at most 4)"
[ "$hot" -ge 3 ] || fail "first query: only $hot pages from hot.seg"
# what read-ahead the first query started in the background has landed
b1=-1
for _ in $(seq 1 50); do
    b=$(field "$(status "$T/c1" cold)" store.bytes_read)
    [ "$b" = "$b1" ] && break
    b1=$b
    sleep 0.2
done
eq "$("$PY" "$T/q.py" "$T/c1/cold.db" 17017)" 900 "second process"
s2=$(status "$T/c1" cold)
eq "$(field "$s2" store.bytes_read)" "$b1" "bytes read by a second process on the same mount"
unmount "$T/c1"

log "staleness=0: the open and SQLite's two read transactions each wait for a LIST"
cold_query c0 17017
s=$(cat "$T/c0.json")
chain0=$(field "$s" store_chain)
log "staleness=0: $(field "$s" store_requests) requests, $chain0 in a row"
[ "$IT_S3" = 0 ] || [ "$chain0" -le 8 ] || fail "staleness=0: $chain0 store requests in a row (at most 4 + 3 freshness LISTs, + 1 for a thread scheduled late)"
unmount "$T/c0"

log "a commit makes hot.seg stale: still right, still few in a row"
mount_store "$T/w"
sq "$T/w/cold.db" "UPDATE big SET v = zeroblob(900) WHERE id % 97 = 0; INSERT INTO big(v) SELECT randomblob(900) FROM big LIMIT 3000;"
unmount "$T/w"
cold_query c2 9991
eq "$(sq "$T/c2/cold.db" 'SELECT count(*), sum(length(v)), sum(id % 97 = 0 AND v = zeroblob(900)) FROM big')" "33000|29700000|$((30000 / 97))" "after the commit"
eq "$(sq "$T/c2/cold.db" 'SELECT count(*) FROM small WHERE v < 100')" 100 "the index"
unmount "$T/c2"

log "a maintenance round rewrites it for the newest version"
"$DSQLFS" maintain "$STORE" > "$T/maint.out"
cold_query c6 9991 staleness=1
s=$(cat "$T/c6.json")
log "after maintain: $(field "$s" store_requests) requests, $(field "$s" store_chain) in a row, $(field "$s" hot_pages) hot pages"
[ "$(field "$s" hot_pages)" -ge 3 ] || fail "after maintain: $(field "$s" hot_pages) hot pages"
[ "$IT_S3" = 0 ] || [ "$(field "$s" store_chain)" -le 4 ] || fail "after maintain: $(field "$s" store_chain) in a row"
eq "$(sq "$T/c6/cold.db" 'SELECT count(*), sum(length(v)) FROM big')" "33000|29700000" "after maintain"
unmount "$T/c6"

log "no hot.seg (an older import): the walk is one request per level"
rm_object() { # rm_object KEY: delete one object of the store
    if [ "$IT_S3" = 0 ]; then
        rm "${STORE#file://}/$1"
    else
        # curl's SigV4, with the payload hash S3 wants (of no bytes)
        curl -sf -X DELETE --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" \
            -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
            --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
            "${AWS_ENDPOINT_URL%/}/${STORE#s3://}/$1" || fail "could not delete $1"
    fi
}
"$DSQLFS" import "$T/src.db" "$STORE/nohot" >/dev/null
rm_object nohot/hot.seg
m=$T/c3
mount_store "$m" -o cache_dir="$T/cache-c3",staleness=1
eq "$("$PY" "$T/q.py" "$m/nohot.db" 17017)" 900 "first query without hot.seg"
s=$(status "$m" nohot)
log "without hot.seg: $(field "$s" store.get) GETs, $(field "$s" store_chain) in a row"
eq "$(field "$s" hot_pages)" 0 "hot pages without hot.seg"
[ "$IT_S3" = 0 ] || [ "$(field "$s" store_chain)" -gt 4 ] || fail "without hot.seg the first query took only $(field "$s" store_chain) requests in a row: the check cannot fail"
[ "$(field "$s" store.get)" -gt "$gets" ] || fail "without hot.seg: $(field "$s" store.get) GETs, with it $gets"
unmount "$m"

if [ "$IT_S3" = 0 ]; then
    log "a damaged hot.seg is ignored"
    printf 'not a segment' > "${STORE#file://}/nohot/hot.seg"
    m=$T/c4
    mount_store "$m" -o cache_dir="$T/cache-c4"
    eq "$("$PY" "$T/q.py" "$m/nohot.db" 17017)" 900 "first query with a damaged hot.seg"
    grep -q "hot.seg ignored" "$T/c4.log" || fail "no log line for the damaged hot.seg"
    unmount "$m"
fi

log "dsqlfs hot writes it for the newest version"
"$DSQLFS" hot "$STORE/nohot" > "$T/hot.out"
grep -q "hot pages of version 1" "$T/hot.out" || fail "dsqlfs hot: $(cat "$T/hot.out")"
m=$T/c5
mount_store "$m" -o cache_dir="$T/cache-c5",staleness=1
eq "$("$PY" "$T/q.py" "$m/nohot.db" 17017)" 900 "first query after dsqlfs hot"
s=$(status "$m" nohot)
[ "$(field "$s" hot_pages)" -ge 3 ] || fail "after dsqlfs hot: $(field "$s" hot_pages) hot pages"
[ "$IT_S3" = 0 ] || [ "$(field "$s" store_chain)" -le 4 ] || fail "after dsqlfs hot: $(field "$s" store_chain) in a row"
unmount "$m"
wait_daemons
log "ok"
