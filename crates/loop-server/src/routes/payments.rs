//! Paying by card: the processor's page where a customer adds a payment method, the
//! charges made, and the processor's webhook (`crate::billing::payments`, `webhook`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use loop_api::{Charge, PaymentSetup, TenantId};

use super::{Path, commit_audited};
use crate::auth::Caller;
use crate::billing::payments;
use crate::db::{billing, users};
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Charges listed at most (newest first).
const CHARGES_LISTED: i64 = 200;

/// Add a payment method
///
/// Answers the payment processor's page where the customer enters a card (or another
/// payment method); the card goes to the processor only. When the customer is done, the
/// processor's webhook tells the service, which then charges any open invoice at once (a
/// suspended subscription with nothing else unpaid is active again). Needs a configured
/// processor (`409 no_payment_processor` otherwise) and card collection.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/subscription/payment-method", tag = "billing",
    params(("id" = TenantId, Path)),
    responses((status = 200, description = "The processor's page", body = PaymentSetup),
        (status = 404, description = "No subscription, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "No payment processor, paid by invoice, or the subscription ended (problem+json)", body = loop_api::Problem),
        (status = 503, description = "The payment processor did not answer (problem+json)", body = loop_api::Problem)))]
pub async fn add_payment_method(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<axum::Json<PaymentSetup>> {
    caller.user()?;
    let tenant = caller
        .tenant(&state, Permission::BillingWrite, id.as_str())
        .await?;
    // The processor's customer carries the address of the tenant's first billing contact.
    let contact = match billing::billing_contacts(&state.db.pool, id.as_str())
        .await?
        .first()
    {
        Some(u) => users::user_by_id(&state.db.pool, u)
            .await?
            .map(|u| u.user.email),
        None => None,
    };
    let url = payments::setup(&state, &tenant, contact.as_deref()).await?;
    let now = state.now();
    commit_audited(
        state.db.begin().await?,
        caller.event(
            id.as_str(),
            "subscription.payment_method_setup",
            "subscription",
            Some(id.as_str()),
            serde_json::json!({}),
        ),
        now,
    )
    .await?;
    Ok(axum::Json(PaymentSetup { url }))
}

/// List charges
///
/// Every attempt to charge the tenant's invoices through the payment processor, newest
/// first (at most 200), with the processor's reference and, for a failed one, its reason.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/charges", tag = "billing",
    params(("id" = TenantId, Path)),
    responses((status = 200, description = "Success", body = Vec<Charge>)))]
pub async fn list_charges(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<axum::Json<Vec<Charge>>> {
    caller
        .tenant(&state, Permission::BillingRead, id.as_str())
        .await?;
    let rows =
        crate::db::payments::charges_of_tenant(&state.db.pool, id.as_str(), CHARGES_LISTED).await?;
    Ok(axum::Json(rows.iter().map(|c| c.view()).collect()))
}

/// Payment processor webhook
///
/// Where Stripe sends its events (`setup_intent.succeeded`, `payment_intent.succeeded`,
/// `payment_intent.payment_failed`, `payment_method.detached`). No session or token: the
/// `Stripe-Signature` header must sign the body with the endpoint's secret and a time
/// within five minutes. An event is applied once, however often it arrives.
#[utoipa::path(post, path = "/api/v1/billing/stripe/webhook", tag = "billing",
    request_body(content = String, content_type = "application/json",
        description = "A Stripe event, exactly as sent"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix time>,v1=<HMAC-SHA256>")),
    responses((status = 204, description = "Received"),
        (status = 400, description = "The signature does not verify, or the body is not an event (problem+json)", body = loop_api::Problem),
        (status = 404, description = "No payment processor is configured (problem+json)", body = loop_api::Problem)))]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<StatusCode> {
    let json = super::media_type(&headers) == "application/json";
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ));
    }
    let body = body.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is too large",
        )
    })?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    crate::billing::webhook::webhook(&state, &body, signature).await?;
    Ok(StatusCode::NO_CONTENT)
}
