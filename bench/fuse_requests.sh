#!/usr/bin/env bash
# bench/fuse_requests.sh [K]: the FUSE requests one SQLite read
# transaction and one single-row commit cost through a fresh dsqlfs mount
# of a file:// store (DSQ_STORE=s3://... for another store), counted by
# the daemon (metrics.prom, dsqlfs_fuse_requests_total) and printed per
# opcode (bench/fuse_requests.py); a second mount of the same store
# counts what a read on another host costs after each commit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DSQLFS=${DSQLFS:-$here/../build/dsqlfs}
W=$(mktemp -d /tmp/dsq-req.XXXXXX)
trap 'fusermount3 -u "$W/m" 2>/dev/null; fusermount3 -u "$W/b" 2>/dev/null; sleep 0.3; rm -rf "$W"' EXIT
mkdir -p "$W/m" "$W/b"
"$DSQLFS" "${DSQ_STORE:-file://$W/store}" "$W/m" ${DSQ_MOUNT_OPTS:-}
"$DSQLFS" "${DSQ_STORE:-file://$W/store}" "$W/b" ${DSQ_MOUNT_OPTS:-}
python3 "$here/fuse_requests.py" "$W/m" "${1:-200}" "$W/b"
