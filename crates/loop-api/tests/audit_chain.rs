//! The audit chain against a fixture computed apart from this code: `data/audit_kat.py`
//! (Python, the PyPI `blake3` package) wrote `data/audit_chain.jsonl`, a four-event chain of
//! one tenant: a version-1 event as old exports have it, then version-2 events with personal
//! data, without any, and with it erased.

use loop_api::AuditEvent;
use loop_api::audit::{chain_hash, personal_matches, verify};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("data/audit_chain.jsonl");

fn lines() -> Vec<Value> {
    FIXTURE
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn events(lines: &[Value]) -> Vec<AuditEvent> {
    lines
        .iter()
        .map(|l| serde_json::from_value(l.clone()).expect("an audit event"))
        .collect()
}

#[test]
fn chain_hash_gives_the_known_answers_of_both_versions() {
    let e = events(&lines());
    // Printed by data/audit_kat.py.
    assert_eq!(e[0].version, 1, "an export without a version is version 1");
    assert_eq!(
        chain_hash(&e[0]).unwrap(),
        "1b44ef6ab84c35a78ebf406a730ea41bc5bb39ab21bb7c54f8ef8483d886aed9"
    );
    assert_eq!(
        chain_hash(&e[1]).unwrap(),
        "2fe5e37dd9ba308c720fd3654b05f215e3e7f1de9b34cbbda69f80fc89363e63"
    );
    assert_eq!(
        loop_api::audit::personal_hash(
            &hex_salt("5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5aa5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5"),
            Some("198.51.100.23"),
            Some("Mozilla/5.0 (X11; Linux x86_64) Zürich"),
        ),
        "03ce273a36936f47906d0a10e589d51744060d119aac4189e86323be0479a069"
    );
    for ev in &e {
        assert_eq!(
            chain_hash(ev).as_deref(),
            Some(ev.hash.as_str()),
            "{}",
            ev.seq
        );
    }
    assert_eq!(verify(&e), Ok(4));
}

fn hex_salt(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// Each field the hash covers, with a changed value for it.
fn tampered_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("tenant_id", json!("tn_ffffffffffffffffffffffffffffffff")),
        ("at", json!("2026-03-01T09:31:03.000456Z")),
        ("actor_kind", json!("anonymous")),
        ("actor_id", json!("us_eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")),
        ("action", json!("snapshot.delete")),
        ("object_kind", json!("key_slot")),
        ("object_id", json!("cd".repeat(32))),
        ("outcome", json!("failure")),
        (
            "details",
            json!({"size": 4097, "vault_id": "vt_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}),
        ),
        ("seq", json!(5)),
        ("prev_hash", json!("11".repeat(32))),
        ("personal_hash", json!("00".repeat(32))),
        ("version", json!(1)),
    ]
}

#[test]
fn changing_any_hashed_field_of_an_exported_event_fails_verification() {
    let original = lines();
    let before = events(&original);
    for idx in [0, 1] {
        for (name, value) in tampered_fields() {
            if idx == 0 && ["personal_hash", "version"].contains(&name) {
                continue; // not part of a version-1 hash
            }
            let mut l = original.clone();
            assert_ne!(l[idx][name], value, "{name} must really change");
            l[idx][name] = value;
            let e = events(&l);
            // Against the hash of the unchanged event, so that this holds whatever the
            // fixture says: each field on its own must move the hash.
            assert_ne!(
                chain_hash(&e[idx]),
                chain_hash(&before[idx]),
                "event {idx}: the hash must cover {name}"
            );
            assert!(verify(&e).is_err(), "event {idx}: changed {name} verified");
        }
    }
}

#[test]
fn personal_data_of_a_version_2_event_is_outside_the_hash() {
    let original = lines();
    for (name, value) in [
        ("ip", json!("203.0.113.99")),
        ("user_agent", json!("curl/1.0")),
        ("ip", Value::Null),
        ("personal_salt", Value::Null),
    ] {
        let mut l = original.clone();
        l[1][name] = value;
        assert_eq!(
            verify(&events(&l)),
            Ok(4),
            "changing {name} broke the chain"
        );
    }
    // The commitment still tells an auditor whether the personal data is the original.
    assert_eq!(personal_matches(&events(&original)[1]), Some(true));
    let mut l = original.clone();
    l[1]["ip"] = json!("203.0.113.99");
    assert_eq!(personal_matches(&events(&l)[1]), Some(false));
    // Erased (event 4) or absent (event 3): nothing to compare.
    assert_eq!(personal_matches(&events(&original)[2]), None);
    assert_eq!(personal_matches(&events(&original)[3]), None);
    // Unless some was added since: to an event that committed to none, or over an erasure.
    for (at, name, value) in [
        (2, "ip", json!("198.51.100.7")),
        (3, "user_agent", json!("curl/1.0")),
    ] {
        let mut l = original.clone();
        l[at][name] = value;
        assert_eq!(
            personal_matches(&events(&l)[at]),
            Some(false),
            "{name} on {at}"
        );
    }
    let mut l = original.clone();
    l[1]["personal_salt"] = Value::Null;
    assert_eq!(personal_matches(&events(&l)[1]), Some(false));
}

#[test]
fn a_version_1_event_keeps_its_ip_inside_the_hash() {
    let mut l = lines();
    l[0]["ip"] = json!("192.0.2.8");
    assert!(verify(&events(&l)).is_err());
}

#[test]
fn an_unknown_format_version_is_refused_not_guessed() {
    let mut l = lines();
    l[3]["version"] = json!(3);
    let err = verify(&events(&l)).unwrap_err();
    assert_eq!((err.seq, err.reason), (4, "unknown event format version"));
}

#[test]
fn a_chain_cannot_fall_back_to_version_1_after_version_2() {
    // A version-1 event rehashed by someone who rewrites the tail after a version-2 event.
    let mut e = events(&lines());
    e[2].version = 1;
    e[2].hash = chain_hash(&e[2]).unwrap();
    e[3].prev_hash = e[2].hash.clone();
    e[3].hash = chain_hash(&e[3]).unwrap();
    let err = verify(&e).unwrap_err();
    assert_eq!(
        (err.seq, err.reason),
        (3, "an event of an older format follows a newer one")
    );
}
