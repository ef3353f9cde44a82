//! Command-line arguments. The commands follow restic's on purpose: it is what backup users
//! already know.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "loop",
    version,
    about = "Loop Backup: encrypted, deduplicated, compressed backups"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Repository: a local path or s3://BUCKET/PREFIX
    #[arg(short = 'r', long, env = "LOOP_REPOSITORY", global = true)]
    pub repo: Option<String>,
    /// Read the passphrase from this file (first line); otherwise LOOP_PASSWORD, then a prompt
    #[arg(long, env = "LOOP_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Machine-readable JSON output (documented in the README)
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Endpoint of an S3-compatible store (otherwise AWS_ENDPOINT_URL)
    #[arg(long, env = "LOOP_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,
    /// Retries of a failed storage or server request (default 10 for S3, 4 for a server)
    #[arg(long, env = "LOOP_RETRIES", global = true)]
    pub retries: Option<usize>,
    /// Seconds after which no retry starts (default 180 for S3, 30 for a server)
    #[arg(long, env = "LOOP_RETRY_SECS", global = true)]
    pub retry_secs: Option<u64>,
    /// Upload at most this many KiB/s, all transfers of the command together (default: no
    /// limit)
    #[arg(
        long,
        env = "LOOP_LIMIT_UPLOAD",
        global = true,
        value_name = "KIB_PER_SEC"
    )]
    pub limit_upload: Option<u64>,
    /// Download at most this many KiB/s, all transfers of the command together (default: no
    /// limit)
    #[arg(
        long,
        env = "LOOP_LIMIT_DOWNLOAD",
        global = true,
        value_name = "KIB_PER_SEC"
    )]
    pub limit_download: Option<u64>,
    /// Worker threads for hashing and packing (default: one per core)
    #[arg(long, global = true, default_value_t = 0)]
    pub threads: usize,
    /// Trust the server whose certificate has this SHA-256 fingerprint (as `loop server`
    /// prints it)
    #[arg(long, env = "LOOP_SERVER_FINGERPRINT", global = true)]
    pub server_fingerprint: Option<String>,
    /// Trust the server certificates in this PEM file
    #[arg(long, env = "LOOP_CACERT", global = true)]
    pub cacert: Option<PathBuf>,
    /// Where a remote repository's index, snapshots and trees are cached (default:
    /// $XDG_CACHE_HOME/loop, else ~/.cache/loop)
    #[arg(long, env = "LOOP_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Read everything from the repository, without the local cache
    #[arg(long, env = "LOOP_NO_CACHE", global = true)]
    pub no_cache: bool,
    /// What the command is, as told to the server when a vault is opened.
    #[arg(skip)]
    pub operation: String,
    /// Argon2id memory in KiB for new key slots (default 65536)
    #[arg(long, global = true, hide = true)]
    pub kdf_memory: Option<u32>,
    /// Argon2id passes for new key slots (default 3)
    #[arg(long, global = true, hide = true)]
    pub kdf_passes: Option<u32>,
}

