//! An opened repository: storage, the unlocked master key, and the configuration.
//!
//! The `config` object is sealed (`LPCF`) under the master key and holds the repository ID,
//! the blob ID key, the chunker parameters and the compression level. Its plaintext header
//! carries the format version, so a newer repository is reported before any key is tried.

use std::path::Path;
use std::sync::Arc;

use chrono::{Local, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::cache::Cache;
use crate::chunker::ChunkerParams;
use crate::crypto::{IdKey, Key};
use crate::error::{Error, Result};
use crate::format::{self, Magic, Version};
use crate::id::Id;
use crate::index::{Index, IndexFile};
use crate::keys::{KdfParams, KeySlot, Secret, SlotMeta};
use crate::pack::{self, BlobKind, MAX_BLOB, PackEntry};
use crate::snapshot::{Snapshot, SnapshotFilter};
use crate::storage::{FileKind, Storage};
use crate::tree::Tree;
use crate::util::parallel_map;

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
        if !storage.list(FileKind::Key)?.is_empty() {
            return Err(Error::AlreadyExists(storage.location()));
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
        let mut found = None;
        for info in &slots {
            let object = FileKind::Key.path(&info.name);
            if info.size > MAX_KEY_SLOT {
                continue;
            }
            let slot = match KeySlot::parse(
                &object,
                storage.get(FileKind::Key, &info.name, MAX_KEY_SLOT)?,
            ) {
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
            return Err(Error::WrongPassword);
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
    /// [`crate::cache`]): for remote repositories, where each of them is a round trip.
    pub fn with_cache(mut self, root: &Path) -> Repository {
        self.cache = Some(Cache::new(root, &self.config.id));
        self
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

    /// Loads every index file into one in-memory index.
    pub fn load_index(&self) -> Result<Index> {
        self.load_index_excluding(&std::collections::HashSet::new())
    }

    /// Loads the index without the packs in `skip` (packs a pending prune will delete).
    pub fn load_index_excluding(&self, skip: &std::collections::HashSet<Id>) -> Result<Index> {
        self.load_index_with(skip, false).map(|(index, _)| index)
    }

    /// Like [`Repository::load_index_excluding`], but an index file that is damaged or from a
    /// newer version is skipped with a warning instead of failing. Backups use this: a lost
    /// index file only costs deduplication against the blobs it names. Anything that deletes
    /// data (prune) must never use it.
    pub fn load_index_lenient(
        &self,
        skip: &std::collections::HashSet<Id>,
    ) -> Result<(Index, Vec<String>)> {
        self.load_index_with(skip, true)
    }

    fn load_index_with(
        &self,
        skip: &std::collections::HashSet<Id>,
        lenient: bool,
    ) -> Result<(Index, Vec<String>)> {
        let names: Vec<String> = self
            .storage
            .list(FileKind::Index)?
            .into_iter()
            .map(|o| o.name)
            .collect();
        if let Some(c) = &self.cache {
            c.retain_files(FileKind::Index, &names.iter().map(String::as_str).collect());
        }
        let mut index = Index::new();
        let mut warnings = Vec::new();
        for chunk in names.chunks(64) {
            let files = parallel_map(chunk, FETCH_THREADS, |name| self.load_index_file(name));
            for f in files {
                let file = match f {
                    Ok(file) => file,
                    // Removed by a concurrent prune between list and get.
                    Err(e) if e.is_not_found() => continue,
                    Err(e @ (Error::Corrupt { .. } | Error::NewerVersion { .. })) if lenient => {
                        warnings.push(format!(
                            "{e}; the blobs it names are used from elsewhere or stored again"
                        ));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                for (pack, blobs) in &file.packs {
                    if !skip.contains(pack) {
                        index.add_pack(*pack, blobs);
                    }
                }
            }
        }
        index.finish();
        if let Some(c) = &self.cache {
            let packs: Vec<String> = index.pack_ids().iter().map(Id::to_hex).collect();
            c.retain_files(FileKind::Pack, &packs.iter().map(String::as_str).collect());
        }
        Ok((index, warnings))
    }

    pub fn load_index_file(&self, name: &str) -> Result<IndexFile> {
        let object = FileKind::Index.path(name);
        let open = |bytes: &[u8]| IndexFile::open(&self.master, &object, bytes);
        if let Some(file) = self.cached_file(FileKind::Index, name, open) {
            return Ok(file);
        }
        let bytes = self.storage.get(
            FileKind::Index,
            name,
            SEALED_OVERHEAD + crate::index::MAX_INDEX_FILE as u64,
        )?;
        let file = open(&bytes)?;
        if let Some(c) = &self.cache {
            c.put_file(FileKind::Index, name, &bytes);
        }
        Ok(file)
    }

    /// A cached index file or snapshot that still opens; a copy that does not is dropped.
    fn cached_file<T>(
        &self,
        kind: FileKind,
        name: &str,
        open: impl Fn(&[u8]) -> Result<T>,
    ) -> Option<T> {
        let c = self.cache.as_ref()?;
        let bytes = c.get_file(kind, name)?;
        match open(&bytes) {
            Ok(v) => Some(v),
            Err(_) => {
                c.forget_file(kind, name);
                None
            }
        }
    }

    pub fn save_index_file(&self, file: &IndexFile) -> Result<Id> {
        let id = Id::random();
        self.storage
            .put(FileKind::Index, &id.to_hex(), file.seal(&self.master))?;
        Ok(id)
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

    fn read_blob_at(&self, loc: &crate::index::BlobLocation, id: &Id) -> Result<Vec<u8>> {
        let stored = self.storage.get_range(
            FileKind::Pack,
            &loc.pack.to_hex(),
            loc.entry.offset as u64,
            loc.entry.length as u64,
        )?;
        self.decode_stored_blob(loc, id, stored)
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

    /// Loads and validates one tree.
    pub fn load_tree(&self, index: &Index, id: &Id) -> Result<Tree> {
        let data = match &self.cache {
            Some(c) => self.read_tree_cached(c, index, id)?,
            None => self.read_blob(index, id)?,
        };
        let object = format!("tree {}", id.short());
        let tree = Tree::decode(&object, &data)?;
        tree.validate(&object)?;
        Ok(tree)
    }

    /// A tree blob from the cached copy of its pack; a tree pack not cached yet is
    /// downloaded whole first. A cached copy that does not authenticate is dropped, and the
    /// blob read from storage like an uncached one.
    fn read_tree_cached(&self, c: &Cache, index: &Index, id: &Id) -> Result<Vec<u8>> {
        let Some(loc) = index.get(id).filter(|l| index.is_tree_pack(&l.pack)) else {
            return self.read_blob(index, id);
        };
        if !c.has_pack(&loc.pack) {
            let name = loc.pack.to_hex();
            let limit = crate::pack::max_pack_size(self.config.pack_size as usize);
            // A failed download is not an error here: the blob's own read reports it.
            c.download_pack(&loc.pack, || {
                self.storage.get(FileKind::Pack, &name, limit).ok()
            });
        }
        if let Some(stored) = c.get_blob(&loc) {
            match self.decode_stored_blob(&loc, id, stored) {
                Ok(data) => return Ok(data),
                Err(_) => c.forget_file(FileKind::Pack, &loc.pack.to_hex()),
            }
        }
        self.read_blob(index, id)
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

    /// The ID and encoding a tree gets when stored.
    pub fn encode_tree(&self, tree: &Tree) -> Result<(Id, Vec<u8>)> {
        let data = tree.encode();
        if data.len() > MAX_BLOB as usize {
            return Err(Error::Invalid(format!(
                "a directory with {} entries is too large for one tree blob",
                tree.nodes.len()
            )));
        }
        Ok((self.blob_id(&data), data))
    }

    pub fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        self.load_snapshot_from(id, false)
    }

    /// Loads a snapshot; `listed` when a fresh listing just named it, so a cached copy may
    /// serve (a snapshot asked for by ID alone may have been forgotten since it was cached).
    fn load_snapshot_from(&self, id: &Id, listed: bool) -> Result<Snapshot> {
        let name = id.to_hex();
        let object = FileKind::Snapshot.path(&name);
        let open = |bytes: &[u8]| -> Result<Snapshot> {
            match format::open(&self.master, Magic::Snapshot, &object, bytes, MAX_SNAPSHOT)? {
                (Version::V1, json) => serde_json::from_slice(&json)
                    .map_err(|e| Error::corrupt(&object, e.to_string())),
            }
        };
        if listed && let Some(snap) = self.cached_file(FileKind::Snapshot, &name, open) {
            return Ok(snap);
        }
        let bytes = self.storage.get(
            FileKind::Snapshot,
            &name,
            SEALED_OVERHEAD + MAX_SNAPSHOT as u64,
        )?;
        let snap = open(&bytes)?;
        if let Some(c) = &self.cache {
            c.put_file(FileKind::Snapshot, &name, &bytes);
        }
        Ok(snap)
    }

    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<Id> {
        let id = Id::random();
        let json = serde_json::to_vec(snap).expect("snapshots serialize");
        self.storage.put(
            FileKind::Snapshot,
            &id.to_hex(),
            format::seal(&self.master, Magic::Snapshot, &json, 3),
        )?;
        Ok(id)
    }

    /// Every snapshot that can be read, oldest first, and apart from them the snapshot
    /// objects that cannot (damaged, or of a newer format), with the reason. One bad object
    /// (a token holder can write any snapshot object) never hides the others: listing,
    /// `latest`, forget and stats skip it and say so, prune refuses to delete anything while
    /// it cannot know what a snapshot uses, and check reports it. Storage errors still fail.
    pub fn list_snapshots(&self) -> Result<SnapshotList> {
        let names: Vec<String> = self
            .storage
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|o| o.name)
            .collect();
        if let Some(c) = &self.cache {
            c.retain_files(
                FileKind::Snapshot,
                &names.iter().map(String::as_str).collect(),
            );
        }
        let loaded = parallel_map(&names, FETCH_THREADS, |name| {
            let id = Id::parse(name)?;
            match self.load_snapshot_from(&id, true) {
                Ok(s) => Ok(Some((id, s))),
                // Removed by a concurrent forget between list and get.
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        });
        let mut out = SnapshotList::default();
        for (name, r) in names.into_iter().zip(loaded) {
            match r {
                Ok(Some(s)) => out.snapshots.push(s),
                Ok(None) => {}
                Err(e @ (Error::Corrupt { .. } | Error::NewerVersion { .. })) => {
                    out.damaged.push((name, e))
                }
                Err(e) => return Err(e),
            }
        }
        out.snapshots
            .sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        out.damaged.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Removes a snapshot object without reading it, so a damaged one can go too; one already
    /// gone counts as removed. Takes no marker, because nothing running depends on the object
    /// staying: the snapshot's trees and data stay until a prune, which waits for backup,
    /// restore and check markers, and a reader that listed the snapshot just before skips it
    /// ([`Repository::list_snapshots`]).
    pub fn remove_snapshot(&self, id: &Id) -> Result<()> {
        self.storage.delete(FileKind::Snapshot, &id.to_hex())
    }

    /// The ID of the snapshot object `spec` names (a full ID or a unique prefix of at least 4
    /// hex digits) without reading it, so a damaged snapshot can still be removed.
    pub fn snapshot_name(&self, spec: &str) -> Result<Id> {
        if spec.len() < 4 || spec.len() > 64 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "{spec:?} is not a snapshot ID (at least 4 hex digits)"
            )));
        }
        let spec_lower = spec.to_ascii_lowercase();
        let matches: Vec<String> = self
            .storage
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|o| o.name)
            .filter(|n| n.starts_with(&spec_lower))
            .collect();
        match matches.as_slice() {
            [one] => Id::parse(one),
            [] => Err(Error::NotFound(format!("snapshot {spec}"))),
            _ => Err(Error::Invalid(format!(
                "snapshot prefix {spec} is ambiguous"
            ))),
        }
    }

    /// Resolves `latest`, a full ID or a unique ID prefix (at least 4 hex digits).
    pub fn find_snapshot(&self, spec: &str, filter: &SnapshotFilter) -> Result<(Id, Snapshot)> {
        if spec == "latest" {
            return self
                .list_snapshots()?
                .snapshots
                .into_iter()
                .rev()
                .find(|(_, s)| filter.matches(s))
                .ok_or_else(|| Error::NotFound("a snapshot matching the filter".into()));
        }
        if spec.len() == 64 {
            let id = Id::parse(spec)?;
            return self.load_snapshot(&id).map(|s| (id, s)).map_err(|e| {
                if e.is_not_found() {
                    Error::NotFound(format!("snapshot {spec}"))
                } else {
                    e
                }
            });
        }
        if spec.len() < 4 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "{spec:?} is neither `latest` nor a snapshot ID (at least 4 hex digits)"
            )));
        }
        let id = self.snapshot_name(spec)?;
        Ok((id, self.load_snapshot(&id)?))
    }

    // ---- key slots ----

    /// Every key slot, read and parsed (still locked).
    fn key_slots(&self) -> Result<Vec<(Id, KeySlot)>> {
        let mut out = Vec::new();
        for info in self.storage.list(FileKind::Key)? {
            let object = FileKind::Key.path(&info.name);
            let slot = KeySlot::parse(
                &object,
                self.storage.get(FileKind::Key, &info.name, MAX_KEY_SLOT)?,
            )?;
            out.push((Id::parse(&info.name)?, slot));
        }
        Ok(out)
    }

    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for (id, slot) in self.key_slots()? {
            out.push(KeyInfo {
                id,
                current: id == self.key_id,
                kind: if slot.is_passphrase() {
                    "passphrase"
                } else {
                    "raw-key"
                },
                meta: slot.meta,
            });
        }
        out.sort_by(|a, b| a.meta.created.cmp(&b.meta.created));
        Ok(out)
    }

    /// The key slots `secret` opens. Each slot is read; a raw key costs no key derivation,
    /// and a slot of the other kind is skipped without one.
    pub fn key_slots_opened_by(&self, secret: Secret<'_>) -> Result<Vec<Id>> {
        let mut out = Vec::new();
        for (id, slot) in self.key_slots()? {
            if slot.open(&secret)?.is_some() {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Adds a key slot for another passphrase or raw key. Data is not re-encrypted.
    pub fn add_key(&self, secret: Secret<'_>, kdf: KdfParams, meta: &SlotMeta) -> Result<Id> {
        let slot = KeySlot::create(&self.master, secret, kdf, meta)?;
        let id = Id::random();
        self.storage.put(FileKind::Key, &id.to_hex(), slot)?;
        Ok(id)
    }

    /// Removes a key slot. Refuses the slot this session opened with, so nobody locks
    /// themselves out by accident; removing the last slot needs [`Repository::destroy_keys`].
    pub fn remove_key(&self, id: &Id) -> Result<()> {
        if *id == self.key_id {
            return Err(Error::Invalid(
                "refusing to remove the key slot in use; open with another key to remove it".into(),
            ));
        }
        let name = id.to_hex();
        self.storage.size(FileKind::Key, &name).map_err(|e| {
            if e.is_not_found() {
                Error::NotFound(format!("key {}", id.short()))
            } else {
                e
            }
        })?;
        self.storage.delete(FileKind::Key, &name)
    }

    /// Replaces the current slot's passphrase: adds a new slot, then removes the old one.
    pub fn change_passphrase(&mut self, new: &[u8], kdf: KdfParams, meta: &SlotMeta) -> Result<Id> {
        let new_id = self.add_key(Secret::Passphrase(new), kdf, meta)?;
        let old = self.key_id;
        self.key_id = new_id;
        self.storage.delete(FileKind::Key, &old.to_hex())?;
        Ok(new_id)
    }

    /// Deletes every key slot: the repository becomes unreadable for good (crypto-shredding).
    pub fn destroy_keys(storage: &dyn Storage) -> Result<usize> {
        let slots = storage.list(FileKind::Key)?;
        for s in &slots {
            storage.delete(FileKind::Key, &s.name)?;
        }
        Ok(slots.len())
    }

    pub fn key_id(&self) -> Id {
        self.key_id
    }

    /// Host and user metadata for a new key slot.
    pub fn default_slot_meta(host: &str, user: &str) -> SlotMeta {
        SlotMeta {
            created: Local::now().to_rfc3339(),
            host: host.to_string(),
            user: user.to_string(),
            label: String::new(),
        }
    }
}
