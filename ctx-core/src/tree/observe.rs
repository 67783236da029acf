//! What the handle reads from a node: its error and cause (`ctx_err`, `ctx_cause`), its
//! deadline with the moving deadlines above it (`ctx_deadline`), its values (`value_any`). Its
//! name is `name.rs`'s.
//!
//! The handle ([`Ctx`](crate::Ctx)) never matches on a node's [`Kind`]: it calls these.

use std::any::{Any, TypeId};
use std::time::Instant;

use super::arc::Arc;
use super::end::{err, is_done};
use super::node::{Kind, Node, NodeRef, ValueNode, digest, key_bit, short_digest};
use super::thin::ThinArc;
use crate::{Cause, Error};

/// Why the context ending at `node` is done, or `None` while it is not (`Ctx::err`).
#[inline]
pub(crate) fn ctx_err(node: &NodeRef) -> Option<Error> {
    match canceler(node) {
        Ok(canceler) => err(canceler?),
        Err(other) => ctx_err_other(other),
    }
}

/// `ctx_err(node).is_some()` (`Ctx::is_done`), which reads the same word and decodes no error.
#[inline]
pub(crate) fn ctx_is_done(node: &NodeRef) -> bool {
    match canceler(node) {
        Ok(Some(canceler)) => is_done(canceler),
        Ok(None) => false,
        Err(other) => ctx_err_other(other).is_some(),
    }
}

/// The canceler whose word answers `err()` at `node`, found first (a cancel node itself, or a
/// value's source; `None`: a value below no canceler), so that one load and test of that word
/// follow on one path; `Err` with the node for any other kind (`ctx_err_other`).
#[inline(always)]
fn canceler(node: &NodeRef) -> Result<Option<&Arc<Node>>, &Node> {
    match node {
        NodeRef::Node(n) if matches!(n.kind, Kind::Cancel(_)) => Ok(Some(n)),
        NodeRef::Value(v) => {
            // Laid out after the cancel node's path: one jump more here, one less there.
            unusual();
            Ok(v.source.as_ref())
        }
        NodeRef::Node(n) => Err(n),
    }
}

/// Marks the branch that calls it as the less usual one, for the code's layout (a hint to the
/// compiler, no code).
#[cold]
#[inline(always)]
fn unusual() {}

/// `ctx_err` of a node that is not a cancel node.
fn ctx_err_other(node: &Node) -> Option<Error> {
    match &node.kind {
        Kind::Cancel(_) => unreachable!("ctx-core: internal error: a cancel node"),
        Kind::Wrap(w) => {
            // Once the foreign context's `done()` has fired, its answers are in the bridge.
            if let Some(e) = w.source.as_ref().and_then(|s| s.expect_cancel().state_err()) {
                return Some(e);
            }
            let e = w.foreign.err();
            if let Some(bridge) = &w.source {
                if e.is_some() {
                    err(bridge); // the lazy check: cancels the bridge if it lags behind
                } else if w.deadline.is_some() {
                    // The foreign context's deadline ends the wrap even if the foreign context
                    // never says so (one rule for a foreign deadline, `wrap.rs`): the bridge checks
                    // it.
                    return err(bridge);
                }
            }
            e
        }
        Kind::Root { .. } | Kind::WithoutCancel => None,
    }
}

/// The cause of the context ending at `node`, or `None` while it is not done (`Ctx::cause`).
pub(crate) fn ctx_cause(node: &NodeRef) -> Option<Cause> {
    if let NodeRef::Node(n) = node
        && let Kind::Wrap(w) = &n.kind
    {
        if w.deadline.is_some()
            && let Some(bridge) = &w.source
        {
            err(bridge); // a foreign deadline that has passed ends the bridge (as in `ctx_err`)
        }
        return match w.source.as_ref().map(|s| s.expect_cancel()) {
            Some(c) if !c.is_open() => c.cause(),
            _ => w.foreign.cause(),
        };
    }
    let source = node.source()?;
    err(source)?;
    source.expect_cancel().cause()
}

/// `Ctx::deadline`: the node's deadline, with the moving deadlines above it (a node below a
/// moving one cannot keep a copy: it would go stale). One more atomic load than
/// `NodeRef::deadline` unless the node's canceler is moving or below one.
#[inline]
pub(crate) fn ctx_deadline(node: &NodeRef) -> Option<Instant> {
    let d = node.deadline();
    match node.source() {
        Some(s) if s.expect_cancel().is_under_foreign() || s.expect_cancel().moving().is_some() => {
            moving_deadline(s, d)
        }
        _ => d,
    }
}

