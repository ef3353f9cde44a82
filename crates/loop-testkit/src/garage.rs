//! A real, throw-away Garage S3 server for integration tests.
//!
//! [`Garage::start`] launches the `garage` binary (Garage v2.x, installed with
//! `cargo install garage --locked`) as a single-node cluster listening on
//! 127.0.0.1 with free ports, its config, metadata and data in a temporary
//! directory. It then uses the admin CLI against that node to apply a layout,
//! create a bucket and an access key with read/write/owner rights on it.
//! Dropping the [`Garage`] kills the server and deletes the directory.
//!
//! When the binary is missing the tests skip loudly, except under CI (env
//! `CI` set to anything but empty, `0` or `false`), where they panic: the
//! suite must never silently skip real-S3 coverage in CI.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::in_ci;

/// S3 region configured on the server (`s3_region`).
const REGION: &str = "garage";
/// Name of the bucket created on every fresh server.
const BUCKET: &str = "loop-test";
/// Name of the access key created on every fresh server.
const KEY_NAME: &str = "loop-test-key";
/// How many times the whole server start is attempted (ports are picked by
/// binding port 0 and releasing it, so another process may grab one first).
const START_ATTEMPTS: usize = 3;
/// Upper bound for the server to answer `garage status`.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for any single admin CLI invocation.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between readiness polls.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A running Garage cluster (one node, or three with replication factor 3) with one
/// bucket and one key; `endpoint` is the first node's S3 API.
pub struct Garage {
    /// S3 endpoint, `http://127.0.0.1:PORT` (path-style addressing).
    pub endpoint: String,
    /// S3 region, always `"garage"`.
    pub region: String,
    /// Bucket the key has read, write and owner rights on.
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    binary: PathBuf,
    config: PathBuf,
    child: Child,
    /// The other nodes of a cluster: (configuration, process; `None` while stopped).
    peers: Vec<(PathBuf, Option<Child>)>,
    cli_runs: usize,
    // Declared last: dropped after the child has been killed in `Drop`.
    dir: tempfile::TempDir,
}

impl Garage {
    /// Starts a fresh server.
    ///
    /// Returns `None` (after a loud message on stderr) when the `garage`
    /// binary is missing and `CI` is not set; panics when it is missing and
    /// `CI` is set, or when the server cannot be started or set up.
    pub fn start() -> Option<Garage> {
        Garage::start_nodes(1)
    }

    /// Starts a cluster of three nodes on 127.0.0.1, each in its own zone, with replication
    /// factor 3: every object is on every node, and any two of them answer.
    pub fn start_cluster() -> Option<Garage> {
        Garage::start_nodes(3)
    }

    fn start_nodes(nodes: usize) -> Option<Garage> {
        let Some(binary) = find_binary() else {
            if in_ci() {
                panic!(
                    "the `garage` binary (Garage v2.x) was not found on PATH nor in \
                     $HOME/.cargo/bin, and CI is set: real-S3 tests must not be skipped \
                     in CI. Install it with `cargo install garage --locked` (.ci/run does)."
                );
            }
            // Written to the real stderr rather than with `eprintln!`, which
            // libtest captures and hides for passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "\n########## SKIPPING REAL-S3 TEST ##########\n\
                 `garage` binary not found on PATH nor in $HOME/.cargo/bin.\n\
                 Install it with `cargo install garage --locked`.\n\
                 (With CI set this is a hard failure.)\n\
                 ##########################################\n"
            );
            return None;
        };

