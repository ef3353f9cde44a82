//! Billing records written at once, by two nodes or by a node and a request: invoice
//! numbers, device limits, and a lifecycle step against a payment or a charge.

use super::*;

/// An open invoice `in_{tenant}` of 1.00 EUR from `issuer` to `tenant`, due now.
fn open_invoice(issuer: &str, tenant: &str, plan: &str) -> loop_api::Invoice {
    let now = chrono::Utc::now();
    loop_api::Invoice {
        id: format!("in_{tenant}"),
        issuer_id: issuer.to_string(),
        number: 0,
        tenant_id: tenant.to_string(),
        bill_to: tenant.to_string(),
        plan_id: plan.to_string(),
        period_start: now,
        period_end: now,
        currency: "EUR".into(),
        lines: Vec::new(),
        total_cents: 100,
        state: loop_api::InvoiceState::Open,
        issued_at: now,
        due_at: now,
        paid_at: None,
        payment_reference: None,
    }
}

/// Two invoices of one issuer recorded at once (the lifecycle timers of two nodes, each at
/// its own customer) take consecutive numbers: the second waits for the first, rather than
/// take the same number and fail on it.
#[test]
fn invoices_of_one_issuer_recorded_at_once_take_consecutive_numbers() {
    use loop_server::db::invoices::insert_invoice;
    let server = support::Server::start();
    let admin = server.admin();
    let issuer = admin.provider_tenant_id();
    let (a, b) = (admin.customer_tenant("A"), admin.customer_tenant("B"));
    let invoice = |tenant: &str| open_invoice(&issuer, tenant, "pl_none");
    let (first, second) = server.block_on(async {
        let state = server.state.clone();
        let mut tx = state.db.begin().await.unwrap();
        let first = insert_invoice(&mut tx, &invoice(&a)).await.unwrap();
        let second = tokio::spawn({
            let (state, inv) = (state.clone(), invoice(&b));
            async move {
                let mut tx = state.db.begin().await.map_err(|e| e.to_string())?;
                let n = insert_invoice(&mut tx, &inv)
                    .await
                    .map_err(|e| e.to_string())?;
                tx.commit().await.map_err(|e| e.to_string())?;
                Ok::<_, String>(n)
            }
        });
        // Time for the second to reach its insert while the first is open (no assertion
        // rests on it: started later, the second sees the first's number anyway).
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        tx.commit().await.unwrap();
        (first, second.await.unwrap())
    });
    assert_eq!(first, Some(1));
    assert_eq!(second, Ok(Some(2)));
}

/// Devices made at once (several admins, or agents enrolling together) stay within the
/// plan's device limit: on PostgreSQL each request's count would otherwise miss the others'
/// devices not yet committed.
#[test]
fn devices_made_at_once_stay_within_the_plans_limit() {
    let server = support::Server::start();
    let admin = server.admin();
    let plan = admin
        .post(
            "/api/v1/plans",
            json!({ "issuer_id": admin.provider_tenant_id(), "name": "One", "price_cents": 500,
                    "currency": "eur", "device_limit": 1 }),
        )
        .expect(201);
    let tenant = acme_on(&admin, plan["id"].as_str().unwrap());
    let answers = admin.post_at_once(
        "/api/v1/devices",
        (0..8)
            .map(|n| json!({ "tenant_id": tenant, "name": format!("pc-{n}") }))
            .collect(),
    );
    assert_eq!(
        answers.iter().filter(|&&s| s == 201).count(),
        1,
        "{answers:?}"
    );
    assert!(answers.iter().all(|&s| s == 201 || s == 409), "{answers:?}");
}

/// A payment, and a charge of the invoice being made (by another node, say), change the
/// subscription: a lifecycle step decided before either on the unpaid invoice (a suspension,
/// a termination) no longer applies and is decided again, seeing the payment, or the charge
/// under way that holds such a step back.
#[test]
fn a_step_decided_before_a_payment_or_a_charge_does_not_apply_after_it() {
    use loop_api::SubscriptionState::Suspended;
    use loop_server::db::{billing, invoices, payments};
    let server = support::Server::start();
    let admin = server.admin();
    let plan_id = small_plan(&admin);
    let tenant = acme_on(&admin, &plan_id);
    let invoice = open_invoice(&admin.provider_tenant_id(), &tenant, &plan_id);
    let state = &server.state;
    server.block_on(async {
        let mut tx = state.db.begin().await.unwrap();
        invoices::insert_invoice(&mut tx, &invoice).await.unwrap();
        tx.commit().await.unwrap();
    });
    for (attempt, by) in ["a charge being made", "a payment"].into_iter().enumerate() {
        let applied = server.block_on(async {
            // The timer reads the subscription; the change commits; the timer saves its step.
            let read = billing::subscription(&state.db.pool, &tenant).await;
            let read = read.unwrap().unwrap();
            let mut tx = state.db.begin().await.unwrap();
            let now = state.now();
            let changed = if by == "a payment" {
                invoices::mark_paid(&mut tx, &invoice.id, "transfer", now).await
            } else {
                let charge = payments::ChargeRow {
                    id: format!("ch_{attempt}"),
                    invoice_id: invoice.id.clone(),
                    tenant_id: tenant.clone(),
                    attempt: attempt as u64 + 1,
                    payment_method: "pm_card_visa".into(),
                    amount_cents: invoice.total_cents,
                    currency: invoice.currency.clone(),
                    state: loop_api::ChargeState::Pending,
                    processor_ref: None,
                    failure_code: None,
                    failure_message: None,
                    created_at: now,
                    updated_at: now,
                };
                payments::insert_charge(&mut tx, &charge).await
            };
            assert!(changed.unwrap(), "{by}");
            let mut step = read.clone();
            (step.state, step.updated_at) = (Suspended, read.updated_at + 1);
            let applied = billing::save_subscription(&mut tx, &step, read.updated_at).await;
            tx.commit().await.unwrap();
            applied.unwrap()
        });
        assert!(
            !applied,
            "a suspension decided before {by} was saved after it"
        );
    }
}
