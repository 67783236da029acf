//! [`Passthrough`]: a context of the user's own type that changes nothing.

use ctx_core::{Ctx, Forward};

/// A [`Context`](ctx_core::Context) of a type other than `Ctx` that answers everything from the
/// `Ctx` it wraps (a [`Forward`] that overrides nothing).
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

impl Forward for Passthrough {
    fn inner(&self) -> &Ctx {
        &self.0
    }
}
