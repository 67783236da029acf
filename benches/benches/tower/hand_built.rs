//! The stack users write for a per-request deadline and cancellation on hang-up without
//! ctx-tower: tower's `Timeout` plus [`TokenLayer`], which puts a child of a server-wide
//! tokio-util `CancellationToken` into each request's extensions and cancels it when the
//! response future or the body is dropped (a `DropGuard` held by one, then the other). Shared
//! by the `tower` bench and the `tower_instructions` example.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::{Body, Frame};
use tokio_util::sync::{CancellationToken, DropGuard};
use tower::{Layer, Service};

/// The layer users write for cancellation on hang-up without ctx-tower: a child of `root` in
/// each request's extensions, canceled when the response future or the body is dropped.
#[derive(Clone)]
pub(crate) struct TokenLayer {
    pub(crate) root: CancellationToken,
}

impl<S> Layer<S> for TokenLayer {
    type Service = TokenService<S>;
    fn layer(&self, inner: S) -> TokenService<S> {
        TokenService {
            inner,
            root: self.root.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct TokenService<S> {
    inner: S,
    root: CancellationToken,
}

impl<S, B, RB> Service<Request<B>> for TokenService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<GuardedBody<RB>>;
    type Error = S::Error;
    type Future = TokenFuture<S::Future>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let token = self.root.child_token();
        req.extensions_mut().insert(token.clone());
        TokenFuture {
            inner: self.inner.call(req),
            guard: Some(token.drop_guard()),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future: holds the guard until the answer, then hands it to the body.
    pub(crate) struct TokenFuture<F> {
        #[pin]
        inner: F,
        guard: Option<DropGuard>,
    }
}

impl<F, RB, E> Future for TokenFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<GuardedBody<RB>>, E>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        let guard = this.guard.take();
        Poll::Ready(out.map(|resp| resp.map(|inner| GuardedBody { inner, _guard: guard })))
    }
}

/// A body that cancels the request's token when dropped (read to its end or not).
pub(crate) struct GuardedBody<B> {
    inner: B,
    _guard: Option<DropGuard>,
}

impl<B: Body + Unpin> Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}
