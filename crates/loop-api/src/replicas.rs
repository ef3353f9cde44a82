//! Replicas: copies of a vault's stored (encrypted) objects at further destinations.

closed_set! {
    /// Where a replica is.
    pub enum ReplicaState("replica state") {
        /// Added, not yet completely copied: reads never fall back to it.
        Seeding = "seeding",
        /// Completely copied at least once; reads fall back to it when the primary fails.
        Active = "active",
        /// A verify found it differing from the primary: reads do not use it until a
        /// replication repairs it and a verify passes.
        Damaged = "damaged",
    }
}

wire! {
    /// A replica of a vault (`GET /api/v1/vaults/{id}/replicas`).
    pub struct Replica {
        pub id: String,
        pub vault_id: String,
        pub destination: String,
        pub jurisdiction: String,
        pub state: ReplicaState,
        pub created_at: chrono::DateTime<chrono::Utc>,
        /// When the last complete replication ended; null before the first.
        pub synced_at: Option<chrono::DateTime<chrono::Utc>>,
        /// Objects (and their bytes) the vault received after the last complete replication
        /// began: what the replica may lack now.
        pub objects_behind: u64,
        pub bytes_behind: u64,
        /// When the last verify of the replica ended, and whether it found it whole.
        pub verified_at: Option<chrono::DateTime<chrono::Utc>>,
        pub verify_ok: Option<bool>,
        /// Why the last replication or verify did not end well.
        pub last_error: Option<String>,
    }

    /// `POST /api/v1/vaults/{id}/replicas`.
    pub struct CreateReplica {
        pub destination: String,
    }

    /// `POST /api/v1/vaults/{id}/replicas/{replica}/verify`.
    pub struct VerifyReplica {
        /// Also read every object: authenticated by the vault's key for a managed vault,
        /// compared byte for byte with the primary's copy for a customer-key vault.
        #[serde(default)]
        pub read_data: bool,
    }
}
