#!/usr/bin/env bash
# smoke.sh LIBPATH: build the workloads and run every case of cases.txt very briefly (tiny scale,
# 1 and 2 threads) with LIBPATH preloaded, checking that each exits 0 and prints its result line.
# Needs no network and no valgrind; prints "N passed, M failed" and exits non-zero on failure.
# A program that exits 77 (its tool, e.g. sqlite3, is not installed) is reported as skipped.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lib=${1:?usage: smoke.sh LIBPATH}
[ -f "$lib" ] || { echo "smoke: no such library: $lib" >&2; exit 2; }
lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")
scale=${SMOKE_SCALE:-0.01}
export BENCH_IDLE_S=0  # the memory cases do not idle here

"$here/build.sh" >/dev/null || { echo "smoke: build failed" >&2; exit 2; }

passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
check() { # check LABEL COMMAND...: run with the library preloaded; pass on exit 0 + result line
    local label=$1 rc
    shift
    if [ "$SECONDS" -ge 45 ]; then # keep the whole check under a minute even if runs hang
        failed=$((failed + 1))
        echo "FAIL $label (not run: 45 s budget used up)"
        return
    fi
    LD_PRELOAD="$lib" timeout 5 "$@" >"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 77 ]; then
        skipped=$((skipped + 1))
        echo "skip $label: $(tail -1 "$log")"
    elif [ "$rc" -eq 0 ] && grep -q '^result ' "$log" && ! grep -q 'cannot be preloaded' "$log"; then
        passed=$((passed + 1))
        echo "ok   $label: $(grep '^result ' "$log" | cut -c1-100)"
    else
        failed=$((failed + 1))
        case $rc in
        0) echo "FAIL $label (no result line):" ;;
        124) echo "FAIL $label (timeout after 5 s):" ;;
        *) echo "FAIL $label (exit $rc):" ;;
        esac
        tail -5 "$log" | sed 's/^/    /'
    fi
}

# The preload must take effect: malloc has to resolve to the library itself.
provider=$(LD_PRELOAD="$lib" "$here/out/which_malloc" 2>&1 | sed -n 's/^malloc=\([^ ]*\).*/\1/p')
if [ "$(readlink -f "$provider")" = "$(readlink -f "$lib")" ]; then
    passed=$((passed + 1))
    echo "ok   preload: malloc comes from $provider"
else
    failed=$((failed + 1))
    echo "FAIL preload: malloc comes from '${provider:-?}', not $lib"
fi

while read -r name prog _; do
    case "$name" in "" | \#*) continue ;; esac
    for t in 1 2; do
        check "$name t=$t" "$here/$prog" "$t" "$scale"
    done
done <"$here/cases.txt"
[ "$skipped" -eq 0 ] || echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
