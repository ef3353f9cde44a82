//! Rules that keep the lifecycle from taking more than it should: an end given can be taken
//! back and never erases at once, and one customer whose steps fail holds back no other.

use serde_json::json;

use super::support;
use super::support::lifecycle::{DAY, acme_on, after, at, ms, small_plan, subscription};

/// Ending a subscription erases the tenant (retention locks overridden), so the issuer can
/// take an end back by choosing a plan again before it comes; and an end given while
/// suspended waits a week at least instead of erasing at once.
#[test]
fn an_end_can_be_withdrawn_and_never_erases_at_once() {
    let server = support::Server::start();
    let admin = server.admin();
    let plan = small_plan(&admin);
    let tenant = acme_on(&admin, &plan);
    let end = format!("/api/v1/tenants/{tenant}/subscription/end");
    let ended = admin.post(&end, json!({ "confirm": tenant })).expect(200);
    assert_eq!(ended["ends_at"], ended["trial_ends_at"]);
    let back = admin
        .put(
            &format!("/api/v1/tenants/{tenant}/subscription"),
            json!({ "plan_id": plan }),
        )
        .expect(200);
    assert!(back["ends_at"].is_null(), "{back:#}");

    // Past the trial with no way to pay: suspended, not erased.
    after(&server, 15, 0);
    let admin = server.admin();
    let status = || {
        admin.get(&format!("/api/v1/tenants/{tenant}")).expect(200)["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(subscription(&admin, &tenant)["state"], "suspended");
    assert_eq!(status(), "active");
    let ended = admin.post(&end, json!({ "confirm": tenant })).expect(200);
    assert!(
        ms(&ended["ends_at"]) >= ms(&ended["suspended_at"]) + 7 * DAY as i64 * 1000,
        "{ended:#}"
    );
    assert_eq!(status(), "active", "erased at once");
    support::lifecycle::tick(&server);
    assert_eq!(status(), "active");
}

/// One customer whose lifecycle fails (here its usage cannot be recorded) is logged and
/// tried again at the next pass; the customers after it still take their steps.
#[test]
fn one_customer_whose_lifecycle_fails_holds_back_no_other() {
    let server = support::Server::start();
    let admin = server.admin();
    let plan = small_plan(&admin);
    let mut customers: Vec<String> = ["Acme", "Bolt"]
        .into_iter()
        .map(|name| support::lifecycle::customer_on(&admin, name, &plan))
        .collect();
    // The pass goes by tenant ID: the first one fails.
    customers.sort();
    let (failing, other) = (customers[0].clone(), customers[1].clone());
    let sql: Vec<String> = match server.state.db.backend {
        loop_server::db::Backend::Sqlite => vec![format!(
            "CREATE TRIGGER no_usage BEFORE INSERT ON usage_days WHEN NEW.tenant_id = '{failing}'
             BEGIN SELECT RAISE(ABORT, 'usage cannot be recorded'); END"
        )],
        loop_server::db::Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION no_usage() RETURNS trigger AS $$ BEGIN
                    IF NEW.tenant_id = '{failing}' THEN
                        RAISE EXCEPTION 'usage cannot be recorded';
                    END IF;
                    RETURN NEW;
                 END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER no_usage BEFORE INSERT ON usage_days
             FOR EACH ROW EXECUTE FUNCTION no_usage()"
                .into(),
        ],
    };
    for s in &sql {
        server
            .block_on(sqlx::query(sqlx::AssertSqlSafe(s.as_str())).execute(&server.state.db.pool))
            .unwrap();
    }

    server.advance(std::time::Duration::from_secs(15 * DAY));
    let report = server
        .block_on(loop_server::billing::tick(&server.state))
        .unwrap_or_else(|e| panic!("a lifecycle tick: {e:?}"));
    assert_eq!(report.failed, [failing.as_str()]);
    let admin = server.admin();
    assert_eq!(subscription(&admin, &other)["state"], "suspended");
    assert_eq!(subscription(&admin, &failing)["state"], "trial");
}

/// The termination follows the oldest unpaid invoice: a customer who pays the invoice that
/// suspended it, while a later one is overdue too, keeps its data until that one's own
/// termination date, not the first one's.
#[test]
fn paying_the_invoice_that_suspended_moves_the_termination_to_the_next_unpaid_one() {
    let server = support::Server::start_with(|c| {
        c.billing.due_days = 14;
        c.billing.suspend_after_days = 20;
        c.billing.terminate_after_days = 60;
    });
    let (tenant, s) = support::lifecycle::acme_paying_by_invoice(&server.admin());
    let day = DAY as i64 * 1000;
    // Two periods billed, neither paid: the first invoice suspends 20 days after its due
    // date, which comes after the second one was issued.
    let trial_end = ms(&s["trial_ends_at"]);
    at(&server, trial_end);
    let end = ms(&subscription(&server.admin(), &tenant)["period_end"]);
    at(&server, end);
    let end = ms(&subscription(&server.admin(), &tenant)["period_end"]);
    at(&server, end);
    let admin = server.admin();
    let invoices = admin
        .get(&format!("/api/v1/tenants/{tenant}/invoices"))
        .expect(200);
    let due = |number: i64| {
        let i = invoices
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["number"] == number)
            .unwrap_or_else(|| panic!("no invoice {number}: {invoices:#}"));
        (i["id"].as_str().unwrap().to_string(), ms(&i["due_at"]))
    };
    let ((first, first_due), (second, second_due)) = (due(1), due(2));
    at(&server, first_due + 20 * day);
    let admin = server.admin();
    let s = subscription(&admin, &tenant);
    assert_eq!(s["state"], "suspended", "{s:#}");
    assert_eq!(ms(&s["terminate_at"]), first_due + 60 * day, "{s:#}");

    // Both overdue by then; the first is paid: the second one's date holds.
    at(&server, second_due + 20 * day);
    let admin = server.admin();
    admin
        .post(
            &format!("/api/v1/invoices/{first}/payment"),
            json!({ "reference": "NL12BANK0001 1" }),
        )
        .expect(200);
    support::lifecycle::tick(&server);
    let s = subscription(&admin, &tenant);
    assert_eq!(s["state"], "suspended", "{s:#}");
    assert_eq!(ms(&s["terminate_at"]), second_due + 60 * day, "{s:#}");
    let steps = at(&server, first_due + 60 * day);
    assert!(
        steps.iter().all(|s| !s.starts_with("Terminate")),
        "{steps:?}"
    );
    let admin = server.admin();
    assert_eq!(subscription(&admin, &tenant)["state"], "suspended");
    assert_eq!(
        admin.get(&format!("/api/v1/tenants/{tenant}")).expect(200)["status"],
        "active"
    );
    admin
        .post(
            &format!("/api/v1/invoices/{second}/payment"),
            json!({ "reference": "NL12BANK0001 2" }),
        )
        .expect(200);
    // Active again, billed from the period the suspension interrupted: that invoice, issued
    // now, falls due in 14 days like any other, not at once.
    let s = subscription(&admin, &tenant);
    assert_eq!(s["state"], "active", "{s:#}");
    let third = admin
        .get(&format!("/api/v1/tenants/{tenant}/invoices"))
        .expect(200)[0]
        .clone();
    assert_eq!(third["number"], 3);
    assert_eq!(
        ms(&third["period_end"]),
        ms(&s["period_start"]),
        "{third:#}"
    );
    let issued = ms(&third["issued_at"]);
    assert!(issued >= first_due + 60 * day, "{third:#}");
    assert_eq!(ms(&third["due_at"]), issued + 14 * day, "{third:#}");
}

