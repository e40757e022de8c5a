#!/usr/bin/env bash
# The bank: accounts spread over many pages, 2 mounts x 4 processes doing
# random transfers (retrying on BUSY and on I/O errors at commit), in
# rollback (DELETE) and then WAL mode.  The total stays exact and
# integrity_check passes on both mounts and in the store.
source "$(dirname "$0")/lib.sh"
need_fuse
NACCT=${DSQ_BANK_ACCOUNTS:-400}
NTX=${DSQ_BANK_TRANSFERS:-100}
mount_store "$T/m1"
mount_store "$T/m2"
sq "$T/m1/bank.db" "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INT, pad TEXT);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<$NACCT)
  INSERT INTO acct SELECT i, 1000, hex(randomblob(200)) FROM c;"
total=$((NACCT * 1000))
round() { # round MODE: 2 mounts x 4 processes of transfers in journal MODE
    local mode=$1 pids=()
    eq "$(sq "$T/m1/bank.db" "PRAGMA journal_mode=$mode")" "$mode" "journal mode $mode"
    for m in m1 m2; do
        for k in 1 2 3 4; do
            "$PY" "$(dirname "$0")/bank.py" "$T/$m/bank.db" "$RANDOM$k" "$NTX" > "$T/bank-$m-$k" 2>&1 &
            pids+=($!)
            PIDS+=($!)
        done
    done
    for p in "${pids[@]}"; do wait "$p" || fail "$mode: a bank process failed: $(cat "$T"/bank-* | grep -v '^[0-9]*$' | head -5)"; done
    log "$mode: retries per process: $(cat "$T"/bank-* | tr '\n' ' ')"
    eq "$(sq "$T/m1/bank.db" 'SELECT sum(bal) FROM acct')" "$total" "$mode: total on m1"
    eq "$(sq "$T/m2/bank.db" 'SELECT sum(bal) FROM acct')" "$total" "$mode: total on m2"
    eq "$(sq "$T/m1/bank.db" 'PRAGMA integrity_check')" ok "$mode: integrity m1"
    eq "$(sq "$T/m2/bank.db" 'PRAGMA integrity_check')" ok "$mode: integrity m2"
    "$DSQLFS" verify "$STORE/bank" >/dev/null || fail "$mode: verify"
    "$DSQLFS" export "$STORE/bank" "$T/bank-$mode.db" -q
    eq "$(sqlite3 "$T/bank-$mode.db" 'SELECT sum(bal) FROM acct')" "$total" "$mode: total in the store"
}
round delete
round wal
cat "$T/m1/.dsqlfs/bank.json" >&2
echo "test_mount_bank: ok"
