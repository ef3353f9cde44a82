//! An invoice paid after it suspended the customer: billing resumes from the start of the
//! period the suspension interrupted, so those days are not given away. A bank debit still
//! settling holds the suspension back. A processor that refuses the service's key uses up
//! none of a card's tries; one that no longer has the payment method uses them up.

use super::support;
use serde_json::json;
use support::lifecycle::{after, at, ms, subscription, tick};
use support::stripe::{Card, complete_setup};
use support::{Server, USER_PASSWORD};

const DAY_MS: i64 = 86_400_000;

#[test]
fn a_customer_who_pays_after_a_suspension_is_billed_from_the_period_it_interrupted() {
    let server = Server::start_with(|c| c.jobs.scheduler_seconds = 86_400);
    let (tenant, s) = support::lifecycle::acme_paying_by_invoice(&server.admin());
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
    let id = invoice["id"].as_str().unwrap();
    support::lifecycle::paid_by_transfer(&admin, id, "late transfer");
    let s = subscription(&admin, &tenant);
    assert_eq!(s["state"], "active", "{s}");
    assert_eq!(
        ms(&s["period_start"]),
        ms(&interrupted),
        "billed from the start of the period the suspension interrupted: {s}"
    );
}

/// A server whose lifecycle only the test ticks, with Acme and its billing user, who set up
/// `card` in the trial: (the server, Acme).
fn acme_paying_with(card: Card) -> (Server, String) {
    let server = Server::start_with(|c| c.jobs.scheduler_seconds = 86_400);
    let tenant = super::acme_with_billing(&server);
    let page = super::card_page(&server.sign_in(super::BILLING, USER_PASSWORD), &tenant);
    complete_setup(&server.stripe, &server, &page, card).expect(204);
    (server, tenant)
}

/// A bank debit still settling holds back the suspension its invoice would bring, and so
/// the termination: as far as the customer knows, it paid. Returned after all, the customer
/// is suspended with the full notice before its data goes.
#[test]
fn a_debit_still_settling_holds_back_the_suspension_and_a_returned_one_gives_full_notice() {
    let (server, tenant) = acme_paying_with(Card::Declines("insufficient_funds"));
    let stripe = &server.stripe;
    let billing = || server.sign_in(super::BILLING, USER_PASSWORD);
    after(&server, 14, 1);
    after(&server, 31, 0);
    let invoice = super::invoices(&server.admin(), &tenant)[0].clone();
    assert_eq!(invoice["state"], "open");
    let due = ms(&invoice["due_at"]);

    // Ten days past due the customer gives a bank account: debited at once, settling.
    at(&server, due + 10 * DAY_MS);
    let page = super::card_page(&billing(), &tenant);
    complete_setup(stripe, &server, &page, Card::Processes).expect(204);
    assert_eq!(super::charges(&billing(), &tenant)[0]["state"], "pending");
    for days in [16, 30] {
        at(&server, due + days * DAY_MS);
        let s = subscription(&server.admin(), &tenant);
        assert_eq!(s["state"], "past-due", "{days} days past due: {s:#}");
    }

    // The debit is returned: suspended now, terminated 15 days on, not at once; the
    // account is not debited again before three days.
    let debit = stripe
        .intents()
        .into_iter()
        .rfind(|pi| pi["metadata"]["invoice_id"] == invoice["id"])
        .expect("the invoice's debit")["id"]
        .as_str()
        .unwrap()
        .to_string();
    stripe.settle_intent(&debit, Some("insufficient_funds"));
    server.advance(std::time::Duration::from_secs(3600));
    tick(&server);
    tick(&server);
    let ch = super::charges(&billing(), &tenant);
    let of_invoice: Vec<_> = ch
        .iter()
        .filter(|c| c["invoice_id"] == invoice["id"])
        .collect();
    assert_eq!(
        (&of_invoice[0]["state"], &of_invoice[0]["failure_code"]),
        (&json!("failed"), &json!("insufficient_funds")),
        "{ch:#?}"
    );
    let now = server.state.now();
    let admin = server.admin();
    let s = subscription(&admin, &tenant);
    assert_eq!(s["state"], "suspended", "{s:#}");
    assert!(ms(&s["terminate_at"]) >= now + 15 * DAY_MS - 1000, "{s:#}");
    assert_eq!(
        admin.get(&format!("/api/v1/tenants/{tenant}")).expect(200)["status"],
        "active"
    );
}

/// The service's API key rolled at the processor (every request refused) is not the card's
/// doing: the tries while it lasts, more than a card's four, use up none of its attempts,
/// and the card is charged once the key works again.
#[test]
fn requests_the_processor_refuses_use_up_none_of_a_cards_attempts() {
    let (server, tenant) = acme_paying_with(Card::Pays);
    let stripe = &server.stripe;
    let ch = charged_for_a_month_and_a_fortnight(&server, &tenant, |s| s.roll_key(true));
    assert_eq!(ch.len(), 6, "{ch:#?}");
    assert!(
        ch.iter().all(|c| c["failure_code"] == "processor_refused"),
        "{ch:#?}"
    );
    stripe.roll_key(false);
    after(&server, 3, 1);
    let invoices = super::invoices(&server.admin(), &tenant);
    assert_eq!(invoices[0]["state"], "paid", "{invoices:#?}");
}

/// A payment method the processor no longer has (detached, its mandate revoked) is the
/// card's doing: each refusal is one of its four tries, and then it is not asked again.
#[test]
fn a_payment_method_the_processor_no_longer_has_uses_up_its_attempts() {
    let (server, tenant) = acme_paying_with(Card::Pays);
    let ch = charged_for_a_month_and_a_fortnight(&server, &tenant, |s| s.detach_payment_methods());
    assert_eq!(ch.len(), 4, "{ch:#?}");
    assert!(
        ch.iter().all(|c| c["failure_code"] == "request_refused"),
        "{ch:#?}"
    );
}

/// A transfer recorded while the invoice's card charge is still pending at the processor
/// would have the customer pay twice: `409 charge_pending`, until that charge failed.
#[test]
fn a_payment_is_not_recorded_while_a_card_charge_of_the_invoice_is_pending() {
    let (server, tenant) = acme_paying_with(Card::Processes);
    let stripe = &server.stripe;
    after(&server, 14, 1);
    after(&server, 31, 0);
    let admin = server.admin();
    let invoice = super::invoices(&admin, &tenant)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pay = || {
        server.admin().post(
            &format!("/api/v1/invoices/{invoice}/payment"),
            json!({ "reference": "a transfer" }),
        )
    };
    pay().expect_problem(409, "charge_pending");
    assert_eq!(super::invoices(&admin, &tenant)[0]["state"], "open");

    let debit = stripe.intents()[0]["id"].as_str().unwrap().to_string();
    stripe.settle_intent(&debit, Some("insufficient_funds"));
    server.advance(std::time::Duration::from_secs(3600));
    tick(&server);
    assert_eq!(pay().expect(200)["state"], "paid");
}

/// Acme's trial ends, then `refusing` makes the processor refuse, and the first invoice is
/// issued and retried every three days for a fortnight: every charge made.
fn charged_for_a_month_and_a_fortnight(
    server: &Server,
    tenant: &str,
    refusing: impl FnOnce(&support::stripe::FakeStripe),
) -> Vec<serde_json::Value> {
    after(server, 14, 1);
    refusing(&server.stripe);
    after(server, 31, 0);
    for _ in 0..5 {
        after(server, 3, 1);
    }
    super::charges(&server.sign_in(super::BILLING, USER_PASSWORD), tenant)
}
