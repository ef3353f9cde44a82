//! Requests and responses of the JSON API (the vault protocol's are in `vault.rs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, TenantId, VaultId};

/// A string that is not one of a closed set's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownValue {
    /// What the value was meant to be, e.g. "token permission".
    pub what: &'static str,
    pub value: String,
    /// The values there are.
    pub expected: &'static [&'static str],
}

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (last, rest) = self.expected.split_last().unwrap_or((&"", &[]));
        let list = if rest.is_empty() {
            (*last).to_string()
        } else {
            format!("{} or {last}", rest.join(", "))
        };
        write!(f, "unknown {} {:?}: expected {list}", self.what, self.value)
    }
}

impl std::error::Error for UnknownValue {}

closed_set! {
    /// A named set of permissions, granted on a tenant and its subtree.
    pub enum Role("role") {
        ProviderAdmin = "provider-admin",
        PartnerAdmin = "partner-admin",
        Admin = "admin",
        Operator = "operator",
        /// Reads everything, the audit log included; changes nothing.
        Auditor = "auditor",
        Billing = "billing",
    }

    /// A node of the tenant tree: provider (the root) → partner → customer.
    pub enum TenantKind("tenant kind") {
        Provider = "provider",
        Partner = "partner",
        Customer = "customer",
    }

    pub enum TenantStatus("tenant status") {
        Active = "active",
        /// The tenant's keys are destroyed: its backups cannot be read, and nothing of it
        /// changes any more.
        Erased = "erased",
    }

    pub enum UserStatus("user status") {
        /// An account: may sign in.
        Active = "active",
        /// Invited, no password chosen yet: not an account.
        Invited = "invited",
        /// May not sign in.
        Disabled = "disabled",
    }

    pub enum TokenKind("token kind") {
        /// Bound to one enrolled device.
        Device = "device",
        Api = "api",
    }

    /// What a token may do with a vault.
    pub enum TokenPermission("token permission") {
        /// Add data: write new packs, indexes and snapshots. No reading of snapshots or
        /// packs, no deletion.
        Backup = "backup",
        /// Read everything.
        Restore = "restore",
        /// Delete (forget, prune) and rewrite keys.
        Manage = "manage",
        /// Forget and prune under the server's limits, as the maintainer of a customer-key
        /// vault does: read everything; write packs, indexes and prune plans; delete
        /// snapshots the server stored at least the policy's `min_snapshot_age_days` ago,
        /// and other objects only `deletion_grace_hours` after announcing them
        /// (`POST /vaults/{id}/v1/deletions`). Never keys or the config.
        Maintain = "maintain",
        /// Another `loop server` syncing the vault (API tokens only): list and read
        /// everything; create the config, key slots, packs, indexes, prune plans and
        /// snapshots (never replace one); delete only objects a replication token wrote,
        /// and never one a retention lock holds.
        Replicate = "replicate",
    }

    /// Who holds a vault's key.
    pub enum KeyCustody("key custody") {
        /// The server, wrapped by the tenant key.
        Managed = "managed",
        /// The customer, as a passphrase the server never sees.
        Customer = "customer",
    }

    /// The storage behind a destination.
    pub enum Backend("destination backend") {
        Local = "local",
        S3 = "s3",
    }

    /// Who acted, in an audit event.
    pub enum ActorKind("actor kind") {
        User = "user",
        Token = "token",
        System = "system",
        /// Nobody signed in (a failed sign-in, for one).
        Anonymous = "anonymous",
    }

    /// How an audited action ended.
    pub enum Outcome("outcome") {
        Success = "success",
        Failure = "failure",
    }
}

