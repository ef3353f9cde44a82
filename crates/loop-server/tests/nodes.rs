//! Two server nodes on one PostgreSQL database and one data directory: what one node
//! counts, claims or records, the other sees. (Needs PostgreSQL: skips loudly without it,
//! fails in CI.)

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use support::vault::customer_with_vault;
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, files_under};

/// Nodes `node-a` and `node-b`, started one after the other on a fresh database.
fn two_nodes(data: &Path) -> Option<(Server, Server)> {
    let cluster = loop_testkit::postgres::Cluster::shared()?;
    let database = Arc::new(cluster.database());
    let node = |name: &str| {
        let name = name.to_string();
        Server::start_on(Some(database.clone()), |c| {
            c.data_dir = data.to_path_buf();
            c.node_id = Some(name);
        })
    };
    Some((node("node-a"), node("node-b")))
}

#[test]
fn guesses_spread_over_two_nodes_are_counted_together() {
    let dir = tempfile::tempdir().unwrap();
    let Some((a, b)) = two_nodes(dir.path()) else {
        return;
    };
    for n in 0..5 {
        let node = if n % 2 == 0 { &a } else { &b };
        node.login(ADMIN_EMAIL, "wrong-password-123")
            .expect_problem(401, "invalid_credentials");
    }
    for node in [&a, &b] {
        node.login(ADMIN_EMAIL, ADMIN_PASSWORD)
            .expect_problem(429, "signin_throttled");
    }

    // A burst of simultaneous guesses at another account, half to each node.
    let (checked, _) = support::burst_of_guesses(&[&a, &b], "someone@example.org", 24);
    assert!(checked <= 5, "{checked} guesses were checked");

    // The window passes on both nodes' clocks: the administrator signs in on either.
    for node in [&a, &b] {
        node.advance(Duration::from_secs(16 * 60));
    }
    b.admin().get("/api/v1/me").expect(200);
}

#[test]
fn a_job_both_nodes_race_for_runs_once_and_names_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let Some((a, b)) = two_nodes(dir.path()) else {
        return;
    };
    let admin_a = a.admin();
    let admin_b = b.admin();
    let mut jobs = Vec::new();
    for n in 0..6 {
        let (_, vault) = customer_with_vault(&admin_a, &format!("Customer {n}"), None);
        let stored = files_under(&dir.path().join("vaults").join(&vault));
        assert!(stored.len() >= 2, "config and key slot: {stored:?}");
        // Deleted on alternating nodes; both nodes' runners look for the erasure jobs.
        let admin = if n % 2 == 0 { &admin_a } else { &admin_b };
        let job = admin.delete(&format!("/api/v1/vaults/{vault}")).expect(202);
        jobs.push((vault, job["id"].as_str().unwrap().to_string()));
    }
    for (vault, id) in &jobs {
        let job = admin_b.job_ended(id);
        assert_eq!(job["state"], "succeeded", "{job:#}");
        assert_eq!(job["attempts"], 1, "claimed once: {job:#}");
        let node = job["node"].as_str().unwrap_or_default();
        assert!(["node-a", "node-b"].contains(&node), "{job:#}");
        let left = files_under(&dir.path().join("vaults").join(vault));
        assert!(left.is_empty(), "vault {vault} was erased: {left:?}");
    }
}

#[test]
fn two_nodes_starting_at_once_on_an_empty_database_make_one_provider() {
    let Some(cluster) = loop_testkit::postgres::Cluster::shared() else {
        return;
    };
    let database = Arc::new(cluster.database());
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = std::thread::scope(|s| {
        let start = |name: &'static str| {
            let database = database.clone();
            let data = dir.path().join(name);
            s.spawn(move || {
                Server::start_on(Some(database), |c| {
                    c.data_dir = data;
                    // One key for both, as the nodes of one service share it.
                    c.master_key = Some(loop_server::config::SecretString::new("42".repeat(32)));
                    c.node_id = Some(name.to_string());
                })
            })
        };
        let (a, b) = (start("node-a"), start("node-b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    for node in [&a, &b] {
        let tenants = node.admin().get("/api/v1/tenants").expect(200);
        let providers = tenants
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"] == "provider")
            .count();
        assert_eq!(providers, 1, "{tenants}");
    }
}

/// Two nodes started at once on an empty database with different master keys: one makes the
/// provider, and the other does not serve with a key that opens nothing of it.
#[test]
fn of_two_nodes_starting_at_once_with_different_master_keys_one_serves() {
    let Some(cluster) = loop_testkit::postgres::Cluster::shared() else {
        return;
    };
    let database = cluster.database();
    let dir = tempfile::tempdir().unwrap();
    let started: Vec<Result<(), String>> = std::thread::scope(|s| {
        let start = |name: &'static str, key: &'static str| {
            let config = loop_server::Config {
                data_dir: dir.path().join(name),
                listen: "127.0.0.1:0".parse().unwrap(),
                admin_password: Some(loop_server::config::SecretString::new(
                    ADMIN_PASSWORD.into(),
                )),
                master_key: Some(loop_server::config::SecretString::new(key.repeat(32))),
                node_id: Some(name.to_string()),
                database: loop_server::config::DatabaseConfig {
                    url: Some(loop_server::config::SecretString::new(database.url.clone())),
                    ..Default::default()
                },
                ..loop_server::Config::default()
            };
            s.spawn(move || {
                let rt = tokio::runtime::Runtime::new().unwrap();
                rt.block_on(loop_server::Application::build(config))
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
        };
        let (a, b) = (start("node-a", "42"), start("node-b", "17"));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    assert_eq!(
        started.iter().filter(|r| r.is_ok()).count(),
        1,
        "{started:?}"
    );
    let refused = started.iter().find_map(|r| r.clone().err()).unwrap();
    assert!(refused.contains("does not open the keys"), "{refused}");
}
