//! Backups through the public entry point, on a local repository.

use std::io::{Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use loop_testkit::data::noise;

use super::{BackupOptions, BackupProgress, StdinSource, run};
use crate::error::Error;
use crate::testutil::local_repo;

mod large_trees;

fn stdin_options(name: &str, reader: impl Read + Send + 'static) -> BackupOptions {
    BackupOptions {
        host: "h".into(),
        stdin: Some(StdinSource {
            name: name.into(),
            reader: Box::new(reader),
        }),
        ..Default::default()
    }
}

/// A stream of zeros that counts what was read and cancels the backup once `cancel_at` bytes
/// are out, like a user pressing Ctrl-C during `pg_dump | loop backup --stdin`.
struct CancellingStream {
    left: u64,
    cancel_at: u64,
    read: Arc<AtomicU64>,
    progress: Arc<BackupProgress>,
}

impl Read for CancellingStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(0);
        self.left -= n as u64;
        if self.read.fetch_add(n as u64, Ordering::Relaxed) + n as u64 >= self.cancel_at {
            self.progress.cancel.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// The standard-input loop never looked at the cancel flag (or at a failed packer), so a
/// cancelled run read its stream to the end, forever for an endless pipe, before it stopped.
#[test]
fn a_cancelled_stdin_backup_stops_reading_its_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = local_repo(tmp.path());
    let progress = Arc::new(BackupProgress::default());
    let read = Arc::new(AtomicU64::new(0));
    let stream = CancellingStream {
        left: 256 << 20,
        cancel_at: 4 << 20,
        read: read.clone(),
        progress: progress.clone(),
    };

    let result = run(&repo, stdin_options("endless.bin", stream), &progress);

    assert!(
        matches!(result, Err(Error::Interrupted)),
        "a cancelled run is interrupted: {result:?}"
    );
    let read = read.load(Ordering::Relaxed);
    assert!(
        read <= 16 << 20,
        "reading stopped within a chunk window of the cancel, not after {read} bytes"
    );
    assert!(repo.list_snapshots().unwrap().snapshots.is_empty());
}

/// A standard-input backup reported "Processed 0 files": its file was never counted as done.
#[test]
fn a_stdin_backup_counts_its_file_as_processed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = local_repo(tmp.path());
    let progress = BackupProgress::default();

    let result = run(
        &repo,
        stdin_options("db.sql", Cursor::new(b"select 1;".to_vec())),
        &progress,
    )
    .unwrap();

    let s = result.snapshot.summary.unwrap();
    assert_eq!(s.files_new, 1);
    assert_eq!(s.total_files_processed, 1);
    assert_eq!(s.total_bytes_processed, 9);
    assert_eq!(progress.files_done.load(Ordering::Relaxed), 1);
}

/// Files and standard input go through one chunk loop: the same bytes give the same chunks,
/// so a stream deduplicates against a file backed up before it.
#[test]
fn a_stream_with_a_files_bytes_stores_no_new_data() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = local_repo(&tmp.path().join("repo"));
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    // Longer than twice the largest chunk (4 MiB), so it spans several chunks whatever cut
    // points the repository's random gear seed gives.
    let data = noise(9 << 20, 7);
    std::fs::write(src.join("big.bin"), &data).unwrap();
    let file_opts = BackupOptions {
        paths: vec![src.clone()],
        host: "h".into(),
        ..Default::default()
    };
    let from_file = run(&repo, file_opts, &BackupProgress::default()).unwrap();

    let from_stdin = run(
        &repo,
        stdin_options("big.bin", Cursor::new(data.clone())),
        &BackupProgress::default(),
    )
    .unwrap();

    let file_summary = from_file.snapshot.summary.unwrap();
    let stdin_summary = from_stdin.snapshot.summary.unwrap();
    assert!(file_summary.data_blobs > 1, "the file spans several chunks");
    assert_eq!(
        stdin_summary.data_blobs, 0,
        "every chunk was already stored"
    );
    assert_eq!(stdin_summary.total_bytes_processed, data.len() as u64);
    let index = repo.load_index().unwrap();
    let file_root = repo.load_tree(&index, &from_file.snapshot.tree).unwrap();
    let file_dir = repo
        .load_tree(&index, &file_root.nodes[0].subtree.unwrap())
        .unwrap();
    let stdin_root = repo.load_tree(&index, &from_stdin.snapshot.tree).unwrap();
    assert_eq!(file_dir.nodes[0].content, stdin_root.nodes[0].content);
    assert_eq!(stdin_root.nodes[0].size, data.len() as u64);
}

