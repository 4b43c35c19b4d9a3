#!/usr/bin/env python3
"""fastpath_budget.py: the CI gate on Mallard's instructions per malloc/free pair.

    fastpath_budget.py FASTPATH WHICH_MALLOC LIBMALLARD BUDGET_FILE [N1 N2]

Measures every mode of bench/tools/fastpath.c under callgrind with LIBMALLARD preloaded, exactly
as bench/run does (bench/driver/callgrind.py: difference of the totals at N1 and N2 pairs, minus
the harness loop measured the same way), and fails when a mode costs more instructions per pair
than BUDGET_FILE allows (lines "mode max_instructions"; bench/fastpath_budget.txt). Fails, not
skips, without valgrind: a gate that can silently vanish is no gate."""
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "driver"))
import allocators  # noqa: E402
import callgrind  # noqa: E402


def read_budget(path):
    budget = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2:
            sys.exit(f"{path}:{number}: expected 'mode max_instructions', got {line!r}")
        try:
            budget[words[0]] = float(words[1])
        except ValueError:
            sys.exit(f"{path}:{number}: {words[1]!r} is not a number")
    return budget


def main(argv):
    if len(argv) not in (5, 7):
        sys.exit("usage: fastpath_budget.py FASTPATH WHICH_MALLOC LIBMALLARD BUDGET_FILE [N1 N2]")
    fastpath, which_malloc, lib, budget_file = argv[1:5]
    n1, n2 = (int(argv[5]), int(argv[6])) if len(argv) == 7 else (65536, 262144)
    if not shutil.which("valgrind"):
        print("FAIL: valgrind is not installed; this test measures with valgrind --tool=callgrind "
              "(apt-get install valgrind; .ci/run installs it)")
        return 1
    budget = read_budget(budget_file)
    unknown = sorted(set(budget) - set(callgrind.MODES))
    missing = [m for m in callgrind.MODES if m not in budget]
    if unknown or missing:
        print(f"FAIL: {budget_file} must give a budget for exactly the modes "
              f"{', '.join(callgrind.MODES)} (unknown: {unknown or 'none'}, missing: {missing or 'none'})")
        return 1

    mallard = allocators.Allocator("mallard", lib, "")
    result = callgrind.measure(fastpath, which_malloc, [mallard], n1, n2)
    entry = result["allocators"]["mallard"]
    failed = False
    if os.path.realpath(entry["provider"] or "none") != os.path.realpath(lib):
        print(f"FAIL: under valgrind, malloc resolved to {entry['provider'] or 'nothing'}, not {lib}")
        failed = True

    print(f"\ninstructions per malloc/free pair, {n1} -> {n2} pairs, harness subtracted; "
          f"budget from {budget_file}")
    print(f"{'mode':<9} {'measured':>9} {'budget':>9} {'harness':>9}")
    for m in callgrind.MODES:
        got, limit, harness = entry[m], budget[m], result["harness"][m]
        if got is None:
            verdict, failed = "FAIL: not measured (fastpath or valgrind failed)", True
        elif got > limit:
            verdict, failed = f"FAIL: {got - limit:.1f} over budget", True
        elif got < 0.9 * limit:
            verdict = "ok, more than 10% under budget: lower the budget"
        else:
            verdict = "ok"
        shown = ["n/a" if x is None else f"{x:.1f}" for x in (got, harness)]
        print(f"{m:<9} {shown[0]:>9} {limit:>9g} {shown[1]:>9}  {verdict}")
    if failed:
        print(f"\nOver budget: make the path cheaper, or raise the budget in {budget_file} "
              "with the reason in the commit message.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
