//! Signing in and out in the browser: the password, then the authenticator code, with the
//! keyboard alone; a wrong code said so; signing out ends the session for the API too.

use super::browser;
use super::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Server};

use loop_testkit::browser::{ENTER, TAB};

#[test]
fn a_person_signs_in_with_an_authenticator_code_using_the_keyboard_alone() {
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let secret = server.enable_totp(&admin, ADMIN_PASSWORD);
    let Some(b) = browser(&server) else {
        return;
    };
    // Not signed in: the start page sends the browser to sign in, and back after.
    b.goto("/");
    assert_eq!(b.wait_for_path("/signin"), "/signin?next=%2F");
    assert!(b.title().starts_with("Sign in"), "{}", b.title());
    assert_eq!(b.focused(), "email", "the address field has the focus");
    b.keys(ADMIN_EMAIL);
    b.keys(TAB);
    assert_eq!(b.focused(), "password");
    b.keys(ADMIN_PASSWORD);
    b.keys(ENTER);

    b.wait_for_path("/signin/code");
    assert_eq!(b.focused(), "code");
    assert!(
        b.cookie("loop_session").is_none(),
        "no session before the code"
    );
    b.keys("000000");
    b.keys(ENTER);
    b.wait_for_path("/signin/code");
    assert!(
        b.text("[role=alert]").contains("wrong or was already used"),
        "{}",
        b.text("main")
    );
    assert_eq!(b.focused(), "code");
    b.keys(&server.totp_code(&secret));
    b.keys(ENTER);

    let home = b.wait_for_path("/t/");
    assert_eq!(home, format!("/t/{provider}"));
    assert!(b.text("h1").starts_with("Dashboard"), "{}", b.text("h1"));
    assert!(b.cookie("loop_session").is_some());
    assert!(b.cookie("loop_signin").is_none(), "the challenge is gone");

    // Both steps are in the audit log: the wrong code refused, the sign-in with its code.
    let events = admin.get(&format!(
        "/api/v1/audit?tenant_id={provider}&action=auth.signin"
    ));
    let events = events.expect(200);
    let items = events.as_array().expect("a list of events");
    assert!(
        items
            .iter()
            .any(|e| e["outcome"] == "failure" && e["details"]["reason"] == "wrong_totp"),
        "{items:?}"
    );
    assert!(
        items
            .iter()
            .any(|e| e["outcome"] == "success" && e["details"]["totp"] == true),
        "{items:?}"
    );
}

#[test]
fn signing_out_ends_the_session_everywhere() {
    let server = Server::start();
    let Some(b) = browser(&server) else {
        return;
    };
    b.goto("/signin");
    b.fill("#email", ADMIN_EMAIL);
    b.fill("#password", ADMIN_PASSWORD);
    b.click("button[type=submit]");
    b.wait_for_path("/t/");
    let secret = b.cookie("loop_session").expect("a session cookie");
    // The browser's session works for the API too: it is one session.
    server
        .call("get", "/api/v1/me", Some(&secret), None)
        .expect(200);

    b.click("form.signout button");
    b.wait_for_path("/signin");
    assert!(b.cookie("loop_session").is_none_or(|c| c.is_empty()));
    server
        .call("get", "/api/v1/me", Some(&secret), None)
        .expect_problem(401, "unauthenticated");
    b.goto("/");
    b.wait_for_path("/signin?next=");
}