/// `ctx_deadline` of a node below (or at) a moving canceler `src`: the earliest of `d` and the
/// moving deadlines of the cancelers above, climbed as invariant 16 climbs them (through both
/// parents of a merge; a grace node is not `UNDER_FOREIGN`, so the climb stops there).
#[cold]
fn moving_deadline(src: &Arc<Node>, mut d: Option<Instant>) -> Option<Instant> {
    let mut stack: smallvec::SmallVec<[&Arc<Node>; 4]> = smallvec::smallvec![src]; // no allocation
    while let Some(cur) = stack.pop() {
        let c = cur.expect_cancel();
        if let Some(m) = c.moving() {
            d = match (d, m.deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if c.is_under_foreign() {
            let parents = [cur.parent().get(), c.merged_with()];
            stack.extend(parents.into_iter().flatten().filter_map(NodeRef::source));
        }
    }
    d
}

/// The value keyed `key` at `node` or its nearest ancestor that has one (a foreign context
/// asks this way); `value_of` is the typed lookup.
#[inline]
pub(crate) fn value_any(node: &NodeRef, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
    lookup(node, key, |v| (v.key() == key).then(|| v.as_any()), Some)
}

/// The value of type `T` at `node` or its nearest ancestor that has one (`Ctx::value`): as
/// `value_any`, with the key confirmed by the downcast itself (one call through the vtable).
#[inline]
pub(crate) fn value_of<T: Any + Send + Sync>(node: &NodeRef) -> Option<&T> {
    let key = TypeId::of::<T>();
    lookup(node, key, |v| v.downcast_ref(), |found| found.downcast_ref())
}

/// The lookup: a loop, not a recursion (invariant 6 of `tree/mod.rs`). A run of value nodes
/// whose filter (`ValueNode::seen`) rules the key out is crossed in one step, to its base: a miss
/// below a chain of values costs one step per run, not one per value. `hit` confirms a value
/// whose digest is the key's; `foreign` takes what a wrapped context answered.
#[inline]
fn lookup<'a, R>(
    mut node: &'a NodeRef,
    key: TypeId,
    hit: impl Fn(&'a ThinArc<ValueNode>) -> Option<R>,
    foreign: impl FnOnce(&'a (dyn Any + Send + Sync)) -> Option<R>,
) -> Option<R> {
    // Up to the first value node, the key's digest is not needed (a runtime's clock, asked by
    // every wrap, is found this way).
    loop {
        #[cfg(test)]
        tests::STEPS.set(tests::STEPS.get() + 1);
        let NodeRef::Node(n) = node else {
            return from_values(node, key, hit, foreign);
        };
        match &n.kind {
            Kind::Wrap(w) => return foreign(w.foreign.value_any(key)?),
            Kind::Root { .. } => return None,
            Kind::Cancel(_) | Kind::WithoutCancel => {}
        }
        node = n.parent().get()?;
    }
}

/// `lookup` from a value node on.
#[inline]
fn from_values<'a, R>(
    mut node: &'a NodeRef,
    key: TypeId,
    hit: impl Fn(&'a ThinArc<ValueNode>) -> Option<R>,
    foreign: impl FnOnce(&'a (dyn Any + Send + Sync)) -> Option<R>,
) -> Option<R> {
    let full = digest(key);
    let (digest, bit) = (short_digest(full), key_bit(full));
    loop {
        let n = match node {
            NodeRef::Value(v) => {
                if v.seen & bit != 0 {
                    if v.digest == digest
                        && let Some(found) = hit(v)
                    {
                        return Some(found);
                    }
                    node = v.parent().get()?;
                    #[cfg(test)]
                    tests::STEPS.set(tests::STEPS.get() + 1);
                    continue;
                }
                // No value node from here up to the run's base holds the key: the base is the
                // source (a cancel node), or a root when there is none.
                v.source.as_ref()?
            }
            NodeRef::Node(n) => n,
        };
        match &n.kind {
            Kind::Wrap(w) => return foreign(w.foreign.value_any(key)?),
            Kind::Root { .. } => return None,
            Kind::Cancel(_) | Kind::WithoutCancel => {}
        }
        node = n.parent().get()?;
        #[cfg(test)]
        tests::STEPS.set(tests::STEPS.get() + 1);
    }
}

#[cfg(test)]
mod tests {
    use std::any::{Any, TypeId};
    use std::cell::Cell;
    use std::sync::Arc;

    use crate::clock::SystemClock;
    use crate::{Ctx, Forward};

    thread_local! {
        /// Nodes `value_any` has stepped through on this thread.
        pub(super) static STEPS: Cell<usize> = const { Cell::new(0) };
    }

    /// `ctx.value::<T>()`, with the steps it took.
    fn lookup<T: Any + Send + Sync + Clone>(ctx: &Ctx) -> (Option<T>, usize) {
        STEPS.set(0);
        let v = ctx.value::<T>().cloned();
        (v, STEPS.get())
    }

    fn bit<T: Any>() -> u32 {
        super::key_bit(super::digest(TypeId::of::<T>()))
    }

    #[derive(Clone, Debug, PartialEq)]
    struct M1;
    #[derive(Clone, Debug, PartialEq)]
    struct M2;
    #[derive(Clone, Debug, PartialEq)]
    struct M3;

    /// A lookup for a type the chain does not hold, whose filter bit is not `usize`'s (one of
    /// three has one, but for a chance of 1 in 32^3).
    fn missing_steps(ctx: &Ctx) -> usize {
        if bit::<M1>() != bit::<usize>() {
            lookup::<M1>(ctx).1
        } else if bit::<M2>() != bit::<usize>() {
            lookup::<M2>(ctx).1
        } else {
            assert_ne!(bit::<M3>(), bit::<usize>());
            lookup::<M3>(ctx).1
        }
    }

    fn values(mut ctx: Ctx, n: usize) -> Ctx {
        for i in 0..n {
            ctx = ctx.with_value(i);
        }
        ctx
    }

    #[test]
    fn a_miss_crosses_each_run_of_values_in_one_step() {
        let chain = values(Ctx::background(), 100);
        assert_eq!(missing_steps(&chain), 1);
        let (mid, _cancel) = chain.with_cancel();
        let two_runs = values(mid, 100);
        // The lower run, then the cancel node its filter sends the lookup to, then the upper run.
        assert_eq!(missing_steps(&two_runs), 2);
        let clocked = values(Ctx::background_with_clock(Arc::new(SystemClock::default())), 100);
        assert_eq!(missing_steps(&clocked), 1);
        // The nearest value is still found, and one above the run is found through it.
        assert_eq!(lookup::<usize>(&two_runs), (Some(99), 1));
        let under = values(Ctx::background().with_value(7u8), 100);
        assert_eq!(lookup::<u8>(&under).0, Some(7));
    }

    #[test]
    fn values_behind_a_wrap_or_without_cancel_are_asked_for() {
        struct Same(Ctx);
        impl Forward for Same {
            fn inner(&self) -> &Ctx {
                &self.0
            }
        }
        let (top, _cancel) = Ctx::background().with_value(M1).with_cancel();
        let wrapped = values(Ctx::wrap(Same(top.clone())), 50);
        assert_eq!(lookup::<M1>(&wrapped).0, Some(M1));
        let detached = values(top.without_cancel(), 50);
        assert_eq!(lookup::<M1>(&detached).0, Some(M1));
        assert_eq!(lookup::<M2>(&detached).0, None);
    }

    /// Every lookup on random trees of values, cancel, merged, detached and wrapped nodes
    /// answers as a walk that compares every value would (the nearest value of the type).
    #[test]
    fn lookups_answer_as_a_full_walk() {
        struct Same(Ctx);
        impl Forward for Same {
            fn inner(&self) -> &Ctx {
                &self.0
            }
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut handles = Vec::new();
        for _ in 0..200 {
            let root = if next(2) == 0 {
                Ctx::background()
            } else {
                Ctx::background_with_clock(Arc::new(SystemClock::default()))
            };
            // The context, and the nearest value of each of the types below it (the expected
            // answers), along one path from the root.
            let mut ctx = root;
            let mut expect: [Option<u64>; 4] = [None; 4];
            for step in 0..(next(40) + 1) {
                ctx = match next(10) {
                    0 => {
                        let (c, h) = ctx.with_cancel();
                        handles.push(h);
                        c
                    }
                    1 => {
                        let (other, _h) = Ctx::background().with_value(M3).with_cancel();
                        let (c, h) = ctx.with_merged(&other);
                        handles.push(h);
                        c
                    }
                    2 => ctx.without_cancel(),
                    3 => Ctx::wrap(Same(ctx)),
                    _ => {
                        let t = next(4) as usize;
                        expect[t] = Some(step);
                        match t {
                            0 => ctx.with_value(step),
                            1 => ctx.with_value(step as u32),
                            2 => ctx.with_value(step as u16),
                            _ => ctx.with_value(step as u8),
                        }
                    }
                };
                let got = [
                    ctx.value::<u64>().copied(),
                    ctx.value::<u32>().map(|&v| u64::from(v)),
                    ctx.value::<u16>().map(|&v| u64::from(v)),
                    ctx.value::<u8>().map(|&v| u64::from(v)),
                ];
                assert_eq!(got, expect, "at {ctx}");
                assert_eq!(ctx.value::<M3>(), None, "values of a second parent are not seen");
                assert_eq!(ctx.value::<usize>(), None);
            }
        }
    }
}
