//! Arguments of `loop server` and of the service commands (`login`, `tenant`, `user`, ...).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use loop_api::{
    DeviceId, JobId, JobKind, JobState, Role, RoleBindingId, SessionId, TenantId, TenantKind,
    TokenId, TokenKind, TokenPermission, UserId, VaultId,
};

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
    /// Erase a customer: destroy its keys so its backups can never be read (provider-admins)
    Erase {
        id: TenantId,
        /// The tenant's name (or ID) again, to confirm
        #[arg(long)]
        confirm: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// List users
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    /// Create a user (password from LOOP_NEW_USER_PASSWORD) or, with --invite, invite one
    Create {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        email: String,
        #[arg(long)]
        first_name: String,
        #[arg(long)]
        last_name: String,
        #[arg(long, default_value = "")]
        address: String,
        /// Bind this role on the user's tenant
        #[arg(long)]
        role: Option<Role>,
        /// No password: the invitation goes to the address by e-mail (an administrator of
        /// the whole service is shown a one-time invite token instead)
        #[arg(long)]
        invite: bool,
    },
    /// Accept an invitation and choose your password (the code from LOOP_INVITE_TOKEN, the
    /// password from LOOP_NEW_USER_PASSWORD, else both asked for)
    AcceptInvite {
        #[arg(long)]
        server: String,
    },
    /// Confirm a new e-mail address (the code from LOOP_EMAIL_TOKEN, else asked for)
    ConfirmEmail {
        #[arg(long)]
        server: String,
    },
    /// Change a user's name, e-mail or business address (a new address of an account
    /// changes once its owner confirms it)
    Update {
        id: UserId,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        #[arg(long)]
        address: Option<String>,
    },
    /// Disable a user (their sessions end)
    Disable { id: UserId },
    /// Enable a disabled user
    Enable { id: UserId },
    /// List a user's role bindings
    Roles { id: UserId },
    /// Bind a role on a tenant
    Grant {
        id: UserId,
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        role: Role,
    },
    /// Remove a role binding
    Revoke { id: UserId, binding: RoleBindingId },
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
        /// backup, restore or manage (repeatable)
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
    },
    Show {
        id: VaultId,
    },
    /// List a managed vault's snapshots
    Snapshots {
        id: VaultId,
    },
    /// Check a managed vault on the server (a verify job): its structure, and a share of
    /// its packs downloaded and authenticated
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
    /// List the destinations vaults can be placed at
    Destinations,
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
        /// At most this many (default 100)
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
    },
}
