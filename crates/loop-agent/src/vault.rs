//! [`VaultStorage`]: the engine's storage contract over the vault protocol.

use std::io::Read as _;
use std::time::Duration;

use loop_api::{
    AnnounceDeletions, DeletionPlan, KeyCustody, MAX_ANNOUNCED, ObjectEntry, ObjectRef,
    TokenPermission, VAULT_PROTOCOL, VaultOpenRequest, VaultOpenResponse,
};
use loop_repo::ObjectInfo;
use loop_repo::pace::{Limits, Pace};
use loop_repo::{Error, FileKind, Result, RetryBudget, Storage};
use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use zeroize::Zeroizing;

use crate::api::{self, ApiError};
use crate::connection::{Connection, REQUEST_TIMEOUT};
use crate::retry::send_retrying;

/// Splits `https://HOST:PORT/vaults/ID` into the server base and the vault ID.
pub fn parse_vault_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/')?;
    let id = path.strip_prefix("vaults/")?.trim_end_matches('/');
    if host.is_empty() || id.is_empty() || id.contains('/') {
        return None;
    }
    Some((format!("https://{host}"), id.to_string()))
}

/// The vaults `token` may use on the server (`GET /vaults` of the vault protocol), retried
/// within [`SERVER_RETRY`] like every vault-protocol request.
pub fn list_vaults(
    conn: &Connection,
    token: &str,
) -> std::result::Result<Vec<loop_api::VaultEntry>, ApiError> {
    let url = format!("{}/vaults", conn.base);
    let (resp, _) = send_retrying(SERVER_RETRY, "vaults", || {
        conn.client.get(&url).bearer_auth(token)
    })
    .map_err(gave_up)?;
    if !resp.status().is_success() {
        return Err(api::problem(resp));
    }
    api::json_of(resp)
}

/// A request [`send_retrying`] gave up on, as the API client reports it.
fn gave_up(e: Error) -> ApiError {
    match e {
        Error::Storage { message, .. } => ApiError::Transport(message),
        e => ApiError::Transport(e.to_string()),
    }
}

/// What the server granted when the vault was opened.
pub struct VaultSession {
    pub vault_id: String,
    pub permissions: Vec<TokenPermission>,
    pub key_custody: KeyCustody,
    /// The managed vault's key-slot key, when the server holds the key (zeroed on drop).
    pub key: Option<loop_repo::crypto::Key>,
    /// Where the vault's primary is, when the server says.
    pub jurisdiction: Option<String>,
}

impl VaultSession {
    pub fn can(&self, permission: TokenPermission) -> bool {
        self.permissions
            .iter()
            .any(|&p| p == permission || p == TokenPermission::Manage)
    }
}

/// One vault on a server, reached with a token.
pub struct VaultStorage {
    pub(crate) conn: Connection,
    vault_id: String,
    token: Zeroizing<String>,
    pub(crate) retry: RetryBudget,
    /// The server said packs move straight to and from the store (`direct`, at open).
    pub(crate) direct: std::sync::atomic::AtomicBool,
    /// The client for presigned store URLs (system trust; the server's pin is not the
    /// store's), made on first use.
    pub(crate) store_client: std::sync::OnceLock<reqwest::blocking::Client>,
    /// Bandwidth limits: request bodies go out, and answers are read, at their pace.
    pub(crate) limits: Limits,
    /// Every byte goes through the server: no direct transfer, and a redirect to a store is
    /// refused (see [`VaultStorage::through_server_only`]).
    pub(crate) server_only: bool,
}

/// The default retry budget against a server: four retries from 200 ms, about six seconds.
pub const SERVER_RETRY: RetryBudget = RetryBudget {
    max_retries: 4,
    timeout: Duration::from_secs(30),
};

impl VaultStorage {
    pub fn new(conn: Connection, vault_id: &str, token: &str) -> VaultStorage {
        VaultStorage {
            conn,
            vault_id: vault_id.to_string(),
            token: Zeroizing::new(token.to_string()),
            retry: SERVER_RETRY,
            direct: Default::default(),
            store_client: Default::default(),
            limits: Limits::default(),
            server_only: false,
        }
    }

