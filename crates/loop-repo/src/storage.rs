//! Where repository objects live.
//!
//! [`Storage`] is the whole contract the engine relies on, kept small so that a new backend
//! (the server's vault protocol, a cache, a fault injector in tests) is a short file:
//!
//! - `put` is atomic: a reader sees the whole object or nothing, never a prefix. It may
//!   overwrite. The engine never relies on create-if-absent: every name it writes is either a
//!   fresh random ID or written once at `init`, so a repeated write is harmless.
//! - After `put` returns, `get` and `list` see the object (read-after-write, as S3 and local
//!   disk give today).
//! - `delete` of a missing object succeeds.
//! - A crash leaves each object either written whole or absent.
//!
//! Implementations are synchronous: the engine runs its own thread pipeline, and blocking
//! calls keep it free of async colouring.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

use crate::error::{Error, Result};

/// The kinds of object in a repository, each under its own prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    Config,
    Key,
    Snapshot,
    Index,
    Pack,
    Lock,
    Plan,
}

impl FileKind {
    pub const ALL: [FileKind; 7] = [
        FileKind::Config,
        FileKind::Key,
        FileKind::Snapshot,
        FileKind::Index,
        FileKind::Pack,
        FileKind::Lock,
        FileKind::Plan,
    ];

    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Config => "",
            FileKind::Key => "keys",
            FileKind::Snapshot => "snapshots",
            FileKind::Index => "index",
            FileKind::Pack => "data",
            FileKind::Lock => "locks",
            FileKind::Plan => "plans",
        }
    }

    /// The kind's one-word name: its directory, and `config` for the config. The vault
    /// protocol uses it as a path segment.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            k => k.dir(),
        }
    }

    /// Whether `name` is a name this program gives an object of this kind: `config` for the
    /// config, 64 lowercase hex digits for everything else.
    pub fn is_object_name(self, name: &str) -> bool {
        match self {
            FileKind::Config => name == "config",
            _ => name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        }
    }

    /// The kind named `name` (see [`FileKind::name`]).
    pub fn from_name(name: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The magic every object of this kind starts with.
    pub fn magic(self) -> crate::format::Magic {
        use crate::format::Magic;
        match self {
            FileKind::Config => Magic::Config,
            FileKind::Key => Magic::KeySlot,
            FileKind::Snapshot => Magic::Snapshot,
            FileKind::Index => Magic::Index,
            FileKind::Pack => Magic::Pack,
            FileKind::Lock => Magic::Lock,
            FileKind::Plan => Magic::PrunePlan,
        }
    }

    /// The object's path relative to the repository root.
    pub fn path(self, name: &str) -> String {
        match self {
            FileKind::Config => "config".to_string(),
            FileKind::Pack => {
                let fan = name.get(..2).unwrap_or("00");
                format!("data/{fan}/{name}")
            }
            _ => format!("{}/{name}", self.dir()),
        }
    }
}

/// One listed object.
#[derive(Clone, Debug)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// The storage contract. See the module documentation.
pub trait Storage: Send + Sync {
    /// A human-readable location, for messages.
    fn location(&self) -> String;
    fn put(&self, kind: FileKind, name: &str, data: Vec<u8>) -> Result<()>;
    /// Reads a whole object, refusing one larger than `max` bytes before reading its body,
    /// so a hostile store cannot make the engine allocate without bound.
    fn get(&self, kind: FileKind, name: &str, max: u64) -> Result<Vec<u8>>;
    fn get_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>>;
    fn delete(&self, kind: FileKind, name: &str) -> Result<()>;
    fn size(&self, kind: FileKind, name: &str) -> Result<u64>;
}

/// How long transient storage failures (connection resets, 5xx, throttling) are retried,
/// with exponential backoff from 100 ms. The default is a production budget; tests of
/// failure paths set seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryBudget {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// No retry starts after this long.
    pub timeout: std::time::Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            max_retries: 10,
            timeout: std::time::Duration::from_secs(180),
        }
    }
}

impl RetryBudget {
    pub fn object_store(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig::default(),
            max_retries: self.max_retries,
            retry_timeout: self.timeout,
        }
    }
}

/// S3 (and S3-compatible) connection settings, passed in by the caller.
#[derive(Clone, Default)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub allow_http: bool,
    pub retry: RetryBudget,
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("retry", &self.retry)
            .finish()
    }
}

