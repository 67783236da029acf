//! `Forward`: a type that wraps a `Ctx` and overrides one method inherits the others from it,
//! and what it overrides is what `Ctx::wrap` and its children see.

use std::any::{Any, TypeId};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ctx_core::test_util::{done_inline, watchers_started};
use ctx_core::{Cause, Context, Ctx, Done, Error, Forward};
use ctx_testkit::MockClock;
use futures::FutureExt;
use futures::channel::oneshot;

/// The watcher counter is global: tests that read it run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Overrides `value_any` only: hides every value.
struct Hidden(Ctx);

impl Forward for Hidden {
    fn inner(&self) -> &Ctx {
        &self.0
    }
    fn value_any(&self, _key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        None
    }
}

#[test]
fn a_type_overriding_one_method_inherits_deadline_err_and_cause() {
    let clock = MockClock::new();
    let (inner, cancel) = clock
        .background()
        .with_value(7u32)
        .with_timeout(Duration::from_secs(5));
    let (inner, cancel_cause) = inner.with_cancel_cause();
    let hidden = Hidden(inner.clone());

    assert!(Context::value_any(&hidden, TypeId::of::<u32>()).is_none());
    assert_eq!(
        Context::deadline(&hidden),
        Some(clock.now() + Duration::from_secs(5))
    );
    assert_eq!((Context::err(&hidden), Context::is_done(&hidden)), (None, false));
    assert!(Context::cause(&hidden).is_none());

    let why: Cause = Arc::new(std::fmt::Error);
    cancel_cause.cancel(why.clone());
    assert_eq!(Context::err(&hidden), Some(Error::Canceled));
    assert!(Context::is_done(&hidden));
    assert!(Arc::ptr_eq(&Context::cause(&hidden).unwrap(), &why));
    drop(cancel);
}

