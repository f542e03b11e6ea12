#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Builds the libFuzzer targets of tests/fuzz in a clang tree of their own and runs each for a given
# time on a copy of its seed corpus (tests/fuzz/corpus/<target>/, never modified), with its
# dictionary (tests/fuzz/dict/<target>.dict) when there is one. ASan, UBSan and LeakSanitizer are
# on; any crash, leak, undefined behaviour, timeout or out-of-memory fails the run and prints the
# reproducer (kept in <build-dir>/artifacts/) and the command that replays it.
#
#   tests/fuzz/run.sh SECONDS [BUILD_DIR] [TARGET...]
#
# SECONDS    run time of each target (libFuzzer -max_total_time)
# BUILD_DIR  the clang build tree (default build/fuzz); configured with ADI_FUZZ=ON, tests off
# TARGET     a subset of the targets (json msg envelope router jwt sigv4 cron kms_creds)
#
# Environment: ADI_FUZZ_CC (the compiler, default clang), ADI_FUZZ_JOBS (build parallelism, default 2),
# ADI_FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=2 -workers=2").
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

say() { printf 'fuzz: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

[[ $# -ge 1 && "$1" =~ ^[0-9]+$ && "$1" -gt 0 ]] ||
    die "usage: tests/fuzz/run.sh SECONDS [BUILD_DIR] [TARGET...]"
SECONDS_EACH=$1
BUILD=${2:-$ROOT/build/fuzz}
shift $(($# >= 2 ? 2 : 1))

# Longest input each target is given (-max_len), sized to what its parser accepts plus a margin.
declare -A MAX_LEN=([json]=4096 [msg]=4096 [envelope]=8192 [router]=2048 [jwt]=4096
    [sigv4]=4096 [cron]=300 [kms_creds]=4096)
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
    TARGETS=(json msg envelope router jwt sigv4 cron kms_creds)
fi
for t in "${TARGETS[@]}"; do
    [[ -n "${MAX_LEN[$t]:-}" ]] || die "unknown target $t (known: ${!MAX_LEN[*]})"
done

CC=${ADI_FUZZ_CC:-clang}
command -v "$CC" >/dev/null 2>&1 || die "$CC not found: install clang (./adi deps)"
"$CC" -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null | grep -q / ||
    say "warning: $CC may lack the libFuzzer runtime (Debian: libclang-rt-dev)"

say "configuring $BUILD"
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER="$CC" -DADI_FUZZ=ON -DADI_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" >"$BUILD/configure.log" 2>&1 || {
    cat "$BUILD/configure.log" >&2
    die "cmake configure failed"
}
say "building ${TARGETS[*]}"
cmake --build "$BUILD" -j "${ADI_FUZZ_JOBS:-2}" --target "${TARGETS[@]/#/fuzz_}" ||
    die "build failed"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/adi-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$BUILD/artifacts" "$BUILD/logs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
printf '%-10s %8s %10s %8s %s\n' TARGET SECONDS EXECS CORPUS RESULT
for t in "${TARGETS[@]}"; do
    corpus="$WORK/$t"
    mkdir -p "$corpus"
    if [[ -d "$HERE/corpus/$t" ]]; then
        cp -r "$HERE/corpus/$t/." "$corpus/"
    fi
    args=(-max_total_time="$SECONDS_EACH" -max_len="${MAX_LEN[$t]}" -timeout=20
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1
        -artifact_prefix="$BUILD/artifacts/$t-")
    [[ -f "$HERE/dict/$t.dict" ]] && args+=(-dict="$HERE/dict/$t.dict")
    # shellcheck disable=SC2206 # extra flags are words on purpose
    [[ -n "${ADI_FUZZ_ARGS:-}" ]] && args+=(${ADI_FUZZ_ARGS})
    log="$BUILD/logs/$t.log"
    rc=0
    "$BUILD/tests/fuzz/fuzz_$t" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    files=$(find "$corpus" -type f | wc -l)
    if [[ $rc == 0 ]]; then
        printf '%-10s %8s %10s %8s %s\n' "$t" "$SECONDS_EACH" "${execs:-?}" "$files" ok
        continue
    fi
    printf '%-10s %8s %10s %8s %s\n' "$t" "$SECONDS_EACH" "${execs:-?}" "$files" "FAILED ($rc)"
    failed+=("$t")
    echo "----- $t: tail of $log -----" >&2
    tail -n 60 "$log" >&2
    repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
    if [[ -n "$repro" ]]; then
        echo "fuzz: $t: reproducer $repro" >&2
        echo "fuzz: replay with: $BUILD/tests/fuzz/fuzz_$t $repro" >&2
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    die "failed: ${failed[*]} (logs in $BUILD/logs)"
fi
say "all ${#TARGETS[@]} targets ran ${SECONDS_EACH}s each without a finding"
