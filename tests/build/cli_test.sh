#!/bin/sh
# cli_test.sh: the `mallard` command line (tools/mallard.cpp, `mallard help`).
#   cli_test.sh MODE TOOL [STATIC_PROGRAM]
#   help     --help, help COMMAND, COMMAND --help, --version
#   usage    unknown flags, commands and bad values: exit 2, naming the flag and what was expected;
#            --report-fd does not take "--" as its number
#   library  found next to the tool or by MALLARD_LIB; a copy of the tool elsewhere, or a
#            MALLARD_LIB that is not there, refuses to run the program (exit 125, one message)
#   warn     one warning line for a static program and a setuid/setgid program of another user
#   status   exit status and signals of the program are the tool's, also with --report
#   transport the report always arrives (issue 13): programs that close or redirect stderr (ls,
#            sort --parallel, xz -T2, close_range), one that made no allocation (true), through
#            --report-fd and --report-dir; one that ends without a report (_exit, a signal, a
#            static binary) is named with how it ended; signals sent to the tool reach the program;
#            no temporary directory is left behind
#   children --children: every process of the tree is listed (exec, fork, _exit, orphans the tool
#            waits for), gcc's cc1 with its figures and its full report
# shellcheck disable=SC2015  # "A && B || fail": fail when either fails
set -eu
mode=$1 tool=$2 static=${3:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mallard-cli-$mode.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# The true program (in sh, `command -v true` names the builtin).
truebin=/bin/true
[ -x "$truebin" ] || truebin=/usr/bin/true
# expect STATUS STDERR_PATTERN COMMAND...: exits STATUS, stderr matches the grep pattern (if any).
expect() {
  want=$1 pattern=$2
  shift 2
  status=0
  "$@" >"$tmp/out" 2>"$tmp/err" || status=$?
  [ "$status" = "$want" ] || fail "$* exited $status, expected $want; stderr: $(cat "$tmp/err")"
  [ -z "$pattern" ] || grep -q -- "$pattern" "$tmp/err" || fail "$*: stderr lacks '$pattern': $(cat "$tmp/err")"
  echo "ok: $*"
}

case $mode in
help)
  "$tool" --help >"$tmp/out" || fail "--help exited $?"
  for c in run options lib help --version; do grep -q -- "$c" "$tmp/out" || fail "--help lacks $c"; done
  "$tool" help >"$tmp/out2" && cmp -s "$tmp/out" "$tmp/out2" || fail "help differs from --help"
  for c in run options lib; do
    "$tool" help $c >"$tmp/help" || fail "help $c exited $?"
    grep -q "^usage: mallard $c" "$tmp/help" || fail "help $c: $(cat "$tmp/help")"
    "$tool" $c --help >"$tmp/help2" || fail "$c --help exited $?"
    cmp -s "$tmp/help" "$tmp/help2" || fail "$c --help differs from help $c"
  done
  "$tool" help run | grep -q -- '--report-fd N' || fail "help run lacks --report-fd"
  "$tool" run -h | grep -q '^usage: mallard run' || fail "run -h"
  "$tool" --version | grep -q '^mallard [0-9][0-9.]*$' || fail "--version: $("$tool" --version)"
  echo "ok: help"
  ;;
usage)
  expect 2 "expected a command" "$tool"
  expect 2 "unknown option '--frob' (expected --help or --version)" "$tool" --frob
  expect 2 "unknown command 'frob'" "$tool" frob
  expect 2 "help: unknown command 'frob'" "$tool" help frob
  expect 2 "run: unknown option '--frob' (expected --report" "$tool" run --frob -- true
  expect 2 "run: --report: expected text or json, got 'xml'" "$tool" run --report=xml -- true
  expect 2 "run: --report-fd: expected a file descriptor number, got nothing" \
    "$tool" run --report-fd -- true
  expect 2 "run: --report-fd: expected a file descriptor number, got 'x'" \
    "$tool" run --report-fd x -- true
  expect 2 "run: --report-fd: expected a file descriptor number, got nothing" "$tool" run --report-fd
  expect 2 "run: --options: expected KEY=VALUE" "$tool" run --options -- true
  expect 2 "run: expected a PROGRAM" "$tool" run --report --
  expect 2 "options: unknown option '--frob' (expected --markdown or --man)" "$tool" options --frob
  expect 2 "lib: unexpected argument 'x'" "$tool" lib x
  expect 127 "cannot run no-such-program-xyz" "$tool" run -- no-such-program-xyz
  # The value forms still work.
  "$tool" run --report-fd=3 --report=json -- true 3>"$tmp/report" || fail "--report-fd=3"
  grep -q '"version"' "$tmp/report" || fail "--report-fd=3: no report"
  "$tool" run --report-fd 3 --report -- true 3>"$tmp/report" || fail "--report-fd 3"
  grep -q 'mallard report' "$tmp/report" || fail "--report-fd 3: no report"
  ;;
