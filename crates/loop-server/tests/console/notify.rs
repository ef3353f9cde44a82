//! Notifications in the browser: an admin adds a webhook, whose signing secret the page shows
//! once; "Send a test" reaches the receiver signed with that secret and the delivery log
//! shows it delivered; the target is paused, resumed and deleted from its row. A mailing
//! list with a wrong address is refused with the form kept. An auditor reads the page
//! without its buttons.

use std::time::{Duration, Instant};

use loop_testkit::webhook::Receiver;
use serde_json::Value;

use super::support::console::session_cookie;
use super::support::{Server, USER_PASSWORD, with_spare};
use super::{browser, sign_in};

/// The tenant's targets, as the API lists them.
fn targets(server: &Server, tenant: &str) -> Vec<Value> {
    server
        .admin()
        .get(&format!("/api/v1/notify/targets?tenant_id={tenant}"))
        .expect(200)
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_webhook_added_in_the_browser_gets_a_signed_test_and_the_log_shows_it_delivered() {
    let server = Server::start_with(|c| {
        with_spare(c);
        c.notify.allow_private_webhooks = true;
    });
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let receiver = Receiver::start(&[]);
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, &acme.member("admin").email, USER_PASSWORD);
    b.goto(&format!("/t/{}", acme.tenant_id));
    b.click(&format!(
        "nav.tenant a[href='/t/{}/notifications']",
        acme.tenant_id
    ));
    let before = targets(&server, &acme.tenant_id).len();

    b.fill("#webhook-name", "chat room");
    b.fill("#url", &receiver.url());
    b.click_here("#webhook-severity option[value='error']");
    b.click("form:has(input[value='webhook']) button[type=submit]");
    assert!(
        b.text("[role=status]").contains("shown only now"),
        "{}",
        b.text("main")
    );
    let secret = b.text("#webhook-secret");
    assert!(secret.starts_with("lwh_"), "{secret}");
    let listed = targets(&server, &acme.tenant_id);
    assert_eq!(listed.len(), before + 1);
    let made = listed.iter().find(|t| t["name"] == "chat room").unwrap();
    assert_eq!(made["min_severity"], "error");
    let id = made["id"].as_str().unwrap().to_string();
    let row = format!("tr[data-target='{id}']");
    // The row shows where it posts without the path, where services keep a secret.
    let shown = b.text(&row);
    assert!(
        shown.contains(&format!("127.0.0.1:{}", receiver.port)),
        "{shown}"
    );
    assert!(!shown.contains("/hook"), "{shown}");

    // The test reaches the receiver, signed with the secret the page showed.
    b.click(&format!(
        "{row} button[aria-label='Send a test to chat room']"
    ));
    assert!(b.text("[role=status]").contains("on its way"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        if let Some(r) = receiver.got().into_iter().next() {
            break r;
        }
        assert!(Instant::now() < deadline, "the test never arrived");
        std::thread::sleep(Duration::from_millis(100));
    };
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["event"]["kind"], "test", "{body}");
    let header = &got.headers["loop-signature"];
    let t: i64 = header
        .strip_prefix("t=")
        .and_then(|h| h.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    let key = hex::decode(secret.strip_prefix("lwh_").unwrap()).unwrap();
    assert_eq!(
        *header,
        loop_server::notify::webhook::signature(&key, t, &got.body)
    );
    // Reloaded until the log says delivered (the sender records it after the post).
    let delivered = loop {
        b.goto(&format!("/t/{}/notifications", acme.tenant_id));
        let log = b.text("table[aria-labelledby='log-h']");
        if log.contains("delivered") {
            break log;
        }
        assert!(Instant::now() < deadline, "never logged delivered: {log}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        delivered.contains("test") && delivered.contains("chat room"),
        "{delivered}"
    );

    // Paused and resumed from its row.
    b.click(&format!("{row} button[aria-label='Pause chat room']"));
    assert!(b.text(&row).contains("paused"), "{}", b.text(&row));
    let enabled = || {
        root.get(&format!("/api/v1/notify/targets/{id}"))
            .expect(200)["enabled"]
            .clone()
    };
    assert_eq!(enabled(), false);
    b.click(&format!("{row} button[aria-label='Resume chat room']"));
    assert_eq!(enabled(), true);

    // Deleted from its row.
    b.click(&format!("{row} button[aria-label='Delete chat room']"));
    assert!(b.text("[role=status]").contains("deleted"));
    assert!(!b.has(&row));
    root.get(&format!("/api/v1/notify/targets/{id}"))
        .expect(404);
}

#[test]
fn a_mailing_list_with_a_wrong_address_is_refused_and_an_auditor_sees_no_buttons() {
    let server = Server::start();
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let before = targets(&server, &acme.tenant_id);
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, &acme.member("admin").email, USER_PASSWORD);
    b.goto(&format!("/t/{}/notifications", acme.tenant_id));
    b.fill("#email-name", "on call");
    b.fill("#recipients", "ops@acme.example\nnot an address");
    b.click("form:has(input[value='email']) button[type=submit]");
    let told = b.text("[role=alert]");
    assert!(told.contains("not an address"), "{told}");
    // What was typed stays, to be mended.
    assert_eq!(b.attr("#email-name", "value").as_deref(), Some("on call"));
    assert!(b.text("#recipients").contains("ops@acme.example"));
    assert_eq!(targets(&server, &acme.tenant_id), before);

    b.fill("#recipients", "ops@acme.example, oncall@acme.example");
    b.click_here("#summary option[value='daily']");
    b.click("form:has(input[value='email']) button[type=submit]");
    assert!(b.text("[role=status]").contains("added"));
    let listed = targets(&server, &acme.tenant_id);
    let made = listed.iter().find(|t| t["name"] == "on call").unwrap();
    assert_eq!(
        made["email"]["recipients"],
        serde_json::json!(["ops@acme.example", "oncall@acme.example"])
    );
    assert_eq!(made["summary"], "daily");

    // An auditor reads the targets and the log, with no form to change them.
    let page = server.page(
        &format!("/t/{}/notifications", acme.tenant_id),
        &session_cookie(&acme.member("auditor").secret),
        "en",
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("on call"), "{}", page.body);
    assert!(!page.body.contains("/test\""), "{}", page.body);
    assert!(!page.body.contains("name=\"recipients\""), "{}", page.body);
}
