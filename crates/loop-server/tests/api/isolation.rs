//! Tenant isolation: another tenant's object answers as if it did not exist.

use super::*;

/// A request aimed at a tenant's objects.
#[derive(Debug)]
pub(super) struct Aimed {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) body: Option<Value>,
}

fn body_naming(method: &str, path: &str, c: &Customer) -> Option<Value> {
    let tenant_id = c.tenant_id.as_str();
    Some(match (method, path) {
        ("post", "/api/v1/tenants") => {
            json!({ "parent_id": tenant_id, "kind": "customer", "name": "Mallory Inc" })
        }
        ("post", "/api/v1/users") => json!({
            "tenant_id": tenant_id, "email": "mallory@example.net", "first_name": "Mallory",
            "last_name": "M", "password": "mallory-password-1", "role": "operator",
        }),
        ("post", "/api/v1/devices") => json!({ "tenant_id": tenant_id, "name": "mallory-pc" }),
        ("post", "/api/v1/devices/enroll-codes") => json!({ "tenant_id": tenant_id }),
        ("post", "/api/v1/devices/{id}/restore") => {
            json!({ "vault_id": c.vault_id, "snapshot": "latest", "target": "/srv/restore" })
        }
        ("post", "/api/v1/tokens") => json!({
            "tenant_id": tenant_id, "name": "mallory-token", "kind": "api",
            "permissions": ["restore"],
        }),
        ("post", "/api/v1/vaults") => {
            json!({ "tenant_id": tenant_id, "name": "mallory-vault", "destination": "local" })
        }
        ("patch", "/api/v1/users/{id}") => json!({ "first_name": "Mallory" }),
        ("patch", "/api/v1/tenants/{id}") => json!({ "name": "Mallory's now" }),
        ("put", "/api/v1/tenants/{id}/residency") => json!({ "allowed": ["local"] }),
        ("put", "/api/v1/tenants/{id}/branding") => {
            json!({ "product_name": "Mallory's", "accent": "#000000" })
        }
        ("post", "/api/v1/users/{id}/roles") => {
            json!({ "tenant_id": tenant_id, "role": "auditor" })
        }
        ("post", "/api/v1/tenants/{id}/erase") => json!({ "confirm": tenant_id }),
        ("post", "/api/v1/users/{id}/erase") => json!({ "confirm": c.users[0].email }),
        ("post", "/api/v1/vaults/{id}/verify") => json!({ "read_data_percent": 0 }),
        ("post", "/api/v1/vaults/{id}/retention") => json!({ "dry_run": true }),
        ("put", "/api/v1/vaults/{id}/maintainer") => json!({ "device_id": c.device_id }),
        ("put", "/api/v1/vaults/{id}/retention-lock") => json!({ "days": 1 }),
        ("put", "/api/v1/vaults/{id}/quota") => json!({ "quota_bytes": 1 }),
        ("post", "/api/v1/vaults/{id}/replicas") => json!({ "destination": "spare" }),
        ("post", "/api/v1/vaults/{id}/replicas/{replica}/verify") => json!({ "read_data": false }),
        ("post", "/api/v1/policies") => json!({ "tenant_id": tenant_id, "keep": { "last": 9 } }),
        ("patch", "/api/v1/policies/{id}") => json!({ "keep": { "last": 2 } }),
        ("post", "/api/v1/items") => json!({
            "tenant_id": tenant_id, "device_id": c.device_id, "vault_id": c.vault_id,
            "name": "mallory-item", "paths": ["/srv"],
        }),
        ("patch", "/api/v1/items/{id}") => json!({ "paths": ["/home"] }),
        ("post", "/api/v1/notify/targets") => json!({
            "tenant_id": tenant_id, "name": "mallory-alerts",
            "email": { "recipients": ["mallory@example.net"] },
        }),
        ("patch", "/api/v1/notify/targets/{id}") => json!({ "name": "mallory's alerts" }),
        ("post", "/api/v1/remotes") => json!({
            "tenant_id": tenant_id, "name": "mallory-remote", "url": "https://mallory.example",
            "token": format!("lpt_{}", "ab".repeat(32)),
        }),
        ("post", "/api/v1/sync-jobs") => json!({
            "remote_id": c.sync.as_ref().expect("a server with a spare destination").0,
            "direction": "push", "vault_id": c.vault_id, "remote_vault_id": c.vault_id,
        }),
        ("post", "/api/v1/plans") => json!({
            "issuer_id": tenant_id, "name": "mallory-plan", "price_cents": 1, "currency": "EUR",
        }),
        ("put", "/api/v1/tenants/{id}/subscription") => json!({ "plan_id": c.plan_id }),
        ("post", "/api/v1/tenants/{id}/subscription/end") => json!({ "confirm": tenant_id }),
        ("post", "/api/v1/invoices/{id}/payment") => json!({ "reference": "mallory" }),
        ("put", "/api/v1/users/{id}/restriction") => json!({ "restricted": true }),
        ("post", "/api/v1/subject-requests") => {
            json!({ "user_id": c.member("operator").user_id, "kind": "erasure" })
        }
        ("post", "/api/v1/subject-requests/{id}/close") => {
            json!({ "outcome": "refused", "action": "mallory" })
        }
        _ => return None,
    })
}

