//! Sign-in, sign-out, the caller's own account (password, TOTP) and invitations.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loop_api::{
    ChangePassword, LoginRequest, LoginResponse, Me, PasswordCheck, TotpCode, TotpEnrollment,
};

use super::Json;
use crate::auth::signin;
use crate::auth::{Caller, ClientInfo, session};
use crate::domain;
use crate::error::ApiResult;
use crate::state::AppState;

/// Sign in
///
/// Sets the session cookie and returns the session token for non-browser clients.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "Success", body = LoginResponse), (status = 401, description = "Not signed in, or the credentials are wrong (problem+json)", body = loop_api::Problem),
              (status = 429, description = "Too many failed sign-ins (problem+json)", body = loop_api::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let now = state.now();
    // Checked first: a request refused for its form is no attempt (it would count as a
    // failure, and burn an authenticator code, with nothing in the audit log).
    let label = req
        .device_label
        .as_deref()
        .map(|l| domain::parse_name("device label", l))
        .transpose()?;
    let (user, attempted) =
        signin::password(&state, &client, &req.email, req.password.expose(), now).await?;
    if user.user.totp_enabled {
        let Some(code) = req.totp.as_deref() else {
            signin::undecided(&state, attempted).await?;
            return Err(signin::totp_required());
        };
        signin::second_factor(&state, &client, &user, code, now).await?;
    }
    let opened = signin::open(
        &state,
        &client,
        &user,
        attempted,
        label.as_deref(),
        req.remember,
        now,
    )
    .await?;
    let mut s = opened.session.session;
    s.current = true;
    let policy_to_acknowledge =
        crate::db::privacy::policy_to_acknowledge(&state.db.pool, &user.user.id).await?;
    let body = LoginResponse {
        user: user.user,
        session: s,
        session_token: opened.secret.clone().into(),
        policy_to_acknowledge,
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        session::cookie(&opened.secret, opened.cookie_max_age),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((headers, axum::Json(body)).into_response())
}

/// Sign out
///
/// Ends the current session and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Done, no content"), (status = 401, description = "Not signed in, or the credentials are wrong (problem+json)", body = loop_api::Problem)))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    session::end_by_request(&state, &caller).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, session::cookie("", Some(0)));
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// Who is signed in
///
/// The user, their role bindings, the current session, and the privacy policy in force
/// when they have not acknowledged it yet.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, description = "Success", body = Me), (status = 401, description = "Not signed in, or the credentials are wrong (problem+json)", body = loop_api::Problem)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<Me>> {
    let u = caller.user()?;
    let mut s = u.session.session.clone();
    s.current = true;
    Ok(axum::Json(Me {
        user: u.user.user.clone(),
        roles: u.bindings.iter().map(|b| b.binding.clone()).collect(),
        session: Some(s),
        policy_to_acknowledge: crate::db::privacy::policy_to_acknowledge(
            &state.db.pool,
            &u.user.user.id,
        )
        .await?,
    }))
}

/// Change your password
///
/// Every other session of the user ends.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "auth", request_body = ChangePassword,
    responses((status = 204, description = "Done, no content"), (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem), (status = 429, description = "Too many wrong passwords; wait (problem+json)", body = loop_api::Problem)))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<ChangePassword>,
) -> ApiResult<StatusCode> {
    crate::accounts::change_password(
        &state,
        &caller,
        req.current_password.expose(),
        req.new_password.expose(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start TOTP enrolment
///
/// Returns a new secret, which takes effect once confirmed. Asks for the current password, so a
/// stolen session cannot lock the owner out with its own secret; a wrong one counts like a
/// wrong password at sign-in (the same throttle, audited).
#[utoipa::path(post, path = "/api/v1/me/totp", tag = "auth", request_body = PasswordCheck,
    responses((status = 200, description = "Success", body = TotpEnrollment),
              (status = 400, description = "Invalid request, or the current password is wrong (problem+json)", body = loop_api::Problem), (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem),
              (status = 429, description = "Too many wrong passwords (problem+json)", body = loop_api::Problem)))]
pub async fn enroll_totp(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<PasswordCheck>,
) -> ApiResult<axum::Json<TotpEnrollment>> {
    let enrolment =
        crate::accounts::enrol_totp(&state, &caller, req.current_password.expose()).await?;
    Ok(axum::Json(enrolment))
}

/// Confirm TOTP enrolment
///
/// With a current code; sign-ins then ask for a code.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "auth", request_body = TotpCode,
    responses((status = 204, description = "Done, no content"), (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem), (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<TotpCode>,
) -> ApiResult<StatusCode> {
    crate::accounts::confirm_totp(&state, &caller, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}
