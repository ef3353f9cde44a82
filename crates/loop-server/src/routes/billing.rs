//! Plans, subscriptions and invoices. The lifecycle itself (trial, invoices, suspension,
//! termination) is the timer's, in `crate::billing`; these handlers record what people
//! decide and then let the timer take whatever step is due at once.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use loop_api::{
    CreatePlan, EndSubscription, Invoice, InvoiceState, Plan, RecordPayment, SetSubscription,
    Subscription, SubscriptionState, TenantId,
};
use serde::Deserialize;

use super::pages::{Listing, page};
use super::tenants::TenantFilter;
use super::{Json, Path, Query, commit_audited};
use crate::auth::Caller;
use crate::db::billing::{self, SubRow};
use crate::db::invoices;
use crate::db::tenants;
use crate::domain::{Permission, TenantKind, new_id, parse_name};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// An invoice the caller may see: its customer's (with `BillingRead`) or its issuer's.
async fn scoped_invoice(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Invoice> {
    caller.user()?;
    let i = invoices::invoice_by_id(&state.db.pool, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller
        .tenant(state, Permission::BillingRead, &i.tenant_id)
        .await?;
    Ok(i)
}

/// The largest price a plan may name, in the currency's minor unit (999,999.99).
const MAX_PRICE_CENTS: u64 = 99_999_999;

/// Currencies without hundredths (Stripe's zero-decimal and three-decimal ones): a price in
/// cents would be charged 100 or 10 times off.
const NOT_IN_HUNDREDTHS: &[&str] = &[
    "BHD", "BIF", "CLP", "DJF", "GNF", "JOD", "JPY", "KMF", "KRW", "KWD", "MGA", "OMR", "PYG",
    "RWF", "TND", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
];

fn parse_currency(c: &str) -> ApiResult<String> {
    let c = c.trim().to_ascii_uppercase();
    if c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
        return Err(ApiError::bad_request(
            "currency must be an ISO 4217 code, like EUR",
        ));
    }
    if NOT_IN_HUNDREDTHS.contains(&c.as_str()) {
        return Err(ApiError::bad_request(format!(
            "prices are in hundredths of the currency, which {c} does not have"
        )));
    }
    Ok(c)
}

/// List plans
///
/// The plans sold by the providers and partners in your scope.
#[utoipa::path(get, path = "/api/v1/plans", tag = "billing", params(TenantFilter, loop_api::PageQuery),
    responses((status = 200, description = "Success", body = Vec<Plan>)))]
pub async fn list_plans(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<loop_api::PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Plan>> {
    let scope = caller
        .scope(&state, Permission::BillingRead, f.tenant_id.as_ref())
        .await?;
    let page = billing::plans_in(&state.db.pool, &scope, Some(&page(&p)?)).await?;
    Ok(Listing::new(uri, page))
}

/// Create a plan
///
/// Sold by a provider or partner (`issuer_id`), whose admins or billing users ask: a price
/// per month that includes `quota_bytes` of stored data and up to `device_limit` devices.
#[utoipa::path(post, path = "/api/v1/plans", tag = "billing", request_body = CreatePlan,
    responses((status = 201, description = "Created", body = Plan),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 409, description = "A plan of that name exists (problem+json)", body = loop_api::Problem)))]
pub async fn create_plan(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreatePlan>,
) -> ApiResult<(StatusCode, axum::Json<Plan>)> {
    caller.user()?;
    let issuer = caller
        .tenant(&state, Permission::BillingWrite, req.issuer_id.as_str())
        .await?;
    if issuer.tenant.kind == TenantKind::Customer {
        return Err(ApiError::bad_request(
            "plans are sold by a provider or a partner",
        ));
    }
    // The sign-up page is the service's own: whose plans it offers is the provider's to say.
    if req.signup && issuer.tenant.kind != TenantKind::Provider {
        return Err(ApiError::bad_request(
            "only the provider's plans are offered on the sign-up",
        ));
    }
    let now = state.now();
    let plan = Plan {
        id: new_id("pl"),
        issuer_id: issuer.tenant.id.clone(),
        name: parse_name("name", &req.name)?,
        quota_bytes: req.quota_bytes,
        device_limit: req.device_limit,
        price_cents: req.price_cents,
        extra_gib_cents: req.extra_gib_cents,
        currency: parse_currency(&req.currency)?,
        signup: req.signup,
        created_at: crate::db::time(now),
    };
    let sane = |v: Option<u64>| v.is_none_or(|v| v <= i64::MAX as u64);
    // Prices as a payment processor takes them (Stripe: at most 8 digits in the minor unit),
    // so no invoice's total can overflow.
    let price = |v: Option<u64>| v.is_none_or(|v| v <= MAX_PRICE_CENTS);
    if !(sane(plan.quota_bytes)
        && sane(plan.device_limit)
        && price(Some(plan.price_cents))
        && price(plan.extra_gib_cents))
    {
        return Err(ApiError::bad_request(format!(
            "a number is too large (prices are at most {MAX_PRICE_CENTS} in the minor unit)"
        )));
    }
    let mut tx = state.db.begin().await?;
    billing::insert_plan(&mut tx, &plan, now)
        .await
        .map_err(|e| match e.is_unique_violation() {
            true => ApiError::conflict("exists", "the issuer sells a plan of that name"),
            false => e.into(),
        })?;
    commit_audited(
        tx,
        caller.event(
            &plan.issuer_id,
            "plan.create",
            "plan",
            Some(&plan.id),
            serde_json::json!({
                "name": plan.name, "price_cents": plan.price_cents, "currency": plan.currency,
                "quota_bytes": plan.quota_bytes, "device_limit": plan.device_limit,
                "extra_gib_cents": plan.extra_gib_cents, "signup": plan.signup,
            }),
        ),
        now,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(plan)))
}

