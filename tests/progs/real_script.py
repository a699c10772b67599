# real_script.py: an ordinary Python program for t1400-real-programs.sh. It builds dicts,
# lists, strings and a few objects, and prints a result that is the same on every run
# (no hash-randomised ordering, no addresses, no time).
import collections
import json


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y


def main():
    words = ["w%04d-%s" % (i, "abcdefgh"[i % 8] * (i % 13 + 1)) for i in range(5000)]
    index = {w: i for i, w in enumerate(words)}
    counts = collections.Counter(w[-1] for w in words)
    groups = collections.defaultdict(list)
    for w, i in index.items():
        groups[len(w)].append(i)
    points = [Point(i, i * i % 97) for i in range(3000)]
    text = " ".join(words[:500]).upper()
    doc = json.dumps({"n": len(words), "groups": {str(k): sum(v) for k, v in sorted(groups.items())}},
                     sort_keys=True)
    back = json.loads(doc)
    checksum = 0
    for p in points:
        checksum = (checksum * 31 + p.x + p.y) % 1000000007
    print("words", len(words), "distinct", len(index))
    print("counts", sorted(counts.items()))
    print("groups", back["groups"])
    print("text", len(text), text[:40])
    print("checksum", checksum)


if __name__ == "__main__":
    main()
