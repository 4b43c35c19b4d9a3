#!/usr/bin/env bash
# setuid_env.sh: a setuid-root program (PROG, linked with libmallard.a) run by user nobody must
# ignore MALLARD_OPTIONS, MALLARD_REPORT_DIR, MALLOC_*_ and GLIBC_TUNABLES: with report=text,
# report_fd=3, fd 3 open on a file only root may write and a report directory only root may write,
# both stay empty, the options are the defaults and no warning is printed. A control run of the same program, not setuid, shows the same environment
# does change it. Needs root and a filesystem without nosuid; exits 77 (ctest SKIP) otherwise.
# Usage: setuid_env.sh PROG FALLBACK_DIR   (FALLBACK_DIR: where to work if /tmp is nosuid)
set -u
if [ $# -lt 2 ]; then echo "usage: $0 PROG FALLBACK_DIR" >&2; exit 2; fi
prog=$1 fallback=$2
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "not running as root: cannot make a setuid-root program"
getent passwd nobody >/dev/null || skip "no user nobody"
nobody_gid=$(id -g nobody)
setpriv=$(command -v setpriv) || skip "setpriv (util-linux) not found"
as_nobody=("$setpriv" --reuid=nobody --regid="$nobody_gid" --clear-groups)

dir=""
for base in "${TMPDIR:-/tmp}" "$fallback"; do
  if findmnt -n -o OPTIONS -T "$base" | tr ',' '\n' | grep -qx nosuid; then
    echo "note: $base is on a nosuid filesystem"
    continue
  fi
  dir=$(mktemp -d "$base/mallard-setuid.XXXXXX") && break
done
[ -n "$dir" ] || skip "no filesystem without nosuid to place a setuid program on"
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"  # nobody may enter and execute, not write
cp "$prog" "$dir/prog" && chown root:root "$dir/prog" && chmod 4755 "$dir/prog" ||
  fail "cannot install the setuid program in $dir"
"${as_nobody[@]}" test -x "$dir/prog" || skip "user nobody cannot reach $dir"

mkdir "$dir/reports" && chmod 700 "$dir/reports" || fail "cannot make $dir/reports"
vars=(
  "MALLARD_OPTIONS=report=text,report_fd=3,decay_ms=7,verbose=1,check=3,bogus=1"
  "MALLARD_REPORT_DIR=$dir/reports"
  "MALLOC_ARENA_MAX=1" "MALLOC_MMAP_THRESHOLD_=4096" "MALLOC_TOP_PAD_=bad"
  "GLIBC_TUNABLES=glibc.malloc.trim_threshold=1:glibc.malloc.mmap_max=7"
)

defaults=$(env -i "$dir/prog" 2>&1 | grep '^options:')
[ -n "$defaults" ] || fail "the program printed no options"
echo "defaults: $defaults"

# Control: the same environment, no setuid (root runs it): honoured, report written.
: >"$dir/control_report"
control=$(env -i "${vars[@]}" "$dir/prog" 2>&1 3>>"$dir/control_report")
echo "--- control run (not setuid):"; echo "$control"
grep -q '^mallard_is_malloc=1$' <<<"$control" || fail "malloc is not Mallard's in the program"
[ "$(grep '^options:' <<<"$control")" != "$defaults" ] ||
  fail "control: the environment did not change the options (the test would prove nothing)"
[ -n "$(ls -A "$dir/reports")" ] || fail "control: no report written in MALLARD_REPORT_DIR"
rm -f "$dir/reports"/*
# And without the directory, to fd 3.
control=$(env -i "${vars[@]}" MALLARD_REPORT_DIR= "$dir/prog" 2>&1 3>>"$dir/control_report")
[ -s "$dir/control_report" ] || fail "control: no report written to fd 3"

# The case: setuid root, run by nobody, fd 3 open on a file only root may write.
: >"$dir/report"
chmod 600 "$dir/report"
out=$(env -i "${vars[@]}" "${as_nobody[@]}" "$dir/prog" 2>&1 3>>"$dir/report")
status=$?
echo "--- setuid run as nobody (status $status):"; echo "$out"
grep -q '^secure=1 ' <<<"$out" ||
  skip "the setuid bit had no effect (no AT_SECURE: no_new_privs or a restricted container?)"
[ "$status" -eq 0 ] || fail "exit status $status"
grep -q '^mallard_is_malloc=1$' <<<"$out" || fail "malloc is not Mallard's in the program"
[ "$(grep '^options:' <<<"$out")" = "$defaults" ] || fail "options differ from the defaults"
extra=$(grep -v -e '^secure=' -e '^mallard_is_malloc=' -e '^options:' <<<"$out")
[ -z "$extra" ] || fail "Mallard printed something (a warning or a report) in secure mode: $extra"
if [ -s "$dir/report" ]; then
  echo "--- written to the root-only file:"; head -5 "$dir/report"
  fail "Mallard wrote into the file on fd 3"
fi
[ -z "$(ls -A "$dir/reports")" ] || fail "Mallard wrote into MALLARD_REPORT_DIR: $(ls -A "$dir/reports")"
echo "OK"
