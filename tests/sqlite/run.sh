#!/usr/bin/env bash
# SQLite's own TCL tests with the working directory on local disk and on
# dsqlfs mounts, compared case by case in one run.
#
#   tests/sqlite/run.sh [-s SET]... [-t TARGETS] [-j JOBS] [-T SECONDS] [FILE...]
#
#   -s SET      rollback (default), children, wal, walchildren, names;
#               repeatable.  FILE... (test names without .test) adds files.
#   -t TARGETS  comma list of local, file, s3 (default local,file).  local
#               is always run: it is the reference.  s3 needs the S3 test
#               server: run under tests/s3/with_rgw.sh.
#   -j JOBS     test files run at once (default: the number of cores)
#   -T SECONDS  timeout per test file and target (default 600)
#
# Every (file, target) gets a fresh working directory: on local disk a
# directory of $T, on a mount a fresh store (file://: a directory; s3: a
# fresh prefix of the bucket) mounted with -o allow_delete and the working
# directory at its root.  Helper files of the child-process tests (Tcl
# scripts for the child testfixture) go to a local directory named by
# TESTFIXTURE_HELPER_DIR (see helpers-outside-cwd.patch), never to the
# mount.  testfixture, speedtest1 and the patched test tree come from
# tests/sqlite/build.sh (cached outside the clone).
#
# The verdict (tests/sqlite/verdict.py): for each mount target and file,
# every case that passes on local disk in this run passes on the mount;
# the only exceptions are the cases named in TOLERATED below.  A file
# that prints no summary ("N errors out of M tests") on the mount but did
# on local disk fails, and so does a timeout.  Exit 0 when every target
# meets it, 1 otherwise; the daemon logs and test outputs of a failing run
# (of any run with DSQ_SQLT_KEEP=1) are kept, the path is printed.  The
# daemons log with -v; DSQ_IT_DEBUG=-d logs every FUSE request.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)

# The sets (docs/testing.md).  names is not in CI.
declare -A SETS=(
    [rollback]="backup select1 insert journal2 journal3 exclusive exclusive2 pager2 pager3 mmap2 mmap3 fallocate nolock lock7 sync sync2 symlink2 io filectrl"
    [children]="savepoint trans lock2 lock4 lock6"
    [wal]="wal4 wal6 wal7 walmode"
    [walchildren]="wal wal3 walro2 mmap1 unixexcl superlock walsetlk"
    [names]="lock pager1 walro lock5 delete_db symlink"
)

# Cases that may fail on a mount although they pass on local disk, by
# name (never by count).  Each needs a reason.
TOLERATED=(
    # As root, these chmod a file to 0400 and expect the open to fail:
    # root opens it anyway, on every file system.
    pager1.4.7.2 pager1.4.8.1
    # db_swap exchanges two WAL databases' files with plain writes under
    # a superlock; the mount takes the database-file writes as checkpoint
    # copies and brings the store's version back into the -wal (2 frames),
    # so wal_checkpoint counts 2 frames where local disk counts 0.  The
    # data every later case reads (6.7-6.10) is the same (docs/wal.md).
    superlock-6.6
)

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
sets=() files=() targets=local,file jobs=$(nproc) tmo=600
while [ $# -gt 0 ]; do
    case $1 in
    -s) [ $# -ge 2 ] || usage; sets+=("$2"); shift 2 ;;
    -t) [ $# -ge 2 ] || usage; targets=$2; shift 2 ;;
    -j) [ $# -ge 2 ] || usage; jobs=$2; shift 2 ;;
    -T) [ $# -ge 2 ] || usage; tmo=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "run.sh: unknown option $1" >&2; usage ;;
    *) files+=("${1%.test}"); shift ;;
    esac
done
[ ${#sets[@]} -gt 0 ] || [ ${#files[@]} -gt 0 ] || sets=(rollback)
for s in "${sets[@]}"; do
    [ -n "${SETS[$s]:-}" ] || { echo "run.sh: unknown set '$s' (sets: ${!SETS[*]})" >&2; exit 2; }
    # shellcheck disable=SC2206
    files+=(${SETS[$s]})
done
TARGETS=(local)
IFS=, read -r -a tlist <<<"$targets"
for t in "${tlist[@]}"; do
    case $t in
    local) ;;
    file | s3) TARGETS+=("$t") ;;
    *) echo "run.sh: unknown target '$t' (local, file, s3)" >&2; exit 2 ;;
    esac
done

# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
. "$SRC/tests/integration/lib.sh"
need_fuse
[ -x "$DSQLFS" ] || fail "no dsqlfs binary at $DSQLFS (build first, or set DSQLFS)"
S3BASE=
if [[ " ${TARGETS[*]} " == *" s3 "* ]]; then
    if [ -z "${DSQ_S3_BUCKET:-}" ] || [ -z "${AWS_ENDPOINT_URL:-}" ]; then
        [ "${CI:-}" = true ] && fail "target s3 without a server (run under tests/s3/with_rgw.sh)"
        echo "skip: target s3 without a server (run under tests/s3/with_rgw.sh)" >&2
        exit 77
    fi
    S3BASE="s3://$DSQ_S3_BUCKET/sqlt-$(basename "$T" | tr 'A-Z.' 'a-z-')"
