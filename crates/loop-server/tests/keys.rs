//! Key rotation without re-encrypting vault data: a tenant key (a job that gives every
//! managed vault a slot for the new key, then removes the old key's slots) and the master
//! key (previous keys open what they wrapped until `rewrap` wraps it under the new one).

mod support;

use std::sync::Arc;
use std::time::Duration;

use loop_repo::Repository;
use loop_repo::crypto::Key;
use loop_repo::keys::Secret;
use loop_server::db::tenants;
use serde_json::{Value, json};
use support::vault::{customer_with_vault, holder};
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Caller, Server};

/// The key a token holder is handed to open `vault` (the vault protocol's `open`).
fn handed_kek(server: &Server, admin: &Caller<'_>, tenant: &str, vault: &str) -> Key {
    let opened = holder(server, admin, tenant, vault, &["restore"])
        .open()
        .expect(200);
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(opened["key"].as_str().expect("a managed key"), &mut bytes).unwrap();
    Key::from_bytes(bytes)
}

/// Opens the vault's repository at its destination with `kek`: the slot IDs, or the error.
fn slots_opened(server: &Server, vault: &str, kek: &Key) -> Result<usize, loop_repo::Error> {
    slots_opened_at(server, "local", vault, kek)
}

/// [`slots_opened`] at destination `dest`.
fn slots_opened_at(
    server: &Server,
    dest: &str,
    vault: &str,
    kek: &Key,
) -> Result<usize, loop_repo::Error> {
    let storage = server
        .state
        .destinations
        .get(dest)
        .unwrap()
        .repo_storage(vault)
        .unwrap();
    let repo = Repository::open(Arc::new(storage), Secret::RawKey(kek))?;
    Ok(repo.list_keys()?.len())
}

fn rotate(admin: &Caller<'_>, tenant: &str) -> Value {
    let job = admin
        .post(&format!("/api/v1/tenants/{tenant}/key-rotation"), json!({}))
        .expect(202);
    assert_eq!(job["kind"], "tenant-key-rotation", "{job}");
    admin.job_ended(job["id"].as_str().unwrap())
}

#[test]
fn a_tenant_key_rotation_rekeys_every_managed_vault_without_touching_its_data() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "acme", None);
    let second = admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "more", "destination": "local" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (other_tenant, other_vault) = customer_with_vault(&admin, "globex", None);
    let before = handed_kek(&server, &admin, &tenant, &vault);
    let other_before = handed_kek(&server, &admin, &other_tenant, &other_vault);
    let config_before = std::fs::read(server.data_dir.join("vaults").join(&vault).join("config"))
        .expect("the vault's config object");

    let job = rotate(&admin, &tenant);
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["summary"]["slots_added"], 2, "{job}");
    assert_eq!(job["summary"]["slots_removed"], 2, "{job}");

    // The key handed out now is another one; it opens the vault, the old one no longer
    // does, and the vault has one slot as before. The data (here its config) is unchanged.
    let after = handed_kek(&server, &admin, &tenant, &vault);
    assert_ne!(after.expose(), before.expose());
    assert_eq!(slots_opened(&server, &vault, &after).unwrap(), 1);
    assert!(matches!(
        slots_opened(&server, &vault, &before),
        Err(loop_repo::Error::WrongPassword)
    ));
    assert_eq!(
        std::fs::read(server.data_dir.join("vaults").join(&vault).join("config")).unwrap(),
        config_before
    );
    let second_key = handed_kek(&server, &admin, &tenant, &second);
    assert_eq!(slots_opened(&server, &second, &second_key).unwrap(), 1);
    // The server reads the vault with the new key.
    admin
        .get(&format!("/api/v1/vaults/{vault}/snapshots"))
        .expect(200);
    // Another tenant's key is untouched.
    let other_after = handed_kek(&server, &admin, &other_tenant, &other_vault);
    assert_eq!(other_after.expose(), other_before.expose());
    // Nothing of the rotation is left behind, so another one starts afresh.
    let keys = server
        .block_on(tenants::tenant_keys(&server.state.db.pool, &tenant))
        .unwrap()
        .unwrap();
    assert!(!keys.rotating(), "{keys:?}");
    assert_eq!(rotate(&admin, &tenant)["state"], "succeeded");
    let third = handed_kek(&server, &admin, &tenant, &vault);
    assert_ne!(third.expose(), after.expose());
    assert!(slots_opened(&server, &vault, &after).is_err());

    let events = admin.audit_events();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "tenant.key_rotate" && e.tenant_id == tenant)
            .count(),
        2
    );
}

