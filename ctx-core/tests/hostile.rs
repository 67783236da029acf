//! Hostile input: extreme times, panicking after-funcs, re-entrant after-funcs and wakers,
//! custom contexts that panic or never finish. None of it may deadlock, abort or lose a
//! cancellation. See `docs/reliability.md` for the invariants each test guards.

use std::any::{Any, TypeId};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Once};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ctx_core::clock::Timer;
use ctx_core::{CancelHandle, Cause, Clock, Context, Ctx, Done, Error};

/// Panics raised on purpose carry this marker; the hook keeps them out of the test output.
const DELIBERATE: &str = "deliberate panic";

fn quiet_deliberate_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if !msg.is_some_and(|m| m.contains(DELIBERATE)) {
                default(info);
            }
        }));
    });
}

/// A clock whose time moves only when told, and whose timers never fire by themselves.
#[derive(Debug)]
struct FrozenClock {
    now: Mutex<Instant>,
    panic_in_sleep: bool,
}

impl FrozenClock {
    fn new(panic_in_sleep: bool) -> Arc<FrozenClock> {
        Arc::new(FrozenClock {
            now: Mutex::new(Instant::now()),
            panic_in_sleep,
        })
    }
    fn set(&self, t: Instant) {
        *self.now.lock().unwrap() = t;
    }
}

impl Clock for FrozenClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap()
    }
    fn sleep_until(&self, _deadline: Instant) -> Timer {
        if self.panic_in_sleep {
            panic!("{DELIBERATE}: sleep_until");
        }
        Box::pin(std::future::pending())
    }
}

/// A waker that records that it was woken and then runs an action, once.
struct ActionWaker {
    woken: AtomicBool,
    action: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl ActionWaker {
    fn new(action: impl FnOnce() + Send + 'static) -> Arc<ActionWaker> {
        Arc::new(ActionWaker {
            woken: AtomicBool::new(false),
            action: Mutex::new(Some(Box::new(action))),
        })
    }
}

impl Wake for ActionWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        let action = self.action.lock().unwrap().take();
        if let Some(action) = action {
            action();
        }
    }
}

fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut TaskContext::from_waker(waker))
}

/// Waits up to ten seconds for `cond`: the re-polls of a foreign `done()` run on ctx-core's
/// watcher thread, so what follows from them is not there at once.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::yield_now();
    }
}

fn cause_is(ctx: &Ctx, expected: &Cause) -> bool {
    ctx.cause().is_some_and(|c| Arc::ptr_eq(&c, expected))
}

fn cause_is_error(ctx: &Ctx, expected: Error) -> bool {
    ctx.cause()
        .is_some_and(|c| c.downcast_ref::<Error>() == Some(&expected))
}

fn a_cause(text: &str) -> Cause {
    Arc::new(std::io::Error::other(text.to_owned()))
}

// ===== extreme times =====

#[test]
fn a_timeout_of_duration_max_never_expires_and_never_panics() {
    let root = Ctx::background();
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let (ctx, _cancel) = root.with_timeout(Duration::MAX);
    let (with_cause, _c2) = root.with_timeout_cause(Duration::MAX, a_cause("never"));
    for c in [&ctx, &with_cause] {
        assert!(
            c.deadline().is_none_or(|d| d > far),
            "deadline {:?}",
            c.deadline()
        );
        assert_eq!(c.err(), None);
        let mut done = c.done();
        assert!(poll_once(&mut done, Waker::noop()).is_pending());
        let stop = c.after_func(|| panic!("an after-func of a never-expiring context ran"));
        assert!(stop.stop());
    }
    // A child of it with a real deadline still works.
    let (child, _c3) = ctx.with_timeout(Duration::ZERO);
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    assert_eq!(ctx.err(), None);
}

#[test]
fn a_deadline_far_in_the_past_is_born_deadline_exceeded() {
    let now = Instant::now();
    let past = [3600 * 24 * 365 * 30, 3600 * 24, 1]
        .into_iter()
        .find_map(|s| now.checked_sub(Duration::from_secs(s)))
        .unwrap_or(now);
    let why = a_cause("too late");
    let root = Ctx::background();
    let (plain, _c1) = root.with_deadline(past);
    let (caused, _c2) = root.with_deadline_cause(past, why.clone());
    assert_eq!(plain.err(), Some(Error::DeadlineExceeded));
    assert!(cause_is_error(&plain, Error::DeadlineExceeded));
    assert_eq!(caused.err(), Some(Error::DeadlineExceeded));
    assert!(cause_is(&caused, &why));
    // Children are born done with the same answers, after-funcs run at once.
    let (child, _c3) = caused.with_cancel();
    assert!(cause_is(&child, &why));
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let stop = child.with_value(1u8).after_func(move || {
        r.fetch_add(1, SeqCst);
    });
    assert_eq!(ran.load(SeqCst), 1);
    assert!(!stop.stop());
    assert_eq!(futures::executor::block_on(child.done()), Error::DeadlineExceeded);
    assert_eq!(child.wait_blocking(), Error::DeadlineExceeded);
}

