//! Notification targets, events and deliveries.
//!
//! An event is raised in the transaction of the change it reports ([`raise`]) and fans out
//! there and then into one delivery per target that hears it, so an event is never raised
//! without its deliveries nor delivered without being recorded. Any number of nodes send
//! deliveries: a node takes one by a conditional update that sets a short claim, as the
//! mail outbox does.

use loop_api::{
    Delivery, DeliveryState, EmailSettings, Event, EventKind, NotifyTarget, TargetKind,
    WebhookSettings,
};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Page, Paged, asc, desc};
use super::tenants::in_scope_where;
use super::{DbResult, Tx, col, col_json, col_value, opt_time, time};
use crate::domain::TenantScope;

/// A target with what only the server sees.
#[derive(Clone)]
pub struct TargetRow {
    pub target: NotifyTarget,
    pub secret_wrapped: Option<String>,
    pub summary_next_at: Option<i64>,
}

pub(super) fn target(row: &AnyRow) -> DbResult<TargetRow> {
    let kind: TargetKind = col_value(row, "kind")?;
    let (email, webhook) = match kind {
        TargetKind::Email => (Some(col_json::<EmailSettings>(row, "settings")?), None),
        TargetKind::Webhook => (None, Some(col_json::<WebhookSettings>(row, "settings")?)),
    };
    Ok(TargetRow {
        target: NotifyTarget {
            id: col(row, "id")?,
            tenant_id: col(row, "tenant_id")?,
            name: col(row, "name")?,
            kind,
            enabled: col::<i64>(row, "enabled")? != 0,
            min_severity: col_value(row, "min_severity")?,
            kinds: col_json(row, "kinds")?,
            include_children: col::<i64>(row, "include_children")? != 0,
            summary: col_value(row, "summary")?,
            email,
            webhook,
            created_at: time(col(row, "created_at")?),
            updated_at: time(col(row, "updated_at")?),
        },
        secret_wrapped: col(row, "secret_wrapped")?,
        summary_next_at: col(row, "summary_next_at")?,
    })
}

fn settings(t: &NotifyTarget) -> String {
    match (&t.email, &t.webhook) {
        (Some(e), _) => serde_json::to_string(e),
        (_, Some(w)) => serde_json::to_string(w),
        (None, None) => Ok("{}".into()),
    }
    .expect("settings serialize")
}

fn json_kinds(kinds: &[EventKind]) -> String {
    serde_json::to_string(kinds).expect("kinds serialize")
}

pub async fn target_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<TargetRow>> {
    let row = sqlx::query("SELECT * FROM notify_targets WHERE id = $1 AND deleted_at IS NULL")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(target).transpose()
}

/// The tenant of target `id`, deleted or not (its delivery log outlives it).
pub async fn target_tenant(pool: &AnyPool, id: &str) -> DbResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT tenant_id FROM notify_targets WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The targets of the tenants in `scope`, by tenant and name.
pub async fn targets_in(
    pool: &AnyPool,
    scope: &TenantScope,
    page: Option<&Page>,
) -> DbResult<Paged<NotifyTarget>> {
    let rows = in_scope_where(
        pool,
        "SELECT n.* FROM notify_targets n JOIN tenants t ON t.id = n.tenant_id
           AND n.deleted_at IS NULL",
        scope,
        &[],
        &[asc("t.path"), asc("n.name"), asc("n.id")],
        page,
    )
    .await?;
    rows.map(|r| target(&r).map(|t| t.target))
}

/// How many notification targets the tenant has, once the tenant's row is held (a write
/// that changes nothing), so targets made at once are counted one after another.
pub async fn targets_of_tenant(tx: &mut Tx, tenant_id: &str) -> DbResult<u64> {
    // (An erased tenant has no caller who may make targets; its answer does not matter.)
    super::tenants::hold_live(tx, tenant_id).await?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM notify_targets WHERE tenant_id = $1 AND deleted_at IS NULL",
    )
    .bind(tenant_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(col::<i64>(&row, "n")?.max(0) as u64)
}

