//! Codes that come by e-mail: an invitation (the invited account's password is set), the
//! confirmation of a new address, and a password reset (asked for here too).

use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{
    AcceptInvite, ConfirmEmail, PasswordResetRequested, RequestPasswordReset, ResetPassword,
};

use super::Json;
use crate::auth::ClientInfo;
use crate::error::ApiResult;
use crate::state::AppState;

/// Accept an invitation
///
/// Sets the password of an invited account. An invitation is valid 7 days.
#[utoipa::path(post, path = "/api/v1/auth/accept-invite", tag = "auth", request_body = AcceptInvite,
    responses((status = 204, description = "Done, no content"), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
              (status = 409, description = "The address has an account already (problem+json)", body = loop_api::Problem),
              (status = 410, description = "The invitation expired (problem+json)", body = loop_api::Problem)))]
pub async fn accept_invite(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<AcceptInvite>,
) -> ApiResult<StatusCode> {
    crate::codes::accept_invite(
        &state,
        &client,
        req.invite_token.expose(),
        req.password.expose(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Confirm a new e-mail address
///
/// With the code sent to it (valid 7 days): the account signs in with the new address from then
/// on.
#[utoipa::path(post, path = "/api/v1/auth/confirm-email", tag = "auth", request_body = ConfirmEmail,
    responses((status = 204, description = "Done, no content"), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
              (status = 409, description = "The address has an account already (problem+json)", body = loop_api::Problem),
              (status = 410, description = "The code expired (problem+json)", body = loop_api::Problem)))]
pub async fn confirm_email(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<ConfirmEmail>,
) -> ApiResult<StatusCode> {
    crate::codes::confirm_email(&state, &client, req.token.expose()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ask for a password reset
///
/// Mails a link that sets a new password (valid an hour, works once) to the address, when it
/// is an active account's. The answer is the same whether or not the address has an account.
/// At most 3 requests per address and 10 per client address within the sign-in throttle's
/// window (15 minutes by default; `429` with `Retry-After`). Every request is audited.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = RequestPasswordReset,
    responses((status = 202, description = "The link is on its way, if the address has an account", body = PasswordResetRequested),
              (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
              (status = 429, description = "Too many requests (problem+json)", body = loop_api::Problem)))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<RequestPasswordReset>,
) -> ApiResult<(StatusCode, axum::Json<PasswordResetRequested>)> {
    crate::codes::request_reset(&state, &client, &req.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(PasswordResetRequested {
            status: "reset_sent".into(),
        }),
    ))
}

/// Reset a password
///
/// Sets a new password with the code from a reset mail (valid an hour, works once) and ends
/// every session of the account. An authenticator stays: signing in still asks for its code.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetPassword,
    responses((status = 204, description = "Done, no content"),
              (status = 400, description = "Invalid request, or a password too short or too long (problem+json)", body = loop_api::Problem),
              (status = 404, description = "The code is unknown or used (problem+json)", body = loop_api::Problem),
              (status = 410, description = "The code expired (problem+json)", body = loop_api::Problem)))]
pub async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<ResetPassword>,
) -> ApiResult<StatusCode> {
    crate::codes::reset_password(&state, &client, req.token.expose(), req.password.expose())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
