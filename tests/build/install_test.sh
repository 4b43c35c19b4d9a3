#!/bin/sh
# install_test.sh: Mallard installed and integrated as a user would (docs/install.md).
#   install_test.sh MODE BUILD_DIR SOURCE_DIR VERSION LIBDIR CC CXX CMAKE
# Each mode installs BUILD_DIR to a fresh temporary prefix (cmake --install --prefix) and checks:
#   layout       the files, the SONAME and its links, no libstdc++, man pages with every option
#   pkgconfig    C and C++ programs built with `pkg-config mallard`, shared and --static (-static)
#   find_package C and C++ programs built with find_package(Mallard), shared and static
#   preload      real programs with LD_PRELOAD=<prefix>/LIBDIR/libmallard.so.0 and the installed tool
#   subdirectory a parent project that add_subdirectory()s the source tree: no tests, nothing in
#                its top build folder, its programs use Mallard
# Exit 77 (skipped) when a tool the mode needs is missing.
set -eu
mode=$1 build=$2 src=$3 version=$4 libdir=$5 cc=$6 cxx=$7 cmake=$8
here=$src/tests/build
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mallard-$mode.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
lib=$prefix/$libdir

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# run NAME COMMAND...: the program prints "mallard VERSION" and exits 0.
check_program() {
  out=$("$@") || fail "$1 exited $?"
  [ "$out" = "mallard $version" ] || fail "$1 printed '$out', expected 'mallard $version'"
  echo "ok: $1"
}

if [ "$mode" != subdirectory ]; then
  "$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" || {
    cat "$tmp/install.log"
    fail "cmake --install"
  }
fi

case $mode in
layout)
  for f in "$lib/libmallard.so.$version" "$lib/libmallard.a" "$prefix/include/mallard/mallard.h" \
    "$prefix/bin/mallard" "$lib/pkgconfig/mallard.pc" "$lib/cmake/Mallard/MallardConfig.cmake" \
    "$lib/cmake/Mallard/MallardConfigVersion.cmake" "$lib/cmake/Mallard/MallardTargets.cmake" \
    "$prefix/share/man/man1/mallard.1" "$prefix/share/man/man3/mallard.3"; do
    [ -f "$f" ] || fail "not installed: $f"
  done
  [ "$(readlink "$lib/libmallard.so.0")" = "libmallard.so.$version" ] ||
    fail "libmallard.so.0 -> $(readlink "$lib/libmallard.so.0")"
  [ "$(readlink "$lib/libmallard.so")" = libmallard.so.0 ] ||
    fail "libmallard.so -> $(readlink "$lib/libmallard.so")"
  soname=$(readelf -d "$lib/libmallard.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
  [ "$soname" = libmallard.so.0 ] || fail "SONAME '$soname', expected libmallard.so.0"
  ! readelf -d "$lib/libmallard.so.$version" | grep -q 'libstdc++' || fail "libmallard needs libstdc++"
  # Nothing test-only is installed.
  ! find "$prefix" -name '*race_delays*' -o -name '*fault_injection*' -o -name '*options_table*' |
    grep . || fail "test-only files installed"
  # mallard(3) documents every option of the table (the same generator as docs/options.md).
  "$prefix/bin/mallard" options | sed -n 's/^\([a-z_0-9][a-z_0-9]*\) .*/\1/p' >"$tmp/options"
  [ -s "$tmp/options" ] || fail "mallard options listed nothing"
  while read -r name; do
    grep -qx ".B $name" "$prefix/share/man/man3/mallard.3" || fail "mallard(3) lacks option $name"
  done <"$tmp/options"
  grep -q '^\.B const char \*mallard_version(void);' "$prefix/share/man/man3/mallard.3" ||
    fail "mallard(3) lacks mallard_version"
  grep -q "Mallard $version" "$prefix/share/man/man1/mallard.1" || fail "mallard(1) lacks the version"
  if command -v man >/dev/null 2>&1; then
    for page in man1/mallard.1 man3/mallard.3; do
      MANWIDTH=80 man -l "$prefix/share/man/$page" 2>"$tmp/man.err" >"$tmp/man.out" </dev/null ||
        fail "man -l $page"
      if grep -v 'cannot adjust line\|can.t break line' "$tmp/man.err" | grep .; then
        fail "man -l $page warned"
      fi
      grep -q 'mallard' "$tmp/man.out" || fail "man -l $page rendered nothing"
    done
    grep -q 'arena_max' "$tmp/man.out" || fail "rendered mallard(3) lacks arena_max"
  fi
  [ "$("$prefix/bin/mallard" --version)" = "mallard $version" ] || fail "mallard --version"
  echo "ok: layout"
  ;;
pkgconfig)
  command -v pkg-config >/dev/null 2>&1 || {
    echo "skipped: no pkg-config"
    exit 77
  }
  export PKG_CONFIG_PATH="$lib/pkgconfig"
  [ "$(pkg-config --modversion mallard)" = "$version" ] || fail "pkg-config --modversion"
  pkg-config --static --libs mallard | grep -q -- '-lpthread' || fail "--static lacks -lpthread"
  rpath=-Wl,-rpath,$(pkg-config --variable=libdir mallard)
  # shellcheck disable=SC2046
  "$cc" -o "$tmp/c_shared" "$here/consumer/consumer.c" $(pkg-config --cflags --libs mallard) "$rpath"
  # shellcheck disable=SC2046
  "$cxx" -o "$tmp/cxx_shared" "$here/consumer/consumer.cpp" $(pkg-config --cflags --libs mallard) \
    "$rpath"
  # shellcheck disable=SC2046
  "$cc" -static -o "$tmp/c_static" "$here/consumer/consumer.c" \
    $(pkg-config --static --cflags --libs mallard)
  # shellcheck disable=SC2046
  "$cxx" -static -o "$tmp/cxx_static" "$here/consumer/consumer.cpp" \
    $(pkg-config --static --cflags --libs mallard)
  readelf -d "$tmp/c_shared" | grep -q 'NEEDED.*libmallard.so.0' || fail "c_shared needs no libmallard.so.0"
  ! readelf -d "$tmp/c_static" | grep -q NEEDED || fail "c_static is not static"
  for p in c_shared cxx_shared c_static cxx_static; do check_program "$tmp/$p" "$version"; done
  ;;
