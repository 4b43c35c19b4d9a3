"""measure.py: run one workload process under bench/out/rusage_run and collect its wall time,
peak RSS (ru_maxrss from wait4: the process and the children it waited for) and the key=value
pairs of its result line."""
import os
import signal
import subprocess
from dataclasses import dataclass, field


@dataclass
class Run:
    ok: bool
    wall_s: float = 0.0
    maxrss_kb: int = 0
    values: dict = field(default_factory=dict)  # key=value pairs of the result line
    error: str = ""
    timed_out: bool = False

    @property
    def throughput(self):
        """ops/sec for fixed-time workloads, else None."""
        v = self.values.get("ops_per_sec")
        return float(v) if v else None

    @property
    def cost(self):
        """Lower is better: 1/throughput where reported, otherwise wall seconds."""
        t = self.throughput
        return 1.0 / t if t else self.wall_s


def _pairs(text, prefix):
    lines = [l for l in text.splitlines() if l.startswith(prefix)]
    if not lines:
        return None
    return dict(tok.split("=", 1) for tok in lines[-1].split()[1:] if "=" in tok)


def _status(code):
    """rusage_run exits with 128+N when the program died of signal N."""
    if code > 128 and code - 128 in signal.valid_signals():
        return f"killed by {signal.Signals(code - 128).name}"
    return f"exit {code}"


def run(rusage_run, cmd, env, timeout_s=300):
    proc = subprocess.Popen([str(rusage_run), *cmd], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Run(False, error=f"timeout after {timeout_s:g} s", timed_out=True)
    usage = _pairs(stderr, "rusage ") or {}
    wall, rss = float(usage.get("wall_s", 0)), int(usage.get("maxrss_kb", 0))
    values = _pairs(stdout, "result ")
    tail = " ".join(l for l in stderr.splitlines() if not l.startswith("rusage "))[-300:]
    if proc.returncode != 0:
        return Run(False, wall, rss, error=f"{_status(proc.returncode)}: {tail}".rstrip(": "))
    if "cannot be preloaded" in stderr:
        return Run(False, wall, rss, error=tail)
    if values is None:
        return Run(False, wall, rss, error="no result line")
    return Run(True, wall, rss, values)
