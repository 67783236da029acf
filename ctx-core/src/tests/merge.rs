//! `with_merged` leaves nothing in either parent's slab, whichever way it ends.

use crate::tree::child_count;
use crate::{Ctx, Error};

fn children(ctx: &Ctx) -> usize {
    child_count(&ctx.node)
}

#[test]
fn a_dropped_merge_leaves_both_parents_empty() {
    let (a, _ha) = Ctx::background().with_cancel();
    let (b, _hb) = Ctx::background().with_cancel();
    let (m, h) = a.with_merged(&b);
    assert_eq!(
        (children(&a), children(&b)),
        (1, 1),
        "registered under both cancelers"
    );
    h.disarm();
    drop(m);
    assert_eq!((children(&a), children(&b)), (0, 0));
}

#[test]
fn a_merge_canceled_from_either_side_or_its_handle_leaves_the_other_parent_empty() {
    for side in 0..3 {
        let (a, ha) = Ctx::background().with_cancel();
        let (b, hb) = Ctx::background().with_cancel();
        let (m, h) = a.with_merged(&b);
        let (_below, _hbelow) = m.with_cancel();
        match side {
            0 => ha.cancel(),
            1 => hb.cancel(),
            _ => h.cancel(),
        }
        assert_eq!(m.err(), Some(Error::Canceled));
        // The done parent gave its slab away; the open one holds nothing of the merge.
        assert_eq!((children(&a), children(&b)), (0, 0), "side {side}");
        drop((m, h, ha, hb));
    }
}

#[test]
fn a_merge_whose_second_parent_is_done_at_attach_leaves_the_first_empty() {
    let (a, _ha) = Ctx::background().with_cancel();
    // `b` is a custom wrapper that says it is done, so the fast born-done path is skipped and
    // the merge attaches to `a` before it finds `b` done.
    let (inner, hi) = Ctx::background().with_cancel();
    hi.cancel();
    let b = Ctx::wrap(crate::tests::merge::Wrapper(inner));
    let (m, _h) = a.with_merged(&b);
    assert_eq!(m.err(), Some(Error::Canceled));
    assert_eq!(children(&a), 0);
}

#[test]
fn a_merge_in_a_diamond_leaves_the_grandparent_and_parents_empty() {
    let (g, hg) = Ctx::background().with_cancel();
    let (a, _ha) = g.with_cancel();
    let (b, _hb) = g.with_cancel();
    let (m, _h) = a.with_merged(&b);
    assert_eq!(children(&g), 2);
    hg.cancel();
    assert_eq!(m.err(), Some(Error::Canceled));
    assert_eq!((children(&a), children(&b), children(&g)), (0, 0, 0));
}

/// A custom context that is a `Ctx` underneath (its `done()` is the `Ctx`'s).
pub(crate) struct Wrapper(pub(crate) Ctx);

impl crate::Forward for Wrapper {
    fn inner(&self) -> &Ctx {
        &self.0
    }
}
