//! The client side: [`ClientLayer`] sends the caller's remaining time as `grpc-timeout` and
//! abandons the call when the caller's [`Ctx`] is done.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use ctx_core::{Ctx, Done, Error};
use tower_layer::Layer;
use tower_service::Service;

use crate::grpc_timeout;

// ===== ClientLayer =====

/// A [`Layer`] for outgoing calls: a request that carries a [`Ctx`] in its extensions is sent
/// with that ctx's remaining time in `grpc-timeout`, never sent when the ctx is already done,
/// and abandoned (the inner future dropped) as soon as the ctx is done.
///
/// Per request, the [`ClientService`]:
///
/// * passes a request without a `Ctx` extension through untouched;
/// * answers `Err(ClientError::Done(err))` without calling the inner service when the ctx is
///   already done;
/// * when the ctx has a deadline, sets `grpc-timeout` to the time left (rounded down, so never
///   more than the time left): a larger value already there is replaced, a smaller one kept;
/// * races the inner future against the ctx: when the ctx is done first, the inner future is
///   dropped — which is how cancellation crosses the wire (hyper resets the HTTP/2 stream or
///   closes the HTTP/1 connection, and the server's [`ServerLayer`](crate::ServerLayer) sees
///   its client go away) — and the answer is `Err(ClientError::Done(err))`.
///
/// On a ctx without a deadline nothing is written, and the ctx's `done()` is only polled once
/// the inner future has returned `Pending`: a call answered at once registers nothing.
///
/// When the inner service fails while the ctx is done — typically because a layer below read
/// the `grpc-timeout` this layer wrote and ran a timer of its own (tonic's `Channel` does) —
/// the error is the ctx's: `ClientError::Done`. A successful answer is never discarded.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use ctx_core::Ctx;
/// use ctx_tower::ClientLayer;
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// # futures::executor::block_on(async {
/// let echo = tower::service_fn(|req: http::Request<()>| async move {
///     Ok::<_, Infallible>(req.headers().get("grpc-timeout").cloned())
/// });
/// let mut client = ClientLayer::new().layer(echo);
/// let (ctx, _cancel) = Ctx::background().with_timeout(Duration::from_secs(10));
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(ctx);
/// let sent = client.call(req).await.unwrap().expect("a deadline goes out");
/// assert!(ctx_tower::grpc_timeout::parse(&sent).unwrap() <= Duration::from_secs(10));
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientLayer {
    _priv: (),
}

impl ClientLayer {
    /// The layer. It has no settings: everything comes from each request's [`Ctx`].
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = ctx_tower::ClientLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> ClientLayer {
        ClientLayer { _priv: () }
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> ClientService<S> {
        ClientService { inner }
    }
}

// ===== ClientService =====

/// The service [`ClientLayer`] makes. `Clone` when `S` is.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use ctx_core::{Ctx, Error};
/// use ctx_tower::{ClientError, ClientService};
/// use tower_service::Service;
///
/// # futures::executor::block_on(async {
/// let mut client = ClientService::new(tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, Infallible>("sent")
/// }));
/// let (ctx, cancel) = Ctx::background().with_cancel();
/// cancel.cancel();
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(ctx);
/// assert!(matches!(client.call(req).await, Err(ClientError::Done(Error::Canceled))));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
}

impl<S> ClientService<S> {
    /// Wraps `inner`; the same as `ClientLayer::new().layer(inner)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let client = ctx_tower::ClientService::new(5u8);
    /// assert_eq!(*client.get_ref(), 5);
    /// ```
    pub fn new(inner: S) -> ClientService<S> {
        ClientService { inner }
    }

    /// The inner service.
    ///
    /// # Examples
    ///
    /// ```
    /// let client = ctx_tower::ClientService::new("inner");
    /// assert_eq!(*client.get_ref(), "inner");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B> Service<http::Request<B>> for ClientService<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = ClientError<S::Error>;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ClientError::Inner)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // Read what the ctx says, then let go of the borrow to edit the headers.
        let seen = req.extensions().get::<Ctx>().map(|ctx| {
            // One atomic load (plus a clock read when there is a deadline).
            match ctx.err() {
                Some(err) => Err(err),
                // A `Done` of a ctx that can never be done is a unit variant; of any other,
                // one reference count. It is not polled (nothing registered, no timer armed)
                // unless the inner future is pending.
                None => Ok((ctx.remaining(), ctx.done())),
            }
        });
        let done = match seen {
            None => None,
            Some(Err(err)) => return ResponseFuture::refused(err),
            Some(Ok((left, done))) => {
                if let Some(left) = left {
                    set_timeout(req.headers_mut(), left);
                }
                Some(done)
            }
        };
        ResponseFuture {
            state: State::Running {
                inner: self.inner.call(req),
                done,
            },
        }
    }
}

/// Writes `left` as `grpc-timeout` unless a value already there is no larger.
fn set_timeout(headers: &mut http::HeaderMap, left: std::time::Duration) {
    if let Some(existing) = headers.get(grpc_timeout::HEADER).and_then(grpc_timeout::parse)
        && existing <= left
    {
        return; // a tighter budget set by the caller stays
    }
    // `insert` replaces every value of the header, a malformed one included.
    headers.insert(grpc_timeout::HEADER, grpc_timeout::format(left));
}

