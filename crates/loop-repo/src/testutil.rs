//! Helpers for the engine's unit tests.

use std::path::Path;
use std::sync::Arc;

use crate::keys::{KdfParams, Secret};
use crate::{InitOptions, ObjectStorage, Repository, S3Options};

/// A new local repository at `dir` (created if missing), with cheap key derivation.
pub fn local_repo(dir: &Path) -> Repository {
    let storage = ObjectStorage::open(
        dir.to_str().expect("utf-8 temp path"),
        &S3Options::default(),
        true,
    )
    .expect("open local storage");
    let opts = InitOptions {
        kdf: KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        ..Default::default()
    };
    Repository::init(Arc::new(storage), Secret::Passphrase(b"pw"), &opts).expect("init")
}

/// A backup of `path` (host `h`, default options).
pub fn back_up(repo: &Repository, path: &Path) -> crate::backup::BackupResult {
    let opts = crate::backup::BackupOptions {
        paths: vec![path.to_path_buf()],
        host: "h".into(),
        ..Default::default()
    };
    crate::backup::run(repo, opts, &Default::default()).expect("backup")
}

/// Blob `blob` as stored: its index entry and its decrypted payload (compressed if it was).
pub fn stored_payload(repo: &Repository, blob: &crate::Id) -> (crate::pack::PackEntry, Vec<u8>) {
    use crate::{FileKind, pack};
    let index = repo.load_index().expect("index");
    let loc = index.get(blob).expect("the blob is indexed");
    let e = loc.entry;
    let stored = repo
        .storage()
        .get_range(
            FileKind::Pack,
            &loc.pack.to_hex(),
            e.offset as u64,
            e.length as u64,
        )
        .expect("the blob's bytes");
    let cipher = pack::pack_cipher(repo.master(), &loc.pack);
    let payload = pack::decrypt_payload(&cipher, &e, stored, "p").expect("decrypts");
    (e, payload)
}

/// Stores `payload` as blob `e.id` (validly encrypted) in a new pack of its own, not
/// indexed: the pack and its entries.
pub fn store_in_new_pack(
    repo: &Repository,
    e: &crate::pack::PackEntry,
    payload: &[u8],
) -> (crate::Id, Vec<crate::pack::PackEntry>) {
    let mut w = crate::pack::PackWriter::new(repo.master(), 1 << 20);
    w.add(e.kind, e.id, payload, e.raw_len);
    let (pack, data, entries) = w.finish();
    repo.storage()
        .put(crate::FileKind::Pack, &pack.to_hex(), data)
        .expect("store the pack");
    (pack, entries)
}

/// Stores, as a holder of the key could, a second copy of blob `blob` under its ID with its
/// last byte changed (validly encrypted, in a pack of its own) and indexes it. Answers the
/// forged pack and its entries.
pub fn plant_forged_copy(
    repo: &Repository,
    blob: &crate::Id,
) -> (crate::Id, Vec<crate::pack::PackEntry>) {
    let (e, mut payload) = stored_payload(repo, blob);
    assert!(!e.is_compressed(), "forge an incompressible blob");
    let last = payload.len() - 1;
    payload[last] ^= 0xff;
    let (forged, entries) = store_in_new_pack(repo, &e, &payload);
    repo.save_index_file(&crate::index::IndexFile {
        packs: vec![(forged, entries.clone())],
    })
    .expect("index the forged pack");
    (forged, entries)
}

/// Stores `trees` as a holder of the key could, in one pack of tree blobs (a large tree's
/// parts too) and one index file. Answers their IDs, in order.
pub fn store_trees(repo: &Repository, trees: &[crate::tree::Tree]) -> Vec<crate::Id> {
    let mut ids = Vec::with_capacity(trees.len());
    let mut blobs = Vec::new();
    let mut added = std::collections::HashSet::new();
    for tree in trees {
        let encoded = repo
            .encode_tree(tree)
            .expect("a tree of at most the most parts");
        for (id, data) in encoded.blobs {
            if added.insert(id) {
                blobs.push((crate::pack::BlobKind::Tree, data));
            }
        }
        ids.push(encoded.id);
    }
    store_blobs(repo, &blobs);
    ids
}

