//! How credentials are kept and checked: passwords as Argon2id hashes, authenticator codes
//! with one 30-second step of clock skew either way, no more.

use super::*;

#[test]
fn a_code_one_step_off_is_accepted_and_two_steps_off_is_not() {
    let server = Server::start();
    let admin = server.admin();
    let secret = server.enable_totp(&admin, ADMIN_PASSWORD);
    // Ten steps on, so that no step near now was used yet.
    server.advance(Duration::from_secs(300));
    let sign_in = |steps: i64| {
        server.call(
            "post",
            "/api/v1/auth/login",
            None,
            Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                          "totp": server.totp_code_at(&secret, steps) })),
        )
    };
    for steps in [-2, 2] {
        sign_in(steps).expect_problem(401, "invalid_totp");
    }
    // A step behind, then a step ahead (each step is taken once, in order).
    sign_in(-1).expect(200);
    sign_in(1).expect(200);
}

/// A password is kept as an Argon2id hash with RFC 9106's second settings (19 MiB, 2 passes),
/// never as itself, and an unknown account is refused in the same words as a wrong password.
#[test]
fn passwords_are_kept_as_argon2id_hashes_and_unknown_accounts_look_alike() {
    let server = Server::start();
    let admin = server.admin();
    let tenant = admin.customer_tenant("Hash Co");
    let password = "a-password-only-this-test-uses";
    let user = admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": tenant, "email": "hash@example.com", "first_name": "H",
                    "last_name": "C", "password": password, "role": "admin" }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stored: String = server
        .block_on(
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(&user)
                .fetch_one(&server.state.db.pool),
        )
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(!server.database_holds(password));

    let wrong = server.login("hash@example.com", "not-the-password");
    let unknown = server.login("nobody@example.com", password);
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(unknown.body, wrong.body);
    server.login("hash@example.com", password).expect(200);
}

/// Revoking a token or a session that is already revoked changes nothing, so the audit log
/// records the revocation once.
#[test]
fn a_second_revocation_records_nothing() {
    let server = Server::start();
    let admin = server.admin();
    let tenant = admin.customer_tenant("Revoke Co");
    let token = admin
        .post(
            "/api/v1/tokens",
            json!({ "tenant_id": tenant, "name": "t", "kind": "api", "permissions": ["backup"] }),
        )
        .expect(201)["token"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).json()["session"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..2 {
        admin.delete(&format!("/api/v1/tokens/{token}")).expect(204);
        admin
            .delete(&format!("/api/v1/sessions/{other}"))
            .expect(204);
    }
    let recorded = |action: &str, id: &str| {
        admin
            .audit_events()
            .iter()
            .filter(|e| e.action == action && e.object_id.as_deref() == Some(id))
            .count()
    };
    assert_eq!(recorded("token.revoke", &token), 1);
    assert_eq!(recorded("session.revoke", &other), 1);
}
