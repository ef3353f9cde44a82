//! Sign-in failures over a sliding window, per account and per client address, kept in the
//! database so that every node counts the same attempts.
//!
//! An attempt first upserts the row of each of its keys in `signin_keys` (account, then
//! address: one order everywhere, so two attempts never wait on each other in a cycle). That
//! row lock (PostgreSQL) or the write lock (SQLite) serializes the attempts of one key until
//! the transaction ends, so a burst of guesses spread over several nodes is counted one by
//! one and cannot slip under the limit together.

use sqlx::AnyPool;

use super::{DbResult, col};

/// What [`begin`] found.
pub enum Begun {
    /// Counted as a failure under this attempt ID until taken back.
    Counted(String),
    /// Over a limit: `wait_ms` until the oldest failure that holds it leaves the window;
    /// `audit` is true when no throttled attempt of this account and address was audited
    /// in the last minute.
    Throttled { wait_ms: i64, audit: bool },
}

/// The limits an attempt is judged by.
pub struct Limits {
    pub window_ms: i64,
    pub max_account: i64,
    pub max_ip: i64,
}

/// Starts an attempt of `account_key` from `ip_key` at `now`.
pub async fn begin(
    pool: &AnyPool,
    account_key: &str,
    ip_key: &str,
    now: i64,
    limits: &Limits,
) -> DbResult<Begun> {
    let mut tx = pool.begin().await?;
    for key in [account_key, ip_key] {
        sqlx::query(
            "INSERT INTO signin_keys (key, seen_at) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(key)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM signin_failures WHERE key IN ($1, $2) AND at <= $3")
        .bind(account_key)
        .bind(ip_key)
        .bind(now - limits.window_ms)
        .execute(&mut *tx)
        .await?;
    let mut wait_ms = 0;
    for (key, max) in [(account_key, limits.max_account), (ip_key, limits.max_ip)] {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM signin_failures WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        if col::<i64>(&row, "n")? < max {
            continue;
        }
        // The max-th newest failure holds the limit until it leaves the window; with a
        // limit of zero no attempt is ever allowed.
        let holding = match max {
            0 => None,
            _ => sqlx::query(
                "SELECT at FROM signin_failures WHERE key = $1
                 ORDER BY at DESC LIMIT 1 OFFSET $2",
            )
            .bind(key)
            .bind(max - 1)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| col::<i64>(&r, "at"))
            .transpose()?,
        };
        let wait = holding.map_or(limits.window_ms, |at| at + limits.window_ms - now);
        wait_ms = wait_ms.max(wait.max(1));
    }
    let begun = if wait_ms > 0 {
        // A flood is audited once a minute per account and address.
        let audited = sqlx::query(
            "INSERT INTO signin_keys (key, seen_at, audited_at) VALUES ($1, $2, $2)
             ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at,
                audited_at = excluded.audited_at
             WHERE signin_keys.audited_at <= $3",
        )
        .bind(format!("{account_key}|{ip_key}"))
        .bind(now)
        .bind(now - 60_000)
        .execute(&mut *tx)
        .await?;
        Begun::Throttled {
            wait_ms,
            audit: audited.rows_affected() == 1,
        }
    } else {
        let id = crate::domain::new_id("att");
        for key in [account_key, ip_key] {
            sqlx::query("INSERT INTO signin_failures (attempt_id, key, at) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        Begun::Counted(id)
    };
    tx.commit().await?;
    Ok(begun)
}

/// Takes attempt `id` back from the keys it counts against; with `forgive`, also every
/// earlier failure of that key (a proven password forgives its account's failures).
pub async fn take_back(pool: &AnyPool, id: &str, forgive: Option<&str>) -> DbResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM signin_failures WHERE attempt_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if let Some(key) = forgive {
        sqlx::query("DELETE FROM signin_failures WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Drops failures that left the window and keys neither seen in it nor audited in the last
/// minute; the rows a flood from countless addresses leaves behind go here.
pub async fn sweep(pool: &AnyPool, now: i64, window_ms: i64) -> DbResult<()> {
    sqlx::query("DELETE FROM signin_failures WHERE at <= $1")
        .bind(now - window_ms)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM signin_keys WHERE seen_at <= $1 AND audited_at <= $2")
        .bind(now - window_ms)
        .bind(now - 60_000)
        .execute(pool)
        .await?;
    Ok(())
}

/// Forgets a key (an account's address, or a client address): its failures, and every
/// record naming it.
pub async fn forget_key(tx: &mut super::Tx, key: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM signin_failures WHERE key = $1")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    let keys = sqlx::query("SELECT key FROM signin_keys")
        .fetch_all(&mut **tx)
        .await?;
    for row in keys {
        let k: String = col(&row, "key")?;
        if k == key || k.split('|').any(|part| part == key) {
            sqlx::query("DELETE FROM signin_keys WHERE key = $1")
                .bind(&k)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}
