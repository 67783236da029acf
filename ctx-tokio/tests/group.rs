//! `ctx_tokio::Group`, Go's errgroup on tokio tasks: the group checks of ctx-testkit, each on a
//! multi-thread runtime of its own. Every wait has a watchdog in the checks.

use std::error::Error as StdError;
use std::future::Future;

use ctx_testkit::group::GroupRuntime;
use ctx_tokio::{Cause, Ctx, Group};

/// A multi-thread tokio runtime with two workers.
struct Tokio(tokio::runtime::Runtime);

impl Tokio {
    fn new() -> Tokio {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Tokio(rt)
    }
}

impl GroupRuntime for Tokio {
    type Group = Group;

    fn background(&self) -> Ctx {
        ctx_tokio::background()
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
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

ctx_testkit::group_suite!(Tokio::new());
