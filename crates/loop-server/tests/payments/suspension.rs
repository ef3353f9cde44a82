//! An invoice paid after it suspended the customer: billing resumes from the start of the
//! period the suspension interrupted, so those days are not given away.

use super::support;
use serde_json::json;
use support::Server;
use support::lifecycle::{acme_on, at, ms, small_plan, subscription};

#[test]
fn a_customer_who_pays_after_a_suspension_is_billed_from_the_period_it_interrupted() {
    let server = Server::start_with(|c| c.jobs.scheduler_seconds = 86_400);
    let admin = server.admin();
    let plan = small_plan(&admin);
    let tenant = acme_on(&admin, &plan);
    let s = admin
        .put(
            &format!("/api/v1/tenants/{tenant}/subscription"),
            json!({ "plan_id": plan, "collection": "invoice" }),
        )
        .expect(200);
    // Paying by invoice, the trial ends in a first period.
    let steps = at(&server, ms(&s["trial_ends_at"]));
    assert!(steps[0].starts_with("Activate"), "{steps:?}");
    let s = subscription(&server.admin(), &tenant);
    // Its invoice stays unpaid; the second period begins as it is issued.
    let interrupted = s["period_end"].clone();
    assert_eq!(at(&server, ms(&interrupted)), vec!["Invoice"]);
    let admin = server.admin();
    let invoice = admin
        .get(&format!("/api/v1/tenants/{tenant}/invoices"))
        .expect(200)[0]
        .clone();
    let due = ms(&invoice["due_at"]);
    assert_eq!(at(&server, due), vec!["PastDue"]);
    let steps = at(&server, due + 15 * 86_400_000);
    assert!(steps.last().unwrap().starts_with("Suspend"), "{steps:?}");
    let admin = server.admin();
    admin
        .post(
            &format!(
                "/api/v1/invoices/{}/payment",
                invoice["id"].as_str().unwrap()
            ),
            json!({ "reference": "late transfer" }),
        )
        .expect(200);
    let s = subscription(&admin, &tenant);
    assert_eq!(s["state"], "active", "{s}");
    assert_eq!(
        ms(&s["period_start"]),
        ms(&interrupted),
        "billed from the start of the period the suspension interrupted: {s}"
    );
}
