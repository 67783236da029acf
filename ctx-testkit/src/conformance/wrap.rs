//! Checks of `Ctx::wrap` with contexts of the user's own types (Go's `otherContext`).

use std::any::{Any, TypeId};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::futures::FutureExt;
use ::futures::channel::oneshot;
use ::futures::future::{BoxFuture, Shared};
use ctx_core::{Cause, Context, Ctx, Done, Error, Forward};

use super::{Runtime, wait_done};
use crate::Probe;

fn cause(msg: &'static str) -> Cause {
    Arc::new(std::io::Error::other(msg))
}

/// Completing a foreign `done()` after it was wrapped makes ctx-core start its watcher thread,
/// which lives as long as the process; Miri rejects a test binary that exits with a thread
/// still running. Under Miri those steps are skipped (the rest of each check still runs).
const UNDER_MIRI: bool = cfg!(miri);

#[derive(Debug, PartialEq)]
struct Tag(&'static str);

#[derive(Debug, PartialEq)]
struct Inherited(u32);

/// The usual user type: wraps a `Ctx`, adds a value and may override the deadline; its
/// `done()` is the `Ctx`'s own.
struct Tagged {
    inner: Ctx,
    tag: Tag,
    deadline: Option<Instant>,
}

impl Tagged {
    fn new(inner: Ctx) -> Tagged {
        let deadline = inner.deadline();
        Tagged {
            inner,
            tag: Tag("tagged"),
            deadline,
        }
    }
}

impl Forward for Tagged {
    fn inner(&self) -> &Ctx {
        &self.inner
    }
    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        if key == TypeId::of::<Tag>() {
            return Some(&self.tag);
        }
        self.inner.value_any(key)
    }
}

/// What a [`Foreign`] context answers once fired.
type Outcome = Arc<Mutex<Option<(Error, Cause)>>>;

/// A context whose `done()` is nothing of ctx-core's: a oneshot channel. Its `done()` future
/// always says `Canceled`; its `err()`/`cause()` say what [`Trigger::fire`] recorded.
struct Foreign {
    outcome: Outcome,
    fired: Shared<BoxFuture<'static, ()>>,
    /// Values (and the clock) come from here.
    values: Ctx,
}

struct Trigger {
    outcome: Outcome,
    tx: Option<oneshot::Sender<()>>,
}

impl Trigger {
    /// Records the outcome, then completes the `done()` futures — on another thread, so that
    /// a deadlock in there fails the check instead of hanging it.
    #[track_caller]
    fn fire(mut self, err: Error, why: Cause) {
        *self.outcome.lock().unwrap() = Some((err, why));
        let tx = self.tx.take().unwrap();
        super::bg(move || {
            let _ = tx.send(());
        })
        .join("completing a foreign done() (futures' `Shared` over a oneshot) returned; else deadlock");
    }
}

fn foreign(values: Ctx) -> (Foreign, Trigger) {
    let (tx, rx) = oneshot::channel::<()>();
    let outcome: Outcome = Arc::default();
    let fired = rx.map(|_| ()).boxed().shared();
    let f = Foreign {
        outcome: outcome.clone(),
        fired,
        values,
    };
    (
        f,
        Trigger {
            outcome,
            tx: Some(tx),
        },
    )
}

impl Context for Foreign {
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn done(&self) -> Done {
        let fired = self.fired.clone();
        Done::new(async move {
            fired.await;
            Error::Canceled
        })
    }
    fn err(&self) -> Option<Error> {
        self.outcome.lock().unwrap().as_ref().map(|(e, _)| *e)
    }
    fn cause(&self) -> Option<Cause> {
        self.outcome.lock().unwrap().as_ref().map(|(_, c)| c.clone())
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.values.value_any(key)
    }
}

/// `Ctx::wrap` of a `Ctx` is that same `Ctx`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::wrap_of_a_ctx_is_the_same_ctx(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn wrap_of_a_ctx_is_the_same_ctx<R: Runtime>(rt: &R) {
    let (ctx, _c) = rt.background().with_cancel();
    assert_eq!(Ctx::wrap(ctx.clone()), ctx);
    let root = rt.background();
    assert_eq!(Ctx::wrap(root.clone()), root);
}

