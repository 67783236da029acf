//! [`Done`], the future of "this context is done", and the futures built on it: [`Run`],
//! [`RunStream`], and the blocking wait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use futures_core::Stream;
use futures_core::future::FusedFuture;
use futures_core::stream::FusedStream;
use sync_wrapper::SyncWrapper;

use crate::Error;
use crate::tree::{self, Arc, Node, Registered, Slot};
use crate::watcher::Repoll;

/// A future that completes with the context's [`Error`] once it is done. See
/// [`Ctx::done`](crate::Ctx::done).
///
/// `Done` is `'static + Send + Sync + Unpin`, and a [`FusedFuture`]: once it has answered,
/// `is_terminated()` is `true`. A `Done` of a context that can never be done
/// (`background`, `without_cancel`) is pending forever.
///
/// # Cancellation safety
///
/// Dropping a `Done` releases the waker it was last polled with. It is safe in `select!`.
///
/// # Examples
///
/// ```
/// use ctx_core::{Ctx, Error};
/// # futures::executor::block_on(async {
/// let (ctx, cancel) = Ctx::background().with_cancel();
/// let waiter = std::thread::spawn({
///     let done = ctx.done();
///     move || futures::executor::block_on(done)
/// });
/// cancel.cancel();
/// assert_eq!(waiter.join().unwrap(), Error::Canceled);
/// # });
/// ```
#[doc(alias = "WaitForCancellationFuture")]
#[doc(alias = "WaitForCancellationFutureOwned")]
#[must_use = "futures do nothing unless polled; a `Done` that is dropped waits for nothing"]
pub struct Done {
    source: Source,
}

type ForeignFuture = Pin<Box<dyn Future<Output = Error> + Send + 'static>>;

/// What a [`Done`] waits on.
enum Source {
    Never,
    /// A cancel node of ours, and our waker's slot in it (none until the first pending poll).
    Node {
        node: Arc<Node>,
        key: Option<Slot>,
        /// The two words (data and vtable addresses) of the waker registered at `key`, set
        /// with it: a re-poll with a waker of the same two words needs no lock (`poll_inner`).
        registered: WakerWords,
    },
    /// A foreign future, from [`Done::new`].
    Foreign(SyncWrapper<ForeignFuture>, Repoll),
    /// This `Done` has answered (the node or the foreign future is released): polled again it
    /// answers the same, and it reports [`FusedFuture::is_terminated`].
    Finished(Error),
}

/// A waker's two words, as addresses (compared, never followed): what `Waker::will_wake`
/// compares.
#[derive(Clone, Copy, PartialEq, Eq)]
struct WakerWords(usize, usize);

impl WakerWords {
    /// No waker: no vtable is at address 0.
    const NONE: WakerWords = WakerWords(0, 0);

    #[inline]
    fn of(waker: &Waker) -> WakerWords {
        WakerWords(waker.data().addr(), ptr::from_ref(waker.vtable()).addr())
    }
}

impl Done {
    pub(crate) fn of(node: Option<&Arc<Node>>) -> Done {
        match node {
            Some(n) => Done {
                source: Source::Node {
                    node: n.clone(),
                    key: None,
                    registered: WakerWords::NONE,
                },
            },
            None => Done::never(),
        }
    }

    /// A `Done` that is pending forever: the `done()` of a context that cannot be done.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::FutureExt;
    /// assert!(ctx_core::Done::never().now_or_never().is_none());
    /// ```
    pub fn never() -> Done {
        Done {
            source: Source::Never,
        }
    }

    /// A `Done` backed by any future, for a [`Context`](crate::Context) implementation whose
    /// completion is not a `Ctx`'s. [`Ctx::wrap`](crate::Ctx::wrap) watches such a future with
    /// one watcher (polled again on ctx-core's watcher thread whenever the future wakes), so
    /// the future must be woken by whatever completes it, as any future is — unless the
    /// context implements [`Context::on_done`](crate::Context::on_done), which needs no watcher.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Done, Error};
    /// # futures::executor::block_on(async {
    /// let done = Done::new(async { Error::Canceled });
    /// assert_eq!(done.await, Error::Canceled);
    /// # });
    /// ```
    pub fn new(fut: impl Future<Output = Error> + Send + 'static) -> Done {
        Done {
            source: Source::Foreign(SyncWrapper::new(Box::pin(fut)), Repoll::Deferred),
        }
    }

