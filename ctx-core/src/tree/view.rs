//! What the handle reads from a node: its error and cause, its values, its name.
//!
//! The handle ([`Ctx`](crate::Ctx)) never matches on a node's [`Kind`]: it calls these.

use std::any::{Any, TypeId};
use std::fmt;

use super::{Kind, Node, NodeRef, Parent, err};
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
            // Once the custom's `done()` has fired, its answers are in the bridge.
            if let Some(e) = w.source.as_ref().and_then(|s| s.cancel_node().state_err()) {
                return Some(e);
            }
            let e = w.custom.err();
            if let Some(bridge) = &w.source {
                if e.is_some() {
                    err(bridge); // the lazy check: cancels the bridge if it lags behind
                } else if w.deadline.is_some() {
                    // The custom's deadline ends the wrap even if the custom never says so
                    // (one rule for a foreign deadline, `wrap.rs`): the bridge checks it.
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
        return match w.source.as_ref().map(|s| s.cancel_node()) {
            Some(c) if !c.is_open() => c.cause(),
            _ => w.custom.cause(),
        };
    }
    let source = node.source()?;
    err(source)?;
    source.cancel_node().cause()
}

/// The value keyed `key` at `node` or its nearest ancestor that has one; a loop, not a
/// recursion (invariant 6 of `tree/mod.rs`).
pub(crate) fn value_any(mut node: &NodeRef, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
    loop {
        match node {
            NodeRef::Value(v) if v.value.key == key => return Some(&v.value.value),
            NodeRef::Node(n) => match &n.kind {
                Kind::Wrap(w) => return w.custom.value_any(key),
                Kind::Root { .. } => return None,
                _ => {}
            },
            NodeRef::Value(_) => {}
        }
        node = node.parent().get()?;
    }
}

/// Names the chain ending at `node` as Go's `String()` does (`Ctx`'s `Display`).
pub(crate) fn write_chain(f: &mut fmt::Formatter<'_>, node: &NodeRef) -> fmt::Result {
    // What is left to write, last first: whole chains, the rest of a chain after a merge,
    // and the `)` closing a merge. An explicit stack, so that a deep nest of merges does not
    // recurse (invariant 6 of `tree/mod.rs`).
    enum Part<'a> {
        /// The chain ending at this node, from its root.
        Chain(&'a NodeRef),
        /// These nodes, leaf first (written from the end).
        Nodes(Vec<&'a NodeRef>),
        Close,
    }
    let mut parts = vec![Part::Chain(node)];
    while let Some(part) = parts.pop() {
        match part {
            Part::Close => f.write_str(")")?,
            Part::Chain(node) => {
                let mut chain: Vec<&NodeRef> = Vec::new();
                let mut node: &NodeRef = node;
                loop {
                    chain.push(node);
                    if let NodeRef::Node(n) = node
                        && matches!(n.kind, Kind::Wrap(_))
                    {
                        break;
                    }
                    match node.parent().get() {
                        Some(p) => node = p,
                        None => break,
                    }
                }
                match chain.last().map(|n| n.parent()) {
                    Some(Parent::Background) => f.write_str("context.Background")?,
                    Some(Parent::Todo) => f.write_str("context.TODO")?,
                    _ => {}
                }
                parts.push(Part::Nodes(chain));
            }
            Part::Nodes(mut nodes) => {
                while let Some(node) = nodes.pop() {
                    if let NodeRef::Node(n) = node
                        && let Kind::Cancel(c) = &n.kind
                        && let Some(other) = c.merged_with()
                    {
                        // `.WithMerged(`, the other chain, `)`, then the rest of this one.
                        f.write_str(".WithMerged(")?;
                        if !nodes.is_empty() {
                            parts.push(Part::Nodes(nodes));
                        }
                        parts.push(Part::Close);
                        parts.push(Part::Chain(other));
                        break;
                    }
                    write_node(f, node)?;
                }
            }
        }
    }
    Ok(())
}

/// One link of the name: `.WithCancel`, `.WithValue(T)`, ...
fn write_node(f: &mut fmt::Formatter<'_>, node: &NodeRef) -> fmt::Result {
    let node = match node {
        NodeRef::Node(n) => n,
        NodeRef::Value(v) => return write!(f, ".WithValue({})", v.value.value.type_name()),
    };
    match &node.kind {
        Kind::Root { todo: false, .. } => f.write_str("context.Background")?,
        Kind::Root { todo: true, .. } => f.write_str("context.TODO")?,
        Kind::Cancel(c) if c.moving().is_some() => {
            if let Some(m) = c.moving() {
                super::moving::write_link(f, m)?
            }
        }
        Kind::Cancel(c) if c.shown_as_deadline() => match node.deadline() {
            Some(d) => {
                let left = d.saturating_duration_since(node.clock().now());
                write!(f, ".WithDeadline({left:?})")?
            }
            None => f.write_str(".WithDeadline(never)")?,
        },
        Kind::Cancel(_) => f.write_str(".WithCancel")?,
        Kind::WithoutCancel => f.write_str(".WithoutCancel")?,
        Kind::Wrap(w) => f.write_str(w.type_name)?,
    }
    Ok(())
}
