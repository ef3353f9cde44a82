//! The service as its users meet it over HTTPS: tenant isolation, the audit log, sessions,
//! sign-in throttling, vault tokens and hostile requests. (Roles inside a tenant are in
//! roles.rs, tenant erasure in erasure.rs.)
//!
//! Route lists come from the server's own OpenAPI document wherever a test walks "every
//! route", so a route added later is covered (or makes the test fail until it is).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use loop_api::Outcome;
use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Caller, Customer, Reply, Server, USER_PASSWORD};

// ---- the OpenAPI document ----

/// One operation of the OpenAPI document.
#[derive(Clone, Debug)]
struct Route {
    method: String,
    path: String,
    /// (`in`, `name`) of each parameter.
    params: Vec<(String, String)>,
    has_body: bool,
}

impl Route {
    fn changes_state(&self) -> bool {
        matches!(self.method.as_str(), "post" | "put" | "patch" | "delete")
    }
    fn has_path_params(&self) -> bool {
        self.path.contains('{')
    }
    /// True when the route takes `name` outside its path: a query parameter. (Read from the
    /// parameter's name, not its `in`, which the document gets wrong; see
    /// `the_openapi_document_places_every_parameter_where_it_is_sent`.)
    fn has_query(&self, name: &str) -> bool {
        let in_path = self.path.contains(&format!("{{{name}}}"));
        self.params.iter().any(|(_, n)| n == name) && !in_path
    }
}

fn documented_routes(doc: &Value) -> Vec<Route> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if !["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                continue;
            }
            let params = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["in"].as_str().unwrap_or_default().to_string(),
                                p["name"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Route {
                method: method.clone(),
                path: path.clone(),
                params,
                has_body: op.get("requestBody").is_some(),
            });
        }
    }
    assert!(out.len() > 20, "the OpenAPI document lists the API: {doc}");
    out
}

/// The parts of a path template, e.g. `/api/v1/users/{id}/roles` → `["users", "{id}", "roles"]`.
fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches("/api/v1/").split('/').collect()
}

/// Text that only a server's internals would produce.
const INTERNAL_TEXT: &[&str] = &[
    "sqlx",
    "sqlite",
    "database",
    "panicked",
    "stack backtrace",
    "constraint failed",
    "object_store",
    "no such table",
];

fn assert_no_internal_text(what: &str, r: &Reply) {
    let body = r.body.to_lowercase();
    for t in INTERNAL_TEXT {
        assert!(
            !body.contains(t),
            "{what}: the answer shows internal text {t:?}: {}",
            r.body
        );
    }
}

fn assert_no_leak(what: &str, r: &Reply, secrets: &[String]) {
    for s in secrets {
        assert!(
            !r.body.contains(s.as_str()),
            "{what} ({}) shows another tenant's {s:?}: {}",
            r.status,
            r.body
        );
    }
}

