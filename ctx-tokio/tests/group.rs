//! `ctx_tokio::Group`, Go's errgroup on tokio tasks: the group checks of ctx-testkit, each on a
//! multi-thread runtime of its own. Every wait has a watchdog in the checks.

use std::future::Future;

use ctx_testkit::group::GroupRuntime;
use ctx_tokio::{Ctx, Group};

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
    ctx_testkit::group_forwarding!();
}

ctx_testkit::group_suite!(Tokio::new());
