//! Device and API tokens, made and revoked: the API and the console both call these. A
//! token's secret is in the answer that makes it, once; the server keeps its hash. Each change
//! is audited.

use loop_api::{CreateToken, CreatedToken, Token, TokenId};

use crate::auth::Caller;
use crate::db::{self, devices, tokens, vaults};
use crate::domain::{NewToken, Permission, new_id, new_secret, secret_hash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Makes the token `req` describes in its tenant (token-write there): its device and vaults
/// must be that tenant's.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    req: CreateToken,
) -> ApiResult<CreatedToken> {
    let tenant = caller
        .tenant(state, Permission::TokenWrite, req.tenant_id.as_str())
        .await?;
    let req = NewToken::parse(req)?;
    if let Some(d) = req.holder.device_id() {
        let dev = devices::device_by_id(&state.db.pool, d.as_str()).await?;
        if dev.is_none_or(|dev| dev.tenant_id != tenant.tenant.id) {
            return Err(ApiError::bad_request("no such device in this tenant"));
        }
    }
    for v in &req.vault_ids {
        let vault = vaults::vault_by_id(&state.db.pool, v.as_str()).await?;
        if vault.is_none_or(|vault| vault.tenant_id != tenant.tenant.id) {
            return Err(ApiError::bad_request("no such vault in this tenant"));
        }
    }
    let now = state.now();
    let t = Token {
        id: new_id(TokenId::PREFIX),
        tenant_id: tenant.tenant.id.clone(),
        kind: req.holder.kind(),
        name: req.name,
        device_id: req.holder.device_id().map(|d| d.to_string()),
        vault_ids: req.vault_ids.into_iter().map(String::from).collect(),
        permissions: req.permissions,
        created_at: db::time(now),
        expires_at: (req.expires_in_days).map(|d| db::time(now + d as i64 * 86_400_000)),
        revoked_at: None,
        last_used_at: None,
    };
    let secret = new_secret("lpt");
    let mut tx = state.db.begin().await?;
    let hash = secret_hash(&secret);
    if !tokens::insert_token(&mut tx, &t, &hash, &caller.actor().1, now).await? {
        return Err(ApiError::conflict(
            "changed",
            "the tenant was erased or the device removed meanwhile",
        ));
    }
    let event = caller.event(
        &t.tenant_id,
        "token.create",
        "token",
        Some(&t.id),
        serde_json::json!({
            "kind": t.kind, "permissions": t.permissions, "vault_ids": t.vault_ids,
            "device_id": t.device_id,
        }),
    );
    db::audit::commit_audited(tx, event, now).await?;
    Ok(CreatedToken {
        token: t,
        secret: secret.into(),
    })
}

/// Revokes token `id` (token-write on its tenant; 404 for one the caller cannot see).
pub async fn revoke(state: &AppState, caller: &Caller, id: &TokenId) -> ApiResult<()> {
    caller.user()?;
    let t = tokens::token_by_id(&state.db.pool, id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller
        .tenant(state, Permission::TokenWrite, &t.tenant_id)
        .await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    // Revoking a revoked token changes nothing, and so records nothing.
    if !tokens::revoke_token(&mut tx, id.as_str(), now).await? {
        return Ok(());
    }
    let event = caller.event(
        &t.tenant_id,
        "token.revoke",
        "token",
        Some(id.as_str()),
        serde_json::json!({}),
    );
    db::audit::commit_audited(tx, event, now).await?;
    Ok(())
}
