#!/usr/bin/env python3
"""Known-answer vectors for the Loop Backup repository format, computed independently.

This script reimplements, from docs/FORMAT.md and the published algorithms, every codec the
engine uses: keyed BLAKE3 blob IDs, BLAKE3 derive_key subkeys, Argon2id key slots,
AES-256-GCM sealed objects and packs, index and tree encodings, and FastCDC 2020 cut points
with a seeded gear table. It shares no code with the engine. Its output is the Rust file
`expected.rs` next to it, which the engine's tests include; the tests never run Python.

    pip install blake3 argon2-cffi cryptography zstandard
    python3 make_vectors.py > expected.rs

Every input is fixed (no randomness), so running it again prints the same file.
"""

import hashlib
import json
import struct

import blake3
import zstandard
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SUBKEY_CONTEXT = "loop-backup 2026-11-30 object subkey v1"
RAW_KEK_CONTEXT = "loop-backup 2026-11-30 raw key slot kek v1"
FINAL = 2**64 - 1
U64 = 2**64 - 1

# ---- fixed inputs -------------------------------------------------------------------------

MASTER = bytes(range(0x00, 0x20))
ID_KEY = bytes(range(0x20, 0x40))
SALT = bytes(range(0x40, 0x60))
PACK_ID = bytes(range(0x60, 0x80))
RAW_KEY = bytes(range(0x80, 0xA0))
PASSPHRASE = "correct horse battery staple".encode("utf-8")


def stream(label: bytes, n: int) -> bytes:
    """The documented test input generator: the BLAKE3 extendable output of `label`."""
    return blake3.blake3(label).digest(length=n)


# ---- primitives, as FORMAT.md states them --------------------------------------------------


def header(magic: bytes, version: int = 1) -> bytes:
    return magic + bytes([version, 0, 0, 0])


def nonce(n: int) -> bytes:
    return bytes(4) + n.to_bytes(8, "big")


def subkey(master: bytes, salt: bytes) -> bytes:
    return blake3.blake3(master + salt, derive_key_context=SUBKEY_CONTEXT).digest()


def raw_kek(key: bytes, salt: bytes) -> bytes:
    return blake3.blake3(key + salt, derive_key_context=RAW_KEK_CONTEXT).digest()


def blob_id(data: bytes) -> bytes:
    return blake3.blake3(data, key=ID_KEY).digest()


def argon2id(passphrase: bytes, salt: bytes, m_kib: int, t: int, p: int) -> bytes:
    return hash_secret_raw(passphrase, salt, t, m_kib, p, 32, Type.ID, version=0x13)


def gcm(key: bytes, n: int, aad: bytes, plain: bytes) -> bytes:
    return AESGCM(key).encrypt(nonce(n), plain, aad)


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def seal(master: bytes, magic: bytes, payload: bytes, salt: bytes, compress: bool) -> bytes:
    body = (b"\x01" + zstd(payload)) if compress else (b"\x00" + payload)
    h = header(magic)
    return h + salt + gcm(subkey(master, salt), FINAL, h, body)


def key_slot(kind: int, kek: bytes, params, salt: bytes, meta: bytes) -> bytes:
    m_kib, t, p = params
    out = header(b"LPKY") + bytes([kind]) + struct.pack("<III", m_kib, t, p) + salt
    out += struct.pack("<I", len(meta)) + meta
    return out + gcm(kek, FINAL, out, MASTER)


# ---- FastCDC 2020 with a seeded gear table ---------------------------------------------------

# GEAR[i] is the first 8 bytes (big endian) of MD5 over 64 bytes of value i, as in the FastCDC
# reference implementation (destor) that the `fastcdc` crate copies.
GEAR = [int.from_bytes(hashlib.md5(bytes([i]) * 64).digest()[:8], "big") for i in range(256)]

# The crate's mask table, indexed by round(log2(avg)); normalization level 1 takes the masks one
# index above (strict, before avg) and one below (relaxed, after avg).
MASKS = {
    7: 0x0000000018035100,  # 128 B
    9: 0x0000019000353000,  # 512 B
    19: 0x0000D91707537000,  # 512 KiB
    21: 0x0000D91767537000,  # 2 MiB
}


