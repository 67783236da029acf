//! Model checks of ctx-core's lock/atomic protocol. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ctx-core --lib --release loom`.

#[cfg(loom)]
mod loom_after;
#[cfg(loom)]
mod loom_deadline;
#[cfg(loom)]
mod loom_first_child;
#[cfg(loom)]
mod loom_lockfree;
#[cfg(loom)]
mod loom_merge;
#[cfg(loom)]
mod loom_moving;
#[cfg(loom)]
mod loom_relay;
#[cfg(loom)]
mod loom_spent;
#[cfg(loom)]
mod loom_thin;
#[cfg(loom)]
mod loom_tree;
#[cfg(loom)]
mod loom_wake;
#[cfg(loom)]
mod loom_watcher;

// Unit tests that look inside the tree (slab entries), outside loom.
#[cfg(not(loom))]
pub(crate) mod counting;
#[cfg(not(loom))]
mod first_child;
#[cfg(not(loom))]
mod inline_child;
#[cfg(not(loom))]
mod inline_waiter;
#[cfg(not(loom))]
mod locks;
#[cfg(not(loom))]
mod merge;
#[cfg(not(loom))]
mod moving;
#[cfg(not(loom))]
mod spent_wakers;
#[cfg(not(loom))]
mod timed_standalone;
