#!/usr/bin/env bash
# expect_output.sh: runs PROG ARGS... with LIB preloaded (and a timeout) and requires exit status 0
# and, for each PATTERN, a line of its output (stdout and stderr) matching it (grep -E).
# Usage: expect_output.sh LIB TIMEOUT_S PROG [ARG...] -- PATTERN...
set -u
if [ $# -lt 4 ]; then echo "usage: $0 LIB TIMEOUT_S PROG [ARG...] -- PATTERN..." >&2; exit 2; fi
lib=$1 limit=$2
shift 2
cmd=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmd+=("$1"); shift; done
[ $# -gt 0 ] && shift
out=$(LD_PRELOAD=$lib timeout -k 2 "$limit" "${cmd[@]}" 2>&1 </dev/null)
status=$?
echo "--- output:"; echo "$out"; echo "--- exit status: $status"
[ "$status" -eq 0 ] || { echo "FAIL: exit status $status (124: timed out; >128: signal)"; exit 1; }
for pattern in "$@"; do
  grep -Eq -- "$pattern" <<<"$out" || { echo "FAIL: no line matches /$pattern/"; exit 1; }
done
echo "OK"
