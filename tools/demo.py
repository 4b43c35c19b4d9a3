# demo.py: the README's main job. Real allocation-heavy work in Python (dicts, lists, strings,
# JSON, sorting, many threads' worth of objects), run under `mallard run --report`.
import json
import random
import threading

random.seed(42)

def build_index(n):
    index = {}
    for i in range(n):
        word = "".join(random.choice("abcdefghij") for _ in range(random.randint(3, 12)))
        index.setdefault(word, []).append(i)
    return index

def worker(results, k):
    rows = [{"id": i, "name": f"row-{k}-{i}", "tags": [str(t) for t in range(i % 7)]}
            for i in range(40000)]
    text = json.dumps(rows)
    back = json.loads(text)
    results[k] = (len(text), sum(len(r["tags"]) for r in back))

index = build_index(200000)
longest = max(index.items(), key=lambda kv: len(kv[1]))
results = {}
threads = [threading.Thread(target=worker, args=(results, k)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
words = sorted(index, key=lambda w: (-len(index[w]), w))[:5]
print("distinct words:", len(index), "most common:", longest[0], len(longest[1]))
print("json sizes:", [results[k][0] for k in sorted(results)])
print("top words:", words)
