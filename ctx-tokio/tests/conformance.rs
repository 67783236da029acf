//! The ctx conformance suite on a multi-threaded tokio runtime.

use std::future::Future;
use std::time::Duration;

use ctx_testkit::conformance::Runtime;
use ctx_tokio::Ctx;

/// A multi-threaded tokio runtime of its own: the suite calls context methods from the plain
/// test thread, so timers must fire with nobody in `block_on`.
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

impl Runtime for Tokio {
    fn background(&self) -> Ctx {
        let _enter = self.0.enter();
        ctx_tokio::background()
    }
    fn block_on<F: Future + Send + 'static>(&self, fut: F) -> F::Output
    where
        F::Output: Send + 'static,
    {
        self.0.block_on(fut)
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        drop(self.0.spawn(fut));
    }
    fn advance(&self, d: Duration) {
        std::thread::sleep(d);
    }
    fn is_mock(&self) -> bool {
        false
    }
}

ctx_testkit::conformance_suite!(Tokio::new());
