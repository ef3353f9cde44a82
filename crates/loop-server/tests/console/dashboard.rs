//! A tenant's dashboard: the problems first, each item's last result and its age, devices
//! online, storage against quota, the two charts; another tenant's dashboard is a 404 that
//! names nothing of it.

use super::support::console::session_cookie;
use super::support::{Server, with_spare};

/// Records a backup of `item` that ended `hours_ago` in `state`.
fn ended_backup(server: &Server, tenant: &str, item: &str, state: &str, hours_ago: i64) {
    let at = server.state.now() - hours_ago * 3_600_000;
    server
        .block_on(
            sqlx::query(
                "INSERT INTO jobs (id, tenant_id, kind, target_kind, target_id, state,
                                   max_attempts, scheduled_at, finished_at, trigger_kind,
                                   created_at)
                 VALUES ($1, $2, 'backup', 'item', $3, $4, 1, $5, $5, 'schedule', $5)",
            )
            .bind(loop_server::domain::new_id("job"))
            .bind(tenant)
            .bind(item)
            .bind(state)
            .bind(at)
            .execute(&server.state.db.pool),
        )
        .expect("recording a backup");
}

#[test]
fn the_dashboard_shows_problems_first_and_hides_other_tenants() {
    let server = Server::start_with(with_spare);
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let zeta = server.customer(&admin, "zeta");
    let failing = admin
        .post(
            "/api/v1/items",
            serde_json::json!({
                "tenant_id": acme.tenant_id, "device_id": acme.device_id,
                "vault_id": acme.vault_id, "name": "database-acme", "paths": ["/srv"],
                "schedule": "daily",
            }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    ended_backup(&server, &acme.tenant_id, &acme.item_id, "succeeded", 3);
    ended_backup(&server, &acme.tenant_id, &failing, "succeeded", 30);
    ended_backup(&server, &acme.tenant_id, &failing, "failed", 2);

    let reader = acme.member("auditor");
    let cookie = session_cookie(&reader.secret);
    let page = server.page(&format!("/t/{}", acme.tenant_id), &cookie, "en");
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    // The failing item is named under "Needs attention", before the table of every item.
    let attention = body.find("Needs attention").expect("a problems section");
    let listed = body[attention..]
        .find("database-acme")
        .map(|i| i + attention);
    let table = body.find("Protected items").expect("the items");
    assert!(listed.is_some_and(|i| i < table), "{body}");
    assert!(
        body.contains("<span class=\"badge failed\">Failed</span>"),
        "{body}"
    );
    assert!(
        body.contains("<span class=\"badge ok\">OK</span> 3 h ago"),
        "{body}"
    );
    // The failed item's last good backup was 30 hours ago.
    assert!(body.contains("Last good backup: 30 h ago"), "{body}");
    assert!(body.contains("0 of 1 online"), "{body}");
    assert!(body.contains("<svg class=\"chart\""), "{body}");
    // The chart counts every job of the tenant that ended (the harness ran some too).
    let jobs = admin
        .get(&format!(
            "/api/v1/jobs?tenant_id={}&limit=1000",
            acme.tenant_id
        ))
        .expect(200);
    let ended: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| !j["finished_at"].is_null())
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    let good = ended.iter().filter(|s| s.starts_with("succeeded")).count();
    let other = ended.len() - good - 1;
    assert!(good >= 2);
    let told = format!(
        "{} jobs in 14 days: {good} succeeded, 1 failed, {other} other.",
        ended.len()
    );
    assert!(body.contains(&told), "{told}: {body}");

    // Another customer's dashboard, for this reader: not found, and nothing of it shown.
    let theirs = server.page(&format!("/t/{}", zeta.tenant_id), &cookie, "en");
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    for secret in ["zeta", &zeta.tenant_id] {
        assert!(!theirs.body.contains(secret), "{}", theirs.body);
    }
    // Billing reads the tenant but not its jobs or devices: the dashboard shows only what
    // the role may read.
    let billing = session_cookie(&acme.member("billing").secret);
    let page = server.page(&format!("/t/{}", acme.tenant_id), &billing, "en");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("database-acme"), "{}", page.body);
    assert!(!page.body.contains("online"), "{}", page.body);
}