    /// Sends and reads every object through the server, never at a URL it names. For a
    /// server that is not trusted with this machine's network (another operator's, which a
    /// tenant adds as a remote): the connection to it may be guarded (public addresses
    /// only, a pinned certificate), and a presigned URL or a redirect would lead past that
    /// guard to any address, this machine's own network included.
    pub fn through_server_only(mut self) -> VaultStorage {
        self.server_only = true;
        self
    }

    /// The vault's ID, as this client asked for it.
    pub fn vault_id(&self) -> &str {
        &self.vault_id
    }

    /// Retries failed requests within `budget` instead of [`SERVER_RETRY`].
    pub fn with_retry(mut self, budget: RetryBudget) -> VaultStorage {
        self.retry = budget;
        self
    }

    /// Moves objects at `limits` (`--limit-upload`, `--limit-download`): uploads, through the
    /// server or direct, and downloads are paced in steps of [`loop_repo::pace::STEP`].
    pub fn with_limits(mut self, limits: Limits) -> VaultStorage {
        self.limits = limits;
        self
    }

    /// `r` sending `body`, at the upload limit when there is one. A clone of the bytes
    /// (which shares them), so each retry sends the whole body again.
    pub(crate) fn upload(&self, r: RequestBuilder, body: &bytes::Bytes) -> RequestBuilder {
        match &self.limits.upload {
            Some(pace) => r.timeout(self.paced_timeout(pace, body.len() as u64)).body(
                reqwest::blocking::Body::sized(
                    pace.reader(std::io::Cursor::new(body.clone())),
                    body.len() as u64,
                ),
            ),
            None => r.body(body.clone()),
        }
    }

    /// How long a request moving `len` bytes at `pace` may take: the usual timeout, plus
    /// the bytes' time on the line as many times over as there may be transfers sharing it,
    /// so that a slow limit never times out a transfer that is moving.
    fn paced_timeout(&self, pace: &Pace, len: u64) -> Duration {
        REQUEST_TIMEOUT.saturating_add(self.limits.shared_time_for(pace, len))
    }

    /// `r`, whose answer of at most `len` bytes is read at the download limit when there is
    /// one ([`VaultStorage::read_body`]), given the time that takes.
    pub(crate) fn download(&self, r: RequestBuilder, len: u64) -> RequestBuilder {
        match &self.limits.download {
            Some(pace) => r.timeout(self.paced_timeout(pace, len)),
            None => r,
        }
    }

    /// Starts a session on the vault: the server records the token's use for `operation`
    /// and answers with the permissions (and a managed vault's key).
    /// Retried like every other request (a server restarting as a backup starts is waited
    /// out); a retry after a lost answer records the opening twice, which is harmless.
    pub fn open(&self, operation: &str, host: &str) -> std::result::Result<VaultSession, ApiError> {
        let url = format!(
            "{}/vaults/{}/{VAULT_PROTOCOL}/open",
            self.conn.base, self.vault_id
        );
        let request = VaultOpenRequest {
            operation: operation.into(),
            host: Some(host.into()),
        };
        let (resp, _) = self
            .send("open", || self.conn.client.post(&url).json(&request))
            .map_err(gave_up)?;
        if !resp.status().is_success() {
            return Err(api::problem(resp));
        }
        let r: VaultOpenResponse = api::json_of(resp)?;
        self.direct.store(
            r.direct && !self.server_only,
            std::sync::atomic::Ordering::Relaxed,
        );
        let key = match &r.key {
            Some(h) => {
                let mut k = Zeroizing::new([0u8; 32]);
                hex::decode_to_slice(h.expose(), &mut *k)
                    .map_err(|_| ApiError::Decode("the vault key is malformed".into()))?;
                Some(loop_repo::crypto::Key::from_bytes(*k))
            }
            None => None,
        };
        Ok(VaultSession {
            vault_id: r.vault_id,
            permissions: r.permissions,
            key_custody: r.key_custody,
            key,
            jurisdiction: r.jurisdiction,
        })
    }