#[test]
fn a_zero_timeout_is_born_done_and_a_cancel_afterwards_changes_nothing() {
    let root = Ctx::background();
    let (ctx, cancel) = root.with_timeout_cause(Duration::ZERO, a_cause("zero"));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    let before = ctx.cause().unwrap();
    cancel.cancel();
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert!(cause_is(&ctx, &before));
    assert_eq!(ctx.remaining(), Some(Duration::ZERO));
}

#[test]
fn a_deadline_equal_to_now_is_reached() {
    let clock = FrozenClock::new(false);
    let root = Ctx::background_with_clock(clock.clone());
    let now = clock.now();
    let (ctx, _c) = root.with_deadline(now);
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    // One tick before now is not reached; moving the clock onto it is.
    let later = now + Duration::from_millis(10);
    let (pending, cancel) = root.with_deadline(later);
    let (child, _cc) = pending.with_cancel();
    assert_eq!(pending.err(), None);
    clock.set(later);
    // Nobody looked before the cancel: the deadline still wins (lazy expiry).
    cancel.cancel();
    assert_eq!(pending.err(), Some(Error::DeadlineExceeded));
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn a_clock_whose_timer_panics_neither_unwinds_into_the_waiter_nor_hides_the_deadline() {
    quiet_deliberate_panics();
    let clock = FrozenClock::new(true);
    let root = Ctx::background_with_clock(clock.clone());
    let deadline = clock.now() + Duration::from_secs(1);
    let (ctx, _c) = root.with_deadline(deadline);
    let mut done = ctx.done();
    assert!(poll_once(&mut done, Waker::noop()).is_pending());
    let stop = ctx.after_func(|| {});
    clock.set(deadline);
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert!(!stop.stop(), "the lazy expiry ran the after-func");
    assert_eq!(
        poll_once(&mut done, Waker::noop()),
        Poll::Ready(Error::DeadlineExceeded)
    );
}

// ===== panicking after-funcs =====

#[test]
fn a_panicking_after_func_never_half_cancels_the_tree() {
    quiet_deliberate_panics();
    let root = ctx_testkit::MockClock::new().background(); // no timer thread under Miri
    let (top, cancel) = root.with_cancel_cause();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut leaves = Vec::new();
    let mut handles = Vec::new();
    for i in 0..50 {
        let (mid, h) = top.with_cancel();
        handles.push(h);
        let (leaf, h) = mid.with_value(i).with_timeout(Duration::from_secs(3600));
        handles.push(h);
        // Every third after-func panics; the others count.
        for ctx in [&top, &mid, &leaf] {
            let r = ran.clone();
            let _ = ctx.after_func(move || {
                if i % 3 == 0 {
                    panic!("{DELIBERATE}: after-func {i}");
                }
                r.fetch_add(1, SeqCst);
            });
        }
        leaves.push((mid, leaf));
    }
    let why = a_cause("shutdown");
    let unwound = catch_unwind(AssertUnwindSafe(|| cancel.cancel(why.clone()))).is_err();
    assert!(!unwound, "an after-func's panic unwound into cancel()");
    assert!(top.is_done());
    for (mid, leaf) in &leaves {
        assert!(cause_is(mid, &why) && cause_is(leaf, &why));
    }
    let panicking = (0..50).filter(|i| i % 3 == 0).count();
    assert_eq!(ran.load(SeqCst), 3 * (50 - panicking));
    // No lock poisoned: the same nodes still answer and derive; the tree still works.
    let (late, _c) = leaves[7].1.with_cancel();
    assert!(cause_is(&late, &why));
    let late_ran = Arc::new(AtomicBool::new(false));
    let l = late_ran.clone();
    let _ = late.after_func(move || l.store(true, SeqCst));
    assert!(late_ran.load(SeqCst));
    let (fresh, fresh_cancel) = root.with_cancel();
    let _ = fresh.after_func(|| panic!("{DELIBERATE}: fresh"));
    let unwound = catch_unwind(AssertUnwindSafe(|| drop(fresh_cancel))).is_err();
    assert!(
        !unwound,
        "an after-func's panic unwound into the drop of the last handle"
    );
    assert!(fresh.is_done());
}

#[test]
fn a_panicking_after_func_on_a_done_context_does_not_unwind_into_after_func() {
    quiet_deliberate_panics();
    let (ctx, cancel) = Ctx::background().with_cancel();
    cancel.cancel();
    let stop = catch_unwind(AssertUnwindSafe(|| {
        ctx.after_func(|| panic!("{DELIBERATE}: at once"))
    }))
    .expect("an after-func's panic unwound into after_func()");
    assert!(!stop.stop());
    assert!(ctx.is_done());
}

// ===== re-entrant after-funcs =====

#[test]
fn an_after_func_may_cancel_derive_register_stop_and_drop_in_the_same_tree() {
    let root = Ctx::background();
    let (parent, cancel_parent) = root.with_cancel();
    let (sibling, cancel_sibling) = parent.with_cancel_cause();
    let (target, target_cancel) = root.with_cancel();
    let (victim, victim_cancel) = root.with_cancel();
    let stopped_victim = victim.after_func(|| panic!("stopped from inside an after-func, must not run"));
    let stopped_victim = Arc::new(stopped_victim);
    let why = a_cause("from inside");
    let report = Arc::new(Mutex::new(Vec::<String>::new()));

    let (p, t, s, sv, r, w) = (
        parent.clone(),
        target.clone(),
        sibling.clone(),
        stopped_victim.clone(),
        report.clone(),
        why.clone(),
    );
    let target_cancel = Mutex::new(Some(target_cancel));
    let _ = parent.after_func(move || {
        let mut r = r.lock().unwrap();
        // derive from the context that is being canceled: born done
        let (born, _h) = p.with_cancel();
        r.push(format!("born {:?}", born.err()));
        // derive from a live context, and cancel it again
        let (live, h) = t.with_cancel();
        r.push(format!("live {:?}", live.err()));
        drop(h);
        r.push(format!("live after drop {:?}", live.err()));
        // cancel a sibling that is already done: no effect, no deadlock
        cancel_sibling.cancel(w.clone());
        r.push(format!("sibling cause is ours {}", cause_is(&s, &w)));
        // register on the done context: runs right here, nested
        let nested = Arc::new(AtomicBool::new(false));
        let n = nested.clone();
        let _ = p.after_func(move || n.store(true, SeqCst));
        r.push(format!("nested ran {}", nested.load(SeqCst)));
        // stop another registration, drop the last handle of another context
        r.push(format!("stop {}", sv.stop()));
        drop(target_cancel.lock().unwrap().take());
        r.push(format!("target {:?}", t.err()));
    });
    cancel_parent.cancel();
    victim_cancel.cancel();
    assert_eq!(
        *report.lock().unwrap(),
        [
            "born Some(Canceled)",
            "live None",
            "live after drop Some(Canceled)",
            "sibling cause is ours false",
            "nested ran true",
            "stop true",
            "target Some(Canceled)",
        ]
    );
    assert!(victim.is_done() && target.is_done());
    assert!(cause_is_error(&sibling, Error::Canceled));
}

#[test]
fn an_after_func_may_drop_the_last_reference_to_its_own_context() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let (child, child_cancel) = ctx.with_cancel();
    let slot = Arc::new(Mutex::new(Some((ctx, child_cancel))));
    let s = slot.clone();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let _ = child.after_func(move || {
        drop(s.lock().unwrap().take()); // the parent Ctx and the child's handle
        r.store(true, SeqCst);
    });
    drop(child);
    cancel.cancel();
    assert!(ran.load(SeqCst));
    assert!(slot.lock().unwrap().is_none());
}

