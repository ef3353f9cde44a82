//! Reaching a remote (another `loop server`) with the remote's replication token: its vault
//! protocol for a sync job or an erasure, and the list of vaults the token may use there.
//! Names resolve only to public addresses unless `replication.allow_private_remotes`.

use std::sync::Arc;

use loop_agent::{ApiError, Connection, Trust, VaultStorage};
use loop_api::VaultEntry;

use super::JobError;
use crate::db::remotes::RemoteRow;
use crate::state::AppState;

/// What a failure to reach the remote says, for an API answer.
pub(crate) fn said(e: JobError) -> String {
    match e {
        JobError::Failed(m) | JobError::Transient(m) => m,
        other => format!("{other:?}"),
    }
}

/// How to reach the remote: its address, how to trust it, and its token (unwrapped).
fn credentials(
    state: &AppState,
    remote: &RemoteRow,
) -> Result<(String, Trust, zeroize::Zeroizing<String>), JobError> {
    let token = state
        .master
        .unwrap(
            &crate::keys::remote_token_context(&remote.remote.id),
            &remote.token_wrapped,
        )
        .map_err(|e| JobError::Failed(format!("the remote's token does not open: {e}")))?;
    let trust = match &remote.remote.fingerprint {
        Some(f) => Trust::Fingerprint(f.clone()),
        None => Trust::System,
    };
    let hex = zeroize::Zeroizing::new(hex::encode(token.expose()));
    let secret = zeroize::Zeroizing::new(format!("lpt_{}", hex.as_str()));
    Ok((remote.remote.url.clone(), trust, secret))
}

/// The other server's vault, reached with the remote's token; built (and later dropped) on
/// the blocking pool, as its HTTP client is a blocking one.
pub(crate) async fn connect(
    state: &AppState,
    remote: &RemoteRow,
    remote_vault_id: &str,
) -> Result<Arc<VaultStorage>, JobError> {
    let (url, trust, token) = credentials(state, remote)?;
    let vault = remote_vault_id.to_string();
    let allow_private = state.config.replication.allow_private_remotes;
    tokio::task::spawn_blocking(move || {
        let conn = remote_connection(&url, &trust, allow_private).map_err(|e| e.to_string())?;
        Ok::<_, String>(Arc::new(
            VaultStorage::new(conn, &vault, &token).through_server_only(),
        ))
    })
    .await
    .map_err(|e| JobError::Failed(e.to_string()))?
    .map_err(|e| JobError::Failed(format!("connecting to the remote: {e}")))
}

/// A connection to a remote whose name resolves only to the addresses it may have: public
/// ones, unless `replication.allow_private_remotes`.
fn remote_connection(
    url: &str,
    trust: &Trust,
    allow_private: bool,
) -> Result<Connection, loop_agent::ConnectError> {
    let resolver = crate::notify::webhook::GuardedResolver { allow_private };
    Connection::with_resolver(url, trust, Arc::new(resolver))
}

/// The vaults the remote's token may use there. A remote out of reach is worth another
/// attempt; one that refuses is not.
pub async fn remote_vaults(
    state: &AppState,
    remote: &RemoteRow,
) -> Result<Vec<VaultEntry>, JobError> {
    let (url, trust, token) = credentials(state, remote)?;
    let name = remote.remote.name.clone();
    let allow_private = state.config.replication.allow_private_remotes;
    tokio::task::spawn_blocking(move || {
        let conn = remote_connection(&url, &trust, allow_private)
            .map_err(|e| JobError::Failed(format!("connecting to the remote {name}: {e}")))?;
        loop_agent::list_vaults(&conn, &token).map_err(|e| {
            remote_error(&name, e, |e| match e {
                ApiError::Decode(_) => format!("the remote {name}: {e}"),
                e => format!(
                    "the remote {name} refused to list its vaults: {e} (a revoked or expired \
                     token?)"
                ),
            })
        })
    })
    .await
    .map_err(|e| JobError::Failed(e.to_string()))?
}

/// A remote out of reach, or one that answers it cannot serve now (5xx, 429; after each
/// request's own retries), is worth another attempt later; any other answer is final, in
/// the words `refused` finds for it.
pub(super) fn remote_error(
    name: &str,
    e: ApiError,
    refused: impl FnOnce(ApiError) -> String,
) -> JobError {
    match e {
        ApiError::Transport(detail) => {
            JobError::transient(&format!("the remote {name} could not be reached"), detail)
        }
        e if e.is_temporary() => {
            JobError::Transient(format!("the remote {name} cannot serve now: {e}"))
        }
        e => JobError::Failed(refused(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> ApiError {
        ApiError::Problem {
            status,
            code: "x".into(),
            message: "y".into(),
        }
    }

    #[test]
    fn a_remote_that_cannot_serve_now_is_asked_again_and_a_refusal_is_final() {
        for e in [
            ApiError::Transport("connection refused".into()),
            answered(503),
            answered(500),
            answered(429),
        ] {
            let said = e.to_string();
            assert!(
                matches!(
                    remote_error("b", e, |_| String::new()),
                    JobError::Transient(_)
                ),
                "{said}"
            );
        }
        for e in [
            answered(401),
            answered(404),
            ApiError::Decode("html".into()),
        ] {
            let said = e.to_string();
            assert!(
                matches!(remote_error("b", e, |e| e.to_string()), JobError::Failed(m) if m == said),
                "{said}"
            );
        }
    }
}