#[test]
fn only_the_tenants_admins_rotate_its_key() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let globex = server.customer(&admin, "globex");
    let path = format!("/api/v1/tenants/{}/key-rotation", acme.tenant_id);
    // Another tenant's admin does not see the tenant at all.
    server
        .as_member(globex.member("admin"))
        .post(&path, json!({}))
        .expect_problem(404, "not_found");
    for role in ["operator", "auditor", "billing"] {
        let reply = server.as_member(acme.member(role)).post(&path, json!({}));
        assert_eq!(reply.status, 403, "{role}: {:?}", reply.body);
    }
    let job = server
        .as_member(acme.member("admin"))
        .post(&path, json!({}))
        .expect(202);
    assert_eq!(
        admin.job_ended(job["id"].as_str().unwrap())["state"],
        "succeeded"
    );
}

#[test]
fn a_rotation_cut_off_is_finished_by_the_next_run_and_holds_back_new_vaults_meanwhile() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "acme", None);
    // A run that made its new key and stopped there (the node died).
    let pool = &server.state.db.pool;
    let current = server
        .block_on(tenants::tenant_keys(pool, &tenant))
        .unwrap()
        .unwrap()
        .current;
    // What recording a new managed vault holds: true before the rotation began, false
    // after (a vault whose creation began before the rotation is not recorded).
    let holds = || {
        server.block_on(async {
            let mut tx = server.state.db.begin().await.unwrap();
            tenants::hold_current_key(&mut tx, &tenant, &current)
                .await
                .unwrap()
        })
    };
    assert!(holds());
    let (next_key, next) = server.state.master.new_tenant_key(&tenant);
    assert!(
        server
            .block_on(tenants::begin_key_rotation(pool, &tenant, &next))
            .unwrap()
    );
    assert!(!holds());
    // No managed vault is made while a rotation is under way: it would not know the vault.
    admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "new", "destination": "local" }),
        )
        .expect_problem(409, "key_rotation");
    // An answer the API description names, for a client generated from it.
    let documented = &server.openapi()["paths"]["/api/v1/vaults"]["post"]["responses"];
    assert!(documented["409"].is_object(), "{documented:#}");
    let vaults_dir = server.data_dir.join("vaults");
    let count = || std::fs::read_dir(&vaults_dir).unwrap().count();
    assert_eq!(
        count(),
        1,
        "the refused vault left nothing at the destination"
    );

    let job = rotate(&admin, &tenant);
    assert_eq!(job["state"], "succeeded", "{job}");
    // It went on with the key the cut-off run made.
    let kek = loop_server::keys::vault_kek(&next_key, &vault);
    assert_eq!(slots_opened(&server, &vault, &kek).unwrap(), 1);
    assert_eq!(
        handed_kek(&server, &admin, &tenant, &vault).expose(),
        kek.expose()
    );
    admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "new", "destination": "local" }),
        )
        .expect(201);
}

