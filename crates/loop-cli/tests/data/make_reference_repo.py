#!/usr/bin/env python3
"""How reference-repo-v1/ was made. A record, never run by the tests.

Running it again makes a different repository (fresh keys, salts and names), so it must not
replace the committed one: that repository is the fixed sample every later version of `loop`
has to read. Usage (as root, for the fixed host name and source path):

    unshare --uts python3 make_reference_repo.py path/to/loop OUT_DIR

It writes OUT_DIR/repo (the repository), OUT_DIR/passphrase and OUT_DIR/manifest.json (what
each snapshot holds: path, type, mode, size, BLAKE3 of the content, link target, mtime).
"""

import json
import os
import shutil
import socket
import stat
import subprocess
import sys

import blake3

PASSPHRASE = "reference repository v1"
SOURCE = "/srv/loop-reference/docs"


def words(n: int, seed: int) -> bytes:
    """Text that compresses like prose but has content-defined cut points."""
    vocab = [b"loop", b"backup", b"vault", b"snapshot", b"pack", b"index", b"tree", b"chunk",
             b"restore", b"verify", b"key", b"slot", b"tenant", b"\n", b"the", b"of"]
    out = bytearray()
    x = seed | 1
    while len(out) < n:
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        out += vocab[(x >> 59) & 15] + b" "
        if (x >> 40) & 0xFF == 0:
            out += str(x).encode()
    return bytes(out[:n])


def write(rel: str | bytes, data: bytes, mode: int = 0o644, mtime: int | None = None):
    path = os.path.join(SOURCE.encode(), rel if isinstance(rel, bytes) else rel.encode())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))


def set_dir_times():
    """Fixed mtimes for every directory, deepest first, so the manifest is reproducible."""
    for root, dirs, _files in os.walk(SOURCE.encode(), topdown=False):
        os.utime(root, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))


