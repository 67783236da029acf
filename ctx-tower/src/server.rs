//! The server side: [`ServerLayer`] gives every request a [`Ctx`], and [`CtxBody`] keeps it
//! alive until the response body ends.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use ctx_core::{CancelCauseHandle, Cause, Ctx};
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

use crate::{ClientDisconnected, grpc_timeout};

// ===== ServerLayer =====

/// A [`Layer`] that gives every request a [`Ctx`] of its own, in the request's extensions:
/// a child of `root`, with the deadline the caller sent in `grpc-timeout`, canceled when the
/// client goes away. Go's `net/http` does the same for `r.Context()`.
///
/// Per request, the [`ServerService`] inserts into `req.extensions_mut()` one child of `root`:
/// [`root.with_timeout_cancel_cause(t)`](Ctx::with_timeout_cancel_cause) (deadline `now + t`
/// on `root`'s clock) when the request carries a valid `grpc-timeout: t`, else
/// [`root.with_cancel_cause()`](Ctx::with_cancel_cause) (an invalid header is ignored, as gRPC
/// does). [`default_timeout`](ServerLayer::default_timeout) gives a deadline to requests that
/// ask for none, and [`max_timeout`](ServerLayer::max_timeout) caps every request's. That ctx
/// is done:
///
/// * with cause [`ClientDisconnected`] when the response future or the response body
///   ([`CtxBody`]) is dropped before the body has ended — the server dropped the request
///   because its client went away;
/// * with `root`'s error and cause when `root` is done (cancel `root` to shut down);
/// * with [`Error::DeadlineExceeded`](ctx_core::Error) when the deadline passes;
/// * with plain [`Error::Canceled`](ctx_core::Error) once the response body has ended (or the
///   inner service answered an error): Go cancels a request's context when its handler
///   returns. A streaming body keeps the ctx alive until its last frame. A response whose
///   body the server never sends — to a HEAD request, a 1xx, 204 or 304, a 2xx to CONNECT —
///   ends its request as soon as the handler has answered, since hyper drops that body unpolled
///   on a connection the client keeps using.
///
/// # When a hang-up is seen
///
/// A server notices that its client went away only when it reads or writes the connection.
/// hyper reads it while it waits for a request's body or writes a response, so a client that
/// sends its headers and part of a body, then vanishes, is seen — and the ctx canceled with
/// [`ClientDisconnected`] — only when the handler reads the body (or answers). A handler that
/// never reads the body and works long holds the ctx until its own deadline: give it one
/// (`grpc-timeout`, [`default_timeout`](ServerLayer::default_timeout)).
///
/// Nothing here polls [`done()`](Ctx::done): no deadline timer is armed unless the handler
/// itself waits on the ctx (ctx-core arms timers lazily), and no runtime is needed — time is
/// `root`'s clock ([`Ctx::now`]), so `MockClock` and tokio's paused time drive it.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use ctx_core::Ctx;
/// use ctx_tower::ServerLayer;
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// # futures::executor::block_on(async {
/// let (root, _shutdown) = Ctx::background().with_cancel();
/// let app = tower::service_fn(|req: http::Request<String>| async move {
///     let ctx = req.extensions().get::<Ctx>().expect("ServerLayer put it there");
///     Ok::<_, Infallible>(http::Response::new(format!("deadline: {:?}", ctx.deadline().is_some())))
/// });
/// let mut svc = ServerLayer::new(root).layer(app);
/// let req = http::Request::builder().header("grpc-timeout", "5S").body(String::new()).unwrap();
/// let resp = svc.call(req).await.unwrap();
/// # let _ = resp;
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ServerLayer {
    root: Ctx,
    budget: Budget,
}

impl ServerLayer {
    /// A layer whose request contexts are children of `root`: cancel `root` to cancel every
    /// request in flight (graceful shutdown), and give it the clock time should come from.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = ctx_tower::ServerLayer::new(ctx_core::Ctx::background());
    /// # let _ = layer;
    /// ```
    pub fn new(root: Ctx) -> ServerLayer {
        ServerLayer {
            root,
            budget: Budget::default(),
        }
    }