/// State-changing routes that act only on the caller (or on nobody yet), so they cannot
/// be aimed at another tenant.
const CALLERS_OWN: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/auth/logout",
    "/api/v1/auth/accept-invite",
    "/api/v1/auth/confirm-email",
    "/api/v1/auth/password-reset",
    "/api/v1/auth/password-reset/confirm",
    // Names its tenant only inside the processor's signed event.
    "/api/v1/billing/stripe/webhook",
    "/api/v1/signup",
    "/api/v1/signup/confirm",
    "/api/v1/me",
    "/api/v1/me/password",
    "/api/v1/me/totp",
    "/api/v1/me/totp/confirm",
    "/api/v1/me/policy-acknowledgement",
    "/api/v1/me/marketing-consent",
    // The whole service's, published by the provider's admins (roles.rs).
    "/api/v1/privacy/policies",
    "/api/v1/announcements",
    "/api/v1/subprocessors",
    "/api/v1/me/data-export",
];

/// Routes whose path parameter names no tenant's object: an unsubscribe link, which is
/// itself the credential of whoever received it (tests/privacy.rs), and the provider's
/// sub-processors, the whole service's (roles.rs).
const NOT_TENANTS: &[&str] = &["/api/v1/unsubscribe/{token}", "/api/v1/subprocessors/{id}"];

/// The object of `c` a path parameter stands for, by the resource the path names.
fn object_for(path: &str, param: &str, c: &Customer) -> String {
    let resource = segments(path)[0];
    let operator = c.member("operator");
    match (resource, param) {
        ("tenants", "{id}") => c.tenant_id.clone(),
        ("users", "{id}") => operator.user_id.clone(),
        ("users", "{binding_id}") => c.binding_id.clone(),
        ("devices", "{id}") => c.device_id.clone(),
        ("tokens", "{id}") => c.token_id.clone(),
        ("vaults", "{id}") => c.vault_id.clone(),
        ("vaults", "{replica}") => c
            .replica_id
            .clone()
            .expect("a server with a spare destination"),
        ("sessions", "{id}") => operator.session_id.clone(),
        ("jobs", "{id}") => c.job_id.clone(),
        ("policies", "{id}") => c.policy_id.clone(),
        ("items", "{id}") => c.item_id.clone(),
        ("notify", "{id}") => c.target_id.clone(),
        ("remotes", "{id}") => c.sync.as_ref().expect("a spare destination").0.clone(),
        ("sync-jobs", "{id}") => c.sync.as_ref().expect("a spare destination").1.clone(),
        ("plans", "{id}") => c.plan_id.clone(),
        ("invoices", "{id}") => c.invoice_id.clone(),
        ("subject-requests", "{id}") => c.request_id.clone(),
        ("data-exports", "{id}") => c.export_id.clone(),
        _ => panic!(
            "{path}: this test does not know which object {param} stands for; teach object_for"
        ),
    }
}

