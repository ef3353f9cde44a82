//! An opened repository: storage, the unlocked master key, and the configuration.
//!
//! The `config` object is sealed (`LPCF`) under the master key and holds the repository ID,
//! the blob ID key, the chunker parameters and the compression level. Its plaintext header
//! carries the format version, so a newer repository is reported before any key is tried.
//!
//! Here: init, open, index and blobs; `trees.rs`, `snapshots.rs` and `key_slots.rs` hold the
//! rest of what a `Repository` does.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::cache::Cache;
use crate::chunker::ChunkerParams;
use crate::crypto::{IdKey, Key};
use crate::error::{Error, Result};
use crate::format::{self, Magic, Version};
use crate::id::Id;
use crate::index::Index;
use crate::keys::{KdfParams, KeySlot, Secret, SlotMeta};
use crate::pack::{self, BlobKind, PackEntry};
use crate::snapshot::Snapshot;
use crate::storage::{FileKind, Storage};

/// Largest config payload accepted from storage.
const MAX_CONFIG: usize = 64 * 1024;
/// Largest snapshot payload accepted from storage (paths, tags and summary; a snapshot of
/// many paths stays far below).
const MAX_SNAPSHOT: usize = 16 * 1024 * 1024;
/// Largest key slot accepted from storage.
const MAX_KEY_SLOT: u64 = 1024 * 1024;
/// What sealing adds around a payload: header, salt, codec byte and tag (with room to spare).
pub(crate) const SEALED_OVERHEAD: u64 = 1024;
/// Threads for fetching many small objects (index files, snapshots).
pub(crate) const FETCH_THREADS: usize = 8;
mod index_files;
mod key_slots;
mod snapshots;
#[cfg(test)]
mod tests;
mod trees;

pub(crate) use trees::read_tree;

#[derive(Serialize, Deserialize)]
struct ConfigFile {
    version: u32,
    id: Id,
    created: String,
    id_key: String,
    chunker: ChunkerParams,
    compression_level: i32,
    pack_size: u32,
}

/// Repository settings chosen at `init`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoConfig {
    pub id: Id,
    pub created: String,
    pub chunker: ChunkerParams,
    /// zstd level for blobs (see docs/BENCHMARKS.md for the measurement behind the default).
    pub compression_level: i32,
    /// Target size of a pack file in bytes.
    pub pack_size: u32,
}

/// Options for [`Repository::init`].
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub kdf: KdfParams,
    pub compression_level: i32,
    pub pack_size: u32,
    pub meta: SlotMeta,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            kdf: KdfParams::default(),
            compression_level: 3,
            pack_size: 16 * 1024 * 1024,
            meta: SlotMeta::default(),
        }
    }
}

/// One key slot as `key list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    pub id: Id,
    pub current: bool,
    pub kind: &'static str,
    #[serde(flatten)]
    pub meta: SlotMeta,
    /// Why a slot of kind `unusable` cannot be used (it cannot be read, or is no valid slot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// An opened repository.
/// What [`Repository::list_snapshots`] found.
#[derive(Debug, Default)]
pub struct SnapshotList {
    /// Readable snapshots, oldest first.
    pub snapshots: Vec<(Id, Snapshot)>,
    /// Snapshot objects that cannot be read: (object name, why).
    pub damaged: Vec<(String, Error)>,
}

pub struct Repository {
    storage: Arc<dyn Storage>,
    master: Key,
    id_key: IdKey,
    config: RepoConfig,
    key_id: Id,
    /// Local copies of index files, snapshots and tree packs ([`Repository::with_cache`]).
    cache: Option<Cache>,
    /// The largest tree (its JSON, in bytes) this reader loads ([`Repository::with_tree_limit`]).
    tree_limit: usize,
}

