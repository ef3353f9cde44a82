//! One typed method per operation of the management API, so that no caller spells a URL.
//!
//! IDs are `loop_api`'s ID types, so a malformed one never leaves the client; the server
//! answers a foreign or unknown ID with 404, which arrives as [`ApiError::Problem`].

use loop_api::*;
use reqwest::Method;
use serde::Serialize;

use crate::api::{ApiClient, ApiError};

/// The filters of the audit listing and export; `None` leaves a filter out.
#[derive(Debug, Default, Clone, Serialize)]
pub struct AuditQuery {
    pub tenant_id: Option<TenantId>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub object_id: Option<String>,
    /// RFC 3339.
    pub since: Option<String>,
    /// RFC 3339.
    pub until: Option<String>,
    pub limit: Option<i64>,
}

/// The body format of [`ApiClient::audit_export`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One event per line, verifiable with `loop admin audit verify --file`.
    JsonLines,
    Csv,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::JsonLines => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<ExportFormat, String> {
        match s {
            "jsonl" => Ok(ExportFormat::JsonLines),
            "csv" => Ok(ExportFormat::Csv),
            _ => Err(format!("{s:?} is not an export format: use jsonl or csv")),
        }
    }
}

/// `?tenant_id=` when a tenant is given.
fn in_tenant(tenant: Option<&TenantId>) -> Vec<(&'static str, String)> {
    tenant
        .map(|t| ("tenant_id", t.to_string()))
        .into_iter()
        .collect()
}

impl ApiClient {
    // ---- signing in ----

    pub fn login(&self, r: &LoginRequest) -> Result<LoginResponse, ApiError> {
        self.call(Method::POST, "/api/v1/auth/login", Some(r))
    }

    pub fn logout(&self) -> Result<(), ApiError> {
        self.call_empty::<()>(Method::POST, "/api/v1/auth/logout", None)
    }

    /// Redeems an invitation's code and sets the new account's password; needs no session.
    pub fn accept_invite(&self, r: &AcceptInvite) -> Result<(), ApiError> {
        self.call_empty(Method::POST, "/api/v1/auth/accept-invite", Some(r))
    }

    /// The plans offered on the self-service sign-up; needs no session.
    pub fn signup_plans(&self) -> Result<Vec<Plan>, ApiError> {
        self.get("/api/v1/signup/plans")
    }

    /// Asks for a trial; the code goes to the address. Needs no session.
    pub fn sign_up(&self, r: &SignUp) -> Result<SignUpAccepted, ApiError> {
        self.call(Method::POST, "/api/v1/signup", Some(r))
    }

    /// Confirms a sign-up with the mailed code; needs no session.
    pub fn confirm_sign_up(&self, r: &ConfirmSignUp) -> Result<SignedUp, ApiError> {
        self.call(Method::POST, "/api/v1/signup/confirm", Some(r))
    }

    /// Confirms a new e-mail address with the code sent to it; needs no session.
    pub fn confirm_email(&self, r: &ConfirmEmail) -> Result<(), ApiError> {
        self.call_empty(Method::POST, "/api/v1/auth/confirm-email", Some(r))
    }

    pub fn me(&self) -> Result<Me, ApiError> {
        self.get("/api/v1/me")
    }

    pub fn sessions(&self, tenant: Option<&TenantId>) -> Result<Vec<Session>, ApiError> {
        self.get_pages("/api/v1/sessions", &in_tenant(tenant), None)
    }

