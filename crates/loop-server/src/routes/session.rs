//! Sign-in, sign-out, the caller's own account (password, TOTP) and invitations.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loop_api::{
    ActorKind, ChangePassword, LoginRequest, LoginResponse, Me, Outcome, PasswordCheck, TotpCode,
    TotpEnrollment, User, UserStatus,
};

use super::{Json, commit, commit_audited};
use crate::auth::{self, Caller, ClientInfo, session, totp};
use crate::db::audit::{NewEvent, Personal};
use crate::db::sessions::{self};
use crate::db::{self};
use crate::db::{tenants, users};
use crate::domain::{self, EmailAddress};
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Attempt};

fn throttled(retry_after_secs: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "signin_throttled",
        "too many failed sign-ins; wait and try again",
    )
    .retry_after(retry_after_secs)
}

fn bad_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "e-mail or password is wrong",
    )
}

/// Records a failed sign-in in the audit log (of the account's tenant when the account
/// exists, else of the provider).
async fn audit_failure(
    state: &AppState,
    tenant_id: &str,
    user_id: Option<&str>,
    client: &ClientInfo,
    reason: &str,
) -> ApiResult<()> {
    audit_refusal(state, "auth.signin", tenant_id, user_id, client, reason).await
}

/// Records a refused password check (`action`) in the audit log.
async fn audit_refusal(
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
    commit(tx).await
}

