//! A real `loop server` process on a free port, and `loop` commands signed in to it.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use loop_testkit::postgres::Database;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// The `loop` binary the helpers below run: this build's, unless a test switched to another
/// release's with [`use_release`] (tests/upgrade.rs).
static BINARY: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

/// Runs servers and commands started from now on with the `loop` binary `bin`, or with
/// this build's when `None`.
pub fn use_release(bin: Option<PathBuf>) {
    *BINARY.lock().unwrap() = bin;
}

fn loop_binary() -> PathBuf {
    BINARY
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_loop").into())
}

/// A child process killed (SIGKILL) and reaped when dropped: an agent a test runs.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Server {
    child: Child,
    pub url: String,
    pub fingerprint: String,
    pub data_dir: PathBuf,
    /// The PostgreSQL database, when the run asks for one (a restart keeps it).
    database: Option<Arc<Database>>,
}

impl Server {
    /// Starts `loop server` on 127.0.0.1 with a fresh data directory, and an optional
    /// configuration file.
    pub fn start(data_dir: &Path, config: Option<&Path>) -> Server {
        Server::start_logging(data_dir, config, None)
    }

    /// [`Server::start`], with the access log (one line per request) written to `log`.
    pub fn start_logging(data_dir: &Path, config: Option<&Path>, log: Option<&Path>) -> Server {
        let database = loop_testkit::postgres::for_server().map(Arc::new);
        Server::start_at("127.0.0.1:0", data_dir, database, config, log, &[])
    }

    /// Starts `loop server` on `database` (PostgreSQL), or on SQLite in `data_dir` when
    /// `None`.
    pub fn start_on(data_dir: &Path, database: Option<Arc<Database>>, config: &Path) -> Server {
        Server::start_at("127.0.0.1:0", data_dir, database, Some(config), None, &[])
    }

    /// [`Server::start`] (on SQLite) with `env` set in the server's environment.
    pub fn start_with_env(data_dir: &Path, config: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_at("127.0.0.1:0", data_dir, None, Some(config), None, env)
    }

    /// The PostgreSQL database the server runs on, when the run asks for one.
    pub fn database(&self) -> Option<Arc<Database>> {
        self.database.clone()
    }

    /// Starts a node on `database`, which other nodes share, with `config` and the access
    /// log in `log`.
    pub fn start_node(
        data_dir: &Path,
        database: Arc<Database>,
        config: &Path,
        log: &Path,
    ) -> Server {
        Server::start_at(
            "127.0.0.1:0",
            data_dir,
            Some(database),
            Some(config),
            Some(log),
            &[],
        )
    }