/// Storage on any `object_store` backend: local disk, S3, and (with features) GCS and Azure.
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// Set for local repositories: reads go straight to `pread`, without a round trip through
    /// the async runtime's blocking pool (two thread hand-offs per read). Writes still go
    /// through `object_store`, which makes them atomic and durable.
    local: Option<object_store::local::LocalFileSystem>,
    prefix: String,
    location: String,
    runtime: OwnRuntime,
}

/// A storage's own runtime, which every operation `block_on`s. Dropped without waiting for
/// its threads, so a storage may be dropped anywhere, an async task included, where tokio
/// refuses to wait (a server that keeps opened repositories drops them there); nothing is
/// lost, since every operation has finished by the time it returns.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    fn new(name: &str) -> Result<OwnRuntime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .map(|r| OwnRuntime(Some(r)))
            .map_err(|e| Error::io("tokio runtime", e))
    }
}

impl std::ops::Deref for OwnRuntime {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0
            .as_ref()
            .expect("the runtime lives until the storage is dropped")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            r.shutdown_background();
        }
    }
}

impl ObjectStorage {
    /// Opens a repository location: a filesystem path, or `s3://bucket/prefix`.
    /// With `create`, a local directory is created when missing.
    pub fn open(location: &str, s3: &S3Options, create: bool) -> Result<ObjectStorage> {
        let runtime = OwnRuntime::new("loop-storage")?;
        let storage_err = |e: object_store::Error| Error::Storage {
            object: location.to_string(),
            message: e.to_string(),
        };
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Invalid(format!("{location}: no bucket named")));
            }
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_retry(s3.retry.object_store())
                .with_allow_http(s3.allow_http)
                .with_region(s3.region.clone().unwrap_or_else(|| "us-east-1".into()));
            if let Some(e) = &s3.endpoint {
                b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
            }
            if let Some(k) = &s3.access_key_id {
                b = b.with_access_key_id(k);
            }
            if let Some(k) = &s3.secret_access_key {
                b = b.with_secret_access_key(k);
            }
            if let Some(t) = &s3.session_token {
                b = b.with_token(t);
            }
            let store = b.build().map_err(storage_err)?;
            return Ok(ObjectStorage {
                store: Arc::new(store),
                local: None,
                prefix: prefix.trim_matches('/').to_string(),
                location: location.to_string(),
                runtime,
            });
        }
        #[cfg(feature = "gcp")]
        if location.starts_with("gs://") {
            return Err(Error::Invalid(
                "gs:// repositories are configured through the library API".into(),
            ));
        }
        let path = std::path::Path::new(location);
        if create {
            std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        } else if !path.is_dir() {
            return Err(Error::NoRepository(location.to_string()));
        }
        let store = object_store::local::LocalFileSystem::new_with_prefix(path)
            .map_err(storage_err)?
            .with_fsync(true);
        Ok(ObjectStorage {
            store: Arc::new(store.clone()),
            local: Some(store),
            prefix: String::new(),
            location: location.to_string(),
            runtime,
        })
    }

    /// Wraps any `object_store` backend (GCS, Azure, in-memory, ...).
    pub fn from_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        location: &str,
    ) -> Result<ObjectStorage> {
        let runtime = OwnRuntime::new("loop-storage")?;
        Ok(ObjectStorage {
            store,
            local: None,
            prefix: prefix.trim_matches('/').to_string(),
            location: location.to_string(),
            runtime,
        })
    }

    fn full(&self, rel: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(rel)
        } else {
            StorePath::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// The file behind an object of a local repository.
    fn local_file(&self, rel: &str) -> Option<Result<std::fs::File>> {
        let local = self.local.as_ref()?;
        let path = match local.path_to_filesystem(&self.full(rel)) {
            Ok(p) => p,
            Err(e) => return Some(Err(self.err(rel, e))),
        };
        Some(std::fs::File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(rel.to_string())
            } else {
                Error::Storage {
                    object: rel.to_string(),
                    message: e.to_string(),
                }
            }
        }))
    }

    fn err(&self, rel: &str, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => Error::NotFound(rel.to_string()),
            other => Error::Storage {
                object: rel.to_string(),
                message: other.to_string(),
            },
        }
    }
}

