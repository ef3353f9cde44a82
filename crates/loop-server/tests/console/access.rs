//! Who may do what, changed in the browser: an admin gives a person another role and takes
//! it back; makes a token for a program, whose secret the page shows once and which works
//! against the vault until it is revoked from the page. Those without the permission see the
//! same facts and no buttons.

use serde_json::Value;

use super::support::console::session_cookie;
use super::support::vault::vault_as;
use super::support::{Server, USER_PASSWORD};
use super::{browser, sign_in};

/// The roles `user` holds, as the API lists them.
fn roles_of(server: &Server, user: &str) -> Vec<String> {
    let listed: Value = server
        .admin()
        .get(&format!("/api/v1/users/{user}/roles"))
        .expect(200);
    let mut roles: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["role"].as_str().unwrap().to_string())
        .collect();
    roles.sort();
    roles
}

#[test]
fn an_admin_gives_a_role_and_takes_it_back_in_the_browser() {
    let server = Server::start();
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let bo = acme.member("auditor");
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, &acme.member("admin").email, USER_PASSWORD);
    b.goto(&format!("/t/{}/users", acme.tenant_id));
    let row = format!("tr[data-user='{}']", bo.user_id);
    b.click_here(&format!("{row} select option[value='operator']"));
    b.click(&format!("{row} form[action$='/roles'] button"));
    assert!(b.text("[role=status]").contains("roles are changed"));
    assert_eq!(roles_of(&server, &bo.user_id), ["auditor", "operator"]);
    assert!(b.text(&row).contains("operator"), "{}", b.text(&row));

    // Taken back with the button named for it.
    let remove = format!(
        "{row} button[aria-label='Remove the role operator of {}']",
        bo.email
    );
    b.click(&remove);
    assert_eq!(roles_of(&server, &bo.user_id), ["auditor"]);
    assert!(!b.has(&remove));

    // An operator reads the roles but has no form to change them.
    let page = server.page(
        &format!("/t/{}/users", acme.tenant_id),
        &session_cookie(&acme.member("operator").secret),
        "en",
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("auditor"), "{}", page.body);
    assert!(!page.body.contains("/roles"), "{}", page.body);
}

#[test]
fn a_token_made_on_the_page_works_until_it_is_revoked_there() {
    let server = Server::start();
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, &acme.member("operator").email, USER_PASSWORD);
    b.goto(&format!("/t/{}", acme.tenant_id));
    b.click(&format!(
        "nav.tenant a[href='/t/{}/tokens']",
        acme.tenant_id
    ));
    // The customer's own device token is listed with its device.
    let listed = b.text(&format!("tr[data-token='{}']", acme.token_id));
    assert!(listed.contains(&acme.token_name), "{listed}");

    b.fill("#name", "nightly export");
    b.click_here("#perm-restore");
    b.click_here(&format!("#vault-{}", acme.vault_id));
    b.fill("#expires_in_days", "30");
    b.click("form[action$='/tokens'] button[type=submit]");
    assert!(b.text("[role=status]").contains("shown once"));
    let secret = b.text("#token-secret");
    assert!(secret.starts_with("lpt_"), "{secret}");
    vault_as(&server, &acme.vault_id, &secret)
        .call("get", "keys")
        .expect(200);
    let made: Vec<Value> = root
        .get(&format!("/api/v1/tokens?tenant_id={}", acme.tenant_id))
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "nightly export")
        .cloned()
        .collect();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["kind"], "api");
    assert_eq!(made[0]["permissions"], serde_json::json!(["restore"]));
    assert_eq!(made[0]["vault_ids"], serde_json::json!([acme.vault_id]));
    assert!(made[0]["expires_at"].is_string());
    // Reloaded, the page never shows the secret again.
    b.goto(&format!("/t/{}/tokens", acme.tenant_id));
    assert!(!b.text("main").contains(&secret));

    // Revoked from its row, it stops working at once.
    let id = made[0]["id"].as_str().unwrap();
    b.click(&format!("tr[data-token='{id}'] button"));
    assert!(b.text("[role=status]").contains("revoked"));
    assert!(
        b.text(&format!("tr[data-token='{id}']"))
            .contains("revoked")
    );
    vault_as(&server, &acme.vault_id, &secret)
        .call("get", "keys")
        .expect(401);

    // A token without a permission is refused, and nothing is made.
    b.fill("#name", "nothing");
    b.click("form[action$='/tokens'] button[type=submit]");
    assert!(b.has("[role=alert]"), "{}", b.text("main"));

    // An auditor reads the list but may neither make nor revoke.
    let page = server.page(
        &format!("/t/{}/tokens", acme.tenant_id),
        &session_cookie(&acme.member("auditor").secret),
        "en",
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&acme.token_name));
    assert!(!page.body.contains("/revoke"), "{}", page.body);
    assert!(!page.body.contains("name=\"permissions\""));
}
