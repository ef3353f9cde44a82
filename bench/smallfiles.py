#!/usr/bin/env python3
"""Writes the many-small-files corpus: deterministic, the same bytes on every machine.

    bench/smallfiles.py DIR [--files 1000000] [--dirs 10000] [--seed 1]

DIR gets `--dirs` directories (d00000/ ... two levels deep, 100 per parent) holding
`--files` files in all, each 0-4 KiB. Half of the files are random bytes and half are
text-like lines (as source trees and mail stores are), so compression and deduplication
see both. The same arguments always give the same tree. Then:

    bench/compare.sh DIR      # loop, restic and borg on it, in the same run
"""

import argparse
import os
import random


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--files", type=int, default=1_000_000)
    p.add_argument("--dirs", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    words = [rng.randbytes(rng.randint(2, 9)).hex().encode() for _ in range(4096)]
    per_dir = a.files // a.dirs
    extra = a.files % a.dirs
    for d in range(a.dirs):
        path = os.path.join(a.dir, f"p{d // 100:03d}", f"d{d:05d}")
        os.makedirs(path, exist_ok=True)
        for f in range(per_dir + (1 if d < extra else 0)):
            size = rng.randint(0, 4096)
            if f % 2:
                data = rng.randbytes(size)
            else:
                out = bytearray()
                while len(out) < size:
                    out += b" ".join(rng.choices(words, k=8)) + b"\n"
                data = bytes(out[:size])
            with open(os.path.join(path, f"f{f:04d}"), "wb") as fh:
                fh.write(data)


if __name__ == "__main__":
    main()
