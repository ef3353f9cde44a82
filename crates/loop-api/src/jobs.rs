//! Jobs: work the service does on its own, recorded from queued to done.

use chrono::{DateTime, Utc};

use crate::ids::TenantId;

closed_set! {
    /// What a job does.
    pub enum JobKind("job kind") {
        /// Deletes every object of a deleted vault at its destination. Resumable: a run
        /// cut off halfway is continued by the next one.
        VaultErasure = "vault-erasure",
        /// Removes staging files that uploads cut off by a crash left on a local
        /// destination.
        StagingSweep = "staging-sweep",
        /// Checks a managed vault: its structure, and a share of its packs read and
        /// authenticated (`read_data_percent`).
        Verify = "verify",
        /// Applies a vault's retention policy: forgets the snapshots it does not keep, then
        /// prunes the data only they used (`dry_run`: logs the plan, changes nothing).
        Retention = "retention",
        /// Rotates a tenant's key: each managed vault gets a key slot for a new tenant key,
        /// the new key becomes current, and the old key's slots are removed. Vault data is
        /// not re-encrypted.
        TenantKeyRotation = "tenant-key-rotation",
        /// Copies a vault's objects its replicas lack and removes what the primary no
        /// longer holds: packs, then indexes, then snapshots; removals the other way round.
        /// Resumable: a run cut off halfway is continued by the next one.
        Replication = "replication",
        /// Compares a replica with its primary (names and sizes) and, with `read_data`,
        /// reads it: checked with the key for a managed vault, byte for byte against the
        /// primary for a customer-key vault.
        ReplicaVerify = "replica-verify",
        /// Deletes every object of a removed replica at its destination.
        ReplicaErasure = "replica-erasure",
        /// After an erased tenant's keys were destroyed: deletes every object of its vaults
        /// at every place (destinations, replicas, other servers' copies), lists each place
        /// again, and issues the deletion certificate. Resumable; not cancellable.
        TenantErasure = "tenant-erasure",
        /// Gathers everything the service holds on one person into a zip file of JSON
        /// files ("download my data"), kept for the download period.
        DataExport = "data-export",
        /// Runs a sync job: pushes a vault to another server's vault, or pulls one from
        /// it, in the replication's order, over the other server's vault protocol.
        Sync = "sync",
        /// Backs up a protected item; run by the agent of the item's device.
        Backup = "backup",
        /// Restores a snapshot (or some of its paths) to a directory of a device; run by the
        /// device's agent.
        Restore = "restore",
    }

    /// Where a job is. `queued` and `running` are open; every other state is final.
    pub enum JobState("job state") {
        /// Waiting for its time (`scheduled_at`) and a free runner; also between retries.
        Queued = "queued",
        /// Held by a runner, whose lease is renewed while it works.
        Running = "running",
        Succeeded = "succeeded",
        /// Done, with warnings in its log.
        SucceededWithWarnings = "succeeded-with-warnings",
        /// Failed for good: every attempt failed, or the failure was not transient.
        Failed = "failed",
        /// Cancelled before it finished.
        Cancelled = "cancelled",
        /// Its time window passed without a run.
        Missed = "missed",
        /// Not run because the same work was already running.
        Skipped = "skipped",
        /// Its runner disappeared (its lease expired) too many times.
        Abandoned = "abandoned",
    }

    /// What started a job.
    pub enum JobTrigger("job trigger") {
        /// A schedule came due.
        Schedule = "schedule",
        /// A person or token asked for it; `started_by_id` names them.
        User = "user",
        /// Something that happened, such as a vault deletion or a finished backup.
        Event = "event",
        /// The server itself, such as the sweep at start.
        System = "system",
    }
}

impl JobKind {
    /// Whether a job of this kind must run to its end: the erasures (the only way the
    /// objects they delete go, and nothing queues them again) and a tenant key rotation
    /// (stopped halfway, it would leave the old key opening vaults). Such a job cannot be
    /// cancelled, and a failure worth another attempt is tried again however often it
    /// happens.
    pub fn must_finish(self) -> bool {
        matches!(
            self,
            JobKind::VaultErasure
                | JobKind::ReplicaErasure
                | JobKind::TenantErasure
                | JobKind::TenantKeyRotation
        )
    }
}

impl JobState {
    /// True once the job will not change again.
    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

wire! {
    /// How far a running job got. Totals are absent until known.
    #[derive(Default)]
    pub struct JobProgress {
        pub bytes_done: u64,
        pub bytes_total: Option<u64>,
        pub files_done: u64,
        pub files_total: Option<u64>,
    }

    pub struct Job {
        pub id: String,
        pub tenant_id: String,
        pub kind: JobKind,
        /// What the job works on: `vault`, `destination`, ...
        pub target_kind: String,
        pub target_id: String,
        pub state: JobState,
        /// Runs started so far (a retry or a takeover after a lost runner adds one).
        pub attempts: u32,
        /// Not run before this time.
        pub scheduled_at: DateTime<Utc>,
        pub started_at: Option<DateTime<Utc>>,
        pub finished_at: Option<DateTime<Utc>>,
        pub progress: JobProgress,
        /// What the job did, once it ended (kind-specific).
        #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
        pub summary: Option<serde_json::Value>,
        /// Why the last attempt failed.
        pub error: Option<String>,
        pub trigger: JobTrigger,
        /// The user or token that started it, for `trigger = user`.
        pub started_by_id: Option<String>,
        /// A cancel was asked for and the runner has not stopped yet.
        pub cancel_requested: bool,
        /// A queued run that has not started by then is `missed` (scheduled backups).
        pub deadline_at: Option<DateTime<Utc>>,
        /// The server node that ran it last (its `node_id`); none for an agent's job.
        pub node: Option<String>,
        pub created_at: DateTime<Utc>,
    }

    /// One line of a job's log.
    pub struct JobLogLine {
        pub at: DateTime<Utc>,
        /// `info`, `warning` or `error`.
        pub level: String,
        pub message: String,
    }
}

wire! {
    /// `POST /api/v1/vaults/{id}/verify`.
    pub struct VerifyVault {
        /// Share of the vault's packs to download and authenticate, 0 to 100 (default 10);
        /// 0 checks the structure only.
        #[serde(default)]
        pub read_data_percent: Option<f64>,
    }
}

wire! {
    /// `POST /api/v1/vaults/{id}/retention`.
    pub struct RunRetention {
        /// Log what the policy would remove, change nothing.
        #[serde(default)]
        pub dry_run: bool,
    }
}

/// Filters of `GET /api/v1/jobs`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct JobQuery {
    /// Only this tenant (and not its subtree).
    pub tenant_id: Option<TenantId>,
    pub state: Option<JobState>,
    pub kind: Option<JobKind>,
}
