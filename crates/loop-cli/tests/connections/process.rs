//! A real `loop server` process with its own configuration, its log kept in a file, and
//! optionally a low open-file limit.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ADMIN_EMAIL: &str = "admin@localhost";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

pub struct Served {
    child: Child,
    pub addr: SocketAddr,
    pub cert_pem: Vec<u8>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Starts `loop server` on 127.0.0.1 with `config` (TOML) and a fresh data directory.
    pub fn start(config: &str) -> Served {
        Self::start_with(config, None)
    }

    /// As [`Served::start`], with at most `files` open file descriptors (soft and hard).
    pub fn start_with_file_limit(config: &str, files: u32) -> Served {
        Self::start_with(config, Some(files))
    }

    fn start_with(config: &str, files: Option<u32>) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let config_file = dir.path().join("server.toml");
        std::fs::write(&config_file, config).unwrap();
        let log = dir.path().join("server.log");
        let data_dir = dir.path().join("data");
        let mut cmd = match files {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_loop"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_loop")),
        };
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LOOP_") {
                cmd.env_remove(&key);
            }
        }
        cmd.args(["server", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config_file)
            .arg("--data-dir")
            .arg(&data_dir)
            .env("LOOP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("LOOP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().expect("start loop server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!(
                    "loop server exited before it printed its address: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            };
            if let Some(a) = line.strip_prefix("loop server listening on https://") {
                break a.trim().parse().expect("listen address");
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let cert_pem = std::fs::read(data_dir.join("tls-cert.pem")).expect("certificate");
        Served {
            child,
            addr,
            cert_pem,
            log,
            _dir: dir,
        }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// An HTTPS client that trusts this server's certificate.
    pub fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&self.cert_pem).unwrap()])
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    /// Signs the administrator in; returns the session token.
    pub fn sign_in(&self, client: &reqwest::blocking::Client) -> reqwest::Result<String> {
        let reply = client
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()?
            .error_for_status()?;
        let body: serde_json::Value = reply.json()?;
        Ok(body["session_token"]
            .as_str()
            .expect("session token")
            .to_string())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
