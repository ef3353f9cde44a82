//! Codes that come by e-mail: an invitation (the invited account's password is set), the
//! confirmation of a new address, and a password reset (asked for here too). The API and the
//! console's pages both call these; each redemption is audited as the user's own act.
//!
//! A password reset is asked for with an address alone, so its answer never says whether the
//! address has an account: the same answer either way, and only an active account's owner
//! gets a mail. Asking is throttled per address and per client address; every request is
//! audited (in the account's tenant, or the provider's for an unknown address). The code in
//! the mail works once, for an hour, and using it ends every session of the account. An
//! authenticator stays as it was: the new password still asks for its code at sign-in.

use axum::http::StatusCode;
use loop_api::{ActorKind, Outcome, UserStatus};

use crate::auth::signin::{audit_refusal, own_event, provider_id};
use crate::auth::{self, ClientInfo};
use crate::db::audit::{NewEvent, Personal};
use crate::db::outbox::{self, MailKind};
use crate::db::throttle::Begun;
use crate::db::{sessions, users};
use crate::domain::{self, EmailAddress, secret_hash};
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, account_key, ip_key_for};

/// An invitation, or a code confirming a new address, is valid this long after it was issued.
const INVITE_LIFETIME_MS: i64 = 7 * 86_400_000;

/// Sets the password of the account invited with `token` (valid 7 days, works once).
pub async fn accept_invite(
    state: &AppState,
    client: &ClientInfo,
    token: &str,
    password: &str,
) -> ApiResult<()> {
    let invite_hash = secret_hash(token);
    let Some(user) = users::user_by_invite(&state.db.pool, &invite_hash).await? else {
        return Err(ApiError::not_found());
    };
    let now = state.now();
    let issued = user
        .invite_issued_at
        .unwrap_or(user.user.created_at.timestamp_millis());
    if now - issued > INVITE_LIFETIME_MS {
        return Err(ApiError::new(
            StatusCode::GONE,
            "invite_expired",
            "the invitation has expired; ask for a new one",
        ));
    }
    domain::check_new_password(password)?;
    let hash = auth::hash_password(password.to_string()).await?;
    let mut tx = state.db.begin().await?;
    // The address may have become another account's since the invitation was sent; only
    // the holder of the invitation, the address's owner, learns that here. A redemption, a
    // withdrawal or a new invitation that came while the password was hashed wins.
    let accepted = users::accept_invite(&mut tx, &user.user.id, &invite_hash, &hash, now)
        .await
        .map_err(email_taken(
            "this address has an account already; sign in with it",
        ))?;
    if !accepted {
        return Err(ApiError::not_found());
    }
    redeemed(tx, &user.user, client, "user.invite_accept", now).await
}

/// Moves the account whose new address received `token` (valid 7 days) to that address.
pub async fn confirm_email(state: &AppState, client: &ClientInfo, token: &str) -> ApiResult<()> {
    let token_hash = secret_hash(token);
    let Some(user) = users::user_by_email_token(&state.db.pool, &token_hash).await? else {
        return Err(ApiError::not_found());
    };
    let now = state.now();
    if now - user.email_token_issued_at.unwrap_or(0) > INVITE_LIFETIME_MS {
        return Err(ApiError::new(
            StatusCode::GONE,
            "code_expired",
            "the code has expired; ask for the change again",
        ));
    }
    let mut tx = state.db.begin().await?;
    let confirmed = users::confirm_email(&mut tx, &user.user.id, &token_hash, now)
        .await
        .map_err(email_taken("this address has an account already"))?;
    if !confirmed {
        return Err(ApiError::not_found());
    }
    redeemed(tx, &user.user, client, "user.email_confirm", now).await
}

/// A password reset code works this long after its mail was sent.
pub const RESET_LIFETIME_MS: i64 = 3_600_000;

/// Reset requests per address and per client address within the sign-in throttle's window
/// (`signin.window_minutes`, 15 by default). Per address, so a stranger cannot flood a
/// mailbox with them.
const RESETS_PER_ADDRESS: i64 = 3;
const RESETS_PER_CLIENT: i64 = 10;

