//! Redeeming a code that came by e-mail: an invitation (the invited account's password is
//! set) or the confirmation of a new address. The API and the console's pages both call
//! these; each redemption is audited as the user's own act.

use axum::http::StatusCode;

use crate::auth::signin::own_event;
use crate::auth::{self, ClientInfo};
use crate::db::users;
use crate::domain::{self, secret_hash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// An invitation, or a code confirming a new address, is valid this long after it was issued.
const INVITE_LIFETIME_MS: i64 = 7 * 86_400_000;

/// Sets the password of the account invited with `token` (valid 7 days, works once).
pub async fn accept_invite(
    state: &AppState,
    client: &ClientInfo,
    token: &str,
    password: &str,
) -> ApiResult<()> {
    let Some(user) = users::user_by_invite(&state.db.pool, &secret_hash(token)).await? else {
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
    // the holder of the invitation, the address's owner, learns that here.
    users::set_password(&mut tx, &user.user.id, &hash, now)
        .await
        .map_err(email_taken(
            "this address has an account already; sign in with it",
        ))?;
    redeemed(tx, &user.user, client, "user.invite_accept", now).await
}

/// Moves the account whose new address received `token` (valid 7 days) to that address.
pub async fn confirm_email(state: &AppState, client: &ClientInfo, token: &str) -> ApiResult<()> {
    let Some(user) = users::user_by_email_token(&state.db.pool, &secret_hash(token)).await? else {
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
    users::confirm_email(&mut tx, &user.user.id, now)
        .await
        .map_err(email_taken("this address has an account already"))?;
    redeemed(tx, &user.user, client, "user.email_confirm", now).await
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
