# workload.py: deterministic Python workload for real_programs.sh (run with and without the
# allocator preloaded; stdout must be identical). Exercises dicts, lists, strings, sets, JSON round
# trips, sorting, a few MiB of live objects, object churn with gc, and threads.
import gc
import hashlib
import json
import random
import sys
import threading
from collections import Counter, defaultdict


def digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


rng = random.Random(12345)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 12)))
         for _ in range(20000)]

# dicts and strings
index = defaultdict(list)
for i, w in enumerate(words):
    index[w[:2]].append(i)
print("prefixes", len(index), "longest", max(len(v) for v in index.values()))
counts = Counter("".join(words))
print("letters", "".join(c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))

# a few MiB of live objects: records with nested lists and dicts
records = []
for i in range(60000):
    records.append({"id": i, "name": words[i % len(words)] * (1 + i % 5),
                    "tags": [words[(i * 7 + k) % len(words)] for k in range(i % 6)],
                    "score": (i * 2654435761) % 1000003 / 7.0,
                    "meta": {"even": i % 2 == 0, "bucket": i % 97}})
print("records", len(records), digest(records[:1000]))

# JSON round trips
text = json.dumps(records)
print("json bytes", len(text))
back = json.loads(text)
assert back == records
for _ in range(2):
    text = json.dumps(json.loads(text), sort_keys=True)
print("json round trips", len(text), hashlib.sha256(text.encode()).hexdigest()[:16])

# sorting
by_score = sorted(records, key=lambda r: (r["score"], r["id"]))
print("lowest", [r["id"] for r in by_score[:5]], "highest", [r["id"] for r in by_score[-5:]])
print("sorted words", digest(sorted(set(words), key=lambda w: (len(w), w))[:500]))

# churn: build and drop many temporaries, with reference cycles for the gc
total = 0
for rnd in range(10):
    tmp = [[j] * (j % 50) for j in range(3000)]
    cyc = [{} for _ in range(2000)]
    for a, b in zip(cyc, cyc[1:] + cyc[:1]):
        a["next"] = b
    total += sum(len(t) for t in tmp) + len(cyc)
    del tmp, cyc
    if rnd % 3 == 0:
        gc.collect()
print("churn", total)

# string building and bytes
s = "".join(f"{i:06d}:{words[i % 997]};" for i in range(100000))
print("string", len(s), s.count("a"), hashlib.md5(s.encode()).hexdigest())
blob = bytearray()
for i in range(20000):
    blob += bytes([i % 256]) * (i % 64)
print("bytes", len(blob), hashlib.sha1(blob).hexdigest()[:16])

# threads: each builds its own dict; results joined in a fixed order
results = [None] * 8


def work(k):
    d = {f"{k}-{i}": list(range(i % 40)) for i in range(8000 + 500 * k)}
    results[k] = sum(len(v) for v in d.values()) + len(json.dumps(d))


threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads", results)

del records, back, by_score
gc.collect()
print("done")
sys.exit(0)
