//! Self-service sign-up (`crate::signup`): the plans offered, the request, and its
//! confirmation. No session: these are how an organisation gets its first one.

use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{ConfirmSignUp, Plan, SignUp, SignUpAccepted, SignedUp};

use super::Json;
use crate::auth::ClientInfo;
use crate::error::ApiResult;
use crate::state::AppState;

/// Plans offered on the sign-up
///
/// The plans an organisation may start a trial of by itself. `404` when none is offered:
/// sign-up is off, and customers are created by their provider or partner.
#[utoipa::path(get, path = "/api/v1/signup/plans", tag = "signup",
    responses((status = 200, description = "Success", body = Vec<Plan>),
        (status = 404, description = "Sign-up is off (problem+json)", body = loop_api::Problem)))]
pub async fn signup_plans(State(state): State<AppState>) -> ApiResult<axum::Json<Vec<Plan>>> {
    Ok(axum::Json(crate::signup::offered(&state).await?))
}

/// Sign up for a trial
///
/// Records the request and mails a confirmation code to the address (valid 7 days); nothing
/// is created until the code is confirmed. The answer is the same whether or not the
/// address has an account (its owner is told by mail instead). At most 3 sign-ups per
/// address and 10 per client address within the sign-in throttle's window (15 minutes by
/// default; `429` with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/signup", tag = "signup", request_body = SignUp,
    responses((status = 202, description = "The code is on its way", body = SignUpAccepted),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Sign-up is off (problem+json)", body = loop_api::Problem),
        (status = 429, description = "Too many sign-ups (problem+json)", body = loop_api::Problem)))]
pub async fn sign_up(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<SignUp>,
) -> ApiResult<(StatusCode, axum::Json<SignUpAccepted>)> {
    crate::signup::sign_up(&state, &client, req).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(SignUpAccepted {
            status: "confirmation_sent".into(),
        }),
    ))
}

/// Confirm a sign-up
///
/// The code from the sign-up mail makes the customer (under the plan's provider or
/// partner), its administrator (who then signs in with the address and password given) and
/// the subscription, whose free trial starts now. A code works once.
#[utoipa::path(post, path = "/api/v1/signup/confirm", tag = "signup", request_body = ConfirmSignUp,
    responses((status = 201, description = "Created", body = SignedUp),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 404, description = "The code is unknown, used or expired (problem+json)", body = loop_api::Problem),
        (status = 409, description = "The address has an account by now, or the plan is withdrawn (problem+json)", body = loop_api::Problem)))]
pub async fn confirm_sign_up(
    State(state): State<AppState>,
    Json(req): Json<ConfirmSignUp>,
) -> ApiResult<(StatusCode, axum::Json<SignedUp>)> {
    let done = crate::signup::confirm(&state, req).await?;
    Ok((StatusCode::CREATED, axum::Json(done)))
}
