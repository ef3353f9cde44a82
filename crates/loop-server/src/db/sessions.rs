//! Sign-in sessions, from creation to their end.

use loop_api::Session;
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Key, Page, Paged, asc, desc, query_page};
use super::{DbResult, Tx, col, opt_time, time};

#[derive(Clone, Debug)]
pub struct SessionRow {
    pub session: Session,
    pub tenant_id: String,
    pub idle_ms: i64,
}

fn session(row: &AnyRow) -> DbResult<SessionRow> {
    Ok(SessionRow {
        session: Session {
            id: col(row, "id")?,
            user_id: col(row, "user_id")?,
            created_at: time(col(row, "created_at")?),
            last_seen_at: time(col(row, "last_seen_at")?),
            expires_at: time(col(row, "expires_at")?),
            ended_at: opt_time(col(row, "ended_at")?),
            ip: col(row, "ip")?,
            user_agent: col(row, "user_agent")?,
            browser: col(row, "browser")?,
            os: col(row, "os")?,
            device_label: col(row, "device_label")?,
            remember: col::<i64>(row, "remember")? != 0,
            current: false,
        },
        tenant_id: col(row, "tenant_id")?,
        idle_ms: col::<i64>(row, "idle_secs")? * 1000,
    })
}

pub struct NewSession<'a> {
    pub id: &'a str,
    pub token_hash: &'a str,
    pub user_id: &'a str,
    pub tenant_id: &'a str,
    pub expires_at: i64,
    pub idle_secs: i64,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub browser: Option<&'a str>,
    pub os: Option<&'a str>,
    pub device_label: Option<&'a str>,
    pub remember: bool,
}

pub async fn insert_session(tx: &mut Tx, s: &NewSession<'_>, now: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO sessions (id, token_hash, user_id, tenant_id, created_at, last_seen_at,
            expires_at, idle_secs, ip, user_agent, browser, os, device_label, remember)
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(s.id)
    .bind(s.token_hash)
    .bind(s.user_id)
    .bind(s.tenant_id)
    .bind(now)
    .bind(s.expires_at)
    .bind(s.idle_secs)
    .bind(s.ip)
    .bind(s.user_agent)
    .bind(s.browser)
    .bind(s.os)
    .bind(s.device_label)
    .bind(s.remember as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn session_by_hash(pool: &AnyPool, hash: &str) -> DbResult<Option<SessionRow>> {
    let row = sqlx::query("SELECT * FROM sessions WHERE token_hash = $1")
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(session).transpose()
}

pub async fn session_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<SessionRow>> {
    let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(session).transpose()
}

pub async fn touch_session(pool: &AnyPool, id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends a session; false when it had already ended.
pub async fn end_session(tx: &mut Tx, id: &str, reason: &str, now: i64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Ends every live session of a user except `keep`, and their sign-ins still waiting for
/// an authenticator code; returns how many sessions ended.
pub async fn end_user_sessions(
    tx: &mut Tx,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
    now: i64,
) -> DbResult<u64> {
    // A sign-in waiting for its authenticator code would open a session after this.
    sqlx::query("DELETE FROM signin_challenges WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    let r = sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = $2
         WHERE user_id = $3 AND ended_at IS NULL AND id <> $4",
    )
    .bind(now)
    .bind(reason)
    .bind(user_id)
    .bind(keep.unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected())
}

/// A page of the sessions of one user or of one tenant's users, newest first.
pub async fn sessions_of(
    pool: &AnyPool,
    whose: Whose<'_>,
    page: &Page,
) -> DbResult<Paged<SessionRow>> {
    let (filter, id) = match whose {
        Whose::User(id) => ("user_id = $1", id),
        Whose::Tenant(id) => ("tenant_id = $1", id),
    };
    query_page(
        pool,
        "SELECT * FROM sessions",
        filter,
        vec![Key::Text(id.to_string())],
        &[desc("created_at"), asc("id")],
        Some(page),
    )
    .await?
    .map(|r| session(&r))
}

/// Whose sessions a listing shows.
#[derive(Clone, Copy, Debug)]
pub enum Whose<'a> {
    User(&'a str),
    Tenant(&'a str),
}

/// Whether an earlier session of the same user came from the same browser, system and
/// device label as session `id`; `None` when the user has no earlier session at all.
pub async fn known_device(tx: &mut Tx, id: &str) -> DbResult<Option<bool>> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN COALESCE(s.browser, '') = COALESCE(c.browser, '')
              AND COALESCE(s.os, '') = COALESCE(c.os, '')
              AND COALESCE(s.device_label, '') = COALESCE(c.device_label, '')
            THEN 1 ELSE 0 END), 0) AS same
         FROM sessions s JOIN sessions c ON c.user_id = s.user_id
         WHERE c.id = $1 AND s.id <> c.id",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    let n: i64 = col(&row, "n")?;
    let same: i64 = col(&row, "same")?;
    Ok((n > 0).then_some(same > 0))
}

/// The addresses a user's sessions came from.
pub async fn ips_of_user(tx: &mut Tx, user_id: &str) -> DbResult<Vec<String>> {
    let rows =
        sqlx::query("SELECT DISTINCT ip FROM sessions WHERE user_id = $1 AND ip IS NOT NULL")
            .bind(user_id)
            .fetch_all(&mut **tx)
            .await?;
    rows.iter().map(|r| Ok(col(r, "ip")?)).collect()
}

/// Deletes every session record of a user (times, addresses, browsers); answers how many.
pub async fn delete_of_user(tx: &mut Tx, user_id: &str) -> DbResult<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// Removes the IP address, browser and device of every session that ended (was ended, or
/// expired) at or before `cutoff`; answers how many lost them. Newer sessions keep theirs.
pub async fn clear_ended_personal(pool: &AnyPool, cutoff: i64) -> DbResult<u64> {
    let done = sqlx::query(
        "UPDATE sessions SET ip = NULL, user_agent = NULL, browser = NULL, os = NULL,
             device_label = NULL
         WHERE (ip IS NOT NULL OR user_agent IS NOT NULL OR device_label IS NOT NULL)
           AND CASE WHEN ended_at IS NOT NULL THEN ended_at
                    WHEN expires_at < last_seen_at + idle_secs * 1000 THEN expires_at
                    ELSE last_seen_at + idle_secs * 1000 END <= $1",
    )
    .bind(cutoff)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
