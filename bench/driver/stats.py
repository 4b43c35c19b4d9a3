"""stats.py: medians, same-round ratios and geometric means over the collected runs.

runs[case_label][allocator][round] is a measure.Run (missing when that run failed)."""
import math
import statistics


def ok_runs(runs, case, alloc):
    return [r for r in runs.get(case, {}).get(alloc, {}).values() if r.ok]


def median(runs, case, alloc, value):
    """Median of value(run) over the successful rounds, or None."""
    xs = [value(r) for r in ok_runs(runs, case, alloc)]
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(runs, case, alloc, ref, value):
    """Median over rounds of value(alloc run) / value(ref run) from the same round."""
    mine, theirs = runs.get(case, {}).get(alloc, {}), runs.get(case, {}).get(ref, {})
    xs = []
    for rnd, r in mine.items():
        other = theirs.get(rnd)
        if r.ok and other is not None and other.ok:
            a, b = value(r), value(other)
            if a is not None and b:
                xs.append(a / b)
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def cost(run):
    return run.cost


def peak_rss(run):
    return run.maxrss_kb


def key(name, scale=1.0):
    """value() reading a numeric key of the result line."""
    def get(run):
        v = run.values.get(name)
        return float(v) * scale if v is not None else None
    return get
