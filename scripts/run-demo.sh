#!/usr/bin/env bash
# run-demo.sh: the main job. Builds Mallard and runs a real program (python3 doing real work,
# tools/demo.py) under `mallard run --report`, which prints the heap report at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build --preset release
exec ./build/release/mallard run --report -- python3 tools/demo.py