// ===== ResponseFuture =====

pin_project_lite::pin_project! {
    /// The future of [`ClientService`]: the inner service's answer, or
    /// [`ClientError::Done`] when the request's ctx is done first (the inner future is then
    /// dropped at once). `Send` when the inner future is.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Ctx, Error};
    /// use ctx_tower::ClientError;
    /// use tower_service::Service;
    ///
    /// # futures::executor::block_on(async {
    /// let mut client = ctx_tower::ClientService::new(tower::service_fn(|_: http::Request<()>| {
    ///     std::future::pending::<Result<(), std::convert::Infallible>>()
    /// }));
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// let mut req = http::Request::new(());
    /// req.extensions_mut().insert(ctx);
    /// let fut: ctx_tower::client::ResponseFuture<_> = client.call(req);
    /// cancel.cancel(); // the caller gives up: the pending call is dropped
    /// assert!(matches!(fut.await, Err(ClientError::Done(Error::Canceled))));
    /// # });
    /// ```
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<F> {
        Running {
            #[pin]
            inner: F,
            // `None`: the request carried no ctx.
            done: Option<Done>,
        },
        Refused {
            err: Option<Error>,
        },
        Finished,
    }
}

impl<F> ResponseFuture<F> {
    fn refused(err: Error) -> ResponseFuture<F> {
        ResponseFuture {
            state: State::Refused { err: Some(err) },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, ClientError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        let err = match state.as_mut().project() {
            StateProj::Refused { err } => match err.take() {
                Some(e) => e,
                None => panic!("`ctx_tower::client::ResponseFuture` polled after completion"),
            },
            StateProj::Finished => {
                panic!("`ctx_tower::client::ResponseFuture` polled after completion")
            }
            StateProj::Running { inner, done } => {
                // The answer first: a call that is ready at once never touches the ctx.
                if let Poll::Ready(out) = inner.poll(cx) {
                    let out = match out {
                        Ok(v) => Ok(v),
                        // An error that comes with (or from) the ctx being done — a stack
                        // below that reads `grpc-timeout` and runs a timer of its own, like
                        // tonic's `Channel`, fails at the same instant — is the ctx's error.
                        Err(e) => match done.as_mut().map(|d| Pin::new(d).poll(cx)) {
                            Some(Poll::Ready(err)) => Err(ClientError::Done(err)),
                            _ => Err(ClientError::Inner(e)),
                        },
                    };
                    state.project_replace(State::Finished);
                    return Poll::Ready(out);
                }
                // Pending: now wait on the ctx too. Registering here (not earlier) is what
                // keeps a fast call free of locks and timers.
                match done.as_mut().map(|d| Pin::new(d).poll(cx)) {
                    Some(Poll::Ready(e)) => e,
                    None | Some(Poll::Pending) => return Poll::Pending,
                }
            }
        };
        // The ctx is done: drop the inner future now, not when this future is dropped.
        state.project_replace(State::Finished);
        Poll::Ready(Err(ClientError::Done(err)))
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Running { done: Some(_), .. } => "running under a ctx",
            State::Running { done: None, .. } => "running without a ctx",
            State::Refused { .. } => "refused",
            State::Finished => "finished",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}

// ===== ClientError =====

/// The error of a [`ClientService`] call: the caller's ctx was done first, or the inner
/// service failed.
///
/// `Display` is the ctx's error for `Done` (`context deadline exceeded`) and a short phrase for
/// `Inner`, whose error is the [`source`](std::error::Error::source) — so tools that walk the
/// source chain (tonic's `Status::from_error`, `anyhow`'s `{:#}`) find the inner error.
///
/// With feature `tonic`, the source of `Done` is a `tonic::Status` with code
/// `DEADLINE_EXCEEDED` or `CANCELLED`: tonic's generated clients look for a `Status` down the
/// source chain of a service's error, so a tonic client behind [`ClientLayer`] reports that
/// code (the one [`grpc_code`](crate::grpc_code) gives) instead of `UNKNOWN`. Without the
/// feature, `Done` has no source.
///
/// # Examples
///
/// ```
/// use ctx_core::Error;
/// use ctx_tower::ClientError;
/// let e: ClientError<std::io::Error> = ClientError::Done(Error::DeadlineExceeded);
/// assert_eq!(e.to_string(), "context deadline exceeded");
/// assert_eq!(ctx_tower::http_status(Error::DeadlineExceeded), 504);
/// ```
#[derive(Debug)]
pub enum ClientError<E> {
    /// The request's ctx was done before the answer came (or before it was sent): the inner
    /// service was never called, or its future was dropped.
    Done(Error),
    /// The inner service's own error.
    Inner(E),
}

impl<E> fmt::Display for ClientError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Done(e) => fmt::Display::fmt(e, f),
            ClientError::Inner(_) => f.write_str("the inner service failed"),
        }
    }
}

impl<E> std::error::Error for ClientError<E>
where
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "tonic")]
            ClientError::Done(err) => Some(crate::grpc::status_of(*err)),
            #[cfg(not(feature = "tonic"))]
            ClientError::Done(_) => None,
            ClientError::Inner(e) => Some(e),
        }
    }
}
