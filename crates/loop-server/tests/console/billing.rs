//! A customer's subscription and invoices in the browser, for its billing role: the plan,
//! the state, usage, and each invoice, which opens as the page to read or print. Roles
//! without billing see neither the page nor its link.

use serde_json::Value;

use super::support::console::session_cookie;
use super::support::{Server, USER_PASSWORD};
use super::{browser, sign_in};

#[test]
fn the_billing_role_reads_the_plan_state_and_invoices() {
    let server = Server::start();
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let sub: Value = root
        .get(&format!("/api/v1/tenants/{}/subscription", acme.tenant_id))
        .expect(200);
    let invoice: Value = root
        .get(&format!("/api/v1/invoices/{}", acme.invoice_id))
        .expect(200);
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, &acme.member("billing").email, USER_PASSWORD);
    b.click(&format!(
        "nav.tenant a[href='/t/{}/billing']",
        acme.tenant_id
    ));
    let facts = b.text("dl.subscription");
    assert!(
        facts.contains(sub["plan"]["name"].as_str().unwrap()),
        "{facts}"
    );
    let row = b.text(&format!("tr[data-invoice='{}']", acme.invoice_id));
    assert!(row.contains(&invoice["number"].to_string()), "{row}");
    assert!(row.contains("open"), "{row}");
    let cents = invoice["total_cents"].as_u64().unwrap();
    assert!(
        row.contains(&format!("{}.{:02}", cents / 100, cents % 100)),
        "{row}"
    );
    // The invoice opens as its printable page.
    b.click(&format!("tr[data-invoice='{}'] a", acme.invoice_id));
    assert!(
        b.path()
            .starts_with(&format!("/api/v1/invoices/{}", acme.invoice_id))
    );
    let printed = b.text("body");
    assert!(
        printed.contains(&format!("Invoice {}", invoice["number"])),
        "{printed}"
    );
    assert!(
        printed.contains(invoice["bill_to"].as_str().unwrap()),
        "{printed}"
    );

    // An operator has no billing: no link, and the page is refused.
    let cookie = session_cookie(&acme.member("operator").secret);
    let dashboard = server.page(&format!("/t/{}", acme.tenant_id), &cookie, "en");
    assert!(!dashboard.body.contains("/billing"));
    let page = server.page(&format!("/t/{}/billing", acme.tenant_id), &cookie, "en");
    assert_eq!(page.status, 403, "{}", page.body);
}
