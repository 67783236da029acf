//! [`CancelHandle`] and [`CancelCauseHandle`]: the right to cancel one context.

use std::fmt;

use crate::Cause;
use crate::loom::Ordering;
use crate::tree::{self, Arc, Node, Site};

/// Shared by both handle types: a strong reference to the node, and the node's clone count.
/// The handles' `Clone` (count one more), drop (the last clone cancels), `disarm` (give a clone
/// up without canceling) and `Debug` are this type's; the handles only add their `cancel`
/// methods.
///
/// The handle holds the node strongly, as Go's `CancelFunc` closure and tokio-util's
/// `DropGuard` do: an armed handle keeps its node (not the `Ctx` clones, nor anything the
/// node does not already hold) alive until it is dropped or disarmed. Canceling is then one
/// step from the handle, with no upgrade that could fail, and a handle costs one reference
/// count where a weak one cost two (`downgrade`, then `upgrade` to cancel).
///
/// Invariant: each `HandleCore` with `node: Some` holds one strong reference to the node and
/// one unit of the node's `handles` count: `clone` adds the new clone's unit, `release` gives
/// this clone's up at most once (it empties `node`). A clone released once the context is
/// done keeps its unit: the context is done, the count no longer matters (nothing reads it
/// again: only an open node's count can reach zero and cancel), and its drop need not touch
/// the count. So does the last clone, which knows it is the last from a load. Its strong
/// reference is always given up with it.
struct HandleCore {
    /// `None` once disarmed (or dropped).
    node: Option<Arc<Node>>,
}

impl HandleCore {
    /// The handle of a node made with its handle's owner (`Node::new_cancel`).
    #[inline]
    fn adopt(node: Arc<Node>) -> HandleCore {
        // The node was created with `handles == 1`: this is that one.
        HandleCore { node: Some(node) }
    }

    #[cfg_attr(feature = "tracing", track_caller)]
    #[inline]
    fn cancel(&self, cause: Option<Cause>) {
        if let Some(node) = &self.node {
            tree::cancel(node, cause, Site::caller());
        }
    }

    /// Gives this clone up without canceling, even if it was the last one.
    fn disarm(&mut self) {
        let _ = self.release();
    }

    /// Gives up this clone (and, with the returned value, its strong reference); the node if
    /// this was the last clone of a live node, for the caller to cancel.
    #[inline(always)]
    fn release(&mut self) -> Option<Arc<Node>> {
        let node = self.node.take()?;
        let c = node.expect_cancel();
        if !c.is_open() {
            return None; // done (by a clone, a parent, a deadline): the count no longer matters
        }
        // AcqRel: the last releaser sees every other clone's release before it cancels. The
        // sole clone (the usual handle, never cloned) learns it is the last from a load, which
        // pairs with those releases too: only a clone can make another, and with none left
        // nothing reads the count again, so it need not be written.
        let handles = c.handles();
        let last = handles.load(Ordering::Acquire) == 1 || handles.fetch_sub(1, Ordering::AcqRel) == 1;
        last.then_some(node)
    }

    /// The handles' `Debug`: their name and whether this clone is still armed.
    fn debug(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        f.debug_struct(name).field("armed", &self.node.is_some()).finish()
    }
}

impl Clone for HandleCore {
    fn clone(&self) -> HandleCore {
        let node = self.node.as_ref().map(|node| {
            // A `u32` count: as `Arc` does, abort rather than wrap (billions of clones).
            if node.expect_cancel().handles().fetch_add(1, Ordering::Relaxed) > u32::MAX / 2 {
                std::process::abort();
            }
            Arc::clone(node)
        });
        HandleCore { node }
    }
}

/// Dropping the last armed clone cancels with `Canceled` and the cause
/// [`HandleDropped`](crate::HandleDropped); the event names where the context was created,
/// not this drop.
impl Drop for HandleCore {
    fn drop(&mut self) {
        if let Some(node) = self.release() {
            tree::cancel_dropped(&node);
        }
    }
}

