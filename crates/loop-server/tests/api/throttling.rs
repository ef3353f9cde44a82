//! Sign-in throttling: per account, per address, and under a burst.

use super::*;

#[test]
fn five_wrong_passwords_lock_the_account_until_the_window_passes() {
    let server = Server::start();
    for _ in 0..5 {
        server
            .login(ADMIN_EMAIL, "wrong-password-123")
            .expect_problem(401, "invalid_credentials");
    }
    let refused = server.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    refused.expect_problem(429, "signin_throttled");
    // The answer says how long the lock lasts: the 15-minute window, from the first failure.
    let wait = |r: &Reply| -> u64 {
        let secs = r.retry_after.as_deref().expect("a Retry-After header");
        secs.parse()
            .unwrap_or_else(|_| panic!("Retry-After: {secs}"))
    };
    let secs = wait(&refused);
    assert!((890..=900).contains(&secs), "Retry-After: {secs}");

    server.advance(Duration::from_secs(secs - 10));
    let still = server.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    still.expect_problem(429, "signin_throttled");
    assert!((1..=10).contains(&wait(&still)), "{:?}", still.retry_after);
    server.advance(Duration::from_secs(wait(&still)));
    let admin = server.admin();
    let events = admin.audit_events();
    assert!(events.iter().any(|e| e.action == "auth.signin"
        && e.outcome == Outcome::Failure
        && e.details["reason"] == "throttled"));
    // The throttled attempts (15 minutes apart) raised one event for the notification
    // targets: one per tenant and hour.
    let raised = admin.events(&admin.provider_tenant_id(), "security-throttled");
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(raised[0]["severity"], "warning");
}

/// A failure's record (with the client address it names) leaves the database once it left
/// the window, also on a server where sign-ins come more often than the sweep runs.
#[test]
fn a_failure_is_forgotten_once_it_left_the_window_while_sign_ins_go_on() {
    let server = Server::start();
    server
        .login("ghost@example.org", "wrong-password-123")
        .expect_problem(401, "invalid_credentials");
    let key = loop_server::state::account_key("ghost@example.org");
    let kept = || -> i64 {
        server
            .block_on(
                sqlx::query_scalar("SELECT COUNT(*) FROM signin_keys WHERE key = $1")
                    .bind(&key)
                    .fetch_one(&server.state.db.pool),
            )
            .unwrap()
    };
    assert_eq!(kept(), 1);
    let window = server.state.config.signin.window_minutes * 60;
    // A sign-in every 30 seconds, until the window and two more minutes have passed.
    for _ in 0..(window + 120) / 30 {
        server.advance(Duration::from_secs(30));
        server.admin();
    }
    assert_eq!(kept(), 0, "the failure left the window");
}

/// A sign-in refused for its form (an empty device label) is no attempt: five of them with
/// the right password lock nobody out.
#[test]
fn a_malformed_sign_in_does_not_count_as_a_failure() {
    let server = Server::start();
    for _ in 0..5 {
        server
            .call(
                "post",
                "/api/v1/auth/login",
                None,
                Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                              "device_label": "" })),
            )
            .expect_problem(400, "invalid_request");
    }
    server.login(ADMIN_EMAIL, ADMIN_PASSWORD).expect(200);
}

#[test]
fn a_burst_of_simultaneous_guesses_is_throttled_like_a_sequence() {
    let server = Server::start();
    let (checked, _) = support::burst_of_guesses(&[&server], ADMIN_EMAIL, 24);
    assert!(checked <= 5, "{checked} guesses were checked");
}

#[test]
fn twenty_failures_from_one_address_lock_every_account_from_it() {
    let server = Server::start();
    for n in 0..20 {
        server
            .login(&format!("nobody{n}@example.org"), "wrong-password-123")
            .expect_problem(401, "invalid_credentials");
    }
    server
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .expect_problem(429, "signin_throttled");
    // Anyone can go on with a new address each time, no account needed: each is audited,
    // but the provider's notification targets hear of those once an hour, not once a try,
    // apart from the attempts on a real account (the admin's, above).
    for n in 0..30 {
        server
            .login(&format!("flood{n}@example.org"), "wrong-password-123")
            .expect_problem(429, "signin_throttled");
    }
    // Past the window of every try from the address.
    server.advance(Duration::from_secs(31 * 60));
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let audited = admin
        .audit_events()
        .iter()
        .filter(|e| e.details["reason"] == "throttled")
        .count();
    assert_eq!(audited, 31);
    let raised = admin.events(&provider, "security-throttled");
    assert_eq!(raised.len(), 2, "{raised:#?}");
    // An hour on, a throttled try is news again.
    server.advance(Duration::from_secs(3600));
    for n in 0..20 {
        let _ = server.login(&format!("again{n}@example.org"), "wrong-password-123");
    }
    server
        .login("again@example.org", "wrong-password-123")
        .expect_problem(429, "signin_throttled");
    // The throwaway addresses' event does not mute an attempt on a real account.
    server
        .login(ADMIN_EMAIL, "wrong-password-123")
        .expect_problem(429, "signin_throttled");
    server.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        server.admin().events(&provider, "security-throttled").len(),
        4
    );
}

/// Every database connection stays busy past `database.acquire_timeout_seconds`: a request
/// is told the server is busy (503 `busy`, with `Retry-After`), not of an internal error.
#[test]
fn a_request_that_finds_no_database_connection_free_is_told_to_come_back() {
    let server = Server::start_with(|c| {
        c.database.max_connections = 1;
        c.database.acquire_timeout_seconds = 1;
    });
    let admin = server.admin();
    let held = server.block_on(server.state.db.pool.acquire()).unwrap();
    let busy = admin.get("/api/v1/me");
    busy.expect_problem(503, "busy");
    assert_eq!(busy.retry_after.as_deref(), Some("5"));
    // A pooled connection goes back to its pool inside the runtime.
    server.block_on(async move { drop(held) });
    admin.get("/api/v1/me").expect(200);
}