def masks(avg: int):
    bits = round(__import__("math").log2(avg))
    return MASKS[bits + 1], MASKS[bits - 1]


def cut(data: bytes, pos: int, mn: int, avg: int, mx: int, seed: int) -> int:
    """Length of the chunk starting at `pos`: FastCDC 2020, rolling two bytes per step."""
    remaining = len(data) - pos
    if remaining <= mn:
        return remaining
    center = avg
    if remaining > mx:
        remaining = mx
    elif remaining < center:
        center = remaining
    mask_s, mask_l = masks(avg)
    gear = [g ^ seed for g in GEAR]
    gear_ls = [((g << 1) & U64) ^ ((seed << 1) & U64) for g in GEAR]
    h = 0
    i = mn // 2
    for limit, m in ((center // 2, mask_s), (remaining // 2, mask_l)):
        m_ls = (m << 1) & U64
        while i < limit:
            a = i * 2
            h = ((h << 2) + gear_ls[data[pos + a]]) & U64
            if h & m_ls == 0:
                return a
            h = (h + gear[data[pos + a + 1]]) & U64
            if h & m == 0:
                return a + 1
            i += 1
    return remaining


def chunk_lengths(data: bytes, mn: int, avg: int, mx: int, seed: int):
    out, pos = [], 0
    while pos < len(data):
        n = cut(data, pos, mn, avg, mx, seed)
        out.append(n)
        pos += n
    return out


# ---- Rust output ----------------------------------------------------------------------------


def rs_hex(name: str, data: bytes, doc: str):
    print(f"/// {doc}")
    if len(data) <= 40:
        print(f'pub const {name}: &str = "{data.hex()}";')
    else:
        h = data.hex()
        print(f"pub const {name}: &str = concat!(")
        for i in range(0, len(h), 88):
            print(f'    "{h[i:i + 88]}",')
        print(");")


def rs_str(name: str, text: str, doc: str):
    print(f"/// {doc}")
    print(f"pub const {name}: &str = {json.dumps(text, ensure_ascii=False)};")


def rs_list(name: str, ty: str, values, doc: str):
    print(f"/// {doc}")
    print(f"pub const {name}: &[{ty}] = &[{', '.join(str(v) for v in values)}];")


def main():
    print("// Generated by make_vectors.py from fixed inputs; do not edit by hand.")
    print("// Every value here was computed without the engine's code (see the script).")
    print()
    rs_hex("MASTER", MASTER, "The master key of every vector: bytes 0x00..=0x1f.")
    rs_hex("ID_KEY", ID_KEY, "The blob ID key: bytes 0x20..=0x3f.")
    rs_hex("SALT", SALT, "The salt of every sealed object and key slot: bytes 0x40..=0x5f.")
    rs_hex("PACK_ID", PACK_ID, "The pack ID (and pack subkey salt): bytes 0x60..=0x7f.")
    rs_hex("RAW_KEY", RAW_KEY, "The raw key of the raw-key slot: bytes 0x80..=0x9f.")
    rs_str("PASSPHRASE", PASSPHRASE.decode(), "The passphrase of the passphrase slot.")
    print()

    # Keyed BLAKE3 blob IDs and derive_key subkeys.
    id_inputs = [b"", b"abc", stream(b"loop id vector", 5000)]
    rs_hex("ID_OF_EMPTY", blob_id(id_inputs[0]), "BLAKE3-keyed(ID_KEY, \"\").")
    rs_hex("ID_OF_ABC", blob_id(id_inputs[1]), "BLAKE3-keyed(ID_KEY, \"abc\").")
    rs_hex(
        "ID_OF_STREAM_5000",
        blob_id(id_inputs[2]),
        "BLAKE3-keyed(ID_KEY, first 5000 bytes of the XOF of \"loop id vector\").",
    )
    rs_hex("SUBKEY", subkey(MASTER, SALT), "derive_key(object subkey context, MASTER || SALT).")
    rs_hex("RAW_KEK", raw_kek(RAW_KEY, SALT), "derive_key(raw key slot context, RAW_KEY || SALT).")
    print()

    # Argon2id.
    kdf_cases = [
        ("KEK_FAST", (64, 1, 1)),
        ("KEK_LANES", (256, 2, 2)),
        ("KEK_ONE_LANE", (65536, 3, 1)),
        ("KEK_DEFAULT", (65536, 3, 4)),
    ]
    for name, (m, t, p) in kdf_cases:
        rs_hex(
            name,
            argon2id(PASSPHRASE, SALT, m, t, p),
            f"Argon2id v0x13 (PASSPHRASE, SALT, {m} KiB, {t} passes, {p} lanes), 32 bytes.",
        )
    print()

    # Key slots.
    meta = json.dumps(
        {"created": "2026-12-01T00:00:00+00:00", "host": "vector-host", "user": "vector", "label": ""},
        separators=(",", ":"),
    ).encode()
    slot = key_slot(1, argon2id(PASSPHRASE, SALT, 64, 1, 1), (64, 1, 1), SALT, meta)
    rs_hex("PASSPHRASE_SLOT", slot, "A passphrase key slot (64 KiB, 1 pass, 1 lane) wrapping MASTER.")
    raw_slot = key_slot(2, raw_kek(RAW_KEY, SALT), (65536, 3, 1), SALT, meta)
    rs_hex("RAW_KEY_SLOT", raw_slot, "A raw-key slot wrapping MASTER under RAW_KEY.")
    print()

    # Sealed objects.
    raw_payload = stream(b"loop sealed raw", 40)
    rs_hex("SEALED_RAW_PAYLOAD", raw_payload, "An incompressible payload (XOF of \"loop sealed raw\").")
    rs_hex(
        "SEALED_RAW",
        seal(MASTER, b"LPSN", raw_payload, SALT, False),
        "SEALED_RAW_PAYLOAD sealed as a snapshot object with codec 0 (raw).",
    )
    snapshot = json.dumps(
        {
            "time": "2026-12-01T10:20:30.123456789+01:00",
            "tree": blob_id(b"{\"nodes\":[]}").hex(),
            "paths": ["/home/user/docs"],
            "hostname": "vector-host",
            "username": "vector",
            "tags": ["daily"],
            "excludes": ["*.tmp"],
            "program_version": "loop 0.1.0",
            "summary": {
                "backup_start": "2026-12-01T10:20:30.123456789+01:00",
                "backup_end": "2026-12-01T10:20:31+01:00",
                "files_new": 3,
                "files_changed": 1,
                "files_unmodified": 40,
                "files_unreadable": 0,
                "dirs": 5,
                "data_blobs": 4,
                "tree_blobs": 5,
                "data_added": 123456,
                "data_added_packed": 65432,
                "total_files_processed": 44,
                "total_bytes_processed": 987654,
            },
        },
        separators=(",", ":"),
    )
    rs_str("SNAPSHOT_JSON", snapshot, "A snapshot record without a parent.")
    rs_hex(
        "SEALED_SNAPSHOT",
        seal(MASTER, b"LPSN", snapshot.encode(), SALT, True),
        "SNAPSHOT_JSON sealed as a snapshot with codec 1 (zstd).",
    )
    config = json.dumps(
        {
            "version": 1,
            "id": bytes(range(0xA0, 0xC0)).hex(),
            "created": "2026-12-01T00:00:00+00:00",
            "id_key": ID_KEY.hex(),
            "chunker": {"min": 262144, "avg": 1048576, "max": 4194304, "seed": 81985529216486895},
            "compression_level": 3,
            "pack_size": 16777216,
        },
        separators=(",", ":"),
    )
    rs_str("CONFIG_JSON", config, "A repository config.")
    rs_hex("SEALED_CONFIG", seal(MASTER, b"LPCF", config.encode(), SALT, True), "CONFIG_JSON sealed.")
    print()

    # A pack: a raw data blob, a compressed data blob, a tree blob.
    tree_json = json.dumps(
        {"nodes": [{"name": "a", "type": "file", "mode": 420, "uid": 0, "gid": 0, "size": 3,
                    "mtime_ns": 0, "ctime_ns": 0, "content": [blob_id(b"abc").hex()]}]},
        separators=(",", ":"),
    ).encode()
    blobs = [
        (0, stream(b"loop pack blob 0", 300), False),
        (0, b"hello loop " * 40, True),
        (1, tree_json, True),
    ]
    pkey = subkey(MASTER, PACK_ID)
    pack = header(b"LPPK") + PACK_ID
    entries = []
    for kind, plain, compress in blobs:
        payload = zstd(plain) if compress else plain
        offset = len(pack)
        bid = blob_id(plain)
        pack += gcm(pkey, offset, bytes([kind]) + bid, payload)
        entries.append((kind, bid, offset, len(pack) - offset, len(plain), payload))
    trailer = struct.pack("<I", len(entries))
    for kind, bid, _off, length, raw_len, _p in entries:
        trailer += bytes([kind]) + bid + struct.pack("<II", length, raw_len)
    sealed_trailer = gcm(pkey, FINAL, header(b"LPPK") + PACK_ID, trailer)
    pack += sealed_trailer + struct.pack("<I", len(sealed_trailer))
    for i, (kind, plain, _c) in enumerate(blobs):
        rs_hex(f"PACK_BLOB_{i}", plain, f"The plaintext of the pack's blob {i} (kind {kind}).")
        rs_hex(f"PACK_PAYLOAD_{i}", entries[i][5], f"Blob {i} as stored before encryption (codec payload).")
    print("/// (kind, offset, length, raw_len) of each blob in PACK, in order.")
    print(
        "pub const PACK_ENTRIES: &[(u8, u32, u32, u32)] = &["
        + ", ".join(f"({k}, {o}, {l}, {r})" for k, _b, o, l, r, _p in entries)
        + "];"
    )
    rs_hex("PACK", pack, "A pack of the three blobs under PACK_ID's subkey.")
    print()

    # An index file naming the pack, plus a second pack of one blob.
    other_pack = bytes(range(0xC0, 0xE0))
    payload = struct.pack("<I", 2)
    payload += PACK_ID + struct.pack("<I", len(entries))
    for kind, bid, off, length, raw_len, _p in entries:
        payload += bytes([kind]) + bid + struct.pack("<III", off, length, raw_len)
    payload += other_pack + struct.pack("<I", 1)
    payload += bytes([1]) + blob_id(b"x") + struct.pack("<III", 40, 17, 1)
    rs_hex("INDEX_OTHER_PACK", other_pack, "The second pack the index names.")
    rs_hex("INDEX_PAYLOAD", payload, "An index payload: PACK's blobs, then one blob of another pack.")
    rs_hex("SEALED_INDEX", seal(MASTER, b"LPIX", payload, SALT, True), "INDEX_PAYLOAD sealed.")
    print()

    # A tree with every field: the exact bytes the engine must write, so unchanged directories
    # keep their IDs across versions.
    sub = blob_id(b"{\"nodes\":[]}").hex()
    nodes = [
        {"name": "bin", "type": "dir", "mode": 493, "uid": 0, "gid": 0, "mtime_ns": -1500000000,
         "ctime_ns": 1700000000000000000, "inode": 2, "dev": 2049, "links": 2, "subtree": sub},
        {"name": "caf\u00e9 \u2615.txt", "type": "file", "mode": 2541, "uid": 1000, "gid": 1000,
         "size": 5, "mtime_ns": 1700000000123456789, "ctime_ns": 1700000000123456789,
         "inode": 42, "dev": 2049, "links": 3,
         "content": [blob_id(b"ab").hex(), blob_id(b"cde").hex()],
         "xattrs": [{"name": {"hex": "757365722eff"}, "value": "00ff01"},
                    {"name": "user.note", "value": ""}]},
        {"name": "null", "type": "chardev", "mode": 438, "uid": 0, "gid": 0, "mtime_ns": 0,
         "ctime_ns": 0, "inode": 5, "dev": 5, "links": 1, "rdev": 259},
        {"name": "pipe", "type": "fifo", "mode": 384, "uid": 1000, "gid": 1000, "mtime_ns": 1,
         "ctime_ns": 1, "inode": 7, "dev": 2049, "links": 1},
        {"name": "stdin", "type": "file", "mode": 384, "uid": 0, "gid": 0, "mtime_ns": 2,
         "ctime_ns": 2, "links": 1},
        {"name": {"hex": "7a2dff"}, "type": "symlink", "mode": 511, "uid": 1000, "gid": 1000,
         "mtime_ns": 3, "ctime_ns": 3, "inode": 9, "dev": 2049, "links": 1,
         "link_target": {"hex": "2e2e2f80"}},
    ]
    tree = json.dumps({"nodes": nodes}, separators=(",", ":"), ensure_ascii=False)
    rs_str("TREE_JSON", tree, "A tree with every node type and field the engine writes.")
    rs_hex("TREE_ID", blob_id(tree.encode()), "BLAKE3-keyed(ID_KEY, TREE_JSON).")
    rs_hex("EMPTY_TREE_ID", blob_id(b"{\"nodes\":[]}"), "The ID of an empty tree.")
    print()

    # A tree longer than TREE_PART (4 MiB): one file node naming LARGE_TREE_CHUNKS blob IDs,
    # the ID of the 4-byte little-endian number of each chunk. Its JSON is cut into slices of
    # 4 MiB, each a blob, and the tree is the list of their IDs.
    tree_part = 4 * 1024 * 1024
    chunks = 130000
    node = {"name": "disk.img", "type": "file", "mode": 420, "uid": 0, "gid": 0,
            "size": chunks * 4096, "mtime_ns": 0, "ctime_ns": 0,
            "content": [blob_id(i.to_bytes(4, "little")).hex() for i in range(chunks)]}
    large = json.dumps({"nodes": [node]}, separators=(",", ":")).encode()
    slices = [large[i:i + tree_part] for i in range(0, len(large), tree_part)]
    parts = json.dumps({"parts": [blob_id(p).hex() for p in slices]}, separators=(",", ":"))
    print("/// Chunks of the large tree's one file.")
    print(f"pub const LARGE_TREE_CHUNKS: usize = {chunks};")
    rs_list("LARGE_TREE_PART_LENS", "usize", [len(p) for p in slices],
            "The lengths of the large tree's parts: its JSON cut every 4 MiB.")
    rs_str("LARGE_TREE_PARTS_JSON", parts, "The large tree's blob: the IDs of its parts, in order.")
    rs_hex("LARGE_TREE_ID", blob_id(parts.encode()), "BLAKE3-keyed(ID_KEY, LARGE_TREE_PARTS_JSON).")
    print()

    # Chunk cut points.
    small = stream(b"loop chunker vector", 20000)
    rs_list("CHUNKS_SMALL_SEED_42", "usize", chunk_lengths(small, 64, 256, 1024, 42),
            "Chunk lengths of 20000 bytes of the XOF of \"loop chunker vector\", min 64, avg 256, max 1024, seed 42.")
    rs_list("CHUNKS_SMALL_SEED_0", "usize", chunk_lengths(small, 64, 256, 1024, 0),
            "The same input and sizes with seed 0 (the crate's unmodified gear table).")
    big = stream(b"loop chunker vector", 12 * 1024 * 1024 + 77)
    rs_list("CHUNKS_DEFAULT", "usize",
            chunk_lengths(big, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024, 0x0123456789ABCDEF),
            "Chunk lengths of 12 MiB + 77 bytes of the same XOF with the default sizes and seed 0x0123456789abcdef.")


if __name__ == "__main__":
    main()
