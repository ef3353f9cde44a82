//! Arguments of `loop server` and of the service commands (`login`, `tenant`, `user`, ...).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use loop_api::{
    DeviceId, ItemId, JobId, JobKind, JobState, SessionId, TenantId, TenantKind, TokenId,
    TokenKind, TokenPermission, VaultId,
};

mod billing;
mod notify;
mod policy;
mod privacy;
mod signup;
mod sync;
mod users;
pub use billing::{InvoiceCommand, PlanCommand, SubscriptionCommand};
pub use notify::{NotifyCommand, TargetCommand};
pub use policy::{KeepArgs, MaintenanceArgs, PolicyCommand};
pub use privacy::{OnOff, PrivacyCommand, RequestCommand, SubprocessorCommand};
pub use signup::SignupCommand;
pub use sync::{RemoteCommand, SyncCommand};
pub use users::UserCommand;

#[derive(Args, Debug)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// TOML configuration file (see docs/OPERATIONS.md); LOOP_* variables override it
    #[arg(long, env = "LOOP_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory: database, local destination, certificate, master key
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8443)
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// E-mail of the administrator created on first start (default admin@localhost)
    #[arg(long)]
    pub admin_email: Option<String>,
    /// PEM certificate chain (default: a self-signed certificate made on first start)
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Server log as `text` (default) or `json` (one object per line)
    #[arg(long)]
    pub log_format: Option<loop_server::logging::LogFormat>,
}

#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// Recompute vaults' usage from what their destinations hold (safe while serving)
    Reconcile {
        /// Only this vault (default: every vault)
        #[arg(long)]
        vault: Option<VaultId>,
    },
    /// Wrap every key and secret still under a previous master key under the current one
    /// (safe while serving; see "Rotating the master key" in docs/OPERATIONS.md)
    RewrapKeys,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Server address, https://HOST:PORT
    #[arg(long, env = "LOOP_SERVER")]
    pub server: String,
    #[arg(long)]
    pub email: String,
    /// Keep the session for the remembered lifetime (30 days by default)
    #[arg(long)]
    pub remember: bool,
    /// Code from the authenticator app, when TOTP is enabled
    #[arg(long)]
    pub totp: Option<String>,
    /// Label for this session in session lists (default: this host's name)
    #[arg(long)]
    pub device_label: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// List the tenants you can see
    List,
    /// Create a partner or customer tenant
    Create {
        #[arg(long)]
        parent: TenantId,
        /// partner or customer
        #[arg(long)]
        kind: TenantKind,
        #[arg(long)]
        name: String,
        /// IANA time zone its schedules run in, like Europe/Amsterdam (default: the parent's)
        #[arg(long)]
        time_zone: Option<String>,
        /// For a customer: a plan of its partner (or provider); its free trial starts now
        #[arg(long)]
        plan: Option<String>,
    },
    /// Show one tenant
    Show { id: TenantId },
    /// Rename a tenant or change its time zone
    Update {
        id: TenantId,
        #[arg(long)]
        name: Option<String>,
        /// IANA time zone, like Europe/Amsterdam
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// Rotate a tenant's key: its managed vaults get key slots for a new key (a job; no
    /// data is re-encrypted)
    RotateKey { id: TenantId },
    /// Show the jurisdictions a tenant allows, or set them with --allow (or --inherit)
    Residency {
        id: TenantId,
        /// Allow only these jurisdictions (comma-separated, like eu or nl,de); admins above
        /// the tenant may set any its parent allows, its own admins may only narrow
        #[arg(long, value_delimiter = ',', conflicts_with = "inherit")]
        allow: Option<Vec<String>>,
        /// Set nothing of its own: the tenant has what its parent allows (admins above it)
        #[arg(long)]
        inherit: bool,
    },
    /// Every place the vaults of a tenant (and the tenants below it) live, with jurisdictions
    ResidencyReport { id: TenantId },
    /// Erase a customer: destroy its keys so its backups can never be read, then delete
    /// every object at every place (provider-admins)
    Erase {
        id: TenantId,
        /// The tenant's name (or ID) again, to confirm
        #[arg(long)]
        confirm: String,
    },
    /// An erased customer's deletion certificate (once every place was found empty)
    Certificate { id: TenantId },
}

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    Create {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        name: String,
    },
    /// Remove a device and revoke its tokens
    Delete { id: DeviceId },
    /// Restore a snapshot (or some of its paths) to a directory of the device, by its agent
    Restore {
        id: DeviceId,
        #[arg(long)]
        vault: VaultId,
        /// Snapshot ID, prefix, or latest
        #[arg(long, default_value = "latest")]
        snapshot: String,
        /// Only this path of the snapshot (glob; repeatable)
        #[arg(long = "path")]
        paths: Vec<String>,
        /// Absolute directory on the device
        #[arg(long)]
        target: String,
    },
    /// A single-use code with which `loop agent enroll` registers a machine as a device
    EnrollCode {
        #[arg(long)]
        tenant: TenantId,
        /// Minutes the code stays valid (default 60)
        #[arg(long)]
        expires_minutes: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Register this machine as a device with an enrolment code; keeps the device token in
    /// the state directory, readable by its owner only
    Enroll {
        /// Server address, https://HOST:PORT
        #[arg(long, env = "LOOP_SERVER")]
        server: String,
        /// The enrolment code; asked for on the terminal when neither this nor
        /// LOOP_ENROL_CODE gives it (a code on the command line is visible to the machine's
        /// other users while the command runs)
        #[arg(long, env = "LOOP_ENROL_CODE", hide_env_values = true)]
        code: Option<String>,
        /// The device's name (default: this host's name)
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        state: AgentState,
    },
    /// Run the agent: heartbeats, and the backups the server schedules or is asked for
    Run {
        #[command(flatten)]
        state: AgentState,
        /// Seconds between heartbeats (and looks for due jobs)
        #[arg(long, default_value_t = 30)]
        poll_seconds: u64,
        /// Run the pre- and post-commands of this device's items (off unless given)
        #[arg(long)]
        allow_commands: bool,
        /// A directory under which restores the server asks for may write (repeatable;
        /// default STATE_DIR/restores). `/` allows every directory of the machine
        #[arg(long = "restore-root")]
        restore_roots: Vec<PathBuf>,
        /// Stop after one heartbeat and the jobs that were due
        #[arg(long)]
        once: bool,
    },
}