/// A customer who ended their subscription is told once that its data goes: paying an
/// overdue invoice in the last week does not send the warning again. An end withdrawn and
/// given again later is warned of again.
#[test]
fn the_deletion_warning_of_an_end_is_sent_once() {
    let server = support::Server::start();
    let (tenant, s) = support::lifecycle::acme_paying_by_invoice(&server.admin());
    support::lifecycle::user(&server.admin(), &tenant, "bills@acme.example", "billing");
    let mut steps = at(&server, ms(&s["trial_ends_at"]));
    let first_end = ms(&subscription(&server.admin(), &tenant)["period_end"]);
    steps.extend(at(&server, first_end));
    let admin = server.admin();
    let ended = admin
        .post(
            &format!("/api/v1/tenants/{tenant}/subscription/end"),
            json!({ "confirm": tenant }),
        )
        .expect(200);
    let ends_at = ms(&ended["ends_at"]);
    let invoice = admin
        .get(&format!("/api/v1/tenants/{tenant}/invoices"))
        .expect(200)[0]
        .clone();
    steps.extend(at(&server, ms(&invoice["due_at"])));
    steps.extend(at(&server, ends_at - 5 * DAY as i64 * 1000));
    assert!(steps.iter().any(|s| s == "PastDue"), "{steps:?}");
    let id = invoice["id"].as_str().unwrap();
    support::lifecycle::paid_by_transfer(&server.admin(), id, "a transfer");
    steps.extend(support::lifecycle::tick(&server));
    steps.extend(at(&server, ends_at - DAY as i64 * 1000));
    // One message to each of the tenant's contacts, once.
    let warnings = || -> Vec<(String, i64)> {
        server
            .block_on(
                sqlx::query_as(
                    "SELECT user_id, CAST(COUNT(*) AS BIGINT) FROM mail_outbox
                     WHERE kind = 'deletion_soon' GROUP BY user_id",
                )
                .fetch_all(&server.state.db.pool),
            )
            .unwrap()
    };
    let queued = warnings();
    assert!(!queued.is_empty(), "{steps:?}");
    assert!(queued.iter().all(|(_, n)| *n == 1), "{queued:?} {steps:?}");

    // The issuer withdraws the end; the customer ends again: warned before that end too.
    let admin = server.admin();
    let plan = subscription(&admin, &tenant)["plan"]["id"].clone();
    admin
        .put(
            &format!("/api/v1/tenants/{tenant}/subscription"),
            json!({ "plan_id": plan }),
        )
        .expect(200);
    let again = admin
        .post(
            &format!("/api/v1/tenants/{tenant}/subscription/end"),
            json!({ "confirm": tenant }),
        )
        .expect(200);
    at(&server, ms(&again["ends_at"]) - DAY as i64 * 1000);
    let queued = warnings();
    assert!(queued.iter().all(|(_, n)| *n == 2), "{queued:?}");
}
