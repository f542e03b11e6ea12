#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Regenerates (or, with --check, verifies) the configuration section of README.md from the
# services' own settings tables (`<binary> --config-table`), so the README cannot drift from the
# code.  Usage: scripts/config-table.sh <dir with the binaries' build tree> [--check]
set -euo pipefail
build=${1:?usage: config-table.sh <build dir> [--check]}
mode=${2:-write}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readme=$root/README.md

gen() {
    local bin
    for bin in gateway auth tenant vault task-runner admin; do
        local exe
        exe=$(find "$build/services/$bin" -maxdepth 1 -name "adi-$bin" -type f | head -n 1)
        [ -n "$exe" ] || { echo "config-table: adi-$bin not built in $build" >&2; exit 1; }
        printf '\n#### `adi-%s`\n\n' "$bin"
        # The admin CLI's MIGRATIONS_DIR default is the build machine's checkout: show it neutrally.
        "$exe" --config-table | sed -E 's#`/[^`]*/services`#`<checkout>/services`#'
    done
    printf '\n'
}

begin='<!-- BEGIN config-table: generated from `<binary> --config-table`; do not edit by hand -->'
end='<!-- END config-table -->'
table=$(gen)
new=$(awk -v b="$begin" -v e="$end" -v t="$table" '
    $0 == b { print; print t; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$readme")

if [ "$mode" = --check ]; then
    if [ "$new" != "$(cat "$readme")" ]; then
        echo "README.md configuration table is stale: run scripts/config-table.sh <build dir>" >&2
        diff <(printf '%s\n' "$new") "$readme" >&2 || true
        exit 1
    fi
    echo "README.md configuration table is current"
else
    printf '%s\n' "$new" > "$readme"
fi
