//! The audit log: append (inside the caller's transaction) and query.

use loop_api::{ActorKind, AuditEvent, AuditHead, Outcome};
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col, col_value, time};

/// An event to record. People and objects appear by ID only; what identifies a person
/// beyond that goes in [`Personal`], outside the hashed part.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub tenant_id: String,
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    pub action: &'static str,
    pub object_kind: &'static str,
    pub object_id: Option<String>,
    pub outcome: Outcome,
    pub personal: Personal,
    pub details: serde_json::Value,
}

/// An event's personal data: stored in `audit_personal`, committed to by a salted hash.
#[derive(Clone, Debug, Default)]
pub struct Personal {
    /// Whose data this is, so that erasing the user finds it.
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Personal {
    fn is_empty(&self) -> bool {
        self.ip.is_none() && self.user_agent.is_none()
    }
}

/// Appends `e` to its tenant's chain (format [`loop_api::audit::CURRENT`]). An event with a
/// person's address takes the person's row first (see below); then the tenant's chain head
/// is updated, which serializes concurrent appends for the tenant before anything is read.
pub async fn append(tx: &mut Tx, mut e: NewEvent, now_ms: i64) -> DbResult<AuditEvent> {
    // Personal data of a person erased meanwhile (a request of theirs under way as the
    // erasure committed) is not written. The person's row is held first, as the erasure
    // holds it first, so the two wait for each other in one order: an event committed
    // before the erasure is erased with the rest.
    if let (false, Some(id)) = (e.personal.is_empty(), e.personal.user_id.clone())
        && !super::users::hold_unerased(tx, &id, &super::users::pseudonym(&id)).await?
    {
        e.personal.ip = None;
        e.personal.user_agent = None;
    }
    let head = sqlx::query(
        "UPDATE audit_heads SET seq = seq + 1 WHERE tenant_id = $1 RETURNING seq, hash",
    )
    .bind(&e.tenant_id)
    .fetch_optional(&mut **tx)
    .await?;
    let (seq, prev_hash) = match head {
        Some(row) => (col::<i64>(&row, "seq")?, col::<String>(&row, "hash")?),
        None => {
            sqlx::query("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 1, '')")
                .bind(&e.tenant_id)
                .execute(&mut **tx)
                .await?;
            (1, String::new())
        }
    };
    let salt = (!e.personal.is_empty()).then(|| {
        use rand::Rng as _;
        let mut s = [0u8; 32];
        rand::rng().fill_bytes(&mut s);
        s
    });
    let personal_hash = salt
        .map(|s| {
            loop_api::audit::personal_hash(
                &s,
                e.personal.ip.as_deref(),
                e.personal.user_agent.as_deref(),
            )
        })
        .unwrap_or_default();
    let mut event = AuditEvent {
        version: loop_api::audit::CURRENT,
        seq: seq as u64,
        tenant_id: e.tenant_id,
        at: time(now_ms),
        actor_kind: e.actor_kind,
        actor_id: e.actor_id,
        action: e.action.into(),
        object_kind: e.object_kind.into(),
        object_id: e.object_id,
        outcome: e.outcome,
        ip: e.personal.ip,
        user_agent: e.personal.user_agent,
        details: e.details,
        personal_hash,
        personal_salt: salt.map(hex::encode),
        prev_hash,
        hash: String::new(),
    };
    event.hash = loop_api::audit::chain_hash(&event).unwrap_or_default();
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, seq, version, at, actor_kind, actor_id, action,
            object_kind, object_id, outcome, details, personal_hash, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&event.tenant_id)
    .bind(seq)
    .bind(i64::from(event.version))
    .bind(now_ms)
    .bind(event.actor_kind.as_str())
    .bind(&event.actor_id)
    .bind(&event.action)
    .bind(&event.object_kind)
    .bind(&event.object_id)
    .bind(event.outcome.as_str())
    .bind(event.details.to_string())
    .bind(&event.personal_hash)
    .bind(&event.prev_hash)
    .bind(&event.hash)
    .execute(&mut **tx)
    .await?;
    if let Some(salt) = &event.personal_salt {
        sqlx::query(
            "INSERT INTO audit_personal (tenant_id, seq, user_id, salt, ip, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&event.tenant_id)
        .bind(seq)
        .bind(&e.personal.user_id)
        .bind(salt)
        .bind(&event.ip)
        .bind(&event.user_agent)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("UPDATE audit_heads SET hash = $1 WHERE tenant_id = $2")
        .bind(&event.hash)
        .bind(&event.tenant_id)
        .execute(&mut **tx)
        .await?;
    super::notify::raise_for_audit(tx, &event, now_ms).await?;
    Ok(event)
}

/// Erases the personal data (IP, user agent and their salt) that the audit log holds about
/// `user_id`, in version-2 events; returns how many events lost theirs. The events and
/// their chains stay: their hashes cover only the salted commitment. Version-1 events
/// hold their IP inside the hash and keep it.
pub async fn erase_personal(tx: &mut Tx, user_id: &str) -> DbResult<u64> {
    let done = sqlx::query("DELETE FROM audit_personal WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// The addresses the person acted from, by the audit log's personal data of `user_id`
/// (their sign-up, sign-ins): not those of failures, such as someone else's wrong guesses at
/// their password, nor of requests for a reset of it, which anyone may send.
pub async fn ips_of_user(tx: &mut Tx, user_id: &str) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT p.ip FROM audit_personal p JOIN audit_events e
              ON e.tenant_id = p.tenant_id AND e.seq = p.seq
         WHERE p.user_id = $1 AND p.ip IS NOT NULL AND e.outcome = 'success'
           AND e.action <> 'user.password_reset_request'",
    )
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .iter()
        .map(|r| col(r, "ip"))
        .collect::<Result<_, _>>()?)
}

/// Gives the personal data (IP, user agent) of tenant `tenant_id`'s events about object
/// `kind` `id` that name no person yet to `user_id`, so that erasing that user finds it: a
/// sign-up's request, once the sign-up made the account. Answers how many.
pub async fn attribute_personal(
    tx: &mut Tx,
    tenant_id: &str,
    kind: &str,
    id: &str,
    user_id: &str,
) -> DbResult<u64> {
    let done = sqlx::query(
        "UPDATE audit_personal SET user_id = $1
         WHERE tenant_id = $2 AND user_id IS NULL AND seq IN (
             SELECT seq FROM audit_events
             WHERE tenant_id = $2 AND object_kind = $3 AND object_id = $4)",
    )
    .bind(user_id)
    .bind(tenant_id)
    .bind(kind)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Erases the personal data (IP, user agent) of the events about object `kind` `id` that
/// name no person (a sign-up that made no account). Answers how many.
pub async fn erase_personal_of(tx: &mut Tx, kind: &str, id: &str) -> DbResult<u64> {
    let done = sqlx::query(
        "DELETE FROM audit_personal WHERE user_id IS NULL AND EXISTS (
             SELECT 1 FROM audit_events e
             WHERE e.tenant_id = audit_personal.tenant_id AND e.seq = audit_personal.seq
               AND e.object_kind = $1 AND e.object_id = $2)",
    )
    .bind(kind)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Appends `event` inside `tx` and commits: the change and its record land together or not
/// at all.
pub async fn commit_audited(mut tx: Tx, event: NewEvent, now: i64) -> DbResult<()> {
    append(&mut tx, event, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes the personal data (IP address, browser) of events older than `before` (ms): the
/// retention period ends; the events and their chain stay. Returns how many went.
pub async fn clear_personal_before(pool: &sqlx::AnyPool, before: i64) -> DbResult<u64> {
    let done = sqlx::query(
        "DELETE FROM audit_personal WHERE EXISTS (
             SELECT 1 FROM audit_events e
             WHERE e.tenant_id = audit_personal.tenant_id AND e.seq = audit_personal.seq
               AND e.at < $1)",
    )
    .bind(before)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Filters for [`query`]. Tenants are given as a list (the caller's visible subtree).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub tenant_ids: Vec<String>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub object_id: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Events with `seq` greater than this (per tenant; with one tenant, a cursor).
    pub after_seq: Option<i64>,
    /// Events with `seq` less than this (a cursor going back, with `newest_first`).
    pub before_seq: Option<i64>,
    /// The newest events first (per tenant), as a reader of the log pages back from now.
    pub newest_first: bool,
    pub limit: i64,
}

fn event(row: &AnyRow) -> DbResult<AuditEvent> {
    let details: String = col(row, "details")?;
    let version = col::<i64>(row, "version")? as u32;
    // Version 1 kept the IP in the event itself; later ones in audit_personal.
    let ip = if version == loop_api::audit::V1 {
        col(row, "ip")?
    } else {
        col(row, "p_ip")?
    };
    Ok(AuditEvent {
        version,
        seq: col::<i64>(row, "seq")? as u64,
        tenant_id: col(row, "tenant_id")?,
        at: time(col(row, "at")?),
        actor_kind: col_value(row, "actor_kind")?,
        actor_id: col(row, "actor_id")?,
        action: col(row, "action")?,
        object_kind: col(row, "object_kind")?,
        object_id: col(row, "object_id")?,
        outcome: col_value(row, "outcome")?,
        ip,
        user_agent: col(row, "p_user_agent")?,
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
        personal_hash: col(row, "personal_hash")?,
        personal_salt: col(row, "p_salt")?,
        prev_hash: col(row, "prev_hash")?,
        hash: col(row, "hash")?,
    })
}

/// When the tenant's first event of `action` happened.
pub async fn first_of(
    pool: &sqlx::AnyPool,
    tenant_id: &str,
    action: &str,
) -> DbResult<Option<i64>> {
    let row =
        sqlx::query("SELECT MIN(at) AS at FROM audit_events WHERE tenant_id = $1 AND action = $2")
            .bind(tenant_id)
            .bind(action)
            .fetch_one(pool)
            .await?;
    Ok(super::col(&row, "at")?)
}

/// Events matching `f`, ordered by tenant and sequence (the order the chain verifies in).
pub async fn query(pool: &sqlx::AnyPool, f: &Filter) -> DbResult<Vec<AuditEvent>> {
    if f.tenant_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = String::from(
        "SELECT e.*, p.ip AS p_ip, p.user_agent AS p_user_agent, p.salt AS p_salt
         FROM audit_events e
         LEFT JOIN audit_personal p ON p.tenant_id = e.tenant_id AND p.seq = e.seq
         WHERE e.tenant_id IN (",
    );
    let mut n = 0;
    for _ in &f.tenant_ids {
        n += 1;
        if n > 1 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("${n}"));
    }
    sql.push(')');
    let mut push = |clause: &str| {
        n += 1;
        sql.push_str(&format!(" AND {clause} ${n}"));
    };
    if f.action.is_some() {
        push("e.action =");
    }
    if f.actor_id.is_some() {
        push("e.actor_id =");
    }
    if f.object_id.is_some() {
        push("e.object_id =");
    }
    if f.since_ms.is_some() {
        push("e.at >=");
    }
    if f.until_ms.is_some() {
        push("e.at <");
    }
    if f.after_seq.is_some() {
        push("e.seq >");
    }
    if f.before_seq.is_some() {
        push("e.seq <");
    }
    n += 1;
    let order = if f.newest_first { "DESC" } else { "ASC" };
    sql.push_str(&format!(" ORDER BY e.tenant_id, e.seq {order} LIMIT ${n}"));
    // Built only from fixed clauses and numbered placeholders; values are bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for t in &f.tenant_ids {
        q = q.bind(t);
    }
    for v in [&f.action, &f.actor_id, &f.object_id].into_iter().flatten() {
        q = q.bind(v);
    }
    for v in [f.since_ms, f.until_ms, f.after_seq, f.before_seq]
        .into_iter()
        .flatten()
    {
        q = q.bind(v);
    }
    q = q.bind(f.limit);
    let rows = q.fetch_all(pool).await?;
    rows.iter().map(event).collect()
}

/// The chain heads of the given tenants (tenants without events have none).
pub async fn heads(
    pool: &sqlx::AnyPool,
    scope: &crate::domain::TenantScope,
    page: &super::page::Page,
) -> DbResult<super::page::Paged<AuditHead>> {
    super::tenants::in_scope(
        pool,
        "SELECT h.tenant_id, h.seq, h.hash FROM audit_heads h JOIN tenants t ON t.id = h.tenant_id",
        scope,
        &[super::page::asc("t.path")],
        Some(page),
    )
    .await?
    .map(|r| {
        Ok(AuditHead {
            tenant_id: col(&r, "tenant_id")?,
            seq: col::<i64>(&r, "seq")?.max(0) as u64,
            hash: col(&r, "hash")?,
        })
    })
}