/// Every documented request that names one of `c`'s objects: by ID in the path, by
/// `?tenant_id=`, or by the tenant in the body.
pub(super) fn requests_aimed_at(doc: &Value, c: &Customer) -> Vec<Aimed> {
    let mut out = Vec::new();
    for r in documented_routes(doc) {
        let aimed = if NOT_TENANTS.contains(&r.path.as_str()) {
            None
        } else if r.has_path_params() {
            let path = segments(&r.path)
                .iter()
                .map(|s| {
                    if s.starts_with('{') {
                        object_for(&r.path, s, c)
                    } else {
                        s.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let body = r.has_body.then(|| {
                body_naming(&r.method, &r.path, c)
                    .unwrap_or_else(|| panic!("{} {}: no request body known", r.method, r.path))
            });
            Some((format!("/api/v1/{path}"), body))
        } else if r.method == "get" && r.has_query("tenant_id") {
            Some((format!("{}?tenant_id={}", r.path, c.tenant_id), None))
        } else if r.changes_state() && !CALLERS_OWN.contains(&r.path.as_str()) {
            let body = body_naming(&r.method, &r.path, c).unwrap_or_else(|| {
                panic!(
                    "{} {}: add a body naming the tenant to body_naming, or the route to CALLERS_OWN",
                    r.method, r.path
                )
            });
            Some((r.path.clone(), Some(body)))
        } else {
            None
        };
        if let Some((path, body)) = aimed {
            out.push(Aimed {
                method: r.method,
                path,
                body,
            });
        }
    }
    out
}

/// `s` with every ID of `secrets` replaced by an ID of the same kind that exists nowhere.
fn ghost(s: &str, secrets: &[String]) -> String {
    let mut s = s.to_string();
    for id in secrets {
        if let Some((kind, _)) = id.split_once('_').filter(|(k, _)| k.len() == 2) {
            s = s.replace(id.as_str(), &format!("{kind}_{}", "0".repeat(32)));
        }
    }
    s
}

#[test]
fn every_route_aimed_at_another_customer_answers_not_found_for_every_role() {
    let server = Server::start_with_spare();
    let admin = server.admin();
    let alpha = server.customer(&admin, "alpha");
    let bravo = server.customer(&admin, "bravo");
    // So that bravo's certificate exists for the control below.
    server.plant_certificate(&bravo.tenant_id);
    let aimed = requests_aimed_at(&server.openapi(), &bravo);
    let secrets = bravo.secrets();
    for list in [
        "users",
        "devices",
        "tokens",
        "vaults",
        "sessions",
        "audit",
        "audit/export",
        "jobs",
        "policies",
        "items",
        "notify/targets",
        "notify/deliveries",
        "events",
    ] {
        let filtered = format!("/api/v1/{list}?tenant_id={}", bravo.tenant_id);
        assert!(
            aimed.iter().any(|a| a.path == filtered),
            "the document offers ?tenant_id= on GET /api/v1/{list}"
        );
    }

    for member in &alpha.users {
        for a in &aimed {
            let what = format!("{} of alpha: {} {}", member.role, a.method, a.path);
            let r = server.call(&a.method, &a.path, Some(&member.secret), a.body.as_ref());
            assert_eq!(
                (r.status, r.code().as_str()),
                (404, "not_found"),
                "{what}: {}",
                r.body
            );
            assert_no_leak(&what, &r, &secrets);
        }
    }

    // The control: bravo's own admin reaches every one of those objects, so the 404s above
    // come from the tenant boundary and not from a wrong ID.
    let bravo_admin = server.as_member(bravo.member("admin"));
    for a in aimed.iter().filter(|a| a.method == "get") {
        let r = bravo_admin.get(&a.path);
        assert_eq!(r.status, 200, "bravo's admin: GET {}: {}", a.path, r.body);
    }
    let operator = bravo.member("operator");
    let sessions = bravo_admin
        .get(&format!("/api/v1/sessions?tenant_id={}", bravo.tenant_id))
        .expect(200);
    assert!(sessions.to_string().contains(&operator.session_id));
    let roles = bravo_admin
        .get(&format!("/api/v1/users/{}/roles", operator.user_id))
        .expect(200);
    assert!(roles.to_string().contains(&bravo.binding_id));
    // Deletions last, so every other request still finds its object.
    let mut changes: Vec<&Aimed> = aimed.iter().filter(|a| a.method != "get").collect();
    // Deleting a device, a vault or a remote removes its protected items, policies and sync
    // jobs: those go first.
    changes.sort_by_key(|a| {
        (
            a.method == "delete",
            ["/devices/", "/vaults/", "/remotes/"]
                .iter()
                .any(|p| a.path.contains(p)),
        )
    });
    for a in changes {
        let r = server.call(
            &a.method,
            &a.path,
            Some(&bravo_admin.secret),
            a.body.as_ref(),
        );
        if a.method == "delete" && r.code() == "retention_locked" {
            // The retention lock the walk set a moment before holds the vault (its own test
            // is tests/retention_lock.rs): the refusal comes from the lock, not the boundary.
            continue;
        }
        if a.path.starts_with("/api/v1/tenants/") && a.path.ends_with("/erase") {
            // Erasing a tenant is for provider-admins only (roles.rs); the tenant's own admin is
            // refused, with a 403 since the tenant is in its scope.
            r.expect_problem(403, "forbidden");
            continue;
        }
        if a.path.ends_with("/payment") {
            // Only the invoice's issuer records payments (roles.rs); the customer sees its
            // invoice, so the refusal is a 403.
            r.expect_problem(403, "forbidden");
            continue;
        }
        if (a.method == "put" && a.path.ends_with("/subscription"))
            || a.path.starts_with("/api/v1/plans/")
        {
            // Plans and subscribing are the seller's; the provider's plan is outside the
            // customer's scope (roles.rs).
            r.expect_problem(404, "not_found");
            continue;
        }
        assert!(
            ![401, 403, 404].contains(&r.status),
            "bravo's admin: {} {}: {}",
            a.method,
            a.path,
            r.body
        );
    }
}

#[test]
fn another_customers_ids_inside_a_request_answer_as_if_they_did_not_exist() {
    let server = Server::start();
    let admin = server.admin();
    let alpha = server.customer(&admin, "alpha");
    let bravo = server.customer(&admin, "bravo");
    let secrets = bravo.secrets();
    let alpha_operator = &alpha.member("operator").user_id;
    let requests = [
        (
            "post",
            format!("/api/v1/users/{alpha_operator}/roles"),
            Some(json!({ "tenant_id": bravo.tenant_id, "role": "auditor" })),
        ),
        (
            "delete",
            format!("/api/v1/users/{alpha_operator}/roles/{}", bravo.binding_id),
            None,
        ),
        (
            "post",
            "/api/v1/tokens".into(),
            Some(json!({
                "tenant_id": alpha.tenant_id, "name": "t", "kind": "api",
                "vault_ids": [bravo.vault_id], "permissions": ["backup"],
            })),
        ),
        (
            "post",
            "/api/v1/tokens".into(),
            Some(json!({
                "tenant_id": alpha.tenant_id, "name": "t", "kind": "device",
                "device_id": bravo.device_id, "permissions": ["backup"],
            })),
        ),
        (
            "post",
            format!("/api/v1/devices/{}/restore", alpha.device_id),
            Some(json!({ "vault_id": bravo.vault_id, "snapshot": "latest", "target": "/x" })),
        ),
        (
            "post",
            "/api/v1/policies".into(),
            Some(json!({
                "tenant_id": alpha.tenant_id, "vault_id": bravo.vault_id, "keep": { "last": 1 },
            })),
        ),
        (
            "post",
            "/api/v1/items".into(),
            Some(json!({
                "tenant_id": alpha.tenant_id, "device_id": bravo.device_id,
                "vault_id": alpha.vault_id, "name": "x", "paths": ["/x"],
            })),
        ),
        (
            "post",
            "/api/v1/items".into(),
            Some(json!({
                "tenant_id": alpha.tenant_id, "device_id": alpha.device_id,
                "vault_id": bravo.vault_id, "name": "x", "paths": ["/x"],
            })),
        ),
        (
            "get",
            format!("/api/v1/notify/deliveries?target_id={}", bravo.target_id),
            None,
        ),
    ];
    for member in &alpha.users {
        for (method, path, body) in &requests {
            let what = format!("{} of alpha: {method} {path} {body:?}", member.role);
            let r = server.call(method, path, Some(&member.secret), body.as_ref());
            let nowhere_body = body
                .as_ref()
                .map(|b| serde_json::from_str::<Value>(&ghost(&b.to_string(), &secrets)).unwrap());
            let nowhere = server.call(
                method,
                &ghost(path, &secrets),
                Some(&member.secret),
                nowhere_body.as_ref(),
            );
            assert_eq!(
                (r.status, r.code()),
                (nowhere.status, nowhere.code()),
                "{what}: answers differently for bravo's object ({}) than for none ({})",
                r.body,
                nowhere.body
            );
            assert!(r.status >= 400, "{what} succeeded: {}", r.body);
            assert_no_leak(&what, &r, &secrets);
        }
    }
}

#[test]
fn a_customers_lists_show_only_its_own_objects() {
    let server = Server::start();
    let admin = server.admin();
    let alpha = server.customer(&admin, "alpha");
    let bravo = server.customer(&admin, "bravo");
    let secrets = bravo.secrets();
    let lists: Vec<Route> = documented_routes(&server.openapi())
        .into_iter()
        .filter(|r| r.method == "get" && !r.has_path_params())
        .collect();
    for member in &alpha.users {
        for l in &lists {
            let what = format!("{} of alpha: GET {}", member.role, l.path);
            let r = server.call("get", &l.path, Some(&member.secret), None);
            assert!(r.status < 500, "{what}: {}", r.body);
            assert_no_leak(&what, &r, &secrets);
        }
    }
    // The control: the same lists do show alpha's own objects, and bravo's to the provider.
    let alpha_admin = server.as_member(alpha.member("admin"));
    let users = alpha_admin.get("/api/v1/users").expect(200);
    assert_eq!(users.as_array().unwrap().len(), 4, "alpha's four users");
    assert!(admin.get("/api/v1/vaults").body.contains(&bravo.vault_id));
}

#[test]
fn a_customer_cannot_look_up_the_tree_at_its_provider() {
    let server = Server::start();
    let admin = server.admin();
    let alpha = server.customer(&admin, "alpha");
    let provider = admin.provider_tenant_id();
    for member in &alpha.users {
        let me = server.as_member(member);
        for path in [
            format!("/api/v1/tenants/{provider}"),
            format!("/api/v1/users/{}", admin.user_id),
            format!("/api/v1/users/{}/roles", admin.user_id),
            format!("/api/v1/users?tenant_id={provider}"),
            format!("/api/v1/audit?tenant_id={provider}"),
        ] {
            me.get(&path).expect_problem(404, "not_found");
        }
        for path in [
            format!("/api/v1/users/{}/disable", admin.user_id),
            format!("/api/v1/users/{}/roles", admin.user_id),
        ] {
            let r = me.post(&path, json!({ "tenant_id": provider, "role": "admin" }));
            r.expect_problem(404, "not_found");
        }
        me.delete(&format!("/api/v1/sessions/{}", admin.session_id))
            .expect_problem(404, "not_found");
    }
    admin.get("/api/v1/me").expect(200);
}
