//! The reader's own account in the browser: withdrawing consent to product news,
//! downloading "my data", signing out another browser's session; and, as plain HTTP, the
//! profile and password forms with the API's rules.

use serde_json::json;

use super::support::console::session_cookie;
use super::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, USER_PASSWORD};
use super::{browser, sign_in};

#[test]
fn a_person_withdraws_consent_and_downloads_their_data_in_the_browser() {
    let server = Server::start();
    let admin = server.admin();
    admin
        .put("/api/v1/me/marketing-consent", json!({ "given": true }))
        .expect(200);
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, ADMIN_EMAIL, ADMIN_PASSWORD);
    b.click("nav a[href='/account']");
    b.wait_for_path("/account");
    assert!(b.text("main").contains("You receive product news by mail."));
    b.click("form[action='/account/consent'] button");
    b.wait_for_path("/account?done=consent");
    assert!(b.text("[role=status]").contains("Your choice is saved."));
    assert!(b.text("main").contains("You receive no product news."));
    let me = admin.get("/api/v1/me").expect(200);
    assert_eq!(me["user"]["marketing_consent"], false);
    let consents = admin
        .get(&format!(
            "/api/v1/audit?tenant_id={}&action=user.marketing_consent",
            admin.provider_tenant_id()
        ))
        .expect(200);
    assert!(
        consents
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["details"]["given"] == false),
        "{consents}"
    );

    // "Download my data": the archive is made by a job; the page offers it once it is ready.
    b.click("form[action='/account/export'] button");
    b.wait_for_path("/account?done=export");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !b.has("a.download") {
        assert!(
            std::time::Instant::now() < deadline,
            "the archive never became ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        b.goto("/account");
    }
    b.click_here("a.download");
    let (name, bytes) = b.downloaded("loop-backup-data-");
    assert!(name.ends_with(".zip"), "{name}");
    let id = name
        .trim_start_matches("loop-backup-data-")
        .trim_end_matches(".zip");
    let record = admin.get(&format!("/api/v1/data-exports/{id}")).expect(200);
    let sha = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    assert_eq!(record["sha256"], hex::encode(sha.as_ref()));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip file");
    let mut profile = String::new();
    std::io::Read::read_to_string(
        &mut zip.by_name("profile.json").expect("the profile"),
        &mut profile,
    )
    .unwrap();
    assert!(profile.contains(ADMIN_EMAIL), "{profile}");
}

#[test]
fn signing_out_another_browser_ends_its_session_there() {
    let server = Server::start();
    let (Some(laptop), Some(phone)) = (browser(&server), browser(&server)) else {
        return;
    };
    sign_in(&laptop, ADMIN_EMAIL, ADMIN_PASSWORD);
    sign_in(&phone, ADMIN_EMAIL, ADMIN_PASSWORD);
    let phone_secret = phone.cookie("loop_session").unwrap();
    let phone_id = server
        .call("get", "/api/v1/me", Some(&phone_secret), None)
        .expect(200)["session"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    laptop.click("nav a[href='/account/sessions']");
    laptop.wait_for_path("/account/sessions");
    // The laptop's own session is marked, and has no sign-out button of its own.
    assert!(laptop.text("main").contains("this session"));
    laptop.click(&format!("tr[data-session='{phone_id}'] button"));
    laptop.wait_for_path("/account/sessions?done=revoked");
    assert!(
        laptop
            .text("[role=status]")
            .contains("That session is signed out.")
    );
    assert!(
        laptop
            .text(&format!("tr[data-session='{phone_id}']"))
            .contains("ended")
    );

    // The phone's next page is the sign-in form; the laptop goes on.
    phone.goto("/account");
    phone.wait_for_path("/signin?next=%2Faccount");
    laptop.goto("/account");
    laptop.wait_for_path("/account");
}

#[test]
fn the_profile_and_password_forms_follow_the_apis_rules() {
    let server = Server::start();
    let admin = server.admin();
    let cookie = session_cookie(&admin.secret);
    let page = server.page("/account", &cookie, "en");
    assert_eq!(page.status, 200, "{}", page.body);
    let token = page.form_token();
    let profile = |first: &str, language: &str| {
        server.post_page(
            "/account/profile",
            &cookie,
            &[
                ("csrf", &token),
                ("first_name", first),
                ("last_name", "Admin"),
                ("business_address", ""),
                ("email", ADMIN_EMAIL),
                ("language", language),
            ],
        )
    };
    let saved = profile("Ada", "nl");
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), Some("/account?done=profile"));
    let me = admin.get("/api/v1/me").expect(200);
    assert_eq!(me["user"]["first_name"], "Ada");
    assert_eq!(me["user"]["language"], "nl");
    // The chosen language wins over the browser's.
    let shown = server.page("/account?done=profile", &cookie, "en");
    assert!(shown.body.contains("<html lang=\"nl\">"), "{}", shown.body);
    assert!(shown.body.contains("Opgeslagen."), "{}", shown.body);
    // A name the API refuses is refused here too, with its reason.
    let bad = profile("Ada\u{202e}", "en");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("role=\"alert\""), "{}", bad.body);
    assert_eq!(
        admin.get("/api/v1/me").expect(200)["user"]["first_name"],
        "Ada"
    );
    // A new address asks for the current password.
    let moved = |password: &str| {
        server.post_page(
            "/account/profile",
            &cookie,
            &[
                ("csrf", &token),
                ("first_name", "Ada"),
                ("last_name", "Admin"),
                ("email", "ada.moved@example.org"),
                ("language", "nl"),
                ("email_password", password),
            ],
        )
    };
    assert_eq!(moved("").status, 400);
    assert!(admin.get("/api/v1/me").expect(200)["user"]["pending_email"].is_null());
    assert_eq!(moved(ADMIN_PASSWORD).status, 303);
    assert_eq!(
        admin.get("/api/v1/me").expect(200)["user"]["pending_email"],
        "ada.moved@example.org"
    );

    // The password: the current one is checked (and a wrong one audited), then every other
    // session ends.
    let other = server.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD);
    let change = |current: &str| {
        server.post_page(
            "/account/password",
            &cookie,
            &[
                ("csrf", &token),
                ("current_password", current),
                ("new_password", "a-new-long-password"),
            ],
        )
    };
    let wrong = change("not-it");
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    other.get("/api/v1/me").expect(200);
    let changed = change(ADMIN_PASSWORD);
    assert_eq!(changed.status, 303, "{}", changed.body);
    other
        .get("/api/v1/me")
        .expect_problem(401, "unauthenticated");
    admin.get("/api/v1/me").expect(200);
    server.sign_in(ADMIN_EMAIL, "a-new-long-password");
}

