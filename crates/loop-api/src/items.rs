//! Protected items: what a device backs up, into which vault, and when.

use chrono::{DateTime, Utc};

use crate::ids::{DeviceId, TenantId, VaultId};

wire! {
    /// What to back up on a device, into which vault, on which schedule. Its snapshots
    /// carry its tags and the tag `item:<id>`; they are kept as the item's own policy says
    /// when it has one, else as the vault's (see [`crate::Policy`]).
    pub struct ProtectedItem {
        pub id: String,
        pub tenant_id: String,
        pub device_id: String,
        pub vault_id: String,
        pub name: String,
        /// Absolute paths on the device.
        pub paths: Vec<String>,
        /// Exclude patterns, as `loop backup --exclude` reads them.
        pub excludes: Vec<String>,
        /// Stay on the file system of each path.
        pub one_file_system: bool,
        pub tags: Vec<String>,
        /// Run on the device before the backup, only when its agent allows commands; the
        /// backup fails if it fails.
        pub pre_command: Option<String>,
        /// Run on the device after the backup (whatever its result), only when its agent
        /// allows commands.
        pub post_command: Option<String>,
        /// When it runs: a calendar event (`mon..fri 22:00`, `daily`, `*:0/15`) or a cron
        /// line, in the tenant's time zone. Absent: only when asked (`run`).
        pub schedule: Option<String>,
        /// Each scheduled run starts at a random moment up to this long after its time, so
        /// that many devices on one schedule do not all start at once.
        pub jitter_seconds: u32,
        /// A run that has not started this long after its time is `missed`.
        pub window_seconds: u32,
        /// The backup uploads at most this many KiB/s (its agent's own `--limit-upload`,
        /// when lower, still holds). Absent: no limit of the item's.
        #[serde(default)]
        pub upload_limit_kib: Option<u32>,
        /// When the next scheduled run is due.
        pub next_run_at: Option<DateTime<Utc>>,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
    }

    /// `POST /api/v1/items`.
    pub struct CreateItem {
        pub tenant_id: TenantId,
        pub device_id: DeviceId,
        pub vault_id: VaultId,
        pub name: String,
        pub paths: Vec<String>,
        #[serde(default)]
        pub excludes: Vec<String>,
        #[serde(default)]
        pub one_file_system: bool,
        #[serde(default)]
        pub tags: Vec<String>,
        #[serde(default)]
        pub pre_command: Option<String>,
        #[serde(default)]
        pub post_command: Option<String>,
        #[serde(default)]
        pub schedule: Option<String>,
        /// Default 0.
        #[serde(default)]
        pub jitter_seconds: Option<u32>,
        /// Default 14400 (four hours).
        #[serde(default)]
        pub window_seconds: Option<u32>,
        /// KiB/s; default (and 0): no limit.
        #[serde(default)]
        pub upload_limit_kib: Option<u32>,
    }

    /// `PATCH /api/v1/items/{id}`: what is given replaces what was. An empty `schedule`
    /// (`""`) removes the schedule; an empty command removes the command; an upload limit
    /// of 0 removes the limit.
    pub struct UpdateItem {
        #[serde(default)]
        pub name: Option<String>,
        #[serde(default)]
        pub paths: Option<Vec<String>>,
        #[serde(default)]
        pub excludes: Option<Vec<String>>,
        #[serde(default)]
        pub one_file_system: Option<bool>,
        #[serde(default)]
        pub tags: Option<Vec<String>>,
        #[serde(default)]
        pub pre_command: Option<String>,
        #[serde(default)]
        pub post_command: Option<String>,
        #[serde(default)]
        pub schedule: Option<String>,
        #[serde(default)]
        pub jitter_seconds: Option<u32>,
        #[serde(default)]
        pub window_seconds: Option<u32>,
        #[serde(default)]
        pub upload_limit_kib: Option<u32>,
    }
}