/// Serves its bytes, then waits (like a slow source between two bursts) until released.
struct StallingStream {
    data: Cursor<Vec<u8>>,
    release: crossbeam_channel::Receiver<()>,
}

impl Read for StallingStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.read(buf)?;
        if n == 0 {
            let _ = self.release.recv();
        }
        Ok(n)
    }
}

/// Stored packs are indexed within the flush interval even while no further pack is stored:
/// a prune takes a pack no index names, once past its grace, for a killed backup's.
#[test]
fn stored_packs_are_indexed_while_the_backup_waits_for_more_input() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = crate::ObjectStorage::open(
        tmp.path().to_str().unwrap(),
        &crate::S3Options::default(),
        true,
    )
    .unwrap();
    let init = crate::InitOptions {
        kdf: crate::keys::KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        pack_size: 1 << 20,
        ..Default::default()
    };
    let repo = crate::Repository::init(
        Arc::new(storage),
        crate::keys::Secret::Passphrase(b"pw"),
        &init,
    )
    .unwrap();
    let (release, released) = crossbeam_channel::bounded(1);
    let stream = StallingStream {
        data: Cursor::new(noise(12 << 20, 3)),
        release: released,
    };
    let opts = BackupOptions {
        index_flush: std::time::Duration::from_secs(3),
        ..stdin_options("dump.sql", stream)
    };

    std::thread::scope(|s| {
        let backup = s.spawn(|| run(&repo, opts, &BackupProgress::default()));
        // While the stream waits, every pack stored so far comes to be named by an index.
        let all_indexed = || {
            let packs: std::collections::HashSet<_> = repo
                .storage()
                .list(crate::FileKind::Pack)
                .unwrap()
                .into_iter()
                .map(|o| o.name)
                .collect();
            let index = repo.load_index().unwrap();
            let named: std::collections::HashSet<_> =
                index.pack_ids().iter().map(|id| id.to_hex()).collect();
            !packs.is_empty() && packs.is_subset(&named)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !all_indexed() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let indexed = all_indexed();
        release.send(()).unwrap();
        assert!(backup.join().unwrap().is_ok());
        assert!(indexed, "packs stored before the pause stayed unindexed");
    });
}

/// Reads `path` as a hasher does for a node the walker made of it before `swap` ran.
fn hash_after_swap(
    dir: &std::path::Path,
    path: &std::path::Path,
    swap: impl FnOnce(),
) -> (Option<crate::tree::Node>, Vec<String>) {
    let repo = local_repo(&dir.join("repo"));
    let index = repo.load_index().unwrap();
    let progress = BackupProgress::default();
    let (prefetch, _) = crossbeam_channel::unbounded();
    let run = super::state::Run::new(
        &repo,
        &index,
        &BackupOptions::default(),
        &progress,
        prefetch,
    )
    .unwrap();
    let meta = std::fs::symlink_metadata(path).unwrap();
    let node =
        crate::fsmeta::node_from_metadata(path.file_name().unwrap(), &meta, path, false).unwrap();
    swap();
    let (blobs, _kept) = crossbeam_channel::unbounded();
    let mut packing = run.packing().unwrap();
    let hashed = run.hash_file(path, node, &mut Vec::new(), &mut packing, &blobs);
    let unreadable = run.unreadable.lock().unwrap().clone();
    (hashed, unreadable)
}

/// A file swapped for a symlink between the walker's look and the read is not followed: a
/// user who swaps their own file for a link to /etc/shadow gets no copy of it.
#[test]
fn a_file_swapped_for_a_symlink_or_fifo_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, b"root's secret").unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, b"harmless").unwrap();
    let (hashed, unreadable) = hash_after_swap(tmp.path(), &victim, || {
        std::fs::remove_file(&victim).unwrap();
        std::os::unix::fs::symlink(&secret, &victim).unwrap();
    });
    assert!(hashed.is_none(), "{hashed:?}");
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");

    // Nor is a FIFO waited on.
    let piped = tmp.path().join("piped");
    std::fs::write(&piped, b"harmless").unwrap();
    let (hashed, unreadable) = hash_after_swap(&tmp.path().join("two"), &piped, || {
        std::fs::remove_file(&piped).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &piped,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
    });
    assert!(hashed.is_none(), "{hashed:?}");
    assert!(
        unreadable[0].contains("other than a file"),
        "{unreadable:?}"
    );
}

