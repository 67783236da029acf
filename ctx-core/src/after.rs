//! [`AfterFunc`]: a function registered to run once a context is done.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::after_threads::AfterFn;
use crate::tree::{self, Arc, Node, NodeRef, Slot, Weak};

/// The handle returned by [`Ctx::after_func`](crate::Ctx::after_func): [`stop`](AfterFunc::stop)
/// it to keep the function from running. Go: the `stop` function returned by
/// `context.AfterFunc`.
///
/// Dropping an `AfterFunc` does **not** stop the function.
///
/// # Examples
///
/// ```
/// use ctx_core::Ctx;
/// let (ctx, cancel) = Ctx::background().with_cancel();
/// let stop = ctx.after_func(|| unreachable!("stopped before the cancel"));
/// assert!(stop.stop());
/// cancel.cancel();
/// ```
pub struct AfterFunc {
    /// The cancel node holding the registration (weak: the registration itself keeps the node
    /// alive until it has run or been stopped).
    node: Weak<Node>,
    /// The registration's slot, or none when `f` ran at once or can never run.
    key: Option<Slot>,
    /// Set by the first `stop()`: later calls answer `false` without touching the slot, which
    /// another registration may own by then.
    stopped: AtomicBool,
}

impl AfterFunc {
    pub(crate) fn register(node: &NodeRef, f: AfterFn) -> AfterFunc {
        let inert = |key| AfterFunc {
            node: Weak::new(),
            key,
            stopped: AtomicBool::new(false),
        };
        let Some(node) = node.source() else {
            // Never done: `f` never runs; `stop()` reports that it kept it from running.
            drop(f);
            return inert(None);
        };
        if tree::err(node).is_some() {
            tree::run_after(f);
            return AfterFunc {
                stopped: AtomicBool::new(true), // already ran: stop() is false
                ..inert(None)
            };
        }
        match tree::register_after(node, f) {
            Ok((key, arm)) => {
                if arm {
                    tree::arm_timer(node);
                }
                AfterFunc {
                    node: Arc::downgrade(node),
                    key: Some(key),
                    stopped: AtomicBool::new(false),
                }
            }
            Err(f) => {
                tree::run_after(f);
                AfterFunc {
                    stopped: AtomicBool::new(true),
                    ..inert(None)
                }
            }
        }
    }

    /// Keeps the function from running. Returns `true` if this call did (the function had not
    /// started and will never run); `false` if it has already been started or stopped. Go:
    /// `stop()`.
    ///
    /// On a context that can never be done, the first `stop()` returns `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::Ctx;
    /// let (ctx, cancel) = Ctx::background().with_cancel();
    /// let stop = ctx.after_func(|| {});
    /// cancel.cancel(); // runs the function
    /// assert!(!stop.stop());
    /// ```
    pub fn stop(&self) -> bool {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return false;
        }
        let Some(key) = self.key else {
            return true; // the never-done case; the ran-at-once case was `stopped` from birth
        };
        match self.node.upgrade() {
            Some(node) => tree::unregister_after(&node, key),
            None => false, // the registration kept the node alive: it is gone, so `f` ran
        }
    }
}

impl fmt::Debug for AfterFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AfterFunc")
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