    /// The time a request that brings no `grpc-timeout` (or an invalid one) gets: its ctx's
    /// deadline is `now + d` on the root's clock. None by default: such a request has no
    /// deadline of its own. A request that brings a valid header keeps what it asked for.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::Ctx;
    /// use tower::{Layer, Service};
    ///
    /// # futures::executor::block_on(async {
    /// let layer = ctx_tower::ServerLayer::new(Ctx::background()).default_timeout(Duration::from_secs(30));
    /// let mut svc = layer.layer(tower::service_fn(|req: http::Request<()>| async move {
    ///     let left = req.extensions().get::<Ctx>().unwrap().remaining().unwrap();
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(format!("{}", left <= Duration::from_secs(30))))
    /// }));
    /// let resp = svc.call(http::Request::new(())).await.unwrap();
    /// assert_eq!(resp.body().get_ref(), "true");
    /// # });
    /// ```
    pub fn default_timeout(mut self, d: Duration) -> ServerLayer {
        self.budget.default = Some(d);
        self
    }

    /// The most time any request gets: no request's deadline is later than `now + d` on the
    /// root's clock, whatever its `grpc-timeout` asks (or the
    /// [`default_timeout`](ServerLayer::default_timeout) gives), and a request that asks for
    /// no deadline gets `now + d`. None by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::Ctx;
    /// use tower::{Layer, Service};
    ///
    /// # futures::executor::block_on(async {
    /// let layer = ctx_tower::ServerLayer::new(Ctx::background()).max_timeout(Duration::from_secs(1));
    /// let mut svc = layer.layer(tower::service_fn(|req: http::Request<()>| async move {
    ///     let left = req.extensions().get::<Ctx>().unwrap().remaining().unwrap();
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(format!("{}", left <= Duration::from_secs(1))))
    /// }));
    /// let req = http::Request::builder().header("grpc-timeout", "1H").body(()).unwrap();
    /// assert_eq!(svc.call(req).await.unwrap().body().get_ref(), "true"); // asked 1 h, got 1 s
    /// # });
    /// ```
    pub fn max_timeout(mut self, d: Duration) -> ServerLayer {
        self.budget.max = Some(d);
        self
    }
}

/// What a request gets when it asks for nothing ([`ServerLayer::default_timeout`]) and at most
/// ([`ServerLayer::max_timeout`]).
#[derive(Clone, Copy, Debug, Default)]
struct Budget {
    default: Option<Duration>,
    max: Option<Duration>,
}

impl Budget {
    /// The timeout of a request whose `grpc-timeout` header reads `asked`.
    fn of(self, asked: Option<Duration>) -> Option<Duration> {
        let t = asked.or(self.default);
        match self.max {
            None => t,
            Some(max) => Some(t.map_or(max, |t| t.min(max))),
        }
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> ServerService<S> {
        ServerService {
            inner,
            root: self.root.clone(),
            budget: self.budget,
        }
    }
}

// ===== ServerService =====

/// The service [`ServerLayer`] makes: `S` with a [`Ctx`] in each request's extensions, and
/// a [`CtxBody`] around each response body. `Clone` when `S` is.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use ctx_core::{Ctx, Error};
/// use ctx_tower::ServerService;
/// use tower_service::Service;
///
/// # futures::executor::block_on(async {
/// let (tx, rx) = std::sync::mpsc::channel();
/// let app = tower::service_fn(move |req: http::Request<()>| {
///     tx.send(req.extensions().get::<Ctx>().unwrap().clone()).unwrap();
///     async { Ok::<_, Infallible>(http::Response::new(String::from("streaming..."))) }
/// });
/// let mut svc = ServerService::new(app, Ctx::background());
/// let resp = svc.call(http::Request::new(())).await.unwrap();
/// let ctx = rx.recv().unwrap();
/// assert_eq!(ctx.err(), None); // the body is not over yet
/// drop(resp.into_body()); // dropped before its end: the client went away
/// assert_eq!(ctx.err(), Some(Error::Canceled));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ServerService<S> {
    inner: S,
    root: Ctx,
    budget: Budget,
}