/// Children of a wrapped user type whose `done()` is a `Ctx`'s are canceled at once when that
/// `Ctx` is (no watcher, no delay), with its error and cause; after-funcs on the wrap run.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::wrap_of_ctx_wrapper_cancels_children_at_once(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn wrap_of_ctx_wrapper_cancels_children_at_once<R: Runtime>(rt: &R) {
    let (inner, cancel) = rt.background().with_cancel_cause();
    let wrapped = Ctx::wrap(Tagged::new(inner));
    let (a, _a) = wrapped.with_cancel();
    let (b, _b) = wrapped.with_timeout(Duration::from_secs(3600));
    let c = wrapped.with_value(1u8);
    let (tx, rx) = std::sync::mpsc::channel();
    let _after = wrapped.after_func(move || tx.send(()).unwrap());
    let mut done = Probe::new(a.done());
    done.assert_pending();
    let why = cause("wrapped");
    cancel.cancel(why.clone());
    for ctx in [&wrapped, &a, &b, &c] {
        assert_eq!(ctx.err(), Some(Error::Canceled), "{ctx} was not canceled at once");
        assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why), "{ctx}");
    }
    done.assert_woken(1);
    assert_eq!(done.assert_ready(), Error::Canceled);
    assert!(
        rx.try_recv().is_ok(),
        "an after-func on the wrapped context did not run"
    );
}

/// `Ctx::wrap(x)` answers `err`, `cause`, `deadline` and values as `x` does, and children see
/// `x`'s values and deadline.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::wrap_answers_err_cause_deadline_and_values_as_custom(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn wrap_answers_err_cause_deadline_and_values_as_custom<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (inner, cancel) = root.with_value(Inherited(5)).with_cancel_cause();
    let mut custom = Tagged::new(inner);
    let soon = root.now() + Duration::from_secs(3600);
    custom.deadline = Some(soon);
    let wrapped = Ctx::wrap(custom);
    assert_eq!(wrapped.deadline(), Some(soon));
    assert_eq!(wrapped.value::<Tag>(), Some(&Tag("tagged")));
    assert_eq!(wrapped.value::<Inherited>(), Some(&Inherited(5)));
    assert_eq!(wrapped.err(), None);
    assert!(wrapped.cause().is_none());
    let (child, _c) = wrapped.with_timeout(Duration::from_secs(7200));
    assert_eq!(
        child.deadline(),
        Some(soon),
        "a child of a wrap ignored the custom deadline"
    );
    assert_eq!(child.value::<Tag>(), Some(&Tag("tagged")));
    assert_eq!(child.value::<Inherited>(), Some(&Inherited(5)));
    if rt.is_mock() {
        assert_eq!(
            child.now(),
            root.now(),
            "a child of a wrapped Ctx left the root's clock"
        );
    }
    let why = cause("custom");
    cancel.cancel(why.clone());
    assert_eq!(wrapped.err(), Some(Error::Canceled));
    assert!(Arc::ptr_eq(&wrapped.cause().unwrap(), &why));

    // A foreign one answers with its own err and cause.
    if UNDER_MIRI {
        return;
    }
    let (f, trigger) = foreign(root.with_value(Inherited(6)));
    let wrapped = Ctx::wrap(f);
    assert_eq!(wrapped.deadline(), None);
    assert_eq!(wrapped.value::<Inherited>(), Some(&Inherited(6)));
    assert_eq!(wrapped.err(), None);
    let why = cause("foreign");
    trigger.fire(Error::DeadlineExceeded, why.clone());
    assert_eq!(wrapped.err(), Some(Error::DeadlineExceeded));
    assert!(Arc::ptr_eq(&wrapped.cause().unwrap(), &why));
}

