//! Signing in, in stages that the API's one request and the console's two pages share:
//! [`password`] (throttled, every refusal audited), [`second_factor`] (the authenticator code,
//! each accepted once) and [`open`] (the session, audited). The console keeps a right password
//! waiting for its code as a challenge ([`crate::db::challenges`]); the API asks for both at
//! once.

use axum::http::StatusCode;
use loop_api::{ActorKind, Outcome, User, UserStatus};

use super::{ClientInfo, session, totp};
use crate::db::audit::{NewEvent, Personal};
use crate::db::sessions::{self, SessionRow};
use crate::db::{self, tenants, users};
use crate::domain::EmailAddress;
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Attempt, AttemptId};

pub(crate) fn throttled(retry_after_secs: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "signin_throttled",
        "too many failed sign-ins; wait and try again",
    )
    .retry_after(retry_after_secs)
}

pub(crate) fn bad_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "e-mail or password is wrong",
    )
}

pub(crate) fn totp_required() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "totp_required",
        "enter the code from your authenticator app",
    )
}

fn wrong_totp() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_totp",
        "the authenticator code is wrong or was already used",
    )
}

/// Records a refused password check (`action`) in the audit log.
pub(crate) async fn audit_refusal(
    state: &AppState,
    action: &'static str,
    tenant_id: &str,
    user_id: Option<&str>,
    client: &ClientInfo,
    reason: &str,
) -> ApiResult<()> {
    let mut tx = state.db.begin().await?;
    db::audit::append(
        &mut tx,
        NewEvent {
            tenant_id: tenant_id.to_string(),
            actor_kind: ActorKind::Anonymous,
            actor_id: None,
            action,
            object_kind: "user",
            object_id: user_id.map(String::from),
            outcome: Outcome::Failure,
            personal: Personal {
                user_id: user_id.map(String::from),
                ip: client.ip.clone(),
                user_agent: client.user_agent.clone(),
            },
            details: serde_json::json!({ "reason": reason }),
        },
        state.now(),
    )
    .await?;
    tx.commit().await.map_err(db::DbError::from)?;
    Ok(())
}

/// Records a failed sign-in (in the account's tenant when the account exists, else in the
/// provider's).
async fn audit_failure(
    state: &AppState,
    tenant_id: &str,
    user_id: Option<&str>,
    client: &ClientInfo,
    reason: &str,
) -> ApiResult<()> {
    audit_refusal(state, "auth.signin", tenant_id, user_id, client, reason).await
}

/// An event in which a user acts on their own account with no session yet (signing in, or
/// redeeming a code from an e-mail): the user is the actor and the subject of its personal data.
pub(crate) fn own_event(
    user: &User,
    client: &ClientInfo,
    action: &'static str,
    object_kind: &'static str,
    object_id: String,
    details: serde_json::Value,
) -> NewEvent {
    NewEvent {
        tenant_id: user.tenant_id.clone(),
        actor_kind: ActorKind::User,
        actor_id: Some(user.id.clone()),
        action,
        object_kind,
        object_id: Some(object_id),
        outcome: Outcome::Success,
        personal: Personal {
            user_id: Some(user.id.clone()),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        },
        details,
    }
}

/// The account of a typed address, when it is a valid address that has one.
async fn account_of(
    state: &AppState,
    email: &Result<String, ()>,
) -> ApiResult<Option<users::UserRow>> {
    Ok(match email {
        Ok(e) => users::user_by_email(&state.db.pool, e).await?,
        Err(_) => None,
    })
}

/// A sign-in under way: the throttle counts it as a failure until [`open`] or [`undecided`].
pub struct Attempted {
    account: String,
    attempt: AttemptId,
}

/// Counts an attempt on `account` from `client` against the throttle, or refuses it (429)
/// when the account or the address has failed too often (audited once a minute).
pub async fn attempt(
    state: &AppState,
    client: &ClientInfo,
    account: &str,
    now: i64,
) -> ApiResult<Attempted> {
    let ip = client.ip.clone().unwrap_or_default();
    match state.throttle.begin(&state.db, account, &ip, now).await? {
        Attempt::Allowed(attempt) => Ok(Attempted {
            account: account.to_string(),
            attempt,
        }),
        Attempt::Throttled {
            audit,
            retry_after_secs,
        } => {
            if audit {
                let user = users::user_by_email(&state.db.pool, account).await?;
                let provider = provider_id(state).await?;
                let tenant = user.as_ref().map_or(&provider, |u| &u.user.tenant_id);
                let uid = user.as_ref().map(|u| u.user.id.as_str());
                audit_failure(state, tenant, uid, client, "throttled").await?;
            }
            Err(throttled(retry_after_secs))
        }
    }
}

