//! Erasing a tenant through the API (`POST /api/v1/tenants/{id}/erase`): who may, what it
//! destroys, what stays visible, and that running it again finishes the job.
//! (tests/erasure.rs of loop-cli tells the same story with the real binary and real backups.)
//!
//! `remote_copies.rs`: copies a push sync job made at another operator's server.
//! `races.rs`: what is made for the tenant while the erasure runs.
//! `out_of_reach.rs`: places the erasure cannot reach for a day of attempts.
//! `invitations.rs`: the tenant's open invitations.

mod invitations;
mod out_of_reach;
mod races;
mod remote_copies;
mod running_jobs;
#[path = "../support/mod.rs"]
mod support;

use remote_copies::{other_operator, push_to};

use std::sync::Arc;

use loop_repo::keys::{KdfParams, Secret};
use loop_repo::{InitOptions, ObjectStorage, Repository, S3Options};
use serde_json::{Value, json};
use support::{Caller, Server, USER_PASSWORD};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

/// A partner with one customer that has a managed vault and a customer-key vault (whose
/// repository the customer made with a passphrase), and a manage token.
struct Leaving {
    partner: String,
    tenant: String,
    managed: String,
    customer_key: String,
    token: String,
}

fn customer_key_storage(server: &Server, vault: &str) -> Arc<ObjectStorage> {
    let dir = server.data_dir.join("vaults").join(vault);
    Arc::new(ObjectStorage::open(dir.to_str().unwrap(), &S3Options::default(), true).unwrap())
}

fn leaving(server: &Server, admin: &Caller<'_>) -> Leaving {
    let provider = admin.provider_tenant_id();
    let partner = id(&admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": provider, "kind": "partner", "name": "Reseller" }),
        )
        .expect(201));
    let tenant = id(&admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": partner, "kind": "customer", "name": "Leaving Ltd" }),
        )
        .expect(201));
    let vault = |name: &str, custody: &str| {
        id(&admin
            .post(
                "/api/v1/vaults",
                json!({ "tenant_id": tenant, "name": name, "destination": "local",
                        "key_custody": custody }),
            )
            .expect(201))
    };
    let managed = vault("managed", "managed");
    let customer_key = vault("own-key", "customer");
    let opts = InitOptions {
        kdf: KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        ..Default::default()
    };
    Repository::init(
        customer_key_storage(server, &customer_key),
        Secret::Passphrase(b"customer passphrase"),
        &opts,
    )
    .expect("the customer makes its repository");
    let token = admin
        .post(
            "/api/v1/tokens",
            json!({ "tenant_id": tenant, "name": "m", "kind": "api", "permissions": ["manage"] }),
        )
        .expect(201)["secret"]
        .as_str()
        .unwrap()
        .to_string();
    Leaving {
        partner,
        tenant,
        managed,
        customer_key,
        token,
    }
}

