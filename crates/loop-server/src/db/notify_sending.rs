//! Sending deliveries: a node takes the due ones under a claim (as the mail outbox does),
//! records which e-mail recipients are done, and records each try.

use loop_api::{DeliveryState, Event};
use sqlx::AnyPool;

use super::notify::{TargetRow, event_by_id, target};
use super::{DbError, DbResult, col};

/// A delivery taken by this node, with what it carries.
pub struct Taken {
    pub id: String,
    pub attempts: i64,
    /// The e-mail recipients who have the message or refused it for good (bits by place in
    /// the list whose fingerprint is `recipients_of`), and the refusals (relays' answers).
    pub recipients_done: i64,
    pub recipients_of: Option<i64>,
    pub refused: Vec<String>,
    pub created_at: i64,
    pub target: TargetRow,
    pub event: Event,
}

/// Takes up to `limit` due deliveries, at most `per_tenant` of one tenant's and each
/// tenant's oldest first (so twenty tenants with deliveries due each get one in), for
/// `claim_ms`, counting an attempt on each.
pub async fn take_due(
    pool: &AnyPool,
    now: i64,
    claim_ms: i64,
    (limit, per_tenant): (i64, i64),
) -> DbResult<Vec<Taken>> {
    let mut out = Vec::new();
    let queue = super::Queue::Deliveries { per_tenant };
    for id in super::take_queued(pool, queue, now, claim_ms, limit).await? {
        let row = sqlx::query(
            "SELECT d.attempts AS delivery_attempts, d.created_at AS delivery_created_at,
                d.recipients_done AS delivery_recipients_done, d.refused AS delivery_refused,
                d.recipients_of AS delivery_recipients_of,
                d.event_id AS delivery_event_id, n.* FROM deliveries d
               JOIN notify_targets n ON n.id = d.target_id WHERE d.id = $1",
        )
        .bind(&id)
        .fetch_one(pool)
        .await?;
        let event_id: String = col(&row, "delivery_event_id")?;
        let event = event_by_id(pool, &event_id)
            .await?
            .ok_or(DbError::Sql(sqlx::Error::RowNotFound))?;
        out.push(Taken {
            id,
            attempts: col(&row, "delivery_attempts")?,
            recipients_done: col(&row, "delivery_recipients_done")?,
            recipients_of: col(&row, "delivery_recipients_of")?,
            refused: col::<Option<String>>(&row, "delivery_refused")?
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or_default(),
            created_at: col(&row, "delivery_created_at")?,
            target: target(&row)?,
            event,
        });
    }
    Ok(out)
}

/// Records which e-mail recipients of the list with fingerprint `of` are done with (see
/// [`Taken::recipients_done`]), and the relay's answers to those it refused for good, for a
/// delivery the caller holds.
pub async fn recipients_done(
    pool: &AnyPool,
    id: &str,
    (of, done): (i64, i64),
    refused: &[String],
) -> DbResult<()> {
    let refused = (!refused.is_empty()).then(|| serde_json::json!(refused).to_string());
    sqlx::query(
        "UPDATE deliveries SET recipients_done = $1, refused = $2, recipients_of = $3
         WHERE id = $4",
    )
    .bind(done)
    .bind(refused)
    .bind(of)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// How one try of a delivery went.
pub struct Outcome<'a> {
    pub state: DeliveryState,
    pub error: Option<&'a str>,
    pub status: Option<u16>,
    /// For a delivery put back: when to try again.
    pub retry_at: Option<i64>,
}

/// Records a try: the delivery ends (`succeeded`, `failed`) or waits for `retry_at`.
pub async fn record_try(pool: &AnyPool, id: &str, o: &Outcome<'_>, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE deliveries SET state = $1, claimed_until = NULL, last_error = $2,
            refused = CASE WHEN $1 = 'queued' THEN refused ELSE NULL END,
            response_status = $3, finished_at = $4, next_attempt_at = COALESCE($5, next_attempt_at)
         WHERE id = $6 AND state = 'queued'",
    )
    .bind(o.state.as_str())
    .bind(o.error)
    .bind(o.status.map(i64::from))
    .bind((o.state != DeliveryState::Queued).then_some(now))
    .bind(o.retry_at)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}
