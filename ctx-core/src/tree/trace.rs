//! The `tracing` feature: one `DEBUG` event (target `ctx_core`) per context canceled for its
//! own reason — by a handle, by the drop of its last handle, or by its own deadline — and none
//! for the descendants that go with it.
//!
//! Without the feature every type here is zero-sized and every function empty: no caller
//! location is recorded (`#[track_caller]` is applied only with the feature), nothing is
//! stored in the nodes, and there is no `tracing` dependency.
//!
//! It lives in the engine because what it reports is read from a node (its name, its cause,
//! the `with_*` call that made it), and it is called only from the engine's cancel paths; the
//! handles name a [`Site`] through `tree`.

#[cfg(feature = "tracing")]
use std::panic::Location;

use super::arc::Arc;
use super::node::Node;
use crate::Error;

/// Where, in the user's code, a cancel came from.
#[derive(Clone, Copy)]
pub(crate) struct Site {
    /// The `cancel()` call; `None`: the `with_*` call that made the node.
    #[cfg(feature = "tracing")]
    at: Option<&'static Location<'static>>,
}

impl Site {
    /// The caller at the top of the `#[track_caller]` chain: the user's `cancel()` call.
    #[cfg_attr(feature = "tracing", track_caller)]
    #[inline(always)]
    pub(crate) fn caller() -> Site {
        Site {
            #[cfg(feature = "tracing")]
            at: Some(Location::caller()),
        }
    }

    /// The `with_*` call that made the node: for the drop of its last handle and its deadline.
    pub(crate) const CREATED: Site = Site {
        #[cfg(feature = "tracing")]
        at: None,
    };
}

/// Reports that `node` was canceled for its own reason, with `err`, from `at`, together with
/// `descendants` cancel nodes below it. Call with every lock released (invariant 5 of
/// `tree/mod.rs`), on the thread that canceled it.
#[inline(always)]
pub(crate) fn canceled(node: &Arc<Node>, err: Error, at: Site, descendants: usize) {
    #[cfg(feature = "tracing")]
    emit(node, err, at, descendants);
    #[cfg(not(feature = "tracing"))]
    let _ = (node, err, at, descendants);
}

#[cfg(feature = "tracing")]
#[inline(never)]
fn emit(node: &Arc<Node>, err: Error, at: Site, descendants: usize) {
    use std::fmt;

    /// A cause, shown with its `Display` (read from the node only if the event is enabled).
    struct CauseOf<'a>(&'a Node);
    impl fmt::Display for CauseOf<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.0.expect_cancel().cause() {
                Some(cause) => fmt::Display::fmt(&cause, f),
                None => Ok(()),
            }
        }
    }

    /// The context's name, as its `Display` writes it (built only if the event is enabled).
    struct NameOf<'a>(&'a Arc<Node>);
    impl fmt::Display for NameOf<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            super::name::write_chain(f, &super::node::NodeRef::Node(self.0.clone()))
        }
    }

    let at = at.at.unwrap_or(node.expect_cancel().created);
    // The field values are computed only when a subscriber wants the event.
    tracing::event!(
        target: "ctx_core",
        tracing::Level::DEBUG,
        ctx = %NameOf(node),
        err = %err,
        cause = %CauseOf(node),
        at = %at,
        descendants = descendants as u64,
        "context canceled",
    );
}
