//! The payment processor's webhook: each event, its signature checked, applied once (a
//! payment method added or removed, a charge settled), then the tenant's lifecycle moved on.

use loop_api::ChargeState;
use serde::Deserialize;
use serde_json::{Value, json};

use super::payments::{Settled, charge_open, settle_in};
use super::stripe::ChargeOutcome;
use super::{event, mail_contacts};
use crate::db::audit;
use crate::db::outbox::MailKind;
use crate::db::payments;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A processor event (the parts read here).
#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: Value,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Handles one webhook delivery: its signature is checked against this machine's real
/// clock (the processor signs with its own), then the event is applied once.
pub async fn webhook(state: &AppState, payload: &[u8], signature: Option<&str>) -> ApiResult<()> {
    let Some(stripe) = state.stripe.as_ref() else {
        return Err(ApiError::not_found());
    };
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if let Err(why) = stripe.verify(payload, signature.unwrap_or(""), now_secs) {
        tracing::warn!("payment processor webhook refused: {why}");
        return Err(ApiError::bad_request(
            "the Stripe-Signature header does not verify",
        ));
    }
    let ev: Event = serde_json::from_slice(payload)
        .map_err(|_| ApiError::bad_request("the body is not a processor event"))?;
    let o = &ev.data.object;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let about = (&ev.id[..], &ev.kind[..], text(o, "id"));
    if !payments::first_delivery(&mut tx, about, now).await? {
        return Ok(());
    }
    // The tenant whose subscription may move on once the event is recorded.
    let mut then: Option<String> = None;
    match ev.kind.as_str() {
        "setup_intent.succeeded" => {
            if let (Some(customer), Some(pm)) = (text(o, "customer"), text(o, "payment_method"))
                && let Some(tenant_id) = payments::tenant_of_customer(&mut *tx, customer).await?
                // Stripe delivers events in no set order (and retries for days): a setup
                // older than the payment method's is over.
                && payments::adopt_payment_method(
                    &mut tx,
                    &tenant_id,
                    pm,
                    o.get("created").and_then(Value::as_i64).unwrap_or(0).saturating_mul(1000),
                    now,
                )
                .await?
            {
                audit::append(
                    &mut tx,
                    event(
                        &tenant_id,
                        "subscription.payment_method",
                        json!({ "added": true }),
                    ),
                    now,
                )
                .await?;
                then = Some(tenant_id);
            }
        }
        "payment_method.detached" => {
            if let Some(pm) = text(o, "id")
                && let Some(tenant_id) = payments::tenant_of_payment_method(&mut *tx, pm).await?
            {
                payments::set_payment_method(&mut tx, &tenant_id, None, now).await?;
                audit::append(
                    &mut tx,
                    event(
                        &tenant_id,
                        "subscription.payment_method",
                        json!({ "added": false }),
                    ),
                    now,
                )
                .await?;
                // The customer learns it now, not once an invoice is past due.
                mail_contacts(
                    &mut tx,
                    &tenant_id,
                    MailKind::PaymentMethodRemoved,
                    json!({}),
                    now,
                )
                .await?;
            }
        }
        "payment_intent.succeeded" | "payment_intent.payment_failed" => {
            let found = match text(o, "id") {
                Some(r) => payments::charge_by_ref(&mut *tx, r).await?,
                None => None,
            };
            // An attempt whose answer was lost has no reference yet: its invoice names it.
            let found = match found {
                Some(c) => Some(c),
                None => match o.pointer("/metadata/invoice_id").and_then(Value::as_str) {
                    Some(inv) => payments::charges_of_invoice(&mut *tx, inv)
                        .await?
                        .into_iter()
                        .rfind(|c| c.state == ChargeState::Pending),
                    None => None,
                },
            };
            if let Some(c) = found {
                let how = match super::stripe::outcome_of(o) {
                    Ok(ChargeOutcome::Succeeded { payment_intent }) => {
                        Some(Settled::Paid(payment_intent))
                    }
                    Ok(ChargeOutcome::Failed(d)) => Some(Settled::Declined(d)),
                    _ => None,
                };
                if let Some(how) = how {
                    settle_in(&mut tx, &c, &how, now).await?;
                    then = Some(c.tenant_id.clone());
                }
            }
        }
        // Other events are not subscribed to; recorded and ignored.
        _ => {}
    }
    tx.commit().await.map_err(crate::db::DbError::from)?;
    state.mail_wake.notify_one();
    if let Some(tenant_id) = then {
        super::advance(state, &tenant_id).await?;
        if charge_open(state, &tenant_id).await? > 0 {
            super::advance(state, &tenant_id).await?;
        }
    }
    Ok(())
}
