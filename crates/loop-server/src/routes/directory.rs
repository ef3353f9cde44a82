//! Users and role bindings (tenants are in `tenants.rs`).

use axum::extract::OriginalUri;
use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{
    CreateRoleBinding, CreateUser, CreatedUser, RoleBinding, RoleBindingId, UpdateUser, User,
    UserId, UserStatus,
};

use super::pages::{Listing, page};
use super::tenants::TenantFilter;
use super::{Json, Path, Query, commit_audited};
use crate::auth::Caller;
use crate::db::{bindings, sessions, users};
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use loop_api::PageQuery;

/// List users
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(TenantFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<User>)))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<User>> {
    let scope = caller
        .scope(&state, Permission::UserRead, f.tenant_id.as_ref())
        .await?;
    let page = users::users_in(&state.db.pool, &scope, Some(&page(&p)?)).await?;
    Ok(Listing::new(uri, page))
}

/// Create or invite a user
///
/// With a password, a user; without one, an invitation (the response holds a one-time invite
/// token only for an administrator of the whole service; otherwise it goes to the address by
/// e-mail).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, description = "Created", body = CreatedUser), (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateUser>,
) -> ApiResult<(StatusCode, axum::Json<CreatedUser>)> {
    let code = crate::directory::InviteCode::ToCaller;
    let made = crate::directory::create_user(&state, &caller, req, code).await?;
    Ok((StatusCode::CREATED, axum::Json(made)))
}

/// Show a user
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = UserId, Path)),
    responses((status = 200, description = "Success", body = User), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(
        crate::directory::scoped_user(&state, &caller, Permission::UserRead, &id)
            .await?
            .0
            .user,
    ))
}

/// Update a user
///
/// Name, e-mail or business address (rectification). A new address of an account takes effect
/// once its owner confirms it. Your own account changes as through `PATCH /api/v1/me` (a new
/// address needs `current_password`); someone holding a role you do not wholly hold is out
/// of reach (403).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = UserId, Path)),
    request_body = UpdateUser, responses((status = 200, description = "Success", body = User), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem), (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
    Json(req): Json<UpdateUser>,
) -> ApiResult<axum::Json<User>> {
    let (row, _) = crate::directory::account_in_reach(&state, &caller, &id).await?;
    if caller.actor().1 == row.user.id {
        return Ok(axum::Json(
            crate::accounts::change_own(&state, &caller, req).await?,
        ));
    }
    let whole = caller.holds_on_whole_service(Permission::UserRead);
    Ok(axum::Json(
        crate::accounts::change(&state, &caller, row, req, whole).await?,
    ))
}

/// Update your own profile
///
/// Any signed-in user corrects their own name, business address, language or e-mail
/// (rectification). A new address takes effect once confirmed with the code mailed to it,
/// and needs `current_password` (`400 password_required`, `400 wrong_password`).
#[utoipa::path(patch, path = "/api/v1/me", tag = "auth", request_body = UpdateUser,
    responses((status = 200, description = "Success", body = User),
        (status = 409, description = "The address is taken (problem+json)", body = loop_api::Problem)))]
pub async fn update_me(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<UpdateUser>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(
        crate::accounts::change_own(&state, &caller, req).await?,
    ))
}

async fn set_status(
    state: &AppState,
    caller: &Caller,
    id: &UserId,
    status: UserStatus,
    action: &'static str,
) -> ApiResult<axum::Json<User>> {
    let (row, _) = crate::directory::account_in_reach(state, caller, id).await?;
    if caller.actor().1 == row.user.id {
        return Err(ApiError::conflict(
            "self",
            "you cannot change your own status",
        ));
    }
    if crate::person::is_erased(&row) {
        return Err(ApiError::conflict(
            "user_erased",
            "this person was erased: the account is a pseudonym and stays disabled",
        ));
    }
    // An invitation is not an account yet: made one here, it would hold its address across
    // the service (and whether it could would tell whether the address has an account
    // elsewhere). It is the same answer either way.
    if row.user.status == UserStatus::Invited {
        return Err(ApiError::conflict(
            "invited",
            "this person has not accepted the invitation yet: there is no account to enable \
             or disable (erase the invitation to withdraw it)",
        ));
    }
    let now = state.now();
    let mut tx = state.db.begin().await?;
    crate::person::hold_unerased(&mut tx, id.as_str()).await?;
    users::set_user_status(&mut tx, id.as_str(), status, now).await?;
    let ended = if status == UserStatus::Disabled {
        sessions::end_user_sessions(&mut tx, id.as_str(), None, "user_disabled", now).await?
    } else {
        0
    };
    commit_audited(
        tx,
        caller.event(
            &row.user.tenant_id,
            action,
            "user",
            Some(id.as_str()),
            serde_json::json!({ "sessions_ended": ended }),
        ),
        now,
    )
    .await?;
    let mut u = row.user;
    u.status = status;
    Ok(axum::Json(u))
}

/// Disable a user
///
/// They can no longer sign in, and their sessions end.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users", params(("id" = UserId, Path)),
    responses((status = 200, description = "Success", body = User), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem), (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn disable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
) -> ApiResult<axum::Json<User>> {
    set_status(&state, &caller, &id, UserStatus::Disabled, "user.disable").await
}

/// Enable a disabled user
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "users", params(("id" = UserId, Path)),
    responses((status = 200, description = "Success", body = User), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem), (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn enable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
) -> ApiResult<axum::Json<User>> {
    set_status(&state, &caller, &id, UserStatus::Active, "user.enable").await
}

/// List a user's role bindings
#[utoipa::path(get, path = "/api/v1/users/{id}/roles", tag = "users", params(("id" = UserId, Path)),
    responses((status = 200, description = "Success", body = Vec<RoleBinding>), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn list_roles(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
) -> ApiResult<axum::Json<Vec<RoleBinding>>> {
    crate::directory::scoped_user(&state, &caller, Permission::UserRead, &id).await?;
    let b = bindings::bindings_of(&state.db.pool, id.as_str()).await?;
    Ok(axum::Json(b.into_iter().map(|b| b.binding).collect()))
}

/// Bind a role to a user
///
/// On the user's own tenant or a tenant below it.
#[utoipa::path(post, path = "/api/v1/users/{id}/roles", tag = "users", params(("id" = UserId, Path)),
    request_body = CreateRoleBinding,
    responses((status = 201, description = "Created", body = RoleBinding), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem), (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn grant_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
    Json(req): Json<CreateRoleBinding>,
) -> ApiResult<(StatusCode, axum::Json<RoleBinding>)> {
    let b = crate::directory::grant_role(&state, &caller, &id, req).await?;
    Ok((StatusCode::CREATED, axum::Json(b)))
}

/// Remove a role binding
#[utoipa::path(delete, path = "/api/v1/users/{id}/roles/{binding_id}", tag = "users",
    params(("id" = UserId, Path), ("binding_id" = RoleBindingId, Path)),
    responses((status = 204, description = "Done, no content"), (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn revoke_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, binding_id)): Path<(UserId, RoleBindingId)>,
) -> ApiResult<StatusCode> {
    crate::directory::revoke_role(&state, &caller, &id, &binding_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
