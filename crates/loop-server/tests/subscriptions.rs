//! The subscription lifecycle, driven by the server's clock and the lifecycle timer's tick:
//! a trial that runs out, a suspension that refuses growth but not restores, a payment
//! method that reactivates, monthly invoices, a payment, an unpaid invoice that suspends and
//! then terminates, and the tenant's data erased at every place it lived. Every warning is
//! mailed to a real SMTP server, in each recipient's language.

#[path = "subscriptions/ending.rs"]
mod ending;
#[path = "subscriptions/races.rs"]
mod races;
mod support;

use serde_json::{Value, json};
use support::USER_PASSWORD;
use support::lifecycle::{
    DAY, acme_on, after, at, mail, ms, server_mailing_to, small_plan, subscription, user,
};
use support::smtp::SmtpSink;
use support::vault::{holder, pack_object, replicated_pack};

#[test]
fn a_subscription_lives_from_trial_to_suspension_payment_and_erasure_at_every_place() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let plan = admin
        .post(
            "/api/v1/plans",
            json!({ "issuer_id": provider, "name": "Small", "price_cents": 1999,
                    "currency": "eur", "device_limit": 2, "quota_bytes": 1u64 << 30 }),
        )
        .expect(201);
    assert_eq!(plan["currency"], "EUR");
    let plan_id = plan["id"].as_str().unwrap();
    let tenant = acme_on(&admin, plan_id);
    let s = subscription(&admin, &tenant);
    assert_eq!(
        (s["state"].clone(), s["payment_method"].clone()),
        (json!("trial"), json!(false))
    );
    // The customer's admin reads Dutch, its billing contact English.
    let nl = "beheer@acme.example";
    let en = "billing@acme.example";
    let admin_id = user(&admin, &tenant, nl, "admin");
    admin
        .patch(
            &format!("/api/v1/users/{admin_id}"),
            json!({ "language": "nl" }),
        )
        .expect(200);
    user(&admin, &tenant, en, "billing");
    let vault = admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "files", "destination": "local",
                    "retention_lock_days": 30 }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A replica holding the vault's one pack: its data is in two places, both erased at the end.
    let (_, _, pack_name) = replicated_pack(&server, &admin, &tenant, &vault);

    // Day 11: the trial ends in three days, and no payment method is on file.
    assert!(after(&server, 10, 0).is_empty());
    assert_eq!(after(&server, 1, 0), vec!["Warn(TrialEnding)"]);
    let (subject, text) = mail(
        &sink,
        nl,
        "Uw proefperiode van Loop Backup voor Acme eindigt op",
        1,
    );
    assert!(
        text.starts_with("Beste admin,") && text.contains("Het is geen reclame."),
        "{subject}: {text}"
    );
    mail(&sink, en, "Your Loop Backup trial for Acme ends on", 1);

    // Day 14: suspended. Growth is refused everywhere; restores go on.
    let steps = after(&server, 3, 0);
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(
        steps[0].starts_with("Suspend { reason: TrialEnded"),
        "{steps:?}"
    );
    let admin = server.admin();
    let s = subscription(&admin, &tenant);
    assert_eq!(
        (s["state"].clone(), s["reason"].clone()),
        (json!("suspended"), json!("trial-ended"))
    );
    admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "more", "destination": "local" }),
        )
        .expect_problem(402, "subscription_suspended");
    admin
        .post(
            "/api/v1/devices",
            json!({ "tenant_id": tenant, "name": "pc" }),
        )
        .expect_problem(402, "subscription_suspended");
    let writer = holder(&server, &admin, &tenant, &vault, &["backup", "restore"]);
    writer
        .put("data", &hex::encode([8u8; 32]), &pack_object([8u8; 32]))
        .expect_problem(402, "subscription_suspended");
    let read = writer.call("get", &format!("data/{pack_name}"));
    assert_eq!(read.status, 200, "restores keep working: {}", read.body);
    mail(
        &sink,
        nl,
        "Het Loop Backup-abonnement van Acme is opgeschort",
        1,
    );
    mail(
        &sink,
        en,
        "The Loop Backup subscription of Acme is suspended",
        1,
    );

    // The provider lets it pay by invoice: active at once, a billing period from now.
    let s = admin
        .put(
            &format!("/api/v1/tenants/{tenant}/subscription"),
            json!({ "plan_id": plan_id, "collection": "invoice" }),
        )
        .expect(200);
    assert_eq!(
        (s["state"].clone(), s["payment_method"].clone()),
        (json!("active"), json!(true))
    );
    for name in ["pc", "laptop"] {
        admin
            .post(
                "/api/v1/devices",
                json!({ "tenant_id": tenant, "name": name }),
            )
            .expect(201);
    }
    admin
        .post(
            "/api/v1/devices",
            json!({ "tenant_id": tenant, "name": "third" }),
        )
        .expect_problem(409, "device_limit");

    // The period's end: the first invoice, numbered 1 by its issuer, mailed to both.
    assert!(at(&server, ms(&s["period_end"]) - 1000).is_empty());
    assert_eq!(at(&server, ms(&s["period_end"])), vec!["Invoice"]);
    let admin = server.admin();
    let invoices = admin
        .get(&format!("/api/v1/tenants/{tenant}/invoices"))
        .expect(200);
    assert_eq!(invoices.as_array().unwrap().len(), 1, "{invoices}");
    let first = invoices[0].clone();
    assert_eq!(
        (
            first["number"].clone(),
            first["total_cents"].clone(),
            first["state"].clone()
        ),
        (json!(1), json!(1999), json!("open"))
    );
    let first_id = first["id"].as_str().unwrap();
    let page = admin
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/invoices/{first_id}?format=html"),
        )
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let header = |name: &str| page.headers()[name].to_str().unwrap().to_string();
    assert!(header("content-type").starts_with("text/html"));
    // A page of the console's site like the others: not framed, not cached, no script.
    let csp = header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let page = page.text().unwrap();
    assert!(
        page.contains("<h1>Invoice 1</h1>") && page.contains("19.99 EUR"),
        "{page}"
    );
    mail(&sink, en, "Invoice 1 for Acme: 19.99 EUR", 1);
    mail(&sink, nl, "Factuur 1 voor Acme: 19.99 EUR", 1);

    // Unpaid at its due date: past due, "payment failed". Then paid: active again.
    assert_eq!(at(&server, ms(&first["due_at"])), vec!["PastDue"]);
    mail(&sink, en, "Payment failed: invoice 1 for Acme is unpaid", 1);
    let admin = server.admin();
    // The customer's own billing contact cannot record a payment; the issuer can.
    let billing = server.sign_in(en, USER_PASSWORD);
    billing
        .post(
            &format!("/api/v1/invoices/{first_id}/payment"),
            json!({ "reference": "mine" }),
        )
        .expect_problem(403, "forbidden");
    let paid = admin
        .post(
            &format!("/api/v1/invoices/{first_id}/payment"),
            json!({ "reference": "NL12BANK0001 2027-01" }),
        )
        .expect(200);
    assert_eq!(paid["state"], "paid");
    let s = subscription(&admin, &tenant);
    assert_eq!(s["state"], "active");

    // The second invoice stays unpaid: past due at its due date, suspended 15 days later,
    // warned 7 days before the end, terminated 30 days after the due date.
    assert_eq!(at(&server, ms(&s["period_end"])), vec!["Invoice"]);
    let admin = server.admin();
    let second = admin
        .get(&format!("/api/v1/tenants/{tenant}/invoices"))
        .expect(200)[0]
        .clone();
    assert_eq!(second["number"], 2);
    let due = ms(&second["due_at"]);
    assert_eq!(at(&server, due), vec!["PastDue"]);
    let steps = at(&server, due + 15 * DAY as i64 * 1000);
    // (A calendar month may end meanwhile: that period is billed first.)
    assert!(
        steps
            .last()
            .unwrap()
            .starts_with("Suspend { reason: Unpaid"),
        "{steps:?}"
    );
    assert!(
        steps[..steps.len() - 1].iter().all(|s| s == "Invoice"),
        "{steps:?}"
    );
    let admin = server.admin();
    let end = ms(&subscription(&admin, &tenant)["terminate_at"]);
    assert_eq!(end, due + 30 * DAY as i64 * 1000);
    assert_eq!(
        at(&server, end - 7 * DAY as i64 * 1000),
        vec!["Warn(DeletionSoon)"]
    );
    mail(
        &sink,
        nl,
        "Alle gegevens van Acme in Loop Backup worden op",
        1,
    );
    mail(
        &sink,
        en,
        "The Loop Backup subscription of Acme is suspended",
        2,
    );
    assert!(at(&server, end - 1000).is_empty());
    assert_eq!(at(&server, end), vec!["Terminate { reason: Unpaid }"]);

    // Erased: keys destroyed, users locked out, every object gone from the primary and the
    // replica (despite the vault's 30-day retention lock), and the chains still verify.
    let admin = server.admin();
    let t = admin.get(&format!("/api/v1/tenants/{tenant}")).expect(200);
    assert_eq!(t["status"], "erased");
    assert_eq!(subscription(&admin, &tenant)["state"], "terminated");
    let deletes: Vec<_> = admin
        .audit_events()
        .into_iter()
        .filter(|e| e.action == "vault.delete" && e.object_id.as_deref() == Some(vault.as_str()))
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].details["retention_lock_overridden"], true);
    // The erasure job deletes every object at both places, lists them again, and certifies.
    let cert = support::certificate(&admin, &tenant);
    let places: Vec<&Value> = cert["places"].as_array().unwrap().iter().collect();
    assert_eq!(places.len(), 2, "{cert}");
    assert!(
        places
            .iter()
            .all(|p| p["objects_left"] == 0 && p["objects_deleted"].as_u64().unwrap() > 0),
        "{cert}"
    );
    for place in ["vaults", "spare"] {
        let left = support::files_under(&server.data_dir.join(place).join(&vault));
        assert!(left.is_empty(), "{place} still holds {left:?}");
    }
    mail(&sink, en, "The data of Acme in Loop Backup was deleted", 1);
    mail(
        &sink,
        nl,
        "De gegevens van Acme in Loop Backup zijn verwijderd",
        1,
    );
    support::assert_chained(&admin.audit_events());
    // A terminated subscription stays terminated; its invoices remain for the books, and
    // once the certificate went out, its people are erased: only pseudonyms stay.
    assert!(after(&server, 60, 0).is_empty());
    let admin = server.admin();
    let invoices = admin
        .get(&format!("/api/v1/tenants/{tenant}/invoices"))
        .expect(200);
    assert!(invoices.as_array().unwrap().len() >= 2, "{invoices}");
    let people = admin
        .get(&format!("/api/v1/users?tenant_id={tenant}"))
        .expect(200);
    let people = people.as_array().unwrap();
    assert!(!people.is_empty());
    for p in people {
        assert!(
            p["email"].as_str().unwrap().ends_with("@erased.invalid")
                && p["first_name"] == "Erased"
                && p["business_address"] == "",
            "{p}"
        );
    }
    let events = admin.audit_events();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.tenant_id == tenant && e.action == "user.erase")
            .count(),
        people.len()
    );
    support::assert_chained(&events);
}

