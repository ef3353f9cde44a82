//! `loop admin audit verify --file` on an exported audit log: the chain fixture that
//! `crates/loop-api/tests/data/audit_kat.py` computed (a version-1 event, then version-2
//! events), changed one field at a time.

mod support;

use serde_json::{Value, json};
use support::cli::Env;

const FIXTURE: &str = include_str!("../../loop-api/tests/data/audit_chain.jsonl");

fn lines() -> Vec<Value> {
    FIXTURE
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Writes `lines` as an export and verifies it with `--json`: (exit code, output).
fn verify(env: &Env, lines: &[Value]) -> (Option<i32>, Value) {
    let file = env.path("audit.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let out = env.run(&[
        "admin",
        "audit",
        "verify",
        "--file",
        file.to_str().unwrap(),
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    (out.status.code(), report)
}

#[test]
fn an_export_with_any_hashed_field_changed_is_reported_broken_at_that_event() {
    let env = Env::new();
    let original = lines();
    let (code, report) = verify(&env, &original);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(
        report,
        json!({"verified": true, "events": 4, "tenants": 1, "personal_data_altered": 0})
    );

    for (field, value) in [
        ("tenant_id", json!("tn_ffffffffffffffffffffffffffffffff")),
        ("at", json!("2026-03-01T09:31:03.000456Z")),
        ("actor_kind", json!("user")),
        ("actor_id", json!("tk_eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")),
        ("action", json!("snapshot.delete")),
        ("object_kind", json!("key_slot")),
        ("object_id", json!("cd".repeat(32))),
        ("outcome", json!("failure")),
        (
            "details",
            json!({"size": 1, "vault_id": "vt_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}),
        ),
        ("seq", json!(7)),
        ("prev_hash", json!("11".repeat(32))),
        ("personal_hash", json!("22".repeat(32))),
        ("version", json!(1)),
    ] {
        let mut l = original.clone();
        l[1][field] = value;
        let (code, report) = verify(&env, &l);
        assert_eq!(code, Some(1), "changed {field}: {report}");
        assert_eq!(report["verified"], false, "changed {field}: {report}");
        assert_eq!(report["seq"], l[1]["seq"], "changed {field}: {report}");
    }
}

#[test]
fn changed_or_erased_personal_data_leaves_the_chain_verified_and_is_flagged() {
    let env = Env::new();
    let mut l = lines();
    l[1]["ip"] = json!("203.0.113.99");
    l[1]["user_agent"] = json!("curl/1.0");
    let (code, report) = verify(&env, &l);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["verified"], true);
    assert_eq!(report["personal_data_altered"], 1);

    let mut erased = lines();
    for key in ["ip", "user_agent", "personal_salt"] {
        erased[1][key] = Value::Null;
    }
    let (code, report) = verify(&env, &erased);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["personal_data_altered"], 0);
}

/// A file cut at its end is a shorter chain that verifies by itself (with a note saying so);
/// held to chain heads kept apart from it (`loop admin audit heads`), it fails.
#[test]
fn a_file_cut_at_its_end_fails_against_heads_kept_apart() {
    let env = Env::new();
    let original = lines();
    let last = original.last().unwrap();
    let heads = env.path("heads.json");
    std::fs::write(
        &heads,
        json!([{ "tenant_id": last["tenant_id"], "seq": last["seq"], "hash": last["hash"] }])
            .to_string(),
    )
    .unwrap();
    let file = env.path("audit.jsonl");
    let check = |lines: &[Value], with_heads: bool| {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&file, text).unwrap();
        let mut args = vec!["admin", "audit", "verify", "--file", file.to_str().unwrap()];
        if with_heads {
            args.extend(["--heads", heads.to_str().unwrap()]);
        }
        env.run(&args)
    };
    let cut = &original[..original.len() - 1];
    let alone = check(cut, false);
    assert_eq!(alone.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&alone.stderr).contains("cannot show events cut from its end"),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let held = check(cut, true);
    assert_eq!(held.status.code(), Some(1));
    let err = String::from_utf8_lossy(&held.stderr);
    assert!(err.contains("audit log broken"), "{err}");
    assert_eq!(check(&original, true).status.code(), Some(0));
}
