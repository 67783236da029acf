//! [`Ctx`], the context handle users pass around.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use crate::done::{Done, Run, RunStream};
use crate::tree::{self, Arc, Node, NodeRef, Owners};
use crate::{
    AfterFunc, CancelCauseHandle, CancelHandle, Cause, Clock, Context, Error, IdleHandle, RunTimeout,
};

/// A context: a node in a tree of cancellation, with an optional deadline and values.
///
/// `Ctx` is a cheap handle (one `Arc`): clone it into every task that works for the same
/// request. Derive children with the `with_*` methods; a child is done when its parent is, when
/// its own [`CancelHandle`] is called (or its last clone dropped), or when its deadline passes.
/// Canceling a child never touches its parent or siblings.
///
/// `Ctx` (like the handles) is `UnwindSafe` and `RefUnwindSafe`: a panic caught with
/// `catch_unwind` never leaves a context half-changed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ctx_core::{Ctx, Error};
///
/// let (request, cancel) = Ctx::background().with_timeout(Duration::from_secs(30));
/// let (step, _step_cancel) = request.with_cancel();
/// assert_eq!(step.err(), None);
/// cancel.cancel(); // the request is abandoned: every step stops
/// assert_eq!(step.err(), Some(Error::Canceled));
/// ```
#[doc(alias = "CancellationToken")]
#[derive(Clone)]
pub struct Ctx {
    /// The node this handle shares: the handle is one `Arc` (clone = refcount bump).
    pub(crate) node: NodeRef,
}

// ===== roots =====

impl Ctx {
    /// The handle of a freshly built node.
    #[inline]
    pub(crate) fn from_node(node: Arc<Node>) -> Ctx {
        Ctx {
            node: NodeRef::from(node),
        }
    }

    /// The root of every tree: never canceled, no deadline, no values. Its clock is the system
    /// clock ([`SystemClock`](crate::clock::SystemClock)), which fires deadlines with no
    /// runtime. Go: `context.Background()`.
    ///
    /// Like Go's, it is one value for the whole process: every call returns a clone of the same
    /// context, and allocates nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let root = ctx_core::Ctx::background();
    /// assert_eq!(root.err(), None);
    /// assert_eq!(root.deadline(), None);
    /// assert_eq!(root.to_string(), "context.Background");
    /// ```
    #[doc(alias = "Background")]
    pub fn background() -> Ctx {
        static BACKGROUND: LazyLock<Ctx> = LazyLock::new(|| Ctx {
            node: tree::static_root(false),
        });
        BACKGROUND.clone()
    }

    /// Like [`background`](Ctx::background), but marks code that has not decided which context
    /// to use yet. Go: `context.TODO()`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ctx_core::Ctx::todo().to_string(), "context.TODO");
    /// ```
    #[doc(alias = "TODO")]
    pub fn todo() -> Ctx {
        static TODO: LazyLock<Ctx> = LazyLock::new(|| Ctx {
            node: tree::static_root(true),
        });
        TODO.clone()
    }

    /// A background root whose time and timers come from `clock`. Every context derived from
    /// it uses that clock. Runtime adapters and `ctx-testkit`'s `MockClock` build their roots
    /// with this.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ctx_core::{Ctx, clock::SystemClock};
    /// let root = Ctx::background_with_clock(Arc::new(SystemClock::default()));
    /// assert_eq!(root.to_string(), "context.Background");
    /// ```
    pub fn background_with_clock(clock: std::sync::Arc<dyn Clock>) -> Ctx {
        Ctx::from_node(tree::root_with_clock(clock, false))
    }

    /// A TODO root whose time and timers come from `clock`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ctx_core::{Ctx, clock::SystemClock};
    /// assert_eq!(Ctx::todo_with_clock(Arc::new(SystemClock::default())).to_string(), "context.TODO");
    /// ```
    pub fn todo_with_clock(clock: std::sync::Arc<dyn Clock>) -> Ctx {
        Ctx::from_node(tree::root_with_clock(clock, true))
    }

