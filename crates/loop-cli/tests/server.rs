//! The service end to end: an operator starts `loop server`, an administrator sets up a
//! customer, and a device backs up and restores through the server over HTTPS.

mod support;

use std::path::Path;

use support::cli::{assert_same_tree, build_full_tree};
use support::garage::Garage;
use support::server::*;
use support::story::*;

#[test]
fn a_device_backs_up_and_restores_through_the_server_and_every_step_is_audited() {
    let s = set_up(None, "local");
    s.backup_and_restore();

    let events = json(&mut s.admin("ana", &["audit", "list", "--tenant", &s.customer]));
    let actions: Vec<(String, String)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["details"]["operation"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for want in [
        ("tenant.create", ""),
        ("user.create", ""),
        ("role.grant", ""),
        ("auth.signin", ""),
        ("vault.create", ""),
        ("device.create", ""),
        ("token.create", ""),
        ("vault.open", "backup"),
        ("snapshot.create", ""),
        ("vault.open", "restore"),
    ] {
        assert!(
            actions.iter().any(|(a, op)| a == want.0 && op == want.1),
            "no {want:?} event in {actions:?}"
        );
    }
    // Every event of the customer is in the customer's own chain.
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant_id"] == s.customer.as_str())
    );

    // The provider admin verifies the whole log; an export verifies offline, and a
    // tampered export does not.
    ok(&mut s.admin("provider-admin", &["admin", "audit", "verify"]));
    // The chain's head, kept apart before the export: the export must reach it.
    let heads = s.dir.path().join("heads.json");
    let kept = ok(&mut s.admin("ana", &["admin", "audit", "heads", "--tenant", &s.customer]));
    assert!(kept.contains(&s.customer), "{kept}");
    std::fs::write(&heads, &kept).unwrap();
    let export = s.dir.path().join("audit.jsonl");
    ok(&mut s.admin(
        "ana",
        &[
            "audit",
            "export",
            "--tenant",
            &s.customer,
            "--output",
            export.to_str().unwrap(),
        ],
    ));
    ok(&mut s.admin(
        "ana",
        &[
            "admin",
            "audit",
            "verify",
            "--file",
            export.to_str().unwrap(),
            "--heads",
            heads.to_str().unwrap(),
        ],
    ));
    // It holds IP addresses and browsers: readable by its owner only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&export).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    let text = std::fs::read_to_string(&export).unwrap();
    let tampered = text.replacen("\"outcome\":\"success\"", "\"outcome\":\"failure\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(&export, tampered).unwrap();
    let err = fails(&mut s.admin(
        "ana",
        &[
            "admin",
            "audit",
            "verify",
            "--file",
            export.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("audit log broken"), "{err}");

    let csv = ok(&mut s.admin(
        "ana",
        &[
            "audit",
            "export",
            "--tenant",
            &s.customer,
            "--format",
            "csv",
        ],
    ));
    assert_eq!(csv.lines().count(), events.as_array().unwrap().len() + 1);
}

#[test]
fn a_revoked_token_and_a_wrong_fingerprint_are_refused() {
    let s = set_up(None, "local");
    let tokens = json(&mut s.admin("ana", &["token", "list", "--tenant", &s.customer]));
    let backup = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["permissions"][0] == "backup")
        .unwrap();
    ok(&mut s.admin("ana", &["token", "revoke", backup["id"].as_str().unwrap()]));
    let src = s.dir.path().join("f");
    std::fs::create_dir_all(&src).unwrap();
    let err = fails(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    assert!(err.contains("sign in or present a valid token"), "{err}");

    let mut c = s.device(&s.restore_token, &["snapshots"]);
    c.env("LOOP_SERVER_FINGERPRINT", "00".repeat(32));
    let err = fails(&mut c);
    assert!(err.contains("fingerprint"), "{err}");

    // Trusting the server's certificate file works as well as pinning its fingerprint; an
    // unrelated certificate file does not.
    let cert = s.server.data_dir.join("tls-cert.pem");
    let mut c = s.device(&s.restore_token, &["snapshots"]);
    c.env_remove("LOOP_SERVER_FINGERPRINT")
        .env("LOOP_CACERT", &cert);
    ok(&mut c);
    let other = tempfile::tempdir().unwrap();
    let stranger = Server::start(&other.path().join("server"), None);
    let mut c = s.device(&s.restore_token, &["snapshots"]);
    c.env_remove("LOOP_SERVER_FINGERPRINT")
        .env("LOOP_CACERT", stranger.data_dir.join("tls-cert.pem"));
    let err = fails(&mut c);
    assert!(
        err.contains("certificate") || err.contains("Certificate"),
        "{err}"
    );
}

#[test]
fn a_vault_on_a_garage_destination_works_through_the_server() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let write_config = |dir: &Path| garage.server_config(dir, false);
    let s = set_up(Some(&write_config), "garage-eu");
    let v = json(&mut s.admin("ana", &["vault", "show", &s.vault]));
    assert_eq!(v["destination"], "garage-eu");
    assert_eq!(v["jurisdiction"], "eu");
    s.backup_and_restore();
    // The data is in the bucket, not on the server's disk.
    assert!(!s.dir.path().join("local-vaults").join(&s.vault).exists());
    let v = json(&mut s.admin("ana", &["vault", "show", &s.vault]));
    assert!(v["used_bytes"].as_u64().unwrap() > 0);

    // Residency through the CLI: where the vault lives, and a narrowing that the next
    // placement in the EU bucket runs into.
    let at = json(&mut s.admin("ana", &["vault", "locations", &s.vault]));
    assert_eq!(at[0]["role"], "primary");
    assert_eq!(at[0]["jurisdiction"], "eu");
    assert_eq!(at[0]["allowed"], true);
    let set = json(&mut s.admin(
        "ana",
        &["tenant", "residency", &s.customer, "--allow", "nl,de"],
    ));
    assert_eq!(set["effective"], serde_json::json!(["de", "nl"]));
    let err = fails(&mut s.admin(
        "ana",
        &["tenant", "residency", &s.customer, "--allow", "eu"],
    ));
    assert!(err.contains("only be narrowed"), "{err}");
    let err = fails(&mut s.admin(
        "ana",
        &[
            "vault",
            "create",
            "--tenant",
            &s.customer,
            "--name",
            "second",
            "--destination",
            "garage-eu",
        ],
    ));
    assert!(err.contains("jurisdiction eu"), "{err}");
    let report = json(&mut s.admin("ana", &["tenant", "residency-report", &s.customer]));
    assert_eq!(report["outside"], 1, "{report}");

    // A retention lock through the CLI: set, never shortened.
    let v = json(&mut s.admin("ana", &["vault", "lock", &s.vault, "--days", "7"]));
    assert_eq!(v["retention_lock_days"], 7);
    let err = fails(&mut s.admin("ana", &["vault", "lock", &s.vault, "--days", "3"]));
    assert!(err.contains("never shortened"), "{err}");
    let err = fails(&mut s.admin("ana", &["vault", "delete", &s.vault]));
    assert!(err.contains("retention lock"), "{err}");
}

#[test]
fn a_customer_key_vault_is_opaque_to_the_server() {
    let s = set_up(None, "local");
    let (vault, manage) = s.customer_key_vault("secret");
    let device = |args: &[&str]| s.customer_cli(&vault, &manage, args);
    let src = s.dir.path().join("secret-files");
    build_full_tree(&src);
    ok(&mut device(&["backup", "--init", src.to_str().unwrap()]));
    let err = fails(&mut device(&["init"]));
    assert!(err.contains("already exists"), "{err}");

    // The server cannot read it, and without the passphrase neither can the token holder.
    let err = fails(&mut s.admin("ana", &["vault", "snapshots", &vault]));
    assert!(err.contains("customer_key"), "{err}");
    let err = fails(device(&["snapshots"]).env("LOOP_PASSWORD", "wrong"));
    assert!(err.contains("wrong passphrase"), "{err}");

    let target = s.dir.path().join("secret-restored");
    ok(&mut device(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]));
    assert_same_tree(&src, &target.join(src.file_name().unwrap()));
    // The client remembers the vault as one it opened with a passphrase, once.
    let known = s.dir.path().join("customer/known-vaults");
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        format!("{vault}\n")
    );
    // A server that offers its own key for such a vault (here: the managed vault's ID
    // written in as if this client had opened it with a passphrase) is refused before
    // anything is written: taking the key would back up under a key the server holds.
    std::fs::write(&known, format!("{vault}\n{}\n", s.vault)).unwrap();
    let snapshots = || s.object_names(&s.vault, "snapshots", &s.restore_token);
    let before = snapshots();
    for (token, args) in [
        (
            &s.backup_token,
            &["backup", "--init", src.to_str().unwrap()][..],
        ),
        (&s.backup_token, &["backup", src.to_str().unwrap()]),
        (&s.restore_token, &["snapshots"]),
    ] {
        let err = fails(&mut s.customer_cli(&s.vault, token, args));
        assert!(err.contains("offers its own key for vault"), "{err}");
    }
    assert_eq!(snapshots(), before);
    // On a managed vault --init has nothing to do, and a backup-only token may use it.
    ok(&mut s.device(
        &s.backup_token,
        &["backup", "--init", src.to_str().unwrap()],
    ));

    // Manage may prune through the server.
    ok(&mut device(&["forget", "--keep-last", "1", "--prune"]));
    ok(&mut device(&["check", "--read-data"]));

    // A vault made by `loop init` is remembered at once: a server offering its own key at
    // the first open after is refused too.
    let (fresh, fresh_manage) = s.customer_key_vault("fresh");
    ok(&mut s.customer_cli(&fresh, &fresh_manage, &["init"]));
    let remembered = std::fs::read_to_string(&known).unwrap();
    assert!(remembered.lines().any(|l| l == fresh), "{remembered}");
}

