"""callgrind.py: allocator cost in instructions per malloc/free pair, for each mode of
bench/tools/fastpath.c (MODES), from callgrind totals of the fastpath program run for two pair
counts (the difference cancels start-up work). The harness loop alone (fastpath ... none) is
measured the same way and subtracted. Also instructions per op of the cases of cases.txt that
declare instr=SCALE, from the whole workload run at SCALE and 2*SCALE (the workload's own loop is
not subtracted there). Callgrind, unlike memcheck and the other tools with a vgpreload malloc
replacement, leaves malloc alone, so glibc's malloc or the preloaded allocator runs natively;
which_malloc under the same valgrind command confirms it. Also used by the CI gate
tests/bench/fastpath_budget.py."""
import shutil
import subprocess
import tempfile
from pathlib import Path

import allocators
from measure import _pairs as result_pairs

# fastpath.c's modes, in report order, with the column title of each.
MODES = ("same", "one", "mixed1k", "empty", "cross")
TITLES = {
    "same": "same thread, 16..128 B",
    "one": "same thread, 64 B",
    "mixed1k": "same thread, 16 B..1 KiB",
    "empty": "page emptied, 2000 B",
    "cross": "cross-thread, 16..128 B",
}


def _total(fastpath, alloc, mode, n, none, tmp):
    out = Path(tmp) / f"cg.{mode}.{n}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(fastpath), mode, str(n)]
    r = subprocess.run(cmd + (["none"] if none else []), env=alloc.env(), capture_output=True, text=True)
    pairs = next((int(t[6:]) for t in r.stdout.split() if t.startswith("pairs=")), None)
    if r.returncode != 0 or pairs is None or not out.exists():
        return None
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1]), pairs
    return None


def per_pair(fastpath, alloc, mode, n1, n2, none=False):
    with tempfile.TemporaryDirectory() as tmp:
        a, b = _total(fastpath, alloc, mode, n1, none, tmp), _total(fastpath, alloc, mode, n2, none, tmp)
    if not a or not b:
        return None
    return (b[0] - a[0]) / (b[1] - a[1])


def measure(fastpath, which_malloc, allocs, n1, n2, log=print):
    """{"n1", "n2", "harness": {mode: instr}, "allocators": {name: {"provider": str,
    mode: instr or None}}}, or None when valgrind is not installed."""
    if not shutil.which("valgrind"):
        log("callgrind: valgrind not installed, fast-path counts skipped")
        return None
    glibc = allocators.Allocator("glibc", None, "")
    harness = {m: per_pair(fastpath, glibc, m, n1, n2, none=True) for m in MODES}
    result = {"n1": n1, "n2": n2, "harness": harness, "allocators": {}}
    for a in allocs:
        with tempfile.TemporaryDirectory() as tmp:
            wrapper = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/which.out")
            entry = {"provider": allocators.resolve(which_malloc, a, wrapper).get("malloc", "")}
        for m in MODES:
            raw, base = per_pair(fastpath, a, m, n1, n2), harness[m]
            entry[m] = raw - base if raw is not None and base is not None else None
        result["allocators"][a.name] = entry
        log(f"callgrind {a.name}: " + ", ".join(
            f"{m} {entry[m]:.1f}" if entry[m] is not None else f"{m} failed" for m in MODES))
    return result


def _case_total(case, alloc, scale, tmp, timeout):
    """(instructions, ops) of one run of case at scale under callgrind, or None."""
    out = Path(tmp) / f"cg.{scale:g}.out"
    # --fair-sched: valgrind runs one thread at a time, and by default a thread that never blocks
    # (larson's workers) can keep the lock for minutes, starving the timer thread that would end
    # the run: a 0.1 s larson run took 150 s. Fair scheduling hands the lock round in turn.
    cmd = ["valgrind", "--tool=callgrind", "--fair-sched=yes", f"--callgrind-out-file={out}",
           *case.command(scale)]
    try:
        r = subprocess.run(cmd, env=alloc.env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    ops = (result_pairs(r.stdout, "result ") or {}).get("ops")
    if r.returncode != 0 or ops is None or not out.exists():
        return None
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1]), int(ops)
    return None


def per_op(case, alloc, timeout=300):
    """Instructions per op of case under alloc: difference of the callgrind totals at
    case.instr_scale and twice that, over the difference of the ops= the runs reported. A
    fixed-time workload (larson) does a varying number of ops under valgrind, whose threads
    take turns: the pair of runs is repeated (up to 3 times) until the second did at least
    1.5 times the ops of the first, so the difference is not a small one of two noisy counts."""
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            a = _case_total(case, alloc, case.instr_scale, tmp, timeout)
            b = _case_total(case, alloc, 2 * case.instr_scale, tmp, timeout) if a else None
        if not a or not b:
            return None
        if b[1] >= 1.5 * a[1]:
            return (b[0] - a[0]) / (b[1] - a[1])
    return None


def case_counts(cases, allocs, log=print):
    """{case label: {allocator: instructions per op or None}} for the cases with instr=, or None
    when valgrind is not installed."""
    todo = [c for c in cases if c.instr_scale]
    if not todo:
        return {}
    if not shutil.which("valgrind"):
        log("callgrind: valgrind not installed, instructions per op skipped")
        return None
    result = {}
    for c in todo:
        result[c.label] = {a.name: per_op(c, a) for a in allocs}
        log(f"instructions per op, {c.label}: " + ", ".join(
            f"{a} {v:.0f}" if v is not None else f"{a} failed" for a, v in result[c.label].items()))
    return result