    /// Turns any [`Context`] into a `Ctx` parent. Children derived from it see its values and
    /// deadline and are canceled when its `done()` fires, with `custom`'s own `err()` and
    /// `cause()` (also when its `done()` is another context's). The result answers `err`,
    /// `cause`, `deadline` and values as `custom` does (once its `done()` has fired, with the
    /// answers its children took).
    ///
    /// * A `Ctx` is returned as it is.
    /// * A type whose `done()` is a `Ctx`'s `done()` (the usual wrapper) is linked to that
    ///   `Ctx` through one node: cancellation reaches the children before the cancel returns,
    ///   with no thread and no task.
    /// * A type whose `done()` is a future of its own ([`Done::new`]) and that can call back
    ///   when done ([`Context::on_done`]) is fed by that callback: no thread either.
    /// * Any other foreign `done()` is watched by one watcher per wrapped context (not per
    ///   child), which polls it whenever it wakes. Anyone who asks a derived context (`err`,
    ///   `cause`, a `done()` poll, `after_func`, deriving, `wait_blocking`) asks `custom` too, so
    ///   they see it done as soon as `custom.err()` says so; only waiters that nobody polls
    ///   wait for the watcher, a moment longer.
    /// * A `done()` that never completes ([`Done::never`]) cancels no child, as in Go.
    ///
    /// A child of a custom context that is already done is born done, with its error and cause.
    /// Chains of wraps of any depth build, cancel and drop without deep recursion in ctx-core
    /// (a custom's own methods that forward to the `Ctx` inside still recurse when called).
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::Ctx;
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// let same = Ctx::wrap(ctx.clone());
    /// assert_eq!(same, ctx);
    /// # drop(cancel);
    /// ```
    pub fn wrap<C: Context>(custom: C) -> Ctx {
        let mut slot = Some(custom);
        if let Some(ctx) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Ctx>>() {
            return ctx.take().expect("ctx-core: internal error: wrap slot empty");
        }
        let custom = slot.expect("ctx-core: internal error: wrap slot empty");
        Ctx {
            node: crate::wrap::wrap(custom),
        }
    }
}

// ===== derivations =====

impl Ctx {
    /// A child that is canceled when `cancel` is called (or its last clone dropped), or when
    /// this context is done. Go: `context.WithCancel`.
    ///
    /// Dropping every clone of the child, canceled or not, releases everything it took from
    /// its parent.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Ctx, Error};
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// cancel.cancel();
    /// assert_eq!(ctx.err(), Some(Error::Canceled));
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    #[doc(alias = "WithCancel")]
    #[doc(alias = "child_token")]
    pub fn with_cancel(&self) -> (Ctx, CancelHandle) {
        let (node, owner) = self.derive_cancel(None, None, false);
        (Ctx::from_node(node), CancelHandle::adopt(owner))
    }

    /// Like [`with_cancel`](Ctx::with_cancel), but the handle can record why. Go:
    /// `context.WithCancelCause`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ctx_core::{Cause, Ctx, Error};
    /// let (ctx, cancel) = Ctx::background().with_cancel_cause();
    /// let why: Cause = Arc::new(std::io::Error::other("shutting down"));
    /// cancel.cancel(why.clone());
    /// assert_eq!(ctx.err(), Some(Error::Canceled));
    /// assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    #[doc(alias = "WithCancelCause")]
    pub fn with_cancel_cause(&self) -> (Ctx, CancelCauseHandle) {
        let (node, owner) = self.derive_cancel(None, None, false);
        (Ctx::from_node(node), CancelCauseHandle::adopt(owner))
    }

    /// A child that is done at `deadline` (with [`Error::DeadlineExceeded`]), when `cancel` is
    /// called (with [`Error::Canceled`]), or when this context is done. Go:
    /// `context.WithDeadline`.
    ///
    /// The child's deadline is the earlier of `deadline` and this context's. If this context's
    /// is already earlier, the child is a plain [`with_cancel`](Ctx::with_cancel) child, as in
    /// Go. A deadline that has passed gives a child that is born done. No timer is armed until
    /// something waits for the child.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ctx_core::{Ctx, Error};
    /// let (ctx, _cancel) = Ctx::background().with_deadline(Instant::now());
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    #[doc(alias = "WithDeadline")]
    pub fn with_deadline(&self, deadline: Instant) -> (Ctx, CancelHandle) {
        let (node, owner) = self.derive_deadline(Some(deadline), None);
        (Ctx::from_node(node), CancelHandle::adopt(owner))
    }

    /// [`with_deadline`](Ctx::with_deadline)`(now + timeout)` on this context's clock. A timeout
    /// too large for `Instant` never expires (and never panics). Go: `context.WithTimeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::{Ctx, Error};
    /// let (ctx, _cancel) = Ctx::background().with_timeout(Duration::from_millis(10));
    /// assert_eq!(ctx.wait_blocking(), Error::DeadlineExceeded);
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    #[doc(alias = "WithTimeout")]
    pub fn with_timeout(&self, timeout: Duration) -> (Ctx, CancelHandle) {
        let (node, owner) = self.derive_timeout(timeout);
        (Ctx::from_node(node), CancelHandle::adopt(owner))
    }