/// Delete a plan
///
/// Only a plan no subscription uses (`409 plan_in_use`).
#[utoipa::path(delete, path = "/api/v1/plans/{id}", tag = "billing", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "A subscription uses it (problem+json)", body = loop_api::Problem)))]
pub async fn delete_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let plan = crate::billing::scoped_plan(&state, &caller, Permission::BillingWrite, &id).await?;
    let mut tx = state.db.begin().await?;
    if !billing::delete_unused_plan(&mut tx, &plan.id).await? {
        return Err(ApiError::conflict(
            "plan_in_use",
            "a subscription uses the plan; move it to another plan first",
        ));
    }
    commit_audited(
        tx,
        caller.event(
            &plan.issuer_id,
            "plan.delete",
            "plan",
            Some(&plan.id),
            serde_json::json!({ "name": plan.name }),
        ),
        state.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn subscription_view(state: &AppState, s: &SubRow) -> ApiResult<Subscription> {
    let plan = billing::plan_by_id(&state.db.pool, &s.plan_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("plan {} is gone", s.plan_id)))?;
    Ok(s.view(plan))
}

async fn current(state: &AppState, tenant_id: &str) -> ApiResult<SubRow> {
    billing::subscription(&state.db.pool, tenant_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_subscription",
                "the tenant has no subscription",
            )
        })
}

/// Show a subscription
#[utoipa::path(get, path = "/api/v1/tenants/{id}/subscription", tag = "billing",
    params(("id" = TenantId, Path)),
    responses((status = 200, description = "Success", body = Subscription),
        (status = 404, description = "No subscription, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn get_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<axum::Json<Subscription>> {
    caller
        .tenant(&state, Permission::BillingRead, id.as_str())
        .await?;
    let s = current(&state, id.as_str()).await?;
    Ok(axum::Json(subscription_view(&state, &s).await?))
}

/// Subscribe a customer to a plan
///
/// A customer without a subscription starts its free trial now; one with a subscription
/// moves to the plan (from its next invoice on). The plan must be sold by a partner or
/// provider above the customer, whose admins or billing users ask; they also choose how it
/// is paid (`collection`: `invoice` counts as a payment method, so a suspended trial becomes
/// active at once).
#[utoipa::path(put, path = "/api/v1/tenants/{id}/subscription", tag = "billing",
    params(("id" = TenantId, Path)), request_body = SetSubscription,
    responses((status = 200, description = "The subscription", body = Subscription),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "The subscription ended (problem+json)", body = loop_api::Problem)))]