/// A wrapped context whose `done()` is truly foreign (`Done::new` over a channel) cancels its
/// children when it fires — after a moment at most — and their `done()` futures resolve.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::wrap_of_foreign_done_cancels_children(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn wrap_of_foreign_done_cancels_children<R: Runtime>(rt: &R) {
    if UNDER_MIRI {
        return;
    }
    let (f, trigger) = foreign(rt.background());
    let wrapped = Ctx::wrap(f);
    let (a, _a) = wrapped.with_cancel();
    let (b, _b) = wrapped.with_timeout(Duration::from_secs(3600));
    let (aa, _aa) = a.with_cancel();
    let done = aa.done();
    assert_eq!(a.err(), None);
    let why = cause("foreign fired");
    let w = why.clone();
    trigger.fire(Error::Canceled, w);
    for ctx in [&a, &b, &aa] {
        assert_eq!(
            wait_done(ctx, "a child of a foreign context"),
            Error::Canceled,
            "{ctx}"
        );
        assert!(
            Arc::ptr_eq(&ctx.cause().unwrap(), &why),
            "{ctx} lost the foreign cause"
        );
    }
    assert_eq!(rt.block_on(done), Error::Canceled);
}

/// A child of a custom context that is already done is born done with its error and cause
/// (a `Ctx` wrapper and a foreign one).
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::child_of_done_custom_is_born_done(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn child_of_done_custom_is_born_done<R: Runtime>(rt: &R) {
    let (inner, cancel) = rt.background().with_cancel_cause();
    let why = cause("before wrap");
    cancel.cancel(why.clone());
    let wrapped = Ctx::wrap(Tagged::new(inner));
    let (child, _c) = wrapped.with_cancel();
    assert_eq!(child.err(), Some(Error::Canceled));
    assert!(Arc::ptr_eq(&child.cause().unwrap(), &why));

    let (f, trigger) = foreign(rt.background());
    let why = cause("foreign, before wrap");
    trigger.fire(Error::DeadlineExceeded, why.clone());
    let wrapped = Ctx::wrap(f);
    let (child, _c) = wrapped.with_timeout(Duration::from_secs(3600));
    assert_eq!(
        child.err(),
        Some(Error::DeadlineExceeded),
        "a child of a done foreign context was born live"
    );
    assert!(Arc::ptr_eq(&child.cause().unwrap(), &why));
    let value = wrapped.with_value(1u8);
    assert_eq!(value.err(), Some(Error::DeadlineExceeded));
}

/// When a foreign `done()` fires, children take the custom context's own `err()` and
/// `cause()`, not the `done()` future's output.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::child_takes_the_customs_own_err_and_cause(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn child_takes_the_customs_own_err_and_cause<R: Runtime>(rt: &R) {
    if UNDER_MIRI {
        return;
    }
    let (f, trigger) = foreign(rt.background());
    let wrapped = Ctx::wrap(f);
    let (child, _c) = wrapped.with_cancel_cause();
    let why = cause("custom said so");
    // The `done()` future resolves with `Canceled`; the custom's `err()` says otherwise.
    trigger.fire(Error::DeadlineExceeded, why.clone());
    assert_eq!(
        wait_done(&child, "a child of a foreign context"),
        Error::DeadlineExceeded
    );
    assert!(Arc::ptr_eq(&child.cause().unwrap(), &why));
}

/// A user type that hides every value but whose `done()` is a `Ctx`'s (the `Context` trait's
/// own example).
struct NoValues(Ctx);

impl Forward for NoValues {
    fn inner(&self) -> &Ctx {
        &self.0
    }
    fn value_any(&self, _key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        None
    }
}

/// Children of a wrapped user type keep the root's clock even when the type hides every value:
/// on a mock, `with_timeout(d)` under it is `clock.now() + d` in mock time.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::wrap_of_a_value_hiding_wrapper_keeps_the_roots_clock(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn wrap_of_a_value_hiding_wrapper_keeps_the_roots_clock<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (inner, cancel) = root.with_value(Inherited(1)).with_cancel();
    let wrapped = Ctx::wrap(NoValues(inner));
    assert_eq!(
        wrapped.value::<Inherited>(),
        None,
        "the wrap must answer values as the custom does"
    );
    if rt.is_mock() {
        rt.advance(Duration::from_secs(3600)); // mock time is now far from real time
        let (child, _c) = wrapped.with_timeout(Duration::from_secs(60));
        assert_eq!(
            child.now(),
            root.now(),
            "a child of a wrapped context left the root's clock"
        );
        assert_eq!(child.deadline(), Some(root.now() + Duration::from_secs(60)));
    }
    let (child, _c) = wrapped.with_cancel();
    cancel.cancel();
    assert_eq!(child.err(), Some(Error::Canceled));
}
