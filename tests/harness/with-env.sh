#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# with-env.sh <dir> <cmd...>: exports the variables the test fixtures wrote to <dir>/env (the stack:
# REDIS_URL, DATABASE_URL, ADI_*; the suite: GATEWAY_URL, ADI_PIDS_DIR, ...) and runs the command
# in their place. Every integration and e2e test is started through it.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: with-env.sh <dir> <cmd...>" >&2
    exit 2
fi
if [[ ! -f "$1/env" ]]; then
    echo "with-env.sh: $1/env not found: the test stack is not running (run the test through ctest," \
        "which starts the fixture, or tests/harness/stack.sh start $1)" >&2
    exit 1
fi
set -a
# shellcheck source=/dev/null
. "$1/env"
set +a
shift
exec "$@"