    /// The deletions announced for this vault by its maintainer, and which are released.
    pub fn planned_deletions(&self) -> std::result::Result<DeletionPlan, ApiError> {
        let req = self.conn.client.get(self.deletions_url());
        self.json_call(req)
    }

    /// Announces that a maintainer's prune will delete `objects` (index files, packs, plans)
    /// once the deletion grace has passed, in requests of at most [`MAX_ANNOUNCED`]; answers
    /// with every announced deletion. Announcing again is harmless, so a prune whose
    /// announcement failed part-way announces the rest at its next run.
    pub fn announce_deletions(
        &self,
        objects: &[(FileKind, String)],
    ) -> std::result::Result<DeletionPlan, ApiError> {
        let mut plan = None;
        for batch in objects.chunks(MAX_ANNOUNCED) {
            let body = AnnounceDeletions {
                objects: batch
                    .iter()
                    .map(|(k, n)| ObjectRef {
                        kind: k.name().into(),
                        name: n.clone(),
                    })
                    .collect(),
            };
            let req = self.conn.client.post(self.deletions_url()).json(&body);
            plan = Some(self.json_call(req)?);
        }
        match plan {
            Some(plan) => Ok(plan),
            None => self.planned_deletions(),
        }
    }

    fn deletions_url(&self) -> String {
        format!(
            "{}/vaults/{}/{VAULT_PROTOCOL}/deletions",
            self.conn.base, self.vault_id
        )
    }

    fn json_call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::blocking::RequestBuilder,
    ) -> std::result::Result<T, ApiError> {
        let resp = req
            .bearer_auth(self.token.as_str())
            .send()
            .map_err(|e| ApiError::Transport(loop_repo::one_line(&e)))?;
        if !resp.status().is_success() {
            return Err(api::problem(resp));
        }
        api::json_of(resp)
    }

    pub(crate) fn url(&self, kind: FileKind, name: Option<&str>) -> String {
        match name {
            Some(n) => format!(
                "{}/vaults/{}/{VAULT_PROTOCOL}/{}/{n}",
                self.conn.base,
                self.vault_id,
                kind.name()
            ),
            None => format!(
                "{}/vaults/{}/{VAULT_PROTOCOL}/{}",
                self.conn.base,
                self.vault_id,
                kind.name()
            ),
        }
    }

    pub(crate) fn object(&self, kind: FileKind, name: &str) -> String {
        format!("{}:{}", self.vault_id, kind.path(name))
    }

    /// Sends a request, retrying transport failures, server errors and answers that ask for
    /// a retry (`Retry-After`, as when another request holds the object) with backoff.
    /// `Ok` holds any answer the server gave; HTTP errors are for the caller to map.
    pub(crate) fn send(
        &self,
        object: &str,
        build: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<(Response, u32)> {
        self.send_to(object, || build().bearer_auth(self.token.as_str()))
    }

    /// [`VaultStorage::send`] without the token: for presigned store URLs.
    pub(crate) fn send_to(
        &self,
        object: &str,
        build: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<(Response, u32)> {
        send_retrying(self.retry, object, build)
    }

    pub(crate) fn fail(&self, object: &str, resp: Response) -> Error {
        if resp.status() == StatusCode::NOT_FOUND {
            // An unknown vault and a missing object are both 404; the code tells them apart.
            let e = api::problem(resp);
            return match e.code() {
                Some("no_such_object") => Error::NotFound(object.into()),
                _ => Error::NoRepository(format!(
                    "vault {} (not found, or not reachable with this token)",
                    self.vault_id
                )),
            };
        }
        let status = resp.status();
        let e = api::problem(resp);
        if status == StatusCode::FORBIDDEN && e.code() == Some("retention_locked") {
            return Error::Held {
                object: object.into(),
                message: e.to_string(),
            };
        }
        Error::Storage {
            object: object.into(),
            message: e.to_string(),
        }
    }

    fn read_body(&self, object: &str, mut resp: Response, max: u64) -> Result<Vec<u8>> {
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(Error::Corrupt {
                object: object.into(),
                reason: format!("larger than the {max} bytes allowed"),
            });
        }
        let mut buf = Vec::new();
        let read = match &self.limits.download {
            Some(pace) => pace.reader(&mut resp).take(max + 1).read_to_end(&mut buf),
            None => (&mut resp).take(max + 1).read_to_end(&mut buf),
        };
        read.map_err(|e| Error::Storage {
            object: object.into(),
            message: e.to_string(),
        })?;
        if buf.len() as u64 > max {
            return Err(Error::Corrupt {
                object: object.into(),
                reason: format!("larger than the {max} bytes allowed"),
            });
        }
        Ok(buf)
    }
}

