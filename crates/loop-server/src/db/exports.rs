//! Personal-data archives (`data_exports`) and the queries that gather a person's data
//! for one. Every query here is keyed by the person: nothing of anyone else is read.

use serde_json::{Value, json};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col, time};
use crate::domain::TenantScope;

/// An archive as stored (without its bytes).
#[derive(Clone, Debug)]
pub struct ExportRow {
    pub id: String,
    pub user_id: String,
    pub tenant_id: String,
    pub requested_by: String,
    pub job_id: Option<String>,
    pub created_at: i64,
    pub ready_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    /// The bytes are still held (not yet expired).
    pub held: bool,
}

fn export(row: &AnyRow) -> DbResult<ExportRow> {
    Ok(ExportRow {
        id: col(row, "id")?,
        user_id: col(row, "user_id")?,
        tenant_id: col(row, "tenant_id")?,
        requested_by: col(row, "requested_by")?,
        job_id: col(row, "job_id")?,
        created_at: col(row, "created_at")?,
        ready_at: col(row, "ready_at")?,
        expires_at: col(row, "expires_at")?,
        size: col(row, "size")?,
        sha256: col(row, "sha256")?,
        held: col::<i64>(row, "held")? != 0,
    })
}

const COLUMNS: &str = "id, user_id, tenant_id, requested_by, job_id, created_at, ready_at,
    expires_at, size, sha256, CASE WHEN archive IS NULL THEN 0 ELSE 1 END AS held";

pub async fn insert(tx: &mut Tx, e: &ExportRow) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO data_exports (id, user_id, tenant_id, requested_by, job_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&e.id)
    .bind(&e.user_id)
    .bind(&e.tenant_id)
    .bind(&e.requested_by)
    .bind(&e.job_id)
    .bind(e.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn by_id(pool: &AnyPool, id: &str) -> DbResult<Option<ExportRow>> {
    // COLUMNS is a constant of this file.
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM data_exports WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(export).transpose()
}

/// The last `limit` archives of `user_id`, newest first.
pub async fn of_user(pool: &AnyPool, user_id: &str, limit: i64) -> DbResult<Vec<ExportRow>> {
    // COLUMNS is a constant of this file.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM data_exports WHERE user_id = $1
         ORDER BY created_at DESC, id DESC LIMIT $2"
    )))
    .bind(user_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(export).collect()
}

/// The archive's bytes, while held.
pub async fn archive(pool: &AnyPool, id: &str) -> DbResult<Option<Vec<u8>>> {
    let row = sqlx::query("SELECT archive FROM data_exports WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some(r) => col::<Option<Vec<u8>>>(&r, "archive")?,
        None => None,
    })
}

pub async fn set_job(tx: &mut Tx, id: &str, job_id: &str) -> DbResult<()> {
    sqlx::query("UPDATE data_exports SET job_id = $1 WHERE id = $2")
        .bind(job_id)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Stores the made archive, downloadable until `expires_at`.
pub async fn set_ready(
    pool: &AnyPool,
    id: &str,
    archive: &[u8],
    sha256: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE data_exports SET archive = $1, size = $2, sha256 = $3, ready_at = $4,
            expires_at = $5
         WHERE id = $6",
    )
    .bind(archive)
    .bind(archive.len() as i64)
    .bind(sha256)
    .bind(now)
    .bind(expires_at)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes the bytes of every archive whose time ran out; returns how many.
pub async fn expire(pool: &AnyPool, now: i64) -> DbResult<u64> {
    let r = sqlx::query(
        "UPDATE data_exports SET archive = NULL
         WHERE archive IS NOT NULL AND expires_at <= $1",
    )
    .bind(now)
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// Erasing a person: their archives go.
pub async fn delete_of_user(tx: &mut Tx, user_id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM data_exports WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn ms(row: &AnyRow, name: &str) -> DbResult<Value> {
    Ok(match col::<Option<i64>>(row, name)? {
        Some(v) => json!(time(v)),
        None => Value::Null,
    })
}

fn text(row: &AnyRow, name: &str) -> DbResult<Value> {
    Ok(json!(col::<Option<String>>(row, name)?))
}

/// Every session of the person: times, address, browser, device.
pub async fn sessions_of(pool: &AnyPool, user_id: &str) -> DbResult<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT id, created_at, last_seen_at, expires_at, ended_at, end_reason, ip,
                user_agent, browser, os, device_label
         FROM sessions WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(json!({
                "id": text(r, "id")?, "started_at": ms(r, "created_at")?,
                "last_seen_at": ms(r, "last_seen_at")?, "expires_at": ms(r, "expires_at")?,
                "ended_at": ms(r, "ended_at")?, "end_reason": text(r, "end_reason")?,
                "ip": text(r, "ip")?, "user_agent": text(r, "user_agent")?,
                "browser": text(r, "browser")?, "os": text(r, "os")?,
                "device": text(r, "device_label")?,
            }))
        })
        .collect()
}