// ===== re-entrant wakers =====

#[test]
fn a_waker_may_cancel_derive_and_drop_when_woken() {
    let root = Ctx::background();
    let (watched, cancel_watched) = root.with_cancel();
    let (other, cancel_other) = root.with_cancel();
    let (grand, _g) = other.with_cancel();
    let held = Arc::new(Mutex::new(Some((watched.clone(), other.clone()))));
    let seen = Arc::new(Mutex::new(None));
    let (h, s) = (held.clone(), seen.clone());
    let waker = ActionWaker::new(move || {
        let (w, o) = h.lock().unwrap().take().unwrap();
        let (child, _c) = w.with_cancel(); // derive from the context being canceled
        cancel_other.cancel(); // cancel another tree from inside the waker
        *s.lock().unwrap() = Some((child.err(), o.err()));
        drop((w, o)); // drop contexts from inside the waker
    });
    let waker_ref = Waker::from(waker.clone());
    let mut done = watched.done();
    assert!(poll_once(&mut done, &waker_ref).is_pending());
    drop(watched);
    cancel_watched.cancel();
    assert!(waker.woken.load(SeqCst));
    assert_eq!(
        *seen.lock().unwrap(),
        Some((Some(Error::Canceled), Some(Error::Canceled)))
    );
    assert_eq!(grand.err(), Some(Error::Canceled));
    assert_eq!(poll_once(&mut done, &waker_ref), Poll::Ready(Error::Canceled));
}

