//! A vault's quota: uploads past it are refused, and it can be changed.

use serde_json::json;

use super::support::Server;
use super::support::vault::*;

/// Uploads past the quota are refused; the quota can be raised, lowered below what the
/// vault holds (which then takes nothing more and keeps what it has) and taken away, and each
/// change is audited.
#[test]
fn an_upload_beyond_the_vault_quota_is_refused_until_the_quota_changes() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", Some(4000));
    let backup = holder(&server, &admin, &tenant, &vault, &["backup"]);
    // The config and key slot the server wrote count too: what is left of the quota.
    let base = admin.get(&format!("/api/v1/vaults/{vault}")).expect(200)["used_bytes"]
        .as_u64()
        .unwrap() as usize;
    let room = 4000 - base;
    let big = index_object(room + 1);
    backup
        .put("index", &blake3_hex(&big), &big)
        .expect_problem(507, "quota_exceeded");
    let small = index_object(room / 2);
    backup.put("index", &blake3_hex(&small), &small).expect(201);
    let second = index_object(room - small.len() + 1);
    backup
        .put("index", &blake3_hex(&second), &second)
        .expect_problem(507, "quota_exceeded");
    let v = admin.get(&format!("/api/v1/vaults/{vault}")).expect(200);
    assert_eq!(v["used_bytes"], base + small.len());

    let set = |quota: serde_json::Value| {
        admin.put(
            &format!("/api/v1/vaults/{vault}/quota"),
            json!({ "quota_bytes": quota }),
        )
    };
    let v = set(json!(8000)).expect(200);
    assert_eq!(v["quota_bytes"], 8000);
    backup
        .put("index", &blake3_hex(&second), &second)
        .expect(201);
    let used = base + small.len() + second.len();
    // Below what the vault holds: nothing more, and nothing of what is there goes.
    set(json!(1000)).expect(200);
    let third = index_object(100);
    backup
        .put("index", &blake3_hex(&third), &third)
        .expect_problem(507, "quota_exceeded");
    let v = admin.get(&format!("/api/v1/vaults/{vault}")).expect(200);
    assert_eq!(v["used_bytes"], used);
    let reader = holder(&server, &admin, &tenant, &vault, &["restore"]);
    assert_eq!(reader.names("index").len(), 2);
    let v = set(json!(null)).expect(200);
    assert_eq!(v["quota_bytes"], serde_json::Value::Null);
    backup.put("index", &blake3_hex(&third), &third).expect(201);
    set(json!(1u64 << 63)).expect_problem(400, "invalid_request");

    let changes: Vec<_> = admin
        .audit_events()
        .into_iter()
        .filter(|e| e.action == "vault.quota")
        .map(|e| {
            (
                e.details["previous_quota_bytes"].clone(),
                e.details["quota_bytes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (json!(4000), json!(8000)),
            (json!(8000), json!(1000)),
            (json!(1000), json!(null)),
        ]
    );
}