/// The first time a page shows, as (its UTC moment, its text).
fn first_time(b: &loop_testkit::browser::Browser) -> (chrono::DateTime<chrono::Utc>, String) {
    let at = b.attr("main time", "datetime").expect("a time on the page");
    let at = chrono::DateTime::parse_from_rfc3339(&at).unwrap().to_utc();
    (at, b.text("main time"))
}

#[test]
fn times_show_in_the_tenants_zone_until_a_person_chooses_their_own() {
    use loop_api::schedule::parse_time_zone;
    let server = Server::start();
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    root.patch(
        &format!("/api/v1/tenants/{}", acme.tenant_id),
        json!({ "time_zone": "Asia/Tokyo" }),
    )
    .expect(200);
    let Some(b) = browser(&server) else {
        return;
    };
    let ana = acme.member("admin");
    let me = || server.as_member(ana).get("/api/v1/me").expect(200);
    sign_in(&b, &ana.email, USER_PASSWORD);
    b.goto("/account/sessions");
    let (at, shown) = first_time(&b);
    let tokyo = at.with_timezone(&parse_time_zone("Asia/Tokyo").unwrap());
    assert_eq!(shown, tokyo.format("%Y-%m-%d %H:%M JST").to_string());

    // Her own zone, chosen on the account page, wins over the tenant's.
    b.goto("/account");
    assert!(
        b.text("#time_zone option:checked").contains("Asia/Tokyo"),
        "the tenant's zone is the default: {}",
        b.text("#time_zone option:checked")
    );
    b.click_here("#time_zone option[value='America/New_York']");
    b.click("form[action='/account/profile'] button[type=submit]");
    assert_eq!(me()["user"]["time_zone"], "America/New_York");
    b.goto("/account/sessions");
    let (at, shown) = first_time(&b);
    let new_york = at.with_timezone(&parse_time_zone("America/New_York").unwrap());
    let abbreviation = if shown.ends_with("EDT") { "EDT" } else { "EST" };
    assert_eq!(
        shown,
        new_york
            .format(&format!("%Y-%m-%d %H:%M {abbreviation}"))
            .to_string()
    );

    // Back to the tenant's.
    b.goto("/account");
    b.click_here("#time_zone option[value='']");
    b.click("form[action='/account/profile'] button[type=submit]");
    assert!(me()["user"]["time_zone"].is_null());
    // A zone that does not exist is refused as the API refuses it.
    let cookie = session_cookie(&ana.secret);
    let token = server.page("/account", &cookie, "en").form_token();
    let now = me();
    let refused = server.post_page(
        "/account/profile",
        &cookie,
        &[
            ("csrf", &token),
            ("first_name", now["user"]["first_name"].as_str().unwrap()),
            ("last_name", now["user"]["last_name"].as_str().unwrap()),
            ("email", &ana.email),
            ("language", "en"),
            ("time_zone", "Mars/Olympus"),
        ],
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(me()["user"]["time_zone"].is_null());
}
