//! Paying by card through the payment processor (a strict stand-in for Stripe's API,
//! `support::stripe`): the customer adds a card on the processor's page and the processor's
//! signed webhook tells the server; each invoice is charged when it is issued; a lost
//! answer is asked again without a second charge; a decline mails the customer and is
//! retried; a suspended customer who adds a working card is active again at once. Forged,
//! replayed and stale webhooks change nothing.
//!
//! `lookups.rs`: a charge whose webhook never comes is looked up at the processor.
//! `suspension.rs`: an invoice paid after its suspension, by transfer.
//! `small.rs`: invoices below the processor's smallest charge.
//! `order.rs`: the processor's events arriving in any order.

#[path = "../support/mod.rs"]
mod support;

mod lookups;
mod order;
mod small;
mod suspension;

use serde_json::{Value, json};
use support::USER_PASSWORD;
use support::lifecycle::{
    acme_on, after, customer_on, mail, server_mailing_to, subscription, tick, user,
};
use support::smtp::SmtpSink;
use support::stripe::{
    Card, WEBHOOK_SECRET, complete_setup, event, post_as_server, post_webhook, setup_event,
};
use support::{Caller, Server};

fn charges(c: &Caller<'_>, tenant: &str) -> Vec<Value> {
    c.get(&format!("/api/v1/tenants/{tenant}/charges"))
        .expect(200)
        .as_array()
        .unwrap()
        .clone()
}

fn invoices(c: &Caller<'_>, tenant: &str) -> Vec<Value> {
    c.get(&format!("/api/v1/tenants/{tenant}/invoices"))
        .expect(200)
        .as_array()
        .unwrap()
        .clone()
}

