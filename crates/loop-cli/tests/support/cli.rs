//! Drives the real `loop` binary against a throw-away repository.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "correct horse battery staple";

/// A temporary directory with a repository location and a scratch area.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: String,
    extra_env: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo").display().to_string();
        Env {
            dir,
            repo,
            extra_env: Vec::new(),
        }
    }

    /// A repository at another location (for example `s3://bucket/prefix`).
    pub fn with_repo(repo: &str, env: Vec<(String, String)>) -> Env {
        let mut e = Env::new();
        e.repo = repo.to_string();
        e.extra_env = env;
        e
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `loop` with the repository and passphrase set, and cheap key derivation.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_loop"));
        c.env_remove("LOOP_PASSWORD_FILE")
            .env("LOOP_REPOSITORY", &self.repo)
            .env("LOOP_PASSWORD", PASSWORD)
            .env("XDG_CACHE_HOME", self.dir.path().join(".cache"))
            .env("LOOP_CONFIG_DIR", self.dir.path().join(".config"))
            .args(["--kdf-memory", "64", "--kdf-passes", "1"])
            .stdin(Stdio::null());
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run loop")
    }

    /// Runs and requires exit code 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "loop {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs with one extra environment variable (another passphrase, say).
    pub fn run_with(&self, key: &str, value: &str, args: &[&str]) -> Output {
        self.cmd()
            .env(key, value)
            .args(args)
            .output()
            .expect("run loop")
    }

    /// Restores the latest snapshot into a fresh directory and requires it to equal `src`
    /// (a backed-up directory, found in the snapshot under its last path component).
    pub fn assert_latest_restores(&self, src: &Path) {
        let target = tempfile::tempdir_in(self.dir.path()).expect("tempdir");
        self.ok(&[
            "restore",
            "latest",
            "--target",
            target.path().to_str().unwrap(),
        ]);
        assert_same_tree(
            src,
            &target.path().join(src.file_name().expect("named dir")),
        );
    }

    /// Runs and requires exit code 1 (failure); returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "loop {args:?} should fail\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ok(&a);
        serde_json::from_str(out.lines().last().unwrap_or_default()).expect("json output")
    }

    /// The IDs of the repository's snapshots, oldest first.
    pub fn snapshot_ids(&self) -> Vec<String> {
        let snaps = self.json(&["snapshots"]);
        (snaps.as_array().expect("a list").iter())
            .map(|s| s["id"].as_str().expect("an ID").to_string())
            .collect()
    }

    pub fn init(&self) {
        self.ok(&["init"]);
    }

    /// Backs up and returns the summary JSON.
    pub fn backup(&self, paths: &[&Path], extra: &[&str]) -> serde_json::Value {
        let mut args: Vec<&str> = vec!["backup"];
        let strs: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        args.extend(strs.iter().map(String::as_str));
        args.extend_from_slice(extra);
        self.json(&args)
    }
}

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use loop_testkit::data::{noise, text, write};
#[allow(unused_imports)]
pub use loop_testkit::tree::*;

/// Every pack file of a local repository.
pub fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let data = repo.join("data");
    if let Ok(rd) = fs::read_dir(&data) {
        for fan in rd.flatten() {
            for f in fs::read_dir(fan.path()).expect("fan dir").flatten() {
                let n = f.file_name();
                if n.len() == 64 {
                    out.push(f.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// Every lock marker of a local repository.
pub fn markers(repo: &Path) -> Vec<PathBuf> {
    fs::read_dir(repo.join("locks"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

pub fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|rd| rd.flatten().filter(|e| e.file_name().len() == 64).count())
        .unwrap_or(0)
}

/// A `loop backup --stdin` that has read some data and waits for the rest.
pub struct RunningBackup {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Standard error goes to a file: nothing drains a pipe while the test feeds the backup.
    stderr: PathBuf,
}

impl RunningBackup {
    /// Starts `cmd` as a backup of standard input (`stream.bin`) and feeds it `first`,
    /// keeping standard input open. Its standard error goes to `stderr`.
    pub fn start(mut cmd: Command, first: &[u8], stderr: PathBuf) -> RunningBackup {
        let mut child = cmd
            .args([
                "backup",
                "--stdin",
                "--stdin-filename",
                "stream.bin",
                "--index-flush-secs",
                "3600",
                // Small fixed chunks: the chunker holds back little, so a pack is stored
                // after about one pack's worth of input.
                "--fixed-chunks",
                "1048576",
                "--json",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start backup");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(first).expect("feed the backup");
        RunningBackup {
            child,
            stdin: Some(stdin),
            stderr,
        }
    }

    /// Sends the rest, closes standard input and waits: (success, stdout, stderr).
    pub fn finish(mut self, rest: &[u8]) -> (bool, String, String) {
        let mut stdin = self.stdin.take().expect("stdin open");
        stdin.write_all(rest).expect("feed the backup");
        drop(stdin);
        let out = self.child.wait_with_output().expect("backup ends");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        )
    }
}

/// Waits (bounded) until the repository at `repo` holds at least `n` packs; fails the test otherwise.
pub fn wait_for_packs(repo: &Path, n: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let found = packs(repo);
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "the backup stored {} packs, expected {n}",
            found.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every object file of a vault at a local destination (`dir`) but lock markers: relative
/// path → BLAKE3 of its bytes. (A write cut off by a kill leaves a local store's `NAME#N`
/// staging file, which is no object; the staging sweep removes it a day later.)
pub fn object_files(dir: &Path) -> std::collections::BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
                if !rel.starts_with("locks/") && !rel.contains('#') {
                    let hash = blake3::hash(&std::fs::read(&p).unwrap());
                    out.insert(rel, hash.to_hex().to_string());
                }
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}
