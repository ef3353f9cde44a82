//! The maintainer of a customer-key vault: the device whose agent holds the passphrase runs
//! the vault's retention and verify, against a real `loop server` whose clock the test
//! moves, and the server holds it to the policy's limits. It cannot delete a snapshot the
//! server stored less than `min_snapshot_age_days` ago, nor a pack, index file or plan
//! before `deletion_grace_hours` have passed since it announced the deletion; a retention
//! removes old snapshots at once and prunes at the first run after the grace, leaving a
//! vault that checks clean at every step; taking the maintainer away drops what it
//! announced and its permission.

mod support;

use std::path::Path;

use loop_testkit::data::noise;
use reqwest::Method;
use support::agents::*;
use support::cli::write;
use support::server::*;
use support::story::*;

fn token_of_agent(state: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("agent.json")).unwrap()).unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// The last job of `kind` on the vault.
fn last_job(s: &Story, kind: &str) -> serde_json::Value {
    let jobs = json(&mut s.admin("ana", &["job", "list", "--kind", kind]));
    jobs.as_array().unwrap()[0].clone()
}

#[test]
fn a_maintainer_agent_prunes_a_customer_key_vault_within_the_servers_limits() {
    let s = set_up(Some(&test_clock_config), "local");
    let (vault, manage) = s.customer_key_vault("secret");
    let customer = |args: &[&str]| s.customer_cli(&vault, &manage, args);
    // Three snapshots: two large ones of their own data, then a small one. Keeping the
    // last one leaves most of the vault to prune.
    let src = s.dir.path().join("data");
    for (n, size) in [(1usize, 3_000_000usize), (2, 3_000_000), (3, 10_000)] {
        let _ = std::fs::remove_dir_all(&src);
        write(&src.join(format!("f{n}")), &noise(size, n as u64));
        let init: &[&str] = if n == 1 { &["--init"] } else { &[] };
        let mut args = vec!["backup"];
        args.extend_from_slice(init);
        args.push(src.to_str().unwrap());
        ok(&mut customer(&args));
    }
    let snapshots = s.object_names(&vault, "snapshots", &manage);
    assert_eq!(snapshots.len(), 3);
    ok(&mut s.admin(
        "ana",
        &[
            "policy",
            "create",
            "--tenant",
            &s.customer,
            "--vault",
            &vault,
            "--keep-last",
            "1",
        ],
    ));

    // Without a maintainer nobody can run the vault's jobs.
    let err = fails(&mut s.admin("ana", &["vault", "retention", &vault]));
    assert!(err.contains("customer_key"), "{err}");

    let state = s.dir.path().join("agent-state");
    let device = enrol_agent(&s, &state);
    let v = json(&mut s.admin("ana", &["vault", "maintainer", &vault, "--device", &device]));
    assert_eq!(v["maintainer_device_id"], device.as_str());
    let agent_token = token_of_agent(&state);
    let run_agent = || {
        ok(agent_cmd(&s, &state, &["agent", "run", "--once"])
            .env("LOOP_PASSWORD", "customer passphrase"))
    };
    let delete = |kind: &str, name: &str| {
        s.server.vault_request(
            Method::DELETE,
            &format!("/vaults/{vault}/v1/{kind}/{name}"),
            &agent_token,
            None,
        )
    };
    let packs = || s.object_names(&vault, "data", &manage);
    let check = || {
        let out = ok(&mut customer(&["check", "--read-data"]));
        assert!(out.contains("no errors"), "{out}");
    };

    // The maintainer's own token, used by hand, is held to the limits.
    assert_eq!(delete("snapshots", &snapshots[0]).1, "snapshot_too_young");
    let pack = packs()[0].clone();
    assert_eq!(delete("data", &pack).1, "deletion_not_announced");
    assert_eq!(
        delete("keys", &s.object_names(&vault, "keys", &manage)[0]).0,
        403
    );
    assert_eq!(delete("config", "config").0, 403);

    // A retention today removes nothing: the server stored every snapshot just now.
    ok(&mut s.admin("ana", &["vault", "retention", &vault]));
    run_agent();
    let job = last_job(&s, "retention");
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["summary"]["snapshots_removed"], 0);
    assert_eq!(job["summary"]["snapshots_too_young"], 2);
    assert_eq!(s.object_names(&vault, "snapshots", &manage).len(), 3);

    // Eight days on: the two old snapshots go; their data is announced, not deleted.
    s.advance_clock(8 * 86_400);
    let packs_before = packs();
    ok(&mut s.admin("ana", &["vault", "retention", &vault]));
    run_agent();
    let job = last_job(&s, "retention");
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["summary"]["snapshots_removed"], 2, "{job}");
    assert_eq!(job["summary"]["packs_deleted"], 0, "{job}");
    assert!(
        job["summary"]["deletions_announced"].as_u64().unwrap() > 0,
        "{job}"
    );
    assert_eq!(s.object_names(&vault, "snapshots", &manage).len(), 1);
    for p in &packs_before {
        assert!(packs().contains(p), "pack {p} was deleted before its grace");
    }
    check();
    let (status, body) = s.server.vault_request(
        Method::GET,
        &format!("/vaults/{vault}/v1/deletions"),
        &agent_token,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let plan: serde_json::Value = serde_json::from_str(&body).unwrap();
    let announced: Vec<&serde_json::Value> = plan["objects"].as_array().unwrap().iter().collect();
    assert!(announced.iter().all(|o| o["released"] == false));
    let announced_pack = announced
        .iter()
        .find(|o| o["kind"] == "data")
        .expect("a pack is announced")["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(delete("data", &announced_pack).1, "deletion_not_released");
    // Most of the vault is announced: the tenant hears of it.
    let events = json(&mut s.admin("ana", &["notify", "events"]));
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "vault-mass-deletion"),
        "{events}"
    );
    // A backup-only token reads no plan.
    let (status, _) = s.server.vault_request(
        Method::GET,
        &format!("/vaults/{vault}/v1/deletions"),
        &s.backup_token,
        None,
    );
    assert_eq!(status, 404, "the story's tokens are for another vault");
    // A backup token of this vault can neither read the plan nor announce anything, nor
    // delete what the maintainer announced.
    let backup = json(&mut s.admin(
        "ana",
        &[
            "token",
            "create",
            "--tenant",
            &s.customer,
            "--name",
            "b",
            "--kind",
            "api",
            "--vault",
            &vault,
            "--permission",
            "backup",
        ],
    ))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let deletions = format!("/vaults/{vault}/v1/deletions");
    let (status, code) = s
        .server
        .vault_request(Method::GET, &deletions, &backup, None);
    assert_eq!((status, code.as_str()), (403, "permission_denied"));
    let announce = serde_json::json!({ "objects": [{ "kind": "data", "name": &announced_pack }] });
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(
            &std::fs::read(s.server.data_dir.join("tls-cert.pem")).unwrap(),
        )
        .unwrap()])
        .build()
        .unwrap();
    let r = client
        .post(format!("{}{deletions}", s.server.url))
        .bearer_auth(&backup)
        .json(&announce)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (status, _) = s.server.vault_request(
        Method::DELETE,
        &format!("/vaults/{vault}/v1/data/{announced_pack}"),
        &backup,
        None,
    );
    assert_eq!(status, 403);

    // A day and an hour on: the next run carries out what it announced.
    s.advance_clock(25 * 3600);
    ok(&mut s.admin("ana", &["vault", "retention", &vault]));
    run_agent();
    let job = last_job(&s, "retention");
    assert_eq!(job["state"], "succeeded", "{job}");
    assert!(
        job["summary"]["packs_deleted"].as_u64().unwrap() > 0,
        "{job}"
    );
    assert!(!packs().contains(&announced_pack));
    assert!(packs().len() < packs_before.len());
    // The deletion sent again (as a retry after a lost answer does) finds nothing to delete:
    // 204, as for any token, not a refusal for want of an announcement.
    assert_eq!(delete("data", &announced_pack).0, 204);
    check();
    let restored = s.dir.path().join("restored");
    ok(&mut customer(&[
        "restore",
        "latest",
        "--target",
        restored.to_str().unwrap(),
    ]));

    // The maintainer verifies the vault, reading every pack.
    ok(&mut s.admin(
        "ana",
        &["vault", "verify", &vault, "--read-data-percent", "100"],
    ));
    run_agent();
    let job = last_job(&s, "verify");
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["summary"]["packs_read"], job["summary"]["packs"],
        "{job}"
    );

    // Taken away, the maintainer has nothing announced, no job waiting for it and no
    // permission left.
    ok(&mut s.admin("ana", &["vault", "retention", &vault]));
    let waiting = last_job(&s, "retention");
    assert_eq!(waiting["state"], "queued");
    let v = json(&mut s.admin("ana", &["vault", "maintainer", &vault, "--none"]));
    assert_eq!(v["maintainer_device_id"], serde_json::Value::Null);
    let job = json(&mut s.admin("ana", &["job", "show", waiting["id"].as_str().unwrap()]));
    assert_eq!(job["state"], "cancelled", "{job}");
    let (_, body) = s.server.vault_request(
        Method::GET,
        &format!("/vaults/{vault}/v1/deletions"),
        &manage,
        None,
    );
    let plan: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(plan["objects"], serde_json::json!([]), "{plan}");
    let last = s.object_names(&vault, "snapshots", &manage)[0].clone();
    assert_eq!(delete("snapshots", &last).1, "permission_denied");
    let audit = ok(&mut s.admin("ana", &["audit", "list"]));
    for action in ["vault.maintainer", "vault.deletions-announce"] {
        assert!(audit.contains(action), "{action} is audited");
    }
}

