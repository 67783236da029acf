//! The [`Context`] trait: Go's `context.Context` interface, object safe.

use std::any::{Any, TypeId};
use std::time::Instant;

use crate::{Cause, Done, Error};

/// What every context answers: its deadline, a future for when it is done, why it is done,
/// and request-scoped values. Go: `context.Context`.
///
/// [`Ctx`](crate::Ctx) implements it, and so can a type of your own — typically by wrapping a
/// `Ctx` and changing one method. [`Ctx::wrap`](crate::Ctx::wrap) then turns it into a parent
/// that contexts can be derived from. If your `done()` returns the wrapped `Ctx`'s `done()`,
/// children are linked to that `Ctx` directly, with no watcher; a `done()` of your own making
/// ([`Done::new`]) is watched by one watcher per wrapped context.
///
/// # Examples
///
/// ```
/// use std::any::{Any, TypeId};
/// use std::time::Instant;
/// use ctx_core::{Cause, Context, Ctx, Done, Error};
///
/// /// A context that hides every value.
/// struct NoValues(Ctx);
///
/// impl Context for NoValues {
///     fn deadline(&self) -> Option<Instant> { self.0.deadline() }
///     fn done(&self) -> Done { self.0.done() }
///     fn err(&self) -> Option<Error> { self.0.err() }
///     fn cause(&self) -> Option<Cause> { self.0.cause() }
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
}
