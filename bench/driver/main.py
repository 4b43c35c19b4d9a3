"""main.py: the benchmark driver behind bench/run. Finds the allocators, runs every case of
bench/cases.txt for every allocator in interleaved rounds, measures the fast path and the
instructions per op of the cases that declare instr= with callgrind, draws the charts and writes
docs/BENCHMARKS.md, with geometric means over a frozen case list of bench/geomean.txt."""
import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from pathlib import Path

import allocators
import callgrind
import cases as case_list
import charts
import machine
import measure
import report
import stats

BENCH = Path(__file__).resolve().parent.parent
REPO, OUT = BENCH.parent, BENCH / "out"


def log(msg):
    print(msg, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="short pass: 2 rounds at scale 0.2")
    p.add_argument("--rounds", type=int, help="rounds (default 5, or 2 with --quick)")
    p.add_argument("--scale", type=float, help="workload scale (default 1, or 0.2 with --quick)")
    p.add_argument("--cases", help="comma-separated case names to run (default: all)")
    p.add_argument("--no-callgrind", action="store_true",
                   help="skip the callgrind counts (fast path, instructions per op)")
    p.add_argument("--geomean", metavar="LIST",
                   help="case list of bench/geomean.txt for the geometric means (default: the last one)")
    p.add_argument("--timeout", type=float, default=60,
                   help="seconds allowed per run (default 60); a case that times out is not rerun")
    p.add_argument("--output", type=Path, default=REPO / "docs" / "BENCHMARKS.md",
                   help="report path (default docs/BENCHMARKS.md); charts go to bench/ beside it")
    return p.parse_args(argv)


def _brief(run):
    if not run.ok:
        return "FAIL"
    score = f"{run.throughput / 1e6:.2f}M/s" if run.throughput else f"{run.wall_s:.3f}s"
    return f"{score} {run.maxrss_kb / 1024:.0f}M"


def collect(allocs, cases, rounds, scale, timeout):
    rusage_run = OUT / "rusage_run"
    log(f"warm-up: one untimed run of each of {len(cases)} cases")
    for c in cases:
        r = measure.run(rusage_run, c.command(scale), allocs[0].env(), timeout)
        if not r.ok:
            log(f"  warm-up {c.label} failed: {r.error}")
    runs = {c.label: {a.name: {} for a in allocs} for c in cases}
    gave_up = set()  # (case, allocator) that timed out once: not run again
    for rnd in range(1, rounds + 1):
        for c in cases:
            parts = []
            for a in allocs:
                if (c.label, a.name) in gave_up:
                    parts.append(f"{a.name} skipped")
                    continue
                r = measure.run(rusage_run, c.command(scale), a.env(), timeout)
                runs[c.label][a.name][rnd] = r
                parts.append(f"{a.name} {_brief(r)}")
                if not r.ok:
                    log(f"  {c.label} / {a.name} failed: {r.error}")
                if r.timed_out:
                    gave_up.add((c.label, a.name))
            log(f"[{rnd}/{rounds}] {c.label:<15} " + "  ".join(parts))
    return runs


def draw(allocs, cases, runs, output):
    names = [a.name for a in allocs]
    if "glibc" not in names:
        return []
    (OUT / "charts").mkdir(parents=True, exist_ok=True)
    png_dir = output.parent / "bench"
    png_dir.mkdir(parents=True, exist_ok=True)
    drawn = []
    for stem, value, what in (("time_ratio", stats.cost, "Time"), ("peak_rss_ratio", stats.peak_rss, "Peak RSS")):
        rows = [(c.label, [stats.ratio(runs, c.label, a, "glibc", value) for a in names]) for c in cases]
        png = png_dir / f"{stem}.png"
        title = f"{what} relative to glibc, per case (median of same-round ratios; lower is better)"
        if charts.bar_chart(rows, names, title, "ratio to glibc (log scale)", OUT / "charts" / f"{stem}.dat", png):
            drawn.append((f"{what} relative to glibc", os.path.relpath(png, output.parent)))
    return drawn


def save_raw(runs):
    raw = {case: {a: {rnd: dataclasses.asdict(r) for rnd, r in per.items()} for a, per in allocs.items()}
           for case, allocs in runs.items()}
    (OUT / "results.json").write_text(json.dumps(raw, indent=1))


def main(argv):
    args = parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    scale = args.scale or (0.2 if args.quick else 1.0)
    started = time.time()
    loadavg = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    notes = []

    def note(msg):
        log(msg)
        notes.append(msg)

    allocs = allocators.discover(REPO, OUT / "which_malloc", log=note)
    if not allocs:
        sys.exit("no allocator available")
    only = set(args.cases.split(",")) if args.cases else None
    cases = case_list.load(BENCH, only)
    if not cases:
        sys.exit(f"no such case: {args.cases} (see bench/cases.txt)")
    lists = case_list.geomean_lists(BENCH)
    geo_name = args.geomean or (list(lists)[-1] if lists else None)
    if geo_name not in lists:
        sys.exit(f"no such case list: {geo_name} (see bench/geomean.txt: {', '.join(lists)})")
    unknown = set(lists[geo_name]) - {c.label for c in case_list.load(BENCH)}
    if unknown:
        log(f"warning: {geo_name} names cases that cases.txt does not have: {', '.join(sorted(unknown))}")
    log(f"allocators: {', '.join(a.name for a in allocs)}; {len(cases)} cases, {rounds} round(s), scale {scale:g}")

    runs = collect(allocs, cases, rounds, scale, args.timeout)
    save_raw(runs)
    fastpath = instr = None
    if not args.no_callgrind:
        n1, n2 = (65536, 262144) if args.quick else (262144, 1048576)
        fastpath = callgrind.measure(OUT / "fastpath", OUT / "which_malloc", allocs, n1, n2, log=log)
        instr = callgrind.case_counts(cases, allocs, log=log)
        (OUT / "instr_per_op.json").write_text(json.dumps(instr, indent=1))
    drawn = draw(allocs, cases, runs, args.output)

    settings = {
        "command": " ".join(["bench/run", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick pass" if args.quick else "full run",
        "rounds": rounds, "scale": scale,
        "loadavg": f"{loadavg} at the start, {' / '.join(f'{x:.2f}' for x in os.getloadavg())} at the end", "elapsed_min": (time.time() - started) / 60,
    }
    text = report.render(settings, machine.describe(), allocs, notes, cases, runs, fastpath, drawn,
                         (geo_name, lists[geo_name]), instr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"wrote {args.output} ({settings['elapsed_min']:.1f} min)")


if __name__ == "__main__":
    main(sys.argv[1:])
