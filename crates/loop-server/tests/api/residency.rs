//! Data residency: the jurisdictions a tenant allows are inherited and only ever narrowed,
//! data is placed only where they admit, and every place a vault lives is listed.

use loop_server::config::{BackendConfig, DestinationConfig};

use super::*;

/// A server with three local destinations: Amsterdam (nl), Frankfurt (de), New York (us).
fn three_regions() -> Server {
    Server::start_with(|c| {
        c.destinations = [("ams", "nl"), ("fra", "de"), ("nyc", "us")]
            .into_iter()
            .map(|(name, j)| DestinationConfig {
                name: name.into(),
                jurisdiction: j.into(),
                backend: BackendConfig::Local {
                    path: c.data_dir.join(name),
                },
            })
            .collect();
    })
}

/// A tenant under `parent` and its admin, signed in (both made by the provider admin).
fn tenant_with_admin<'a>(
    server: &'a Server,
    admin: &Caller<'_>,
    parent: &str,
    kind: &str,
    tag: &str,
) -> (String, Caller<'a>) {
    let t = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": parent, "kind": kind, "name": format!("Tenant {tag}") }),
        )
        .expect(201);
    let id = t["id"].as_str().unwrap().to_string();
    let email = format!("admin@{tag}.example");
    admin
        .post(
            "/api/v1/users",
            json!({
                "tenant_id": id, "email": email, "first_name": "Admin", "last_name": tag,
                "password": USER_PASSWORD, "role": "admin",
            }),
        )
        .expect(201);
    (id, server.sign_in(&email, USER_PASSWORD))
}

fn residency(caller: &Caller<'_>, tenant: &str) -> Value {
    caller
        .get(&format!("/api/v1/tenants/{tenant}/residency"))
        .expect(200)
}

fn allow(caller: &Caller<'_>, tenant: &str, allowed: Value) -> Reply {
    caller.put(
        &format!("/api/v1/tenants/{tenant}/residency"),
        json!({ "allowed": allowed }),
    )
}

fn create_vault(caller: &Caller<'_>, tenant: &str, destination: &str) -> Reply {
    caller.post(
        "/api/v1/vaults",
        json!({ "tenant_id": tenant, "name": format!("at-{destination}"), "destination": destination }),
    )
}

