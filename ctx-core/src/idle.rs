//! [`IdleHandle`]: the handle of [`Ctx::with_idle_timeout`](crate::Ctx::with_idle_timeout),
//! which moves its deadline later (`touch`) or cancels it.

use std::fmt;

use crate::CancelHandle;
use crate::tree::{self, Arc, Node};

/// The handle of a context made by [`Ctx::with_idle_timeout`](crate::Ctx::with_idle_timeout):
/// [`touch`](IdleHandle::touch) records activity (the deadline moves to now plus the idle
/// timeout), [`cancel`](IdleHandle::cancel) ends the context with
/// [`Error::Canceled`](crate::Error::Canceled).
///
/// `Clone + Send + Sync`; a clone is the same handle. **Dropping the last clone cancels**, as
/// for [`CancelHandle`]; [`disarm`](IdleHandle::disarm) gives a clone up without canceling
/// (the context then still times out when idle). Like a `CancelHandle`, an armed handle keeps
/// its context's node alive.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ctx_core::Error;
/// let clock = ctx_testkit::MockClock::new();
/// let (conn, idle) = clock.background().with_idle_timeout(Duration::from_secs(60));
/// clock.advance(Duration::from_secs(50));
/// idle.touch(); // a request came in
/// clock.advance(Duration::from_secs(50));
/// assert_eq!(conn.err(), None);
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(conn.err(), Some(Error::DeadlineExceeded));
/// ```
#[must_use = "dropping the last handle cancels the context at once; bind it (`let (ctx, idle)`) or call `disarm()`"]
#[derive(Clone)]
pub struct IdleHandle {
    /// The right to cancel (its clone count, its drop): exactly a `CancelHandle`'s.
    cancel: CancelHandle,
    /// The node, for `touch`: one more strong reference, given up with the handle.
    node: Arc<Node>,
}

impl IdleHandle {
    /// The handle of a node made with its handle's owner (`Node::new_cancel`).
    pub(crate) fn adopt(owner: Arc<Node>) -> IdleHandle {
        IdleHandle {
            node: Arc::clone(&owner),
            cancel: CancelHandle::adopt(owner),
        }
    }

    /// Records activity: the context's deadline moves to now (on its clock) plus the idle
    /// timeout, unless it is already later. Does nothing once the context is done.
    ///
    /// Takes no lock, allocates nothing and arms no timer: one clock read and one atomic
    /// `fetch_max`, so it is cheap enough to call for every message, byte or frame. (The
    /// context's one timer, when it fires, finds the later deadline and sleeps again.) May be
    /// called from any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = ctx_testkit::MockClock::new();
    /// let (ctx, idle) = clock.background().with_idle_timeout(Duration::from_secs(30));
    /// clock.advance(Duration::from_secs(20));
    /// idle.touch();
    /// assert_eq!(ctx.deadline(), Some(clock.now() + Duration::from_secs(30)));
    /// ```
    #[inline]
    pub fn touch(&self) {
        tree::touch(&self.node);
    }

    /// Cancels the context with [`Error::Canceled`](crate::Error::Canceled) (if its idle
    /// deadline has already passed, it is [`Error::DeadlineExceeded`](crate::Error::DeadlineExceeded)
    /// instead). Idempotent; may be called from any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::Error;
    /// let clock = ctx_testkit::MockClock::new(); // `Ctx::background()` works the same
    /// let (ctx, idle) = clock.background().with_idle_timeout(Duration::from_secs(30));
    /// idle.cancel();
    /// assert_eq!(ctx.err(), Some(Error::Canceled));
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    #[inline]
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Consumes this clone without canceling, even if it is the last one. The context still
    /// ends when it is idle for its timeout, or when its parent is done.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = ctx_testkit::MockClock::new();
    /// let (ctx, idle) = clock.background().with_idle_timeout(Duration::from_secs(30));
    /// idle.disarm();
    /// assert_eq!(ctx.err(), None);
    /// ```
    pub fn disarm(self) {
        self.cancel.disarm();
    }
}

/// Whether the context is done (it never blocks nor ends the context).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let clock = ctx_testkit::MockClock::new();
/// let (_ctx, idle) = clock.background().with_idle_timeout(Duration::from_secs(30));
/// assert_eq!(format!("{idle:?}"), "IdleHandle { done: false }");
/// ```
impl fmt::Debug for IdleHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleHandle")
            .field("done", &!self.node.expect_cancel().is_open())
            .finish()
    }
}
