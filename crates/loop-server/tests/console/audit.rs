//! A tenant's audit log in the browser: filtered, exported (the file Chromium saves is the
//! API's export), and its chain verified — intact, then broken where the database was
//! tampered with. Another tenant's log is a 404.

use super::support::console::session_cookie;
use super::support::{Server, USER_PASSWORD};
use super::{browser, sign_in};

#[test]
fn an_admin_filters_exports_and_verifies_the_audit_log() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let zeta = server.customer(&admin, "zeta");
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, "admin@acme.example", USER_PASSWORD);
    b.click("nav a[href$='/audit']");
    let path = b.wait_for_path(&format!("/t/{}/audit", acme.tenant_id));
    assert_eq!(path, format!("/t/{}/audit", acme.tenant_id));

    // Filtered by an action: only those events, newest first.
    b.fill("#action", "auth.signin");
    b.click("form.filters button");
    b.wait_for_path(&format!("/t/{}/audit?action=auth.signin", acme.tenant_id));
    let rows = b.run(
        "return [...document.querySelectorAll('tbody tr')].map(r => \
         [Number(r.dataset.seq), r.querySelector('code').textContent]);",
    );
    let rows = rows.as_array().unwrap();
    assert!(rows.len() >= 4, "{rows:?}");
    assert!(rows.iter().all(|r| r[1] == "auth.signin"), "{rows:?}");
    let seqs: Vec<i64> = rows.iter().map(|r| r[0].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );

    // The export Chromium saves is the API's, with the same filter.
    b.click_here("a[href*='format=csv']");
    let (name, bytes) = b.downloaded("loop-audit");
    assert!(name.ends_with(".csv"), "{name}");
    let csv = String::from_utf8(bytes).unwrap();
    let api = server.send(
        server
            .request(
                reqwest::Method::GET,
                &format!(
                    "/api/v1/audit/export?tenant_id={}&action=auth.signin&format=csv",
                    acme.tenant_id
                ),
            )
            .bearer_auth(&acme.member("admin").secret),
    );
    assert_eq!(api.status, 200);
    assert_eq!(csv, api.body);
    assert_eq!(csv.lines().count(), rows.len() + 1, "{csv}");

    // The chain verifies; after a change behind the server's back it does not, and the page
    // says at which event.
    b.click("form.verify button");
    b.wait_for_path(&format!("/t/{}/audit?verify=1", acme.tenant_id));
    assert!(b.has("[data-chain=intact]"), "{}", b.text("main"));
    // The chain's last event removed behind the server's back: what is left verifies by
    // itself, but does not reach the head the server keeps.
    for table in ["audit_personal", "audit_events"] {
        server
            .block_on(
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE tenant_id = $1
                     AND seq = (SELECT MAX(seq) FROM audit_events WHERE tenant_id = $1)"
                )))
                .bind(&acme.tenant_id)
                .execute(&server.state.db.pool),
            )
            .unwrap();
    }
    b.goto(&format!("/t/{}/audit?verify=1", acme.tenant_id));
    assert!(
        b.text("[data-chain=broken]").contains("missing"),
        "{}",
        b.text("main")
    );
    server
        .block_on(
            sqlx::query(
                "UPDATE audit_events SET action = 'tampered' WHERE tenant_id = $1 AND seq = 3",
            )
            .bind(&acme.tenant_id)
            .execute(&server.state.db.pool),
        )
        .unwrap();
    b.goto(&format!("/t/{}/audit?verify=1", acme.tenant_id));
    assert!(b.has("[data-chain=broken]"));
    assert!(
        b.text("[data-chain=broken]").contains("broken at event 3"),
        "{}",
        b.text("main")
    );

    // Another customer's log: not found, whatever the filter.
    let cookie = session_cookie(&acme.member("admin").secret);
    for q in ["", "?verify=1", "?action=auth.signin"] {
        let p = server.page(&format!("/t/{}/audit{q}", zeta.tenant_id), &cookie, "en");
        assert_eq!(p.status, 404, "{q}: {}", p.body);
        assert!(!p.body.contains("zeta"));
    }
}
