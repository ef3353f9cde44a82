//! Paying by card (`collection: card`) through the payment processor ([`super::stripe`]):
//! the page where a customer adds a payment method, the charge of each invoice (retried,
//! and idempotent across lost answers and restarts), and settling a charge once the
//! processor says how it ended (the webhook handler calls `settle_in`).
//!
//! What the service keeps: the processor's customer and payment-method IDs on the
//! subscription, and one `charges` row per attempt (amount, outcome, the processor's
//! reference and decline code). Never a card number.

use loop_api::{ChargeState, Collection, InvoiceState, Outcome, SubscriptionState};
use serde_json::json;

use super::stripe::{ChargeOutcome, ChargeRequest, Decline, Stripe, StripeError};
use super::{event, mail_contacts};
use crate::db::audit;
use crate::db::outbox::MailKind;
use crate::db::payments::{self, ChargeRow};
use crate::db::tenants::TenantRow;
use crate::db::{billing, invoices};
use crate::domain::new_id;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const DAY_MS: i64 = 86_400_000;

/// The processor, or why there is none.
pub fn processor(state: &AppState) -> ApiResult<&Stripe> {
    state.stripe.as_ref().ok_or_else(|| {
        ApiError::conflict(
            "no_payment_processor",
            "this service takes no card payments: invoices are paid by transfer",
        )
    })
}

/// How a new subscription is paid unless its issuer says otherwise: by card where a payment
/// processor takes cards, else by invoice (a card could not be added, so a trial would end
/// suspended and, unpaid, be erased).
pub fn default_collection(state: &AppState) -> Collection {
    if state.stripe.is_some() {
        Collection::Card
    } else {
        Collection::Invoice
    }
}

/// What a client is told when the processor failed us (the detail goes to the log).
fn unavailable(e: StripeError) -> ApiError {
    tracing::warn!("payment processor: {e}");
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "payment_processor_unavailable",
        "the payment processor did not answer as expected; try again later",
    )
    .retry_after(60)
}

/// Starts adding a payment method for a customer: its customer at the processor (made
/// once), then the processor's page where it enters the card. Answers the page's address.
pub async fn setup(state: &AppState, tenant: &TenantRow, email: Option<&str>) -> ApiResult<String> {
    let stripe = processor(state)?;
    let tenant_id = tenant.tenant.id.as_str();
    let s = billing::subscription(&state.db.pool, tenant_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if s.state == SubscriptionState::Terminated {
        return Err(super::terminated());
    }
    if s.collection != Collection::Card {
        return Err(ApiError::conflict(
            "collection_invoice",
            "this subscription is paid by invoice; its issuer changes that first",
        ));
    }
    let plan = billing::plan_by_id(&state.db.pool, &s.plan_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("plan {} is gone", s.plan_id)))?;
    let customer = match s.processor_customer {
        Some(c) => c,
        None => {
            let made = stripe
                .create_customer(tenant_id, &tenant.tenant.name, email)
                .await
                .map_err(unavailable)?;
            let mut tx = state.db.begin().await?;
            payments::set_customer(&mut tx, tenant_id, &made, state.now()).await?;
            tx.commit().await.map_err(crate::db::DbError::from)?;
            // Another request may have stored its own first; that one counts.
            billing::subscription(&state.db.pool, tenant_id)
                .await?
                .and_then(|s| s.processor_customer)
                .unwrap_or(made)
        }
    };
    let back = stripe
        .return_url()
        .map(str::to_string)
        .or_else(|| state.config.public_url.clone())
        .unwrap_or_else(|| format!("https://{}/", state.config.listen));
    let session = stripe
        .setup_session(
            &customer,
            tenant_id,
            &plan.currency,
            &back,
            &new_id("setup"),
        )
        .await
        .map_err(unavailable)?;
    Ok(session.url)
}

/// How long a charge whose answer was lost is asked again with its idempotency key: less
/// than the 24 hours the processor keeps a key, after which the same request is a new charge.
const KEY_KEPT_MS: i64 = 23 * 3_600_000;

