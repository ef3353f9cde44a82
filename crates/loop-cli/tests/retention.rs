//! Retention policies end to end: a customer admin attaches policies with `loop policy`, the
//! nearest one applies, and the server's retention job changes a managed vault exactly as
//! `loop forget` and `loop prune` would, keeping the vault's usage exact and every removed
//! snapshot in the audit log.

mod support;

use std::collections::BTreeSet;

use support::cli::{assert_same_tree, noise, write};
use support::server::*;
use support::story::*;

/// Bytes of every object of the vault at its local destination.
fn stored_bytes(s: &Story) -> u64 {
    fn walk(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let m = e.metadata().unwrap();
                if m.is_dir() { walk(&e.path()) } else { m.len() }
            })
            .sum()
    }
    walk(&s.server.data_dir.join("vaults").join(&s.vault))
}

fn snapshot_ids(s: &Story) -> BTreeSet<String> {
    let snaps = json(&mut s.device(&s.restore_token, &["snapshots"]));
    snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_retention_job_applies_the_nearest_policy_as_loop_forget_and_prune_would() {
    let s = set_up(None, "local");
    let src = s.dir.path().join("files");
    // Five backups, each with 2 MiB of data of its own, so forgetting one frees space.
    for n in 0..5u64 {
        write(&src.join("current.bin"), &noise(2 << 20, n + 1));
        ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    }
    let before = snapshot_ids(&s);
    assert_eq!(before.len(), 5);
    let ana = |args: &[&str]| json(&mut s.admin("ana", args));

    // No policy yet: the vault keeps everything, and says so.
    let none = ana(&["vault", "policy", &s.vault]);
    assert!(none["policy"].is_null(), "{none}");
    // A tenant policy applies to the vault; the vault's own policy wins over it.
    let tenant_policy = ana(&[
        "policy",
        "create",
        "--tenant",
        &s.customer,
        "--keep-last",
        "4",
    ]);
    let applies = ana(&["vault", "policy", &s.vault]);
    assert_eq!(applies["source"], "tenant");
    assert_eq!(applies["policy"]["id"], tenant_policy["id"]);
    let vault_policy = ana(&[
        "policy",
        "create",
        "--tenant",
        &s.customer,
        "--vault",
        &s.vault,
        "--keep-last",
        "2",
    ]);
    let applies = ana(&["vault", "policy", &s.vault]);
    assert_eq!(applies["source"], "vault");
    assert_eq!(applies["policy"]["id"], vault_policy["id"]);
    assert_eq!(applies["policy"]["keep"]["last"], 2);
    // A second policy for the same vault is refused; an empty one too.
    let err = fails(&mut s.admin(
        "ana",
        &[
            "policy",
            "create",
            "--tenant",
            &s.customer,
            "--vault",
            &s.vault,
            "--keep-last",
            "1",
        ],
    ));
    assert!(err.contains("policy_exists"), "{err}");
    let err = fails(&mut s.admin("ana", &["policy", "create", "--tenant", &s.customer]));
    assert!(err.contains("keep at least something"), "{err}");

    // What `loop forget` would remove with the same rule, planned by the engine on the
    // device (a dry run changes nothing).
    let plan = json(&mut s.device(
        &s.restore_token,
        &["forget", "--keep-last", "2", "--dry-run"],
    ));
    let would_remove: BTreeSet<String> = plan["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    assert_eq!(would_remove.len(), 3);

    // A dry run logs the plan and changes nothing.
    let job = ana(&["vault", "retention", &s.vault, "--dry-run"]);
    assert_eq!(job["kind"], "retention");
    let job = s.job_ended(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["summary"]["snapshots_to_remove"], 3);
    assert_eq!(snapshot_ids(&s), before);

    let used_before = ana(&["vault", "show", &s.vault])["used_bytes"]
        .as_u64()
        .unwrap();
    assert_eq!(used_before, stored_bytes(&s));
    let job = ana(&["vault", "retention", &s.vault]);
    let job = s.job_ended(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["summary"]["policy_source"], "vault");
    assert_eq!(job["summary"]["snapshots_removed"], 3);
    assert!(
        job["summary"]["packs_deleted"].as_u64().unwrap() >= 3,
        "{job:#}"
    );

    // The same snapshots are gone as `loop forget` planned; the vault checks whole and
    // the newest backup restores; its usage is what it stores, and smaller.
    let after = snapshot_ids(&s);
    assert_eq!(
        after,
        before.difference(&would_remove).cloned().collect(),
        "the job removed what loop forget would"
    );
    ok(&mut s.device(&s.restore_token, &["check", "--read-data"]));
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join(src.file_name().unwrap()));
    let used_after = ana(&["vault", "show", &s.vault])["used_bytes"]
        .as_u64()
        .unwrap();
    assert_eq!(
        used_after,
        stored_bytes(&s),
        "usage is what the vault stores"
    );
    assert!(
        used_after + (5 << 20) < used_before,
        "three backups' data was freed: {used_before} -> {used_after}"
    );

    // Each removed snapshot is in the audit log, by the job.
    let events = ana(&[
        "audit",
        "list",
        "--tenant",
        &s.customer,
        "--action",
        "snapshot.delete",
    ]);
    let audited: BTreeSet<String> = events
        .as_array()
        .unwrap()
        .iter()
        .inspect(|e| {
            assert_eq!(e["actor_kind"], "system");
            assert_eq!(e["actor_id"], job["id"]);
        })
        .map(|e| e["object_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(audited, would_remove);

    // Without the vault's own policy the tenant's applies again (keep 4 of the 2 left:
    // nothing to remove).
    ok(&mut s.admin(
        "ana",
        &["policy", "delete", vault_policy["id"].as_str().unwrap()],
    ));
    let job = ana(&["vault", "retention", &s.vault]);
    let job = s.job_ended(job["id"].as_str().unwrap());
    assert_eq!(job["summary"]["policy_source"], "tenant");
    assert_eq!(job["summary"]["snapshots_removed"], 0);
    assert_eq!(snapshot_ids(&s), after);
}

#[test]
fn a_policys_maintenance_schedule_is_set_and_changed_one_setting_at_a_time() {
    let s = set_up(None, "local");
    let created = json(&mut s.admin(
        "ana",
        &[
            "policy",
            "create",
            "--tenant",
            &s.customer,
            "--keep-last",
            "3",
            "--verify-schedule",
            "sun 03:00",
            "--reverify-after-days",
            "7",
        ],
    ));
    let id = created["id"].as_str().unwrap().to_string();
    let m = &created["maintenance"];
    assert_eq!(m["verify_schedule"], "sun 03:00");
    assert_eq!(m["reverify_after_days"], 7);
    assert_eq!(m["retention_schedule"], serde_json::Value::Null);
    assert_eq!(m["verify_read_data_percent"], 10.0);
    // Setting the retention schedule keeps the verify settings.
    let updated = json(&mut s.admin(
        "ana",
        &["policy", "update", &id, "--retention-schedule", "daily"],
    ));
    let m = &updated["maintenance"];
    assert_eq!(m["retention_schedule"], "daily");
    assert_eq!(m["verify_schedule"], "sun 03:00");
    assert_eq!(m["reverify_after_days"], 7);
    let shown = ok(&mut s.admin("ana", &["policy", "show", &id]));
    assert!(shown.contains("applied on schedule: daily"), "{shown}");
    assert!(shown.contains("skipped within 7 days"), "{shown}");
    // "" stops a schedule; a schedule that does not read is refused.
    let cleared = json(&mut s.admin("ana", &["policy", "update", &id, "--verify-schedule", ""]));
    assert_eq!(
        cleared["maintenance"]["verify_schedule"],
        serde_json::Value::Null
    );
    let err = fails(&mut s.admin(
        "ana",
        &["policy", "update", &id, "--verify-schedule", "whenever"],
    ));
    assert!(err.contains("verify_schedule"), "{err}");
}

#[test]
fn an_items_own_policy_judges_its_snapshots_in_place_of_the_vaults() {
    let s = set_up(None, "local");
    let ana = |args: &[&str]| json(&mut s.admin("ana", args));
    let item = s.item(&s.device_id, "docs", std::path::Path::new("/srv/docs"), &[]);
    let tag = format!("item:{item}");
    let src = s.dir.path().join("files");
    // Three snapshots of the item (as its agent tags them) and three others, alternating.
    let mut made = Vec::new();
    for n in 0..6u64 {
        write(&src.join("current.bin"), &noise(4096, n + 1));
        let mut args = vec!["backup", src.to_str().unwrap()];
        if n % 2 == 0 {
            args.extend(["--tag", tag.as_str()]);
        }
        let before = snapshot_ids(&s);
        ok(&mut s.device(&s.backup_token, &args));
        let new: Vec<String> = snapshot_ids(&s).difference(&before).cloned().collect();
        made.push(new[0].clone());
    }
    ana(&[
        "policy",
        "create",
        "--tenant",
        &s.customer,
        "--vault",
        &s.vault,
        "--keep-last",
        "1",
    ]);
    let err = fails(&mut s.admin(
        "ana",
        &[
            "policy",
            "create",
            "--tenant",
            &s.customer,
            "--item",
            &item,
            "--keep-last",
            "2",
            "--retention-schedule",
            "daily",
        ],
    ));
    assert!(err.contains("keep rules only"), "{err}");
    let own = ana(&[
        "policy",
        "create",
        "--tenant",
        &s.customer,
        "--item",
        &item,
        "--keep-last",
        "2",
    ]);
    assert_eq!(own["item_id"], item.as_str());
    assert!(own["vault_id"].is_null());
    // The item's policy is not the vault's.
    assert_ne!(
        ana(&["vault", "policy", &s.vault])["policy"]["id"],
        own["id"]
    );

    let job = ana(&["vault", "retention", &s.vault]);
    let job = s.job_ended(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["summary"]["item_policies"], 1);
    // The item keeps its newest two (made 2 and 4), the rest its newest one (made 5).
    let left = snapshot_ids(&s);
    let want: BTreeSet<String> = [2, 4, 5].iter().map(|i| made[*i].clone()).collect();
    assert_eq!(left, want);

    // An item's policy goes with the item.
    ok(&mut s.admin("ana", &["item", "delete", &item]));
    let policies = ana(&["policy", "list", "--tenant", &s.customer]);
    assert!(
        policies
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["id"] != own["id"]),
        "{policies}"
    );
}