/// A file saved over (a new file renamed into its place) is stored with its own metadata,
/// extended attributes included (read from the file opened, not by its name again): a later
/// backup that finds it unchanged reuses what this one recorded.
#[test]
fn a_file_saved_over_during_the_backup_is_described_as_it_now_is() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = tempfile::tempdir().unwrap();
    let doc = tmp.path().join("doc");
    std::fs::write(&doc, b"draft").unwrap();
    std::fs::set_permissions(&doc, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut labelled = false;
    let (hashed, _) = hash_after_swap(tmp.path(), &doc, || {
        let new = tmp.path().join("doc.new");
        std::fs::write(&new, b"the final text").unwrap();
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o600)).unwrap();
        let flags = rustix::fs::XattrFlags::empty();
        labelled = rustix::fs::setxattr(&new, "user.label", b"final", flags).is_ok();
        std::fs::rename(&new, &doc).unwrap();
    });
    let node = hashed.expect("the new file is stored");
    let now = std::fs::metadata(&doc).unwrap();
    assert_eq!((node.mode, node.inode, node.size), (0o600, now.ino(), 14));
    if !labelled {
        eprintln!("SKIPPED: this file system takes no user extended attributes");
        return;
    }
    let names: Vec<&[u8]> = node.xattrs.iter().map(|x| x.name.as_bytes()).collect();
    assert_eq!(names, [b"user.label".as_slice()]);
    assert_eq!(node.xattrs[0].value, b"final");
}

/// A repository in `dir` whose lock markers, once a snapshot is stored, read as `answer`
/// gives (a prune removing them, a storage failing).
fn markers_after_saving(dir: &std::path::Path, answer: fn(&str) -> Error) -> crate::Repository {
    use crate::storage::FileKind;
    let repo = local_repo(dir);
    let storage = Arc::new(crate::testutil::Hooked {
        inner: repo.storage().clone(),
        read: Box::new(move |inner, kind, name| {
            let saved = !inner.list(FileKind::Snapshot).unwrap().is_empty();
            (kind == FileKind::Lock && saved).then(|| Err(answer(name)))
        }),
    });
    crate::Repository::open(storage, crate::keys::Secret::Passphrase(b"pw")).unwrap()
}

/// A marker that vanishes while the snapshot is written (a prune took it for stale just
/// then, and may have deleted what the snapshot uses): the backup fails and takes back the
/// snapshot it saved, instead of leaving one that may not restore.
#[test]
fn a_backup_whose_marker_vanished_while_its_snapshot_was_saved_fails_and_keeps_no_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = markers_after_saving(tmp.path(), |name| Error::NotFound(name.to_string()));
    let failed = run(
        &repo,
        stdin_options("db.sql", Cursor::new(noise(1 << 20, 3))),
        &BackupProgress::default(),
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(failed.contains("lock marker"), "{failed}");
    assert!(
        repo.list_snapshots().unwrap().snapshots.is_empty(),
        "a snapshot stayed"
    );
}

/// A storage error reading the marker back after the snapshot was saved says nothing of the
/// marker (checked, with every pack, just before): the snapshot stays and the backup succeeds.
#[test]
fn a_storage_error_reading_the_marker_after_saving_keeps_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = markers_after_saving(tmp.path(), |name| Error::Storage {
        object: name.to_string(),
        message: "503 Slow Down".into(),
    });
    let saved = run(
        &repo,
        stdin_options("db.sql", Cursor::new(noise(1 << 20, 4))),
        &BackupProgress::default(),
    )
    .unwrap()
    .snapshot_id
    .expect("a snapshot");
    let listed = repo.list_snapshots().unwrap().snapshots;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, saved);
}

/// The paths a backup of `root` stores (relative to `root`), with `exclude_caches` as given,
/// and the files the progress scan counted.
fn stored_paths(
    repo: &crate::Repository,
    root: &std::path::Path,
    caches: bool,
) -> (Vec<String>, u64) {
    let opts = BackupOptions {
        paths: vec![root.to_path_buf()],
        host: "h".into(),
        exclude_caches: caches,
        scan: true,
        ..Default::default()
    };
    let progress = BackupProgress::default();
    let result = run(repo, opts, &progress).unwrap();
    let index = repo.load_index().unwrap();
    let mut paths = Vec::new();
    crate::browse::walk(repo, &index, &result.snapshot.tree, "", &mut |p, _| {
        paths.push(p.to_string());
        Ok(())
    })
    .unwrap();
    let prefix = format!("/{}", root.file_name().unwrap().to_str().unwrap());
    let paths = paths
        .iter()
        .filter_map(|p| p.strip_prefix(&prefix))
        .map(str::to_string)
        .collect();
    (paths, progress.files_total.load(Ordering::Relaxed))
}