/// Charges every open invoice of a card-paying tenant (also one whose subscription ended)
/// that is due a try: the first try at
/// once, a declined one again after `retry_days` (at most `charge_attempts` times with the
/// same payment method; a new payment method tries at once), and an attempt whose answer
/// was lost again with the same idempotency key. A charge still pending is looked up at the
/// processor also once the tenant pays otherwise (no card on file, or by invoice), so it
/// settles and a transfer can be recorded. Answers how many invoices were paid (the caller
/// then moves the lifecycle on).
pub async fn charge_open(state: &AppState, tenant_id: &str) -> ApiResult<usize> {
    let Some(stripe) = state.stripe.as_ref() else {
        return Ok(0);
    };
    let pool = &state.db.pool;
    let Some(s) = billing::subscription(pool, tenant_id).await? else {
        return Ok(0);
    };
    // A terminated subscription's open invoices were issued for periods it was served
    // (the last one as it ended): they are charged like any other.
    let card = match (&s.processor_customer, &s.payment_method) {
        (Some(customer), Some(pm)) if s.collection == Collection::Card => Some((customer, pm)),
        _ => None,
    };
    let b = &state.config.billing;
    let mut paid = 0;
    for inv in invoices::invoices_of(pool, tenant_id).await? {
        if inv.state != InvoiceState::Open || inv.total_cents == 0 {
            continue;
        }
        let tries = payments::charges_of_invoice(pool, &inv.id).await?;
        let now = state.now();
        let attempt = match tries.last() {
            // Accepted and still processing at the processor (a bank debit): its webhook
            // settles it, or a look at the processor when none came within the hour. Asked
            // again, it would be charged again once the processor has forgotten the
            // request's key (after 24 hours).
            Some(c) if c.state == ChargeState::Pending && c.processor_ref.is_some() => {
                paid += usize::from(look_up_hourly(state, stripe, &tries, c).await?);
                continue;
            }
            // An answer lost: asked again with the same key, while the processor keeps it
            // (and while the card is still how the tenant pays: else only looked up).
            Some(c)
                if c.state == ChargeState::Pending
                    && now - c.created_at < KEY_KEPT_MS
                    && card.is_some() =>
            {
                c.clone()
            }
            Some(c) if c.state == ChargeState::Pending && now - c.created_at < KEY_KEPT_MS => {
                paid += usize::from(look_up_hourly(state, stripe, &tries, c).await?);
                continue;
            }
            Some(c) if c.state == ChargeState::Pending => {
                // Said once (in the log, and as the charge's failure code), not every tick.
                if payments::note_answer_lost(pool, &c.id, now).await? {
                    tracing::warn!(
                        invoice = %inv.id, charge = %c.id,
                        "a charge's answer was lost a day ago and its key may have expired at \
                         the processor: it is not asked again, but looked up there every hour"
                    );
                }
                paid += usize::from(look_up_hourly(state, stripe, &tries, c).await?);
                continue;
            }
            Some(c) if c.state == ChargeState::Succeeded => {
                // Charged, but the invoice was not marked (a crash in between).
                settle(
                    state,
                    c,
                    &Settled::Paid(c.processor_ref.clone().unwrap_or_default()),
                )
                .await?;
                paid += 1;
                continue;
            }
            _ => {
                // A new try needs the card.
                let Some((_, pm)) = card else { continue };
                let failed: Vec<&ChargeRow> = tries
                    .iter()
                    .filter(|c| c.payment_method == *pm && c.state == ChargeState::Failed)
                    .filter(|c| c.failure_code.as_deref() != Some(NOT_MADE))
                    .collect();
                // A request the processor refused (the service's key or configuration) is
                // not the card's: it waits like a decline but uses up none of its tries.
                let declined = failed
                    .iter()
                    .filter(|c| c.failure_code.as_deref() != Some(PROCESSOR_REFUSED))
                    .count();
                // The wait counts from the decline, not the attempt: a bank debit returned
                // after weeks is not asked for again the same hour.
                if let Some(last) = failed.last()
                    && (declined as u32 >= b.charge_attempts
                        || now < last.updated_at + i64::from(b.retry_days) * DAY_MS)
                {
                    continue;
                }
                let row = ChargeRow {
                    id: new_id("ch"),
                    invoice_id: inv.id.clone(),
                    tenant_id: tenant_id.to_string(),
                    attempt: tries.len() as u64 + 1,
                    payment_method: pm.clone(),
                    amount_cents: inv.total_cents,
                    currency: inv.currency.clone(),
                    state: ChargeState::Pending,
                    processor_ref: None,
                    failure_code: None,
                    failure_message: None,
                    created_at: now,
                    updated_at: now,
                };
                let mut tx = state.db.begin().await?;
                // Paid by other means meanwhile (a transfer recorded): not charged.
                if !invoices::hold_open_invoice(&mut tx, &inv.id).await? {
                    continue;
                }
                let fresh = payments::insert_charge(&mut tx, &row).await?;
                tx.commit().await.map_err(crate::db::DbError::from)?;
                if !fresh {
                    continue;
                }
                row
            }
        };
        let Some((customer, _)) = card else { continue };
        let description = format!("Invoice {} ({})", inv.number, inv.bill_to);
        let asked = stripe
            .charge(&ChargeRequest {
                customer,
                payment_method: &attempt.payment_method,
                amount_cents: attempt.amount_cents,
                currency: &attempt.currency,
                invoice_id: &inv.id,
                tenant_id,
                description: &description,
                idempotency_key: &attempt.idempotency_key(),
            })
            .await;
        let settled = match asked {
            Ok(ChargeOutcome::Succeeded { payment_intent }) => Settled::Paid(payment_intent),
            Ok(ChargeOutcome::Processing { payment_intent }) => {
                payments::note_ref(pool, &attempt.id, &payment_intent).await?;
                continue;
            }
            Ok(ChargeOutcome::Failed(d)) => Settled::Declined(d),
            Err(e @ StripeError::Unavailable(_)) => {
                // Asked again at the next tick with the same key.
                tracing::warn!(invoice = %inv.id, "charge: {e}");
                continue;
            }
            Err(e @ StripeError::Unauthorized(_)) => {
                tracing::error!(invoice = %inv.id, "charge: {e}");
                Settled::Refused
            }
            Err(e @ StripeError::Refused(_)) => {
                tracing::error!(invoice = %inv.id, "charge: {e}");
                Settled::Rejected
            }
        };
        if settle(state, &attempt, &settled).await? && matches!(settled, Settled::Paid(_)) {
            paid += 1;
        }
    }
    Ok(paid)
}