impl Global {
    /// Which server certificates to trust: a pinned fingerprint, a CA file, or the system's.
    pub fn trust(&self) -> loop_agent::Trust {
        match (&self.server_fingerprint, &self.cacert) {
            (Some(f), _) => loop_agent::Trust::Fingerprint(f.clone()),
            (None, Some(c)) => loop_agent::Trust::CaFile(c.clone()),
            (None, None) => loop_agent::Trust::System,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a repository
    Init(InitArgs),
    /// Back up files and directories
    Backup(BackupArgs),
    /// List snapshots
    Snapshots(SnapshotsArgs),
    /// List the files of a snapshot
    Ls(LsArgs),
    /// Show what changed between two snapshots
    Diff(DiffArgs),
    /// Restore a snapshot
    Restore(RestoreArgs),
    /// Write one file of a snapshot to standard output
    Dump(DumpArgs),
    /// Remove snapshots by ID or by a retention policy
    Forget(ForgetArgs),
    /// Remove data no snapshot needs
    Prune(PruneArgs),
    /// Verify the repository
    Check(CheckArgs),
    /// Repair what a damaged repository can recover
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Sizes and deduplication of snapshots
    Stats(StatsArgs),
    /// Manage passphrases (key slots)
    #[command(subcommand)]
    Key(KeyCommand),
    /// List the local caches of remote repositories, or remove those long unused
    Cache(CacheArgs),
    /// Run the Loop Backup service
    Server(crate::service_args::ServerArgs),
    /// Sign in to a server (the session is kept in the config directory)
    Login(crate::service_args::LoginArgs),
    /// Sign out
    Logout,
    /// Start a free trial for your organisation (a server with self-service sign-up)
    #[command(subcommand)]
    Signup(crate::service_args::SignupCommand),
    /// Show the signed-in user and their roles
    Whoami,
    /// Tenants (provider, partners, customers)
    #[command(subcommand)]
    Tenant(crate::service_args::TenantCommand),
    /// Users and their roles
    #[command(subcommand)]
    User(crate::service_args::UserCommand),
    /// The privacy policy, your consent to product news, announcements
    #[command(subcommand)]
    Privacy(crate::service_args::PrivacyCommand),
    /// Plans sold by providers and partners
    #[command(subcommand)]
    Plan(crate::service_args::PlanCommand),
    /// A customer's subscription: plan, payment, end
    #[command(subcommand)]
    Subscription(crate::service_args::SubscriptionCommand),
    /// Invoices, and payments recorded by their issuer
    #[command(subcommand)]
    Invoice(crate::service_args::InvoiceCommand),
    /// Devices (machines that back up)
    #[command(subcommand)]
    Device(crate::service_args::DeviceCommand),
    /// Device and API tokens
    #[command(subcommand)]
    Token(crate::service_args::TokenCommand),
    /// Vaults and destinations
    #[command(subcommand)]
    Vault(crate::service_args::VaultCommand),
    /// The agent: enrol this machine, then run scheduled backups
    #[command(subcommand)]
    Agent(crate::service_args::AgentCommand),
    /// Protected items: what devices back up, and when
    #[command(subcommand)]
    Item(crate::service_args::ItemCommand),
    /// Retention policies of tenants and vaults
    #[command(subcommand)]
    Policy(crate::service_args::PolicyCommand),
    /// Other loop servers to sync vaults with
    #[command(subcommand)]
    Remote(crate::service_args::RemoteCommand),
    /// Sync jobs: push vaults to a remote, or pull them from one
    #[command(subcommand)]
    Sync(crate::service_args::SyncCommand),
    /// Notifications: targets, their delivery log, and the events raised
    #[command(subcommand)]
    Notify(crate::service_args::NotifyCommand),
    /// Jobs the service runs on its own (vault erasure, ...)
    #[command(subcommand)]
    Job(crate::service_args::JobCommand),
    /// Sign-in sessions
    #[command(subcommand)]
    Session(crate::service_args::SessionCommand),
    /// The audit log
    #[command(subcommand)]
    Audit(crate::service_args::AuditCommand),
    /// Server administration
    #[command(subcommand)]
    Admin(crate::service_args::AdminCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Print the manual page in roff, or with --dir write one page per command there
    Man {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// zstd level for data (1-22)
    #[arg(long, default_value_t = 3)]
    pub compression: i32,
}

#[derive(Args, Debug, Default)]
pub struct Filter {
    /// Only snapshots of this host
    #[arg(long = "host", short = 'H')]
    pub hosts: Vec<String>,
    /// Only snapshots that include this path
    #[arg(long = "path")]
    pub paths: Vec<String>,
    /// Only snapshots with this tag
    #[arg(long = "tag")]
    pub tags: Vec<String>,
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Files and directories to back up
    pub paths: Vec<PathBuf>,
    /// Skip paths matching this glob (see the README for the syntax)
    #[arg(short = 'e', long = "exclude")]
    pub excludes: Vec<String>,
    /// Read exclude globs from this file, one per line
    #[arg(long = "exclude-file")]
    pub exclude_files: Vec<PathBuf>,
    /// Skip the contents of directories tagged as caches (a CACHEDIR.TAG file), all but the
    /// tag
    #[arg(long)]
    pub exclude_caches: bool,
    /// Do not cross into other filesystems
    #[arg(short = 'x', long)]
    pub one_file_system: bool,
    /// Tag the snapshot
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's)
    #[arg(long)]
    pub host: Option<String>,
    /// Back up standard input as one file
    #[arg(long)]
    pub stdin: bool,
    /// File name for --stdin
    #[arg(long, default_value = "stdin")]
    pub stdin_filename: String,
    /// Do everything but write to the repository
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Compare against this snapshot instead of the latest with the same host and paths
    #[arg(long)]
    pub parent: Option<String>,
    /// Read every file, ignoring the parent snapshot
    #[arg(long)]
    pub force: bool,
    /// Cut files into fixed-size chunks of this many bytes (disk and VM images)
    #[arg(long)]
    pub fixed_chunks: Option<u32>,
    /// Write an index at least this often (seconds), bounding what an interruption loses
    #[arg(long, default_value_t = loop_repo::backup::INDEX_FLUSH.as_secs(), hide = true)]
    pub index_flush_secs: u64,
    /// Record this time instead of now (RFC 3339)
    #[arg(long, hide = true)]
    pub time: Option<String>,
    /// Create the repository first if there is none
    #[arg(long)]
    pub init: bool,
}

#[derive(Args, Debug)]
pub struct CacheArgs {
    /// Remove the caches unused for --max-unused-days (a backup, restore or browse does so
    /// too, for caches other than its own)
    #[arg(long)]
    pub cleanup: bool,
    /// Days after which an unused cache counts as old
    #[arg(long, value_name = "DAYS", default_value_t = loop_repo::UNUSED_CACHE_DAYS)]
    pub max_unused_days: u64,
}

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: Filter,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot ID, prefix, or `latest`
    pub snapshot: String,
    /// Only list below this path inside the snapshot
    pub path: Option<String>,
    #[command(flatten)]
    pub filter: Filter,
    /// Show mode, size and time
    #[arg(short, long)]
    pub long: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub first: String,
    pub second: String,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot ID, prefix, or `latest`
    pub snapshot: String,
    /// Directory to restore into (created if missing)
    #[arg(short, long)]
    pub target: PathBuf,
    /// Restore only paths matching this glob
    #[arg(short = 'i', long = "include")]
    pub includes: Vec<String>,
    /// Skip paths matching this glob
    #[arg(short = 'e', long = "exclude")]
    pub excludes: Vec<String>,
    /// Re-read restored files and compare them with the snapshot
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub filter: Filter,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    pub snapshot: String,
    /// Path of the file inside the snapshot
    pub path: String,
    #[command(flatten)]
    pub filter: Filter,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Snapshots to remove (IDs or prefixes)
    pub snapshots: Vec<String>,
    #[arg(long, default_value_t = 0)]
    pub keep_last: u32,
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
    /// Keep snapshots with this tag
    #[arg(long = "keep-tag")]
    pub keep_tags: Vec<String>,
    /// Keep snapshots newer than this duration before the newest (e.g. 1y2m3d4h)
    #[arg(long)]
    pub keep_within: Option<String>,
    #[command(flatten)]
    pub filter: Filter,
    /// Run prune afterwards
    #[arg(long)]
    pub prune: bool,
    /// Show what would be removed, remove nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub prune_opts: PruneOpts,
}

#[derive(Args, Debug)]
pub struct PruneOpts {
    /// Repack packs with more than this share of unused data (percent)
    #[arg(long, default_value_t = 10.0)]
    pub max_unused: f64,
    /// Leave unindexed packs younger than this alone (e.g. 1h, 30m, 0s)
    #[arg(long, default_value = "1h")]
    pub grace: String,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Print the plan, change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub opts: PruneOpts,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Read and authenticate every byte of every pack
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read this percentage of packs (e.g. 10 or 10%)
    #[arg(long)]
    pub read_data_subset: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RepairCommand {
    /// Index the packs no index file names (a lost or damaged index file), and stop naming
    /// packs that are gone
    Index {
        /// Report what would change, change nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Snapshots (default: all)
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: Filter,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// List key slots
    List,
    /// Add a passphrase (from --new-password-file, LOOP_NEW_PASSWORD, or a prompt)
    Add(NewPassword),
    /// Remove a key slot by ID or prefix
    Remove { id: String },
    /// Change the passphrase of the key slot in use
    Passwd(NewPassword),
}

#[derive(Args, Debug)]
pub struct NewPassword {
    #[arg(long, env = "LOOP_NEW_PASSWORD_FILE")]
    pub new_password_file: Option<PathBuf>,
    /// Label for the new key slot
    #[arg(long, default_value = "")]
    pub label: String,
}
