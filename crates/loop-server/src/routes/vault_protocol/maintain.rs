//! A maintainer's limits on the vault protocol (`TokenPermission::Maintain`, the device
//! that holds a customer-key vault's passphrase and runs its retention): it deletes a
//! snapshot only when the server stored it at least the policy's `min_snapshot_age_days`
//! ago, and a pack, index file or prune plan only `deletion_grace_hours` after announcing
//! the deletion here. A stolen agent can therefore destroy nothing recent at once, and an
//! admin who sees an announcement they did not expect takes the maintainer away, which
//! drops it (docs/SECURITY.md, "A maintainer agent").
//!
//! ```text
//! GET  /vaults/{vault}/v1/deletions    the announced deletions, and which are released
//! POST /vaults/{vault}/v1/deletions    announce deletions (AnnounceDeletions)
//! ```

use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{AnnounceDeletions, DeletionPlan, EventKind, MAX_ANNOUNCED, Maintenance, VaultId};
use loop_repo::FileKind;

use super::{Access, Op, access};
use crate::auth::Caller;
use crate::db::notify::NewEvent;
use crate::db::{deletions, policies};
use crate::domain::TokenPermission;
use crate::error::{ApiError, ApiResult};
use crate::routes::{Json, Path, commit_audited};
use crate::state::AppState;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

impl Access {
    /// True when this token deletes under a maintainer's limits (it may not delete freely).
    pub(super) fn is_maintainer(&self) -> bool {
        self.perms.contains(&TokenPermission::Maintain)
            && !self.perms.contains(&TokenPermission::Manage)
    }
}

/// The maintenance settings of the policy that applies to the vault (the defaults when
/// none does).
pub(super) async fn limits(state: &AppState, a: &Access) -> ApiResult<Maintenance> {
    Ok(policies::effective_for_vault(&state.db.pool, &a.vault)
        .await?
        .map(|(p, _)| p.maintenance)
        .unwrap_or_default())
}

