//! The table the audit-log walk (`audit_log.rs`) follows, and the walk itself: every change
//! through the API lands in the audit log.

use super::*;

use super::audit_log::AuditWalk;

/// Each state-changing route of the API and the audit action a valid request to it records,
/// in the order the walk takes them (signing out last).
pub(super) const AUDITED: &[(&str, &str, &str)] = &[
    ("post", "/api/v1/auth/login", "auth.signin"),
    ("post", "/api/v1/tenants", "tenant.create"),
    ("patch", "/api/v1/tenants/{id}", "tenant.update"),
    (
        "post",
        "/api/v1/tenants/{id}/key-rotation",
        "tenant.key_rotate",
    ),
    ("put", "/api/v1/tenants/{id}/residency", "tenant.residency"),
    ("put", "/api/v1/tenants/{id}/branding", "tenant.branding"),
    (
        "delete",
        "/api/v1/tenants/{id}/branding",
        "tenant.branding_clear",
    ),
    ("post", "/api/v1/users", "user.create"),
    ("patch", "/api/v1/users/{id}", "user.update"),
    ("patch", "/api/v1/me", "user.update"),
    ("post", "/api/v1/users/{id}/disable", "user.disable"),
    ("post", "/api/v1/users/{id}/erase", "user.erase"),
    ("post", "/api/v1/users/{id}/enable", "user.enable"),
    ("post", "/api/v1/users/{id}/roles", "role.grant"),
    (
        "delete",
        "/api/v1/users/{id}/roles/{binding_id}",
        "role.revoke",
    ),
    ("post", "/api/v1/auth/accept-invite", "user.invite_accept"),
    (
        "post",
        "/api/v1/auth/password-reset",
        "user.password_reset_request",
    ),
    (
        "post",
        "/api/v1/auth/password-reset/confirm",
        "user.password_reset",
    ),
    ("post", "/api/v1/me/password", "user.password_change"),
    ("post", "/api/v1/me/totp", "user.totp_enroll"),
    ("post", "/api/v1/me/totp/confirm", "user.totp_enable"),
    ("post", "/api/v1/devices", "device.create"),
    ("delete", "/api/v1/devices/{id}", "device.delete"),
    ("post", "/api/v1/devices/enroll-codes", "device.enroll_code"),
    ("post", "/api/v1/devices/{id}/restore", "device.restore"),
    ("post", "/api/v1/tokens", "token.create"),
    ("delete", "/api/v1/tokens/{id}", "token.revoke"),
    ("post", "/api/v1/vaults", "vault.create"),
    ("post", "/api/v1/vaults/{id}/verify", "vault.verify"),
    ("put", "/api/v1/vaults/{id}/maintainer", "vault.maintainer"),
    ("put", "/api/v1/vaults/{id}/quota", "vault.quota"),
    (
        "put",
        "/api/v1/vaults/{id}/retention-lock",
        "vault.retention_lock",
    ),
    ("post", "/api/v1/vaults/{id}/replicas", "vault.replica_add"),
    ("post", "/api/v1/vaults/{id}/replication", "vault.replicate"),
    ("post", "/api/v1/plans", "plan.create"),
    ("delete", "/api/v1/plans/{id}", "plan.delete"),
    (
        "put",
        "/api/v1/tenants/{id}/subscription",
        "subscription.start",
    ),
    (
        "post",
        "/api/v1/tenants/{id}/subscription/end",
        "subscription.end",
    ),
    ("post", "/api/v1/invoices/{id}/payment", "invoice.pay"),
    (
        "post",
        "/api/v1/tenants/{id}/subscription/payment-method",
        "subscription.payment_method_setup",
    ),
    (
        "post",
        "/api/v1/billing/stripe/webhook",
        "subscription.payment_method",
    ),
    ("post", "/api/v1/signup", "signup.request"),
    ("post", "/api/v1/signup/confirm", "tenant.signup"),
    ("post", "/api/v1/privacy/policies", "privacy.policy_publish"),
    (
        "post",
        "/api/v1/me/policy-acknowledgement",
        "user.policy_acknowledge",
    ),
    (
        "put",
        "/api/v1/me/marketing-consent",
        "user.marketing_consent",
    ),
    ("post", "/api/v1/unsubscribe/{token}", "user.unsubscribe"),
    ("put", "/api/v1/users/{id}/restriction", "user.restrict"),
    ("post", "/api/v1/announcements", "announcement.send"),
    ("post", "/api/v1/subject-requests", "subject_request.create"),
    (
        "post",
        "/api/v1/subject-requests/{id}/close",
        "subject_request.close",
    ),
    ("post", "/api/v1/subprocessors", "subprocessor.add"),
    (
        "delete",
        "/api/v1/subprocessors/{id}",
        "subprocessor.remove",
    ),
    ("post", "/api/v1/me/data-export", "user.data_export"),
    ("post", "/api/v1/users/{id}/data-export", "user.data_export"),
    ("post", "/api/v1/remotes", "remote.create"),
    ("post", "/api/v1/sync-jobs", "sync_job.create"),
    ("post", "/api/v1/sync-jobs/{id}/run", "sync_job.run"),
    ("delete", "/api/v1/sync-jobs/{id}", "sync_job.delete"),
    ("delete", "/api/v1/remotes/{id}", "remote.delete"),
    (
        "post",
        "/api/v1/vaults/{id}/replicas/{replica}/verify",
        "vault.replica_verify",
    ),
    (
        "post",
        "/api/v1/vaults/{id}/replicas/{replica}/promote",
        "vault.replica_promote",
    ),
    (
        "delete",
        "/api/v1/vaults/{id}/replicas/{replica}",
        "vault.replica_delete",
    ),
    ("post", "/api/v1/policies", "policy.create"),
    ("patch", "/api/v1/policies/{id}", "policy.update"),
    ("delete", "/api/v1/policies/{id}", "policy.delete"),
    ("post", "/api/v1/vaults/{id}/retention", "vault.retention"),
    ("post", "/api/v1/items", "item.create"),
    ("patch", "/api/v1/items/{id}", "item.update"),
    ("post", "/api/v1/items/{id}/run", "item.run"),
    ("delete", "/api/v1/items/{id}", "item.delete"),
    ("post", "/api/v1/notify/targets", "notify_target.create"),
    (
        "patch",
        "/api/v1/notify/targets/{id}",
        "notify_target.update",
    ),
    (
        "post",
        "/api/v1/notify/targets/{id}/test",
        "notify_target.test",
    ),
    (
        "delete",
        "/api/v1/notify/targets/{id}",
        "notify_target.delete",
    ),
    ("delete", "/api/v1/vaults/{id}", "vault.delete"),
    ("delete", "/api/v1/sessions/{id}", "session.revoke"),
    ("post", "/api/v1/jobs/{id}/cancel", "job.cancel"),
    ("post", "/api/v1/tenants/{id}/erase", "tenant.erase"),
    ("post", "/api/v1/auth/confirm-email", "user.email_confirm"),
    ("post", "/api/v1/auth/logout", "auth.signout"),
];

