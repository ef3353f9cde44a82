//! Plans, subscriptions and daily usage (the subscription lifecycle's records; invoices in
//! `invoices`).

use loop_api::{Collection, LifecycleReason, Plan, SubscriptionState};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Page, Paged, asc};
use super::tenants::in_scope_where;
use super::{DbResult, Tx, col, col_json, col_value, opt_time, time};
use crate::domain::TenantScope;

fn opt_u64(row: &AnyRow, name: &str) -> DbResult<Option<u64>> {
    Ok(col::<Option<i64>>(row, name)?.map(|v| v.max(0) as u64))
}

fn plan(row: &AnyRow) -> DbResult<Plan> {
    Ok(Plan {
        id: col(row, "id")?,
        issuer_id: col(row, "issuer_id")?,
        name: col(row, "name")?,
        quota_bytes: opt_u64(row, "quota_bytes")?,
        device_limit: opt_u64(row, "device_limit")?,
        price_cents: col::<i64>(row, "price_cents")?.max(0) as u64,
        extra_gib_cents: opt_u64(row, "extra_gib_cents")?,
        currency: col(row, "currency")?,
        signup: col::<i64>(row, "signup")? != 0,
        created_at: time(col(row, "created_at")?),
    })
}

pub async fn insert_plan(tx: &mut Tx, p: &Plan, now: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO plans (id, issuer_id, name, quota_bytes, device_limit, price_cents,
                            extra_gib_cents, currency, signup, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&p.id)
    .bind(&p.issuer_id)
    .bind(&p.name)
    .bind(p.quota_bytes.map(|v| v as i64))
    .bind(p.device_limit.map(|v| v as i64))
    .bind(p.price_cents as i64)
    .bind(p.extra_gib_cents.map(|v| v as i64))
    .bind(&p.currency)
    .bind(i64::from(p.signup))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Through the pool or a transaction (`&mut **tx`).
pub async fn plan_by_id<'c>(db: impl sqlx::AnyExecutor<'c>, id: &str) -> DbResult<Option<Plan>> {
    let row = sqlx::query("SELECT * FROM plans WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(plan).transpose()
}

/// The plans issued by the tenants in `scope`, by issuer and name.
pub async fn plans_in(
    pool: &AnyPool,
    scope: &TenantScope,
    page: Option<&Page>,
) -> DbResult<Paged<Plan>> {
    let rows = in_scope_where(
        pool,
        "SELECT p.* FROM plans p JOIN tenants t ON t.id = p.issuer_id",
        scope,
        &[],
        &[asc("t.path"), asc("p.name"), asc("p.id")],
        page,
    )
    .await?;
    rows.map(|r| plan(&r))
}

/// The plans offered on the self-service sign-up, by name: the provider's only.
pub async fn signup_plans(pool: &AnyPool) -> DbResult<Vec<Plan>> {
    sqlx::query(
        "SELECT p.* FROM plans p JOIN tenants t ON t.id = p.issuer_id
         WHERE p.signup <> 0 AND t.kind = 'provider' ORDER BY p.name, p.id",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(plan)
    .collect()
}

/// Deletes a plan no subscription uses; false when one does.
pub async fn delete_unused_plan(tx: &mut Tx, id: &str) -> DbResult<bool> {
    let done = sqlx::query(
        "DELETE FROM plans WHERE id = $1
         AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE plan_id = $1)",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A subscription as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct SubRow {
    pub tenant_id: String,
    pub plan_id: String,
    pub state: SubscriptionState,
    pub collection: Collection,
    pub processor_customer: Option<String>,
    pub payment_method: Option<String>,
    pub trial_ends_at: i64,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub suspended_at: Option<i64>,
    pub reason: Option<LifecycleReason>,
    pub ends_at: Option<i64>,
    pub terminate_at: Option<i64>,
    pub terminated_at: Option<i64>,
    pub warned: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl SubRow {
    /// Suspended (or terminated): the tenant may not grow.
    pub fn refuses_growth(&self) -> bool {
        matches!(
            self.state,
            SubscriptionState::Suspended | SubscriptionState::Terminated
        )
    }

    /// A new subscription of `tenant_id` to `plan_id` at `now`, in a trial of `trial_days`.
    pub fn trial(
        tenant_id: &str,
        plan_id: &str,
        collection: Collection,
        now: i64,
        trial_days: u32,
    ) -> SubRow {
        SubRow {
            tenant_id: tenant_id.to_string(),
            plan_id: plan_id.to_string(),
            state: SubscriptionState::Trial,
            collection,
            processor_customer: None,
            payment_method: None,
            trial_ends_at: now + i64::from(trial_days) * 86_400_000,
            period_start: None,
            period_end: None,
            suspended_at: None,
            reason: None,
            ends_at: None,
            terminate_at: None,
            terminated_at: None,
            warned: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether the customer can be charged: a payment method, or payment by invoice.
    pub fn can_pay(&self) -> bool {
        self.collection == Collection::Invoice || self.payment_method.is_some()
    }

    pub fn view(&self, plan: Plan) -> loop_api::Subscription {
        loop_api::Subscription {
            tenant_id: self.tenant_id.clone(),
            plan,
            state: self.state,
            collection: self.collection,
            payment_method: self.can_pay(),
            trial_ends_at: time(self.trial_ends_at),
            period_start: opt_time(self.period_start),
            period_end: opt_time(self.period_end),
            suspended_at: opt_time(self.suspended_at),
            reason: self.reason,
            ends_at: opt_time(self.ends_at),
            terminate_at: opt_time(self.terminate_at),
            terminated_at: opt_time(self.terminated_at),
            created_at: time(self.created_at),
        }
    }
}

fn sub(row: &AnyRow) -> DbResult<SubRow> {
    let reason: Option<String> = col(row, "reason")?;
    Ok(SubRow {
        tenant_id: col(row, "tenant_id")?,
        plan_id: col(row, "plan_id")?,
        state: col_value(row, "state")?,
        collection: col_value(row, "collection")?,
        processor_customer: col(row, "processor_customer")?,
        payment_method: col(row, "payment_method")?,
        trial_ends_at: col(row, "trial_ends_at")?,
        period_start: col(row, "period_start")?,
        period_end: col(row, "period_end")?,
        suspended_at: col(row, "suspended_at")?,
        reason: reason
            .map(|r| super::parse_value("reason", &r))
            .transpose()?,
        ends_at: col(row, "ends_at")?,
        terminate_at: col(row, "terminate_at")?,
        terminated_at: col(row, "terminated_at")?,
        warned: col_json(row, "warned")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

pub async fn subscription(pool: &AnyPool, tenant_id: &str) -> DbResult<Option<SubRow>> {
    let row = sqlx::query("SELECT * FROM subscriptions WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(sub).transpose()
}

/// Whether the tenant's subscription is suspended (or terminated): it may not grow.
pub async fn suspended(pool: &AnyPool, tenant_id: &str) -> DbResult<bool> {
    Ok(subscription(pool, tenant_id)
        .await?
        .is_some_and(|s| s.refuses_growth()))
}

/// In a transaction (the one that checks a device or vault against it).
pub async fn subscription_in(tx: &mut Tx, tenant_id: &str) -> DbResult<Option<SubRow>> {
    let row = sqlx::query("SELECT * FROM subscriptions WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(sub).transpose()
}

/// Every subscription not terminated, for the lifecycle timer.
pub async fn live_subscriptions(pool: &AnyPool) -> DbResult<Vec<SubRow>> {
    sqlx::query("SELECT * FROM subscriptions WHERE state <> 'terminated' ORDER BY tenant_id")
        .fetch_all(pool)
        .await?
        .iter()
        .map(sub)
        .collect()
}

/// Ends the subscription of a tenant being erased by hand (in the erasure's transaction):
/// nothing is invoiced for it from then on. False when it has none, or it ended already.
pub async fn terminate_for_erasure(tx: &mut Tx, tenant_id: &str, now: i64) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE subscriptions SET state = 'terminated', reason = 'erased', terminated_at = $1,
             period_start = NULL, period_end = NULL,
             updated_at = CASE WHEN updated_at < $1 THEN $1 ELSE updated_at + 1 END
         WHERE tenant_id = $2 AND state <> 'terminated'",
    )
    .bind(now)
    .bind(tenant_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Terminated subscriptions that still have an open invoice (issued for a period they
/// were served), for the timer to collect.
pub async fn terminated_with_open_invoices(pool: &AnyPool) -> DbResult<Vec<String>> {
    sqlx::query(
        "SELECT DISTINCT s.tenant_id FROM subscriptions s
         JOIN invoices i ON i.tenant_id = s.tenant_id
         WHERE s.state = 'terminated' AND i.state = 'open' ORDER BY s.tenant_id",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| col(r, "tenant_id"))
    .collect::<Result<_, _>>()
    .map_err(Into::into)
}

/// Tenants whose subscription is terminated but who are not erased.
pub async fn terminated_not_erased(pool: &AnyPool) -> DbResult<Vec<String>> {
    sqlx::query(
        "SELECT s.tenant_id FROM subscriptions s JOIN tenants t ON t.id = s.tenant_id
         WHERE s.state = 'terminated' AND t.status <> 'erased' ORDER BY s.tenant_id",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| col(r, "tenant_id"))
    .collect::<Result<_, _>>()
    .map_err(Into::into)
}

pub async fn insert_subscription(tx: &mut Tx, s: &SubRow) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO subscriptions (tenant_id, plan_id, state, collection, trial_ends_at,
                                    warned, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, '[]', $6, $6)",
    )
    .bind(&s.tenant_id)
    .bind(&s.plan_id)
    .bind(s.state.as_str())
    .bind(s.collection.as_str())
    .bind(s.trial_ends_at)
    .bind(s.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes `s` over the row last read as `was` (its `updated_at`): false when the row
/// changed meanwhile, and nothing is written.
pub async fn save_subscription(tx: &mut Tx, s: &SubRow, was: i64) -> DbResult<bool> {
    let warned = serde_json::to_string(&s.warned).unwrap_or_else(|_| "[]".into());
    let done = sqlx::query(
        "UPDATE subscriptions SET plan_id = $1, state = $2, collection = $3,
             processor_customer = $4, payment_method = $5, period_start = $6, period_end = $7,
             suspended_at = $8, reason = $9, ends_at = $10, terminate_at = $11,
             terminated_at = $12, warned = $13, updated_at = $14
         WHERE tenant_id = $15 AND updated_at = $16",
    )
    .bind(&s.plan_id)
    .bind(s.state.as_str())
    .bind(s.collection.as_str())
    .bind(&s.processor_customer)
    .bind(&s.payment_method)
    .bind(s.period_start)
    .bind(s.period_end)
    .bind(s.suspended_at)
    .bind(s.reason.map(|r| r.as_str()))
    .bind(s.ends_at)
    .bind(s.terminate_at)
    .bind(s.terminated_at)
    .bind(warned)
    .bind(s.updated_at)
    .bind(&s.tenant_id)
    .bind(was)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records what a tenant uses on `day` (`YYYY-MM-DD`), once: a second measurement of the
/// same day is ignored.
pub async fn record_usage(
    tx: &mut Tx,
    tenant_id: &str,
    day: &str,
    stored_bytes: u64,
    devices: u64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "INSERT INTO usage_days (tenant_id, day, stored_bytes, devices) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, day) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(day)
    .bind(stored_bytes as i64)
    .bind(devices as i64)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The measurements of days `from` to `until` (exclusive), as (stored bytes, devices).
pub async fn usage_between<'c>(
    db: impl sqlx::AnyExecutor<'c>,
    tenant_id: &str,
    from: &str,
    until: &str,
) -> DbResult<Vec<(u64, u64)>> {
    let rows = sqlx::query(
        "SELECT stored_bytes, devices FROM usage_days
         WHERE tenant_id = $1 AND day >= $2 AND day < $3 ORDER BY day",
    )
    .bind(tenant_id)
    .bind(from)
    .bind(until)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                col::<i64>(r, "stored_bytes")?.max(0) as u64,
                col::<i64>(r, "devices")?.max(0) as u64,
            ))
        })
        .collect()
}

/// What a tenant stores now (its vaults' recorded bytes) and how many devices it has.
pub async fn current_usage(pool: &AnyPool, tenant_id: &str) -> DbResult<(u64, u64)> {
    let stored: i64 = col(
        &sqlx::query(
            "SELECT CAST(COALESCE(SUM(used_bytes), 0) AS BIGINT) AS n FROM vaults
             WHERE tenant_id = $1 AND deleted_at IS NULL",
        )
        .bind(tenant_id)
        .fetch_one(pool)
        .await?,
        "n",
    )?;
    Ok((stored.max(0) as u64, devices_of(pool, tenant_id).await?))
}

/// The devices a tenant has.
pub async fn devices_of(pool: &AnyPool, tenant_id: &str) -> DbResult<u64> {
    let n: i64 = col(
        &sqlx::query(
            "SELECT COUNT(*) AS n FROM devices WHERE tenant_id = $1 AND deleted_at IS NULL",
        )
        .bind(tenant_id)
        .fetch_one(pool)
        .await?,
        "n",
    )?;
    Ok(n.max(0) as u64)
}

/// Locks the tenant's subscription row until the transaction ends (a write that changes
/// nothing), so checks against its plan in concurrent transactions run one after another.
pub async fn hold_subscription(tx: &mut Tx, tenant_id: &str) -> DbResult<()> {
    sqlx::query("UPDATE subscriptions SET updated_at = updated_at WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// [`devices_of`] in a transaction.
pub async fn devices_in_tx(tx: &mut Tx, tenant_id: &str) -> DbResult<u64> {
    let n: i64 = col(
        &sqlx::query(
            "SELECT COUNT(*) AS n FROM devices WHERE tenant_id = $1 AND deleted_at IS NULL",
        )
        .bind(tenant_id)
        .fetch_one(&mut **tx)
        .await?,
        "n",
    )?;
    Ok(n.max(0) as u64)
}

/// The active users bound as `admin` or `billing` on the tenant itself: who hears about
/// its subscription.
pub async fn billing_contacts<'c>(
    db: impl sqlx::AnyExecutor<'c>,
    tenant_id: &str,
) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT u.id AS id FROM users u JOIN role_bindings b ON b.user_id = u.id
         WHERE b.tenant_id = $1 AND b.role IN ('admin', 'billing') AND u.status = 'active'
         ORDER BY u.id",
    )
    .bind(tenant_id)
    .fetch_all(db)
    .await?;
    rows.iter().map(|r| Ok(col(r, "id")?)).collect()
}
