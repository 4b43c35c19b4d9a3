#!/usr/bin/env bash
# real_programs.sh: runs real programs with and without LIB preloaded and requires identical stdout
# and exit status (and exit status 0). First checks that LIB really gets preloaded and that malloc
# resolves into it. Workloads (all deterministic: fixed seeds, dates, TZ and locale):
#   python3  workload.py: dicts, lists, strings, JSON round trips, sorting, MiBs of objects, threads
#   gcc      gcc -O2 on a generated C file; compares objdump -d of the object and the program output
#   git      init, add, commit (fixed author/dates), branch, merge, log, gc, fsck in a temp repo
#   perl     workload.pl: hashes, regexes, sort, string building, pack
#   sqlite3  generated SQL: 20k inserts in a transaction, indexes, group-by, joins, windows, vacuum
# Usage: real_programs.sh LIB PROGRAM|all   (LIB defaults to $MALLARD_LIB). Exit 77 = skipped.
# shellcheck disable=SC2317  # the w_* workloads are called indirectly
set -u
here=$(cd "$(dirname "$0")" && pwd)
lib=${1:-${MALLARD_LIB:-}}
what=${2:-all}
if [ -z "$lib" ]; then echo "usage: $0 LIB python3|gcc|git|perl|sqlite3|all" >&2; exit 2; fi
[ -f "$lib" ] || { echo "FAIL: library $lib does not exist" >&2; exit 1; }
lib=$(realpath "$lib")

unset LD_PRELOAD
export TZ=UTC LC_ALL=C LANG=C PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 PERL_HASH_SEED=0 \
  PERL_PERTURB_KEYS=0 GIT_CONFIG_NOSYSTEM=1
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config
mkdir -p "$HOME" "$tmp/in"

fail() { echo "FAIL: $*" >&2; exit 1; }

# LIB must be mapped, and malloc must resolve into it (ld.so only warns when it cannot preload).
check_preload() {
  local maps where
  maps=$(LD_PRELOAD=$lib cat /proc/self/maps 2>&1)
  grep -qF " $lib" <<<"$maps" || fail "LD_PRELOAD=$lib: library not mapped: $(grep ld.so <<<"$maps")"
  if command -v python3 >/dev/null; then
    where=$(LD_PRELOAD=$lib python3 -c '
import ctypes
addr = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
for line in open("/proc/self/maps"):
    f = line.split()
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    if lo <= addr < hi:
        print(f[5] if len(f) > 5 else "anonymous")
') || fail "python3 with LD_PRELOAD=$lib failed"
    [ "$where" = "$lib" ] || fail "malloc resolves into '$where', not $lib"
    echo "preload check: $lib mapped; malloc resolves into it"
  else
    echo "preload check: $lib mapped (python3 missing: malloc resolution not checked)"
  fi
}

w_python3() { python3 "$here/workload.py"; }
w_perl() { perl "$here/workload.pl"; }

gen_c() { # ~300 functions with loops, switches and arrays, and a main printing a checksum
  awk 'BEGIN {
    n = 300; print "#include <stdio.h>\n#include <string.h>\n#include <stdint.h>"
    for (f = 0; f < n; f++) {
      printf "static uint32_t f%d(uint32_t x, const uint32_t *a) {\n", f
      printf "  uint32_t t[%d]; memset(t, 0, sizeof t);\n", 8 + f % 24
      printf "  for (int i = 0; i < %d; i++) {\n", 16 + f % 40
      printf "    switch ((x + i) %% %d) {\n", 3 + f % 7
      for (c = 0; c < 3 + f % 7; c++)
        printf "      case %d: x = x * %d + a[(i + %d) & 63] ^ (x >> %d); break;\n", c, 2 * c + 2 * f + 1, c, 1 + c % 13
      printf "      default: x ^= 0x%x;\n    }\n", f * 2654435761 % 4294967296
      printf "    t[i %% %d] += x;\n  }\n", 8 + f % 24
      printf "  for (int i = 0; i < %d; i++) x += t[i] * %d;\n", 8 + f % 24, f + 3
      if (f > 0) printf "  return x ^ f%d(x >> 3, a + 1);\n}\n", (f > 1 ? f - 1 - f % 2 : 0)
      else print "  return x;\n}"
    }
    print "int main(void) {\n  static uint32_t a[400];\n  for (int i = 0; i < 400; i++) a[i] = i * 40503u;"
    print "  uint32_t sum = 0;"
    for (f = 0; f < n; f += 7) printf "  sum = sum * 31 + f%d(%d, a);\n", f, f
    print "  printf(\"checksum %u\\n\", sum);\n  return 0;\n}"
  }'
}
w_gcc() {
  gcc -O2 -c "$tmp/in/gen.c" -o gen.o
  objdump -d gen.o
  gcc -O2 gen.o -o gen
  ./gen
}

