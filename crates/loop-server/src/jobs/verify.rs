//! Verification of a managed vault: the engine's check (every snapshot's trees and the
//! index, and a share of the packs downloaded and authenticated), run by the server with
//! the key it holds. Damage fails the job, with each finding in its log.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use loop_api::{JobProgress, KeyCustody};
use loop_repo::Repository;
use loop_repo::check::{self, CheckOptions, CheckProgress, ReadData};
use loop_repo::keys::Secret;

use super::{Done, JobCtx, JobError};
use crate::db::vaults;

/// Lines of each kind (errors, damaged packs, warnings) copied into the job log.
const LOGGED: usize = 50;
/// The share of packs read when the request does not say.
pub const DEFAULT_READ_PERCENT: f64 = 10.0;

pub(super) async fn run(ctx: &JobCtx) -> Result<Done, JobError> {
    let state = &ctx.state;
    let vault_id = ctx.claimed.job.target_id.as_str();
    let Some(v) = vaults::vault_by_id(&state.db.pool, vault_id).await? else {
        return Err(JobError::Failed("the vault was deleted".into()));
    };
    if v.key_custody != KeyCustody::Managed {
        return Err(JobError::Failed(
            "the server cannot read a vault whose key the customer holds".into(),
        ));
    }
    let Some(dest) = state.destinations.get(&v.destination) else {
        return Err(JobError::transient(
            "the vault's destination is not configured on this node",
            &v.destination,
        ));
    };
    let percent = ctx.claimed.params["read_data_percent"]
        .as_f64()
        .unwrap_or(DEFAULT_READ_PERCENT)
        .clamp(0.0, 100.0);
    ctx.log(
        "info",
        &format!("checking the vault, reading {percent}% of its packs"),
    )
    .await?;
    let report = engine_check(ctx, &v, dest, percent).await?;
    for e in report.errors.iter().take(LOGGED) {
        ctx.log("error", e).await?;
    }
    for d in report.damaged.iter().take(LOGGED) {
        let lost = if d.files.is_empty() {
            String::new()
        } else {
            format!("; lost: {}", d.files.join(", "))
        };
        ctx.log("error", &format!("pack {}: {}{lost}", d.pack, d.reason))
            .await?;
    }
    for w in report.warnings.iter().take(LOGGED) {
        ctx.log("warning", w).await?;
    }
    let summary = serde_json::json!({
        "read_data_percent": percent,
        "snapshots": report.snapshots,
        "trees": report.trees,
        "data_blobs": report.data_blobs,
        "packs": report.packs,
        "packs_read": report.packs_read,
        "errors": report.errors.len(),
        "damaged_packs": report.damaged.len(),
        "unreferenced_packs": report.unreferenced_packs,
        "warnings": report.warnings.len(),
    });
    if !report.is_ok() {
        return Err(JobError::Failed(format!(
            "the vault is damaged: {} errors and {} damaged packs (see the job log)",
            report.errors.len(),
            report.damaged.len()
        )));
    }
    ctx.log(
        "info",
        &format!(
            "no damage: {} snapshots, {} packs, {} read",
            report.snapshots, report.packs, report.packs_read
        ),
    )
    .await?;
    Ok(Done {
        summary,
        warnings: report.warnings.len() as u32,
    })
}

fn snapshot(p: &CheckProgress) -> JobProgress {
    JobProgress {
        bytes_done: p.bytes_done.load(Ordering::Relaxed),
        bytes_total: None,
        files_done: p.packs_done.load(Ordering::Relaxed),
        files_total: Some(p.packs_total.load(Ordering::Relaxed)),
    }
}

/// The engine's check of managed vault `v` as stored at `dest` (its primary or a replica),
/// reading `percent` of its packs, with the job's progress and cancel.
pub(super) async fn engine_check(
    ctx: &JobCtx,
    v: &loop_api::Vault,
    dest: &crate::destinations::Destination,
    percent: f64,
) -> Result<check::CheckReport, JobError> {
    let kek = crate::managed_keys::managed_kek(&ctx.state, v)
        .await
        .map_err(|_| JobError::Failed("the vault's key is gone; it cannot be read".into()))?;
    let storage = dest
        .repo_storage(&v.id)
        .map_err(|e| JobError::transient("opening the vault's destination failed", e))?;
    let read_data = ReadData::percent(percent);
    let progress = Arc::new(CheckProgress::default());
    let counters = progress.clone();
    let mut checking = tokio::task::spawn_blocking(move || {
        // Its errors go to the tenant's job log: the store's own words stay in the server's.
        let storage = crate::destinations::PrivateErrors(storage);
        let repo = Repository::open(Arc::new(storage), Secret::RawKey(&kek))?;
        check::run(
            &repo,
            &CheckOptions {
                read_data,
                threads: 0,
            },
            &counters,
        )
    });
    let result = loop {
        tokio::select! {
            r = &mut checking => break r,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if ctx.check().is_err() {
                    progress.stop.store(true, Ordering::Relaxed);
                    continue;
                }
                ctx.progress(&snapshot(&progress)).await?;
            }
        }
    };
    ctx.check()?;
    let report = match result {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => return Err(JobError::transient("the check could not read the vault", e)),
        Err(e) => return Err(JobError::transient("the check stopped", e)),
    };
    ctx.progress(&snapshot(&progress)).await?;
    Ok(report)
}