    /// A context for draining: done `grace` after this context is done, with this context's
    /// error and cause (the same `Arc`). Stop taking new work when `self` is done; let the work
    /// in flight run under the returned context, which gives it `grace` to finish.
    ///
    /// * The grace period counts on this context's clock from the moment `self` became done
    ///   (its deadline, if that is what ended it, even when nobody noticed at once); from this
    ///   call if `self` is already done. `with_grace(Duration::ZERO)` is done together with
    ///   `self`.
    /// * The handle cancels it earlier, with [`Error::Canceled`] (dropping its last clone
    ///   does too), as for [`with_cancel`](Ctx::with_cancel).
    /// * [`deadline`](Ctx::deadline): while `self` is not done, `self`'s deadline plus `grace`
    ///   (`None` when `self` has none, or when the sum is too far away for `Instant`); once
    ///   `self` is done, the instant this context will be done.
    /// * Values are `self`'s. Children end with it, as children of any context do.
    /// * No task and no thread: it is one node, registered with `self` like a child, that
    ///   `self`'s end does not cancel but starts a timer on (its only one). If `self` has a
    ///   deadline, `self`'s timer for it is armed now, so that the grace period starts on
    ///   time even if nobody waits on `self`.
    ///
    /// `Display`: `<self>.WithGrace(<grace>)`, e.g. `context.Background.WithCancel.WithGrace(30s)`.
    ///
    /// Go has no such function: there a server's `Shutdown` takes a second context, made
    /// with `context.WithTimeout` once the first signal arrives.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::Error;
    /// let clock = ctx_testkit::MockClock::new();
    /// let (shutdown, stop) = clock.background().with_cancel();
    /// let (drain, _drain_cancel) = shutdown.with_grace(Duration::from_secs(30));
    /// stop.cancel(); // stop taking new work; what is in flight has 30s left
    /// assert_eq!(drain.err(), None);
    /// assert_eq!(drain.deadline(), Some(clock.now() + Duration::from_secs(30)));
    /// clock.advance(Duration::from_secs(30));
    /// assert_eq!(drain.err(), Some(Error::Canceled)); // `shutdown`'s error, 30s later
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    pub fn with_grace(&self, grace: Duration) -> (Ctx, CancelHandle) {
        let (node, owner) = tree::derive_grace(&self.node, grace, self.deadline());
        (Ctx::from_node(node), CancelHandle::adopt(owner))
    }

    /// A child that is also done, with [`Error::DeadlineExceeded`], once `timeout` passes on
    /// its clock with no [`touch`](IdleHandle::touch) of its handle: for a connection, a
    /// stream or a session that should end when it goes quiet. It is done when this context
    /// is done too (with its error and cause), or when the handle cancels it (or its last
    /// clone is dropped).
    ///
    /// [`deadline`](Ctx::deadline) is the earlier of this context's deadline and the last
    /// touch (or this call) plus `timeout`. **This is the one context whose deadline can move
    /// later**: every `touch()` pushes it forward, so a deadline read from it (or from its
    /// descendants, which follow it) holds only until the next touch. A child made with a
    /// deadline of its own keeps it, as in Go.
    ///
    /// `touch()` takes no lock, allocates nothing and re-arms no timer: the context has one
    /// timer, armed by this call, which, when it fires and finds a later deadline, sleeps
    /// again. A zero `timeout` gives a context that is born done, as
    /// [`with_timeout`](Ctx::with_timeout) does; one too large for `Instant` never expires.
    ///
    /// `Display`: `<self>.WithIdleTimeout(<timeout>)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::Error;
    /// let clock = ctx_testkit::MockClock::new();
    /// let (stream, idle) = clock.background().with_idle_timeout(Duration::from_secs(60));
    /// clock.advance(Duration::from_secs(45));
    /// idle.touch(); // a frame arrived: 60s from now
    /// clock.advance(Duration::from_secs(45));
    /// assert_eq!(stream.err(), None);
    /// clock.advance(Duration::from_secs(15));
    /// assert_eq!(stream.err(), Some(Error::DeadlineExceeded));
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    pub fn with_idle_timeout(&self, timeout: Duration) -> (Ctx, IdleHandle) {
        let (node, owner) = tree::derive_idle(&self.node, timeout);
        (Ctx::from_node(node), IdleHandle::adopt(owner))
    }

