//! Requests and responses of the vault protocol (`/vaults/{id}/v1/...`, docs/PROTOCOL.md).

use chrono::{DateTime, Utc};

use crate::{KeyCustody, SecretText, TokenPermission};

wire! {
    /// What a client asks when it starts to use a vault with a token.
    pub struct VaultOpenRequest {
        /// What the client is about to do: backup, restore, check, prune, ... (recorded).
        pub operation: String,
        #[serde(default)]
        pub host: Option<String>,
    }

    pub struct VaultOpenResponse {
        pub vault_id: String,
        pub permissions: Vec<TokenPermission>,
        pub key_custody: KeyCustody,
        /// For managed vaults: the vault's key-encryption key (hex), which opens its key
        /// slot. Absent for customer-held keys.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        pub key: Option<SecretText>,
    }

    /// `POST /vaults/{id}/v1/deletions`: objects (kinds `index`, `data`, `plans`, as in the
    /// protocol's paths) a maintainer will delete once the deletion grace has passed.
    pub struct AnnounceDeletions {
        pub objects: Vec<ObjectRef>,
    }

    pub struct ObjectRef {
        pub kind: String,
        pub name: String,
    }

    /// `GET /vaults/{id}/v1/deletions`: what was announced, and since when it may go.
    pub struct DeletionPlan {
        pub objects: Vec<PlannedDeletion>,
    }

    pub struct PlannedDeletion {
        pub kind: String,
        pub name: String,
        pub announced_at: DateTime<Utc>,
        /// From then on the maintainer may delete it.
        pub released_at: DateTime<Utc>,
        pub released: bool,
    }

    /// One object in a vault listing.
    pub struct ObjectEntry {
        pub name: String,
        pub size: u64,
        pub modified: DateTime<Utc>,
    }
}