/// The devices the person registered: created through the API or enrolled with a code
/// they made.
pub async fn devices_of(pool: &AnyPool, user_id: &str) -> DbResult<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT d.id, d.tenant_id, d.name, d.created_at, d.deleted_at, d.agent_version
         FROM devices d
         WHERE d.id IN (SELECT device_id FROM enrolment_codes WHERE created_by = $1
                        AND device_id IS NOT NULL)
            OR d.id IN (SELECT object_id FROM audit_events WHERE actor_id = $1
                        AND action = 'device.create')
         ORDER BY d.created_at, d.id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(json!({
                "id": text(r, "id")?, "tenant_id": text(r, "tenant_id")?,
                "name": text(r, "name")?, "created_at": ms(r, "created_at")?,
                "deleted_at": ms(r, "deleted_at")?, "agent_version": text(r, "agent_version")?,
            }))
        })
        .collect()
}

/// The mail the service sent (or queued) to the person: kind, state, times.
pub async fn mail_to(pool: &AnyPool, user_id: &str) -> DbResult<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT kind, state, created_at, finished_at FROM mail_outbox
         WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(json!({
                "kind": text(r, "kind")?, "state": text(r, "state")?,
                "queued_at": ms(r, "created_at")?, "finished_at": ms(r, "finished_at")?,
            }))
        })
        .collect()
}

/// The notification events about the person (a sign-in from a new browser names its browser,
/// system and device), whether or not a target heard of them.
pub async fn events_about(pool: &AnyPool, user_id: &str) -> DbResult<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT kind, severity, message, details, created_at FROM events
         WHERE subject_kind = 'user' AND subject_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let details: String = col::<Option<String>>(r, "details")?.unwrap_or_default();
            Ok(json!({
                "kind": text(r, "kind")?, "severity": text(r, "severity")?,
                "message": text(r, "message")?,
                "details": serde_json::from_str::<Value>(&details).unwrap_or(Value::Null),
                "raised_at": ms(r, "created_at")?,
            }))
        })
        .collect()
}

/// The notifications delivered to the notification targets of the tenants in `scope` (the
/// person's tenant, and a partner's customers) that name their address: the target, the
/// event's kind and message (not the message of an event about another person), the
/// delivery's state (the targets' other recipients are left out). Other tenants' targets are
/// those tenants' records, even when they name the same address.
pub async fn notifications_to(
    pool: &AnyPool,
    user: &loop_api::User,
    scope: &TenantScope,
) -> DbResult<Vec<Value>> {
    let Some((filter, values)) = super::tenants::scope_filter(scope) else {
        return Ok(Vec::new());
    };
    let sql = format!(
        "SELECT n.id AS target_id, n.name AS target, e.kind, e.message, e.subject_kind,
                e.subject_id, d.state, d.created_at, d.finished_at, n.settings
         FROM deliveries d JOIN notify_targets n ON n.id = d.target_id
              JOIN tenants t ON t.id = n.tenant_id
              JOIN events e ON e.id = d.event_id
         WHERE n.kind = 'email' AND ({filter}) AND n.settings LIKE ${}
         ORDER BY d.created_at, d.id",
        values.len() + 1
    );
    // Only constants and parameter numbers in the text; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for v in &values {
        query = query.bind(v);
    }
    // A first cut in SQL (it may take too much, never too little); the exact test follows.
    let rows = query
        .bind(format!("%{}%", user.email))
        .fetch_all(pool)
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        let settings: String = col(r, "settings")?;
        let names_them = serde_json::from_str::<Value>(&settings)
            .ok()
            .and_then(|s| s["recipients"].as_array().cloned())
            .is_some_and(|to| to.iter().any(|a| a.as_str() == Some(user.email.as_str())));
        // An event about a colleague (their new device's browser, system and name) is
        // theirs: its kind is told, not its text.
        let about_another = col::<Option<String>>(r, "subject_kind")?.as_deref() == Some("user")
            && col::<Option<String>>(r, "subject_id")?.as_deref() != Some(user.id.as_str());
        if names_them {
            let message = if about_another {
                Value::Null
            } else {
                text(r, "message")?
            };
            out.push(json!({
                "target_id": text(r, "target_id")?, "target": text(r, "target")?,
                "event": text(r, "kind")?, "message": message,
                "state": text(r, "state")?, "queued_at": ms(r, "created_at")?,
                "finished_at": ms(r, "finished_at")?,
            }));
        }
    }
    Ok(out)
}