/// An event in which a user acts on their own account with no session yet (signing in, or
/// redeeming a code from an e-mail): the user is the actor and the subject of its personal data.
pub(super) fn own_event(
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
    let ip = client.ip.clone().unwrap_or_default();
    let provider = tenants::provider_tenant(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::Internal("no provider tenant".into()))?;
    let email = EmailAddress::parse(&req.email)
        .map(|e| e.as_str().to_string())
        .map_err(|_| ());
    let account = email.clone().unwrap_or_else(|_| req.email.to_lowercase());
    let attempt = match state.throttle.begin(&state.db, &account, &ip, now).await? {
        Attempt::Allowed(attempt) => attempt,
        Attempt::Throttled {
            audit,
            retry_after_secs,
        } => {
            if !audit {
                return Err(throttled(retry_after_secs));
            }
            let user = account_of(&state, &email).await?;
            let tenant = user
                .as_ref()
                .map_or(&provider.tenant.id, |u| &u.user.tenant_id);
            let uid = user.as_ref().map(|u| u.user.id.as_str());
            audit_failure(&state, tenant, uid, &client, "throttled").await?;
            return Err(throttled(retry_after_secs));
        }
    };
    let user = account_of(&state, &email).await?;
    let hash = user
        .as_ref()
        .filter(|u| u.user.status == UserStatus::Active)
        .and_then(|u| u.password_hash.clone());
    let password_ok = auth::verify_password(req.password.expose().to_string(), hash).await?;
    let Some(user) = user.filter(|_| password_ok) else {
        let known = account_of(&state, &email).await?;
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
            None => (provider.tenant.id.as_str(), None, "unknown_account"),
        };
        audit_failure(&state, tenant, uid, &client, reason).await?;
        return Err(bad_credentials());
    };
    if user.user.totp_enabled {
        let secret = user.totp_secret.clone().unwrap_or_default();
        let Some(code) = req.totp.as_deref() else {
            state.throttle.undecided(&state.db, attempt).await?;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "totp_required",
                "enter the code from your authenticator app",
            ));
        };
        let checked = totp::check(&state, &user.user, &secret, code, now).await?;
        if checked != totp::Code::Accepted {
            let reason = if checked == totp::Code::Reused {
                "reused_totp"
            } else {
                "wrong_totp"
            };
            audit_failure(
                &state,
                &user.user.tenant_id,
                Some(&user.user.id),
                &client,
                reason,
            )
            .await?;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_totp",
                "the authenticator code is wrong or was already used",
            ));
        }
    }
    state
        .throttle
        .succeeded(&state.db, &account, attempt)
        .await?;

    let label = req
        .device_label
        .as_deref()
        .map(|l| domain::parse_name("device label", l))
        .transpose()?;
    let mut tx = state.db.begin().await?;
    let started = session::start(
        &mut tx,
        &state,
        &user.user,
        &client,
        label.as_deref(),
        req.remember,
        now,
    )
    .await?;
    let (id, secret) = (started.id, started.secret);
    commit_audited(
        tx,
        own_event(
            &user.user,
            &client,
            "auth.signin",
            "session",
            id.clone(),
            serde_json::json!({ "remember": req.remember, "totp": user.user.totp_enabled }),
        ),
        now,
    )
    .await?;
    let session = sessions::session_by_id(&state.db.pool, &id)
        .await?
        .ok_or_else(|| ApiError::Internal("new session vanished".into()))?;
    let mut s = session.session;
    s.current = true;
    let policy_to_acknowledge =
        crate::db::privacy::policy_to_acknowledge(&state.db.pool, &user.user.id).await?;
    let body = LoginResponse {
        user: user.user,
        session: s,
        session_token: secret.clone().into(),
        policy_to_acknowledge,
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        session::cookie(&secret, started.cookie_max_age),
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
    let u = caller.user()?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    sessions::end_session(&mut tx, &u.session.session.id, "signout", now).await?;
    commit_audited(
        tx,
        caller.event(
            &u.user.user.tenant_id,
            "auth.signout",
            "session",
            Some(&u.session.session.id),
            serde_json::json!({}),
        ),
        now,
    )
    .await?;
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
    let u = caller.user()?;
    // Guessing the current password here counts like guessing it at sign-in: the same
    // throttle, and every refusal is audited.
    let now = state.now();
    let (account, ip) = (
        u.user.user.email.clone(),
        caller.client.ip.clone().unwrap_or_default(),
    );
    let (tenant_id, user_id) = (&u.user.user.tenant_id, u.user.user.id.as_str());
    let refused = |reason: &'static str| {
        audit_refusal(
            &state,
            "user.password_change",
            tenant_id,
            Some(user_id),
            &caller.client,
            reason,
        )
    };
    let attempt = match state.throttle.begin(&state.db, &account, &ip, now).await? {
        Attempt::Allowed(attempt) => attempt,
        Attempt::Throttled {
            audit,
            retry_after_secs,
        } => {
            if audit {
                refused("throttled").await?;
            }
            return Err(throttled(retry_after_secs));
        }
    };
    if !auth::verify_password(
        req.current_password.expose().to_string(),
        u.user.password_hash.clone(),
    )
    .await?
    {
        refused("wrong_password").await?;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "wrong_password",
            "the current password is wrong",
        ));
    }
    state
        .throttle
        .succeeded(&state.db, &account, attempt)
        .await?;
    domain::check_new_password(req.new_password.expose())?;
    let hash = auth::hash_password(req.new_password.expose().to_string()).await?;
    let mut tx = state.db.begin().await?;
    users::set_password(&mut tx, &u.user.user.id, &hash, now).await?;
    let ended = sessions::end_user_sessions(
        &mut tx,
        &u.user.user.id,
        Some(&u.session.session.id),
        "password_change",
        now,
    )
    .await?;
    commit_audited(
        tx,
        caller.event(
            &u.user.user.tenant_id,
            "user.password_change",
            "user",
            Some(&u.user.user.id),
            serde_json::json!({ "sessions_ended": ended }),
        ),
        now,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start TOTP enrolment
///
/// Returns a new secret, which takes effect once confirmed. Asks for the current password, so a
/// stolen session cannot lock the owner out with its own secret.
#[utoipa::path(post, path = "/api/v1/me/totp", tag = "auth", request_body = PasswordCheck,
    responses((status = 200, description = "Success", body = TotpEnrollment),
              (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem), (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn enroll_totp(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<PasswordCheck>,
) -> ApiResult<axum::Json<TotpEnrollment>> {
    let u = caller.user()?;
    if !auth::verify_password(
        req.current_password.expose().to_string(),
        u.user.password_hash.clone(),
    )
    .await?
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "wrong_password",
            "the current password is wrong",
        ));
    }
    if u.user.user.totp_enabled {
        return Err(ApiError::conflict(
            "totp_enabled",
            "TOTP is already enabled",
        ));
    }
    // 256 random bits, kept wrapped under the master key: a copy of the database alone
    // cannot generate codes.
    let key = loop_repo::crypto::Key::generate();
    let stored = state.master.wrap(&totp::context(&u.user.user.id), &key);
    let secret = totp_rs::Secret::from(key.expose().to_vec()).to_base32();
    let totp = totp::with_secret(key.expose().to_vec(), &u.user.user.email)?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    users::set_totp(&mut tx, &u.user.user.id, Some(&stored), false, now).await?;
    commit_audited(
        tx,
        caller.event(
            &u.user.user.tenant_id,
            "user.totp_enroll",
            "user",
            Some(&u.user.user.id),
            serde_json::json!({}),
        ),
        now,
    )
    .await?;
    Ok(axum::Json(TotpEnrollment {
        otpauth_url: totp
            .to_url()
            .map_err(|e| ApiError::Internal(format!("TOTP URL: {e:?}")))?
            .into(),
        secret: secret.into(),
    }))
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
    let u = caller.user()?;
    let Some(secret) = u
        .user
        .totp_secret
        .as_deref()
        .filter(|_| !u.user.user.totp_enabled)
    else {
        return Err(ApiError::conflict(
            "no_enrolment",
            "start TOTP enrolment first",
        ));
    };
    let now = state.now();
    if totp::check(&state, &u.user.user, secret, &req.code, now).await? != totp::Code::Accepted {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_totp",
            "the authenticator code is wrong",
        ));
    }
    let mut tx = state.db.begin().await?;
    users::set_totp(&mut tx, &u.user.user.id, Some(secret), true, now).await?;
    commit_audited(
        tx,
        caller.event(
            &u.user.user.tenant_id,
            "user.totp_enable",
            "user",
            Some(&u.user.user.id),
            serde_json::json!({}),
        ),
        now,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