impl Repository {
    /// Creates a repository: a fresh master key, one key slot, and the config.
    pub fn init(
        storage: Arc<dyn Storage>,
        secret: Secret<'_>,
        opts: &InitOptions,
    ) -> Result<Repository> {
        match storage.size(FileKind::Config, "config") {
            Ok(_) => return Err(Error::AlreadyExists(storage.location())),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let slots = storage.list(FileKind::Key)?.len();
        if slots > 0 {
            // The slot is written before the config: a slot without a config is an init that
            // was cut off, or a repository that lost its config (whose slots still hold the
            // key to its data, so nothing removes them here).
            return Err(Error::Invalid(format!(
                "{}: keys/ holds {slots} key slot(s) but there is no config. If an earlier \
                 `loop init` was interrupted, remove keys/ and run it again; if this \
                 repository held backups, its config is lost: keep keys/, it holds the key \
                 to the data",
                storage.location()
            )));
        }
        let master = Key::generate();
        let id_key = Key::generate();
        let seed = u64::from_le_bytes(Key::generate().expose()[..8].try_into().expect("8"));
        let config = RepoConfig {
            id: Id::random(),
            created: Utc::now().to_rfc3339(),
            chunker: ChunkerParams::with_seed(seed),
            compression_level: opts.compression_level,
            pack_size: opts.pack_size,
        };
        let mut file = ConfigFile {
            version: 1,
            id: config.id,
            created: config.created.clone(),
            id_key: hex::encode(id_key.expose()),
            chunker: config.chunker,
            compression_level: config.compression_level,
            pack_size: config.pack_size,
        };
        let mut json = serde_json::to_vec(&file).expect("config serializes");
        file.id_key.zeroize();
        let sealed = format::seal(&master, Magic::Config, &json, 3);
        json.zeroize();
        // The key slot goes first: a config without a slot would be an unopenable repository.
        let slot = KeySlot::create(&master, secret, opts.kdf, &opts.meta)?;
        let key_id = Id::random();
        storage.put(FileKind::Key, &key_id.to_hex(), slot)?;
        storage.put(FileKind::Config, "config", sealed)?;
        Ok(Repository {
            cache: None,
            tree_limit: crate::tree::MAX_TREE_PARTS * crate::tree::TREE_PART,
            storage,
            id_key: IdKey::new(&id_key),
            master,
            config,
            key_id,
        })
    }

    /// Opens a repository with a passphrase or raw key.
    pub fn open(storage: Arc<dyn Storage>, secret: Secret<'_>) -> Result<Repository> {
        let config_bytes = match storage.get(
            FileKind::Config,
            "config",
            SEALED_OVERHEAD + MAX_CONFIG as u64,
        ) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(Error::NoRepository(storage.location())),
            Err(e) => return Err(e),
        };
        let Version::V1 = Magic::Config.check("config", &config_bytes)?;
        let slots = storage.list(FileKind::Key)?;
        if slots.is_empty() {
            return Err(Error::NoKeySlot(storage.location()));
        }
        // Anyone who can write the storage can add slots, so none of them may stop the
        // others from being tried: a slot that is damaged, of a newer version, asks for more
        // work than slots may (refused as damage before any) or cannot be read is skipped.
        // When no slot opens, a slot that could not be read may have been the right one: its
        // error is the answer rather than a wrong passphrase.
        let mut found = None;
        let mut unread = None;
        for info in &slots {
            let object = FileKind::Key.path(&info.name);
            if info.size > MAX_KEY_SLOT {
                continue;
            }
            let bytes = match storage.get(FileKind::Key, &info.name, MAX_KEY_SLOT) {
                Ok(b) => b,
                // Deleted since the listing (a passphrase change replaced it): not a slot.
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    unread.get_or_insert(e);
                    continue;
                }
            };
            let slot = match KeySlot::parse(&object, bytes) {
                Ok(s) => s,
                Err(Error::NewerVersion { .. }) | Err(Error::Corrupt { .. }) => continue,
                Err(e) => return Err(e),
            };
            if let Some(master) = slot.open(&secret)? {
                found = Some((master, Id::parse(&info.name)?));
                break;
            }
        }
        let Some((master, key_id)) = found else {
            return Err(unread.unwrap_or(Error::WrongPassword));
        };
        let (version, mut json) =
            format::open(&master, Magic::Config, "config", &config_bytes, MAX_CONFIG)?;
        let parsed: std::result::Result<ConfigFile, _> = match version {
            Version::V1 => serde_json::from_slice(&json),
        };
        json.zeroize();
        let mut file = parsed.map_err(|e| Error::corrupt("config", e.to_string()))?;
        let mut key_bytes = [0u8; 32];
        let decoded = hex::decode_to_slice(&file.id_key, &mut key_bytes);
        file.id_key.zeroize();
        decoded.map_err(|_| Error::corrupt("config", "bad blob ID key"))?;
        let id_key = Key::from_bytes(key_bytes);
        key_bytes.zeroize();
        file.chunker
            .validate()
            .map_err(|e| Error::corrupt("config", e))?;
        if !(1..=22).contains(&file.compression_level)
            || !(1 << 20..=1 << 30).contains(&file.pack_size)
        {
            return Err(Error::corrupt("config", "settings out of range"));
        }
        Ok(Repository {
            cache: None,
            tree_limit: crate::tree::MAX_TREE_PARTS * crate::tree::TREE_PART,
            storage,
            id_key: IdKey::new(&id_key),
            master,
            config: RepoConfig {
                id: file.id,
                created: file.created,
                chunker: file.chunker,
                compression_level: file.compression_level,
                pack_size: file.pack_size,
            },
            key_id,
        })
    }

    /// Keeps local copies of index files, snapshots and tree packs under `root` (see
    /// [`crate::cache`]): for remote repositories, where each of them is a round trip. Marks
    /// this repository's cache as used, and removes others under `root` long unused.
    pub fn with_cache(mut self, root: &Path) -> Repository {
        self.cache = Some(Cache::open(root, &self.config.id));
        self
    }

    /// Loads no tree whose JSON is longer than `bytes` (a clear error instead): for a reader
    /// that serves many (a server), so one repository's huge or forged listing cannot take
    /// its memory. Without it, a tree of up to 4 GiB is loaded.
    pub fn with_tree_limit(mut self, bytes: usize) -> Repository {
        self.tree_limit = bytes;
        self
    }

    /// The largest tree this reader loads ([`Repository::with_tree_limit`]).
    pub(crate) fn tree_limit(&self) -> usize {
        self.tree_limit
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    pub(crate) fn master(&self) -> &Key {
        &self.master
    }

    /// The keyed BLAKE3 ID of a blob's plaintext.
    pub fn blob_id(&self, data: &[u8]) -> Id {
        self.id_key.id(data)
    }

    /// A cached index file or snapshot of at most `max` bytes that still opens; a copy
    /// that does not is dropped.
    fn cached_file<T>(
        &self,
        kind: FileKind,
        name: &str,
        max: u64,
        open: impl Fn(&[u8]) -> Result<T>,
    ) -> Option<T> {
        let c = self.cache.as_ref()?;
        let bytes = c.get_file(kind, name, max)?;
        match open(&bytes) {
            Ok(v) => Some(v),
            Err(_) => {
                c.forget_file(kind, name);
                None
            }
        }
    }

    /// Reads, authenticates and decodes one blob, and checks its keyed ID. When that copy
    /// fails (damaged, or indexed wrongly), the blob's other copies are tried.
    pub fn read_blob(&self, index: &Index, id: &Id) -> Result<Vec<u8>> {
        let loc = index
            .get(id)
            .ok_or_else(|| Error::corrupt(format!("blob {}", id.short()), "not in any index"))?;
        self.read_blob_at(&loc, id)
            .or_else(|first| self.read_blob_alternate(index, id).map_err(|_| first))
    }

    /// The blob from one of its further copies ([`Index::alternates`]).
    pub fn read_blob_alternate(&self, index: &Index, id: &Id) -> Result<Vec<u8>> {
        let mut last = Error::corrupt(format!("blob {}", id.short()), "no other copy");
        for loc in index.alternates(id) {
            match self.read_blob_at(&loc, id) {
                Ok(d) => return Ok(d),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The copy of blob `id` at `loc`, authenticated and checked against its keyed ID.
    pub(crate) fn read_blob_at(
        &self,
        loc: &crate::index::BlobLocation,
        id: &Id,
    ) -> Result<Vec<u8>> {
        let stored = self.storage.get_range(
            FileKind::Pack,
            &loc.pack.to_hex(),
            loc.entry.offset as u64,
            loc.entry.length as u64,
        )?;
        self.decode_stored_blob(loc, id, stored)
    }

    /// Reads the blobs `entries` of pack `pack` in as few reads as their places allow (one
    /// read spans blobs at most 1 MiB apart, up to 16 MiB), each authenticated and checked
    /// against its keyed ID: one answer per entry, in the order given. A storage error fails
    /// the whole call; a blob that is not what its entry says is that entry's `Err`.
    pub(crate) fn read_blobs_in_pack(
        &self,
        pack: &Id,
        entries: &[crate::pack::PackEntry],
    ) -> Result<Vec<Result<Vec<u8>>>> {
        const GAP: u64 = 1 << 20;
        const SPAN: u64 = 16 << 20;
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| entries[i].offset);
        let mut out: Vec<Option<Result<Vec<u8>>>> = entries.iter().map(|_| None).collect();
        let mut at = 0;
        while at < order.len() {
            let start = entries[order[at]].offset as u64;
            let mut end = start + entries[order[at]].length as u64;
            let mut last = at + 1;
            while last < order.len() {
                let e = &entries[order[last]];
                let e_end = e.offset as u64 + e.length as u64;
                if e.offset as u64 > end + GAP || e_end.max(end) - start > SPAN {
                    break;
                }
                end = end.max(e_end);
                last += 1;
            }
            let bytes =
                self.storage
                    .get_range(FileKind::Pack, &pack.to_hex(), start, end - start)?;
            for &i in &order[at..last] {
                let e = entries[i];
                let from = (e.offset as u64 - start) as usize;
                let to = from + e.length as usize;
                let loc = crate::index::BlobLocation {
                    pack: *pack,
                    entry: e,
                };
                out[i] = Some(match bytes.get(from..to) {
                    Some(stored) => self.decode_stored_blob(&loc, &e.id, stored.to_vec()),
                    None => Err(Error::corrupt(
                        FileKind::Pack.path(&pack.to_hex()),
                        "shorter than its index says",
                    )),
                });
            }
            at = last;
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every entry read"))
            .collect())
    }

    /// Authenticates and decodes a blob as stored at `loc`, and checks its keyed ID.
    fn decode_stored_blob(
        &self,
        loc: &crate::index::BlobLocation,
        id: &Id,
        stored: Vec<u8>,
    ) -> Result<Vec<u8>> {
        let object = FileKind::Pack.path(&loc.pack.to_hex());
        let data = pack::decode_blob(
            &pack::pack_cipher(&self.master, &loc.pack),
            &loc.entry,
            stored,
            &object,
        )?;
        if self.blob_id(&data) != *id {
            return Err(Error::corrupt(
                object,
                format!("blob {} does not match its ID", id.short()),
            ));
        }
        Ok(data)
    }

    /// Stores a finished pack; a pack of trees also goes into the cache, so the next
    /// backup or restore on this machine reads its trees without a request each.
    pub fn put_pack(&self, id: &Id, bytes: Vec<u8>, entries: &[PackEntry]) -> Result<()> {
        if let Some(c) = &self.cache
            && !entries.is_empty()
            && entries.iter().all(|e| e.kind == BlobKind::Tree)
        {
            c.put_file(FileKind::Pack, &id.to_hex(), &bytes);
        }
        self.storage.put(FileKind::Pack, &id.to_hex(), bytes)
    }
}