/// A managed vault with a replica at `spare` that completed a replication: (tenant, vault,
/// replica).
fn replicated_vault(admin: &Caller<'_>) -> (String, String, String) {
    let (tenant, vault) = customer_with_vault(admin, "acme", None);
    let replica = admin
        .post(
            &format!("/api/v1/vaults/{vault}/replicas"),
            json!({ "destination": "spare" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = admin
        .post(&format!("/api/v1/vaults/{vault}/replication"), json!({}))
        .expect(202);
    let ended = admin.job_ended(job["id"].as_str().unwrap());
    assert_eq!(ended["state"], "succeeded", "{ended}");
    (tenant, vault, replica)
}

#[test]
fn a_rotation_rekeys_the_replicas_too_so_a_replica_promoted_after_it_opens() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (tenant, vault, replica) = replicated_vault(&admin);
    let promote = format!("/api/v1/vaults/{vault}/replicas/{replica}/promote");
    let before = handed_kek(&server, &admin, &tenant, &vault);

    // While a rotation is under way no replica is promoted.
    let (_, next) = server.state.master.new_tenant_key(&tenant);
    let pool = &server.state.db.pool;
    assert!(
        server
            .block_on(tenants::begin_key_rotation(pool, &tenant, &next))
            .unwrap()
    );
    admin
        .post(&promote, json!({}))
        .expect_problem(409, "key_rotation");
    assert_eq!(rotate(&admin, &tenant)["state"], "succeeded");

    // The replica opens with the new key and no longer with the old one, without a
    // replication in between.
    let after = handed_kek(&server, &admin, &tenant, &vault);
    assert_eq!(
        slots_opened_at(&server, "spare", &vault, &after).unwrap(),
        1
    );
    assert!(matches!(
        slots_opened_at(&server, "spare", &vault, &before),
        Err(loop_repo::Error::WrongPassword)
    ));
    // Promoted now, the vault is read at the replica with the current key.
    let promoted = admin.post(&promote, json!({})).expect(200);
    assert_eq!(promoted["destination"], "spare", "{promoted}");
    admin
        .get(&format!("/api/v1/vaults/{vault}/snapshots"))
        .expect(200);
}

#[test]
fn a_replica_the_current_tenant_key_does_not_open_is_not_promoted() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (_, vault, replica) = replicated_vault(&admin);
    // The replica's key slots are gone (as a replica whose slots lag the primary's would
    // be opened by nothing the server holds).
    std::fs::remove_dir_all(server.data_dir.join("spare").join(&vault).join("keys")).unwrap();
    admin
        .post(
            &format!("/api/v1/vaults/{vault}/replicas/{replica}/promote"),
            json!({}),
        )
        .expect_problem(409, "replica_not_ready");
    let v = admin.get(&format!("/api/v1/vaults/{vault}")).expect(200);
    assert_eq!(v["destination"], "local", "the primary stays: {v}");
    admin
        .get(&format!("/api/v1/vaults/{vault}/snapshots"))
        .expect(200);
}

/// A server on `data_dir` (and `database`, under PostgreSQL) with the master key `key`
/// and the previous master key files `previous`.
fn start(
    data_dir: &std::path::Path,
    database: Option<Arc<loop_testkit::postgres::Database>>,
    key: &str,
    previous: &[std::path::PathBuf],
) -> Server {
    let (data_dir, key, previous) = (data_dir.to_path_buf(), key.to_string(), previous.to_vec());
    Server::start_on(database, move |c| {
        c.data_dir = data_dir;
        c.master_key = Some(loop_server::config::SecretString::new(key));
        c.previous_master_key_files = previous;
    })
}

/// The administrator, signed in with password and TOTP code `steps` 30-second steps from
/// now: later than any code used before on servers whose clocks were moved less.
fn admin_with_totp<'a>(server: &'a Server, secret: &str, steps: u64) -> Caller<'a> {
    let into_step = server.state.now().rem_euclid(30_000) as u64;
    server.advance(Duration::from_millis(steps * 30_000 - into_step + 500));
    server.sign_in_with(json!({
        "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": server.totp_code(secret),
    }))
}

fn rewrap(server: &Server) -> Vec<loop_server::rewrap::ColumnRewrapped> {
    server
        .block_on(loop_server::rewrap::rewrap(&server.state.config))
        .expect("rewrap runs")
}

