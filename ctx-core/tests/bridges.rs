//! The bridge behind `Ctx::wrap` of a custom context (issue 10): a done foreign context is
//! done for every context derived from it at once, not when the watcher thread gets to it;
//! children take the custom's own `err()`/`cause()` when its `done()` fires, even when that
//! `done()` is another context's; a custom that can call back (`Context::on_done`) needs no
//! watcher. See `docs/reliability.md`.
//!
//! The tests read the process-wide watcher counter and hold the one watcher thread, so they
//! run one at a time (`SERIAL`).

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ctx_core::test_util::watchers_started;
use ctx_core::{Cause, Context, Ctx, Done, Error};
use ctx_testkit::Passthrough;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn poll_once(done: &mut Done, waker: &Waker) -> Poll<Error> {
    Pin::new(done).poll(&mut TaskContext::from_waker(waker))
}

#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

fn a_cause(text: &str) -> Cause {
    Arc::new(std::io::Error::other(text.to_owned()))
}

fn cause_is(ctx: &Ctx, expected: &Cause) -> bool {
    ctx.cause().is_some_and(|c| Arc::ptr_eq(&c, expected))
}

type Callback = Box<dyn FnOnce() + Send>;

/// A context that is not a `Ctx`: done when the test fires it. Its `done()` is a future of its
/// own (woken through a oneshot channel); with `calls_back` it also implements `on_done`.
#[derive(Default)]
struct Switch {
    state: Mutex<SwitchState>,
    calls_back: bool,
}

#[derive(Default)]
struct SwitchState {
    outcome: Option<(Error, Cause)>,
    senders: Vec<futures::channel::oneshot::Sender<()>>,
    callbacks: Vec<Option<Callback>>,
}

impl Switch {
    fn new(calls_back: bool) -> Arc<Switch> {
        Arc::new(Switch {
            calls_back,
            ..Switch::default()
        })
    }

    fn fire(&self, err: Error, cause: &Cause) {
        let (senders, callbacks) = {
            let mut s = self.state.lock().unwrap();
            s.outcome = Some((err, cause.clone()));
            (std::mem::take(&mut s.senders), std::mem::take(&mut s.callbacks))
        };
        // After unlocking, as `on_done`'s contract asks.
        senders.into_iter().for_each(|tx| {
            let _ = tx.send(());
        });
        callbacks.into_iter().flatten().for_each(|f| f());
    }

    fn live_callbacks(&self) -> usize {
        self.state.lock().unwrap().callbacks.iter().flatten().count()
    }
}

struct SwitchCtx(Arc<Switch>);

impl Context for SwitchCtx {
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn done(&self) -> Done {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        self.0.state.lock().unwrap().senders.push(tx);
        Done::new(async move {
            let _ = rx.await;
            Error::Canceled
        })
    }
    fn err(&self) -> Option<Error> {
        self.0.state.lock().unwrap().outcome.as_ref().map(|o| o.0)
    }
    fn cause(&self) -> Option<Cause> {
        self.0.state.lock().unwrap().outcome.as_ref().map(|o| o.1.clone())
    }
    fn value_any(&self, _key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        None
    }
    fn on_done(&self, f: Callback) -> Option<Box<dyn FnOnce() -> bool + Send>> {
        if !self.0.calls_back {
            return None;
        }
        let mut s = self.0.state.lock().unwrap();
        s.callbacks.push(Some(f));
        let (switch, at) = (self.0.clone(), s.callbacks.len() - 1);
        Some(Box::new(move || {
            let f = switch.state.lock().unwrap().callbacks[at].take();
            f.is_some()
        }))
    }
}

/// Holds ctx-core's one watcher thread inside a poll until dropped, so that the re-polls of
/// foreign `done()` futures queued behind it wait: what a test sees meanwhile is what the lazy
/// checks give, deterministically.
struct HoldWatcher {
    release: Arc<(Mutex<bool>, Condvar)>,
    _wrap: Ctx,
}

