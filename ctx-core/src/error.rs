//! [`Error`], the two ways a context ends, and [`Cause`], the richer reason behind it.

use std::sync::{Arc, LazyLock};

/// Why a context is done: canceled, or its deadline passed.
///
/// This is the whole set, as in Go: `context.Canceled` and `context.DeadlineExceeded`.
/// The richer "why" travels separately as a [`Cause`] (see [`Ctx::cause`](crate::Ctx::cause)).
///
/// # Examples
///
/// ```
/// use ctx_core::{Ctx, Error};
///
/// let (ctx, cancel) = Ctx::background().with_cancel();
/// cancel.cancel();
/// assert_eq!(ctx.err(), Some(Error::Canceled));
/// assert_eq!(Error::Canceled.to_string(), "context canceled");
/// assert!(Error::DeadlineExceeded.is_timeout());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The context was canceled: a cancel handle was called or dropped, or an ancestor was
    /// canceled. Go: `context.Canceled`.
    #[error("context canceled")]
    Canceled,
    /// The context's deadline (or an ancestor's) passed. Go: `context.DeadlineExceeded`.
    #[error("context deadline exceeded")]
    DeadlineExceeded,
}

impl Error {
    /// `true` for [`Error::DeadlineExceeded`], as Go's `DeadlineExceeded.Timeout()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::Error;
    /// assert!(Error::DeadlineExceeded.is_timeout());
    /// assert!(!Error::Canceled.is_timeout());
    /// ```
    #[must_use]
    pub fn is_timeout(self) -> bool {
        matches!(self, Error::DeadlineExceeded)
    }

    /// This error as a shared [`Cause`]. The same `Arc` is returned every time, so a cause-less
    /// cancel allocates nothing.
    pub(crate) fn as_cause(self) -> Cause {
        static CANCELED: LazyLock<Cause> = LazyLock::new(|| Arc::new(Error::Canceled));
        static DEADLINE: LazyLock<Cause> = LazyLock::new(|| Arc::new(Error::DeadlineExceeded));
        match self {
            Error::Canceled => CANCELED.clone(),
            Error::DeadlineExceeded => DEADLINE.clone(),
        }
    }
}

/// The cause of a context whose cancel handle was dropped: its last [`CancelHandle`] or
/// [`CancelCauseHandle`] clone went out of scope without [`cancel`](crate::CancelHandle::cancel) or
/// [`disarm`](crate::CancelHandle::disarm). The context's [`err()`](crate::Ctx::err) is
/// [`Error::Canceled`], as for any cancel; its [`cause()`](crate::Ctx::cause) (and that of
/// every descendant canceled with it) downcasts to `HandleDropped`.
///
/// Dropping the last handle cancels on purpose (it is Go's `defer cancel()`, done by the
/// compiler), but a handle dropped by mistake cancels too, at once, and this cause is how you
/// find out. The usual slip is `let (ctx, _) = ...`: `_` is not a binding, so the handle is
/// dropped at the end of the statement and `ctx` is born canceled. `.0` does the same.
///
/// [`CancelHandle`]: crate::CancelHandle
/// [`CancelCauseHandle`]: crate::CancelCauseHandle
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ctx_core::{Ctx, Error, HandleDropped};
///
/// let root = Ctx::background();
/// let (ctx, _) = root.with_timeout(Duration::from_secs(5)); // the trap: `_` drops the handle
/// assert_eq!(ctx.err(), Some(Error::Canceled));
/// assert!(ctx.cause().unwrap().is::<HandleDropped>());
///
/// let (ctx, _cancel) = root.with_timeout(Duration::from_secs(5)); // the fix: bind it
/// assert_eq!(ctx.err(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, thiserror::Error)]
#[error("context canceled: its cancel handle was dropped")]
pub struct HandleDropped;

impl HandleDropped {
    /// `HandleDropped` as a shared [`Cause`]: the same `Arc` every time, so the drop of a
    /// handle allocates nothing.
    pub(crate) fn as_cause() -> Cause {
        static DROPPED: LazyLock<Cause> = LazyLock::new(|| Arc::new(HandleDropped));
        DROPPED.clone()
    }
}

