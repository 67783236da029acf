//! What the handle reads from a node: its error and cause (`ctx_err`, `ctx_cause`), its
//! deadline with the moving deadlines above it (`ctx_deadline`), its values (`value_any`). Its
//! name is `name.rs`'s.
//!
//! The handle ([`Ctx`](crate::Ctx)) never matches on a node's [`Kind`]: it calls these.

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::time::Instant;

use super::end::err;
use super::node::{Kind, Node, NodeRef};
use crate::{Cause, Error};

/// Why the context ending at `node` is done, or `None` while it is not (`Ctx::err`).
#[inline]
pub(crate) fn ctx_err(node: &NodeRef) -> Option<Error> {
    let node = match node {
        NodeRef::Node(n) => n,
        NodeRef::Value(v) => return err(v.source.as_ref()?),
    };
    // The usual case first, with a compare rather than a jump table.
    if let Kind::Cancel(_) = &node.kind {
        return err(node);
    }
    ctx_err_other(node)
}

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

/// The value keyed `key` at `node` or its nearest ancestor that has one; a loop, not a
/// recursion (invariant 6 of `tree/mod.rs`).
pub(crate) fn value_any(mut node: &NodeRef, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
    loop {
        match node {
            NodeRef::Value(v) if v.value.key == key => return Some(&v.value.value),
            NodeRef::Node(n) => match &n.kind {
                Kind::Wrap(w) => return w.foreign.value_any(key),
                Kind::Root { .. } => return None,
                _ => {}
            },
            NodeRef::Value(_) => {}
        }
        node = node.parent().get()?;
    }
}