#[test]
fn a_server_killed_during_a_backup_loses_nothing_and_the_next_backup_completes() {
    let mut s = set_up(None, "local");
    let src = s.dir.path().join("big");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..5 {
        std::fs::write(src.join(format!("f{i}")), support::cli::noise(8 << 20, i)).unwrap();
    }
    let mut backup = s
        .device(&s.backup_token, &["backup", src.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first pack has landed, then pull the plug on the server.
    let packs = s.server.data_dir.join("vaults").join(&s.vault).join("data");
    let landed = || {
        std::fs::read_dir(&packs)
            .map(|fan| {
                fan.flatten()
                    .map(|d| support::cli::count_files(&d.path()))
                    .sum::<usize>()
            })
            .unwrap_or(0)
    };
    while landed() == 0 {
        assert!(
            backup.try_wait().unwrap().is_none(),
            "the backup ended before any pack landed"
        );
        std::thread::yield_now();
    }
    s.server.kill();
    let status = backup.wait().unwrap();
    assert!(!status.success(), "a backup whose server died must fail");

    // Same data directory and database, new process: the vault is intact and the backup
    // completes.
    s.server.restart(None);
    let summary = json(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    assert!(summary["snapshot_id"].is_string(), "{summary}");
    ok(&mut s.device(&s.restore_token, &["check", "--read-data"]));
    let target = s.dir.path().join("after-crash");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join("big"));
}

/// Regression: a backup refused for quota left its stored packs unindexed, so they counted
/// against the quota for the whole grace period and the next, smaller backup failed too.
#[test]
fn a_backup_refused_for_quota_holds_no_space_once_pruned() {
    let s = set_up(None, "local");
    let vault = id(&json(&mut s.admin(
        "ana",
        &[
            "vault",
            "create",
            "--tenant",
            &s.customer,
            "--name",
            "small",
            "--destination",
            "local",
            "--quota",
            "26000000",
        ],
    )));
    let token = json(&mut s.admin(
        "ana",
        &[
            "token",
            "create",
            "--tenant",
            &s.customer,
            "--kind",
            "api",
            "--name",
            "small",
            "--vault",
            &vault,
            "--permission",
            "backup",
            "--permission",
            "manage",
        ],
    ))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let used = || {
        json(&mut s.admin("ana", &["vault", "show", &vault]))["used_bytes"]
            .as_u64()
            .unwrap()
    };
    let device = |args: &[&str]| {
        let mut c = s.server.cli(&s.dir.path().join("device"));
        c.env(
            "LOOP_REPOSITORY",
            format!("{}/vaults/{vault}", s.server.url),
        )
        .env("LOOP_TOKEN", &token)
        .args(args);
        c
    };
    let base = used();
    let big = s.dir.path().join("big");
    support::cli::write(&big.join("a.bin"), &support::cli::noise(40 << 20, 1));
    let err = fails(&mut device(&["backup", big.to_str().unwrap()]));
    assert!(err.contains("quota"), "{err}");
    assert!(
        used() > base,
        "part of the backup was stored before the refusal"
    );

    // A prune frees it at once (the partial upload is indexed, used by no snapshot).
    ok(&mut device(&["prune"]));
    assert_eq!(
        used(),
        base + index_bytes(&s, &vault),
        "only index files remain"
    );
    let small = s.dir.path().join("small");
    support::cli::write(&small.join("b.bin"), &support::cli::noise(10 << 20, 2));
    ok(&mut device(&["backup", small.to_str().unwrap()]));
}

/// Bytes of the vault's index files at its local destination.
fn index_bytes(s: &Story, vault: &str) -> u64 {
    let dir = s.server.data_dir.join("vaults").join(vault).join("index");
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.metadata().unwrap().len()).sum())
        .unwrap_or(0)
}

