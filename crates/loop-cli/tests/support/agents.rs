//! Enrolled agents of a story's customer, run as real `loop agent` processes.

use std::path::Path;
use std::time::Duration;

use super::server::json;
use super::story::Story;

/// `loop ARGS` as the agent whose state is in `state`.
pub fn agent_cmd(s: &Story, state: &Path, args: &[&str]) -> std::process::Command {
    let mut c = s.server.cli(&s.dir.path().join("agent"));
    c.args(args).arg("--state-dir").arg(state);
    c
}

/// Enrols a machine of the story's customer as a device whose agent keeps its state in
/// `state`; the device ID.
pub fn enrol_agent(s: &Story, state: &Path) -> String {
    let code =
        json(&mut s.admin("ana", &["device", "enroll-code", "--tenant", &s.customer]))["code"]
            .as_str()
            .unwrap()
            .to_string();
    enroll_with(s, state, &code, &[])["device_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `loop agent enroll` with `code` (and `extra` arguments) as the agent whose state is in
/// `state`: its answer.
pub fn enroll_with(s: &Story, state: &Path, code: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["agent", "enroll", "--server", &s.server.url, "--code", code];
    args.extend_from_slice(extra);
    json(&mut agent_cmd(s, state, &args))
}

/// Polls `f` until it gives a value (the bound only stops a hung test).
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1200 {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("never happened: {what}");
}

/// The largest file under `dir`.
fn largest_file(dir: &Path) -> std::path::PathBuf {
    let mut best = (0, dir.to_path_buf());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.len() > best.0 {
                best = (meta.len(), e.path());
            }
        }
    }
    best.1
}

/// Has the server's copy of the largest object of `vault` (a local destination) stand still:
/// it becomes a FIFO, and a read of it waits until the job `run` started is cancelled and
/// its agent has taken the cancel (its log says so). Then the waiting read is let go with the
/// object still away, so it fails (a 5xx is retried, and a read that came back whole after
/// the cancel would let the job finish); answers the job once it ended, with the object
/// back.
pub fn cancelled_while_reading(
    s: &Story,
    vault: &str,
    run: impl FnOnce() -> String,
) -> serde_json::Value {
    let object = largest_file(&s.server.data_dir.join("vaults").join(vault));
    let (real, fifo) = (s.dir.path().join("stalled"), s.dir.path().join("fifo"));
    std::fs::rename(&object, &real).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &object,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from(0o600),
        0,
    )
    .unwrap();
    let job = run();
    let show = || json(&mut s.admin("ana", &["job", "show", &job]));
    wait_for("the job to run", || {
        (show()["state"] == "running").then_some(())
    });
    super::server::ok(&mut s.admin("ana", &["job", "cancel", &job]));
    wait_for("the agent to take the cancel", || {
        let logs = json(&mut s.admin("ana", &["job", "logs", &job])).to_string();
        logs.contains("a cancel was asked for").then_some(())
    });
    // The object stays away until the job ended, so the read and its retries fail (a read
    // that came back whole after the cancel would let the restore finish).
    std::fs::rename(&object, &fifo).unwrap();
    use std::os::unix::fs::OpenOptionsExt as _;
    // A writer that comes and goes lets the waiting read go (it reads the end).
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(&fifo);
    let ended = s.job_ended(&job);
    std::fs::rename(&real, &object).unwrap();
    ended
}
