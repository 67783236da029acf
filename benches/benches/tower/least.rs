//! The least any `ServerLayer` does per request, for the `tower_time` rows: read the header,
//! make a shared node holding the deadline (one allocation, one clock read), put a handle in the
//! extensions, hold the other in the response future and then in the body, and cancel it with
//! one atomic when the body ends. Nothing else: no link to a server-wide root (so shutdown
//! reaches nobody), no cause, no rules for bodies a server never sends. A lower bound, not a
//! design.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body::{Body, Frame};
use tower::Service;

/// A request's node: a flag and a deadline.
pub(crate) type Node = Arc<(AtomicU32, Instant)>;

#[derive(Clone, Copy)]
pub(crate) struct LeastService<S> {
    pub(crate) inner: S,
}

impl<S, B, RB> Service<Request<B>> for LeastService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<LeastBody<RB>>;
    type Error = S::Error;
    type Future = LeastFuture<S::Future>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let budget = req
            .headers()
            .iter()
            .find(|(name, _)| *name == "grpc-timeout")
            .and_then(|(_, v)| parse(v.as_bytes()));
        let node: Node = Arc::new((
            AtomicU32::new(0),
            Instant::now() + budget.unwrap_or(Duration::from_secs(3600)),
        ));
        req.extensions_mut().insert(node.clone());
        LeastFuture {
            inner: self.inner.call(req),
            node: Some(node),
        }
    }
}

/// Seconds only: the least a parse does.
fn parse(v: &[u8]) -> Option<Duration> {
    let (&unit, digits) = v.split_last()?;
    let mut n = 0u64;
    for &d in digits {
        n = n * 10 + u64::from(d.wrapping_sub(b'0'));
    }
    (unit == b'S').then(|| Duration::from_secs(n))
}

pin_project_lite::pin_project! {
    pub(crate) struct LeastFuture<F> {
        #[pin]
        inner: F,
        node: Option<Node>,
    }
}

impl<F, RB, E> Future for LeastFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<LeastBody<RB>>, E>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        let node = this.node.take();
        Poll::Ready(out.map(|resp| resp.map(|inner| LeastBody { inner, node })))
    }
}

pub(crate) struct LeastBody<B> {
    inner: B,
    node: Option<Node>,
}

impl<B: Body + Unpin> Body for LeastBody<B> {
    type Data = B::Data;
    type Error = B::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(f) = &frame
            && (f.is_none() || self.inner.is_end_stream())
            && let Some(node) = self.node.take()
        {
            node.0.fetch_or(1, Ordering::AcqRel);
        }
        frame
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}
