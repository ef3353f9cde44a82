//! Erasure: a customer tenant crypto-shredded, a person erased on request, and what each
//! removed.

use crate::KeyCustody;

wire! {
    /// Erase a customer tenant (crypto-shredding). `confirm` must repeat the tenant's name
    /// or ID, so a mistyped ID cannot erase the wrong customer.
    pub struct EraseTenant {
        pub confirm: String,
    }

    /// `POST /api/v1/users/{id}/erase`: erase a person on request. `confirm` repeats the
    /// user's e-mail address.
    pub struct ErasePerson {
        pub confirm: String,
    }

    /// What erasing a person removed. The user stays as a pseudonym
    /// (`erased-ID@erased.invalid`, "Erased user") so the audit events they caused stay
    /// events of that actor, and every audit chain still verifies.
    pub struct PersonErased {
        pub user_id: String,
        pub sessions_deleted: u64,
        /// Audit events whose IP address and browser were erased.
        pub audit_personal_erased: u64,
        pub role_bindings_removed: u64,
        /// Notification targets the address was removed from.
        pub notify_recipients_removed: u64,
    }

    /// What an erasure destroyed. Erasing an erased tenant again finishes an interrupted
    /// erasure and reports what was left.
    pub struct TenantErasure {
        pub tenant_id: String,
        /// True when this call deleted the tenant key (false: it was gone already).
        pub tenant_key_destroyed: bool,
        pub tokens_revoked: u64,
        pub sessions_ended: u64,
        pub users_disabled: u64,
        pub vaults: Vec<VaultErasure>,
        /// The job deleting every object at every place, then issuing the deletion
        /// certificate (`GET /api/v1/tenants/{id}/erasure-certificate`); null once it is
        /// done.
        #[serde(default)]
        pub erasure_job_id: Option<String>,
    }

    /// An erased tenant's deletion certificate (`GET /api/v1/tenants/{id}/erasure-certificate`):
    /// per place (destination, replica, another server's copy) the objects and bytes
    /// deleted, what a listing afterwards found, when and how. `sha256` (of `body`, exactly
    /// these bytes) is recorded in the tenant's audit chain (`tenant.erasure_certificate`).
    pub struct DeletionCertificate {
        pub id: String,
        pub tenant_id: String,
        pub issued_at: chrono::DateTime<chrono::Utc>,
        pub sha256: String,
        /// The certificate, JSON text, as hashed.
        pub body: String,
    }

    /// The key slots deleted from one vault's storage.
    pub struct VaultErasure {
        pub vault_id: String,
        pub key_custody: KeyCustody,
        pub destination: String,
        pub key_slots_deleted: Vec<String>,
        /// The vault's replicas whose copies of the key slots were deleted as well.
        #[serde(default)]
        pub replica_destinations: Vec<String>,
        /// The vault's places (its destination, a replica's) not configured on the node
        /// that erased: their key slots go with everything else there when the erasure job
        /// runs on a node that has them, or the certificate names them as out of reach.
        #[serde(default)]
        pub destinations_not_reached: Vec<String>,
    }
}
