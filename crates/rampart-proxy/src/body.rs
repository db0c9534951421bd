//! Request bodies on their way to the upstream: streamed, counted, cut at the cap.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;

/// Errors of bodies passed through the gateway.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type sent to upstreams and clients.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body grew past its cap while streaming.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("request body larger than {limit} bytes")]
pub struct BodyTooLarge {
    /// The cap that was crossed.
    pub limit: u64,
}

pin_project_lite::pin_project! {
    /// Passes a body through and fails it once more than `limit` bytes went by. The shared
    /// flag tells the caller afterwards that the failure was the cap (→ 413), not the network.
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        seen: u64,
        limit: u64,
        tripped: Arc<AtomicBool>,
    }
}

impl<B> LimitedBody<B> {
    /// Wraps `inner`; `tripped` is set when the cap is crossed.
    pub fn new(inner: B, limit: u64, tripped: Arc<AtomicBool>) -> Self {
        LimitedBody {
            inner,
            seen: 0,
            limit,
            tripped,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.seen += data.len() as u64;
                    if *this.seen > *this.limit {
                        this.tripped.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge {
                            limit: *this.limit,
                        }))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body came too slowly: below the minimum rate once its grace time was over, or
/// not complete by the request's deadline.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("request body too slow ({0})")]
pub struct BodyTooSlow(pub &'static str);

/// How fast a request body must arrive.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    /// Time allowed before the rate applies (and on top of it).
    pub grace: std::time::Duration,
    /// Bytes per second the body must average after `grace`; 0 turns the rate check off.
    pub min_rate: u64,
    /// The whole body must have arrived by then.
    pub deadline: tokio::time::Instant,
}

impl BodyPace {
    /// When the body must have delivered more than `received` bytes (from `start`).
    fn due(
        &self,
        start: tokio::time::Instant,
        received: u64,
    ) -> (tokio::time::Instant, &'static str) {
        if self.min_rate == 0 {
            return (self.deadline, "request deadline passed");
        }
        let earned = std::time::Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        let by_rate = start + self.grace + earned.min(std::time::Duration::from_secs(86_400));
        if by_rate < self.deadline {
            (by_rate, "below the minimum body rate")
        } else {
            (self.deadline, "request deadline passed")
        }
    }
}

pin_project_lite::pin_project! {
    /// Passes a body through and fails it when the client sends too slowly for `pace`
    /// (slow-body attacks hold a connection and a request slot with a trickle of bytes). The
    /// shared flag tells the caller afterwards that the failure was the pace (→ 408).
    pub struct PacedBody<B> {
        #[pin]
        inner: B,
        #[pin]
        timer: tokio::time::Sleep,
        timer_at: tokio::time::Instant,
        start: tokio::time::Instant,
        received: u64,
        pace: BodyPace,
        slow: Arc<AtomicBool>,
    }
}

impl<B> PacedBody<B> {
    /// Wraps `inner`, starting the clock now; `slow` is set when the pace is missed.
    pub fn new(inner: B, pace: BodyPace, slow: Arc<AtomicBool>) -> Self {
        let start = tokio::time::Instant::now();
        let (at, _) = pace.due(start, 0);
        PacedBody {
            inner,
            timer: tokio::time::sleep_until(at),
            timer_at: at,
            start,
            received: 0,
            pace,
            slow,
        }
    }
}

impl<B> Body for PacedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let (at, why) = this.pace.due(*this.start, *this.received);
                if at != *this.timer_at {
                    this.timer.as_mut().reset(at);
                    *this.timer_at = at;
                }
                match this.timer.poll(cx) {
                    Poll::Ready(()) => {
                        this.slow.store(true, Ordering::Release);
                        Poll::Ready(Some(Err(Box::new(BodyTooSlow(why)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};

    #[tokio::test]
    async fn passes_up_to_the_cap_and_fails_past_it() {
        let flag = Arc::new(AtomicBool::new(false));
        let ok = LimitedBody::new(Full::new(Bytes::from_static(b"12345")), 5, flag.clone());
        assert_eq!(
            ok.collect().await.unwrap().to_bytes(),
            Bytes::from_static(b"12345")
        );
        assert!(!flag.load(Ordering::Acquire));

        let chunks = futures_chunks(&[b"abc", b"def"]);
        let over = LimitedBody::new(chunks, 5, flag.clone());
        let err = over.collect().await.unwrap_err();
        assert!(err.is::<BodyTooLarge>());
        assert!(flag.load(Ordering::Acquire));
    }

    /// A body sending `chunk` bytes every `every`, `count` times, then ending (or, with
    /// `hang`, never ending).
    fn trickle(
        chunk: usize,
        every: std::time::Duration,
        count: usize,
        hang: bool,
    ) -> impl Body<Data = Bytes, Error = std::convert::Infallible> {
        let frames = futures_util::stream::unfold(0usize, move |n| async move {
            if n == count {
                if hang {
                    std::future::pending::<()>().await;
                }
                return None;
            }
            tokio::time::sleep(every).await;
            Some((Ok(Frame::data(Bytes::from(vec![b'x'; chunk]))), n + 1))
        });
        StreamBody::new(frames)
    }

    fn pace(grace_s: u64, min_rate: u64, deadline_s: u64) -> BodyPace {
        BodyPace {
            grace: std::time::Duration::from_secs(grace_s),
            min_rate,
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(deadline_s),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_at_pace_passes_whole() {
        let flag = Arc::new(AtomicBool::new(false));
        let body = trickle(1000, std::time::Duration::from_secs(1), 5, false);
        let got = PacedBody::new(body, pace(2, 500, 60), flag.clone())
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(got.len(), 5000);
        assert!(!flag.load(Ordering::Acquire));
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_cut_once_the_grace_and_its_bytes_are_used_up() {
        let flag = Arc::new(AtomicBool::new(false));
        let t0 = tokio::time::Instant::now();
        // 10 bytes a second against 500 B/s after 2 s of grace: the two chunks by then earn
        // 40 ms more, and the third comes too late; long before the 60 s deadline.
        let body = trickle(10, std::time::Duration::from_secs(1), 100, false);
        let err = PacedBody::new(body, pace(2, 500, 60), flag.clone())
            .collect()
            .await
            .unwrap_err();
        let slow = err.downcast_ref::<BodyTooSlow>().expect("BodyTooSlow");
        assert_eq!(slow.0, "below the minimum body rate");
        assert!(flag.load(Ordering::Acquire));
        let took = t0.elapsed();
        assert!(took >= std::time::Duration::from_secs(2), "{took:?}");
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_meets_the_deadline() {
        let flag = Arc::new(AtomicBool::new(false));
        let t0 = tokio::time::Instant::now();
        // Fast enough for the rate, but it never ends.
        let body = trickle(10_000, std::time::Duration::from_secs(1), 3, true);
        let err = PacedBody::new(body, pace(2, 500, 30), flag.clone())
            .collect()
            .await
            .unwrap_err();
        assert_eq!(
            err.downcast_ref::<BodyTooSlow>().unwrap().0,
            "request deadline passed"
        );
        assert_eq!(t0.elapsed(), std::time::Duration::from_secs(30));
        // With the rate check off, only the deadline applies.
        let body = trickle(1, std::time::Duration::from_secs(1), 3, true);
        let err = PacedBody::new(body, pace(0, 0, 10), Arc::new(AtomicBool::new(false)))
            .collect()
            .await
            .unwrap_err();
        assert_eq!(
            err.downcast_ref::<BodyTooSlow>().unwrap().0,
            "request deadline passed"
        );
    }

    fn futures_chunks(
        parts: &[&'static [u8]],
    ) -> impl Body<Data = Bytes, Error = std::convert::Infallible> {
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }
}
