//! A local cache of a remote repository's metadata: index files, snapshots and tree packs.
//!
//! Reading a snapshot's trees costs one request per directory, and every backup reads the
//! whole index: through a server or S3 these round trips dominate a backup that finds little
//! to do. All three are immutable once written (index, snapshot and pack names are random
//! IDs never reused), so a copy never goes stale: it only becomes unused when prune or
//! forget removes the original.
//!
//! Trees are cached a whole pack at a time, as restic does: packers keep trees apart from
//! data, so a tree pack is small (a few MiB for the Linux source tree). A backup puts each
//! tree pack it writes into the cache; a reader that finds a tree's pack missing downloads
//! the whole pack once (one request instead of one per directory).
//!
//! The cache holds bytes exactly as storage returned them, still encrypted. Each use opens
//! and authenticates them like a download would, so a damaged or altered file in the cache
//! is detected; it is then dropped and the object fetched again, never trusted.
//!
//! Layout under the cache directory (one per repository, named by the repository ID):
//! `index/NAME`, `snapshots/NAME` and `packs/NAME`. The root holds a `CACHEDIR.TAG`, so
//! backup tools that honour it (ours with `--exclude-caches`, tar, restic, borg) skip it.
//! Each use of a repository's cache sets its directory's modification time; a cache unused
//! for [`UNUSED_CACHE_DAYS`] is removed by the next use of another under the same root.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::exclude::{CACHEDIR_SIGNATURE, CACHEDIR_TAG};
use crate::id::Id;
use crate::index::BlobLocation;
use crate::storage::FileKind;

/// Days a repository's cache may go unused before it is removed (restic suggests removing
/// its caches after the same 30 days). A removed cache costs only speed: it fills again.
pub const UNUSED_CACHE_DAYS: u64 = 30;

pub(crate) struct Cache {
    dir: PathBuf,
    /// Held while a pack is downloaded: one whole-pack download at a time, so concurrent
    /// tree readers neither fetch the same pack twice nor hold many packs in memory at once.
    downloading: Mutex<()>,
    /// Set when a downloaded pack could not be written (full disk, read-only home): then
    /// no further pack is downloaded whole, and trees are read one request each.
    unwritable: AtomicBool,
}

impl Cache {
    /// The cache of the repository `repo_id` under `root` (created on first write).
    pub(crate) fn new(root: &Path, repo_id: &Id) -> Cache {
        Cache {
            dir: root.join(repo_id.to_hex()),
            downloading: Mutex::new(()),
            unwritable: AtomicBool::new(false),
        }
    }

    /// The cache of `repo_id` under `root`, marked as used now: the root is tagged as a cache
    /// and caches of other repositories unused for [`UNUSED_CACHE_DAYS`] are removed. A root
    /// that cannot be written is no error (the cache then only misses).
    pub(crate) fn open(root: &Path, repo_id: &Id) -> Cache {
        let cache = Cache::new(root, repo_id);
        let tag = root.join(CACHEDIR_TAG);
        if std::fs::create_dir_all(&cache.dir).is_ok() {
            if !tag.exists() {
                let mut text = CACHEDIR_SIGNATURE.to_vec();
                text.extend_from_slice(
                    b"\n# This file marks the cache of loop (Loop Backup): backup tools that honour\n\
                      # cache tags skip this directory. See https://bford.info/cachedir/\n",
                );
                write_atomically(&tag, &text);
            }
            let _ = std::fs::File::open(&cache.dir).and_then(|d| d.set_modified(SystemTime::now()));
            let unused = Duration::from_secs(UNUSED_CACHE_DAYS * 86_400);
            remove_unused_caches(root, unused);
        }
        cache
    }

    fn file_path(&self, kind: FileKind, name: &str) -> Option<PathBuf> {
        let sub = match kind {
            FileKind::Index => "index",
            FileKind::Snapshot => "snapshots",
            FileKind::Pack => "packs",
            _ => return None,
        };
        // Names come from listings of untrusted storage: only plain hex names are cached.
        (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.dir.join(sub).join(name))
    }

    /// A whole cached file of `kind` (index, snapshot or pack), unless it is longer than
    /// `max`, the most storage would be asked for: the cache is no more trusted than storage,
    /// and a (sparse) file of gigabytes must not be read into memory. Such a copy is dropped.
    pub(crate) fn get_file(&self, kind: FileKind, name: &str, max: u64) -> Option<Vec<u8>> {
        use std::io::Read as _;
        let path = self.file_path(kind, name)?;
        let file = std::fs::File::open(&path).ok()?;
        if file.metadata().ok()?.len() > max {
            let _ = std::fs::remove_file(&path);
            return None;
        }
        let mut bytes = Vec::new();
        file.take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .ok()?;
        (bytes.len() as u64 <= max).then_some(bytes)
    }

