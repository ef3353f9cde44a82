//! Server-to-server sync between two real `loop server`s: a push copies a vault to the other
//! server's vault (which restores and checks there with the customer's passphrase, while
//! that server holds no key and no plaintext), only into a jurisdiction the tenant allows;
//! a later push copies only what is new and removes what vanished; a pull brings the copy
//! back into a vault of the first server; a revoked token stops the sync.

mod support;

use std::path::{Path, PathBuf};

use support::cli::{assert_same_tree, build_full_tree, noise, object_files, write};
use support::server::*;
use support::story::*;

/// Destinations of the given (name, jurisdiction), local under the test's directory; remotes
/// may be at loopback addresses.
fn regions(places: &'static [(&'static str, &'static str)]) -> impl Fn(&Path) -> PathBuf {
    move |d: &Path| {
        // Both servers of a test are on loopback.
        let mut cfg = String::from("[replication]\nallow_private_remotes = true\n");
        for (name, j) in places {
            cfg += &format!(
                "[[destinations]]\nname = \"{name}\"\njurisdiction = \"{j}\"\nbackend = \"local\"\npath = \"{}\"\n",
                d.join(name).display()
            );
        }
        let p = d.join("server.toml");
        std::fs::write(&p, cfg).unwrap();
        p
    }
}

/// A's customer admin adds B as the remote `site-b`, with B's replication token `token`
/// (given through the environment, as a person would); the remote's ID.
fn add_remote(a: &Story, b: &Story, token: &str) -> String {
    add_remote_at(a, b, token, "site-b", &b.server.url)
}

/// [`add_remote`] named `name`, reaching B at `url` (B's certificate pinned all the same).
fn add_remote_at(a: &Story, b: &Story, token: &str, name: &str, url: &str) -> String {
    let args = [
        "remote",
        "add",
        "--tenant",
        &a.customer,
        "--name",
        name,
        "--url",
        url,
        "--fingerprint",
        &b.server.fingerprint,
    ];
    id(&json(a.admin("ana", &args).env("LOOP_REMOTE_TOKEN", token)))
}

