//! Signing in and out, and the signed-in user's sessions.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result};
use loop_agent::{ApiClient, Connection};
use loop_api::*;
use serde_json::json;

use super::{SavedSession, api, config_dir, password_from_env_or_prompt, session_file};
use crate::args::Global;
use crate::output::show;
use crate::service_args::*;

pub(crate) fn login(g: &Global, a: LoginArgs) -> Result<ExitCode> {
    let password = password_from_env_or_prompt("LOOP_LOGIN_PASSWORD", "password: ")?;
    let conn = Connection::new(&a.server, &g.trust())?;
    let client = ApiClient::new(conn, None);
    let r: LoginResponse = client.login(&LoginRequest {
        email: a.email.clone(),
        password: password.into(),
        totp: a.totp.clone(),
        remember: a.remember,
        device_label: Some(
            a.device_label
                .clone()
                .unwrap_or_else(|| format!("loop CLI on {}", crate::repo_open::hostname())),
        ),
    })?;
    let dir = config_dir()?;
    std::fs::create_dir_all(&dir)?;
    let saved = SavedSession {
        server: client.conn.base.clone(),
        session_token: r.session_token.expose().to_string(),
        fingerprint: g.server_fingerprint.clone(),
        cacert: super::cacert_to_keep(g)?,
    };
    write_private(
        &session_file()?,
        serde_json::to_string_pretty(&saved)?.as_bytes(),
    )?;
    let shown = json!({
        "user": r.user,
        "session": r.session,
        "policy_to_acknowledge": r.policy_to_acknowledge,
    });
    show(g, &shown, |_| {
        println!("signed in as {} ({})", r.user.email, r.user.id);
        if let Some(p) = &r.policy_to_acknowledge {
            println!(
                "the privacy policy changed: version {} at {}{}
                 acknowledge it with `loop privacy accept`",
                p.version,
                p.url,
                if p.summary.is_empty() {
                    String::new()
                } else {
                    format!(
                        "
{}",
                        p.summary
                    )
                }
            );
        }
    })
}

/// Writes `data` to `path`, readable by its owner only, whole or not at all: into a new file
/// beside it (mode 0600 from the start), synced, then renamed over `path` (a link there is
/// replaced, never followed) and the directory synced. A killed process leaves the old file
/// as it was.
pub(crate) fn write_private(path: &std::path::Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut f = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing beside {}", path.display()))?;
    f.write_all(data)?;
    f.as_file().sync_all()?;
    f.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

pub(crate) fn logout(g: &Global) -> Result<ExitCode> {
    let client = api(g)?;
    client.logout()?;
    std::fs::remove_file(session_file()?).ok();
    show(g, &json!({ "signed_out": true }), |_| {
        println!("signed out")
    })
}

pub(crate) fn whoami(g: &Global) -> Result<ExitCode> {
    let me: Me = api(g)?.me()?;
    show(g, &me, |m| {
        println!(
            "{} {} <{}> {}",
            m.user.first_name, m.user.last_name, m.user.email, m.user.id
        );
        for r in &m.roles {
            println!("  {} on {}", r.role, r.tenant_id);
        }
    })
}

pub(crate) fn session(g: &Global, c: SessionCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        SessionCommand::List { tenant } => {
            let ss: Vec<Session> = api.sessions(tenant.as_ref())?;
            show(g, &ss, |ss| {
                for s in ss {
                    let state = if s.ended_at.is_some() {
                        "ended"
                    } else {
                        "active"
                    };
                    println!(
                        "{}{}  {:<6}  {}  {}  {} / {}  {}",
                        if s.current { "*" } else { " " },
                        s.id,
                        state,
                        s.created_at.to_rfc3339(),
                        s.ip.as_deref().unwrap_or("-"),
                        s.browser.as_deref().unwrap_or("-"),
                        s.os.as_deref().unwrap_or("-"),
                        s.device_label.as_deref().unwrap_or("")
                    );
                }
            })
        }
        SessionCommand::Revoke { id } => {
            api.revoke_session(&id)?;
            show(g, &json!({"revoked": id}), |_| {
                println!("ended session {id}")
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    /// A link at the name is replaced, not written through; the file is its owner's only.
    #[test]
    fn a_private_file_replaces_a_link_and_is_its_owners_only() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, b"left alone").unwrap();
        let path = dir.path().join("session.json");
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();

        super::write_private(&path, b"secret").unwrap();

        assert_eq!(std::fs::read(&elsewhere).unwrap(), b"left alone");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file(), "a file now, not a link");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "no temporary file stays");
    }
}
