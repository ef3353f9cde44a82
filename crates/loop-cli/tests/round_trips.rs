//! How many HTTPS requests a backup through the server makes. Round trips are what makes
//! the server path slower than a local repository, so their number is pinned here: a
//! change that adds requests per file or per directory fails this test (speed itself is
//! measured by the benchmarks, not here).

mod support;

use support::cli::write;
use support::server::*;
use support::story::*;

/// Vault-protocol requests in the server's access log so far, by route. (Every line of
/// the text log starts with the node's name, by default the host name.)
fn vault_requests(s: &Story) -> Vec<String> {
    let log = std::fs::read_to_string(s.server_log.as_ref().unwrap()).unwrap();
    assert!(log.lines().all(|l| l.starts_with("node=")), "{log}");
    log.lines()
        .filter(|l| l.contains("answered") && l.contains("/vaults/"))
        .map(|l| {
            let route = l.split("route=").nth(1).unwrap_or("");
            route.split_whitespace().next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn an_unchanged_tree_is_backed_up_in_a_bounded_number_of_requests() {
    let s = set_up_logging(None, "local", true);
    let src = s.dir.path().join("tree");
    // 2,000 small files in 200 directories.
    for d in 0..200 {
        for f in 0..10 {
            write(
                &src.join(format!("d{d:03}/sub/f{f}.txt")),
                format!("file {d} {f}\n").as_bytes(),
            );
        }
    }
    // A token that may also read, so the backup can compare with its parent snapshot (a
    // backup-only token cannot read snapshots, and re-reads every file instead).
    let token = json(&mut s.admin(
        "ana",
        &[
            "token",
            "create",
            "--tenant",
            &s.customer,
            "--name",
            "laptop-rw",
            "--device",
            &s.device_id,
            "--vault",
            &s.vault,
            "--permission",
            "backup",
            "--permission",
            "restore",
        ],
    ))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let backup = || json(&mut s.device(&token, &["backup", src.to_str().unwrap()]));
    // Vault-protocol requests of one no-change backup, by route.
    let no_change_backup = || {
        let before = vault_requests(&s).len();
        let summary = backup();
        assert_eq!(summary["files_new"], 0, "{summary:#?}");
        assert_eq!(summary["files_changed"], 0, "{summary:#?}");
        let mut by_route = std::collections::BTreeMap::<String, usize>::new();
        for r in vault_requests(&s).split_off(before) {
            *by_route.entry(r).or_default() += 1;
        }
        by_route
    };
    backup();
    // The first backup put the tree packs it wrote into the device's cache, so the second
    // reads its parent's trees without a request per directory.
    let warm = no_change_backup();
    // A device whose cache is gone (another machine, a wiped disk) downloads each tree
    // pack whole, once.
    std::fs::remove_dir_all(s.dir.path().join("device/cache/loop")).unwrap();
    let cold = no_change_backup();
    for (cache, by_route) in [("warm", warm), ("cold", cold)] {
        let total: usize = by_route.values().sum();
        eprintln!(
            "a no-change backup of 2,000 files in 400 directories, cache {cache}: {total} requests {by_route:#?}"
        );
        // Independent of the number of files and directories: no request per tree.
        assert!(
            total <= 40,
            "cache {cache}: {total} requests: {by_route:#?}"
        );
    }
    // A restore merges the blobs of many files into one read: no request per file.
    let before = vault_requests(&s).len();
    let out = s.dir.path().join("restored");
    ok(&mut s.device(
        &token,
        &["restore", "latest", "--target", out.to_str().unwrap()],
    ));
    let restore = vault_requests(&s).split_off(before);
    eprintln!(
        "a restore of 2,000 files: {} requests {restore:?}",
        restore.len()
    );
    assert!(restore.len() <= 20, "{restore:#?}");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn a_damaged_cache_is_never_trusted_and_a_forgotten_snapshot_stays_gone() {
    let s = set_up_logging(None, "local", false);
    let src = s.dir.path().join("tree");
    for d in 0..20 {
        write(
            &src.join(format!("d{d}/f.txt")),
            format!("file {d}\n").as_bytes(),
        );
    }
    let token = json(&mut s.admin(
        "ana",
        &[
            "token",
            "create",
            "--tenant",
            &s.customer,
            "--name",
            "laptop-all",
            "--device",
            &s.device_id,
            "--vault",
            &s.vault,
            "--permission",
            "manage",
        ],
    ))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let first = json(&mut s.device(&token, &["backup", src.to_str().unwrap()]));
    json(&mut s.device(&token, &["backup", src.to_str().unwrap()]));
    let cache = s.dir.path().join("device/cache/loop");
    let cached = files_under(&cache);
    for kind in ["packs", "index", "snapshots"] {
        assert!(
            cached
                .iter()
                .any(|p| p.to_string_lossy().contains(&format!("/{kind}/"))),
            "nothing cached in {kind}: {cached:?}"
        );
    }
    // Every cached byte altered: the restore still brings back the right files.
    for f in &cached {
        let bytes: Vec<u8> = std::fs::read(f).unwrap().iter().map(|b| b ^ 0x55).collect();
        std::fs::write(f, bytes).unwrap();
    }
    let out = s.dir.path().join("restored");
    ok(&mut s.device(
        &token,
        &["restore", "latest", "--target", out.to_str().unwrap()],
    ));
    support::cli::assert_same_tree(&src, &out.join(src.file_name().unwrap()));
    // A snapshot forgotten elsewhere is not listed from the cache.
    let id = first["snapshot_id"].as_str().unwrap();
    ok(&mut s.device(&token, &["--no-cache", "forget", id]));
    let listed = json(&mut s.device(&token, &["snapshots"]));
    assert!(
        listed.as_array().unwrap().iter().all(|sn| sn["id"] != id),
        "{listed:#?}"
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

/// `log_format = "json"`: every server log line is one JSON object a log collector can
/// read, the access log's fields included, each naming the node (`node_id`).
#[test]
fn the_server_log_can_be_json_lines() {
    let s = set_up_logging(
        Some(&|dir: &std::path::Path| {
            let path = dir.join("server.toml");
            std::fs::write(&path, "log_format = \"json\"\nnode_id = \"node-7\"\n").unwrap();
            path
        }),
        "local",
        true,
    );
    let log = std::fs::read_to_string(s.server_log.as_ref().unwrap()).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let answered: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "answered")
        .collect();
    assert!(!answered.is_empty(), "no access log line in {log}");
    assert!(lines.iter().all(|l| l["node"] == "node-7"), "{log}");
    for l in &answered {
        assert!(l["status"].as_u64().is_some(), "{l}");
        assert!(l["level"].is_string() && l["timestamp"].is_string(), "{l}");
    }
}
