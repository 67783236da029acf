//! [`Probe`]: poll a future by hand with a counting waker, and assert what happened.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_test::task::{AwokenCount, new_count_waker};

/// A future under test, polled by hand with a waker that counts its wake-ups.
///
/// Poll it with [`poll`](Probe::poll) (or [`assert_pending`](Probe::assert_pending) /
/// [`assert_ready`](Probe::assert_ready)), make something happen, then check
/// [`woken`](Probe::woken): how many times the future's waker was woken since the probe was
/// made. [`wakers_held`](Probe::wakers_held) counts the clones of the waker that others still
/// hold, so a test can check that a dropped future gave its waker back.
///
/// The counting is `futures-test`'s [`new_count_waker`]; the probe adds the bookkeeping.
///
/// # Examples
///
/// ```
/// use ctx_core::{Ctx, Error};
/// use ctx_testkit::Probe;
///
/// let (ctx, cancel) = Ctx::background().with_cancel();
/// let mut done = Probe::new(ctx.done());
/// done.assert_pending();
/// cancel.cancel();
/// assert_eq!(done.woken(), 1);
/// assert_eq!(done.assert_ready(), Error::Canceled);
/// ```
pub struct Probe<F> {
    /// `None` once the future completed or was dropped.
    fut: Option<Pin<Box<F>>>,
    /// Our own reference to the relay, to count the clones held elsewhere.
    relay: Arc<Relay>,
    waker: Waker,
    count: AwokenCount,
}

/// Forwards wakes to the `futures-test` count waker; its `Arc` strong count tells how many
/// clones of the probe's waker are alive.
struct Relay(Waker);

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.0.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake_by_ref();
    }
}

impl<F: Future> Probe<F> {
    /// Wraps `fut` (boxed and pinned) with a fresh counting waker. Nothing is polled yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut p = ctx_testkit::Probe::new(async { 1 });
    /// assert_eq!(p.woken(), 0);
    /// assert_eq!(p.assert_ready(), 1);
    /// ```
    pub fn new(fut: F) -> Probe<F> {
        let (count_waker, count) = new_count_waker();
        let relay = Arc::new(Relay(count_waker));
        let waker = Waker::from(relay.clone());
        Probe {
            fut: Some(Box::pin(fut)),
            relay,
            waker,
            count,
        }
    }

    /// Polls the future once with the probe's waker. After it returned `Ready`, the future is
    /// dropped and the probe may not be polled again.
    ///
    /// # Panics
    ///
    /// If the future already completed or was dropped with
    /// [`drop_future`](Probe::drop_future).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Poll;
    /// let mut p = ctx_testkit::Probe::new(std::future::pending::<()>());
    /// assert_eq!(p.poll(), Poll::Pending);
    /// ```
    #[track_caller]
    pub fn poll(&mut self) -> Poll<F::Output> {
        let fut = self
            .fut
            .as_mut()
            .expect("Probe polled after its future completed or was dropped");
        let mut cx = Context::from_waker(&self.waker);
        let out = fut.as_mut().poll(&mut cx);
        if out.is_ready() {
            self.fut = None;
        }
        out
    }

    /// Polls once and panics unless the future is pending.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut p = ctx_testkit::Probe::new(ctx_core::Done::never());
    /// p.assert_pending();
    /// ```
    #[track_caller]
    pub fn assert_pending(&mut self) {
        if self.poll().is_ready() {
            panic!("expected the future to be pending, but it was ready");
        }
    }

    /// Polls once and returns the output; panics if the future is pending.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut p = ctx_testkit::Probe::new(async { "done" });
    /// assert_eq!(p.assert_ready(), "done");
    /// ```
    #[track_caller]
    pub fn assert_ready(&mut self) -> F::Output {
        match self.poll() {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("expected the future to be ready, but it was pending"),
        }
    }

    /// How many times the probe's waker (or a clone of it) has been woken.
    ///
    /// # Examples
    ///
    /// ```
    /// let (ctx, cancel) = ctx_core::Ctx::background().with_cancel();
    /// let mut p = ctx_testkit::Probe::new(ctx.done());
    /// p.assert_pending();
    /// cancel.cancel();
    /// cancel.cancel(); // idempotent: no second wake-up
    /// assert_eq!(p.woken(), 1);
    /// ```
    pub fn woken(&self) -> usize {
        self.count.get()
    }

    /// Panics unless the waker was woken exactly `n` times.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut p = ctx_testkit::Probe::new(std::future::pending::<()>());
    /// p.assert_pending();
    /// p.assert_woken(0);
    /// ```
    #[track_caller]
    pub fn assert_woken(&self, n: usize) {
        let got = self.woken();
        assert_eq!(
            got, n,
            "expected the waker to be woken {n} time(s), it was woken {got}"
        );
    }

    /// How many clones of the probe's waker are held outside the probe (by the future, or by
    /// whatever it registered the waker with). Zero after a future that cleans up is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let (ctx, _cancel) = ctx_core::Ctx::background().with_cancel();
    /// let mut p = ctx_testkit::Probe::new(ctx.done());
    /// p.assert_pending();
    /// assert_eq!(p.wakers_held(), 1); // the context holds our waker
    /// p.drop_future();
    /// assert_eq!(p.wakers_held(), 0); // and gave it back
    /// ```
    pub fn wakers_held(&self) -> usize {
        // One reference is `self.relay`, one is `self.waker`.
        Arc::strong_count(&self.relay) - 2
    }

    /// Drops the future now (as `select!` drops the losing branch). The probe keeps its
    /// counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut p = ctx_testkit::Probe::new(async {});
    /// p.drop_future();
    /// assert!(p.is_dropped());
    /// ```
    pub fn drop_future(&mut self) {
        self.fut = None;
    }

    /// `true` once the future completed or was dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut p = ctx_testkit::Probe::new(async {});
    /// assert!(!p.is_dropped());
    /// p.assert_ready();
    /// assert!(p.is_dropped());
    /// ```
    pub fn is_dropped(&self) -> bool {
        self.fut.is_none()
    }

    /// A clone of the probe's waker, to hand to code that registers wakers itself.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = ctx_testkit::Probe::new(async {});
    /// p.waker().wake_by_ref();
    /// assert_eq!(p.woken(), 1);
    /// ```
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }
}

impl<F> fmt::Debug for Probe<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("woken", &self.count.get())
            .field("completed_or_dropped", &self.fut.is_none())
            .finish_non_exhaustive()
    }
}
