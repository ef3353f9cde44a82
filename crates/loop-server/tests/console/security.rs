//! What every page promises a browser: the security headers, forms that need their token,
//! and a sign-in that never sends anyone to another site.

use super::support::console::{Page, session_cookie};
use super::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Server};

/// The policy every page carries, word for word.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn assert_secured(path: &str, p: &Page) {
    let h = |name: &str| {
        p.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path} ({}) has no {name}", p.status))
            .to_string()
    };
    assert_eq!(h("content-security-policy"), CSP, "{path}");
    assert_eq!(h("x-frame-options"), "DENY", "{path}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
    assert_eq!(h("referrer-policy"), "no-referrer", "{path}");
    assert_eq!(h("cache-control"), "no-store", "{path}");
    assert_eq!(h("content-type"), "text/html; charset=utf-8", "{path}");
}

/// The form cookie a page gave, as the browser sends it back.
fn form_cookie(p: &Page) -> String {
    format!(
        "loop_form={}",
        p.set_cookie("loop_form").expect("a form cookie")
    )
}

#[test]
fn every_page_carries_the_security_headers() {
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let signed_in = session_cookie(&admin.secret);
    let mut pages: Vec<(String, String)> = [
        "/signin",
        "/signin?next=%2Ft%2Fx",
        "/signup",
        "/signup/confirm?token=lps_x",
        "/reset",
        "/reset?code=lpr_x",
    ]
    .into_iter()
    .map(|p| (p.to_string(), String::new()))
    .collect();
    // Every page of a signed-in reader, from the server's own list, on the provider's tenant
    // and on one that does not exist.
    for tenant in [provider.as_str(), "tn_00000000000000000000000000000000"] {
        for (method, path) in loop_server::pages::SIGNED_IN_PAGES {
            if *method == "get" && path != &"/" {
                pages.push((path.replace("{tenant}", tenant), signed_in.clone()));
            }
        }
    }
    for (path, cookie) in &pages {
        let p = server.page(path, cookie, "en");
        assert!(
            [200, 404].contains(&p.status),
            "{path}: {} {}",
            p.status,
            p.body
        );
        assert_secured(path, &p);
        assert!(p.body.starts_with("<!DOCTYPE html>"), "{path}");
    }
    // The style sheet is the server's own, kept by browsers, never sniffed as anything else.
    let page = server.page("/signin", "", "en");
    let at = page.body.find("/assets/console-").expect("a style sheet");
    let href = &page.body[at..at + page.body[at..].find('"').unwrap()];
    let css = server.page(href, "", "en");
    assert_eq!(css.status, 200);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert_eq!(css.headers["x-content-type-options"], "nosniff");
    assert!(css.body.contains(":focus-visible"));
    assert_eq!(server.page("/assets/console-0.css", "", "en").status, 404);
}

#[test]
fn a_sign_out_sent_back_to_an_address_no_redirect_can_carry_goes_to_the_own_list() {
    let server = Server::start();
    let admin = server.admin();
    let other = server.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD);
    let other_id = other.get("/api/v1/me").expect(200)["session"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cookie = session_cookie(&admin.secret);
    let home = server.page("/", &cookie, "en");
    let token = server
        .page(home.location().unwrap(), &cookie, "en")
        .form_token();
    let back = "/t/x\r\nSet-Cookie: a=b/sessions";
    let out = server.post_page(
        &format!("/sessions/{other_id}/revoke"),
        &cookie,
        &[("csrf", &token), ("back", back)],
    );
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(out.location(), Some("/account/sessions?done=revoked"));
    other
        .get("/api/v1/me")
        .expect_problem(401, "unauthenticated");
}

