//! Opening a repository from the command line: location, S3 settings and the passphrase.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use loop_agent::{VaultSession, VaultStorage};
use loop_repo::keys::{KdfParams, Secret};
use loop_repo::pace::{Limits, Pace, PacedStorage};
use loop_repo::{ObjectStorage, Repository, RetryBudget, S3Options, Storage};
use zeroize::Zeroize;

use crate::args::Global;
use crate::known_vaults::KnownVaults;

/// A passphrase, overwritten in memory when dropped.
pub struct Passphrase(pub Vec<u8>);

impl Drop for Passphrase {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

pub fn s3_options(g: &Global) -> S3Options {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    S3Options {
        endpoint: g
            .s3_endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| env("AWS_ENDPOINT")),
        region: env("AWS_DEFAULT_REGION").or_else(|| env("AWS_REGION")),
        access_key_id: env("AWS_ACCESS_KEY_ID"),
        secret_access_key: env("AWS_SECRET_ACCESS_KEY"),
        session_token: env("AWS_SESSION_TOKEN"),
        allow_http: env("AWS_ALLOW_HTTP").is_some_and(|v| v == "true" || v == "1"),
        retry: retry_budget(g, RetryBudget::default()),
    }
}

/// `--retries` and `--retry-secs` over `default`.
pub(crate) fn retry_budget(g: &Global, default: RetryBudget) -> RetryBudget {
    RetryBudget {
        max_retries: g.retries.unwrap_or(default.max_retries),
        timeout: g
            .retry_secs
            .map(std::time::Duration::from_secs)
            .unwrap_or(default.timeout),
    }
}

pub fn storage(g: &Global, create: bool) -> Result<Arc<dyn Storage>> {
    let Some(repo) = &g.repo else {
        bail!("no repository given: use --repo or set LOOP_REPOSITORY");
    };
    if let Some((storage, _)) = remote(g)? {
        return Ok(storage);
    }
    let store = Arc::new(ObjectStorage::open(repo, &s3_options(g), create)?);
    Ok(PacedStorage::wrap(store, limits(g)))
}

/// The bandwidth limits of this process (`--limit-upload`, `--limit-download`): one line
/// each way, shared by every storage the command or agent opens.
pub fn limits(g: &Global) -> Limits {
    static LIMITS: std::sync::OnceLock<Limits> = std::sync::OnceLock::new();
    LIMITS
        .get_or_init(|| {
            let threads = match g.threads {
                0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
                n => n,
            };
            Limits {
                upload: g.limit_upload.and_then(Pace::kib_per_sec),
                download: g.limit_download.and_then(Pace::kib_per_sec),
                // The worker threads, and the tree packer, index writer and lock refresher.
                sharing: u32::try_from(threads).unwrap_or(u32::MAX).saturating_add(3),
            }
        })
        .clone()
}