fi
eval "$("$HERE/build.sh" --env)"
TF="$DSQ_SQLITE_DIR/testfixture"
for f in "${files[@]}"; do
    [ -f "$DSQ_SQLITE_DIR/test/$f.test" ] || fail "no SQLite test file $f.test in $DSQ_SQLITE_DIR/test"
done

R="$T/results"
mkdir -p "$R" "$T/logs"
printf '%s\n' "${TOLERATED[@]}" >"$T/tolerated"

running_pid() { # a process that exists and is not a zombie (kill -0 is
    # true for an exited daemon until its parent reaps it)
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

declare -A JOB_OF MNT_OF DAEMON_OF START_OF
running=0
start_job() { # start_job TARGET FILE
    local target=$1 file=$2 key="$1-$2" wd
    mkdir -p "$R/$target" "$T/h/$key"
    case $target in
    local) wd="$T/local/$file"; mkdir -p "$wd" ;;
    *)
        wd="$T/m/$key"
        # shellcheck disable=SC2034 # STORE: what lib.sh's mount_store mounts
        if [ "$target" = s3 ]; then STORE="$S3BASE/$file"; else STORE="file://$T/stores/$file"; fi
        mount_store "$wd" -o "allow_delete,cache_dir=$T/cache/$key"
        MNT_OF[$key]=$wd
        DAEMON_OF[$key]=$LAST_DAEMON
        ;;
    esac
    START_OF[$key]=$EPOCHREALTIME
    (cd "$wd" && export TESTFIXTURE_HELPER_DIR="$T/h/$key" && exec timeout -k 10 "$tmo" \
        "$TF" "$DSQ_SQLITE_DIR/test/$file.test" --testdir= >"$R/$target/$file.out" 2>&1) &
    JOB_OF[$!]=$key
    PIDS+=("$!")
    running=$((running + 1))
}
finish_job() { # wait for any job; record its status and time, unmount
    local pid rc=0 key target file
    wait -n -p pid || rc=$?
    key=${JOB_OF[$pid]}
    target=${key%%-*} file=${key#*-}
    echo "$rc" >"$R/$target/$file.rc"
    awk -v a="${START_OF[$key]}" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }' >"$R/$target/$file.secs"
    if [ -n "${MNT_OF[$key]:-}" ]; then
        local m=${MNT_OF[$key]} ok=0
        for _ in $(seq 1 50); do
            if fusermount3 -u "$m" 2>/dev/null; then ok=1; break; fi
            sleep 0.1
        done
        if [ $ok = 0 ]; then
            echo "run.sh: $m still busy after the test; detached lazily" >>"$R/$target/$file.out"
            fusermount3 -uz "$m" 2>/dev/null || true
        fi
        for _ in $(seq 1 300); do running_pid "${DAEMON_OF[$key]}" || break; sleep 0.1; done
        if running_pid "${DAEMON_OF[$key]}"; then
            echo "run.sh: the daemon did not exit within 30 s of the unmount" >>"$R/$target/$file.out"
            ps -L -o tid=,stat=,wchan:32=,comm= -p "${DAEMON_OF[$key]}" 2>/dev/null |
                sed 's/^/    thread /' >>"$R/$target/$file.out" || true
        fi
    fi
    running=$((running - 1))
    printf '[%s] %-6s %-12s rc=%s %ss\n' "$(date +%T)" "$target" "$file" "$rc" "$(cat "$R/$target/$file.secs")" >&2
}

T0=$EPOCHREALTIME
log "SQLite $(cat "$DSQ_SQLITE_DIR/VERSION") tests: ${files[*]}"
log "targets: ${TARGETS[*]}  jobs: $jobs  timeout: ${tmo}s  dsqlfs: $DSQLFS"
for f in "${files[@]}"; do
    for t in "${TARGETS[@]}"; do
        while [ "$running" -ge "$jobs" ]; do finish_job; done
        start_job "$t" "$f"
    done
done
while [ "$running" -gt 0 ]; do finish_job; done
WALL=$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

rc=0
"$PY" "$HERE/verdict.py" "$R" "$T/tolerated" "${TARGETS[*]}" "${files[*]}" "$WALL" || rc=$?
# daemon logs: a failing file's stay in $T (lib.sh prints their tails),
# the others move aside
for t in "${TARGETS[@]}"; do
    [ "$t" = local ] && continue
    for f in "${files[@]}"; do
        [ -f "$T/$t-$f.log" ] || continue
        grep -qx "$t $f" "$R/failed" 2>/dev/null || mv "$T/$t-$f.log" "$T/logs/"
    done
done
if [ $rc -ne 0 ] || [ "${DSQ_SQLT_KEEP:-0}" = 1 ]; then
    KEEP=$(mktemp -d "${TMPDIR:-/tmp}/dsqlfs-sqlite-tests.XXXXXX")
    cp -a "$R" "$KEEP/"
    cp -a "$T"/*.log "$T/logs" "$KEEP/" 2>/dev/null || true
    echo "test outputs and daemon logs kept in $KEEP" >&2
fi
exit $rc