    /// Like [`with_deadline`](Ctx::with_deadline), but when the deadline passes,
    /// [`cause`](Ctx::cause) is `cause`: any error, a [`Cause`] (which comes back as the same
    /// `Arc`), an `anyhow::Error`, a boxed error, a `&str` or a `String` (see [`Cause`] for
    /// how they are wrapped). If this context's deadline is earlier, `cause` is not used (as in
    /// Go). The handle cancels with [`Error::Canceled`] and no cause. Go:
    /// `context.WithDeadlineCause`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Instant;
    /// use ctx_core::{Cause, Ctx, Error};
    /// let why: Cause = Arc::new(std::io::Error::other("budget spent"));
    /// let (ctx, _c) = Ctx::background().with_deadline_cause(Instant::now(), why.clone());
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    /// assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    #[doc(alias = "WithDeadlineCause")]
    pub fn with_deadline_cause(
        &self,
        deadline: Instant,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> (Ctx, CancelHandle) {
        let (node, owner) = self.derive_deadline(Some(deadline), Some(crate::error::into_cause(cause)));
        (Ctx::from_node(node), CancelHandle::adopt(owner))
    }

    /// [`with_deadline_cause`](Ctx::with_deadline_cause)`(now + timeout, cause)`. Go:
    /// `context.WithTimeoutCause`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use ctx_core::{Cause, Ctx};
    /// let why: Cause = Arc::new(std::io::Error::other("slow backend"));
    /// let (ctx, _c) = Ctx::background().with_timeout_cause(Duration::ZERO, why.clone());
    /// assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    #[doc(alias = "WithTimeoutCause")]
    pub fn with_timeout_cause(
        &self,
        timeout: Duration,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> (Ctx, CancelHandle) {
        let now = self.node.clock().now();
        let (node, owner) = self.derive_deadline_read_at(
            now.checked_add(timeout),
            Some(crate::error::into_cause(cause)),
            Some(now),
        );
        (Ctx::from_node(node), CancelHandle::adopt(owner))
    }

    /// [`with_deadline`](Ctx::with_deadline) and [`with_cancel_cause`](Ctx::with_cancel_cause)
    /// in one node: a child that is done at `deadline` (with [`Error::DeadlineExceeded`]), when
    /// the handle cancels (with [`Error::Canceled`] and the cause it is given), or when this
    /// context is done. Go writes this as two contexts, `WithDeadline(WithCancelCause(parent))`;
    /// here it is one node, one allocation, one cancel.
    ///
    /// For a context whose owner must say why it ends early but that also has a budget — a
    /// server's request, canceled with "client disconnected" or timed out. Everything else is
    /// as in [`with_deadline`](Ctx::with_deadline): this context's earlier deadline wins, a
    /// passed deadline gives a child born done, no timer is armed until something waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ctx_core::{Ctx, Error};
    /// let (ctx, cancel) =
    ///     Ctx::background().with_deadline_cancel_cause(Instant::now() + Duration::from_secs(60));
    /// assert!(ctx.deadline().is_some());
    /// cancel.cancel(std::io::Error::other("client went away"));
    /// assert_eq!(ctx.err(), Some(Error::Canceled));
    /// assert_eq!(ctx.cause().unwrap().to_string(), "client went away");
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    pub fn with_deadline_cancel_cause(&self, deadline: Instant) -> (Ctx, CancelCauseHandle) {
        let (node, owner) = self.derive_deadline(Some(deadline), None);
        (Ctx::from_node(node), CancelCauseHandle::adopt(owner))
    }

    /// [`with_deadline_cancel_cause`](Ctx::with_deadline_cancel_cause) with the deadline
    /// `now + timeout` on this context's clock, read once. A timeout too large for `Instant`
    /// never expires.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::{Ctx, Error};
    /// let (ctx, cancel) = Ctx::background().with_timeout_cancel_cause(Duration::from_secs(60));
    /// assert!(ctx.deadline().is_some());
    /// cancel.cancel(std::io::Error::other("client went away"));
    /// assert_eq!(ctx.err(), Some(Error::Canceled));
    /// assert_eq!(ctx.cause().unwrap().to_string(), "client went away");
    ///
    /// let (ctx, _cancel) = Ctx::background().with_timeout_cancel_cause(Duration::ZERO);
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    pub fn with_timeout_cancel_cause(&self, timeout: Duration) -> (Ctx, CancelCauseHandle) {
        let (node, owner) = self.derive_timeout(timeout);
        (Ctx::from_node(node), CancelCauseHandle::adopt(owner))
    }

    /// A child that carries `value`, found by [`value::<T>()`](Ctx::value) on it and its
    /// descendants (the nearest one wins). Values are keyed by type: wrap a value in a newtype
    /// of your own to keep it apart from other crates' values. Go: `context.WithValue`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::Ctx;
    /// #[derive(Debug, PartialEq)]
    /// struct RequestId(u64);
    /// let ctx = Ctx::background().with_value(RequestId(7));
    /// assert_eq!(ctx.value::<RequestId>(), Some(&RequestId(7)));
    /// ```
    #[doc(alias = "WithValue")]
    pub fn with_value<T: Any + Send + Sync>(&self, value: T) -> Ctx {
        Ctx {
            node: tree::derive_value(&self.node, value),
        }
    }

    /// A child that keeps this context's values but is never canceled and has no deadline,
    /// even when this context is done. For work that must finish, such as writing an audit
    /// log after the request is gone. Go: `context.WithoutCancel`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::Ctx;
    /// let (ctx, cancel) = Ctx::background().with_value(1u8).with_cancel();
    /// let detached = ctx.without_cancel();
    /// cancel.cancel();
    /// assert_eq!(detached.err(), None);
    /// assert_eq!(detached.value::<u8>(), Some(&1));
    /// ```
    #[doc(alias = "WithoutCancel")]
    pub fn without_cancel(&self) -> Ctx {
        Ctx::from_node(tree::derive_without_cancel(&self.node))
    }

    /// A child of this context that is also done when `other` is done: done when this context
    /// is done, when `other` is done, or when `cancel` is called (or its last clone dropped),
    /// whichever comes first. For work that must stop when its request ends *or* when the
    /// server shuts down. Go has no such function (golang/go#36503); there it is written by
    /// hand with `context.AfterFunc`.
    ///
    /// * Its [`err`](Ctx::err) and [`cause`](Ctx::cause) are those of the first to happen (a
    ///   parent's cause comes back as the same `Arc`). A child of a parent that is already
    ///   done is born done; when both are, it takes this context's error and cause.
    /// * Its [`deadline`](Ctx::deadline) is the earlier of the two parents'. When it passes,
    ///   the child is [`Error::DeadlineExceeded`] with the cause that the parent owning that
    ///   deadline gets.
    /// * [`value`](Ctx::value) looks in this context's chain only, never in `other`'s. Time
    ///   is read on this context's clock: merge contexts of one clock.
    /// * Canceling it touches neither parent. Dropping it, canceled or not, releases
    ///   everything it took from both.
    /// * With `Ctx` parents (also `Ctx::wrap` of a `Ctx`) it is one node registered with both
    ///   parents: no task, no thread. Merging with a context that can never be done
    ///   (`background`, [`without_cancel`](Ctx::without_cancel)) behaves like
    ///   [`with_cancel`](Ctx::with_cancel).
    ///
    /// `Display`: `<self>.WithMerged(<other>)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Ctx, Error};
    /// let (shutdown, stop_server) = Ctx::background().with_cancel();
    /// let (request, _end_request) = Ctx::background().with_cancel();
    /// let (work, _cancel) = request.with_merged(&shutdown);
    /// stop_server.cancel();
    /// assert_eq!(work.err(), Some(Error::Canceled));
    /// assert_eq!(request.err(), None); // the request itself goes on
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    pub fn with_merged(&self, other: &Ctx) -> (Ctx, CancelHandle) {
        let (node, owner) = tree::derive_merged(&self.node, &other.node);
        (Ctx::from_node(node), CancelHandle::adopt(owner))
    }

    /// Arranges for `f` to run once, after this context is done. Go: `context.AfterFunc`.
    ///
    /// `f` runs after every lock is released, so it may use the tree freely (read, derive,
    /// register, cancel). On a context that is already done, `f` runs right away, on this
    /// thread. On a context that can never be done, `f` never runs. A panic in `f` is
    /// contained: the panic hook reports it and the other after-funcs still run.
    ///
    /// The registration keeps the context attached until `f` has run or been stopped, even if
    /// every `Ctx` clone is dropped. Dropping the returned [`AfterFunc`] does not stop `f`.
    ///
    /// # Where `f` runs
    ///
    /// `f` may block (say, on another context's [`wait_blocking`](Ctx::wait_blocking)) without
    /// stalling anything but itself. Go runs each after-func in a goroutine of its own; here:
    ///
    /// * When the context is done by a call of yours — a cancel handle's `cancel()` or drop, or
    ///   a passed deadline noticed by a read before its timer fired (`err()`, `is_done()`,
    ///   `cause()`, `{:?}`, polling `done()`, or `after_func` itself; see *A read may end the
    ///   context* in [`err`](Ctx::err)) — `f` runs inline, on that thread, before the call
    ///   returns: the thread is yours. Any thread that reads the context may be that thread,
    ///   including one that only logs it.
    /// * When a timer fires the deadline (futures-timer's thread for [`Ctx::background`], a
    ///   runtime's timer driver for the adapters' roots), or the watcher thread sees a wrapped
    ///   foreign context end (see [`Ctx::wrap`]), that shared thread hands `f` to ctx-core's
    ///   after-func threads and goes on firing: an idle thread takes it, or a new one is
    ///   started for it (idle threads exit after a few seconds). So when `done()` wakes, `f`
    ///   may not have run yet, and the after-funcs of one deadline may run concurrently, in
    ///   any order, as Go's goroutines do.
    /// * A clock whose timers are fired by its user's own call ([`Clock::after_funcs_inline`]:
    ///   `ctx_testkit::MockClock::advance`) runs `f` on that caller's thread, before the call
    ///   returns, so tests stay deterministic.
    ///
    /// [`Clock::after_funcs_inline`]: crate::Clock::after_funcs_inline
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use ctx_core::Ctx;
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// let flag = ran.clone();
    /// let _stop = ctx.after_func(move || flag.store(true, Ordering::SeqCst));
    /// cancel.cancel();
    /// assert!(ran.load(Ordering::SeqCst));
    /// ```
    #[doc(alias = "AfterFunc")]
    pub fn after_func<F: FnOnce() + Send + 'static>(&self, f: F) -> AfterFunc {
        AfterFunc::register(&self.node, Box::new(f))
    }

    #[cfg_attr(feature = "tracing", track_caller)]
    #[inline(always)]
    fn derive_cancel(
        &self,
        own_deadline: Option<Instant>,
        cause: Option<Cause>,
        shown_as_deadline: bool,
    ) -> Owners {
        tree::derive_cancel(&self.node, own_deadline, cause, shown_as_deadline, None)
    }

    #[cfg_attr(feature = "tracing", track_caller)]
    fn derive_deadline(&self, deadline: Option<Instant>, cause: Option<Cause>) -> Owners {
        self.derive_deadline_read_at(deadline, cause, None)
    }

    /// The node of `with_timeout` and `with_timeout_cancel_cause` (no cause): the deadline
    /// `now + timeout` on this context's clock, read once. The usual one, below a root
    /// (`background()`, a runtime's root, a server's), is built at once.
    #[cfg_attr(feature = "tracing", track_caller)]
    #[inline(always)]
    fn derive_timeout(&self, timeout: Duration) -> Owners {
        let now = self.node.clock().now();
        let deadline = now.checked_add(timeout);
        match deadline.and_then(|d| tree::derive_timeout_of_root(&self.node, d, now)) {
            Some(owners) => owners,
            None => self.derive_deadline_read_at(deadline, None, Some(now)),
        }
    }

    /// `derive_deadline`, told when the clock was last read (`with_timeout*`): a deadline
    /// after that reading has not passed, and the new node is not checked again.
    #[cfg_attr(feature = "tracing", track_caller)]
    fn derive_deadline_read_at(
        &self,
        deadline: Option<Instant>,
        cause: Option<Cause>,
        read_at: Option<Instant>,
    ) -> Owners {
        match (self.node.deadline(), deadline) {
            // The parent's deadline is strictly earlier: a plain cancel child, as in Go.
            (Some(p), Some(d)) if p < d => self.derive_cancel(None, None, false),
            // Too far in the future for `Instant`: never expires.
            (_, None) => self.derive_cancel(None, None, true),
            (_, Some(d)) => tree::derive_cancel(&self.node, Some(d), cause, true, read_at),
        }
    }
}

// ===== observing =====

impl Ctx {
    /// The earliest deadline of this context and its ancestors, or `None`. Go: `Deadline()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ctx_core::Ctx;
    /// let soon = Instant::now() + Duration::from_secs(1);
    /// let (parent, _a) = Ctx::background().with_deadline(soon);
    /// let (child, _b) = parent.with_timeout(Duration::from_secs(60));
    /// assert_eq!(child.deadline(), Some(soon));
    /// ```
    #[doc(alias = "Deadline")]
    #[inline]
    pub fn deadline(&self) -> Option<Instant> {
        tree::ctx_deadline(&self.node)
    }

