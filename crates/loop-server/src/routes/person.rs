//! `POST /api/v1/users/{id}/erase`: erasing a person on request (`crate::person`).

use axum::extract::State;
use loop_api::{ErasePerson, PersonErased, UserId};

use super::{Json, Path};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Erase a person
///
/// On a person's or their organisation's request: removes the user's name, e-mail, business
/// address, password, sessions (with IP addresses and browsers), the IP addresses and
/// browsers the audit log holds about them, their roles, and their address on notification
/// targets. The user stays as a pseudonym, so the events they caused stay in the audit log
/// as events of a pseudonymous actor and every chain still verifies. Admins of the user's
/// tenant; `confirm` repeats the user's e-mail address; not yourself.
#[utoipa::path(post, path = "/api/v1/users/{id}/erase", tag = "users",
    params(("id" = UserId, Path)), request_body = ErasePerson,
    responses((status = 200, description = "Erased; what was removed", body = PersonErased),
        (status = 400, description = "The confirmation does not match (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Yourself, or erased already (problem+json)", body = loop_api::Problem)))]
pub async fn erase_person(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
    Json(req): Json<ErasePerson>,
) -> ApiResult<axum::Json<PersonErased>> {
    let (u, _) = crate::directory::account_in_reach(&state, &caller, &id).await?;
    if caller.actor().1 == u.user.id {
        return Err(ApiError::conflict(
            "self",
            "ask another administrator to erase you",
        ));
    }
    if crate::person::is_erased(&u) {
        return Err(ApiError::conflict(
            "user_erased",
            "this person was erased already",
        ));
    }
    if !req.confirm.trim().eq_ignore_ascii_case(&u.user.email) {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "confirmation_mismatch",
            "confirm must repeat the user's e-mail address",
        ));
    }
    let event = caller.event(
        &u.user.tenant_id,
        "user.erase",
        "user",
        Some(id.as_str()),
        serde_json::json!({}),
    );
    Ok(axum::Json(crate::person::erase(&state, &u, event).await?))
}
