"""report.py: render docs/BENCHMARKS.md from the collected runs (tables, ratios, geometric
means, callgrind counts, machine and versions)."""
import os

import allocators
import callgrind
import stats

GLIBC, MIMALLOC = "glibc", "mimalloc"
PEER_NAMES = [name for name, _, _ in allocators.PEERS]  # "x best peer" picks among these
SWEEP_SIZES = [16 << i for i in range(13)]  # as printed by size_sweep: ns_16 .. ns_65536


def _num(x):
    if x is None:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:#.3g}"


def _ratio(x):
    return "n/a" if x is None else f"{x:.2f}"


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


class Report:
    def __init__(self, settings, machine, allocs, notes, cases, runs, fastpath, charts, geomean, instr):
        self.s, self.machine, self.allocs, self.notes = settings, machine, allocs, notes
        self.cases, self.runs, self.fastpath, self.charts = cases, runs, fastpath, charts
        self.names = [a.name for a in allocs]
        self.refs = [r for r in (MIMALLOC, GLIBC) if r in self.names]
        self.geo_name, self.geo_labels = geomean  # the frozen list the summary's means are over
        self.geo_cases = [c for c in cases if c.label in self.geo_labels]
        self.instr = instr  # {case label: {allocator: instructions per op}}, or None

    # -- helpers --------------------------------------------------------------------------
    def _is_throughput(self, case):
        return any(r.throughput for a in self.names for r in stats.ok_runs(self.runs, case.label, a))

    def _cell(self, case, alloc, value, fmt):
        if not self.runs.get(case.label, {}).get(alloc):
            return "n/a"
        v = stats.median(self.runs, case.label, alloc, value)
        return "fail" if v is None else fmt(v)

    def _row(self, case, value, fmt, best=min):
        """Median value per allocator for one case, the best one in bold."""
        meds = {a: stats.median(self.runs, case.label, a, value) for a in self.names}
        known = [v for v in meds.values() if v is not None]
        top = best(known) if len(known) > 1 else None
        cells = [self._cell(case, a, value, fmt) for a in self.names]
        return [case.label] + [f"**{x}**" if meds[a] is not None and meds[a] == top else x
                               for a, x in zip(self.names, cells)]

    def _score(self, case):
        """(value, format, best) of a case's score: throughput if it reports one, else wall time."""
        if self._is_throughput(case):
            return (lambda r: r.throughput), (lambda v: f"{_num(v / 1e6)} Mops/s"), max
        return (lambda r: r.wall_s), (lambda v: f"{_num(v)} s"), min

    def _ratio_rows(self, value, ref, cases=None):
        return [[c.label] + [_ratio(stats.ratio(self.runs, c.label, a, ref, value)) for a in self.names]
                for c in (self.cases if cases is None else cases)]

    def _timed(self):
        """The cases the time tables show: not the memory cases (whose time includes idling)."""
        return [c for c in self.cases if not c.memory]

    def geomeans(self, value, ref):
        """{allocator: geometric mean over the geomean list's cases of the ratio to ref}; ref is an
        allocator name or a function of the case (the best peer)."""
        ref_of = ref if callable(ref) else (lambda c: ref)
        return {a: stats.geomean([stats.ratio(self.runs, c.label, a, ref_of(c), value)
                                  for c in self.geo_cases if ref_of(c)])
                for a in self.names}

    def best_peer(self, case, value):
        """The peer (glibc, jemalloc, tcmalloc, mimalloc, or those of the case's peers= option)
        with the lowest median of value in this case, or None."""
        allowed = [p for p in (case.peers or PEER_NAMES) if p in self.names and p in PEER_NAMES]
        meds = {p: stats.median(self.runs, case.label, p, value) for p in allowed}
        meds = {p: v for p, v in meds.items() if v is not None}
        return min(meds, key=meds.get) if meds else None

    def _best_peer_rows(self, value, cases=None):
        rows = []
        for c in (self.cases if cases is None else cases):
            best = self.best_peer(c, value)
            cells = [_ratio(stats.ratio(self.runs, c.label, a, best, value)) if best else "n/a" for a in self.names]
            label = c.label + ("" if c.label in self.geo_labels else " (not in the means)")
            rows.append([label, best or "n/a", ", ".join(c.peers) if c.peers else "all"] + cells)
        return rows

    def _best_peer_table(self, value, what, measure, cases=None):
        return (f"### {what} x best peer\n\n"
                f"Ratio to the peer with the lowest median {measure} in that case (same-round "
                "ratios, median over rounds), picked among the peers the case allows (`peers=` in "
                "`cases.txt`): the large-block cases allow only the peers that return freed "
                "memory to the system (not tcmalloc).\n\n"
                + _table(["case", "best peer", "peers"] + self.names, self._best_peer_rows(value, cases)))

    # -- sections -------------------------------------------------------------------------
    def header(self):
        s = self.s
        return (f"# Mallard benchmarks\n\n"
                f"Generated by `{s['command']}` on {s['date']} ({s['mode']}: {s['rounds']} round(s), "
                f"scale {s['scale']:g}, {s['elapsed_min']:.1f} min). Do not edit by hand: rerun "
                f"`bench/run` (or `bench/run --quick`) to refresh it. Load average (1/5/15 min): "
                f"{s['loadavg']}.\n" + "".join(f"\n- Note: {n}" for n in self.notes)
                + ("\n" if self.notes else ""))

    def summary(self):
        ran = {c.label for c in self.cases}
        missing = [l for l in self.geo_labels if l not in ran]
        extra = [c.label for c in self.cases if c.label not in self.geo_labels]
        scope = (f"Case list: **`{self.geo_name}`** (`bench/geomean.txt`, {len(self.geo_labels)} cases)")
        if missing:
            scope += (f"; **incomplete**: {len(missing)} of its cases were not run ({', '.join(missing)}), "
                      "so these means do not compare with a full run's")
        if extra:
            scope += f"; run but not in the list, so left out of the means: {', '.join(extra)}"
        out = ["## Summary\n",
               scope + ".\n",
               "Geometric mean over the list's cases of each case's ratio (median over rounds of the "
               "ratio computed within one round); `cases` counts the list's cases the allocator "
               "completed, and failed cases are left out of its means. `x best peer` divides, per "
               "case, by the fastest (or smallest) of glibc, jemalloc, tcmalloc and mimalloc in that "
               "case (for the large-block cases, only those that return memory: see the tables "
               "below). Ratios are costs: **below 1 is better** (faster, or less memory) than the "
               "reference.\n"]
        header = ["allocator", "cases"]
        counted = {a: sum(1 for c in self.geo_cases if stats.median(self.runs, c.label, a, stats.cost) is not None)
                   for a in self.names}
        cols = []
        for label, value in (("time", stats.cost), ("peak RSS", stats.peak_rss)):
            for ref in self.refs:
                header.append(f"{label} vs {ref}")
                cols.append(self.geomeans(value, ref))
            header.append(f"{label} x best peer")
            cols.append(self.geomeans(value, lambda c, v=value: self.best_peer(c, v)))
        out.append(_table(header, [[a, f"{counted[a]}/{len(self.geo_cases)}"] + [_ratio(c[a]) for c in cols]
                                   for a in self.names]))
        return "\n".join(out)

    def chart_section(self):
        if not self.charts:
            return "## Charts\n\nNot drawn (gnuplot is not installed).\n"
        out = ["## Charts\n"]
        for title, path in self.charts:
            out.append(f"{title}:\n\n![{title}]({path})\n")
        return "\n".join(out)

    def time_tables(self):
        rows = [self._row(c, *self._score(c)) for c in self._timed()]
        out = ["## Time\n",
               "Median wall time of the whole process, or median throughput for fixed-time cases "
               "(Mops/s: one op = one malloc + one free). Best in bold.\n",
               _table(["case"] + self.names, rows)]
        out.append(self.instr_table())
        for ref in self.refs:
            out += [f"### Time ratio vs {ref}\n",
                    "Throughput cases use the inverse ratio, so below 1 is better everywhere.\n",
                    _table(["case"] + self.names, self._ratio_rows(stats.cost, ref, self._timed()))]
        out.append(self._best_peer_table(stats.cost, "Time", "time (highest throughput)", self._timed()))
        return "\n".join(out)

    def instr_table(self):
        head = "### Instructions per op (callgrind)\n\n"
        if self.instr is None:
            return head + "Not measured (valgrind not installed or `--no-callgrind`).\n"
        if not self.instr:
            return head + "No case run declares `instr=` in `cases.txt`.\n"
        rows = []
        for c in self.cases:
            per = self.instr.get(c.label)
            if per is None:
                continue
            known = [v for v in per.values() if v is not None]
            top = min(known) if len(known) > 1 else None
            cells = ["fail" if per.get(a) is None else (f"**{per[a]:.0f}**" if per[a] == top else f"{per[a]:.0f}")
                     for a in self.names]
            rows.append([f"{c.label} @{c.instr_scale:g}"] + cells)
        return (head + "Instructions (user space, all threads, the workload's own loop included) per op "
                "(one malloc + one free) of the whole program, counted by `valgrind --tool=callgrind` "
                "at the scale shown and at twice it: (instructions(2s) - instructions(s)) / "
                "(ops(2s) - ops(s)), so start-up and set-up cancel. Only the cases with `instr=` in "
                "`cases.txt`; `perf stat` has no hardware counters on this VM. Deterministic, unlike "
                "the times, and blind to cache misses, contention, system calls and page faults. "
                "Fewest in bold.\n\n" + _table(["case @scale"] + self.names, rows))

    def rss_tables(self):
        mib = lambda v: _num(v / 1024)
        out = ["## Peak RSS\n",
               "Median peak resident set size in MiB (ru_maxrss of the process tree). Best in bold.\n",
               _table(["case"] + self.names, [self._row(c, stats.peak_rss, mib) for c in self.cases])]
        for ref in self.refs:
            out += [f"### Peak RSS ratio vs {ref}\n",
                    _table(["case"] + self.names, self._ratio_rows(stats.peak_rss, ref))]
        out.append(self._best_peer_table(stats.peak_rss, "Peak RSS", "peak RSS"))
        out.append(self.above_empty_table())
        end = [c for c in self.cases if any(
            "rss_end_kb" in r.values for a in self.names for r in stats.ok_runs(self.runs, c.label, a))]
        if end:
            rows = [self._row(c, stats.key("rss_end_kb"), mib) for c in end]
            out += ["### RSS at the end\n",
                    "Median RSS in MiB that the workload read from /proc/self/statm when it was done "
                    "(after freeing its blocks; for larson, with the table still full).\n",
                    _table(["case"] + self.names, rows)]
        return "\n".join(out)

    def above_empty_table(self):
        empty = [c for c in self.cases if c.name == "empty"]
        if not empty:
            return ""
        floor = {a: stats.median(self.runs, empty[0].label, a, stats.peak_rss) for a in self.names}
        def above(c, a):
            v = stats.median(self.runs, c.label, a, stats.peak_rss)
            return "n/a" if v is None or floor[a] is None else _num(max(v - floor[a], 0) / 1024)
        rows = [[c.label] + [above(c, a) for a in self.names] for c in self.cases if c.name != "empty"]
        return ("### Peak RSS above an empty program\n\n"
                "Median peak RSS in MiB less that of the `empty` case (one malloc, then exit) under "
                "the same allocator: " + ", ".join(f"{a} {_num(floor[a] / 1024) if floor[a] else 'n/a'}"
                                                  for a in self.names)
                + " MiB. What the workload itself costs, without each allocator's start-up.\n\n"
                + _table(["case"] + self.names, rows))

    def memory_table(self):
        mem = [c for c in self.cases if c.memory and any(
            "rss_base_kb" in r.values for a in self.names for r in stats.ok_runs(self.runs, c.label, a))]
        if not mem:
            return ""
        keys = [("rss_peak_kb", "peak"), ("rss_after_free_kb", "right after the frees"),
                ("rss_idle_kb", "after 2 s idle"), ("rss_after_trim_kb", "after malloc_trim(0)")]
        out = ["## Memory the way users see it\n",
               "RSS in MiB above the workload's own RSS before it started (`rss_base_kb`), read from "
               "/proc/self/statm by the workload: at its peak, right after it freed its blocks, after "
               "2 s without any allocator call (what the allocator gives back on its own, with no "
               "thread left to do it), and after `malloc_trim(0)` from a thread that does not own the "
               "blocks. `frag_mt`: THREADS threads each allocating blocks of drifting sizes, 1 in 8 "
               "long-lived (still live: `live`); `prodcons_idle`: one producer allocates 200k x "
               "1 KiB (scaled), the main thread frees them all while the producer idles. Medians "
               "over rounds; best in bold.\n"]
        for c in mem:
            base = stats.key("rss_base_kb")
            def rel(k, c=c):
                def get(run):
                    v, b = stats.key(k)(run), base(run)
                    return None if v is None or b is None else max(v - b, 0) / 1024
                return get
            cols = keys + ([("live_kb", "live")] if any(
                "live_kb" in r.values for a in self.names for r in stats.ok_runs(self.runs, c.label, a)) else [])
            rows = []
            for k, title in cols:
                value = stats.key(k, 1 / 1024) if k == "live_kb" else rel(k)
                rows.append([title] + self._row(c, value, _num)[1:])
            out += [f"### {c.label}\n", _table(["RSS above the start"] + self.names, rows)]
        return "\n".join(out)

    def frag_table(self):
        frag = [c for c in self.cases if c.name == "frag"]
        if not frag:
            return ""
        keys = [("live_kb", "live data"), ("rss_peak_kb", "peak"), ("rss_after_free_kb", "after free"),
                ("rss_after_trim_kb", "after malloc_trim(0)")]
        rows = [[a] + [self._cell(frag[0], a, stats.key(k, 1 / 1024), _num) for k, _ in keys]
                for a in self.names]
        trim = ", ".join(f"{a.name} → `{os.path.basename(a.trim_provider)}`"
                         for a in self.allocs if a.trim_provider)
        return ("## Fragmentation\n\nMedian RSS in MiB of the `frag` workload at its peak, after all "
                "short-lived blocks are freed, and after `malloc_trim(0)`, next to the bytes still "
                f"live. `malloc_trim` resolves to: {trim or 'n/a'}.\n\n"
                + _table(["allocator"] + [t for _, t in keys], rows))

    def sweep_table(self):
        sweep = [c for c in self.cases if c.name == "size_sweep"]
        if not sweep:
            return ""
        rows = [[f"{size} B"] + [self._cell(sweep[0], a, stats.key(f"ns_{size}"), _num) for a in self.names]
                for size in SWEEP_SIZES]
        return ("## Size sweep\n\nMedian nanoseconds per malloc/free pair of one fixed size "
                "(same thread, block touched once).\n\n" + _table(["size"] + self.names, rows))

    def fastpath_table(self):
        out = ["## Fast path (callgrind)\n"]
        fp = self.fastpath
        if fp is None:
            return out[0] + "\nNot measured (valgrind not installed or `--no-callgrind`).\n"
        h = fp["harness"]
        modes = [m for m in callgrind.MODES if m in h]
        out.append("Instructions per malloc/free pair, from callgrind totals of "
                   f"`bench/out/fastpath` at {fp['n1']} and {fp['n2']} pairs (difference / "
                   "difference, so start-up cancels), minus the harness loop measured the same way "
                   "with empty functions (" + ", ".join(f"{m} {_num(h.get(m))}" for m in modes)
                   + " instructions per pair). Modes (`bench/tools/fastpath.c`): `same`, sizes "
                   "cycling over 16..128 B; `one`, 64 B only; `mixed1k`, 16 sizes from 16 B to "
                   "1 KiB; in these a few blocks of every size stay live, so no page empties. "
                   "`empty`: 2000 B with no other block of its size class live, so every free "
                   "empties a page: the page-turnover path, not the fast path. `cross`: blocks "
                   "are allocated on one thread and freed on another, 256 at a time. Callgrind, "
                   "unlike memcheck, massif, helgrind, drd and dhat, does not replace malloc, so "
                   "no `--soname-synonyms` is needed: the last column is the object that "
                   "`malloc` resolved to under the same valgrind command.\n")
        per = {a: fp["allocators"].get(a, {}) for a in self.names}
        rows = [[a] + [_num(per[a].get(m)) for m in modes] + [f"`{per[a].get('provider') or '?'}`"]
                for a in self.names]
        out.append(_table(["allocator"] + [f"`{m}`: {callgrind.TITLES[m]}" for m in modes]
                          + ["malloc under valgrind"], rows))
        return "\n".join(out)

    def environment(self):
        rows = [[a.name, f"`{a.lib}`" if a.lib else "(none: system malloc)", a.version, f"`{a.provider}`"]
                for a in self.allocs]
        return ("## Allocators\n\n" + _table(["allocator", "LD_PRELOAD", "version", "malloc resolved to"], rows)
                + "\n## Machine\n\n" + _table(["", ""], [[k, v] for k, v in self.machine]))

    def method(self):
        failures = [f"- {c.label} / {a} / round {rnd}: {r.error}"
                    for c in self.cases for a in self.names
                    for rnd, r in sorted(self.runs.get(c.label, {}).get(a, {}).items()) if not r.ok]
        text = METHOD + ("\n### Failed runs\n\n" + "\n".join(failures) + "\n" if failures else "")
        return text

    def render(self):
        parts = [self.header(), self.summary(), self.chart_section(), self.time_tables(), self.rss_tables(),
                 self.memory_table(), self.frag_table(), self.sweep_table(), self.fastpath_table(), self.environment(), self.method()]
        return "\n".join(p for p in parts if p)


