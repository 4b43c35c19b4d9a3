"""cases.py: read bench/cases.txt into one Case per workload and thread count, and the frozen
geometric-mean lists of bench/geomean.txt."""
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    name: str
    program: Path
    threads: int
    threaded: bool  # listed with more than one thread count
    instr_scale: float | None = None  # callgrind instructions per op at this scale (and twice it)
    peers: tuple | None = None  # the peers "x best peer" may pick from; None: every peer
    memory: bool = False  # a memory case (memory=1): RSS figures only, left out of the time tables

    @property
    def label(self):
        return f"{self.name} t{self.threads}" if self.threaded else self.name

    def command(self, scale):
        return [str(self.program), str(self.threads), f"{scale:g}"]


def _instr(value, threads):
    """instr=SCALE[@T,T..] -> the scale, or None when this thread count is not instrumented."""
    scale, _, only = value.partition("@")
    if only and str(threads) not in only.split(","):
        return None
    return float(scale)


def load(bench_dir, only=None):
    cases = []
    for number, line in enumerate((bench_dir / "cases.txt").read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        name, program, threads = fields[0], fields[1], fields[2].split(",")
        options = dict(f.split("=", 1) for f in fields[3:])
        unknown = set(options) - {"instr", "peers", "memory"}
        if unknown or not all(options.values()):
            raise SystemExit(f"cases.txt:{number}: bad option(s) {', '.join(fields[3:])}")
        if only and name not in only:
            continue
        peers = tuple(options["peers"].split(",")) if "peers" in options else None
        for t in threads:
            instr = _instr(options["instr"], t) if "instr" in options else None
            cases.append(Case(name, bench_dir / program, int(t), len(threads) > 1, instr, peers,
                              options.get("memory") == "1"))
    return cases


def geomean_lists(bench_dir):
    """{list name: [case label, ...]} from geomean.txt, in file order."""
    lists, current = {}, None
    for line in (bench_dir / "geomean.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = lists.setdefault(line[1:-1], [])
        elif current is not None:
            current.append(line)
    return lists