pub(crate) async fn provider_id(state: &AppState) -> ApiResult<String> {
    Ok(tenants::provider_tenant(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::Internal("no provider tenant".into()))?
        .tenant
        .id)
}

/// Checks an address and password: the active account they open, with the attempt still
/// counted; or 401 (audited with the reason, never told to the client) or 429.
pub async fn password(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
    password: &str,
    now: i64,
) -> ApiResult<(users::UserRow, Attempted)> {
    let parsed = EmailAddress::lookup(email)
        .map(|e| e.as_str().to_string())
        .map_err(|_| ());
    let account = parsed.clone().unwrap_or_else(|_| email.to_lowercase());
    let attempted = attempt(state, client, &account, now).await?;
    let user = account_of(state, &parsed).await?;
    let hash = user
        .as_ref()
        .filter(|u| u.user.status == UserStatus::Active)
        .and_then(|u| u.password_hash.clone());
    let password_ok = super::verify_password(password.to_string(), hash).await?;
    if let Some(user) = user.filter(|_| password_ok) {
        return Ok((user, attempted));
    }
    let known = account_of(state, &parsed).await?;
    let provider = provider_id(state).await?;
    let (tenant, uid, reason) = match &known {
        Some(u) if u.user.status != UserStatus::Active => (
            u.user.tenant_id.as_str(),
            Some(u.user.id.as_str()),
            "account_not_active",
        ),
        Some(u) => (
            u.user.tenant_id.as_str(),
            Some(u.user.id.as_str()),
            "wrong_password",
        ),
        None => (provider.as_str(), None, "unknown_account"),
    };
    audit_failure(state, tenant, uid, client, reason).await?;
    Err(bad_credentials())
}

/// Takes back the attempt of a right password whose second factor is still to come: the
/// code's own attempt will count.
pub async fn undecided(state: &AppState, attempted: Attempted) -> ApiResult<()> {
    Ok(state
        .throttle
        .undecided(&state.db, attempted.attempt)
        .await?)
}

/// Checks the authenticator code of `user` (when they have one): each code is accepted once,
/// and a wrong or reused one is audited and refused (401).
pub async fn second_factor(
    state: &AppState,
    client: &ClientInfo,
    user: &users::UserRow,
    code: &str,
    now: i64,
) -> ApiResult<()> {
    let secret = user.totp_secret.clone().unwrap_or_default();
    let checked = totp::check(state, &user.user, &secret, code, now).await?;
    if checked == totp::Code::Accepted {
        return Ok(());
    }
    let reason = if checked == totp::Code::Reused {
        "reused_totp"
    } else {
        "wrong_totp"
    };
    let u = &user.user;
    audit_failure(state, &u.tenant_id, Some(&u.id), client, reason).await?;
    Err(wrong_totp())
}

/// A session that was opened.
pub struct Opened {
    pub session: SessionRow,
    /// The session's secret, shown once: the cookie's value or the bearer token.
    pub secret: String,
    pub cookie_max_age: Option<i64>,
}

/// Opens the session of a user who passed every check: clears the attempt's failure, starts
/// the session and audits the sign-in. A password change, reset, disabling or erasure of the
/// account committed since its password was checked (against `user`, as read then) refuses
/// it (401): nothing of the sign-in is written.
pub async fn open(
    state: &AppState,
    client: &ClientInfo,
    user: &users::UserRow,
    attempted: Attempted,
    device_label: Option<&str>,
    remember: bool,
    now: i64,
) -> ApiResult<Opened> {
    state
        .throttle
        .succeeded(&state.db, &attempted.account, attempted.attempt)
        .await?;
    let mut tx = state.db.begin().await?;
    let verified = user.password_hash.as_deref();
    if !users::signs_in_as_verified(&mut tx, &user.user.id, verified).await? {
        return Err(bad_credentials());
    }
    let started = session::start(
        &mut tx,
        state,
        &user.user,
        client,
        device_label,
        remember,
        now,
    )
    .await?;
    let event = own_event(
        &user.user,
        client,
        "auth.signin",
        "session",
        started.id.clone(),
        serde_json::json!({ "remember": remember, "totp": user.user.totp_enabled }),
    );
    db::audit::commit_audited(tx, event, now).await?;
    let session = sessions::session_by_id(&state.db.pool, &started.id)
        .await?
        .ok_or_else(|| ApiError::Internal("new session vanished".into()))?;
    Ok(Opened {
        session,
        secret: started.secret,
        cookie_max_age: started.cookie_max_age,
    })
}
