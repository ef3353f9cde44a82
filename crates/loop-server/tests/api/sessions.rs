//! Sessions: their lifetimes, revocation, TOTP, invitations, the cookie and CSRF; secrets
//! kept as hashes.

use super::*;

#[test]
fn an_idle_session_ends_and_the_session_list_says_so() {
    let server = Server::start();
    let admin = server.admin();
    admin.get("/api/v1/me").expect(200);
    server.advance(Duration::from_secs(29 * 60));
    admin.get("/api/v1/me").expect(200);

    server.advance(Duration::from_secs(31 * 60));
    admin
        .get("/api/v1/me")
        .expect_problem(401, "session_expired");
    admin
        .get("/api/v1/me")
        .expect_problem(401, "unauthenticated");

    let fresh = server.admin();
    let sessions = fresh.get("/api/v1/sessions").expect(200);
    let old = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == admin.session_id.as_str())
        .expect("the old session is listed");
    assert!(!old["ended_at"].is_null(), "{old}");
    assert_eq!(old["current"], false);
    let events = fresh.audit_events();
    assert!(events.iter().any(|e| e.action == "session.expire"
        && e.object_id.as_deref() == Some(admin.session_id.as_str())
        && e.details["reason"] == "idle_timeout"));
}

#[test]
fn a_session_in_use_still_ends_at_its_absolute_lifetime() {
    let server = Server::start();
    let admin = server.admin();
    // Used every 25 minutes: never idle, but 12 hours after sign-in it ends.
    let mut minutes = 0;
    while minutes + 25 < 12 * 60 {
        server.advance(Duration::from_secs(25 * 60));
        minutes += 25;
        admin.get("/api/v1/me").expect(200);
    }
    server.advance(Duration::from_secs(25 * 60));
    admin
        .get("/api/v1/me")
        .expect_problem(401, "session_expired");
    let events = server.admin().audit_events();
    assert!(events.iter().any(|e| e.action == "session.expire"
        && e.object_id.as_deref() == Some(admin.session_id.as_str())
        && e.details["reason"] == "absolute_timeout"));
}

#[test]
fn a_remembered_session_outlives_the_normal_idle_window() {
    let server = Server::start();
    let remembered = server.sign_in_with(
        json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "remember": true }),
    );
    let normal = server.admin();
    server.advance(Duration::from_secs(3 * 3600));
    normal
        .get("/api/v1/me")
        .expect_problem(401, "session_expired");
    let me = remembered.get("/api/v1/me").expect(200);
    assert_eq!(me["session"]["remember"], true);

    server.advance(Duration::from_secs(31 * 86_400));
    remembered
        .get("/api/v1/me")
        .expect_problem(401, "session_expired");
}

#[test]
fn revoking_a_session_signs_that_device_out_and_no_other() {
    let server = Server::start();
    let laptop = server.admin();
    let phone = server.admin();
    laptop
        .delete(&format!("/api/v1/sessions/{}", phone.session_id))
        .expect(204);
    phone
        .get("/api/v1/me")
        .expect_problem(401, "unauthenticated");
    laptop.get("/api/v1/me").expect(200);
    let sessions = laptop.get("/api/v1/sessions").expect(200);
    let ended = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == phone.session_id.as_str())
        .unwrap();
    assert!(!ended["ended_at"].is_null());
}

#[test]
fn changing_the_password_ends_the_other_sessions_but_not_this_one() {
    let server = Server::start();
    let here = server.admin();
    let elsewhere = server.admin();
    here.post(
        "/api/v1/me/password",
        json!({ "current_password": ADMIN_PASSWORD, "new_password": "a-brand-new-password" }),
    )
    .expect(204);
    here.get("/api/v1/me").expect(200);
    elsewhere
        .get("/api/v1/me")
        .expect_problem(401, "unauthenticated");
    server
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .expect_problem(401, "invalid_credentials");
    server.sign_in(ADMIN_EMAIL, "a-brand-new-password");
}

