#!/usr/bin/env python3
"""Recomputes the audit chain fixture (audit_chain.jsonl) from the format in docs/SECURITY.md.

Written apart from the Rust code on purpose: the Rust tests compare their hashes with the
ones this script prints, so a change to the hashing shows up as a failing known answer.

    pip install blake3
    python3 audit_kat.py > audit_chain.jsonl
"""

import json
import struct

from blake3 import blake3


def field(s):
    b = (s or "").encode("utf-8")
    return struct.pack("<I", len(b)) + b


def details_text(d):
    # serde_json's compact form: no spaces, keys in order, non-ASCII as UTF-8.
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def v1_hash(e):
    h = blake3(derive_key_context="loop audit event v1")
    h.update(struct.pack("<Q", e["seq"]))
    for k in ["tenant_id", "at", "actor_kind", "actor_id", "action", "object_kind",
              "object_id", "outcome", "ip"]:
        h.update(field(e[k]))
    h.update(field(details_text(e["details"])))
    h.update(bytes.fromhex(e["prev_hash"]) if e["prev_hash"] else bytes(32))
    return h.hexdigest()


def personal_hash(salt_hex, ip, user_agent):
    h = blake3(derive_key_context="loop audit personal v2")
    h.update(bytes.fromhex(salt_hex))
    h.update(field(ip))
    h.update(field(user_agent))
    return h.hexdigest()


def v2_hash(e):
    h = blake3(derive_key_context="loop audit event v2")
    h.update(struct.pack("<Q", e["seq"]))
    for k in ["tenant_id", "at", "actor_kind", "actor_id", "action", "object_kind",
              "object_id", "outcome"]:
        h.update(field(e[k]))
    h.update(field(details_text(e["details"])))
    h.update(field(e["personal_hash"]))
    h.update(field(e["prev_hash"]))
    return h.hexdigest()


def main():
    tenant = "tn_0123456789abcdef0123456789abcdef"
    # Event 1 as a version-1 export had it: no version field, the IP inside the hash.
    e1 = {
        "seq": 1, "tenant_id": tenant, "at": "2026-03-01T09:30:00.123000Z",
        "actor_kind": "user", "actor_id": "us_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "action": "vault.create", "object_kind": "vault",
        "object_id": "vt_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "outcome": "success",
        "ip": "192.0.2.7",
        "details": {"destination": "local", "key_custody": "managed", "quota_bytes": None},
        "prev_hash": "",
    }
    e1["hash"] = v1_hash(e1)

    # Event 2: version 2 with personal data and its salt.
    salt = "5a" * 16 + "a5" * 16
    ip, ua = "198.51.100.23", "Mozilla/5.0 (X11; Linux x86_64) Zürich"
    e2 = {
        "version": 2, "seq": 2, "tenant_id": tenant, "at": "2026-03-01T09:31:02.000456Z",
        "actor_kind": "token", "actor_id": "tk_cccccccccccccccccccccccccccccccc",
        "action": "snapshot.create", "object_kind": "snapshot", "object_id": "ab" * 32,
        "outcome": "success", "ip": ip, "user_agent": ua,
        "details": {"size": 4096, "vault_id": "vt_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
        "personal_hash": personal_hash(salt, ip, ua), "personal_salt": salt,
        "prev_hash": e1["hash"],
    }
    e2["hash"] = v2_hash(e2)

    # Event 3: version 2 without personal data (a system event).
    e3 = {
        "version": 2, "seq": 3, "tenant_id": tenant, "at": "2026-03-01T10:00:00.000000Z",
        "actor_kind": "system", "actor_id": None, "action": "session.expire",
        "object_kind": "session", "object_id": "se_dddddddddddddddddddddddddddddddd",
        "outcome": "success", "ip": None, "user_agent": None,
        "details": {"reason": "idle_timeout", "user_id": "us_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
        "personal_hash": "", "personal_salt": None, "prev_hash": e2["hash"],
    }
    e3["hash"] = v2_hash(e3)

    # Event 4: version 2 whose personal data was erased: only the commitment is left.
    e4 = {
        "version": 2, "seq": 4, "tenant_id": tenant, "at": "2026-03-01T10:05:00.000000Z",
        "actor_kind": "anonymous", "actor_id": None, "action": "auth.signin",
        "object_kind": "user", "object_id": "us_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "outcome": "failure", "ip": None, "user_agent": None,
        "details": {"reason": "wrong_password"},
        "personal_hash": personal_hash("11" * 32, "203.0.113.9", "curl/8.5.0"),
        "personal_salt": None, "prev_hash": e3["hash"],
    }
    e4["hash"] = v2_hash(e4)

    for e in [e1, e2, e3, e4]:
        print(json.dumps(e, separators=(",", ":"), ensure_ascii=False))


if __name__ == "__main__":
    main()