/// The process stopped after a termination was recorded and before its erasure ran: the
/// next pass of the timer erases the tenant.
#[test]
fn a_termination_whose_erasure_never_ran_is_carried_out_by_the_next_tick() {
    let server = support::Server::start();
    let admin = server.admin();
    let tenant = acme_on(&admin, &small_plan(&admin));
    let pool = server.state.db.pool.clone();
    let t = tenant.clone();
    server.block_on(async move {
        sqlx::query("UPDATE subscriptions SET state = 'terminated' WHERE tenant_id = $1")
            .bind(&t)
            .execute(&pool)
            .await
            .unwrap();
    });
    assert_eq!(
        admin.get(&format!("/api/v1/tenants/{tenant}")).expect(200)["status"],
        "active"
    );

    support::lifecycle::tick(&server);
    assert_eq!(
        admin.get(&format!("/api/v1/tenants/{tenant}")).expect(200)["status"],
        "erased"
    );
    assert!(support::certificate(&admin, &tenant)["places"].is_array());
}

/// A reseller's billing staff, bound to a customer below it, hear of that customer's
/// subscription: the invoice names the customer, and the deletion certificate is the
/// customer's (not mail about, or dropped for, their own tenant).
#[test]
fn staff_bound_from_above_get_the_customers_mail() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let reseller = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": provider, "kind": "partner", "name": "Reseller" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let plan = admin
        .post(
            "/api/v1/plans",
            json!({ "issuer_id": provider, "name": "Small", "price_cents": 1999,
                    "currency": "EUR" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let acme = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": reseller, "kind": "customer", "name": "Acme",
                    "plan_id": plan }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .put(
            &format!("/api/v1/tenants/{acme}/subscription"),
            json!({ "plan_id": plan, "collection": "invoice" }),
        )
        .expect(200);
    let books = "books@reseller.example";
    let staff = user(&admin, &reseller, books, "billing");
    admin
        .post(
            &format!("/api/v1/users/{staff}/roles"),
            json!({ "tenant_id": acme, "role": "billing" }),
        )
        .expect(201);

    after(&server, 14, 1);
    after(&server, 31, 0);
    let (subject, text) = mail(&sink, books, "Invoice 1 for ", 1);
    assert!(
        subject.starts_with("Invoice 1 for Acme: 19.99 EUR"),
        "{subject}"
    );
    assert!(text.contains("19.99 EUR, due on "), "{text}");

    let admin = server.admin();
    let erased = admin
        .post(
            &format!("/api/v1/tenants/{acme}/erase"),
            json!({ "confirm": "Acme" }),
        )
        .expect(200);
    admin.job_ended(erased["erasure_job_id"].as_str().unwrap());
    let (_, text) = mail(
        &sink,
        books,
        "The data of Acme in Loop Backup was deleted",
        1,
    );
    let cert = support::certificate(&admin, &acme);
    assert!(
        text.contains(cert["id"].as_str().unwrap()),
        "the customer's certificate: {text}"
    );
}

/// A plan's prices are at most what a payment processor charges (99,999,999 in the minor
/// unit), so no invoice's total can overflow.
#[test]
fn a_plan_priced_beyond_what_a_processor_charges_is_refused() {
    let server = support::Server::start();
    let admin = server.admin();
    let plan = |name: &str, price: u64, extra: Option<u64>| {
        admin.post(
            "/api/v1/plans",
            json!({ "issuer_id": admin.provider_tenant_id(), "name": name, "price_cents": price,
                    "currency": "eur", "extra_gib_cents": extra }),
        )
    };
    plan("Top", 99_999_999, Some(99_999_999)).expect(201);
    plan("Over", 100_000_000, None).expect_problem(400, "invalid_request");
    plan("Extra", 100, Some(u64::MAX)).expect_problem(400, "invalid_request");
}