impl Storage for VaultStorage {
    fn location(&self) -> String {
        format!("{}/vaults/{}", self.conn.base, self.vault_id)
    }

    fn put(&self, kind: FileKind, name: &str, data: Vec<u8>) -> Result<()> {
        let object = self.object(kind, name);
        let hash = blake3::hash(&data).to_hex().to_string();
        // Bytes clones share the buffer, so a retry does not copy the pack.
        let body = bytes::Bytes::from(data);
        // Direct when the server offers it; through the server when it no longer does.
        if self.direct_for(kind) && self.put_direct(name, &body, &hash)? {
            return Ok(());
        }
        let (resp, attempt) = self.send(&object, || {
            let r = self
                .conn
                .client
                .put(self.url(kind, Some(name)))
                .header(loop_api::CONTENT_HASH_HEADER, &hash);
            self.upload(r, &body)
        })?;
        if resp.status().is_success() {
            return Ok(());
        }
        if resp.status() == StatusCode::CONFLICT && attempt > 1 {
            // A retried upload: its first attempt may have landed (`object_exists`), or may
            // still be under way (`object_busy` until the retries ran out). It is stored only
            // if the object there holds the bytes sent.
            drop(resp);
            return match self.get(kind, name, body.len() as u64) {
                Ok(there) if blake3::hash(&there).to_hex().as_str() == hash => Ok(()),
                _ => Err(Error::Storage {
                    object,
                    message: "a retried upload found other bytes, or none yet, under its name"
                        .into(),
                }),
            };
        }
        Err(self.fail(&object, resp))
    }

    fn get(&self, kind: FileKind, name: &str, max: u64) -> Result<Vec<u8>> {
        let object = self.object(kind, name);
        let resp = self.read(kind, name, None, max)?;
        if !resp.status().is_success() {
            return Err(self.fail(&object, resp));
        }
        self.read_body(&object, resp, max)
    }

    fn get_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let object = self.object(kind, name);
        if len == 0 {
            return Ok(Vec::new());
        }
        let range = format!("bytes={offset}-{}", offset + len - 1);
        let resp = self.read(kind, name, Some(&range), len)?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(self.fail(&object, resp));
        }
        let buf = self.read_body(&object, resp, len)?;
        if buf.len() as u64 != len {
            return Err(Error::Corrupt {
                object,
                reason: "shorter than the range asked for".into(),
            });
        }
        Ok(buf)
    }

    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        let object = format!("{}:{}/", self.vault_id, kind.dir());
        let (resp, _) = self.send(&object, || self.conn.client.get(self.url(kind, None)))?;
        if !resp.status().is_success() {
            return Err(self.fail(&object, resp));
        }
        let entries: Vec<ObjectEntry> = api::json_of(resp).map_err(|e| Error::Storage {
            object: object.clone(),
            message: format!("listing: {e}"),
        })?;
        listed(kind, object, entries)
    }

    fn delete(&self, kind: FileKind, name: &str) -> Result<()> {
        let object = self.object(kind, name);
        let (resp, _) = self.send(&object, || {
            self.conn.client.delete(self.url(kind, Some(name)))
        })?;
        if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
            if resp.status() == StatusCode::NOT_FOUND {
                // Only a missing object counts as deleted; a missing vault is an error.
                let e = self.fail(&object, resp);
                if !e.is_not_found() {
                    return Err(e);
                }
            }
            return Ok(());
        }
        Err(self.fail(&object, resp))
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        let object = self.object(kind, name);
        let (resp, _) = self.send(&object, || {
            self.conn.client.head(self.url(kind, Some(name)))
        })?;
        if resp.status() == StatusCode::NOT_FOUND {
            // HEAD answers have no body, so a 404 here cannot say which thing is missing.
            return Err(Error::NotFound(object));
        }
        if !resp.status().is_success() {
            return Err(Error::Storage {
                object,
                message: format!("HTTP {}", resp.status()),
            });
        }
        resp.headers()
            .get("x-loop-object-size")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::Storage {
                object,
                message: "the server sent no object size".into(),
            })
    }
}

