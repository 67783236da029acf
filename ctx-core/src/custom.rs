//! The [`Context`] trait for contexts of your own: Go's `context.Context` interface, object safe.

use std::any::{Any, TypeId};
use std::time::Instant;

use crate::{Cause, Done, Error};

/// What every context answers: its deadline, a future for when it is done, why it is done,
/// and request-scoped values. Go: `context.Context`.
///
/// [`Ctx`](crate::Ctx) implements it, and so can a type of your own. The common case — a type
/// that wraps a `Ctx` and changes one method — implements [`Forward`](crate::Forward) instead:
/// it writes `inner()` and the method it changes, and inherits the rest (it is then a
/// `Context` through a blanket impl). Implement `Context` itself for a context that is not a
/// `Ctx` underneath (see [`on_done`](Context::on_done)'s example).
///
/// [`Ctx::wrap`](crate::Ctx::wrap) turns such a type into a parent that contexts can be
/// derived from. If your `done()` returns the wrapped `Ctx`'s `done()`, children are linked to
/// that `Ctx`, with no watcher; a `done()` of your own making ([`Done::new`]) is watched by one
/// watcher per wrapped context, unless you implement [`on_done`](Context::on_done). Either way
/// the children take your own `err()` and `cause()` when your `done()` fires.
///
/// # Examples
///
/// ```
/// use std::any::{Any, TypeId};
/// use ctx_core::{Ctx, Error, Forward};
///
/// /// A context that hides every value: `Forward` answers the rest from the `Ctx`.
/// struct NoValues(Ctx);
///
/// impl Forward for NoValues {
///     fn inner(&self) -> &Ctx { &self.0 }
///     fn value_any(&self, _key: TypeId) -> Option<&(dyn Any + Send + Sync)> { None }
/// }
///
/// let (parent, cancel) = Ctx::background().with_value(7u32).with_cancel();
/// let wrapped = Ctx::wrap(NoValues(parent));
/// let (child, _c) = wrapped.with_cancel();
/// assert_eq!(child.value::<u32>(), None);
/// cancel.cancel();
/// assert_eq!(child.err(), Some(Error::Canceled)); // linked directly: no delay
/// ```
pub trait Context: Send + Sync + 'static {
    /// The earliest deadline of this context and its ancestors, or `None`.
    fn deadline(&self) -> Option<Instant>;

    /// A future that completes with the error once this context is done.
    fn done(&self) -> Done;

    /// `None` until the context is done, then the same [`Error`] forever.
    fn err(&self) -> Option<Error>;

    /// `None` until the context is done, then the same [`Cause`] forever.
    fn cause(&self) -> Option<Cause>;

    /// The value stored for the type whose [`TypeId`] is `key`, from the nearest context that
    /// has one. [`Ctx::value`](crate::Ctx::value) is the typed way to call this.
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)>;

    /// `err().is_some()`.
    fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// Calls `f` once, when this context is done — for a context that can call back by itself
    /// (Go's `afterFuncer`). Returns a function that cancels the registration: it returns `true`
    /// if it kept `f` from running. The default returns `None`: not supported.
    ///
    /// [`Ctx::wrap`](crate::Ctx::wrap) asks for it when [`done()`](Context::done) is a future of
    /// your own ([`Done::new`]): with a callback, the children of the wrapped context are
    /// canceled inside `f`, with no watcher. Without one, a watcher re-polls the future whenever
    /// it wakes. `wrap` calls the returned function when the wrapped context is dropped or done.
    ///
    /// Your part of the contract:
    ///
    /// * call `f` at most once, after [`err()`](Context::err) answers `Some` (the children take
    ///   your `err()` and `cause()`), and at once (or before returning) if the context is done
    ///   already;
    /// * call `f` while holding no lock that `f` may need: it cancels the derived contexts
    ///   inline and runs their after-funcs, which may use your context.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::any::{Any, TypeId};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Instant;
    /// use ctx_core::{Cause, Context, Ctx, Done, Error};
    ///
    /// type Callback = Box<dyn FnOnce() + Send>;
    ///
    /// /// Done when `shut()` is called; calls back whoever registered.
    /// #[derive(Default)]
    /// struct Switch(Mutex<(bool, Vec<Option<Callback>>)>);
    ///
    /// impl Switch {
    ///     fn shut(&self) {
    ///         let callbacks = {
    ///             let mut s = self.0.lock().unwrap();
    ///             s.0 = true;
    ///             std::mem::take(&mut s.1)
    ///         };
    ///         callbacks.into_iter().flatten().for_each(|f| f()); // after unlocking
    ///     }
    /// }
    ///
    /// struct SwitchCtx(Arc<Switch>);
    ///
    /// impl Context for SwitchCtx {
    ///     fn deadline(&self) -> Option<Instant> { None }
    ///     fn done(&self) -> Done {
    ///         let (tx, rx) = futures::channel::oneshot::channel::<()>();
    ///         let _ = self.on_done(Box::new(move || { let _ = tx.send(()); }));
    ///         Done::new(async move { let _ = rx.await; Error::Canceled })
    ///     }
    ///     fn err(&self) -> Option<Error> {
    ///         self.0.0.lock().unwrap().0.then_some(Error::Canceled)
    ///     }
    ///     fn cause(&self) -> Option<Cause> { self.err().map(|e| Arc::new(e) as Cause) }
    ///     fn value_any(&self, _key: TypeId) -> Option<&(dyn Any + Send + Sync)> { None }
    ///
    ///     fn on_done(&self, f: Box<dyn FnOnce() + Send>) -> Option<Box<dyn FnOnce() -> bool + Send>> {
    ///         let mut s = self.0.0.lock().unwrap();
    ///         if s.0 {
    ///             drop(s);
    ///             f(); // done already: call back at once, unlocked
    ///             return Some(Box::new(|| false));
    ///         }
    ///         s.1.push(Some(f));
    ///         let (switch, at) = (self.0.clone(), s.1.len() - 1);
    ///         Some(Box::new(move || {
    ///             let f = switch.0.lock().unwrap().1.get_mut(at).and_then(Option::take);
    ///             f.is_some()
    ///         }))
    ///     }
    /// }
    ///
    /// let switch = Arc::new(Switch::default());
    /// let wrapped = Ctx::wrap(SwitchCtx(switch.clone())); // no watcher
    /// let (child, _cancel) = wrapped.with_cancel();
    /// switch.shut();
    /// assert_eq!(child.err(), Some(Error::Canceled)); // canceled inside `shut()`
    /// ```
    #[allow(clippy::type_complexity)]
    fn on_done(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Option<Box<dyn FnOnce() -> bool + Send + 'static>> {
        drop(f);
        None
    }
}