#[test]
fn every_change_through_the_api_lands_in_the_audit_log() {
    // Announcements need the address people reach the server at.
    let server = Server::start_with(|c| {
        support::with_spare(c);
        c.public_url = Some("https://backup.provider.example".into());
    });
    let admin = server.admin();
    let doc = server.openapi();
    let documented: BTreeSet<(String, String)> = documented_routes(&doc)
        .into_iter()
        .filter(Route::changes_state)
        .map(|r| (r.method, r.path))
        .collect();
    let walked: BTreeSet<(String, String)> = AUDITED
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = documented.difference(&walked).collect();
    let stale: Vec<_> = walked.difference(&documented).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "AUDITED must list exactly the state-changing routes of the OpenAPI document; \
         missing: {missing:?}, not documented: {stale:?}"
    );

    let provider = admin.provider_tenant_id();
    let tenant = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": provider, "kind": "customer", "name": "Acme" }),
        )
        .expect(201);
    let tenant_id = tenant["id"].as_str().unwrap().to_string();
    admin
        .post(
            "/api/v1/users",
            json!({
                "tenant_id": tenant_id, "email": "sam@example.org", "first_name": "Sam",
                "last_name": "Smith", "password": USER_PASSWORD,
            }),
        )
        .expect(201);
    let sam = server.sign_in("sam@example.org", USER_PASSWORD);
    let mut walk = AuditWalk {
        server: &server,
        admin: admin.clone(),
        tenant_id,
        sam,
        sam_password: USER_PASSWORD,
        made: 0,
    };

    for (method, path, action) in AUDITED {
        let before = admin.audit_events();
        let r = if *path == "/api/v1/billing/stripe/webhook" {
            walk.stripe_webhook()
        } else if *path == "/api/v1/unsubscribe/{token}" {
            walk.unsubscribe()
        } else {
            let call = walk.prepare(method, path);
            server.call(
                method,
                &call.path,
                call.bearer.as_deref(),
                call.body.as_ref(),
            )
        };
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        let after = admin.audit_events();
        support::assert_chained(&after);
        let seen: BTreeSet<(String, u64)> = before
            .iter()
            .map(|e| (e.tenant_id.clone(), e.seq))
            .collect();
        let new: Vec<_> = after
            .iter()
            .filter(|e| !seen.contains(&(e.tenant_id.clone(), e.seq)))
            .collect();
        assert!(
            after.len() > before.len(),
            "{method} {path} left no audit event"
        );
        assert!(
            new.iter()
                .any(|e| e.action == *action && e.outcome == Outcome::Success),
            "{method} {path} should record {action}; it recorded {:?}",
            new.iter().map(|e| &e.action).collect::<Vec<_>>()
        );
    }
}
