"""py_alloc.py: allocation-heavy Python program (dicts, lists, tuples, strings, objects, JSON).

Run as `py_alloc.py THREADS SCALE` (THREADS is ignored: the GIL serialises the work anyway).
real_python.sh runs it with PYTHONMALLOC=malloc so every object goes through malloc.
"""
import json
import random
import sys


class Node:
    __slots__ = ("key", "value", "children")

    def __init__(self, key, value):
        self.key = key
        self.value = value
        self.children = []


def build_tree(rng, n):
    nodes = [Node(i, "v%d" % rng.randrange(1 << 30)) for i in range(n)]
    for i in range(1, n):
        nodes[rng.randrange(i)].children.append(nodes[i])
    return nodes[0]


def tree_size(node):
    size, stack = 0, [node]
    while stack:
        cur = stack.pop()
        size += len(cur.value)
        stack.extend(cur.children)
    return size


def records(rng, n):
    return [
        {"id": i, "name": "user-%06d" % rng.randrange(10**6), "tags": [rng.random() for _ in range(i % 7)],
         "pos": (rng.randrange(1000), rng.randrange(1000))}
        for i in range(n)
    ]


def main():
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    n = max(100, int(25000 * scale))
    rng = random.Random(42)
    total = 0
    for _ in range(3):
        recs = records(rng, n)
        text = json.dumps(recs)
        back = json.loads(text)
        back.sort(key=lambda r: (r["name"], r["id"]))
        index = {r["name"] + str(r["id"]): r for r in back}
        words = " ".join(r["name"] for r in recs).split()
        counts = {}
        for w in words:
            counts[w[:7]] = counts.get(w[:7], 0) + 1
        total += len(text) + len(index) + len(counts) + tree_size(build_tree(rng, n))
        del recs, back, index, words, counts, text
    print("result workload=python n=%d check=%d" % (n, total % 1000))


if __name__ == "__main__":
    main()
