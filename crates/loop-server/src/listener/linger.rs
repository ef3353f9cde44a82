//! Closing a connection so the client reads the last answer instead of a reset.
//!
//! When the server closes a socket with unread request bytes in it (a body too large to
//! take, oversized headers), the kernel answers with a reset, and a client still sending
//! usually reports "connection reset" without ever reading the 413 or 431 before it. So the
//! server shuts down its sending side first and reads and discards what the client still
//! sends, within a small budget, before it closes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::server::TlsStream;

/// At most this much is read and discarded after the last answer: more than a client's
/// and the kernel's buffers hold, so a client that writes its whole request before it
/// reads gets to the answer.
const DRAIN_BYTES: usize = 16 << 20;
/// And for at most this long.
const DRAIN_TIME: Duration = Duration::from_secs(3);

/// The connection's stream while hyper serves it. Hyper drops it when the connection ends;
/// then the stream goes back to the connection task for [`linger`].
pub(crate) struct Lent<S> {
    stream: Option<S>,
    back: Option<oneshot::Sender<S>>,
}

impl<S> Lent<S> {
    pub(crate) fn new(stream: S) -> (Lent<S>, oneshot::Receiver<S>) {
        let (tx, rx) = oneshot::channel();
        let lent = Lent {
            stream: Some(stream),
            back: Some(tx),
        };
        (lent, rx)
    }

    fn stream(&mut self) -> io::Result<&mut S> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

impl<S> Drop for Lent<S> {
    fn drop(&mut self) {
        if let (Some(s), Some(back)) = (self.stream.take(), self.back.take()) {
            let _ = back.send(s);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lent<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Lent<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// Sends what is still buffered and the TLS close, shuts the sending side, then discards
/// what the client still sends until it closes too or the budget is spent.
pub(crate) async fn linger(mut stream: TlsStream<TcpStream>) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let _ = stream.shutdown().await;
        // The rest is discarded unread: raw TCP, no decryption.
        let (mut tcp, _) = stream.into_inner();
        let mut buf = vec![0u8; 16 * 1024];
        let mut left = DRAIN_BYTES;
        while left > 0 {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}
