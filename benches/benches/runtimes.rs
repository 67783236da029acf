//! The cross-runtime benchmarks of [`ctx_benches::runtime`] on every adapter's root and on
//! `MockClock`:
//!
//! * tokio: a current-thread runtime, driven by the bench thread;
//! * async-std: its global executor (its own threads; async-std has no other);
//! * smol: one `smol::Executor` run on the bench thread;
//! * MockClock: futures' `LocalPool`, time moved by `advance`.
//!
//! Where a runtime lets us, its tasks run on the bench thread: what differs between the
//! adapters is their clock and timers, and a pool of worker threads would add the operating
//! system's scheduling of those threads, which on a busy machine outweighs everything else
//! and changes from one minute to the next (benches/NOTES.md, "The cross-runtime sampler").
//!
//! By default it samples them in turn, in a few processes one after the other, and prints a
//! table of medians, intervals and verdicts (`ctx_benches::quick`); with `CTX_BENCH_OUT=path`
//! the results also go to `path` as JSON (for `benches/report.py`); `CTX_BENCH_FULL=1` takes more and longer samples. An argument keeps
//! only the operations whose name contains it (`cargo bench -p ctx-benches --bench runtimes --
//! wake`). `CTX_BENCH_CRITERION=1` runs the same operations under criterion instead, for its
//! plots in `target/criterion/report/`.
//!
//! To add your own executor, implement [`BenchRuntime`] for it (see the module doc of
//! `ctx_benches::runtime`) and add it in `main` below.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use ctx_benches::quick::{Budget, Lineup, Results};
use ctx_benches::runtime::{BenchRuntime, Op, bench_runtime};
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

fn tokio_runtime() -> Tokio {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    Tokio(rt)
}

fn mock() -> Mock {
    let pool = LocalPool::new();
    Mock {
        clock: ctx_testkit::MockClock::new(),
        spawner: pool.spawner(),
        pool: RefCell::new(pool),
    }
}

fn main() {
    if std::env::var_os("CTX_BENCH_CRITERION").is_some_and(|v| v != "0") {
        let (tokio, smol, mock) = (tokio_runtime(), Smol(Arc::new(smol::Executor::new())), mock());
        let mut c = Criterion::default().configure_from_args();
        bench_runtime(&mut c, &tokio);
        bench_runtime(&mut c, &AsyncStd);
        bench_runtime(&mut c, &smol);
        bench_runtime(&mut c, &mock);
        c.final_summary();
        return;
    }
    // `cargo bench` passes `--bench`; the first other argument filters the operations.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let ops: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|op| filter.as_deref().is_none_or(|f| op.name().contains(f)))
        .collect();
    let budget = Budget::from_env();
    if let Some(path) = std::env::var_os(CHILD) {
        // One of the processes below: its share of the samples, as text.
        let results = sample(&ops, budget.per_process(), |line| eprintln!("  {line}"));
        std::fs::write(&path, results.samples_text()).expect("cannot write the samples");
        return;
    }
    let mut texts = Vec::new();
    for p in 1..=budget.processes {
        eprintln!("runtimes: process {p} of {}", budget.processes);
        let path = std::env::temp_dir().join(format!("ctx-runtimes-{}-{p}.tsv", std::process::id()));
        let status = std::process::Command::new(std::env::current_exe().expect("own path"))
            .args(std::env::args_os().skip(1))
            .env(CHILD, &path)
            .status()
            .expect("cannot start a sampling process");
        assert!(status.success(), "a sampling process failed: {status}");
        texts.push(std::fs::read_to_string(&path).expect("cannot read the samples"));
        let _ = std::fs::remove_file(&path);
    }
    let results = Results::from_samples(&texts, budget);
    print!("{}", results.table());
    if let Some(path) = std::env::var_os("CTX_BENCH_OUT") {
        std::fs::write(&path, results.json()).expect("CTX_BENCH_OUT: cannot write the results");
    }
}

/// Set in the processes that take samples: where they write them.
const CHILD: &str = "CTX_BENCH_RUNTIMES_SAMPLES";

/// Takes `budget`'s samples of `ops` on every runtime, in this process.
fn sample(ops: &[Op], budget: Budget, progress: impl FnMut(&str)) -> Results {
    let (tokio, smol, mock) = (tokio_runtime(), Smol(Arc::new(smol::Executor::new())), mock());
    let mut lineup = Lineup::new();
    lineup.add(&tokio).add(&AsyncStd).add(&smol).add_reference(&mock);
    lineup.run(ops, budget, progress)
}
