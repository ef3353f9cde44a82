//! The agent on a schedule, against a real `loop server` whose clock the test moves
//! (`test_clock`): a scheduled run fires when the server's clock passes its time and the
//! running agent backs it up; an agent killed mid-backup leaves its job `abandoned` once its
//! lease lapses (raising a `job-failed` event), and the next run completes.

mod support;

use std::path::Path;
use std::process::Stdio;

use loop_testkit::data::noise;
use support::agents::*;
use support::cli::write;
use support::server::*;
use support::story::*;

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// The snapshot a backup job made restores `src` (an item named `data`).
fn assert_restores(s: &Story, job: &serde_json::Value, src: &Path) {
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &[
            "restore",
            job["summary"]["snapshot_id"].as_str().unwrap(),
            "--target",
            target.to_str().unwrap(),
        ],
    ));
    support::cli::assert_same_tree(src, &target.join("data"));
}

/// A server whose clock the test moves, with a 30-second job lease.
fn clock_config(d: &Path) -> std::path::PathBuf {
    let p = d.join("server.toml");
    std::fs::write(
        &p,
        "test_clock = true\n[jobs]\nscheduler_seconds = 1\nlease_seconds = 30\n\
         [session]\nidle_minutes = 100000\nabsolute_hours = 10000\n",
    )
    .unwrap();
    p
}

