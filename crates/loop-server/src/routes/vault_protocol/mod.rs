//! The vault protocol: what `loop` uses as a repository backend (docs/PROTOCOL.md).
//!
//! ```text
//! GET    /vaults                                 the vaults the token may use (JSON)
//! POST   /vaults/{vault}/v1/open                 start: permissions and (managed) key
//! GET    /vaults/{vault}/v1/{kind}               list objects of a kind (JSON)
//! GET    /vaults/{vault}/v1/{kind}/{name}        read, whole or `Range: bytes=a-b`
//! HEAD   /vaults/{vault}/v1/{kind}/{name}        size
//! PUT    /vaults/{vault}/v1/{kind}/{name}        write (streamed; checked before commit)
//! DELETE /vaults/{vault}/v1/{kind}/{name}        delete
//! GET    /vaults/{vault}/v1/deletions            a maintainer's announced deletions
//! POST   /vaults/{vault}/v1/deletions            announce deletions
//! ```
//!
//! Reads are in `reads.rs`, changes (checked uploads, deletes) in `changes.rs`, a
//! maintainer's limits in `maintain.rs`. Every request
//! carries `Authorization: Bearer <token>`. Token permissions decide what is
//! allowed (`auth::vault_access`); a vault outside the token's scope answers 404.

mod changes;
pub mod direct;
mod maintain;
mod reads;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use changes::{remove, write};
use loop_api::{
    KeyCustody, SecretText, Token, Vault, VaultEntry, VaultId, VaultOpenRequest, VaultOpenResponse,
};
use loop_repo::FileKind;
use reads::{head, list, read};

use super::{Json, Path, commit_audited};
use crate::auth::Caller;
use crate::auth::vault_access::{Op, allowed};
use crate::db::{devices, tokens, vaults};
use crate::destinations::Destination;
use crate::domain::TokenPermission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The vault routes. Object bodies are streamed and bounded by `limits.object_bytes`; JSON
/// bodies keep the JSON limit, but a deletion announcement, which may name
/// [`loop_api::MAX_ANNOUNCED`] objects, has room for them.
pub fn router(json_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/vaults", get(vaults_of_token))
        .route(
            "/vaults/{vault}/v1/open",
            post(open).layer(axum::extract::DefaultBodyLimit::max(json_limit)),
        )
        .route(
            "/vaults/{vault}/v1/deletions",
            get(maintain::planned).post(maintain::announce).layer(
                axum::extract::DefaultBodyLimit::max(json_limit.max(loop_api::ANNOUNCE_BODY_BYTES)),
            ),
        )
        .route(
            "/vaults/{vault}/v1/{kind}/{name}/direct",
            post(direct::start).layer(axum::extract::DefaultBodyLimit::max(json_limit)),
        )
        .route(
            "/vaults/{vault}/v1/{kind}/{name}/direct/complete",
            post(direct::complete).layer(axum::extract::DefaultBodyLimit::max(json_limit)),
        )
        .route("/vaults/{vault}/v1/{kind}", get(list))
        .route(
            "/vaults/{vault}/v1/{kind}/{name}",
            get(read).head(head).put(write).delete(remove),
        )
}

fn parse_kind(s: &str) -> ApiResult<FileKind> {
    FileKind::from_name(s).ok_or_else(ApiError::not_found)
}

