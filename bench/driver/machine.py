"""machine.py: describe the machine and toolchain the benchmark ran on."""
import os
import platform
import re
import subprocess


def _first_line(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
        return (r.stdout or r.stderr).splitlines()[0].strip()
    except (OSError, IndexError):
        return "not available"


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            return m.group(1).strip() if m else "unknown"
    except OSError:
        return "unknown"


def _memory():
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        return f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def describe():
    """List of (item, value) pairs."""
    return [
        ("CPUs (nproc)", str(len(os.sched_getaffinity(0)))),
        ("CPU model", _cpu_model()),
        ("Memory", _memory()),
        ("Kernel", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("OS", platform.freedesktop_os_release().get("PRETTY_NAME", "unknown")),
        ("glibc", os.confstr("CS_GNU_LIBC_VERSION")),
        ("Compiler", _first_line(["cc", "--version"])),
        ("valgrind", _first_line(["valgrind", "--version"])),
        ("python3 (real-program workload)", _first_line(["/usr/bin/python3", "--version"])),
        ("sqlite3", " ".join(_first_line(["sqlite3", "--version"]).split()[:2])),
    ]
