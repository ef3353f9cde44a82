//! Self-service sign-up: an organisation asks for a trial without any account, confirms the
//! code mailed to it (through a real SMTP server), and its administrator signs in to a
//! customer whose 14-day trial started then. An address that has an account is told so by
//! mail and gets no code; the one who signed up cannot tell. Codes work once and expire;
//! sign-ups are throttled; without a plan offered, sign-up is not there.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::lifecycle::{mail, ms, server_mailing_to, tick};
use support::smtp::SmtpSink;
use support::{ADMIN_EMAIL, Server};

const PASSWORD: &str = "a-long-signup-password";

fn sign_up(server: &Server, email: &str, language: &str) -> support::Reply {
    server.call(
        "post",
        "/api/v1/signup",
        None,
        Some(&json!({
            "organisation": "Zeta Works", "first_name": "Zoë", "last_name": "Zeta",
            "email": email, "password": PASSWORD, "language": language,
        })),
    )
}

fn confirm(server: &Server, token: &str) -> support::Reply {
    server.call(
        "post",
        "/api/v1/signup/confirm",
        None,
        Some(&json!({ "token": token })),
    )
}

/// The code in a sign-up mail.
fn code_in(text: &str) -> String {
    let at = text.find("lps_").expect("a code in the mail");
    text[at..].split_whitespace().next().unwrap().to_string()
}

#[test]
fn an_organisation_signs_up_confirms_and_its_trial_starts() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    // Nothing offered yet: sign-up is off.
    server
        .call("get", "/api/v1/signup/plans", None, None)
        .expect_problem(404, "not_found");
    sign_up(&server, "zoe@zeta.example", "en").expect_problem(404, "not_found");

    let admin = server.admin();
    let plan = server.signup_plan(&admin);
    let offered = server
        .call("get", "/api/v1/signup/plans", None, None)
        .expect(200);
    assert_eq!(offered.as_array().unwrap().len(), 1);
    assert_eq!(offered[0]["id"], json!(plan));

    // The request: nothing is made until the code comes back.
    let before: Vec<Value> = admin
        .get("/api/v1/tenants")
        .expect(200)
        .as_array()
        .unwrap()
        .clone();
    let accepted = sign_up(&server, "zoe@zeta.example", "nl").expect(202);
    assert_eq!(accepted["status"], "confirmation_sent");
    assert_eq!(
        admin
            .get("/api/v1/tenants")
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        before.len()
    );
    let (subject, text) = mail(
        &sink,
        "zoe@zeta.example",
        "Bevestig uw proefperiode van Loop Backup voor Zeta Works",
        1,
    );
    let code = code_in(&text);
    assert!(text.starts_with("Beste Zoë,"), "{subject}: {text}");

    // The code makes the customer, its administrator and the trial.
    let before = server.state.now();
    let made = confirm(&server, &code).expect(201);
    let after = server.state.now();
    let tenant = made["tenant_id"].as_str().unwrap();
    let trial_start = ms(&made["trial_ends_at"]) - 14 * 86_400_000;
    assert!(
        (before..=after).contains(&trial_start),
        "the trial starts at the confirmation"
    );
    confirm(&server, &code).expect_problem(404, "not_found");
    let zoe = server.sign_in("zoe@zeta.example", PASSWORD);
    let t = zoe.get(&format!("/api/v1/tenants/{tenant}")).expect(200);
    assert_eq!(
        (&t["kind"], &t["name"], &t["parent_id"]),
        (
            &json!("customer"),
            &json!("Zeta Works"),
            &json!(admin.provider_tenant_id())
        )
    );
    let s = zoe
        .get(&format!("/api/v1/tenants/{tenant}/subscription"))
        .expect(200);
    assert_eq!(
        (&s["state"], &s["plan"]["id"]),
        (&json!("trial"), &json!(plan))
    );
    assert_eq!(s["trial_ends_at"], made["trial_ends_at"]);
    let me = zoe.get("/api/v1/me").expect(200);
    assert_eq!(me["user"]["language"], "nl");
    // She administers it: she adds a colleague.
    zoe.post(
        "/api/v1/users",
        json!({ "tenant_id": tenant, "email": "ops@zeta.example", "first_name": "Op",
                "last_name": "Zeta", "role": "operator" }),
    )
    .expect(201);
    let actions: Vec<String> = admin
        .audit_events()
        .into_iter()
        .filter(|e| e.tenant_id == tenant)
        .map(|e| e.action)
        .collect();
    for a in [
        "tenant.signup",
        "user.create",
        "role.grant",
        "subscription.start",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }

    // An address with an account: the same answer, and its owner is told, without a code.
    sign_up(&server, ADMIN_EMAIL, "en").expect(202);
    let (subject, text) = mail(
        &sink,
        ADMIN_EMAIL,
        "A Loop Backup sign-up for an address that has an account",
        1,
    );
    assert!(!text.contains("lps_"), "{subject}: {text}");

    // Three sign-ups per address within the throttle's window.
    for _ in 0..3 {
        sign_up(&server, "again@zeta.example", "en").expect(202);
    }
    let refused = sign_up(&server, "again@zeta.example", "en");
    refused.expect_problem(429, "throttled");
    assert!(refused.retry_after.is_some(), "{refused:?}");
    let (_, text) = mail(
        &sink,
        "again@zeta.example",
        "Confirm your Loop Backup trial",
        3,
    );
    let late = code_in(&text);

    // A code expires after 7 days, and the sign-up's personal data is gone then.
    server.advance(Duration::from_secs(7 * 86_400 + 1));
    tick(&server);
    confirm(&server, &late).expect_problem(404, "not_found");
    let left = server.block_on(
        sqlx::query("SELECT COUNT(*) AS n FROM signups").fetch_one(&server.state.db.pool),
    );
    let n: i64 = sqlx::Row::get(&left.unwrap(), "n");
    assert_eq!(n, 0, "expired sign-ups are deleted");
}