    /// The address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url
            .trim_start_matches("https://")
            .parse()
            .expect("an IP address and port")
    }

    /// `loop server ARGS` (an operator's command such as `rewrap-keys`) on this server's
    /// data directory and database, with `config`.
    pub fn operator(&self, config: Option<&Path>, args: &[&str]) -> Command {
        let mut cmd = Command::new(loop_binary());
        cmd.arg("server")
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LOOP_") {
                cmd.env_remove(&key);
            }
        }
        if let Some(d) = &self.database {
            cmd.env("LOOP_DATABASE_URL", &d.url);
        }
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd
    }

    /// Starts the server again after [`Server::kill`], on the same address, data and
    /// configuration (as a restart after a crash).
    pub fn restart(&mut self, config: Option<&Path>) {
        let address = self.url.trim_start_matches("https://").to_string();
        let again = Server::start_at(
            &address,
            &self.data_dir,
            self.database.clone(),
            config,
            None,
            &[],
        );
        assert_eq!(again.url, self.url);
        // The old value's Drop kills the (already dead) old child; the new one takes over.
        let old = std::mem::replace(self, again);
        drop(old);
    }

    fn start_at(
        listen: &str,
        data_dir: &Path,
        database: Option<Arc<Database>>,
        config: Option<&Path>,
        log: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Server {
        let mut cmd = Command::new(loop_binary());
        cmd.envs(env.iter().copied());
        cmd.args(["server", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .env("LOOP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        match log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("server log file");
                cmd.env("LOOP_LOG", "warn,loop_server::access_log=info")
                    .stderr(file);
            }
            None => {
                cmd.env("LOOP_LOG", "warn").stderr(Stdio::inherit());
            }
        }
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LOOP_") && key != "LOOP_LOG" {
                cmd.env_remove(&key);
            }
        }
        cmd.env("LOOP_ADMIN_PASSWORD", ADMIN_PASSWORD);
        if let Some(d) = &database {
            cmd.env("LOOP_DATABASE_URL", &d.url);
        }
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd.spawn().expect("start loop server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        let mut fingerprint = None;
        while url.is_none() || fingerprint.is_none() {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("loop server exited before it printed its address");
            };
            if let Some(u) = line.strip_prefix("loop server listening on ") {
                url = Some(u.trim().to_string());
            }
            if let Some(f) = line.strip_prefix("certificate SHA-256 fingerprint: ") {
                fingerprint = Some(f.trim().to_string());
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            url: url.unwrap(),
            fingerprint: fingerprint.unwrap(),
            data_dir: data_dir.to_path_buf(),
            database,
        }
    }

    /// `loop` trusting this server by fingerprint, with its own config directory (so each
    /// signed-in person keeps their own session).
    pub fn cli(&self, config_dir: &Path) -> Command {
        let mut c = Command::new(loop_binary());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LOOP_") {
                c.env_remove(&key);
            }
        }
        c.env("LOOP_CONFIG_DIR", config_dir)
            .env("XDG_CACHE_HOME", config_dir.join("cache"))
            .env("LOOP_SERVER_FINGERPRINT", &self.fingerprint)
            .stdin(Stdio::null());
        c
    }
}

impl Server {
    /// Signs the provider's first admin in, keeping the session in `config_dir` (then use
    /// [`Server::as_user`] with it).
    pub fn sign_in_provider_admin(&self, config_dir: &Path) {
        ok(self
            .as_user(
                config_dir,
                &["login", "--server", &self.url, "--email", "admin@localhost"],
            )
            .env("LOOP_LOGIN_PASSWORD", ADMIN_PASSWORD));
    }

    /// `loop ARGS` as the person whose session lives in `config_dir`.
    pub fn as_user(&self, config_dir: &Path, args: &[&str]) -> Command {
        let mut c = self.cli(config_dir);
        c.args(args);
        c
    }

    /// A raw vault-protocol request with a token: (status, problem code or body text).
    pub fn vault_request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, String) {
        let pem = std::fs::read(self.data_dir.join("tls-cert.pem")).expect("server certificate");
        let client = reqwest::blocking::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("PEM")])
            .build()
            .expect("HTTPS client");
        let mut req = client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req
                .header("x-loop-content-blake3", blake3::hash(&b).to_hex().as_str())
                .body(b);
        }
        let r = req.send().expect("the server answers");
        let status = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        let code = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["code"].as_str().map(String::from));
        (status, code.unwrap_or(text))
    }

    /// `GET /metrics` from this machine (an allowed address by default): the text.
    pub fn metrics(&self) -> String {
        let (status, text) = self.vault_request(reqwest::Method::GET, "/metrics", "", None);
        assert_eq!(status, 200, "{text}");
        text
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server process at once (SIGKILL), as a crash or power loss would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command and requires success; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run loop");
    assert!(
        out.status.success(),
        "{cmd:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs a command that must fail; returns stderr.
pub fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run loop");
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded but should have failed\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).expect("utf-8")
}

pub fn json(cmd: &mut Command) -> serde_json::Value {
    serde_json::from_str(&ok(cmd.arg("--json"))).expect("JSON output")
}

/// Forwards connections to `to`, closing the first `refused` of them at once (the client
/// sees the connection end before any answer); the address to connect to.
pub fn flaky_proxy(to: SocketAddr, refused: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            let Ok(client) = client else { continue };
            if n < refused {
                continue;
            }
            let Ok(server) = TcpStream::connect(to) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut c_in, &mut s_out));
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || std::io::copy(&mut s_in, &mut c_out));
        }
    });
    at
}