impl<S> ServerService<S> {
    /// Wraps `inner`, deriving each request's ctx from `root`. The same as
    /// `ServerLayer::new(root).layer(inner)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let svc = ctx_tower::ServerService::new(tower::service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// }), ctx_core::Ctx::background());
    /// # let _ = svc;
    /// ```
    pub fn new(inner: S, root: Ctx) -> ServerService<S> {
        ServerService {
            inner,
            root,
            budget: Budget::default(),
        }
    }

    /// The inner service.
    ///
    /// # Examples
    ///
    /// ```
    /// let svc = ctx_tower::ServerService::new(7u8, ctx_core::Ctx::background());
    /// assert_eq!(*svc.get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B, RB> Service<http::Request<B>> for ServerService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    RB: Body,
{
    type Response = http::Response<CtxBody<RB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let asked = find_timeout(req.headers()).and_then(grpc_timeout::parse);
        let (ctx, guard) = Guard::new(&self.root, self.budget.of(asked));
        let method = Method::of(req.method());
        req.extensions_mut().insert(ctx);
        ResponseFuture {
            inner: self.inner.call(req),
            guard,
            method,
        }
    }
}

/// The request's first `grpc-timeout` value. A request carries a handful of headers: comparing
/// names one by one costs less than hashing the name for a lookup, which stays for larger maps.
fn find_timeout(headers: &http::HeaderMap) -> Option<&http::HeaderValue> {
    const SCAN: usize = 8;
    if headers.len() <= SCAN {
        headers
            .iter()
            .find(|(name, _)| *name == grpc_timeout::HEADER)
            .map(|(_, value)| value)
    } else {
        headers.get(grpc_timeout::HEADER)
    }
}

/// What the request's method says about the response's body, by the rules every HTTP server
/// (hyper's included) follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Head,
    Connect,
    Other,
}

impl Method {
    fn of(method: &http::Method) -> Method {
        if *method == http::Method::HEAD {
            Method::Head
        } else if *method == http::Method::CONNECT {
            Method::Connect
        } else {
            Method::Other
        }
    }

    /// Whether a server sends a body with a response of `status` to this request: never for
    /// HEAD, 1xx, 204, 304, nor a 2xx to CONNECT. hyper drops such a body unpolled on a
    /// connection that stays open, so its drop says nothing about the client.
    #[inline]
    fn sends_body(self, status: http::StatusCode) -> bool {
        // The usual answer, `200 OK` to a method other than HEAD and CONNECT, in one test; the
        // rest out of line, so that the response future's poll stays small.
        (self == Method::Other && status == http::StatusCode::OK) || self.sends_body_to(status)
    }

    #[inline(never)]
    fn sends_body_to(self, status: http::StatusCode) -> bool {
        !(self == Method::Head
            || self == Method::Connect && status.is_success()
            || status.is_informational()
            || status == http::StatusCode::NO_CONTENT
            || status == http::StatusCode::NOT_MODIFIED)
    }
}

// ===== Guard =====

/// Owns the cancel handle of one request's ctx. Dropped while still armed, it cancels with
/// [`ClientDisconnected`]: the only ways to drop it armed are dropping the response future or
/// the body before the end, which a server does when its client is gone.
#[derive(Default)]
struct Guard {
    /// Cancels the request's ctx. Taken by `finish`; still here in `drop` means the request
    /// was abandoned. `None` from the start for a detached body.
    cancel: Option<CancelCauseHandle>,
}