impl Storage for ObjectStorage {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn put(&self, kind: FileKind, name: &str, data: Vec<u8>) -> Result<()> {
        let rel = kind.path(name);
        let path = self.full(&rel);
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(data)))
            .map(|_| ())
            .map_err(|e| self.err(&rel, e))
    }

    fn get(&self, kind: FileKind, name: &str, max: u64) -> Result<Vec<u8>> {
        let rel = kind.path(name);
        let too_large = |size: u64| {
            Error::corrupt(
                &rel,
                format!("{size} bytes, more than any valid object of its kind ({max})"),
            )
        };
        if let Some(file) = self.local_file(&rel) {
            use std::io::Read;
            let file = file?;
            let size = file.metadata().map_err(|e| Error::io(&rel, e))?.len();
            if size > max {
                return Err(too_large(size));
            }
            let mut buf = Vec::with_capacity(size as usize);
            file.take(max + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Error::io(&rel, e))?;
            if buf.len() as u64 > max {
                return Err(too_large(buf.len() as u64));
            }
            return Ok(buf);
        }
        let path = self.full(&rel);
        self.runtime
            .block_on(async {
                let r = self.store.get(&path).await?;
                if r.meta.size > max {
                    return Ok(Err(too_large(r.meta.size)));
                }
                r.bytes().await.map(Ok)
            })
            .map_err(|e| self.err(&rel, e))?
            .map(Vec::from)
    }

    fn get_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let rel = kind.path(name);
        let path = self.full(&rel);
        let end = offset
            .checked_add(len)
            .ok_or_else(|| Error::corrupt(&rel, "range overflows"))?;
        if let Some(file) = self.local_file(&rel) {
            use std::os::unix::fs::FileExt;
            let file = file?;
            let size = file.metadata().map_err(|e| Error::io(&rel, e))?.len();
            if end > size {
                return Err(Error::corrupt(&rel, "shorter than the index says"));
            }
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, offset)
                .map_err(|e| Error::io(&rel, e))?;
            return Ok(buf);
        }
        let bytes = self
            .runtime
            .block_on(self.store.get_range(&path, offset..end))
            .map_err(|e| self.err(&rel, e))?;
        if bytes.len() as u64 != len {
            return Err(Error::corrupt(&rel, "shorter than the index says"));
        }
        Ok(Vec::from(bytes))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        if kind == FileKind::Config {
            return Ok(match self.size(kind, "config") {
                Ok(size) => vec![ObjectInfo {
                    name: "config".into(),
                    size,
                    modified: Utc::now(),
                }],
                Err(e) if e.is_not_found() => vec![],
                Err(e) => return Err(e),
            });
        }
        let dir = self.full(kind.dir());
        self.runtime.block_on(async {
            let mut out = Vec::new();
            let mut stream = self.store.list(Some(&dir));
            while let Some(item) = stream.next().await {
                let meta = item.map_err(|e| self.err(kind.dir(), e))?;
                let Some(name) = meta.location.filename() else {
                    continue;
                };
                // Only names this program writes: 64 hex digits. Anything else (a stray
                // editor file, a half-written temp file) is not part of the repository.
                if !kind.is_object_name(name) {
                    continue;
                }
                out.push(ObjectInfo {
                    name: name.to_string(),
                    size: meta.size,
                    modified: meta.last_modified,
                });
            }
            Ok(out)
        })
    }

    fn delete(&self, kind: FileKind, name: &str) -> Result<()> {
        let rel = kind.path(name);
        let path = self.full(&rel);
        match self.runtime.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(&rel, e)),
        }
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        let rel = kind.path(name);
        let path = self.full(&rel);
        self.runtime
            .block_on(self.store.head(&path))
            .map(|m| m.size)
            .map_err(|e| self.err(&rel, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_found_by_its_name_and_no_other() {
        for k in FileKind::ALL {
            assert_eq!(FileKind::from_name(k.name()), Some(k));
        }
        assert_eq!(FileKind::from_name("data"), Some(FileKind::Pack));
        assert_eq!(FileKind::from_name(""), None);
        assert_eq!(FileKind::from_name("../keys"), None);
    }

    /// A server keeps opened repositories and drops them inside its async tasks, where
    /// tokio refuses to wait for a runtime's threads.
    #[test]
    fn a_storage_is_dropped_inside_an_async_task_and_kept_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap().to_string();
        let storage = ObjectStorage::open(&location, &S3Options::default(), true).unwrap();
        storage
            .put(
                FileKind::Config,
                "config",
                b"written before the drop".to_vec(),
            )
            .unwrap();
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        outer.block_on(async move { drop(storage) });
        let again = ObjectStorage::open(&location, &S3Options::default(), false).unwrap();
        assert_eq!(
            again.get(FileKind::Config, "config", 1024).unwrap(),
            b"written before the drop"
        );
    }
}
