//! Two `loop server` nodes behind HAProxy (TCP, TLS passed through, PROXY protocol v2), on
//! one PostgreSQL database and one data directory: the service as a provider scales it out.
//! Needs PostgreSQL and HAProxy: `None` (after a loud message) without them, a failure in CI.

use std::path::PathBuf;
use std::sync::Arc;

use loop_testkit::haproxy::Haproxy;

use super::server::Server;
use super::story::{Story, set_up_on};

pub struct Balanced {
    /// The story, set up through the balancer: `story.server` is node A with the
    /// balancer's URL, so every `loop` command of the story goes through it.
    pub story: Story,
    pub node_b: Server,
    /// The access logs of node A and node B.
    pub logs: [PathBuf; 2],
    pub balancer: Haproxy,
}

/// Starts nodes `node-a` and `node-b` that trust 127.0.0.1 (where HAProxy connects from)
/// to send the PROXY header, then HAProxy, then sets up the story through it.
pub fn set_up_balanced() -> Option<Balanced> {
    let cluster = loop_testkit::postgres::Cluster::shared()?;
    let database = Arc::new(cluster.database());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let node = |name: &str| {
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "node_id = \"{name}\"\n[connections]\ntrusted_proxies = [\"127.0.0.1\"]\n\
                 [jobs]\nlease_seconds = 3\n"
            ),
        )
        .unwrap();
        let log = dir.path().join(format!("{name}.log"));
        (
            Server::start_node(&data, database.clone(), &config, &log),
            log,
        )
    };
    let (mut a, log_a) = node("node-a");
    let (node_b, log_b) = node("node-b");
    let balancer = Haproxy::start(&[a.addr(), node_b.addr()])?;
    a.url = format!("https://{}", balancer.addr);
    let story = set_up_on(a, Some(log_a.clone()), dir, "local");
    Some(Balanced {
        story,
        node_b,
        logs: [log_a, log_b],
        balancer,
    })
}

impl Balanced {
    /// The access log lines of node `i` (0: A, 1: B) that answered a request.
    pub fn answered(&self, i: usize) -> Vec<String> {
        std::fs::read_to_string(&self.logs[i])
            .unwrap()
            .lines()
            .filter(|l| l.contains("answered"))
            .map(String::from)
            .collect()
    }

    /// An HTTPS client that connects from `source` (any 127.x address) and opens a new
    /// connection for every request, so the balancer sends them to the nodes in turn.
    pub fn client_from(&self, source: [u8; 4]) -> reqwest::blocking::Client {
        let pem = std::fs::read(self.story.server.data_dir.join("tls-cert.pem")).unwrap();
        reqwest::blocking::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .local_address(std::net::IpAddr::from(source))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    }
}
