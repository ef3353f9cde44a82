//! Requests and responses of the vault protocol (`/vaults/{id}/v1/...`, docs/PROTOCOL.md).

use chrono::{DateTime, Utc};

use crate::{KeyCustody, SecretText, TokenPermission};

/// Most objects one deletion announcement names ([`AnnounceDeletions`]).
pub const MAX_ANNOUNCED: usize = 10_000;

/// The body limit of a deletion announcement: [`MAX_ANNOUNCED`] entries of a 64-digit name
/// (about 90 bytes each in JSON), with room to spare, whatever the server's JSON limit.
pub const ANNOUNCE_BODY_BYTES: usize = 2 << 20;

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
        /// The vault's destination takes packs straight from clients (presigned URLs,
        /// `.../direct`) and hands them out the same way (`307` to reads that send
        /// `x-loop-direct`). Absent from servers before direct transfers: false.
        #[serde(default)]
        pub direct: bool,
        /// The jurisdiction of the vault's primary destination (a server pushing to this
        /// vault checks it against its tenant's residency). Absent from older servers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub jurisdiction: Option<String>,
    }

    /// `POST /vaults/{id}/v1/deletions`: objects (kinds `index`, `data`, `plans`, as in the
    /// protocol's paths) a maintainer will delete once the deletion grace has passed; at most
    /// [`MAX_ANNOUNCED`] in one request (a client announces more in several).
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

    /// `POST /vaults/{id}/v1/data/{name}/direct`: a pack the client will upload straight to
    /// the destination.
    pub struct DirectUploadRequest {
        /// Its exact length in bytes.
        pub size: u64,
        /// The BLAKE3 hash of its bytes, 64 hex digits.
        pub hash: String,
    }

    /// Where to upload it: `PUT` the bytes to `url` with `headers` before `expires_at`, then
    /// complete the upload (`.../direct/complete`). The URL writes only a staging object of
    /// this upload; the server checks it and moves it into place.
    pub struct DirectUpload {
        pub upload_id: String,
        pub url: String,
        pub headers: std::collections::BTreeMap<String, String>,
        pub expires_at: DateTime<Utc>,
    }

    /// `POST /vaults/{id}/v1/data/{name}/direct/complete`.
    pub struct CompleteDirectUpload {
        pub upload_id: String,
    }

    /// One object in a vault listing.
    pub struct ObjectEntry {
        pub name: String,
        pub size: u64,
        pub modified: DateTime<Utc>,
    }
}
