//! The probes a supervisor or load balancer uses: `/healthz` while the process serves,
//! `/readyz` naming the part (database, destination) that does not answer.

mod support;

use std::time::Duration;

use reqwest::Method;
use support::Server;

fn readiness(server: &Server) -> (u16, serde_json::Value) {
    // Past the cache of the previous answer.
    server.advance(Duration::from_secs(3));
    let r = server.send(server.request(Method::GET, "/readyz"));
    (r.status, r.json())
}

fn ok_of(body: &serde_json::Value, component: &str) -> bool {
    body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == component)
        .unwrap_or_else(|| panic!("{component} missing from {body}"))["ok"]
        .as_bool()
        .unwrap()
}

#[test]
fn readyz_names_the_destination_or_database_that_does_not_answer() {
    let server = Server::start();
    let health = server.send(server.request(Method::GET, "/healthz"));
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");

    let (status, body) = readiness(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert!(ok_of(&body, "database"));
    assert!(ok_of(&body, "destination:local"));

    // The local destination's directory disappears (a disk not mounted, say).
    let vaults = server.data_dir.join("vaults");
    std::fs::rename(&vaults, server.data_dir.join("vaults-away")).unwrap();
    let (status, body) = readiness(&server);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert!(!ok_of(&body, "destination:local"));
    assert!(ok_of(&body, "database"));
    assert!(
        !body.to_string().contains("vaults"),
        "no internal detail reaches the client: {body}"
    );
    // Still alive, only not ready.
    assert_eq!(
        server.send(server.request(Method::GET, "/healthz")).status,
        200
    );

    std::fs::rename(server.data_dir.join("vaults-away"), &vaults).unwrap();
    assert_eq!(readiness(&server).0, 200);

    // The database goes away.
    server.block_on(server.state.db.pool.close());
    let (status, body) = readiness(&server);
    assert_eq!(status, 503, "{body}");
    assert!(!ok_of(&body, "database"));
    assert!(ok_of(&body, "destination:local"));
}