// ===== CancelHandle =====

/// Cancels the context it came with, with [`Error::Canceled`](crate::Error::Canceled). Go:
/// `context.CancelFunc`.
///
/// `Clone + Send + Sync`. [`cancel`](CancelHandle::cancel) is idempotent and may be called from
/// any thread. **Dropping the last clone cancels** (Go's `defer cancel()`, done by the
/// compiler), with the cause [`HandleDropped`](crate::HandleDropped) so that a handle dropped
/// by mistake (`let (ctx, _) = ...`) is easy to tell apart; [`disarm`](CancelHandle::disarm)
/// gives a clone up without canceling.
///
/// The handle of a deadline context cancels with `Canceled` and no cause; if the deadline has
/// already passed, the context is `DeadlineExceeded` instead.
///
/// **An armed handle keeps its context alive.** Each clone holds the context's node (and so
/// its parents and their values) until it is dropped or disarmed, even when every
/// [`Ctx`](crate::Ctx) clone is gone; Go's `CancelFunc` closure and tokio-util's `DropGuard`
/// do the same. A handle kept for later (in a struct, a map of requests) holds that memory
/// until then; once every handle and `Ctx` clone is gone, the context releases everything it
/// took from its parent, canceled or not.
///
/// ```
/// use std::sync::Arc;
/// use ctx_core::Ctx;
/// let big = Arc::new([0u8; 1024]);
/// let (ctx, cancel) = Ctx::background().with_value(big.clone()).with_cancel();
/// drop(ctx);
/// assert_eq!(Arc::strong_count(&big), 2); // the handle holds the context, which holds `big`
/// drop(cancel);
/// assert_eq!(Arc::strong_count(&big), 1); // released
/// ```
///
/// # Examples
///
/// ```
/// use ctx_core::{Ctx, Error, HandleDropped};
/// let (ctx, cancel) = Ctx::background().with_cancel();
/// let other = cancel.clone();
/// drop(cancel);
/// assert_eq!(ctx.err(), None); // a clone is still alive
/// drop(other);
/// assert_eq!(ctx.err(), Some(Error::Canceled));
/// assert!(ctx.cause().unwrap().is::<HandleDropped>());
/// ```
#[doc(alias = "CancelFunc")]
#[doc(alias = "drop_guard")]
#[doc(alias = "DropGuard")]
#[must_use = "dropping the last handle cancels the context at once; bind it (`let (ctx, cancel)`) or call `disarm()`"]
#[derive(Clone)]
pub struct CancelHandle {
    core: HandleCore,
}

impl CancelHandle {
    /// The handle of a node made with its handle's owner (`Node::new_cancel`).
    #[inline]
    pub(crate) fn adopt(node: Arc<Node>) -> CancelHandle {
        CancelHandle {
            core: HandleCore::adopt(node),
        }
    }

    /// Cancels the context and its descendants. Idempotent; may be called from any thread;
    /// wakers are woken and after-funcs run on this thread before it returns.
    ///
    /// # Examples
    ///
    /// ```
    /// let (ctx, cancel) = ctx_core::Ctx::background().with_cancel();
    /// cancel.cancel();
    /// cancel.cancel(); // no effect
    /// assert!(ctx.is_done());
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    pub fn cancel(&self) {
        self.core.cancel(None);
    }

    /// Gives this clone up without canceling, and with it the clone's hold on the context.
    /// The context is then canceled only by its parent, its deadline, or another clone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (ctx, cancel) = ctx_core::Ctx::background().with_cancel();
    /// cancel.disarm();
    /// assert!(!ctx.is_done());
    /// ```
    pub fn disarm(mut self) {
        self.core.disarm();
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug(f, "CancelHandle")
    }
}

// ===== CancelCauseHandle =====

