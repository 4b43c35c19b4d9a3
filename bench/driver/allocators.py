"""allocators.py: find the allocators to compare (glibc, the Debian peers, Mallard) and check,
with bench/out/which_malloc, that preloading each one really replaces malloc."""
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

# (name, Debian package, library file name); glibc is the system malloc, used without preload.
PEERS = [
    ("glibc", "libc6", None),
    ("jemalloc", "libjemalloc2", "libjemalloc.so.2"),
    ("tcmalloc", "libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
    ("mimalloc", "libmimalloc2.0", "libmimalloc.so.2"),
]
MALLARD_LIB = "build/release/libmallard.so"


@dataclass
class Allocator:
    name: str
    lib: str | None  # path to LD_PRELOAD, None for glibc
    version: str
    provider: str = ""  # object that malloc resolved to, as reported by which_malloc
    trim_provider: str = ""  # same for malloc_trim

    def env(self, base=None):
        env = dict(os.environ if base is None else base)
        env.pop("LD_PRELOAD", None)
        if self.lib:
            env["LD_PRELOAD"] = self.lib
        return env


def _dpkg(args):
    r = subprocess.run(["dpkg-query", *args], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


def package_version(package):
    return _dpkg(["-W", "-f=${Version}", package]).strip() or "not installed"


def _package_lib(package, filename):
    for path in _dpkg(["-L", package]).splitlines():
        if os.path.basename(path) == filename and os.path.exists(path):
            return path
    return None


def _mallard_version(repo):
    r = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    rev = r.stdout.strip() if r.returncode == 0 else "no commit yet"
    return f"working tree ({rev})"


def resolve(which_malloc, alloc, wrapper=()):
    """{symbol: shared object} for malloc and malloc_trim under alloc (and wrapper)."""
    r = subprocess.run([*wrapper, str(which_malloc)], env=alloc.env(), capture_output=True, text=True)
    pairs = (tok.split("=", 1) for tok in r.stdout.split() if "=" in tok)
    return {sym: os.path.realpath(obj) if obj != "none" else obj for sym, obj in pairs}


def discover(repo, which_malloc, log=print):
    """Installed allocators whose preload takes effect, in report order."""
    found = []
    for name, package, filename in PEERS:
        lib = _package_lib(package, filename) if filename else None
        if filename and not lib:
            log(f"skip {name}: {filename} not found (apt-get install {package})")
            continue
        found.append(Allocator(name, lib, package_version(package)))
    mallard = os.environ.get("MALLARD_LIB") or str(repo / MALLARD_LIB)
    if os.path.exists(mallard):
        found.append(Allocator("mallard", os.path.realpath(mallard), _mallard_version(repo)))
    else:
        log(f"skip mallard: {mallard} does not exist yet "
            "(build it with: cmake --preset release && cmake --build --preset release)")
    # MALLARD_EXTRA_LIBS="before=/tmp/old.so,variant=/tmp/v.so": other Mallard builds measured in
    # the same interleaved rounds (as mallard-before, ...), for before/after figures of a change.
    for item in filter(None, os.environ.get("MALLARD_EXTRA_LIBS", "").split(",")):
        name, _, path = item.partition("=")
        if not path or not os.path.exists(path):
            log(f"skip mallard-{name}: {path or '(no path)'} does not exist")
            continue
        found.append(Allocator(f"mallard-{name}", os.path.realpath(path), "extra build"))
    usable = []
    for a in found:
        where = resolve(which_malloc, a)
        a.provider, a.trim_provider = where.get("malloc", ""), where.get("malloc_trim", "")
        if a.lib and a.provider != os.path.realpath(a.lib):
            log(f"skip {a.name}: preloading {a.lib} did not replace malloc (got {a.provider or '?'})")
            continue
        usable.append(a)
    return usable