/// A pending charge whose webhook has not come is looked up at the processor this often.
const LOOK_EVERY_MS: i64 = 3_600_000;

/// The failure code of a charge the processor never made (its answer was lost before it
/// made it): it does not count as a declined try.
const NOT_MADE: &str = "not_made";

/// The failure code of a request refused for the service's API key (rolled, revoked): not a
/// decline of the card, as `request_refused` (a payment method detached there) is.
const PROCESSOR_REFUSED: &str = "processor_refused";

/// [`look_up`], once [`LOOK_EVERY_MS`] has passed since the charge's last look.
async fn look_up_hourly(
    state: &AppState,
    stripe: &Stripe,
    tries: &[ChargeRow],
    c: &ChargeRow,
) -> ApiResult<bool> {
    if state.now() - payments::looked_at(&state.db.pool, &c.id).await? < LOOK_EVERY_MS {
        return Ok(false);
    }
    look_up(state, stripe, tries, c).await
}

/// Looks a pending charge up at the processor, by its payment intent, or (its answer lost)
/// among the intents of its invoice for its amount and payment method that no other try of
/// the invoice names, and settles it when the processor has: succeeded, declined (it needs
/// a new payment method), or canceled there. One that waits for the customer (3-D Secure)
/// or is still processing stays pending. True when the invoice was paid.
async fn look_up(
    state: &AppState,
    stripe: &Stripe,
    tries: &[ChargeRow],
    c: &ChargeRow,
) -> ApiResult<bool> {
    let pool = &state.db.pool;
    let found = match &c.processor_ref {
        Some(pi) => stripe.payment_intent(pi).await.map(Some),
        None => stripe
            .intents_of_invoice(&c.invoice_id)
            .await
            .and_then(|all| {
                let named = |id: &str| tries.iter().any(|t| t.processor_ref.as_deref() == Some(id));
                let mine: Vec<serde_json::Value> = all
                    .into_iter()
                    .filter(|pi| pi["id"].as_str().is_some_and(|id| !named(id)))
                    .filter(|pi| pi["amount"].as_u64() == Some(c.amount_cents))
                    .filter(|pi| pi["payment_method"].as_str() == Some(&c.payment_method))
                    .collect();
                match <[_; 1]>::try_from(mine) {
                    Ok([pi]) => Ok(Some(pi)),
                    Err(mine) if mine.is_empty() => Ok(None),
                    Err(mine) => Err(StripeError::Refused(format!(
                        "{} payment intents of the invoice could be this charge",
                        mine.len()
                    ))),
                }
            }),
    };
    let pi = match found {
        Ok(Some(pi)) => pi,
        Ok(None) => return settle(state, c, &Settled::NotMade).await.map(|_| false),
        Err(e) => {
            tracing::warn!(invoice = %c.invoice_id, charge = %c.id, "looking a charge up: {e}");
            payments::note_looked_up(pool, &c.id, state.now()).await?;
            return Ok(false);
        }
    };
    let id = pi["id"].as_str().unwrap_or_default().to_string();
    let settled = match pi["status"].as_str().unwrap_or_default() {
        "succeeded" => Settled::Paid(id),
        "canceled" => Settled::Canceled(id),
        "requires_payment_method" => match crate::billing::stripe::outcome_of(&pi) {
            Ok(ChargeOutcome::Failed(d)) => Settled::Declined(d),
            _ => return Ok(false),
        },
        status => {
            if c.processor_ref.is_none() {
                payments::note_ref(pool, &c.id, &id).await?;
            }
            if status != "processing" {
                tracing::warn!(
                    invoice = %c.invoice_id, charge = %c.id,
                    "a looked-up charge waits at the processor as {status}"
                );
            }
            payments::note_looked_up(pool, &c.id, state.now()).await?;
            return Ok(false);
        }
    };
    let paid = matches!(settled, Settled::Paid(_));
    Ok(settle(state, c, &settled).await? && paid)
}

