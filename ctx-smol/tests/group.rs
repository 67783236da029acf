//! `ctx_smol::Group`, Go's errgroup on smol's global executor: the group checks of
//! ctx-testkit, in real time. Every wait has a watchdog in the checks.

use std::future::Future;

use ctx_smol::{Ctx, Group};
use ctx_testkit::group::GroupRuntime;

/// smol: `smol::block_on`, the group's tasks on smol's global executor.
struct Smol;

impl GroupRuntime for Smol {
    type Group = Group;

    fn background(&self) -> Ctx {
        ctx_smol::background()
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        smol::block_on(fut)
    }
    ctx_testkit::group_forwarding!();
}

ctx_testkit::group_suite!(Smol);
