//! Checks of the futures (`done()`, `run()`, `run_stream()`) and of `wait_blocking`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::task::{Context as TaskContext, Poll};

use ::futures::StreamExt;
use ctx_core::{Done, Error};

use super::{MANY, Runtime, expect};
use crate::Probe;

/// A future that is pending forever and records when it is dropped.
struct DropFlag(Arc<AtomicBool>);

impl Future for DropFlag {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `done()` resolves with the error once the context is canceled (from another thread, under
/// the runtime's `block_on`), and at once for a context that is already done.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::done_resolves_when_canceled(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn done_resolves_when_canceled<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    let done = ctx.done();
    let t = std::thread::spawn(move || cancel.cancel());
    assert_eq!(rt.block_on(done), Error::Canceled);
    t.join().unwrap();
    assert_eq!(
        Probe::new(ctx.done()).assert_ready(),
        Error::Canceled,
        "done() of a done context was pending"
    );
    assert_eq!(rt.block_on(ctx.with_value(1u8).done()), Error::Canceled);
}

/// Any number of `done()` futures, of a context and of its descendants, all resolve, each
/// woken once.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::many_done_futures_all_resolve(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn many_done_futures_all_resolve<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    let (child, _c) = ctx.with_cancel();
    let value = child.with_value(0u8);
    let mut probes: Vec<Probe<Done>> = (0..MANY)
        .map(|i| match i % 3 {
            0 => Probe::new(ctx.done()),
            1 => Probe::new(child.done()),
            _ => Probe::new(value.done()),
        })
        .collect();
    for p in &mut probes {
        p.assert_pending();
    }
    cancel.cancel();
    for p in &mut probes {
        p.assert_woken(1);
        assert_eq!(p.assert_ready(), Error::Canceled);
    }
}

/// Tasks spawned on the runtime, each awaiting `done()`, are all woken by one cancel.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::many_spawned_waiters_are_all_woken(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn many_spawned_waiters_are_all_woken<R: Runtime>(rt: &R) {
    let n = if cfg!(miri) { 2 } else { 8 };
    let (ctx, cancel) = rt.background().with_cancel();
    let (child, _c) = ctx.with_cancel();
    let (tx, rx) = mpsc::channel();
    for i in 0..n {
        let done = if i % 2 == 0 { ctx.done() } else { child.done() };
        let tx = tx.clone();
        rt.spawn(async move {
            let _ = tx.send(done.await);
        });
    }
    cancel.cancel();
    for _ in 0..n {
        assert_eq!(expect(rt, false, &rx, "a spawned waiter woken"), Error::Canceled);
    }
}

/// `Done` is `'static + Send + Sync + Unpin` and can be moved to another thread and awaited
/// there.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::done_is_static_and_send(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn done_is_static_and_send<R: Runtime>(rt: &R) {
    fn assert_traits<T: Send + Sync + Unpin + 'static>(t: T) -> T {
        t
    }
    let (ctx, cancel) = rt.background().with_cancel();
    let done = assert_traits(ctx.done());
    drop(ctx); // the future does not borrow the context
    let waiter = std::thread::spawn(move || ::futures::executor::block_on(done));
    cancel.cancel();
    assert_eq!(waiter.join().unwrap(), Error::Canceled);
}

/// A `Done` that is dropped releases the waker it was polled with (and a later cancel wakes
/// nothing); so does one that completed.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::dropped_done_releases_its_waker(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn dropped_done_releases_its_waker<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    let (timed, _t) = ctx.with_timeout(std::time::Duration::from_secs(3600));
    let mut probes = Vec::new();
    for c in [&ctx, &timed] {
        let mut p = Probe::new(c.done());
        p.assert_pending();
        p.assert_pending(); // polling again with the same waker keeps one registration
        assert!(p.wakers_held() >= 1, "a pending done() did not keep the waker");
        p.drop_future();
        assert_eq!(p.wakers_held(), 0, "{c}: a dropped done() kept the waker");
        probes.push(p);
    }
    cancel.cancel();
    for p in &probes {
        p.assert_woken(0);
    }
    let (ctx, cancel) = rt.background().with_cancel();
    let mut p = Probe::new(ctx.done());
    p.assert_pending();
    cancel.cancel();
    p.assert_ready();
    assert_eq!(p.wakers_held(), 0, "a completed done() kept the waker");
}