#[derive(Args, Debug)]
pub struct AgentState {
    /// Where the agent keeps its device token (default /var/lib/loop-agent)
    #[arg(long, env = "LOOP_AGENT_DIR", default_value = "/var/lib/loop-agent")]
    pub state_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    /// Create a token; its secret is printed once
    Create {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        name: String,
        /// device or api
        #[arg(long, default_value = "device")]
        kind: TokenKind,
        #[arg(long)]
        device: Option<DeviceId>,
        /// Limit the token to this vault (repeatable; default every vault of the tenant)
        #[arg(long = "vault")]
        vaults: Vec<VaultId>,
        /// backup, restore, maintain, manage or replicate (repeatable; replicate on API tokens only)
        #[arg(long = "permission", required = true)]
        permissions: Vec<TokenPermission>,
        #[arg(long)]
        expires_days: Option<u32>,
    },
    Revoke {
        id: TokenId,
    },
}

#[derive(Subcommand, Debug)]
pub enum VaultCommand {
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    /// Create a vault for a customer tenant at a destination
    Create {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "local")]
        destination: String,
        /// Quota in bytes
        #[arg(long)]
        quota: Option<u64>,
        /// The customer keeps the key (a passphrase); the server cannot read the vault
        #[arg(long)]
        customer_key: bool,
        /// Retention lock: no object may be replaced or deleted before it is this many days
        /// old (it can be lengthened later, never shortened)
        #[arg(long)]
        lock_days: Option<u32>,
    },
    Show {
        id: VaultId,
    },
    /// Set a vault's quota: the bytes it may hold (below what it holds, it takes no upload
    /// until enough is pruned)
    Quota {
        id: VaultId,
        #[arg(long, required_unless_present = "none", conflicts_with = "none")]
        bytes: Option<u64>,
        /// No quota
        #[arg(long)]
        none: bool,
    },
    /// Set or lengthen a vault's retention lock (it can never be shortened)
    Lock {
        id: VaultId,
        #[arg(long)]
        days: u32,
    },
    /// List a managed vault's snapshots
    Snapshots {
        id: VaultId,
    },
    /// Check a vault (a verify job, run by the server, or by the maintainer's agent for a
    /// customer-key vault): its structure, and a share of its packs downloaded and
    /// authenticated
    Verify {
        id: VaultId,
        /// Percentage of packs to read, 0 to 100 (default 10; 0 checks structure only)
        #[arg(long)]
        read_data_percent: Option<f64>,
    },
    /// Delete a vault: gone at once; a vault-erasure job then removes its data
    Delete {
        id: VaultId,
    },
    /// The retention policy that applies to a vault, and where it is attached
    Policy {
        id: VaultId,
    },
    /// Name the device whose agent maintains a customer-key vault (runs its retention and
    /// verify with the passphrase, within the policy's limits), or take it away
    Maintainer {
        id: VaultId,
        /// A device of the vault's tenant
        #[arg(long, required_unless_present = "none", conflicts_with = "none")]
        device: Option<DeviceId>,
        /// No maintainer: drops every deletion the last one announced
        #[arg(long)]
        none: bool,
    },
    /// Apply a vault's retention policy now (a retention job): forget, then prune
    Retention {
        id: VaultId,
        /// Log what the policy would remove, change nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
    /// Every place the vault's objects live, with jurisdictions
    Locations {
        id: VaultId,
    },
    /// List the destinations vaults can be placed at
    Destinations,
    /// A vault's replicas: copies of its encrypted objects at further destinations
    Replica {
        #[command(subcommand)]
        command: ReplicaCommand,
    },
    /// Bring every replica of a vault up to date now (a replication job)
    Replicate {
        id: VaultId,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReplicaCommand {
    /// The vault's replicas, with state, lag and last verify
    List { vault: VaultId },
    /// Replicate the vault to a further destination (within the tenant's residency)
    Add {
        vault: VaultId,
        #[arg(long)]
        destination: String,
    },
    /// Stop replicating to a replica; a job erases its objects there
    Remove { vault: VaultId, replica: String },
    /// Make a replica the vault's primary (the old primary becomes a replica, seeded again)
    Promote { vault: VaultId, replica: String },
    /// Compare a replica with the primary (a replica-verify job)
    Verify {
        vault: VaultId,
        replica: String,
        /// Also read every object: byte for byte against the primary, and for a managed
        /// vault checked with its key
        #[arg(long)]
        read_data: bool,
    },
}

/// The settings of a protected item that `create` and `update` share.
#[derive(Args, Debug)]
pub struct ItemSettings {
    /// Exclude pattern, as `loop backup --exclude` reads it (repeatable)
    #[arg(long = "exclude")]
    pub excludes: Vec<String>,
    /// Stay on the file system of each path
    #[arg(long)]
    pub one_file_system: Option<bool>,
    /// Tag for the item's snapshots (repeatable)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Command the agent runs before the backup, if the device allows commands ("" removes it)
    #[arg(long)]
    pub pre_command: Option<String>,
    /// Command the agent runs after the backup, if the device allows commands ("" removes it)
    #[arg(long)]
    pub post_command: Option<String>,
    /// When it runs: a calendar event (`mon..fri 22:00`, `daily`, `*:0/15`) or a cron line,
    /// in the tenant's time zone ("" removes it)
    #[arg(long)]
    pub schedule: Option<String>,
    /// Start each scheduled run up to this many seconds late, at random
    #[arg(long)]
    pub jitter_seconds: Option<u32>,
    /// A run not started this many seconds after its time is missed (default 14400)
    #[arg(long)]
    pub window_seconds: Option<u32>,
    /// The item's backups upload at most this many KiB/s (0 removes the limit)
    #[arg(long, value_name = "KIB_PER_SEC")]
    pub upload_limit: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum ItemCommand {
    /// Protected items of the tenants you can see
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    Show {
        id: ItemId,
    },
    /// What a device backs up into which vault, and when
    Create {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        device: DeviceId,
        #[arg(long)]
        vault: VaultId,
        #[arg(long)]
        name: String,
        /// Absolute path to back up (repeatable)
        #[arg(long = "path", required = true)]
        paths: Vec<String>,
        #[command(flatten)]
        settings: ItemSettings,
    },
    /// Change an item: what is given replaces what was (paths, excludes and tags as a whole)
    Update {
        id: ItemId,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "path")]
        paths: Vec<String>,
        #[command(flatten)]
        settings: ItemSettings,
    },
    /// Delete an item (its snapshots stay in the vault)
    Delete {
        id: ItemId,
    },
    /// Back up the item now (a backup job for the device's agent)
    Run {
        id: ItemId,
    },
}

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Jobs, newest first
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
        #[arg(long)]
        state: Option<JobState>,
        #[arg(long)]
        kind: Option<JobKind>,
        /// The newest this many (default 100)
        #[arg(long)]
        limit: Option<u32>,
    },
    Show {
        id: JobId,
    },
    /// A job's log lines
    Logs {
        id: JobId,
    },
    /// Cancel a queued or running job
    Cancel {
        id: JobId,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// Your sessions, or with --tenant those of a tenant's users
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    Revoke {
        id: SessionId,
    },
}

