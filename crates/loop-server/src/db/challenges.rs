//! Sign-ins half done (`signin_challenges`): the password was right and the authenticator
//! code is still to come.

use sqlx::AnyPool;

use super::{DbResult, col};

/// Codes one challenge may be answered with before it is gone.
pub const MAX_TRIES: i64 = 5;

/// A challenge that is still open.
pub struct Challenge {
    pub user_id: String,
    pub remember: bool,
}

/// Opens a challenge for `user_id`, whose password was checked against `verified` (its hash
/// as read then). False, and nothing opened, when the account changed since: a password
/// change, reset, disabling or erasure (each ends the user's challenges too).
pub async fn insert(
    pool: &AnyPool,
    secret_hash: &str,
    (user_id, verified): (&str, &str),
    remember: bool,
    expires_at: i64,
) -> DbResult<bool> {
    let r = sqlx::query(
        "INSERT INTO signin_challenges (secret_hash, user_id, remember, tries, expires_at)
         SELECT $1, id, $3, 0, $4 FROM users
         WHERE id = $2 AND status = 'active' AND password_hash = $5",
    )
    .bind(secret_hash)
    .bind(user_id)
    .bind(remember as i64)
    .bind(expires_at)
    .bind(verified)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Counts one more code against the challenge and answers it while it is open (not expired,
/// not out of tries). One statement, so two nodes answering at once count both codes.
pub async fn try_once(pool: &AnyPool, secret_hash: &str, now: i64) -> DbResult<Option<Challenge>> {
    let row = sqlx::query(
        "UPDATE signin_challenges SET tries = tries + 1
         WHERE secret_hash = $1 AND expires_at > $2 AND tries < $3
         RETURNING user_id, remember",
    )
    .bind(secret_hash)
    .bind(now)
    .bind(MAX_TRIES)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(Challenge {
            user_id: col(&r, "user_id")?,
            remember: col::<i64>(&r, "remember")? != 0,
        })
    })
    .transpose()
}

/// Ends a challenge (answered), and drops every expired one with it. False when it was
/// gone already: a password change, reset, disabling or erasure ended it since it was
/// answered, and the sign-in must not go on.
pub async fn remove(pool: &AnyPool, secret_hash: &str, now: i64) -> DbResult<bool> {
    let ended = sqlx::query("DELETE FROM signin_challenges WHERE secret_hash = $1")
        .bind(secret_hash)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM signin_challenges WHERE expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(ended.rows_affected() == 1)
}
