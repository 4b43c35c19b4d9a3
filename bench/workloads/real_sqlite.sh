#!/usr/bin/env bash
# real_sqlite.sh THREADS SCALE: the sqlite3 shell running sqlite_load.sql on an in-memory
# database with 250000 rows at scale 1; the script prints the result line itself.
# Exits 77 (skip) when sqlite3 is not installed.
here=$(dirname "$0")
command -v sqlite3 >/dev/null || { echo "sqlite3 is not installed" >&2; exit 77; }
n=$(awk -v s="${2:-1}" 'BEGIN { n = int(250000 * s); print (n < 100 ? 100 : n) }')
exec sqlite3 :memory: -cmd ".parameter set @n $n" ".read \"$here/sqlite_load.sql\""
