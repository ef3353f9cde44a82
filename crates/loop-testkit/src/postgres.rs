//! A real PostgreSQL cluster for the tests, shared by every test process of a run.
//!
//! [`Cluster::shared`] finds Debian's PostgreSQL binaries (`/usr/lib/postgresql/N/bin`, or
//! `initdb` on `PATH`), and the first test process that asks creates a cluster (`initdb`)
//! under the system temporary directory (or `LOOP_TEST_POSTGRES_DIR`) and starts it
//! (`pg_ctl`) on a free port of 127.0.0.1; a file lock makes every other process of the
//! run wait for it and then share it. PostgreSQL refuses to run as root, so when the tests
//! run as root the cluster runs as `nobody` (`setpriv`). It is tuned for throw-away data (no
//! fsync) and keeps running after the tests, so the next run starts at once; `.ci/run`
//! stops its own.
//!
//! Each test takes a fresh, empty database ([`Cluster::database`]), dropped with it.
//! [`for_server`] is what the servers under test use: a database when the run asks for
//! PostgreSQL (`LOOP_TEST_DATABASE=postgres`, which CI sets for its second pass over the
//! service's suites), none (SQLite) otherwise.
//!
//! When PostgreSQL is missing, a test that needs it skips loudly, except under CI or when
//! the run asked for PostgreSQL, where it fails.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::in_ci;

/// The superuser the cluster is made with; it signs in without a password (`trust`), from
/// 127.0.0.1 only.
const SUPERUSER: &str = "loop";
/// The unprivileged account the cluster runs as when the tests run as root.
const NOBODY: u32 = 65534;

/// True when the run asks the servers under test to use PostgreSQL.
pub fn wanted() -> bool {
    std::env::var("LOOP_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// A fresh database for a server under test when the run asks for PostgreSQL
/// ([`wanted`]); `None` means SQLite in the server's data directory.
pub fn for_server() -> Option<Database> {
    if !wanted() {
        return None;
    }
    let cluster = Cluster::shared().unwrap_or_else(|| {
        panic!("LOOP_TEST_DATABASE=postgres, but PostgreSQL's binaries were not found")
    });
    Some(cluster.database())
}

/// A running cluster this process may create databases in.
#[derive(Clone, Debug)]
pub struct Cluster {
    bin: PathBuf,
    port: u16,
}

/// One empty database of the shared cluster; dropped (with any connection still open to
/// it) when this is dropped.
pub struct Database {
    /// `postgres://loop@127.0.0.1:PORT/NAME`
    pub url: String,
    pub name: String,
    cluster: Cluster,
}

impl Database {
    /// Everything the database holds, as `pg_dump` writes it (SQL text).
    pub fn dump(&self) -> Vec<u8> {
        let out = self
            .cluster
            .client("pg_dump")
            .arg(&self.name)
            .output()
            .expect("running pg_dump");
        check(&out, "pg_dump");
        out.stdout
    }
}

impl Database {
    /// Backs the database up into `file` as an operator would: `pg_dump --format=custom`.
    pub fn back_up(&self, file: &std::path::Path) {
        let out = self
            .cluster
            .client("pg_dump")
            .args(["--format=custom", "--file"])
            .arg(file)
            .arg(&self.name)
            .output()
            .expect("running pg_dump");
        check(&out, "pg_dump");
    }

    /// A fresh database of the same cluster, restored from `file` (from
    /// [`Database::back_up`]) by `pg_restore`.
    pub fn restored(&self, file: &std::path::Path) -> Database {
        let db = self.cluster.database();
        let out = self
            .cluster
            .client("pg_restore")
            .args(["--exit-on-error", "--no-owner", "--dbname", &db.name])
            .arg(file)
            .output()
            .expect("running pg_restore");
        check(&out, "pg_restore");
        db
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self
            .cluster
            .client("dropdb")
            .args(["--force", "--if-exists", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

impl Cluster {
    /// The run's shared cluster, started when it is not running. `None` (after a loud
    /// message) when PostgreSQL is not installed and neither CI nor the run require it.
    pub fn shared() -> Option<Cluster> {
        let Some(bin) = find_bin() else {
            if in_ci() || wanted() {
                panic!(
                    "PostgreSQL's binaries (initdb, pg_ctl) were not found in \
                     /usr/lib/postgresql/*/bin nor on PATH, and CI is set: the PostgreSQL \
                     tests must not be skipped in CI. Install Debian's `postgresql` package \
                     (.ci/run does)."
                );
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n########## SKIPPING POSTGRESQL TEST ##########\n\
                 PostgreSQL's binaries were not found (apt-get install postgresql).\n\
                 (With CI set this is a hard failure.)\n"
            );
            return None;
        };
        let root = std::env::var_os("LOOP_TEST_POSTGRES_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!(
                    "loop-test-postgres-{}",
                    rustix::process::getuid().as_raw()
                ))
            });
        fs::create_dir_all(&root).expect("the cluster's directory");
        let lock = fs::File::create(root.join("lock")).expect("the cluster's lock file");
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .expect("locking the cluster's directory");
        let port_file = root.join("port");
        let running = fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse::<u16>().ok())
            .filter(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok());
        let port = match running {
            Some(port) => port,
            None => {
                let port = start(&bin, &root);
                fs::write(&port_file, port.to_string()).expect("writing the cluster's port");
                port
            }
        };
        // The lock goes with `lock`.
        Some(Cluster { bin, port })
    }

    /// A fresh, empty database.
    pub fn database(&self) -> Database {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            &blake3::hash(format!("{:?}", std::time::SystemTime::now()).as_bytes()).to_hex()[..8]
        );
        let out = self
            .client("createdb")
            .arg(&name)
            .output()
            .expect("running createdb");
        check(&out, "createdb");
        Database {
            url: format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port),
            name,
            cluster: self.clone(),
        }
    }

    /// A client program of the cluster's version (`psql`, `createdb`, ...), pointed at it.
    pub fn client(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            SUPERUSER,
        ]);
        c
    }
}

