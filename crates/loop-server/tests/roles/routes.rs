//! What each route of the API needs, in the words of docs/SECURITY.md ("Who may do what").

use Need::*;
use Rule::*;

/// What a request needs, in the words of docs/SECURITY.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    ReadTenants,
    CreateTenants,
    ChangeTenants,
    EraseTenants,
    ReadUsers,
    ChangeUsers,
    GrantRoles,
    ReadDevices,
    ChangeDevices,
    ReadTokens,
    ChangeTokens,
    ReadVaults,
    ChangeVaults,
    ReadSessions,
    EndSessions,
    ReadAudit,
    ReadJobs,
    RunJobs,
    ReadNotifications,
    ChangeNotifications,
    ReadBilling,
    /// End the tenant's own subscription.
    ChangeBilling,
    /// Sell plans, subscribe customers, record payments: billing rights on a partner or
    /// provider above the customer.
    SellPlans,
}

/// Who may call a route.
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// Anyone, signed in or not (signing in, accepting an invitation).
    Public,
    /// Any signed-in user; acts on the caller or on nothing tenant-bound.
    SignedIn,
    /// No caller at all: a signature over the body is the credential (the payment
    /// processor's webhook, whose signature checks `tests/payments.rs` makes). The walk
    /// leaves it out.
    Signed,
    /// No caller at all: the path's token is the credential, held by whoever received it
    /// (an unsubscribe link, which `tests/privacy.rs` tests). The walk leaves it out.
    Link,
    /// The need on the provider tenant, whichever tenant the walk aims at: acts on the
    /// whole service (the privacy policy, announcements). Anyone else is refused.
    Provider(Need),
    /// Every need, on the tenant the request names.
    Needs(&'static [Need]),
    /// A listing without a tenant filter: it shows a tenant only to callers with the need
    /// there, and is never refused.
    Lists(Need),
}

