#!/usr/bin/env bash
# report_robustness.sh TOOL LIB PROG: report_robustness.c's modes, each with a time limit:
#   sandbox     with LIB preloaded and no report, and as the child of a reporting shell: exit 0
#               (no openat killed it)
#   tworeports  with LIB preloaded: both concurrent reports complete
#   sigexit     under `TOOL run --report`: ends (exit 0) within 60 s
#   smallstack  under `TOOL run --report` and with LD_PRELOAD + report=text: exit 0
set -u
tool=$1 lib=$2 prog=$3
fail() { echo "FAIL: $*"; exit 1; }
out=$(LD_PRELOAD=$lib timeout 60 "$prog" sandbox 2>&1) || fail "sandbox: exit $?: $out"
echo "$out"
# A sandboxed program started by the one that reports (report_pid excludes it): no peak watch.
out=$(timeout 60 "$tool" run --report -- sh -c "'$prog' sandbox" 2>&1) ||
  fail "sandbox under a reporting parent: exit $?: $out"
grep -q "sandbox ok" <<<"$out" || fail "sandbox under a reporting parent: $out"
echo "ok: sandbox"
out=$(LD_PRELOAD=$lib timeout 60 "$prog" tworeports 2>&1) || fail "tworeports: exit $?: $out"
echo "ok: tworeports"
out=$(timeout 60 "$tool" run --report -- "$prog" sigexit 2>&1) || fail "sigexit: exit $?: $(tail -3 <<<"$out")"
grep -q "sigexit ok" <<<"$out" || fail "sigexit: $out"
grep -q "^== mallard report: report_robustness" <<<"$out" || fail "sigexit: no report"
echo "ok: sigexit"
out=$(timeout 60 "$tool" run --report -- "$prog" smallstack 2>&1) || fail "smallstack under the tool: exit $?: $(tail -3 <<<"$out")"
grep -q "^== mallard report: report_robustness" <<<"$out" || fail "smallstack: no report: $out"
out=$(LD_PRELOAD=$lib MALLARD_OPTIONS=report=text timeout 60 "$prog" smallstack 2>&1) ||
  fail "smallstack with report_fd: exit $?: $(tail -3 <<<"$out")"
echo "ok: smallstack"
echo "OK"
