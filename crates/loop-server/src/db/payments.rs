//! Charges through the payment processor and the processor events already handled.

use loop_api::{Charge, ChargeState};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col, col_value, time};

/// A charge as stored.
#[derive(Clone, Debug)]
pub struct ChargeRow {
    pub id: String,
    pub invoice_id: String,
    pub tenant_id: String,
    pub attempt: u64,
    pub payment_method: String,
    pub amount_cents: u64,
    pub currency: String,
    pub state: ChargeState,
    pub processor_ref: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: i64,
    /// When it was last changed: a settled charge's answer, a pending one's last look.
    pub updated_at: i64,
}

impl ChargeRow {
    pub fn view(&self) -> Charge {
        Charge {
            id: self.id.clone(),
            invoice_id: self.invoice_id.clone(),
            attempt: self.attempt,
            amount_cents: self.amount_cents,
            currency: self.currency.clone(),
            state: self.state,
            processor_reference: self.processor_ref.clone(),
            failure_code: self.failure_code.clone(),
            failure_message: self.failure_message.clone(),
            created_at: time(self.created_at),
        }
    }

    /// The idempotency key of this attempt: asking again repeats the answer.
    pub fn idempotency_key(&self) -> String {
        format!("{}-{}", self.invoice_id, self.attempt)
    }
}

fn charge(row: &AnyRow) -> DbResult<ChargeRow> {
    Ok(ChargeRow {
        id: col(row, "id")?,
        invoice_id: col(row, "invoice_id")?,
        tenant_id: col(row, "tenant_id")?,
        attempt: col::<i64>(row, "attempt")?.max(0) as u64,
        payment_method: col(row, "payment_method")?,
        amount_cents: col::<i64>(row, "amount_cents")?.max(0) as u64,
        currency: col(row, "currency")?,
        state: col_value(row, "state")?,
        processor_ref: col(row, "processor_ref")?,
        failure_code: col(row, "failure_code")?,
        failure_message: col(row, "failure_message")?,
        updated_at: col(row, "updated_at")?,
        created_at: col(row, "created_at")?,
    })
}

/// Every attempt at an invoice, first first.
pub async fn charges_of_invoice<'c>(
    db: impl sqlx::AnyExecutor<'c>,
    invoice_id: &str,
) -> DbResult<Vec<ChargeRow>> {
    sqlx::query("SELECT * FROM charges WHERE invoice_id = $1 ORDER BY attempt")
        .bind(invoice_id)
        .fetch_all(db)
        .await?
        .iter()
        .map(charge)
        .collect()
}

/// When the newest charge still pending at the processor for the tenant's oldest open
/// invoice (the one a suspension or termination would be for) was made.
pub async fn pending_charge_made(pool: &AnyPool, tenant_id: &str) -> DbResult<Option<i64>> {
    let row = sqlx::query(
        "SELECT MAX(c.created_at) AS made FROM charges c
         JOIN invoices i ON i.id = c.invoice_id
         WHERE c.tenant_id = $1 AND c.state = 'pending' AND i.state = 'open'
           AND i.due_at = (SELECT MIN(due_at) FROM invoices
                           WHERE tenant_id = $1 AND state = 'open')",
    )
    .bind(tenant_id)
    .fetch_one(pool)
    .await?;
    Ok(col(&row, "made")?)
}

/// A tenant's charges, newest first (at most `limit`).
pub async fn charges_of_tenant(
    pool: &AnyPool,
    tenant_id: &str,
    limit: i64,
) -> DbResult<Vec<ChargeRow>> {
    sqlx::query(
        "SELECT * FROM charges WHERE tenant_id = $1 ORDER BY created_at DESC, attempt DESC
         LIMIT $2",
    )
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(charge)
    .collect()
}

/// The charge the processor knows as `reference` (its payment intent).
pub async fn charge_by_ref<'c>(
    db: impl sqlx::AnyExecutor<'c>,
    reference: &str,
) -> DbResult<Option<ChargeRow>> {
    let row = sqlx::query("SELECT * FROM charges WHERE processor_ref = $1")
        .bind(reference)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(charge).transpose()
}

/// Records a new attempt as pending; false when that attempt exists (another node asked).
/// A charge made changes the subscription (`invoices::owed_changed`).
pub async fn insert_charge(tx: &mut Tx, c: &ChargeRow) -> DbResult<bool> {
    let done = sqlx::query(
        "INSERT INTO charges (id, invoice_id, tenant_id, attempt, payment_method, amount_cents,
                              currency, state, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8)
         ON CONFLICT (invoice_id, attempt) DO NOTHING",
    )
    .bind(&c.id)
    .bind(&c.invoice_id)
    .bind(&c.tenant_id)
    .bind(c.attempt as i64)
    .bind(&c.payment_method)
    .bind(c.amount_cents as i64)
    .bind(&c.currency)
    .bind(c.created_at)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    super::invoices::owed_changed(tx, &c.invoice_id, c.created_at).await?;
    Ok(true)
}

