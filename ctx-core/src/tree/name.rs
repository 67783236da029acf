//! A context's name, as Go's `String()` writes it (`Ctx`'s `Display`):
//! `context.Background.WithCancel.WithValue(T)`, merges and moving deadlines included.

use std::fmt;

use super::node::{Kind, NodeRef, Parent};
use super::word::{Moving, Span};

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
        NodeRef::Value(v) => return write!(f, ".WithValue({})", v.type_name()),
    };
    match &node.kind {
        Kind::Root { todo: false, .. } => f.write_str("context.Background")?,
        Kind::Root { todo: true, .. } => f.write_str("context.TODO")?,
        Kind::Cancel(c) if c.moving().is_some() => {
            if let Some(m) = c.moving() {
                write_link(f, m)?
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

/// The link of a moving node in `Display`: `.WithGrace(30s)`, `.WithIdleTimeout(1m)`.
pub(super) fn write_link(f: &mut fmt::Formatter<'_>, m: &Moving) -> fmt::Result {
    match m.span() {
        Span::Grace(g) => write!(f, ".WithGrace({g:?})"),
        Span::Idle(d) => write!(f, ".WithIdleTimeout({d:?})"),
    }
}