/// `loop device list` reads every page: 1,050 devices are more than one page of the
/// largest size (1,000), and all of them are listed, each once.
#[test]
fn a_listing_longer_than_a_page_is_listed_whole() {
    let s = set_up(None, "local");
    let pem = std::fs::read(s.server.data_dir.join("tls-cert.pem")).unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let login: serde_json::Value = client
        .post(format!("{}/api/v1/auth/login", s.server.url))
        .json(&serde_json::json!({ "email": "admin@localhost", "password": ADMIN_PASSWORD }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let secret = login["session_token"].as_str().unwrap();
    for n in 0..1049 {
        let r = client
            .post(format!("{}/api/v1/devices", s.server.url))
            .bearer_auth(secret)
            .json(&serde_json::json!({ "tenant_id": s.customer, "name": format!("pc-{n:04}") }))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let listed = json(&mut s.admin("ana", &["device", "list", "--tenant", &s.customer]));
    let names: std::collections::BTreeSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    // The story's own device and the 1,049 made here.
    assert_eq!(listed.as_array().unwrap().len(), 1050);
    assert_eq!(names.len(), 1050, "each once");
    assert!(names.contains("laptop-01") && names.contains("pc-1048"));
}

/// The certificate a new connection to `url` is shown (DER).
fn presented_certificate(url: &str) -> Vec<u8> {
    let client = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .build()
        .unwrap();
    let resp = client.get(format!("{url}/healthz")).send().unwrap();
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("a TLS peer certificate")
        .to_vec()
}

/// A renewed certificate is put in place of the files and the server is sent SIGHUP: new
/// connections are shown the new one, with no restart. A pair that does not load changes
/// nothing, and the log says so.
#[test]
fn sighup_serves_a_renewed_certificate_and_a_broken_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = Server::start_logging(&dir.path().join("server"), None, Some(&log));
    let first = presented_certificate(&server.url);

    let key = rcgen::KeyPair::generate().unwrap();
    let renewed = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_file = server.data_dir.join("tls-cert.pem");
    let key_file = server.data_dir.join("tls-key.pem");
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::write(&cert_file, renewed.pem()).unwrap();
    let hang_up = || {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(server.pid() as i32).unwrap(),
            rustix::process::Signal::HUP,
        )
        .unwrap()
    };
    hang_up();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while presented_certificate(&server.url) != renewed.der().to_vec() {
        assert!(
            std::time::Instant::now() < deadline,
            "still the old certificate"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_ne!(first, renewed.der().to_vec());

    // The key of another certificate: refused, and the renewed one is still served.
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(&key_file, other.serialize_pem()).unwrap();
    hang_up();
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("the TLS certificate was not reloaded")
    {
        assert!(std::time::Instant::now() < deadline, "no refusal logged");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(presented_certificate(&server.url), renewed.der().to_vec());
}
