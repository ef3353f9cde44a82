#!/usr/bin/env python3
"""What compressing small blobs together would save, on one core.

    bench/frames.py DIR        (needs `pip install zstandard`)

Reads every regular file under DIR, cuts files over 256 KiB into 1 MiB pieces (a stand-in
for content-defined chunks, which average 1 MiB), and compresses the blobs:

- one zstd frame per blob, as repository format 1 stores them;
- small blobs concatenated into shared frames of at most 64, 128 or 256 KiB (a blob of half
  the limit or more keeps a frame of its own);

at zstd levels 1 and 3. A blob whose frame is not smaller than its bytes counts as stored
raw, as the engine stores it. Prints the compressed size and the CPU seconds of the
compression alone (the files are read first).
"""

import os
import sys
import time

import zstandard

SMALL = 256 * 1024
PIECE = 1024 * 1024


def blobs_of(root: str) -> list[bytes]:
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(d, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            if len(data) <= SMALL:
                out.append(data)
            else:
                out.extend(data[i : i + PIECE] for i in range(0, len(data), PIECE))
    return out


def stored(c: zstandard.ZstdCompressor, data: bytes) -> int:
    return min(len(c.compress(data)), len(data))


def shared_frames(c: zstandard.ZstdCompressor, blobs: list[bytes], limit: int) -> int:
    total, frame, frame_len = 0, [], 0
    for b in blobs:
        if len(b) >= limit // 2:
            total += stored(c, b)
            continue
        if frame_len + len(b) > limit:
            total += stored(c, b"".join(frame))
            frame, frame_len = [], 0
        frame.append(b)
        frame_len += len(b)
    if frame:
        total += stored(c, b"".join(frame))
    return total


def main() -> None:
    blobs = blobs_of(sys.argv[1])
    raw = sum(len(b) for b in blobs)
    print(f"{len(blobs)} blobs, {raw / 2**20:.1f} MiB")
    print("| frames | level | MiB | CPU s |")
    print("|---|---|---|---|")
    for level in (1, 3):
        c = zstandard.ZstdCompressor(level=level)
        start = time.process_time()
        size = sum(stored(c, b) for b in blobs)
        print(f"| one per blob | {level} | {size / 2**20:.1f} | {time.process_time() - start:.2f} |")
        for limit in (64 << 10, 128 << 10, 256 << 10):
            start = time.process_time()
            size = shared_frames(c, blobs, limit)
            took = time.process_time() - start
            print(f"| shared, {limit >> 10} KiB | {level} | {size / 2**20:.1f} | {took:.2f} |")


if __name__ == "__main__":
    main()