#[test]
fn a_wrapped_forward_hides_what_it_overrides_and_keeps_the_clock() {
    let clock = MockClock::new();
    let (inner, _cancel) = clock.background().with_value(7u32).with_cancel();
    let wrapped = Ctx::wrap(Hidden(inner));
    assert_eq!(wrapped.value::<u32>(), None);
    // The clock still comes through (from the inner's `done()`): mock time, not system time.
    let (child, _c) = wrapped.with_timeout(Duration::from_secs(3));
    assert_eq!(child.deadline(), Some(clock.now() + Duration::from_secs(3)));
    clock.advance(Duration::from_secs(3));
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn an_inherited_value_any_answers_the_inner_values_and_clock() {
    struct Same(Ctx);
    impl Forward for Same {
        fn inner(&self) -> &Ctx {
            &self.0
        }
    }
    let clock = MockClock::new();
    let never_done = clock.background().with_value(7u32);
    // A root's `done()` is never: the clock can only come through the inherited `value_any`.
    let wrapped = Ctx::wrap(Same(never_done));
    assert_eq!(wrapped.value::<u32>(), Some(&7));
    let (child, _c) = wrapped.with_timeout(Duration::from_secs(2));
    assert_eq!(child.deadline(), Some(clock.now() + Duration::from_secs(2)));
    clock.advance(Duration::from_secs(2));
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn an_inherited_done_links_children_directly_with_no_watcher() {
    let _g = serial();
    let before = watchers_started();
    let (inner, cancel) = Ctx::background().with_value(1u8).with_cancel();
    let wrapped = Ctx::wrap(Hidden(inner));
    let (child, _c) = wrapped.with_cancel();
    assert_eq!(watchers_started(), before, "an inherited done() needs no watcher");
    cancel.cancel();
    // In the cancel's own call: nothing polled, nothing waited for.
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(child.done().now_or_never(), Some(Error::Canceled));
}

/// Overrides `err` only: every cancel is reported as a timeout.
struct AsTimeout(Ctx);

impl Forward for AsTimeout {
    fn inner(&self) -> &Ctx {
        &self.0
    }
    fn err(&self) -> Option<Error> {
        self.0.err().map(|_| Error::DeadlineExceeded)
    }
}

#[test]
fn an_overridden_err_is_what_children_and_is_done_see() {
    let (inner, cancel) = Ctx::background().with_cancel();
    let x = AsTimeout(inner.clone());
    assert!(!Context::is_done(&x));
    let wrapped = Ctx::wrap(AsTimeout(inner));
    let (child, _c) = wrapped.with_cancel();
    cancel.cancel();
    assert!(Context::is_done(&x));
    assert_eq!(Context::err(&x), Some(Error::DeadlineExceeded));
    assert_eq!(wrapped.err(), Some(Error::DeadlineExceeded));
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn an_overridden_deadline_is_what_children_inherit() {
    struct Earlier(Ctx, Instant);
    impl Forward for Earlier {
        fn inner(&self) -> &Ctx {
            &self.0
        }
        fn deadline(&self) -> Option<Instant> {
            Some(self.1)
        }
    }
    let clock = MockClock::new();
    let (inner, _c) = clock.background().with_timeout(Duration::from_secs(60));
    let at = clock.now() + Duration::from_secs(1);
    let wrapped = Ctx::wrap(Earlier(inner, at));
    let (child, _c2) = wrapped.with_cancel();
    assert_eq!((wrapped.deadline(), child.deadline()), (Some(at), Some(at)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
}

/// Takes its values and deadline from the inner `Ctx`, its `done()`, `err()` and `cause()`
/// from a switch of its own.
struct Switched {
    inner: Ctx,
    rx: Mutex<Option<oneshot::Receiver<()>>>,
    fired: Arc<AtomicBool>,
}

impl Forward for Switched {
    fn inner(&self) -> &Ctx {
        &self.inner
    }
    fn done(&self) -> Done {
        match self.rx.lock().unwrap().take() {
            // Re-polled inside the wake: no watcher thread (Miri).
            Some(rx) => done_inline(async move {
                let _ = rx.await;
                Error::Canceled
            }),
            None => Done::never(),
        }
    }
    fn err(&self) -> Option<Error> {
        self.fired.load(SeqCst).then_some(Error::Canceled)
    }
    fn cause(&self) -> Option<Cause> {
        Forward::err(self).map(|e| Arc::new(e) as Cause)
    }
}

fn switched(inner: Ctx) -> (Switched, impl FnOnce()) {
    let (tx, rx) = oneshot::channel();
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    let fire = move || {
        f.store(true, SeqCst);
        tx.send(()).unwrap();
    };
    let s = Switched {
        inner,
        rx: Mutex::new(Some(rx)),
        fired,
    };
    (s, fire)
}

#[test]
fn a_substituted_done_is_what_the_wrap_follows_not_the_inner_one() {
    let _g = serial();
    let (inner, cancel) = Ctx::background().with_value(5u16).with_cancel();
    let (s, fire) = switched(inner);
    let before = watchers_started();
    let wrapped = Ctx::wrap(s);
    assert_eq!(watchers_started(), before + 1, "a substituted done() is watched");
    let (child, _c) = wrapped.with_cancel();
    assert_eq!(child.value::<u16>(), Some(&5));

    cancel.cancel(); // the inner's done() is not this context's
    assert_eq!(child.err(), None);
    assert_eq!(child.done().now_or_never(), None);

    fire();
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(child.done().now_or_never(), Some(Error::Canceled));
}

#[test]
fn on_done_forwards_only_while_done_is_the_inner_one() {
    let (inner, cancel) = Ctx::background().with_cancel();
    let (s, _fire) = switched(inner.clone());
    assert!(
        Context::on_done(&s, Box::new(|| panic!("never called"))).is_none(),
        "a substituted done(): no callback on the inner context"
    );

    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let stop = Context::on_done(
        &Hidden(inner),
        Box::new(move || {
            c.fetch_add(1, SeqCst);
        }),
    )
    .expect("an inherited done(): the inner context calls back");
    cancel.cancel();
    assert_eq!(calls.load(SeqCst), 1);
    assert!(!stop(), "it ran: stopping it kept nothing from running");

    // A never-done inner and an inherited done(): a registration that never runs.
    let stop =
        Context::on_done(&Hidden(Ctx::background()), Box::new(|| panic!("never done"))).expect("supported");
    assert!(stop());
}

#[test]
fn forward_types_are_contexts_behind_a_dyn() {
    let (inner, cancel) = Ctx::background().with_cancel();
    let boxed: Box<dyn Context> = Box::new(AsTimeout(inner));
    cancel.cancel();
    assert_eq!(boxed.err(), Some(Error::DeadlineExceeded));
}
