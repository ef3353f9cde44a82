//! Destinations: where vaults live. Each is an `object_store` backend plus a prefix; a
//! vault's objects sit under `PREFIX/VAULT_ID/` in the repository layout of `loop-repo`.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as StorePath;

use crate::config::{BackendConfig, DestinationConfig};

pub struct Destination {
    pub name: String,
    pub jurisdiction: String,
    pub backend: loop_api::Backend,
    pub store: Arc<dyn ObjectStore>,
    prefix: String,
    /// A local destination's directory.
    local_root: Option<std::path::PathBuf>,
    /// With direct transfers: signs URLs for clients, valid this long.
    direct: Option<(Arc<object_store::aws::AmazonS3>, std::time::Duration)>,
    /// A local listing of a probe is under way (one that hangs, on a dead network mount,
    /// holds its thread; the next probes fail at once instead of taking more threads).
    probing: Arc<std::sync::atomic::AtomicBool>,
}

/// How long a probe of a destination (readiness, metrics) waits for it.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Destination {
    /// Whether the destination answers within [`PROBE_TIMEOUT`]: a local one's directory can
    /// be listed; an S3 one lists its prefix, which needs the endpoint, the bucket and the
    /// credentials right.
    pub async fn probe(&self) -> Result<(), String> {
        tokio::time::timeout(PROBE_TIMEOUT, self.probe_now())
            .await
            .unwrap_or_else(|_| Err("no answer in time".to_string()))
    }

    async fn probe_now(&self) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        match &self.local_root {
            Some(root) => {
                if self.probing.swap(true, Ordering::SeqCst) {
                    return Err("an earlier listing has not answered yet".into());
                }
                let (root, probing) = (root.clone(), self.probing.clone());
                tokio::task::spawn_blocking(move || {
                    let listed = std::fs::read_dir(&root)
                        .map(drop)
                        .map_err(|e| format!("{}: {e}", root.display()));
                    probing.store(false, Ordering::SeqCst);
                    listed
                })
                .await
                .map_err(|e| e.to_string())?
            }
            None => {
                let prefix =
                    (!self.prefix.is_empty()).then(|| StorePath::from(self.prefix.as_str()));
                self.store
                    .list_with_delimiter(prefix.as_ref())
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Whether clients move packs to and from the store themselves (presigned URLs).
    pub fn direct(&self) -> bool {
        self.direct.is_some()
    }

    /// A presigned URL for `method` on `path` that only a request carrying `headers` may use;
    /// `None` without direct transfers. Returns the URL and how long it stays valid.
    pub async fn presign(
        &self,
        method: object_store::signer::Method,
        path: &StorePath,
        headers: object_store::signer::HeaderMap,
    ) -> Option<object_store::Result<(object_store::signer::Url, std::time::Duration)>> {
        use object_store::signer::{SignedUrlOptions, Signer as _};
        let (signer, valid) = self.direct.as_ref()?;
        let mut options = SignedUrlOptions::default();
        options.signed_headers = headers;
        Some(
            signer
                .signed_url_opts(method, path, *valid, &options)
                .await
                .map(|u| (u, *valid)),
        )
    }

    /// Where a direct upload lands before the server checks it: `staging/UPLOAD`, beside
    /// the vault's objects (no kind lists it; erasing the vault removes it).
    pub fn staging_path(&self, vault_id: &str, upload_id: &str) -> StorePath {
        self.path(vault_id, &format!("staging/{upload_id}"))
    }

    /// The store path of a vault object (`rel` as `FileKind::path` gives it).
    pub fn path(&self, vault_id: &str, rel: &str) -> StorePath {
        StorePath::from(self.vault_prefix(vault_id) + "/" + rel)
    }

    pub fn vault_prefix(&self, vault_id: &str) -> String {
        if self.prefix.is_empty() {
            vault_id.to_string()
        } else {
            format!("{}/{vault_id}", self.prefix)
        }
    }

    /// The objects of one kind in a vault: (name, size, modified), names checked as the vault
    /// protocol checks them (anything else under the vault's prefix is not the vault's).
    pub async fn list_kind(
        &self,
        vault_id: &str,
        kind: loop_repo::FileKind,
    ) -> object_store::Result<Vec<StoredObject>> {
        use futures_util::TryStreamExt as _;
        use object_store::ObjectStoreExt as _;
        if kind == loop_repo::FileKind::Config {
            return match self.store.head(&self.path(vault_id, "config")).await {
                Ok(m) => Ok(vec![StoredObject {
                    name: "config".into(),
                    size: m.size,
                    modified: m.last_modified,
                }]),
                Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
                Err(e) => Err(e),
            };
        }
        let prefix = StorePath::from(self.vault_prefix(vault_id) + "/" + kind.dir());
        let mut out = Vec::new();
        let mut stream = self.store.list(Some(&prefix));
        while let Some(m) = stream.try_next().await? {
            if let Some(name) = m.location.filename()
                && valid_name(kind, name)
            {
                out.push(StoredObject {
                    name: name.to_string(),
                    size: m.size,
                    modified: m.last_modified,
                });
            }
        }
        Ok(out)
    }

    /// The vault as `loop-repo` storage, for the server's own engine calls (creating a
    /// managed vault, listing its snapshots). Blocking: call from a blocking task.
    pub fn repo_storage(&self, vault_id: &str) -> loop_repo::Result<loop_repo::ObjectStorage> {
        loop_repo::ObjectStorage::from_store(
            self.store.clone(),
            &self.vault_prefix(vault_id),
            &format!("{}:{vault_id}", self.name),
        )
    }
}

/// A vault's storage whose failures name no internal detail: what the store said (its
/// endpoint, bucket, paths) goes to the server log under an incident ID, and the error says
/// only which object failed. For engine runs whose errors reach a tenant's job log.
pub struct PrivateErrors<S>(pub S);

impl<S: loop_repo::Storage> PrivateErrors<S> {
    fn private<T>(&self, r: loop_repo::Result<T>) -> loop_repo::Result<T> {
        r.map_err(|e| match e {
            loop_repo::Error::Storage { object, message } => {
                let incident = crate::domain::new_id("inc");
                tracing::warn!(%incident, %object, error = %message, "a vault's storage failed");
                loop_repo::Error::Storage {
                    object,
                    message: format!(
                        "the storage failed; incident {incident} is in the server log"
                    ),
                }
            }
            e => e,
        })
    }
}

impl<S: loop_repo::Storage> loop_repo::Storage for PrivateErrors<S> {
    fn location(&self) -> String {
        self.0.location()
    }
    fn put(&self, kind: loop_repo::FileKind, name: &str, data: Vec<u8>) -> loop_repo::Result<()> {
        self.private(self.0.put(kind, name, data))
    }
    fn get(&self, kind: loop_repo::FileKind, name: &str, max: u64) -> loop_repo::Result<Vec<u8>> {
        self.private(self.0.get(kind, name, max))
    }
    fn get_range(
        &self,
        kind: loop_repo::FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> loop_repo::Result<Vec<u8>> {
        self.private(self.0.get_range(kind, name, offset, len))
    }
    fn list(&self, kind: loop_repo::FileKind) -> loop_repo::Result<Vec<loop_repo::ObjectInfo>> {
        self.private(self.0.list(kind))
    }
    fn delete(&self, kind: loop_repo::FileKind, name: &str) -> loop_repo::Result<()> {
        self.private(self.0.delete(kind, name))
    }
    fn size(&self, kind: loop_repo::FileKind, name: &str) -> loop_repo::Result<u64> {
        self.private(self.0.size(kind, name))
    }
}

/// One object as a destination lists it.
pub struct StoredObject {
    pub name: String,
    pub size: u64,
    pub modified: chrono::DateTime<chrono::Utc>,
}

/// Whether `name` is a valid object name of `kind`: `config`, or 64 lowercase hex digits.
pub fn valid_name(kind: loop_repo::FileKind, name: &str) -> bool {
    kind.is_object_name(name)
}

pub struct Destinations(BTreeMap<String, Arc<Destination>>);

#[derive(Debug, thiserror::Error)]
#[error("destination {name}: {message}")]
pub struct DestinationError {
    name: String,
    message: String,
}

impl Destinations {
    pub fn open(configs: &[DestinationConfig]) -> Result<Destinations, DestinationError> {
        let mut map = BTreeMap::new();
        for c in configs {
            let err = |message: String| DestinationError {
                name: c.name.clone(),
                message,
            };
            let mut local_root = None;
            let mut direct = None;
            let (backend, store, prefix): (loop_api::Backend, Arc<dyn ObjectStore>, String) =
                match &c.backend {
                    BackendConfig::Local { path } => {
                        std::fs::create_dir_all(path)
                            .map_err(|e| err(format!("{}: {e}", path.display())))?;
                        let fs = object_store::local::LocalFileSystem::new_with_prefix(path)
                            .map_err(|e| err(e.to_string()))?
                            .with_fsync(true);
                        local_root = Some(path.clone());
                        (loop_api::Backend::Local, Arc::new(fs), String::new())
                    }
                    BackendConfig::S3 {
                        bucket,
                        prefix,
                        endpoint,
                        region,
                        access_key_id,
                        secret_access_key,
                        allow_http,
                        retries,
                        retry_secs,
                        direct: direct_transfers,
                        direct_url_secs,
                    } => {
                        let retry = loop_repo::RetryBudget {
                            max_retries: *retries,
                            timeout: std::time::Duration::from_secs(*retry_secs),
                        };
                        let mut b = object_store::aws::AmazonS3Builder::new()
                            .with_bucket_name(bucket)
                            .with_retry(retry.object_store())
                            .with_region(region.clone().unwrap_or_else(|| "us-east-1".into()))
                            .with_access_key_id(access_key_id)
                            .with_secret_access_key(secret_access_key.expose())
                            .with_allow_http(*allow_http);
                        if let Some(e) = endpoint {
                            b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
                        }
                        let s3 = Arc::new(b.build().map_err(|e| err(e.to_string()))?);
                        if *direct_transfers {
                            let valid = std::time::Duration::from_secs(*direct_url_secs);
                            direct = Some((s3.clone(), valid));
                        }
                        let prefix = prefix.trim_matches('/').to_string();
                        (loop_api::Backend::S3, s3, prefix)
                    }
                };
            map.insert(
                c.name.clone(),
                Arc::new(Destination {
                    name: c.name.clone(),
                    jurisdiction: c.jurisdiction.clone(),
                    backend,
                    store,
                    prefix,
                    local_root,
                    direct,
                    probing: Default::default(),
                }),
            );
        }
        Ok(Destinations(map))
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Destination>> {
        self.0.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Destination>> {
        self.0.values()
    }
}

/// Removes the staging files of uploads that never finished (a server killed mid-upload)
/// from a local destination: `NAME#DIGITS` files, as `object_store` names them, not changed
/// for `older_than`. Returns how many went. The age keeps uploads still in flight on another
/// node sharing the directory safe.
pub fn sweep_staging(
    root: &std::path::Path,
    older_than: std::time::Duration,
) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let staging = name
                .rsplit_once('#')
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !staging {
                continue;
            }
            let age = entry.metadata()?.modified()?.elapsed().unwrap_or_default();
            if age >= older_than {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_staging_files_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let fan = dir.path().join("vt_1/data/ab");
        std::fs::create_dir_all(&fan).unwrap();
        let pack = "ab".repeat(32);
        let old = fan.join(format!("{pack}#7"));
        let fresh = fan.join(format!("{pack}#8"));
        let object = fan.join(&pack);
        for p in [&old, &fresh, &object] {
            std::fs::write(p, b"x").unwrap();
        }
        let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(90_000);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(day_ago)
            .unwrap();
        let n = sweep_staging(dir.path(), std::time::Duration::from_secs(86_400)).unwrap();
        assert_eq!(n, 1);
        assert!(!old.exists());
        assert!(fresh.exists() && object.exists());
    }
}

#[cfg(test)]
mod private_errors {
    use loop_repo::{Error, FileKind, Storage};

    /// A storage every read of which fails the way a store does, naming its paths.
    struct Failing;

    impl Storage for Failing {
        fn location(&self) -> String {
            "failing".into()
        }
        fn put(&self, _: FileKind, _: &str, _: Vec<u8>) -> loop_repo::Result<()> {
            Ok(())
        }
        fn get(&self, _: FileKind, name: &str, _: u64) -> loop_repo::Result<Vec<u8>> {
            Err(Error::Storage {
                object: name.into(),
                message: "Unable to open file /srv/loop/vaults/vt_1/data/ab: Is a directory".into(),
            })
        }
        fn get_range(
            &self,
            kind: FileKind,
            name: &str,
            _: u64,
            _: u64,
        ) -> loop_repo::Result<Vec<u8>> {
            self.get(kind, name, 0)
        }
        fn list(&self, _: FileKind) -> loop_repo::Result<Vec<loop_repo::ObjectInfo>> {
            Ok(Vec::new())
        }
        fn delete(&self, _: FileKind, _: &str) -> loop_repo::Result<()> {
            Ok(())
        }
        fn size(&self, _: FileKind, name: &str) -> loop_repo::Result<u64> {
            Err(Error::NotFound(name.into()))
        }
    }

    /// What a store says (its paths, endpoint, bucket) stays in the server log: the error
    /// a job logs for a tenant names the object and an incident only.
    #[test]
    fn a_storage_failure_names_the_object_and_an_incident_not_the_stores_words() {
        let s = super::PrivateErrors(Failing);
        let e = s
            .get_range(FileKind::Pack, "ab12", 0, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ab12") && e.contains("incident"), "{e}");
        assert!(!e.contains("/srv/loop"), "{e}");
        let e = s.size(FileKind::Pack, "cd34").unwrap_err();
        assert!(e.is_not_found(), "other errors pass as they are: {e}");
    }
}