/// The audit events about the person: those they caused, those whose address and browser
/// are theirs (a failed sign-in to their account), those whose object is their account
/// (an admin changing it), and those about something of theirs that name them as its
/// `user_id` (a role granted or revoked, a session revoked, a request about their data
/// recorded). An address and browser are given only where they are the person's own: in
/// their personal record, or in a version-1 event they caused (which kept its actor's
/// address inside the event); another actor's never. Whoever else acted is named by kind
/// only.
pub async fn audit_events_about(pool: &AnyPool, user_id: &str) -> DbResult<Vec<Value>> {
    // Details are stored as compact JSON text: the pattern finds the candidates, and the
    // parsed details decide (`_` matches any character in LIKE).
    let rows = sqlx::query(
        "SELECT e.tenant_id, e.seq, e.at, e.version, e.actor_kind, e.actor_id, e.action,
                e.object_kind, e.object_id, e.outcome, e.details, e.ip AS v1_ip,
                p.user_id AS p_user_id, p.ip, p.user_agent
         FROM audit_events e LEFT JOIN audit_personal p
              ON p.tenant_id = e.tenant_id AND p.seq = e.seq
         WHERE e.actor_id = $1 OR p.user_id = $1
            OR (e.object_kind = 'user' AND e.object_id = $1)
            OR e.details LIKE $2
         ORDER BY e.at, e.tenant_id, e.seq",
    )
    .bind(user_id)
    .bind(format!("%\"user_id\":\"{user_id}\"%"))
    .fetch_all(pool)
    .await?;
    let named = |r: &AnyRow| -> DbResult<bool> {
        let details: String = col(r, "details")?;
        let v = serde_json::from_str::<Value>(&details).unwrap_or(Value::Null);
        Ok(v["user_id"] == user_id
            || col::<Option<String>>(r, "actor_id")?.as_deref() == Some(user_id)
            || col::<Option<String>>(r, "p_user_id")?.as_deref() == Some(user_id)
            || (col::<String>(r, "object_kind")? == "user"
                && col::<Option<String>>(r, "object_id")?.as_deref() == Some(user_id)))
    };
    let mut about = Vec::with_capacity(rows.len());
    for r in rows {
        if named(&r)? {
            about.push(r);
        }
    }
    about
        .iter()
        .map(|r| {
            let details: String = col(r, "details")?;
            let is_them = |name| -> DbResult<bool> {
                Ok(col::<Option<String>>(r, name)?.as_deref() == Some(user_id))
            };
            let (by_them, theirs) = (is_them("actor_id")?, is_them("p_user_id")?);
            let v1 = col::<i64>(r, "version")? == i64::from(loop_api::audit::V1);
            let (ip, user_agent) = if theirs {
                (text(r, "ip")?, text(r, "user_agent")?)
            } else if v1 && by_them {
                (text(r, "v1_ip")?, Value::Null)
            } else {
                (Value::Null, Value::Null)
            };
            let actor = if by_them {
                json!("you")
            } else {
                text(r, "actor_kind")?
            };
            Ok(json!({
                "tenant_id": text(r, "tenant_id")?, "seq": col::<i64>(r, "seq")?,
                "at": ms(r, "at")?, "actor": actor, "action": text(r, "action")?,
                "object_kind": text(r, "object_kind")?, "object_id": text(r, "object_id")?,
                "outcome": text(r, "outcome")?,
                "details": serde_json::from_str::<Value>(&details).unwrap_or(Value::Null),
                "ip": ip, "user_agent": user_agent,
            }))
        })
        .collect()
}

/// The privacy policy versions the person acknowledged.
pub async fn acknowledgements_of(pool: &AnyPool, user_id: &str) -> DbResult<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT version, at FROM policy_acknowledgements WHERE user_id = $1 ORDER BY at",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok(json!({ "version": text(r, "version")?, "at": ms(r, "at")? })))
        .collect()
}

/// The data-subject requests recorded about the person.
pub async fn requests_about(pool: &AnyPool, user_id: &str) -> DbResult<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT id, kind, details, state, received_at, due_at, closed_at, outcome, action
         FROM subject_requests WHERE user_id = $1 ORDER BY received_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(json!({
                "id": text(r, "id")?, "kind": text(r, "kind")?, "details": text(r, "details")?,
                "state": text(r, "state")?, "received_at": ms(r, "received_at")?,
                "due_at": ms(r, "due_at")?, "closed_at": ms(r, "closed_at")?,
                "outcome": text(r, "outcome")?, "action": text(r, "action")?,
            }))
        })
        .collect()
}
