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