#[test]
fn residency_is_inherited_only_narrowed_and_enforced_where_vaults_are_placed() {
    let server = three_regions();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let (partner, partner_admin) = tenant_with_admin(&server, &admin, &provider, "partner", "p");
    let (customer, customer_admin) = tenant_with_admin(&server, &admin, &partner, "customer", "c");

    // Nothing set anywhere: any jurisdiction.
    let r = residency(&customer_admin, &customer);
    assert_eq!(
        (r["allowed"].clone(), r["effective"].clone()),
        (Value::Null, Value::Null)
    );

    // The provider keeps the partner in the EU; the partner cannot widen that.
    assert_eq!(
        allow(&admin, &partner, json!(["eu"])).expect(200)["effective"],
        json!(["eu"])
    );
    allow(&partner_admin, &partner, json!(["eu", "us"])).expect_problem(403, "residency");
    allow(&partner_admin, &partner, Value::Null).expect_problem(403, "residency");
    // The customer inherits it.
    let r = residency(&customer_admin, &customer);
    assert_eq!(
        (r["allowed"].clone(), r["effective"].clone()),
        (Value::Null, json!(["eu"]))
    );

    // From above, the partner may set anything the EU admits for its customer, not beyond.
    allow(&partner_admin, &customer, json!(["us"])).expect_problem(403, "residency");
    allow(&partner_admin, &customer, json!(["de", "nl"])).expect(200);
    // The customer may narrow itself, never widen: not to the whole EU, not back to inherit.
    allow(&customer_admin, &customer, json!(["eu"])).expect_problem(403, "residency");
    allow(&customer_admin, &customer, Value::Null).expect_problem(403, "residency");
    let r = allow(&customer_admin, &customer, json!(["nl"])).expect(200);
    assert_eq!(
        (r["allowed"].clone(), r["effective"].clone()),
        (json!(["nl"]), json!(["nl"]))
    );
    allow(&customer_admin, &customer, json!(["de"])).expect_problem(403, "residency");
    allow(&customer_admin, &customer, json!(["EU"])).expect_problem(400, "invalid_request");

    // Placing a vault: only the Dutch destination is admitted now, for every caller.
    for caller in [&admin, &partner_admin, &customer_admin] {
        create_vault(caller, &customer, "nyc").expect_problem(403, "residency");
        create_vault(caller, &customer, "fra").expect_problem(403, "residency");
    }
    let vault = create_vault(&customer_admin, &customer, "ams").expect(201);
    let vault_id = vault["id"].as_str().unwrap();

    // Every refusal is in the audit log, as a failure with its reason.
    let events = admin.audit_events();
    let refused = |action: &str| {
        events
            .iter()
            .filter(|e| {
                e.action == action
                    && e.outcome == Outcome::Failure
                    && (e.details["reason"] == "residency" || e.details["reason"] == "widening")
            })
            .count()
    };
    assert_eq!(refused("vault.create"), 6);
    assert_eq!(refused("tenant.residency"), 6, "the refused widenings");
    let placed: Vec<_> = events
        .iter()
        .filter(|e| e.action == "vault.create" && e.outcome == Outcome::Failure)
        .map(|e| e.details["jurisdiction"].as_str().unwrap().to_string())
        .collect();
    assert!(placed.iter().all(|j| j == "us" || j == "de"), "{placed:?}");

    // Where the vault lives, as the customer sees it.
    let locations = customer_admin
        .get(&format!("/api/v1/vaults/{vault_id}/locations"))
        .expect(200);
    assert_eq!(
        locations,
        json!([{ "vault_id": vault_id, "tenant_id": customer, "role": "primary",
                 "destination": "ams", "jurisdiction": "nl", "backend": "local",
                 "allowed": true }])
    );
    let report = partner_admin
        .get(&format!("/api/v1/tenants/{partner}/residency/report"))
        .expect(200);
    assert_eq!(report["locations"], locations);
    assert_eq!(report["outside"], 0);

    // The provider narrows the partner to Germany: the Dutch vault stays where it is, and
    // the report says it is now outside; nothing more can be placed for the customer.
    allow(&admin, &partner, json!(["de"])).expect(200);
    assert_eq!(
        residency(&customer_admin, &customer)["effective"],
        json!([])
    );
    let report = admin
        .get(&format!("/api/v1/tenants/{provider}/residency/report"))
        .expect(200);
    assert_eq!(report["outside"], 1);
    assert_eq!(report["locations"][0]["allowed"], false);
    for d in ["ams", "fra", "nyc"] {
        create_vault(&customer_admin, &customer, d).expect_problem(403, "residency");
    }

    // Listed, not assumed: no object of the customer's lies outside the Netherlands.
    for (d, j) in [("fra", "de"), ("nyc", "us")] {
        let files = support::files_under(&server.data_dir.join(d));
        assert!(files.is_empty(), "{j}: {files:?}");
    }
    let ams = support::files_under(&server.data_dir.join("ams"));
    assert!(ams.iter().any(|f| f.to_string_lossy().contains(vault_id)));
}

#[test]
fn another_tenants_residency_is_not_found() {
    let server = three_regions();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let (a, a_admin) = tenant_with_admin(&server, &admin, &provider, "customer", "a");
    let (b, _) = tenant_with_admin(&server, &admin, &provider, "customer", "b");
    a_admin
        .get(&format!("/api/v1/tenants/{b}/residency"))
        .expect_problem(404, "not_found");
    allow(&a_admin, &b, json!(["us"])).expect_problem(404, "not_found");
    a_admin
        .get(&format!("/api/v1/tenants/{b}/residency/report"))
        .expect_problem(404, "not_found");
    let vault = create_vault(&admin, &b, "nyc").expect(201);
    a_admin
        .get(&format!(
            "/api/v1/vaults/{}/locations",
            vault["id"].as_str().unwrap()
        ))
        .expect_problem(404, "not_found");
    // A's own report does not list B's vault.
    let report = a_admin
        .get(&format!("/api/v1/tenants/{a}/residency/report"))
        .expect(200);
    assert_eq!(report["locations"], json!([]));
}