    /// Caches a file; false when it could not be written.
    pub(crate) fn put_file(&self, kind: FileKind, name: &str, bytes: &[u8]) -> bool {
        self.file_path(kind, name)
            .is_some_and(|path| write_atomically(&path, bytes))
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
        if kind == FileKind::Pack {
            // Caches written before trees were cached by pack held one file per tree.
            let _ = std::fs::remove_dir_all(self.dir.join("trees"));
        }
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

    /// The stored bytes of the blob at `loc`, from the cached copy of its pack.
    pub(crate) fn get_blob(&self, loc: &BlobLocation) -> Option<Vec<u8>> {
        let file = std::fs::File::open(self.file_path(FileKind::Pack, &loc.pack.to_hex())?).ok()?;
        // The index's length is checked against the blob only once read: bound it by the
        // cached pack first, so a wrong one cannot ask for gigabytes.
        let end = u64::from(loc.entry.offset) + u64::from(loc.entry.length);
        if end > file.metadata().ok()?.len() {
            return None;
        }
        let mut bytes = vec![0u8; loc.entry.length as usize];
        file.read_exact_at(&mut bytes, loc.entry.offset as u64)
            .ok()?;
        Some(bytes)
    }

    pub(crate) fn has_pack(&self, pack: &Id) -> bool {
        self.file_path(FileKind::Pack, &pack.to_hex())
            .is_some_and(|p| p.exists())
    }

    /// Runs `download` and caches the pack it returns, unless another caller already
    /// cached `pack` or the cache cannot be written; one download at a time.
    pub(crate) fn download_pack(&self, pack: &Id, download: impl FnOnce() -> Option<Vec<u8>>) {
        let _one_at_a_time = self.downloading.lock().unwrap_or_else(|e| e.into_inner());
        if self.unwritable.load(Ordering::Relaxed) || self.has_pack(pack) {
            return;
        }
        if let Some(bytes) = download()
            && !self.put_file(FileKind::Pack, &pack.to_hex(), &bytes)
        {
            self.unwritable.store(true, Ordering::Relaxed);
        }
    }
}

/// One repository's cache under a cache root, as [`caches`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheDir {
    /// The repository's ID (hex), which names the directory.
    pub repository: String,
    pub path: PathBuf,
    /// When a command last used it.
    pub last_used: SystemTime,
    /// Bytes of the files in it.
    pub bytes: u64,
}

/// The repositories' caches under `root`, least recently used first. Only directories named
/// by a repository ID count: nothing else under the root is ever touched.
pub fn caches(root: &Path) -> Vec<CacheDir> {
    listed(root, true)
}

/// [`caches`], with their sizes added up only when `sizes` (it reads every file's metadata).
fn listed(root: &Path, sizes: bool) -> Vec<CacheDir> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<CacheDir> = entries
        .flatten()
        .filter_map(|e| {
            let repository = e.file_name().into_string().ok()?;
            let meta = e.metadata().ok()?; // of the entry itself: a link is not a cache
            // Named as the program names a repository (and any object): by its ID.
            let named_by_id = FileKind::Index.is_object_name(&repository);
            (named_by_id && meta.is_dir()).then(|| CacheDir {
                bytes: if sizes { bytes_under(&e.path()) } else { 0 },
                path: e.path(),
                repository,
                last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })
        })
        .collect();
    out.sort_by(|a, b| (a.last_used, &a.repository).cmp(&(b.last_used, &b.repository)));
    out
}

/// Removes the caches under `root` unused for `unused` or longer; returns those removed.
pub fn remove_unused_caches(root: &Path, unused: Duration) -> Vec<CacheDir> {
    let Some(cutoff) = SystemTime::now().checked_sub(unused) else {
        return Vec::new();
    };
    // Sized only once found old: every use of a cache runs this, and sizing reads every
    // file's metadata.
    listed(root, false)
        .into_iter()
        .filter(|c| c.last_used <= cutoff)
        .map(|c| CacheDir {
            bytes: bytes_under(&c.path),
            ..c
        })
        .filter(|c| std::fs::remove_dir_all(&c.path).is_ok())
        .collect()
}

/// Bytes of the regular files below `dir`, links not followed.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| Some((e.path(), e.metadata().ok()?)))
        .map(|(path, meta)| match meta.is_dir() {
            true => bytes_under(&path),
            false if meta.is_file() => meta.len(),
            false => 0,
        })
        .sum()
}

