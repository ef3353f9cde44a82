//! An invoice below the payment processor's smallest charge (0.50 in EUR) cannot be charged:
//! the processor refuses it, so a customer paying by card would fall past due and be
//! suspended, then erased, over an invoice they had no way to pay. It is paid by carrying
//! its total to the next invoice instead, which charges both.

use super::support;
use serde_json::{Value, json};
use support::lifecycle::{after, mail, server_mailing_to, subscription};
use support::smtp::SmtpSink;
use support::stripe::{Card, complete_setup, post_as_server};
use support::{Server, USER_PASSWORD};

#[test]
fn an_invoice_below_the_smallest_charge_is_carried_to_the_next_and_charged_with_it() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to(&sink);
    let stripe = &server.stripe;
    let tenant = super::acme_with_billing_at(&server, 30);
    let page = super::card_page(&server.sign_in(super::BILLING, USER_PASSWORD), &tenant);
    complete_setup(stripe, &server, &page, Card::Pays).expect(204);
    after(&server, 14, 1);

    // The first month's 0.30: paid by carrying it, no charge asked for.
    after(&server, 31, 0);
    let first = numbered(&server, &tenant, 1);
    assert_eq!(
        (&first["state"], &first["total_cents"]),
        (&json!("paid"), &json!(30))
    );
    assert_eq!(first["payment_reference"], "carried to the next invoice");
    assert_eq!(stripe.charge_requests(), 0);
    // Its mail says so, rather than that there is nothing to pay.
    let (_, text) = mail(&sink, super::BILLING, "Invoice 1 for Acme", 1);
    assert!(text.contains("added to the next invoice"), "{text}");

    // The second month's, with the first carried over: 0.60, charged.
    after(&server, 31, 0);
    let second = numbered(&server, &tenant, 2);
    assert_eq!(second["total_cents"], 60, "{second:#}");
    assert_eq!(second["state"], "paid", "{second:#}");
    let carried = &second["lines"][1];
    assert_eq!(carried["description"], "Carried over from invoice 1");
    assert_eq!(carried["amount_cents"], 30);
    let first = numbered(&server, &tenant, 1);
    assert_eq!(first["payment_reference"], "carried to invoice 2");
    let charged: Vec<u64> = stripe
        .intents()
        .iter()
        .map(|i| i["amount"].as_u64().unwrap())
        .collect();
    assert_eq!(charged, [60]);
    assert!(stripe.refused().is_empty(), "{:?}", stripe.refused());
    assert_eq!(subscription(&server.admin(), &tenant)["state"], "active");
    // As the processor does, the stand-in refuses the first invoice's 0.30.
    let (status, refused) = post_as_server(
        stripe,
        "/v1/payment_intents",
        &[("amount", "30"), ("currency", "eur")],
    );
    assert_eq!(
        (status, &refused["error"]["code"]),
        (400, &json!("amount_too_small"))
    );
}

/// The tenant's invoice numbered `n`.
fn numbered(server: &Server, tenant: &str, n: u64) -> Value {
    super::invoices(&server.admin(), tenant)
        .into_iter()
        .find(|i| i["number"] == n)
        .unwrap_or_else(|| panic!("no invoice {n} of {tenant}"))
}

/// An amount carried is charged only on its own issuer's next invoice in its currency: a
/// customer moved to a plan sold higher up does not pay its reseller's amount to the
/// provider.
#[test]
fn only_the_same_issuers_small_invoices_in_the_same_currency_are_carried() {
    use loop_server::db::invoices;
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let reseller = admin.customer_tenant("Reseller");
    let tenant = admin.customer_tenant("Acme");
    let small = |id: &str, issuer: &str, currency: &str, start: i64| {
        let at = chrono::DateTime::from_timestamp_millis(start).unwrap();
        loop_api::Invoice {
            id: id.into(),
            issuer_id: issuer.into(),
            number: 0,
            tenant_id: tenant.clone(),
            bill_to: "Acme".into(),
            plan_id: "pl_small".into(),
            period_start: at,
            period_end: at,
            currency: currency.into(),
            lines: Vec::new(),
            total_cents: 30,
            state: loop_api::InvoiceState::Paid,
            issued_at: at,
            due_at: at,
            paid_at: Some(at),
            payment_reference: Some(invoices::CARRIED.into()),
        }
    };
    let carried = server.block_on(async {
        let mut tx = server.state.db.begin().await.unwrap();
        for i in [
            small("in_ours", &provider, "EUR", 1_000),
            small("in_resellers", &reseller, "EUR", 2_000),
            small("in_dollars", &provider, "USD", 3_000),
        ] {
            invoices::insert_invoice(&mut tx, &i).await.unwrap();
        }
        let carried = invoices::carried_of(&mut tx, &tenant, (&provider, "EUR")).await;
        tx.commit().await.unwrap();
        carried.unwrap()
    });
    let ids: Vec<&str> = carried.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["in_ours"]);
}
