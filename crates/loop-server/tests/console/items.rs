//! Protected items and their schedules in the browser: an operator makes one from the form,
//! is told plainly when a schedule does not parse, changes its schedule, and deletes it; an
//! auditor reads the same page without its forms.

use serde_json::Value;

use super::support::console::session_cookie;
use super::support::{Server, USER_PASSWORD};
use super::{browser, sign_in};

#[test]
fn an_operator_makes_changes_and_deletes_a_protected_item() {
    let server = Server::start();
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, &acme.member("operator").email, USER_PASSWORD);
    b.click(&format!("nav.tenant a[href='/t/{}/items']", acme.tenant_id));
    // The customer's own item is listed with its device and vault.
    let row = b.text(&format!("tr[data-item='{}']", acme.item_id));
    assert!(
        row.contains(&acme.device_name) && row.contains(&acme.vault_name),
        "{row}"
    );

    // A schedule that does not parse is refused, and the form keeps what was typed.
    b.fill("#name", "home folders");
    b.fill("#paths", "/home\n\n/etc\n");
    b.fill("#excludes", "*.tmp");
    b.fill("#schedule", "every blue moon");
    b.click("form[action$='/items'] button[type=submit]");
    assert!(b.has("[role=alert]"), "{}", b.text("main"));
    assert_eq!(b.attr("#name", "value").as_deref(), Some("home folders"));
    b.fill("#schedule", "mon..fri 22:00");
    // An upload limit that is no number is refused too.
    b.fill("#upload_limit", "fast");
    b.click("form[action$='/items'] button[type=submit]");
    assert!(
        b.text("[role=alert]").contains("KiB/s"),
        "{}",
        b.text("main")
    );
    b.fill("#upload_limit", "2048");
    b.click("form[action$='/items'] button[type=submit]");
    let path = b.path();
    assert!(
        path.starts_with("/items/pi_") && path.ends_with("?done=created"),
        "{path}"
    );
    assert!(b.text("[role=status]").contains("made"));
    let id = path
        .trim_start_matches("/items/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let item: Value = root.get(&format!("/api/v1/items/{id}")).expect(200);
    assert_eq!(item["paths"], serde_json::json!(["/home", "/etc"]));
    assert_eq!(item["excludes"], serde_json::json!(["*.tmp"]));
    assert_eq!(item["schedule"], "mon..fri 22:00");
    assert_eq!(item["upload_limit_kib"], 2048);
    assert!(b.text("dl.facts").contains("2048 KiB/s"));
    assert_eq!(b.attr("#upload_limit", "value").as_deref(), Some("2048"));
    assert_eq!(item["device_id"], acme.device_id.as_str());
    assert_eq!(item["vault_id"], acme.vault_id.as_str());
    // The page shows the next run the server computed.
    let next = item["next_run_at"].as_str().unwrap();
    let shown = b.attr("dl.facts time", "datetime").unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&shown).unwrap(),
        chrono::DateTime::parse_from_rfc3339(next).unwrap()
    );

    // Only when asked: the schedule emptied, no next run; the upload limit emptied, none.
    b.fill("#schedule", "");
    b.fill("#upload_limit", "");
    b.click(&format!("form[action='/items/{id}'] button"));
    assert!(b.text("[role=status]").contains("changed"));
    let item: Value = root.get(&format!("/api/v1/items/{id}")).expect(200);
    assert!(
        item["schedule"].is_null() && item["next_run_at"].is_null(),
        "{item}"
    );
    assert!(b.text("dl.facts").contains("only when asked"));
    assert!(item["upload_limit_kib"].is_null(), "{item}");
    assert!(
        b.text("dl.facts").contains("none"),
        "{}",
        b.text("dl.facts")
    );

    // An auditor reads the item, with no form.
    let page = server.page(
        &format!("/items/{id}"),
        &session_cookie(&acme.member("auditor").secret),
        "en",
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("home folders"));
    assert!(
        !page.body.contains("<form method=\"post\" action=\"/items/"),
        "{}",
        page.body
    );

    // Deleted, it is gone.
    b.click(&format!("form[action='/items/{id}/delete'] button"));
    assert_eq!(
        b.path(),
        format!("/t/{}/items?done=deleted", acme.tenant_id)
    );
    assert!(!b.has(&format!("tr[data-item='{id}']")));
    root.get(&format!("/api/v1/items/{id}"))
        .expect_problem(404, "not_found");
}
