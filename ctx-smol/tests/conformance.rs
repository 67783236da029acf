//! The ctx conformance suite on smol's global executor, and on an `async_executor::Executor`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ctx_smol::Ctx;
use ctx_testkit::conformance::Runtime;

/// smol: `smol::block_on`, tasks on smol's global executor (threads of its own).
struct Smol;

impl Runtime for Smol {
    fn background(&self) -> Ctx {
        ctx_smol::background()
    }
    fn block_on<F: Future + Send + 'static>(&self, fut: F) -> F::Output
    where
        F::Output: Send + 'static,
    {
        smol::block_on(fut)
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        smol::spawn(fut).detach();
    }
    fn advance(&self, d: Duration) {
        std::thread::sleep(d);
    }
    fn is_mock(&self) -> bool {
        false
    }
}

/// An `async_executor::Executor` run by one thread of its own until the runtime is dropped.
struct Executor {
    ex: Arc<async_executor::Executor<'static>>,
    stop: Option<smol::channel::Sender<()>>,
}

impl Executor {
    fn new() -> Executor {
        let ex = Arc::new(async_executor::Executor::new());
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let runner = ex.clone();
        std::thread::spawn(move || smol::block_on(runner.run(stopped.recv())));
        Executor { ex, stop: Some(stop) }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        drop(self.stop.take()); // closes the channel: the runner thread returns
    }
}

impl Runtime for Executor {
    fn background(&self) -> Ctx {
        ctx_smol::background()
    }
    fn block_on<F: Future + Send + 'static>(&self, fut: F) -> F::Output
    where
        F::Output: Send + 'static,
    {
        smol::block_on(self.ex.spawn(fut))
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        self.ex.spawn(fut).detach();
    }
    fn advance(&self, d: Duration) {
        std::thread::sleep(d);
    }
    fn is_mock(&self) -> bool {
        false
    }
}

mod on_smol {
    ctx_testkit::conformance_suite!(super::Smol);
}

mod on_async_executor {
    ctx_testkit::conformance_suite!(super::Executor::new());
}
