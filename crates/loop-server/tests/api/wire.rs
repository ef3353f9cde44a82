//! The OpenAPI document and the wire format: every operation documented as it behaves.

use super::*;

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

use super::wire_errors::ERRORS;

/// What a client generator needs from each operation: a summary, how to authenticate
/// (a session as bearer token or cookie, except for the operations that sign in), every
/// error it can answer (see [`ERRORS`]) as `application/problem+json`, with `Retry-After`
/// on a 429, and times as `date-time`.
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
        "/api/v1/auth/password-reset",
        "/api/v1/auth/password-reset/confirm",
        "/api/v1/billing/stripe/webhook",
        "/api/v1/signup/plans",
        "/api/v1/signup",
        "/api/v1/signup/confirm",
        "/api/v1/privacy/policy",
        "/api/v1/unsubscribe/{token}",
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
                let retry_after = &response["headers"]["Retry-After"]["schema"]["type"];
                if (status == "429" || status == "503") && retry_after != "integer" {
                    wrong.push(format!("{what}: {status} without its Retry-After header"));
                }
            }
            let mut documented: Vec<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|s| s.parse().ok())
                .filter(|s| *s >= 400)
                .collect();
            documented.sort();
            match ERRORS.iter().find(|(op, _)| *op == what) {
                Some((_, errors)) => {
                    let mut expected = errors.to_vec();
                    expected.extend([500, 503]);
                    expected.sort();
                    expected.dedup();
                    if documented != expected {
                        wrong.push(format!(
                            "{what}: documents errors {documented:?}, answers {expected:?}"
                        ));
                    }
                }
                None => wrong.push(format!("{what}: not in ERRORS; add the errors it answers")),
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
    // The heads are filtered by tenant and nothing else, and come in pages.
    let heads: Vec<&Value> = doc["paths"]["/api/v1/audit/heads"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(
        heads,
        [&json!("tenant_id"), &json!("limit"), &json!("cursor")]
    );
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

/// IDs are strings in the document, each kind with the pattern the server holds requests to,
/// wherever a request carries one: a path, a query or a body.
#[test]
fn the_openapi_document_gives_each_id_as_a_string_of_its_shape() {
    let server = Server::start();
    let doc = server.openapi();
    let schemas = &doc["components"]["schemas"];
    for (schema, prefix) in [
        ("TenantId", "tn"),
        ("UserId", "us"),
        ("RoleBindingId", "rb"),
        ("DeviceId", "dv"),
        ("TokenId", "tk"),
        ("VaultId", "vt"),
        ("SessionId", "se"),
    ] {
        assert_eq!(schemas[schema]["type"], "string", "{schema}");
        assert_eq!(
            schemas[schema]["pattern"],
            format!("^{prefix}_[0-9a-f]{{32}}$"),
            "{schema}"
        );
    }
    let id_ref = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let param = |path: &str, method: &str, name: &str| {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has {name}"))["schema"]
            .clone()
    };
    assert_eq!(
        param("/api/v1/tenants/{id}", "get", "id"),
        id_ref("TenantId")
    );
    assert_eq!(
        param(
            "/api/v1/users/{id}/roles/{binding_id}",
            "delete",
            "binding_id"
        ),
        id_ref("RoleBindingId")
    );
    assert_eq!(
        param("/api/v1/sessions/{id}", "delete", "id"),
        id_ref("SessionId")
    );
    let filter = param("/api/v1/users", "get", "tenant_id");
    assert!(
        filter.to_string().contains("#/components/schemas/TenantId"),
        "{filter}"
    );
    let token = &schemas["CreateToken"]["properties"];
    assert_eq!(token["tenant_id"], id_ref("TenantId"));
    assert_eq!(token["vault_ids"]["items"], id_ref("VaultId"));
    assert!(
        token["device_id"]
            .to_string()
            .contains("#/components/schemas/DeviceId"),
        "{}",
        token["device_id"]
    );
}

/// Regression: IDs that only path parameters named were referenced but missing from the
/// components, which generators reject.
#[test]
fn every_reference_in_the_openapi_document_resolves() {
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let server = Server::start();
    let doc = server.openapi();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50, "{} references", all.len());
    let dangling: BTreeSet<&str> = all
        .into_iter()
        .filter(|r| {
            r.strip_prefix("#/components/schemas/")
                .is_none_or(|name| doc["components"]["schemas"].get(name).is_none())
        })
        .collect();
    assert!(dangling.is_empty(), "{dangling:#?}");
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
        (
            "TokenPermission",
            json!(["backup", "restore", "manage", "maintain", "replicate"]),
        ),
        ("ReplicaState", json!(["seeding", "active", "damaged"])),
        ("LocationRole", json!(["primary", "replica"])),
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
/// the server sends `application/problem+json`. API fuzzing flagged both. A token of an
/// erased tenant (410 everywhere) was undocumented on reads.
#[test]
fn every_refusal_a_client_can_meet_is_documented_with_its_content_type() {
    let server = Server::start();
    let admin = server.admin();
    let gone = server.customer(&admin, "gone");
    admin
        .post(
            &format!("/api/v1/tenants/{}/erase", gone.tenant_id),
            json!({ "confirm": gone.name }),
        )
        .expect(200);
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
        let mut attempts = vec![
            ("no session", server.request(method.clone(), &path)),
            (
                "a token of an erased tenant",
                server
                    .request(method.clone(), &path)
                    .bearer_auth(&gone.token_secret),
            ),
        ];
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
    for status in [400, 401, 404, 410, 415] {
        assert!(
            seen.contains(&status),
            "no route answered {status}: {seen:?}"
        );
    }
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
