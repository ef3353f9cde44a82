//! Whether a connection has a request in flight, so an idle one can be closed.
//!
//! A request counts from its headers until its response body has been sent (or dropped),
//! so a long download never looks idle.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::watch;

/// Counts the requests in flight on one connection.
pub(crate) struct Activity(watch::Sender<usize>);

/// One request in flight; dropping it ends the request.
pub(crate) struct Busy(watch::Sender<usize>);

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity(watch::Sender::new(0))
    }

    pub(crate) fn begin(&self) -> Busy {
        self.0.send_modify(|n| *n += 1);
        Busy(self.0.clone())
    }

    /// Completes once no request has been in flight for `limit`.
    pub(crate) async fn idle_for(&self, limit: Duration) {
        let mut rx = self.0.subscribe();
        loop {
            if *rx.borrow_and_update() > 0 {
                // The sender lives in `self`, so `changed` cannot fail here.
                let _ = rx.changed().await;
                continue;
            }
            if tokio::time::timeout(limit, rx.changed()).await.is_err() {
                return;
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A response body that keeps its request in flight until it is sent or dropped.
pub(crate) struct Tracked<B> {
    pub(crate) inner: B,
    pub(crate) _busy: Busy,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
