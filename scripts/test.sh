#!/usr/bin/env bash
# Build and run every test: unit tests (plain and under ASan+UBSan), the
# integration tests against the real S3 server (Ceph RGW, started here) and
# real FUSE mounts, and a short run of each fuzzer.
#
#   scripts/test.sh              everything
#   DSQ_TEST_QUICK=1 scripts/test.sh   unit tests of the plain build only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/deps.sh --test

fail=0
results=()
step() { # step NAME COMMAND...
    local name=$1; shift
    echo "=== $name"
    if "$@"; then results+=("ok    $name"); else results+=("FAIL  $name"); fail=1; fi
}

# 1. plain build, warnings are errors
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSQ_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
step "unit tests" ctest --test-dir build -L unit --output-on-failure

if [ "${DSQ_TEST_QUICK:-0}" != 1 ]; then
    # 2. the real S3 server for the integration tests
    export DSQ_RGW_DIR
    DSQ_RGW_DIR=$(mktemp -d /tmp/dsqlfs-rgw.XXXXXX)
    cleanup() {
        tests/s3/rgw.sh stop "$DSQ_RGW_DIR" >/dev/null 2>&1 || true
        rm -rf "$DSQ_RGW_DIR"
    }
    trap cleanup EXIT
    # the server needs ten ports from DSQ_RGW_PORT on; move up past any
    # range in use (another server left running, another test run)
    DSQ_RGW_PORT=${DSQ_RGW_PORT:-7480}
    for _ in $(seq 1 20); do
        ss -ltn 2>/dev/null | awk '{print $4}' | grep -qE ":($(seq -s'|' "$DSQ_RGW_PORT" $((DSQ_RGW_PORT + 9))))\$" || break
        DSQ_RGW_PORT=$((DSQ_RGW_PORT + 10))
    done
    tests/s3/rgw.sh start "$DSQ_RGW_DIR" "$DSQ_RGW_PORT" >/dev/null
    step "integration tests" ctest --test-dir build -L integration -LE sqlite --output-on-failure
    # SQLite's own TCL tests on the mount: testfixture is built once per
    # machine (cached outside the clone); the tests run in parallel, each
    # with its own mounts, stores and bucket (most of their time is S3
    # round trips, not CPU)
    step "SQLite test programs" tests/sqlite/build.sh
    step "SQLite's TCL tests" ctest --test-dir build -L sqlite -j3 --output-on-failure

    # 3. unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDSQ_WERROR=ON \
        -DDSQ_ASAN=ON -DDSQ_UBSAN=ON >/dev/null
    cmake --build build-asan -j"$(nproc)"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    step "unit tests (ASan+UBSan)" ctest --test-dir build-asan -L unit --output-on-failure

    # 4. fuzzers, briefly
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DDSQ_FUZZ=ON \
        -DDSQ_ASAN=ON -DDSQ_UBSAN=ON >/dev/null
    cmake --build build-fuzz -j"$(nproc)"
    step "fuzzers" ctest --test-dir build-fuzz -L fuzz --output-on-failure
fi

echo
echo "=== summary"
printf '%s\n' "${results[@]}"
passed=0; failed=0
for r in "${results[@]}"; do case $r in ok*) passed=$((passed+1));; *) failed=$((failed+1));; esac; done
echo "$passed passed, $failed failed"
exit $fail