/// Asks for a password reset mail to `email`: sent when the address is an active account's.
/// The answer is the same whatever the address (an invalid address is 400; a throttled
/// request 429, counted by address and client alike).
pub async fn request_reset(state: &AppState, client: &ClientInfo, email: &str) -> ApiResult<()> {
    const ACTION: &str = "user.password_reset_request";
    let email = EmailAddress::lookup(email)?;
    let now = state.now();
    let account = account_key(&format!("reset:{}", email.as_str()));
    let from = ip_key_for("reset", client.ip.as_deref().unwrap_or_default());
    let limits = (RESETS_PER_ADDRESS, RESETS_PER_CLIENT);
    let begun = (state.throttle)
        .count(&state.db, (&account, &from), limits, now)
        .await?;
    let user = users::user_by_email(&state.db.pool, email.as_str()).await?;
    let provider = provider_id(state).await?;
    let (tenant, user_id) = match &user {
        Some(u) => (u.user.tenant_id.as_str(), Some(u.user.id.as_str())),
        None => (provider.as_str(), None),
    };
    if let Begun::Throttled { wait_ms, audit } = begun {
        if audit {
            audit_refusal(state, ACTION, tenant, user_id, client, "throttled").await?;
        }
        let secs = (wait_ms.max(0) as u64).div_ceil(1000).max(1);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "too many password resets asked from here or for this address; try again later",
        )
        .retry_after(secs));
    }
    let Some(u) = user
        .as_ref()
        .filter(|u| u.user.status == UserStatus::Active)
    else {
        let reason = match user_id {
            Some(_) => "account_not_active",
            None => "unknown_account",
        };
        return audit_refusal(state, ACTION, tenant, user_id, client, reason).await;
    };
    let mut tx = state.db.begin().await?;
    // The code is made when the mail is (`mail::messages`), so it works an hour from then.
    outbox::enqueue(&mut tx, MailKind::PasswordReset, &u.user.id, now).await?;
    let event = NewEvent {
        tenant_id: u.user.tenant_id.clone(),
        actor_kind: ActorKind::Anonymous,
        actor_id: None,
        action: ACTION,
        object_kind: "user",
        object_id: Some(u.user.id.clone()),
        outcome: Outcome::Success,
        personal: Personal {
            user_id: Some(u.user.id.clone()),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        },
        details: serde_json::json!({}),
    };
    crate::db::audit::commit_audited(tx, event, now).await?;
    state.mail_wake.notify_one();
    Ok(())
}

/// Sets a new password with the code of a reset mail (once, within an hour; 404 for a code
/// that is unknown or used, 410 for one that expired) and ends every session of the account.
pub async fn reset_password(
    state: &AppState,
    client: &ClientInfo,
    token: &str,
    password: &str,
) -> ApiResult<()> {
    let code = secret_hash(token);
    let now = state.now();
    let user = reset_holder(state, &code, now).await?;
    domain::check_new_password(password)?;
    let hash = auth::hash_password(password.to_string()).await?;
    let id = user.user.id.clone();
    let mut tx = state.db.begin().await?;
    if !users::reset_password(&mut tx, &id, &code, &hash, now).await? {
        return Err(ApiError::not_found());
    }
    let ended = sessions::end_user_sessions(&mut tx, &id, None, "password_reset", now).await?;
    let event = own_event(
        &user.user,
        client,
        "user.password_reset",
        "user",
        id,
        serde_json::json!({ "sessions_ended": ended }),
    );
    crate::db::audit::commit_audited(tx, event, now).await?;
    Ok(())
}

/// Whether `token` would set a password now (404 unknown or used, 410 expired); the reset
/// page checks its link with this before it asks for the password. Changes nothing.
pub async fn check_reset(state: &AppState, token: &str) -> ApiResult<()> {
    reset_holder(state, &secret_hash(token), state.now()).await?;
    Ok(())
}

/// The active account whose reset code hashes to `code`, while the code works.
async fn reset_holder(state: &AppState, code: &str, now: i64) -> ApiResult<users::UserRow> {
    let Some(user) = users::user_by_reset(&state.db.pool, code).await? else {
        return Err(ApiError::not_found());
    };
    if now - user.reset_issued_at.unwrap_or(0) > RESET_LIFETIME_MS {
        return Err(ApiError::new(
            StatusCode::GONE,
            "code_expired",
            "the link has expired; ask for a new one",
        ));
    }
    Ok(user)
}

/// A change that would give an address to a second account: `409 email_taken`.
fn email_taken(detail: &'static str) -> impl FnOnce(crate::db::DbError) -> ApiError {
    move |e| {
        if e.is_unique_violation() {
            ApiError::conflict("email_taken", detail)
        } else {
            e.into()
        }
    }
}

/// Commits a redeemed code's change with its event, the user acting on their own account.
async fn redeemed(
    tx: crate::db::Tx,
    user: &loop_api::User,
    client: &ClientInfo,
    action: &'static str,
    now: i64,
) -> ApiResult<()> {
    let event = own_event(
        user,
        client,
        action,
        "user",
        user.id.clone(),
        serde_json::json!({}),
    );
    crate::db::audit::commit_audited(tx, event, now).await?;
    Ok(())
}
