#!/usr/bin/env bash
# Paths: relative paths given to the daemon are resolved against the
# directory it was started in, not against "/" (where it runs once it has
# detached): a relative mount point is unmounted cleanly at SIGTERM, and a
# relative cache_dir (and TMPDIR, where journals live) holds the cache and
# spill files below the starting directory.  On a file:// store, the
# objects and directories the daemon makes are private (store_mode), and
# a store directory open to others is named at mount.
source "$(dirname "$0")/lib.sh"
need_fuse
tag=dsqlfs-relpath-$$-$RANDOM
# if the paths were resolved against "/", this is where they would land:
# removed at the end, and before failing when they appear
cleanup_root() { rm -rf "/$tag-cache" "/$tag-tmp" 2>/dev/null || true; }

cd "$T"
mkdir -p relmnt "$tag-tmp"
logf=$T/relmnt.log
# a fresh daemon, not lib.sh's mount_store: it passes the relative names
# exactly as a user typed them
TMPDIR=$tag-tmp "$DSQLFS" "$STORE" relmnt -f -v \
    -o "cache_dir=$tag-cache,disk_cache=1,txn_mem_bytes=65536" >>"$logf" 2>&1 &
d=$!
disown "$d"
DAEMONS+=("$d")
MOUNTS+=("$T/relmnt")
for _ in $(seq 1 100); do mountpoint -q "$T/relmnt" && break; kill -0 "$d" 2>/dev/null || fail "daemon exited: $(tail -3 "$logf")"; sleep 0.05; done
mountpoint -q "$T/relmnt" || fail "the mount did not come up"

# a transaction bigger than txn_mem_bytes spills into cache_dir, and the
# commit leaves its objects in the disk cache there
sq relmnt/p.db "CREATE TABLE t(x); INSERT INTO t SELECT randomblob(1000) FROM generate_series(1, 400);"
eq "$(sq relmnt/p.db 'SELECT count(*) FROM t')" 400 "rows"
# journals live in a directory under TMPDIR
sq relmnt/p.db "BEGIN; INSERT INTO t VALUES (1); SELECT 1;" >/dev/null
if [ -e "/$tag-cache" ] || [ -e "/$tag-tmp" ]; then
    ls -la "/$tag-cache" "/$tag-tmp" >&2 2>/dev/null || true
    cleanup_root
    fail "a relative path was resolved against / (/$tag-cache or /$tag-tmp exists)"
fi
[ -n "$(find "$T/$tag-cache" -type f 2>/dev/null | head -1)" ] ||
    fail "nothing was cached in $T/$tag-cache"
ls -d "$T/$tag-tmp"/dsqlfs-side.* >/dev/null 2>&1 || fail "no journal directory in $T/$tag-tmp"

# SIGTERM: the daemon unmounts the relative mount point and exits
kill -TERM "$d"
for _ in $(seq 1 100); do kill -0 "$d" 2>/dev/null || break; sleep 0.05; done
kill -0 "$d" 2>/dev/null && fail "the daemon did not exit at SIGTERM"
# (a dead FUSE mount fails stat, so ask the mount table, not mountpoint)
if grep -q " $T/relmnt " /proc/self/mounts; then
    fusermount3 -uz "$T/relmnt" 2>/dev/null || true
    fail "SIGTERM left a dead mount: $(grep -i unmount "$logf" | tail -2)"
fi
grep -qi "failed to unmount" "$logf" && fail "unmount failed: $(grep -i unmount "$logf")"
ls -d "$T/$tag-tmp"/dsqlfs-side.* >/dev/null 2>&1 && fail "the journal directory was not removed at exit"

# a relative mount point that does not exist is named in the error
out=$("$DSQLFS" "$STORE" nosuchdir -f 2>&1) && fail "mounting on a missing relative directory succeeded"
case $out in *nosuchdir*) ;; *) fail "the error does not name the mount point: $out" ;; esac

# the data is there after a mount with absolute paths
mount_store "$T/mnt"
eq "$(sq "$T/mnt/p.db" 'SELECT count(*) FROM t')" 400 "rows after remount"
unmount "$T/mnt"
wait_daemons

if [ "$IT_S3" = 0 ]; then
    # a file:// store is as private as the mount: every object and
    # directory the daemon made has no group/other access, whatever the
    # umask; a store directory open to others is named at mount
    S=${STORE#file://}
    leaky=$(find "$S" \( -type f -perm /077 \) -o \( -type d -perm /077 \) | head -3)
    [ -z "$leaky" ] || fail "store objects open to others: $leaky ($(stat -c %a $leaky | head -1))"
    [ "$(stat -c %a "$S")" = 700 ] || fail "store directory mode $(stat -c %a "$S")"
    chmod 755 "$S"
    log=$T/mnt.log
    : > "$log"
    mount_store "$T/mnt"
    grep -q "store directory $S is open to other users (mode 0755)" "$log" ||
        fail "no warning for a store directory open to others: $(cat "$log")"
    unmount "$T/mnt"
    wait_daemons
    chmod 700 "$S"
    : > "$log"
    mount_store "$T/mnt"
    grep -q "is open to" "$log" && fail "warning for a private store directory"
    # store_mode widens it on purpose: no warning for the group then
    chmod 750 "$S"
    unmount "$T/mnt"
    wait_daemons
    : > "$log"
    um=$(umask)
    umask 077
    mount_store "$T/mnt" -o store_mode=0640
    umask "$um"
    grep -q "is open to" "$log" && fail "warning despite store_mode=0640"
    sq "$T/mnt/g.db" "CREATE TABLE g(x); INSERT INTO g VALUES (1);"
    [ "$(stat -c %a "$S/g/manifests/v00000000000000000001.json")" = 640 ] ||
        fail "store_mode=0640 gave $(stat -c %a "$S/g/manifests/v00000000000000000001.json")"
    [ "$(stat -c %a "$S/g/manifests")" = 750 ] || fail "store_mode=0640 directory $(stat -c %a "$S/g/manifests")"
    unmount "$T/mnt"
    wait_daemons
fi
cleanup_root
echo "test_mount_paths: ok"
