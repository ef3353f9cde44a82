//! Setting up an authenticator app in the browser: the QR code on the page, read from a
//! screenshot as a phone's camera reads it, carries the key the page shows; a wrong code shows
//! it again, the right one turns it on, and the next sign-in asks for a code.

use super::support::console::session_cookie;
use super::support::{Server, USER_PASSWORD};
use super::{browser, sign_in};

#[test]
fn an_authenticator_is_set_up_from_the_qr_code_the_page_shows() {
    let server = Server::start();
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let ana = acme.member("operator");
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, &ana.email, USER_PASSWORD);
    b.goto("/account");
    b.click("a[href='/account/authenticator']");
    b.fill("#current_password", "not-her-password");
    b.click("form[action='/account/authenticator'] button");
    assert!(
        b.text("[role=alert]").contains("wrong"),
        "{}",
        b.text("main")
    );
    b.fill("#current_password", USER_PASSWORD);
    b.click("form[action='/account/authenticator'] button");

    // What a camera reads off the screen is the key the page shows, for her account.
    let key = b.text("code.secret").replace(' ', "");
    assert_eq!(key.len(), 52, "{key}");
    let read = b.qr_codes();
    assert_eq!(read.len(), 1, "{read:?}");
    let url = &read[0];
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    assert!(url.contains(&format!("secret={key}")), "{url}");
    assert!(url.contains(&ana.email.replace('@', "%40")), "{url}");
    assert_eq!(
        b.attr("a[href^='otpauth:']", "href").as_deref(),
        Some(url.as_str())
    );

    // A wrong code shows the same code again; the right one turns it on.
    let right = server.totp_code(&key);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    b.fill("#code", &wrong);
    b.click("form[action='/account/authenticator/confirm'] button");
    assert!(
        b.text("[role=alert]").contains("wrong"),
        "{}",
        b.text("main")
    );
    assert_eq!(b.qr_codes(), read);
    b.fill("#code", &right);
    b.click("form[action='/account/authenticator/confirm'] button");
    assert_eq!(b.path(), "/account?done=totp");
    assert!(b.text("[role=status]").contains("authenticator app is on"));
    assert!(!b.has("a[href='/account/authenticator']"));

    // Signing in again asks for a code from the app.
    server.next_totp_step();
    b.click("form.signout button");
    b.goto("/signin");
    b.fill("#email", &ana.email);
    b.fill("#password", USER_PASSWORD);
    b.click("button[type=submit]");
    assert!(b.path().starts_with("/signin/code"), "{}", b.path());
    b.fill("#code", &server.totp_code(&key));
    b.click("button[type=submit]");
    assert_eq!(b.path(), format!("/t/{}", acme.tenant_id));
    let enabled = root
        .audit_events()
        .into_iter()
        .filter(|e| e.action == "user.totp_enable" && e.actor_id.as_deref() == Some(&ana.user_id))
        .count();
    assert_eq!(enabled, 1);
}

#[test]
fn a_session_that_did_not_see_the_key_cannot_read_it_back() {
    let server = Server::start();
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let ana = acme.member("operator");
    // She starts a set-up elsewhere; a second session of hers posts a wrong code without the
    // key it never saw.
    let started = server
        .sign_in(&ana.email, USER_PASSWORD)
        .post(
            "/api/v1/me/totp",
            serde_json::json!({ "current_password": USER_PASSWORD }),
        )
        .expect(200);
    let key = started["secret"].as_str().unwrap();
    let other = server.sign_in(&ana.email, USER_PASSWORD);
    let cookie = session_cookie(&other.secret);
    let form = server.page("/account/authenticator", &cookie, "en");
    for sent in ["", "AAAABBBBCCCCDDDD"] {
        let page = server.post_page(
            "/account/authenticator/confirm",
            &cookie,
            &[
                ("csrf", &form.form_token()),
                ("code", "000000"),
                ("secret", sent),
            ],
        );
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(
            page.body.contains("started again elsewhere"),
            "{}",
            page.body
        );
        assert!(!page.body.contains(key), "the key is not on the page");
        assert!(!page.body.contains("otpauth:"));
    }
    // With the key, the page shows it again (it is the one who was shown it).
    let page = server.post_page(
        "/account/authenticator/confirm",
        &cookie,
        &[
            ("csrf", &form.form_token()),
            ("code", "000000"),
            ("secret", key),
        ],
    );
    assert_eq!(page.status, 400);
    assert!(page.body.contains("otpauth:"), "{}", page.body);
}