    /// Like [`new`](Done::new), for a future whose waker is never called while the waking
    /// thread holds a lock — neither one that the future's own `poll` takes, nor one that
    /// code reacting to the cancel might take (wakers of derived contexts run inside that
    /// wake). Then [`Ctx::wrap`](crate::Ctx::wrap) re-polls the future inline, inside the
    /// wake, with no watcher thread.
    ///
    /// Crate-private: that promise is one users cannot check, and breaking it deadlocks the
    /// waking thread. ctx-core's tests reach it through `test_util::done_inline` (they need
    /// foreign contexts that start no thread under Miri).
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    pub(crate) fn new_inline(fut: impl Future<Output = Error> + Send + 'static) -> Done {
        Done {
            source: Source::Foreign(SyncWrapper::new(Box::pin(fut)), Repoll::Inline),
        }
    }

    /// The error, if the context is known to be done, without registering anything: one
    /// atomic load for a `Done` of ours (a foreign one must be polled to tell).
    fn peek(&self) -> Option<Error> {
        match &self.source {
            Source::Node { node, .. } => tree::err(node),
            Source::Finished(e) => Some(*e),
            _ => None,
        }
    }

    /// The cancel node behind this `Done`, if it is one of ours.
    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        match &self.source {
            Source::Node { node, .. } => Some(node),
            _ => None,
        }
    }

    pub(crate) fn is_never(&self) -> bool {
        matches!(self.source, Source::Never)
    }

    pub(crate) fn into_foreign(mut self) -> Option<(ForeignFuture, Repoll)> {
        match std::mem::replace(&mut self.source, Source::Never) {
            Source::Foreign(f, wake) => Some((f.into_inner(), wake)),
            other => {
                self.source = other;
                None
            }
        }
    }
}

impl Future for Done {
    type Output = Error;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Error> {
        let out = self.poll_inner(cx);
        if let Poll::Ready(e) = out {
            // Every path to `Ready` left `key` at none: nothing to unregister.
            self.source = Source::Finished(e);
        }
        out
    }
}

/// A `Done` that has answered reports it, so it can stay in a `select!` loop. (Polled again,
/// it answers the same error again.)
impl FusedFuture for Done {
    fn is_terminated(&self) -> bool {
        matches!(self.source, Source::Finished(_))
    }
}

impl Done {
    /// Registers the waker, then re-checks under the node's lock: a cancel either happened
    /// before (seen under the lock) or happens after (and finds the waker in the node's
    /// waiters, which it takes and wakes after unlocking). So no wake-up is lost.
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        match &mut self.source {
            Source::Never => Poll::Pending,
            Source::Finished(e) => Poll::Ready(*e),
            Source::Foreign(f, _) => f.get_mut().as_mut().poll(cx),
            Source::Node {
                node,
                key,
                registered,
            } => {
                // Fast path, and the lazy deadline check: one atomic load (plus a clock read
                // on an open node with a deadline).
                if let Some(e) = tree::err(node) {
                    if let Some(k) = key.take() {
                        // The node took our waker, or woke it by reference and left it for us
                        // to drop now (invariant 26 of `tree`).
                        tree::unregister_waker(node, k);
                    }
                    return Poll::Ready(e);
                }
                // A re-poll by the task whose waker is registered (a `select!` loop): nothing to
                // change, so no lock. The node was open at the load above, and the waker at
                // `key` leaves it only by this `Done` (its drop, or the refresh below, which
                // records the new words) or by the cancel that marks the node done — which then
                // wakes it, however late after the load. So the registered waker, the same as
                // this one by `will_wake`'s test, is woken by any cancel from now on.
                if key.is_some() && *registered == WakerWords::of(cx.waker()) {
                    return Poll::Pending;
                }
                match tree::register_waker(node, key, cx.waker()) {
                    // `register_waker` gave back the waker at `key`, if any, and cleared it.
                    Registered::Done(e) => Poll::Ready(e),
                    Registered::Waiting { arm } => {
                        // The waker at `key` now wakes this task (registered, refreshed, or
                        // kept because it would wake the same one).
                        *registered = WakerWords::of(cx.waker());
                        if arm {
                            // May fire at once (deadline just passed) and wake us: fine, our
                            // waker is registered already.
                            tree::arm_timer(node);
                        }
                        Poll::Pending
                    }
                }
            }
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Source::Node {
            node, key: Some(key), ..
        } = &self.source
        {
            tree::unregister_waker(node, *key);
        }
    }
}

impl fmt::Debug for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.source {
            Source::Never => "never",
            Source::Node { .. } => "ctx",
            Source::Foreign(..) => "foreign",
            Source::Finished(_) => "finished",
        };
        f.debug_struct("Done").field("kind", &kind).finish()
    }
}