/// `--exclude-caches` keeps a tagged cache directory and its tag but nothing else in it; a
/// file of that name without the signature, a link to a real tag, or a FIFO (which must not
/// stall the walk) does not make a directory a cache.
#[test]
fn exclude_caches_skips_what_a_cache_tag_marks_and_nothing_else() {
    use crate::exclude::CACHEDIR_SIGNATURE;
    let tmp = tempfile::tempdir().unwrap();
    let repo = local_repo(&tmp.path().join("repo"));
    let root = tmp.path().join("home");
    let dir = |d: &str| {
        std::fs::create_dir_all(root.join(d)).unwrap();
        std::fs::write(root.join(d).join("data"), d).unwrap();
    };
    for d in ["cache", "cache/sub", "notag", "linked", "fifo", "plain"] {
        dir(d);
    }
    let mut tag = CACHEDIR_SIGNATURE.to_vec();
    tag.extend_from_slice(b"\n# a comment\n");
    std::fs::write(root.join("cache/CACHEDIR.TAG"), &tag).unwrap();
    std::fs::write(
        root.join("notag/CACHEDIR.TAG"),
        b"Signature: something else",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        root.join("cache/CACHEDIR.TAG"),
        root.join("linked/CACHEDIR.TAG"),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo/CACHEDIR.TAG"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();

    let (all, all_counted) = stored_paths(&repo, &root, false);
    let (kept, kept_counted) = stored_paths(&repo, &root, true);

    let skipped: Vec<&String> = all.iter().filter(|p| !kept.contains(p)).collect();
    assert_eq!(
        skipped,
        ["/cache/data", "/cache/sub", "/cache/sub/data"],
        "kept: {kept:?}"
    );
    assert!(
        kept.contains(&"/cache/CACHEDIR.TAG".to_string()),
        "{kept:?}"
    );
    assert!(kept.iter().all(|p| all.contains(p)));
    // The scan that counts files for progress skips the same: one file and one below.
    assert_eq!(all_counted - kept_counted, 2);
}

/// A pack lost from storage that earlier snapshots use: a backup that finds that data
/// already stored saves no snapshot relying on it, and says how to recover; after `repair
/// index` the next backup stores the data anew and its snapshot restores.
#[test]
fn a_lost_pack_is_named_and_after_repair_index_the_next_backup_stores_its_data_again() {
    use crate::storage::FileKind;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big"), noise(400_000, 9)).unwrap();
    let repo = local_repo(&tmp.path().join("repo"));
    let first = crate::testutil::back_up(&repo, &src);
    let index = repo.load_index().unwrap();
    let tree_packs: Vec<String> = (index.pack_ids().iter())
        .filter(|p| index.is_tree_pack(p))
        .map(|p| p.to_hex())
        .collect();
    for o in repo.storage().list(FileKind::Pack).unwrap() {
        if !tree_packs.contains(&o.name) {
            repo.storage().delete(FileKind::Pack, &o.name).unwrap();
        }
    }
    let opts = || BackupOptions {
        paths: vec![src.clone()],
        host: "h".into(),
        ..Default::default()
    };
    let err = run(&repo, opts(), &BackupProgress::default())
        .expect_err("no snapshot relies on a lost pack")
        .to_string();
    assert!(err.contains("loop repair index"), "{err}");
    assert_eq!(repo.list_snapshots().unwrap().snapshots.len(), 1);

    crate::repair::index(&repo, &Default::default()).unwrap();
    let again = run(&repo, opts(), &BackupProgress::default()).unwrap();
    assert_ne!(again.snapshot_id, first.snapshot_id);
    let all = crate::check::CheckOptions {
        read_data: crate::check::ReadData::All,
        threads: 1,
    };
    repo.remove_snapshot(&first.snapshot_id.unwrap()).unwrap();
    let checked = crate::check::run(&repo, &all, &Default::default()).unwrap();
    assert!(checked.is_ok(), "{checked:?}");
}