/// A pending `done()` is woken exactly once, however many cancels (of it and its ancestors)
/// and however many polls with the same waker happen; on a mock, a deadline wakes it once too.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::done_is_woken_exactly_once(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn done_is_woken_exactly_once<R: Runtime>(rt: &R) {
    let (parent, cancel_parent) = rt.background().with_cancel();
    let (ctx, cancel) = parent.with_cancel();
    let mut p = Probe::new(ctx.done());
    p.assert_pending();
    p.assert_pending();
    p.assert_woken(0);
    cancel.cancel();
    cancel_parent.cancel();
    cancel.cancel();
    p.assert_woken(1);
    assert_eq!(p.assert_ready(), Error::Canceled);

    if rt.is_mock() {
        let (ctx, _c) = rt.background().with_timeout(super::tick(rt));
        let mut p = Probe::new(ctx.done());
        p.assert_pending();
        rt.advance(super::past_tick(rt));
        p.assert_woken(1);
        rt.advance(super::past_tick(rt));
        p.assert_woken(1);
        assert_eq!(p.assert_ready(), Error::DeadlineExceeded);
    }
}

/// `done()` of a context that can never be done (root, value over it, `without_cancel`) is
/// pending forever and never woken.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::done_of_background_never_resolves(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn done_of_background_never_resolves<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (c, cancel) = root.with_cancel();
    let mut probes = [
        Probe::new(root.done()),
        Probe::new(root.with_value(1u8).done()),
        Probe::new(c.without_cancel().done()),
    ];
    for p in &mut probes {
        p.assert_pending();
    }
    cancel.cancel();
    rt.advance(super::tick(rt));
    for p in &mut probes {
        p.assert_pending();
        p.assert_woken(0);
    }
}

/// `run(fut)` answers `Err` on its first poll if the context is already done, without polling
/// `fut`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::run_is_err_on_first_poll_if_done(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn run_is_err_on_first_poll_if_done<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    cancel.cancel();
    let polled = Arc::new(AtomicBool::new(false));
    let flag = polled.clone();
    let fut = std::future::poll_fn(move |_| {
        flag.store(true, Ordering::SeqCst);
        Poll::Ready(1)
    });
    assert_eq!(Probe::new(ctx.run(fut)).assert_ready(), Err(Error::Canceled));
    assert!(
        !polled.load(Ordering::SeqCst),
        "run() polled the future of a done context"
    );
    let (expired, _e) = rt.background().with_timeout(std::time::Duration::ZERO);
    assert_eq!(
        Probe::new(expired.run(async { 1 })).assert_ready(),
        Err(Error::DeadlineExceeded)
    );
}

/// `run(fut)` answers `Ok` on its first poll if `fut` is ready at once on a live context.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::run_is_ok_on_first_poll_if_ready(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn run_is_ok_on_first_poll_if_ready<R: Runtime>(rt: &R) {
    let (ctx, _c) = rt.background().with_cancel();
    assert_eq!(Probe::new(ctx.run(async { 7 })).assert_ready(), Ok(7));
    let (timed, _t) = ctx.with_timeout(std::time::Duration::from_secs(3600));
    assert_eq!(Probe::new(timed.run(async { "x" })).assert_ready(), Ok("x"));
    assert_eq!(Probe::new(rt.background().run(async {})).assert_ready(), Ok(()));
    assert_eq!(rt.block_on(timed.run(async { 8 })), Ok(8));
}

