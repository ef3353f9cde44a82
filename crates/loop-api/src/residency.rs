//! Data residency: the jurisdictions a tenant allows, and where each vault's objects live.

closed_set! {
    /// A vault's place: where it is written (primary) or a copy of it (replica).
    pub enum LocationRole("location role") {
        Primary = "primary",
        Replica = "replica",
    }
}

wire! {
    /// `GET /api/v1/tenants/{id}/residency`.
    pub struct Residency {
        pub tenant_id: String,
        /// The jurisdictions this tenant itself allows; null when it sets none and has what
        /// its ancestors allow.
        pub allowed: Option<Vec<String>>,
        /// What the tenant may use: what every tenant on its path from the provider allows,
        /// as the fewest jurisdictions; null when nothing restricts it.
        pub effective: Option<Vec<String>>,
    }

    /// `PUT /api/v1/tenants/{id}/residency`. Admins above the tenant may set any subset of
    /// what its parent allows, or null (inherit); the tenant's own admins may only narrow.
    pub struct SetResidency {
        #[serde(default)]
        pub allowed: Option<Vec<String>>,
    }

    /// One place a vault's objects live.
    pub struct VaultLocation {
        pub vault_id: String,
        pub tenant_id: String,
        pub role: LocationRole,
        pub destination: String,
        pub jurisdiction: String,
        pub backend: crate::Backend,
        /// Whether the tenant's residency admits the jurisdiction (false after the tenant
        /// was narrowed below a place its data already was).
        pub allowed: bool,
    }

    /// `GET /api/v1/tenants/{id}/residency/report`: every place the vaults of the tenant
    /// (and of the tenants below it) live.
    pub struct ResidencyReport {
        pub tenant_id: String,
        pub effective: Option<Vec<String>>,
        pub locations: Vec<VaultLocation>,
        /// Locations whose jurisdiction the owning tenant does not allow.
        pub outside: u32,
    }
}