/// A sign-in whose password was checked before a password change committed opens no
/// session after it; nor does one waiting for its authenticator code, before or after.
#[test]
fn a_sign_in_checked_before_a_password_change_opens_nothing_after_it() {
    use loop_server::auth::{ClientInfo, signin};
    use loop_server::db::challenges;
    let server = Server::start();
    let here = server.admin();
    let client = ClientInfo {
        ip: Some("192.0.2.7".into()),
        user_agent: Some("racing".into()),
    };
    let now = server.state.now();
    let state = &server.state;
    let checked = || {
        server
            .block_on(signin::password(
                state,
                &client,
                ADMIN_EMAIL,
                ADMIN_PASSWORD,
                now,
            ))
            .expect("the password is right")
    };
    let sessions = || {
        here.get("/api/v1/sessions")
            .expect(200)
            .as_array()
            .map(Vec::len)
    };
    let (user, attempted) = checked();
    let verified = user.password_hash.clone().unwrap();
    let challenge = |secret: &str| {
        server.block_on(challenges::insert(
            &state.db.pool,
            secret,
            (&user.user.id, &verified),
            false,
            now + 60_000,
        ))
    };
    assert!(challenge("waiting").unwrap());
    let sessions_before = sessions();

    here.post(
        "/api/v1/me/password",
        json!({ "current_password": ADMIN_PASSWORD, "new_password": "a-brand-new-password" }),
    )
    .expect(204);
    let refused = server
        .block_on(signin::open(
            state, &client, &user, attempted, None, true, now,
        ))
        .err()
        .expect("no session opens");
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(sessions(), sessions_before);
    // The challenge opened before the change is gone; one opened after it is refused.
    let pool = &state.db.pool;
    assert!(
        server
            .block_on(challenges::try_once(pool, "waiting", now))
            .unwrap()
            .is_none()
    );
    assert!(!challenge("late").unwrap());
    assert!(
        server
            .block_on(challenges::try_once(pool, "late", now))
            .unwrap()
            .is_none()
    );
}

/// A second enrolment that checks the password while the first one's code turns the
/// authenticator on must not turn it off again: the enrolment is refused, and sign-in asks
/// for codes of the secret that was confirmed.
#[test]
fn an_enrolment_racing_a_confirmation_leaves_the_authenticator_on() {
    let server = Server::start();
    let admin = server.admin();
    let enrol = || {
        admin.post(
            "/api/v1/me/totp",
            json!({ "current_password": ADMIN_PASSWORD }),
        )
    };
    let secret = enrol().expect(200)["secret"].as_str().unwrap().to_string();
    let into_step = server.state.now().rem_euclid(30_000) as u64;
    server.advance(Duration::from_millis(30_000 - into_step + 500));
    let code = server.totp_code(&secret);
    let (again, confirmed) = std::thread::scope(|sc| {
        let again = sc.spawn(|| enrol().status);
        let confirmed = sc.spawn(|| {
            admin
                .post("/api/v1/me/totp/confirm", json!({ "code": code }))
                .status
        });
        (again.join().unwrap(), confirmed.join().unwrap())
    });
    let me = admin.get("/api/v1/me").expect(200);
    if confirmed == 204 {
        assert_eq!(again, 409, "the second enrolment was not refused");
        assert_eq!(me["user"]["totp_enabled"], true, "{me:#}");
        server
            .login(ADMIN_EMAIL, ADMIN_PASSWORD)
            .expect_problem(401, "totp_required");
    } else {
        // The second enrolment came first: the first secret's code no longer confirms
        // (`409` when the confirmation had read the first secret, `400` when the second).
        assert_eq!(again, 200);
        assert!(matches!(confirmed, 400 | 409), "{confirmed}");
        assert_eq!(me["user"]["totp_enabled"], false, "{me:#}");
    }
}