def manifest() -> list:
    """Everything restore must reproduce, for the tree as it is now."""
    base = os.path.dirname(SOURCE.encode())
    st = os.lstat(SOURCE)
    entries = [{"path": b"docs".hex(), "type": "dir", "mode": stat.S_IMODE(st.st_mode),
                "mtime_ns": st.st_mtime_ns}]
    inodes = {}
    for root, dirs, files in os.walk(SOURCE.encode()):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, base)
            e = {"path": rel.hex(), "mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns}
            if stat.S_ISREG(st.st_mode):
                e["type"] = "file"
                e["size"] = st.st_size
                with open(path, "rb") as f:
                    e["blake3"] = blake3.blake3(f.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel.hex())
            elif stat.S_ISDIR(st.st_mode):
                e["type"] = "dir"
            elif stat.S_ISLNK(st.st_mode):
                e["type"] = "symlink"
                e["target"] = os.readlink(path).hex()
                del e["mode"]
            elif stat.S_ISFIFO(st.st_mode):
                e["type"] = "fifo"
            entries.append(e)
    for group, paths in enumerate(inodes.values()):
        for e in entries:
            if e["path"] in paths:
                e["hardlink_group"] = group
    entries.sort(key=lambda e: bytes.fromhex(e["path"]))
    return entries


def main():
    loop, out = sys.argv[1], sys.argv[2]
    socket.sethostname("reference-host")
    repo = os.path.join(out, "repo")
    env = dict(os.environ, LOOP_REPOSITORY=repo, LOOP_PASSWORD=PASSPHRASE, USER="reference")
    env.pop("LOOP_PASSWORD_FILE", None)

    def run(*args, stdin=None):
        r = subprocess.run([loop, *args, "--json"], env=env, input=stdin, capture_output=True, check=True)
        return json.loads(r.stdout.decode().strip().splitlines()[-1]) if r.stdout.strip() else None

    shutil.rmtree(os.path.dirname(SOURCE), ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    run("init")

    # Snapshot 1: every kind of entry the engine stores, with fixed times and modes.
    t = 1_700_000_000_000_000_000
    write("empty", b"", mtime=t)
    write("hello.txt", b"hello, loop\n", mtime=t + 1)
    write("big.txt", words(2_600_000, 1), mtime=t + 2)
    write("src/main.rs", b"fn main() {\n    println!(\"loop\");\n}\n", mtime=t + 3)
    write("src/deep/a/b/c/d.txt", words(5000, 3), 0o600, mtime=t + 4)
    write(b"not-utf8-\xff\xfe.txt", b"bytes in a name\n", mtime=t + 5)
    write("caf\u00e9 \u2615 new\nline.txt", b"unicode and a newline in a name\n", mtime=t + 6)
    write("tool.sh", b"#!/bin/sh\necho loop\n", 0o755, mtime=t + 7)
    os.link(os.path.join(SOURCE, "hello.txt"), os.path.join(SOURCE, "hello-again.txt"))
    os.makedirs(os.path.join(SOURCE, "empty-dir"))
    os.symlink("src/main.rs", os.path.join(SOURCE, "link-rel"))
    os.symlink("/nonexistent/target", os.path.join(SOURCE, "link-dangling"))
    for link in ("link-rel", "link-dangling"):
        os.utime(os.path.join(SOURCE, link), ns=(t + 8, t + 8), follow_symlinks=False)
    os.mkfifo(os.path.join(SOURCE, "fifo"), 0o640)
    os.chmod(os.path.join(SOURCE, "fifo"), 0o640)
    os.utime(os.path.join(SOURCE, "fifo"), ns=(t + 9, t + 9))
    set_dir_times()
    first_manifest = manifest()
    first = run("backup", SOURCE, "--tag", "first", "--time", "2026-12-01T12:00:00Z")

    # Snapshot 2: a change, an append that keeps most chunks, a removal, an addition. Its time
    # is later in UTC though its clock reads earlier, so `latest` must compare instants.
    write("hello.txt", b"hello again, loop\n", mtime=t + 100)
    with open(os.path.join(SOURCE, "big.txt"), "ab") as f:
        f.write(words(300_000, 2))
    os.utime(os.path.join(SOURCE, "big.txt"), ns=(t + 101, t + 101))
    os.remove(os.path.join(SOURCE, "tool.sh"))
    write("src/new.rs", b"// added in the second snapshot\n", mtime=t + 102)
    set_dir_times()
    second_manifest = manifest()
    second = run("backup", SOURCE, "--tag", "second", "--time", "2026-12-01T10:30:00-02:00")

    # Snapshot 3: standard input, a file node without inode or device.
    dump = words(20_000, 4)
    third = run("backup", "--stdin", "--stdin-filename", "dump.sql", "--tag", "stdin",
                "--time", "2026-12-02T08:00:00Z", stdin=dump)

    with open(os.path.join(out, "passphrase"), "w") as f:
        f.write(PASSPHRASE + "\n")
    snaps = [
        {"id": first["snapshot_id"], "time": "2026-12-01T12:00:00Z", "paths": [SOURCE],
         "tags": ["first"], "entries": first_manifest},
        {"id": second["snapshot_id"], "time": "2026-12-01T10:30:00-02:00", "paths": [SOURCE],
         "tags": ["second"], "entries": second_manifest},
        {"id": third["snapshot_id"], "time": "2026-12-02T08:00:00Z", "paths": ["/dump.sql"],
         "tags": ["stdin"], "entries": [{"path": b"dump.sql".hex(), "type": "file", "mode": 0o600,
                                         "size": len(dump), "blake3": blake3.blake3(dump).hexdigest()}]},
    ]
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"hostname": "reference-host", "username": "reference", "snapshots": snaps}, f, indent=1)
        f.write("\n")
    shutil.rmtree(os.path.dirname(SOURCE))


if __name__ == "__main__":
    main()