impl HoldWatcher {
    fn start() -> HoldWatcher {
        /// A custom context whose `done()` is the gate.
        struct Gated(Mutex<Option<Done>>);
        impl Context for Gated {
            fn deadline(&self) -> Option<Instant> {
                None
            }
            fn done(&self) -> Done {
                self.0.lock().unwrap().take().unwrap_or_else(Done::never)
            }
            fn err(&self) -> Option<Error> {
                None
            }
            fn cause(&self) -> Option<Cause> {
                None
            }
            fn value_any(&self, _key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
                None
            }
        }
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let first_waker = Arc::new(Mutex::new(None::<Waker>));
        let (entered, on_entered) = mpsc::channel();
        let (r, w) = (release.clone(), first_waker.clone());
        let mut polled = false;
        let gate = std::future::poll_fn(move |cx| {
            if !std::mem::replace(&mut polled, true) {
                *w.lock().unwrap() = Some(cx.waker().clone()); // the first poll, inline in `wrap`
                return Poll::Pending;
            }
            let _ = entered.send(()); // on the watcher thread: hold it there
            let (lock, cv) = &*r;
            drop(
                cv.wait_while(lock.lock().unwrap(), |released| !*released)
                    .unwrap(),
            );
            Poll::Ready(Error::Canceled)
        });
        let wrap = Ctx::wrap(Gated(Mutex::new(Some(Done::new(gate)))));
        let waker = first_waker.lock().unwrap().take().expect("polled once in `wrap`");
        waker.wake(); // the re-poll goes to the watcher thread, and blocks there
        on_entered
            .recv_timeout(Duration::from_secs(10))
            .expect("the watcher thread polled the gate");
        HoldWatcher { release, _wrap: wrap }
    }
}

impl Drop for HoldWatcher {
    fn drop(&mut self) {
        *self.release.0.lock().unwrap() = true;
        self.release.1.notify_all();
    }
}

/// Issue 10, point 3 (Go: a value child's `Err()` is its parent's). With the watcher thread
/// held, a fired foreign context is done, with its own error and cause, for everything
/// derived from it: value children answer `err()`/`cause()`, their `with_cancel` children are
/// born done, `after_func` runs at once, `done()` is ready on its first poll and
/// `wait_blocking` returns.
#[test]
#[cfg_attr(
    miri,
    ignore = "holds the foreign watcher thread, which would outlive the test"
)]
fn a_done_foreign_context_is_done_at_once_for_everything_derived_from_it() {
    let _serial = serial();
    let switch = Switch::new(false);
    let wrapped = Ctx::wrap(SwitchCtx(switch.clone()));
    let value = wrapped.with_value(1u8);
    let deeper = value.with_value(2u16);
    let (before, _b) = deeper.with_cancel(); // attached before the fire: the watcher's to cancel
    let hold = HoldWatcher::start();
    let why = a_cause("foreign");
    switch.fire(Error::DeadlineExceeded, &why); // its re-poll waits behind `hold`

    assert_eq!(value.err(), Some(Error::DeadlineExceeded), "value child");
    assert!(deeper.is_done(), "value child of a value child");
    assert!(cause_is(&deeper, &why), "the custom's own cause");
    let (born, _c) = deeper.with_cancel();
    assert_eq!(
        born.err(),
        Some(Error::DeadlineExceeded),
        "born open under a done parent"
    );
    assert!(cause_is(&born, &why));
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let _stop = value.after_func(move || r.store(true, SeqCst));
    assert!(ran.load(SeqCst), "after_func on a done context runs at once");
    let mut done = deeper.done();
    assert_eq!(
        poll_once(&mut done, Waker::noop()),
        Poll::Ready(Error::DeadlineExceeded)
    );
    assert_eq!(value.wait_blocking(), Error::DeadlineExceeded);
    // The child attached before the fire was canceled with the bridge, at once too.
    assert_eq!(before.err(), Some(Error::DeadlineExceeded));
    drop(hold);
}

/// A timed child below a foreign context asks the bridge above before its own deadline: its
/// `err()`, asked first, is the foreign outcome, though its deadline, an hour away, is proven
/// ahead by a coarse reading (the fast path of `err()` skips only nodes with nothing above).
#[test]
#[cfg_attr(
    miri,
    ignore = "holds the foreign watcher thread, which would outlive the test"
)]
fn a_timed_child_of_a_fired_foreign_context_is_done_when_first_asked() {
    let _serial = serial();
    let switch = Switch::new(false);
    let wrapped = Ctx::wrap(SwitchCtx(switch.clone()));
    let (timed, _t) = wrapped
        .with_value(1u8)
        .with_timeout(std::time::Duration::from_secs(3600));
    assert_eq!(timed.err(), None);
    let hold = HoldWatcher::start();
    let why = a_cause("foreign");
    switch.fire(Error::Canceled, &why);
    assert_eq!(
        timed.err(),
        Some(Error::Canceled),
        "asked before anything above it"
    );
    assert!(cause_is(&timed, &why));
    drop(hold);
}

