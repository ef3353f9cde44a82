//! Tenants, users, role bindings, sessions, devices and tokens.

use loop_api::{
    Device, RoleBinding, Session, Tenant, TenantStatus, Token, TokenPermission, User, UserStatus,
};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col, col_value, opt_time, parse_value, time};

// ---- tenants ----

#[derive(Clone, Debug)]
pub struct TenantRow {
    pub tenant: Tenant,
    pub path: String,
}

fn tenant(row: &AnyRow) -> DbResult<TenantRow> {
    Ok(TenantRow {
        tenant: Tenant {
            id: col(row, "id")?,
            parent_id: col(row, "parent_id")?,
            kind: col_value(row, "kind")?,
            name: col(row, "name")?,
            status: col_value(row, "status")?,
            created_at: time(col(row, "created_at")?),
        },
        path: col(row, "path")?,
    })
}

pub async fn tenant_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<TenantRow>> {
    let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(tenant).transpose()
}

pub async fn provider_tenant(pool: &AnyPool) -> DbResult<Option<TenantRow>> {
    let row = sqlx::query("SELECT * FROM tenants WHERE parent_id IS NULL")
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(tenant).transpose()
}

/// Tenants whose path starts with one of `paths` (subtrees), ordered by path.
pub async fn tenants_under(pool: &AnyPool, paths: &[String]) -> DbResult<Vec<TenantRow>> {
    let mut out: Vec<TenantRow> = Vec::new();
    for p in paths {
        let rows =
            sqlx::query("SELECT * FROM tenants WHERE substr(path, 1, $1) = $2 ORDER BY path")
                .bind(p.len() as i64)
                .bind(p)
                .fetch_all(pool)
                .await?;
        for r in &rows {
            let t = tenant(r)?;
            if !out.iter().any(|o| o.tenant.id == t.tenant.id) {
                out.push(t);
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

pub async fn insert_tenant(
    tx: &mut Tx,
    t: &Tenant,
    path: &str,
    wrapped_key: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO tenants (id, parent_id, path, kind, name, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&t.id)
    .bind(&t.parent_id)
    .bind(path)
    .bind(t.kind.as_str())
    .bind(&t.name)
    .bind(t.status.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO tenant_keys (tenant_id, wrapped, created_at) VALUES ($1, $2, $3)")
        .bind(&t.id)
        .bind(wrapped_key)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn tenant_key(pool: &AnyPool, tenant_id: &str) -> DbResult<Option<String>> {
    let row = sqlx::query("SELECT wrapped FROM tenant_keys WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| col(&r, "wrapped")).transpose()?)
}

/// Crypto-shredding: after this, no managed vault of the tenant can be opened.
pub async fn delete_tenant_key(tx: &mut Tx, tenant_id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM tenant_keys WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Sets a tenant's status; false when it had it already.
pub async fn set_tenant_status(tx: &mut Tx, id: &str, status: TenantStatus) -> DbResult<bool> {
    let r = sqlx::query("UPDATE tenants SET status = $1 WHERE id = $2 AND status <> $1")
        .bind(status.as_str())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Shuts a tenant's people and machines out: revokes its tokens, ends its users' sessions
/// and disables its users (invitations included). Returns (tokens, sessions, users).
pub async fn lock_out_tenant(tx: &mut Tx, id: &str, now: i64) -> DbResult<(u64, u64, u64)> {
    let tokens = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE tenant_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let sessions = sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = 'tenant_erased'
         WHERE tenant_id = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let users = sqlx::query(
        "UPDATE users SET status = 'disabled', updated_at = $1
         WHERE tenant_id = $2 AND status <> 'disabled'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok((tokens, sessions, users))
}

// ---- users ----

#[derive(Clone, Debug)]
pub struct UserRow {
    pub user: User,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    /// When the current invite token was issued.
    pub invite_issued_at: Option<i64>,
    /// When the token confirming `pending_email` was issued.
    pub email_token_issued_at: Option<i64>,
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
            created_at: time(col(row, "created_at")?),
            pending_email: col(row, "pending_email")?,
        },
        invite_issued_at: col(row, "invite_issued_at")?,
        email_token_issued_at: col(row, "email_token_issued_at")?,
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
        "SELECT * FROM users WHERE email_token_hash = $1 AND pending_email IS NOT NULL",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(user).transpose()
}

/// Makes the pending address the user's address. Fails with a unique violation when the
/// address became another account's meanwhile.
pub async fn confirm_email(tx: &mut Tx, id: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET email = pending_email, pending_email = NULL, email_token_hash = NULL,
            email_token_issued_at = NULL, updated_at = $1
         WHERE id = $2 AND pending_email IS NOT NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn user_by_invite(pool: &AnyPool, invite_hash: &str) -> DbResult<Option<UserRow>> {
    let row = sqlx::query("SELECT * FROM users WHERE invite_hash = $1 AND status = 'invited'")
        .bind(invite_hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user).transpose()
}

pub async fn users_in(pool: &AnyPool, tenant_ids: &[String]) -> DbResult<Vec<User>> {
    let mut out = Vec::new();
    for t in tenant_ids {
        let rows = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 ORDER BY email")
            .bind(t)
            .fetch_all(pool)
            .await?;
        for r in &rows {
            out.push(user(r)?.user);
        }
    }
    Ok(out)
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
            password_hash, status, invite_hash, created_at, updated_at, invite_issued_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10,
            CASE WHEN $9 IS NULL THEN NULL ELSE $10 END)",
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn update_user_profile(tx: &mut Tx, u: &User, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET email = $1, first_name = $2, last_name = $3, business_address = $4,
            updated_at = $5 WHERE id = $6",
    )
    .bind(&u.email)
    .bind(&u.first_name)
    .bind(&u.last_name)
    .bind(&u.business_address)
    .bind(now)
    .bind(&u.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn set_user_status(tx: &mut Tx, id: &str, status: UserStatus, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sets the password (and activates an invited user, consuming the invite).
pub async fn set_password(tx: &mut Tx, id: &str, hash: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $1, invite_hash = NULL,
            status = CASE WHEN status = 'invited' THEN 'active' ELSE status END,
            updated_at = $2 WHERE id = $3",
    )
    .bind(hash)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn set_totp(
    tx: &mut Tx,
    id: &str,
    secret: Option<&str>,
    enabled: bool,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET totp_secret = $1, totp_enabled = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(secret)
    .bind(enabled as i64)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
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

// ---- role bindings ----

#[derive(Clone, Debug)]
pub struct BindingRow {
    pub binding: RoleBinding,
    pub tenant_path: String,
}

fn binding(row: &AnyRow) -> DbResult<BindingRow> {
    Ok(BindingRow {
        binding: RoleBinding {
            id: col(row, "id")?,
            user_id: col(row, "user_id")?,
            tenant_id: col(row, "tenant_id")?,
            role: col_value(row, "role")?,
            created_at: time(col(row, "created_at")?),
        },
        tenant_path: col(row, "path")?,
    })
}

pub async fn bindings_of(pool: &AnyPool, user_id: &str) -> DbResult<Vec<BindingRow>> {
    let rows = sqlx::query(
        "SELECT b.*, t.path FROM role_bindings b JOIN tenants t ON t.id = b.tenant_id
         WHERE b.user_id = $1 ORDER BY t.path, b.role",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(binding).collect()
}

pub async fn insert_binding(tx: &mut Tx, b: &RoleBinding, now: i64) -> DbResult<bool> {
    let exists = sqlx::query(
        "SELECT id FROM role_bindings WHERE user_id = $1 AND tenant_id = $2 AND role = $3",
    )
    .bind(&b.user_id)
    .bind(&b.tenant_id)
    .bind(b.role.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    if exists.is_some() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO role_bindings (id, user_id, tenant_id, role, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&b.id)
    .bind(&b.user_id)
    .bind(&b.tenant_id)
    .bind(b.role.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

pub async fn delete_binding(tx: &mut Tx, user_id: &str, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM role_bindings WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

// ---- sessions ----

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

/// Ends every live session of a user except `keep`; returns how many ended.
pub async fn end_user_sessions(
    tx: &mut Tx,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
    now: i64,
) -> DbResult<u64> {
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

/// Sessions of users of the given tenants (or of one user), newest first.
pub async fn sessions_of(
    pool: &AnyPool,
    user_id: Option<&str>,
    tenant_ids: &[String],
) -> DbResult<Vec<SessionRow>> {
    let mut out = Vec::new();
    if let Some(u) = user_id {
        let rows =
            sqlx::query("SELECT * FROM sessions WHERE user_id = $1 ORDER BY created_at DESC")
                .bind(u)
                .fetch_all(pool)
                .await?;
        for r in &rows {
            out.push(session(r)?);
        }
        return Ok(out);
    }
    for t in tenant_ids {
        let rows =
            sqlx::query("SELECT * FROM sessions WHERE tenant_id = $1 ORDER BY created_at DESC")
                .bind(t)
                .fetch_all(pool)
                .await?;
        for r in &rows {
            out.push(session(r)?);
        }
    }
    Ok(out)
}

// ---- devices ----

fn device(row: &AnyRow) -> DbResult<Device> {
    Ok(Device {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        name: col(row, "name")?,
        created_at: time(col(row, "created_at")?),
        last_seen_at: opt_time(col(row, "last_seen_at")?),
    })
}

pub async fn device_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<Device>> {
    let row = sqlx::query("SELECT * FROM devices WHERE id = $1 AND deleted_at IS NULL")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(device).transpose()
}

pub async fn devices_in(pool: &AnyPool, tenant_ids: &[String]) -> DbResult<Vec<Device>> {
    let mut out = Vec::new();
    for t in tenant_ids {
        let rows = sqlx::query(
            "SELECT * FROM devices WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY name",
        )
        .bind(t)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            out.push(device(r)?);
        }
    }
    Ok(out)
}

pub async fn insert_device(tx: &mut Tx, d: &Device, now: i64) -> DbResult<()> {
    sqlx::query("INSERT INTO devices (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&d.id)
        .bind(&d.tenant_id)
        .bind(&d.name)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes a device and revokes its tokens.
pub async fn delete_device(tx: &mut Tx, id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE devices SET deleted_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn touch_device(pool: &AnyPool, id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

// ---- tokens ----

fn split(s: String) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn token(row: &AnyRow) -> DbResult<Token> {
    Ok(Token {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        kind: col_value(row, "kind")?,
        name: col(row, "name")?,
        device_id: col(row, "device_id")?,
        vault_ids: split(col(row, "vault_ids")?),
        permissions: col::<String>(row, "permissions")?
            .split_whitespace()
            .map(|p| parse_value::<TokenPermission>("permissions", p))
            .collect::<DbResult<_>>()?,
        created_at: time(col(row, "created_at")?),
        expires_at: opt_time(col(row, "expires_at")?),
        revoked_at: opt_time(col(row, "revoked_at")?),
        last_used_at: opt_time(col(row, "last_used_at")?),
    })
}

pub async fn token_by_hash(pool: &AnyPool, hash: &str) -> DbResult<Option<Token>> {
    let row = sqlx::query("SELECT * FROM tokens WHERE secret_hash = $1")
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(token).transpose()
}

pub async fn token_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<Token>> {
    let row = sqlx::query("SELECT * FROM tokens WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(token).transpose()
}

pub async fn tokens_in(pool: &AnyPool, tenant_ids: &[String]) -> DbResult<Vec<Token>> {
    let mut out = Vec::new();
    for t in tenant_ids {
        let rows = sqlx::query("SELECT * FROM tokens WHERE tenant_id = $1 ORDER BY created_at")
            .bind(t)
            .fetch_all(pool)
            .await?;
        for r in &rows {
            out.push(token(r)?);
        }
    }
    Ok(out)
}

pub async fn insert_token(
    tx: &mut Tx,
    t: &Token,
    secret_hash: &str,
    created_by: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO tokens (id, secret_hash, tenant_id, kind, name, device_id, vault_ids,
            permissions, created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&t.id)
    .bind(secret_hash)
    .bind(&t.tenant_id)
    .bind(t.kind.as_str())
    .bind(&t.name)
    .bind(&t.device_id)
    .bind(t.vault_ids.join(" "))
    .bind(
        t.permissions
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    )
    .bind(created_by)
    .bind(now)
    .bind(t.expires_at.map(|e| e.timestamp_millis()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn revoke_token(tx: &mut Tx, id: &str, now: i64) -> DbResult<bool> {
    let r = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn touch_token(tx: &mut Tx, id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
