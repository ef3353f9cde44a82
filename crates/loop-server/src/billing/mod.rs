//! The subscription lifecycle of customer tenants (docs/OPERATIONS.md, "Subscriptions"):
//! the timer that moves each subscription along its [`lifecycle`] rules, meters usage once a
//! day, issues invoices, sends the warnings and, at the end, erases the tenant; and the
//! checks that keep a suspended tenant from growing.
//!
//! A customer created without a plan has no subscription: it is never billed, suspended or
//! terminated (the provider's own machines, a company backing up itself).

pub mod invoice;
pub mod lifecycle;
pub mod payments;
pub mod stripe;
pub mod webhook;

use loop_api::{ActorKind, Invoice, Outcome, Plan, SubscriptionState};

use crate::auth::Caller;

use crate::db::audit::{self, NewEvent, Personal};
use crate::db::billing::{self, SubRow};
use crate::db::outbox::{self, MailKind};
use crate::db::tenants::TenantRow;
use crate::db::{DbResult, Tx, invoices, tenants};
use crate::domain::{Permission, TenantKind, new_id};
use crate::erasure::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use lifecycle::{Step, Warning, month_after, period_after};

/// Steps one subscription may take in one pass (a server that was down long catches up).
const MAX_STEPS: usize = 32;

fn suspended() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYMENT_REQUIRED,
        "subscription_suspended",
        "the subscription is suspended: new backups, devices and vaults are refused until it \
         is paid; restores and downloads keep working",
    )
}

/// Refuses growth (a backup's writes, a new vault) of a tenant whose subscription is
/// suspended: `402 subscription_suspended`.
pub async fn refuse_if_suspended(state: &AppState, tenant_id: &str) -> ApiResult<()> {
    if billing::suspended(&state.db.pool, tenant_id).await? {
        return Err(suspended());
    }
    Ok(())
}

/// In the transaction that recorded a new device, after its insert (so the transaction
/// holds the write and the count includes it): refused while suspended, and beyond the
/// plan's device limit (`409 device_limit`).
pub async fn admit_device(tx: &mut Tx, tenant_id: &str) -> ApiResult<()> {
    // Another enrolment's device, not yet committed, is counted once its transaction ends
    // (PostgreSQL's READ COMMITTED would count each transaction's own device only).
    billing::hold_subscription(tx, tenant_id).await?;
    let Some(s) = billing::subscription_in(tx, tenant_id).await? else {
        return Ok(());
    };
    if s.refuses_growth() {
        return Err(suspended());
    }
    let Some(plan) = billing::plan_by_id(&mut **tx, &s.plan_id).await? else {
        return Ok(());
    };
    if let Some(limit) = plan.device_limit
        && billing::devices_in_tx(tx, tenant_id).await? > limit
    {
        return Err(ApiError::conflict(
            "device_limit",
            format!("the plan {} allows {limit} devices", plan.name),
        ));
    }
    Ok(())
}