#[test]
fn a_form_without_its_token_is_refused_and_changes_nothing() {
    let server = Server::start();
    let admin = server.admin();
    let other = server.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD);
    let cookie = session_cookie(&admin.secret);
    let home = server.page("/", &cookie, "en");
    assert_eq!(home.status, 303);
    let dashboard = server.page(home.location().unwrap(), &cookie, "en");
    let token = dashboard.form_token();
    // Without a token, with the token of another session, or an empty one: refused, and
    // the session goes on.
    let other_token = server
        .page(
            home.location().unwrap(),
            &session_cookie(&other.secret),
            "en",
        )
        .form_token();
    assert_ne!(token, other_token);
    for fields in [
        vec![],
        vec![("csrf", other_token.as_str())],
        vec![("csrf", "")],
    ] {
        let refused = server.post_page("/signout", &cookie, &fields);
        assert_eq!(refused.status, 403, "{fields:?}: {}", refused.body);
        assert_secured("/signout", &refused);
        assert!(
            refused.body.contains("This form has expired"),
            "{}",
            refused.body
        );
        admin.get("/api/v1/me").expect(200);
    }
    // With it: signed out.
    let out = server.post_page("/signout", &cookie, &[("csrf", &token)]);
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(out.location(), Some("/signin"));
    admin
        .get("/api/v1/me")
        .expect_problem(401, "unauthenticated");

    // Before a session, the form cookie gives the token: a sign-in without it is refused
    // before the password is even looked at.
    let form = server.page("/signin", "", "en");
    let fields = [("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)];
    let refused = server.post_page("/signin", "", &fields);
    assert_eq!(refused.status, 403, "{}", refused.body);
    let refused = server.post_page("/signin", &form_cookie(&form), &fields);
    assert_eq!(refused.status, 403, "{}", refused.body);
    let token = form.form_token();
    let mut with = fields.to_vec();
    with.push(("csrf", &token));
    let signed_in = server.post_page("/signin", &form_cookie(&form), &with);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert!(signed_in.set_cookie("loop_session").is_some());
}

#[test]
fn a_sign_in_leads_only_to_this_site_and_remembers_only_when_asked() {
    let server = Server::start();
    let form = server.page("/signin", "", "en");
    let cookie = form_cookie(&form);
    let token = form.form_token();
    let sign_in = |next: &str, remember: bool| {
        let mut fields = vec![
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("csrf", token.as_str()),
            ("next", next),
        ];
        if remember {
            fields.push(("remember", "on"));
        }
        server.post_page("/signin", &cookie, &fields)
    };
    for (next, to) in [
        ("/t/abc?x=1", "/t/abc?x=1"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("", "/"),
    ] {
        let p = sign_in(next, false);
        assert_eq!(p.status, 303, "{next}: {}", p.body);
        assert_eq!(p.location(), Some(to), "{next}");
    }
    // Without a session, a page leads to sign-in and back to it; a form posted leads to
    // sign-in and then to the start page (its post is not repeated).
    let page = server.page("/account?x=1", "", "en");
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), Some("/signin?next=%2Faccount%3Fx%3D1"));
    let post = server.post_page("/account/consent", "", &[("given", "yes")]);
    assert_eq!(post.status, 303);
    assert_eq!(post.location(), Some("/signin?next=%2F"));

    // Without "remember me" the cookie lasts while the browser runs; with it, for the
    // configured days.
    let session = |p: &Page| {
        p.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("loop_session="))
            .expect("a session cookie")
    };
    let plain = session(&sign_in("/", false));
    assert!(!plain.contains("Max-Age"), "{plain}");
    assert!(
        plain.contains("HttpOnly") && plain.contains("Secure"),
        "{plain}"
    );
    let days = server.state.config.session.remember_days as i64;
    let remembered = session(&sign_in("/", true));
    assert!(
        remembered.contains(&format!("Max-Age={}", days * 86_400)),
        "{remembered}"
    );
}