/// The card page's address, as the customer's billing user asks for it.
fn card_page(c: &Caller<'_>, tenant: &str) -> String {
    c.post(
        &format!("/api/v1/tenants/{tenant}/subscription/payment-method"),
        json!({}),
    )
    .expect(200)["url"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The tenant's audit events of `action`.
fn audited(c: &Caller<'_>, tenant: &str, action: &str) -> Vec<Value> {
    c.get(&format!(
        "/api/v1/audit?tenant_id={tenant}&action={action}&limit=1000"
    ))
    .expect(200)
    .as_array()
    .unwrap()
    .clone()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_card_pays_each_invoice_and_a_decline_suspends_until_a_new_card_pays() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let stripe = &server.stripe;
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
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
    let tenant = acme_on(&admin, &plan);
    let en = "billing@acme.example";
    user(&admin, &tenant, en, "billing");
    // Sessions end as the clock moves on by months: each step signs in afresh.
    let admin = || server.admin();
    let billing = || server.sign_in(en, USER_PASSWORD);

    // The card page: the processor's customer carries the tenant's name and address.
    let page = card_page(&billing(), &tenant);
    assert!(page.starts_with("https://checkout.stripe.com/"), "{page}");
    let customers = stripe.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(
        (&customers[0]["name"], &customers[0]["email"]),
        (&json!("Acme"), &json!(en))
    );
    assert_eq!(customers[0]["metadata"]["tenant_id"], json!(tenant));
    // A second page reuses the customer.
    card_page(&billing(), &tenant);
    assert_eq!(stripe.customers().len(), 1);

    // Webhooks that are not the processor's change nothing: a changed byte, a stale
    // signature, none at all.
    let (body, sig) = setup_event(stripe, &page, Card::Pays);
    let forged = body.replace("\"pm_", "\"pm_x");
    assert_ne!(forged, body);
    post_webhook(&server, &forged, &sig).expect_problem(400, "invalid_request");
    let stale = loop_server::notify::webhook::signature(
        WEBHOOK_SECRET.as_bytes(),
        now_secs() - 600,
        body.as_bytes(),
    );
    post_webhook(&server, &body, &stale).expect_problem(400, "invalid_request");
    post_webhook(&server, &body, "").expect_problem(400, "invalid_request");
    assert_eq!(subscription(&admin(), &tenant)["payment_method"], false);

    // The processor's own delivery counts, once however often it comes.
    post_webhook(&server, &body, &sig).expect(204);
    assert_eq!(subscription(&admin(), &tenant)["payment_method"], true);
    post_webhook(&server, &body, &sig).expect(204);
    assert_eq!(
        audited(&admin(), &tenant, "subscription.payment_method").len(),
        1
    );

    // Day 14: the trial ends with a card on file; a month later the first invoice is
    // charged at once.
    let steps = after(&server, 14, 1);
    assert!(steps[0].starts_with("Activate"), "{steps:?}");
    let steps = after(&server, 31, 0);
    assert_eq!(
        steps.first().map(String::as_str),
        Some("Invoice"),
        "{steps:?}"
    );
    let inv = &invoices(&admin(), &tenant)[0];
    let intents = stripe.intents();
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0]["amount"], inv["total_cents"]);
    assert_eq!(intents[0]["currency"], "eur");
    assert_eq!(intents[0]["off_session"], "true");
    assert_eq!(intents[0]["metadata"]["invoice_id"], inv["id"]);
    assert_eq!(inv["state"], "paid");
    assert_eq!(inv["payment_reference"], intents[0]["id"]);
    let ch = charges(&billing(), &tenant);
    assert_eq!(
        (&ch[0]["state"], &ch[0]["attempt"]),
        (&json!("succeeded"), &json!(1))
    );

    // A lost answer: the charge stays pending, is asked again with the same key, and the
    // processor charges once.
    stripe.lose_next_answer();
    after(&server, 31, 0);
    assert_eq!(charges(&billing(), &tenant)[0]["state"], "pending");
    tick(&server);
    assert_eq!(charges(&billing(), &tenant)[0]["state"], "succeeded");
    assert_eq!(stripe.intents().len(), 2, "one charge per invoice");
    // Another request with the same key still in progress (two nodes charging at once):
    // the processor answers 409, and the charge waits for that request's outcome.
    stripe.conflict_next();
    after(&server, 31, 0);
    assert_eq!(charges(&billing(), &tenant)[0]["state"], "pending");
    tick(&server);
    assert_eq!(charges(&billing(), &tenant)[0]["state"], "succeeded");
    assert_eq!(stripe.intents().len(), 3, "one charge per invoice");
    assert!(
        invoices(&admin(), &tenant)
            .iter()
            .all(|i| i["state"] == "paid")
    );

    // The card now declines: the next invoice fails, the customer hears why, and the
    // charge is tried again after three days, not before.
    complete_setup(
        stripe,
        &server,
        &card_page(&billing(), &tenant),
        Card::Declines("insufficient_funds"),
    )
    .expect(204);
    after(&server, 31, 0);
    let ch = charges(&billing(), &tenant);
    assert_eq!(
        (&ch[0]["state"], &ch[0]["failure_code"]),
        (&json!("failed"), &json!("insufficient_funds"))
    );
    let (_, text) = mail(&sink, en, "Payment failed: invoice 4 for Acme", 1);
    assert!(text.contains("Your card was declined."), "{text}");
    after(&server, 2, 0);
    assert_eq!(charges(&billing(), &tenant).len(), ch.len());
    after(&server, 1, 1);
    let again = charges(&billing(), &tenant);
    assert_eq!(
        (again.len(), &again[0]["attempt"], &again[0]["state"]),
        (ch.len() + 1, &json!(2), &json!("failed"))
    );

    // Fifteen days past the due date: suspended. A working card pays at once.
    let steps = after(&server, 30, 0);
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("Suspend { reason: Unpaid")),
        "{steps:?}"
    );
    assert_eq!(subscription(&admin(), &tenant)["state"], "suspended");
    complete_setup(stripe, &server, &card_page(&billing(), &tenant), Card::Pays).expect(204);
    assert_eq!(subscription(&admin(), &tenant)["state"], "active");
    assert!(
        invoices(&admin(), &tenant)
            .iter()
            .all(|i| i["state"] == "paid")
    );
    let charged = audited(&admin(), &tenant, "invoice.charge");
    assert!(
        charged.iter().any(|e| e["outcome"] == "failure")
            && charged.iter().any(|e| e["outcome"] == "success"),
        "{charged:?}"
    );

    // Every request the server made was one the processor's API has.
    assert_eq!(
        stripe
            .refused()
            .iter()
            .filter(|r| !r.contains("card_declined")
                && !r.contains("\"lost\"")
                && !r.contains("idempotency_key_in_use"))
            .collect::<Vec<_>>(),
        Vec::<&String>::new()
    );
    // And the stand-in is strict: a parameter Stripe does not have is refused.
    let (status, answer) = post_as_server(
        stripe,
        "/v1/payment_intents",
        &[
            ("amount", "100"),
            ("currency", "eur"),
            ("card_number", "4242424242424242"),
        ],
    );
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("parameter_unknown"))
    );
}

