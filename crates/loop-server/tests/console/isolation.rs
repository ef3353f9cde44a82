//! Every page, for every role of one customer, aimed at another customer's objects: 404, and
//! nothing of the other customer on the page. The pages come from the server's own list
//! (`loop_server::pages::SIGNED_IN_PAGES`), so a page added there is walked here.

use super::support::console::session_cookie;
use super::support::vault::back_up_into;
use super::support::{Server, with_spare};

#[test]
fn another_tenants_pages_are_not_found_for_every_role() {
    let server = Server::start_with(with_spare);
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let zeta = server.customer(&admin, "zeta");
    let zeta_session = &zeta.member("admin").session_id;
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f0"), b"theirs").unwrap();
    let zeta_snapshot = back_up_into(&server, &zeta.vault_id, src.path());
    let theirs = [
        "zeta".to_string(),
        zeta.tenant_id.clone(),
        zeta_session.clone(),
        zeta.device_name.clone(),
        zeta.vault_name.clone(),
        zeta_snapshot.clone(),
    ];
    let item_runs = || {
        let jobs = admin
            .get(&format!(
                "/api/v1/jobs?tenant_id={}&kind=backup",
                zeta.tenant_id
            ))
            .expect(200);
        jobs.as_array()
            .unwrap()
            .iter()
            .filter(|j| j["target_id"] == zeta.item_id.as_str())
            .count()
    };
    let runs_before = item_runs();
    let mut aimed = 0;
    for role in ["admin", "operator", "auditor", "billing"] {
        let cookie = session_cookie(&acme.member(role).secret);
        let token = server.page("/account", &cookie, "en").form_token();
        for (method, path) in loop_server::pages::SIGNED_IN_PAGES {
            let at_theirs = path.contains('{');
            let path = path
                .replace("{tenant}", &zeta.tenant_id)
                .replace("{session}", zeta_session)
                .replace("{vault}", &zeta.vault_id)
                .replace("{snapshot}", &zeta_snapshot)
                .replace("{job}", &zeta.job_id)
                .replace("{item}", &zeta.item_id)
                .replace("{user}", &zeta.member("operator").user_id)
                .replace("{binding}", &zeta.binding_id)
                .replace("{token}", &zeta.token_id)
                .replace("{target}", &zeta.target_id)
                .replace("{policy}", &zeta.policy_id);
            let page = match *method {
                "get" => server.page(&path, &cookie, "en"),
                // A post that names nothing of another tenant changes the reader's own
                // account (or signs them out): not aimed at anyone else.
                _ if !at_theirs => continue,
                // Every form's fields, filled in, so each post reaches its authorization.
                _ => server.post_page(
                    &path,
                    &cookie,
                    &[
                        ("csrf", &token),
                        ("name", "Intruder"),
                        ("kind", "customer"),
                        ("email", "intruder@acme.example"),
                        ("first_name", "In"),
                        ("last_name", "Truder"),
                        ("role", "admin"),
                        ("device", &zeta.device_id),
                        ("target", "/intruder"),
                        ("tenant_id", &zeta.tenant_id),
                        ("permissions", "backup"),
                        ("recipients", "intruder@acme.example"),
                        ("min_severity", "info"),
                        ("summary", "off"),
                        ("language", "en"),
                        ("enabled", "false"),
                        ("last", "1"),
                    ],
                ),
            };
            let what = format!("{role}: {method} {path}");
            if at_theirs {
                aimed += 1;
                assert_eq!(page.status, 404, "{what}: {}", page.body);
            }
            for name in &theirs {
                assert!(!page.body.contains(name.as_str()), "{what} shows {name}");
            }
        }
    }
    assert!(aimed >= 4 * 5, "{aimed} pages aimed at the other customer");
    // Nothing was made in their tenant by any of the posts.
    let tenants = admin.get("/api/v1/tenants?limit=500").expect(200);
    assert!(!tenants.to_string().contains("Intruder"), "{tenants}");
    let users = admin
        .get(&format!("/api/v1/users?tenant_id={}", zeta.tenant_id))
        .expect(200);
    assert!(!users.to_string().contains("intruder@"), "{users}");
    // Their job is neither cancelled nor run again by any of the posts.
    let job = admin
        .get(&format!("/api/v1/jobs/{}", zeta.job_id))
        .expect(200);
    assert_eq!(job["state"], "queued", "{job}");
    assert_eq!(job["cancel_requested"], false, "{job}");
    assert_eq!(
        item_runs(),
        runs_before,
        "no backup of their item was queued"
    );
    // Their operator keeps exactly the role they had, and their token works.
    let roles = admin
        .get(&format!(
            "/api/v1/users/{}/roles",
            zeta.member("operator").user_id
        ))
        .expect(200);
    assert_eq!(roles.as_array().unwrap().len(), 1, "{roles}");
    assert_eq!(roles[0]["id"], zeta.binding_id.as_str(), "{roles}");
    let tokens = admin
        .get(&format!("/api/v1/tokens?tenant_id={}", zeta.tenant_id))
        .expect(200);
    assert!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["revoked_at"].is_null()),
        "{tokens}"
    );
    // Their notification target is still there, still on, and was sent no test.
    let target = admin
        .get(&format!("/api/v1/notify/targets/{}", zeta.target_id))
        .expect(200);
    assert_eq!(target["enabled"], true, "{target}");
    let deliveries = admin
        .get(&format!(
            "/api/v1/notify/deliveries?target_id={}",
            zeta.target_id
        ))
        .expect(200);
    assert!(!deliveries.to_string().contains("\"test\""), "{deliveries}");
    // Their retention policy keeps what it kept.
    let policy = admin
        .get(&format!("/api/v1/policies/{}", zeta.policy_id))
        .expect(200);
    assert_ne!(policy["keep"]["last"], 1, "{policy}");
    // Their session is untouched by every attempt to sign it out.
    server
        .call(
            "get",
            "/api/v1/me",
            Some(&zeta.member("admin").secret),
            None,
        )
        .expect(200);
}
