//! Invoices: issued under their issuer's next number, paid once.

use loop_api::{Invoice, InvoiceLine, InvoiceState};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col, col_json, col_value, opt_time, time};

fn invoice(row: &AnyRow) -> DbResult<Invoice> {
    Ok(Invoice {
        id: col(row, "id")?,
        issuer_id: col(row, "issuer_id")?,
        number: col::<i64>(row, "number")?.max(0) as u64,
        tenant_id: col(row, "tenant_id")?,
        bill_to: col(row, "bill_to")?,
        plan_id: col(row, "plan_id")?,
        period_start: time(col(row, "period_start")?),
        period_end: time(col(row, "period_end")?),
        currency: col(row, "currency")?,
        lines: col_json::<Vec<InvoiceLine>>(row, "lines")?,
        total_cents: col::<i64>(row, "total_cents")?.max(0) as u64,
        state: col_value(row, "state")?,
        issued_at: time(col(row, "issued_at")?),
        due_at: time(col(row, "due_at")?),
        paid_at: opt_time(col(row, "paid_at")?),
        payment_reference: col(row, "payment_reference")?,
    })
}

/// The payment reference of an invoice too small to charge (below
/// `billing.min_invoice_cents`) while its total waits for the next invoice; then it names
/// that invoice ("carried to invoice N").
pub const CARRIED: &str = "carried to the next invoice";

/// An invoice too small to charge, to be charged with the next one.
pub struct Carried {
    pub id: String,
    pub number: u64,
    pub total_cents: u64,
}

impl Carried {
    /// Its line on the invoice that carries it.
    pub fn line(&self) -> InvoiceLine {
        InvoiceLine {
            description: format!("Carried over from invoice {}", self.number),
            quantity: "1".into(),
            unit_cents: self.total_cents,
            amount_cents: self.total_cents,
        }
    }
}

/// The tenant's invoices from `issuer` in `currency` too small to charge that no invoice
/// carries yet, oldest first. One issuer's are never charged on another's invoice (a
/// customer moved to a plan sold higher up), nor amounts in another currency.
pub async fn carried_of(
    tx: &mut Tx,
    tenant_id: &str,
    (issuer_id, currency): (&str, &str),
) -> DbResult<Vec<Carried>> {
    let rows = sqlx::query(
        "SELECT id, number, total_cents FROM invoices
         WHERE tenant_id = $1 AND state = 'paid' AND payment_reference = $2 AND currency = $3
           AND issuer_id = $4
         ORDER BY number",
    )
    .bind(tenant_id)
    .bind(CARRIED)
    .bind(currency)
    .bind(issuer_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Carried {
                id: col(r, "id")?,
                number: col::<i64>(r, "number")?.max(0) as u64,
                total_cents: col::<i64>(r, "total_cents")?.max(0) as u64,
            })
        })
        .collect()
}