/// Cancels the context it came with and records why. Go: `context.CancelCauseFunc`.
///
/// Like [`CancelHandle`]: `Clone + Send + Sync`, idempotent, first cancel wins, dropping the last
/// clone cancels (with cause [`HandleDropped`](crate::HandleDropped)), and an armed clone keeps
/// its context alive until it is dropped or disarmed (as Go's `CancelCauseFunc` does).
///
/// Which cause a context reports when both it and its parent are canceled:
///
/// * **Parent canceled first:** the child reports the parent's error and cause; a later
///   `cancel(cause)` on the child changes nothing.
/// * **Child canceled first:** the child keeps its own cause; canceling the parent later
///   changes neither the child's error nor its cause, and the parent reports its own.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use ctx_core::{Cause, Ctx};
/// let (parent, cancel_parent) = Ctx::background().with_cancel_cause();
/// let (child, cancel_child) = parent.with_cancel_cause();
/// let first: Cause = Arc::new(std::io::Error::other("first"));
/// cancel_parent.cancel(first.clone());
/// cancel_child.cancel(std::io::Error::other("too late"));
/// assert!(Arc::ptr_eq(&child.cause().unwrap(), &first));
/// ```
#[doc(alias = "CancelCauseFunc")]
#[must_use = "dropping the last handle cancels the context at once; bind it (`let (ctx, cancel)`) or call `disarm()`"]
#[derive(Clone)]
pub struct CancelCauseHandle {
    core: HandleCore,
}

impl CancelCauseHandle {
    /// The handle of a node made with its handle's owner (`Node::new_cancel`).
    #[inline]
    pub(crate) fn adopt(node: Arc<Node>) -> CancelCauseHandle {
        CancelCauseHandle {
            core: HandleCore::adopt(node),
        }
    }

    /// Cancels the context with `cause`: any error, a [`Cause`], an `anyhow::Error`, a
    /// `Box<dyn Error + Send + Sync>`, a `&str` or a `String` (anything
    /// `Into<Box<dyn Error + Send + Sync>>`). A `Cause` comes back from
    /// [`Ctx::cause`](crate::Ctx::cause) as the same `Arc`; any other value is wrapped once
    /// (see [`Cause`]). Idempotent: only the first cancel of a context records its cause.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ctx_core::{Cause, Ctx};
    /// let (ctx, cancel) = Ctx::background().with_cancel_cause();
    /// cancel.cancel(std::fmt::Error); // any error
    /// assert!(ctx.cause().unwrap().is::<std::fmt::Error>());
    ///
    /// let (ctx, cancel) = Ctx::background().with_cancel_cause();
    /// let why: Cause = Arc::new(std::fmt::Error);
    /// cancel.cancel(why.clone()); // a `Cause`: the same `Arc` comes back
    /// assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    ///
    /// let (ctx, cancel) = Ctx::background().with_cancel_cause();
    /// cancel.cancel(format!("shard {} is down", 3)); // a message
    /// assert_eq!(ctx.cause().unwrap().to_string(), "shard 3 is down");
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    pub fn cancel(&self, cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) {
        self.core.cancel(Some(crate::error::into_cause(cause)));
    }

    /// Cancels with no cause: `cause()` is then [`Error::Canceled`](crate::Error::Canceled).
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Ctx, Error};
    /// let (ctx, cancel) = Ctx::background().with_cancel_cause();
    /// cancel.cancel_without_cause();
    /// assert_eq!(ctx.cause().unwrap().downcast_ref::<Error>(), Some(&Error::Canceled));
    /// ```
    #[cfg_attr(feature = "tracing", track_caller)]
    pub fn cancel_without_cause(&self) {
        self.core.cancel(None);
    }

    /// Gives this clone up without canceling, and with it the clone's hold on the context.
    ///
    /// # Examples
    ///
    /// ```
    /// let (ctx, cancel) = ctx_core::Ctx::background().with_cancel_cause();
    /// cancel.disarm();
    /// assert!(!ctx.is_done());
    /// ```
    pub fn disarm(mut self) {
        self.core.disarm();
    }
}

impl fmt::Debug for CancelCauseHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug(f, "CancelCauseHandle")
    }
}
