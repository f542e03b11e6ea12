#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Faults under load on a private stack (issue 8, item 1): starts the test stack and the suite in
# <dir> with tests/harness/stack.sh and suite.sh, runs faults.py (which adds a second replica of
# every service and a second gateway, loads the gateway and injects the faults), then stops
# everything, its own replicas included, and fails when the suite's stop does (a process that
# needed SIGKILL, or a sanitizer report in a log).
#
#   run.sh short|long <dir> <binary...>   short: ~9 s per scenario, 4 clients (ctest faults.short)
#                                         long: 60 s per scenario, 12 clients (./adi bench)
# The JSON result goes to <dir>.json (the stack's folder itself is removed on stop, its logs kept
# in <dir>.logs). FAULTS_ONLY=<scenario,...> runs only those scenarios.
#
# Settings for the faults stack (unless set): RECLAIM_IDLE_MS=2000 and REQUEST_TIMEOUT_MS=4000, so
# that a request pending with a killed replica is reclaimed by the other one before the gateway's
# deadline (both outcomes, reclaim and 504, then occur); SHUTDOWN_GRACE_MS=5000 (suite.sh's).
set -euo pipefail

ADI_ME=faults
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ADI_REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=../../scripts/lib.sh
. "$ADI_REPO/scripts/lib.sh"

[[ $# -ge 2 ]] || {
    echo "usage: run.sh short|long <dir> <binary...>" >&2
    exit 2
}
mode="$1"
dir="$2"
shift 2
[[ $mode == short || $mode == long ]] || adi_die "mode must be short or long"
mkdir -p "$(dirname "$dir")"
dir="$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")"
H="$ADI_REPO/tests/harness"

# Stops the replicas faults.py started (pid files <binary>@<n>.pid), then the suite and the stack.
cleanup() {
    local rc=$? f s=0
    trap - EXIT
    for f in "$dir"/faults-pids/*.pid; do
        [[ -f "$f" ]] || continue
        adi_stop_pid "$f" "$(basename "$f" .pid | cut -d@ -f1)" 30 >/dev/null || true
    done
    "$H/suite.sh" stop "$dir" || s=1
    "$H/stack.sh" stop "$dir" || s=1
    [[ $rc == 0 ]] || exit "$rc"
    exit $s
}
trap cleanup EXIT

"$H/stack.sh" start "$dir" "$@"
export RECLAIM_IDLE_MS=${RECLAIM_IDLE_MS:-2000} REQUEST_TIMEOUT_MS=${REQUEST_TIMEOUT_MS:-4000}
"$H/suite.sh" start "$dir"
args=(--mode "$mode" --out "$dir.json")
[[ -n "${FAULTS_ONLY:-}" ]] && args+=(--only "$FAULTS_ONLY")
PYTHONDONTWRITEBYTECODE=1 "$H/with-env.sh" "$dir" "$(adi_python)" "$HERE/faults.py" "${args[@]}"
