#!/usr/bin/env bash
# Mounting the ways an administrator does: mount -t fuse.dsqlfs (through
# fuse3's mount.fuse helper, dsqlfs in PATH), an fstab line (tested with
# an alternate fstab file, mount -T), the mount.dsqlfs helper, daemon mode
# (detached, unmounted with umount), -o ro and -o allow_delete.
source "$(dirname "$0")/lib.sh"
need_fuse
# mount(8) runs helpers with a fixed PATH: install ours for the test as
# docs/mount.md says (/sbin/mount.fuse.dsqlfs -> build/mount.dsqlfs)
if [ ! -e /sbin/mount.fuse.dsqlfs ]; then
    ln -s "$DSQ_BUILD/mount.dsqlfs" /sbin/mount.fuse.dsqlfs
    RM_AFTER+=(/sbin/mount.fuse.dsqlfs)
fi
"$DSQLFS" init "$STORE/app" -q
M=$T/mnt
mkdir -p "$M"
MOUNTS+=("$M")

check_mounted() { # check_mounted WHAT
    for _ in $(seq 1 100); do mountpoint -q "$M" && break; sleep 0.05; done
    mountpoint -q "$M" || fail "$1: not mounted"
    grep -q " $M fuse.dsqlfs " /proc/mounts || fail "$1: type in /proc/mounts: $(grep " $M " /proc/mounts)"
    sq "$M/app.db" "CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES ('$1');"
    umount "$M" || fail "$1: umount"
    for _ in $(seq 1 100); do mountpoint -q "$M" || break; sleep 0.05; done
    mountpoint -q "$M" && fail "$1: still mounted"
    log "$1: ok"
}

log "mount -t fuse.dsqlfs"
timeout 30 mount -t fuse.dsqlfs "$STORE" "$M" -o staleness=0 || fail "mount -t"
check_mounted "mount -t fuse.dsqlfs"

log "fstab line through mount -T"
echo "$STORE  $M  fuse.dsqlfs  _netdev,noauto,staleness=0,isolation=snapshot  0 0" > "$T/fstab"
timeout 30 mount -T "$T/fstab" "$M" || fail "mount -T"
check_mounted "fstab"

log "the mount.dsqlfs helper"
timeout 30 "$DSQ_BUILD/mount.dsqlfs" "$STORE" "$M" -o rw,_netdev,defaults || fail "mount.dsqlfs"
check_mounted "mount.dsqlfs"

log "daemon mode, a bad option fails before mounting"
out=$("$DSQLFS" "$STORE" "$M" -o nosuchopt 2>&1) && fail "bad option mounted"
mountpoint -q "$M" && fail "mounted despite a bad option"
"$DSQLFS" "$STORE" "$M" || fail "daemon mode"
check_mounted "daemon mode"
eq "$(sqlite3 -bail "$T/x.db" 'SELECT 1' && "$DSQLFS" export "$STORE/app" "$T/app.db" -q && sqlite3 "$T/app.db" 'SELECT count(*) FROM t')" "1
4" "rows from every mount"

log "-o ro refuses writes"
"$DSQLFS" "$STORE" "$M" -o ro
for _ in $(seq 1 100); do mountpoint -q "$M" && break; sleep 0.05; done
eq "$(sq "$M/app.db" 'SELECT count(*) FROM t')" 4 "read on ro"
out=$(sq "$M/app.db" "INSERT INTO t VALUES ('ro')" 2>&1) && fail "write on ro"
echo "$out" | grep -qi "readonly\|read-only" || fail "ro message: $out"
umount "$M"
for _ in $(seq 1 100); do mountpoint -q "$M" || break; sleep 0.05; done

log "-o allow_delete lets rm remove a database"
mount_store "$M" -o allow_delete
sq "$M/gone.db" "CREATE TABLE g(x)"
rm "$M/gone.db" || fail "rm with allow_delete"
[ -e "$M/gone.db" ] && fail "gone.db still there"
"$DSQLFS" status "$STORE/gone" >/dev/null 2>&1 && fail "gone still in the store"
unmount "$M"
echo "test_mount_fstab: ok"
