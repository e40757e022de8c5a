#!/usr/bin/env bash
# Relative paths given to the daemon are resolved against the directory it
# was started in, not against "/" (where it runs once it has detached):
# a relative mount point is unmounted cleanly at SIGTERM, and a relative
# cache_dir (and TMPDIR, where journals live) holds the cache and spill
# files below the starting directory.
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
cleanup_root
echo "test_mount_paths: ok"
