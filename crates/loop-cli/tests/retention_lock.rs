//! A retention lock against real forget and prune runs: a customer's manage token running
//! `loop forget --prune` and the server's retention job of a managed vault both leave every
//! object younger than the lock in place (reporting what it kept), the vault checks whole in
//! between, and the same runs remove it all once the lock has passed (the server's test
//! clock moves).

mod support;

use reqwest::Method;
use support::cli::write;
use support::server::*;
use support::story::*;

/// Three backups of their own data into a vault through `run` (the first with `init`).
fn three_backups(s: &Story, name: &str, init: bool, run: &dyn Fn(&[&str]) -> String) {
    let src = s.dir.path().join(name);
    for n in 1..=3u64 {
        let _ = std::fs::remove_dir_all(&src);
        write(&src.join(format!("f{n}")), &support::cli::noise(1 << 20, n));
        let mut args = vec!["backup"];
        if init && n == 1 {
            args.push("--init");
        }
        args.push(src.to_str().unwrap());
        run(&args);
    }
}

#[test]
fn forget_and_prune_leave_what_a_retention_lock_holds_until_it_has_passed() {
    let s = set_up(Some(&test_clock_config), "local");
    let ana = |args: &[&str]| json(&mut s.admin("ana", args));

    // A customer-key vault, backed up and pruned by the customer with a manage token.
    let (vault, manage) = s.customer_key_vault("locked");
    let customer = |args: &[&str]| ok(&mut s.customer_cli(&vault, &manage, args));
    three_backups(&s, "own", true, &|a| customer(a));
    // The story's managed vault, pruned by the server's retention job.
    let restore = s.restore_token.clone();
    three_backups(&s, "managed", false, &|a| {
        ok(&mut s.device(&s.backup_token, a))
    });
    for v in [&vault, &s.vault] {
        assert_eq!(
            ana(&["vault", "lock", v, "--days", "7"])["retention_lock_days"],
            7
        );
    }
    ok(&mut s.admin(
        "ana",
        &[
            "policy",
            "create",
            "--tenant",
            &s.customer,
            "--keep-last",
            "1",
        ],
    ));

    // Day 2: a ransomware-like run with the manage token: forget all but the newest and prune.
    s.advance_clock(2 * 86_400);
    let all = |v: &str, t: &str| ["snapshots", "data", "index"].map(|k| s.object_names(v, k, t));
    let before = all(&vault, &manage);
    assert_eq!(before[0].len(), 3);
    let forgot = json(&mut s.customer_cli(&vault, &manage, &["forget", "--keep-last", "1"]));
    assert_eq!(forgot["removed"], serde_json::json!([]), "{forgot}");
    assert_eq!(forgot["held"].as_array().unwrap().len(), 2, "{forgot}");
    // A pack an interrupted backup left behind, which no index names: a prune with no
    // grace period would delete it at once.
    let mut stray = b"LPPK\x01\x00\x00\x00".to_vec();
    stray.extend_from_slice(&[7u8; 32]);
    stray.extend_from_slice(&[1u8; 16]);
    stray.extend_from_slice(&0u32.to_le_bytes());
    let stray_name = "07".repeat(32);
    let (status, body) = s.server.vault_request(
        Method::PUT,
        &format!("/vaults/{vault}/v1/data/{stray_name}"),
        &manage,
        Some(stray),
    );
    assert_eq!(status, 201, "{body}");
    let pruned = json(&mut s.customer_cli(&vault, &manage, &["prune", "--grace", "0s"]));
    assert_eq!(pruned["plan"]["orphan_packs_delete"], 1, "{pruned}");
    assert_eq!(pruned["report"]["packs_deleted"], 0, "{pruned}");
    assert!(
        pruned["report"]["objects_locked"].as_u64().unwrap() > 0,
        "{pruned}"
    );
    for (kind, (b, a)) in ["snapshots", "data", "index"]
        .iter()
        .zip(before.iter().zip(all(&vault, &manage).iter()))
    {
        // Nothing stored went; a prune may only have added.
        assert!(b.iter().all(|n| a.contains(n)), "{kind}: {b:?} -> {a:?}");
    }
    let checked = customer(&["check", "--read-data"]);
    assert!(checked.contains("no errors"), "{checked}");

    // The server's retention job keeps the same: two snapshots held, the vault whole.
    let managed_before = all(&s.vault, &restore);
    let job = ana(&["vault", "retention", &s.vault]);
    let job = s.job_ended(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["summary"]["snapshots_removed"], 0, "{job:#}");
    assert_eq!(job["summary"]["snapshots_locked"], 2, "{job:#}");
    assert_eq!(job["summary"]["packs_deleted"], 0, "{job:#}");
    let managed_after = all(&s.vault, &restore);
    for (b, a) in managed_before.iter().zip(managed_after.iter()) {
        assert!(b.iter().all(|n| a.contains(n)), "{b:?} -> {a:?}");
    }
    ok(&mut s.device(&restore, &["check", "--read-data"]));

    // Day 9: the lock has passed; the same runs remove what the policy does not keep.
    s.advance_clock(7 * 86_400);
    let forgot = json(&mut s.customer_cli(&vault, &manage, &["forget", "--keep-last", "1"]));
    assert_eq!(forgot["removed"].as_array().unwrap().len(), 2, "{forgot}");
    assert_eq!(forgot["held"], serde_json::json!([]), "{forgot}");
    assert_eq!(s.object_names(&vault, "snapshots", &manage).len(), 1);
    let pruned = json(&mut s.customer_cli(&vault, &manage, &["prune", "--grace", "0s"]));
    assert_eq!(pruned["report"]["objects_locked"], 0, "{pruned}");
    assert!(
        !s.object_names(&vault, "data", &manage)
            .contains(&stray_name),
        "the stray pack went"
    );
    let packs_left = s.object_names(&vault, "data", &manage);
    assert!(
        before[1].iter().filter(|p| packs_left.contains(p)).count() < before[1].len(),
        "the forgotten backups' packs went: {packs_left:?}"
    );
    let checked = customer(&["check", "--read-data"]);
    assert!(checked.contains("no errors"), "{checked}");

    let job = ana(&["vault", "retention", &s.vault]);
    let job = s.job_ended(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["summary"]["snapshots_removed"], 2, "{job:#}");
    assert_eq!(job["summary"]["snapshots_locked"], 0, "{job:#}");
    assert!(
        job["summary"]["packs_deleted"].as_u64().unwrap() >= 1,
        "{job:#}"
    );
    assert_eq!(s.object_names(&s.vault, "snapshots", &restore).len(), 1);
    ok(&mut s.device(&restore, &["check", "--read-data"]));
}