METHOD = """\
## Method

- Allocators: glibc's malloc (no preload) and each other allocator through `LD_PRELOAD`; before
  measuring, `bench/out/which_malloc` checks that `malloc` really resolves to the preloaded library.
- Cases are listed in `bench/cases.txt`; each program runs as `PROGRAM THREADS SCALE` and prints
  one `result key=value ...` line. `tN` is the thread count (for `prodcons`, N producer/consumer
  pairs, so 2N threads, and above 4 pairs the 4-pair total of blocks split among them; for
  `thread_churn`, N threads alive at a time).
- Rounds: every round runs every case once per allocator, allocators interleaved in a fixed
  order (A B C D E, A B C D E, ...); one untimed warm-up run of each case comes first. The
  tables give medians over rounds; a ratio is computed within each round and the median of
  those ratios is reported, so slow drifts of the machine cancel.
- Score: wall time of the whole process, measured by `bench/out/rusage_run` (a static wrapper
  that fork/execs the case and reports wall time and `ru_maxrss` from `wait4`); for fixed-time
  cases (`larson`) the score is the reported ops/sec. Peak RSS is `ru_maxrss`, the largest
  resident set of the process and the children it waited for (for the real programs, e.g.
  `cc1`). The wrapper's own RSS (well under 1 MiB) is a floor on every peak RSS figure.
- Real programs: `python` is Debian's `/usr/bin/python3` running `bench/workloads/py_alloc.py`
  with `PYTHONMALLOC=malloc` (so objects come from the allocator under test, not pymalloc);
  `gcc` is `gcc -O2 -c` on a generated C file (`gen_big_c.py`); `sqlite` is the `sqlite3`
  shell running `sqlite_load.sql` on an in-memory database.
- Geometric means: over the frozen case list named in the summary (`bench/geomean.txt`), not
  over whatever was run, so reports naming the same list compare like with like. `x best peer`
  is, per case, the same-round ratio to the peer with the best median in that case; `large` and
  `large_set` pick only among glibc, jemalloc and mimalloc, which return freed large blocks to
  the system (tcmalloc keeps them mapped: faster, at several times the RSS).
- Fast path and instructions per op: see the callgrind sections; instruction counts are
  deterministic, unlike the timings above, which come from a small shared VM and carry a few
  percent of noise (more for the multi-threaded cases, with 4 to 32 threads on 2 CPUs).

### Not measured

- Cycles or cache misses per operation: `perf stat -e instructions` reports `<not supported>`
  on this VM (no hardware counters), so instructions come from callgrind instead.
- Scalability beyond the 2 CPUs of this machine: the 4-thread cases oversubscribe it, and 8
  and 16 threads (`prodcons`: pairs, so 16 and 32 threads) only check robustness.
- Allocator tuning: every allocator runs with its default settings.
"""


def render(*args):
    return Report(*args).render()
