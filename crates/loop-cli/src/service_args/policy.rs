//! Arguments of `loop policy`.

use clap::{Args, Subcommand};
use loop_api::{ItemId, PolicyId, TenantId, VaultId};

/// A policy's keep rules (restic's): a snapshot any rule keeps is kept.
#[derive(Args, Debug, Default)]
pub struct KeepArgs {
    /// Keep the newest N snapshots
    #[arg(long, default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest snapshot of each of the last N hours
    #[arg(long, default_value_t = 0)]
    pub keep_hourly: u32,
    #[arg(long, default_value_t = 0)]
    pub keep_daily: u32,
    #[arg(long, default_value_t = 0)]
    pub keep_weekly: u32,
    #[arg(long, default_value_t = 0)]
    pub keep_monthly: u32,
    #[arg(long, default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep every snapshot younger than this, counted from the newest (e.g. 30d, 1y6m)
    #[arg(long)]
    pub keep_within: Option<String>,
    /// Keep every snapshot with this tag (repeatable)
    #[arg(long = "keep-tag")]
    pub keep_tags: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneSettings {
    /// Repack packs with more than this share of unused data (percent; default 10)
    #[arg(long)]
    pub max_unused: Option<f64>,
    /// Leave unindexed packs younger than this many seconds alone (default 3600)
    #[arg(long)]
    pub grace_seconds: Option<u64>,
}

/// When the vaults a policy applies to are maintained (by the server, or by a customer-key
/// vault's maintainer agent), and a maintainer's limits.
#[derive(Args, Debug)]
pub struct MaintenanceArgs {
    /// Apply the policy on this schedule (calendar event or cron line, tenant time; "" stops it)
    #[arg(long)]
    pub retention_schedule: Option<String>,
    /// Verify the vaults on this schedule ("" stops it)
    #[arg(long)]
    pub verify_schedule: Option<String>,
    /// Share of packs a scheduled verify reads and authenticates (percent; default 10)
    #[arg(long)]
    pub verify_read_data_percent: Option<f64>,
    /// Skip a scheduled verify of a vault verified within this many days (0 never skips)
    #[arg(long)]
    pub reverify_after_days: Option<u32>,
    /// A maintainer agent deletes only snapshots the server stored this many days ago (default 7)
    #[arg(long)]
    pub min_snapshot_age_days: Option<u32>,
    /// A maintainer agent's prune deletes an object this many hours after announcing it (default 24)
    #[arg(long)]
    pub deletion_grace_hours: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Retention policies of the tenants you can see
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    Show {
        id: PolicyId,
    },
    /// Attach a retention policy to a tenant (its vaults and sub-tenants inherit it), with
    /// --vault to one vault, or with --item to one protected item (keep rules only: they
    /// judge its snapshots in place of the vault's policy)
    Create {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long, conflicts_with = "item")]
        vault: Option<VaultId>,
        #[arg(long)]
        item: Option<ItemId>,
        #[command(flatten)]
        keep: KeepArgs,
        #[command(flatten)]
        prune: PruneSettings,
        #[command(flatten)]
        maintenance: MaintenanceArgs,
    },
    /// Change a policy: keep options given replace all its keep rules
    Update {
        id: PolicyId,
        #[command(flatten)]
        keep: KeepArgs,
        #[command(flatten)]
        prune: PruneSettings,
        #[command(flatten)]
        maintenance: MaintenanceArgs,
    },
    /// Delete a policy: its target then follows the nearest policy above it
    Delete {
        id: PolicyId,
    },
}