library)
  lib=$("$tool" lib) || fail "mallard lib exited $?"
  [ -r "$lib" ] && case $lib in /*) ;; *) false ;; esac || fail "mallard lib: '$lib'"
  mkdir "$tmp/bin"
  cp "$tool" "$tmp/bin/mallard"
  expect 125 "cannot find libmallard.so.*set MALLARD_LIB" "$tmp/bin/mallard" run -- true
  grep -q "not running true without Mallard" "$tmp/err" || fail "no 'not running' line"
  expect 125 "cannot find libmallard.so" "$tmp/bin/mallard" lib
  expect 125 "MALLARD_LIB=$tmp/none: No such file" env MALLARD_LIB="$tmp/none" "$tool" run -- true
  # MALLARD_LIB, even relative, is preloaded by its absolute path.
  (cd "$(dirname "$lib")" && MALLARD_LIB=./$(basename "$lib") "$tmp/bin/mallard" lib) \
    >"$tmp/out" || fail "MALLARD_LIB relative"
  [ "$(cat "$tmp/out")" = "$lib" ] || fail "MALLARD_LIB relative gave $(cat "$tmp/out")"
  # Not a library: refused, not handed to the loader (which would skip it and run without Mallard).
  expect 125 "MALLARD_LIB=/etc/passwd: Exec format error" env MALLARD_LIB=/etc/passwd "$tool" run -- true
  expect 125 "MALLARD_LIB=$tmp: Is a directory" env MALLARD_LIB="$tmp" "$tool" run -- true
  # A link keeps its name (libmallard.so.0 stays the versioned link, not the file it points to).
  mkdir "$tmp/links" && ln -s "$lib" "$tmp/links/libmallard.so.0"
  [ "$(MALLARD_LIB=$tmp/links/libmallard.so.0 "$tool" lib)" = "$tmp/links/libmallard.so.0" ] ||
    fail "a link was not kept as named"
  # LD_PRELOAD splits at spaces and colons: such a path is refused, not half-preloaded.
  mkdir "$tmp/with space" && ln -s "$lib" "$tmp/with space/libmallard.so"
  expect 125 "splits paths at spaces and colons" env MALLARD_LIB="$tmp/with space/libmallard.so" \
    "$tool" run -- true
  # (ls closes stderr before it exits: the report goes to fd 3.)
  MALLARD_LIB=$lib "$tmp/bin/mallard" run --report=json --report-fd 3 -- ls / 3>"$tmp/report" \
    >"$tmp/out" || fail "MALLARD_LIB run"
  grep -q '"version"' "$tmp/report" || fail "MALLARD_LIB run: no report: $(cat "$tmp/report")"
  echo "ok: library"
  ;;
warn)
  [ -n "$static" ] || fail "no static program given"
  expect 0 "warning: .*static_program will run without Mallard: it is statically linked" \
    "$tool" run -- "$static"
  [ "$(wc -l <"$tmp/err")" = 1 ] || fail "static: more than one line: $(cat "$tmp/err")"
  # A dynamic program and a script (judged by its dynamic interpreter): no warning.
  expect 0 "" "$tool" run -- true
  [ ! -s "$tmp/err" ] || fail "true warned: $(cat "$tmp/err")"
  printf '#!/bin/sh\nexit 0\n' >"$tmp/script" && chmod +x "$tmp/script"
  "$tool" run -- "$tmp/script" 2>"$tmp/err" && [ ! -s "$tmp/err" ] || fail "script: $(cat "$tmp/err")"
  printf '#!%s\n' "$static" >"$tmp/static_script" && chmod +x "$tmp/static_script"
  "$tool" run -- "$tmp/static_script" 2>"$tmp/err" || true
  grep -q "its interpreter $static: it is statically linked" "$tmp/err" ||
    fail "static interpreter: $(cat "$tmp/err")"
  # PATH lookup: the program is found as execvp finds it.
  mkdir "$tmp/path" && cp "$static" "$tmp/path/static_prog"
  PATH=$tmp/path:$PATH "$tool" run -- static_prog 2>"$tmp/err" >/dev/null || fail "static_prog"
  grep -q "$tmp/path/static_prog will run without Mallard" "$tmp/err" || fail "PATH: $(cat "$tmp/err")"
  echo "ok: static"
  if [ "$(id -u)" = 0 ]; then
    # root runs a program setuid to nobody: secure-execution mode.
    cp "$truebin" "$tmp/suid_true" && chmod 755 "$tmp" "$tmp/suid_true"
    if chown nobody "$tmp/suid_true" 2>/dev/null && chmod 4755 "$tmp/suid_true"; then
      expect 0 "warning: .*suid_true will run without Mallard: it is setuid and you are not its owner" \
        "$tool" run -- "$tmp/suid_true"
      chown root "$tmp/suid_true" && chmod 4755 "$tmp/suid_true"
      "$tool" run -- "$tmp/suid_true" 2>"$tmp/err" && [ ! -s "$tmp/err" ] ||
        fail "own setuid program warned: $(cat "$tmp/err")"
    fi
    group=$(getent group nogroup >/dev/null && echo nogroup || echo nobody)
    if chown root:"$group" "$tmp/suid_true" 2>/dev/null && chmod 2755 "$tmp/suid_true"; then
      expect 0 "warning: .*suid_true will run without Mallard: it is setgid" \
        "$tool" run -- "$tmp/suid_true"
    fi
  else
    for p in /usr/bin/mount /bin/mount; do
      if [ -u "$p" ] && [ "$(stat -c %u "$p")" != "$(id -u)" ]; then
        expect 0 "warning: $p will run without Mallard: it is setuid" "$tool" run -- "$p" --version
        break
      fi
    done
  fi
  ;;
status)
  expect 7 "" "$tool" run -- sh -c 'exit 7'
  expect 7 "" "$tool" run --report -- sh -c 'exit 7'
  status=0
  "$tool" run -- sh -c 'kill -TERM $$' || status=$?
  [ "$status" = 143 ] || fail "SIGTERM: exit $status, expected 143"
  status=0
  "$tool" run --report -- sh -c 'kill -TERM $$' 2>/dev/null || status=$?
  [ "$status" = 143 ] || fail "SIGTERM with --report: exit $status, expected 143"
  echo "ok: signals"
  # The program's stdout (and, with 2>&1, the report) into a pipe whose reader has gone: the
  # report does not turn a clean exit into SIGPIPE (141).
  command -v perl >/dev/null 2>&1 || {
    echo "skipped: no perl"
    exit 77
  }
  for redirect in none stderr; do
    cat >"$tmp/pipe.sh" <<EOS
if [ $redirect = stderr ]; then exec 2>&1; fi
"$tool" run --report -- perl -e '\$|=1; print "x\\n"; sleep 1; print STDERR ""'
echo \$? >"$tmp/status"
EOS
    out=$(sh "$tmp/pipe.sh" 2>/dev/null | head -1)
    [ "$out" = x ] || fail "pipe ($redirect): printed '$out'"
    [ "$(cat "$tmp/status")" = 0 ] || fail "pipe ($redirect): mallard exited $(cat "$tmp/status")"
  done
  if command -v bash >/dev/null 2>&1; then
    # shellcheck disable=SC2016
    r=$(bash -c '"$1" run --report -- perl -e '\''print "x\n"; sleep 1'\'' | head -1 >/dev/null
      echo "${PIPESTATUS[*]}"' bash "$tool" 2>/dev/null)
    [ "$r" = "0 0" ] || fail "PIPESTATUS $r"
    r=$(bash -c '"$1" run --report -- perl -e '\''$|=1; print "x\n"; sleep 1'\'' 2>&1 |
      head -1 >/dev/null; echo "${PIPESTATUS[*]}"' bash "$tool")
    [ "$r" = "0 0" ] || fail "PIPESTATUS with 2>&1: $r"
  fi
  echo "ok: pipe"
  ;;
transport)
  export TMPDIR="$tmp/t"
  mkdir "$TMPDIR"
  printf 'b\na\nc\n' >"$tmp/lines"
  expect 0 "== mallard report: true (pid " "$tool" run --report -- true
  grep -q "^no allocation: the program made no allocator call" "$tmp/err" ||
    fail "true: no 'no allocation' line: $(cat "$tmp/err")"
  expect 0 "== mallard report: ls (pid " "$tool" run --report -- ls /
  expect 0 "== mallard report: sort (pid " "$tool" run --report -- sort --parallel=2 "$tmp/lines"
  [ "$(cat "$tmp/out")" = "$(printf 'a\nb\nc')" ] || fail "sort printed $(cat "$tmp/out")"
  if command -v xz >/dev/null 2>&1; then
    expect 0 "== mallard report: xz (pid " "$tool" run --report -- xz -T2 -k -f "$tmp/lines"
  fi
  if command -v python3 >/dev/null 2>&1; then
    expect 0 "== mallard report: python3 (pid " "$tool" run --report -- python3 -c \
      'import os; x = [bytes(100) for i in range(1000)]; os.closerange(0, 4096)'
  fi
  # python3: its pymalloc arenas are RSS outside Mallard, named at the peak with a hint.
  if command -v python3 >/dev/null 2>&1; then
    expect 0 "^at the peak: RSS " "$tool" run --report -- python3 -c \
      'x = [str(i) for i in range(1000000)]; y = [bytes(300) for i in range(20000)]; del x, y'
    grep -Eq "^  other anonymous +[0-9.]+ MiB +[0-9]+ mappings Mallard does not own" "$tmp/err" ||
      fail "python3: no RSS outside Mallard: $(cat "$tmp/err")"
    grep -q "^  hint: Python keeps its small objects in arenas it maps itself" "$tmp/err" ||
      fail "python3: no pymalloc hint: $(cat "$tmp/err")"
  fi
  # JSON on the tool's descriptor 3, with the schema's header.
  "$tool" run --report=json --report-fd 3 -- true 3>"$tmp/true.json" 2>"$tmp/err" ||
    fail "--report-fd 3: exit $?"
  for field in '"schema_version":1' '"program":"true"' '"cmdline":"true"' '"made_allocations":false' \
    '"options":{'; do
    grep -q "$field" "$tmp/true.json" || fail "true's JSON lacks $field: $(cat "$tmp/true.json")"
  done
  # Kept in a directory: one file per process, complete JSON, and where it is said.
  expect 0 "mallard: report of ls (pid [0-9]*) kept in $tmp/kept/ls\.[0-9]*\.json" \
    "$tool" run --report-dir "$tmp/kept" -- ls /
  set -- "$tmp"/kept/ls.*.json
  [ "$#" = 1 ] && [ -f "$1" ] || fail "--report-dir: files: $(ls -a "$tmp/kept")"
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["program"] == "ls"' \
      "$1" || fail "--report-dir: not a JSON report: $(cat "$1")"
  fi
  [ -z "$(ls -A "$tmp/kept" | grep -v '^ls\.')" ] || fail "--report-dir: left $(ls -a "$tmp/kept")"
  # Ended without a report: how, and why where known.
  if command -v perl >/dev/null 2>&1; then
    expect 3 "mallard: perl (pid [0-9]*) ended without a report: it exited with status 3 (through _exit" \
      "$tool" run --report -- perl -e 'use POSIX; POSIX::_exit(3)'
  fi
  expect 139 "ended without a report: it was killed by signal 11 (SIGSEGV)" \
    "$tool" run --report -- sh -c 'kill -SEGV $$'
  if [ -n "$static" ]; then
    expect 0 "ended without a report: it exited with status 0 (it ran without Mallard: it is statically linked" \
      "$tool" run --report -- "$static"
  fi
  # A signal sent to the tool reaches the program; the tool then ends by it.
  "$tool" run --report -- sleep 30 2>"$tmp/err" &
  pid=$!
  sleep 0.5
  kill -TERM "$pid"
  status=0
  wait "$pid" || status=$?
  [ "$status" = 143 ] || fail "SIGTERM to the tool: exit $status, expected 143: $(cat "$tmp/err")"
  grep -q "sleep (pid [0-9]*) ended without a report: it was killed by signal 15" "$tmp/err" ||
    fail "SIGTERM to the tool: $(cat "$tmp/err")"
  # Signals mallard was started with ignored stay ignored in the program (nohup, background jobs).
  out=$(sh -c "trap '' HUP INT; exec \"$tool\" run --report -- grep SigIgn /proc/self/status" 2>/dev/null)
  mask=$(printf '%s' "$out" | awk '/^SigIgn/ {print $2}')
  [ $((0x${mask:-0} & 3)) = 3 ] || fail "ignored signals: the program's SigIgn is '$out'"
  # A program that stops itself: outside a terminal's foreground (here) mallard goes on waiting,
  # not stopped (nobody would continue it); continued, the program ends and mallard reports.
  "$tool" run --report -- sh -c "echo \$\$ >'$tmp/stop.pid'; kill -STOP \$\$; echo resumed" \
    >"$tmp/stop.out" 2>"$tmp/stop.err" &
  pid=$!
  state=""
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    sleep 0.2
    [ -s "$tmp/stop.pid" ] || continue
    state=$(awk '/^State:/ {print $2}' "/proc/$(cat "$tmp/stop.pid")/status" 2>/dev/null)
    [ "$state" = T ] && break
  done
  [ "$state" = T ] || fail "a program that stops itself: its state is '$state'"
  mine=$(awk '/^State:/ {print $2}' "/proc/$pid/status")
  [ "$mine" != T ] || fail "a program that stops itself: mallard stopped outside a terminal"
  kill -CONT "$(cat "$tmp/stop.pid")"
  wait "$pid" || fail "a stopped program, continued: exit $?"
  grep -q resumed "$tmp/stop.out" || fail "a stopped program was not continued"
  grep -q "^mallard: sh (pid [0-9]*) ended without a report: it exited with status 0" "$tmp/stop.err" ||
    fail "a stopped program: $(cat "$tmp/stop.err")"
  # Programs whose names start with a dot, or are too long for a file name (NAME_MAX).
  cp "$truebin" "$tmp/.hidden"
  expect 0 "== mallard report: .hidden (pid " "$tool" run --report -- "$tmp/.hidden"
  long=$(printf 'x%.0s' $(seq 250))
  cp "$truebin" "$tmp/$long"
  expect 0 "== mallard report: $long (pid " "$tool" run --report -- "$tmp/$long"
  [ -z "$(ls -A "$TMPDIR")" ] || fail "left in TMPDIR: $(ls -A "$TMPDIR")"
  echo "ok: transport"
  ;;
children)
  export TMPDIR="$tmp/t"
  mkdir "$TMPDIR"
  command -v perl >/dev/null 2>&1 || {
    echo "skipped: no perl"
    exit 77
  }
  # ls reports; perl ends with _exit; sh replaces itself by true; an orphan (sleep, then ls)
  # still running when sh ends is waited for: 7 programs (the subshell and sleep too).
  expect 0 "" "$tool" run --children -- sh -c \
    'ls / >/dev/null; perl -e "use POSIX; POSIX::_exit(0)"; (sleep 0.3; ls / >/dev/null) & exec true'
  cat "$tmp/err"
  grep -q "^mallard: 7 programs ran under Mallard (sh, pid [0-9]*, exited with status 0):" \
    "$tmp/err" || fail "children: no summary line"
  [ "$(grep -c '^ *[0-9]* *[0-9]*  ls  .*iB .*iB  ls /' "$tmp/err")" = 2 ] ||
    fail "children: not two ls lines with figures"
  grep -q '^ *[0-9]* *[0-9]*  perl  .*ended without a report (_exit' "$tmp/err" ||
    fail "children: perl's _exit not listed"
  grep -q '^ *[0-9]* *[0-9]*  sh  .*replaced itself by true (exec)' "$tmp/err" ||
    fail "children: sh's exec not listed"
  grep -q '^ *[0-9]* *[0-9]*  true  .*  true$' "$tmp/err" || fail "children: true not listed"
  grep -q "^mallard: the report of .* (pid [0-9]*), the largest peak RSS:" "$tmp/err" ||
    fail "children: no full report"
  if command -v gcc >/dev/null 2>&1; then
    printf 'int twice(int x) { return 2 * x; }\n' >"$tmp/x.c"
    expect 0 "" "$tool" run --children -- gcc -O2 -c "$tmp/x.c" -o "$tmp/x.o"
    grep -q '^ *[0-9]* *[0-9]*  cc1  .*MiB .*iB  .*/cc1 ' "$tmp/err" ||
      fail "children: cc1 not listed with its figures: $(cat "$tmp/err")"
    grep -q "^== mallard report: cc1 (pid " "$tmp/err" ||
      fail "children: cc1's report not shown: $(cat "$tmp/err")"
    # Kept: one report and one record per process.
    expect 0 "^mallard: reports kept in $tmp/kept" \
      "$tool" run --children --report-dir "$tmp/kept" -- gcc -O2 -c "$tmp/x.c" -o "$tmp/x.o"
    ls "$tmp"/kept/cc1.*.json >/dev/null 2>&1 || fail "children: no cc1 report in $tmp/kept"
  fi
  # One pid through three programs, two of them of the same name: a record each.
  expect 0 "" "$tool" run --children -- sh -c 'exec sh -c "exec true"'
  grep -q "^mallard: 3 programs ran under Mallard" "$tmp/err" || fail "exec chain: $(cat "$tmp/err")"
  [ "$(grep -c 'replaced itself by' "$tmp/err")" = 2 ] || fail "exec chain: $(cat "$tmp/err")"
  # A process that forked names its own parent, not itself.
  expect 0 "" "$tool" run --children -- perl -e 'if (fork() == 0) { exit 0 } wait; exit 0'
  [ "$(grep -c '^ *[0-9]* *[0-9]*  perl ' "$tmp/err")" = 2 ] || fail "perl's fork: $(cat "$tmp/err")"
  awk '/ PPID  PROGRAM / {t = 1; next} /^mallard:/ {t = 0} t && $1 == $2 {bad = 1} END {exit bad}' \
    "$tmp/err" ||
    fail "a record names its own pid as its parent: $(cat "$tmp/err")"
  # Two runs sharing a kept directory at the same time: each lists its own programs.
  "$tool" run --children --report-dir "$tmp/shared" -- sleep 1 >/dev/null 2>"$tmp/shared.err" &
  pid=$!
  sleep 0.3
  expect 0 "^mallard: 1 program ran under Mallard (ls," "$tool" run --children --report-dir "$tmp/shared" -- ls /
  wait "$pid" || fail "the first run sharing a directory: exit $?"
  grep -q "^mallard: 1 program ran under Mallard (sleep," "$tmp/shared.err" ||
    fail "two runs sharing a directory: $(cat "$tmp/shared.err")"
  # A kept directory used again: only this run's programs.
  "$tool" run --children --report-dir "$tmp/again" -- ls / >/dev/null 2>&1 || fail "--report-dir run 1"
  expect 0 "^mallard: 1 program ran under Mallard (ls," "$tool" run --children --report-dir "$tmp/again" -- ls /
  # A name with a newline is one line in the table.
  ln -s "$truebin" "$tmp/new
line"
  expect 0 "" "$tool" run --children -- "$tmp/new
line"
  grep -q '^ *[0-9]* *[0-9]*  new_line ' "$tmp/err" || fail "newline name: $(cat "$tmp/err")"
  # A descendant that outlives the program (a daemon) keeps mallard waiting until a signal ends
  # the wait: then what arrived is printed.
  "$tool" run --children -- sh -c "sleep 30 & echo \$! >'$tmp/daemon.pid'" >/dev/null \
    2>"$tmp/daemon.err" &
  pid=$!
  sleep 1
  kill -TERM "$pid"
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.3
  done
  ! kill -0 "$pid" 2>/dev/null || fail "a daemon descendant: mallard still waits after SIGTERM"
  wait "$pid" || true
  grep -q "^mallard: stopped waiting for the descendants still running" "$tmp/daemon.err" ||
    fail "a daemon descendant: $(cat "$tmp/daemon.err")"
  kill "$(cat "$tmp/daemon.pid")" 2>/dev/null || true
  [ -z "$(ls -A "$TMPDIR")" ] || fail "left in TMPDIR: $(ls -A "$TMPDIR")"
  echo "ok: children"
  ;;
*) fail "unknown mode $mode" ;;
esac