#[test]
fn replicas_are_added_and_promoted_only_inside_the_tenants_residency() {
    let server = three_regions();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let (customer, customer_admin) = tenant_with_admin(&server, &admin, &provider, "customer", "r");
    allow(&admin, &customer, json!(["nl", "de"])).expect(200);
    let vault = create_vault(&customer_admin, &customer, "ams").expect(201);
    let vault = vault["id"].as_str().unwrap();
    let replicas = format!("/api/v1/vaults/{vault}/replicas");

    // A replica outside (the US) is refused for every caller; one in Germany is taken.
    for caller in [&admin, &customer_admin] {
        caller
            .post(&replicas, json!({ "destination": "nyc" }))
            .expect_problem(403, "residency");
    }
    let replica = customer_admin
        .post(&replicas, json!({ "destination": "fra" }))
        .expect(201);
    assert_eq!(replica["jurisdiction"], "de");
    let replica = replica["id"].as_str().unwrap();
    let job = customer_admin
        .post(&format!("/api/v1/vaults/{vault}/replication"), json!({}))
        .expect(202);
    let ended = customer_admin.job_ended(job["id"].as_str().unwrap());
    assert_eq!(ended["state"], "succeeded", "{ended}");
    let listed = customer_admin.get(&replicas).expect(200);
    assert_eq!(listed[0]["state"], "active", "{listed}");
    let roles: Vec<_> = customer_admin
        .get(&format!("/api/v1/vaults/{vault}/locations"))
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["role"].clone(), l["jurisdiction"].clone()))
        .collect();
    assert_eq!(
        roles,
        vec![
            (json!("primary"), json!("nl")),
            (json!("replica"), json!("de"))
        ]
    );

    // Narrowed to the Netherlands, the German replica cannot become the primary.
    allow(&customer_admin, &customer, json!(["nl"])).expect(200);
    customer_admin
        .post(&format!("{replicas}/{replica}/promote"), json!({}))
        .expect_problem(403, "residency");
    let report = admin
        .get(&format!("/api/v1/tenants/{customer}/residency/report"))
        .expect(200);
    assert_eq!(report["outside"], 1, "the replica is now outside: {report}");
    // Nothing new is copied there: a replication refuses the German replica.
    let writer = support::vault::holder(&server, &admin, &customer, vault, &["backup"]);
    let name = hex::encode([5u8; 32]);
    writer
        .put("data", &name, &support::vault::pack_object([5u8; 32]))
        .expect(201);
    let job = customer_admin
        .post(&format!("/api/v1/vaults/{vault}/replication"), json!({}))
        .expect(202);
    let ended = customer_admin.job_ended(job["id"].as_str().unwrap());
    assert_eq!(ended["state"], "failed", "{ended}");
    assert!(
        ended["error"]
            .as_str()
            .unwrap()
            .contains("residency no longer admits fra"),
        "{ended}"
    );
    let at_fra = support::files_under(&server.data_dir.join("fra"));
    assert!(
        !at_fra.iter().any(|p| p.ends_with(&name)),
        "copied to Germany after the narrowing: {at_fra:?}"
    );
    // Nor a key slot of a new tenant key: the rotation only takes the old key's away there.
    let slots_at_fra =
        || support::files_under(&server.data_dir.join("fra").join(vault).join("keys"));
    let before = slots_at_fra();
    let job = customer_admin
        .post(
            &format!("/api/v1/tenants/{customer}/key-rotation"),
            json!({}),
        )
        .expect(202);
    let ended = customer_admin.job_ended(job["id"].as_str().unwrap());
    assert_eq!(ended["state"], "succeeded", "{ended}");
    let after = slots_at_fra();
    assert!(
        after.iter().all(|s| before.contains(s)),
        "{before:?} → {after:?}"
    );

    let events = admin.audit_events();
    let refused = |action: &str| {
        events
            .iter()
            .filter(|e| {
                e.action == action
                    && e.outcome == Outcome::Failure
                    && e.details["reason"] == "residency"
            })
            .count()
    };
    assert_eq!(refused("vault.replica_add"), 2);
    assert_eq!(refused("vault.replica_promote"), 1);
    // Listed, not assumed: nothing of the customer's reached the US.
    let files = support::files_under(&server.data_dir.join("nyc"));
    assert!(files.is_empty(), "us: {files:?}");
}