    /// Returns `None` until the context is done, then the same [`Error`] forever. Go: `Err()`.
    ///
    /// One atomic load, no lock; a context with a deadline that is not done yet also reads its
    /// clock (and becomes [`Error::DeadlineExceeded`] right there if the deadline has passed,
    /// even if no timer was armed).
    ///
    /// # A read may end the context, on the reading thread
    ///
    /// A deadline is noticed by whoever looks first: its timer, or a read. When this call finds
    /// the deadline passed and the context not yet done (the timer has not fired, or none was
    /// armed because nobody waited), it expires the context itself, before it returns, on this
    /// thread: the context and its descendants are marked done, the wakers of their `done()`
    /// futures are woken, and their after-funcs run, here (see *Where `f` runs* in
    /// [`after_func`](Ctx::after_func)). The same holds for [`is_done`](Ctx::is_done),
    /// [`cause`](Ctx::cause) and `{:?}`, which read the same state.
    /// For a [`wrap`](Ctx::wrap)ped custom context the read also asks the custom context's own
    /// `err()`, and if it says done, ends the wrap's descendants the same way.
    ///
    /// So a thread that only reads (a logger, a metrics loop) may run after-funcs: keep them
    /// short and non-blocking, or run them on a thread of yours.
    ///
    /// # Memory ordering
    ///
    /// Seeing `Some` here happens-after the cancel that caused it, and [`cause`](Ctx::cause)
    /// then returns that cancel's cause. A cancel marks a context before its descendants (it
    /// walks down the tree without holding a lock over the whole walk), so another thread may,
    /// for the moment that walk takes, see a parent done and a child not yet done. The thread
    /// that cancels sees the whole subtree done when `cancel()` returns, and a `done()` future
    /// or an after-func is never missed; to wait for a descendant, wait on it, not on its
    /// parent's `err()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Ctx, Error};
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// assert_eq!(ctx.err(), None);
    /// drop(cancel); // dropping the last handle cancels
    /// assert_eq!(ctx.err(), Some(Error::Canceled));
    /// ```
    #[doc(alias = "Err")]
    #[inline]
    pub fn err(&self) -> Option<Error> {
        tree::ctx_err(&self.node)
    }