#[test]
fn a_scheduled_run_fires_on_the_servers_clock_and_a_killed_agents_job_is_abandoned_then_redone() {
    let s = set_up(Some(&clock_config), "local");
    let state = s.dir.path().join("agent-state");
    let agent = |args: &[&str]| agent_cmd(&s, &state, args);
    let device = enrol_agent(&s, &state);
    let src = s.dir.path().join("data");
    write(&src.join("small.txt"), b"scheduled");
    let item_id = s.item(
        &device,
        "data",
        &src,
        &["--schedule", "daily", "--jitter-seconds", "0"],
    );
    let item = json(&mut s.admin("ana", &["item", "show", &item_id]));
    let next: chrono::DateTime<chrono::Utc> =
        item["next_run_at"].as_str().unwrap().parse().unwrap();
    let start = |_: ()| {
        Running(
            agent(&["agent", "run", "--poll-seconds", "1"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let running = start(());
    let backups = || json(&mut s.admin("ana", &["job", "list", "--kind", "backup"]));
    assert_eq!(
        backups(),
        serde_json::json!([]),
        "nothing runs before its time"
    );

    // The server's clock passes midnight: the scheduler fires the run, the agent backs up.
    let now = s.advance_clock(0);
    s.advance_clock((next - now).num_seconds().max(0) as u64 + 2);
    let done = wait_for("the scheduled backup", || {
        let list = backups();
        let j = list.as_array().unwrap().first()?.clone();
        (j["state"] == "succeeded").then_some(j)
    });
    assert_eq!(done["trigger"], "schedule");
    assert_eq!(done["target_id"], item_id.as_str());
    assert_eq!(done["summary"]["files"], 1);

    // A bigger source, and the agent killed once the run has stored its first pack.
    write(&src.join("big.bin"), &noise(64 << 20, 9));
    let data_dir = s.server.data_dir.join("vaults").join(&s.vault).join("data");
    let packs_before = files_under(&data_dir);
    let killed = json(&mut s.admin("ana", &["item", "run", &item_id]));
    let killed_id = killed["id"].as_str().unwrap().to_string();
    wait_for("a pack of the big run", || {
        (files_under(&data_dir) > packs_before).then_some(())
    });
    drop(running);
    let shown = json(&mut s.admin("ana", &["job", "show", &killed_id]));
    assert_eq!(shown["state"], "running", "killed mid-run: {shown:#}");

    // Its lease lapses on the server's clock: the job is abandoned, and says so as an event.
    s.advance_clock(31);
    wait_for("the abandoned job", || {
        let j = json(&mut s.admin("ana", &["job", "show", &killed_id]));
        (j["state"] == "abandoned").then_some(())
    });
    let events = wait_for("the job-failed event", || {
        let e = json(&mut s.admin("ana", &["notify", "events", "--kind", "job-failed"]));
        (!e.as_array().unwrap().is_empty()).then_some(e)
    });
    assert_eq!(events[0]["subject_id"], killed_id.as_str());
    assert_eq!(events[0]["details"]["state"], "abandoned");

    // The agent comes back and the next run completes; the snapshot restores the source.
    let _running = start(());
    let again = json(&mut s.admin("ana", &["item", "run", &item_id]));
    let again_id = again["id"].as_str().unwrap().to_string();
    let finished = wait_for("the next run", || {
        let j = json(&mut s.admin("ana", &["job", "show", &again_id]));
        (!["queued", "running"].contains(&j["state"].as_str().unwrap())).then_some(j)
    });
    assert_eq!(finished["state"], "succeeded", "{finished:#}");
    assert_eq!(finished["summary"]["files"], 2);
    assert_restores(&s, &finished, &src);
}

/// An agent cut off from the server for longer than its job's lease (a laptop asleep, a
/// network cut) while it backs up: the server records the job `abandoned`, the agent learns it
/// at its next report and goes on, and the end it reports once done is taken, so the job ends
/// `succeeded` with the snapshot it made.
#[test]
fn a_backup_whose_lease_lapsed_while_its_agent_was_away_ends_with_the_agents_result() {
    let s = set_up(Some(&clock_config), "local");
    let state = s.dir.path().join("agent-state");
    let device = enrol_agent(&s, &state);
    let src = s.dir.path().join("data");
    write(&src.join("a.txt"), b"backed up across a lapsed lease");
    let (started, gate) = (s.dir.path().join("started"), s.dir.path().join("gate"));
    let pre = format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.05; done",
        started.display(),
        gate.display()
    );
    let item_id = s.item(&device, "data", &src, &["--pre-command", &pre]);
    let job_id = id(&json(&mut s.admin("ana", &["item", "run", &item_id])));
    let log = s.dir.path().join("agent.log");
    let running = Running(
        agent_cmd(
            &s,
            &state,
            &["agent", "run", "--poll-seconds", "1", "--allow-commands"],
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap(),
    );
    wait_for("the pre-command", || started.exists().then_some(()));
    // The machine sleeps (the agent is stopped) while the server's clock passes the lease:
    // the job is abandoned. (Moved on again now and then, in case a report sent just
    // before the stop renewed the lease after the first move.)
    let signal = |sig: &str| {
        let pid = running.0.id().to_string();
        let sent = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    signal("-STOP");
    let mut polls = 0;
    wait_for("the abandoned job", || {
        if polls % 20 == 0 {
            s.advance_clock(31);
        }
        polls += 1;
        let j = json(&mut s.admin("ana", &["job", "show", &job_id]));
        (j["state"] == "abandoned").then_some(())
    });
    // It wakes: its next report is refused.
    signal("-CONT");
    wait_for("the agent hearing of it", || {
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        said.contains("its lease lapsed").then_some(())
    });
    write(&gate, b"");
    let done = wait_for("the agent's end", || {
        let j = json(&mut s.admin("ana", &["job", "show", &job_id]));
        (j["state"] != "abandoned").then_some(j)
    });
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(done["summary"]["files"], 1, "{done:#}");
    assert_restores(&s, &done, &src);
}

/// Backs up `src` for `device` with `post_command` run after it, by a running agent (kept in
/// the answer) whose report of the end the server does not take: (job ID, the agent, the
/// file the end is kept in, once it is there).
fn kept_end_of(
    s: &Story,
    state: &Path,
    device: &str,
    src: &Path,
    post_command: &str,
) -> (String, Running, std::path::PathBuf) {
    let item_id = s.item(device, "data", src, &["--post-command", post_command]);
    let job = json(&mut s.admin("ana", &["item", "run", &item_id]));
    let job_id = job["id"].as_str().unwrap().to_string();
    let running = Running(
        agent_cmd(
            s,
            state,
            &["agent", "run", "--poll-seconds", "1", "--allow-commands"],
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let kept = state.join("pending").join(format!("{job_id}.json"));
    wait_for("the kept end of the job", || kept.exists().then_some(()));
    (job_id, running, kept)
}

/// The job once the server took its end.
fn reported_end(s: &Story, job_id: &str) -> serde_json::Value {
    wait_for("the reported end", || {
        let j = json(&mut s.admin("ana", &["job", "show", job_id]));
        (j["state"] != "running").then_some(j)
    })
}

#[test]
fn a_result_made_while_the_server_was_down_is_kept_and_reported_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("server.toml");
    std::fs::write(&config_path, "[jobs]\nlease_seconds = 30\n").unwrap();
    let config = |_: &Path| config_path.clone();
    let mut s = set_up(Some(&config), "local");
    let state = s.dir.path().join("agent-state");
    let device = enrol_agent(&s, &state);
    let src = s.dir.path().join("data");
    write(&src.join("a.txt"), b"made while the server went away");
    // The item's post-command kills the server: the backup is done, its end cannot be told.
    let kill = format!("kill -9 {}", s.server.pid());
    let (job_id, running, kept) = kept_end_of(&s, &state, &device, &src, &kill);
    // The agent restarts too while the server is down: what it kept is on disk.
    drop(running);
    s.server.kill();
    s.server.restart(Some(&config_path));
    let _running = Running(
        agent_cmd(&s, &state, &["agent", "run", "--poll-seconds", "1"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Within the job's lease: the restart did not end it, and the kept end is taken.
    let done = reported_end(&s, &job_id);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(done["summary"]["files"], 1);
    wait_for("the kept file is gone", || (!kept.exists()).then_some(()));
    let snaps = json(&mut s.device(&s.restore_token, &["snapshots"]));
    assert!(
        snaps
            .to_string()
            .contains(done["summary"]["snapshot_id"].as_str().unwrap())
    );
}

/// The server answers the job's end with an error of its own (its database is locked for
/// longer than it waits, as a stuck transaction of another program would hold it): the end is
/// kept and reported once the server can take it, not lost. SQLite's lock is what the test
/// can hold from outside; on PostgreSQL the same path runs in the other tests of this file.
#[test]
fn a_result_the_server_fails_to_take_is_kept_and_reported_when_it_can() {
    if loop_testkit::postgres::wanted() {
        eprintln!("this test locks SQLite's database; it runs in the SQLite pass");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("server.toml");
    std::fs::write(&config_path, "[jobs]\nlease_seconds = 60\n").unwrap();
    let config = |_: &Path| config_path.clone();
    let s = set_up(Some(&config), "local");
    let state = s.dir.path().join("agent-state");
    let device = enrol_agent(&s, &state);
    let src = s.dir.path().join("data");
    write(&src.join("a.txt"), b"backed up while the database was held");
    // The item's post-command takes the database's write lock for 30 seconds (longer than
    // the server's 10-second wait, twice) and returns at once: the end arrives while it is
    // held, and is refused with a 500.
    let db = s.server.data_dir.join("loop.db");
    let locked = s.dir.path().join("locked");
    let hold = format!(
        "python3 -c 'import sqlite3, time, pathlib; c = sqlite3.connect(\"{}\", timeout=0, \
         isolation_level=None); c.execute(\"BEGIN EXCLUSIVE\"); pathlib.Path(\"{}\").touch(); \
         time.sleep(30)' > /dev/null 2>&1 & \
         while [ ! -e {} ]; do sleep 0.05; done",
        db.display(),
        locked.display(),
        locked.display()
    );
    let (job_id, _running, kept) = kept_end_of(&s, &state, &device, &src, &hold);
    let done = reported_end(&s, &job_id);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(done["summary"]["files"], 1);
    wait_for("the kept file is gone", || (!kept.exists()).then_some(()));
}

#[test]
fn a_restore_cancelled_while_it_runs_is_stopped_by_the_agent_and_ends_cancelled() {
    let s = set_up(None, "local");
    let state = s.dir.path().join("agent-state");
    let device = enrol_agent(&s, &state);
    let src = s.dir.path().join("data");
    write(&src.join("big.bin"), &noise(2 << 20, 7));
    ok(&mut s.device(
        &s.backup_token,
        &["backup", "--init", src.to_str().unwrap()],
    ));
    let _agent = Running(
        agent_cmd(&s, &state, &["agent", "run", "--poll-seconds", "1"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let target = state.join("restores/cancelled");
    let ended = cancelled_while_reading(&s, &s.vault, || {
        id(&json(&mut s.admin(
            "ana",
            &[
                "device",
                "restore",
                &device,
                "--vault",
                &s.vault,
                "--snapshot",
                "latest",
                "--target",
                target.to_str().unwrap(),
            ],
        )))
    });
    assert_eq!(ended["state"], "cancelled", "{ended:#}");
    assert_eq!(ended["summary"], serde_json::Value::Null, "{ended:#}");
}

/// A pre-command that never ends (a dump against a database that hangs) is stopped by a
/// cancel, with what it started, and the agent goes on to its next job.
#[test]
fn a_cancel_stops_a_pre_command_that_hangs_with_everything_it_started() {
    let s = set_up(None, "local");
    let state = s.dir.path().join("agent-state");
    let device = enrol_agent(&s, &state);
    let src = s.dir.path().join("data");
    write(
        &src.join("a.txt"),
        b"backed up once the hanging item is cancelled",
    );
    let pidfile = s.dir.path().join("sleeper.pid");
    let hang = format!("sleep 600 & echo $! > {}; wait", pidfile.display());
    let hanging = s.item(&device, "hanging", &src, &["--pre-command", &hang]);
    let _agent = Running(
        agent_cmd(
            &s,
            &state,
            &["agent", "run", "--poll-seconds", "1", "--allow-commands"],
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let job_id = id(&json(&mut s.admin("ana", &["item", "run", &hanging])));
    let sleeper: i32 = wait_for("the pre-command's child", || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse().ok())
    });
    ok(&mut s.admin("ana", &["job", "cancel", &job_id]));
    let ended = wait_for("the cancelled job's end", || {
        let j = json(&mut s.admin("ana", &["job", "show", &job_id]));
        (j["state"] != "running" && j["state"] != "queued").then_some(j)
    });
    assert_eq!(ended["state"], "cancelled", "{ended:#}");
    // Gone, or a zombie that no longer runs (its reaper may be slow to collect it).
    let gone = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_or(true, |st| st.contains("State:\tZ"))
    };
    wait_for("the pre-command's child to be gone", || {
        gone(sleeper).then_some(())
    });

    let item = s.item(&device, "data", &src, &[]);
    let next = id(&json(&mut s.admin("ana", &["item", "run", &item])));
    let done = s.job_ended(&next);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_restores(&s, &done, &src);
}
