//! The body of every response we serve: bytes held whole (nearly every answer), or a stream
//! fed through a channel (sentinel's Server-Sent Events), which ends when its sender drops.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// A response body: whole, or streamed.
#[derive(Debug)]
pub struct ResponseBody(Kind);

#[derive(Debug)]
enum Kind {
    Whole(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl ResponseBody {
    /// A body streamed from `rx`: each message is sent as it arrives; the body ends when
    /// every sender is dropped.
    pub fn stream(rx: mpsc::Receiver<Bytes>) -> Self {
        Self(Kind::Stream(rx))
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self(Kind::Whole(None))
    }
}

impl Default for ResponseBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl<T: Into<Bytes>> From<T> for ResponseBody {
    fn from(b: T) -> Self {
        let b = b.into();
        Self(Kind::Whole((!b.is_empty()).then_some(b)))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().0 {
            Kind::Whole(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.0, Kind::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Whole(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn whole_and_streamed_bodies_read_back() {
        let whole = ResponseBody::from("hello");
        assert_eq!(whole.size_hint().exact(), Some(5));
        assert_eq!(whole.collect().await.unwrap().to_bytes(), "hello");
        assert!(ResponseBody::empty().is_end_stream());
        let (tx, rx) = mpsc::channel(2);
        let body = ResponseBody::stream(rx);
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        tx.send(Bytes::from_static(b"b")).await.unwrap();
        drop(tx);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "ab");
    }
}
