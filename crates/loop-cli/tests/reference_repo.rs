//! The committed reference repository (`tests/data/reference-repo-v1`), made once by
//! `loop` 0.1.0, must stay readable by this and every later version: its snapshots list,
//! restore byte for byte, and pass `check --read-data`.
//!
//! The repository is never regenerated: a missing or changed file fails these tests. Every
//! test works on a copy in a temporary directory, because opening a repository may write
//! locks. `tests/data/make_reference_repo.py` records how it was made.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::cli::Env;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference-repo-v1")
}

fn manifest() -> Value {
    let text = fs::read_to_string(fixture().join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest is JSON")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A copy of the reference repository, and `loop` set up to open it with its passphrase.
struct Reference {
    env: Env,
    passphrase_file: PathBuf,
}

impl Reference {
    fn copy() -> Reference {
        let mut env = Env::new();
        let repo = env.path("reference-repo");
        copy_dir(&fixture().join("repo"), &repo);
        env.repo = repo.display().to_string();
        Reference {
            env,
            passphrase_file: fixture().join("passphrase"),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let mut all = vec!["--password-file", self.passphrase_file.to_str().unwrap()];
        all.extend_from_slice(args);
        self.env.ok(&all)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(out.lines().last().unwrap_or_default()).expect("json output")
    }
}

/// What a restored tree holds, in the manifest's terms.
fn describe(root: &Path) -> BTreeMap<Vec<u8>, Value> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    let mut groups: Vec<&Vec<Vec<u8>>> = inodes.values().filter(|p| p.len() > 1).collect();
    groups.sort();
    for (group, paths) in groups.into_iter().enumerate() {
        for p in paths {
            out.get_mut(p).unwrap()["hardlink_group"] = group.into();
        }
    }
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<Vec<u8>, Value>,
    inodes: &mut BTreeMap<u64, Vec<Vec<u8>>>,
) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let m = fs::symlink_metadata(&path).expect("lstat");
        let ft = m.file_type();
        let mut e = serde_json::json!({
            "path": hex(&rel),
            "mode": m.mode() & 0o7777,
            "mtime_ns": m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        });
        if ft.is_file() {
            e["type"] = "file".into();
            e["size"] = m.size().into();
            e["blake3"] = blake3::hash(&fs::read(&path).unwrap())
                .to_hex()
                .as_str()
                .into();
            if m.nlink() > 1 {
                inodes.entry(m.ino()).or_default().push(rel.clone());
            }
        } else if ft.is_dir() {
            e["type"] = "dir".into();
        } else if ft.is_symlink() {
            e["type"] = "symlink".into();
            e["target"] = hex(fs::read_link(&path).unwrap().as_os_str().as_bytes()).into();
            e.as_object_mut().unwrap().remove("mode");
        } else if ft.is_fifo() {
            e["type"] = "fifo".into();
        } else {
            e["type"] = "other".into();
        }
        out.insert(rel, e);
        if ft.is_dir() {
            walk(root, &path, out, inodes);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest's entries of one snapshot, keyed like [`describe`].
fn expected(snapshot: &Value) -> BTreeMap<Vec<u8>, Value> {
    snapshot["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let path = e["path"].as_str().unwrap();
            let bytes = (0..path.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&path[i..i + 2], 16).unwrap())
                .collect();
            (bytes, e.clone())
        })
        .collect()
}

#[test]
fn the_reference_repository_is_complete() {
    // A missing object would make every other test here fail less clearly.
    let repo = fixture().join("repo");
    for dir in ["keys", "snapshots", "index", "data"] {
        let n = fs::read_dir(repo.join(dir)).map(|d| d.count()).unwrap_or(0);
        assert!(n > 0, "{dir}/ is missing from the reference repository");
    }
    assert!(repo.join("config").is_file(), "config is missing");
    assert_eq!(manifest()["snapshots"].as_array().unwrap().len(), 3);
}

#[test]
fn the_reference_snapshots_list_with_their_recorded_details() {
    let r = Reference::copy();
    let listed = r.json(&["snapshots"]);
    let listed = listed.as_array().expect("array");
    let m = manifest();
    let expected = m["snapshots"].as_array().unwrap();
    // Listed oldest first by instant: the second snapshot's clock reads earlier than the
    // first's, but it is later in UTC.
    let ids: Vec<&str> = listed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let want: Vec<&str> = expected.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, want);
    for (got, want) in listed.iter().zip(expected) {
        assert_eq!(got["hostname"], m["hostname"]);
        assert_eq!(got["paths"], want["paths"]);
        assert_eq!(got["tags"], want["tags"]);
        let time = |v: &Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str().expect("time")).expect("RFC 3339")
        };
        let (got_time, want_time) = (time(&got["time"]), time(&want["time"]));
        assert_eq!(got_time, want_time, "the recorded instant");
        assert_eq!(got_time.offset(), want_time.offset(), "the recorded offset");
    }
    let latest = r.json(&["snapshots", "--tag", "second"]);
    assert_eq!(latest.as_array().unwrap().len(), 1);
}

#[test]
fn the_reference_snapshots_restore_byte_for_byte() {
    let r = Reference::copy();
    for snapshot in manifest()["snapshots"].as_array().unwrap() {
        let id = snapshot["id"].as_str().unwrap();
        let target = r.env.path(&format!("restore-{id}"));
        r.ok(&[
            "restore",
            id,
            "--target",
            target.to_str().unwrap(),
            "--verify",
        ]);
        let mut got = describe(&target);
        let want = expected(snapshot);
        // A standard-input file's time is the time of its backup, which the manifest lacks.
        if snapshot["tags"][0] == "stdin" {
            for e in got.values_mut() {
                e.as_object_mut().unwrap().remove("mtime_ns");
            }
        }
        let names = |m: &BTreeMap<Vec<u8>, Value>| -> Vec<String> {
            m.keys()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect()
        };
        assert_eq!(names(&got), names(&want), "snapshot {id}: different names");
        for (path, e) in &want {
            assert_eq!(
                Some(e),
                got.get(path),
                "snapshot {id}: {} differs",
                String::from_utf8_lossy(path)
            );
        }
    }
}

#[test]
fn latest_is_the_last_snapshot_by_instant() {
    let r = Reference::copy();
    let m = manifest();
    let second = &m["snapshots"][1];
    let target = r.env.path("latest-of-docs");
    let path = second["paths"][0].as_str().unwrap();
    r.ok(&[
        "restore",
        "latest",
        "--path",
        path,
        "--target",
        target.to_str().unwrap(),
    ]);
    let got = describe(&target);
    let want = expected(second);
    assert_eq!(
        got.get(b"docs/hello.txt".as_slice()),
        want.get(b"docs/hello.txt".as_slice())
    );
    assert!(
        !got.contains_key(b"docs/tool.sh".as_slice()),
        "the second snapshot removed it"
    );
}

#[test]
fn the_reference_repository_passes_check_with_read_data() {
    let r = Reference::copy();
    let out = r.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors were found"), "{out}");
    let packs = support::cli::packs(&fixture().join("repo")).len();
    assert!(
        out.contains(&format!("{packs} packs ({packs} read)")),
        "every pack is read: {out}"
    );
}
