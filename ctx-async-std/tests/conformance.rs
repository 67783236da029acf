//! The ctx conformance suite on async-std's executor.

use std::future::Future;
use std::time::Duration;

use ctx_async_std::Ctx;
use ctx_testkit::conformance::Runtime;

/// async-std: `task::block_on`, tasks on its global executor.
struct AsyncStd;

impl Runtime for AsyncStd {
    fn background(&self) -> Ctx {
        ctx_async_std::background()
    }
    fn block_on<F: Future + Send + 'static>(&self, fut: F) -> F::Output
    where
        F::Output: Send + 'static,
    {
        async_std::task::block_on(fut)
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        drop(async_std::task::spawn(fut)); // a dropped JoinHandle detaches
    }
    fn advance(&self, d: Duration) {
        std::thread::sleep(d);
    }
    fn is_mock(&self) -> bool {
        false
    }
}

ctx_testkit::conformance_suite!(AsyncStd);