impl From<Error> for std::io::Error {
    /// `Canceled` becomes `Interrupted`, `DeadlineExceeded` becomes `TimedOut`; the `Error` is
    /// kept as the source.
    fn from(err: Error) -> Self {
        let kind = match err {
            Error::Canceled => std::io::ErrorKind::Interrupted,
            Error::DeadlineExceeded => std::io::ErrorKind::TimedOut,
        };
        std::io::Error::new(kind, err)
    }
}

/// The reason a context was canceled, as given to
/// [`CancelCauseHandle::cancel`](crate::CancelCauseHandle::cancel) or
/// [`Ctx::with_deadline_cause`](crate::Ctx::with_deadline_cause).
///
/// A cause comes back from [`Ctx::cause`](crate::Ctx::cause) as the very same `Arc` (compare
/// with [`Arc::ptr_eq`]), on the context and on every descendant. When no cause was given,
/// [`Ctx::cause`](crate::Ctx::cause) returns a `Cause` whose concrete type is [`Error`], so
/// `cause.downcast_ref::<ctx_core::Error>()` works.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use ctx_core::{Cause, Ctx};
///
/// let why: Cause = Arc::new(std::io::Error::other("client went away"));
/// let (ctx, cancel) = Ctx::background().with_cancel_cause();
/// cancel.cancel(why.clone());
/// assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
/// ```
///
/// Everything that takes a cause ([`CancelCauseHandle::cancel`](crate::CancelCauseHandle::cancel),
/// [`with_deadline_cause`](crate::Ctx::with_deadline_cause),
/// [`with_timeout_cause`](crate::Ctx::with_timeout_cause), and the errors of the adapters'
/// `Group` tasks) accepts any `E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>`:
/// every error type, `anyhow::Error`, `Box<dyn Error + Send + Sync>`, `&str` and `String`. A
/// `Cause` (also one inside such a box) is kept as the same `Arc`; any other value is put in
/// a new `Arc` once:
///
/// * `cancel(MyErr)` gives a cause that downcasts to `MyErr`, and so does a boxed `MyErr`;
/// * `cancel(Arc::new(MyErr))` gives one that downcasts to `Arc<MyErr>` (an `Arc<MyErr>` is an
///   error of its own, not a `Cause`): write `Arc::new(MyErr) as Cause` when you need the
///   `Arc` back with `Arc::ptr_eq`;
/// * `cancel("overloaded")` and `cancel(format!(..))` give a cause whose `Display` is the
///   text;
/// * `cancel(anyhow_error)` gives a cause whose `Display` and `source()` chain are the
///   `anyhow::Error`'s (converted by anyhow's own `From`).
///
/// ```
/// use std::sync::Arc;
/// use ctx_core::Ctx;
///
/// #[derive(Debug)]
/// struct Overloaded;
/// impl std::fmt::Display for Overloaded {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("overloaded")
///     }
/// }
/// impl std::error::Error for Overloaded {}
///
/// let (ctx, cancel) = Ctx::background().with_cancel_cause();
/// cancel.cancel(Overloaded);
/// assert!(ctx.cause().unwrap().downcast_ref::<Overloaded>().is_some());
///
/// let (ctx, cancel) = Ctx::background().with_cancel_cause();
/// cancel.cancel("draining for a deploy");
/// assert_eq!(ctx.cause().unwrap().to_string(), "draining for a deploy");
/// ```
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// `err` as a [`Cause`]: a value that already is a `Cause` comes back as that same `Arc`; any
/// other value is wrapped once.
///
/// Any `E: Into<Box<dyn Error + Send + Sync>>` is taken: every error type (a `Cause` too:
/// `Arc<T: Error + ?Sized>` is an error), `anyhow::Error`, a boxed error, `&str`, `String`.
/// The conversion boxes the value, and a box that holds a `Cause` is unboxed back to it (a
/// downcast, no specialization). Any other box becomes the `Arc` (the value is moved once
/// more; a zero-sized error allocates nothing for the box).
pub(crate) fn into_cause<E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>>(err: E) -> Cause {
    let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = err.into();
    match boxed.downcast::<Cause>() {
        Ok(cause) => *cause,
        Err(other) => Cause::from(other),
    }
}