/// A vault on a server (`https://HOST:PORT/vaults/ID`), opened with LOOP_TOKEN: its storage
/// and what the server granted.
pub fn remote(g: &Global) -> Result<Option<(Arc<VaultStorage>, VaultSession)>> {
    let Some(repo) = &g.repo else {
        return Ok(None);
    };
    if !repo.starts_with("https://") {
        return Ok(None);
    }
    let Some((base, vault)) = loop_agent::parse_vault_url(repo) else {
        bail!("{repo}: a server repository looks like https://HOST:PORT/vaults/VAULT_ID");
    };
    let token = std::env::var("LOOP_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .context("a server repository needs a device or API token in LOOP_TOKEN")?;
    let conn = loop_agent::Connection::new(&base, &g.trust())?;
    let storage = loop_agent::VaultStorage::new(conn, &vault, &token)
        .with_retry(retry_budget(g, loop_agent::SERVER_RETRY))
        .with_limits(limits(g));
    let op = if g.operation.is_empty() {
        "open"
    } else {
        &g.operation
    };
    let session = storage
        .open(op, &hostname())
        .with_context(|| format!("opening vault {vault} on {base}"))?;
    Ok(Some((Arc::new(storage), session)))
}

/// Opens the repository; for a server vault also returns the session the server granted.
/// A managed vault opens with the key the server handed over, anything else with the
/// passphrase.
pub fn open_with_session(g: &Global) -> Result<(Repository, Option<VaultSession>)> {
    let by_passphrase = |storage| {
        let pass = passphrase(g)?;
        Ok(Repository::open(storage, Secret::Passphrase(&pass.0))?)
    };
    let (mut repo, session) = match remote(g)? {
        Some((storage, session)) => (
            open_served(storage, &session, &known_vaults(), by_passphrase)?,
            Some(session),
        ),
        None => (by_passphrase(storage(g, false)?)?, None),
    };
    if let Some(root) = remote_cache(g) {
        repo = repo.with_cache(&root);
    }
    Ok((repo, session))
}

/// Opens a server vault's repository (`session` is what the server granted at open): with
/// the key the server handed over when it holds the vault's key, else as `by_passphrase`
/// does. A server's key for a vault this client has opened with a passphrase is refused
/// (crate::known_vaults); a vault that opened with a passphrase is recorded there.
pub fn open_served(
    storage: Arc<VaultStorage>,
    session: &VaultSession,
    known: &KnownVaults,
    by_passphrase: impl FnOnce(Arc<dyn Storage>) -> Result<Repository>,
) -> Result<Repository> {
    let vault_id = storage.vault_id().to_string();
    match &session.key {
        Some(key) => {
            known.check_offered_key(&vault_id)?;
            Ok(Repository::open(storage, Secret::RawKey(key))?)
        }
        None => {
            let repo = by_passphrase(storage)?;
            known.remember(&vault_id);
            Ok(repo)
        }
    }
}

/// The vaults this user's `loop` has opened with a passphrase: `known-vaults` in the
/// configuration directory (LOOP_CONFIG_DIR, else XDG_CONFIG_HOME/loop, else
/// ~/.config/loop); none without a home directory.
pub fn known_vaults() -> KnownVaults {
    KnownVaults::at(
        crate::service::config_dir()
            .ok()
            .map(|d| d.join("known-vaults")),
    )
}

/// Where to cache a remote repository's metadata (loop_repo::cache), when this command
/// benefits: backups and reads. Not check, prune or forget, which must see what storage
/// holds, and not local repositories, where a read costs no round trip.
fn remote_cache(g: &Global) -> Option<PathBuf> {
    let repo = g.repo.as_deref()?;
    let remote = repo.starts_with("https://") || repo.starts_with("s3://");
    if !remote {
        return None;
    }
    cache_for(g, &g.operation)
}

/// The cache of a remote repository's trees and index for `operation`: backups, restores
/// and browsing keep one (under `--cache-dir`, `$XDG_CACHE_HOME/loop` or `~/.cache/loop`)
/// unless `--no-cache` says otherwise; other operations read afresh.
pub(crate) fn cache_for(g: &Global, operation: &str) -> Option<PathBuf> {
    if g.no_cache || !matches!(operation, "backup" | "restore" | "browse") {
        return None;
    }
    cache_root(g)
}

/// Where the caches of remote repositories live: `--cache-dir`, `$XDG_CACHE_HOME/loop` or
/// `~/.cache/loop`.
pub(crate) fn cache_root(g: &Global) -> Option<PathBuf> {
    let env_dir = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    g.cache_dir
        .clone()
        .or_else(|| env_dir("XDG_CACHE_HOME").map(|d| d.join("loop")))
        .or_else(|| env_dir("HOME").map(|d| d.join(".cache/loop")))
}

fn read_password_file(path: &std::path::Path) -> Result<Passphrase> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Passphrase(line.to_vec()))
}

fn prompt(label: &str) -> Result<Passphrase> {
    if !std::io::stdin().is_terminal() {
        bail!("no passphrase: set LOOP_PASSWORD or --password-file, or run on a terminal");
    }
    let p = rpassword::prompt_password(label).context("reading the passphrase")?;
    Ok(Passphrase(p.into_bytes()))
}

/// The passphrase for an existing repository.
pub fn passphrase(g: &Global) -> Result<Passphrase> {
    if let Some(f) = &g.password_file {
        return read_password_file(f);
    }
    if let Ok(p) = std::env::var("LOOP_PASSWORD") {
        return Ok(Passphrase(p.into_bytes()));
    }
    prompt("enter passphrase for repository: ")
}

/// A new passphrase: from a file, LOOP_NEW_PASSWORD, or typed twice.
pub fn new_passphrase(file: Option<&std::path::Path>, env_name: &str) -> Result<Passphrase> {
    if let Some(f) = file {
        return read_password_file(f);
    }
    if let Ok(p) = std::env::var(env_name) {
        return Ok(Passphrase(p.into_bytes()));
    }
    let a = prompt("enter new passphrase: ")?;
    let b = prompt("enter the new passphrase again: ")?;
    if a.0 != b.0 {
        bail!("the passphrases do not match");
    }
    Ok(a)
}

/// The passphrase for `init`: the usual sources, else a prompt asked twice.
pub fn init_passphrase(g: &Global) -> Result<Passphrase> {
    if g.password_file.is_some() || std::env::var_os("LOOP_PASSWORD").is_some() {
        return passphrase(g);
    }
    new_passphrase(None, "LOOP_PASSWORD")
}

pub fn kdf(g: &Global) -> KdfParams {
    let d = KdfParams::default();
    KdfParams {
        m_kib: g.kdf_memory.unwrap_or(d.m_kib),
        t: g.kdf_passes.unwrap_or(d.t),
        p: d.p,
    }
}

pub fn open(g: &Global) -> Result<Repository> {
    Ok(open_with_session(g)?.0)
}

pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

pub fn username() -> String {
    std::env::var("USER").unwrap_or_else(|_| rustix::process::getuid().as_raw().to_string())
}

pub fn validate_password(p: &Passphrase) -> Result<()> {
    if p.0.is_empty() {
        bail!("an empty passphrase is not allowed");
    }
    Ok(())
}