/// Issue 10, point 3, for waiters: a waiter that nobody polls is woken when anyone asks.
#[test]
#[cfg_attr(
    miri,
    ignore = "holds the foreign watcher thread, which would outlive the test"
)]
fn asking_a_value_child_of_a_fired_foreign_context_wakes_its_waiters() {
    let _serial = serial();
    let switch = Switch::new(false);
    let wrapped = Ctx::wrap(SwitchCtx(switch.clone()));
    let value = wrapped.with_value(1u8);
    let mut waiting = value.done();
    let woken = Arc::new(Flag::default());
    assert!(poll_once(&mut waiting, &Waker::from(woken.clone())).is_pending());
    let hold = HoldWatcher::start();
    switch.fire(Error::Canceled, &a_cause("x"));
    assert!(
        !woken.0.load(SeqCst),
        "the watcher is held: nobody has looked yet"
    );
    assert!(value.is_done());
    assert!(
        woken.0.load(SeqCst),
        "the lazy check canceled the bridge and woke its waiter"
    );
    drop(hold);
}

/// A context whose `done()` is one `Ctx`'s and whose `err()`/`cause()` are another's, with the
/// values of the first.
struct Mixed {
    done_of: Ctx,
    answers_of: Ctx,
}

impl ctx_core::Forward for Mixed {
    fn inner(&self) -> &Ctx {
        &self.done_of
    }
    fn err(&self) -> Option<Error> {
        self.answers_of.err()
    }
    fn cause(&self) -> Option<Cause> {
        self.answers_of.cause()
    }
}

/// API.md, second wave: `Ctx::wrap(x)` where `x.done()` is one context's and `x.err()`/
/// `x.cause()` another's. Children follow `x.done()` (Go's rule), and take `x`'s own answers
/// when it fires: here `DeadlineExceeded` with `x`'s cause, though the context whose `done()`
/// fired was `Canceled` without one. (Linked straight to that context, they took its answers.)
#[test]
fn children_of_a_wrap_take_its_own_err_and_cause_when_its_done_fires() {
    let _serial = serial();
    let watchers = watchers_started();
    let why = a_cause("the answers' own");
    let (done_of, cancel) = Ctx::background().with_cancel();
    let (answers_of, _a) = Ctx::background().with_timeout_cause(Duration::ZERO, why.clone());
    let wrapped = Ctx::wrap(Mixed { done_of, answers_of });
    let (child, _c) = wrapped.with_cancel();
    let value = wrapped.with_value(1u8);
    let (grandchild, _g) = value.with_cancel();
    assert_eq!(
        wrapped.err(),
        Some(Error::DeadlineExceeded),
        "the wrap answers as x does"
    );
    assert_eq!(
        child.err(),
        None,
        "x.done() has not fired: its children are open (Go)"
    );
    assert_eq!(value.err(), None);

    cancel.cancel(); // x.done() fires
    for (name, ctx) in [("child", &child), ("value", &value), ("grandchild", &grandchild)] {
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded), "{name}");
        assert!(
            cause_is(ctx, &why),
            "{name} took the cause of the context whose done() fired"
        );
    }
    let (born, _b) = value.with_cancel();
    assert!(cause_is(&born, &why), "born done, with x's cause");
    assert_eq!(watchers_started(), watchers, "a Ctx's done() needs no watcher");
}

/// Issue 10, also found: a custom context that calls back (`Context::on_done`, Go's
/// `afterFuncer`) is wrapped with no watcher, and its callback cancels the children inline,
/// with the custom's own answers.
#[test]
fn a_wrap_whose_context_calls_back_starts_no_watcher_and_cancels_children_in_the_callback() {
    let _serial = serial();
    let watchers = watchers_started();
    let switch = Switch::new(true);
    let wrapped = Ctx::wrap(SwitchCtx(switch.clone()));
    assert_eq!(watchers_started(), watchers, "no watcher started");
    assert_eq!(switch.live_callbacks(), 1, "one registration for the wrap");
    let (child, _c) = wrapped.with_cancel();
    let value = wrapped.with_value(1u8);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let _stop = value.after_func(move || {
        r.fetch_add(1, SeqCst);
    });
    let mut waiting = child.done();
    let woken = Arc::new(Flag::default());
    assert!(poll_once(&mut waiting, &Waker::from(woken.clone())).is_pending());

    let why = a_cause("switched off");
    switch.fire(Error::Canceled, &why);
    // Inside `fire`, on this thread: no waiting for anybody.
    assert_eq!(ran.load(SeqCst), 1, "the after-func ran in the callback");
    assert!(woken.0.load(SeqCst), "the waiter was woken in the callback");
    assert_eq!(child.err(), Some(Error::Canceled));
    assert!(
        cause_is(&child, &why) && cause_is(&value, &why),
        "the custom's own cause"
    );
    assert_eq!(watchers_started(), watchers, "still no watcher");
}

