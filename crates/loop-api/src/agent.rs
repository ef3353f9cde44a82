//! The agent protocol: what `loop agent` and the server say to each other (`/agent/v1/...`),
//! and the management API's enrolment codes.

use chrono::{DateTime, Utc};

use crate::ids::{TenantId, VaultId};
use crate::{Job, JobProgress, JobState, KeepRules, ProtectedItem, SecretText};

wire! {
    /// `POST /api/v1/devices/enroll-codes`.
    pub struct CreateEnrolmentCode {
        pub tenant_id: TenantId,
        /// Default 60; at most 10080 (a week).
        #[serde(default)]
        pub expires_in_minutes: Option<u32>,
    }

    /// A single-use code that registers one machine as a device of the tenant. Shown once.
    pub struct EnrolmentCode {
        pub tenant_id: String,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub code: SecretText,
        pub expires_at: DateTime<Utc>,
    }

    /// `POST /agent/v1/enroll` (no credential but the code).
    pub struct EnrollAgent {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub code: SecretText,
        /// The device's name (the machine's host name).
        pub name: String,
    }

    /// The new device and its token, which the agent keeps where only root can read it.
    pub struct AgentEnrolled {
        pub tenant_id: String,
        pub device_id: String,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub token: SecretText,
    }

    /// `POST /agent/v1/heartbeat`.
    pub struct AgentHeartbeat {
        /// The agent's version.
        pub version: String,
    }

    /// What the device should know: its protected items (with their schedules).
    pub struct AgentConfig {
        pub device_id: String,
        pub items: Vec<ProtectedItem>,
    }

    /// A job the agent claimed, with the fencing number its reports name: a backup of
    /// `item`, or a restore as `params` (a [`RestoreToDevice`]) says.
    pub struct AgentJob {
        pub job: Job,
        pub fence: i64,
        pub item: Option<ProtectedItem>,
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        pub params: serde_json::Value,
    }

    /// The parameters of a `retention` job an agent runs on the customer-key vault it
    /// maintains (its `params`): the policy that applies, and the snapshots the server will
    /// not let it delete yet.
    pub struct AgentRetention {
        /// Absent when no policy applies: every snapshot is kept, and nothing is pruned.
        pub policy_id: Option<String>,
        pub keep: KeepRules,
        pub prune_max_unused_percent: f64,
        pub prune_grace_seconds: u64,
        /// Snapshot objects the server stored less than `min_snapshot_age_days` ago: kept
        /// whatever the keep rules say.
        pub young_snapshots: Vec<String>,
        pub min_snapshot_age_days: u32,
        pub deletion_grace_hours: u32,
        /// The items of the vault with policies of their own: their rules judge their
        /// snapshots (tagged `item:<id>`) in place of `keep`.
        #[serde(default)]
        pub item_rules: Vec<ItemKeepRules>,
        #[serde(default)]
        pub dry_run: bool,
    }

    /// The keep rules of a protected item's own policy.
    pub struct ItemKeepRules {
        pub item_id: String,
        pub keep: KeepRules,
    }

    /// `POST /api/v1/devices/{id}/restore`: what the device's agent restores, and where.
    pub struct RestoreToDevice {
        pub vault_id: VaultId,
        /// A snapshot ID, a unique prefix of one (at least 4 hex digits), or `latest`.
        pub snapshot: String,
        /// Only these paths of the snapshot (globs, as `loop restore --include` reads
        /// them); everything when empty.
        #[serde(default)]
        pub paths: Vec<String>,
        /// An absolute directory on the device; made when missing.
        pub target: String,
    }

    /// `POST /agent/v1/jobs/{id}/renew` and `.../log`: the fence of the claim.
    pub struct AgentReport {
        pub fence: i64,
        /// A log line (`info`, `warning`, `error`) with `message`, when given.
        #[serde(default)]
        pub level: Option<String>,
        #[serde(default)]
        pub message: Option<String>,
        #[serde(default)]
        pub progress: Option<JobProgress>,
    }

    /// The answer to a renewal: whether someone asked the job to stop.
    pub struct AgentLease {
        pub cancel_requested: bool,
    }

    /// `POST /agent/v1/jobs/{id}/finish`.
    pub struct AgentFinish {
        pub fence: i64,
        /// `succeeded`, `succeeded-with-warnings`, `failed` or `cancelled`.
        pub state: JobState,
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
        pub summary: Option<serde_json::Value>,
        #[serde(default)]
        pub error: Option<String>,
    }
}

impl AgentRetention {
    /// No policy applies (yet: [`crate::Policy`]'s defaults for the rest).
    pub fn nothing(dry_run: bool) -> AgentRetention {
        let m = crate::Maintenance::default();
        AgentRetention {
            policy_id: None,
            keep: KeepRules::default(),
            prune_max_unused_percent: crate::DEFAULT_PRUNE_MAX_UNUSED_PERCENT,
            prune_grace_seconds: crate::DEFAULT_PRUNE_GRACE_SECONDS,
            young_snapshots: Vec::new(),
            min_snapshot_age_days: m.min_snapshot_age_days,
            deletion_grace_hours: m.deletion_grace_hours,
            item_rules: Vec::new(),
            dry_run,
        }
    }
}