impl Guard {
    /// The request's ctx and its guard: one node, a child of `root`, with the deadline
    /// `now + budget` on the root's clock when there is a budget (a budget too large for
    /// `Instant` never expires), and a handle that cancels with a cause (so that a disconnect
    /// carries [`ClientDisconnected`]).
    #[inline]
    fn new(root: &Ctx, budget: Option<std::time::Duration>) -> (Ctx, Guard) {
        let (ctx, cancel) = match budget {
            Some(t) => root.with_timeout_cancel_cause(t),
            None => root.with_cancel_cause(),
        };
        let guard = Guard { cancel: Some(cancel) };
        (ctx, guard)
    }

    /// The response has ended: cancel without a cause (Go: the handler returned), once.
    /// The guard is disarmed: its drop touches nothing.
    #[inline]
    fn finish(&mut self) {
        if let Some(c) = self.cancel.take() {
            end(c);
        }
    }

    /// Hands the guard on (from the response future to the body), leaving a disarmed one.
    #[inline]
    fn take(&mut self) -> Guard {
        std::mem::take(self)
    }
}

/// Cancels a request's ctx whose response has ended. Out of line: the polls that call it stay
/// small enough to inline into whoever polls them, so their large outputs (a response) are
/// built in place rather than copied.
#[inline(never)]
fn end(cancel: CancelCauseHandle) {
    cancel.cancel_without_cause();
}

/// Cancels a request's ctx whose response was abandoned: the client went away.
#[cold]
#[inline(never)]
fn abandon(cancel: CancelCauseHandle) {
    cancel.cancel(client_disconnected());
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        if let Some(c) = self.cancel.take() {
            abandon(c);
        }
    }
}

/// One shared `Arc` for every disconnect: every request's ctx gets the same cause (the cancel
/// boxes it for a moment, 16 bytes, and hands the same `Arc` back).
fn client_disconnected() -> Cause {
    static CAUSE: LazyLock<Cause> = LazyLock::new(|| Arc::new(ClientDisconnected));
    CAUSE.clone()
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("finished", &self.cancel.is_none())
            .finish()
    }
}

// ===== ResponseFuture =====

