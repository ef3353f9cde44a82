//! The errors each operation really answers, which the wire test holds the document to.

/// The error statuses each operation can answer, besides 500 and 503 (which every one can:
/// an incident, or the server busy).
/// Signed-in operations answer 401 without a session and 410 to a token of an erased tenant;
/// 400 is a body or query that does not parse, 403 a missing permission (or a change sent
/// with the cookie from another site), 404 an object or tenant that is missing or not the
/// caller's, 413 and 415 a body too large or not JSON. A new operation needs a line here.
pub(super) const ERRORS: &[(&str, &[u16])] = &[
    ("post /api/v1/auth/login", &[400, 401, 413, 415, 429]),
    ("post /api/v1/auth/logout", &[401, 403, 410]),
    (
        "post /api/v1/auth/accept-invite",
        &[400, 404, 409, 410, 413, 415],
    ),
    (
        "post /api/v1/auth/confirm-email",
        &[400, 404, 409, 410, 413, 415],
    ),
    ("post /api/v1/auth/password-reset", &[400, 413, 415, 429]),
    (
        "post /api/v1/auth/password-reset/confirm",
        &[400, 404, 410, 413, 415],
    ),
    ("get /api/v1/me", &[401, 410]),
    ("patch /api/v1/me", &[400, 401, 403, 409, 410, 413, 415]),
    (
        "post /api/v1/me/password",
        &[400, 401, 403, 410, 413, 415, 429],
    ),
    (
        "post /api/v1/me/totp",
        &[400, 401, 403, 409, 410, 413, 415, 429],
    ),
    (
        "post /api/v1/me/totp/confirm",
        &[400, 401, 403, 409, 410, 413, 415],
    ),
    ("get /api/v1/tenants", &[400, 401, 410]),
    ("post /api/v1/tenants", &[400, 401, 403, 404, 410, 413, 415]),
    ("get /api/v1/tenants/{id}", &[401, 403, 404, 410]),
    (
        "get /api/v1/tenants/{id}/erasure-certificate",
        &[401, 403, 404, 410],
    ),
    (
        "patch /api/v1/tenants/{id}",
        &[400, 401, 403, 404, 410, 413, 415],
    ),
    (
        "post /api/v1/tenants/{id}/key-rotation",
        &[401, 403, 404, 410],
    ),
    ("get /api/v1/tenants/{id}/residency", &[401, 403, 404, 410]),
    ("get /api/v1/tenants/{id}/branding", &[401, 403, 404, 410]),
    (
        "put /api/v1/tenants/{id}/branding",
        &[400, 401, 403, 404, 410, 413, 415],
    ),
    (
        "delete /api/v1/tenants/{id}/branding",
        &[401, 403, 404, 410],
    ),
    (
        "put /api/v1/tenants/{id}/residency",
        &[400, 401, 403, 404, 410, 413, 415],
    ),
    (
        "get /api/v1/tenants/{id}/residency/report",
        &[401, 403, 404, 410],
    ),
    (
        "post /api/v1/tenants/{id}/erase",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/users", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/users",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/users/{id}", &[401, 403, 404, 410]),
    (
        "patch /api/v1/users/{id}",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    (
        "post /api/v1/users/{id}/disable",
        &[401, 403, 404, 409, 410],
    ),
    ("post /api/v1/users/{id}/enable", &[401, 403, 404, 409, 410]),
    (
        "post /api/v1/users/{id}/erase",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/users/{id}/roles", &[401, 403, 404, 410]),
    (
        "post /api/v1/users/{id}/roles",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    (
        "delete /api/v1/users/{id}/roles/{binding_id}",
        &[401, 403, 404, 410],
    ),
    ("get /api/v1/devices", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/devices",
        &[400, 401, 402, 403, 404, 409, 410, 413, 415],
    ),
    ("delete /api/v1/devices/{id}", &[401, 403, 404, 410]),
    ("get /api/v1/tokens", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/tokens",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("delete /api/v1/tokens/{id}", &[401, 403, 404, 410]),
    ("get /api/v1/sessions", &[400, 401, 403, 404, 410]),
    ("delete /api/v1/sessions/{id}", &[401, 403, 404, 410]),
    ("get /api/v1/destinations", &[401, 410]),
    ("get /api/v1/vaults", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/vaults",
        &[400, 401, 402, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/vaults/{id}", &[401, 403, 404, 410]),
    ("delete /api/v1/vaults/{id}", &[401, 403, 404, 410]),
    ("get /api/v1/vaults/{id}/locations", &[401, 403, 404, 410]),
    ("get /api/v1/vaults/{id}/replicas", &[401, 403, 404, 410]),
    (
        "post /api/v1/vaults/{id}/replicas",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    (
        "delete /api/v1/vaults/{id}/replicas/{replica}",
        &[401, 403, 404, 409, 410],
    ),
    (
        "post /api/v1/vaults/{id}/replicas/{replica}/promote",
        &[401, 403, 404, 409, 410],
    ),
    (
        "post /api/v1/vaults/{id}/replicas/{replica}/verify",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    (
        "post /api/v1/vaults/{id}/replication",
        &[401, 403, 404, 410],
    ),
    (
        "get /api/v1/vaults/{id}/snapshots",
        &[400, 401, 403, 404, 409, 410],
    ),
    (
        "post /api/v1/vaults/{id}/verify",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    (
        "post /api/v1/vaults/{id}/retention",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    (
        "put /api/v1/vaults/{id}/retention-lock",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    (
        "put /api/v1/vaults/{id}/quota",
        &[400, 401, 403, 404, 410, 413, 415],
    ),
    (
        "put /api/v1/vaults/{id}/maintainer",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/vaults/{id}/policy", &[401, 403, 404, 410]),
    ("get /api/v1/policies", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/policies",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/policies/{id}", &[401, 403, 404, 410]),
    (
        "patch /api/v1/policies/{id}",
        &[400, 401, 403, 404, 410, 413, 415],
    ),
    ("delete /api/v1/policies/{id}", &[401, 403, 404, 410]),
    ("get /api/v1/items", &[400, 401, 403, 404, 410]),
    ("get /api/v1/plans", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/plans",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("delete /api/v1/plans/{id}", &[401, 403, 404, 409, 410]),
    (
        "get /api/v1/tenants/{id}/subscription",
        &[401, 403, 404, 410],
    ),
    (
        "put /api/v1/tenants/{id}/subscription",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    (
        "post /api/v1/tenants/{id}/subscription/end",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/tenants/{id}/invoices", &[401, 403, 404, 410]),
    ("get /api/v1/invoices/{id}", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/invoices/{id}/payment",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    (
        "post /api/v1/tenants/{id}/subscription/payment-method",
        &[401, 403, 404, 409, 410, 503],
    ),
    ("get /api/v1/tenants/{id}/charges", &[401, 403, 404, 410]),
    ("post /api/v1/billing/stripe/webhook", &[400, 404, 413, 415]),
    ("get /api/v1/privacy/policy", &[404]),
    (
        "post /api/v1/privacy/policies",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    (
        "post /api/v1/me/policy-acknowledgement",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/me/marketing-consent", &[401, 410]),
    (
        "put /api/v1/me/marketing-consent",
        &[400, 401, 403, 410, 413, 415],
    ),
    ("get /api/v1/unsubscribe/{token}", &[404]),
    ("post /api/v1/unsubscribe/{token}", &[400, 404, 413, 415]),
    (
        "put /api/v1/users/{id}/restriction",
        &[400, 401, 403, 404, 410, 413, 415],
    ),
    (
        "post /api/v1/announcements",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/subject-requests", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/subject-requests",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/subject-requests/{id}", &[401, 403, 404, 410]),
    (
        "post /api/v1/subject-requests/{id}/close",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/subprocessors", &[401, 410]),
    (
        "post /api/v1/subprocessors",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("delete /api/v1/subprocessors/{id}", &[401, 403, 404, 410]),
    (
        "get /api/v1/tenants/{id}/privacy-report",
        &[401, 403, 404, 410],
    ),
    ("post /api/v1/me/data-export", &[401, 403, 410]),
    (
        "post /api/v1/users/{id}/data-export",
        &[401, 403, 404, 409, 410],
    ),
    ("get /api/v1/data-exports/{id}", &[401, 403, 404, 410]),
    (
        "get /api/v1/data-exports/{id}/archive",
        &[401, 403, 404, 409, 410],
    ),
    ("get /api/v1/signup/plans", &[404]),
    ("post /api/v1/signup", &[400, 404, 413, 415, 429]),
    ("post /api/v1/signup/confirm", &[400, 404, 409, 413, 415]),
    ("get /api/v1/remotes", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/remotes",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("delete /api/v1/remotes/{id}", &[401, 403, 404, 410]),
    ("get /api/v1/sync-jobs", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/sync-jobs",
        &[400, 401, 403, 404, 409, 410, 413, 415, 502],
    ),
    ("delete /api/v1/sync-jobs/{id}", &[401, 403, 404, 410]),
    ("post /api/v1/sync-jobs/{id}/run", &[401, 403, 404, 410]),
    ("get /api/v1/notify/targets", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/notify/targets",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/notify/targets/{id}", &[401, 403, 404, 410]),
    (
        "patch /api/v1/notify/targets/{id}",
        &[400, 401, 403, 404, 410, 413, 415],
    ),
    ("delete /api/v1/notify/targets/{id}", &[401, 403, 404, 410]),
    (
        "post /api/v1/notify/targets/{id}/test",
        &[401, 403, 404, 410, 429],
    ),
    ("get /api/v1/notify/deliveries", &[400, 401, 403, 404, 410]),
    ("get /api/v1/events", &[400, 401, 403, 404, 410]),
    (
        "post /api/v1/items",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("get /api/v1/items/{id}", &[401, 403, 404, 410]),
    (
        "patch /api/v1/items/{id}",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    ("delete /api/v1/items/{id}", &[401, 403, 404, 410]),
    ("post /api/v1/items/{id}/run", &[401, 402, 403, 404, 410]),
    (
        "post /api/v1/devices/{id}/restore",
        &[400, 401, 403, 404, 409, 410, 413, 415],
    ),
    (
        "post /api/v1/devices/enroll-codes",
        &[400, 401, 403, 404, 410, 413, 415],
    ),
    ("get /api/v1/audit", &[400, 401, 403, 404, 410]),
    ("get /api/v1/audit/export", &[400, 401, 403, 404, 410]),
    ("get /api/v1/audit/heads", &[400, 401, 403, 404, 410]),
    ("get /api/v1/jobs", &[400, 401, 403, 404, 410]),
    ("get /api/v1/jobs/{id}", &[401, 403, 404, 410]),
    ("get /api/v1/jobs/{id}/log", &[401, 403, 404, 410]),
    ("post /api/v1/jobs/{id}/cancel", &[401, 403, 404, 409, 410]),
];