/// Text that is a secret (a password, a token, a key): on the wire as a plain string, never
/// shown by `Debug`, zeroed when dropped.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(s: impl Into<String>) -> SecretText {
        SecretText(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretText {
    fn from(s: String) -> SecretText {
        SecretText(s)
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

wire! {
    /// An error body (RFC 9457 problem details). `code` is stable; `detail` is for people.
    pub struct Problem {
        #[serde(rename = "type")]
        pub type_: String,
        pub title: String,
        pub status: u16,
        pub code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub detail: Option<String>,
    }

    /// Sign in with e-mail and password (and a TOTP code when the user enrolled one).
    pub struct LoginRequest {
        pub email: String,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub password: SecretText,
        #[serde(default)]
        pub totp: Option<String>,
        /// A long-lived session instead of the default one.
        #[serde(default)]
        pub remember: bool,
        /// Free text naming the device, shown in the session list.
        #[serde(default)]
        pub device_label: Option<String>,
    }

    pub struct LoginResponse {
        pub user: User,
        pub session: Session,
        /// The session ID, also set as the `loop_session` cookie. Command-line clients keep
        /// it; browsers use the cookie.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub session_token: SecretText,
        /// The privacy policy in force, when the user has not acknowledged it yet
        /// (`POST /api/v1/me/policy-acknowledgement`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub policy_to_acknowledge: Option<crate::PrivacyPolicy>,
    }

    pub struct Me {
        pub user: User,
        pub roles: Vec<RoleBinding>,
        pub session: Option<Session>,
        /// The privacy policy in force, when the user has not acknowledged it yet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub policy_to_acknowledge: Option<crate::PrivacyPolicy>,
    }

    pub struct ChangePassword {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub current_password: SecretText,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub new_password: SecretText,
    }

    /// Proof that the person at the keyboard knows the password (before a sensitive change).
    pub struct PasswordCheck {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub current_password: SecretText,
    }

    pub struct TotpEnrollment {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub secret: SecretText,
        /// Carries the secret too.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub otpauth_url: SecretText,
    }

    pub struct TotpCode {
        pub code: String,
    }

    pub struct AcceptInvite {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub invite_token: SecretText,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub password: SecretText,
    }

    /// Confirm a new e-mail address with the token sent to it.
    pub struct ConfirmEmail {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub token: SecretText,
    }

    pub struct Tenant {
        pub id: String,
        pub parent_id: Option<String>,
        pub kind: TenantKind,
        pub name: String,
        pub status: TenantStatus,
        /// IANA time zone (`Europe/Amsterdam`): the tenant's schedules run in it.
        pub time_zone: String,
        pub created_at: DateTime<Utc>,
    }

    pub struct CreateTenant {
        pub parent_id: TenantId,
        /// partner or customer (a provider is the tree's root).
        pub kind: TenantKind,
        pub name: String,
        /// IANA time zone; the parent's when left out.
        #[serde(default)]
        pub time_zone: Option<String>,
        /// For a customer: a plan of its partner (or provider); its 14-day trial starts
        /// now. Left out: the customer is not billed.
        #[serde(default)]
        pub plan_id: Option<String>,
    }

    /// Change a tenant's name or time zone; a field left out stays as it is.
    pub struct UpdateTenant {
        #[serde(default)]
        pub name: Option<String>,
        /// IANA time zone, like `Europe/Amsterdam`.
        #[serde(default)]
        pub time_zone: Option<String>,
    }

    pub struct User {
        pub id: String,
        pub tenant_id: String,
        pub email: String,
        pub first_name: String,
        pub last_name: String,
        pub business_address: String,
        pub status: UserStatus,
        pub totp_enabled: bool,
        /// The language of the mail the service sends the user.
        #[serde(default = "crate::notify::default_language")]
        pub language: crate::Language,
        pub created_at: DateTime<Utc>,
        /// A new address waiting for its owner to confirm it; `email` stays until then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub pending_email: Option<String>,
        /// The user agreed to product news (marketing mail); off until they give it.
        #[serde(default)]
        pub marketing_consent: bool,
        /// Processing of the user's data is restricted: it is kept, and used for nothing
        /// beyond storage and the service itself (no announcements, no summary reports).
        #[serde(default)]
        pub restricted: bool,
        /// IANA time zone the console shows this person's times in; none: their tenant's.
        #[serde(default)]
        pub time_zone: Option<String>,
    }

    pub struct CreateUser {
        pub tenant_id: TenantId,
        pub email: String,
        pub first_name: String,
        pub last_name: String,
        #[serde(default)]
        pub business_address: String,
        /// Without a password the user is invited: the invitation goes to the address by
        /// e-mail. Only an administrator of the whole service may set a password here, and
        /// only such an administrator receives the invite token in the response.
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        pub password: Option<SecretText>,
        /// A role to bind on the user's tenant at once.
        #[serde(default)]
        pub role: Option<Role>,
    }

    pub struct CreatedUser {
        pub user: User,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        pub invite_token: Option<SecretText>,
    }

    pub struct UpdateUser {
        #[serde(default)]
        pub email: Option<String>,
        #[serde(default)]
        pub first_name: Option<String>,
        #[serde(default)]
        pub last_name: Option<String>,
        #[serde(default)]
        pub business_address: Option<String>,
        /// `en` or `nl`: the language of the mail the service sends the user.
        #[serde(default)]
        pub language: Option<crate::Language>,
        /// IANA time zone (`Europe/Amsterdam`) for the times the console shows; an empty
        /// string goes back to the tenant's.
        #[serde(default)]
        pub time_zone: Option<String>,
        /// Your current password: asked when you change your own e-mail address (`PATCH
        /// /me`), so a stolen session cannot move the account to another mailbox.
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        pub current_password: Option<SecretText>,
    }

    pub struct RoleBinding {
        pub id: String,
        pub user_id: String,
        pub tenant_id: String,
        pub role: Role,
        pub created_at: DateTime<Utc>,
    }

    pub struct CreateRoleBinding {
        pub tenant_id: TenantId,
        pub role: Role,
    }

    pub struct Device {
        pub id: String,
        pub tenant_id: String,
        pub name: String,
        pub created_at: DateTime<Utc>,
        pub last_seen_at: Option<DateTime<Utc>>,
    }

    pub struct CreateDevice {
        pub tenant_id: TenantId,
        pub name: String,
    }

    pub struct Token {
        pub id: String,
        pub tenant_id: String,
        pub kind: TokenKind,
        pub name: String,
        pub device_id: Option<String>,
        /// Vaults the token reaches; empty means every vault of the tenant.
        pub vault_ids: Vec<String>,
        pub permissions: Vec<TokenPermission>,
        pub created_at: DateTime<Utc>,
        pub expires_at: Option<DateTime<Utc>>,
        pub revoked_at: Option<DateTime<Utc>>,
        pub last_used_at: Option<DateTime<Utc>>,
    }

    pub struct CreateToken {
        pub tenant_id: TenantId,
        pub name: String,
        /// device (bound to `device_id`) or api.
        pub kind: TokenKind,
        #[serde(default)]
        pub device_id: Option<DeviceId>,
        /// Vaults the token reaches; empty means every vault of the tenant.
        #[serde(default)]
        pub vault_ids: Vec<VaultId>,
        /// At least one.
        pub permissions: Vec<TokenPermission>,
        /// Lifetime in days, 1 to 3650; leave it out for a token that does not expire.
        #[serde(default)]
        pub expires_in_days: Option<u32>,
    }

    pub struct CreatedToken {
        pub token: Token,
        /// The secret, shown once. The server keeps only its hash.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub secret: SecretText,
    }

    pub struct Destination {
        pub name: String,
        pub jurisdiction: String,
        pub backend: Backend,
    }

    pub struct Vault {
        pub id: String,
        pub tenant_id: String,
        pub name: String,
        pub destination: String,
        pub jurisdiction: String,
        pub key_custody: KeyCustody,
        pub quota_bytes: Option<u64>,
        pub used_bytes: u64,
        /// For a customer-key vault: the device whose agent holds the passphrase and runs the
        /// vault's retention and verify jobs.
        #[serde(default)]
        pub maintainer_device_id: Option<String>,
        /// Retention lock: no stored object of the vault may be replaced or deleted before it
        /// is this many days old (null: no lock). It can be lengthened, never shortened.
        #[serde(default)]
        pub retention_lock_days: Option<u32>,
        pub created_at: DateTime<Utc>,
    }

    /// `PUT /api/v1/vaults/{id}/retention-lock`.
    pub struct SetRetentionLock {
        /// 1 to 36500; at least the vault's current lock.
        pub days: u32,
    }

    /// `PUT /api/v1/vaults/{id}/quota`.
    pub struct SetVaultQuota {
        /// Bytes the vault may hold, at most 2^63 - 1; null takes the quota away. Below what
        /// the vault holds, it takes no upload until enough is pruned.
        pub quota_bytes: Option<u64>,
    }

    /// `PUT /api/v1/vaults/{id}/maintainer`.
    pub struct SetMaintainer {
        /// A device of the vault's tenant; absent or null takes the maintainer away (and
        /// drops every deletion it announced that has not happened yet).
        #[serde(default)]
        pub device_id: Option<DeviceId>,
    }

    pub struct CreateVault {
        pub tenant_id: TenantId,
        pub name: String,
        pub destination: String,
        #[serde(default)]
        pub quota_bytes: Option<u64>,
        /// managed when left out.
        #[serde(default)]
        pub key_custody: Option<KeyCustody>,
        /// A retention lock from the start, in days (see `Vault`).
        #[serde(default)]
        pub retention_lock_days: Option<u32>,
    }

    pub struct SnapshotInfo {
        pub id: String,
        /// RFC 3339, with the offset the snapshot was taken at.
        #[cfg_attr(feature = "openapi", schema(format = DateTime))]
        pub time: String,
        pub host: String,
        pub paths: Vec<String>,
        pub tags: Vec<String>,
        pub files: u64,
        pub bytes: u64,
    }

    pub struct Session {
        pub id: String,
        pub user_id: String,
        pub created_at: DateTime<Utc>,
        pub last_seen_at: DateTime<Utc>,
        pub expires_at: DateTime<Utc>,
        pub ended_at: Option<DateTime<Utc>>,
        pub ip: Option<String>,
        pub user_agent: Option<String>,
        pub browser: Option<String>,
        pub os: Option<String>,
        pub device_label: Option<String>,
        pub remember: bool,
        /// True for the session making the request.
        pub current: bool,
    }

    /// One audit event. `details` never holds personal data: people appear by ID. Which
    /// fields its hash covers depends on `version`; see [`crate::audit`].
    pub struct AuditEvent {
        /// Event format: 1 (the IP is hashed) or 2 (personal data outside the hash). Exports
        /// from before versions existed have no such field and are version 1.
        #[serde(default = "crate::audit::v1")]
        pub version: u32,
        pub seq: u64,
        pub tenant_id: String,
        pub at: DateTime<Utc>,
        pub actor_kind: ActorKind,
        pub actor_id: Option<String>,
        pub action: String,
        pub object_kind: String,
        pub object_id: Option<String>,
        pub outcome: Outcome,
        /// Personal data: the client's address. Absent once erased (version 2).
        pub ip: Option<String>,
        /// Personal data: the client's user agent (version 2). Absent once erased.
        #[serde(default)]
        pub user_agent: Option<String>,
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        pub details: serde_json::Value,
        /// Version 2: the salted commitment to `ip` and `user_agent` (hex) that the hash
        /// covers; empty when the event has no personal data.
        #[serde(default)]
        pub personal_hash: String,
        /// Version 2: the commitment's salt (hex). Absent once the personal data is erased.
        #[serde(default)]
        pub personal_salt: Option<String>,
        pub prev_hash: String,
        pub hash: String,
    }

    /// The last event of one tenant's audit chain.
    pub struct AuditHead {
        pub tenant_id: String,
        pub seq: u64,
        pub hash: String,
    }
}

#[cfg(test)]
mod tests;