    /// `err().is_some()`.
    ///
    /// Like [`err`](Ctx::err), it may notice a passed deadline and so end the context right
    /// there: wakers woken and after-funcs run on this thread before it returns (see *A read
    /// may end the context* in [`err`](Ctx::err)).
    ///
    /// # Examples
    ///
    /// ```
    /// let (ctx, cancel) = ctx_core::Ctx::background().with_cancel();
    /// cancel.cancel();
    /// assert!(ctx.is_done());
    /// ```
    #[doc(alias = "is_cancelled")]
    #[inline]
    pub fn is_done(&self) -> bool {
        tree::ctx_is_done(&self.node)
    }

    /// Returns `None` until the context is done, then why, forever the same: the cause given
    /// to [`CancelCauseHandle::cancel`] or [`with_deadline_cause`](Ctx::with_deadline_cause)
    /// (the same `Arc`), else the [`Error`] itself as a [`Cause`]. First cancel wins, for
    /// `err()` and `cause()` alike. Go: `context.Cause`.
    ///
    /// Like [`err`](Ctx::err), it may notice a passed deadline and so end the context right
    /// there: wakers woken and after-funcs run on this thread before it returns (see *A read
    /// may end the context* in [`err`](Ctx::err)).
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Ctx, Error};
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// cancel.cancel();
    /// let cause = ctx.cause().unwrap();
    /// assert_eq!(cause.downcast_ref::<Error>(), Some(&Error::Canceled));
    /// ```
    #[doc(alias = "Cause")]
    pub fn cause(&self) -> Option<Cause> {
        tree::ctx_cause(&self.node)
    }