/// Writes via a temporary file and a rename, so a reader never sees half a file. A cache
/// that cannot be written (full disk, read-only home) only costs speed, so a failure is
/// only reported as `false`.
fn write_atomically(path: &Path, bytes: &[u8]) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let tmp = dir.join(format!(".tmp-{}", Id::random().to_hex()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
    if written.is_err() || std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::{BlobKind, PackEntry};

    #[test]
    fn a_blob_is_read_from_its_cached_pack_and_a_missing_pack_is_downloaded_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), &Id::random());
        let pack = Id::random();
        let loc = BlobLocation {
            pack,
            entry: PackEntry {
                kind: BlobKind::Tree,
                id: Id::random(),
                offset: 4,
                length: 5,
                raw_len: 5,
            },
        };
        assert!(!cache.has_pack(&pack));
        assert_eq!(cache.get_blob(&loc), None);
        let mut downloads = 0;
        for _ in 0..2 {
            cache.download_pack(&pack, || {
                downloads += 1;
                Some(b"headtree-bytestrailer".to_vec())
            });
        }
        assert_eq!(downloads, 1);
        assert_eq!(cache.get_blob(&loc).as_deref(), Some(&b"tree-"[..]));
        // A location past the end of the cached copy is a miss, not a short read.
        let mut past = loc;
        past.entry.offset = 20;
        assert_eq!(cache.get_blob(&past), None);
        cache.forget_file(FileKind::Pack, &pack.to_hex());
        assert_eq!(cache.get_blob(&loc), None);
    }

    #[test]
    fn only_hex_names_are_cached_and_vanished_files_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), &Id::random());
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        cache.put_file(FileKind::Index, &a, b"A");
        cache.put_file(FileKind::Index, &b, b"B");
        cache.put_file(FileKind::Index, "../../escape", b"X");
        cache.put_file(FileKind::Lock, &a, b"L");
        assert_eq!(
            cache.get_file(FileKind::Index, "../../escape", 1 << 20),
            None
        );
        assert_eq!(cache.get_file(FileKind::Lock, &a, 1 << 20), None);
        cache.retain_files(FileKind::Index, &HashSet::from([a.as_str()]));
        assert_eq!(
            cache.get_file(FileKind::Index, &a, 1 << 20).as_deref(),
            Some(&b"A"[..])
        );
        assert_eq!(cache.get_file(FileKind::Index, &b, 1 << 20), None);
        let files: Vec<_> = walk(dir.path());
        assert!(files.iter().all(|p| p.starts_with(dir.path())), "{files:?}");
    }

    /// A cached copy longer than storage would ever be asked for (a sparse file of 50 GiB
    /// costs no disk) is dropped unread, not read into memory.
    #[test]
    fn a_cached_file_longer_than_its_kind_allows_is_dropped_unread() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), &Id::random());
        let name = "d".repeat(64);
        assert!(cache.put_file(FileKind::Snapshot, &name, b"0123456789"));
        assert_eq!(
            cache.get_file(FileKind::Snapshot, &name, 10).as_deref(),
            Some(&b"0123456789"[..])
        );
        let path = cache.file_path(FileKind::Snapshot, &name).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(50 << 30)
            .unwrap();
        assert_eq!(cache.get_file(FileKind::Snapshot, &name, 1 << 20), None);
        assert!(!path.exists(), "the oversized copy is dropped");
    }

    /// Sets when the cache `dir` was last used to `days_ago` days before now.
    fn used_days_ago(dir: &Path, days_ago: u64) {
        let then = SystemTime::now() - Duration::from_secs(days_ago * 86_400);
        std::fs::File::open(dir)
            .unwrap()
            .set_modified(then)
            .unwrap();
    }

    #[test]
    fn opening_a_cache_tags_the_root_and_removes_only_caches_long_unused() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let (old, recent, ours) = (Id::random(), Id::random(), Id::random());
        for id in [&old, &recent] {
            Cache::new(root, id).put_file(FileKind::Index, &"a".repeat(64), b"12345");
        }
        used_days_ago(&root.join(old.to_hex()), UNUSED_CACHE_DAYS + 1);
        used_days_ago(&root.join(recent.to_hex()), UNUSED_CACHE_DAYS - 1);
        // Nothing that is not a repository's cache is touched, however old.
        let other = root.join("notes");
        std::fs::create_dir(&other).unwrap();
        used_days_ago(&other, 400);
        let outside = tempfile::tempdir().unwrap();
        used_days_ago(outside.path(), 400);
        let link = root.join("c".repeat(64));
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();

        Cache::open(root, &ours);

        let listed: Vec<String> = caches(root).into_iter().map(|c| c.repository).collect();
        assert_eq!(listed, [recent.to_hex(), ours.to_hex()]);
        assert!(other.is_dir() && outside.path().is_dir() && link.is_symlink());
        let tag = std::fs::read(root.join("CACHEDIR.TAG")).unwrap();
        assert!(tag.starts_with(CACHEDIR_SIGNATURE), "{tag:?}");
        assert_eq!(caches(root)[0].bytes, 5);

        // Used again, the recent one is the most recent; unused for a day, both go.
        Cache::open(root, &recent);
        let listed: Vec<String> = caches(root).into_iter().map(|c| c.repository).collect();
        assert_eq!(listed, [ours.to_hex(), recent.to_hex()]);
        for id in [&ours, &recent] {
            used_days_ago(&root.join(id.to_hex()), 1);
        }
        let removed = remove_unused_caches(root, Duration::from_secs(86_400 - 60));
        assert_eq!(removed.len(), 2);
        assert!(caches(root).is_empty());
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