#[test]
fn once_totp_is_enabled_sign_in_asks_for_the_code() {
    let server = Server::start();
    let admin = server.admin();
    admin
        .post(
            "/api/v1/me/totp",
            json!({ "current_password": "not-my-password" }),
        )
        .expect_problem(400, "wrong_password");
    let enrolment = admin
        .post(
            "/api/v1/me/totp",
            json!({ "current_password": ADMIN_PASSWORD }),
        )
        .expect(200);
    let secret = enrolment["secret"].as_str().unwrap().to_string();
    assert!(
        enrolment["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    // The database holds the secret only wrapped under the master key.
    assert!(!server.database_holds(&secret));
    // Not yet confirmed: sign-in still needs only the password.
    server.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD);
    // Codes change every 30 s of the server's clock. Starting just after a step begins keeps
    // every step boundary out of what follows, which counts on two calls seeing one code.
    let into_step = server.state.now().rem_euclid(30_000) as u64;
    server.advance(Duration::from_millis(30_000 - into_step + 500));
    admin
        .post("/api/v1/me/totp/confirm", json!({ "code": "000000" }))
        .expect_problem(400, "invalid_totp");
    admin
        .post(
            "/api/v1/me/totp/confirm",
            json!({ "code": server.totp_code(&secret) }),
        )
        .expect(204);

    server
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .expect_problem(401, "totp_required");
    // The code used to confirm cannot be used again (RFC 6238 5.2): sign-in waits for the
    // next one.
    let with_code = |code: String| {
        server.call(
            "post",
            "/api/v1/auth/login",
            None,
            Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": code })),
        )
    };
    with_code(server.totp_code(&secret)).expect_problem(401, "invalid_totp");
    server.advance(Duration::from_secs(30));
    let wrong = if server.totp_code(&secret) == "123456" {
        "654321"
    } else {
        "123456"
    };
    server
        .call(
            "post",
            "/api/v1/auth/login",
            None,
            Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": wrong })),
        )
        .expect_problem(401, "invalid_totp");
    let admin = server.sign_in_with(json!({
        "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": server.totp_code(&secret),
    }));
    let me = admin.get("/api/v1/me").expect(200);
    assert_eq!(me["user"]["totp_enabled"], true);
    with_code(server.totp_code(&secret)).expect_problem(401, "invalid_totp");
    // Each refused code (reused, wrong, reused) raised an event the account's tenant's
    // notification targets hear.
    let refused = admin.events(&admin.provider_tenant_id(), "security-totp-failed");
    assert_eq!(refused.len(), 3, "{refused:#?}");
    assert_eq!(refused[0]["severity"], "warning");
}

#[test]
fn an_invited_user_signs_in_only_after_setting_a_password_once() {
    let server = Server::start();
    let admin = server.admin();
    let tenant = admin.provider_tenant_id();
    let created = admin
        .post(
            "/api/v1/users",
            json!({
                "tenant_id": tenant, "email": "new@example.com", "first_name": "New",
                "last_name": "Person",
            }),
        )
        .expect(201);
    assert_eq!(created["user"]["status"], "invited");
    let invite = created["invite_token"].as_str().unwrap().to_string();
    server
        .login("new@example.com", "anything-at-all-1")
        .expect_problem(401, "invalid_credentials");
    let accept = |password: &str| {
        server.call(
            "post",
            "/api/v1/auth/accept-invite",
            None,
            Some(&json!({ "invite_token": invite, "password": password })),
        )
    };
    accept("short").expect_problem(400, "invalid_request");
    accept("invitee-password-1").expect(204);
    accept("another-password-1").expect_problem(404, "not_found");
    server.sign_in("new@example.com", "invitee-password-1");

    // An invitation left unused for more than 7 days no longer works.
    let late = admin
        .post(
            "/api/v1/users",
            json!({
                "tenant_id": tenant, "email": "late@example.com", "first_name": "Late",
                "last_name": "Person",
            }),
        )
        .expect(201);
    server.advance(Duration::from_secs(7 * 86_400 + 60));
    server
        .call(
            "post",
            "/api/v1/auth/accept-invite",
            None,
            Some(&json!({ "invite_token": late["invite_token"], "password": "late-password-12" })),
        )
        .expect_problem(410, "invite_expired");
}

#[test]
fn a_browser_session_is_a_cookie_holding_only_a_random_id() {
    let server = Server::start();
    let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
              Chrome/120.0.0.0 Safari/537.36";
    let r = server
        .request(reqwest::Method::POST, "/api/v1/auth/login")
        .header(reqwest::header::USER_AGENT, ua)
        .json(&json!({
            "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "device_label": "office laptop",
        }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = r.json().unwrap();
    let token = body["session_token"].as_str().unwrap();
    assert!(
        cookie.starts_with(&format!("loop_session={token};")),
        "{cookie}"
    );
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing from {cookie}");
    }
    assert!(
        !cookie.contains("Max-Age"),
        "a normal session ends with the browser: {cookie}"
    );
    assert_eq!(token.len(), 4 + 64, "lps_ and 256 random bits in hex");

    // The cookie alone signs the browser in.
    let me = server.send(
        server
            .request(reqwest::Method::GET, "/api/v1/me")
            .header(reqwest::header::COOKIE, format!("loop_session={token}")),
    );
    assert_eq!(me.status, 200, "{}", me.body);
    let session = &me.json()["session"];
    assert_eq!(session["browser"], "Chrome 120.0.0.0");
    assert_eq!(session["os"], "Linux");
    assert_eq!(session["device_label"], "office laptop");
    assert_eq!(session["ip"], "127.0.0.1");

    // The database keeps a hash, never the ID itself.
    assert!(!server.database_holds(token));

    // A remembered session is a persistent cookie.
    let r = server
        .request(reqwest::Method::POST, "/api/v1/auth/login")
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "remember": true }))
        .send()
        .unwrap();
    let cookie = r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains(&format!("Max-Age={}", 30 * 86_400)),
        "{cookie}"
    );
}

