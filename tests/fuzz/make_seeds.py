#!/usr/bin/env python3
"""make_seeds.py: writes the seed corpus of alloc_fuzzer (tests/fuzz/corpus/) in its input format
(see alloc_fuzzer.cpp and docs/robustness.md). Each seed is a readable scenario; libFuzzer mutates
from there. Run from anywhere: python3 tests/fuzz/make_seeds.py"""
import os
import random
import struct

OPS = dict(malloc=0, calloc=3, realloc=4, reallocarray=5, aligned_alloc=6, posix_memalign=7,
           memalign=8, valloc=9, free=10, usable=13, trim=14, option=15, check=16,
           on_helper=17, helper_exit=18, helper_burst=19)


class Seed:
    """Emits operations; tracks how many blocks are live, because picking a block reads two
    bytes only when some block is live."""

    def __init__(self):
        self.out = bytearray()
        self.live = 0

    def size(self, kind, value=0):
        if kind == "tiny":
            self.out += bytes([0x00, value % 65])
        elif kind == "small":
            self.out += bytes([0x20]) + struct.pack("<H", value % 1025)
        elif kind == "medium":
            self.out += bytes([0x60]) + struct.pack("<H", value % 65536)
        elif kind == "boundary":  # class boundary 2^k + j*2^(k-2) + d - 1
            k, j, d = value
            self.out += bytes([0x80, k - 7, j, d])
        elif kind == "large":
            self.out += bytes([0xa0]) + struct.pack("<I", value)
        elif kind == "huge":
            self.out += bytes([0xc0]) + struct.pack("<I", value)
        elif kind == "extreme":
            self.out += bytes([0xe0 | (value % 8)])

    def pick(self, index):
        if self.live:
            self.out += struct.pack("<H", index)

    def op(self, name, *args, allocates=True):
        self.out.append(OPS[name])
        if name in ("malloc", "valloc"):
            if name == "valloc":
                self.out.append(args[2] if len(args) > 2 else 0)
            self.size(*args[:2])
        elif name == "calloc":
            self.out.append(args[0])
            self.size(*args[1:3])
        elif name in ("aligned_alloc", "posix_memalign", "memalign"):
            self.out.append(args[0])  # index into the alignment table
            self.size(*args[1:3])
        elif name in ("realloc", "reallocarray"):
            self.out.append(1)  # not NULL
            self.pick(args[0])
            if name == "reallocarray":
                self.out.append(args[3])
            self.size(*args[1:3])
            allocates = False
        elif name in ("free", "usable"):
            self.pick(args[0])
            if name == "free" and self.live:
                self.live -= 1
            allocates = False
        elif name == "option":
            self.out += bytes(args)
            allocates = False
        else:
            allocates = False
        if allocates:
            self.live += 1

    def helper(self, name, *args):
        self.out.append(OPS["on_helper"])  # the next operation runs on the second thread
        self.op(name, *args)


def churn():
    s, r = Seed(), random.Random(1)
    for _ in range(150):
        if s.live < 40 or r.random() < 0.5:
            s.op("malloc", r.choice(["tiny", "small", "medium"]), r.randrange(70000))
        else:
            s.op("free", r.randrange(65536))
    return s


def realloc_ladder():
    s = Seed()
    s.op("malloc", "small", 24)
    for kind, v in [("small", 900), ("medium", 40000), ("large", 300000), ("huge", 3 << 20),
                    ("medium", 60000), ("small", 100), ("tiny", 1), ("large", 70000)]:
        s.op("realloc", 0, kind, v)
        s.op("usable", 0)
    s.op("reallocarray", 0, "small", 10, 7)
    s.op("reallocarray", 0, "tiny", 0, 3)  # realloc(p, 0): frees
    return s


def aligned_edges():
    s = Seed()
    for a in range(32):  # every entry of the alignment table, three calls each
        s.op("aligned_alloc", a, "small", 100)
        s.op("posix_memalign", a, "medium", 5000)
        s.op("memalign", a, "tiny", 0)
    s.op("valloc", "small", 10, 0)
    s.op("valloc", "tiny", 0, 1)  # pvalloc(0)
    s.op("check")
    for i in range(40):
        s.op("free", i)
    return s


def boundaries_and_extremes():
    s = Seed()
    for k in range(7, 17):
        for j in range(4):
            s.op("malloc", "boundary", (k, j, 2))
    for e in range(8):
        s.op("malloc", "extreme", e)
        s.op("calloc", 16, "extreme", e)
    s.op("calloc", 0, "extreme", 0)  # calloc(0, SIZE_MAX)
    s.op("trim")
    return s


def threads():
    s, r = Seed(), random.Random(2)
    for i in range(60):
        s.op("malloc", "small", r.randrange(1025))
        s.helper("malloc", "small", r.randrange(1025))
        if i % 3 == 0:
            s.helper("free", r.randrange(65536))  # a block of either thread
        if i % 10 == 9:
            s.out.append(OPS["helper_exit"])  # its pages are abandoned
    s.out += bytes([OPS["helper_burst"], 6])
    for _ in range(6):
        s.op("malloc", "medium", r.randrange(65536))
    for i in range(50):
        s.op("free", r.randrange(65536))
    return s


def options_and_big():
    s = Seed()
    s.op("option", 0, 1)  # decay_ms=0
    s.op("option", 3, 1)  # mmap_threshold=16k
    for v in (20000, 70000, 200000, 1 << 20):
        s.op("malloc", "large", v)
    s.op("option", 4, 1)  # mmap_max=0
    s.op("malloc", "huge", 5 << 20)
    s.op("option", 1, 1)  # purge=free
    for i in range(5):
        s.op("free", 0)
    s.op("trim")
    s.op("check")
    return s


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(here, exist_ok=True)
    for name, make in [("churn", churn), ("realloc_ladder", realloc_ladder),
                       ("aligned_edges", aligned_edges),
                       ("boundaries_and_extremes", boundaries_and_extremes),
                       ("threads", threads), ("options_and_big", options_and_big)]:
        with open(os.path.join(here, name), "wb") as f:
            f.write(make().out)


if __name__ == "__main__":
    main()