/// A waker's `clone` is the executor's code: it may use the very context it is registered with
/// (here it registers and stops an after-func, which takes the node's lock). A `Done` re-polled
/// by another task clones that task's waker before it locks, so nothing deadlocks.
#[test]
fn a_waker_whose_clone_uses_its_context_does_not_deadlock_a_re_poll() {
    use std::sync::mpsc;
    use std::task::{RawWaker, RawWakerVTable};

    struct Hook {
        ctx: Ctx,
        clones: AtomicUsize,
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    fn clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` is the leaked, never freed `Hook` every waker of this vtable carries.
        #[allow(unsafe_code)]
        let hook = unsafe { &*data.cast::<Hook>() };
        hook.clones.fetch_add(1, SeqCst);
        assert!(hook.ctx.after_func(|| {}).stop(), "registered, then stopped");
        RawWaker::new(data, &VTABLE)
    }
    fn noop(_: *const ()) {}

    let (ctx, cancel) = Ctx::background().with_cancel();
    // Freed at the end, once no waker points at it.
    let hook = Box::into_raw(Box::new(Hook {
        ctx: ctx.clone(),
        clones: AtomicUsize::new(0),
    }));
    let sent = std::sync::atomic::AtomicPtr::new(hook); // a pointer the thread may take
    let mut done = ctx.done();
    assert!(poll_once(&mut done, Waker::noop()).is_pending());
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        // SAFETY: the vtable's functions keep `RawWakerVTable`'s contract for a `Hook` that
        // outlives every waker made of it (clone hands out the same data; wake and drop do
        // nothing).
        #[allow(unsafe_code)]
        let waker = unsafe { Waker::from_raw(RawWaker::new(sent.into_inner().cast_const().cast(), &VTABLE)) };
        let polled = poll_once(&mut done, &waker);
        let _ = tx.send((polled, done));
    });
    let Ok((polled, mut done)) = rx.recv_timeout(Duration::from_secs(30)) else {
        // The thread holds the node's lock for good: dropping the handle would wait for it.
        std::mem::forget((ctx, cancel));
        panic!("the re-poll deadlocked on the waker's clone");
    };
    t.join().unwrap();
    assert!(polled.is_pending());
    // SAFETY: `hook` is alive (freed below).
    #[allow(unsafe_code)]
    let clones = unsafe { (*hook).clones.load(SeqCst) };
    assert_eq!(clones, 1, "the new task's waker, cloned once");
    cancel.cancel(); // takes the registered clone, whose wake does nothing
    assert_eq!(poll_once(&mut done, Waker::noop()), Poll::Ready(Error::Canceled));
    // SAFETY: made by `Box::into_raw` above; the cancel took the node's only waker made of it.
    #[allow(unsafe_code)]
    drop(unsafe { Box::from_raw(hook) });
}

#[test]
fn a_waker_may_drop_the_done_future_it_was_registered_with() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let slot: Arc<Mutex<Option<Done>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let waker = ActionWaker::new(move || drop(s.lock().unwrap().take()));
    let mut done = ctx.done();
    assert!(poll_once(&mut done, &Waker::from(waker.clone())).is_pending());
    *slot.lock().unwrap() = Some(done);
    cancel.cancel();
    assert!(waker.woken.load(SeqCst));
    assert!(slot.lock().unwrap().is_none());
    // The node is still usable after a Done was dropped during its own wake-up.
    let (child, _c) = ctx.with_cancel();
    assert!(child.is_done());
}

#[test]
fn a_waker_woken_by_a_deadline_may_cancel_its_own_context() {
    let clock = ctx_testkit::MockClock::new();
    let root = clock.background();
    let (ctx, cancel) = root.with_timeout(Duration::from_secs(1));
    let handle: Arc<Mutex<Option<CancelHandle>>> = Arc::new(Mutex::new(Some(cancel)));
    let h = handle.clone();
    let waker = ActionWaker::new(move || {
        let c = h.lock().unwrap().take().unwrap();
        c.cancel();
        drop(c);
    });
    let mut done = ctx.done();
    assert!(poll_once(&mut done, &Waker::from(waker.clone())).is_pending());
    clock.advance(Duration::from_secs(1));
    assert!(waker.woken.load(SeqCst), "the deadline woke the waiter");
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

// ===== hostile custom contexts =====

/// Which method of [`Hostile`] panics.
#[derive(Clone, Copy, Debug, PartialEq)]
enum PanicIn {
    Nothing,
    Deadline,
    Done,
    Err,
    Cause,
    Value,
}

/// A custom context that wraps a `Ctx` and panics in one method, or has a `done()` that never
/// completes or completes from a channel the test controls.
struct Hostile {
    inner: Ctx,
    panic_in: PanicIn,
    foreign: Option<Arc<Mutex<Option<futures::channel::oneshot::Receiver<Error>>>>>,
    never_done: bool,
}

impl Hostile {
    fn new(inner: &Ctx, panic_in: PanicIn) -> Hostile {
        Hostile {
            inner: inner.clone(),
            panic_in,
            foreign: None,
            never_done: false,
        }
    }
    fn check(&self, here: PanicIn) {
        if self.panic_in == here {
            panic!("{DELIBERATE}: {here:?}");
        }
    }
}

impl Context for Hostile {
    fn deadline(&self) -> Option<Instant> {
        self.check(PanicIn::Deadline);
        self.inner.deadline()
    }
    fn done(&self) -> Done {
        self.check(PanicIn::Done);
        if self.never_done {
            return Done::never();
        }
        match &self.foreign {
            Some(rx) => {
                let rx = rx.lock().unwrap().take();
                Done::new(async move {
                    match rx {
                        Some(rx) => rx.await.unwrap_or(Error::Canceled),
                        None => std::future::pending().await,
                    }
                })
            }
            None => self.inner.done(),
        }
    }
    fn err(&self) -> Option<Error> {
        self.check(PanicIn::Err);
        self.inner.err()
    }
    fn cause(&self) -> Option<Cause> {
        self.check(PanicIn::Cause);
        self.inner.cause()
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.check(PanicIn::Value);
        self.inner.value_any(key)
    }
}

#[test]
fn a_panic_in_a_custom_context_reaches_the_caller_and_nothing_deadlocks_afterwards() {
    quiet_deliberate_panics();
    for panic_in in [
        PanicIn::Deadline,
        PanicIn::Done,
        PanicIn::Err,
        PanicIn::Cause,
        PanicIn::Value,
    ] {
        let root = Ctx::background().with_value("root value");
        let (parent, cancel) = root.with_cancel();
        let hostile = Hostile::new(&parent, panic_in);
        let wrapped = catch_unwind(AssertUnwindSafe(|| Ctx::wrap(hostile)));
        if let Ok(wrapped) = wrapped {
            // The panic, if any, surfaces in the caller of the method that called it.
            let calls: [(&str, &dyn Fn()); 5] = [
                ("err", &|| assert!(wrapped.err().is_none())),
                ("cause", &|| assert!(wrapped.cause().is_none())),
                ("value", &|| {
                    assert_eq!(wrapped.value::<&str>(), Some(&"root value"))
                }),
                ("deadline", &|| assert_eq!(wrapped.deadline(), None)),
                ("derive", &|| drop(wrapped.with_cancel())),
            ];
            let panicked: Vec<&str> = calls
                .into_iter()
                .filter(|(_, call)| catch_unwind(AssertUnwindSafe(call)).is_err())
                .map(|(name, _)| name)
                .collect();
            let expected: &[&str] = match panic_in {
                PanicIn::Err => &["err"],
                PanicIn::Cause => &["cause"],
                _ => &[],
            };
            assert_eq!(panicked, expected, "{panic_in:?}");
            let (child, _c) = wrapped.with_cancel();
            cancel.cancel();
            assert_eq!(
                child.err(),
                Some(Error::Canceled),
                "{panic_in:?}: child of the wrap"
            );
        } else {
            assert!(
                matches!(panic_in, PanicIn::Deadline | PanicIn::Done | PanicIn::Value),
                "{panic_in:?}"
            );
            cancel.cancel();
        }
        // Nothing is poisoned or deadlocked: the tree keeps working.
        let (after, _c) = parent.with_cancel();
        assert_eq!(after.err(), Some(Error::Canceled), "{panic_in:?}");
        assert_eq!(parent.value::<&str>(), Some(&"root value"));
    }
}

#[test]
fn a_custom_context_whose_done_never_completes_deadlocks_nothing() {
    let (inner, cancel) = Ctx::background().with_cancel();
    let hostile = Hostile {
        never_done: true,
        ..Hostile::new(&inner, PanicIn::Nothing)
    };
    let wrapped = Ctx::wrap(hostile);
    let (before, _b) = wrapped.with_cancel();
    let mut done = wrapped.done();
    assert!(poll_once(&mut done, Waker::noop()).is_pending());
    cancel.cancel();
    // The wrap answers as the custom context does. Its children can only learn through
    // `done()`, which never completes (Go's rule: a parent whose `Done()` is nil never cancels
    // its children): those born before and after stay open, and canceling them still works.
    assert_eq!(wrapped.err(), Some(Error::Canceled));
    let (after, _a) = wrapped.with_cancel();
    assert_eq!(after.err(), None);
    assert_eq!(before.err(), None);
    drop(_b);
    assert_eq!(before.err(), Some(Error::Canceled));
    drop(_a);
    assert_eq!(after.err(), Some(Error::Canceled));
}

#[test]
fn a_foreign_done_that_is_pending_forever_is_released_when_the_wrap_is_dropped() {
    let (inner, _cancel) = Ctx::background().with_cancel();
    let (tx, rx) = futures::channel::oneshot::channel::<Error>();
    let hostile = Hostile {
        foreign: Some(Arc::new(Mutex::new(Some(rx)))),
        ..Hostile::new(&inner, PanicIn::Nothing)
    };
    let wrapped = Ctx::wrap(hostile);
    let (child, _c) = wrapped.with_cancel();
    assert_eq!(child.err(), None);
    drop((child, _c, wrapped));
    // The watcher dropped the receiver: the sender sees it.
    assert!(tx.is_canceled());
}

/// The watcher behind `Ctx::wrap` asks the custom context for `err()` and `cause()` when its
/// `done()` fires; a panic there is contained and the bridge node is still canceled (with the
/// `done()` future's error), so the children of the wrap do not stay open forever.
#[test]
#[cfg_attr(miri, ignore = "the foreign watcher thread would outlive the test")]
fn a_foreign_done_that_fires_cancels_children_even_if_the_custom_err_panics() {
    quiet_deliberate_panics();
    let (inner, cancel) = Ctx::background().with_cancel();
    let (tx, rx) = futures::channel::oneshot::channel::<Error>();
    let hostile = Hostile {
        foreign: Some(Arc::new(Mutex::new(Some(rx)))),
        ..Hostile::new(&inner, PanicIn::Err)
    };
    let wrapped = Ctx::wrap(hostile);
    let (child, _c) = wrapped.with_cancel();
    let _keep_inner_open = cancel;
    // The custom context's done() fires; its err() panics when the watcher asks.
    tx.send(Error::Canceled).unwrap();
    eventually("a cancellation was lost", || child.err() == Some(Error::Canceled));
}

/// A waker that panics when woken.
struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("{DELIBERATE}: waker");
    }
}

/// A waker that panics when `propagate` wakes it is contained: the other wakers are still woken
/// and the collected after-funcs still run (and the tree is fully canceled: every state is set
/// first).
#[test]
fn a_panicking_waker_does_not_half_cancel_the_tree_or_lose_after_funcs() {
    quiet_deliberate_panics();
    let (parent, cancel) = Ctx::background().with_cancel();
    let (child, _c) = parent.with_cancel();
    let mut bad = parent.done();
    assert!(poll_once(&mut bad, &Waker::from(Arc::new(PanickingWaker))).is_pending());
    let good = Arc::new(Flag::default());
    let mut waiting = child.done();
    assert!(poll_once(&mut waiting, &Waker::from(good.clone())).is_pending());
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let _ = child.after_func(move || r.store(true, SeqCst));
    let unwound = catch_unwind(AssertUnwindSafe(|| cancel.cancel())).is_err();
    // Whether or not the waker's panic reaches the canceler, the tree is fully canceled.
    assert!(parent.is_done() && child.is_done());
    assert!(
        good.0.load(SeqCst),
        "the other waiter was not woken (unwound: {unwound})"
    );
    assert!(ran.load(SeqCst), "the after-func was lost (unwound: {unwound})");
}

#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

/// A foreign context whose `done()` the test fires by hand.
struct Fired {
    tx: Mutex<Option<futures::channel::oneshot::Sender<Error>>>,
    rx: Mutex<Option<futures::channel::oneshot::Receiver<Error>>>,
    err: Mutex<Option<Error>>,
}

impl Fired {
    fn new() -> Arc<Fired> {
        let (tx, rx) = futures::channel::oneshot::channel();
        Arc::new(Fired {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            err: Mutex::new(None),
        })
    }
    fn fire(&self) {
        *self.err.lock().unwrap() = Some(Error::Canceled);
        let _ = self.tx.lock().unwrap().take().unwrap().send(Error::Canceled);
    }
}

struct FiredCtx(Arc<Fired>);

impl Context for FiredCtx {
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn done(&self) -> Done {
        let rx = self.0.rx.lock().unwrap().take();
        Done::new(async move {
            match rx {
                Some(rx) => rx.await.unwrap_or(Error::Canceled),
                None => std::future::pending().await,
            }
        })
    }
    fn err(&self) -> Option<Error> {
        *self.0.err.lock().unwrap()
    }
    fn cause(&self) -> Option<Cause> {
        self.err().map(|e| Arc::new(e) as Cause)
    }
    fn value_any(&self, _key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        None
    }
}

/// The watcher of a foreign `done()` belongs to the bridge node behind the wrap, not to the
/// wrap: a `Done` (or an after-func) taken from the wrap keeps the bridge, and so the watcher,
/// alive after the last `Ctx` of the wrap is dropped.
#[test]
#[cfg_attr(miri, ignore = "the foreign watcher thread would outlive the test")]
fn a_done_taken_from_a_foreign_wrap_completes_after_the_wrap_is_dropped() {
    let fired = Fired::new();
    let mut done = Ctx::wrap(FiredCtx(fired.clone())).done(); // the wrap is a temporary
    let flag = Arc::new(Flag::default());
    assert!(poll_once(&mut done, &Waker::from(flag.clone())).is_pending());
    fired.fire();
    eventually("lost wake-up: the foreign context is done", || {
        flag.0.load(SeqCst)
    });
    assert_eq!(poll_once(&mut done, Waker::noop()), Poll::Ready(Error::Canceled));
}

#[test]
#[cfg_attr(miri, ignore = "the foreign watcher thread would outlive the test")]
fn an_after_func_on_a_foreign_wrap_runs_after_the_wrap_is_dropped() {
    let fired = Fired::new();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let _stop = Ctx::wrap(FiredCtx(fired.clone())).after_func(move || r.store(true, SeqCst));
    fired.fire();
    eventually("the after-func was lost", || ran.load(SeqCst));
}

#[test]
#[cfg_attr(miri, ignore = "the foreign watcher thread would outlive the test")]
fn a_foreign_wrap_that_is_kept_cancels_its_children_when_it_fires() {
    let fired = Fired::new();
    let wrapped = Ctx::wrap(FiredCtx(fired.clone()));
    let (child, _c) = wrapped.with_cancel();
    let mut done = wrapped.done();
    let flag = Arc::new(Flag::default());
    assert!(poll_once(&mut done, &Waker::from(flag.clone())).is_pending());
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let _stop = wrapped.after_func(move || r.store(true, SeqCst));
    fired.fire();
    assert_eq!(
        wrapped.err(),
        Some(Error::Canceled),
        "the wrap answers as the custom context"
    );
    // The watcher re-polls a foreign done() on its own thread: the rest follows shortly.
    eventually("the waiter on the wrap was not woken", || flag.0.load(SeqCst));
    eventually("the after-func on the wrap did not run", || ran.load(SeqCst));
    assert_eq!(child.err(), Some(Error::Canceled));
}

/// Holds ctx-core's watcher thread inside a poll until dropped, so what is queued behind it
/// waits deterministically.
struct WatcherBlocker {
    release: Arc<(Mutex<bool>, std::sync::Condvar)>,
    _wrap: Ctx,
}

impl WatcherBlocker {
    fn start() -> WatcherBlocker {
        struct Gate {
            waker: Arc<Mutex<Option<Waker>>>,
            entered: std::sync::mpsc::Sender<()>,
            release: Arc<(Mutex<bool>, std::sync::Condvar)>,
            polled: bool,
        }
        impl Future for Gate {
            type Output = Error;
            fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
                if !std::mem::replace(&mut self.polled, true) {
                    *self.waker.lock().unwrap() = Some(cx.waker().clone()); // inline in `wrap`
                    return Poll::Pending;
                }
                let _ = self.entered.send(()); // on the watcher thread: hold it
                let (lock, cv) = &*self.release;
                let _g = cv
                    .wait_while(lock.lock().unwrap(), |released| !*released)
                    .unwrap();
                Poll::Ready(Error::Canceled)
            }
        }
        struct Gated(Mutex<Option<Gate>>);
        impl Context for Gated {
            fn deadline(&self) -> Option<Instant> {
                None
            }
            fn done(&self) -> Done {
                match self.0.lock().unwrap().take() {
                    Some(gate) => Done::new(gate),
                    None => Done::never(),
                }
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
        let waker = Arc::new(Mutex::new(None));
        let release = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let (entered, on_entered) = std::sync::mpsc::channel();
        let gate = Gate {
            waker: waker.clone(),
            entered,
            release: release.clone(),
            polled: false,
        };
        let wrap = Ctx::wrap(Gated(Mutex::new(Some(gate))));
        let first = waker.lock().unwrap().take().expect("the first poll was inline");
        first.wake(); // the re-poll goes to the watcher thread, and blocks there
        on_entered
            .recv_timeout(Duration::from_secs(10))
            .expect("the watcher thread polled the gate");
        WatcherBlocker { release, _wrap: wrap }
    }
}

impl Drop for WatcherBlocker {
    fn drop(&mut self) {
        *self.release.0.lock().unwrap() = true;
        self.release.1.notify_all();
    }
}

/// API.md: a child of an already-done custom parent is born done at once. For a foreign wrap
/// the bridge node is canceled by the watcher thread, a moment later; deriving asks the custom
/// context's `err()` first, so the child is born done even before that thread has run.
#[test]
#[cfg_attr(miri, ignore = "the foreign watcher thread would outlive the test")]
fn a_child_of_a_done_foreign_wrap_is_born_done_at_once() {
    let fired = Fired::new();
    let wrapped = Ctx::wrap(FiredCtx(fired.clone()));
    let blocker = WatcherBlocker::start();
    fired.fire(); // its re-poll is queued behind the blocker
    assert_eq!(wrapped.err(), Some(Error::Canceled));
    let (child, _c) = wrapped.with_cancel();
    let born = child.err();
    drop(blocker);
    assert_eq!(born, Some(Error::Canceled), "born open under a done parent");
}

/// A clock the test moves by hand, whose `trap`-th next `now()` blocks until `release()`:
/// ctx-core reads the clock in the middle of a cancel's walk down the tree, so this holds a
/// cancel half-way through, deterministically.
#[derive(Debug)]
struct TrapClock {
    base: Instant,
    offset_ms: std::sync::atomic::AtomicU64,
    trap: AtomicUsize,
    trapped: Mutex<bool>,
    gate: (Mutex<bool>, std::sync::Condvar),
}

impl TrapClock {
    fn new() -> Arc<TrapClock> {
        Arc::new(TrapClock {
            base: Instant::now(),
            offset_ms: std::sync::atomic::AtomicU64::new(0),
            trap: AtomicUsize::new(0),
            trapped: Mutex::new(false),
            gate: (Mutex::new(false), std::sync::Condvar::new()),
        })
    }
    fn set_ms(&self, ms: u64) {
        self.offset_ms.store(ms, SeqCst);
    }
    fn release(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }
}

impl Clock for TrapClock {
    fn now(&self) -> Instant {
        if self.trap.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)) == Ok(1) {
            *self.trapped.lock().unwrap() = true;
            let g = self.gate.0.lock().unwrap();
            drop(self.gate.1.wait_while(g, |open| !*open).unwrap());
        }
        self.base + Duration::from_millis(self.offset_ms.load(SeqCst))
    }
    fn sleep_until(&self, _deadline: Instant) -> Timer {
        Box::pin(std::future::pending())
    }
}

/// A cancel reads the clock (user code) before it changes anything. Held inside that read, the
/// cancel has not marked anything yet; a lazy expiry from another thread meanwhile wins, and the
/// cancel then finds the tree done and leaves it as it is: every answer agrees with its parent.
/// (Before, the clock was read half-way down the walk, with the parent already `Canceled`.)
#[test]
fn a_cancel_held_in_its_clock_read_has_changed_nothing_yet() {
    let clock = TrapClock::new();
    let root = Ctx::background_with_clock(clock.clone());
    let (parent, cancel) = root.with_deadline(clock.now() + Duration::from_millis(10));
    let (plain, _p) = parent.with_cancel();
    let (timed, _t) = parent.with_deadline(clock.now() + Duration::from_millis(5));
    clock.trap.store(2, SeqCst); // the cancel's own deadline check, then the read before the walk
    let canceler = std::thread::spawn(move || cancel.cancel()); // at 0 ms
    eventually("the cancel reached the clock", || *clock.trapped.lock().unwrap());
    assert_eq!(
        parent.err(),
        None,
        "the cancel changed something before its clock read"
    );
    assert_eq!(plain.err(), None);
    clock.set_ms(20); // both deadlines pass while the cancel is held
    let seen = plain.err();
    clock.release();
    canceler.join().unwrap();
    assert_eq!(seen, Some(Error::DeadlineExceeded));
    assert_eq!(parent.err(), Some(Error::DeadlineExceeded));
    assert_eq!(plain.err(), Some(Error::DeadlineExceeded));
    assert_eq!(timed.err(), Some(Error::DeadlineExceeded));
}

/// A clock that panics on the `n`-th `now()` from when it is armed.
#[derive(Debug)]
struct PanicClock {
    base: Instant,
    countdown: AtomicUsize,
}

impl Clock for PanicClock {
    fn now(&self) -> Instant {
        if self.countdown.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)) == Ok(1) {
            panic!("{DELIBERATE}: now");
        }
        self.base
    }
    fn sleep_until(&self, _deadline: Instant) -> Timer {
        Box::pin(std::future::pending())
    }
}

/// Issue 10, point 5: a `Clock::now()` that panics during a cancel leaves the tree either fully
/// canceled (after-funcs run, waiters woken, descendants done) or untouched, in which case a
/// second `cancel()` completes it — never half-canceled. Tried with the panic at every clock
/// read the cancel makes.
#[test]
fn a_clock_that_panics_during_a_cancel_never_half_cancels_the_tree() {
    quiet_deliberate_panics();
    for n in 1..=4 {
        let clock = Arc::new(PanicClock {
            base: Instant::now(),
            countdown: AtomicUsize::new(0),
        });
        let root = Ctx::background_with_clock(clock.clone());
        let (parent, cancel) = root.with_timeout(Duration::from_secs(60));
        let (child, _c) = parent.with_cancel();
        let (grandchild, _g) = child.with_timeout(Duration::from_secs(30)); // a deadline of its own
        let ran = Arc::new(AtomicUsize::new(0));
        let afters: Vec<_> = [&parent, &child, &grandchild]
            .into_iter()
            .map(|ctx| {
                let r = ran.clone();
                ctx.after_func(move || {
                    r.fetch_add(1, SeqCst);
                })
            })
            .collect();
        let woken = Arc::new(Flag::default());
        let mut waiting = grandchild.done();
        assert!(poll_once(&mut waiting, &Waker::from(woken.clone())).is_pending());

        clock.countdown.store(n, SeqCst);
        let unwound = catch_unwind(AssertUnwindSafe(|| cancel.cancel())).is_err();
        clock.countdown.store(0, SeqCst);
        let all = [&parent, &child, &grandchild].map(|c| c.err());
        if all.iter().all(Option::is_some) {
            assert_eq!(ran.load(SeqCst), 3, "n={n}: done, but after-funcs were lost");
            assert!(woken.0.load(SeqCst), "n={n}: done, but the waiter sleeps");
        } else {
            assert!(unwound, "n={n}: the cancel returned normally with the tree open");
            assert_eq!(all, [None; 3], "n={n}: half-canceled: {all:?}");
            assert_eq!(ran.load(SeqCst), 0, "n={n}: after-funcs ran on an open tree");
            assert!(!woken.0.load(SeqCst), "n={n}: woken on an open tree");
            cancel.cancel(); // the clock behaves now: the second cancel completes it
        }
        assert_eq!(
            all_errs(&[&parent, &child, &grandchild]),
            [Some(Error::Canceled); 3],
            "n={n}"
        );
        assert_eq!(ran.load(SeqCst), 3, "n={n}");
        assert!(woken.0.load(SeqCst), "n={n}");
        drop(afters);
    }
}

/// The same through a merged context, whose deadline (from its other parent) the walk compares
/// with the clock: with the clock read once before the walk, a panic at any read leaves the
/// merge either done with the rest or open with the rest, never behind.
#[test]
fn a_clock_that_panics_during_a_cancel_never_half_cancels_a_merge() {
    quiet_deliberate_panics();
    for n in 1..=4 {
        let clock = Arc::new(PanicClock {
            base: Instant::now(),
            countdown: AtomicUsize::new(0),
        });
        let root = Ctx::background_with_clock(clock.clone());
        let (parent, cancel) = root.with_timeout(Duration::from_secs(60));
        let (child, _c) = parent.with_cancel();
        let (other, _o) = root.with_timeout(Duration::from_secs(30));
        let (merged, _m) = child.with_merged(&other); // its deadline comes from `other`
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let after = merged.after_func(move || {
            r.fetch_add(1, SeqCst);
        });

        clock.countdown.store(n, SeqCst);
        let unwound = catch_unwind(AssertUnwindSafe(|| cancel.cancel())).is_err();
        clock.countdown.store(0, SeqCst);
        let all = [&parent, &child, &merged].map(|c| c.err());
        if all.iter().all(Option::is_some) {
            assert_eq!(ran.load(SeqCst), 1, "n={n}: done, but the after-func was lost");
        } else {
            assert!(unwound, "n={n}: the cancel returned normally with the tree open");
            assert_eq!(all, [None; 3], "n={n}: half-canceled: {all:?}");
            assert_eq!(ran.load(SeqCst), 0, "n={n}: the after-func ran on an open tree");
            cancel.cancel();
        }
        assert_eq!(
            all_errs(&[&parent, &child, &merged]),
            [Some(Error::Canceled); 3],
            "n={n}"
        );
        assert_eq!(ran.load(SeqCst), 1, "n={n}");
        assert_eq!(
            other.err(),
            None,
            "n={n}: a merge's cancel never reaches its other parent"
        );
        drop(after);
    }
}

fn all_errs(ctxs: &[&Ctx; 3]) -> [Option<Error>; 3] {
    ctxs.map(Ctx::err)
}