/// How a charge ended.
pub(super) enum Settled {
    Paid(String),
    Declined(Decline),
    /// The processor refused the service's key (its configuration): not the customer's
    /// doing, so no mail; tried again after `retry_days`, and no try of the card's.
    Refused,
    /// The processor refused the request (a payment method detached there, a parameter it
    /// does not know): no mail, but a try of the card's like a decline.
    Rejected,
    /// The processor has no such charge (its answer was lost before it made it): no mail,
    /// and a new try at once.
    NotMade,
    /// Canceled at the processor (by the provider, in its dashboard): no mail; a declined
    /// try as to when the next one is made.
    Canceled(String),
}

/// Records how a charge ended, in one transaction: the charge, the invoice (paid), the
/// audit event and, for a decline, the "payment failed" mail. False when it had settled
/// already.
async fn settle(state: &AppState, c: &ChargeRow, how: &Settled) -> ApiResult<bool> {
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let changed = settle_in(&mut tx, c, how, now).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    state.mail_wake.notify_one();
    Ok(changed)
}

/// [`settle`] in the caller's transaction.
pub(super) async fn settle_in(
    tx: &mut crate::db::Tx,
    c: &ChargeRow,
    how: &Settled,
    now: i64,
) -> ApiResult<bool> {
    let (st, reference, failure) = match how {
        Settled::Paid(r) => (ChargeState::Succeeded, Some(r.as_str()), None),
        Settled::Declined(d) => (
            ChargeState::Failed,
            d.payment_intent.as_deref(),
            Some((d.code.as_str(), d.message.as_str())),
        ),
        Settled::Refused => (
            ChargeState::Failed,
            None,
            Some((
                PROCESSOR_REFUSED,
                "the payment processor refused the request",
            )),
        ),
        Settled::Rejected => (
            ChargeState::Failed,
            None,
            Some((
                "request_refused",
                "the payment processor refused the request",
            )),
        ),
        Settled::NotMade => (
            ChargeState::Failed,
            None,
            Some((NOT_MADE, "the payment processor never made this charge")),
        ),
        Settled::Canceled(r) => (
            ChargeState::Failed,
            Some(r.as_str()),
            Some((
                "canceled",
                "the charge was canceled at the payment processor",
            )),
        ),
    };
    let changed = payments::settle_charge(tx, &c.id, st, reference, failure, now).await?;
    let marked = match how {
        Settled::Paid(r) => invoices::mark_paid(tx, &c.invoice_id, r, now).await?,
        _ => false,
    };
    if !changed && !marked {
        return Ok(false);
    }
    let mut e = event(
        &c.tenant_id,
        "invoice.charge",
        json!({
            "attempt": c.attempt, "amount_cents": c.amount_cents, "currency": c.currency,
            "processor_reference": reference, "failure_code": failure.map(|f| f.0),
        }),
    );
    e.object_kind = "invoice";
    e.object_id = Some(c.invoice_id.clone());
    if st == ChargeState::Failed {
        e.outcome = Outcome::Failure;
    }
    if let Settled::Declined(d) = how {
        let params = json!({ "invoice_id": c.invoice_id, "declined": d.message });
        mail_contacts(tx, &c.tenant_id, MailKind::PaymentFailed, params, now).await?;
    }
    audit::append(tx, e, now).await?;
    Ok(true)
}