fn refused(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

fn date(ms: i64) -> String {
    crate::db::time(ms).format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Ok when a maintainer may delete `kind`/`name` now; the refusal says why and until when.
pub(super) async fn may_delete(
    state: &AppState,
    a: &Access,
    kind: FileKind,
    name: &str,
) -> ApiResult<()> {
    if kind == FileKind::Lock {
        return Ok(()); // its own markers, as any token (checked per object)
    }
    let m = limits(state, a).await?;
    let (pool, now) = (&state.db.pool, state.now());
    if kind == FileKind::Snapshot {
        let min_ms = m.min_snapshot_age_days as i64 * DAY_MS;
        return match deletions::stored_at(pool, &a.vault.id, kind.name(), name).await? {
            Some(at) if at <= now - min_ms => Ok(()),
            Some(at) => Err(refused(
                "snapshot_too_young",
                format!(
                    "a maintainer deletes only snapshots stored at least {} days ago; this one \
                     may go from {}",
                    m.min_snapshot_age_days,
                    date(at + min_ms)
                ),
            )),
            None => Err(refused(
                "snapshot_age_unknown",
                "the server has no record of when this snapshot was stored, so a maintainer \
                 cannot delete it"
                    .into(),
            )),
        };
    }
    let grace_ms = m.deletion_grace_hours as i64 * HOUR_MS;
    match deletions::announced_at(pool, &a.vault.id, kind.name(), name).await? {
        Some(at) if at <= now - grace_ms => Ok(()),
        Some(at) => Err(refused(
            "deletion_not_released",
            format!(
                "this deletion was announced {}; a maintainer may carry it out from {}",
                date(at),
                date(at + grace_ms)
            ),
        )),
        None => Err(refused(
            "deletion_not_announced",
            format!(
                "a maintainer deletes this only {} hours after announcing it \
                 (POST /vaults/{}/v1/deletions)",
                m.deletion_grace_hours, a.vault.id
            ),
        )),
    }
}

/// Announcing deletions, and reading what was announced, is a maintainer's (or a manager's):
/// a replication token, which may delete packs it wrote, may not.
fn maintainer_only(a: &Access) -> ApiResult<()> {
    a.require(Op::Announce, FileKind::Pack)
}

async fn plan_of(state: &AppState, a: &Access) -> ApiResult<DeletionPlan> {
    let m = limits(state, a).await?;
    let grace_ms = m.deletion_grace_hours as i64 * HOUR_MS;
    Ok(DeletionPlan {
        objects: deletions::planned(&state.db.pool, &a.vault.id, grace_ms, state.now()).await?,
    })
}

pub(super) async fn planned(
    State(state): State<AppState>,
    caller: Caller,
    Path(vault_id): Path<VaultId>,
) -> ApiResult<axum::Json<DeletionPlan>> {
    let a = access(&state, &caller, &vault_id).await?;
    maintainer_only(&a)?;
    Ok(axum::Json(plan_of(&state, &a).await?))
}

pub(super) async fn announce(
    State(state): State<AppState>,
    caller: Caller,
    Path(vault_id): Path<VaultId>,
    Json(req): Json<AnnounceDeletions>,
) -> ApiResult<axum::Json<DeletionPlan>> {
    let a = access(&state, &caller, &vault_id).await?;
    maintainer_only(&a)?;
    if req.objects.len() > MAX_ANNOUNCED {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_ANNOUNCED} objects per announcement"
        )));
    }
    let mut objects = Vec::with_capacity(req.objects.len());
    for o in &req.objects {
        let kind = FileKind::from_name(&o.kind)
            .filter(|k| matches!(k, FileKind::Index | FileKind::Pack | FileKind::Plan))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{}: only index files, packs and plans are announced (kinds index, data, plans)",
                    o.kind
                ))
            })?;
        if !crate::destinations::valid_name(kind, &o.name) {
            return Err(ApiError::bad_request(format!(
                "{}: not an object name",
                o.name
            )));
        }
        objects.push((kind.name(), o.name.as_str()));
    }
    let device = a
        .token
        .device_id
        .clone()
        .unwrap_or_else(|| a.token.id.clone());
    let now = state.now();
    // The announcement and its audit event are one transaction: the tenant reads of every
    // announcement in the log while its grace runs.
    let mut tx = state.db.begin().await?;
    let (count, bytes) = deletions::announce(&mut tx, &a.vault.id, &device, &objects, now).await?;
    if count == 0 {
        tx.commit().await.map_err(crate::db::DbError::from)?;
    } else {
        let details = serde_json::json!({ "objects": count, "bytes": bytes });
        commit_audited(
            tx,
            caller.event(
                &a.vault.tenant_id,
                "vault.deletions-announce",
                "vault",
                Some(&a.vault.id),
                details,
            ),
            now,
        )
        .await?;
        warn_when_most_of_the_vault_goes(&state, &a, now).await?;
    }
    Ok(axum::Json(plan_of(&state, &a).await?))
}

/// Raises `vault-mass-deletion` (once a day per vault) when the deletions announced and not
/// yet carried out hold more than half of the vault's bytes.
async fn warn_when_most_of_the_vault_goes(state: &AppState, a: &Access, now: i64) -> ApiResult<()> {
    let pool = &state.db.pool;
    let pending = deletions::pending_bytes(pool, &a.vault.id).await?;
    let used = crate::db::vaults::vault_by_id(pool, &a.vault.id)
        .await?
        .map_or(0, |v| v.used_bytes);
    if pending.saturating_mul(2) <= used {
        return Ok(());
    }
    let v = &a.vault;
    let e = NewEvent {
        tenant_id: &v.tenant_id,
        kind: EventKind::VaultMassDeletion,
        subject: Some(("vault", &v.id)),
        message: format!(
            "the maintainer of vault {} announced the deletion of {pending} of its {used} bytes",
            v.name
        ),
        details: serde_json::json!({
            "vault_id": v.id, "vault_name": v.name, "announced_bytes": pending,
            "used_bytes": used, "device_id": a.token.device_id,
        }),
        dedupe_key: Some(format!(
            "vault-mass-deletion:{}:{}",
            v.id,
            now.div_euclid(DAY_MS)
        )),
    };
    let mut tx = state.db.begin().await?;
    crate::db::notify::raise(&mut tx, e, None, now).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    state.notify_wake.notify_one();
    Ok(())
}