    /// A future that completes with the [`Error`] once this context is done; it never completes
    /// for a context that cannot be done. `'static + Send`: take as many as you like, move
    /// them into tasks. Go: `Done()`.
    ///
    /// # Cancellation safety
    ///
    /// Dropping a `Done` releases the waker it was polled with; nothing else is affected. Use
    /// it freely in `select!`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Ctx, Error};
    /// # futures::executor::block_on(async {
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// let done = ctx.done();
    /// cancel.cancel();
    /// assert_eq!(done.await, Error::Canceled);
    /// # });
    /// ```
    #[doc(alias = "Done")]
    #[doc(alias = "cancelled")]
    #[doc(alias = "cancelled_owned")]
    pub fn done(&self) -> Done {
        // A wrap's `done()` was resolved at `wrap` (its bridge, or never): O(1) at any depth.
        Done::of(self.node.source())
    }

    /// The value of type `T` carried by this context or its nearest ancestor that has one.
    /// Go: `Value(key)`, with the key being the type.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::Ctx;
    /// let ctx = Ctx::background().with_value("outer").with_value(5u16).with_value("inner");
    /// assert_eq!(ctx.value::<&str>(), Some(&"inner"));
    /// assert_eq!(ctx.value::<u16>(), Some(&5));
    /// assert_eq!(ctx.value::<u32>(), None);
    /// ```
    #[doc(alias = "Value")]
    pub fn value<T: Any + Send + Sync>(&self) -> Option<&T> {
        tree::value_of(&self.node)
    }

    fn lookup(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        tree::value_any(&self.node, key)
    }

    /// Blocks this thread until the context is done and returns why. No runtime needed:
    /// deadlines fire by the root's clock. Do not call it on an async executor's thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::{Ctx, Error};
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// std::thread::spawn(move || cancel.cancel());
    /// assert_eq!(ctx.wait_blocking(), Error::Canceled);
    /// ```
    pub fn wait_blocking(&self) -> Error {
        if let Some(e) = self.err() {
            return e;
        }
        crate::done::block_on(self.done())
    }

    /// Runs `fut` until it completes or this context is done, whichever is first. Returns the
    /// future's output, or the context's error (and drops the future).
    ///
    /// It answers on its first poll: `Err` if the context is already done (the future is not
    /// polled), `Ok` if the future is ready at once. After that it favours the future: each poll
    /// polls `fut` first, and once `fut` is ready its output is returned, even if the context
    /// ended on the same wake-up — so work the future has finished (a row written, a message
    /// taken) is never thrown away. (tokio-util's `run_until_cancelled` does the same.)
    ///
    /// # Cancellation safety
    ///
    /// As safe as `fut`: when the context wins, `fut` is dropped at that point.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Ctx, Error};
    /// # futures::executor::block_on(async {
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// assert_eq!(ctx.run(async { 42 }).await, Ok(42));
    /// cancel.cancel();
    /// assert_eq!(ctx.run(std::future::pending::<()>()).await, Err(Error::Canceled));
    /// # });
    /// ```
    #[doc(alias = "run_until_cancelled")]
    #[doc(alias = "run_until_cancelled_owned")]
    pub fn run<F: Future>(&self, fut: F) -> Run<F> {
        Run::new(self.done(), fut)
    }

    /// [`run`](Ctx::run) with a timeout: runs `fut` under a child of this context that times
    /// out after `timeout` on this context's clock, and lives as long as the returned future
    /// (there is no handle to hold). Returns the future's output,
    /// `Err(`[`DeadlineExceeded`](Error::DeadlineExceeded)`)` if `timeout` passes first, or
    /// this context's error if it is done first (its own deadline included). tokio's
    /// `timeout(d, fut)`, on a context; Go: `WithTimeout` and a `select`.
    ///
    /// The timeout is counted from this call. Like `run`, it answers on its first poll when
    /// the context is already done or `fut` is ready at once; dropping the future drops `fut`
    /// and releases the child.
    ///
    /// # Cancellation safety
    ///
    /// As safe as `fut`: when the context or the timeout wins, `fut` is dropped at that point.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::{Ctx, Error};
    /// # futures::executor::block_on(async {
    /// let ctx = Ctx::background();
    /// assert_eq!(ctx.run_timeout(Duration::from_secs(5), async { 42 }).await, Ok(42));
    /// let slow = std::future::pending::<()>();
    /// let out = ctx.run_timeout(Duration::from_millis(10), slow).await;
    /// assert_eq!(out, Err(Error::DeadlineExceeded));
    /// # });
    /// ```
    #[doc(alias = "timeout")]
    #[cfg_attr(feature = "tracing", track_caller)]
    pub fn run_timeout<F: Future>(&self, timeout: Duration, fut: F) -> RunTimeout<F> {
        let (child, cancel) = self.with_timeout(timeout);
        RunTimeout::new(child.run(fut), cancel)
    }