/// A plan the caller may see with `perm` (on its issuer).
pub async fn scoped_plan(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &str,
) -> ApiResult<Plan> {
    caller.user()?;
    let p = billing::plan_by_id(&state.db.pool, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller.tenant(state, perm, &p.issuer_id).await?;
    Ok(p)
}

/// The plan `plan_id`, if customer `tenant` may subscribe to it: issued by a partner or
/// provider above it, on which the caller holds `BillingWrite`.
pub async fn plan_for(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantRow,
    plan_id: &str,
) -> ApiResult<Plan> {
    if tenant.tenant.kind != TenantKind::Customer {
        return Err(ApiError::bad_request(
            "only a customer tenant has a subscription",
        ));
    }
    let plan = scoped_plan(state, caller, Permission::BillingWrite, plan_id).await?;
    let issuer = tenants::tenant_by_id(&state.db.pool, &plan.issuer_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !issuer.path.contains(&tenant.path) || issuer.path == tenant.path {
        return Err(ApiError::bad_request(
            "the plan is sold by a tenant that is not above this customer",
        ));
    }
    Ok(plan)
}

/// What one pass of the timer did.
#[derive(Debug, Default)]
pub struct TickReport {
    /// (tenant, step) in the order they were taken.
    pub steps: Vec<(String, Step)>,
    pub usage_recorded: usize,
    /// People of erased tenants erased once the deletion certificate went out.
    pub people_erased: u64,
    /// Tenants whose steps failed on this pass (logged; tried again at the next).
    pub failed: Vec<String>,
}

/// One pass of the lifecycle timer: today's usage of every billed tenant, then every
/// subscription's due steps.
pub async fn tick(state: &AppState) -> ApiResult<TickReport> {
    let mut report = TickReport::default();
    let now = state.now();
    crate::db::signups::sweep_expired(&state.db.pool, now).await?;
    let day = crate::db::time(now).format("%Y-%m-%d").to_string();
    // One tenant whose step fails (an erasure refused, a destination down) is logged and
    // tried again at the next pass: it never holds back the others.
    for s in billing::live_subscriptions(&state.db.pool).await? {
        let done = live_steps(state, &s.tenant_id, &day, &mut report).await;
        report.failed_unless(&s.tenant_id, done);
    }
    // Invoices a subscription was issued before it ended are still collected.
    for tenant_id in billing::terminated_with_open_invoices(&state.db.pool).await? {
        let done = payments::charge_open(state, &tenant_id).await.map(|_| ());
        report.failed_unless(&tenant_id, done);
    }
    // A termination recorded but never followed by its erasure (the process stopped between
    // the two): erased now. Erasing again finishes what a first run left.
    for tenant_id in billing::terminated_not_erased(&state.db.pool).await? {
        let done = terminate(state, &tenant_id).await;
        report.failed_unless(&tenant_id, done);
    }
    report.people_erased = crate::erasure::forget_people(state).await?;
    Ok(report)
}

impl TickReport {
    fn failed_unless(&mut self, tenant_id: &str, done: ApiResult<()>) {
        if let Err(e) = done {
            tracing::error!(
                tenant = %tenant_id, error = ?e,
                "the subscription lifecycle failed for this tenant; tried again at the next pass"
            );
            self.failed.push(tenant_id.to_string());
        }
    }
}

/// Today's usage of a live subscription's tenant, then its due steps.
async fn live_steps(
    state: &AppState,
    tenant_id: &str,
    day: &str,
    report: &mut TickReport,
) -> ApiResult<()> {
    let (stored, devices) = billing::current_usage(&state.db.pool, tenant_id).await?;
    let mut tx = state.db.begin().await?;
    if billing::record_usage(&mut tx, tenant_id, day, stored, devices).await? {
        report.usage_recorded += 1;
    }
    tx.commit().await.map_err(crate::db::DbError::from)?;
    for step in advance(state, tenant_id).await? {
        report.steps.push((tenant_id.to_string(), step));
    }
    // An invoice just issued is charged at once; a paid one moves the lifecycle on.
    if payments::charge_open(state, tenant_id).await? > 0 {
        for step in advance(state, tenant_id).await? {
            report.steps.push((tenant_id.to_string(), step));
        }
    }
    Ok(())
}

/// Takes every step due for the tenant's subscription now (none without one).
pub async fn advance(state: &AppState, tenant_id: &str) -> ApiResult<Vec<Step>> {
    let pool = &state.db.pool;
    let mut taken = Vec::new();
    for _ in 0..MAX_STEPS {
        let Some(s) = billing::subscription(pool, tenant_id).await? else {
            break;
        };
        let unpaid = invoices::oldest_unpaid_due(pool, tenant_id).await?;
        let now = state.now();
        let Some(step) = lifecycle::next(&s, unpaid, now, &state.config.billing) else {
            break;
        };
        let charge = crate::db::payments::pending_charge_made(pool, tenant_id).await?;
        let fell_due = lifecycle::fell_due(&step, &s, unpaid, &state.config.billing);
        if lifecycle::waits_for_charge(fell_due, charge, now) {
            break;
        }
        if !apply(state, &s, &step, now).await? {
            // Changed under us (a payment, another node): read it again.
            continue;
        }
        if let Step::Terminate { .. } = step {
            terminate(state, tenant_id).await?;
        }
        taken.push(step);
    }
    if !taken.is_empty() {
        state.mail_wake.notify_one();
        state.jobs_wake.notify_one();
    }
    Ok(taken)
}

fn event(tenant_id: &str, action: &'static str, details: serde_json::Value) -> NewEvent {
    NewEvent {
        tenant_id: tenant_id.to_string(),
        actor_kind: ActorKind::System,
        actor_id: None,
        action,
        object_kind: "subscription",
        object_id: Some(tenant_id.to_string()),
        outcome: Outcome::Success,
        personal: Personal::default(),
        details,
    }
}

/// Mails `kind` about tenant `tenant_id` to its admins and billing users, also those bound to
/// it from a tenant above (a reseller's staff): the mail names the tenant it is about.
async fn mail_contacts(
    tx: &mut Tx,
    tenant_id: &str,
    kind: MailKind,
    mut params: serde_json::Value,
    now: i64,
) -> DbResult<()> {
    params["tenant_id"] = tenant_id.into();
    for user in billing::billing_contacts(&mut **tx, tenant_id).await? {
        outbox::enqueue_with(tx, kind, &user, &params, now).await?;
    }
    Ok(())
}

/// Applies one step in one transaction (the change, its audit event, its mail). False when
/// the subscription changed since it was read.
async fn apply(state: &AppState, was: &SubRow, step: &Step, now: i64) -> ApiResult<bool> {
    let tenant_id = was.tenant_id.as_str();
    let mut s = was.clone();
    s.updated_at = now.max(was.updated_at + 1);
    let mut tx = state.db.begin().await?;
    let mut mail: Option<(MailKind, serde_json::Value)> = None;
    let audited = match step {
        Step::Activate { start } => {
            s.state = SubscriptionState::Active;
            s.period_start = Some(*start);
            s.period_end = Some(month_after(*start));
            s.suspended_at = None;
            s.reason = None;
            s.terminate_at = None;
            s.warned.clear();
            Some(event(
                tenant_id,
                "subscription.activate",
                serde_json::json!({ "period_start": crate::db::time(*start) }),
            ))
        }
        Step::Invoice => {
            let (Some(start), Some(end)) = (s.period_start, s.period_end) else {
                return Ok(false);
            };
            let inv = issue_invoice(state, &mut tx, &s, (start, end), now).await?;
            s.period_start = Some(end);
            s.period_end = Some(period_after(start, end));
            inv.map(|inv| {
                mail = Some((
                    MailKind::InvoiceIssued,
                    serde_json::json!({ "invoice_id": inv.id }),
                ));
                event(
                    tenant_id,
                    "subscription.invoice",
                    serde_json::json!({
                        "invoice_id": inv.id, "number": inv.number,
                        "total_cents": inv.total_cents, "currency": inv.currency,
                    }),
                )
            })
        }
        // Neither moves a date of deletion (only an end the customer chose can be near
        // while active or past due): a warning of it given stays given.
        Step::PastDue => {
            s.state = SubscriptionState::PastDue;
            let invoice = invoices::invoices_of(&mut *tx, tenant_id)
                .await?
                .into_iter()
                .filter(|i| i.state == loop_api::InvoiceState::Open)
                .min_by_key(|i| i.due_at);
            if let Some(i) = &invoice {
                mail = Some((
                    MailKind::PaymentFailed,
                    serde_json::json!({ "invoice_id": i.id }),
                ));
            }
            Some(event(
                tenant_id,
                "subscription.past_due",
                serde_json::json!({ "invoice_id": invoice.map(|i| i.id) }),
            ))
        }
        Step::Paid => {
            s.state = SubscriptionState::Active;
            Some(event(tenant_id, "subscription.paid", serde_json::json!({})))
        }
        Step::Suspend {
            reason,
            terminate_at,
        } => {
            s.state = SubscriptionState::Suspended;
            s.suspended_at = Some(now);
            s.reason = Some(*reason);
            s.terminate_at = Some(*terminate_at);
            // The period under way is kept from where it began (nothing is invoiced while
            // suspended): once the customer pays, billing resumes from there, so the days
            // before the suspension are not given away.
            s.period_end = None;
            s.warned.clear();
            mail = Some((MailKind::Suspended, serde_json::json!({})));
            Some(event(
                tenant_id,
                "subscription.suspend",
                serde_json::json!({
                    "reason": reason, "terminate_at": crate::db::time(*terminate_at),
                }),
            ))
        }
        Step::Postpone { terminate_at } => {
            s.terminate_at = Some(*terminate_at);
            lifecycle::deletion_moved(&mut s);
            Some(event(
                tenant_id,
                "subscription.postpone",
                serde_json::json!({ "terminate_at": crate::db::time(*terminate_at) }),
            ))
        }
        Step::Terminate { reason } => {
            s.state = SubscriptionState::Terminated;
            s.terminated_at = Some(now);
            s.reason = Some(*reason);
            // "Deletion done" goes with the deletion certificate, once every place is empty.
            Some(event(
                tenant_id,
                "subscription.terminate",
                serde_json::json!({ "reason": reason }),
            ))
        }
        Step::Warn(w) => {
            s.warned.push(w.as_str().to_string());
            mail = Some((
                match w {
                    Warning::TrialEnding => MailKind::TrialEnding,
                    Warning::DeletionSoon => MailKind::DeletionSoon,
                },
                serde_json::json!({}),
            ));
            None
        }
    };
    if !billing::save_subscription(&mut tx, &s, was.updated_at).await? {
        return Ok(false);
    }
    if let Some((kind, params)) = mail {
        mail_contacts(&mut tx, tenant_id, kind, params, now).await?;
    }
    if let Some(e) = audited {
        audit::append(&mut tx, e, now).await?;
    }
    tx.commit().await.map_err(crate::db::DbError::from)?;
    Ok(true)
}

/// Issues the invoice of the period [start, end): the plan's price, and stored data above
/// the plan's quota at its price per GiB-month (the average of the period's daily
/// measurements). `None` when that period was invoiced already. It is issued at the period's
/// end, or now when that is later (the period a suspension interrupted, billed once the
/// customer paid), and due `due_days` after: an invoice never falls due before the customer
/// had those days to pay it.
async fn issue_invoice(
    state: &AppState,
    tx: &mut Tx,
    s: &SubRow,
    (start, end): (i64, i64),
    now: i64,
) -> ApiResult<Option<Invoice>> {
    let plan = billing::plan_by_id(&mut **tx, &s.plan_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("plan {} is gone", s.plan_id)))?;
    let tenant = tenants::tenant_by_id(&mut **tx, &s.tenant_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let day = |ms: i64| crate::db::time(ms).format("%Y-%m-%d").to_string();
    let usage = billing::usage_between(&mut **tx, &s.tenant_id, &day(start), &day(end)).await?;
    let mut lines = invoice::lines(&plan, &usage, start, end);
    // Invoices too small to charge before this one are charged with it.
    let carried = invoices::carried_of(tx, &s.tenant_id, (&plan.issuer_id, &plan.currency)).await?;
    lines.extend(carried.iter().map(|c| c.line()));
    // Saturating, and within what the database keeps: plan prices are bounded, usage is not.
    let total_cents = lines
        .iter()
        .fold(0u64, |t, l| t.saturating_add(l.amount_cents))
        .min(i64::MAX as u64);
    let issued = end.max(now);
    let due = issued + i64::from(state.config.billing.due_days) * 86_400_000;
    // Nothing to pay (a free plan within its quota): paid as it is issued, so it never
    // falls due. Less than the payment processor charges at least: paid by carrying it to
    // the next invoice (a charge of it would be refused, and the customer suspended for an
    // invoice they had no way to pay).
    let small = total_cents < state.config.billing.min_invoice_cents;
    let free = total_cents == 0 || small;
    let mut inv = Invoice {
        id: new_id("in"),
        issuer_id: plan.issuer_id.clone(),
        number: 0,
        tenant_id: s.tenant_id.clone(),
        bill_to: tenant.tenant.name.clone(),
        plan_id: plan.id.clone(),
        period_start: crate::db::time(start),
        period_end: crate::db::time(end),
        currency: plan.currency.clone(),
        lines,
        total_cents,
        state: if free {
            loop_api::InvoiceState::Paid
        } else {
            loop_api::InvoiceState::Open
        },
        issued_at: crate::db::time(issued),
        due_at: crate::db::time(due),
        paid_at: free.then(|| crate::db::time(issued)),
        payment_reference: (small && total_cents > 0).then(|| invoices::CARRIED.to_string()),
    };
    Ok(match invoices::insert_invoice(tx, &inv).await? {
        Some(number) => {
            inv.number = number;
            for c in &carried {
                invoices::carried_to(tx, &c.id, number).await?;
            }
            Some(inv)
        }
        None => None,
    })
}

/// Erases a terminated tenant, as `loop tenant erase` does: its keys are destroyed (nothing
/// of it is readable from then on), its users and tokens locked out, every vault deleted
/// (a retention lock does not hold: this is the lock's one documented exception), and the
/// tenant-erasure job deletes every object at every place and issues the deletion
/// certificate, mailed to its former administrators ("deletion done"). Safe to run again.
pub async fn terminate(state: &AppState, tenant_id: &str) -> ApiResult<()> {
    let tenant = tenants::tenant_by_id(&state.db.pool, tenant_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    erasure::erase_tenant(state, &tenant, &Actor::system()).await?;
    Ok(())
}

/// Why a change of the subscription is refused while it is terminated.
pub fn terminated() -> ApiError {
    ApiError::conflict(
        "subscription_terminated",
        "the subscription ended and the tenant's data was erased",
    )
}
