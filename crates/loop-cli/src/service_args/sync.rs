//! Arguments of `loop remote` and `loop sync`.

use clap::Subcommand;
use loop_api::{SyncDirection, TenantId, VaultId};

#[derive(Subcommand, Debug)]
pub enum RemoteCommand {
    /// Remotes of the tenants you can see
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    /// Add another loop server, with a token it issued with the replicate permission
    /// (read from LOOP_REMOTE_TOKEN, or asked for)
    Add {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        name: String,
        /// https://HOST:PORT of the other server
        #[arg(long)]
        url: String,
        /// The other server's certificate SHA-256, as `loop server` prints it
        #[arg(long)]
        fingerprint: Option<String>,
    },
    /// Remove a remote and its sync jobs
    Remove { id: String },
}

#[derive(Subcommand, Debug)]
pub enum SyncCommand {
    /// Sync jobs of the tenants you can see
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    /// Push a vault to a remote's vault, or pull one from it (into a customer-key vault);
    /// without --vault, every vault of the remote's tenant (--match narrows it by name),
    /// each with the vault of the same name on the other side
    Add {
        /// push or pull
        direction: SyncDirection,
        #[arg(long)]
        remote: String,
        /// The vault of this server
        #[arg(long, requires = "remote_vault")]
        vault: Option<VaultId>,
        /// The vault of the remote
        #[arg(long, requires = "vault")]
        remote_vault: Option<String>,
        /// Only vaults whose name matches this glob, like db-* (repeatable; without --vault)
        #[arg(long = "match", conflicts_with = "vault")]
        patterns: Vec<String>,
        /// Run by itself on this schedule (as protected items: daily, *:0/15, a cron line)
        #[arg(long)]
        schedule: Option<String>,
        /// Remove from the receiving vault what the sending one no longer holds
        #[arg(long)]
        remove_vanished: bool,
        /// At most this many bytes a second (on average)
        #[arg(long)]
        bytes_per_sec: Option<u64>,
    },
    /// Delete a sync job
    Remove { id: String },
    /// Run a sync job now (follow it with `loop job show`)
    Run { id: String },
}
