//! Hostile requests: no credentials, broken bodies, unknown routes, odd input.

use super::*;

#[test]
fn every_route_refuses_a_caller_without_credentials() {
    let server = Server::start();
    // Fetched without credentials: the document itself is public.
    let doc = server.openapi();
    let open_routes = [
        "/api/v1/auth/login",
        "/api/v1/auth/accept-invite",
        "/api/v1/auth/confirm-email",
        "/api/v1/auth/password-reset",
        "/api/v1/auth/password-reset/confirm",
        "/api/v1/billing/stripe/webhook",
        "/api/v1/signup/plans",
        "/api/v1/signup",
        "/api/v1/signup/confirm",
        "/api/v1/privacy/policy",
        "/api/v1/unsubscribe/{token}",
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
        "a path neither the API's nor the console's",
        server.call("get", "/nothing-here", None, None),
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
        400,
        "invalid_request",
    );

    for (what, r) in &replies {
        assert_no_internal_text(what, r);
    }
}

/// An ID of the wrong shape is refused as the request is read: in a body or a query it is a
/// 400 that names what it should have been, in a path a 404 like any path that names nothing.
/// Nothing is created or recorded. (A well-formed ID that names nothing, or another tenant's
/// object, stays a 404: see `another_customers_ids_inside_a_request_answer_as_if_they_did_not_exist`.)
#[test]
fn a_malformed_id_is_refused_as_the_request_is_read() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let t = &acme.tenant_id;
    let events_before = admin.audit_events().len();
    let refused = |r: Reply, expected: &str| {
        r.expect_problem(400, "invalid_request");
        let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
        assert!(
            detail.contains(expected),
            "the detail says {expected:?}: {detail}"
        );
        assert_no_internal_text(expected, &r);
    };
    // Another kind's ID, a tenant ID one digit too long, or no ID at all.
    let too_long = format!("{t}0");
    for bad in [
        acme.vault_id.as_str(),
        too_long.as_str(),
        "tn_' OR '1'='1",
        "acme",
        "",
    ] {
        refused(
            admin.post(
                "/api/v1/devices",
                json!({ "tenant_id": bad, "name": "laptop" }),
            ),
            "not a tenant ID",
        );
    }
    refused(
        admin.post(
            "/api/v1/tokens",
            json!({ "tenant_id": t, "name": "t", "kind": "device", "device_id": "laptop",
                    "permissions": ["backup"] }),
        ),
        "not a device ID",
    );
    refused(
        admin.post(
            "/api/v1/tokens",
            json!({ "tenant_id": t, "name": "t", "kind": "api", "vault_ids": [t],
                    "permissions": ["backup"] }),
        ),
        "not a vault ID",
    );
    for list in [
        "users",
        "devices",
        "tokens",
        "vaults",
        "sessions",
        "audit",
        "audit/heads",
    ] {
        refused(
            admin.get(&format!("/api/v1/{list}?tenant_id=acme")),
            "not a tenant ID",
        );
    }
    // In a path: a user ID where a tenant's belongs, and so on.
    let user = &acme.member("operator").user_id;
    for (method, path) in [
        ("get", format!("/api/v1/tenants/{user}")),
        ("get", format!("/api/v1/users/{t}")),
        ("get", format!("/api/v1/vaults/{t}/snapshots")),
        ("delete", format!("/api/v1/users/{user}/roles/{user}")),
        ("delete", format!("/api/v1/devices/{}", acme.token_id)),
    ] {
        server
            .call(method, &path, Some(&admin.secret), None)
            .expect_problem(404, "not_found");
    }
    let tokens = admin
        .get(&format!("/api/v1/tokens?tenant_id={t}"))
        .expect(200);
    assert_eq!(tokens.as_array().unwrap().len(), 1, "no token was made");
    assert_eq!(
        admin.audit_events().len(),
        events_before,
        "nothing was recorded"
    );
}