    /// Wraps a stream: it yields `Ok(item)` for the inner items until this context is done,
    /// then one final `Err(error)`, then ends. If the inner stream ends first, so does this one.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use ctx_core::{Ctx, Error};
    /// # futures::executor::block_on(async {
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// let mut s = ctx.run_stream(futures::stream::iter(1..=3));
    /// assert_eq!(s.next().await, Some(Ok(1)));
    /// cancel.cancel();
    /// assert_eq!(s.next().await, Some(Err(Error::Canceled)));
    /// assert_eq!(s.next().await, None);
    /// # });
    /// ```
    pub fn run_stream<S: futures_core::Stream>(&self, stream: S) -> RunStream<S> {
        RunStream::new(self.done(), stream)
    }

    /// The current time on this context's clock (the root's clock).
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = ctx_core::Ctx::background();
    /// let t = ctx.now();
    /// assert!(ctx.now() >= t);
    /// ```
    pub fn now(&self) -> Instant {
        self.node.clock().now()
    }

    /// Time left until the deadline on this context's clock (zero once passed), or `None`
    /// without a deadline. What to put in a `grpc-timeout` header.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::Ctx;
    /// let (ctx, _c) = Ctx::background().with_timeout(Duration::from_secs(60));
    /// assert!(ctx.remaining().unwrap() <= Duration::from_secs(60));
    /// assert_eq!(Ctx::background().remaining(), None);
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        Some(self.deadline()?.saturating_duration_since(self.now()))
    }
}

// ===== impl Context =====

impl Context for Ctx {
    fn deadline(&self) -> Option<Instant> {
        Ctx::deadline(self)
    }
    fn done(&self) -> Done {
        Ctx::done(self)
    }
    fn err(&self) -> Option<Error> {
        Ctx::err(self)
    }
    fn cause(&self) -> Option<Cause> {
        Ctx::cause(self)
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        if key == TypeId::of::<crate::wrap::ClockKey>() {
            return Some(self.node.clock()); // lets `Ctx::wrap` find the clock of a wrapped `Ctx`
        }
        self.lookup(key)
    }
    fn is_done(&self) -> bool {
        Ctx::is_done(self)
    }
    fn on_done(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Option<Box<dyn FnOnce() -> bool + Send + 'static>> {
        let stop = self.after_func(f);
        Some(Box::new(move || stop.stop()))
    }
}

// ===== impl PartialEq, Display, Debug =====

/// Same context (clones of one handle), not parent and child.
impl PartialEq for Ctx {
    fn eq(&self, other: &Ctx) -> bool {
        self.node.ptr_eq(&other.node)
    }
}

impl Eq for Ctx {}

/// Hashes the context's identity, as `==` compares it: clones hash alike, so a `Ctx` can key a
/// `HashMap` or fill a `HashSet` (as tokio-util's `CancellationToken` can).
///
/// # Examples
///
/// ```
/// use std::collections::HashSet;
/// use ctx_core::Ctx;
///
/// let (a, _cancel_a) = Ctx::background().with_cancel();
/// let (b, _cancel_b) = a.with_cancel();
/// let seen: HashSet<Ctx> = [a.clone(), a.clone(), b.clone()].into_iter().collect();
/// assert_eq!(seen.len(), 2); // `a` and its clone are one context; `b` is its child
/// assert!(seen.contains(&a) && seen.contains(&b));
/// ```
impl Hash for Ctx {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.node.addr().hash(state);
    }
}

/// Names the chain as Go's `String()` does: `context.Background.WithCancel.WithValue(u32)`. A
/// merged context names both: `<self>.WithMerged(<other>)`.
impl fmt::Display for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        tree::write_chain(f, &self.node)
    }
}

/// Shows the chain, whether it is done, and the deadline.
///
/// It reads [`err`](Ctx::err), so it may notice a passed deadline and end the context there:
/// wakers woken and after-funcs run on the formatting thread before `fmt` returns (see *A
/// read may end the context* in [`err`](Ctx::err)); an after-func that blocks then blocks
/// the formatting.
///
/// # Examples
///
/// ```
/// let (ctx, _cancel) = ctx_core::Ctx::background().with_cancel();
/// let shown = format!("{ctx:?}");
/// assert!(shown.starts_with("Ctx {"), "{shown}");
/// assert!(shown.contains("err: None"), "{shown}");
/// ```
impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("name", &format_args!("{self}"))
            .field("err", &self.err())
            .field("deadline", &self.deadline())
            .finish()
    }
}
