//! A charge whose webhook never comes (the endpoint was down past the processor's retries)
//! is looked up at the processor every hour, and settled as the processor has it; a charge
//! whose answer was lost and that the processor never made is tried again.

use super::*;

/// Moves the clock on an hour, then ticks.
fn an_hour_on(server: &Server) {
    server.advance(std::time::Duration::from_secs(3600));
    tick(server);
}

#[test]
fn a_charge_whose_webhook_never_comes_is_settled_by_looking_it_up() {
    let Some((sink, server, tenant)) = debit_story() else {
        return;
    };
    let stripe = &server.stripe;
    let billing = || server.sign_in(BILLING, USER_PASSWORD);
    assert_eq!(charges(&billing(), &tenant)[0]["state"], "pending");

    // The debit goes through at the processor; its event never arrives.
    let first = stripe.intents()[0]["id"].as_str().unwrap().to_string();
    stripe.settle_intent(&first, None);
    an_hour_on(&server);
    let ch = charges(&billing(), &tenant);
    assert_eq!(ch[0]["state"], "succeeded", "{ch:#?}");
    assert_eq!(invoices(&server.admin(), &tenant)[0]["state"], "paid");
    assert_eq!(stripe.charge_requests(), 1, "looked up, not asked again");

    // The next invoice's charge never reaches the processor, and the server does not
    // hear back for a day: the processor may have forgotten the key, so it is not asked
    // again. Looked up, the processor has no such charge: a new try is made.
    stripe.drop_next_charge();
    after(&server, 31, 0);
    assert_eq!(stripe.charge_requests(), 2);
    after(&server, 1, 0);
    assert_eq!(
        stripe.charge_requests(),
        2,
        "not asked once the key may be gone"
    );
    an_hour_on(&server);
    let ch = charges(&billing(), &tenant);
    assert_eq!(
        (&ch[0]["state"], &ch[0]["failure_code"]),
        (&json!("failed"), &json!("not_made")),
        "{ch:#?}"
    );
    tick(&server);
    assert_eq!(stripe.charge_requests(), 3, "a new try at once");
    assert_eq!(stripe.intents().len(), 2);

    // That debit is returned at the processor, again without an event: the charge fails
    // and the customer hears of it.
    let second = stripe.intents()[1]["id"].as_str().unwrap().to_string();
    stripe.settle_intent(&second, Some("insufficient_funds"));
    an_hour_on(&server);
    let ch = charges(&billing(), &tenant);
    assert_eq!(
        (&ch[0]["state"], &ch[0]["failure_code"]),
        (&json!("failed"), &json!("insufficient_funds")),
        "{ch:#?}"
    );
    assert_eq!(ch.len(), 3, "{ch:#?}");
    let (_, text) = mail(&sink, BILLING, "Payment failed", 1);
    assert!(text.contains("The debit was returned."), "{text}");
}

/// A looked-up charge that waits for the customer (3-D Secure) stays pending; one canceled
/// at the processor fails without telling the customer their payment failed.
#[test]
fn a_looked_up_charge_waiting_for_the_customer_stays_and_a_canceled_one_fails_quietly() {
    let Some((sink, server, tenant)) = debit_story() else {
        return;
    };
    let stripe = &server.stripe;
    let billing = || server.sign_in(BILLING, USER_PASSWORD);
    let id = stripe.intents()[0]["id"].as_str().unwrap().to_string();
    stripe.settle_intent(&id, Some("requires_action"));
    an_hour_on(&server);
    assert_eq!(charges(&billing(), &tenant)[0]["state"], "pending");
    stripe.settle_intent(&id, Some("canceled"));
    an_hour_on(&server);
    let ch = charges(&billing(), &tenant);
    assert_eq!(
        (&ch[0]["state"], &ch[0]["failure_code"]),
        (&json!("failed"), &json!("canceled")),
        "{ch:#?}"
    );
    tick(&server);
    assert!(
        sink.messages()
            .iter()
            .all(|m| !m["subject"].as_str().unwrap().starts_with("Payment failed")),
        "no payment-failed mail"
    );
}

/// A debit still processing when the issuer moves the customer to paying by invoice is
/// still looked up at the processor: once it is returned there, the charge fails and the
/// customer's transfer can be recorded.
#[test]
fn a_pending_charge_is_looked_up_after_the_customer_moved_to_invoices() {
    let Some((_sink, server, tenant)) = debit_story() else {
        return;
    };
    let stripe = &server.stripe;
    let admin = || server.admin();
    let plan = subscription(&admin(), &tenant)["plan"]["id"].clone();
    admin()
        .put(
            &format!("/api/v1/tenants/{tenant}/subscription"),
            json!({ "plan_id": plan, "collection": "invoice" }),
        )
        .expect(200);
    let debit = stripe.intents()[0]["id"].as_str().unwrap().to_string();
    stripe.settle_intent(&debit, Some("insufficient_funds"));
    an_hour_on(&server);
    let ch = charges(&server.sign_in(BILLING, USER_PASSWORD), &tenant);
    assert_eq!(
        (&ch[0]["state"], &ch[0]["failure_code"]),
        (&json!("failed"), &json!("insufficient_funds")),
        "{ch:#?}"
    );
    let invoice = invoices(&admin(), &tenant)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin()
        .post(
            &format!("/api/v1/invoices/{invoice}/payment"),
            json!({ "reference": "a transfer" }),
        )
        .expect(200);
    assert_eq!(stripe.charge_requests(), 1, "the card is not charged again");
}