fn key_slots(server: &Server, vault: &str) -> Vec<String> {
    let dir = server.data_dir.join("vaults").join(vault).join("keys");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn open_path(vault: &str) -> String {
    format!("/vaults/{vault}/v1/open")
}

#[test]
fn only_a_provider_admin_erases_and_only_with_the_tenants_name() {
    let server = Server::start();
    let admin = server.admin();
    let l = leaving(&server, &admin);
    let user = |tenant: &str, role: &str, email: &str| {
        admin
            .post(
                "/api/v1/users",
                json!({ "tenant_id": tenant, "email": email, "first_name": "A", "last_name": "B",
                        "password": USER_PASSWORD, "role": role }),
            )
            .expect(201);
        server.sign_in(email, USER_PASSWORD)
    };
    let own_admin = user(&l.tenant, "admin", "admin@leaving.example");
    let partner_admin = user(&l.partner, "partner-admin", "pa@reseller.example");
    let erase = format!("/api/v1/tenants/{}/erase", l.tenant);
    let confirm = json!({ "confirm": "Leaving Ltd" });
    own_admin
        .post(&erase, confirm.clone())
        .expect_problem(403, "forbidden");
    partner_admin
        .post(&erase, confirm.clone())
        .expect_problem(403, "forbidden");
    for wrong in ["Leaving", "leaving ltd", "", &l.partner] {
        admin
            .post(&erase, json!({ "confirm": wrong }))
            .expect_problem(400, "confirmation_mismatch");
    }
    admin
        .post(
            &format!("/api/v1/tenants/{}/erase", l.partner),
            json!({ "confirm": "Reseller" }),
        )
        .expect_problem(400, "invalid_request");

    // Nothing was erased by any of that.
    let t = admin
        .get(&format!("/api/v1/tenants/{}", l.tenant))
        .expect(200);
    assert_eq!(t["status"], "active");
    admin
        .get(&format!("/api/v1/vaults/{}/snapshots", l.managed))
        .expect(200);
    assert_eq!(key_slots(&server, &l.customer_key).len(), 1);
    server
        .call(
            "post",
            &open_path(&l.managed),
            Some(&l.token),
            Some(&json!({ "operation": "restore" })),
        )
        .expect(200);
    own_admin.get("/api/v1/me").expect(200);
    assert!(
        !admin
            .audit_events()
            .iter()
            .any(|e| e.action.starts_with("tenant.erase")),
        "a refused erasure records no erasure"
    );
}

#[test]
fn an_erased_tenant_keeps_its_records_but_no_key_and_no_way_in() {
    let server = Server::start();
    let admin = server.admin();
    let l = leaving(&server, &admin);
    let managed_slots = key_slots(&server, &l.managed);
    let customer_slots = key_slots(&server, &l.customer_key);
    assert_eq!((managed_slots.len(), customer_slots.len()), (1, 1));
    admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": l.tenant, "email": "ana@leaving.example", "first_name": "Ana",
                    "last_name": "A", "password": USER_PASSWORD, "role": "admin" }),
        )
        .expect(201);
    let ana = server.sign_in("ana@leaving.example", USER_PASSWORD);
    // Its summary mail goes to someone without an account; a machine was to be enrolled.
    admin
        .post(
            "/api/v1/notify/targets",
            json!({ "tenant_id": l.tenant, "name": "Night desk", "summary": "daily",
                    "email": { "recipients": ["night.desk@leaving.example"] } }),
        )
        .expect(201);
    let code = support::agent::new_code(&admin, &l.tenant, 60);

    let report = admin
        .post(
            &format!("/api/v1/tenants/{}/erase", l.tenant),
            json!({ "confirm": l.tenant }),
        )
        .expect(200);
    assert_eq!(report["tenant_key_destroyed"], true);
    assert_eq!(report["tokens_revoked"], 1);
    assert_eq!(report["users_disabled"], 1);
    let deleted = |vault: &str| -> Vec<String> {
        let v = report["vaults"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["vault_id"] == vault)
            .unwrap_or_else(|| panic!("{vault} in the report: {report}"));
        serde_json::from_value(v["key_slots_deleted"].clone()).unwrap()
    };
    assert_eq!(deleted(&l.managed), managed_slots);
    assert_eq!(deleted(&l.customer_key), customer_slots);

    // The keys are gone: from storage, and from the server.
    assert!(key_slots(&server, &l.managed).is_empty());
    assert!(key_slots(&server, &l.customer_key).is_empty());
    let err = Repository::open(
        customer_key_storage(&server, &l.customer_key),
        Secret::Passphrase(b"customer passphrase"),
    )
    .err()
    .expect("the right passphrase opens nothing");
    // No key slot is left, and (once the erasure job has run) no repository either.
    assert!(
        ["has no key slot", "no repository"]
            .iter()
            .any(|m| err.to_string().contains(m)),
        "{err}"
    );
    // The vaults are deleted with the tenant.
    admin
        .get(&format!("/api/v1/vaults/{}/snapshots", l.managed))
        .expect_problem(404, "not_found");

    // No way in: the token says why, people are signed out and cannot sign in.
    server
        .call(
            "post",
            &open_path(&l.managed),
            Some(&l.token),
            Some(&json!({ "operation": "restore" })),
        )
        .expect_problem(410, "tenant_erased");
    ana.get("/api/v1/me").expect_problem(401, "unauthenticated");
    assert_eq!(
        server.login("ana@leaving.example", USER_PASSWORD).status,
        401
    );
    server
        .call(
            "post",
            "/agent/v1/enroll",
            None,
            Some(&json!({ "code": code, "name": "late" })),
        )
        .expect_problem(403, "enrolment_refused");
    // And nothing new can be given to it.
    admin
        .post(
            "/api/v1/tokens",
            json!({ "tenant_id": l.tenant, "name": "again", "kind": "api",
                    "permissions": ["restore"] }),
        )
        .expect_problem(410, "tenant_erased");
    admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": l.tenant, "name": "again", "destination": "local" }),
        )
        .expect_problem(410, "tenant_erased");
    // Not even by a request that checked the tenant before the erasure committed.
    let tokens = admin
        .get(&format!("/api/v1/tokens?tenant_id={}", l.tenant))
        .expect(200);
    let mut late: loop_api::Token = serde_json::from_value(tokens[0].clone()).unwrap();
    (late.id, late.device_id, late.revoked_at) = ("tk_late".into(), None, None);
    let stored = server.block_on(async {
        let mut tx = server.state.db.begin().await.unwrap();
        let stored = loop_server::db::tokens::insert_token(&mut tx, &late, "h", "test", 1).await;
        tx.commit().await.unwrap();
        stored.unwrap()
    });
    assert!(!stored);

    // What stays visible: the tenant (marked erased), its users and tokens; its vaults are
    // deleted, and the erasure job deletes their objects.
    let t = admin
        .get(&format!("/api/v1/tenants/{}", l.tenant))
        .expect(200);
    assert_eq!(t["status"], "erased");
    let vaults = admin
        .get(&format!("/api/v1/vaults?tenant_id={}", l.tenant))
        .expect(200);
    assert_eq!(vaults.as_array().unwrap().len(), 0);
    let job = report["erasure_job_id"].as_str().expect("an erasure job");
    assert_eq!(admin.job_ended(job)["state"], "succeeded");
    // A tenant erasure is never cancelled: like everything of the erased tenant, its job
    // answers that the tenant is gone.
    admin
        .post(&format!("/api/v1/jobs/{job}/cancel"), json!({}))
        .expect_problem(410, "tenant_erased");
    assert_eq!(admin.job_ended(job)["state"], "succeeded");
    let users = admin
        .get(&format!("/api/v1/users?tenant_id={}", l.tenant))
        .expect(200);
    assert_eq!(users[0]["status"], "disabled");
    // Once the certificate went out, its people are erased too, also on this server without
    // a mail relay, where the certificate's mail to them never leaves the outbox.
    server
        .block_on(loop_server::billing::tick(&server.state))
        .unwrap();
    let users = admin
        .get(&format!("/api/v1/users?tenant_id={}", l.tenant))
        .expect(200);
    for u in users.as_array().unwrap() {
        assert!(
            u["email"].as_str().unwrap().ends_with("@erased.invalid"),
            "{u}"
        );
    }
    // Its notification targets went with it: nothing is mailed on about it.
    assert!(!server.database_holds("night.desk@leaving.example"));
    let due = server.block_on(loop_server::db::notify::summaries_due(
        &server.state.db.pool,
        i64::MAX,
        100,
    ));
    assert!(due.unwrap().iter().all(|t| t.target.tenant_id != l.tenant));

    // The audit log says who erased what.
    let events = admin.audit_events();
    let erase = events
        .iter()
        .find(|e| e.action == "tenant.erase" && e.tenant_id == l.tenant)
        .expect("a tenant.erase event");
    assert_eq!(erase.actor_id.as_deref(), Some(admin.user_id.as_str()));
    assert_eq!(erase.details["tenant_key_destroyed"], true);
    let slots = events
        .iter()
        .find(|e| e.action == "tenant.erase_key_slots" && e.tenant_id == l.tenant)
        .expect("a tenant.erase_key_slots event");
    assert!(slots.details.to_string().contains(&customer_slots[0]));

    // Erasing again (as a job would after an interruption) finds nothing left to destroy.
    let again = admin
        .post(
            &format!("/api/v1/tenants/{}/erase", l.tenant),
            json!({ "confirm": "Leaving Ltd" }),
        )
        .expect(200);
    assert_eq!(again["tenant_key_destroyed"], false);
    assert_eq!(again["tokens_revoked"], 0);
    assert!(
        again["vaults"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["key_slots_deleted"] == json!([])),
        "{again}"
    );
}

