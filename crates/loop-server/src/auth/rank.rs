//! The rank rule: a caller acts on someone's account (changes, disables, erases it, ends
//! their sessions, restricts their data) or gives and takes roles only within what it
//! holds itself, so an admin of the provider cannot take over or lock out a provider-admin.

use crate::db::bindings;
use crate::domain::{Permission, Role, RoleRules as _, TenantPath};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

use super::Caller;

/// Whether `caller` holds on the tenant at `path` every permission `role` grants: only then
/// may they give it, take it away, or act on the account of someone bound to it there.
pub fn holds_all_of(caller: &Caller, role: Role, path: &TenantPath) -> ApiResult<()> {
    if Permission::ALL
        .iter()
        .copied()
        .any(|p| role.grants(p) && !caller.can(p, path))
    {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "permission_denied",
            format!("the {role} role grants more than you hold there"),
        ));
    }
    Ok(())
}

/// Whether user `user_id` is within `caller`'s rank: every role they are bound to is one
/// the caller wholly holds where it is bound (403 otherwise).
pub async fn within_rank(state: &AppState, caller: &Caller, user_id: &str) -> ApiResult<()> {
    for b in bindings::bindings_of(&state.db.pool, user_id).await? {
        holds_all_of(caller, b.binding.role, &b.tenant_path)?;
    }
    Ok(())
}
