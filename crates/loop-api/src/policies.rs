//! Retention policies: which snapshots a vault keeps, and how its unused data is pruned.

use chrono::{DateTime, Utc};

use crate::ids::{ItemId, TenantId, VaultId};

wire! {
    /// Which snapshots to keep, judged per group of host and paths (restic's rules). A
    /// snapshot any rule keeps is kept; rules all zero and empty keep everything.
    #[derive(Default)]
    pub struct KeepRules {
        /// The newest this many.
        #[serde(default)]
        pub last: u32,
        /// The newest of each of the last this many hours that have a snapshot.
        #[serde(default)]
        pub hourly: u32,
        #[serde(default)]
        pub daily: u32,
        #[serde(default)]
        pub weekly: u32,
        #[serde(default)]
        pub monthly: u32,
        #[serde(default)]
        pub yearly: u32,
        /// Every snapshot younger than this, counted from the newest snapshot: `30d`,
        /// `1y6m`, `12h` (units y, m, w, d, h).
        #[serde(default)]
        pub within: Option<String>,
        /// Every snapshot with one of these tags.
        #[serde(default)]
        pub tags: Vec<String>,
    }

    /// When the vaults a policy applies to are maintained on their own: by the server for a
    /// managed vault, by the maintainer device's agent for a customer-key vault (which the
    /// server cannot read), within the limits that keep such an agent from destroying data.
    pub struct Maintenance {
        /// Apply the keep rules and prune (a `retention` job) on this schedule (calendar
        /// event or cron line, in the tenant's time zone). Absent: only when asked.
        #[serde(default)]
        pub retention_schedule: Option<String>,
        /// Verify the vault (a `verify` job) on this schedule. Absent: only when asked.
        #[serde(default)]
        pub verify_schedule: Option<String>,
        /// The share of packs a scheduled verify downloads and authenticates (percent).
        #[serde(default = "default_read_data_percent")]
        pub verify_read_data_percent: f64,
        /// Skip a scheduled verify (recorded `skipped`) of a vault verified successfully
        /// less than this many days ago (with an hour's leeway, for a verify that ended a
        /// little after its own time); PBS's `outdated-after`. Absent:
        /// verify every time.
        #[serde(default)]
        pub reverify_after_days: Option<u32>,
        /// A maintainer agent may delete only snapshots the server stored at least this
        /// many days ago (default 7): a stolen agent cannot remove the recent backups.
        #[serde(default = "default_min_snapshot_age_days")]
        pub min_snapshot_age_days: u32,
        /// A maintainer agent may delete a pack, index file or prune plan only this many
        /// hours after it announced the deletion to the server (default 24): time for an
        /// admin to see it and take the maintainer away, which drops what it announced.
        #[serde(default = "default_deletion_grace_hours")]
        pub deletion_grace_hours: u32,
    }

    /// A retention policy, attached to a target: a tenant (it then applies to every vault
    /// of that tenant and of the tenants below it that have none nearer), one vault, or one
    /// protected item. The nearest policy applies: the vault's own, else its tenant's, else
    /// its parent's, and so on up the tree; with none, every snapshot is kept. The
    /// snapshots of an item with a policy of its own are judged by that one.
    pub struct Policy {
        pub id: String,
        pub tenant_id: String,
        /// Set when the policy is attached to this vault rather than to the tenant.
        pub vault_id: Option<String>,
        /// Set when the policy is attached to this protected item: its keep rules judge the
        /// item's snapshots (tagged `item:<id>`) in place of the vault's policy; pruning and
        /// schedules stay the vault's.
        #[serde(default)]
        pub item_id: Option<String>,
        pub keep: KeepRules,
        /// Prune repacks a pack when more than this share of its bytes is unused (percent).
        pub prune_max_unused_percent: f64,
        /// Prune leaves unindexed packs younger than this alone (a backup may still be
        /// writing them).
        pub prune_grace_seconds: u64,
        #[serde(default)]
        pub maintenance: Maintenance,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
    }

    /// `POST /api/v1/policies`.
    pub struct CreatePolicy {
        pub tenant_id: TenantId,
        /// Attach to this vault of the tenant, instead of to the tenant.
        #[serde(default)]
        pub vault_id: Option<VaultId>,
        /// Attach to this protected item of the tenant (keep rules only), instead.
        #[serde(default)]
        pub item_id: Option<ItemId>,
        pub keep: KeepRules,
        /// Default 10.
        #[serde(default)]
        pub prune_max_unused_percent: Option<f64>,
        /// Default 3600.
        #[serde(default)]
        pub prune_grace_seconds: Option<u64>,
        /// Default: nothing scheduled.
        #[serde(default)]
        pub maintenance: Option<Maintenance>,
    }

    /// `PATCH /api/v1/policies/{id}`: what is given replaces what was.
    pub struct UpdatePolicy {
        #[serde(default)]
        pub keep: Option<KeepRules>,
        #[serde(default)]
        pub prune_max_unused_percent: Option<f64>,
        #[serde(default)]
        pub prune_grace_seconds: Option<u64>,
        /// Replaces the whole maintenance schedule.
        #[serde(default)]
        pub maintenance: Option<Maintenance>,
    }

    /// `GET /api/v1/vaults/{id}/policy`: the policy that applies to the vault.
    pub struct EffectivePolicy {
        /// Absent when no policy applies: the vault keeps every snapshot.
        pub policy: Option<Policy>,
        /// `vault` when the vault has its own, `tenant` when it comes from the vault's
        /// tenant or one above it.
        pub source: Option<String>,
    }
}

/// Prune repacks a pack when more than this share of its bytes is unused, unless a policy
/// says otherwise (percent; as `loop prune`'s).
pub const DEFAULT_PRUNE_MAX_UNUSED_PERCENT: f64 = 10.0;
/// Prune leaves unindexed packs younger than this alone, unless a policy says otherwise
/// (seconds; as `loop prune`'s).
pub const DEFAULT_PRUNE_GRACE_SECONDS: u64 = 3600;

fn default_read_data_percent() -> f64 {
    10.0
}

fn default_min_snapshot_age_days() -> u32 {
    7
}

fn default_deletion_grace_hours() -> u32 {
    24
}

impl Default for Maintenance {
    fn default() -> Maintenance {
        Maintenance {
            retention_schedule: None,
            verify_schedule: None,
            verify_read_data_percent: default_read_data_percent(),
            reverify_after_days: None,
            min_snapshot_age_days: default_min_snapshot_age_days(),
            deletion_grace_hours: default_deletion_grace_hours(),
        }
    }
}

impl KeepRules {
    /// True when the rules keep everything (nothing would be removed).
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within.is_none()
            && self.tags.is_empty()
    }
}