        let mut errors = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            match Self::try_start(&binary, nodes) {
                Ok(garage) => return Some(garage),
                Err(err) => {
                    eprintln!("garage start attempt {attempt}/{START_ATTEMPTS} failed: {err}");
                    errors.push(format!("attempt {attempt}: {err}"));
                }
            }
        }
        panic!(
            "could not start a Garage server with {}:\n{}",
            binary.display(),
            errors.join("\n")
        );
    }

    /// Environment variables pointing the `loop` CLI at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.as_str()),
            ("AWS_DEFAULT_REGION", self.region.as_str()),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Removes every inherited `AWS_*` variable from `cmd` (a developer's
    /// profile, session token or region must not leak into tests) and sets
    /// [`Garage::env`].
    pub fn configure<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(self.env())
    }

    /// Writes a `loop server` configuration under `dir` with a `local` destination and a
    /// `garage-eu` destination on this store; with `short_budgets`, retries and claim leases
    /// last seconds (failure-path tests). Returns its path.
    pub fn server_config(&self, dir: &Path, short_budgets: bool) -> PathBuf {
        let (limits, retries) = if short_budgets {
            (
                "[limits]\nclaim_lease_secs = 10\n",
                "retries = 1\nretry_secs = 3\n",
            )
        } else {
            ("", "")
        };
        let cfg = format!(
            r#"{limits}
[[destinations]]
name = "local"
jurisdiction = "eu"
backend = "local"
path = "{local}"

[[destinations]]
name = "garage-eu"
jurisdiction = "eu"
backend = "s3"
bucket = "{bucket}"
prefix = "loop-server"
endpoint = "{endpoint}"
region = "{region}"
access_key_id = "{key}"
secret_access_key = "{secret}"
allow_http = true
{retries}"#,
            local = dir.join("local-vaults").display(),
            bucket = self.bucket,
            endpoint = self.endpoint,
            region = self.region,
            key = self.access_key_id,
            secret = self.secret_access_key,
        );
        let path = dir.join("server.toml");
        fs::write(&path, cfg).expect("server config");
        path
    }

    /// The names of every object in the bucket under `prefix`, listed over S3 (what a
    /// client of the store sees, whoever wrote it).
    pub fn list(&self, prefix: &str) -> Vec<String> {
        use futures_util::TryStreamExt as _;
        use object_store::ObjectStore as _;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_endpoint(&self.endpoint)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(&self.secret_access_key)
            .with_allow_http(true)
            .build()
            .expect("an S3 client for Garage");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let prefix = object_store::path::Path::from(prefix);
        runtime.block_on(async {
            store
                .list(Some(&prefix))
                .map_ok(|m| m.location.to_string())
                .try_collect()
                .await
                .expect("listing the bucket")
        })
    }

    /// Stops the server process at once (SIGKILL), as a crashed or unreachable store.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same data, ports and keys, and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        self.child =
            spawn_server(&self.binary, &self.config, self.dir.path()).expect("restart garage");
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port()));
        self.poll("S3 port after restart", BOOT_TIMEOUT, |g| {
            g.check_alive()?;
            TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                .map(drop)
                .map_err(|e| format!("connecting to {addr}: {e}"))
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.server_log_tail()));
    }

    /// The S3 API port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("endpoint ends with a port")
    }

    fn try_start(binary: &Path, nodes: usize) -> Result<Garage, String> {
        let dir = tempfile::Builder::new()
            .prefix("loop-garage-")
            .tempdir()
            .map_err(|e| format!("creating tempdir: {e}"))?;
        let rpc_secret = random_hex(32)?;
        let replication = if nodes == 1 { 1 } else { 3 };
        // Node 0 lives in the directory itself, node i in `peer{i}`.
        let mut configs = Vec::new();
        let mut s3_port = 0;
        for i in 0..nodes {
            let home = match i {
                0 => dir.path().to_path_buf(),
                _ => dir.path().join(format!("peer{i}")),
            };
            fs::create_dir_all(&home).map_err(|e| format!("creating {}: {e}", home.display()))?;
            let (s3, rpc) = free_ports()?;
            if i == 0 {
                s3_port = s3;
            }
            let config = home.join("garage.toml");
            fs::write(
                &config,
                node_config(&home, s3, rpc, &rpc_secret, replication),
            )
            .map_err(|e| format!("writing config: {e}"))?;
            configs.push(config);
        }
        let config = configs.remove(0);
        let child = spawn_server(binary, &config, dir.path())?;
        // From here on, an early return drops `garage`, which kills the children.
        let mut garage = Garage {
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            region: REGION.to_owned(),
            bucket: BUCKET.to_owned(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            binary: binary.to_owned(),
            config,
            child,
            peers: Vec::new(),
            cli_runs: 0,
            dir,
        };
        for peer in configs {
            let home = peer.parent().expect("a peer directory").to_path_buf();
            let child = spawn_server(binary, &peer, &home)?;
            garage.peers.push((peer, Some(child)));
        }
        garage
            .setup(s3_port)
            .map_err(|e| format!("{e}\n{}", garage.server_log_tail()))?;
        Ok(garage)
    }

    /// Stops node `i` of a cluster (1 or 2) at once (SIGKILL).
    pub fn stop_peer(&mut self, i: usize) {
        if let Some(mut child) = self.peers[i - 1].1.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` of a cluster again on its data.
    pub fn start_peer(&mut self, i: usize) {
        let config = self.peers[i - 1].0.clone();
        let home = config.parent().expect("a peer directory").to_path_buf();
        self.stop_peer(i);
        self.peers[i - 1].1 = Some(spawn_server(&self.binary, &config, &home).expect("garage"));
    }

    fn setup(&mut self, s3_port: u16) -> Result<(), String> {
        // 1. Wait until the node answers the admin CLI; take its ID from the
        //    first column of the `==== HEALTHY NODES ====` table.
        let status = self.poll("garage status", BOOT_TIMEOUT, |g| g.cli(&["status"]))?;
        let node_id = parse_node_id(&status)
            .ok_or_else(|| format!("no node ID in `garage status` output:\n{status}"))?;

        // 2. The layout: every node in a zone of its own (a cluster's peers first join
        //    the first node).
        let mut ids = vec![node_id];
        let peers: Vec<PathBuf> = self.peers.iter().map(|(c, _)| c.clone()).collect();
        for peer in peers {
            let full = self.poll("peer node id", BOOT_TIMEOUT, |g| {
                g.cli_on(&peer, &["node", "id", "-q"])
            })?;
            let full = full.trim().to_string();
            self.cli(&["node", "connect", &full])?;
            ids.push(full.split('@').next().unwrap_or_default().to_string());
        }
        for (i, id) in ids.iter().enumerate() {
            let zone = format!("dc{}", i + 1);
            self.cli(&["layout", "assign", "-z", &zone, "-c", "1G", id])?;
        }
        self.cli(&["layout", "apply", "--version", "1"])?;

        // 3. Bucket and key. Retried briefly in case the new layout is not
        //    yet active when the first table write arrives.
        self.poll("bucket create", Duration::from_secs(30), |g| {
            g.cli(&["bucket", "create", BUCKET])
        })?;
        let key_info = self.cli(&["key", "create", KEY_NAME])?;
        let (id, secret) = parse_key(&key_info)
            .ok_or_else(|| format!("no key ID / secret in `key create` output:\n{key_info}"))?;
        self.access_key_id = id;
        self.secret_access_key = secret;
        self.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", KEY_NAME,
        ])?;

        // 4. The S3 listener accepts connections.
        let addr = SocketAddr::from(([127, 0, 0, 1], s3_port));
        self.poll("S3 port", BOOT_TIMEOUT, |g| {
            g.check_alive()?;
            TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                .map(drop)
                .map_err(|e| format!("connecting to {addr}: {e}"))
        })?;
        Ok(())
    }

    /// Retries `f` every [`POLL_INTERVAL`] until it succeeds or `timeout`
    /// passes; fails right away if the server process has exited.
    fn poll<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            match f(self) {
                Ok(v) => return Ok(v),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "{what}: not ready after {timeout:?}; last error: {e}"
                    ));
                }
                Err(_) => thread::sleep(POLL_INTERVAL),
            }
        }
    }

    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("garage server exited early: {status}")),
            Err(e) => Err(format!("waiting on garage server: {e}")),
        }
    }

    /// Runs `garage -c CONFIG ARGS...` with a timeout; returns its stdout.
    fn cli(&mut self, args: &[&str]) -> Result<String, String> {
        self.cli_on(&self.config.clone(), args)
    }

    /// Runs `garage -c CONFIG ARGS...` against the node of `config`.
    fn cli_on(&mut self, config: &Path, args: &[&str]) -> Result<String, String> {
        self.cli_runs += 1;
        let n = self.cli_runs;
        let out_path = self.dir.path().join(format!("cli-{n}.stdout"));
        let err_path = self.dir.path().join(format!("cli-{n}.stderr"));
        let create = |p: &Path| fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
        let mut cmd = Command::new(&self.binary);
        clean_env(&mut cmd);
        let mut child = cmd
            .arg("-c")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(create(&out_path)?)
            .stderr(create(&err_path)?)
            .spawn()
            .map_err(|e| format!("spawning garage {}: {e}", args.join(" ")))?;
        let deadline = Instant::now() + CLI_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "`garage {}` timed out after {CLI_TIMEOUT:?}",
                        args.join(" ")
                    ));
                }
                Err(e) => return Err(format!("waiting on garage {}: {e}", args.join(" "))),
            }
        };
        let stdout = fs::read_to_string(&out_path).unwrap_or_default();
        if status.success() {
            Ok(stdout)
        } else {
            let stderr = fs::read_to_string(&err_path).unwrap_or_default();
            Err(format!(
                "`garage {}` failed ({status}):\n{stdout}{stderr}",
                args.join(" ")
            ))
        }
    }

    fn server_log_tail(&self) -> String {
        let mut text = String::new();
        for name in ["server.stdout.log", "server.stderr.log"] {
            let log = fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            text.push_str(&format!("--- {name} (last {} lines) ---\n", tail.len()));
            for line in tail {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for i in 1..=self.peers.len() {
            self.stop_peer(i);
        }
    }
}

/// `garage` on PATH, else `$HOME/.cargo/bin/garage`.
fn find_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("garage"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let in_cargo = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/garage"));
    on_path.into_iter().chain(in_cargo).find(|p| p.is_file())
}

/// Drops inherited `GARAGE_*` variables (config path, RPC host/secret,
/// admin token, default keys...) so only our config file is used.
fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GARAGE_") {
            cmd.env_remove(&key);
        }
    }
}

/// The configuration of a node whose metadata and data live under `home`.
fn node_config(home: &Path, s3_port: u16, rpc_port: u16, secret: &str, replication: u8) -> String {
    format!(
        r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = {replication}

rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
"#,
        meta = home.join("meta").display(),
        data = home.join("data").display(),
    )
}

/// Starts `garage server` on `config`, its output in `home`'s log files.
fn spawn_server(binary: &Path, config: &Path, home: &Path) -> Result<Child, String> {
    let log = |name: &str| {
        fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(home.join(name))
            .map_err(|e| format!("opening {name}: {e}"))
    };
    let mut server = Command::new(binary);
    clean_env(&mut server);
    server
        .arg("-c")
        .arg(config)
        .arg("server")
        .env("RUST_LOG", "warn,garage=info")
        .stdin(Stdio::null())
        .stdout(log("server.stdout.log")?)
        .stderr(log("server.stderr.log")?)
        .spawn()
        .map_err(|e| format!("spawning {} server: {e}", binary.display()))
}

/// Two distinct free TCP ports on 127.0.0.1 (both held while picking).
fn free_ports() -> Result<(u16, u16), String> {
    let bind = || TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a free port: {e}"));
    let (a, b) = (bind()?, bind()?);
    let port = |l: &TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(|e| format!("local_addr: {e}"))
    };
    Ok((port(&a)?, port(&b)?))
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// First column of the first row that looks like a node ID (hex, at least
/// 16 characters) in `garage status` output.
fn parse_node_id(status: &str) -> Option<String> {
    status
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .find(|tok| tok.len() >= 16 && tok.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// `Key ID:` and `Secret key:` values from `garage key create` output.
fn parse_key(info: &str) -> Option<(String, String)> {
    let field = |label: &str| {
        info.lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    Some((field("Key ID:")?, field("Secret key:")?))
}