    pub fn revoke_session(&self, id: &SessionId) -> Result<(), ApiError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/sessions/{id}"), None)
    }

    // ---- tenants ----

    pub fn tenants(&self) -> Result<Vec<Tenant>, ApiError> {
        self.get_pages("/api/v1/tenants", &(), None)
    }

    pub fn tenant(&self, id: &TenantId) -> Result<Tenant, ApiError> {
        self.get(&format!("/api/v1/tenants/{id}"))
    }

    pub fn create_tenant(&self, r: &CreateTenant) -> Result<Tenant, ApiError> {
        self.call(Method::POST, "/api/v1/tenants", Some(r))
    }

    pub fn update_tenant(&self, id: &TenantId, r: &UpdateTenant) -> Result<Tenant, ApiError> {
        self.call(Method::PATCH, &format!("/api/v1/tenants/{id}"), Some(r))
    }

    pub fn erase_tenant(&self, id: &TenantId, r: &EraseTenant) -> Result<TenantErasure, ApiError> {
        self.call(
            Method::POST,
            &format!("/api/v1/tenants/{id}/erase"),
            Some(r),
        )
    }

    pub fn rotate_tenant_key(&self, id: &TenantId) -> Result<Job, ApiError> {
        self.call::<(), _>(
            Method::POST,
            &format!("/api/v1/tenants/{id}/key-rotation"),
            None,
        )
    }

    pub fn residency(&self, id: &TenantId) -> Result<Residency, ApiError> {
        self.get(&format!("/api/v1/tenants/{id}/residency"))
    }

    pub fn set_residency(&self, id: &TenantId, r: &SetResidency) -> Result<Residency, ApiError> {
        self.call(
            Method::PUT,
            &format!("/api/v1/tenants/{id}/residency"),
            Some(r),
        )
    }

    pub fn residency_report(&self, id: &TenantId) -> Result<ResidencyReport, ApiError> {
        self.get(&format!("/api/v1/tenants/{id}/residency/report"))
    }

    // ---- users and roles ----

    pub fn users(&self, tenant: Option<&TenantId>) -> Result<Vec<User>, ApiError> {
        self.get_pages("/api/v1/users", &in_tenant(tenant), None)
    }

    pub fn create_user(&self, r: &CreateUser) -> Result<CreatedUser, ApiError> {
        self.call(Method::POST, "/api/v1/users", Some(r))
    }

    pub fn update_user(&self, id: &UserId, r: &UpdateUser) -> Result<User, ApiError> {
        self.call(Method::PATCH, &format!("/api/v1/users/{id}"), Some(r))
    }

    pub fn disable_user(&self, id: &UserId) -> Result<User, ApiError> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/users/{id}/disable"), None)
    }

    /// Erases a person on request (the account stays as a pseudonym).
    pub fn erase_person(&self, id: &UserId, r: &ErasePerson) -> Result<PersonErased, ApiError> {
        self.call(Method::POST, &format!("/api/v1/users/{id}/erase"), Some(r))
    }

    pub fn enable_user(&self, id: &UserId) -> Result<User, ApiError> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/users/{id}/enable"), None)
    }

    pub fn user_roles(&self, id: &UserId) -> Result<Vec<RoleBinding>, ApiError> {
        self.get(&format!("/api/v1/users/{id}/roles"))
    }

    pub fn grant_role(&self, id: &UserId, r: &CreateRoleBinding) -> Result<RoleBinding, ApiError> {
        self.call(Method::POST, &format!("/api/v1/users/{id}/roles"), Some(r))
    }

    pub fn revoke_role(&self, id: &UserId, binding: &RoleBindingId) -> Result<(), ApiError> {
        let path = format!("/api/v1/users/{id}/roles/{binding}");
        self.call_empty::<()>(Method::DELETE, &path, None)
    }

    // ---- devices and tokens ----

    pub fn devices(&self, tenant: Option<&TenantId>) -> Result<Vec<Device>, ApiError> {
        self.get_pages("/api/v1/devices", &in_tenant(tenant), None)
    }

    pub fn create_device(&self, r: &CreateDevice) -> Result<Device, ApiError> {
        self.call(Method::POST, "/api/v1/devices", Some(r))
    }

    /// A single-use code that registers a machine as a device of the tenant.
    pub fn create_enrolment_code(
        &self,
        r: &CreateEnrolmentCode,
    ) -> Result<EnrolmentCode, ApiError> {
        self.call(Method::POST, "/api/v1/devices/enroll-codes", Some(r))
    }

    /// Queues a restore to the device, run by its agent.
    pub fn restore_to_device(&self, id: &DeviceId, r: &RestoreToDevice) -> Result<Job, ApiError> {
        self.call(
            Method::POST,
            &format!("/api/v1/devices/{id}/restore"),
            Some(r),
        )
    }

    pub fn delete_device(&self, id: &DeviceId) -> Result<(), ApiError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/devices/{id}"), None)
    }

    pub fn tokens(&self, tenant: Option<&TenantId>) -> Result<Vec<Token>, ApiError> {
        self.get_pages("/api/v1/tokens", &in_tenant(tenant), None)
    }

    pub fn create_token(&self, r: &CreateToken) -> Result<CreatedToken, ApiError> {
        self.call(Method::POST, "/api/v1/tokens", Some(r))
    }

    pub fn revoke_token(&self, id: &TokenId) -> Result<(), ApiError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
    }

    // ---- vaults ----

    pub fn destinations(&self) -> Result<Vec<Destination>, ApiError> {
        self.get("/api/v1/destinations")
    }

    pub fn vaults(&self, tenant: Option<&TenantId>) -> Result<Vec<Vault>, ApiError> {
        self.get_pages("/api/v1/vaults", &in_tenant(tenant), None)
    }

    pub fn vault(&self, id: &VaultId) -> Result<Vault, ApiError> {
        self.get(&format!("/api/v1/vaults/{id}"))
    }

    pub fn create_vault(&self, r: &CreateVault) -> Result<Vault, ApiError> {
        self.call(Method::POST, "/api/v1/vaults", Some(r))
    }

    /// Deletes a vault; the answer is the erasure job that removes its objects.
    pub fn delete_vault(&self, id: &VaultId) -> Result<Job, ApiError> {
        self.call::<(), Job>(Method::DELETE, &format!("/api/v1/vaults/{id}"), None)
    }

    /// Queues a verify job of a managed vault.
    pub fn verify_vault(&self, id: &VaultId, r: &VerifyVault) -> Result<Job, ApiError> {
        self.call(
            Method::POST,
            &format!("/api/v1/vaults/{id}/verify"),
            Some(r),
        )
    }

    pub fn set_vault_quota(&self, id: &VaultId, r: &SetVaultQuota) -> Result<Vault, ApiError> {
        self.call(Method::PUT, &format!("/api/v1/vaults/{id}/quota"), Some(r))
    }

    pub fn set_retention_lock(
        &self,
        id: &VaultId,
        r: &SetRetentionLock,
    ) -> Result<Vault, ApiError> {
        self.call(
            Method::PUT,
            &format!("/api/v1/vaults/{id}/retention-lock"),
            Some(r),
        )
    }

    pub fn vault_locations(&self, id: &VaultId) -> Result<Vec<VaultLocation>, ApiError> {
        self.get(&format!("/api/v1/vaults/{id}/locations"))
    }

    // ---- replicas ----

    pub fn replicas(&self, id: &VaultId) -> Result<Vec<Replica>, ApiError> {
        self.get(&format!("/api/v1/vaults/{id}/replicas"))
    }

    pub fn create_replica(&self, id: &VaultId, r: &CreateReplica) -> Result<Replica, ApiError> {
        self.call(
            Method::POST,
            &format!("/api/v1/vaults/{id}/replicas"),
            Some(r),
        )
    }

    /// Removes a replica; the answer is the job that erases its objects.
    pub fn delete_replica(&self, id: &VaultId, replica: &str) -> Result<Job, ApiError> {
        self.call::<(), Job>(
            Method::DELETE,
            &format!("/api/v1/vaults/{id}/replicas/{replica}"),
            None,
        )
    }

    pub fn promote_replica(&self, id: &VaultId, replica: &str) -> Result<Vault, ApiError> {
        self.call::<(), Vault>(
            Method::POST,
            &format!("/api/v1/vaults/{id}/replicas/{replica}/promote"),
            None,
        )
    }

    pub fn verify_replica(
        &self,
        id: &VaultId,
        replica: &str,
        r: &VerifyReplica,
    ) -> Result<Job, ApiError> {
        self.call(
            Method::POST,
            &format!("/api/v1/vaults/{id}/replicas/{replica}/verify"),
            Some(r),
        )
    }

    pub fn replicate(&self, id: &VaultId) -> Result<Job, ApiError> {
        self.call::<(), Job>(
            Method::POST,
            &format!("/api/v1/vaults/{id}/replication"),
            None,
        )
    }

    pub fn set_maintainer(&self, id: &VaultId, r: &SetMaintainer) -> Result<Vault, ApiError> {
        self.call(
            Method::PUT,
            &format!("/api/v1/vaults/{id}/maintainer"),
            Some(r),
        )
    }

    /// The snapshots of a managed vault, read by the server with the key it holds.
    pub fn vault_snapshots(&self, id: &VaultId) -> Result<Vec<SnapshotInfo>, ApiError> {
        self.get_pages(&format!("/api/v1/vaults/{id}/snapshots"), &(), None)
    }

    // ---- protected items ----

    pub fn items(&self, tenant: Option<&TenantId>) -> Result<Vec<ProtectedItem>, ApiError> {
        self.get_pages("/api/v1/items", &in_tenant(tenant), None)
    }

    pub fn item(&self, id: &ItemId) -> Result<ProtectedItem, ApiError> {
        self.get(&format!("/api/v1/items/{id}"))
    }

    pub fn create_item(&self, r: &CreateItem) -> Result<ProtectedItem, ApiError> {
        self.call(Method::POST, "/api/v1/items", Some(r))
    }

    pub fn update_item(&self, id: &ItemId, r: &UpdateItem) -> Result<ProtectedItem, ApiError> {
        self.call(Method::PATCH, &format!("/api/v1/items/{id}"), Some(r))
    }

    pub fn delete_item(&self, id: &ItemId) -> Result<(), ApiError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/items/{id}"), None)
    }

    /// Queues a backup of the item now; the answer is the job (or the run still open).
    pub fn run_item(&self, id: &ItemId) -> Result<Job, ApiError> {
        self.call::<(), Job>(Method::POST, &format!("/api/v1/items/{id}/run"), None)
    }

    // ---- policies ----

    pub fn policies(&self, tenant: Option<&TenantId>) -> Result<Vec<Policy>, ApiError> {
        self.get_pages("/api/v1/policies", &in_tenant(tenant), None)
    }

    pub fn policy(&self, id: &PolicyId) -> Result<Policy, ApiError> {
        self.get(&format!("/api/v1/policies/{id}"))
    }

    pub fn create_policy(&self, r: &CreatePolicy) -> Result<Policy, ApiError> {
        self.call(Method::POST, "/api/v1/policies", Some(r))
    }

    pub fn update_policy(&self, id: &PolicyId, r: &UpdatePolicy) -> Result<Policy, ApiError> {
        self.call(Method::PATCH, &format!("/api/v1/policies/{id}"), Some(r))
    }

    pub fn delete_policy(&self, id: &PolicyId) -> Result<(), ApiError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/policies/{id}"), None)
    }

    /// The policy that applies to a vault, and where it is attached.
    pub fn vault_policy(&self, id: &VaultId) -> Result<EffectivePolicy, ApiError> {
        self.get(&format!("/api/v1/vaults/{id}/policy"))
    }

    /// Queues a retention job of a managed vault.
    pub fn run_retention(&self, id: &VaultId, r: &RunRetention) -> Result<Job, ApiError> {
        self.call(
            Method::POST,
            &format!("/api/v1/vaults/{id}/retention"),
            Some(r),
        )
    }

    // ---- audit ----

    pub fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, ApiError> {
        self.get_query("/api/v1/audit", q)
    }

    /// Every matching event, as one text body in the given format.
    pub fn audit_export(&self, q: &AuditQuery, format: ExportFormat) -> Result<String, ApiError> {
        #[derive(Serialize)]
        struct Export<'a> {
            #[serde(flatten)]
            q: &'a AuditQuery,
            format: &'static str,
        }
        let export = Export {
            q,
            format: format.as_str(),
        };
        self.get_text("/api/v1/audit/export", &export)
    }

    /// The head of each visible tenant's audit chain.
    pub fn audit_heads(&self, tenant: Option<&TenantId>) -> Result<Vec<AuditHead>, ApiError> {
        self.get_pages("/api/v1/audit/heads", &in_tenant(tenant), None)
    }

    // ---- jobs ----

    /// The jobs `q` names, newest first: all of them, or the newest `limit`.
    pub fn jobs(&self, q: &JobQuery, limit: Option<u32>) -> Result<Vec<Job>, ApiError> {
        self.get_pages("/api/v1/jobs", q, limit.map(|l| l as usize))
    }

    pub fn job(&self, id: &JobId) -> Result<Job, ApiError> {
        self.get(&format!("/api/v1/jobs/{id}"))
    }

    pub fn job_log(&self, id: &JobId) -> Result<Vec<JobLogLine>, ApiError> {
        self.get(&format!("/api/v1/jobs/{id}/log"))
    }

    pub fn cancel_job(&self, id: &JobId) -> Result<Job, ApiError> {
        self.call::<(), Job>(Method::POST, &format!("/api/v1/jobs/{id}/cancel"), None)
    }

    // ---- remotes and sync jobs ----

    pub fn remotes(&self, tenant: Option<&TenantId>) -> Result<Vec<Remote>, ApiError> {
        self.get_pages("/api/v1/remotes", &in_tenant(tenant), None)
    }

    pub fn create_remote(&self, r: &CreateRemote) -> Result<Remote, ApiError> {
        self.call(Method::POST, "/api/v1/remotes", Some(r))
    }

    pub fn delete_remote(&self, id: &str) -> Result<(), ApiError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/remotes/{id}"), None)
    }

    pub fn sync_jobs(&self, tenant: Option<&TenantId>) -> Result<Vec<SyncJob>, ApiError> {
        self.get_pages("/api/v1/sync-jobs", &in_tenant(tenant), None)
    }

    pub fn create_sync_job(&self, r: &CreateSyncJob) -> Result<SyncJob, ApiError> {
        self.call(Method::POST, "/api/v1/sync-jobs", Some(r))
    }

    pub fn delete_sync_job(&self, id: &str) -> Result<(), ApiError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/sync-jobs/{id}"), None)
    }

    /// Queues a run of a sync job; the answer is the job.
    pub fn run_sync_job(&self, id: &str) -> Result<Job, ApiError> {
        self.call::<(), Job>(Method::POST, &format!("/api/v1/sync-jobs/{id}/run"), None)
    }

    // ---- notifications ----

    pub fn notify_targets(&self, tenant: Option<&TenantId>) -> Result<Vec<NotifyTarget>, ApiError> {
        self.get_pages("/api/v1/notify/targets", &in_tenant(tenant), None)
    }

    pub fn create_notify_target(&self, r: &CreateTarget) -> Result<CreatedTarget, ApiError> {
        self.call(Method::POST, "/api/v1/notify/targets", Some(r))
    }

    pub fn update_notify_target(
        &self,
        id: &TargetId,
        r: &UpdateTarget,
    ) -> Result<NotifyTarget, ApiError> {
        self.call(
            Method::PATCH,
            &format!("/api/v1/notify/targets/{id}"),
            Some(r),
        )
    }

    pub fn delete_notify_target(&self, id: &TargetId) -> Result<(), ApiError> {
        self.call_empty::<()>(
            Method::DELETE,
            &format!("/api/v1/notify/targets/{id}"),
            None,
        )
    }

    /// Queues a test notification to the target; the answer is its delivery.
    pub fn test_notify_target(&self, id: &TargetId) -> Result<Delivery, ApiError> {
        self.call::<(), Delivery>(
            Method::POST,
            &format!("/api/v1/notify/targets/{id}/test"),
            None,
        )
    }

    /// The delivery log, newest first.
    pub fn deliveries(
        &self,
        tenant: Option<&TenantId>,
        target: Option<&TargetId>,
        limit: Option<u32>,
    ) -> Result<Vec<Delivery>, ApiError> {
        let mut q = in_tenant(tenant);
        q.extend(target.map(|t| ("target_id", t.to_string())));
        self.get_pages("/api/v1/notify/deliveries", &q, limit.map(|l| l as usize))
    }

    /// The events raised for the visible tenants, newest first.
    pub fn events(
        &self,
        tenant: Option<&TenantId>,
        kind: Option<EventKind>,
        limit: Option<u32>,
    ) -> Result<Vec<Event>, ApiError> {
        let mut q = in_tenant(tenant);
        q.extend(kind.map(|k| ("kind", k.to_string())));
        self.get_pages("/api/v1/events", &q, limit.map(|l| l as usize))
    }
}
