//! Accepting connections within limits, and serving each one.
//!
//! Every way a client can hold a connection has a budget (see `ConnectionConfig`): the TLS
//! handshake, the request headers, the time between requests, and each pause in a request
//! body. Connections over the total or per-client limit are closed before the handshake,
//! and the limit is kept below the open-file limit, so idle or slow clients cannot stop the
//! server from answering everyone else.

mod activity;
pub(crate) mod body_timeout;
mod connection;
mod limits;

pub(crate) use limits::client_key;
mod linger;
mod proxy;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::TcpListener;

use crate::config::ConnectionConfig;
use connection::Shared;
use limits::{ConnectionLimits, Refusal};

/// When `accept` fails for lack of descriptors or memory, wait this long before the next
/// try instead of spinning; existing connections are served meanwhile.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The accepting side of the server.
pub(crate) struct Listener {
    tcp: TcpListener,
    shared: Arc<Shared>,
    limits: Arc<ConnectionLimits>,
    /// Balancers whose connections start with a PROXY v2 header.
    trusted_proxies: Arc<[std::net::IpAddr]>,
}

impl Listener {
    pub(crate) fn new(
        tcp: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        router: Router,
        config: &ConnectionConfig,
    ) -> Listener {
        let (max, files) = limits::fit_to_file_limit(config.max);
        if max < config.max {
            tracing::warn!(
                configured = config.max,
                max,
                open_file_limit = files,
                "connections.max lowered to fit the open-file limit"
            );
        }
        let seconds = Duration::from_secs;
        Listener {
            tcp,
            shared: Arc::new(Shared {
                acceptor: tokio_rustls::TlsAcceptor::from(tls),
                router,
                http: Shared::http(seconds(config.header_read_seconds)),
                handshake: seconds(config.tls_handshake_seconds),
                idle: seconds(config.idle_seconds),
            }),
            limits: ConnectionLimits::new(max, config.max_per_client),
            trusted_proxies: config
                .trusted_proxies
                .iter()
                .map(|ip| ip.to_canonical())
                .collect(),
        }
    }

    /// Accepts and serves connections until `shutdown` completes.
    pub(crate) async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_warning = None;
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                r = self.tcp.accept() => r,
            };
            let (tcp, peer) = match accepted {
                Ok(c) => c,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    if warning_due(&mut last_warning) {
                        tracing::warn!(error = %e, "accepting connections failed; backing off");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            if is_trusted(&self.trusted_proxies, peer.ip()) {
                tokio::spawn(proxied(self.shared.clone(), self.limits.clone(), tcp, peer));
                continue;
            }
            match self.limits.admit(peer.ip()) {
                Ok(admission) => {
                    tokio::spawn(connection::serve(self.shared.clone(), tcp, peer, admission));
                }
                Err(refusal) => {
                    drop(tcp);
                    if warning_due(&mut last_warning) {
                        let which = match refusal {
                            Refusal::Total => "connections.max",
                            Refusal::PerClient => "connections.max_per_client",
                        };
                        tracing::warn!(
                            limit = which,
                            max = self.limits.max(),
                            client = %peer.ip(),
                            "connection refused: limit reached"
                        );
                    }
                }
            }
        }
    }
}

/// A connection from a trusted balancer: its PROXY header (read within the handshake's
/// time) names the client, whom the limits then count and the handlers see. A connection
/// without a valid header is closed.
async fn proxied(
    shared: Arc<Shared>,
    limits: Arc<ConnectionLimits>,
    mut tcp: tokio::net::TcpStream,
    balancer: std::net::SocketAddr,
) {
    let client = match tokio::time::timeout(shared.handshake, proxy::read_header(&mut tcp)).await {
        Ok(Ok(Some(client))) => client,
        // The balancer's own connection (a health check).
        Ok(Ok(None)) => balancer,
        Ok(Err(e)) => {
            tracing::debug!(%balancer, error = %e, "closing a balancer connection");
            return;
        }
        Err(_) => {
            tracing::debug!(%balancer, "no PROXY header in time");
            return;
        }
    };
    match limits.admit(client.ip()) {
        Ok(admission) => connection::serve(shared, tcp, client, admission).await,
        Err(refusal) => {
            tracing::debug!(%client, ?refusal, "proxied connection refused: limit reached");
        }
    }
}

/// Errors about one connection that died while queued: nothing to wait for.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    )
}

/// True when the last warning is ten seconds old (or there was none), so a flood of
/// refused connections or failing accepts cannot flood the log.
fn warning_due(last: &mut Option<Instant>) -> bool {
    let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
    if due {
        *last = Some(Instant::now());
    }
    due
}

/// Whether `peer` is one of the balancers `trusted` (canonical addresses): on a socket that
/// listens on `[::]` an IPv4 peer arrives as `::ffff:a.b.c.d`, which is the `a.b.c.d` the
/// configuration names.
fn is_trusted(trusted: &[std::net::IpAddr], peer: std::net::IpAddr) -> bool {
    trusted.contains(&peer.to_canonical())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    #[test]
    fn an_ipv4_balancer_is_trusted_however_the_socket_names_it() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted = [ip("10.0.1.5"), ip("fd00::5")];
        assert!(super::is_trusted(&trusted, ip("10.0.1.5")));
        assert!(super::is_trusted(&trusted, ip("::ffff:10.0.1.5")));
        assert!(super::is_trusted(&trusted, ip("fd00::5")));
        assert!(!super::is_trusted(&trusted, ip("10.0.1.6")));
        assert!(!super::is_trusted(&trusted, ip("::ffff:10.0.1.6")));
    }
}