#[test]
fn a_new_master_key_reads_with_the_previous_one_until_everything_is_rewrapped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (old_key, new_key) = ("1a".repeat(32), "2b".repeat(32));
    let server = start(
        &data,
        loop_testkit::postgres::for_server().map(Arc::new),
        &old_key,
        &[],
    );
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "acme", None);
    let kek = handed_kek(&server, &admin, &tenant, &vault);
    // A TOTP secret and a webhook secret, both wrapped under the master key.
    let secret = server.enable_totp(&admin, ADMIN_PASSWORD);
    admin
        .post(
            "/api/v1/notify/targets",
            json!({ "tenant_id": tenant, "name": "hook",
                    "webhook": { "url": "https://hooks.example.com/loop" } }),
        )
        .expect(201);
    // A remote's replication token, wrapped under the master key too.
    server.self_remote(&admin, &tenant, "rewrap");
    let database = server.stop();

    // The new key alone does not open this database: the server refuses to start.
    let old_file = dir.path().join("old.key");
    std::fs::write(&old_file, format!("{old_key}\n")).unwrap();
    let refused = {
        let mut config = loop_server::Config {
            data_dir: data.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            master_key: Some(loop_server::config::SecretString::new(new_key.clone())),
            ..loop_server::Config::default()
        };
        if let Some(d) = &database {
            config.database.url = Some(loop_server::config::SecretString::new(d.url.clone()));
        }
        let rt = tokio::runtime::Runtime::new().unwrap();
        match rt.block_on(loop_server::Application::build(config)) {
            Ok(_) => panic!("a server started with a master key that opens nothing"),
            Err(e) => e.to_string(),
        }
    };
    assert!(refused.contains("does not open the keys"), "{refused}");

    // With the old key as a previous key it serves everything as before.
    let server = start(&data, database, &new_key, std::slice::from_ref(&old_file));
    let admin = admin_with_totp(&server, &secret, 3);
    assert_eq!(
        handed_kek(&server, &admin, &tenant, &vault).expose(),
        kek.expose()
    );
    let report = rewrap(&server);
    let by_column = |report: &[loop_server::rewrap::ColumnRewrapped], column: &str| {
        report
            .iter()
            .find(|c| c.column == column)
            .map(|c| (c.values, c.rewrapped, c.unreadable.len()))
            .unwrap()
    };
    // provider and acme
    assert_eq!(by_column(&report, "tenant_keys.wrapped"), (2, 2, 0));
    assert_eq!(by_column(&report, "users.totp_secret"), (1, 1, 0));
    assert_eq!(
        by_column(&report, "notify_targets.secret_wrapped"),
        (1, 1, 0)
    );
    assert_eq!(by_column(&report, "remotes.token_wrapped"), (1, 1, 0));
    assert_eq!(by_column(&report, "tenant_keys.next_wrapped"), (0, 0, 0));
    // A second run finds nothing left to do.
    assert!(rewrap(&server).iter().all(|c| c.rewrapped == 0));
    let database = server.stop();

    // Now the new key alone opens everything: vaults, TOTP secrets, webhook secrets,
    // remote tokens.
    let server = start(&data, database, &new_key, &[]);
    assert!(
        rewrap(&server)
            .iter()
            .all(|c| c.unreadable.is_empty() && c.rewrapped == 0)
    );
    let admin = admin_with_totp(&server, &secret, 6);
    assert_eq!(
        handed_kek(&server, &admin, &tenant, &vault).expose(),
        kek.expose()
    );
    admin
        .get(&format!("/api/v1/vaults/{vault}/snapshots"))
        .expect(200);
}

/// A fresh data directory, the master key the server made in it and its new SQLite database
/// are readable by their owner only, whatever the umask the server started under.
#[test]
fn the_data_directory_its_master_key_and_database_are_their_owners_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = Server::start();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&server.data_dir), 0o700);
    assert_eq!(mode(&server.data_dir.join("master.key")) & 0o077, 0);
    // (Under PostgreSQL there is no database file.)
    let database = server.data_dir.join("loop.db");
    if database.exists() {
        assert_eq!(mode(&database) & 0o077, 0);
    }
}
