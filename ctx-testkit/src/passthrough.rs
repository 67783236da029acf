//! [`Passthrough`]: a context of the user's own type that changes nothing.

use std::any::{Any, TypeId};
use std::time::Instant;

use ctx_core::{Cause, Context, Ctx, Done, Error};

/// A [`Context`] of a type other than `Ctx` that answers everything from the `Ctx` it wraps.
///
/// `Ctx::wrap(Passthrough(ctx))` takes ctx-core's path for custom parents (the one Go's tests
/// exercise with `otherContext`) while behaving exactly like `ctx`: use it to check that code
/// works with contexts of users' own types, not just with `Ctx`.
///
/// # Examples
///
/// ```
/// use ctx_core::{Ctx, Error};
/// use ctx_testkit::Passthrough;
///
/// let (inner, cancel) = Ctx::background().with_value(7u8).with_cancel();
/// let wrapped = Ctx::wrap(Passthrough(inner));
/// let (child, _c) = wrapped.with_cancel();
/// assert_eq!(child.value::<u8>(), Some(&7));
/// cancel.cancel();
/// assert_eq!(child.err(), Some(Error::Canceled)); // at once: its done() is the Ctx's
/// ```
#[derive(Debug, Clone)]
pub struct Passthrough(pub Ctx);

impl Context for Passthrough {
    fn deadline(&self) -> Option<Instant> {
        self.0.deadline()
    }
    fn done(&self) -> Done {
        self.0.done()
    }
    fn err(&self) -> Option<Error> {
        self.0.err()
    }
    fn cause(&self) -> Option<Cause> {
        self.0.cause()
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.0.value_any(key)
    }
}
