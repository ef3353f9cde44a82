//! The processor delivers events in no set order and retries them for days.

use super::*;

/// The processor delivers events in no set order and retries them for days: a card's setup
/// whose event arrives after a newer card's does not put the older card back. A card removed
/// at the processor is mailed about at once.
#[test]
fn a_late_setup_event_does_not_put_an_older_card_back() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let stripe = &server.stripe;
    let tenant = acme_with_billing(&server);
    let billing = || server.sign_in(BILLING, USER_PASSWORD);
    // The old card (it declines) is set up first, the new one (it pays) after it; the new
    // one's event arrives first.
    let (old_body, old_sig) = setup_event(
        stripe,
        &card_page(&billing(), &tenant),
        Card::Declines("insufficient_funds"),
    );
    let (new_body, new_sig) = setup_event(stripe, &card_page(&billing(), &tenant), Card::Pays);
    post_webhook(&server, &new_body, &new_sig).expect(204);
    post_webhook(&server, &old_body, &old_sig).expect(204);
    after(&server, 14, 1);
    after(&server, 31, 0);
    let ch = charges(&billing(), &tenant);
    assert_eq!(ch.len(), 1, "{ch:#?}");
    assert_eq!(
        ch[0]["state"], "succeeded",
        "charged to the new card: {ch:#?}"
    );
    assert_eq!(invoices(&server.admin(), &tenant)[0]["state"], "paid");

    // The customer removes the new card at the processor; the old card's event, delivered
    // once more, does not bring the old card back either.
    let new: Value = serde_json::from_str(&new_body).unwrap();
    let pm = new["data"]["object"]["payment_method"].clone();
    let (gone, gone_sig) = event(stripe, "payment_method.detached", json!({ "id": pm }));
    post_webhook(&server, &gone, &gone_sig).expect(204);
    assert_eq!(
        subscription(&server.admin(), &tenant)["payment_method"],
        false
    );
    // The billing user hears of it now, not once an invoice is past due.
    let (_, text) = mail(&sink, BILLING, "The payment method of Acme was removed", 1);
    assert!(
        text.contains(&format!("loop subscription card {tenant}")),
        "{text}"
    );
    let old: Value = serde_json::from_str(&old_body).unwrap();
    let (again, again_sig) = event(
        stripe,
        "setup_intent.succeeded",
        old["data"]["object"].clone(),
    );
    post_webhook(&server, &again, &again_sig).expect(204);
    assert_eq!(
        subscription(&server.admin(), &tenant)["payment_method"],
        false
    );
}

/// A card removed at the processor whose removal's event arrives before its setup's (the
/// endpoint was down when it was added): the setup's event, retried later, does not put the
/// removed card on file.
#[test]
fn a_setup_event_after_its_cards_removal_does_not_put_it_on_file() {
    let server = Server::start();
    let stripe = &server.stripe;
    let tenant = acme_with_billing(&server);
    let billing = || server.sign_in(BILLING, USER_PASSWORD);
    let (body, sig) = setup_event(stripe, &card_page(&billing(), &tenant), Card::Pays);
    let setup: Value = serde_json::from_str(&body).unwrap();
    let pm = setup["data"]["object"]["payment_method"].clone();
    let (gone, gone_sig) = event(stripe, "payment_method.detached", json!({ "id": pm }));
    post_webhook(&server, &gone, &gone_sig).expect(204);
    post_webhook(&server, &body, &sig).expect(204);
    assert_eq!(
        subscription(&server.admin(), &tenant)["payment_method"],
        false
    );
}