pub async fn set_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
    Json(req): Json<SetSubscription>,
) -> ApiResult<axum::Json<Subscription>> {
    caller.user()?;
    let tenant = caller
        .tenant(&state, Permission::BillingRead, id.as_str())
        .await?;
    if tenant.tenant.status == loop_api::TenantStatus::Erased {
        return Err(crate::auth::tenant_erased());
    }
    let plan = crate::billing::plan_for(&state, &caller, &tenant, &req.plan_id).await?;
    let now = state.now();
    // Read before the transaction, whose first statement then writes (SQLite takes its
    // write lock there); a change meanwhile fails the conditional save below.
    let was = billing::subscription(&state.db.pool, id.as_str()).await?;
    let mut tx = state.db.begin().await?;
    // Holds the tenant's row: an erasure committing meanwhile (which terminates whatever
    // subscription it finds) is seen here, and no trial starts for an erased tenant.
    if !crate::db::tenants::hold_unerased(&mut tx, id.as_str()).await? {
        return Err(crate::auth::tenant_erased());
    }
    let mut withdrawn = false;
    let action = match &was {
        None => {
            let s = SubRow::trial(
                id.as_str(),
                &plan.id,
                req.collection
                    .unwrap_or_else(|| crate::billing::payments::default_collection(&state)),
                now,
                state.config.billing.trial_days,
            );
            billing::insert_subscription(&mut tx, &s).await?;
            "subscription.start"
        }
        Some(s) if s.state == SubscriptionState::Terminated => {
            return Err(crate::billing::terminated());
        }
        Some(s) => {
            let mut changed = s.clone();
            changed.plan_id = plan.id.clone();
            if let Some(c) = req.collection {
                changed.collection = c;
            }
            // A plan chosen again withdraws an end the customer asked for and that has not
            // come: the issuer's way back from an end given by mistake (or by someone who
            // should not have).
            withdrawn = s.ends_at.is_some();
            changed.ends_at = None;
            if withdrawn {
                crate::billing::lifecycle::deletion_moved(&mut changed);
            }
            changed.updated_at = now.max(s.updated_at + 1);
            if !billing::save_subscription(&mut tx, &changed, s.updated_at).await? {
                return Err(ApiError::conflict(
                    "changed",
                    "the subscription changed meanwhile; try again",
                ));
            }
            "subscription.change"
        }
    };
    commit_audited(
        tx,
        caller.event(
            id.as_str(),
            action,
            "subscription",
            Some(id.as_str()),
            serde_json::json!({
                "plan_id": plan.id, "collection": req.collection,
                "previous_plan_id": was.map(|s| s.plan_id), "end_withdrawn": withdrawn,
            }),
        ),
        now,
    )
    .await?;
    advance_detached(&state, id.as_str()).await?;
    let s = current(&state, id.as_str()).await?;
    Ok(axum::Json(subscription_view(&state, &s).await?))
}

/// Days a suspended subscription's end waits at least (or until its termination, if later).
const SUSPENDED_END_DAYS: i64 = 7;

