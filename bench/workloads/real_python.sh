#!/usr/bin/env bash
# real_python.sh THREADS SCALE: Debian's python3 running py_alloc.py with PYTHONMALLOC=malloc, so
# the interpreter's objects come from the allocator under test rather than from pymalloc.
# Exits 77 (skip) when python3 is not installed.
here=$(dirname "$0")
py=/usr/bin/python3
[ -x "$py" ] || py=python3
command -v "$py" >/dev/null || { echo "python3 is not installed" >&2; exit 77; }
PYTHONMALLOC=malloc exec "$py" "$here/py_alloc.py" "$@"