/// What a subscription owes ends with it: a customer who ends theirs pays the last period's
/// invoice, a customer erased by hand is billed no more (and cannot start again), and an
/// invoice with nothing to pay is paid as it is issued instead of falling due.
#[test]
fn the_last_invoice_is_charged_an_erased_tenant_is_billed_no_more_and_nothing_owed_never_falls_due()
{
    let server = Server::start_with(|c| c.jobs.scheduler_seconds = 86_400);
    let stripe = &server.stripe;
    let admin = || server.admin();
    let provider = admin().provider_tenant_id();
    let plan = |price: u64| {
        admin()
            .post(
                "/api/v1/plans",
                json!({ "issuer_id": provider, "name": format!("Plan {price}"),
                        "price_cents": price, "extra_gib_cents": 10, "quota_bytes": 1 << 30,
                        "currency": "EUR" }),
            )
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (paid_plan, free_plan) = (plan(1999), plan(0));
    // Prices are in hundredths: a currency without them would be charged 100 times over.
    let yen = admin().post(
        "/api/v1/plans",
        json!({ "issuer_id": provider, "name": "Yen", "price_cents": 1500, "currency": "jpy" }),
    );
    yen.expect_problem(400, "invalid_request");
    assert!(
        yen.json()["detail"]
            .as_str()
            .unwrap()
            .contains("JPY does not have"),
        "{}",
        yen.json()
    );
    let customer = |name: &str, plan: &str| customer_on(&admin(), name, plan);
    let (leaving, erased, free) = (
        customer("Leaving", &paid_plan),
        customer("Erased", &paid_plan),
        customer("Free", &free_plan),
    );
    for t in [&leaving, &erased] {
        complete_setup(stripe, &server, &card_page(&admin(), t), Card::Pays).expect(204);
    }
    admin()
        .put(
            &format!("/api/v1/tenants/{free}/subscription"),
            json!({ "plan_id": free_plan, "collection": "invoice" }),
        )
        .expect(200);
    after(&server, 14, 1);
    for t in [&leaving, &erased, &free] {
        assert_eq!(subscription(&admin(), t)["state"], "active");
    }
    admin()
        .post(
            &format!("/api/v1/tenants/{leaving}/subscription/end"),
            json!({ "confirm": leaving }),
        )
        .expect(200);
    admin()
        .post(
            &format!("/api/v1/tenants/{erased}/erase"),
            json!({ "confirm": erased }),
        )
        .expect(200);
    let ended = subscription(&admin(), &erased);
    assert_eq!(
        (&ended["state"], &ended["reason"]),
        (&json!("terminated"), &json!("erased"))
    );

    // The period ends: the leaving customer's last invoice is issued and charged as its
    // subscription ends; the erased one gets no invoice and no charge.
    after(&server, 31, 0);
    assert_eq!(subscription(&admin(), &leaving)["state"], "terminated");
    let last = invoices(&admin(), &leaving);
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["state"], "paid", "{last:#?}");
    assert!(invoices(&admin(), &erased).is_empty());
    let intents = stripe.intents();
    assert_eq!(intents.len(), 1, "{intents:#?}");
    assert_eq!(intents[0]["metadata"]["invoice_id"], last[0]["id"]);
    admin()
        .put(
            &format!("/api/v1/tenants/{erased}/subscription"),
            json!({ "plan_id": paid_plan }),
        )
        .expect_problem(410, "tenant_erased");

    // Nothing to pay: paid as issued, so the free customer never falls due.
    let owed = invoices(&admin(), &free);
    assert_eq!(
        (owed.len(), &owed[0]["total_cents"], &owed[0]["state"]),
        (1, &json!(0), &json!("paid"))
    );
    after(&server, 40, 0);
    assert_eq!(subscription(&admin(), &free)["state"], "active");
}

#[test]
fn without_a_processor_cards_are_refused_and_the_webhook_is_not_there() {
    let server = Server::start_with(|c| c.billing.stripe = None);
    let admin = server.admin();
    let tenant = admin.provider_tenant_id();
    let customer = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": tenant, "kind": "customer", "name": "Beta" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.subscribed(&admin, &customer, "beta");
    admin
        .post(
            &format!("/api/v1/tenants/{customer}/subscription/payment-method"),
            json!({}),
        )
        .expect_problem(409, "no_payment_processor");
    // A card cannot be added, so a subscription is paid by invoice unless said otherwise:
    // its trial ends in the paid plan, billed by invoice, not suspended (and, unpaid for a
    // month, erased).
    assert_eq!(subscription(&admin, &customer)["collection"], "invoice");
    let steps = after(&server, 14, 1);
    assert!(steps[0].starts_with("Activate"), "{steps:?}");
    assert_ne!(
        subscription(&server.admin(), &customer)["state"],
        "suspended"
    );
    post_webhook(&server, "{}", "t=1,v1=00").expect_problem(404, "not_found");
    assert!(charges(&server.admin(), &customer).is_empty());
}

