"""cases.py: read bench/cases.txt into one Case per workload and thread count."""
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    name: str
    program: Path
    threads: int
    threaded: bool  # listed with more than one thread count

    @property
    def label(self):
        return f"{self.name} t{self.threads}" if self.threaded else self.name

    def command(self, scale):
        return [str(self.program), str(self.threads), f"{scale:g}"]


def load(bench_dir, only=None):
    cases = []
    for line in (bench_dir / "cases.txt").read_text().splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        name, program, threads = fields[0], fields[1], fields[2].split(",")
        if only and name not in only:
            continue
        for t in threads:
            cases.append(Case(name, bench_dir / program, int(t), len(threads) > 1))
    return cases
