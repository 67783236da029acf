//! Calling into a foreign context (user code: always with no lock held, invariant 5): its
//! outcome, with a panic contained (`foreign_outcome`, `bridge_outcome`), and dropping it on a
//! thread-local trampoline (`drop_foreign`, invariant 6).

use std::any::{Any, TypeId};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::arc::Arc;
use super::node::{Foreign, Kind, Node};
use super::state::Outcome;
use crate::{Cause, Error};

/// A foreign context's `err()` and `cause()`, asked for by ctx-core itself (at wrap, at derive,
/// when its `done()` fires). They are user code: a panic in them is contained (the hook reports
/// it) and read as "not done", so ctx-core then relies on the context's `done()` alone.
fn foreign_outcome(foreign: &dyn Foreign) -> Option<Outcome> {
    catch_unwind(AssertUnwindSafe(|| {
        let err = foreign.err()?;
        Some(Outcome {
            err,
            cause: foreign.cause().map(Arc::new),
        })
    }))
    .ok()
    .flatten()
}

/// A bridge's foreign context's answers, if `node` is a bridge whose foreign context is alive and
/// done.
pub(super) fn bridge_outcome(node: &Arc<Node>) -> Option<Outcome> {
    let Kind::Cancel(c) = &node.kind else { return None };
    let foreign = c.bridge()?.foreign.upgrade()?;
    let outcome = foreign_outcome(&*foreign);
    drop_foreign(foreign);
    outcome
}

/// Drops a wrap node's foreign context. A user type may hold the next wrap down, whose drop
/// drops the next foreign context, and so on: a chain of a million wraps would recurse a million
/// deep. So drops nested on one thread are queued (a trampoline), and the outermost one drains the
/// queue in a loop (invariant 6).
pub(super) fn drop_foreign(foreign: std::sync::Arc<dyn Foreign>) {
    thread_local! {
        /// `Some` while a `drop_foreign` runs on this thread: the foreign contexts it has yet to
        /// drop.
        static PENDING: std::cell::RefCell<Option<Vec<std::sync::Arc<dyn Foreign>>>> =
            const { std::cell::RefCell::new(None) };
    }
    /// Ends the outermost drop, also when a user `Drop` panics: what is left is dropped then
    /// (each through this function again).
    struct Outermost;
    impl Drop for Outermost {
        fn drop(&mut self) {
            let left = PENDING.try_with(|p| p.borrow_mut().take()).ok().flatten();
            drop(left);
        }
    }
    let mut foreign = Some(foreign);
    let outermost = PENDING.try_with(|p| {
        let mut p = p.borrow_mut();
        match p.as_mut() {
            Some(queue) => {
                queue.extend(foreign.take());
                false
            }
            None => {
                *p = Some(Vec::new());
                true
            }
        }
    });
    if outermost != Ok(true) {
        drop(foreign); // queued (`None` here), or this thread's locals are gone: drop it now
        return;
    }
    let _end = Outermost;
    drop(foreign);
    while let Some(next) = PENDING.with(|p| p.borrow_mut().as_mut().and_then(Vec::pop)) {
        drop(next);
    }
}

/// What a dying wrap node leaves in place of its foreign context (moved to `drop_foreign`): a
/// context that is never done and has no values.
pub(super) fn placeholder() -> std::sync::Arc<dyn Foreign> {
    struct Never;
    impl Foreign for Never {
        fn err(&self) -> Option<Error> {
            None
        }
        fn cause(&self) -> Option<Cause> {
            None
        }
        fn value_any(&self, _: TypeId) -> Option<&(dyn Any + Send + Sync)> {
            None
        }
    }
    static NEVER: std::sync::LazyLock<std::sync::Arc<dyn Foreign>> =
        std::sync::LazyLock::new(|| std::sync::Arc::new(Never));
    NEVER.clone()
}