/// A server's listing of `kind`. Its names become request paths, cache entries and, in a pull
/// sync, another server's records: a name this program never gives an object is refused.
fn listed(kind: FileKind, object: String, entries: Vec<ObjectEntry>) -> Result<Vec<ObjectInfo>> {
    if let Some(odd) = entries.iter().find(|e| !kind.is_object_name(&e.name)) {
        return Err(Error::Corrupt {
            object,
            reason: format!(
                "the listing names {:?}, which is no object name",
                odd.name.chars().take(80).collect::<String>()
            ),
        });
    }
    Ok(entries
        .into_iter()
        .map(|e| ObjectInfo {
            name: e.name,
            size: e.size,
            modified: e.modified,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paced_request_has_its_time_at_the_limit_for_every_transfer_that_may_share_it() {
        let conn = Connection::new("https://127.0.0.1:1", &crate::Trust::System).unwrap();
        let limits = Limits {
            upload: Pace::kib_per_sec(1),
            download: None,
            sharing: 6,
        };
        let v = VaultStorage::new(conn, "vt_x", "t").with_limits(limits.clone());
        let pace = limits.upload.as_ref().unwrap();
        assert_eq!(
            v.paced_timeout(pace, 10 << 10),
            REQUEST_TIMEOUT + Duration::from_secs(60)
        );
        assert_eq!(v.paced_timeout(pace, 0), REQUEST_TIMEOUT);
        // The largest bound there is: a long wait, not a panic.
        assert!(v.paced_timeout(pace, u64::MAX) > Duration::from_secs(1 << 50));
    }

    #[test]
    fn vault_urls_parse_into_server_and_vault() {
        assert_eq!(
            parse_vault_url("https://127.0.0.1:8443/vaults/vt_ab"),
            Some(("https://127.0.0.1:8443".into(), "vt_ab".into()))
        );
        assert_eq!(
            parse_vault_url("https://h/vaults/vt_ab/"),
            Some(("https://h".into(), "vt_ab".into()))
        );
        assert_eq!(parse_vault_url("http://h/vaults/x"), None);
        assert_eq!(parse_vault_url("https://h/other/x"), None);
        assert_eq!(parse_vault_url("https://h/vaults/a/b"), None);
    }

    #[test]
    fn a_listing_naming_what_is_no_object_is_refused() {
        let entry = |name: &str| ObjectEntry {
            name: name.into(),
            size: 1,
            modified: chrono::Utc::now(),
        };
        let good = "ab".repeat(32);
        let got = listed(FileKind::Pack, "v:data/".into(), vec![entry(&good)]).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, good);
        for odd in [
            "../../etc/passwd".to_string(),
            "AB".repeat(32),
            "ab".repeat(33),
            "config".to_string(),
            String::new(),
        ] {
            let e = listed(
                FileKind::Pack,
                "v:data/".into(),
                vec![entry(&good), entry(&odd)],
            )
            .unwrap_err();
            assert!(
                matches!(&e, Error::Corrupt { reason, .. } if reason.contains("no object name")),
                "{odd}: {e}"
            );
        }
        // The config is listed by its own name, and only by it.
        assert!(listed(FileKind::Config, "v:".into(), vec![entry("config")]).is_ok());
        assert!(listed(FileKind::Config, "v:".into(), vec![entry(&good)]).is_err());
    }
}