/// A form as a browser sends it.
#[test]
fn ten_sign_ups_from_one_client_address_are_taken_and_the_eleventh_waits_for_the_window() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let admin = server.admin();
    server.signup_plan(&admin);
    // Each address once, all from this test's one address: the limit is the client's.
    for n in 0..10 {
        sign_up(&server, &format!("person{n}@many.example"), "en").expect(202);
    }
    let refused = sign_up(&server, "person10@many.example", "en");
    refused.expect_problem(429, "throttled");
    assert!(refused.retry_after.is_some(), "{refused:?}");
    server.advance(Duration::from_secs(15 * 60 + 1));
    sign_up(&server, "person10@many.example", "en").expect(202);
}

fn post_form(
    server: &Server,
    path: &str,
    fields: &[(&str, &str)],
    origin: Option<&str>,
) -> support::Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut req = server
        .request(reqwest::Method::POST, path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept-Language", "en-GB,en;q=0.9")
        .body(body);
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    server.send(req)
}

#[test]
fn an_organisation_signs_up_in_the_browser_and_confirms_from_the_link() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    const PUBLIC: &str = "https://backup.provider.example";
    let server = support::lifecycle::server_mailing_to_with(&sink, |c| {
        c.public_url = Some(PUBLIC.into());
    });
    let page = |path: &str, lang: &str| {
        server.send(
            server
                .request(reqwest::Method::GET, path)
                .header("Accept-Language", lang),
        )
    };
    // Nothing offered: the page says so, as the API does.
    assert_eq!(page("/signup", "en").status, 404);
    let admin = server.admin();
    server.signup_plan(&admin);

    // The form, in the browser's language, under a policy that allows nothing but itself.
    let form = page("/signup", "nl-BE,nl;q=0.9,en;q=0.5");
    assert_eq!(form.status, 200);
    assert_eq!(form.content_type, "text/html; charset=utf-8");
    assert!(form.body.contains("<html lang=\"nl\">"), "{}", form.body);
    assert!(form.body.contains("Aanmelden") && form.body.contains("Self service"));
    let headers = server
        .request(reqwest::Method::GET, "/signup")
        .send()
        .unwrap()
        .headers()
        .clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");

    let fields = |password: &'static str| {
        vec![
            ("organisation", "Yonder & Co"),
            ("first_name", "Yara"),
            ("last_name", "Yonder"),
            ("email", "yara@yonder.example"),
            ("password", password),
        ]
    };
    // Another site's page cannot post it, nor can a form without the token of this
    // browser's form cookie.
    let forged = post_form(
        &server,
        "/signup",
        &fields(PASSWORD),
        Some("https://evil.example"),
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    let untokened = post_form(&server, "/signup", &fields(PASSWORD), None);
    assert_eq!(untokened.status, 403, "{}", untokened.body);
    let shown = server.page("/signup", "", "en-GB");
    let cookie = format!("loop_form={}", shown.set_cookie("loop_form").unwrap());
    let token = shown.form_token();
    let post = |path: &str, fields: &[(&str, &str)]| {
        let mut with = fields.to_vec();
        with.push(("csrf", token.as_str()));
        server.post_page(path, &cookie, &with)
    };
    // A short password: the form again, filled in (escaped), with what is wrong.
    let short = post("/signup", &fields("short"));
    assert_eq!(short.status, 400, "{}", short.body);
    assert!(short.body.contains("role=\"alert\""), "{}", short.body);
    assert!(
        short.body.contains("value=\"Yonder &amp; Co\""),
        "{}",
        short.body
    );
    let sent = post("/signup", &fields(PASSWORD));
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert!(sent.body.contains("Check your mail"), "{}", sent.body);

    // The mail's link opens a page; opening it confirms nothing (a mail scanner may open
    // it), the button does.
    let (_, text) = mail(
        &sink,
        "yara@yonder.example",
        "Confirm your Loop Backup trial",
        1,
    );
    let at = text
        .find(&format!("{PUBLIC}/signup/confirm?token="))
        .expect("a link");
    let link = text[at + PUBLIC.len()..].split_whitespace().next().unwrap();
    let opened = page(link, "en");
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert!(opened.body.contains("method=\"post\""));
    assert_eq!(
        server.login("yara@yonder.example", PASSWORD).status,
        401,
        "not confirmed by opening the link"
    );
    let link_token = link.split("token=").nth(1).unwrap();
    let started = post("/signup/confirm", &[("token", link_token)]);
    assert_eq!(started.status, 201, "{}", started.body);
    assert!(
        started.body.contains("Your trial started"),
        "{}",
        started.body
    );
    assert!(
        started
            .body
            .contains(&format!("loop login --server {PUBLIC}"))
    );
    server.login("yara@yonder.example", PASSWORD).expect(200);
    let again = post("/signup/confirm", &[("token", link_token)]);
    assert_eq!(again.status, 404, "the link works once");
}

