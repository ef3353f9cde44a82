//! Replicas of a vault against a real `loop server`: they follow backups and prunes, stay
//! inside the tenant's residency, are verified (a flipped byte is found, raises an event and
//! is repaired), survive the loss of the primary (restore and check read the replica, which
//! is then promoted and the old place seeded again), and a replication killed halfway
//! resumes and converges.

mod support;

use std::path::{Path, PathBuf};

use support::cli::{assert_same_tree, build_full_tree, noise, object_files as files, write};
use support::garage::Garage;
use support::server::*;
use support::story::*;

/// Three local destinations: Amsterdam (nl), Frankfurt (de), New York (us).
fn three_regions(extra: &'static str) -> impl Fn(&Path) -> PathBuf {
    move |d: &Path| {
        let mut cfg = String::from(extra);
        for (name, j) in [("ams", "nl"), ("fra", "de"), ("nyc", "us")] {
            cfg += &format!(
                "\n[[destinations]]\nname = \"{name}\"\njurisdiction = \"{j}\"\nbackend = \"local\"\npath = \"{}\"\n",
                d.join(name).display()
            );
        }
        let p = d.join("server.toml");
        std::fs::write(&p, cfg).unwrap();
        p
    }
}

/// Replicates `vault` now (or joins the replication already open) and waits for its end.
fn replicate(s: &Story, vault: &str) -> serde_json::Value {
    let job = json(&mut s.admin("ana", &["vault", "replicate", vault]));
    let job = s.job_ended(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded", "{job:#}");
    job
}

fn replicas(s: &Story, vault: &str) -> Vec<serde_json::Value> {
    json(&mut s.admin("ana", &["vault", "replica", "list", vault]))
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn replicas_follow_backups_and_prunes_stay_in_the_tenants_residency_and_are_repaired() {
    let s = set_up(Some(&three_regions("")), "ams");
    let provider = |args: &[&str]| json(&mut s.admin("provider-admin", args));
    provider(&["tenant", "residency", &s.customer, "--allow", "eu"]);

    // A replica in the US is refused (and audited); one in Germany is taken.
    let err = fails(&mut s.admin(
        "ana",
        &["vault", "replica", "add", &s.vault, "--destination", "nyc"],
    ));
    assert!(err.contains("residency"), "{err}");
    let r = json(&mut s.admin(
        "ana",
        &["vault", "replica", "add", &s.vault, "--destination", "fra"],
    ));
    assert_eq!(r["jurisdiction"], "de");
    let replica = r["id"].as_str().unwrap().to_string();
    let err = fails(&mut s.admin(
        "ana",
        &["vault", "replica", "add", &s.vault, "--destination", "ams"],
    ));
    assert!(err.contains("exists"), "{err}");

    // Two backups; the replica follows.
    let src = s.dir.path().join("files");
    build_full_tree(&src);
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    write(&src.join("new.bin"), &noise(3 << 20, 9));
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    replicate(&s, &s.vault);
    let primary = s.dir.path().join("ams").join(&s.vault);
    let copy = s.dir.path().join("fra").join(&s.vault);
    assert_eq!(files(&copy), files(&primary));
    let r = &replicas(&s, &s.vault)[0];
    assert_eq!(r["state"], "active", "{r}");
    assert_eq!(r["objects_behind"], 0, "{r}");
    let places = json(&mut s.admin("ana", &["vault", "locations", &s.vault]));
    let places: Vec<(String, String, bool)> = places
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["role"].as_str().unwrap().into(),
                l["destination"].as_str().unwrap().into(),
                l["allowed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        places,
        vec![
            ("primary".into(), "ams".into(), true),
            ("replica".into(), "fra".into(), true)
        ]
    );

    // A flipped byte in a replica pack: sizes still match; reading finds it.
    let pack = files(&copy)
        .into_keys()
        .find(|p| p.starts_with("data/"))
        .unwrap();
    let mut bytes = std::fs::read(copy.join(&pack)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(copy.join(&pack), &bytes).unwrap();
    let verify = |read_data: bool| {
        let mut args = vec!["vault", "replica", "verify", &s.vault, &replica];
        if read_data {
            args.push("--read-data");
        }
        let job = json(&mut s.admin("ana", &args));
        s.job_ended(job["id"].as_str().unwrap())
    };
    assert_eq!(verify(false)["state"], "succeeded");
    let found = verify(true);
    assert_eq!(found["state"], "failed", "{found:#}");
    assert!(
        found["error"].as_str().unwrap().contains("altered"),
        "{found:#}"
    );
    let events = json(&mut s.admin("ana", &["notify", "events", "--kind", "replica-damaged"]));
    assert_eq!(events.as_array().unwrap().len(), 1, "{events:#}");
    assert_eq!(events[0]["subject_id"], s.vault.as_str());

    // The repair it queued copies the pack again; the replica verifies whole.
    replicate(&s, &s.vault);
    assert_eq!(replicas(&s, &s.vault)[0]["state"], "active");
    assert_eq!(files(&copy), files(&primary));
    assert_eq!(verify(true)["state"], "succeeded");

    // Forget and prune on the primary: the replica follows, nothing extra stays.
    let manage = s.token("manage", "manage");
    ok(&mut s.device(&manage, &["forget", "--keep-last", "1"]));
    ok(&mut s.device(&manage, &["prune", "--max-unused", "0", "--grace", "0s"]));
    let pruned = files(&primary);
    replicate(&s, &s.vault);
    assert_eq!(files(&copy), pruned);

    // An object deleted at the primary does not come back from the replica that still
    // holds it (no replication ran since): reads fall back only for what the records hold.
    let gone = files(&primary)
        .into_keys()
        .find(|p| p.starts_with("data/"))
        .unwrap();
    let gone_name = gone.rsplit('/').next().unwrap().to_string();
    let pack_path = format!("/vaults/{}/v1/data/{gone_name}", s.vault);
    let (status, _) = s
        .server
        .vault_request(reqwest::Method::DELETE, &pack_path, &manage, None);
    assert_eq!(status, 204);
    assert!(copy.join(&gone).exists(), "the replica still holds it");
    let (status, body) =
        s.server
            .vault_request(reqwest::Method::GET, &pack_path, &s.restore_token, None);
    assert_eq!(status, 404, "{body}");
    replicate(&s, &s.vault);
    assert!(!copy.join(&gone).exists());

    // Nothing of this EU-only tenant ever reached the US destination.
    let us = files(&s.dir.path().join("nyc"));
    assert!(us.is_empty(), "objects in the US: {us:?}");

    // Removing the replica erases its copy.
    let job = json(&mut s.admin("ana", &["vault", "replica", "remove", &s.vault, &replica]));
    assert_eq!(
        s.job_ended(job["id"].as_str().unwrap())["state"],
        "succeeded"
    );
    assert!(files(&copy).is_empty());
    assert!(replicas(&s, &s.vault).is_empty());
}

#[test]
fn a_vault_whose_primary_is_lost_is_read_from_its_garage_replica_then_promoted_and_reseeded() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let write_config = |dir: &Path| garage.server_config(dir, false);
    let s = set_up(Some(&write_config), "local");
    json(&mut s.admin(
        "ana",
        &[
            "vault",
            "replica",
            "add",
            &s.vault,
            "--destination",
            "garage-eu",
        ],
    ));
    let src = s.dir.path().join("files");
    build_full_tree(&src);
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    replicate(&s, &s.vault);

    // The primary's directory is gone. A replication does not mirror the loss: the vault's
    // records still hold those objects, so the replica keeps them, and the job warns.
    let primary = s.dir.path().join("local-vaults").join(&s.vault);
    std::fs::remove_dir_all(&primary).unwrap();
    let job = json(&mut s.admin("ana", &["vault", "replicate", &s.vault]));
    let job = s.job_ended(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded-with-warnings", "{job:#}");
    let report = &job["summary"]["replicas"][0]["report"];
    assert!(report["primary_missing"].as_u64().unwrap() > 0, "{job:#}");
    assert_eq!(report["objects_removed"], 0, "{job:#}");
    // Restore and check read the replica.
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join(src.file_name().unwrap()));
    let checked = ok(&mut s.device(&s.restore_token, &["check", "--read-data"]));
    assert!(checked.contains("no errors"), "{checked}");

    // Promoted, the replica is the primary: backups go there; the old place is seeded again.
    let replica = replicas(&s, &s.vault)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = json(&mut s.admin("ana", &["vault", "replica", "promote", &s.vault, &replica]));
    assert_eq!(v["destination"], "garage-eu");
    write(&src.join("after.bin"), &noise(1 << 20, 4));
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    replicate(&s, &s.vault);
    let r = &replicas(&s, &s.vault)[0];
    assert_eq!(r["destination"], "local");
    assert_eq!(r["state"], "active", "{r}");
    let snapshots = files(&primary)
        .into_keys()
        .filter(|p| p.starts_with("snapshots/"))
        .count();
    assert_eq!(snapshots, 2, "the old primary holds both snapshots again");
    let job = json(&mut s.admin(
        "ana",
        &[
            "vault",
            "replica",
            "verify",
            &s.vault,
            &replica,
            "--read-data",
        ],
    ));
    let job = s.job_ended(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded", "{job:#}");
}

#[test]
fn a_replication_killed_halfway_leaves_a_replica_that_checks_and_resumes_to_converge() {
    let config = three_regions("[replication]\ntransfers = 1\n[jobs]\nlease_seconds = 2\n");
    let mut s = set_up(Some(&config), "ams");
    let (vault, manage) = s.customer_key_vault_at("big", Some("ams"));
    // Many packs of data of their own.
    let src = s.dir.path().join("big");
    for n in 0..6u64 {
        write(&src.join(format!("f{n}")), &noise(14 << 20, n + 100));
    }
    ok(&mut s.customer_cli(
        &vault,
        &manage,
        &["backup", "--init", src.to_str().unwrap()],
    ));
    json(&mut s.admin(
        "ana",
        &["vault", "replica", "add", &vault, "--destination", "fra"],
    ));
    let primary = s.dir.path().join("ams").join(&vault);
    let copy = s.dir.path().join("fra").join(&vault);
    let packs = |dir: &Path| {
        files(dir)
            .into_keys()
            .filter(|p| p.starts_with("data/"))
            .count()
    };
    let total = packs(&primary);
    assert!(total > 4, "{total} packs");
    // Killed once the replica holds some packs.
    let mut waited = 0;
    while packs(&copy) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(2));
        waited += 1;
        assert!(waited < 30_000, "the replication never started");
    }
    s.server.kill();
    let partial = packs(&copy);
    assert!(partial < total, "killed after {partial} of {total} packs");

    // What it left is a repository that checks (no snapshot yet names what it lacks).
    let check_copy = |s: &Story| {
        let mut c = s.server.cli(&s.dir.path().join("copy-check"));
        c.env("LOOP_REPOSITORY", copy.to_str().unwrap())
            .env("LOOP_PASSWORD", "customer passphrase")
            .args(["check", "--read-data"]);
        ok(&mut c)
    };
    let checked = check_copy(&s);
    assert!(checked.contains("no errors"), "{checked}");

    // Restarted, the job is taken over once its lease lapses, and the replica converges.
    s.server.restart(Some(&s.dir.path().join("server.toml")));
    replicate(&s, &vault);
    assert_eq!(files(&copy), files(&primary));
    let checked = check_copy(&s);
    assert!(checked.contains("no errors"), "{checked}");
    assert!(checked.contains("1 snapshots"), "{checked}");
}
