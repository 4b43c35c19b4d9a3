#!/usr/bin/env bash
# deps.sh: make sure the Debian packages the benchmark needs are installed. As root, missing
# ones are installed with apt-get (running apt-get update first if needed); otherwise they are
# only listed, and bench/run skips what it cannot run.
set -euo pipefail
packages=(gcc g++ libc6-dev python3 sqlite3 valgrind gnuplot-nox
    libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0)

missing=()
for p in "${packages[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages (not root, not installing): ${missing[*]}" >&2
    exit 0
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y "${missing[@]}"; then
    apt-get update
    apt-get install -y "${missing[@]}"
fi