/// Every field of a create or update request that can be wrong on its own is refused with a
/// 400 that says what is wrong with it, and nothing is created, changed or recorded.
#[test]
fn each_wrong_field_of_a_create_or_update_request_is_named_and_nothing_changes() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let t = acme.tenant_id.as_str();
    let user = format!("/api/v1/users/{}", acme.member("operator").user_id);
    let person = |field: &str, value: Value| {
        let mut body = json!({ "tenant_id": t, "email": "new@acme.example",
                               "first_name": "New", "last_name": "Person" });
        body[field] = value;
        body
    };
    let token = |field: &str, value: Value| {
        let mut body = json!({ "tenant_id": t, "name": "nightly", "kind": "api",
                               "permissions": ["backup"] });
        body[field] = value;
        body
    };
    let name_rule = "must be 1 to 200 characters";
    let cases = [
        (
            "post",
            "/api/v1/tenants".to_string(),
            json!({ "parent_id": admin.provider_tenant_id(), "kind": "customer", "name": " " }),
            format!("tenant name {name_rule}"),
        ),
        (
            "post",
            "/api/v1/users".into(),
            person("email", json!("not-an-address")),
            "e-mail address is not valid".into(),
        ),
        (
            "post",
            "/api/v1/users".into(),
            person("password", json!("too short")),
            "password must be 12 to 1024 characters".into(),
        ),
        (
            "post",
            "/api/v1/users".into(),
            person("first_name", json!("")),
            format!("first name {name_rule}"),
        ),
        (
            "post",
            "/api/v1/users".into(),
            person("last_name", json!("Per\u{202E}son")),
            format!("last name {name_rule}"),
        ),
        (
            "post",
            "/api/v1/users".into(),
            person("business_address", json!("Main St\u{7}")),
            "business address is too long or has control characters".into(),
        ),
        (
            "patch",
            user.clone(),
            json!({ "email": "@acme.example" }),
            "e-mail address is not valid".into(),
        ),
        (
            "patch",
            user.clone(),
            json!({ "first_name": "Ana", "last_name": "\u{200B}" }),
            format!("last name {name_rule}"),
        ),
        (
            "patch",
            user.clone(),
            json!({ "business_address": "x".repeat(1001) }),
            "business address is too long or has control characters".into(),
        ),
        (
            "post",
            "/api/v1/devices".into(),
            json!({ "tenant_id": t, "name": "" }),
            format!("device name {name_rule}"),
        ),
        (
            "post",
            "/api/v1/tokens".into(),
            token("permissions", json!([])),
            "a token needs at least one permission".into(),
        ),
        (
            "post",
            "/api/v1/tokens".into(),
            token("kind", json!("device")),
            "a device token needs device_id".into(),
        ),
        (
            "post",
            "/api/v1/tokens".into(),
            token("device_id", json!(acme.device_id)),
            "an API token has no device".into(),
        ),
        (
            "post",
            "/api/v1/tokens".into(),
            token("expires_in_days", json!(0)),
            "expires_in_days is 1 to 3650".into(),
        ),
        (
            "post",
            "/api/v1/tokens".into(),
            token("name", json!("\u{7}")),
            format!("token name {name_rule}"),
        ),
        (
            "post",
            "/api/v1/vaults".into(),
            json!({ "tenant_id": t, "name": "v", "destination": "local",
                    "quota_bytes": 1u64 << 63 }),
            "quota_bytes is too large".into(),
        ),
        (
            "post",
            "/api/v1/vaults".into(),
            json!({ "tenant_id": t, "name": "", "destination": "local" }),
            format!("vault name {name_rule}"),
        ),
    ];
    let before = (
        admin.audit_events().len(),
        admin.get(&format!("/api/v1/users?tenant_id={t}")).body,
    );
    for (method, path, body, expected) in &cases {
        let what = format!("{method} {path} {body}");
        let r = server.call(method, path, Some(&admin.secret), Some(body));
        r.expect_problem(400, "invalid_request");
        let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
        assert!(detail.starts_with(expected.as_str()), "{what}: {detail}");
    }
    let after = (
        admin.audit_events().len(),
        admin.get(&format!("/api/v1/users?tenant_id={t}")).body,
    );
    assert_eq!(before, after, "nothing was created, changed or recorded");
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

/// No CORS: another site's page gets no permission to read answers, asked before (a
/// preflight) or not, even with a session.
#[test]
fn no_answer_lets_another_site_read_it() {
    let server = Server::start();
    let admin = server.admin();
    let evil = "https://evil.example";
    let answers = [
        server
            .request(Method::OPTIONS, "/api/v1/me")
            .header("Origin", evil)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization"),
        admin
            .request(Method::GET, "/api/v1/me")
            .header("Origin", evil),
        server
            .request(Method::GET, "/signin")
            .header("Origin", evil),
    ]
    .map(|r| r.send().expect("the server answers"));
    assert_eq!(answers[1].status(), 200);
    for r in &answers {
        let cors: Vec<_> = r
            .headers()
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{} {}: {cors:?}", r.url(), r.status());
    }
}