/// The directory holding `initdb` and `pg_ctl`: `LOOP_TEST_PG_BIN`, the newest
/// `/usr/lib/postgresql/N/bin`, or the one on `PATH`.
fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LOOP_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(PathBuf::from)
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

/// Creates the cluster in `root/data` when there is none, starts it on a free port and
/// returns the port.
fn start(bin: &Path, root: &Path) -> u16 {
    let data = root.join("data");
    let as_root = rustix::process::geteuid().is_root();
    if data.join("postmaster.pid").exists() {
        // A cluster that died or whose port was taken: make sure it is down.
        let _ = server_command(bin, "pg_ctl", root, as_root)
            .args(["-D", path_str(&data), "-m", "immediate", "stop"])
            .output();
    }
    if !data.join("PG_VERSION").exists() {
        let _ = fs::remove_dir_all(&data);
        fs::create_dir_all(&data).expect("the cluster's data directory");
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).expect("chmod");
        if as_root {
            std::os::unix::fs::chown(&data, Some(NOBODY), Some(NOBODY)).expect("chown");
        }
        let out = server_command(bin, "initdb", root, as_root)
            .args(["-D", path_str(&data), "-U", SUPERUSER, "--auth=trust"])
            .args(["-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .expect("running initdb");
        check(&out, "initdb");
    }
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("its address").port()
    };
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
         -c max_connections=300 -c shared_buffers=64MB"
    );
    let log = data.join("server.log");
    let out = server_command(bin, "pg_ctl", root, as_root)
        .args([
            "-D",
            path_str(&data),
            "-l",
            path_str(&log),
            "-w",
            "-t",
            "60",
        ])
        .args(["-o", &options, "start"])
        .output()
        .expect("running pg_ctl");
    if !out.status.success() {
        let log = fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "pg_ctl start failed: {}\n{}\nserver log:\n{log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    port
}

/// `program` of the server, run as `nobody` when the tests run as root.
fn server_command(bin: &Path, program: &str, root: &Path, as_root: bool) -> Command {
    let mut c = if as_root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &NOBODY.to_string(),
            "--regid",
            &NOBODY.to_string(),
        ])
        .arg("--clear-groups")
        .arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    };
    c.current_dir(root).stdin(Stdio::null());
    c
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