#[test]
fn the_openapi_document_places_every_parameter_where_it_is_sent() {
    let server = Server::start();
    let mut wrong = Vec::new();
    for r in documented_routes(&server.openapi()) {
        for (place, name) in &r.params {
            let in_template = r.path.contains(&format!("{{{name}}}"));
            if (place == "path") != in_template {
                wrong.push(format!(
                    "{} {}: {name} is documented in {place}",
                    r.method, r.path
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// What a client generator needs from each operation: a summary, how to authenticate
/// (a session as bearer token or cookie, except for the operations that sign in), errors as
/// `application/problem+json`, and times as `date-time`.
#[test]
fn every_operation_has_a_summary_its_security_and_problem_json_errors() {
    let server = Server::start();
    let doc = server.openapi();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http", "{schemes}");
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    assert_eq!(
        (
            &schemes["cookie"]["type"],
            &schemes["cookie"]["in"],
            &schemes["cookie"]["name"]
        ),
        (
            &json!("apiKey"),
            &json!("cookie"),
            &json!(loop_api::SESSION_COOKIE)
        ),
        "{schemes}"
    );
    let anonymous = [
        "/api/v1/auth/login",
        "/api/v1/auth/accept-invite",
        "/api/v1/auth/confirm-email",
    ];
    let mut wrong = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            let summary = op["summary"].as_str().unwrap_or_default();
            if summary.is_empty() || summary.contains('\n') {
                wrong.push(format!("{what}: summary {summary:?}"));
            }
            let security = if anonymous.contains(&path.as_str()) {
                json!([])
            } else {
                json!([{ "bearer": [] }, { "cookie": [] }])
            };
            if op["security"] != security {
                wrong.push(format!("{what}: security {}", op["security"]));
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                let types: Vec<&String> = response["content"]
                    .as_object()
                    .map(|c| c.keys().collect())
                    .unwrap_or_default();
                if status.as_str() >= "400" && types != ["application/problem+json"] {
                    wrong.push(format!("{what}: {status} is sent as {types:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");

    for name in ["since", "until"] {
        let param = doc["paths"]["/api/v1/audit/export"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is documented"));
        assert_eq!(param["schema"]["format"], "date-time", "{param}");
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["AuditEvent"]["properties"]["at"]["format"],
        "date-time"
    );
    assert_eq!(
        schemas["SnapshotInfo"]["properties"]["time"]["format"],
        "date-time"
    );
}

/// The closed sets appear in the document as enums of the strings on the wire (not the Rust
/// variant names), so a generated client sends what the server accepts.
#[test]
fn the_openapi_document_lists_each_closed_set_with_its_wire_strings() {
    let server = Server::start();
    let doc = server.openapi();
    let schemas = &doc["components"]["schemas"];
    for (schema, values) in [
        (
            "Role",
            json!([
                "provider-admin",
                "partner-admin",
                "admin",
                "operator",
                "auditor",
                "billing"
            ]),
        ),
        ("TokenPermission", json!(["backup", "restore", "manage"])),
        ("TokenKind", json!(["device", "api"])),
        ("TenantKind", json!(["provider", "partner", "customer"])),
        ("TenantStatus", json!(["active", "erased"])),
        ("UserStatus", json!(["active", "invited", "disabled"])),
        ("KeyCustody", json!(["managed", "customer"])),
        ("Backend", json!(["local", "s3"])),
        ("ActorKind", json!(["user", "token", "system", "anonymous"])),
        ("Outcome", json!(["success", "failure"])),
    ] {
        assert_eq!(schemas[schema]["enum"], values, "{schema}");
    }
    assert_eq!(
        schemas["CreateToken"]["properties"]["permissions"]["items"]["$ref"],
        "#/components/schemas/TokenPermission"
    );
}

// ---- 1. tenant isolation ----

/// A request aimed at a tenant's objects.
#[derive(Debug)]
struct Aimed {
    method: String,
    path: String,
    body: Option<Value>,
}

/// A valid body for a route that names a tenant (or, with a path parameter, acts on the
/// object in the path), aimed at `tenant_id`.
#[test]
fn every_documented_response_has_a_description() {
    // OpenAPI 3.1 requires one; generators and validators reject the document without it.
    let server = Server::start();
    let doc = server.openapi();
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status} has no description"
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 50, "only {seen} responses documented");
}

/// Regression: the document named only each handler's own answers, so the refusals of the
/// shared extractors (401 without a session, 400/413/415 for a bad body, 404 for an unknown
/// object) were undocumented and every error was documented as `application/json`, though
/// the server sends `application/problem+json`. API fuzzing flagged both.
#[test]
fn every_refusal_a_client_can_meet_is_documented_with_its_content_type() {
    let server = Server::start();
    let admin = server.admin();
    let doc = server.openapi();
    let mut undocumented = Vec::new();
    let mut seen = BTreeSet::new();
    for r in documented_routes(&doc) {
        let path = r
            .params
            .iter()
            .filter(|(place, _)| place == "path")
            .fold(r.path.clone(), |p, (_, name)| {
                p.replace(&format!("{{{name}}}"), "no_such_object")
            });
        let method = Method::from_bytes(r.method.to_ascii_uppercase().as_bytes()).unwrap();
        let mut attempts = vec![("no session", server.request(method.clone(), &path))];
        // Signing out would end the session the rest of the walk uses.
        if !r.path.ends_with("/logout") {
            attempts.push(("unknown object", admin.request(method.clone(), &path)));
        }
        if r.has_body {
            attempts.push((
                "text body",
                admin
                    .request(method.clone(), &path)
                    .header("content-type", "text/plain")
                    .body("{}"),
            ));
            attempts.push((
                "malformed JSON",
                admin
                    .request(method.clone(), &path)
                    .header("content-type", "application/json")
                    .body("{"),
            ));
        }
        for (what, req) in attempts {
            let reply = server.send(req);
            let op = &doc["paths"][&r.path][&r.method];
            let response = &op["responses"][reply.status.to_string()];
            let documented = response["content"]
                .as_object()
                .is_some_and(|c| c.contains_key(&reply.content_type))
                || (reply.body.is_empty() && response.is_object());
            if !documented {
                undocumented.push(format!(
                    "{} {} ({what}): {} {} is not documented",
                    r.method, r.path, reply.status, reply.content_type
                ));
            }
            seen.insert(reply.status);
        }
    }
    assert!(undocumented.is_empty(), "{undocumented:#?}");
    // The walk met every refusal it means to check, so an empty list above says something.
    for status in [400, 401, 404, 415] {
        assert!(
            seen.contains(&status),
            "no route answered {status}: {seen:?}"
        );
    }
}

fn body_naming(method: &str, path: &str, tenant_id: &str) -> Option<Value> {
    Some(match (method, path) {
        ("post", "/api/v1/tenants") => {
            json!({ "parent_id": tenant_id, "kind": "customer", "name": "Mallory Inc" })
        }
        ("post", "/api/v1/users") => json!({
            "tenant_id": tenant_id, "email": "mallory@example.net", "first_name": "Mallory",
            "last_name": "M", "password": "mallory-password-1", "role": "operator",
        }),
        ("post", "/api/v1/devices") => json!({ "tenant_id": tenant_id, "name": "mallory-pc" }),
        ("post", "/api/v1/tokens") => json!({
            "tenant_id": tenant_id, "name": "mallory-token", "kind": "api",
            "permissions": ["restore"],
        }),
        ("post", "/api/v1/vaults") => {
            json!({ "tenant_id": tenant_id, "name": "mallory-vault", "destination": "local" })
        }
        ("patch", "/api/v1/users/{id}") => json!({ "first_name": "Mallory" }),
        ("post", "/api/v1/users/{id}/roles") => {
            json!({ "tenant_id": tenant_id, "role": "auditor" })
        }
        ("post", "/api/v1/tenants/{id}/erase") => json!({ "confirm": tenant_id }),
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
    "/api/v1/me/password",
    "/api/v1/me/totp",
    "/api/v1/me/totp/confirm",
];

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
        ("sessions", "{id}") => operator.session_id.clone(),
        _ => panic!(
            "{path}: this test does not know which object {param} stands for; teach object_for"
        ),
    }
}

/// Every documented request that names one of `c`'s objects: by ID in the path, by
/// `?tenant_id=`, or by the tenant in the body.
fn requests_aimed_at(doc: &Value, c: &Customer) -> Vec<Aimed> {
    let mut out = Vec::new();
    for r in documented_routes(doc) {
        let aimed = if r.has_path_params() {
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
                body_naming(&r.method, &r.path, &c.tenant_id)
                    .unwrap_or_else(|| panic!("{} {}: no request body known", r.method, r.path))
            });
            Some((format!("/api/v1/{path}"), body))
        } else if r.method == "get" && r.has_query("tenant_id") {
            Some((format!("{}?tenant_id={}", r.path, c.tenant_id), None))
        } else if r.changes_state() && !CALLERS_OWN.contains(&r.path.as_str()) {
            let body = body_naming(&r.method, &r.path, &c.tenant_id).unwrap_or_else(|| {
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
    let server = Server::start();
    let admin = server.admin();
    let alpha = server.customer(&admin, "alpha");
    let bravo = server.customer(&admin, "bravo");
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
    for a in aimed.iter().filter(|a| a.method != "get") {
        let r = server.call(
            &a.method,
            &a.path,
            Some(&bravo_admin.secret),
            a.body.as_ref(),
        );
        if a.path.ends_with("/erase") {
            // Erasing is for provider-admins only (roles.rs); the tenant's own admin is
            // refused, with a 403 since the tenant is in its scope.
            r.expect_problem(403, "forbidden");
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

// ---- 2. every change is audited ----

/// Each state-changing route of the API and the audit action a valid request to it records,
/// in the order the walk takes them (signing out last).
const AUDITED: &[(&str, &str, &str)] = &[
    ("post", "/api/v1/auth/login", "auth.signin"),
    ("post", "/api/v1/tenants", "tenant.create"),
    ("post", "/api/v1/users", "user.create"),
    ("patch", "/api/v1/users/{id}", "user.update"),
    ("post", "/api/v1/users/{id}/disable", "user.disable"),
    ("post", "/api/v1/users/{id}/enable", "user.enable"),
    ("post", "/api/v1/users/{id}/roles", "role.grant"),
    (
        "delete",
        "/api/v1/users/{id}/roles/{binding_id}",
        "role.revoke",
    ),
    ("post", "/api/v1/auth/accept-invite", "user.invite_accept"),
    ("post", "/api/v1/me/password", "user.password_change"),
    ("post", "/api/v1/me/totp", "user.totp_enroll"),
    ("post", "/api/v1/me/totp/confirm", "user.totp_enable"),
    ("post", "/api/v1/devices", "device.create"),
    ("delete", "/api/v1/devices/{id}", "device.delete"),
    ("post", "/api/v1/tokens", "token.create"),
    ("delete", "/api/v1/tokens/{id}", "token.revoke"),
    ("post", "/api/v1/vaults", "vault.create"),
    ("delete", "/api/v1/vaults/{id}", "vault.delete"),
    ("delete", "/api/v1/sessions/{id}", "session.revoke"),
    ("post", "/api/v1/tenants/{id}/erase", "tenant.erase"),
    ("post", "/api/v1/auth/confirm-email", "user.email_confirm"),
    ("post", "/api/v1/auth/logout", "auth.signout"),
];

/// One request, ready to send.
struct Call {
    bearer: Option<String>,
    path: String,
    body: Option<Value>,
}

/// The objects the audit walk acts on.
struct AuditWalk<'a> {
    server: &'a Server,
    admin: Caller<'a>,
    tenant_id: String,
    /// A user who changes their own password and enrols TOTP.
    sam: Caller<'a>,
    /// Sam's password as it stands (the walk changes it).
    sam_password: &'static str,
    made: u32,
}

impl AuditWalk<'_> {
    /// A fresh invited user of the customer (no password to hash), optionally with a role.
    fn user(&mut self, role: Option<&str>) -> String {
        self.made += 1;
        let r = self
            .admin
            .post(
                "/api/v1/users",
                json!({
                    "tenant_id": self.tenant_id, "email": format!("person{}@example.org", self.made),
                    "first_name": "Pat", "last_name": "Doe", "role": role,
                }),
            )
            .expect(201);
        r["user"]["id"].as_str().unwrap().into()
    }

    fn created(&self, path: &str, body: Value) -> String {
        let r = self.admin.post(path, body).expect(201);
        let obj = if r.get("token").is_some() {
            &r["token"]
        } else {
            &r
        };
        obj["id"].as_str().unwrap().into()
    }

    /// Builds what the request to `method path` needs, then the request itself.
    fn prepare(&mut self, method: &str, path: &str) -> Call {
        let admin = Some(self.admin.secret.clone());
        let by_admin = |path: String, body: Option<Value>| Call {
            bearer: admin.clone(),
            path,
            body,
        };
        let t = self.tenant_id.clone();
        match (method, path) {
            ("post", "/api/v1/auth/login") => Call {
                bearer: None,
                path: path.into(),
                body: Some(json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD })),
            },
            ("post", "/api/v1/auth/logout") => Call {
                bearer: Some(self.server.admin().secret),
                path: path.into(),
                body: None,
            },
            ("post", "/api/v1/auth/accept-invite") => {
                let r = self
                    .admin
                    .post(
                        "/api/v1/users",
                        json!({ "tenant_id": t, "email": "invitee@example.org",
                                "first_name": "In", "last_name": "Vitee" }),
                    )
                    .expect(201);
                Call {
                    bearer: None,
                    path: path.into(),
                    body: Some(json!({
                        "invite_token": r["invite_token"], "password": "invitee-password-1",
                    })),
                }
            }
            ("post", "/api/v1/auth/confirm-email") => Call {
                bearer: None,
                path: path.into(),
                body: Some(json!({
                    "token": self.server.plant_email_code(&self.sam.user_id, "sam-new@example.org"),
                })),
            },
            ("post", "/api/v1/me/password") => {
                let current = std::mem::replace(&mut self.sam_password, "sam-new-password-2");
                Call {
                    bearer: Some(self.sam.secret.clone()),
                    path: path.into(),
                    body: Some(json!({
                        "current_password": current, "new_password": self.sam_password,
                    })),
                }
            }
            ("post", "/api/v1/me/totp") => Call {
                bearer: Some(self.sam.secret.clone()),
                path: path.into(),
                body: Some(json!({ "current_password": self.sam_password })),
            },
            ("post", "/api/v1/me/totp/confirm") => {
                let e = self
                    .server
                    .call(
                        "post",
                        "/api/v1/me/totp",
                        Some(&self.sam.secret),
                        Some(&json!({ "current_password": self.sam_password })),
                    )
                    .expect(200);
                let code = totp_code(e["secret"].as_str().unwrap(), self.server);
                Call {
                    bearer: Some(self.sam.secret.clone()),
                    path: path.into(),
                    body: Some(json!({ "code": code })),
                }
            }
            ("post", "/api/v1/tenants") => {
                let provider = self.admin.provider_tenant_id();
                by_admin(
                    path.into(),
                    Some(json!({ "parent_id": provider, "kind": "customer", "name": "Second" })),
                )
            }
            ("post", "/api/v1/users") => by_admin(
                path.into(),
                Some(json!({
                    "tenant_id": t, "email": "new.person@example.org", "first_name": "New",
                    "last_name": "Person", "password": "new-person-password", "role": "operator",
                })),
            ),
            ("patch", "/api/v1/users/{id}") => {
                let u = self.user(None);
                by_admin(
                    format!("/api/v1/users/{u}"),
                    Some(json!({ "last_name": "Renamed", "business_address": "1 Main St" })),
                )
            }
            ("post", "/api/v1/users/{id}/disable") => {
                let u = self.user(None);
                by_admin(format!("/api/v1/users/{u}/disable"), None)
            }
            ("post", "/api/v1/users/{id}/enable") => {
                let u = self.user(None);
                self.admin
                    .post(&format!("/api/v1/users/{u}/disable"), json!({}))
                    .expect(200);
                by_admin(format!("/api/v1/users/{u}/enable"), None)
            }
            ("post", "/api/v1/users/{id}/roles") => {
                let u = self.user(None);
                by_admin(
                    format!("/api/v1/users/{u}/roles"),
                    Some(json!({ "tenant_id": t, "role": "auditor" })),
                )
            }
            ("delete", "/api/v1/users/{id}/roles/{binding_id}") => {
                let u = self.user(Some("operator"));
                let roles = self
                    .admin
                    .get(&format!("/api/v1/users/{u}/roles"))
                    .expect(200);
                let b = roles[0]["id"].as_str().unwrap();
                by_admin(format!("/api/v1/users/{u}/roles/{b}"), None)
            }
            ("post", "/api/v1/devices") => by_admin(
                path.into(),
                Some(json!({ "tenant_id": t, "name": "workstation" })),
            ),
            ("delete", "/api/v1/devices/{id}") => {
                let d = self.created(
                    "/api/v1/devices",
                    json!({ "tenant_id": t, "name": "old-pc" }),
                );
                by_admin(format!("/api/v1/devices/{d}"), None)
            }
            ("post", "/api/v1/tokens") => by_admin(
                path.into(),
                Some(json!({
                    "tenant_id": t, "name": "ci", "kind": "api", "permissions": ["backup"],
                })),
            ),
            ("delete", "/api/v1/tokens/{id}") => {
                let k = self.created(
                    "/api/v1/tokens",
                    json!({ "tenant_id": t, "name": "old", "kind": "api", "permissions": ["backup"] }),
                );
                by_admin(format!("/api/v1/tokens/{k}"), None)
            }
            ("post", "/api/v1/vaults") => by_admin(
                path.into(),
                Some(json!({ "tenant_id": t, "name": "documents", "destination": "local" })),
            ),
            ("delete", "/api/v1/vaults/{id}") => {
                let v = self.created(
                    "/api/v1/vaults",
                    json!({ "tenant_id": t, "name": "old-vault", "destination": "local" }),
                );
                by_admin(format!("/api/v1/vaults/{v}"), None)
            }
            ("delete", "/api/v1/sessions/{id}") => {
                let other = self.server.admin();
                by_admin(format!("/api/v1/sessions/{}", other.session_id), None)
            }
            ("post", "/api/v1/tenants/{id}/erase") => {
                let provider = self.admin.provider_tenant_id();
                let leaving = self.created(
                    "/api/v1/tenants",
                    json!({ "parent_id": provider, "kind": "customer", "name": "Leaving" }),
                );
                by_admin(
                    format!("/api/v1/tenants/{leaving}/erase"),
                    Some(json!({ "confirm": "Leaving" })),
                )
            }
            _ => panic!("{method} {path}: no valid request known; add it to prepare()"),
        }
    }
}

/// The current code of a TOTP secret, by the server's clock.
fn totp_code(secret_b32: &str, server: &Server) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32 secret");
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build()
        .expect("TOTP");
    totp.generate((server.state.now() / 1000) as u64)
        .to_string()
}

#[test]
fn every_change_through_the_api_lands_in_the_audit_log() {
    let server = Server::start();
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
        let call = walk.prepare(method, path);
        let before = admin.audit_events();
        let r = server.call(
            method,
            &call.path,
            call.bearer.as_deref(),
            call.body.as_ref(),
        );
        assert!(
            (200..300).contains(&r.status),
            "{method} {}: {} {}",
            call.path,
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

// ---- 3. the audit chain ----

#[test]
fn the_exported_audit_log_verifies_and_the_csv_has_one_row_per_event() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    assert_eq!(server.login(ADMIN_EMAIL, "not-the-password").status, 401);
    admin
        .delete(&format!("/api/v1/tokens/{}", acme.token_id))
        .expect(204);

    let events = admin.audit_events();
    let jsonl = admin.get("/api/v1/audit/export?format=jsonl");
    assert_eq!(jsonl.status, 200);
    let exported: Vec<loop_api::AuditEvent> = jsonl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("one audit event per line"))
        .collect();
    assert_eq!(exported, events);
    assert_eq!(
        loop_api::audit::verify(&exported),
        Ok(events.len() as u64),
        "the exported chains verify"
    );
    let tenants: BTreeSet<&str> = exported.iter().map(|e| e.tenant_id.as_str()).collect();
    assert_eq!(tenants.len(), 2, "the provider's chain and acme's");
    assert!(
        exported
            .iter()
            .any(|e| e.action == "auth.signin" && e.outcome == Outcome::Failure)
    );

    let csv = admin.get("/api/v1/audit/export?format=csv");
    assert_eq!((csv.status, csv.content_type.as_str()), (200, "text/csv"));
    let mut lines = csv.body.lines();
    assert_eq!(
        lines.next(),
        Some(
            "tenant_id,seq,version,at,actor_kind,actor_id,action,object_kind,object_id,outcome,details,ip,user_agent,personal_salt,personal_hash,prev_hash,hash"
        )
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), events.len());
    for (row, e) in rows.iter().zip(&events) {
        assert!(
            row.starts_with(&format!("{},{},", e.tenant_id, e.seq)),
            "{row}"
        );
        assert!(
            row.ends_with(&format!(",{},{}", e.prev_hash, e.hash)),
            "{row}"
        );
    }

    // A customer's admin exports only their own chain, and it verifies on its own.
    let acme_admin = server.as_member(acme.member("admin"));
    let own: Vec<loop_api::AuditEvent> = acme_admin
        .get("/api/v1/audit/export")
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!own.is_empty());
    assert!(own.iter().all(|e| e.tenant_id == acme.tenant_id));
    assert_eq!(loop_api::audit::verify(&own), Ok(own.len() as u64));
}

#[test]
fn an_export_of_a_long_audit_log_holds_every_event() {
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let user = admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": provider, "email": "pat@example.org",
                    "first_name": "Pat", "last_name": "Doe" }),
        )
        .expect(201);
    let path = format!("/api/v1/users/{}", user["user"]["id"].as_str().unwrap());
    for n in 0..1000 {
        admin
            .patch(&path, json!({ "last_name": format!("Doe {n}") }))
            .expect(200);
    }
    let events = admin.audit_events();
    assert!(events.len() > 1000);
    let exported = admin.get("/api/v1/audit/export").body;
    assert_eq!(
        exported.lines().count(),
        events.len(),
        "the export holds the whole log"
    );
}

// ---- 4. sessions ----

#[test]
fn an_idle_session_ends_and_the_session_list_says_so() {
    let server = Server::start();
    let admin = server.admin();
    admin.get("/api/v1/me").expect(200);
    server.advance(Duration::from_secs(29 * 60));
    admin.get("/api/v1/me").expect(200);

    server.advance(Duration::from_secs(31 * 60));
    admin
        .get("/api/v1/me")
        .expect_problem(401, "session_expired");
    admin
        .get("/api/v1/me")
        .expect_problem(401, "unauthenticated");

    let fresh = server.admin();
    let sessions = fresh.get("/api/v1/sessions").expect(200);
    let old = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == admin.session_id.as_str())
        .expect("the old session is listed");
    assert!(!old["ended_at"].is_null(), "{old}");
    assert_eq!(old["current"], false);
    let events = fresh.audit_events();
    assert!(events.iter().any(|e| e.action == "session.expire"
        && e.object_id.as_deref() == Some(admin.session_id.as_str())
        && e.details["reason"] == "idle_timeout"));
}

#[test]
fn a_session_in_use_still_ends_at_its_absolute_lifetime() {
    let server = Server::start();
    let admin = server.admin();
    // Used every 25 minutes: never idle, but 12 hours after sign-in it ends.
    let mut minutes = 0;
    while minutes + 25 < 12 * 60 {
        server.advance(Duration::from_secs(25 * 60));
        minutes += 25;
        admin.get("/api/v1/me").expect(200);
    }
    server.advance(Duration::from_secs(25 * 60));
    admin
        .get("/api/v1/me")
        .expect_problem(401, "session_expired");
    let events = server.admin().audit_events();
    assert!(events.iter().any(|e| e.action == "session.expire"
        && e.object_id.as_deref() == Some(admin.session_id.as_str())
        && e.details["reason"] == "absolute_timeout"));
}

#[test]
fn a_remembered_session_outlives_the_normal_idle_window() {
    let server = Server::start();
    let remembered = server.sign_in_with(
        json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "remember": true }),
    );
    let normal = server.admin();
    server.advance(Duration::from_secs(3 * 3600));
    normal
        .get("/api/v1/me")
        .expect_problem(401, "session_expired");
    let me = remembered.get("/api/v1/me").expect(200);
    assert_eq!(me["session"]["remember"], true);

    server.advance(Duration::from_secs(31 * 86_400));
    remembered
        .get("/api/v1/me")
        .expect_problem(401, "session_expired");
}