fn check_name(kind: FileKind, name: &str) -> ApiResult<()> {
    if crate::destinations::valid_name(kind, name) {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}

/// The token's view of one vault.
struct Access {
    vault: Vault,
    token: Token,
    perms: Vec<TokenPermission>,
    dest: std::sync::Arc<Destination>,
    /// For a replication token: the tenant's replication tokens (what they wrote it may
    /// remove).
    replicators: Vec<String>,
}

async fn access(state: &AppState, caller: &Caller, vault_id: &VaultId) -> ApiResult<Access> {
    let token = caller.token()?.clone();
    let vault = vaults::vault_by_id(&state.db.pool, vault_id.as_str())
        .await?
        .filter(|v| v.tenant_id == token.tenant_id)
        .filter(|v| token.vault_ids.is_empty() || token.vault_ids.contains(&v.id))
        .ok_or_else(ApiError::not_found)?;
    let dest = state
        .destinations
        .get(&vault.destination)
        .ok_or_else(|| ApiError::Internal(format!("destination {} is gone", vault.destination)))?
        .clone();
    let mut perms = token.permissions.clone();
    // The maintainer device of a customer-key vault maintains it, within the limits.
    let maintainer = vault.key_custody == KeyCustody::Customer
        && token.device_id.is_some()
        && token.device_id == vault.maintainer_device_id;
    if maintainer && !perms.contains(&TokenPermission::Maintain) {
        perms.push(TokenPermission::Maintain);
    }
    let replicators = if perms.contains(&TokenPermission::Replicate) {
        tokens::replicators(&state.db.pool, &vault.tenant_id).await?
    } else {
        Vec::new()
    };
    Ok(Access {
        vault,
        token,
        perms,
        dest,
        replicators,
    })
}

/// The token's view of one vault, for operation `op` on the object `kind`/`name` (parsed
/// and checked here).
async fn object_access(
    state: &AppState,
    caller: &Caller,
    vault_id: &VaultId,
    kind: &str,
    name: &str,
    op: Op,
) -> ApiResult<(Access, FileKind)> {
    let a = access(state, caller, vault_id).await?;
    let kind = parse_kind(kind)?;
    check_name(kind, name)?;
    a.require(op, kind)?;
    // A suspended subscription takes no new data; locks still come and go, so restores and
    // checks run, but no more of them than those need (a lock is no place to keep data).
    if op == Op::Write {
        let refused = crate::billing::refuse_if_suspended(state, &a.vault.tenant_id).await;
        if let Err(e) = refused
            && (kind != FileKind::Lock
                || crate::db::objects::count_of_kind(&state.db.pool, &a.vault.id, kind.name())
                    .await?
                    >= MAX_LOCKS_SUSPENDED)
        {
            return Err(e);
        }
    }
    Ok((a, kind))
}

/// Lock markers a vault may hold while its subscription is suspended: enough for the
/// restores and checks of a few clients at once.
const MAX_LOCKS_SUSPENDED: u64 = 16;

impl Access {
    fn require(&self, op: Op, kind: FileKind) -> ApiResult<()> {
        if allowed(&self.perms, op, kind) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_denied",
                "this token's permissions do not allow this",
            ))
        }
    }

    fn path(&self, kind: FileKind, name: &str) -> object_store::path::Path {
        self.dest.path(&self.vault.id, &kind.path(name))
    }
}

fn no_such_object() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_such_object", "no such object")
}

fn storage_error(e: object_store::Error) -> ApiError {
    match e {
        object_store::Error::NotFound { .. } => no_such_object(),
        other => other.into(),
    }
}

/// The vaults a replication token may use: those it names, or every vault of its tenant.
/// Other tokens work on the one vault they are given and are not told the others.
async fn vaults_of_token(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<VaultEntry>>> {
    let token = caller.token()?;
    if !token.permissions.contains(&TokenPermission::Replicate) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "only a token with the replicate permission lists vaults",
        ));
    }
    let scope = crate::domain::TenantScope::One(token.tenant_id.clone());
    let all = vaults::vaults_in(&state.db.pool, &scope, None).await?.items;
    Ok(axum::Json(
        all.into_iter()
            .filter(|v| token.vault_ids.is_empty() || token.vault_ids.contains(&v.id))
            .map(|v| VaultEntry {
                jurisdiction: state
                    .destinations
                    .get(&v.destination)
                    .map(|d| d.jurisdiction.clone())
                    .unwrap_or_default(),
                id: v.id,
                name: v.name,
                key_custody: v.key_custody,
            })
            .collect(),
    ))
}

/// Start using a vault: records the token's use and returns its permissions and, for a
/// managed vault, the key that opens the vault's key slot.
async fn open(
    State(state): State<AppState>,
    caller: Caller,
    Path(vault_id): Path<VaultId>,
    Json(req): Json<VaultOpenRequest>,
) -> ApiResult<axum::Json<VaultOpenResponse>> {
    let a = access(&state, &caller, &vault_id).await?;
    // Another server syncing the vault copies encrypted objects: it never gets the key.
    let reads_data = a.perms.iter().any(|p| *p != TokenPermission::Replicate);
    let key = if a.vault.key_custody == KeyCustody::Managed && reads_data {
        Some(hex::encode(
            crate::managed_keys::managed_kek(&state, &a.vault)
                .await?
                .expose(),
        ))
    } else {
        None
    };
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
            .take(64)
            .collect()
    };
    let now = state.now();
    let mut tx = state.db.begin().await?;
    tokens::touch_token(&mut tx, &a.token.id, now).await?;
    commit_audited(
        tx,
        caller.event(
            &a.vault.tenant_id,
            "vault.open",
            "vault",
            Some(&a.vault.id),
            serde_json::json!({
                "operation": clean(&req.operation),
                "host": req.host.as_deref().map(clean),
                "permissions": a.token.permissions,
                "device_id": a.token.device_id,
            }),
        ),
        now,
    )
    .await?;
    if let Some(d) = &a.token.device_id {
        devices::touch_device(&state.db.pool, d, now).await?;
    }
    Ok(axum::Json(VaultOpenResponse {
        vault_id: a.vault.id,
        permissions: a.token.permissions,
        key_custody: a.vault.key_custody,
        key: key.map(SecretText::from),
        direct: a.dest.direct(),
        jurisdiction: Some(a.dest.jurisdiction.clone()),
    }))
}
