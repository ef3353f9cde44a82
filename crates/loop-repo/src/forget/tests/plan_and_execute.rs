use super::*;
use crate::storage::FileKind;

fn repo() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::testutil::local_repo(dir.path());
    (dir, repo)
}

/// Saves a snapshot record; forget never reads the tree it points to.
fn snapshot(repo: &Repository, host: &str, paths: &[&str], time: &str) -> Id {
    repo.save_snapshot(&Snapshot {
        time: at(time),
        paths: tags(paths),
        hostname: host.into(),
        ..crate::testutil::bare_snapshot(Id::random())
    })
    .unwrap()
}

/// A snapshot object that does not decrypt, as a hostile backup token can write.
fn damaged_snapshot(repo: &Repository) -> Id {
    let id = Id::random();
    let mut body = crate::format::Magic::Snapshot.header().to_vec();
    body.extend_from_slice(&[0xAB; 300]);
    repo.storage()
        .put(FileKind::Snapshot, &id.to_hex(), body)
        .unwrap();
    id
}

/// Every stored object by kind, name and size.
fn objects(repo: &Repository) -> Vec<(FileKind, String, u64)> {
    FileKind::ALL
        .into_iter()
        .flat_map(|kind| {
            repo.storage()
                .list(kind)
                .unwrap()
                .into_iter()
                .map(move |o| (kind, o.name, o.size))
        })
        .collect()
}

fn keep_last(n: u32) -> ForgetRequest {
    ForgetRequest::Policy {
        policy: KeepPolicy {
            last: n,
            ..Default::default()
        },
        filter: SnapshotFilter::default(),
    }
}

