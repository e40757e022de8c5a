#!/usr/bin/env bash
# The daemon killed while a writer loops: at every named fault point of
# the commit path (DSQLFS_FAULT, after a few commits pass) and with
# SIGKILL at random moments.  After a remount: integrity_check ok, every
# commit the writer saw succeed is present, nothing else (the one commit
# in flight may or may not be), and the store verifies.
source "$(dirname "$0")/lib.sh"
need_fuse
M=$T/mnt
mount_store "$M"
sq "$M/c.db" "CREATE TABLE w(id INTEGER PRIMARY KEY, pad BLOB);"
unmount "$M"
wait_daemons

next=1
check_after() { # check_after OUTFILE WHAT
    local out=$1 what=$2
    # the dead mount: detach it
    fusermount3 -uz "$M" 2>/dev/null || true
    for _ in $(seq 1 50); do mountpoint -q "$M" || break; sleep 0.1; done
    mount_store "$M"
    eq "$(sq "$M/c.db" 'PRAGMA integrity_check')" ok "$what: integrity"
    sq "$M/c.db" 'SELECT id FROM w ORDER BY id' > "$T/present"
    grep '^ok ' "$out" | awk '{print $2}' | sort -n > "$T/acked" || true
    local inflight
    inflight=$(grep '^try ' "$out" | tail -1 | awk '{print $2}' || true)
    local missing extra
    missing=$(comm -23 <(sort "$T/acked") <(sort "$T/present") | wc -l)
    extra=$(comm -13 <(sort "$T/acked") <(sort "$T/present") | grep -vx "$inflight" | grep -v "^$" | grep -c . || true)
    # rows from earlier rounds are acked in earlier files: compare only
    # this round's range
    [ "$missing" = 0 ] || fail "$what: $missing acknowledged commit(s) lost"
    local lo
    lo=$(head -1 "$T/acked" 2>/dev/null || echo 0)
    # comm needs both sides in the same (lexical) order: numbers cross
    # digit boundaries (99 -> 100) within a round
    extra=$(awk -v lo="$lo" -v inf="$inflight" '$1 >= lo && $1 != inf' "$T/present" | sort | comm -13 <(sort "$T/acked") - | grep -c . || true)
    [ "$extra" = 0 ] || fail "$what: $extra row(s) present that were never acknowledged"
    log "$what: $(wc -l < "$T/acked") acknowledged, in flight $inflight $(grep -qx "$inflight" "$T/present" && echo landed || echo 'did not land')"
    next=$(( $(tail -1 "$T/present") + 1 ))
    [ "$next" -gt "${inflight:-0}" ] || next=$((inflight + 1))
    unmount "$M"
    wait_daemons
}

for fp in commit.after_segments commit.before_manifest commit.after_manifest commit.after_root; do
    for mode in delete truncate; do
        export DSQLFS_FAULT=$fp DSQLFS_FAULT_SKIP=3
        mount_store "$M"
        unset DSQLFS_FAULT DSQLFS_FAULT_SKIP
        : > "$T/out"
        start=$next
        # the writer stops at its first error; one that is not the fault
        # point (a busy store under load) leaves the daemon running: write
        # on from the row after the last one tried
        for attempt in 1 2 3 4 5; do
            DSQ_JOURNAL=$mode timeout 120 "$PY" "$(dirname "$0")/writer.py" "$M/c.db" "$start" >> "$T/out" 2>&1 || true
            kill -0 "$LAST_DAEMON" 2>/dev/null || break
            log "$fp: the writer stopped with the daemon running ($(tail -1 "$T/out")): again"
            start=$(( $(grep '^try ' "$T/out" | tail -1 | awk '{print $2}') + 1 ))
        done
        kill -0 "$LAST_DAEMON" 2>/dev/null && { tail -3 "$T/out" >&2; fail "$fp: the daemon did not stop"; }
        check_after "$T/out" "$fp ($mode)"
    done
done

for round in 1 2 3 4; do
    mount_store "$M"
    d=$LAST_DAEMON
    DSQ_JOURNAL=delete timeout 120 "$PY" "$(dirname "$0")/writer.py" "$M/c.db" "$next" > "$T/out" 2>&1 &
    w=$!
    # kill while it writes: not before python has even started (then the
    # round would check nothing, and used to trip set -e below)
    for _ in $(seq 1 200); do grep -q '^try ' "$T/out" 2>/dev/null && break; sleep 0.05; done
    sleep "0.$((RANDOM % 9 + 1))"
    kill -9 "$d"
    wait "$w" || true
    check_after "$T/out" "SIGKILL round $round"
done
"$DSQLFS" verify "$STORE/c" >/dev/null || fail "verify"
echo "test_mount_crash: ok"