/// Every route of the API and what it needs. Tenant-bound routes come first, in the order
/// the walk takes them: erasing the tenant last, since it ends everything else there.
pub const ROUTES: &[(&str, &str, Rule)] = &[
    ("get", "/api/v1/tenants", Lists(ReadTenants)),
    ("get", "/api/v1/tenants/{id}", Needs(&[ReadTenants])),
    (
        "get",
        "/api/v1/tenants/{id}/erasure-certificate",
        Needs(&[ReadTenants]),
    ),
    ("patch", "/api/v1/tenants/{id}", Needs(&[ChangeTenants])),
    (
        "post",
        "/api/v1/tenants/{id}/key-rotation",
        Needs(&[ChangeTenants, RunJobs]),
    ),
    ("post", "/api/v1/tenants", Needs(&[CreateTenants])),
    (
        "get",
        "/api/v1/tenants/{id}/residency",
        Needs(&[ReadTenants]),
    ),
    (
        "put",
        "/api/v1/tenants/{id}/residency",
        Needs(&[ChangeTenants]),
    ),
    (
        "get",
        "/api/v1/tenants/{id}/branding",
        Needs(&[ReadTenants]),
    ),
    (
        "put",
        "/api/v1/tenants/{id}/branding",
        Needs(&[ChangeTenants]),
    ),
    (
        "delete",
        "/api/v1/tenants/{id}/branding",
        Needs(&[ChangeTenants]),
    ),
    (
        "get",
        "/api/v1/tenants/{id}/residency/report",
        Needs(&[ReadVaults]),
    ),
    ("get", "/api/v1/users", Needs(&[ReadUsers])),
    ("post", "/api/v1/users", Needs(&[ChangeUsers, GrantRoles])),
    ("get", "/api/v1/users/{id}", Needs(&[ReadUsers])),
    ("patch", "/api/v1/users/{id}", Needs(&[ChangeUsers])),
    ("post", "/api/v1/users/{id}/disable", Needs(&[ChangeUsers])),
    ("post", "/api/v1/users/{id}/erase", Needs(&[ChangeUsers])),
    (
        "put",
        "/api/v1/users/{id}/restriction",
        Needs(&[ChangeUsers]),
    ),
    ("post", "/api/v1/users/{id}/enable", Needs(&[ChangeUsers])),
    ("get", "/api/v1/users/{id}/roles", Needs(&[ReadUsers])),
    (
        "post",
        "/api/v1/users/{id}/roles",
        Needs(&[ReadUsers, GrantRoles]),
    ),
    (
        "delete",
        "/api/v1/users/{id}/roles/{binding_id}",
        Needs(&[ReadUsers, GrantRoles]),
    ),
    ("get", "/api/v1/devices", Needs(&[ReadDevices])),
    ("post", "/api/v1/devices", Needs(&[ChangeDevices])),
    ("delete", "/api/v1/devices/{id}", Needs(&[ChangeDevices])),
    (
        "post",
        "/api/v1/devices/enroll-codes",
        Needs(&[ChangeDevices]),
    ),
    (
        "post",
        "/api/v1/devices/{id}/restore",
        Needs(&[ChangeDevices, RunJobs]),
    ),
    ("get", "/api/v1/tokens", Needs(&[ReadTokens])),
    ("post", "/api/v1/tokens", Needs(&[ChangeTokens])),
    ("delete", "/api/v1/tokens/{id}", Needs(&[ChangeTokens])),
    ("get", "/api/v1/vaults", Needs(&[ReadVaults])),
    ("post", "/api/v1/vaults", Needs(&[ChangeVaults])),
    ("get", "/api/v1/vaults/{id}", Needs(&[ReadVaults])),
    ("get", "/api/v1/vaults/{id}/snapshots", Needs(&[ReadVaults])),
    ("get", "/api/v1/vaults/{id}/locations", Needs(&[ReadVaults])),
    (
        "post",
        "/api/v1/vaults/{id}/verify",
        Needs(&[ReadVaults, RunJobs]),
    ),
    ("delete", "/api/v1/vaults/{id}", Needs(&[ChangeVaults])),
    ("get", "/api/v1/vaults/{id}/policy", Needs(&[ReadVaults])),
    (
        "post",
        "/api/v1/vaults/{id}/retention",
        Needs(&[ChangeVaults, RunJobs]),
    ),
    (
        "put",
        "/api/v1/vaults/{id}/maintainer",
        Needs(&[ChangeVaults]),
    ),
    (
        "put",
        "/api/v1/vaults/{id}/retention-lock",
        Needs(&[ChangeVaults]),
    ),
    ("put", "/api/v1/vaults/{id}/quota", Needs(&[ChangeVaults])),
    ("get", "/api/v1/vaults/{id}/replicas", Needs(&[ReadVaults])),
    (
        "post",
        "/api/v1/vaults/{id}/replicas",
        Needs(&[ChangeVaults]),
    ),
    (
        "post",
        "/api/v1/vaults/{id}/replication",
        Needs(&[ReadVaults, RunJobs]),
    ),
    (
        "post",
        "/api/v1/vaults/{id}/replicas/{replica}/verify",
        Needs(&[ReadVaults, RunJobs]),
    ),
    (
        "post",
        "/api/v1/vaults/{id}/replicas/{replica}/promote",
        Needs(&[ChangeVaults]),
    ),
    (
        "delete",
        "/api/v1/vaults/{id}/replicas/{replica}",
        Needs(&[ChangeVaults]),
    ),
    ("get", "/api/v1/policies", Needs(&[ReadVaults])),
    ("post", "/api/v1/policies", Needs(&[ChangeVaults])),
    ("get", "/api/v1/policies/{id}", Needs(&[ReadVaults])),
    ("patch", "/api/v1/policies/{id}", Needs(&[ChangeVaults])),
    ("delete", "/api/v1/policies/{id}", Needs(&[ChangeVaults])),
    ("get", "/api/v1/items", Needs(&[ReadDevices])),
    ("post", "/api/v1/items", Needs(&[ChangeDevices])),
    ("get", "/api/v1/items/{id}", Needs(&[ReadDevices])),
    ("patch", "/api/v1/items/{id}", Needs(&[ChangeDevices])),
    ("delete", "/api/v1/items/{id}", Needs(&[ChangeDevices])),
    (
        "post",
        "/api/v1/items/{id}/run",
        Needs(&[ReadDevices, RunJobs]),
    ),
    ("get", "/api/v1/plans", Needs(&[ReadBilling])),
    ("post", "/api/v1/plans", Needs(&[ChangeBilling])),
    ("delete", "/api/v1/plans/{id}", Needs(&[SellPlans])),
    (
        "get",
        "/api/v1/tenants/{id}/subscription",
        Needs(&[ReadBilling]),
    ),
    (
        "put",
        "/api/v1/tenants/{id}/subscription",
        Needs(&[ReadBilling, SellPlans]),
    ),
    (
        "post",
        "/api/v1/tenants/{id}/subscription/end",
        Needs(&[ChangeBilling]),
    ),
    (
        "get",
        "/api/v1/tenants/{id}/invoices",
        Needs(&[ReadBilling]),
    ),
    ("get", "/api/v1/invoices/{id}", Needs(&[ReadBilling])),
    (
        "post",
        "/api/v1/invoices/{id}/payment",
        Needs(&[ReadBilling, SellPlans]),
    ),
    (
        "post",
        "/api/v1/tenants/{id}/subscription/payment-method",
        Needs(&[ChangeBilling]),
    ),
    ("get", "/api/v1/tenants/{id}/charges", Needs(&[ReadBilling])),
    ("get", "/api/v1/remotes", Needs(&[ReadVaults])),
    ("post", "/api/v1/remotes", Needs(&[ChangeVaults])),
    ("delete", "/api/v1/remotes/{id}", Needs(&[ChangeVaults])),
    ("get", "/api/v1/sync-jobs", Needs(&[ReadVaults])),
    ("post", "/api/v1/sync-jobs", Needs(&[ChangeVaults])),
    ("delete", "/api/v1/sync-jobs/{id}", Needs(&[ChangeVaults])),
    ("post", "/api/v1/sync-jobs/{id}/run", Needs(&[RunJobs])),
    ("get", "/api/v1/notify/targets", Needs(&[ReadNotifications])),
    (
        "post",
        "/api/v1/notify/targets",
        Needs(&[ChangeNotifications]),
    ),
    (
        "get",
        "/api/v1/notify/targets/{id}",
        Needs(&[ReadNotifications]),
    ),
    (
        "patch",
        "/api/v1/notify/targets/{id}",
        Needs(&[ChangeNotifications]),
    ),
    (
        "post",
        "/api/v1/notify/targets/{id}/test",
        Needs(&[ChangeNotifications]),
    ),
    (
        "delete",
        "/api/v1/notify/targets/{id}",
        Needs(&[ChangeNotifications]),
    ),
    (
        "get",
        "/api/v1/notify/deliveries",
        Needs(&[ReadNotifications]),
    ),
    ("get", "/api/v1/events", Needs(&[ReadNotifications])),
    ("get", "/api/v1/sessions", Needs(&[ReadSessions])),
    ("delete", "/api/v1/sessions/{id}", Needs(&[EndSessions])),
    ("get", "/api/v1/audit", Needs(&[ReadAudit])),
    ("get", "/api/v1/audit/export", Needs(&[ReadAudit])),
    ("get", "/api/v1/audit/heads", Needs(&[ReadAudit])),
    ("get", "/api/v1/jobs", Needs(&[ReadJobs])),
    ("get", "/api/v1/jobs/{id}", Needs(&[ReadJobs])),
    ("get", "/api/v1/jobs/{id}/log", Needs(&[ReadJobs])),
    ("post", "/api/v1/jobs/{id}/cancel", Needs(&[RunJobs])),
    ("post", "/api/v1/privacy/policies", Provider(ChangeTenants)),
    ("post", "/api/v1/announcements", Provider(ChangeTenants)),
    ("get", "/api/v1/subject-requests", Needs(&[ChangeUsers])),
    ("post", "/api/v1/subject-requests", Needs(&[ChangeUsers])),
    (
        "get",
        "/api/v1/subject-requests/{id}",
        Needs(&[ChangeUsers]),
    ),
    (
        "post",
        "/api/v1/subject-requests/{id}/close",
        Needs(&[ChangeUsers]),
    ),
    (
        "get",
        "/api/v1/tenants/{id}/privacy-report",
        Needs(&[ReadAudit]),
    ),
    (
        "post",
        "/api/v1/users/{id}/data-export",
        Needs(&[ChangeUsers]),
    ),
    ("get", "/api/v1/data-exports/{id}", Needs(&[ChangeUsers])),
    (
        "get",
        "/api/v1/data-exports/{id}/archive",
        Needs(&[ChangeUsers]),
    ),
    ("post", "/api/v1/subprocessors", Provider(ChangeTenants)),
    (
        "delete",
        "/api/v1/subprocessors/{id}",
        Provider(ChangeTenants),
    ),
    ("post", "/api/v1/tenants/{id}/erase", Needs(&[EraseTenants])),
    // The caller's own business, in the order the walk takes them (signing out last).
    ("post", "/api/v1/auth/login", Public),
    ("post", "/api/v1/auth/accept-invite", Public),
    ("post", "/api/v1/auth/confirm-email", Public),
    ("post", "/api/v1/auth/password-reset", Public),
    ("post", "/api/v1/auth/password-reset/confirm", Public),
    ("post", "/api/v1/billing/stripe/webhook", Signed),
    ("get", "/api/v1/signup/plans", Public),
    ("post", "/api/v1/signup", Public),
    ("post", "/api/v1/signup/confirm", Public),
    ("get", "/api/v1/privacy/policy", Public),
    ("get", "/api/v1/unsubscribe/{token}", Link),
    ("post", "/api/v1/unsubscribe/{token}", Link),
    ("post", "/api/v1/me/policy-acknowledgement", SignedIn),
    ("get", "/api/v1/me/marketing-consent", SignedIn),
    ("put", "/api/v1/me/marketing-consent", SignedIn),
    ("get", "/api/v1/subprocessors", SignedIn),
    ("post", "/api/v1/me/data-export", SignedIn),
    ("get", "/api/v1/me", SignedIn),
    ("patch", "/api/v1/me", SignedIn),
    ("get", "/api/v1/destinations", SignedIn),
    ("post", "/api/v1/me/password", SignedIn),
    ("post", "/api/v1/me/totp", SignedIn),
    ("post", "/api/v1/me/totp/confirm", SignedIn),
    ("post", "/api/v1/auth/logout", SignedIn),
];
