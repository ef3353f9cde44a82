use super::*;
use crate::VaultOpenResponse;

/// `all` shows, serializes and parses as `strings`: the JSON the fields carried when they
/// were strings. Anything else is refused.
fn check_closed_set<T>(all: &[T], strings: &[&str])
where
    T: Copy
        + Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Display
        + std::str::FromStr<Err = UnknownValue>
        + PartialEq
        + std::fmt::Debug,
{
    let shown: Vec<String> = all.iter().map(|v| v.to_string()).collect();
    assert_eq!(shown, strings);
    for (v, s) in all.iter().zip(strings) {
        assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<T>(&format!("\"{s}\"")).unwrap(), *v);
        assert_eq!(s.parse::<T>().unwrap(), *v);
    }
    assert!(serde_json::from_str::<T>("\"no-such-value\"").is_err());
    let e = "no-such-value".parse::<T>().unwrap_err();
    assert_eq!(e.expected, strings);
    assert!(e.to_string().contains("\"no-such-value\""), "{e}");
}

#[test]
fn closed_sets_travel_as_the_strings_they_always_were() {
    check_closed_set(
        Role::ALL,
        &[
            "provider-admin",
            "partner-admin",
            "admin",
            "operator",
            "auditor",
            "billing",
        ],
    );
    check_closed_set(TenantKind::ALL, &["provider", "partner", "customer"]);
    check_closed_set(TenantStatus::ALL, &["active", "erased"]);
    check_closed_set(UserStatus::ALL, &["active", "invited", "disabled"]);
    check_closed_set(TokenKind::ALL, &["device", "api"]);
    check_closed_set(
        TokenPermission::ALL,
        &["backup", "restore", "manage", "maintain", "replicate"],
    );
    check_closed_set(KeyCustody::ALL, &["managed", "customer"]);
    check_closed_set(Backend::ALL, &["local", "s3"]);
    check_closed_set(ActorKind::ALL, &["user", "token", "system", "anonymous"]);
    check_closed_set(Outcome::ALL, &["success", "failure"]);
}

#[test]
fn an_unknown_value_names_what_it_should_have_been() {
    let e = "delete".parse::<TokenPermission>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown token permission \"delete\": expected backup, restore, manage, maintain or replicate"
    );
    // Widths apply, so tables line up as they did with strings.
    assert_eq!(format!("[{:<8}]", TokenKind::Api), "[api     ]");
}

#[test]
fn secrets_travel_as_plain_strings_but_never_print() {
    let req: LoginRequest =
        serde_json::from_str(r#"{"email":"a@example.com","password":"hunter2-hunter2"}"#).unwrap();
    assert_eq!(req.password.expose(), "hunter2-hunter2");
    assert!(!format!("{req:?}").contains("hunter2"), "{req:?}");
    assert!(format!("{req:?}").contains("a@example.com"));
    let json = serde_json::to_value(&req).unwrap();
    assert_eq!(json["password"], "hunter2-hunter2");

    let open = VaultOpenResponse {
        vault_id: "vt_1".into(),
        permissions: vec![TokenPermission::Backup],
        key_custody: KeyCustody::Managed,
        key: Some(SecretText::new("00ff".repeat(16))),
        direct: false,
        jurisdiction: None,
    };
    assert!(!format!("{open:?}").contains("00ff"));
    let token = CreatedToken {
        token: serde_json::from_value(serde_json::json!({
            "id": "tk_1", "tenant_id": "tn_1", "name": "n", "kind": "api",
            "permissions": [], "vault_ids": [], "device_id": null,
            "created_at": "2026-01-01T00:00:00Z", "expires_at": null,
            "revoked_at": null, "last_used_at": null
        }))
        .unwrap_or_else(|e| panic!("a token: {e}")),
        secret: SecretText::new("lpt_topsecret"),
    };
    assert!(!format!("{token:?}").contains("topsecret"));
}
