//! Data-subject requests a controller recorded (`subject_requests`).

use loop_api::{SubjectRequest, SubjectRequestOutcome, SubjectRequestState};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Page, Paged, asc};
use super::tenants::in_scope_where;
use super::{DbResult, Tx, col, col_value, time};
use crate::domain::TenantScope;

fn request(row: &AnyRow, now: i64) -> DbResult<SubjectRequest> {
    let state: SubjectRequestState = col_value(row, "state")?;
    let due_at: i64 = col(row, "due_at")?;
    let outcome: Option<String> = col(row, "outcome")?;
    Ok(SubjectRequest {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        user_id: col(row, "user_id")?,
        kind: col_value(row, "kind")?,
        details: col(row, "details")?,
        state,
        received_at: time(col(row, "received_at")?),
        due_at: time(due_at),
        overdue: state == SubjectRequestState::Open && due_at < now,
        closed_at: col::<Option<i64>>(row, "closed_at")?.map(time),
        outcome: outcome
            .map(|o| super::parse_value::<SubjectRequestOutcome>("outcome", &o))
            .transpose()?,
        action: col(row, "action")?,
    })
}

pub async fn insert(tx: &mut Tx, r: &SubjectRequest, created_by: &str) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO subject_requests (id, tenant_id, user_id, kind, details, state,
            received_at, due_at, created_by)
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.tenant_id)
    .bind(&r.user_id)
    .bind(r.kind.as_str())
    .bind(&r.details)
    .bind(r.received_at.timestamp_millis())
    .bind(r.due_at.timestamp_millis())
    .bind(created_by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn by_id(pool: &AnyPool, id: &str, now: i64) -> DbResult<Option<SubjectRequest>> {
    let row = sqlx::query("SELECT * FROM subject_requests WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(|r| request(r, now)).transpose()
}

/// The requests of the tenants in `scope`, open ones first, each by due date.
pub async fn list(
    pool: &AnyPool,
    scope: &TenantScope,
    state: Option<SubjectRequestState>,
    page: Option<&Page>,
    now: i64,
) -> DbResult<Paged<SubjectRequest>> {
    let also: Vec<(&'static str, &str)> = state.iter().map(|s| ("r.state", s.as_str())).collect();
    let rows = in_scope_where(
        pool,
        "SELECT r.* FROM subject_requests r JOIN tenants t ON t.id = r.tenant_id",
        scope,
        &also,
        &[asc("r.state"), asc("r.due_at"), asc("r.id")],
        page,
    )
    .await?;
    rows.map(|r| request(&r, now))
}

/// Closes an open request; false when it was closed already.
pub async fn close(
    tx: &mut Tx,
    id: &str,
    outcome: SubjectRequestOutcome,
    action: &str,
    closed_by: &str,
    now: i64,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE subject_requests SET state = 'closed', outcome = $1, action = $2,
            closed_by = $3, closed_at = $4
         WHERE id = $5 AND state = 'open'",
    )
    .bind(outcome.as_str())
    .bind(action)
    .bind(closed_by)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Erasing a person: what they asked, in their words, goes; the record of the request
/// (kind, dates, outcome) stays as the controller's proof of having answered.
pub async fn forget_details_of(tx: &mut Tx, user_id: &str) -> DbResult<()> {
    sqlx::query("UPDATE subject_requests SET details = '' WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
