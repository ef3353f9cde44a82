#!/usr/bin/env python3
"""An independent reader of a local Loop Backup repository, written from docs/FORMAT.md alone.

It opens a key slot, the config, the index and every snapshot, walks each snapshot's trees,
and prints one line per entry with the BLAKE3 of each file's content, so its output can be
compared with the reference repository's manifest:

    pip install blake3 argon2-cffi cryptography zstandard
    python3 read_repo.py crates/loop-cli/tests/data/reference-repo-v1
"""

import json
import os
import struct
import sys

import blake3
import zstandard
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SUBKEY = "loop-backup 2026-11-30 object subkey v1"
RAW_KEK = "loop-backup 2026-11-30 raw key slot kek v1"


def nonce(n):
    return bytes(4) + n.to_bytes(8, "big")


FINAL = nonce(2**64 - 1)


def subkey(master, salt):
    return blake3.blake3(master + salt, derive_key_context=SUBKEY).digest()


def check_header(data, magic):
    if data[:4] != magic or data[4] != 1 or data[5:8] != bytes(3):
        raise ValueError(f"not a version 1 {magic} object")


def open_slot(data, passphrase):
    check_header(data, b"LPKY")
    kind = data[8]
    m_kib, t, p = struct.unpack_from("<III", data, 9)
    salt = data[21:53]
    (meta_len,) = struct.unpack_from("<I", data, 53)
    end = 57 + meta_len
    assert len(data) == end + 48, "slot length"
    if kind == 1:
        kek = hash_secret_raw(passphrase, salt, t, m_kib, p, 32, Type.ID, version=0x13)
    else:
        kek = blake3.blake3(passphrase + salt, derive_key_context=RAW_KEK).digest()
    return AESGCM(kek).decrypt(FINAL, data[end:], data[:end])


def open_sealed(data, master, magic):
    check_header(data, magic)
    body = AESGCM(subkey(master, data[8:40])).decrypt(FINAL, data[40:], data[:8])
    if body[0] == 0:
        return body[1:]
    assert body[0] == 1, "codec"
    return zstandard.ZstdDecompressor().decompressobj().decompress(body[1:])


def names(repo, kind):
    d = os.path.join(repo, kind)
    return sorted(n for n in os.listdir(d) if len(n) == 64) if os.path.isdir(d) else []


def main():
    base = sys.argv[1]
    repo = os.path.join(base, "repo")
    with open(os.path.join(base, "passphrase"), "rb") as f:
        passphrase = f.read().split(b"\n")[0].removesuffix(b"\r")

    master = None
    for n in names(repo, "keys"):
        with open(os.path.join(repo, "keys", n), "rb") as f:
            try:
                master = open_slot(f.read(), passphrase)
                break
            except InvalidTag:
                continue
    assert master, "no key slot opens"
    with open(os.path.join(repo, "config"), "rb") as f:
        config = json.loads(open_sealed(f.read(), master, b"LPCF"))
    id_key = bytes.fromhex(config["id_key"])

    index = {}
    for n in names(repo, "index"):
        with open(os.path.join(repo, "index", n), "rb") as f:
            payload = open_sealed(f.read(), master, b"LPIX")
        (packs,), pos = struct.unpack_from("<I", payload), 4
        for _ in range(packs):
            pack_id = payload[pos:pos + 32]
            (count,) = struct.unpack_from("<I", payload, pos + 32)
            pos += 36
            for _ in range(count):
                kind = payload[pos]
                blob_id = payload[pos + 1:pos + 33]
                offset, length, raw_len = struct.unpack_from("<III", payload, pos + 33)
                index[blob_id] = (pack_id, kind, offset, length, raw_len)
                pos += 45
        assert pos == len(payload)

    def blob(blob_id):
        pack_id, kind, offset, length, raw_len = index[blob_id]
        h = pack_id.hex()
        with open(os.path.join(repo, "data", h[:2], h), "rb") as f:
            f.seek(offset)
            stored = f.read(length)
        plain = AESGCM(subkey(master, pack_id)).decrypt(nonce(offset), stored, bytes([kind]) + blob_id)
        if len(plain) < raw_len:
            plain = zstandard.ZstdDecompressor().decompress(plain, max_output_size=raw_len)
        assert len(plain) == raw_len
        assert blake3.blake3(plain, key=id_key).digest() == blob_id, "blob ID"
        return plain

    def name_bytes(v):
        return bytes.fromhex(v["hex"]) if isinstance(v, dict) else v.encode()

    def nodes(tree_id):
        tree = json.loads(blob(tree_id))
        if list(tree) == ["parts"]:
            # A large tree: its JSON cut into parts, stored as blobs of their own.
            tree = json.loads(b"".join(blob(bytes.fromhex(p)) for p in tree["parts"]))
        return tree["nodes"]

    def walk(tree_id, prefix):
        for node in nodes(tree_id):
            path = prefix + name_bytes(node["name"])
            line = {"path": path.hex(), "type": node["type"], "mode": node["mode"],
                    "mtime_ns": node["mtime_ns"]}
            if node["type"] == "file":
                content = b"".join(blob(bytes.fromhex(c)) for c in node.get("content", []))
                line["size"] = node.get("size", 0)
                assert len(content) == line["size"]
                line["blake3"] = blake3.blake3(content).hexdigest()
            if node["type"] == "symlink":
                line["target"] = name_bytes(node["link_target"]).hex()
            print(json.dumps(line))
            if node["type"] == "dir":
                walk(bytes.fromhex(node["subtree"]), path + b"/")

    for n in names(repo, "snapshots"):
        with open(os.path.join(repo, "snapshots", n), "rb") as f:
            snap = json.loads(open_sealed(f.read(), master, b"LPSN"))
        print(json.dumps({"snapshot": n, "time": snap["time"], "paths": snap["paths"],
                          "hostname": snap["hostname"], "tags": snap.get("tags", []),
                          "parent": snap.get("parent")}))
        walk(bytes.fromhex(snap["tree"]), b"")


if __name__ == "__main__":
    main()