/// The `on_done` registration lasts as long as the bridge: it is stopped when the wrap (and
/// everything derived from it) is dropped, so a long-lived custom context does not collect
/// callbacks of dead wraps.
#[test]
fn the_on_done_registration_is_stopped_when_the_wrap_is_dropped() {
    let _serial = serial();
    let switch = Switch::new(true);
    let wrapped = Ctx::wrap(SwitchCtx(switch.clone()));
    let (child, _c) = wrapped.with_cancel();
    assert_eq!(switch.live_callbacks(), 1);
    drop(wrapped);
    assert_eq!(switch.live_callbacks(), 1, "the child still depends on it");
    drop((child, _c));
    assert_eq!(switch.live_callbacks(), 0, "stopped with the bridge");
    // A custom that is done already is not asked to call back at all.
    switch.fire(Error::Canceled, &a_cause("x"));
    let late = Ctx::wrap(SwitchCtx(switch.clone()));
    assert_eq!(late.with_value(1u8).err(), Some(Error::Canceled));
    assert_eq!(switch.live_callbacks(), 0);
}

/// Asking the wrap itself is asking too: its children attached before the fire are canceled
/// then, without the watcher thread. And asking a child asks the wrap above it (invariant 16).
#[test]
#[cfg_attr(
    miri,
    ignore = "holds the foreign watcher thread, which would outlive the test"
)]
fn asking_the_wrap_itself_cancels_its_children() {
    let _serial = serial();
    let switch = Switch::new(false);
    let wrapped = Ctx::wrap(SwitchCtx(switch.clone()));
    let (child, _c) = wrapped.with_cancel();
    let (grandchild, _g) = child.with_cancel();
    let hold = HoldWatcher::start();
    switch.fire(Error::Canceled, &a_cause("x"));
    assert_eq!(wrapped.err(), Some(Error::Canceled));
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(grandchild.cause().map(|c| c.to_string()), Some("x".into()));

    let switch = Switch::new(false);
    let wrapped = Ctx::wrap(SwitchCtx(switch.clone()));
    let (child, _c) = wrapped.with_cancel();
    let (grandchild, _g) = child.with_cancel();
    switch.fire(Error::Canceled, &a_cause("y"));
    assert_eq!(
        grandchild.err(),
        Some(Error::Canceled),
        "asking a grandchild asks the wrap, with the watcher held"
    );
    assert_eq!(child.cause().map(|c| c.to_string()), Some("y".into()));
    drop(hold);
}

/// A wrap of a wrap (of a wrap) of a foreign context: asking a context derived from the top
/// reaches the foreign context at the bottom in one step, and its cancel resolves every relay
/// in between, with the foreign context's own cause.
#[test]
#[cfg_attr(
    miri,
    ignore = "holds the foreign watcher thread, which would outlive the test"
)]
fn wraps_of_a_done_foreign_context_are_done_at_once_too() {
    let _serial = serial();
    let switch = Switch::new(false);
    let foreign = Ctx::wrap(SwitchCtx(switch.clone()));
    let middle = Ctx::wrap(Passthrough(foreign.with_value(1u8)));
    let top = Ctx::wrap(Passthrough(middle.clone()));
    let value = top.with_value(2u8);
    let (child, _c) = middle.with_cancel();
    let hold = HoldWatcher::start();
    let why = a_cause("at the bottom");
    switch.fire(Error::Canceled, &why);
    assert_eq!(value.err(), Some(Error::Canceled), "a value child of the top");
    assert!(cause_is(&value, &why));
    assert_eq!(
        child.err(),
        Some(Error::Canceled),
        "a child of the middle, resolved with it"
    );
    assert!(cause_is(&top, &why));
    drop(hold);
}