find_package)
  "$cmake" -S "$here/consumer" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
    >"$tmp/configure.log" 2>&1 || {
    cat "$tmp/configure.log"
    fail "configure"
  }
  "$cmake" --build "$tmp/build" -j 1 >"$tmp/build.log" 2>&1 || {
    cat "$tmp/build.log"
    fail "build"
  }
  grep -q "Mallard_DIR:PATH=$lib/cmake/Mallard" "$tmp/build/CMakeCache.txt" ||
    fail "find_package did not find the installed package"
  readelf -d "$tmp/build/c_shared" | grep -q 'NEEDED.*libmallard.so.0' || fail "c_shared needs no libmallard.so.0"
  ! readelf -d "$tmp/build/c_static" | grep -q 'NEEDED.*libmallard' || fail "c_static needs libmallard.so"
  for p in c_shared cxx_shared c_static cxx_static; do check_program "$tmp/build/$p" "$version"; done
  ;;
preload)
  # Real programs, the library preloaded by its absolute SONAME path; the report proves it.
  # (ls closes stderr before it exits: the report goes to fd 3.)
  LD_PRELOAD=$lib/libmallard.so.0 MALLARD_OPTIONS=report=json,report_fd=3 ls -l / >/dev/null \
    3>"$tmp/ls.report" || fail "ls under LD_PRELOAD"
  grep -q "\"version\":\"$version\",\"program\":\"ls\",\"pid\":" "$tmp/ls.report" ||
    fail "ls: no JSON report: $(cat "$tmp/ls.report")"
  echo "ok: ls"
  if command -v python3 >/dev/null 2>&1; then
    out=$(LD_PRELOAD=$lib/libmallard.so.0 MALLARD_OPTIONS=report=json \
      python3 -c 'print(sum(len(str(i)) for i in range(200000)))' 2>"$tmp/py.err") ||
      fail "python3 under LD_PRELOAD"
    [ "$out" = 1088890 ] || fail "python3 printed $out"
    grep -q "\"version\":\"$version\"" "$tmp/py.err" || fail "python3: no JSON report"
    echo "ok: python3"
  fi
  # The installed tool finds the installed library, by its SONAME link (an upgrade that replaces
  # the real file keeps working for processes started later).
  [ "$("$prefix/bin/mallard" lib)" = "$(cd "$lib" && pwd -P)/libmallard.so.0" ] ||
    fail "mallard lib: $("$prefix/bin/mallard" lib)"
  "$prefix/bin/mallard" run --report=json --report-fd 3 -- ls / >/dev/null 3>"$tmp/tool.report" ||
    fail "mallard run"
  grep -q "\"version\":\"$version\"" "$tmp/tool.report" || fail "mallard run: no report"
  echo "ok: installed mallard run"
  ;;
subdirectory)
  parent=$tmp/parent
  "$cmake" -S "$here/subdir_parent" -B "$parent" -DMALLARD_SOURCE_DIR="$src" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
    >"$tmp/configure.log" 2>&1 || {
    cat "$tmp/configure.log"
    fail "configure"
  }
  grep -q '^MALLARD_TESTS:BOOL=OFF' "$parent/CMakeCache.txt" || fail "MALLARD_TESTS is not OFF"
  "$cmake" --build "$parent" -j 1 >"$tmp/build.log" 2>&1 || {
    cat "$tmp/build.log"
    fail "build"
  }
  [ ! -e "$parent/mallard/tests" ] || fail "Mallard's tests were configured"
  if find "$parent" -maxdepth 1 ! -type d -name '*mallard*' | grep .; then
    fail "Mallard's files in the parent's top build folder"
  fi
  [ -e "$parent/mallard/libmallard.so.0" ] || fail "no libmallard.so.0 in $parent/mallard"
  check_program "$parent/app" "$version"
  check_program "$parent/app_static" "$version"
  ;;
*) fail "unknown mode $mode" ;;
esac
