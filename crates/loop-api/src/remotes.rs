//! Remotes (other `loop server`s) and the sync jobs that copy vaults to and from them.

closed_set! {
    /// Which way a sync job copies.
    pub enum SyncDirection("sync direction") {
        /// A vault of this server to a vault of the remote.
        Push = "push",
        /// A vault of the remote to a vault of this server.
        Pull = "pull",
    }
}

wire! {
    /// Another `loop server` a tenant syncs vaults with (`GET /api/v1/remotes`). Its
    /// replication token is kept wrapped under the master key and never shown again.
    pub struct Remote {
        pub id: String,
        pub tenant_id: String,
        pub name: String,
        /// `https://HOST:PORT`.
        pub url: String,
        /// The SHA-256 (hex) its certificate must have; null trusts the system's roots.
        pub fingerprint: Option<String>,
        pub created_at: chrono::DateTime<chrono::Utc>,
    }

    /// `POST /api/v1/remotes`.
    pub struct CreateRemote {
        pub tenant_id: crate::TenantId,
        pub name: String,
        pub url: String,
        /// The other server's certificate fingerprint, as `loop server` prints it.
        #[serde(default)]
        pub fingerprint: Option<String>,
        /// A token of the other server with the `replicate` permission, naming the vaults
        /// the sync jobs use there.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub token: crate::SecretText,
    }

    /// A sync job (`GET /api/v1/sync-jobs`).
    pub struct SyncJob {
        pub id: String,
        pub tenant_id: String,
        pub remote_id: String,
        pub direction: SyncDirection,
        /// The vault of this server; null: every vault of the tenant that `vaults` matches,
        /// each with the remote's vault of the same name.
        pub vault_id: Option<String>,
        /// The vault of the remote (null with `vault_id`).
        pub remote_vault_id: Option<String>,
        /// For a job of the whole tenant: glob patterns of the vault names it syncs
        /// (`db-*`); empty: every vault.
        pub vaults: Vec<String>,
        /// Remove from the receiving vault what the sending one no longer holds (never what
        /// a retention lock holds).
        pub remove_vanished: bool,
        pub bytes_per_sec: Option<u64>,
        /// When it runs by itself (protected items' schedule syntax); null: only by hand.
        pub schedule: Option<String>,
        pub next_run_at: Option<chrono::DateTime<chrono::Utc>>,
        pub created_at: chrono::DateTime<chrono::Utc>,
    }

    /// `POST /api/v1/sync-jobs`: one vault (`vault_id` and `remote_vault_id`), or every
    /// vault of the remote's tenant that `vaults` matches, by name.
    pub struct CreateSyncJob {
        pub remote_id: String,
        pub direction: SyncDirection,
        #[serde(default)]
        pub vault_id: Option<crate::VaultId>,
        #[serde(default)]
        pub remote_vault_id: Option<String>,
        /// Glob patterns of vault names, for a job of the whole tenant; empty: every vault.
        #[serde(default)]
        pub vaults: Vec<String>,
        #[serde(default)]
        pub remove_vanished: bool,
        /// At most this many bytes a second (on average); none: no limit.
        #[serde(default)]
        pub bytes_per_sec: Option<u64>,
        #[serde(default)]
        pub schedule: Option<String>,
    }
}

wire! {
    /// `GET /vaults` on the vault protocol: a vault the token may use.
    pub struct VaultEntry {
        pub id: String,
        pub name: String,
        pub key_custody: crate::KeyCustody,
        /// The jurisdiction of its primary destination.
        pub jurisdiction: String,
    }
}
