//! Aborting a request body that stops arriving.
//!
//! The timer runs only while the handler waits for the next piece of the body and restarts
//! with every piece, so an upload that keeps flowing is never cut however long it takes,
//! and time the server spends storing what it received does not count.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::error::problem;

/// The body of a request that sent nothing for the configured time.
#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving")]
pub(crate) struct BodyStalled;

/// A request body that fails with [`BodyStalled`] when nothing arrives for `limit`.
struct Watched {
    inner: Body,
    limit: Duration,
    /// Armed while the handler waits for the next piece; made on first use.
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    stalled: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.stalled.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(axum::Error::new(BodyStalled))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let deadline = Instant::now() + this.limit;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !this.waiting {
                    this.waiting = true;
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    this.stalled.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(axum::Error::new(BodyStalled))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: watches the request body, and answers 408 when it stalled, whatever the
/// handler made of the failed read. On HTTP/1 the connection closes after the answer, since
/// the rest of the body will never be read.
pub(crate) async fn abort_stalled(
    State(limit): State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    let stalled = Arc::new(AtomicBool::new(false));
    let version = req.version();
    let req = req.map(|inner| {
        Body::new(Watched {
            inner,
            limit,
            timer: None,
            waiting: false,
            stalled: stalled.clone(),
        })
    });
    let response = next.run(req).await;
    if !stalled.load(Ordering::Relaxed) {
        return response;
    }
    let mut response = problem(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        Some("the request body stopped arriving".into()),
    );
    if version <= Version::HTTP_11 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