fn listed(repo: &Repository) -> Vec<Id> {
    let mut ids: Vec<Id> = repo
        .list_snapshots()
        .unwrap()
        .snapshots
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_plan_changes_nothing_and_comes_out_the_same_twice() {
    let (_dir, repo) = repo();
    snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
    snapshot(&repo, "a", &["/x"], "2024-01-02T00:00:00Z");
    snapshot(&repo, "b", &["/x"], "2024-01-01T00:00:00Z");
    damaged_snapshot(&repo);
    let before = objects(&repo);

    let first = plan(&repo, &keep_last(1)).unwrap();
    let second = plan(&repo, &keep_last(1)).unwrap();

    assert_eq!(
        objects(&repo),
        before,
        "planning wrote or removed something"
    );
    assert_eq!(first.remove, second.remove);
    assert_eq!(first.remove.len(), 1);
    assert_eq!(first.damaged.len(), 1);
}

#[test]
fn groups_are_by_host_and_sorted_paths_and_every_verdict_has_its_reasons() {
    let (_dir, repo) = repo();
    let old = snapshot(&repo, "a", &["/y", "/x"], "2024-01-01T00:00:00Z");
    let new = snapshot(&repo, "a", &["/x", "/y"], "2024-01-02T00:00:00Z");
    let other = snapshot(&repo, "b", &["/x"], "2024-01-01T00:00:00Z");

    let p = plan(&repo, &keep_last(1)).unwrap();

    let verdicts = |g: &ForgetGroup| -> Vec<(Id, Decision)> {
        g.snapshots
            .iter()
            .map(|v| (v.id, v.decision.clone()))
            .collect()
    };
    let last = Decision::Keep(vec![KeepReason::Last]);
    assert_eq!(p.groups.len(), 2);
    let (a, b) = (&p.groups[0], &p.groups[1]);
    assert_eq!((a.host.as_str(), &a.paths), ("a", &tags(&["/x", "/y"])));
    assert_eq!(
        verdicts(a),
        vec![(old, Decision::Remove), (new, last.clone())]
    );
    assert_eq!((b.host.as_str(), &b.paths), ("b", &tags(&["/x"])));
    assert_eq!(verdicts(b), vec![(other, last)]);
    assert_eq!(p.remove, vec![old]);
}

#[test]
fn the_filter_leaves_other_snapshots_out_of_the_plan() {
    let (_dir, repo) = repo();
    snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
    snapshot(&repo, "b", &["/x"], "2024-01-01T00:00:00Z");
    snapshot(&repo, "b", &["/x"], "2024-01-02T00:00:00Z");
    let request = ForgetRequest::Policy {
        policy: KeepPolicy {
            last: 1,
            ..Default::default()
        },
        filter: SnapshotFilter {
            hosts: vec!["a".into()],
            ..Default::default()
        },
    };

    let p = plan(&repo, &request).unwrap();

    assert_eq!(p.groups.len(), 1);
    assert_eq!(p.groups[0].host, "a");
    assert!(p.remove.is_empty());
}

#[test]
fn execute_removes_exactly_the_planned_snapshots() {
    let (_dir, repo) = repo();
    let a1 = snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
    let a2 = snapshot(&repo, "a", &["/x"], "2024-01-02T00:00:00Z");
    let a3 = snapshot(&repo, "a", &["/x"], "2024-01-03T00:00:00Z");
    let b1 = snapshot(&repo, "b", &["/x"], "2024-01-01T00:00:00Z");
    let bad = damaged_snapshot(&repo);
    let p = plan(&repo, &keep_last(1)).unwrap();
    assert_eq!(p.remove, vec![a1, a2]);

    let report = execute(&repo, &p).unwrap();

    assert_eq!(report.removed, p.remove);
    let mut kept = vec![a3, b1];
    kept.sort();
    assert_eq!(listed(&repo), kept);
    let names: Vec<String> = repo
        .storage()
        .list(FileKind::Snapshot)
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert!(names.contains(&bad.to_hex()), "a policy cannot judge it");
    assert_eq!(names.len(), 3);
}

#[test]
fn a_damaged_snapshot_named_by_id_is_removed_without_being_read() {
    let (_dir, repo) = repo();
    let good = snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
    let bad = damaged_snapshot(&repo);
    let request = named(&[&bad.to_hex()[..12]]);

    let p = plan(&repo, &request).unwrap();
    assert_eq!(p.remove, vec![bad]);
    assert!(p.groups.is_empty() && p.damaged.is_empty());
    execute(&repo, &p).unwrap();

    assert!(repo.list_snapshots().unwrap().damaged.is_empty());
    assert_eq!(listed(&repo), vec![good]);
}

#[test]
fn latest_names_the_newest_readable_snapshot() {
    let (_dir, repo) = repo();
    snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
    let newest = snapshot(&repo, "b", &["/y"], "2024-02-01T00:00:00Z");
    damaged_snapshot(&repo);

    let p = plan(&repo, &named(&["latest"])).unwrap();

    assert_eq!(p.remove, vec![newest]);
}

/// The request naming `specs`, with no filter.
fn named(specs: &[&str]) -> ForgetRequest {
    ForgetRequest::Snapshots {
        specs: specs.iter().map(|s| s.to_string()).collect(),
        filter: Default::default(),
    }
}

#[test]
fn latest_with_a_filter_names_the_newest_snapshot_it_selects() {
    let (_dir, repo) = repo();
    let of_a = snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
    let of_b = snapshot(&repo, "b", &["/x"], "2024-02-01T00:00:00Z");
    let host_a = SnapshotFilter {
        hosts: vec!["a".into()],
        ..Default::default()
    };
    let request = ForgetRequest::Snapshots {
        specs: vec!["latest".into()],
        filter: host_a.clone(),
    };

    let p = plan(&repo, &request).unwrap();
    assert_eq!(p.remove, vec![of_a]);

    // A name the filter does not select is refused, and nothing is planned.
    let request = ForgetRequest::Snapshots {
        specs: vec![of_a.to_hex(), of_b.to_hex()[..8].to_string()],
        filter: host_a,
    };
    let err = plan(&repo, &request).unwrap_err().to_string();
    assert!(err.contains("nothing was removed"), "{err}");
    assert_eq!(listed(&repo).len(), 2);
}

#[test]
fn an_unknown_or_ambiguous_name_plans_nothing() {
    let (_dir, repo) = repo();
    snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
    let before = objects(&repo);
    for spec in ["0000000000", "xyz", "ab"] {
        let request = named(&[spec]);
        assert!(plan(&repo, &request).is_err(), "{spec}");
    }
    assert_eq!(objects(&repo), before);
}

#[test]
fn an_empty_policy_removes_nothing() {
    let (_dir, repo) = repo();
    snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
    snapshot(&repo, "a", &["/x"], "2024-01-02T00:00:00Z");

    let p = plan(&repo, &keep_last(0)).unwrap();

    assert!(p.remove.is_empty());
    assert_eq!(p.groups[0].snapshots.len(), 2);
}
