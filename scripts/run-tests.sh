#!/usr/bin/env bash
# run-tests.sh: builds and runs every test. Release build with GCC: unit, conformance,
# integration, stress and build tests; then the whole suite again in the checked build (GCC,
# every internal assertion on: src/os/check.hpp); then the same tree with Clang (-Werror) and its
# unit and build tests. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}
cmake --preset release
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs" --timeout 600
cmake --preset checked
cmake --build --preset checked -j "$jobs"
ctest --preset checked -j "$jobs" --timeout 600
if command -v clang++ >/dev/null 2>&1; then
  cmake --preset clang
  cmake --build --preset clang -j "$jobs"
  ctest --preset clang -j "$jobs" -L 'unit|build' --timeout 600
fi