/// A person who signed up twice and confirmed once is erased: the other sign-up (their name,
/// organisation, password hash) goes too, and its code no longer makes the account again;
/// where both requests came from (address, browser) goes with them.
#[test]
fn an_erased_persons_other_sign_up_goes_with_them() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let admin = server.admin();
    server.signup_plan(&admin);
    let email = "twice@zeta.example";
    let (zoes_ip, zoes_browser) = (std::net::Ipv4Addr::new(127, 0, 0, 88), "ZoesBrowser/8.8");
    let pem = std::fs::read(server.data_dir.join("tls-cert.pem")).unwrap();
    let from_zoe = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .local_address(std::net::IpAddr::V4(zoes_ip))
        .user_agent(zoes_browser)
        .build()
        .unwrap();
    for _ in 0..2 {
        let asked = from_zoe
            .post(server.url("/api/v1/signup"))
            .json(&json!({
                "organisation": "Zeta Works", "first_name": "Zoë", "last_name": "Zeta",
                "email": email, "password": PASSWORD, "language": "en",
            }))
            .send()
            .unwrap();
        assert_eq!(asked.status(), 202);
    }
    assert!(
        server.database_holds(zoes_browser),
        "the requests were audited"
    );
    let first = code_in(&mail(&sink, email, "Confirm", 1).1);
    let second = code_in(&mail(&sink, email, "Confirm", 2).1);
    let made = confirm(&server, &second).expect(201);
    let users = admin
        .get(&format!(
            "/api/v1/users?tenant_id={}",
            made["tenant_id"].as_str().unwrap()
        ))
        .expect(200);
    let user = users[0]["id"].as_str().unwrap().to_string();
    admin
        .post(
            &format!("/api/v1/users/{user}/erase"),
            json!({ "confirm": email }),
        )
        .expect(200);
    confirm(&server, &first).expect_problem(404, "not_found");
    for trace in ["Zoë", zoes_browser, &zoes_ip.to_string()] {
        assert!(
            !server.database_holds(trace),
            "{trace} is still in the database"
        );
    }
}

/// The sign-up page is the service's own: a partner's plan is not offered there, whether
/// asked for when the plan is made or set in the database by other means.
#[test]
fn only_the_providers_plans_are_offered_on_the_sign_up() {
    let server = Server::start();
    let admin = server.admin();
    let partner = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": admin.provider_tenant_id(), "kind": "partner",
                    "name": "Reseller" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let plan = |signup: bool| {
        admin.post(
            "/api/v1/plans",
            json!({ "issuer_id": partner, "name": format!("Resold {signup}"),
                    "price_cents": 900, "currency": "EUR", "signup": signup }),
        )
    };
    let refused = plan(true);
    refused.expect_problem(400, "invalid_request");
    assert!(
        refused.body.contains("provider's plans"),
        "{}",
        refused.body
    );
    let resold = plan(false).expect(201)["id"].as_str().unwrap().to_string();
    server
        .block_on(
            sqlx::query("UPDATE plans SET signup = 1 WHERE id = $1")
                .bind(&resold)
                .execute(&server.state.db.pool),
        )
        .unwrap();
    server
        .call("get", "/api/v1/signup/plans", None, None)
        .expect_problem(404, "not_found");
    let offered = server.signup_plan(&admin);
    let listed = server
        .call("get", "/api/v1/signup/plans", None, None)
        .expect(200);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [offered.as_str()]);
}
