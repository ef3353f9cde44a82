//! A vault's retention lock: set and lengthened here, enforced on every change to the
//! vault's objects (`db::objects`) and on the vault's deletion.

use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{SetRetentionLock, Vault, VaultId};

use super::{Json, Path, audit_refused, commit_audited};
use crate::auth::Caller;
use crate::db::{Tx, retention_lock, vaults};
use crate::domain::{Permission, retention_lock_days};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::vaults::scoped_vault;

/// Set a vault's retention lock
///
/// From then on no stored object of the vault (lock markers and prune plans aside) may be
/// replaced or deleted, by any token, admin or job, before it is `days` old by the server's
/// record of its arrival. A lock can be lengthened, never shortened or removed (`409
/// retention_lock`, audited).
#[utoipa::path(put, path = "/api/v1/vaults/{id}/retention-lock", tag = "vaults",
    params(("id" = VaultId, Path)), request_body = SetRetentionLock,
    responses((status = 200, description = "Success", body = Vault),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Conflict (problem+json)", body = loop_api::Problem)))]
pub async fn set_retention_lock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<VaultId>,
    Json(req): Json<SetRetentionLock>,
) -> ApiResult<axum::Json<Vault>> {
    let v = scoped_vault(&state, &caller, Permission::VaultWrite, &id).await?;
    let days = retention_lock_days(req.days)?;
    let event = |details| {
        caller.event(
            &v.tenant_id,
            "vault.retention_lock",
            "vault",
            Some(&v.id),
            details,
        )
    };
    let mut tx = state.db.begin().await?;
    if !vaults::lengthen_retention_lock(&mut tx, &v.id, days).await? {
        drop(tx);
        audit_refused(
            &state,
            event(serde_json::json!({
                "reason": "shortening", "days": days, "current_days": v.retention_lock_days,
            })),
        )
        .await?;
        return Err(ApiError::conflict(
            "retention_lock",
            format!(
                "a retention lock can be lengthened, never shortened; this vault's is {} days",
                v.retention_lock_days.unwrap_or_default()
            ),
        ));
    }
    commit_audited(
        tx,
        event(serde_json::json!({ "days": days, "previous_days": v.retention_lock_days })),
        state.now(),
    )
    .await?;
    Ok(axum::Json(
        scoped_vault(&state, &caller, Permission::VaultRead, &id).await?,
    ))
}

/// Refuses (403 `retention_locked`, audited) deleting vault `v` while its retention lock
/// holds any of its objects. Called inside the deletion's transaction, after the vault's
/// row is updated, so no object can arrive between the check and the deletion.
pub(super) async fn refuse_locked_deletion(
    state: &AppState,
    caller: &Caller,
    tx: Tx,
    v: &Vault,
) -> ApiResult<Tx> {
    let mut tx = tx;
    let Some(until) = retention_lock::vault_held_until(&mut tx, &v.id, state.now()).await? else {
        return Ok(tx);
    };
    drop(tx);
    let until = crate::db::time(until)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    audit_refused(
        state,
        caller.event(
            &v.tenant_id,
            "vault.delete",
            "vault",
            Some(&v.id),
            serde_json::json!({ "reason": "retention_lock", "locked_until": until }),
        ),
    )
    .await?;
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "retention_locked",
        format!("the vault's retention lock keeps some of its objects until {until}"),
    ))
}