/// When the context is done first, `run` answers `Err` and drops the future at that point.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::run_drops_the_future_when_the_ctx_wins(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn run_drops_the_future_when_the_ctx_wins<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    let dropped = Arc::new(AtomicBool::new(false));
    let mut p = Probe::new(ctx.run(DropFlag(dropped.clone())));
    p.assert_pending();
    cancel.cancel();
    p.assert_woken(1);
    assert!(!dropped.load(Ordering::SeqCst));
    assert_eq!(p.assert_ready(), Err(Error::Canceled));
    assert!(
        dropped.load(Ordering::SeqCst),
        "run() kept the future after the context won"
    );

    let (ctx, cancel) = rt.background().with_cancel();
    let dropped = Arc::new(AtomicBool::new(false));
    let run = ctx.run(DropFlag(dropped.clone()));
    let t = std::thread::spawn(move || cancel.cancel());
    assert_eq!(rt.block_on(run), Err(Error::Canceled));
    t.join().unwrap();
    assert!(dropped.load(Ordering::SeqCst));
}

/// A `run()` future that is dropped releases the waker it was polled with.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::dropped_run_releases_its_waker(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn dropped_run_releases_its_waker<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    let dropped = Arc::new(AtomicBool::new(false));
    let mut p = Probe::new(ctx.run(DropFlag(dropped.clone())));
    p.assert_pending();
    assert!(p.wakers_held() >= 1);
    p.drop_future();
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(p.wakers_held(), 0, "a dropped run() kept the waker");
    cancel.cancel();
    p.assert_woken(0);
}

/// `run_stream` yields `Ok(item)`s until the context is done, then one `Err`, then ends; if
/// the inner stream ends first, it just ends.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::run_stream_yields_items_then_one_err_then_ends(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn run_stream_yields_items_then_one_err_then_ends<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    let (tx, rx) = ::futures::channel::mpsc::unbounded::<u32>();
    tx.unbounded_send(1).unwrap();
    tx.unbounded_send(2).unwrap();
    let mut s = ctx.run_stream(rx);
    let next = |s: &mut ctx_core::RunStream<_>| Probe::new(s.next()).poll();
    assert_eq!(next(&mut s), Poll::Ready(Some(Ok(1))));
    assert_eq!(next(&mut s), Poll::Ready(Some(Ok(2))));
    assert_eq!(next(&mut s), Poll::Pending);
    cancel.cancel();
    assert_eq!(next(&mut s), Poll::Ready(Some(Err(Error::Canceled))));
    assert_eq!(next(&mut s), Poll::Ready(None));
    tx.unbounded_send(3).unwrap_or(()); // the receiver is gone or ignored: nothing more
    assert_eq!(next(&mut s), Poll::Ready(None));

    let (ctx, _c) = rt.background().with_cancel();
    let items: Vec<_> = rt.block_on(
        ctx.run_stream(::futures::stream::iter([4, 5]))
            .collect::<Vec<_>>(),
    );
    assert_eq!(items, vec![Ok(4), Ok(5)]);
}

/// `wait_blocking()` blocks until another thread cancels, then returns the error; it returns
/// at once on a done context.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::wait_blocking_returns_on_cancel_from_another_thread(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn wait_blocking_returns_on_cancel_from_another_thread<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    let (child, _c) = ctx.with_timeout(std::time::Duration::from_secs(3600));
    let waiters: Vec<_> = [ctx.clone(), child.clone(), child.with_value(1u8)]
        .into_iter()
        .map(|c| super::bg(move || c.wait_blocking()))
        .collect();
    assert!(
        !waiters.iter().any(|w| w.finished()),
        "wait_blocking returned before the cancel"
    );
    let canceler = super::bg(move || cancel.cancel());
    for w in waiters {
        assert_eq!(w.join("wait_blocking released by a cancel"), Error::Canceled);
    }
    canceler.join("the cancel returned");
    assert_eq!(ctx.wait_blocking(), Error::Canceled);
}