pub async fn insert_target(tx: &mut Tx, t: &TargetRow, now: i64) -> DbResult<()> {
    let n = &t.target;
    sqlx::query(
        "INSERT INTO notify_targets (id, tenant_id, name, kind, enabled, min_severity, kinds,
            include_children, summary, summary_next_at, settings, secret_wrapped, created_at,
            updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(&n.id)
    .bind(&n.tenant_id)
    .bind(&n.name)
    .bind(n.kind.as_str())
    .bind(n.enabled as i64)
    .bind(n.min_severity.as_str())
    .bind(json_kinds(&n.kinds))
    .bind(n.include_children as i64)
    .bind(n.summary.as_str())
    .bind(t.summary_next_at)
    .bind(settings(n))
    .bind(&t.secret_wrapped)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn update_target(tx: &mut Tx, t: &TargetRow, now: i64) -> DbResult<()> {
    let n = &t.target;
    sqlx::query(
        "UPDATE notify_targets SET name = $1, enabled = $2, min_severity = $3, kinds = $4,
            include_children = $5, summary = $6, summary_next_at = $7, settings = $8,
            updated_at = $9
         WHERE id = $10 AND deleted_at IS NULL",
    )
    .bind(&n.name)
    .bind(n.enabled as i64)
    .bind(n.min_severity.as_str())
    .bind(json_kinds(&n.kinds))
    .bind(n.include_children as i64)
    .bind(n.summary.as_str())
    .bind(t.summary_next_at)
    .bind(settings(n))
    .bind(now)
    .bind(&n.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes a target; what was still queued for it ends as failed. Its delivery log stays
/// (with the target's row, marked deleted) until the log is trimmed.
pub async fn delete_target(tx: &mut Tx, id: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE notify_targets SET deleted_at = $1, secret_wrapped = NULL, enabled = 0
         WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE deliveries SET state = 'failed', finished_at = $1, claimed_until = NULL,
            last_error = 'the target was deleted'
         WHERE target_id = $2 AND state = 'queued'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes every notification target of an erased tenant with what it held: its name,
/// recipients or URL and signing key. What was still queued for them ends as failed.
/// Returns how many targets were removed.
pub async fn erase_targets_of(tx: &mut Tx, tenant_id: &str, now: i64) -> DbResult<u64> {
    sqlx::query(
        "UPDATE deliveries SET state = 'failed', finished_at = $1, claimed_until = NULL,
            last_error = 'the tenant was erased'
         WHERE state = 'queued'
           AND target_id IN (SELECT id FROM notify_targets WHERE tenant_id = $2)",
    )
    .bind(now)
    .bind(tenant_id)
    .execute(&mut **tx)
    .await?;
    let r = sqlx::query(
        "UPDATE notify_targets SET name = 'erased', enabled = 0, secret_wrapped = NULL,
            settings = CASE kind WHEN 'email' THEN '{\"recipients\":[]}'
                ELSE '{\"url\":\"\"}' END,
            deleted_at = COALESCE(deleted_at, $1), updated_at = $1
         WHERE tenant_id = $2",
    )
    .bind(now)
    .bind(tenant_id)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected())
}

/// The targets whose summary report is due, oldest first.
pub async fn summaries_due(pool: &AnyPool, now: i64, limit: u32) -> DbResult<Vec<TargetRow>> {
    let rows = sqlx::query(
        "SELECT * FROM notify_targets WHERE deleted_at IS NULL AND enabled = 1
           AND summary <> 'off' AND summary_next_at IS NOT NULL AND summary_next_at <= $1
         ORDER BY summary_next_at LIMIT $2",
    )
    .bind(now)
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    rows.iter().map(target).collect()
}

/// An event about to be raised.
pub struct NewEvent<'a> {
    pub tenant_id: &'a str,
    pub kind: EventKind,
    pub subject: Option<(&'a str, &'a str)>,
    pub message: String,
    pub details: serde_json::Value,
    /// Raised at most once per key (a job's end, an item's missed run, ...).
    pub dedupe_key: Option<String>,
}

/// How long the key of a lasting state's event is remembered ([`raise`]): a spell longer
/// than this is raised again, once a year.
pub const SPELL_MEMORY_MS: i64 = 366 * 86_400_000;

/// Whether events of `kind` report a state that lasts until something changes (its key
/// names the spell), rather than something that happened.
fn lasting(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::ItemMissed | EventKind::DeviceOffline | EventKind::ReplicaBehind
    )
}

/// Records `e` and queues a delivery to every target that hears it: or, for the kinds that
/// are addressed ([`EventKind::addressed`]), to `to` only. `None` when an event with the
/// same dedupe key was raised before (nothing is queued then). A lasting state's key is
/// also remembered apart from its event, for [`SPELL_MEMORY_MS`], so a spell is raised once
/// even after its event was trimmed (`notify.keep_days`).
pub async fn raise(
    tx: &mut Tx,
    e: NewEvent<'_>,
    to: Option<&str>,
    now: i64,
) -> DbResult<Option<String>> {
    if let Some(key) = e.dedupe_key.as_deref().filter(|_| lasting(e.kind)) {
        let first = sqlx::query(
            "INSERT INTO raised_spells (key, raised_at) VALUES ($1, $2)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if first.rows_affected() != 1 {
            return Ok(None);
        }
    }
    let id = crate::domain::new_id(loop_api::EventId::PREFIX);
    let inserted = sqlx::query(
        "INSERT INTO events (id, tenant_id, kind, severity, subject_kind, subject_id, message,
            details, dedupe_key, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(&id)
    .bind(e.tenant_id)
    .bind(e.kind.as_str())
    .bind(e.kind.severity().as_str())
    .bind(e.subject.map(|s| s.0))
    .bind(e.subject.map(|s| s.1))
    .bind(&e.message)
    .bind(e.details.to_string())
    .bind(&e.dedupe_key)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() != 1 {
        return Ok(None);
    }
    let targets: Vec<String> = if e.kind.addressed() {
        to.map(|t| vec![t.to_string()]).unwrap_or_default()
    } else {
        listeners(tx, e.tenant_id, e.kind).await?
    };
    for target_id in targets {
        sqlx::query(
            "INSERT INTO deliveries (id, target_id, event_id, state, attempts, created_at,
                next_attempt_at)
             VALUES ($1, $2, $3, 'queued', 0, $4, $4)",
        )
        .bind(crate::domain::new_id(loop_api::DeliveryId::PREFIX))
        .bind(&target_id)
        .bind(&id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Some(id))
}

/// The enabled targets that hear an event of `kind` raised for `tenant_id`: its own, and
/// those of the tenants above it that include their children.
async fn listeners(tx: &mut Tx, tenant_id: &str, kind: EventKind) -> DbResult<Vec<String>> {
    let row = sqlx::query("SELECT path FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let path: String = col(&row, "path")?;
    let mut out = Vec::new();
    for owner in path.split('/').filter(|s| !s.is_empty()) {
        let rows = sqlx::query(
            "SELECT * FROM notify_targets WHERE tenant_id = $1 AND deleted_at IS NULL
               AND enabled = 1",
        )
        .bind(owner)
        .fetch_all(&mut **tx)
        .await?;
        for r in &rows {
            let t = target(r)?.target;
            let hears = (t.tenant_id == tenant_id || t.include_children)
                && kind.severity() >= t.min_severity
                && (t.kinds.is_empty() || t.kinds.contains(&kind));
            if hears {
                out.push(t.id);
            }
        }
    }
    Ok(out)
}

fn event(row: &AnyRow) -> DbResult<Event> {
    let details: String = col(row, "details")?;
    Ok(Event {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        kind: col_value(row, "kind")?,
        severity: col_value(row, "severity")?,
        subject_kind: col(row, "subject_kind")?,
        subject_id: col(row, "subject_id")?,
        message: col(row, "message")?,
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
        created_at: time(col(row, "created_at")?),
    })
}

pub async fn event_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<Event>> {
    let row = sqlx::query("SELECT * FROM events WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(event).transpose()
}

/// The newest events of the tenants in `scope`, narrowed to one kind when given.
pub async fn events_in(
    pool: &AnyPool,
    scope: &TenantScope,
    kind: Option<EventKind>,
    page: &Page,
) -> DbResult<Paged<Event>> {
    let also: Vec<(&'static str, &str)> = kind.iter().map(|k| ("e.kind", k.as_str())).collect();
    let rows = in_scope_where(
        pool,
        "SELECT e.* FROM events e JOIN tenants t ON t.id = e.tenant_id",
        scope,
        &also,
        &[desc("e.created_at"), asc("e.id")],
        Some(page),
    )
    .await?;
    rows.map(|r| event(&r))
}

fn delivery(row: &AnyRow) -> DbResult<Delivery> {
    let state: DeliveryState = col_value(row, "state")?;
    Ok(Delivery {
        id: col(row, "id")?,
        target_id: col(row, "target_id")?,
        event_id: col(row, "event_id")?,
        event_kind: col_value(row, "event_kind")?,
        state,
        attempts: col::<i64>(row, "attempts")?.clamp(0, u32::MAX as i64) as u32,
        last_error: col(row, "last_error")?,
        response_status: col::<Option<i64>>(row, "response_status")?
            .and_then(|s| u16::try_from(s).ok()),
        created_at: time(col(row, "created_at")?),
        next_attempt_at: (state == DeliveryState::Queued)
            .then(|| col(row, "next_attempt_at").map(time))
            .transpose()?,
        finished_at: opt_time(col(row, "finished_at")?),
    })
}

const DELIVERY_SELECT: &str = "SELECT d.*, e.kind AS event_kind FROM deliveries d
    JOIN events e ON e.id = d.event_id";

/// The delivery of event `event_id` to target `target_id`.
pub async fn delivery_of(
    pool: &AnyPool,
    event_id: &str,
    target_id: &str,
) -> DbResult<Option<Delivery>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{DELIVERY_SELECT} WHERE d.event_id = $1 AND d.target_id = $2"
    )))
    .bind(event_id)
    .bind(target_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(delivery).transpose()
}

/// The newest deliveries to the targets of the tenants in `scope`.
pub async fn deliveries_in(
    pool: &AnyPool,
    scope: &TenantScope,
    target_id: Option<&str>,
    page: &Page,
) -> DbResult<Paged<Delivery>> {
    let also: Vec<(&'static str, &str)> =
        target_id.map(|t| ("d.target_id", t)).into_iter().collect();
    let rows = in_scope_where(
        pool,
        "SELECT d.*, e.kind AS event_kind FROM deliveries d JOIN events e ON e.id = d.event_id
           JOIN notify_targets n ON n.id = d.target_id JOIN tenants t ON t.id = n.tenant_id",
        scope,
        &also,
        &[desc("d.created_at"), asc("d.id")],
        Some(page),
    )
    .await?;
    rows.map(|r| delivery(&r))
}

/// Raises the event an audited action calls for, in the action's transaction: a token
/// created, sign-ins throttled, an authenticator code refused. The event names the account
/// (the audit log keeps the address and browser, which erasure can reach).
pub async fn raise_for_audit(tx: &mut Tx, a: &loop_api::AuditEvent, now: i64) -> DbResult<()> {
    let reason = a.details.get("reason").and_then(|r| r.as_str());
    let ok = a.outcome == loop_api::Outcome::Success;
    let (kind, message) = match (a.action.as_str(), reason) {
        ("token.create", _) if ok => (EventKind::TokenCreated, "a token was created".to_string()),
        (_, Some("throttled")) if !ok => (
            EventKind::SecurityThrottled,
            format!("{} attempts were throttled", a.action),
        ),
        (_, Some("wrong_totp" | "reused_totp")) if !ok => (
            EventKind::SecurityTotpFailed,
            "an authenticator code was refused".to_string(),
        ),
        _ => return Ok(()),
    };
    let subject = a
        .object_id
        .as_deref()
        .map(|id| (a.object_kind.as_str(), id));
    // Throttled attempts need no sign-in: anyone can make them, with a new address each
    // time. One event per account and hour tells the targets (and one for all the addresses
    // with no account, so those cannot drown, or mute, an attack on a real account); the
    // audit log has them all.
    if kind == EventKind::SecurityThrottled {
        let recent = sqlx::query(
            "SELECT 1 FROM events WHERE tenant_id = $1 AND kind = $2 AND created_at > $3
               AND COALESCE(subject_id, '') = $4
             LIMIT 1",
        )
        .bind(&a.tenant_id)
        .bind(kind.as_str())
        .bind(now - 3_600_000)
        .bind(a.object_id.as_deref().unwrap_or(""))
        .fetch_optional(&mut **tx)
        .await?;
        if recent.is_some() {
            return Ok(());
        }
    }
    raise(
        tx,
        NewEvent {
            tenant_id: &a.tenant_id,
            kind,
            subject,
            message,
            details: serde_json::json!({
                "action": a.action, "actor_kind": a.actor_kind, "actor_id": a.actor_id,
                "object_kind": a.object_kind, "object_id": a.object_id, "reason": reason,
                "audit_seq": a.seq,
            }),
            dedupe_key: None,
        },
        None,
        now,
    )
    .await?;
    Ok(())
}

/// Deletes events (and their deliveries) older than `before` that nothing waits on, and
/// the keys of lasting states raised more than [`SPELL_MEMORY_MS`] (or `before`) ago.
pub async fn drop_old(pool: &AnyPool, before: i64, now: i64) -> DbResult<u64> {
    sqlx::query("DELETE FROM raised_spells WHERE raised_at < $1")
        .bind(before.min(now - SPELL_MEMORY_MS))
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM deliveries WHERE created_at < $1 AND state <> 'queued'")
        .bind(before)
        .execute(pool)
        .await?;
    let r = sqlx::query(
        "DELETE FROM events WHERE created_at < $1
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
    )
    .bind(before)
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}
