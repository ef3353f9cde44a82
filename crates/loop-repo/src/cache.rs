//! A local cache of a remote repository's metadata: index files, snapshots and tree blobs.
//!
//! Reading a snapshot's trees costs one request per directory, and every backup reads the
//! whole index: through a server or S3 these round trips dominate a backup that finds little
//! to do. All three are immutable once written (index and snapshot names are random IDs
//! never reused; a tree blob is named by the keyed hash of its content), so a copy never
//! goes stale: it only becomes unused when prune or forget removes the original.
//!
//! The cache holds bytes exactly as storage returned them, still encrypted. Each use opens
//! and authenticates them like a download would, so a damaged or altered file in the cache
//! is detected; it is then dropped and the object fetched again, never trusted.
//!
//! Layout under the cache directory (one per repository, named by the repository ID):
//! `index/NAME`, `snapshots/NAME`, and `trees/ID` holding the pack ID, offset and length
//! the blob was read at (44 bytes) followed by the stored blob.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::id::Id;
use crate::index::BlobLocation;
use crate::storage::FileKind;

/// Length of a tree record's header: pack ID, offset, length.
const TREE_HEADER: usize = 32 + 4 + 4 + 4;

pub(crate) struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache of the repository `repo_id` under `root` (created on first write).
    pub(crate) fn new(root: &Path, repo_id: &Id) -> Cache {
        Cache {
            dir: root.join(repo_id.to_hex()),
        }
    }

    fn file_path(&self, kind: FileKind, name: &str) -> Option<PathBuf> {
        let sub = match kind {
            FileKind::Index => "index",
            FileKind::Snapshot => "snapshots",
            _ => return None,
        };
        // Names come from listings of untrusted storage: only plain hex names are cached.
        (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.dir.join(sub).join(name))
    }

    /// A whole cached file of `kind` (index or snapshot).
    pub(crate) fn get_file(&self, kind: FileKind, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.file_path(kind, name)?).ok()
    }

    pub(crate) fn put_file(&self, kind: FileKind, name: &str, bytes: &[u8]) {
        if let Some(path) = self.file_path(kind, name) {
            write_atomically(&path, &[bytes]);
        }
    }

    pub(crate) fn forget_file(&self, kind: FileKind, name: &str) {
        if let Some(path) = self.file_path(kind, name) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Removes cached files of `kind` whose originals are gone (not in `names`).
    pub(crate) fn retain_files(&self, kind: FileKind, names: &HashSet<&str>) {
        let Some(dir) = self
            .file_path(kind, &"0".repeat(64))
            .and_then(|p| p.parent().map(Path::to_path_buf))
        else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if !name.to_str().is_some_and(|n| names.contains(n)) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn tree_path(&self, id: &Id) -> PathBuf {
        self.dir.join("trees").join(id.to_hex())
    }

    /// The stored bytes of tree `id`, if they were cached from where the index says it is.
    pub(crate) fn get_tree(&self, id: &Id, loc: &BlobLocation) -> Option<Vec<u8>> {
        let mut bytes = std::fs::read(self.tree_path(id)).ok()?;
        if bytes.len() < TREE_HEADER || bytes[..TREE_HEADER] != tree_header(loc) {
            return None;
        }
        Some(bytes.split_off(TREE_HEADER))
    }

    pub(crate) fn put_tree(&self, id: &Id, loc: &BlobLocation, stored: &[u8]) {
        write_atomically(&self.tree_path(id), &[&tree_header(loc), stored]);
    }

    pub(crate) fn forget_tree(&self, id: &Id) {
        let _ = std::fs::remove_file(self.tree_path(id));
    }
}

fn tree_header(loc: &BlobLocation) -> [u8; TREE_HEADER] {
    let mut h = [0u8; TREE_HEADER];
    h[..32].copy_from_slice(loc.pack.as_bytes());
    h[32..36].copy_from_slice(&loc.entry.offset.to_le_bytes());
    h[36..40].copy_from_slice(&loc.entry.length.to_le_bytes());
    h[40..44].copy_from_slice(&loc.entry.raw_len.to_le_bytes());
    h
}

/// Writes via a temporary file and a rename, so a reader never sees half a file. A cache
/// that cannot be written (full disk, read-only home) only costs speed, so errors are
/// ignored.
fn write_atomically(path: &Path, parts: &[&[u8]]) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(".tmp-{}", Id::random().to_hex()));
    let written =
        std::fs::File::create(&tmp).and_then(|mut f| parts.iter().try_for_each(|p| f.write_all(p)));
    if written.is_err() || std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::{BlobKind, PackEntry};

    fn loc(offset: u32) -> BlobLocation {
        BlobLocation {
            pack: Id::random(),
            entry: PackEntry {
                kind: BlobKind::Tree,
                id: Id::random(),
                offset,
                length: 40,
                raw_len: 24,
            },
        }
    }

    #[test]
    fn a_tree_is_served_only_for_the_location_it_was_read_at() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), &Id::random());
        let id = Id::random();
        let here = loc(0);
        cache.put_tree(&id, &here, b"stored bytes");
        assert_eq!(
            cache.get_tree(&id, &here).as_deref(),
            Some(&b"stored bytes"[..])
        );
        // Repacked by prune: the index points elsewhere, so the copy is not used.
        let mut moved = here;
        moved.entry.offset = 4096;
        assert_eq!(cache.get_tree(&id, &moved), None);
        assert_eq!(cache.get_tree(&Id::random(), &here), None);
        cache.forget_tree(&id);
        assert_eq!(cache.get_tree(&id, &here), None);
    }

    #[test]
    fn only_hex_names_are_cached_and_vanished_files_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), &Id::random());
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        cache.put_file(FileKind::Index, &a, b"A");
        cache.put_file(FileKind::Index, &b, b"B");
        cache.put_file(FileKind::Index, "../../escape", b"X");
        cache.put_file(FileKind::Pack, &a, b"P");
        assert_eq!(cache.get_file(FileKind::Index, "../../escape"), None);
        assert_eq!(cache.get_file(FileKind::Pack, &a), None);
        cache.retain_files(FileKind::Index, &HashSet::from([a.as_str()]));
        assert_eq!(
            cache.get_file(FileKind::Index, &a).as_deref(),
            Some(&b"A"[..])
        );
        assert_eq!(cache.get_file(FileKind::Index, &b), None);
        let files: Vec<_> = walk(dir.path());
        assert!(files.iter().all(|p| p.starts_with(dir.path())), "{files:?}");
    }

    fn walk(p: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                out.push(e.path());
                out.extend(walk(&e.path()));
            }
        }
        out
    }
}
