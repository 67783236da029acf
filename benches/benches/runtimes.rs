//! The cross-runtime benchmarks of [`ctx_benches::runtime`] on every adapter's root and on
//! `MockClock`:
//!
//! * tokio: its multi-thread runtime, one worker per CPU;
//! * async-std: its global executor;
//! * smol: one `smol::Executor` run on the bench thread;
//! * MockClock: futures' `LocalPool`, time moved by `advance`.
//!
//! To add your own executor, implement [`BenchRuntime`] for it (see the module doc of
//! `ctx_benches::runtime`) and call `bench_runtime` with it from `all` below.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ctx_benches::runtime::{BenchRuntime, bench_runtime};
use ctx_core::Ctx;
use futures::executor::{LocalPool, LocalSpawner};
use futures::future::BoxFuture;
use futures::task::SpawnExt;

struct Tokio(tokio::runtime::Runtime);

impl BenchRuntime for Tokio {
    fn name(&self) -> &str {
        "tokio"
    }
    fn background(&self) -> Ctx {
        let _enter = self.0.enter();
        ctx_tokio::background()
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }
    fn spawn(&self, fut: BoxFuture<'static, ()>) {
        drop(self.0.spawn(fut));
    }
    fn pass(&self, _d: Duration) {}
}

struct AsyncStd;

impl BenchRuntime for AsyncStd {
    fn name(&self) -> &str {
        "async-std"
    }
    fn background(&self) -> Ctx {
        ctx_async_std::background()
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        async_std::task::block_on(fut)
    }
    fn spawn(&self, fut: BoxFuture<'static, ()>) {
        drop(async_std::task::spawn(fut));
    }
    fn pass(&self, _d: Duration) {}
}

struct Smol(Arc<smol::Executor<'static>>);

impl BenchRuntime for Smol {
    fn name(&self) -> &str {
        "smol"
    }
    fn background(&self) -> Ctx {
        ctx_smol::background()
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        smol::block_on(self.0.run(fut))
    }
    fn spawn(&self, fut: BoxFuture<'static, ()>) {
        self.0.spawn(fut).detach();
    }
    fn pass(&self, _d: Duration) {}
}

struct Mock {
    clock: ctx_testkit::MockClock,
    pool: RefCell<LocalPool>,
    /// Taken once: `spawn` runs inside `block_on`, while the pool is borrowed.
    spawner: LocalSpawner,
}

impl BenchRuntime for Mock {
    fn name(&self) -> &str {
        "MockClock"
    }
    fn background(&self) -> Ctx {
        self.clock.background()
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.pool.borrow_mut().run_until(fut)
    }
    fn spawn(&self, fut: BoxFuture<'static, ()>) {
        self.spawner.spawn(fut).expect("LocalPool spawn");
    }
    fn pass(&self, d: Duration) {
        self.clock.advance(d);
    }
}

fn all(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(ctx_benches::parallelism())
        .enable_all()
        .build()
        .expect("tokio runtime");
    bench_runtime(c, &Tokio(tokio));
    bench_runtime(c, &AsyncStd);
    bench_runtime(c, &Smol(Arc::new(smol::Executor::new())));
    let pool = LocalPool::new();
    let mock = Mock {
        clock: ctx_testkit::MockClock::new(),
        spawner: pool.spawner(),
        pool: RefCell::new(pool),
    };
    bench_runtime(c, &mock);
}

criterion_group!(benches, all);
criterion_main!(benches);