/// Every regular file under `dir` but those under `skip`, read whole.
fn all_bytes(dir: &Path, skip: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let (p, t) = (e.path(), e.file_type().unwrap());
            if p.starts_with(skip) {
                continue;
            }
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// Whether `hay` holds the ASCII text `needle` (std's optimized search, through a lossy
/// view: ASCII bytes stay as they are).
fn contains(hay: &[u8], needle: &str) -> bool {
    String::from_utf8_lossy(hay).contains(needle)
}

#[test]
fn sync_pushes_to_an_allowed_jurisdiction_pulls_back_and_stops_when_the_token_is_revoked() {
    // Site A: the customer's own server, in the Netherlands. Site B: another provider's
    // server with a vault in the Netherlands and one in the US.
    let a = set_up(Some(&regions(&[("ams", "nl")])), "ams");
    let b = set_up(Some(&regions(&[("b-nl", "nl"), ("b-us", "us")])), "b-nl");
    json(&mut a.admin(
        "provider-admin",
        &["tenant", "residency", &a.customer, "--allow", "eu"],
    ));
    let at_b = |args: &[&str]| json(&mut b.admin("ana", args));
    let at_a = |args: &[&str]| json(&mut a.admin("ana", args));

    // B's admin makes two empty customer-key vaults and a replication token naming them.
    let receiver = |name: &str, dest: &str| {
        id(&at_b(&[
            "vault",
            "create",
            "--tenant",
            &b.customer,
            "--name",
            name,
            "--destination",
            dest,
            "--customer-key",
        ]))
    };
    let (in_nl, in_us) = (receiver("from-a", "b-nl"), receiver("from-a-us", "b-us"));
    let token = at_b(&[
        "token",
        "create",
        "--tenant",
        &b.customer,
        "--name",
        "site-a",
        "--kind",
        "api",
        "--vault",
        &in_nl,
        "--vault",
        &in_us,
        "--permission",
        "replicate",
    ]);
    let (token_id, token_secret) = (
        token["token"]["id"].as_str().unwrap().to_string(),
        token["secret"].as_str().unwrap().to_string(),
    );

    // A's customer backs up into a customer-key vault of its own, and adds B as a remote.
    let (vault, manage) = a.customer_key_vault_at("own", Some("ams"));
    let src = a.dir.path().join("files");
    build_full_tree(&src);
    let marker = "a plaintext line no server may ever store: 7f3a9c1e";
    write(&src.join("marker.txt"), marker.as_bytes());
    ok(&mut a.customer_cli(
        &vault,
        &manage,
        &["backup", "--init", src.to_str().unwrap()],
    ));
    let remote = add_remote(&a, &b, &token_secret);
    let push = |remote_vault: &str, extra: &[&str]| {
        let mut args = vec![
            "sync",
            "add",
            "push",
            "--vault",
            &vault,
            "--remote",
            &remote,
            "--remote-vault",
            remote_vault,
        ];
        args.extend(extra);
        a.admin("ana", &args)
    };
    // A push into the US is refused: the tenant allows only the EU.
    let err = fails(&mut push(&in_us, &[]));
    assert!(err.contains("residency") && err.contains("us"), "{err}");
    let refused = json(&mut a.admin(
        "ana",
        &[
            "audit",
            "list",
            "--tenant",
            &a.customer,
            "--action",
            "sync_job.create",
        ],
    ));
    assert!(
        refused
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "failure" && e["details"]["jurisdiction"] == "us"),
        "{refused:#}"
    );
    let job = id(&json(&mut push(&in_nl, &["--remove-vanished"])));
    let run = |job: &str| {
        let queued = at_a(&["sync", "run", job]);
        a.job_ended(queued["id"].as_str().unwrap())
    };
    let first = run(&job);
    assert_eq!(first["state"], "succeeded", "{first:#}");
    let copied = first["summary"]["report"]["objects_copied"]
        .as_u64()
        .unwrap();
    assert!(copied > 0, "{first:#}");

    // B holds the vault object for object, and it restores and checks there with the
    // customer's passphrase (and B's own restore token).
    let here = a.dir.path().join("ams").join(&vault);
    let there = b.dir.path().join("b-nl").join(&in_nl);
    assert_eq!(object_files(&there), object_files(&here));
    let restorer = at_b(&[
        "token",
        "create",
        "--tenant",
        &b.customer,
        "--name",
        "restore",
        "--kind",
        "api",
        "--vault",
        &in_nl,
        "--permission",
        "restore",
    ])["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let target = b.dir.path().join("restored");
    ok(&mut b.customer_cli(
        &in_nl,
        &restorer,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join(src.file_name().unwrap()));
    let checked = ok(&mut b.customer_cli(&in_nl, &restorer, &["check", "--read-data"]));
    assert!(checked.contains("no errors"), "{checked}");
    // B never got a key or plaintext; A keeps B's token only wrapped.
    let a_master = std::fs::read_to_string(a.server.data_dir.join("master.key")).unwrap();
    for (path, bytes) in all_bytes(b.dir.path(), &target) {
        assert!(!contains(&bytes, marker), "plaintext in {}", path.display());
        assert!(!contains(&bytes, a_master.trim()), "{}", path.display());
    }
    for (path, bytes) in all_bytes(&a.server.data_dir, &target) {
        assert!(
            !contains(&bytes, &token_secret),
            "the remote's token in the clear in {}",
            path.display()
        );
    }

    // New data: the next push copies only what is new; after a forget and prune at A it
    // also removes what vanished there.
    write(&src.join("new.bin"), &noise(2 << 20, 5));
    ok(&mut a.customer_cli(&vault, &manage, &["backup", src.to_str().unwrap()]));
    ok(&mut a.customer_cli(&vault, &manage, &["forget", "--keep-last", "1"]));
    ok(&mut a.customer_cli(&vault, &manage, &["prune", "--grace", "0s"]));
    let second = run(&job);
    assert_eq!(second["state"], "succeeded", "{second:#}");
    let report = &second["summary"]["report"];
    assert!(
        report["objects_copied"].as_u64().unwrap() < copied,
        "{report}"
    );
    assert!(report["objects_removed"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(object_files(&there), object_files(&here));

    // A pack lost from A's disk (its records still hold it) is not mirrored: the push
    // removes nothing, warns, and B keeps its copy.
    let lost = object_files(&here)
        .into_keys()
        .find(|p| p.starts_with("data/"))
        .unwrap();
    let kept = std::fs::read(here.join(&lost)).unwrap();
    std::fs::remove_file(here.join(&lost)).unwrap();
    let after_loss = run(&job);
    assert_eq!(
        after_loss["state"], "succeeded-with-warnings",
        "{after_loss:#}"
    );
    let report = &after_loss["summary"]["report"];
    assert_eq!(report["objects_removed"], 0, "{report}");
    assert!(report["primary_missing"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(std::fs::read(there.join(&lost)).unwrap(), kept);
    std::fs::write(here.join(&lost), kept).unwrap();

    // A pull brings B's copy into a fresh customer-key vault of A, which restores.
    let (pulled, pulled_manage) = a.customer_key_vault_at("pulled", Some("ams"));
    let pull = id(&at_a(&[
        "sync",
        "add",
        "pull",
        "--vault",
        &pulled,
        "--remote",
        &remote,
        "--remote-vault",
        &in_nl,
    ]));
    let pulled_run = run(&pull);
    assert_eq!(pulled_run["state"], "succeeded", "{pulled_run:#}");
    assert_eq!(
        object_files(&a.dir.path().join("ams").join(&pulled)),
        object_files(&there)
    );
    let target = a.dir.path().join("pulled-restore");
    ok(&mut a.customer_cli(
        &pulled,
        &pulled_manage,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join(src.file_name().unwrap()));
    // The pulled objects count as the vault's usage at A.
    let shown = at_a(&["vault", "show", &pulled]);
    assert!(shown["used_bytes"].as_u64().unwrap() > 0, "{shown:#}");

    // The residency narrows to Germany: the next push is refused before it copies.
    let residency = |allow: &str| {
        json(&mut a.admin(
            "provider-admin",
            &["tenant", "residency", &a.customer, "--allow", allow],
        ))
    };
    // A new backup, then a run that must fail saying `why`, leaving B's vault as it was.
    let refused_run = |file: &str, seed: u64, why: &str| {
        write(&src.join(file), &noise(1 << 20, seed));
        ok(&mut a.customer_cli(&vault, &manage, &["backup", src.to_str().unwrap()]));
        let before = object_files(&there);
        let ended = run(&job);
        assert_eq!(ended["state"], "failed", "{ended:#}");
        assert!(
            ended["error"].as_str().unwrap_or_default().contains(why),
            "{ended:#}"
        );
        assert_eq!(object_files(&there), before);
    };
    residency("de");
    refused_run("later.bin", 7, "residency");
    residency("eu");

    // B revokes the token: the next push fails and B's vault stays as it was.
    at_b(&["token", "revoke", &token_id]);
    refused_run("late.bin", 6, "refused");
    // After all of it, nothing of the EU-only customer's ever reached B's US destination.
    assert!(object_files(&b.dir.path().join("b-us")).is_empty());

    // B out of reach: not a refusal, so the run waits for another attempt.
    let mut b = b;
    b.server.kill();
    waits_for_another_attempt(&a, &job, "could not be reached");
}

#[test]
fn a_sync_of_the_whole_tenant_pushes_every_vault_its_patterns_match_to_the_vault_of_that_name() {
    let a = set_up(Some(&regions(&[("ams", "nl")])), "ams");
    let b = set_up(Some(&regions(&[("b-nl", "nl")])), "b-nl");
    let at_b = |args: &[&str]| json(&mut b.admin("ana", args));
    // The EU only: B's vaults, in the Netherlands, are inside it.
    json(&mut a.admin(
        "provider-admin",
        &["tenant", "residency", &a.customer, "--allow", "eu"],
    ));

    // A's customer keeps four vaults; B has a vault of the same name for three of them.
    let src = a.dir.path().join("files");
    write(&src.join("a.bin"), &noise(300 << 10, 1));
    let mut ours = std::collections::BTreeMap::new();
    for name in ["db-1", "db-2", "db-3", "web"] {
        let (vault, manage) = a.customer_key_vault_at(name, Some("ams"));
        ok(&mut a.customer_cli(
            &vault,
            &manage,
            &["backup", "--init", src.to_str().unwrap()],
        ));
        ours.insert(name, (vault, manage));
    }
    let mut theirs = std::collections::BTreeMap::new();
    for name in ["db-1", "db-2", "web"] {
        let v = id(&at_b(&[
            "vault",
            "create",
            "--tenant",
            &b.customer,
            "--name",
            name,
            "--destination",
            "b-nl",
            "--customer-key",
        ]));
        theirs.insert(name, v);
    }
    // A token of every vault of B's tenant.
    let token = at_b(&[
        "token",
        "create",
        "--tenant",
        &b.customer,
        "--name",
        "site-a",
        "--kind",
        "api",
        "--permission",
        "replicate",
    ])["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let remote = add_remote(&a, &b, &token);
    let job = json(&mut a.admin(
        "ana",
        &[
            "sync", "add", "push", "--remote", &remote, "--match", "db-*",
        ],
    ));
    assert_eq!(job["vault_id"], serde_json::Value::Null, "{job}");
    let queued = json(&mut a.admin("ana", &["sync", "run", &id(&job)]));
    let ended = a.job_ended(queued["id"].as_str().unwrap());
    // db-3 has no counterpart at B: a warning, not a failure.
    assert_eq!(ended["state"], "succeeded-with-warnings", "{ended:#}");
    let synced: Vec<&str> = ended["summary"]["vaults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["remote_vault_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        synced,
        vec![theirs["db-1"].as_str(), theirs["db-2"].as_str()]
    );
    for name in ["db-1", "db-2"] {
        let here = object_files(&a.dir.path().join("ams").join(&ours[name].0));
        assert!(!here.is_empty());
        assert_eq!(
            object_files(&b.dir.path().join("b-nl").join(&theirs[name])),
            here
        );
    }
    // `web` does not match: B's `web` stays empty.
    assert!(object_files(&b.dir.path().join("b-nl").join(&theirs["web"])).is_empty());

    // B reached through a moment in which it refuses connections (the first two): the listing
    // of B's vaults that adding the job makes is retried within its own budget, and the run
    // ends in its first attempt.
    let b_at: std::net::SocketAddr = b.server.url.trim_start_matches("https://").parse().unwrap();
    let flaky = format!("https://{}", flaky_proxy(b_at, 2));
    let remote = add_remote_at(&a, &b, &token, "site-b-flaky", &flaky);
    let flaky_job = json(&mut a.admin(
        "ana",
        &[
            "sync", "add", "push", "--remote", &remote, "--match", "db-*",
        ],
    ));
    let run = json(&mut a.admin("ana", &["sync", "run", &id(&flaky_job)]));
    let ended = a.job_ended(run["id"].as_str().unwrap());
    assert_eq!(ended["state"], "succeeded-with-warnings", "{ended:#}");
    assert_eq!(ended["attempts"], 1, "{ended:#}");

    // B fails to store into its db-2 (the vault's directory is a file there): db-1 is still
    // pushed, and the run waits for another attempt rather than failing for good.
    write(&src.join("b.bin"), &noise(200 << 10, 2));
    for name in ["db-1", "db-2"] {
        let (vault, manage) = &ours[name];
        ok(&mut a.customer_cli(vault, manage, &["backup", src.to_str().unwrap()]));
    }
    let b_db2 = b.dir.path().join("b-nl").join(&theirs["db-2"]);
    std::fs::rename(&b_db2, b.dir.path().join("db-2-aside")).unwrap();
    write(&b_db2, b"not a directory");
    let error = waits_for_another_attempt(&a, &id(&flaky_job), "db-2: ");
    assert!(!error.contains("db-1"), "{error}");
    assert_eq!(
        object_files(&b.dir.path().join("b-nl").join(&theirs["db-1"])),
        object_files(&a.dir.path().join("ams").join(&ours["db-1"].0))
    );

    // B out of reach: the run is not failed for good (no token was refused).
    let mut b = b;
    b.server.kill();
    waits_for_another_attempt(&a, &id(&job), "could not be reached");
}

/// Runs sync job `job` of `a` while something at its remote fails: the run is not failed
/// for good but waits for another attempt, with an error that `says` something. Answers the
/// error.
fn waits_for_another_attempt(a: &Story, job: &str, says: &str) -> String {
    let run = id(&json(&mut a.admin("ana", &["sync", "run", job])));
    let mut shown = serde_json::Value::Null;
    for _ in 0..600 {
        shown = json(&mut a.admin("ana", &["job", "show", &run]));
        if shown["attempts"].as_u64().unwrap_or(0) >= 1 && shown["state"] != "running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(shown["state"], "queued", "{shown:#}");
    let error = shown["error"].as_str().unwrap_or_default();
    assert!(error.contains(says), "{shown:#}");
    error.to_string()
}