/// End a subscription
///
/// The customer's admins or billing users end it: the tenant's data is erased when the
/// period already under way ends (the trial's end during the trial; while suspended, at the
/// termination already due, and 7 days from now at the earliest), and its last period is
/// invoiced. Until then the issuer withdraws the end by choosing a plan again (`PUT
/// .../subscription`). `confirm` repeats the tenant's name or ID.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/subscription/end", tag = "billing",
    params(("id" = TenantId, Path)), request_body = EndSubscription,
    responses((status = 200, description = "The subscription, with the time it ends", body = Subscription),
        (status = 400, description = "The confirmation does not match (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "The subscription ended (problem+json)", body = loop_api::Problem)))]
pub async fn end_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
    Json(req): Json<EndSubscription>,
) -> ApiResult<axum::Json<Subscription>> {
    caller.user()?;
    let tenant = caller
        .tenant(&state, Permission::BillingWrite, id.as_str())
        .await?;
    super::erasure::confirmed(&tenant, &req.confirm)?;
    let s = current(&state, id.as_str()).await?;
    if s.state == SubscriptionState::Terminated {
        return Err(crate::billing::terminated());
    }
    let now = state.now();
    let mut ended = s.clone();
    // Never at once, even while suspended: the erasure overrides retention locks and cannot
    // be undone, so the issuer keeps a time to withdraw an end (by choosing a plan again).
    ended.ends_at = Some(match (s.state, s.period_end) {
        (SubscriptionState::Active | SubscriptionState::PastDue, Some(end)) => end,
        (SubscriptionState::Trial, _) => s.trial_ends_at,
        _ => {
            let earliest = now + SUSPENDED_END_DAYS * 86_400_000;
            s.terminate_at.map_or(earliest, |t| t.max(earliest))
        }
    });
    crate::billing::lifecycle::deletion_moved(&mut ended);
    ended.updated_at = now.max(s.updated_at + 1);
    let mut tx = state.db.begin().await?;
    if !billing::save_subscription(&mut tx, &ended, s.updated_at).await? {
        return Err(ApiError::conflict(
            "changed",
            "the subscription changed meanwhile; try again",
        ));
    }
    commit_audited(
        tx,
        caller.event(
            id.as_str(),
            "subscription.end",
            "subscription",
            Some(id.as_str()),
            serde_json::json!({ "ends_at": ended.ends_at.map(crate::db::time) }),
        ),
        now,
    )
    .await?;
    advance_detached(&state, id.as_str()).await?;
    let s = current(&state, id.as_str()).await?;
    Ok(axum::Json(subscription_view(&state, &s).await?))
}

/// Takes the tenant's lifecycle step now. Ending a suspended subscription terminates it at
/// once, and termination erases the tenant: run where a dropped request cannot stop it
/// halfway.
async fn advance_detached(state: &AppState, tenant: &str) -> ApiResult<()> {
    let (st, tenant) = (state.clone(), tenant.to_string());
    tokio::spawn(async move { crate::billing::advance(&st, &tenant).await })
        .await
        .map_err(|e| ApiError::Internal(format!("the lifecycle step stopped: {e}")))??;
    Ok(())
}

/// List a tenant's invoices
///
/// Newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/invoices", tag = "billing",
    params(("id" = TenantId, Path)),
    responses((status = 200, description = "Success", body = Vec<Invoice>),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn list_invoices(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<axum::Json<Vec<Invoice>>> {
    caller
        .tenant(&state, Permission::BillingRead, id.as_str())
        .await?;
    Ok(axum::Json(
        invoices::invoices_of(&state.db.pool, id.as_str()).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceFormat {
    /// `json` (default) or `html`: a page to read or print.
    #[serde(default)]
    pub format: Option<String>,
}

/// Show an invoice
///
/// As JSON, or with `format=html` as a page to read or print.
#[utoipa::path(get, path = "/api/v1/invoices/{id}", tag = "billing",
    params(("id" = String, Path), InvoiceFormat),
    responses((status = 200, description = "Success: JSON, or HTML with `format=html`",
            content((Invoice = "application/json"), (String = "text/html"))),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn get_invoice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(f): Query<InvoiceFormat>,
) -> ApiResult<Response> {
    let html = match f.format.as_deref().unwrap_or("json") {
        "json" => false,
        "html" => true,
        _ => return Err(ApiError::bad_request("format is json or html")),
    };
    let inv = scoped_invoice(&state, &caller, &id).await?;
    if !html {
        return Ok(axum::Json(inv).into_response());
    }
    let issuer = tenants::tenant_by_id(&state.db.pool, &inv.issuer_id)
        .await?
        .map(|t| t.tenant.name)
        .unwrap_or_default();
    Ok(crate::pages::standalone(crate::billing::invoice::html(
        &inv, &issuer,
    )))
}

/// Record a payment
///
/// The issuer's admins or billing users record that an invoice was paid (a transfer
/// arrived). A subscription that is past due or suspended with nothing else unpaid is
/// active again at once.
#[utoipa::path(post, path = "/api/v1/invoices/{id}/payment", tag = "billing",
    params(("id" = String, Path)), request_body = RecordPayment,
    responses((status = 200, description = "The paid invoice", body = Invoice),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 403, description = "Only the invoice's issuer records payments (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "The invoice is paid already, or a card charge of it is pending (problem+json)", body = loop_api::Problem)))]
pub async fn record_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<RecordPayment>,
) -> ApiResult<axum::Json<Invoice>> {
    let inv = scoped_invoice(&state, &caller, &id).await?;
    // The customer sees its invoice but is not its issuer: forbidden, not unknown.
    let issuer = tenants::tenant_by_id(&state.db.pool, &inv.issuer_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !caller.can(Permission::BillingWrite, &issuer.path) {
        return Err(ApiError::forbidden());
    }
    let reference = req.reference.trim();
    if reference.is_empty() || reference.len() > 200 || reference.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "reference must be 1 to 200 characters without control characters",
        ));
    }
    let now = state.now();
    let mut tx = state.db.begin().await?;
    if inv.state != InvoiceState::Open
        || !invoices::mark_paid(&mut tx, &inv.id, reference, now).await?
    {
        return Err(ApiError::conflict(
            "invoice_paid",
            "the invoice is paid already",
        ));
    }
    // A card charge under way would take the money a second time.
    let charges = crate::db::payments::charges_of_invoice(&mut *tx, &inv.id).await?;
    if charges
        .iter()
        .any(|c| c.state == loop_api::ChargeState::Pending)
    {
        return Err(ApiError::conflict(
            "charge_pending",
            "a card charge of this invoice is still pending at the payment processor: record \
             a payment once it failed, or cancel it there first",
        ));
    }
    commit_audited(
        tx,
        caller.event(
            &inv.tenant_id,
            "invoice.pay",
            "invoice",
            Some(&inv.id),
            serde_json::json!({
                "number": inv.number, "issuer_id": inv.issuer_id, "reference": reference,
                "total_cents": inv.total_cents,
            }),
        ),
        now,
    )
    .await?;
    crate::billing::advance(&state, &inv.tenant_id).await?;
    Ok(axum::Json(scoped_invoice(&state, &caller, &id).await?))
}
