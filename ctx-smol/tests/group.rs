//! `ctx_smol::Group`, Go's errgroup on smol's global executor: the group checks of
//! ctx-testkit, in real time. Every wait has a watchdog in the checks.

use std::error::Error as StdError;
use std::future::Future;

use ctx_smol::{Cause, Ctx, Group};
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
    fn group(&self, parent: &Ctx) -> (Group, Ctx) {
        Group::new(parent)
    }
    fn group_with_limit(&self, parent: &Ctx, limit: usize) -> (Group, Ctx) {
        Group::with_limit(parent, limit)
    }
    fn spawn<F, E>(&self, group: &Group, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Box<dyn StdError + Send + Sync + 'static>> + 'static,
    {
        group.spawn(task);
    }
    fn spawn_with<M, F, E>(&self, group: &Group, task: M)
    where
        M: FnOnce(Ctx) -> F,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Box<dyn StdError + Send + Sync + 'static>> + 'static,
    {
        group.spawn_with(task);
    }
    fn wait(&self, group: Group) -> impl Future<Output = Result<(), Cause>> {
        group.wait()
    }
}

ctx_testkit::group_suite!(Smol);