/// The erasure reaches every place a tenant's objects were: the vault's local destination,
/// its replica on a real S3 store (Garage), and the copy a push sync job made on another
/// operator's server. Each place is listed again and found empty, by the server (the
/// certificate) and by this test; the certificate's hash is in the audit chain, which
/// still verifies.
#[test]
fn erasure_deletes_every_object_at_every_place_and_certifies_it() {
    let Some(garage) = loop_testkit::garage::Garage::start() else {
        return;
    };
    let server = Server::start_with(|c| {
        c.destinations = vec![
            loop_server::config::DestinationConfig {
                name: "local".into(),
                jurisdiction: "local".into(),
                backend: loop_server::config::BackendConfig::Local {
                    path: c.data_dir.join("vaults"),
                },
            },
            loop_server::config::DestinationConfig {
                name: "garage".into(),
                jurisdiction: "local".into(),
                backend: loop_server::config::BackendConfig::S3 {
                    bucket: garage.bucket.clone(),
                    prefix: String::new(),
                    endpoint: Some(garage.endpoint.clone()),
                    region: Some(garage.region.clone()),
                    access_key_id: garage.access_key_id.clone(),
                    secret_access_key: loop_server::config::SecretString::new(
                        garage.secret_access_key.clone(),
                    ),
                    allow_http: true,
                    retries: 2,
                    retry_secs: 10,
                    direct: false,
                    direct_url_secs: 900,
                },
            },
        ];
    });
    let (other, copy, token) = other_operator();

    // Here: a customer whose vault has a replica on Garage and is pushed to the copy.
    let admin = server.admin();
    let tenant = admin.customer_tenant("Acme");
    let vault = id(&admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "files", "destination": "local" }),
        )
        .expect(201));
    admin
        .post(
            &format!("/api/v1/vaults/{vault}/replicas"),
            json!({ "destination": "garage" }),
        )
        .expect(201);
    // The replica's seeding run ends first: a replication asked for while one runs is that
    // run, which may have listed the vault before the packs below arrived.
    let seeding = admin
        .get(&format!("/api/v1/jobs?tenant_id={tenant}&kind=replication"))
        .expect(200);
    for j in seeding.as_array().unwrap() {
        admin.job_ended(j["id"].as_str().unwrap());
    }
    let writer = support::vault::holder(&server, &admin, &tenant, &vault, &["backup"]);
    for b in 1..=3u8 {
        let name = hex::encode([b; 32]);
        writer
            .put("data", &name, &support::vault::pack_object([b; 32]))
            .expect(201);
    }
    let job = admin
        .post(&format!("/api/v1/vaults/{vault}/replication"), json!({}))
        .expect(202);
    assert_eq!(admin.job_ended(&id(&job))["state"], "succeeded");
    push_to(&admin, &tenant, &vault, (&other, &copy, &token));
    let here = server.data_dir.join("vaults").join(&vault);
    let there = other.data_dir.join("vaults").join(&copy);
    assert!(support::files_under(&here).len() >= 3);
    assert!(garage.list(&vault).len() >= 3);
    assert!(support::files_under(&there).len() >= 3);

    let report = admin
        .post(
            &format!("/api/v1/tenants/{tenant}/erase"),
            json!({ "confirm": "Acme" }),
        )
        .expect(200);
    let job = report["erasure_job_id"].as_str().expect("an erasure job");
    let ended = admin.job_ended(job);
    assert_eq!(ended["state"], "succeeded", "{ended}");
    let cert = support::certificate(&admin, &tenant);
    assert_eq!(cert["complete"], true, "{cert}");
    let places = cert["places"].as_array().unwrap();
    let at = |kind: &str, name: &str| {
        places
            .iter()
            .find(|p| p["kind"] == kind && p["place"].as_str().unwrap().contains(name))
            .unwrap_or_else(|| panic!("{kind} {name} in {cert}"))
    };
    for p in [
        at("destination", "local"),
        at("destination", "garage"),
        at("remote", &other.base),
    ] {
        assert!(p["objects_deleted"].as_u64().unwrap() >= 3, "{p}");
        assert_eq!(p["objects_left"], 0, "{p}");
        assert!(p["verified_at"].is_string(), "{p}");
        assert!(p["verified_by"].is_string(), "{p}");
    }
    assert_eq!(at("destination", "garage")["jurisdiction"], "local");
    assert_eq!(
        at("remote", &other.base)["jurisdiction"],
        "local",
        "as the other server says"
    );
    // Nothing is left, as this test lists it too.
    assert_eq!(
        support::files_under(&here),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(garage.list(&vault), Vec::<String>::new());
    assert_eq!(
        support::files_under(&there),
        Vec::<std::path::PathBuf>::new()
    );
    support::assert_chained(&admin.audit_events());
}

