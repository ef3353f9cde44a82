//! Regressions for smaller holes found by probing a running server with valid, low-privilege
//! credentials: each test reproduces what the probe did and asserts the fixed answer.

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use support::vault::*;
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, USER_PASSWORD};

/// Regression: `POST /api/v1/me/password` with a wrong current password was neither
/// throttled nor audited (40 guesses in 3 seconds).
#[test]
fn guessing_the_current_password_is_throttled_and_audited() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let ana = server.as_member(acme.member("operator"));
    let guess = |current: &str| {
        ana.post(
            "/api/v1/me/password",
            json!({ "current_password": current, "new_password": "a-new-password-123" }),
        )
    };
    for i in 0..5 {
        guess(&format!("wrong-guess-{i}")).expect_problem(400, "wrong_password");
    }
    // The account's throttle is shared with sign-in: even the right password waits now.
    guess(USER_PASSWORD).expect_problem(429, "signin_throttled");
    let refusals: Vec<_> = admin
        .audit_events()
        .into_iter()
        .filter(|e| e.action == "user.password_change" && e.outcome == loop_api::Outcome::Failure)
        .collect();
    assert_eq!(
        refusals.len(),
        6,
        "five wrong guesses and the first throttled one"
    );
    assert!(
        refusals
            .iter()
            .all(|e| e.object_id.as_deref() == Some(acme.member("operator").user_id.as_str()))
    );

    server.advance(Duration::from_secs(16 * 60));
    guess(USER_PASSWORD).expect(204);
}

#[test]
fn guessing_the_password_to_enrol_an_authenticator_is_throttled_and_audited() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let ana = server.as_member(acme.member("operator"));
    let enrol = |current: &str| ana.post("/api/v1/me/totp", json!({ "current_password": current }));
    for i in 0..5 {
        enrol(&format!("wrong-guess-{i}")).expect_problem(400, "wrong_password");
    }
    enrol(USER_PASSWORD).expect_problem(429, "signin_throttled");
    let refusals = admin
        .audit_events()
        .into_iter()
        .filter(|e| e.action == "user.totp_enroll" && e.outcome == loop_api::Outcome::Failure)
        .count();
    assert_eq!(
        refusals, 6,
        "five wrong guesses and the first throttled one"
    );
    server.advance(Duration::from_secs(16 * 60));
    let ana = server.sign_in(&acme.member("operator").email, USER_PASSWORD);
    let started = ana
        .post(
            "/api/v1/me/totp",
            json!({ "current_password": USER_PASSWORD }),
        )
        .expect(200);
    assert!(
        started["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/"),
        "{started}"
    );
}

/// Regression: a vault token sent as the session cookie was accepted.
#[test]
fn a_token_is_never_accepted_as_a_session_cookie() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let (_, secret) = token(&admin, &tenant, &["manage"], None);
    let cookie = format!("{}={secret}", loop_api::SESSION_COOKIE);
    for path in [
        format!("/vaults/{vault}/v1/keys"),
        format!("/api/v1/vaults/{vault}"),
        "/api/v1/me".to_string(),
    ] {
        let r = server.send(
            server
                .request(Method::GET, &path)
                .header(reqwest::header::COOKIE, &cookie),
        );
        assert_eq!(r.status, 401, "{path}: {}", r.body);
    }
    // The control: as a bearer credential it works where tokens belong.
    vault_as(&server, &vault, &secret)
        .call("get", "keys")
        .expect(200);
}

/// Regression: `expires_in_days: 0` created a token that never expires.
#[test]
fn a_token_lifetime_of_zero_days_is_refused_and_no_expiry_is_said_by_leaving_it_out() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Acme", None);
    let create = |days: serde_json::Value| {
        admin.post(
            "/api/v1/tokens",
            json!({ "tenant_id": tenant, "name": "t", "kind": "api",
                    "permissions": ["backup"], "expires_in_days": days }),
        )
    };
    create(json!(0)).expect_problem(400, "invalid_request");
    create(json!(3651)).expect_problem(400, "invalid_request");
    let forever = create(json!(null)).expect(201);
    assert_eq!(forever["token"]["expires_at"], serde_json::Value::Null);
    let day = create(json!(1)).expect(201);
    assert!(day["token"]["expires_at"].is_string(), "{day}");
}

/// Regression: names accepted right-to-left overrides and zero-width characters, so a name
/// could read differently than it is stored, or two names look the same.
#[test]
fn names_refuse_bidirectional_and_zero_width_characters_and_are_normalized() {
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    for name in [
        "invoice\u{202E}fdp.exe",
        "Ac\u{200B}me",
        "\u{2066}Acme\u{2069}",
        "Acme\u{FEFF}",
        "Ac\u{0007}me",
    ] {
        admin
            .post(
                "/api/v1/tenants",
                json!({ "parent_id": provider, "kind": "customer", "name": name }),
            )
            .expect_problem(400, "invalid_request");
    }
    // Decomposed and composed spellings are one name.
    let t = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": provider, "kind": "customer", "name": "Cafe\u{0301} GmbH" }),
        )
        .expect(201);
    assert_eq!(t["name"], "Caf\u{e9} GmbH");
    // The same rule holds for people's names.
    admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": t["id"], "email": "x@example.com", "first_name": "A\u{202E}na",
                    "last_name": "Alves", "password": USER_PASSWORD }),
        )
        .expect_problem(400, "invalid_request");
    // Nothing of this touched the provider admin's own sign-in.
    server.login(ADMIN_EMAIL, ADMIN_PASSWORD).expect(200);
}

#[test]
fn the_test_clock_exists_only_when_configured_and_only_for_provider_admins() {
    let off = Server::start();
    off.admin()
        .post("/api/v1/admin/test-clock", json!({ "advance_seconds": 60 }))
        .expect_problem(404, "not_found");

    let on = Server::start_with(|c| c.test_clock = true);
    let admin = on.admin();
    let customer = on.customer(&admin, "alpha");
    on.as_member(customer.member("admin"))
        .post("/api/v1/admin/test-clock", json!({ "advance_seconds": 60 }))
        .expect_problem(404, "not_found");
    let before = on.state.now();
    let moved = admin
        .post(
            "/api/v1/admin/test-clock",
            json!({ "advance_seconds": 3600 }),
        )
        .expect(200);
    let now: chrono::DateTime<chrono::Utc> = moved["now"].as_str().unwrap().parse().unwrap();
    assert!(now.timestamp_millis() - before >= 3_600_000);
    assert!(on.state.now() - before >= 3_600_000);
}
