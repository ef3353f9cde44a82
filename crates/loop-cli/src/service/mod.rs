//! `loop server` and the commands that drive the service's API (`login`, `tenant`, `user`,
//! `device`, `token`, `vault`, `item`, `policy`, `notify`, `job`, `session`, `audit`, `admin`).

mod access;
mod account;
mod agent;
mod audit;
mod billing;
mod items;
mod jobs;
mod notify;
mod policies;
mod privacy;
mod server;
mod signup;
mod sync;
mod tenants;
mod users;
mod vaults;

pub(crate) use access::{device, token};
pub(crate) use account::{login, logout, session, whoami};
pub(crate) use agent::agent;
pub(crate) use audit::{admin, audit};
pub(crate) use billing::{invoice, plan, subscription};
pub(crate) use items::item;
pub(crate) use jobs::job;
pub(crate) use notify::notify;
pub(crate) use policies::policy;
pub(crate) use privacy::privacy;
pub(crate) use server::server;
pub(crate) use signup::signup;
pub(crate) use sync::{remote, sync};
pub(crate) use tenants::tenant;
pub(crate) use users::user;
pub(crate) use vaults::vault;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use loop_agent::{ApiClient, Connection, Trust};
use serde::{Deserialize, Serialize};

use crate::args::Global;

/// Where `loop login` keeps its session: LOOP_CONFIG_DIR, else XDG_CONFIG_HOME/loop, else
/// ~/.config/loop.
pub(crate) fn config_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("LOOP_CONFIG_DIR") {
        return Ok(d.into());
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(d).join("loop"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set; set LOOP_CONFIG_DIR")?;
    Ok(PathBuf::from(home).join(".config/loop"))
}

#[derive(Serialize, Deserialize)]
pub(super) struct SavedSession {
    server: String,
    session_token: String,
    fingerprint: Option<String>,
    cacert: Option<PathBuf>,
}

pub(super) fn session_file() -> Result<PathBuf> {
    Ok(config_dir()?.join("session.json"))
}

pub(super) fn api(g: &Global) -> Result<ApiClient> {
    let path = session_file()?;
    let text = std::fs::read_to_string(&path).with_context(
        || "not signed in: run `loop login --server https://HOST:PORT --email ...`",
    )?;
    let s: SavedSession = serde_json::from_str(&text)
        .with_context(|| format!("{} is damaged; sign in again", path.display()))?;
    let t = match (&g.server_fingerprint, &g.cacert, s.fingerprint, s.cacert) {
        (Some(_), _, _, _) | (_, Some(_), _, _) => g.trust(),
        (_, _, Some(f), _) => Trust::Fingerprint(f),
        (_, _, _, Some(c)) => Trust::CaFile(c),
        _ => Trust::System,
    };
    Ok(ApiClient::new(
        Connection::new(&s.server, &t)?,
        Some(s.session_token),
    ))
}

/// The `--cacert` to keep with a saved session or enrolment: made absolute, so later commands
/// run from any directory find it.
pub(super) fn cacert_to_keep(g: &Global) -> Result<Option<PathBuf>> {
    g.cacert
        .as_deref()
        .map(|c| std::path::absolute(c).with_context(|| format!("{}", c.display())))
        .transpose()
}

pub(super) fn password_from_env_or_prompt(var: &str, prompt: &str) -> Result<String> {
    if let Ok(p) = std::env::var(var) {
        return Ok(p);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("{var} is not set, and there is no terminal to ask on");
    }
    Ok(rpassword::prompt_password(prompt)?)
}