/// Erases the tenant "Acme" and waits for its erasure job; its deletion certificate.
fn erase_acme(admin: &Caller<'_>, tenant: &str) -> Value {
    let report = acme_erased(admin, tenant);
    admin.job_ended(report["erasure_job_id"].as_str().unwrap());
    support::certificate(admin, tenant)
}

/// Erases the tenant "Acme": what the erase command destroyed.
fn acme_erased(admin: &Caller<'_>, tenant: &str) -> Value {
    admin
        .post(
            &format!("/api/v1/tenants/{tenant}/erase"),
            json!({ "confirm": "Acme" }),
        )
        .expect(200)
}

/// A vault deleted before the tenant's erasure, whose own erasure left something behind (it
/// failed for good, or an upload under way landed after it): the tenant's erasure erases that
/// place too, and the certificate names it.
#[test]
fn a_vault_deleted_before_the_erasure_is_erased_with_it() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, kept) = support::vault::customer_with_vault(&admin, "Acme", None);
    let gone = id(&admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "old", "destination": "local",
                    "key_custody": "customer" }),
        )
        .expect(201));
    let job = admin.delete(&format!("/api/v1/vaults/{gone}")).expect(202);
    admin.job_ended(&id(&job));
    let left = server.data_dir.join("vaults").join(&gone).join("keys");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join(hex::encode([3u8; 32])), b"a key slot left behind").unwrap();

    let cert = erase_acme(&admin, &tenant);
    let vaults: Vec<&str> = cert["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["vault_id"].as_str().unwrap())
        .collect();
    assert!(
        vaults.contains(&kept.as_str()) && vaults.contains(&gone.as_str()),
        "{cert}"
    );
    assert_eq!(cert["complete"], true, "{cert}");
    assert!(support::files_under(&server.data_dir.join("vaults").join(&gone)).is_empty());
}

/// Likewise a replica removed before the tenant's erasure, whose own erasure left something
/// behind: the tenant's erasure empties that place too, and the certificate names it.
#[test]
fn a_replica_removed_before_the_erasure_is_erased_with_it() {
    let server = Server::start_with_spare();
    let admin = server.admin();
    let (tenant, vault) = support::vault::customer_with_vault(&admin, "Acme", None);
    let replicas = format!("/api/v1/vaults/{vault}/replicas");
    let replica = id(&admin
        .post(&replicas, json!({ "destination": "spare" }))
        .expect(201));
    let job = admin.delete(&format!("{replicas}/{replica}")).expect(202);
    admin.job_ended(&id(&job));
    let left = server.data_dir.join("spare").join(&vault).join("data");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join(hex::encode([4u8; 32])), b"a pack left behind").unwrap();

    let cert = erase_acme(&admin, &tenant);
    let places: Vec<(&str, &str)> = cert["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["vault_id"].as_str().unwrap(),
                p["place"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(places.contains(&(vault.as_str(), "spare")), "{cert}");
    assert_eq!(cert["complete"], true, "{cert}");
    assert!(support::files_under(&server.data_dir.join("spare").join(&vault)).is_empty());
}
