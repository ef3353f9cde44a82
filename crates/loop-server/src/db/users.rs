//! Users: accounts, invitations, e-mail changes, passwords and TOTP.

use loop_api::{User, UserStatus};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Page, Paged, asc};
use super::tenants::in_scope;
use super::{DbResult, Tx, col, col_value, time};
use crate::domain::TenantScope;

#[derive(Clone)]
pub struct UserRow {
    pub user: User,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    /// When the current invite token was issued.
    pub invite_issued_at: Option<i64>,
    /// When the token confirming `pending_email` was issued.
    pub email_token_issued_at: Option<i64>,
    /// When the current password reset code was mailed.
    pub reset_issued_at: Option<i64>,
}

/// The user, never the password hash or the (wrapped) authenticator secret.
impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("user", &self.user)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "…"))
            .field("totp_secret", &self.totp_secret.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

fn user(row: &AnyRow) -> DbResult<UserRow> {
    Ok(UserRow {
        user: User {
            id: col(row, "id")?,
            tenant_id: col(row, "tenant_id")?,
            email: col(row, "email")?,
            first_name: col(row, "first_name")?,
            last_name: col(row, "last_name")?,
            business_address: col(row, "business_address")?,
            status: col_value(row, "status")?,
            totp_enabled: col::<i64>(row, "totp_enabled")? != 0,
            language: col_value(row, "language")?,
            created_at: time(col(row, "created_at")?),
            pending_email: col(row, "pending_email")?,
            marketing_consent: col::<i64>(row, "marketing_consent")? != 0,
            restricted: col::<Option<i64>>(row, "restricted_at")?.is_some(),
            time_zone: col(row, "time_zone")?,
        },
        invite_issued_at: col(row, "invite_issued_at")?,
        email_token_issued_at: col(row, "email_token_issued_at")?,
        reset_issued_at: col(row, "reset_issued_at")?,
        password_hash: col(row, "password_hash")?,
        totp_secret: col(row, "totp_secret")?,
    })
}

pub async fn user_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<UserRow>> {
    let row = sqlx::query("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user).transpose()
}

/// The account (active or disabled user) signing in with `email`. Invitations not yet
/// accepted are not accounts: several may name the same address.
pub async fn user_by_email(pool: &AnyPool, email: &str) -> DbResult<Option<UserRow>> {
    let row = sqlx::query("SELECT * FROM users WHERE email = $1 AND status <> 'invited'")
        .bind(email)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user).transpose()
}

/// True when a user of `tenant_id` (account or invitation) has `email`.
pub async fn email_in_tenant(pool: &AnyPool, tenant_id: &str, email: &str) -> DbResult<bool> {
    let row = sqlx::query("SELECT id FROM users WHERE tenant_id = $1 AND email = $2")
        .bind(tenant_id)
        .bind(email)
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

/// Replaces an invited user's invite token.
pub async fn issue_invite(pool: &AnyPool, id: &str, invite_hash: &str, now: i64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE users SET invite_hash = $1, invite_issued_at = $2
         WHERE id = $3 AND status = 'invited'",
    )
    .bind(invite_hash)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Makes an invited user's invite token stop working.
pub async fn clear_invite(tx: &mut Tx, id: &str) -> DbResult<()> {
    sqlx::query("UPDATE users SET invite_hash = NULL WHERE id = $1 AND status = 'invited'")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records a new address waiting for confirmation, or none (either way any earlier
/// confirmation code stops working).
pub async fn set_pending_email(
    tx: &mut Tx,
    id: &str,
    email: Option<&str>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET pending_email = $1, email_token_hash = NULL,
            email_token_issued_at = NULL, updated_at = $2 WHERE id = $3",
    )
    .bind(email)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Issues the token that confirms the pending address `email` (still pending and unchanged).
pub async fn issue_email_token(
    pool: &AnyPool,
    id: &str,
    email: &str,
    token_hash: &str,
    now: i64,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE users SET email_token_hash = $1, email_token_issued_at = $2
         WHERE id = $3 AND pending_email = $4",
    )
    .bind(token_hash)
    .bind(now)
    .bind(id)
    .bind(email)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn user_by_email_token(pool: &AnyPool, token_hash: &str) -> DbResult<Option<UserRow>> {
    let row = sqlx::query(
        "SELECT * FROM users WHERE email_token_hash = $1 AND pending_email IS NOT NULL
            AND status IN ('active', 'invited')",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(user).transpose()
}

/// Gives an active user a new password reset code (replacing any earlier one): false when
/// the user is not active (any more).
pub async fn issue_reset(pool: &AnyPool, id: &str, code_hash: &str, now: i64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE users SET reset_hash = $1, reset_issued_at = $2 WHERE id = $3 AND status = 'active'",
    )
    .bind(code_hash)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The active user whose reset code has the hash `code_hash`.
pub async fn user_by_reset(pool: &AnyPool, code_hash: &str) -> DbResult<Option<UserRow>> {
    let row = sqlx::query("SELECT * FROM users WHERE reset_hash = $1 AND status = 'active'")
        .bind(code_hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user).transpose()
}

/// Sets the password of the user whose reset code has the hash `code_hash`, using the code
/// up: false when another request used it first. A new address waiting for confirmation is
/// dropped, as at a password change: whoever reset may be taking the account back from
/// whoever asked for it.
pub async fn reset_password(
    tx: &mut Tx,
    id: &str,
    code_hash: &str,
    password_hash: &str,
    now: i64,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE users SET password_hash = $1, reset_hash = NULL, pending_email = NULL,
            email_token_hash = NULL, email_token_issued_at = NULL, updated_at = $2
         WHERE id = $3 AND reset_hash = $4 AND status = 'active'",
    )
    .bind(password_hash)
    .bind(now)
    .bind(id)
    .bind(code_hash)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Makes the pending address the user's address, while `token_hash` is still the code of the
/// change waiting (false when another change or a redemption came first). Fails with a unique
/// violation when the address became another account's meanwhile.
pub async fn confirm_email(tx: &mut Tx, id: &str, token_hash: &str, now: i64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE users SET email = pending_email, pending_email = NULL, email_token_hash = NULL,
            email_token_issued_at = NULL, reset_hash = NULL, updated_at = $1
         WHERE id = $2 AND pending_email IS NOT NULL AND email_token_hash = $3",
    )
    .bind(now)
    .bind(id)
    .bind(token_hash)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Sets the invited user's first password and makes the account active, while `invite_hash`
/// is still its invitation (false when it was redeemed, withdrawn or replaced meanwhile).
pub async fn accept_invite(
    tx: &mut Tx,
    id: &str,
    invite_hash: &str,
    password_hash: &str,
    now: i64,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE users SET password_hash = $1, invite_hash = NULL, reset_hash = NULL,
            pending_email = NULL, email_token_hash = NULL, email_token_issued_at = NULL,
            status = 'active', updated_at = $2
         WHERE id = $3 AND invite_hash = $4 AND status = 'invited'",
    )
    .bind(password_hash)
    .bind(now)
    .bind(id)
    .bind(invite_hash)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn user_by_invite(pool: &AnyPool, invite_hash: &str) -> DbResult<Option<UserRow>> {
    let row = sqlx::query("SELECT * FROM users WHERE invite_hash = $1 AND status = 'invited'")
        .bind(invite_hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user).transpose()
}

/// The users of the tenants in `scope`.
pub async fn users_in(
    pool: &AnyPool,
    scope: &TenantScope,
    page: Option<&Page>,
) -> DbResult<Paged<User>> {
    let rows = in_scope(
        pool,
        "SELECT u.* FROM users u JOIN tenants t ON t.id = u.tenant_id",
        scope,
        &[asc("t.path"), asc("u.email"), asc("u.id")],
        page,
    )
    .await?;
    rows.map(|r| user(&r).map(|u| u.user))
}

pub async fn insert_user(
    tx: &mut Tx,
    u: &User,
    password_hash: Option<&str>,
    invite_hash: Option<&str>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO users (id, tenant_id, email, first_name, last_name, business_address,
            password_hash, status, invite_hash, created_at, updated_at, invite_issued_at,
            language)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10,
            CASE WHEN $9 IS NULL THEN NULL ELSE $10 END, $11)",
    )
    .bind(&u.id)
    .bind(&u.tenant_id)
    .bind(&u.email)
    .bind(&u.first_name)
    .bind(&u.last_name)
    .bind(&u.business_address)
    .bind(password_hash)
    .bind(u.status.as_str())
    .bind(invite_hash)
    .bind(now)
    .bind(u.language.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores a user's profile. A new address voids a password reset code waiting for the old one.
/// False, and nothing written, when the account no longer has the address and status `was`
/// (as read before the change): an erasure, a confirmed address or a status change came in
/// between, and writing over it would undo it.
pub async fn update_user_profile(tx: &mut Tx, u: &User, was: &User, now: i64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE users SET email = $1, first_name = $2, last_name = $3, business_address = $4,
            language = $7, time_zone = $8, updated_at = $5,
            reset_hash = CASE WHEN email = $1 THEN reset_hash ELSE NULL END
         WHERE id = $6 AND email = $9 AND status = $10",
    )
    .bind(&u.email)
    .bind(&u.first_name)
    .bind(&u.last_name)
    .bind(&u.business_address)
    .bind(now)
    .bind(&u.id)
    .bind(u.language.as_str())
    .bind(u.time_zone.as_deref())
    .bind(&was.email)
    .bind(was.status.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Sets a user's status; a password reset code or a new address waiting for them stops
/// working.
pub async fn set_user_status(tx: &mut Tx, id: &str, status: UserStatus, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET status = $1, reset_hash = NULL, pending_email = NULL,
            email_token_hash = NULL, email_token_issued_at = NULL, updated_at = $2
         WHERE id = $3",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether user `id` is still active with the password hash `hash` a sign-in verified: a
/// password change, reset, disabling or erasure committed since then makes it false.
pub async fn signs_in_as_verified(tx: &mut Tx, id: &str, hash: Option<&str>) -> DbResult<bool> {
    let Some(hash) = hash else {
        return Ok(false);
    };
    // A write that changes nothing, so that it takes the user's row until `tx` ends: an
    // erasure (which takes the row first) or a password change either committed before, and
    // this finds it, or waits for this sign-in and then sees its session.
    let r = sqlx::query(
        "UPDATE users SET status = status
         WHERE id = $1 AND status = 'active' AND password_hash = $2",
    )
    .bind(id)
    .bind(hash)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Takes the user's row until `tx` ends, unless the person was erased (then false): what is
/// recorded about them in `tx` is either seen by an erasure (which takes the row first) or
/// refused after it.
pub async fn hold_unerased(tx: &mut Tx, id: &str, pseudonym: &str) -> DbResult<bool> {
    let r = sqlx::query("UPDATE users SET status = status WHERE id = $1 AND email <> $2")
        .bind(id)
        .bind(pseudonym)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Replaces the password of an active user whose password is still `verified` (the hash the
/// current password was checked against): false when it changed, or the account was
/// disabled or erased, meanwhile. A new address waiting for confirmation is dropped: whoever
/// changes the password may not know who asked.
pub async fn replace_password(
    tx: &mut Tx,
    id: &str,
    verified: Option<&str>,
    hash: &str,
    now: i64,
) -> DbResult<bool> {
    let Some(verified) = verified else {
        return Ok(false);
    };
    let r = sqlx::query(
        "UPDATE users SET password_hash = $1, reset_hash = NULL,
            pending_email = NULL, email_token_hash = NULL, email_token_issued_at = NULL,
            updated_at = $2
         WHERE id = $3 AND status = 'active' AND password_hash = $4",
    )
    .bind(hash)
    .bind(now)
    .bind(id)
    .bind(verified)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Keeps `secret` (wrapped) as the user's authenticator to be confirmed, while none is on
/// and the user is active: false when one was turned on, or the account was disabled or
/// erased, meanwhile.
pub async fn start_totp(tx: &mut Tx, id: &str, secret: &str, now: i64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE users SET totp_secret = $1, totp_enabled = 0, updated_at = $2
         WHERE id = $3 AND totp_enabled = 0 AND status = 'active'",
    )
    .bind(secret)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Turns on the authenticator whose secret is `secret`, while it is still the one waiting:
/// false when another enrolment replaced it, or it was turned on, meanwhile.
pub async fn enable_totp(tx: &mut Tx, id: &str, secret: &str, now: i64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE users SET totp_enabled = 1, updated_at = $1
         WHERE id = $2 AND totp_secret = $3 AND totp_enabled = 0 AND status = 'active'",
    )
    .bind(now)
    .bind(id)
    .bind(secret)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records `step` as the user's last accepted TOTP step, only if it is newer than the last
/// one: false means the code was already used (a replay).
pub async fn accept_totp_step(pool: &AnyPool, id: &str, step: u64) -> DbResult<bool> {
    let r =
        sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
            .bind(step as i64)
            .bind(id)
            .execute(pool)
            .await?;
    Ok(r.rows_affected() > 0)
}

/// The pseudonym an erased person's account keeps.
pub fn pseudonym(user_id: &str) -> String {
    format!("erased-{user_id}@erased.invalid")
}

/// Replaces a user's personal data with a pseudonym: the address `pseudonym`, the name
/// "Erased user", no business address, no password, no pending address or codes, no TOTP;
/// disabled.
pub async fn pseudonymise(tx: &mut Tx, id: &str, pseudonym: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET email = $1, first_name = 'Erased', last_name = 'user',
             business_address = '', password_hash = NULL, status = 'disabled',
             invite_hash = NULL, pending_email = NULL, email_token_hash = NULL, reset_hash = NULL,
             totp_secret = NULL, totp_enabled = 0, marketing_consent = 0, time_zone = NULL,
             updated_at = $2
         WHERE id = $3",
    )
    .bind(pseudonym)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM unsubscribe_links WHERE user_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_debug_form_shows_neither_password_hash_nor_authenticator_secret() {
        let user: User = serde_json::from_value(serde_json::json!({
            "id": "u1", "tenant_id": "t1", "email": "ana@example.org", "first_name": "Ana",
            "last_name": "Doe", "business_address": "", "status": "active",
            "totp_enabled": true, "created_at": "2026-12-01T00:00:00Z"
        }))
        .unwrap();
        let row = UserRow {
            user,
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            totp_secret: Some("wrapped-totp-secret".into()),
            invite_issued_at: None,
            email_token_issued_at: None,
            reset_issued_at: None,
        };
        let shown = format!("{row:?}");
        assert!(shown.contains("ana@example.org"), "{shown}");
        assert!(!shown.contains("argon2id"), "{shown}");
        assert!(!shown.contains("wrapped-totp-secret"), "{shown}");
    }
}