#[test]
fn a_change_sent_with_the_cookie_from_another_site_is_refused() {
    let server = Server::start();
    let admin = server.admin();
    let cookie = format!("loop_session={}", admin.secret);
    let tenant = admin.provider_tenant_id();
    let attempt = |headers: &[(&str, &str)]| {
        let mut req = server
            .request(Method::POST, "/api/v1/tenants")
            .header(reqwest::header::COOKIE, &cookie)
            .json(&json!({ "parent_id": tenant, "kind": "customer", "name": "Forged" }));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        server.send(req)
    };
    attempt(&[("sec-fetch-site", "cross-site")]).expect_problem(403, "cross_site_request");
    attempt(&[("sec-fetch-site", "same-site")]).expect_problem(403, "cross_site_request");
    attempt(&[("origin", "https://evil.example")]).expect_problem(403, "cross_site_request");
    // The console's own pages, and clients that are not browsers, pass.
    attempt(&[("sec-fetch-site", "same-origin")]).expect(201);
    let own = format!("https://{}", server.base.trim_start_matches("https://"));
    attempt(&[("origin", own.as_str())]).expect(201);
    // Reads with the cookie are not changes.
    let r = server.send(
        server
            .request(Method::GET, "/api/v1/me")
            .header(reqwest::header::COOKIE, &cookie)
            .header("sec-fetch-site", "cross-site"),
    );
    assert_eq!(r.status, 200);
    let names: Vec<String> = admin
        .get("/api/v1/tenants")
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "Forged").count(),
        2,
        "{names:?}"
    );
}

#[test]
fn token_secrets_and_enrolment_codes_are_kept_only_as_hashes() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = support::vault::customer_with_vault(&admin, "Hashes", None);
    let (token_id, secret) = support::vault::token(&admin, &tenant, &["manage"], None);
    let code = admin
        .post(
            "/api/v1/devices/enroll-codes",
            json!({ "tenant_id": tenant }),
        )
        .expect(201)["code"]
        .as_str()
        .unwrap()
        .to_string();
    // The secret works: the server compares what it is shown with what it keeps.
    let opened = server.call(
        "post",
        &format!("/vaults/{vault}/v1/open"),
        Some(&secret),
        Some(&json!({ "operation": "check", "host": "h" })),
    );
    assert_eq!(opened.status, 200, "{}", opened.body);
    // The token's row is there, found by its ID; its secret and the code are not.
    assert!(server.database_holds(&token_id));
    assert!(
        !server.database_holds(&secret),
        "the token's secret is stored"
    );
    assert!(
        !server.database_holds(&code),
        "the enrolment code is stored"
    );
}

/// An account stored under an address today's input rules refuse (one the mail client cannot
/// send to, such as `a..b@example.com`) still signs in and may ask for a password reset:
/// the stricter rule is for new addresses, not for finding existing accounts.
#[test]
fn an_account_under_an_address_now_refused_as_input_still_signs_in() {
    let server = Server::start();
    let admin = server.admin();
    let tenant = admin.customer_tenant("Old");
    let id = admin.user_in(&tenant, "old.style@example.com", "Olde", "admin");
    server
        .block_on(
            sqlx::query("UPDATE users SET email = 'old..style@example.com' WHERE id = $1")
                .bind(&id)
                .execute(&server.state.db.pool),
        )
        .unwrap();
    server
        .login("old..style@example.com", USER_PASSWORD)
        .expect(200);
    server
        .call(
            "post",
            "/api/v1/auth/password-reset",
            None,
            Some(&json!({ "email": "old..style@example.com" })),
        )
        .expect(202);
}
