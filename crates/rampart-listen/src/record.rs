//! The first bytes of a connection, kept until its first request reaches the handler, so a
//! request head the HTTP parser refuses can still be inspected, and answered by the gateway.
//!
//! hyper answers a head it cannot parse with a bare `400` of its own and closes. When that
//! answer is written on a connection whose first request never reached the handler, the
//! stream hands the bytes the client sent to a callback (the gateway's
//! `Gate::unparsable`), which inspects them and may supply the response to send instead.
//!
//! hyper may refuse a head before all of it has arrived (an unknown HTTP version is refused as
//! soon as the request line is read). The stream then reads the rest of the head itself, for
//! at most the header read timeout and up to the header size cap, so the callback sees the
//! whole of it.

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a connection sent before its first request was parsed (at most `cap` bytes).
#[derive(Debug)]
pub(crate) struct FirstBytes {
    bytes: Mutex<Vec<u8>>,
    done: AtomicBool,
    cap: usize,
}

impl FirstBytes {
    pub(crate) fn new(cap: usize) -> FirstBytes {
        FirstBytes {
            bytes: Mutex::new(Vec::new()),
            done: AtomicBool::new(false),
            cap,
        }
    }

    /// A request was parsed: nothing more to keep.
    pub(crate) fn stop(&self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            let mut b = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
            *b = Vec::new();
        }
    }

    /// The bytes kept, unless a request was parsed.
    pub(crate) fn take(&self) -> Option<Vec<u8>> {
        if self.done.swap(true, Ordering::AcqRel) {
            return None;
        }
        let mut b = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        Some(std::mem::take(&mut *b))
    }

    fn cap(&self) -> usize {
        self.cap
    }

    fn keep(&self, data: &[u8]) {
        if data.is_empty() || self.done.load(Ordering::Acquire) {
            return;
        }
        let mut b = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.cap.saturating_sub(b.len());
        b.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// Called with the bytes of a refused first request head; returns the response to send in
/// place of hyper's.
pub(crate) type OnRefused = Box<dyn FnOnce(&[u8]) -> Option<Vec<u8>> + Send>;

/// A stream that copies what it reads into a [`FirstBytes`], and can replace hyper's own
/// answer to an unparsable first request.
pub(crate) struct Recorded<S> {
    inner: S,
    record: std::sync::Arc<FirstBytes>,
    on_refused: Option<OnRefused>,
    /// Our answer and how much of it is written; hyper's bytes are swallowed meanwhile.
    replacing: Option<(Vec<u8>, usize)>,
    /// A refused head still being read to its end before the callback sees it.
    completing: Option<Completing>,
    /// How long the rest of a refused head may take to arrive.
    head_wait: Duration,
}

/// A refused head whose end has not arrived yet.
struct Completing {
    head: Vec<u8>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

/// Whether `head` holds the empty line that ends a request head, or is an HTTP/0.9 simple
/// request (a complete request line without a version: it has no header fields).
fn head_complete(head: &[u8]) -> bool {
    let simple = head.iter().position(|&b| b == b'\n').is_some_and(|end| {
        let line = head[..end].strip_suffix(b"\r").unwrap_or(&head[..end]);
        line.trim_ascii_end().iter().filter(|&&b| b == b' ').count() == 1
    });
    simple || head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

impl<S> Recorded<S> {
    pub(crate) fn new(
        inner: S,
        record: std::sync::Arc<FirstBytes>,
        on_refused: Option<OnRefused>,
    ) -> Recorded<S> {
        Recorded {
            inner,
            record,
            on_refused,
            replacing: None,
            completing: None,
            head_wait: Duration::from_secs(10),
        }
    }

    /// How long the rest of a refused head may take to arrive (the header read timeout).
    pub(crate) fn head_wait(mut self, wait: Duration) -> Recorded<S> {
        self.head_wait = wait;
        self
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Recorded<S> {
    /// Whether `data` (the start of a write) is hyper's own 400 to a first request it could
    /// not parse; if so, reads the rest of the head when it has not all arrived, then asks
    /// the callback for the answer to send instead. Pending while the head is being read.
    fn intercept(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<()> {
        if self.completing.is_some() {
            return self.complete_head(cx);
        }
        if self.on_refused.is_none() || self.replacing.is_some() {
            return Poll::Ready(());
        }
        if self.record.done.load(Ordering::Acquire) {
            self.on_refused = None;
            return Poll::Ready(());
        }
        let is_refusal = data.starts_with(b"HTTP/1.1 400 ") || data.starts_with(b"HTTP/1.0 400 ");
        if !is_refusal {
            return Poll::Ready(());
        }
        let Some(head) = self.record.take() else {
            return Poll::Ready(());
        };
        if head_complete(&head) || head.len() >= self.record.cap() {
            self.answer_for(&head);
            return Poll::Ready(());
        }
        self.completing = Some(Completing {
            head,
            deadline: Box::pin(tokio::time::sleep(self.head_wait)),
        });
        self.complete_head(cx)
    }

    /// Reads until the head ends, the cap is reached, the client stops sending or the wait
    /// is over; then asks the callback with what arrived.
    fn complete_head(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let cap = self.record.cap();
        let Some(c) = self.completing.as_mut() else {
            return Poll::Ready(());
        };
        let mut chunk = [0u8; 2048];
        loop {
            if head_complete(&c.head) || c.head.len() >= cap {
                break;
            }
            let mut buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    let room = cap - c.head.len();
                    let got = buf.filled();
                    c.head.extend_from_slice(&got[..got.len().min(room)]);
                }
                // end of stream or a broken connection: what arrived is all there is
                Poll::Ready(_) => break,
                Poll::Pending => {
                    if c.deadline.as_mut().poll(cx).is_ready() {
                        break;
                    }
                    return Poll::Pending;
                }
            }
        }
        let head = std::mem::take(&mut c.head);
        self.completing = None;
        self.answer_for(&head);
        Poll::Ready(())
    }

    fn answer_for(&mut self, head: &[u8]) {
        if let Some(cb) = self.on_refused.take()
            && let Some(answer) = cb(head)
        {
            self.replacing = Some((answer, 0));
        }
    }

    /// Writes our answer; `Ready(Ok(()))` once all of it is out.
    fn write_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, sent)) = self.replacing.as_mut() {
            if *sent >= answer.len() {
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &answer[*sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            self.record.keep(&buf.filled()[before..]);
        }
        r
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Recorded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.intercept(cx, buf).is_pending() {
            return Poll::Pending;
        }
        if this.replacing.is_some() {
            // hyper's answer is dropped: ours goes out in its place
            return this.write_replacement(cx).map_ok(|()| buf.len());
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && this.intercept(cx, first).is_pending()
        {
            return Poll::Pending;
        }
        if this.replacing.is_some() {
            let total = bufs.iter().map(|b| b.len()).sum();
            return this.write_replacement(cx).map_ok(|()| total);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn keeps_the_first_bytes_until_stopped() {
        let (mut client, server) = tokio::io::duplex(64);
        let record = Arc::new(FirstBytes::new(8));
        let mut s = Recorded::new(server, Arc::clone(&record), None);
        client.write_all(b"GET /<x> HTTP/1.1\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(n, 19);
        // capped, and handed out once
        assert_eq!(record.take().as_deref(), Some(&b"GET /<x>"[..]));
        assert_eq!(record.take(), None);

        let record = Arc::new(FirstBytes::new(64));
        let mut s = Recorded::new(s.inner, Arc::clone(&record), None);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let _ = s.read(&mut buf).await.unwrap();
        record.stop();
        client.write_all(b"more").await.unwrap();
        let _ = s.read(&mut buf).await.unwrap();
        assert_eq!(record.take(), None);
    }

    #[tokio::test]
    async fn replaces_the_parsers_refusal_of_a_first_request() {
        let (mut client, server) = tokio::io::duplex(1024);
        let record = Arc::new(FirstBytes::new(64));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let cb: OnRefused = Box::new(move |head: &[u8]| {
            *seen2.lock().unwrap() = head.to_vec();
            Some(b"HTTP/1.1 400 Bad Request\r\nx-request-id: r1\r\n\r\n".to_vec())
        });
        let mut s = Recorded::new(server, Arc::clone(&record), Some(cb));
        client
            .write_all(b"GET /<x> HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await.unwrap();
        // hyper's own answer, in two pieces: both are swallowed, ours goes out once
        let theirs = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n";
        assert_eq!(s.write(theirs).await.unwrap(), theirs.len());
        assert_eq!(s.write(b"\r\n").await.unwrap(), 2);
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"HTTP/1.1 400 Bad Request\r\nx-request-id: r1\r\n\r\n");
        assert_eq!(&*seen.lock().unwrap(), b"GET /<x> HTTP/1.1\r\n\r\n");
    }

    fn capturing() -> (OnRefused, Arc<Mutex<Vec<u8>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let cb: OnRefused = Box::new(move |head: &[u8]| {
            *seen2.lock().unwrap() = head.to_vec();
            Some(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec())
        });
        (cb, seen)
    }

    #[tokio::test]
    async fn reads_the_rest_of_a_head_refused_early() {
        let (mut client, server) = tokio::io::duplex(1024);
        let record = Arc::new(FirstBytes::new(256));
        let (cb, seen) = capturing();
        let mut s = Recorded::new(server, Arc::clone(&record), Some(cb));
        // the parser refuses the version as soon as the request line is in
        client
            .write_all(b"GET / HTTP/4.0\r\nHost: a")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await.unwrap();
        let theirs = b"HTTP/1.1 400 Bad Request\r\n\r\n";
        let write = tokio::spawn(async move {
            s.write_all(theirs).await.unwrap();
            s.shutdown().await.unwrap();
        });
        client.write_all(b"\r\nX: 1\r\n\r\n").await.unwrap();
        write.await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, theirs);
        assert_eq!(
            &*seen.lock().unwrap(),
            b"GET / HTTP/4.0\r\nHost: a\r\nX: 1\r\n\r\n"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_never_ends_is_handed_over_when_the_wait_is_over() {
        let (mut client, server) = tokio::io::duplex(1024);
        let record = Arc::new(FirstBytes::new(256));
        let (cb, seen) = capturing();
        let mut s =
            Recorded::new(server, Arc::clone(&record), Some(cb)).head_wait(Duration::from_secs(2));
        client.write_all(b"GET / HTTP/4.0\r\nHost").await.unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await.unwrap();
        // the client sends nothing more and keeps the connection open
        s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(&*seen.lock().unwrap(), b"GET / HTTP/4.0\r\nHost");
    }

    #[test]
    fn heads_end_at_the_empty_line_or_after_a_simple_request() {
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(head_complete(b"GET / HTTP/1.1\nHost: a\n\n"));
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(head_complete(b"GET /\r\n"), "HTTP/0.9 has no header fields");
        assert!(head_complete(b"GET / \r\n"));
        assert!(!head_complete(b"GET /"));
    }

    #[tokio::test]
    async fn leaves_answers_to_parsed_requests_alone() {
        let (mut client, server) = tokio::io::duplex(1024);
        let record = Arc::new(FirstBytes::new(64));
        let cb: OnRefused = Box::new(|_: &[u8]| panic!("not a refusal"));
        let mut s = Recorded::new(server, Arc::clone(&record), Some(cb));
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await.unwrap();
        record.stop();
        // a 400 the handler wrote goes out as it is
        s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .unwrap();
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"HTTP/1.1 400 Bad Request\r\n\r\n");
    }
}
