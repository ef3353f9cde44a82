//! The agent end to end: a customer admin makes an enrolment code, a machine enrols with it
//! (`loop agent enroll`), and a running `loop agent run` process carries out backups asked
//! for through the API, reporting them as jobs; the snapshot is in the vault, tagged with
//! the item, and the item's last-success time in `/metrics` moves with each backup (the
//! scrape passes `promtool check metrics`); a restore asked through the API lands on the
//! agent's machine.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::cli::write;
use support::server::*;
use support::story::*;

/// The item's `loop_backup_last_success_timestamp_seconds`, when the scrape has it.
fn last_success(metrics: &str, item: &str) -> Option<f64> {
    let label = format!("item=\"{item}\"");
    metrics
        .lines()
        .find(|l| {
            l.starts_with("loop_backup_last_success_timestamp_seconds{") && l.contains(&label)
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

/// `promtool check metrics` on a scrape: Prometheus's own parser and linter.
fn promtool_check(metrics: &str) {
    use std::io::Write as _;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is missing (Debian package prometheus)"
        );
        eprintln!("SKIPPED promtool check: promtool is not installed");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An RFC 3339 time of the API as Unix seconds.
fn chrono_secs(v: &serde_json::Value) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    t.timestamp_millis() as f64 / 1000.0
}

/// A sign-in and an agent enrolment (its code from the environment, not the command line)
/// with a CA file named relative to where they ran keep the file's whole path, so commands
/// run from elsewhere (a service manager's `/`) still trust the server.
#[test]
fn a_session_and_an_agent_set_up_with_a_relative_ca_file_work_from_any_directory() {
    let s = set_up(None, "local");
    let state = s.dir.path().join("agent-state");
    let conf = s.dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::copy(
        s.server.data_dir.join("tls-cert.pem"),
        conf.join("server.pem"),
    )
    .unwrap();
    let code =
        json(&mut s.admin("ana", &["device", "enroll-code", "--tenant", &s.customer]))["code"]
            .as_str()
            .unwrap()
            .to_string();
    let in_dir = |dir: &Path, args: &[&str]| {
        let mut c = support::agents::agent_cmd(&s, &state, args);
        c.env_remove("LOOP_SERVER_FINGERPRINT").current_dir(dir);
        c
    };
    let enrolled = json(
        in_dir(
            &conf,
            &[
                "agent",
                "enroll",
                "--server",
                &s.server.url,
                "--cacert",
                "server.pem",
            ],
        )
        .env("LOOP_ENROL_CODE", &code),
    );
    assert!(enrolled["device_id"].is_string(), "{enrolled}");
    ok(&mut in_dir(Path::new("/"), &["agent", "run", "--once"]));

    let ana = s.dir.path().join("ana-with-ca-file");
    let as_ana = |dir: &Path, args: &[&str]| {
        let mut c = s.server.as_user(&ana, args);
        c.env_remove("LOOP_SERVER_FINGERPRINT").current_dir(dir);
        c
    };
    ok(as_ana(
        &conf,
        &[
            "login",
            "--server",
            &s.server.url,
            "--email",
            "ana@acme.example",
        ],
    )
    .args(["--cacert", "server.pem"])
    .env("LOOP_LOGIN_PASSWORD", "ana-password-1234"));
    let tenants = json(&mut as_ana(Path::new("/"), &["tenant", "list"]));
    assert_eq!(tenants[0]["id"], s.customer.as_str(), "{tenants}");
}

#[test]
fn an_enrolled_agent_runs_a_backup_asked_for_through_the_api() {
    let s = set_up(None, "local");
    let code =
        json(&mut s.admin("ana", &["device", "enroll-code", "--tenant", &s.customer]))["code"]
            .as_str()
            .unwrap()
            .to_string();
    // A state directory this user cannot make fails before the server is asked, so the
    // code is not used up.
    let not_a_dir = s.dir.path().join("a-file");
    write(&not_a_dir, b"not a directory");
    let err = fails(
        s.server
            .cli(&s.dir.path().join("agent"))
            .args([
                "agent",
                "enroll",
                "--server",
                &s.server.url,
                "--code",
                &code,
            ])
            .arg("--state-dir")
            .arg(not_a_dir.join("state")),
    );
    assert!(err.contains("creating"), "{err}");
    let state = s.dir.path().join("agent-state");
    let agent = |args: &[&str]| {
        let mut c = s.server.cli(&s.dir.path().join("agent"));
        c.args(args).arg("--state-dir").arg(&state);
        c
    };
    let enrolled = json(&mut agent(&[
        "agent",
        "enroll",
        "--server",
        &s.server.url,
        "--code",
        &code,
        "--name",
        "file-server",
    ]));
    let device = enrolled["device_id"].as_str().unwrap().to_string();
    assert_eq!(enrolled["tenant_id"], s.customer.as_str());
    let file = state.join("agent.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only its owner reads the device token");
    // The code works once.
    let other = s.dir.path().join("other-state");
    let err = fails(
        s.server
            .cli(&s.dir.path().join("agent"))
            .args([
                "agent",
                "enroll",
                "--server",
                &s.server.url,
                "--code",
                &code,
            ])
            .arg("--state-dir")
            .arg(&other),
    );
    assert!(err.contains("enrolment_refused"), "{err}");

    let src = s.dir.path().join("shared");
    write(&src.join("report.txt"), b"quarterly numbers");
    write(&src.join("sub/data.bin"), &[7u8; 100_000]);
    let item_id = s.item(&device, "shared", &src, &["--tag", "office"]);

    assert_eq!(last_success(&s.server.metrics(), &item_id), None);
    let roots = s.dir.path().join("restores");
    std::fs::create_dir(&roots).unwrap();
    // Every job of this agent moves its bytes at limits (of 2 GiB/s, which hold nothing up).
    let child = agent(&[
        "agent",
        "run",
        "--poll-seconds",
        "1",
        "--limit-upload",
        "2097152",
        "--limit-download",
        "2097152",
    ])
    .arg("--restore-root")
    .arg(&roots)
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let _agent = Running(child);
    let job = json(&mut s.admin("ana", &["item", "run", &item_id]));
    assert_eq!(job["kind"], "backup");
    let job = s.job_ended(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let snapshot = job["summary"]["snapshot_id"].as_str().unwrap().to_string();
    assert_eq!(job["summary"]["files"], 2);
    // Its backups keep the vault's trees and index in a local cache, as `loop backup` does.
    let cache = s.dir.path().join("agent/cache/loop");
    let cached: usize = std::fs::read_dir(&cache)
        .map(|repos| {
            repos
                .map(|r| support::cli::count_files(&r.unwrap().path().join("packs")))
                .sum()
        })
        .unwrap_or(0);
    assert!(cached > 0, "the agent's backup cached its tree pack");

    // The snapshot is in the vault, tagged with the item, and restores.
    let snaps = json(&mut s.device(&s.restore_token, &["snapshots"]));
    let snap = snaps
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == snapshot.as_str())
        .unwrap_or_else(|| panic!("{snapshot} in {snaps:#}"));
    let tags: Vec<&str> = snap["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&"office") && tags.contains(&format!("item:{item_id}").as_str()));
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", &snapshot, "--target", target.to_str().unwrap()],
    ));
    support::cli::assert_same_tree(&src, &target.join("shared"));

    // The item's last success is in the metrics, at the job's end, and moves with the next.
    let first = last_success(&s.server.metrics(), &item_id).expect("a last success");
    let finished = chrono_secs(&job["finished_at"]);
    assert!((first - finished).abs() < 1.0, "{first} vs {finished}");
    std::thread::sleep(Duration::from_millis(1100));
    let again = json(&mut s.admin("ana", &["item", "run", &item_id]));
    let again = s.job_ended(again["id"].as_str().unwrap());
    assert_eq!(again["state"], "succeeded", "{again:#}");
    let scrape = s.server.metrics();
    let second = last_success(&scrape, &item_id).unwrap();
    assert!(second > first, "{second} after {first}");
    assert!(
        scrape.contains("loop_jobs_total{kind=\"backup\",state=\"succeeded\"} 2"),
        "{scrape}"
    );
    promtool_check(&scrape);

    // A restore asked through the API: the agent writes the snapshot's files (here: one
    // path of it) into a directory of its machine, under a root its owner allowed.
    let restore_to = |target: &Path| {
        let restore = json(&mut s.admin(
            "ana",
            &[
                "device",
                "restore",
                &device,
                "--vault",
                &s.vault,
                "--snapshot",
                &snapshot,
                "--path",
                "**/sub",
                "--target",
                target.to_str().unwrap(),
            ],
        ));
        assert_eq!(restore["kind"], "restore");
        s.job_ended(restore["id"].as_str().unwrap())
    };
    // Elsewhere is refused, however it is named: outside the roots, through `..`, or through
    // a symbolic link inside a root that points out of it.
    let elsewhere = s.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, roots.join("link")).unwrap();
    for (target, why) in [
        (elsewhere.clone(), "outside this agent's restore roots"),
        (roots.join("../elsewhere"), "without . or .."),
        (roots.join("link/x"), "outside this agent's restore roots"),
    ] {
        let refused = restore_to(&target);
        assert_eq!(refused["state"], "failed", "{refused:#}");
        assert!(
            refused["error"].as_str().unwrap().contains(why),
            "{target:?}: {refused:#}"
        );
        assert!(
            std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
            "{target:?} wrote outside the roots"
        );
    }
    let target = roots.join("by-agent");
    let restore = restore_to(&target);
    assert_eq!(restore["state"], "succeeded", "{restore:#}");
    let restored = target.join("shared");
    assert_eq!(
        std::fs::read(restored.join("sub/data.bin")).unwrap(),
        vec![7u8; 100_000]
    );
    assert!(
        !restored.join("report.txt").exists(),
        "only the path asked for is restored"
    );

    // This agent was started without --allow-commands: an item's pre- and post-commands
    // (which a tenant admin sets, and the agent would run as its own user) are not run, and
    // the job's log says so.
    let ran = s.dir.path().join("command-ran");
    let touch = format!("touch {}", ran.display());
    let item = s.item(
        &device,
        "commands",
        &src,
        &["--pre-command", &touch, "--post-command", &touch],
    );
    let run = json(&mut s.admin("ana", &["item", "run", &item]));
    let run_id = run["id"].as_str().unwrap();
    let run = s.job_ended(run_id);
    assert_eq!(run["state"], "succeeded-with-warnings", "{run:#}");
    assert!(!ran.exists(), "a command ran without --allow-commands");
    let logs = json(&mut s.admin("ana", &["job", "logs", run_id])).to_string();
    for what in ["pre-command", "post-command"] {
        assert!(logs.contains(&format!("the {what} was not run")), "{logs}");
    }

    // A file that changes while the agent reads it (a /proc file's content is never its
    // stated size) is stored as read, and the job says so.
    let item = s.item(&device, "changing", Path::new("/proc/self/status"), &[]);
    let run = json(&mut s.admin("ana", &["item", "run", &item]));
    let run_id = run["id"].as_str().unwrap();
    let run = s.job_ended(run_id);
    assert_eq!(run["state"], "succeeded-with-warnings", "{run:#}");
    assert_eq!(run["summary"]["changed_while_reading"], 1, "{run:#}");
    let logs = json(&mut s.admin("ana", &["job", "logs", run_id])).to_string();
    assert!(
        logs.contains("/proc/self/status changed while it was read"),
        "{logs}"
    );

    // An item's upload limit reaches its agent, which applies it or its own, whichever is
    // lower, and says which.
    for (limit, said) in [
        (
            "1048576",
            "uploading at most 1048576 KiB/s (the item's limit)",
        ),
        (
            "4194304",
            "uploading at most 2097152 KiB/s (this agent's --limit-upload, below the item's)",
        ),
    ] {
        let item = s.item(
            &device,
            &format!("limited-{limit}"),
            &src,
            &["--upload-limit", limit],
        );
        let run = json(&mut s.admin("ana", &["item", "run", &item]));
        let run_id = run["id"].as_str().unwrap();
        assert_eq!(s.job_ended(run_id)["state"], "succeeded");
        let logs = json(&mut s.admin("ana", &["job", "logs", run_id])).to_string();
        assert!(logs.contains(said), "{logs}");
    }

    // An item whose folder is gone fails, saying which folder and why, once.
    let gone = s.dir.path().join("gone");
    let item = s.item(&device, "gone", &gone, &[]);
    let failed = json(&mut s.admin("ana", &["item", "run", &item]));
    let failed = s.job_ended(failed["id"].as_str().unwrap());
    assert_eq!(failed["state"], "failed", "{failed:#}");
    let error = failed["error"].as_str().unwrap();
    let cause = std::io::Error::from_raw_os_error(2).to_string(); // ENOENT
    assert!(error.contains(gone.to_str().unwrap()), "{error}");
    assert_eq!(error.matches(&cause).count(), 1, "{error}");

    // A vault this agent knows as one it opened with a passphrase (the managed vault's ID
    // written in as if it had): the server's offer of its own key for it is refused, and
    // nothing is written there.
    let snapshots = || s.object_names(&s.vault, "snapshots", &s.restore_token);
    let before = snapshots();
    std::fs::write(state.join("known-vaults"), format!("{}\n", s.vault)).unwrap();
    let refused = json(&mut s.admin("ana", &["item", "run", &item_id]));
    let refused = s.job_ended(refused["id"].as_str().unwrap());
    assert_eq!(refused["state"], "failed", "{refused:#}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("offers its own key for vault"), "{error}");
    assert_eq!(snapshots(), before);

    // The device was heard from.
    let devices = json(&mut s.admin("ana", &["device", "list", "--tenant", &s.customer]));
    let d = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == device.as_str())
        .unwrap();
    assert!(d["last_seen_at"].is_string(), "{d}");
}
