//! [`Forward`]: a context of your own that wraps a [`Ctx`], changes what it needs and forwards
//! the rest (Go: a struct that embeds `context.Context`). Owns the blanket
//! `impl<T: Forward> Context for T`.

use std::any::{Any, TypeId};
use std::time::Instant;

use crate::{Cause, Context, Ctx, Done, Error};

/// A [`Context`] that answers from the [`Ctx`] it wraps, except for the methods you write:
/// implement [`inner`](Forward::inner), override one method, inherit the rest. Every type that
/// implements `Forward` implements [`Context`] (a blanket impl, static dispatch: it costs what
/// the hand-written forwarding costs). Go embeds `context.Context` in a struct for the same.
///
/// Use it for a wrapper that hides values, adds a value without deriving a node, shifts a
/// deadline, reports another `err()`, or substitutes `done()`. Implement [`Context`] yourself
/// only for a context that is not a `Ctx` underneath at all.
///
/// Left as it is, [`done()`](Forward::done) is the inner `Ctx`'s own: [`Ctx::wrap`] then links
/// the wrap's children straight to that `Ctx` (no watcher, canceled in the same call), and
/// they take *your* `err()` and `cause()` when it fires. A `done()` you substitute is watched as
/// any foreign future is (see [`Done::new`]), and [`on_done`](Forward::on_done) stops
/// forwarding to the inner `Ctx`, so that the wrap follows your `done()`, not the inner's.
///
/// A type that implements `Forward` has each method twice, once per trait: with both traits in
/// scope, call them as `Context::err(&x)` (or on `Ctx::wrap(x)`).
///
/// # Examples
///
/// ```
/// use ctx_core::{Ctx, Error, Forward};
///
/// /// Hides the caller's values; everything else is the inner context's.
/// struct NoValues(Ctx);
///
/// impl Forward for NoValues {
///     fn inner(&self) -> &Ctx { &self.0 }
///     fn value_any(&self, _key: std::any::TypeId) -> Option<&(dyn std::any::Any + Send + Sync)> { None }
/// }
///
/// let (parent, cancel) = Ctx::background().with_value(7u32).with_cancel();
/// let (child, _c) = Ctx::wrap(NoValues(parent)).with_cancel();
/// assert_eq!(child.value::<u32>(), None);
/// cancel.cancel();
/// assert_eq!(child.err(), Some(Error::Canceled)); // linked directly: no watcher, no delay
/// ```
#[doc(alias = "embed")]
pub trait Forward: Send + Sync + 'static {
    /// The context every method you do not override answers from.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Ctx, Forward};
    /// struct Same(Ctx);
    /// impl Forward for Same {
    ///     fn inner(&self) -> &Ctx { &self.0 }
    /// }
    /// let ctx = Ctx::background();
    /// assert_eq!(Same(ctx.clone()).inner(), &ctx);
    /// ```
    fn inner(&self) -> &Ctx;

    /// [`Context::deadline`]; by default the inner context's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ctx_core::{Ctx, Forward};
    /// /// Ten seconds less than the caller allows: time to answer after giving up.
    /// struct Margin(Ctx);
    /// impl Forward for Margin {
    ///     fn inner(&self) -> &Ctx { &self.0 }
    ///     fn deadline(&self) -> Option<Instant> { Some(self.0.deadline()? - Duration::from_secs(10)) }
    /// }
    /// let (ctx, _c) = Ctx::background().with_timeout(Duration::from_secs(60));
    /// let shifted = Ctx::wrap(Margin(ctx.clone()));
    /// assert_eq!(shifted.deadline(), Some(ctx.deadline().unwrap() - Duration::from_secs(10)));
    /// ```
    fn deadline(&self) -> Option<Instant> {
        self.inner().deadline()
    }

    /// [`Context::done`]; by default the inner context's, which [`Ctx::wrap`] links to
    /// directly (no watcher).
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Ctx, Done, Error, Forward};
    /// # futures::executor::block_on(async {
    /// /// Done when the process shuts down, whatever the inner context says.
    /// struct Detached(Ctx, Ctx);
    /// impl Forward for Detached {
    ///     fn inner(&self) -> &Ctx { &self.0 }
    ///     fn done(&self) -> Done { self.1.done() }
    ///     fn err(&self) -> Option<Error> { self.1.err() }
    ///     fn cause(&self) -> Option<ctx_core::Cause> { self.1.cause() }
    /// }
    /// let (shutdown, stop) = Ctx::background().with_cancel();
    /// let (request, _c) = Ctx::background().with_cancel();
    /// let ctx = Ctx::wrap(Detached(request, shutdown));
    /// stop.cancel();
    /// assert_eq!(ctx.done().await, Error::Canceled);
    /// # });
    /// ```
    fn done(&self) -> Done {
        self.inner().done()
    }

    /// [`Context::err`]; by default the inner context's.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Ctx, Error, Forward};
    /// /// Reports every cancel as a timeout.
    /// struct AsTimeout(Ctx);
    /// impl Forward for AsTimeout {
    ///     fn inner(&self) -> &Ctx { &self.0 }
    ///     fn err(&self) -> Option<Error> { self.0.err().map(|_| Error::DeadlineExceeded) }
    /// }
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// let wrapped = Ctx::wrap(AsTimeout(ctx));
    /// cancel.cancel();
    /// assert_eq!(wrapped.err(), Some(Error::DeadlineExceeded));
    /// ```
    fn err(&self) -> Option<Error> {
        self.inner().err()
    }

    /// [`Context::cause`]; by default the inner context's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ctx_core::{Cause, Ctx, Forward};
    /// struct Same(Ctx);
    /// impl Forward for Same {
    ///     fn inner(&self) -> &Ctx { &self.0 }
    /// }
    /// let (ctx, cancel) = Ctx::background().with_cancel_cause();
    /// let why: Cause = Arc::new(std::fmt::Error);
    /// cancel.cancel(why.clone());
    /// assert!(Arc::ptr_eq(&Ctx::wrap(Same(ctx)).cause().unwrap(), &why));
    /// ```
    fn cause(&self) -> Option<Cause> {
        self.inner().cause()
    }

    /// [`Context::value_any`]; by default the inner context's (which also carries its clock to
    /// [`Ctx::wrap`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::any::{Any, TypeId};
    /// use ctx_core::{Ctx, Forward};
    /// /// Adds a value without deriving a context.
    /// struct Tagged(Ctx, &'static str);
    /// impl Forward for Tagged {
    ///     fn inner(&self) -> &Ctx { &self.0 }
    ///     fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
    ///         if key == TypeId::of::<&'static str>() { Some(&self.1) } else { ctx_core::Context::value_any(&self.0, key) }
    ///     }
    /// }
    /// let ctx = Ctx::wrap(Tagged(Ctx::background().with_value(1u8), "edge"));
    /// assert_eq!((ctx.value::<&str>(), ctx.value::<u8>()), (Some(&"edge"), Some(&1)));
    /// ```
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        Context::value_any(self.inner(), key)
    }

    /// [`Context::on_done`]. By default the inner context's callback while
    /// [`done()`](Forward::done) is the inner's own, and `None` (not supported) once you
    /// substitute `done()`: a callback on the inner `Ctx` would fire when *it* is done, not when
    /// your `done()` does. Override it together with `done()` if your context can call back.
    /// To tell, it calls [`done()`](Forward::done) once (and drops what it returns).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    /// use ctx_core::{Context, Ctx, Forward};
    /// struct Same(Ctx);
    /// impl Forward for Same {
    ///     fn inner(&self) -> &Ctx { &self.0 }
    /// }
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let r = ran.clone();
    /// let _stop = Context::on_done(&Same(ctx), Box::new(move || r.store(true, SeqCst))).unwrap();
    /// cancel.cancel();
    /// assert!(ran.load(SeqCst));
    /// ```
    #[allow(clippy::type_complexity)]
    fn on_done(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Option<Box<dyn FnOnce() -> bool + Send + 'static>> {
        let (mine, inner) = (self.done(), self.inner().done());
        let same = match (mine.node(), inner.node()) {
            (Some(a), Some(b)) => crate::tree::Arc::ptr_eq(a, b),
            _ => mine.is_never() && inner.is_never(),
        };
        drop((mine, inner));
        if same {
            Context::on_done(self.inner(), f)
        } else {
            drop(f);
            None
        }
    }
}

// ===== impl Context =====

/// Every method answers as the type's [`Forward`] method does; `is_done` is `err().is_some()`.
impl<T: Forward> Context for T {
    fn deadline(&self) -> Option<Instant> {
        Forward::deadline(self)
    }
    fn done(&self) -> Done {
        Forward::done(self)
    }
    fn err(&self) -> Option<Error> {
        Forward::err(self)
    }
    fn cause(&self) -> Option<Cause> {
        Forward::cause(self)
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        Forward::value_any(self, key)
    }
    fn on_done(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Option<Box<dyn FnOnce() -> bool + Send + 'static>> {
        Forward::on_done(self, f)
    }
}
