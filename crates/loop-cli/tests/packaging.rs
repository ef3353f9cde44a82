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

/// Runs a server unit's `ExecStart` (words of `exec`), prefixed by `wrap` (to take the
/// unit's user), listening on a free port; the `/readyz` status it answers.
fn ready_status(wrap: &[&str], exec: &str, data: &Path) -> u16 {
    let mut words = wrap.iter().copied().chain(exec.split_whitespace());
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
    status.expect("/readyz answers")
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
    assert_eq!(ready_status(&[], &exec, &data), 200);
}

/// Why the package test cannot run here, if it cannot.
fn package_test_blocker() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("installing a package needs root".into());
    }
    for tool in ["cargo-deb", "dpkg", "systemd-analyze", "setpriv"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{tool} is missing (.ci/run installs it)"));
        }
    }
    for path in ["/usr/bin/loop", "/var/lib/loop", "/etc/loop"] {
        if Path::new(path).exists() {
            return Some(format!(
                "{path} exists: this machine has Loop Backup installed"
            ));
        }
    }
    None
}

/// `cargo deb` builds the package from the binary under test; `dpkg` installs it; its units
/// pass `systemd-analyze verify`; the server unit's command, run as the unit's user with the
/// packaged configuration, answers 200 on `/readyz`; a purge removes the binary, the units
/// and the configuration, and leaves the data directory.
#[test]
fn the_package_installs_serves_as_its_user_and_purges_all_but_the_data() {
    if let Some(why) = package_test_blocker() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the package test cannot run: {why}"
        );
        eprintln!("SKIPPED the package test: {why}");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The test build's binary, stripped: a package like a release's, without its build time.
    let built = Command::new(cargo)
        .args([
            "deb",
            "-p",
            "loop-cli",
            "--profile",
            "dev",
            "--no-build",
            "--fast",
            "-o",
        ])
        .arg(out.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = String::from_utf8_lossy(&built.stdout)
        .trim()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let dpkg = |args: &[&str]| {
        let o = Command::new("dpkg").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "dpkg {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    dpkg(&["-i", &deb]);
    let installed = || -> Result<(), String> {
        for name in ["loop-server.service", "loop-agent.service"] {
            let o = Command::new("systemd-analyze")
                .args(["verify", &format!("/lib/systemd/system/{name}")])
                .output()
                .unwrap();
            if !(o.status.success() && o.stderr.is_empty()) {
                return Err(format!("{name}: {}", String::from_utf8_lossy(&o.stderr)));
            }
        }
        let unit = std::fs::read_to_string("/lib/systemd/system/loop-server.service").unwrap();
        let user = unit.lines().find_map(|l| l.strip_prefix("User=")).unwrap();
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        let data = Path::new("/var/lib/loop");
        let meta = std::fs::metadata(data).map_err(|e| format!("{}: {e}", data.display()))?;
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        if meta.permissions().mode() & 0o777 != 0o700 {
            return Err("the data directory is not 0700".into());
        }
        let wrap = [
            "setpriv",
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            "--init-groups",
            "--",
        ];
        let wrap: Vec<&str> = wrap.iter().map(|s| s.as_ref()).collect();
        let status = ready_status(&wrap, exec, data);
        if status != 200 {
            return Err(format!("/readyz answered {status}"));
        }
        let db = std::fs::metadata(data.join("loop.db")).map_err(|e| format!("loop.db: {e}"))?;
        let uid = Command::new("id").args(["-u", user]).output().unwrap();
        if db.uid().to_string() != String::from_utf8_lossy(&uid.stdout).trim() {
            return Err("the database does not belong to the unit's user".into());
        }
        Ok(())
    };
    let result = installed();
    dpkg(&["--purge", "loop-backup"]);
    let left: Vec<&str> = [
        "/usr/bin/loop",
        "/lib/systemd/system/loop-server.service",
        "/lib/systemd/system/loop-agent.service",
        "/etc/loop/server.toml",
        "/etc/loop",
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect();
    let data_kept = Path::new("/var/lib/loop/loop.db").exists();
    let _ = std::fs::remove_dir_all("/var/lib/loop");
    result.unwrap();
    assert_eq!(left, Vec::<&str>::new(), "the purge removed these");
    assert!(data_kept, "the purge keeps the data directory");
}
