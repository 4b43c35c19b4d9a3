#!/usr/bin/env bash
# report_content.sh: the exit report explains the RSS (issue 13, part 2). Runs report_content under
# `mallard run --report=json` and checks, with python3's json module:
#   - at exit: the RSS split (rss.total close to bytes_resident; nothing left of the 64 MiB);
#   - at the peak: the snapshot holds the 600 MiB block and the 40k small blocks as live, Mallard's
#     resident part about the 96 MiB touched (not 600), the program's own 64 MiB mapping as
#     "other anonymous" (the largest one), and the process RSS of that moment;
#   - peak_bytes_in_use (page granularity) >= 600 MiB while peak_resident is far below it.
# Usage: report_content.sh TOOL PROGRAM
set -u
tool=$1 prog=$2
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mallard-report-content.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$tool" run --report=json --report-fd 3 -- "$prog" 3>"$tmp/report.json" || {
  echo "FAIL: exit status $?"
  exit 1
}
python3 - "$tmp/report.json" <<'PY' || exit 1
import json, sys
MiB = 1 << 20
r = json.load(open(sys.argv[1]))
def check(cond, what):
    if not cond:
        print("FAIL:", what)
        print(json.dumps({k: v for k, v in r.items() if k != "classes"}, indent=1))
        sys.exit(1)
    print("ok:", what)
check(r["schema_version"] == 1 and r["program"] == "report_content", "header")
rss = r["rss"]
check(rss["known"] and abs(rss["total"] - r["bytes_resident"]) < 8 * MiB,
      "at exit: the split adds up to the RSS (%d vs %d)" % (rss["total"], r["bytes_resident"]))
check(rss["anonymous"] < 16 * MiB, "at exit: the program's own mapping is gone")
check(r["peak_bytes_in_use"] >= 600 * MiB, "peak pages in use counts the whole 600 MiB block")
check(r["peak_resident"] < 400 * MiB, "the process's peak RSS is far below it")
p = r.get("peak")
check(p is not None, "a peak snapshot was taken")
check(p["bytes_huge"] >= 600 * MiB, "at the peak: the 600 MiB block is live")
check(p["bytes_small"] >= 38 * MiB, "at the peak: the small blocks are live")
check(p["bytes_resident"] >= 150 * MiB, "at the peak: the process RSS (%d)" % p["bytes_resident"])
s = p["rss"]
check(90 * MiB <= s["mallard"] <= 160 * MiB,
      "at the peak: Mallard's resident part is what was touched (%d)" % s["mallard"])
check(s["anonymous"] >= 60 * MiB, "at the peak: 64 MiB outside Mallard (%d)" % s["anonymous"])
check(s["largest_anonymous"] and s["largest_anonymous"][0]["rss"] >= 60 * MiB,
      "at the peak: the program's own mapping is the largest other one")
check(any(c["block_size"] >= 1000 and c["blocks_used"] >= 39000 for c in p["classes"]),
      "at the peak: the size class of the small blocks")
PY
# The text form says the same in words.
"$tool" run --report -- "$prog" 2>"$tmp/report.txt" >/dev/null || { echo "FAIL: text run"; exit 1; }
for pattern in '^at the peak: RSS [0-9.]+ MiB' '^  other anonymous +[0-9.]+ MiB' \
  "^  in Mallard's heap +[0-9.]+ MiB" '^peak pages in use +[0-9.]+ MiB'; do
  grep -Eq -- "$pattern" "$tmp/report.txt" || { echo "FAIL: text lacks /$pattern/"; cat "$tmp/report.txt"; exit 1; }
done
echo "OK"