/// Acme's billing user.
const BILLING: &str = "billing@acme.example";

/// Acme, on a new plan of 19.99 EUR a month in its trial, with its billing user: the tenant.
fn acme_with_billing(server: &Server) -> String {
    acme_with_billing_at(server, 1999)
}

/// [`acme_with_billing`], on a plan of `price_cents` EUR cents a month.
fn acme_with_billing_at(server: &Server, price_cents: u64) -> String {
    let admin = server.admin();
    let plan = admin
        .post(
            "/api/v1/plans",
            json!({ "issuer_id": admin.provider_tenant_id(), "name": "Small",
                    "price_cents": price_cents, "currency": "EUR" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tenant = acme_on(&admin, &plan);
    user(&admin, &tenant, BILLING, "billing");
    tenant
}

/// A server mailing to an SMTP sink, with [`charged_by_debit`]'s Acme: (sink, server,
/// tenant), or nothing when there is no SMTP sink here.
fn debit_story() -> Option<(SmtpSink, Server, String)> {
    let sink = SmtpSink::start()?;
    let server = server_mailing_to(&sink);
    let tenant = charged_by_debit(&server);
    Some((sink, server, tenant))
}

/// Acme with a payment method that the processor accepts as `processing` (a bank debit),
/// past its trial and its first month: its first invoice is charged.
fn charged_by_debit(server: &Server) -> String {
    let tenant = acme_with_billing(server);
    let page = card_page(&server.sign_in(BILLING, USER_PASSWORD), &tenant);
    complete_setup(&server.stripe, server, &page, Card::Processes).expect(204);
    after(server, 14, 1);
    after(server, 31, 0);
    tenant
}

/// A charge the processor accepted but has not settled (a bank debit stays `processing` for
/// days) is not asked for again: once the processor has forgotten the request's key (after
/// 24 hours) the same request would be a second charge. Its webhook settles it.
#[test]
fn a_charge_still_processing_is_asked_for_once_and_settled_by_its_webhook() {
    let Some((_sink, server, tenant)) = debit_story() else {
        return;
    };
    let stripe = &server.stripe;
    let billing = || server.sign_in(BILLING, USER_PASSWORD);
    assert_eq!(stripe.charge_requests(), 1);
    assert_eq!(charges(&billing(), &tenant)[0]["state"], "pending");
    tick(&server);
    for _ in 0..3 {
        after(&server, 1, 0);
    }
    assert_eq!(
        stripe.charge_requests(),
        1,
        "a charge still processing is not asked for again"
    );
    let mut settled = stripe.intents()[0].clone();
    settled["status"] = json!("succeeded");
    let (body, sig) = event(stripe, "payment_intent.succeeded", settled);
    post_webhook(&server, &body, &sig).expect(204);
    assert_eq!(charges(&billing(), &tenant)[0]["state"], "succeeded");
    assert_eq!(invoices(&server.admin(), &tenant)[0]["state"], "paid");

    // The next invoice's charge is made but its answer lost. Within the day it would be
    // asked again with the same key (the first test); a day on, the processor may have
    // forgotten the key, and it is not asked again. Its webhook, which names the invoice,
    // settles it.
    stripe.lose_next_answer();
    after(&server, 28, 0);
    assert_eq!(stripe.charge_requests(), 2);
    assert_eq!(charges(&billing(), &tenant)[0]["state"], "pending");
    after(&server, 1, 0);
    after(&server, 1, 0);
    assert_eq!(
        stripe.charge_requests(),
        2,
        "not asked once the key may be gone"
    );
    assert_eq!(stripe.intents().len(), 2);
    // Still pending, and marked for the operator to look up.
    let ch = charges(&billing(), &tenant);
    assert_eq!(
        (&ch[0]["state"], &ch[0]["failure_code"]),
        (&json!("pending"), &json!("answer_lost")),
        "{ch:#?}"
    );
    let mut settled = stripe.intents()[1].clone();
    settled["status"] = json!("succeeded");
    let (body, sig) = event(stripe, "payment_intent.succeeded", settled);
    post_webhook(&server, &body, &sig).expect(204);
    assert!(
        invoices(&server.admin(), &tenant)
            .iter()
            .all(|i| i["state"] == "paid")
    );
}