pin_project_lite::pin_project! {
    /// The future of [`ServerService`]: the inner service's response, its body wrapped in a
    /// [`CtxBody`]. `Send` when the inner future is. Dropping it before it is ready cancels the
    /// request's ctx with [`ClientDisconnected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use ctx_core::{Ctx, Error};
    /// use ctx_tower::ClientDisconnected;
    /// use tower_service::Service;
    ///
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let mut svc = ctx_tower::ServerService::new(tower::service_fn(move |req: http::Request<()>| {
    ///     tx.send(req.extensions().get::<Ctx>().unwrap().clone()).unwrap();
    ///     std::future::pending::<Result<http::Response<String>, Infallible>>()
    /// }), Ctx::background());
    /// let fut = svc.call(http::Request::new(()));
    /// drop(fut); // the client went away before the answer
    /// let ctx = rx.recv().unwrap();
    /// assert_eq!(ctx.err(), Some(Error::Canceled));
    /// assert!(ctx.cause().unwrap().is::<ClientDisconnected>());
    /// ```
    pub struct ResponseFuture<F> {
        // Declared first, so dropped first: the request's ctx is canceled with
        // `ClientDisconnected` before the handler's future (and the cancel handles of any
        // children it derived, whose drop would cancel them plainly) goes.
        guard: Guard,
        #[pin]
        inner: F,
        method: Method,
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
    RB: Body,
{
    type Output = Result<http::Response<CtxBody<RB>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut guard = this.guard.take();
        Poll::Ready(match result {
            Ok(response) => {
                // A body the server never sends (HEAD, 204, 304) is dropped unpolled while the
                // client stays: the request ends here, with the handler's return.
                // A body that is over before it starts (empty) is never polled by a server
                // either.
                if !this.method.sends_body(response.status()) || response.body().is_end_stream() {
                    guard.finish();
                }
                Ok(response.map(|inner| CtxBody { guard, inner }))
            }
            Err(e) => {
                // The handler has returned, with an error: the request is over.
                guard.finish();
                Err(e)
            }
        })
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("finished", &self.guard.cancel.is_none())
            .finish_non_exhaustive()
    }
}

// ===== CtxBody =====

pin_project_lite::pin_project! {
    /// A response body that holds its request's [`Ctx`] open until it ends. `RB`'s frames,
    /// `Data` and `Error` pass through unchanged.
    ///
    /// When the last frame has been read (or `RB` says [`is_end_stream`](Body::is_end_stream)),
    /// the request's ctx is canceled with plain [`Error::Canceled`](ctx_core::Error), as Go
    /// does when a handler returns; when the body is dropped before that, it is canceled with
    /// [`ClientDisconnected`]. An error frame ends the body too (plain `Canceled`).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_body::Body;
    /// let body = ctx_tower::CtxBody::detached(String::from("hello"));
    /// assert_eq!(body.size_hint().exact(), Some(5));
    /// ```
    pub struct CtxBody<B> {
        // Declared first, so dropped first (see `ResponseFuture`).
        guard: Guard,
        #[pin]
        inner: B,
    }
}

impl<B> CtxBody<B> {
    /// A `CtxBody` that holds no request ctx: for answers made outside [`ServerLayer`]
    /// (a fallback, a test) that must have the same type.
    ///
    /// # Examples
    ///
    /// ```
    /// let body = ctx_tower::CtxBody::detached(());
    /// assert_eq!(body.get_ref(), &());
    /// ```
    pub fn detached(inner: B) -> CtxBody<B> {
        CtxBody {
            inner,
            guard: Guard::default(),
        }
    }

    /// The wrapped body.
    ///
    /// # Examples
    ///
    /// ```
    /// let body = ctx_tower::CtxBody::detached("x");
    /// assert_eq!(*body.get_ref(), "x");
    /// ```
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B: Body> Body for CtxBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        // The frame is looked at where it lies and handed on as it came: no copy of it.
        let frame = this.inner.as_mut().poll_frame(cx);
        let ended = match &frame {
            Poll::Pending => false,
            Poll::Ready(None | Some(Err(_))) => true,
            // A server stops polling once the body says it is over; end the request now.
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
        };
        if ended {
            this.guard.finish();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> fmt::Debug for CtxBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CtxBody")
            .field("open", &self.guard.cancel.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_answer_of_sends_body_is_the_full_rules() {
        for method in [Method::Head, Method::Connect, Method::Other] {
            for code in 100..=599u16 {
                let status = http::StatusCode::from_u16(code).unwrap();
                assert_eq!(
                    method.sends_body(status),
                    method.sends_body_to(status),
                    "{method:?} {code}"
                );
            }
        }
        assert!(Method::Other.sends_body(http::StatusCode::OK));
        assert!(!Method::Head.sends_body(http::StatusCode::OK));
        assert!(!Method::Connect.sends_body(http::StatusCode::OK));
        assert!(!Method::Other.sends_body(http::StatusCode::NO_CONTENT));
    }

    #[test]
    fn find_timeout_reads_what_a_lookup_reads_in_small_and_large_maps() {
        for others in [0usize, 1, 7, 8, 9, 40] {
            for at in [0, others / 2, others] {
                let mut headers = http::HeaderMap::new();
                for i in 0..others {
                    if i == at {
                        headers.append(grpc_timeout::HEADER, http::HeaderValue::from_static("1S"));
                        headers.append(grpc_timeout::HEADER, http::HeaderValue::from_static("2S"));
                    }
                    let name = http::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap();
                    headers.insert(name, http::HeaderValue::from_static("v"));
                }
                assert_eq!(
                    find_timeout(&headers),
                    headers.get(grpc_timeout::HEADER),
                    "{others} {at}"
                );
                if at < others {
                    assert_eq!(find_timeout(&headers).unwrap(), "1S", "the first value counts");
                }
            }
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        assert_eq!(find_timeout(&headers), None);
    }
}