#[test]
fn revoking_a_session_signs_that_device_out_and_no_other() {
    let server = Server::start();
    let laptop = server.admin();
    let phone = server.admin();
    laptop
        .delete(&format!("/api/v1/sessions/{}", phone.session_id))
        .expect(204);
    phone
        .get("/api/v1/me")
        .expect_problem(401, "unauthenticated");
    laptop.get("/api/v1/me").expect(200);
    let sessions = laptop.get("/api/v1/sessions").expect(200);
    let ended = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == phone.session_id.as_str())
        .unwrap();
    assert!(!ended["ended_at"].is_null());
}

#[test]
fn changing_the_password_ends_the_other_sessions_but_not_this_one() {
    let server = Server::start();
    let here = server.admin();
    let elsewhere = server.admin();
    here.post(
        "/api/v1/me/password",
        json!({ "current_password": ADMIN_PASSWORD, "new_password": "a-brand-new-password" }),
    )
    .expect(204);
    here.get("/api/v1/me").expect(200);
    elsewhere
        .get("/api/v1/me")
        .expect_problem(401, "unauthenticated");
    server
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .expect_problem(401, "invalid_credentials");
    server.sign_in(ADMIN_EMAIL, "a-brand-new-password");
}

#[test]
fn once_totp_is_enabled_sign_in_asks_for_the_code() {
    let server = Server::start();
    let admin = server.admin();
    admin
        .post(
            "/api/v1/me/totp",
            json!({ "current_password": "not-my-password" }),
        )
        .expect_problem(400, "wrong_password");
    let enrolment = admin
        .post(
            "/api/v1/me/totp",
            json!({ "current_password": ADMIN_PASSWORD }),
        )
        .expect(200);
    let secret = enrolment["secret"].as_str().unwrap().to_string();
    assert!(
        enrolment["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    // The database holds the secret only wrapped under the master key.
    let db = std::fs::read(server.data_dir.join("loop.db")).unwrap();
    let wal = std::fs::read(server.data_dir.join("loop.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    // Not yet confirmed: sign-in still needs only the password.
    server.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD);
    admin
        .post("/api/v1/me/totp/confirm", json!({ "code": "000000" }))
        .expect_problem(400, "invalid_totp");
    admin
        .post(
            "/api/v1/me/totp/confirm",
            json!({ "code": totp_code(&secret, &server) }),
        )
        .expect(204);

    server
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .expect_problem(401, "totp_required");
    // The code used to confirm cannot be used again (RFC 6238 5.2): sign-in waits for the
    // next one.
    let with_code = |code: String| {
        server.call(
            "post",
            "/api/v1/auth/login",
            None,
            Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": code })),
        )
    };
    with_code(totp_code(&secret, &server)).expect_problem(401, "invalid_totp");
    server.advance(Duration::from_secs(30));
    let wrong = if totp_code(&secret, &server) == "123456" {
        "654321"
    } else {
        "123456"
    };
    server
        .call(
            "post",
            "/api/v1/auth/login",
            None,
            Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": wrong })),
        )
        .expect_problem(401, "invalid_totp");
    let me = server
        .sign_in_with(json!({
            "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": totp_code(&secret, &server),
        }))
        .get("/api/v1/me")
        .expect(200);
    assert_eq!(me["user"]["totp_enabled"], true);
    with_code(totp_code(&secret, &server)).expect_problem(401, "invalid_totp");
}

#[test]
fn an_invited_user_signs_in_only_after_setting_a_password_once() {
    let server = Server::start();
    let admin = server.admin();
    let tenant = admin.provider_tenant_id();
    let created = admin
        .post(
            "/api/v1/users",
            json!({
                "tenant_id": tenant, "email": "new@example.com", "first_name": "New",
                "last_name": "Person",
            }),
        )
        .expect(201);
    assert_eq!(created["user"]["status"], "invited");
    let invite = created["invite_token"].as_str().unwrap().to_string();
    server
        .login("new@example.com", "anything-at-all-1")
        .expect_problem(401, "invalid_credentials");
    let accept = |password: &str| {
        server.call(
            "post",
            "/api/v1/auth/accept-invite",
            None,
            Some(&json!({ "invite_token": invite, "password": password })),
        )
    };
    accept("short").expect_problem(400, "invalid_request");
    accept("invitee-password-1").expect(204);
    accept("another-password-1").expect_problem(404, "not_found");
    server.sign_in("new@example.com", "invitee-password-1");

    // An invitation left unused for more than 7 days no longer works.
    let late = admin
        .post(
            "/api/v1/users",
            json!({
                "tenant_id": tenant, "email": "late@example.com", "first_name": "Late",
                "last_name": "Person",
            }),
        )
        .expect(201);
    server.advance(Duration::from_secs(7 * 86_400 + 60));
    server
        .call(
            "post",
            "/api/v1/auth/accept-invite",
            None,
            Some(&json!({ "invite_token": late["invite_token"], "password": "late-password-12" })),
        )
        .expect_problem(410, "invite_expired");
}

#[test]
fn a_browser_session_is_a_cookie_holding_only_a_random_id() {
    let server = Server::start();
    let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
              Chrome/120.0.0.0 Safari/537.36";
    let r = server
        .request(reqwest::Method::POST, "/api/v1/auth/login")
        .header(reqwest::header::USER_AGENT, ua)
        .json(&json!({
            "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "device_label": "office laptop",
        }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = r.json().unwrap();
    let token = body["session_token"].as_str().unwrap();
    assert!(
        cookie.starts_with(&format!("loop_session={token};")),
        "{cookie}"
    );
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing from {cookie}");
    }
    assert!(
        !cookie.contains("Max-Age"),
        "a normal session ends with the browser: {cookie}"
    );
    assert_eq!(token.len(), 4 + 64, "lps_ and 256 random bits in hex");

    // The cookie alone signs the browser in.
    let me = server.send(
        server
            .request(reqwest::Method::GET, "/api/v1/me")
            .header(reqwest::header::COOKIE, format!("loop_session={token}")),
    );
    assert_eq!(me.status, 200, "{}", me.body);
    let session = &me.json()["session"];
    assert_eq!(session["browser"], "Chrome 120.0.0.0");
    assert_eq!(session["os"], "Linux");
    assert_eq!(session["device_label"], "office laptop");
    assert_eq!(session["ip"], "127.0.0.1");

    // The database keeps a hash, never the ID itself.
    let db = std::fs::read(server.data_dir.join("loop.db")).unwrap();
    let wal = std::fs::read(server.data_dir.join("loop.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }

    // A remembered session is a persistent cookie.
    let r = server
        .request(reqwest::Method::POST, "/api/v1/auth/login")
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "remember": true }))
        .send()
        .unwrap();
    let cookie = r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains(&format!("Max-Age={}", 30 * 86_400)),
        "{cookie}"
    );
}

// ---- 5. sign-in throttling ----

#[test]
fn five_wrong_passwords_lock_the_account_until_the_window_passes() {
    let server = Server::start();
    for _ in 0..5 {
        server
            .login(ADMIN_EMAIL, "wrong-password-123")
            .expect_problem(401, "invalid_credentials");
    }
    server
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .expect_problem(429, "signin_throttled");

    server.advance(Duration::from_secs(16 * 60));
    let admin = server.admin();
    let events = admin.audit_events();
    assert!(events.iter().any(|e| e.action == "auth.signin"
        && e.outcome == Outcome::Failure
        && e.details["reason"] == "throttled"));
}

#[test]
fn a_burst_of_simultaneous_guesses_is_throttled_like_a_sequence() {
    let server = Server::start();
    let results: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..24)
            .map(|_| {
                let server = &server;
                s.spawn(move || server.login(ADMIN_EMAIL, "a-wrong-guess-123").status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = results.iter().filter(|s| **s == 401).count();
    let refused = results.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, 24, "{results:?}");
    assert!(checked <= 5, "{checked} guesses were checked: {results:?}");
}

#[test]
fn twenty_failures_from_one_address_lock_every_account_from_it() {
    let server = Server::start();
    for n in 0..20 {
        server
            .login(&format!("nobody{n}@example.org"), "wrong-password-123")
            .expect_problem(401, "invalid_credentials");
    }
    server
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .expect_problem(429, "signin_throttled");
    server.advance(Duration::from_secs(16 * 60));
    server.admin().get("/api/v1/me").expect(200);
}

#[test]
fn a_change_sent_with_the_cookie_from_another_site_is_refused() {
    let server = Server::start();
    let admin = server.admin();
    let cookie = format!("loop_session={}", admin.secret);
    let tenant = admin.provider_tenant_id();
    let attempt = |headers: &[(&str, &str)]| {
        let mut req = server
            .request(Method::POST, "/api/v1/tenants")
            .header(reqwest::header::COOKIE, &cookie)
            .json(&json!({ "parent_id": tenant, "kind": "customer", "name": "Forged" }));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        server.send(req)
    };
    attempt(&[("sec-fetch-site", "cross-site")]).expect_problem(403, "cross_site_request");
    attempt(&[("sec-fetch-site", "same-site")]).expect_problem(403, "cross_site_request");
    attempt(&[("origin", "https://evil.example")]).expect_problem(403, "cross_site_request");
    // The console's own pages, and clients that are not browsers, pass.
    attempt(&[("sec-fetch-site", "same-origin")]).expect(201);
    let own = format!("https://{}", server.base.trim_start_matches("https://"));
    attempt(&[("origin", own.as_str())]).expect(201);
    // Reads with the cookie are not changes.
    let r = server.send(
        server
            .request(Method::GET, "/api/v1/me")
            .header(reqwest::header::COOKIE, &cookie)
            .header("sec-fetch-site", "cross-site"),
    );
    assert_eq!(r.status, 200);
    let names: Vec<String> = admin
        .get("/api/v1/tenants")
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "Forged").count(),
        2,
        "{names:?}"
    );
}

#[test]
fn a_vault_quota_reads_back_as_it_was_set() {
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let t = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": provider, "kind": "customer", "name": "Acme" }),
        )
        .expect(201);
    // The largest quota the database holds reads back exactly; one beyond it is refused
    // rather than stored wrapped around.
    let largest = i64::MAX as u64;
    let v = admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": t["id"], "name": "big", "destination": "local",
                    "quota_bytes": largest }),
        )
        .expect(201);
    let stored = admin
        .get(&format!("/api/v1/vaults/{}", v["id"].as_str().unwrap()))
        .expect(200);
    assert_eq!(stored["quota_bytes"], largest);
    admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": t["id"], "name": "bigger", "destination": "local",
                    "quota_bytes": largest + 1 }),
        )
        .expect_problem(400, "invalid_request");
}

