//! Whether a connection is doing anything, so an idle or stalled one can be closed.
//!
//! A request is active from its headers while its handler runs, and then while its response
//! body is being sent. A response whose last piece was handed over and which hyper has not
//! asked for the next one is waiting on the client: its TCP window (HTTP/1) or its HTTP/2
//! flow-control window is full. A connection whose every response has waited so for the
//! idle time, with no handler running and no request begun, counts as idle: a client that
//! never reads (an HTTP/2 window of zero, say) cannot hold it for ever.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::{Body, Frame, SizeHint};

/// How often a connection looks at what its requests are doing.
const TICK: Duration = Duration::from_millis(500);

/// What the requests of one connection are doing.
#[derive(Default)]
pub(crate) struct Activity {
    /// Requests whose handler runs (no response yet).
    handling: AtomicUsize,
    /// Bumped when a request begins and whenever a response hands over a piece.
    moved: AtomicU64,
    /// One flag per response being sent: set while it waits on the client.
    responses: Mutex<Vec<Arc<AtomicBool>>>,
}

/// One request whose handler runs; dropping it ends the request.
pub(crate) struct Busy(Arc<Activity>);

/// One response being sent; dropping it ends the request.
struct Sending(Arc<Activity>);

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity::default()
    }

    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.handling.fetch_add(1, Ordering::SeqCst);
        self.moved.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// True while some request makes progress on the server's side: a handler runs, or a
    /// response is not waiting on the client. Responses already sent are forgotten.
    fn working(&self) -> bool {
        let mut responses = self.responses.lock().expect("responses");
        responses.retain(|r| Arc::strong_count(r) > 1);
        self.handling.load(Ordering::SeqCst) > 0
            || responses.iter().any(|r| !r.load(Ordering::SeqCst))
    }

    /// Completes once nothing has moved for `limit`: no request began, no handler ran and
    /// no response handed over a piece (within a tick).
    pub(crate) async fn idle_for(&self, limit: Duration) {
        let mut quiet_since = Instant::now();
        let mut seen = self.moved.load(Ordering::SeqCst);
        loop {
            tokio::time::sleep(TICK.min(limit)).await;
            let moved = self.moved.load(Ordering::SeqCst);
            if moved != seen || self.working() {
                seen = moved;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= limit {
                return;
            }
        }
    }
}

impl Busy {
    /// The handler answered: its request is active while the response is sent, through
    /// the body this gives.
    pub(crate) fn responding<B>(self, inner: B) -> Tracked<B> {
        let activity = self.0.clone();
        drop(self);
        let waiting = Arc::new(AtomicBool::new(false));
        activity
            .responses
            .lock()
            .expect("responses")
            .push(waiting.clone());
        Tracked {
            inner,
            waiting,
            sending: Sending(activity),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.handling.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that tells its connection whether it waits on the client. Dropped once
/// sent, or with its request cancelled, which forgets its flag.
pub(crate) struct Tracked<B> {
    inner: B,
    waiting: Arc<AtomicBool>,
    sending: Sending,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        // A piece handed over waits on the client until hyper asks for the next one; a
        // pending body waits on the server.
        let handed = matches!(polled, Poll::Ready(Some(Ok(_))));
        self.waiting.store(handed, Ordering::SeqCst);
        if handed {
            self.sending.0.moved.fetch_add(1, Ordering::SeqCst);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
