//! Two server nodes behind HAProxy on one PostgreSQL database: clients are told apart by the
//! address the PROXY header carries, a backup spread over both nodes restores exactly, and
//! sixteen backups at once through both nodes leave the vault's usage equal to what it
//! stores. (Needs PostgreSQL and HAProxy: skips loudly without them, fails in CI.)

mod support;

use serde_json::{Value, json};
use support::balancer::set_up_balanced;
use support::cli::{assert_same_tree, build_full_tree, noise};
use support::server::{ADMIN_PASSWORD, json as json_of, ok};

fn login(client: &reqwest::blocking::Client, base: &str, email: &str, password: &str) -> u16 {
    client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn two_clients_behind_the_balancer_are_told_apart() {
    let Some(b) = set_up_balanced() else {
        return;
    };
    let base = b.story.server.url.clone();
    let before = [b.answered(0).len(), b.answered(1).len()];
    // Twenty failures from 127.0.0.2, each on a new connection (so on both nodes in turn),
    // lock that address out, even for the right password.
    let guesser = b.client_from([127, 0, 0, 2]);
    for n in 0..20 {
        let email = format!("nobody{n}@example.org");
        assert_eq!(login(&guesser, &base, &email, "wrong-password-123"), 401);
    }
    assert_eq!(
        login(&guesser, &base, "admin@localhost", ADMIN_PASSWORD),
        429
    );
    for (node, n) in before.iter().enumerate() {
        assert!(
            b.answered(node).len() >= n + 5,
            "node {node} answered its share of the guesses"
        );
    }
    // 127.0.0.3 is another client: it signs in, and its session records its address.
    let admin = b.client_from([127, 0, 0, 3]);
    let r = admin
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": "admin@localhost", "password": ADMIN_PASSWORD }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let secret = r.json::<Value>().unwrap()["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let get = |path: &str| -> Value {
        let r = admin
            .get(format!("{base}{path}"))
            .bearer_auth(&secret)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().unwrap()
    };
    assert_eq!(get("/api/v1/me")["session"]["ip"], "127.0.0.3");
    // The audit log names each failure's real client, not the balancer.
    let events = get("/api/v1/audit?limit=10000");
    let failures: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "auth.signin" && e["outcome"] == "failure")
        .collect();
    assert!(failures.len() >= 21, "{failures:#?}");
    assert!(
        failures.iter().all(|e| e["ip"] == "127.0.0.2"),
        "{failures:#?}"
    );

    // Straight to a node: from the balancer's address a connection must start with the
    // header (a plain TLS client is closed); from any other address it is an ordinary
    // client, whose own address counts.
    let node = format!("https://{}", b.node_b.addr());
    let from_balancer = b.client_from([127, 0, 0, 1]);
    assert!(
        from_balancer
            .get(format!("{node}/api/v1/me"))
            .send()
            .is_err(),
        "a balancer connection without a PROXY header is closed"
    );
    let direct = b.client_from([127, 0, 0, 4]);
    assert_eq!(
        login(&direct, &node, "admin@localhost", ADMIN_PASSWORD),
        200,
        "127.0.0.4 is not locked out by 127.0.0.2's failures"
    );
}

#[test]
fn a_backup_spread_over_both_nodes_restores_exactly_and_sixteen_at_once_keep_quota_exact() {
    let Some(b) = set_up_balanced() else {
        return;
    };
    let s = &b.story;
    let src = s.dir.path().join("tree");
    build_full_tree(&src);
    let before = [b.answered(0).len(), b.answered(1).len()];
    let summary = json_of(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    assert!(summary["snapshot_id"].is_string(), "{summary}");
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join("tree"));
    let vault_requests = |node: usize| {
        b.answered(node)[before[node]..]
            .iter()
            .filter(|l| l.contains("/vaults/"))
            .count()
    };
    assert!(
        vault_requests(0) > 0 && vault_requests(1) > 0,
        "both nodes served the vault: {} and {}",
        vault_requests(0),
        vault_requests(1)
    );

    // Sixteen backups of different data into the one vault at once.
    let trees: Vec<_> = (0..16u64)
        .map(|i| {
            let dir = s.dir.path().join(format!("many-{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("data"), noise(3 << 20, 100 + i)).unwrap();
            dir
        })
        .collect();
    let running: Vec<_> = trees
        .iter()
        .map(|t| {
            s.device(&s.backup_token, &["backup", t.to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in running {
        assert!(child.wait().unwrap().success(), "every backup completed");
    }
    ok(&mut s.device(&s.restore_token, &["check", "--read-data"]));
    let vault = json_of(&mut s.admin("ana", &["vault", "show", &s.vault]));
    let vault_dir = s.server.data_dir.join("vaults").join(&s.vault);
    let stored: u64 = stored_bytes(&vault_dir);
    assert!(stored > 16 * (3 << 20), "the packs landed: {stored} bytes");
    assert_eq!(
        vault["used_bytes"].as_u64(),
        Some(stored),
        "usage is what the vault stores: {vault:#}"
    );
}

/// The bytes of every object under `dir` (uploads in flight would be in `.staging`).
fn stored_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            total += stored_bytes(&e.path());
        } else {
            total += meta.len();
        }
    }
    total
}

#[test]
fn a_node_killed_in_the_middle_of_a_job_hands_it_to_the_other() {
    let Some(mut b) = set_up_balanced() else {
        return;
    };
    let src = b.story.dir.path().join("big");
    for n in 0..4u64 {
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join(format!("part-{n}")), noise(32 << 20, n + 1)).unwrap();
    }
    let s = &b.story;
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));
    let job = json_of(&mut s.admin(
        "ana",
        &["vault", "verify", &s.vault, "--read-data-percent", "100"],
    ));
    let id = job["id"].as_str().unwrap().to_string();
    // A job as the survivor sees it; a request the balancer sent to the node just killed
    // (before its health check noticed) fails and is asked again.
    let show = |s: &support::story::Story| -> Option<Value> {
        let out = s
            .admin("ana", &["job", "show", &id, "--json"])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    };
    // Polled every 10 ms; the bound only stops a hung test.
    let mut running = Value::Null;
    for _ in 0..6000 {
        let j = show(s).expect("both nodes answer");
        if j["state"] == "running" {
            running = j;
            break;
        }
        assert_eq!(
            j["state"], "queued",
            "the verify ended before it was seen: {j:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let first = running["node"]
        .as_str()
        .expect("a running job names its node")
        .to_string();
    match first.as_str() {
        "node-a" => b.story.server.kill(),
        "node-b" => b.node_b.kill(),
        other => panic!("unknown node {other}"),
    }
    let s = &b.story;
    let mut ended = Value::Null;
    for _ in 0..1200 {
        if let Some(j) = show(s) {
            ended = j;
            if !["queued", "running"].contains(&ended["state"].as_str().unwrap()) {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(ended["state"], "succeeded", "{ended:#}");
    assert_eq!(ended["attempts"], 2, "taken over once: {ended:#}");
    assert_ne!(
        ended["node"],
        first.as_str(),
        "the other node finished it: {ended:#}"
    );
}
