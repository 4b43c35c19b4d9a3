#!/usr/bin/env bash
# real_gcc.sh THREADS SCALE: `gcc -O2 -c` on a large generated C file (150 functions at scale 1).
# The source is generated once per size into bench/out/gen/ without the allocator preloaded.
# Exits 77 (skip) when gcc is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v gcc >/dev/null || { echo "gcc is not installed" >&2; exit 77; }
n=$(awk -v s="${2:-1}" 'BEGIN { n = int(150 * s); print (n < 10 ? 10 : n) }')
gen="$here/../out/gen"
src="$gen/big_$n.c"
mkdir -p "$gen"
if [ ! -s "$src" ]; then
    py=/usr/bin/python3
    [ -x "$py" ] || py=python3
    env -u LD_PRELOAD "$py" "$here/gen_big_c.py" "$n" >"$src.tmp.$$"
    mv "$src.tmp.$$" "$src"
fi
obj="$gen/big_$n.$$.o"
trap 'rm -f "$obj"' EXIT
gcc -O2 -c "$src" -o "$obj"
echo "result workload=gcc functions=$n object_bytes=$(stat -c %s "$obj")"
