#!/usr/bin/env bash
# Every rollback journal mode (DELETE, TRUNCATE, PERSIST, MEMORY, OFF) x
# synchronous OFF, NORMAL, FULL: a writer on mount A commits N one-row
# transactions; mount B checks after every commit that it sees exactly
# that commit (count, content, index = table), two readers (on A and on
# a third mount C) reading without pause never see half a transaction
# nor go back, and each
# block of N commits is exactly N versions in the store (modes.py).
source "$(dirname "$0")/lib.sh"
need_fuse
N=${DSQ_MODES_N:-20}
mount_store "$T/a"
mount_store "$T/b"
mount_store "$T/c"
MODES_STOP="$T/stop" timeout 600 "$PY" "$(dirname "$0")/modes.py" \
    "$T/a/x.db" "$T/b/x.db" "$T/c/x.db" "$STORE" "$DSQLFS" "$N"
"$DSQLFS" verify "$STORE/x" >/dev/null || fail "verify"
unmount "$T/a"
unmount "$T/b"
unmount "$T/c"
echo "test_mount_modes: ok"
