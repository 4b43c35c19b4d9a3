#!/usr/bin/env bash
# expect_abort.sh: death test for bad_pointer. Runs `BAD_POINTER LIB MODE` (LIB preloaded) and
# requires that (1) it is killed by SIGABRT, and (2) its stderr has exactly one line starting with
# "mallard: " that names the call (free or realloc, as bad_pointer announced) and the pointer in
# hex (0x..., compared numerically with the one bad_pointer printed).
# MALLARD_IT_ABORT_ONLY=1 skips (2), to try the abort part against other allocators.
# Usage: expect_abort.sh BAD_POINTER LIB MODE
set -u
if [ $# -ne 3 ]; then echo "usage: $0 BAD_POINTER LIB MODE" >&2; exit 2; fi
prog=$1 lib=$2 mode=$3
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
ulimit -c 0 2>/dev/null

"$prog" "$lib" "$mode" >"$tmp/out" 2>"$tmp/err" </dev/null
status=$?
echo "--- stdout:"; cat "$tmp/out"
echo "--- stderr:"; cat "$tmp/err"
echo "--- exit status: $status"

fail() { echo "FAIL: $mode: $*" >&2; exit 1; }

if [ "$status" -ne 134 ]; then
  if [ "$status" -gt 128 ]; then
    fail "killed by signal $((status - 128)), expected SIGABRT (6)"
  fi
  fail "exit status $status, expected to be killed by SIGABRT"
fi
if [ "${MALLARD_IT_ABORT_ONLY:-0}" = 1 ]; then
  echo "OK: $mode: aborted (message check skipped: MALLARD_IT_ABORT_ONLY=1)"
  exit 0
fi

announced=$(sed -n "s/^bad_pointer: $mode: calling \([a-z]*\)(\(0x[0-9a-fA-F]*\)).*/\1 \2/p" "$tmp/out")
[ -n "$announced" ] || fail "bad_pointer did not announce its call"
call=${announced%% *} ptr=${announced#* }

nlines=$(grep -c '^mallard: ' "$tmp/err")
[ "$nlines" -eq 1 ] || fail "expected exactly one stderr line starting with 'mallard: ', got $nlines"
line=$(grep '^mallard: ' "$tmp/err")
printf '%s\n' "$line" | grep -Eq "(^|[^A-Za-z_])$call([^A-Za-z_]|\$)" ||
  fail "the mallard: line does not name the call '$call'"
found=0
for hex in $(printf '%s\n' "$line" | grep -Eo '0[xX][0-9a-fA-F]+'); do
  if [ $((hex)) -eq $((ptr)) ]; then found=1; fi
done
[ "$found" = 1 ] || fail "the mallard: line does not name the pointer $ptr"
echo "OK: $mode: aborted with: $line"
