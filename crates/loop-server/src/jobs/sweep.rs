//! The staging sweep: removes the staging files that uploads cut off by a crash left on a
//! local destination (older than a day, so no upload still under way loses its file).

use std::time::Duration;

use super::{Done, JobCtx, JobError};
use crate::config::BackendConfig;

/// Staging files younger than this may belong to an upload still under way.
const STALE_AFTER: Duration = Duration::from_secs(86_400);

pub(super) async fn run(ctx: &JobCtx) -> Result<Done, JobError> {
    let name = &ctx.claimed.job.target_id;
    let dest = ctx
        .state
        .config
        .destinations()
        .into_iter()
        .find(|d| &d.name == name);
    let Some(BackendConfig::Local { path }) = dest.map(|d| d.backend) else {
        return Err(JobError::Failed(format!(
            "{name} is not a local destination of this server"
        )));
    };
    let removed =
        tokio::task::spawn_blocking(move || crate::destinations::sweep_staging(&path, STALE_AFTER))
            .await
            .map_err(|e| JobError::transient("the sweep stopped", e))?
            .map_err(|e| JobError::transient("reading the destination failed", e))?;
    ctx.log(
        "info",
        &format!("removed {removed} staging files of unfinished uploads"),
    )
    .await?;
    Ok(Done {
        summary: serde_json::json!({ "staging_files_removed": removed }),
        warnings: 0,
    })
}