// ===== impl Run =====

pin_project_lite::pin_project! {
    /// The future returned by [`Ctx::run`](crate::Ctx::run): `fut`'s output, or the context's
    /// error if it is done first.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let ctx = ctx_core::Ctx::background();
    /// assert_eq!(ctx.run(async { "ok" }).await, Ok("ok"));
    /// # });
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Run<F> {
        done: Done,
        // Set by the first poll: only that one asks the context before the future.
        started: bool,
        #[pin]
        fut: Option<F>,
    }
}

impl<F> Run<F> {
    pub(crate) fn new(done: Done, fut: F) -> Run<F> {
        Run {
            done,
            started: false,
            fut: Some(fut),
        }
    }
}

impl<F: Future> Future for Run<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // On the first poll, the context first: a done context answers `Err` without ever
        // starting `fut`. This check registers nothing, so a future that is ready at once costs
        // one atomic load more than the bare future, and arms no deadline timer. From then on
        // the future first: an output it has produced is never dropped for a cancel that came
        // on the same wake-up.
        if !*this.started {
            *this.started = true;
            if let Some(e) = this.done.peek() {
                this.fut.set(None);
                return Poll::Ready(Err(e));
            }
        }
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            panic!("`Run` polled after completion");
        };
        if let Poll::Ready(v) = fut.poll(cx) {
            this.fut.set(None);
            return Poll::Ready(Ok(v));
        }
        // `fut` is pending: now wait on the context too.
        match Pin::new(&mut *this.done).poll(cx) {
            Poll::Ready(e) => {
                this.fut.set(None);
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A `Run` that has answered reports it, so it can stay in a `select!` loop.
impl<F: Future> FusedFuture for Run<F> {
    fn is_terminated(&self) -> bool {
        self.fut.is_none()
    }
}

impl<F> fmt::Debug for Run<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

// ===== impl RunStream =====

pin_project_lite::pin_project! {
    /// The stream returned by [`Ctx::run_stream`](crate::Ctx::run_stream): `Ok(item)`s until
    /// the context is done, then one `Err(error)`, then the end.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// # futures::executor::block_on(async {
    /// let ctx = ctx_core::Ctx::background();
    /// let items: Vec<_> = ctx.run_stream(futures::stream::iter([1, 2])).collect().await;
    /// assert_eq!(items, vec![Ok(1), Ok(2)]);
    /// # });
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct RunStream<S> {
        done: Option<Done>,
        #[pin]
        stream: Option<S>,
    }
}

impl<S> RunStream<S> {
    pub(crate) fn new(done: Done, stream: S) -> RunStream<S> {
        RunStream {
            done: Some(done),
            stream: Some(stream),
        }
    }
}

impl<S: Stream> Stream for RunStream<S> {
    type Item = Result<S::Item, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let Some(done) = this.done.as_mut() else {
            return Poll::Ready(None);
        };
        // As in `Run`: check without registering, poll the stream, and wait on the context
        // only while the stream is pending.
        let end = match done.peek() {
            Some(e) => Some(Err(e)),
            None => match this.stream.as_mut().as_pin_mut().map(|s| s.poll_next(cx)) {
                Some(Poll::Ready(Some(item))) => return Poll::Ready(Some(Ok(item))),
                Some(Poll::Ready(None)) | None => None,
                Some(Poll::Pending) => match Pin::new(done).poll(cx) {
                    Poll::Ready(e) => Some(Err(e)),
                    Poll::Pending => return Poll::Pending,
                },
            },
        };
        *this.done = None;
        this.stream.set(None);
        Poll::Ready(end)
    }
}

/// A `RunStream` that has ended (after its `Err`, or with the inner stream) reports it.
impl<S: Stream> FusedStream for RunStream<S> {
    fn is_terminated(&self) -> bool {
        self.done.is_none()
    }
}

impl<S> fmt::Debug for RunStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

// ===== blocking wait =====

/// Parks the thread until woken. `notified` closes the race between a wake and the park.
struct ThreadWaker {
    thread: Thread,
    notified: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}

/// Polls `fut` on this thread, parking in between.
pub(crate) fn block_on<F: Future + Unpin>(mut fut: F) -> F::Output {
    let waker_state = std::sync::Arc::new(ThreadWaker {
        thread: thread::current(),
        notified: AtomicBool::new(false),
    });
    let waker = Waker::from(waker_state.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = Pin::new(&mut fut).poll(&mut cx) {
            return out;
        }
        while !waker_state.notified.swap(false, Ordering::AcqRel) {
            thread::park();
        }
    }
}