/// Records that invoice `number` carries the small invoice `id`.
pub async fn carried_to(tx: &mut Tx, id: &str, number: u64) -> DbResult<()> {
    sqlx::query(
        "UPDATE invoices SET payment_reference = $1 WHERE id = $2 AND payment_reference = $3",
    )
    .bind(format!("carried to invoice {number}"))
    .bind(id)
    .bind(CARRIED)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records an invoice under the issuer's next number. Answers the number, or `None` when
/// the tenant already has the invoice of that period.
pub async fn insert_invoice(tx: &mut Tx, i: &Invoice) -> DbResult<Option<u64>> {
    // The issuer's row is locked first: two invoices of one issuer recorded at once (the
    // timers of two nodes) then number one after the other, where both would take the next
    // number and the second fail on it (PostgreSQL; SQLite has one writer anyway).
    sqlx::query("UPDATE tenants SET name = name WHERE id = $1")
        .bind(&i.issuer_id)
        .execute(&mut **tx)
        .await?;
    let lines = serde_json::to_string(&i.lines).unwrap_or_else(|_| "[]".into());
    let done = sqlx::query(
        "INSERT INTO invoices (id, issuer_id, number, tenant_id, bill_to, plan_id,
                               period_start, period_end, currency, lines, total_cents, state,
                               issued_at, due_at, paid_at, payment_reference)
         SELECT $1, $2, COALESCE(MAX(number), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $13,
                $11, $12, $14, $15
         FROM invoices WHERE issuer_id = $2
         ON CONFLICT (tenant_id, period_start) DO NOTHING",
    )
    .bind(&i.id)
    .bind(&i.issuer_id)
    .bind(&i.tenant_id)
    .bind(&i.bill_to)
    .bind(&i.plan_id)
    .bind(i.period_start.timestamp_millis())
    .bind(i.period_end.timestamp_millis())
    .bind(&i.currency)
    .bind(lines)
    .bind(i.total_cents as i64)
    .bind(i.issued_at.timestamp_millis())
    .bind(i.due_at.timestamp_millis())
    .bind(i.state.as_str())
    .bind(i.paid_at.map(|t| t.timestamp_millis()))
    .bind(&i.payment_reference)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let number: i64 = col(
        &sqlx::query("SELECT number FROM invoices WHERE id = $1")
            .bind(&i.id)
            .fetch_one(&mut **tx)
            .await?,
        "number",
    )?;
    Ok(Some(number.max(0) as u64))
}

pub async fn invoice_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<Invoice>> {
    let row = sqlx::query("SELECT * FROM invoices WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(invoice).transpose()
}

/// A tenant's invoices, newest first (through the pool or a transaction).
pub async fn invoices_of<'c>(
    db: impl sqlx::AnyExecutor<'c>,
    tenant_id: &str,
) -> DbResult<Vec<Invoice>> {
    sqlx::query("SELECT * FROM invoices WHERE tenant_id = $1 ORDER BY period_start DESC")
        .bind(tenant_id)
        .fetch_all(db)
        .await?
        .iter()
        .map(invoice)
        .collect()
}

/// The due date of the tenant's oldest unpaid invoice.
pub async fn oldest_unpaid_due(pool: &AnyPool, tenant_id: &str) -> DbResult<Option<i64>> {
    let row = sqlx::query(
        "SELECT MIN(due_at) AS due FROM invoices WHERE tenant_id = $1 AND state = 'open'",
    )
    .bind(tenant_id)
    .fetch_one(pool)
    .await?;
    Ok(col(&row, "due")?)
}

/// Holds an open invoice's row for the rest of `tx`; false when it is not open (paid
/// meanwhile): a charge made for it waits for a payment being recorded, and sees it.
pub async fn hold_open_invoice(tx: &mut Tx, id: &str) -> DbResult<bool> {
    let done = sqlx::query("UPDATE invoices SET state = state WHERE id = $1 AND state = 'open'")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks an open invoice paid; false when it was not open.
pub async fn mark_paid(tx: &mut Tx, id: &str, reference: &str, now: i64) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE invoices SET state = $1, paid_at = $2, payment_reference = $3
         WHERE id = $4 AND state = 'open'",
    )
    .bind(InvoiceState::Paid.as_str())
    .bind(now)
    .bind(reference)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    owed_changed(tx, id, now).await?;
    Ok(true)
}

/// In the transaction that pays invoice `id` or makes a charge of it: the subscription
/// changes with what is owed and how it is being paid, so a lifecycle step decided on the
/// unpaid invoice before (a suspension, a termination) fails its compare-and-swap and is
/// decided again, seeing the payment or the charge under way.
pub async fn owed_changed(tx: &mut Tx, id: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE subscriptions SET updated_at = CASE WHEN updated_at >= $1 THEN updated_at + 1
                                                    ELSE $1 END
         WHERE tenant_id = (SELECT tenant_id FROM invoices WHERE id = $2)",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
