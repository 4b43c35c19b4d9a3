#!/usr/bin/env bash
# run-demo.sh: the main job. Builds Mallard (the library and the tool only) and runs a real
# program (python3 doing real work, tools/demo.py) under `mallard run --report`, which prints the
# heap report at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what the demo runs: the library and the tool (no tests, so no GoogleTest). The build's
# output goes to a log, shown only if it fails: the demo's output is the program and its report.
# (scripts/run-tests.sh configures the same folder with the tests on again.)
cmake --preset release -DMALLARD_TESTS=OFF >/dev/null
log=build/release/demo-build.log
if ! cmake --build --preset release --target mallard mallard_tool >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
exec ./build/release/mallard run --report -- python3 tools/demo.py
