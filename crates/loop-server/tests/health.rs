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

    // Within two seconds of an answer, a flood of probes is answered from it: the
    // destination that went meanwhile is only seen once they have passed.
    std::fs::rename(&vaults, server.data_dir.join("vaults-away")).unwrap();
    server.advance(Duration::from_millis(1_900));
    let cached = server.send(server.request(Method::GET, "/readyz"));
    assert_eq!(cached.status, 200, "{}", cached.body);
    server.advance(Duration::from_millis(200));
    let probed = server.send(server.request(Method::GET, "/readyz"));
    assert_eq!(probed.status, 503, "{}", probed.body);
    std::fs::rename(server.data_dir.join("vaults-away"), &vaults).unwrap();
    assert_eq!(readiness(&server).0, 200);

    // The wall clock is stepped back an hour just after a ready answer, and the destination
    // goes: the next question is probed again, not answered from an answer "made later".
    std::fs::rename(&vaults, server.data_dir.join("vaults-away")).unwrap();
    server.step_back(Duration::from_secs(3600));
    let r = server.send(server.request(Method::GET, "/readyz"));
    assert_eq!(r.status, 503, "{}", r.body);
    std::fs::rename(server.data_dir.join("vaults-away"), &vaults).unwrap();
    assert_eq!(readiness(&server).0, 200);

    // The database goes away.
    server.block_on(server.state.db.pool.close());
    let (status, body) = readiness(&server);
    assert_eq!(status, 503, "{body}");
    assert!(!ok_of(&body, "database"));
    assert!(ok_of(&body, "destination:local"));
}

/// `/metrics` answers allowed addresses (this machine, by default) and the metrics token;
/// anyone else gets the 404 of a path that does not exist. Counters name route templates,
/// never raw paths with IDs in them.
#[test]
fn metrics_answer_allowed_addresses_and_the_token_only() {
    let open = Server::start();
    let r = open.send(open.request(Method::GET, "/metrics"));
    assert_eq!(r.status, 200, "{}", r.body);
    open.admin().get("/api/v1/vaults").expect(200);
    let r = open.send(open.request(Method::GET, "/metrics"));
    assert!(
        r.body.contains(
            "loop_http_requests_total{method=\"GET\",route=\"/api/v1/vaults\",status=\"200\"} 1"
        ),
        "{}",
        r.body
    );
    assert!(r.body.contains("loop_database_query_duration_seconds "));
    // Methods HTTP allows but the API has not are counted as one.
    for made_up in ["FOO1", "FOO2", "BAR"] {
        open.send(open.request(
            Method::from_bytes(made_up.as_bytes()).unwrap(),
            "/api/v1/vaults",
        ));
    }
    let r = open.send(open.request(Method::GET, "/metrics"));
    assert!(!r.body.contains("FOO1"), "{}", r.body);
    assert!(
        r.body.contains(
            "loop_http_requests_total{method=\"other\",route=\"/api/v1/vaults\",status=\"405\"} 3"
        ),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("loop_destination_probe_duration_seconds{destination=\"local\"}")
    );

    let closed = Server::start_with(|c| {
        c.metrics.allow_from = Vec::new();
        c.metrics.token = Some(loop_server::config::SecretString::new(
            "metrics-token-for-tests".into(),
        ));
    });
    let get = |token: Option<&str>| {
        let mut req = closed.request(Method::GET, "/metrics");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        closed.send(req)
    };
    get(None).expect_problem(404, "not_found");
    get(Some("another-token")).expect_problem(404, "not_found");
    let r = get(Some("metrics-token-for-tests"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("# TYPE loop_destination_probe_duration_seconds gauge"),
        "{}",
        r.body
    );
}

/// A scrape is answered whatever a destination does: one that takes connections and never
/// answers is reported as failed (-1) after the probe's few seconds, not waited for.
#[test]
fn a_destination_that_never_answers_is_a_failed_probe_not_a_hung_scrape() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(120));
        drop(conns);
    });
    let server = Server::start_with(|c| {
        support::with_destinations(c, &["local"]);
        c.destinations.push(loop_server::config::DestinationConfig {
            name: "silent".into(),
            jurisdiction: "local".into(),
            backend: loop_server::config::BackendConfig::S3 {
                bucket: "b".into(),
                prefix: String::new(),
                endpoint: Some(format!("http://127.0.0.1:{port}")),
                region: Some("garage".into()),
                access_key_id: "k".into(),
                secret_access_key: loop_server::config::SecretString::new("s".into()),
                allow_http: true,
                retries: 10,
                retry_secs: 180,
                direct: false,
                direct_url_secs: 900,
            },
        });
    });
    // A minute bounds the test: the store's own retries would take minutes.
    let r = server.send(
        server
            .request(Method::GET, "/metrics")
            .timeout(Duration::from_secs(60)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("loop_destination_probe_duration_seconds{destination=\"silent\"} -1"),
        "{}",
        r.body
    );
    drop(held);
}

/// Jobs that ended are a counter, which never goes down; queued and running jobs are a
/// gauge, so a job moving on from queued is not read as a counter reset.
#[test]
fn ended_jobs_only_ever_count_up_and_open_ones_are_a_gauge() {
    let server = Server::start();
    let admin = server.admin();
    let tenant = admin.customer_tenant("Acme");
    let job = server.plant_job(&tenant);
    let scrape = || server.send(server.request(Method::GET, "/metrics")).body;
    let samples = |text: &str| -> Vec<(String, f64)> {
        text.lines()
            .filter(|l| l.starts_with("loop_jobs_total{"))
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                (series.to_string(), value.parse().unwrap())
            })
            .collect()
    };
    let before = scrape();
    assert!(
        before.contains("loop_jobs_open{kind=\"staging-sweep\",state=\"queued\"} 1"),
        "{before}"
    );
    assert!(before.contains("# TYPE loop_jobs_open gauge"), "{before}");

    admin
        .post(&format!("/api/v1/jobs/{job}/cancel"), serde_json::json!({}))
        .expect(200);
    let after = scrape();
    assert!(
        after.contains("loop_jobs_total{kind=\"staging-sweep\",state=\"cancelled\"} 1"),
        "{after}"
    );
    for (series, value) in samples(&before) {
        let now = samples(&after)
            .into_iter()
            .find(|(s, _)| *s == series)
            .map_or(0.0, |(_, v)| v);
        assert!(now >= value, "{series} went down: {value} -> {now}");
    }
    assert!(
        !after.contains("loop_jobs_open{kind=\"staging-sweep\",state=\"queued\"} 1"),
        "{after}"
    );
}