w_git() {
  export GIT_AUTHOR_NAME="Mallard Test" GIT_AUTHOR_EMAIL=test@example.com
  export GIT_COMMITTER_NAME="Mallard Test" GIT_COMMITTER_EMAIL=test@example.com
  commit() {
    export GIT_AUTHOR_DATE="@$((1700000000 + $1 * 60)) +0000" GIT_COMMITTER_DATE="@$((1700000000 + $1 * 60)) +0000"
    git add -A
    git commit -q -m "commit $1: $2"
  }
  git init -q -b main repo
  cd repo
  for c in $(seq 1 25); do
    mkdir -p "dir$((c % 4))"
    seq "$c" $((c * 200)) | awk -v c="$c" '{ print "line " $1 * c " of commit " c }' >"dir$((c % 4))/file$c.txt"
    seq 1 $((c * 50)) >>common.txt
    commit "$c" "add file$c"
  done
  git checkout -q -b topic
  for c in 26 27 28; do echo "topic $c" >"topic$c.txt"; commit "$c" topic; done
  git checkout -q main
  echo "main change" >>dir1/file1.txt
  commit 29 "main change"
  GIT_AUTHOR_DATE="@1700009999 +0000" GIT_COMMITTER_DATE="@1700009999 +0000" git merge -q --no-edit topic
  git log --stat --format='%H %an %ad %s' --date=iso
  git diff --stat HEAD~10 HEAD
  git grep -c "commit 7"
  git blame -s dir1/file1.txt | tail -3
  git -c pack.threads=1 gc -q
  git fsck --full --no-progress
  git rev-list --all --objects | wc -l
  git rev-parse HEAD
}

gen_sql() {
  awk 'BEGIN {
    s = 42
    print "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL, payload TEXT);"
    print "BEGIN;"
    for (i = 1; i <= 20000; i++) {
      s = (s * 16807) % 2147483647; g = s % 97
      s = (s * 16807) % 2147483647; v = (s % 100000) / 100
      s = (s * 16807) % 2147483647; name = sprintf("n%05d", s % 5000)
      printf "INSERT INTO t VALUES(%d, %s%s%s, %d, %.2f, %s%s%s);\n", i, "\047", name, "\047", g, v, "\047", substr("abcdefghijklmnopqrstuvwxyz0123456789", 1, 1 + s % 36), "\047"
    }
    print "COMMIT;"
  }'
  cat <<'EOF'
CREATE INDEX t_grp ON t(grp);
CREATE INDEX t_name ON t(name, val);
SELECT grp, count(*), round(sum(val), 2), min(name), max(name) FROM t GROUP BY grp ORDER BY grp;
SELECT name, count(*) AS c FROM t GROUP BY name HAVING c > 8 ORDER BY c DESC, name LIMIT 20;
CREATE TABLE g AS SELECT grp, avg(val) AS a FROM t GROUP BY grp;
SELECT t.grp, count(*) FROM t JOIN g ON t.grp = g.grp WHERE t.val > g.a GROUP BY t.grp ORDER BY 1;
SELECT id, grp, round(sum(val) OVER (PARTITION BY grp ORDER BY id), 2) FROM t WHERE id % 1000 = 0 ORDER BY id;
BEGIN;
UPDATE t SET payload = payload || name WHERE id % 3 = 0;
DELETE FROM t WHERE id % 7 = 0;
COMMIT;
VACUUM;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000)
  SELECT count(*), sum(x) FROM c JOIN t ON t.id = c.x;
SELECT count(*), sum(length(payload)), group_concat(DISTINCT substr(name, 1, 3)) FROM t WHERE grp < 3;
SELECT grp, name FROM t WHERE name LIKE 'n00%' ORDER BY name, id LIMIT 15;
PRAGMA integrity_check;
EOF
}
w_sqlite3() { sqlite3 -batch -bail db.sqlite <"$tmp/in/workload.sql"; }

# Runs workload w_$1 without and with the library; requires same stdout and exit status 0.
compare() {
  local p=$1 mode dir
  for mode in plain preload; do
    dir=$tmp/$p.$mode
    mkdir -p "$dir"
    (
      set -eo pipefail
      cd "$dir"
      if [ "$mode" = preload ]; then export LD_PRELOAD=$lib; fi
      "w_$p"
    ) >"$dir.out" 2>"$dir.err"
    echo $? >"$dir.status"
  done
  local a=$tmp/$p.plain b=$tmp/$p.preload
  if [ "$(cat "$a.status")" != 0 ]; then
    cat "$a.err" >&2
    fail "$p: the workload fails even without the library (exit $(cat "$a.status"))"
  fi
  if grep -q "ld.so" "$b.err"; then cat "$b.err" >&2; fail "$p: ld.so complained about LD_PRELOAD"; fi
  if ! cmp -s "$a.status" "$b.status" || ! cmp -s "$a.out" "$b.out"; then
    echo "--- stderr with the library:" >&2
    tail -n 30 "$b.err" >&2
    echo "--- stdout diff (without vs with):" >&2
    diff "$a.out" "$b.out" | head -n 60 >&2
    fail "$p: with the library: exit status $(cat "$b.status") (0 without)$(cmp -s "$a.out" "$b.out" || echo ", stdout differs")"
  fi
  echo "OK: $p: identical stdout ($(wc -l <"$a.out") lines) and exit status 0 with LD_PRELOAD=$lib"
}

case $what in
  python3 | gcc | git | perl | sqlite3) programs=$what ;;
  all) programs="python3 gcc git perl sqlite3" ;;
  *) echo "unknown program '$what'" >&2; exit 2 ;;
esac
check_preload
skipped=0
for p in $programs; do
  need=$p
  [ "$p" = gcc ] && need="gcc objdump"
  missing=""
  for n in $need; do command -v "$n" >/dev/null || missing="$missing $n"; done
  if [ -n "$missing" ]; then echo "SKIP: $p: not installed:$missing"; skipped=$((skipped + 1)); continue; fi
  case $p in
    gcc) gen_c >"$tmp/in/gen.c" ;;
    sqlite3) gen_sql >"$tmp/in/workload.sql" ;;
  esac
  compare "$p"
done
[ "$skipped" -gt 0 ] && [ "$what" != all ] && exit 77
exit 0
