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
