//! The server's own jobs survive the server: a verify running when the server process is
//! killed (SIGKILL) is taken over when the server starts again, and completes.

mod support;

use std::time::Duration;

use loop_testkit::data::noise;
use support::cli::write;
use support::server::*;
use support::story::*;

#[test]
fn a_verify_running_when_the_server_is_killed_is_taken_over_at_the_next_start() {
    let mut s = set_up(None, "local");
    let src = s.dir.path().join("big");
    for n in 0..4u64 {
        write(&src.join(format!("part-{n}")), &noise(32 << 20, n + 1));
    }
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    let job = json(&mut s.admin(
        "ana",
        &["vault", "verify", &s.vault, "--read-data-percent", "100"],
    ));
    let id = job["id"].as_str().unwrap().to_string();
    // Killed while it runs (checked each 10 ms; the bound only stops a hung test).
    let mut seen_running = false;
    for _ in 0..6000 {
        let j = json(&mut s.admin("ana", &["job", "show", &id]));
        if j["state"] == "running" {
            seen_running = true;
            break;
        }
        assert_eq!(
            j["state"], "queued",
            "the verify ended before it was seen: {j:#}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(seen_running, "the verify never ran");
    s.server.kill();
    s.server.restart(None);

    let mut ended = serde_json::Value::Null;
    for _ in 0..1200 {
        ended = json(&mut s.admin("ana", &["job", "show", &id]));
        if !["queued", "running"].contains(&ended["state"].as_str().unwrap()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ended["state"], "succeeded", "{ended:#}");
    assert_eq!(
        ended["attempts"], 2,
        "the second runner took it over: {ended:#}"
    );
    assert_eq!(ended["summary"]["read_data_percent"], 100.0, "{ended:#}");
    let log = json(&mut s.admin("ana", &["job", "logs", &id]));
    assert!(
        log.to_string().contains("the previous runner disappeared"),
        "the log says the job was taken over: {log:#}"
    );
}
