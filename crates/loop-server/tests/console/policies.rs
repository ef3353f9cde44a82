//! Retention policies in the browser: an admin makes one for the whole tenant with keep rules
//! and a schedule, changes it on its page, sees the vault's own policy beside it, and deletes
//! it; a policy for an item refuses schedules. What the pages do is what the API then
//! answers; an auditor reads the policies without a form.

use serde_json::Value;

use super::support::console::session_cookie;
use super::support::{Server, USER_PASSWORD};
use super::{browser, sign_in};

/// The tenant's policies, as the API lists them.
fn policies(server: &Server, tenant: &str) -> Vec<Value> {
    server
        .admin()
        .get(&format!("/api/v1/policies?tenant_id={tenant}"))
        .expect(200)
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn an_admin_makes_changes_and_deletes_a_tenants_retention_policy() {
    let server = Server::start();
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, &acme.member("admin").email, USER_PASSWORD);
    b.goto(&format!("/t/{}", acme.tenant_id));
    b.click(&format!(
        "nav.tenant a[href='/t/{}/policies']",
        acme.tenant_id
    ));
    // The vault's own policy (the fixture keeps its newest 7) is listed for that vault.
    let vault_row = b.text(&format!("tr[data-policy='{}']", acme.policy_id));
    assert!(
        vault_row.contains(&format!("vault {}", acme.vault_name))
            && vault_row.contains("the newest 7"),
        "{vault_row}"
    );

    // A word where a number goes is refused, with what was typed kept.
    b.fill("#daily", "fourteen");
    b.fill("#within", "30d");
    b.click("form[action$='/policies'] button[type=submit]");
    assert!(b.has("[role=alert]"), "{}", b.text("main"));
    assert_eq!(b.attr("#within", "value").as_deref(), Some("30d"));
    assert_eq!(policies(&server, &acme.tenant_id).len(), 1);

    // For the whole tenant: 14 daily, 8 weekly, everything of the last 30 days, applied
    // nightly.
    b.fill("#daily", "14");
    b.fill("#weekly", "8");
    b.fill("#retention_schedule", "*-*-* 02:30");
    b.click("form[action$='/policies'] button[type=submit]");
    let path = b.wait_for_path("/policies/");
    assert!(path.ends_with("?done=created"), "{path}");
    let made: Vec<Value> = policies(&server, &acme.tenant_id)
        .into_iter()
        .filter(|p| p["vault_id"].is_null() && p["item_id"].is_null())
        .collect();
    assert_eq!(made.len(), 1);
    let p = &made[0];
    assert_eq!(p["keep"]["daily"], 14);
    assert_eq!(p["keep"]["weekly"], 8);
    assert_eq!(p["keep"]["within"], "30d");
    assert_eq!(p["maintenance"]["retention_schedule"], "*-*-* 02:30");
    assert!(p["maintenance"]["verify_schedule"].is_null());
    let id = p["id"].as_str().unwrap().to_string();
    let facts = b.text("dl.facts");
    assert!(
        facts.contains("14 daily, 8 weekly, all of the last 30d"),
        "{facts}"
    );

    // Changed on its page: the newest 3 more, a weekly verify, no more "within".
    b.fill("#last", "3");
    b.fill("#within", "");
    b.fill("#verify_schedule", "sun 04:00");
    b.click(&format!(
        "form[action='/policies/{id}'] button[type=submit]"
    ));
    assert!(b.text("[role=status]").contains("changed"));
    let p = root.get(&format!("/api/v1/policies/{id}")).expect(200);
    assert_eq!(p["keep"]["last"], 3);
    assert_eq!(p["keep"]["daily"], 14);
    assert!(p["keep"]["within"].is_null(), "{p}");
    assert_eq!(p["maintenance"]["verify_schedule"], "sun 04:00");
    assert_eq!(p["maintenance"]["retention_schedule"], "*-*-* 02:30");
    // A schedule the server cannot read is refused as the API refuses it.
    b.fill("#verify_schedule", "every blue moon");
    b.click(&format!(
        "form[action='/policies/{id}'] button[type=submit]"
    ));
    assert!(b.has("[role=alert]"), "{}", b.text("main"));
    let p = root.get(&format!("/api/v1/policies/{id}")).expect(200);
    assert_eq!(p["maintenance"]["verify_schedule"], "sun 04:00");

    // An auditor who posts the form anyway is refused for who they are, not what they typed.
    let auditor = session_cookie(&acme.member("auditor").secret);
    let token = server
        .page(&format!("/policies/{id}"), &auditor, "en")
        .form_token();
    let refused = server.post_page(
        &format!("/policies/{id}"),
        &auditor,
        &[("csrf", &token), ("daily", "many")],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    // An auditor reads it, with no form.
    let page = server.page(
        &format!("/policies/{id}"),
        &session_cookie(&acme.member("auditor").secret),
        "en",
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("the newest 3"), "{}", page.body);
    assert!(!page.body.contains("/delete"), "{}", page.body);

    // Deleted: the tenant's vaults fall back to what is above; the vault's own stays.
    b.goto(&format!("/policies/{id}"));
    b.click(&format!("form[action='/policies/{id}/delete'] button"));
    assert!(b.text("[role=status]").contains("deleted"));
    root.get(&format!("/api/v1/policies/{id}")).expect(404);
    assert_eq!(policies(&server, &acme.tenant_id).len(), 1);
}

#[test]
fn an_items_policy_keeps_rules_only() {
    let server = Server::start();
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let cookie = session_cookie(&acme.member("admin").secret);
    let page = server.page(&format!("/t/{}/policies", acme.tenant_id), &cookie, "en");
    let token = page.form_token();
    let post = |schedule: &str| {
        server.post_page(
            &format!("/t/{}/policies", acme.tenant_id),
            &cookie,
            &[
                ("csrf", &token),
                ("target", &format!("item:{}", acme.item_id)),
                ("last", "5"),
                ("retention_schedule", schedule),
            ],
        )
    };
    let refused = post("daily");
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("keep rules only"), "{}", refused.body);
    let made = post("");
    assert_eq!(made.status, 303, "{}", made.body);
    let listed = policies(&server, &acme.tenant_id);
    let p = listed
        .iter()
        .find(|p| p["item_id"] == acme.item_id.as_str())
        .unwrap();
    assert_eq!(p["keep"]["last"], 5);
    // Its page offers no schedule.
    let shown = server.page(made.location().unwrap(), &cookie, "en");
    assert!(shown.body.contains("keep rules only"), "{}", shown.body);
    assert!(!shown.body.contains("retention_schedule"), "{}", shown.body);
}
