#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# format-check.sh <repo>: checks every C source and header under libs/, services/ and tests/
# against the repository's .clang-format with `clang-format --dry-run -Werror` (clang-format 14,
# Debian 12). In a git checkout the files are those git knows or would add (tracked plus untracked,
# not ignored); elsewhere every *.c and *.h found. Registered with ctest as format.clang_format.
set -euo pipefail

repo="${1:?usage: format-check.sh <repo>}"
cd "$repo"
cf="${ADI_CLANG_FORMAT:-clang-format}"
command -v "$cf" >/dev/null || {
    echo "format-check.sh: $cf not found (apt-get install clang-format)" >&2
    exit 1
}

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    while IFS= read -r f; do
        [[ -f "$f" ]] && files+=("$f")
    done < <(git ls-files --cached --others --exclude-standard -- \
        'libs/*.c' 'libs/*.h' 'services/*.c' 'services/*.h' 'tests/*.c' 'tests/*.h' | sort -u)
else
    while IFS= read -r f; do
        files+=("$f")
    done < <(find libs services tests -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)
fi

if [[ ${#files[@]} -eq 0 ]]; then
    echo "format-check.sh: no C files to check"
    exit 0
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if "$cf" --dry-run -Werror "${files[@]}" >"$out" 2>&1; then
    echo "format-check.sh: ${#files[@]} files formatted as .clang-format says"
    exit 0
fi
# The first diagnostics, then every file that needs `clang-format -i`.
head -n 40 "$out" >&2
echo "..." >&2
echo "format-check.sh: not formatted (run clang-format -i on them):" >&2
grep -oE '^[^: ]+\.[ch]:[0-9]+:[0-9]+: (error|warning)' "$out" | cut -d: -f1 | sort -u | sed 's/^/  /' >&2
exit 1