/// Stores `blobs` (kind and plaintext) as a holder of the key could, in one pack and one
/// index file. Answers their IDs, in order.
pub fn store_blobs(
    repo: &Repository,
    blobs: &[(crate::pack::BlobKind, Vec<u8>)],
) -> Vec<crate::Id> {
    let mut w = crate::pack::PackWriter::new(repo.master(), 1 << 20);
    let mut ids = Vec::with_capacity(blobs.len());
    for (kind, data) in blobs {
        let id = repo.blob_id(data);
        w.add(*kind, id, data, data.len() as u32);
        ids.push(id);
    }
    let (pack, data, entries) = w.finish();
    repo.put_pack(&pack, data, &entries)
        .expect("store the pack");
    repo.save_index_file(&crate::index::IndexFile {
        packs: vec![(pack, entries)],
    })
    .expect("index the pack");
    ids
}

/// A directory listing of `entries` FIFOs named with `name_len` bytes each: about
/// `entries × (name_len + 70)` bytes of JSON, made without touching a disk.
pub fn wide_tree(entries: usize, name_len: usize) -> crate::tree::Tree {
    use crate::tree::{Name, Node, NodeKind};
    let nodes = (0..entries)
        .map(|i| {
            let mut name = format!("{i:08}").into_bytes();
            name.resize(name_len.max(8), b'n');
            Node::bare(Name(name), NodeKind::Fifo, 0, None)
        })
        .collect();
    crate::tree::Tree { nodes }
}

/// What a [`Hooked`] storage's hook may answer for a read in place of the storage.
pub type ReadHook = Box<
    dyn Fn(&dyn crate::Storage, crate::FileKind, &str) -> Option<crate::Result<Vec<u8>>>
        + Send
        + Sync,
>;

/// Storage that passes every call to `inner`, but lets `read` see each read (`get` and
/// `get_range`) first and answer it instead (`Some`), for tests of what happens meanwhile.
pub struct Hooked {
    pub inner: Arc<dyn crate::Storage>,
    pub read: ReadHook,
}

impl crate::Storage for Hooked {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn put(&self, kind: crate::FileKind, name: &str, data: Vec<u8>) -> crate::Result<()> {
        self.inner.put(kind, name, data)
    }
    fn get(&self, kind: crate::FileKind, name: &str, max: u64) -> crate::Result<Vec<u8>> {
        match (self.read)(&*self.inner, kind, name) {
            Some(answer) => answer,
            None => self.inner.get(kind, name, max),
        }
    }
    fn get_range(
        &self,
        kind: crate::FileKind,
        name: &str,
        at: u64,
        len: u64,
    ) -> crate::Result<Vec<u8>> {
        match (self.read)(&*self.inner, kind, name) {
            Some(answer) => answer,
            None => self.inner.get_range(kind, name, at, len),
        }
    }
    fn list(&self, kind: crate::FileKind) -> crate::Result<Vec<crate::ObjectInfo>> {
        self.inner.list(kind)
    }
    fn delete(&self, kind: crate::FileKind, name: &str) -> crate::Result<()> {
        self.inner.delete(kind, name)
    }
    fn size(&self, kind: crate::FileKind, name: &str) -> crate::Result<u64> {
        self.inner.size(kind, name)
    }
}

/// Known answers computed by `tests/vectors/make_vectors.py`, independently of the engine.
#[allow(dead_code)]
pub mod vectors {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/expected.rs"
    ));
}

/// Bytes from a vector's hex.
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector hex")
}

/// A key from a vector's hex.
pub fn key(s: &str) -> crate::crypto::Key {
    crate::crypto::Key::from_bytes(unhex(s).try_into().expect("32-byte key"))
}

/// A snapshot record of `tree` with nothing else to say (host `h`, path `/`, at 1970).
pub fn bare_snapshot(tree: crate::Id) -> crate::snapshot::Snapshot {
    crate::snapshot::Snapshot {
        time: chrono::DateTime::UNIX_EPOCH.fixed_offset(),
        tree,
        paths: vec!["/".into()],
        hostname: "h".into(),
        username: String::new(),
        tags: Vec::new(),
        parent: None,
        excludes: Vec::new(),
        program_version: String::new(),
        summary: None,
    }
}

/// The snapshot `tree` forged by a key holder: its one backed-up directory's tree changed
/// by `change` and stored anew. Answers the new root tree.
pub fn with_dir_changed(
    repo: &Repository,
    tree: &crate::Id,
    change: impl FnOnce(&mut crate::tree::Tree),
) -> crate::Id {
    let index = repo.load_index().unwrap();
    let mut root = repo.load_tree(&index, tree).unwrap();
    let mut dir = repo
        .load_tree(&index, &root.nodes[0].subtree.unwrap())
        .unwrap();
    change(&mut dir);
    root.nodes[0].subtree = Some(store_trees(repo, &[dir])[0]);
    store_trees(repo, &[root])[0]
}