#[derive(Args, Debug, Default)]
pub struct AuditFilter {
    #[arg(long)]
    pub tenant: Option<TenantId>,
    #[arg(long)]
    pub action: Option<String>,
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long)]
    pub object: Option<String>,
    /// RFC 3339
    #[arg(long)]
    pub since: Option<String>,
    /// RFC 3339
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Query events
    List(AuditFilter),
    /// Export events as JSON Lines or CSV
    Export {
        #[command(flatten)]
        filter: AuditFilter,
        /// jsonl or csv
        #[arg(long, default_value = "jsonl")]
        format: loop_agent::ExportFormat,
        /// Write here instead of standard output
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    #[command(subcommand)]
    Audit(AdminAuditCommand),
}

#[derive(Subcommand, Debug)]
pub enum AdminAuditCommand {
    /// Verify the audit log's hash chains (from the server, or an exported file)
    Verify {
        #[arg(long)]
        tenant: Option<TenantId>,
        /// A JSON Lines export to verify offline
        #[arg(long)]
        file: Option<PathBuf>,
        /// With --file: chain heads kept apart from the server (what `loop admin audit
        /// heads` printed), which the file must reach; without them a file cut at its end
        /// still verifies
        #[arg(long, requires = "file")]
        heads: Option<PathBuf>,
    },
    /// Print each tenant chain's head (tenant, last event, its hash) as JSON, to keep apart
    /// from the server: a later export must reach them
    Heads {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
}
