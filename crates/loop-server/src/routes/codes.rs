//! Redeeming a code that came by e-mail: an invitation (the invited account's password is
//! set) or the confirmation of a new address.

use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{AcceptInvite, ConfirmEmail};

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