#[test]
fn a_wrong_password_is_told_as_the_api_tells_it_and_kept_out_of_the_page() {
    let server = Server::start();
    let form = server.page("/signin", "", "nl-NL,nl;q=0.9");
    assert!(form.body.contains("<html lang=\"nl\">"), "{}", form.body);
    assert!(form.body.contains("Inloggen"));
    let cookie = form_cookie(&form);
    let token = form.form_token();
    let attempt = |email: &str, password: &str| {
        server.post_page(
            "/signin",
            &cookie,
            &[("email", email), ("password", password), ("csrf", &token)],
        )
    };
    let wrong = attempt(ADMIN_EMAIL, "not-the-password");
    let unknown = attempt("nobody@<b>x</b>.example", "not-the-password");
    for p in [&wrong, &unknown] {
        assert_eq!(p.status, 401, "{}", p.body);
        assert!(
            p.body
                .contains("The e-mail address or the password is wrong."),
            "{}",
            p.body
        );
        assert!(
            !p.body.contains("not-the-password"),
            "the password is never shown"
        );
    }
    // The typed address is shown again, escaped.
    assert!(
        unknown
            .body
            .contains("value=\"nobody@&lt;b&gt;x&lt;/b&gt;.example\"")
    );
    // Too many: throttled, with the wait in the page and in Retry-After.
    let max = server.state.config.signin.max_failures_per_account as usize;
    let mut last = wrong;
    for _ in 0..max {
        last = attempt(ADMIN_EMAIL, "not-the-password");
    }
    assert_eq!(last.status, 429, "{}", last.body);
    assert!(last.headers.contains_key("retry-after"));
    assert!(
        last.body.contains("Too many failed attempts"),
        "{}",
        last.body
    );
}

/// Between the password and the authenticator code: a cookie sent only to `/signin/code`,
/// for five minutes and at most five codes.
#[test]
fn a_sign_in_waiting_for_its_code_takes_five_codes_within_five_minutes() {
    let server = Server::start();
    let admin = server.admin();
    let secret = server.enable_totp(&admin, ADMIN_PASSWORD);
    let form = server.page("/signin", "", "en");
    let cookie = form_cookie(&form);
    let token = form.form_token();
    let challenged = || {
        let p = server.post_page(
            "/signin",
            &cookie,
            &[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("csrf", &token),
            ],
        );
        assert_eq!(p.status, 303, "{}", p.body);
        assert!(p.set_cookie("loop_session").is_none());
        p
    };
    let answer = |held: &str, code: &str| {
        server.post_page(
            "/signin/code",
            &format!("{cookie}; loop_signin={held}"),
            &[("code", code), ("csrf", &token)],
        )
    };
    let gone = |p: &Page| p.body.contains("Too long ago or too many codes");

    let first = challenged();
    let set: Vec<&str> = first
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|c| c.starts_with("loop_signin="))
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
    for attribute in [
        "Path=/signin/code",
        "Max-Age=300",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
    ] {
        assert!(set[0].contains(attribute), "{attribute} in {}", set[0]);
    }
    // Five minutes later, even the right code finds the challenge gone.
    server.advance(std::time::Duration::from_secs(301));
    let late = answer(
        &first.set_cookie("loop_signin").unwrap(),
        &server.totp_code(&secret),
    );
    assert!(gone(&late), "{}", late.body);
    assert!(late.set_cookie("loop_session").is_none());

    // In time, the right code signs in.
    let second = challenged();
    let held = second.set_cookie("loop_signin").unwrap();
    let signed_in = answer(&held, &server.totp_code(&secret));
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert!(signed_in.set_cookie("loop_session").is_some());

    // Five wrong codes, and the sixth is not looked at, right as it is.
    let third = challenged();
    let held = third.set_cookie("loop_signin").unwrap();
    let near: Vec<String> = (-1..=2).map(|s| server.totp_code_at(&secret, s)).collect();
    let wrong = (0..)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap();
    for _ in 0..5 {
        let p = answer(&held, &wrong);
        assert!(p.body.contains("wrong or was already used"), "{}", p.body);
    }
    server.advance(std::time::Duration::from_secs(30));
    let sixth = answer(&held, &server.totp_code(&secret));
    assert!(gone(&sixth), "{}", sixth.body);
    assert!(sixth.set_cookie("loop_session").is_none());
}
