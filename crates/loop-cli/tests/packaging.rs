//! The systemd units the packages install (`packaging/systemd`): `systemd-analyze verify`
//! accepts them, and the server unit's own command line starts a server whose `/readyz`
//! answers 200. The units are checked with `ExecStart` pointing at the binary under test.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn unit(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging/systemd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The unit with its binary replaced by the one under test.
fn local(unit: &str) -> String {
    unit.replace("/usr/bin/loop", env!("CARGO_BIN_EXE_loop"))
}

#[test]
fn systemd_accepts_the_server_and_agent_units() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["loop-server.service", "loop-agent.service"] {
        let path = dir.path().join(name);
        std::fs::write(&path, local(&unit(name))).unwrap();
        let out = match Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "systemd-analyze is missing (Debian package systemd): {e}"
                );
                eprintln!("SKIPPED: systemd-analyze is not installed");
                return;
            }
        };
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_server_units_command_serves_a_ready_server() {
    let text = unit("loop-server.service");
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "").unwrap();
    let data: PathBuf = dir.path().join("data");
    let exec = local(exec)
        .replace("/etc/loop/server.toml", config.to_str().unwrap())
        .replace("/var/lib/loop", data.to_str().unwrap());
    let mut words = exec.split_whitespace();
    let mut cmd = Command::new(words.next().unwrap());
    cmd.args(words)
        .env("LOOP_LISTEN", "127.0.0.1:0")
        .env("LOOP_ADMIN_PASSWORD", "unit-test-admin-password")
        .env("LOOP_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("the unit's command starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!("the server exited before it printed its address");
        };
        if let Some(u) = line.strip_prefix("loop server listening on ") {
            break u.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let pem = std::fs::read(data.join("tls-cert.pem")).unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let status = client
        .get(format!("{url}/readyz"))
        .send()
        .map(|r| r.status().as_u16());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status.unwrap(), 200);
}
