#!/usr/bin/env bash
# build.sh: compile the workload programs and measuring tools into bench/out/ with -O2 (no
# CMake); the rusage_run wrapper is linked statically. A program is rebuilt only when its
# source or common.h is newer than the binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/out"
mkdir -p "$out"
CC=${CC:-cc}
CXX=${CXX:-c++}
common="$here/workloads/common.h"

build() { # build SOURCE: compile one file into $out/<basename>
    local src=$1 name
    name=$(basename "${src%.*}")
    if [ -x "$out/$name" ] && [ "$out/$name" -nt "$src" ] && [ "$out/$name" -nt "$common" ]; then
        return 0
    fi
    echo "build: $name"
    case "$src" in
    */rusage_run.c) "$CC" -std=gnu11 -O2 -static -o "$out/$name" "$src" ;;
    *.cc) "$CXX" -std=c++20 -O2 -g -pthread -o "$out/$name" "$src" ;;
    *) "$CC" -std=gnu11 -O2 -g -pthread -o "$out/$name" "$src" -ldl ;;
    esac
}

for src in "$here"/workloads/*.c "$here"/workloads/*.cc "$here"/tools/*.c; do
    build "$src"
done