/// Records what came of a charge; false when it had settled already (a webhook was first).
pub async fn settle_charge(
    tx: &mut Tx,
    id: &str,
    state: ChargeState,
    processor_ref: Option<&str>,
    failure: Option<(&str, &str)>,
    now: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE charges SET state = $1, processor_ref = COALESCE($2, processor_ref),
             failure_code = $3, failure_message = $4, updated_at = $5
         WHERE id = $6 AND state = 'pending'",
    )
    .bind(state.as_str())
    .bind(processor_ref)
    .bind(failure.map(|f| f.0))
    .bind(failure.map(|f| f.1))
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes a processor event (about `object_id`, its object's ID) as handled; false when it
/// was handled before.
pub async fn first_delivery(
    tx: &mut Tx,
    (id, kind, object_id): (&str, &str, Option<&str>),
    now: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "INSERT INTO processor_events (id, kind, received_at, object_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(kind)
    .bind(now)
    .bind(object_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The tenant whose subscription has the processor's customer `customer`.
pub async fn tenant_of_customer<'c>(
    db: impl sqlx::AnyExecutor<'c>,
    customer: &str,
) -> DbResult<Option<String>> {
    let row = sqlx::query("SELECT tenant_id FROM subscriptions WHERE processor_customer = $1")
        .bind(customer)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| col(&r, "tenant_id")).transpose()?)
}

/// Records the processor's customer of a tenant, unless one is recorded already.
pub async fn set_customer(tx: &mut Tx, tenant_id: &str, customer: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE subscriptions SET processor_customer = $1,
             updated_at = CASE WHEN updated_at < $2 THEN $2 ELSE updated_at + 1 END
         WHERE tenant_id = $3 AND processor_customer IS NULL",
    )
    .bind(customer)
    .bind(now)
    .bind(tenant_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records (or, with `None`, forgets) the payment method the processor holds for a tenant.
/// Moves `updated_at` on, so a lifecycle step that read the subscription before saves
/// nothing and reads it again. The forgotten method's setup time stays: a setup older than
/// it, delivered late, is still over.
pub async fn set_payment_method(
    tx: &mut Tx,
    tenant_id: &str,
    payment_method: Option<&str>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE subscriptions SET payment_method = $1,
             updated_at = CASE WHEN updated_at < $2 THEN $2 ELSE updated_at + 1 END
         WHERE tenant_id = $3",
    )
    .bind(payment_method)
    .bind(now)
    .bind(tenant_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes `payment_method`, which the processor made at `created` (ms), the subscription's,
/// unless the one it has was made later (its setup's event came first), or the processor
/// told of its removal already (that event came first). False then.
pub async fn adopt_payment_method(
    tx: &mut Tx,
    tenant_id: &str,
    payment_method: &str,
    created: i64,
    now: i64,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE subscriptions SET payment_method = $1, payment_method_created = $2,
             updated_at = CASE WHEN updated_at < $3 THEN $3 ELSE updated_at + 1 END
         WHERE tenant_id = $4
           AND (payment_method_created IS NULL OR payment_method_created <= $2)
           AND NOT EXISTS (SELECT 1 FROM processor_events
                           WHERE kind = 'payment_method.detached' AND object_id = $1)",
    )
    .bind(payment_method)
    .bind(created)
    .bind(now)
    .bind(tenant_id)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The tenant whose subscription holds the payment method `pm`.
pub async fn tenant_of_payment_method<'c>(
    db: impl sqlx::AnyExecutor<'c>,
    pm: &str,
) -> DbResult<Option<String>> {
    let row = sqlx::query("SELECT tenant_id FROM subscriptions WHERE payment_method = $1")
        .bind(pm)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| col(&r, "tenant_id")).transpose()?)
}

/// Marks a pending charge whose answer was lost and whose key the processor may have
/// forgotten (`failure_code = answer_lost`, still pending: its webhook may yet settle it).
/// True the first time only.
pub async fn note_answer_lost(pool: &sqlx::AnyPool, id: &str, now: i64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE charges SET failure_code = 'answer_lost',
             failure_message = 'the processor''s answer was lost; look the charge up there',
             updated_at = $1
         WHERE id = $2 AND state = 'pending' AND failure_code IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// When a pending charge was last looked up at the processor (or made, or changed).
pub async fn looked_at(pool: &AnyPool, id: &str) -> DbResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT updated_at FROM charges WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
            .unwrap_or(0),
    )
}

/// Notes that a pending charge was looked up at the processor and is still pending there.
pub async fn note_looked_up(pool: &AnyPool, id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE charges SET updated_at = $1 WHERE id = $2 AND state = 'pending'")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Notes the processor's reference of a charge still processing.
pub async fn note_ref(pool: &AnyPool, id: &str, processor_ref: &str) -> DbResult<()> {
    sqlx::query("UPDATE charges SET processor_ref = $1 WHERE id = $2 AND state = 'pending'")
        .bind(processor_ref)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