/// A prune that frees a large vault holds back more deletions than one request may name
/// (`loop_api::MAX_ANNOUNCED`); the client announces them in several, and the server takes
/// a full one whatever its JSON limit.
#[test]
fn more_deletions_than_one_request_names_are_all_announced() {
    let s = set_up(None, "local");
    let (vault, manage) = s.customer_key_vault("secret");
    let src = s.dir.path().join("data");
    write(&src.join("f"), &noise(100_000, 1));
    ok(&mut s.customer_cli(
        &vault,
        &manage,
        &["backup", "--init", src.to_str().unwrap()],
    ));
    let packs = s.object_names(&vault, "data", &manage);
    assert!(!packs.is_empty());
    // Names of packs that are not stored (the server records only stored ones), with the
    // real packs last, in the third request.
    let mut objects: Vec<(loop_repo::FileKind, String)> = (0..2 * loop_api::MAX_ANNOUNCED)
        .map(|n| (loop_repo::FileKind::Pack, format!("{:064x}", n + 1)))
        .collect();
    objects.extend(packs.iter().map(|p| (loop_repo::FileKind::Pack, p.clone())));
    let conn = loop_agent::Connection::new(
        &s.server.url,
        &loop_agent::Trust::Fingerprint(s.server.fingerprint.clone()),
    )
    .unwrap();
    let plan = loop_agent::VaultStorage::new(conn, &vault, &manage)
        .announce_deletions(&objects)
        .expect("every batch is taken");
    let mut announced: Vec<String> = plan.objects.into_iter().map(|o| o.name).collect();
    announced.sort();
    let mut expected = packs.clone();
    expected.sort();
    assert_eq!(announced, expected);
}
