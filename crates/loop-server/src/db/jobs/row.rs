//! A job as its row in `jobs` holds it.

use loop_api::{Job, JobProgress};
use sqlx::any::AnyRow;

use crate::db::{DbResult, col, col_value, opt_time, time};

pub(in crate::db) fn job(row: &AnyRow) -> DbResult<Job> {
    let summary: Option<String> = col(row, "summary")?;
    let total = |c: &str| -> DbResult<Option<u64>> {
        Ok(col::<Option<i64>>(row, c)?.map(|v| v.max(0) as u64))
    };
    Ok(Job {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        kind: col_value(row, "kind")?,
        target_kind: col(row, "target_kind")?,
        target_id: col(row, "target_id")?,
        state: col_value(row, "state")?,
        attempts: col::<i64>(row, "attempts")?.clamp(0, u32::MAX as i64) as u32,
        scheduled_at: time(col(row, "scheduled_at")?),
        started_at: opt_time(col(row, "started_at")?),
        finished_at: opt_time(col(row, "finished_at")?),
        progress: JobProgress {
            bytes_done: col::<i64>(row, "bytes_done")?.max(0) as u64,
            bytes_total: total("bytes_total")?,
            files_done: col::<i64>(row, "files_done")?.max(0) as u64,
            files_total: total("files_total")?,
        },
        // A summary that does not parse (damage) is shown as absent rather than failing
        // the whole listing.
        summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
        error: col(row, "error")?,
        trigger: col_value(row, "trigger_kind")?,
        started_by_id: col(row, "started_by_id")?,
        cancel_requested: col::<i64>(row, "cancel_requested")? != 0,
        deadline_at: opt_time(col(row, "deadline_at")?),
        node: col(row, "node")?,
        created_at: time(col(row, "created_at")?),
    })
}
