#!/usr/bin/env bash
# SQLite's speedtest1 on a fresh, empty file on the mount (its first
# transaction spills pages before page 1 is written): it runs to the end,
# and the database it leaves is byte-identical to the same run on local
# disk, on this mount and on a second mount of the store; integrity ok.
# In rollback (DELETE) mode and, with --journal wal, in WAL mode (not on
# a mount with -o writeback in DSQ_IT_MOUNT_OPTS: such a mount refuses
# the switch to WAL, docs/writeback.md B5).
# speedtest1 comes from tests/sqlite/build.sh (Debian's sqlite3 source).
source "$(dirname "$0")/../integration/lib.sh"
need_fuse
eval "$("$(dirname "$0")/build.sh" --env)"
ST=$DSQ_SQLITE_DIR/speedtest1
[ -x "$ST" ] || fail "no speedtest1 in $DSQ_SQLITE_DIR (tests/sqlite/build.sh)"
A=$T/a B=$T/b L=$T/local
mkdir -p "$L"
mount_store "$A"
mount_store "$B"
modes="delete wal"
case " ${DSQ_IT_MOUNT_OPTS:-} " in *writeback*) modes=delete ;; esac
for mode in $modes; do
    log "speedtest1 --size 10 --journal $mode on a fresh empty file"
    "$ST" --size 10 --journal "$mode" "$L/st-$mode.db" >"$T/local-$mode.out" 2>&1 ||
        fail "speedtest1 on local disk: $(tail -3 "$T/local-$mode.out")"
    "$ST" --size 10 --journal "$mode" "$A/st-$mode.db" >"$T/mount-$mode.out" 2>&1 ||
        fail "speedtest1 on the mount: $(tail -3 "$T/mount-$mode.out")"
    grep -q 'TOTAL' "$T/mount-$mode.out" || fail "speedtest1 did not finish: $(tail -3 "$T/mount-$mode.out")"
    eq "$(sq "$A/st-$mode.db" 'PRAGMA integrity_check')" ok "integrity ($mode)"
    if [ "$mode" = wal ]; then
        # the local file needs its -wal checkpointed to compare images
        sqlite3 "$L/st-$mode.db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
        sq "$A/st-$mode.db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
    fi
    cmp "$L/st-$mode.db" "$A/st-$mode.db" || fail "$mode: the mount's database differs from local disk"
    cmp "$L/st-$mode.db" "$B/st-$mode.db" || fail "$mode: the second mount's copy differs"
done
unmount "$A"
unmount "$B"
wait_daemons
for mode in $modes; do
    "$DSQLFS" verify "$STORE/st-$mode" >/dev/null || fail "verify st-$mode"
done
echo "speedtest1: ok"