// ---- 7. hostile requests ----

#[test]
fn every_route_refuses_a_caller_without_credentials() {
    let server = Server::start();
    // Fetched without credentials: the document itself is public.
    let doc = server.openapi();
    let open_routes = [
        "/api/v1/auth/login",
        "/api/v1/auth/accept-invite",
        "/api/v1/auth/confirm-email",
    ];
    let fake_id = format!("xx_{}", "1".repeat(32));
    let mut requests: Vec<(String, String)> = documented_routes(&doc)
        .into_iter()
        .filter(|r| !open_routes.contains(&r.path.as_str()))
        .map(|r| {
            let path = segments(&r.path)
                .iter()
                .map(|s| {
                    if s.starts_with('{') {
                        fake_id.as_str()
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            (r.method, format!("/api/v1/{path}"))
        })
        .collect();
    let vault = format!("vt_{}", "1".repeat(32));
    let name = "ab".repeat(32);
    for (m, p) in [
        ("post", format!("/vaults/{vault}/v1/open")),
        ("get", format!("/vaults/{vault}/v1/index")),
        ("get", format!("/vaults/{vault}/v1/index/{name}")),
        ("head", format!("/vaults/{vault}/v1/index/{name}")),
        ("put", format!("/vaults/{vault}/v1/index/{name}")),
        ("delete", format!("/vaults/{vault}/v1/index/{name}")),
    ] {
        requests.push((m.to_string(), p));
    }
    for (method, path) in &requests {
        for bearer in [None, Some("lps_not-a-session"), Some("lpt_not-a-token")] {
            let body =
                (method != "get" && method != "head" && method != "delete").then(|| json!({}));
            let r = server.call(method, path, bearer, body.as_ref());
            let what = format!("{method} {path} with {bearer:?}");
            assert_eq!(r.status, 401, "{what}: {}", r.body);
            assert_no_internal_text(&what, &r);
            if method != "head" {
                assert_eq!(r.code(), "unauthenticated", "{what}");
                assert_eq!(r.content_type, "application/problem+json", "{what}");
            }
        }
    }
}

#[test]
fn broken_bodies_unknown_routes_and_odd_input_get_problem_answers() {
    let server = Server::start();
    let admin = server.admin();
    let mut replies = Vec::new();
    let mut check = |what: &str, r: Reply, status: u16, code: &str| {
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{what}: {}",
            r.body
        );
        assert_eq!(r.content_type, "application/problem+json", "{what}");
        replies.push((what.to_string(), r));
    };
    let login = "/api/v1/auth/login";
    let tenants = "/api/v1/tenants";

    let raw = |path: &str, ctype: Option<&str>, body: Vec<u8>, bearer: Option<&str>| {
        let mut req = server.request(Method::POST, path).body(body);
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        server.send(req)
    };
    let json_ct = Some("application/json");
    check(
        "malformed JSON",
        raw(login, json_ct, b"{\"email\": ".to_vec(), None),
        400,
        "invalid_request",
    );
    check(
        "JSON of the wrong shape",
        raw(tenants, json_ct, b"[1, 2, 3]".to_vec(), Some(&admin.secret)),
        400,
        "invalid_request",
    );
    check(
        "a missing field",
        raw(
            tenants,
            json_ct,
            br#"{"name": "x"}"#.to_vec(),
            Some(&admin.secret),
        ),
        400,
        "invalid_request",
    );
    let huge = serde_json::to_vec(&json!({ "email": "a@b.c", "password": "p".repeat(70 * 1024) }))
        .unwrap();
    check(
        "a 70 KiB sign-in",
        raw(login, json_ct, huge, None),
        413,
        "body_too_large",
    );
    let huge = serde_json::to_vec(&json!({
        "parent_id": admin.provider_tenant_id(), "kind": "customer", "name": "n".repeat(70 * 1024),
    }))
    .unwrap();
    check(
        "a 70 KiB tenant",
        raw(tenants, json_ct, huge, Some(&admin.secret)),
        413,
        "body_too_large",
    );
    let form = b"email=admin%40localhost&password=x".to_vec();
    check(
        "a form body",
        raw(
            login,
            Some("application/x-www-form-urlencoded"),
            form.clone(),
            None,
        ),
        415,
        "unsupported_media_type",
    );
    check(
        "no content type",
        raw(login, None, form, None),
        415,
        "unsupported_media_type",
    );

    check(
        "an unknown route",
        server.call("get", "/api/v1/nothing-here", None, None),
        404,
        "not_found",
    );
    check(
        "the site root",
        server.call("get", "/", None, None),
        404,
        "not_found",
    );
    check(
        "an unknown route, signed in",
        admin.get("/api/v1/tenants/x/y/z"),
        404,
        "not_found",
    );
    check(
        "a wrong method",
        server.call("put", tenants, Some(&admin.secret), Some(&json!({}))),
        405,
        "method_not_allowed",
    );

    // Odd IDs and queries are "no such thing" or a plain validation message.
    let long = "a".repeat(4000);
    for id in [
        "%27%3B%20DROP%20TABLE%20users%3B--",
        "%00",
        "..%2F..%2Fetc",
        long.as_str(),
    ] {
        for route in [
            "tenants", "users", "vaults", "devices", "tokens", "sessions",
        ] {
            let method = if route == "tenants" || route == "users" || route == "vaults" {
                "get"
            } else {
                "delete"
            };
            let path = format!("/api/v1/{route}/{id}");
            check(
                &path,
                server.call(method, &path, Some(&admin.secret), None),
                404,
                "not_found",
            );
        }
    }
    for q in [
        "since=yesterday",
        "until=2026-13-45",
        "limit=lots",
        "after_seq=99999999999999999999999",
        "format=xml",
    ] {
        let path = format!("/api/v1/audit/export?{q}");
        check(&path, admin.get(&path), 400, "invalid_request");
    }
    check(
        "a tenant filter with SQL in it",
        admin.get("/api/v1/users?tenant_id=%27%20OR%20%271%27%3D%271"),
        404,
        "not_found",
    );

    for (what, r) in &replies {
        assert_no_internal_text(what, r);
    }
}

/// A value outside a closed set (a role, a token permission, a kind) is refused as the
/// request is read: a 400 that names the field, and nothing created, bound or recorded.
#[test]
fn an_unknown_role_or_token_permission_is_refused_and_nothing_is_created() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let t = &acme.tenant_id;
    let events_before = admin.audit_events().len();
    let refused = |r: Reply, field: &str| {
        r.expect_problem(400, "invalid_request");
        let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
        assert!(detail.contains(field), "the detail names {field}: {detail}");
        assert_no_internal_text(field, &r);
    };

    refused(
        admin.post(
            "/api/v1/tokens",
            json!({ "tenant_id": t, "name": "too-strong", "kind": "api",
                    "permissions": ["backup", "delete"] }),
        ),
        "permissions",
    );
    refused(
        admin.post(
            "/api/v1/tokens",
            json!({ "tenant_id": t, "name": "odd-kind", "kind": "robot",
                    "permissions": ["backup"] }),
        ),
        "kind",
    );
    refused(
        admin.post(
            "/api/v1/users",
            json!({ "tenant_id": t, "email": "root@acme.example", "first_name": "Root",
                    "last_name": "User", "password": USER_PASSWORD, "role": "superuser" }),
        ),
        "role",
    );
    let operator = &acme.member("operator").user_id;
    refused(
        admin.post(
            &format!("/api/v1/users/{operator}/roles"),
            json!({ "tenant_id": t, "role": "Admin" }),
        ),
        "role",
    );

    let tokens = admin
        .get(&format!("/api/v1/tokens?tenant_id={t}"))
        .expect(200);
    let names: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["token-acme"], "no token was created");
    let users = admin
        .get(&format!("/api/v1/users?tenant_id={t}"))
        .expect(200);
    assert!(
        !users.to_string().contains("root@acme.example"),
        "no user was created: {users}"
    );
    let roles = admin
        .get(&format!("/api/v1/users/{operator}/roles"))
        .expect(200);
    assert_eq!(
        roles.as_array().unwrap().len(),
        1,
        "no role was bound: {roles}"
    );
    assert_eq!(
        admin.audit_events().len(),
        events_before,
        "nothing was recorded"
    );
}
