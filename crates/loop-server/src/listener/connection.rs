//! Serving one accepted connection: TLS handshake, HTTP/1 or HTTP/2, idle timeout, and a
//! lingering close.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::activity::Activity;
use super::limits::Admission;
use super::linger::{Lent, linger};

/// After an idle connection is asked to close (HTTP/2: GOAWAY), how long the client gets
/// to finish before the connection is dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) router: Router,
    pub(crate) http: auto::Builder<TokioExecutor>,
    pub(crate) handshake: Duration,
    pub(crate) idle: Duration,
}

impl Shared {
    /// The HTTP settings: header read timeout (HTTP/1) and keep-alive pings (HTTP/2).
    pub(crate) fn http(header_read: Duration) -> auto::Builder<TokioExecutor> {
        let mut b = auto::Builder::new(TokioExecutor::new());
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read);
        b.http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(60)));
        b
    }
}

/// Serves `tcp` until the client closes it, a timeout ends it, or the server closes it.
/// `admission` holds the connection's place in the limits until the very end.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    admission: Admission,
) {
    let _admission = admission;
    // Small responses (range reads of tree blobs) must not wait for Nagle's algorithm to
    // meet the client's delayed ACK: that costs 40 ms per request.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "TCP_NODELAY");
    }
    let tls = match tokio::time::timeout(shared.handshake, shared.acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let (io, back) = Lent::new(tls);
    serve_http(&shared, io, peer).await;
    // Hyper has dropped the stream by now, which sent it back.
    if let Ok(stream) = back.await {
        linger(stream).await;
    }
}

async fn serve_http(
    shared: &Shared,
    io: Lent<tokio_rustls::server::TlsStream<TcpStream>>,
    peer: SocketAddr,
) {
    let activity = Arc::new(Activity::new());
    let router = shared.router.clone();
    let requests = activity.clone();
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let busy = requests.begin();
        let answer = tower::ServiceExt::oneshot(router.clone(), req);
        async move {
            let response = answer.await?;
            Ok::<_, Infallible>(response.map(|inner| Body::new(busy.responding(inner))))
        }
    });
    let conn = shared.http.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => Some(r),
        () = activity.idle_for(shared.idle) => None,
    };
    let result = match ended {
        Some(r) => r,
        None => {
            tracing::debug!(%peer, "closing an idle connection");
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut())
                .await
                .unwrap_or(Ok(()))
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
