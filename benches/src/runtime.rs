//! The cross-runtime benchmarks, generic over a small [`BenchRuntime`] trait, so that the same
//! measurements run on tokio, async-std, smol, `MockClock` — or on your own executor.
//!
//! The measurements ([`Op`], each a batch of iterations run by [`batch`]):
//!
//! * `with_timeout+cancel`: a deadline context created and canceled with nobody waiting (a clock
//!   read, no timer);
//! * `err-with-deadline`: `err()` of an open context whose deadline is an hour away (whether
//!   it has passed: a clock read, or a proof that it is far);
//! * `done-arm+cancel`: the first poll of `done()` arms the deadline's timer, then a cancel;
//! * `done-arm+fire-1ms`: a 1 ms deadline armed and fired (real time on real clocks, so it
//!   measures timer resolution; [`pass`](BenchRuntime::pass) on a mock clock);
//! * `wake-1000-tasks`: 1,000 spawned tasks wait on one context; from the cancel to the last
//!   task finished;
//! * `run-overhead/{ready,yield-once}`: `ctx.run(fut)` against the bare `fut`, per await.
//!
//! Two ways to run them: [`crate::quick::Lineup`] samples every runtime in turn and prints a
//! table with verdicts (what `bash benches/run.sh --only runtimes` shows), and
//! [`bench_runtime`] registers them with criterion, one group `runtimes/<operation>` with one
//! function per runtime (its [`name`](BenchRuntime::name)), for criterion's plots.
//!
//! # Examples
//!
//! Benchmarking your own executor: implement [`BenchRuntime`] and hand it to a
//! [`Lineup`](crate::quick::Lineup) or to [`bench_runtime`] (here `futures`' `LocalPool` with
//! ctx-core's system clock):
//!
//! ```
//! use std::cell::RefCell;
//! use std::future::Future;
//! use std::time::Duration;
//! use ctx_benches::runtime::{BenchRuntime, bench_runtime};
//! use ctx_core::Ctx;
//! use futures::executor::{LocalPool, LocalSpawner};
//! use futures::future::BoxFuture;
//! use futures::task::SpawnExt;
//!
//! // The spawner is kept apart: `spawn` is called inside `block_on`, while the pool is busy.
//! struct Pool(RefCell<LocalPool>, LocalSpawner);
//!
//! impl BenchRuntime for Pool {
//!     fn name(&self) -> &str { "local-pool" }
//!     fn background(&self) -> Ctx { Ctx::background() }
//!     fn block_on<F: Future>(&self, fut: F) -> F::Output { self.0.borrow_mut().run_until(fut) }
//!     fn spawn(&self, fut: BoxFuture<'static, ()>) { self.1.spawn(fut).expect("spawn") }
//!     fn pass(&self, _d: Duration) {} // real time: awaiting the deadline waits for it
//! }
//!
//! fn my_benches(c: &mut criterion::Criterion) {
//!     let pool = LocalPool::new();
//!     let spawner = pool.spawner();
//!     bench_runtime(c, &Pool(RefCell::new(pool), spawner));
//! }
//!
//! // The benchmarks spawn from inside `block_on`:
//! let pool = LocalPool::new();
//! let spawner = pool.spawner();
//! let rt = Pool(RefCell::new(pool), spawner);
//! let (tx, rx) = futures::channel::oneshot::channel();
//! rt.block_on(async {
//!     rt.spawn(Box::pin(async move { tx.send(7).unwrap() }));
//!     assert_eq!(rx.await, Ok(7));
//! });
//! # let _ = my_benches; // criterion_group!(benches, my_benches); criterion_main!(benches);
//! ```

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ctx_core::{Ctx, Error};
use futures::channel::oneshot;
use futures::future::{BoxFuture, poll_fn};

use crate::{Weight, configure};

/// An executor and the root of its clock, as the cross-runtime benchmarks need them.
pub trait BenchRuntime {
    /// The name of the runtime in the benchmark ids (`runtimes/<op>/<name>`).
    fn name(&self) -> &str;

    /// A background root on this runtime's clock (`ctx_tokio::background()` inside the runtime,
    /// `MockClock::background()`, ...).
    fn background(&self) -> Ctx;

    /// Runs `fut` to completion on this runtime, from the benchmark's thread.
    fn block_on<F: Future>(&self, fut: F) -> F::Output;

    /// Spawns a detached task on this runtime.
    fn spawn(&self, fut: BoxFuture<'static, ()>);

    /// Lets `d` pass on this runtime's clock before a deadline is awaited: a mock clock
    /// advances; a real clock does nothing (the await itself waits).
    fn pass(&self, d: Duration);
}

/// The number of tasks of the `wake-N-tasks` group: a round takes a fraction of a millisecond,
/// short enough to run between other processes' time slices on a busy machine.
pub const TASKS: usize = 1_000;

/// One cross-runtime measurement (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `with_timeout` + `cancel` with nobody waiting.
    WithTimeoutCancel,
    /// `err()` of an open context whose deadline is an hour away.
    ErrDeadline,
    /// The first poll of `done()` arms the deadline's timer, then a cancel.
    DoneArmCancel,
    /// A 1 ms deadline armed and fired.
    DoneArmFire,
    /// One cancel wakes [`TASKS`] spawned tasks; until the last has finished.
    WakeTasks,
    /// `ctx.run(fut)` minus the bare `fut`, for a future that is ready at once.
    RunReady,
    /// `ctx.run(fut)` minus the bare `fut`, for a future that yields once.
    RunYieldOnce,
}

impl Op {
    /// Every operation, in the order of the tables.
    pub const ALL: [Op; 7] = [
        Op::WithTimeoutCancel,
        Op::ErrDeadline,
        Op::DoneArmCancel,
        Op::DoneArmFire,
        Op::WakeTasks,
        Op::RunReady,
        Op::RunYieldOnce,
    ];

    /// The operation's name: the criterion group is `runtimes/<name>`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_benches::runtime::Op;
    /// assert_eq!(Op::WakeTasks.name(), "wake-1000-tasks");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Op::WithTimeoutCancel => "with_timeout+cancel",
            Op::ErrDeadline => "err-with-deadline",
            Op::DoneArmCancel => "done-arm+cancel",
            Op::DoneArmFire => "done-arm+fire-1ms",
            Op::WakeTasks => "wake-1000-tasks",
            Op::RunReady => "run-overhead/ready",
            Op::RunYieldOnce => "run-overhead/yield-once",
        }
    }

    /// The operation named `name` ([`Op::name`]), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_benches::runtime::Op;
    /// assert_eq!(Op::from_name("wake-1000-tasks"), Some(Op::WakeTasks));
    /// assert_eq!(Op::from_name("nap"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// What one batch of iterations measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Batch {
    /// The time measured for the whole batch (for the `run` overheads, both halves).
    pub elapsed: Duration,
    /// The time per iteration, in nanoseconds (for [`Op::RunReady`] and [`Op::RunYieldOnce`],
    /// with `ctx.run(fut)`).
    pub per_iter_ns: f64,
    /// For [`Op::RunReady`] and [`Op::RunYieldOnce`]: the time per iteration of the bare `fut`,
    /// measured right after; what `run` adds is the difference.
    pub bare_ns: Option<f64>,
}

/// Runs `iters` iterations of `op` on `rt`, with contexts derived from `root` (a root of `rt`).
///
/// # Examples
///
/// ```
/// use ctx_benches::runtime::{Op, batch};
/// # use std::cell::RefCell; use std::future::Future; use std::time::Duration;
/// # use ctx_benches::runtime::BenchRuntime; use ctx_core::Ctx;
/// # use futures::executor::{LocalPool, LocalSpawner}; use futures::future::BoxFuture;
/// # use futures::task::SpawnExt;
/// # struct Pool(RefCell<LocalPool>, LocalSpawner);
/// # impl BenchRuntime for Pool {
/// #     fn name(&self) -> &str { "local-pool" }
/// #     fn background(&self) -> Ctx { Ctx::background() }
/// #     fn block_on<F: Future>(&self, fut: F) -> F::Output { self.0.borrow_mut().run_until(fut) }
/// #     fn spawn(&self, fut: BoxFuture<'static, ()>) { self.1.spawn(fut).expect("spawn") }
/// #     fn pass(&self, _d: Duration) {}
/// # }
/// # let pool = LocalPool::new(); let spawner = pool.spawner();
/// let rt = Pool(RefCell::new(pool), spawner); // the executor of the module doc
/// let b = batch(Op::WithTimeoutCancel, &rt, &rt.background(), 100);
/// assert!(b.per_iter_ns > 0.0 && b.elapsed > Duration::ZERO);
/// ```
pub fn batch<R: BenchRuntime>(op: Op, rt: &R, root: &Ctx, iters: u64) -> Batch {
    let per_iter = |d: Duration| d.as_nanos() as f64 / iters.max(1) as f64;
    let elapsed = match op {
        Op::WithTimeoutCancel => with_timeout_cancel_batch(rt, root, iters),
        Op::ErrDeadline => err_deadline_batch(rt, root, iters),
        Op::DoneArmCancel => done_arm_cancel_batch(rt, root, iters),
        Op::DoneArmFire => done_arm_fire_batch(rt, root, iters),
        Op::WakeTasks => wake_batch(rt, root, iters),
        Op::RunReady | Op::RunYieldOnce => {
            let yields = op == Op::RunYieldOnce;
            let (ctx, _cancel) = root.with_cancel();
            let with_run = run_batch(rt, &ctx, iters, yields, true);
            let bare = run_batch(rt, &ctx, iters, yields, false);
            return Batch {
                elapsed: with_run + bare,
                per_iter_ns: per_iter(with_run),
                bare_ns: Some(per_iter(bare)),
            };
        }
    };
    Batch {
        elapsed,
        per_iter_ns: per_iter(elapsed),
        bare_ns: None,
    }
}

/// Registers every cross-runtime measurement of `rt` with criterion (see the module doc for the
/// list); `cargo bench -p ctx-benches --bench runtimes` with `CTX_BENCH_CRITERION=1` runs them.
///
/// # Examples
///
/// See the [module documentation](self).
pub fn bench_runtime<R: BenchRuntime>(c: &mut Criterion, rt: &R) {
    let root = rt.background();
    for op in [
        Op::WithTimeoutCancel,
        Op::ErrDeadline,
        Op::DoneArmCancel,
        Op::DoneArmFire,
        Op::WakeTasks,
    ] {
        let mut g = c.benchmark_group(format!("runtimes/{}", op.name()));
        let weight = match op {
            Op::WithTimeoutCancel | Op::ErrDeadline => Weight::Light,
            Op::DoneArmCancel => Weight::Heavy,
            _ => Weight::VeryHeavy,
        };
        configure(&mut g, weight);
        g.bench_function(rt.name(), |b| {
            b.iter_custom(|iters| batch(op, rt, &root, iters).elapsed)
        });
        g.finish();
    }
    run_overhead(c, rt, &root);
}

/// Pending once (after asking to be polled again), then ready: lets other tasks run.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Times `iters` rounds of `body` inside one `block_on`.
fn timed<R: BenchRuntime, Fut: Future<Output = ()>>(
    rt: &R,
    iters: u64,
    mut body: impl FnMut(u64) -> Fut,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            body(i).await;
        }
        start.elapsed()
    })
}

fn with_timeout_cancel_batch<R: BenchRuntime>(rt: &R, root: &Ctx, iters: u64) -> Duration {
    timed(rt, iters, |_| async {
        let (ctx, cancel) = black_box(root).with_timeout(Duration::from_secs(3600));
        cancel.cancel();
        black_box(ctx);
    })
}

fn err_deadline_batch<R: BenchRuntime>(rt: &R, root: &Ctx, iters: u64) -> Duration {
    let (ctx, _cancel) = root.with_timeout(Duration::from_secs(3600));
    timed(rt, iters, |_| async {
        assert!(black_box(&ctx).err().is_none());
    })
}

fn done_arm_cancel_batch<R: BenchRuntime>(rt: &R, root: &Ctx, iters: u64) -> Duration {
    timed(rt, iters, |_| async {
        let (ctx, cancel) = root.with_timeout(Duration::from_secs(3600));
        let mut done = ctx.done();
        // The first poll arms the deadline timer.
        poll_fn(|cx| {
            assert!(Pin::new(&mut done).poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        cancel.cancel();
        assert_eq!(done.await, Error::Canceled);
    })
}

fn done_arm_fire_batch<R: BenchRuntime>(rt: &R, root: &Ctx, iters: u64) -> Duration {
    timed(rt, iters, |_| async {
        let (ctx, _cancel) = root.with_timeout(Duration::from_millis(1));
        let mut done = ctx.done();
        poll_fn(|cx| {
            let _ = Pin::new(&mut done).poll(cx);
            Poll::Ready(())
        })
        .await;
        rt.pass(Duration::from_millis(1));
        assert_eq!(done.await, Error::DeadlineExceeded);
    })
}

fn wake_batch<R: BenchRuntime>(rt: &R, root: &Ctx, iters: u64) -> Duration {
    rt.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            total += wake_round(rt, root).await;
        }
        total
    })
}

/// One round of `wake-N-tasks`: spawns the waiters (untimed), then times the cancel until the
/// last waiter has finished.
async fn wake_round<R: BenchRuntime>(rt: &R, root: &Ctx) -> Duration {
    let (ctx, cancel) = root.with_cancel();
    let waiting = Arc::new(AtomicUsize::new(0));
    let left = Arc::new(AtomicUsize::new(TASKS));
    let (tx, rx) = oneshot::channel::<()>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    for _ in 0..TASKS {
        let mut done = ctx.done();
        let (waiting, left, tx) = (waiting.clone(), left.clone(), tx.clone());
        rt.spawn(Box::pin(async move {
            let mut first = true;
            let err = poll_fn(|cx| {
                let r = Pin::new(&mut done).poll(cx);
                if std::mem::take(&mut first) {
                    waiting.fetch_add(1, Ordering::AcqRel);
                }
                r
            })
            .await;
            assert_eq!(err, Error::Canceled);
            if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                let tx = tx.lock().unwrap().take();
                if let Some(tx) = tx {
                    let _ = tx.send(());
                }
            }
        }));
    }
    while waiting.load(Ordering::Acquire) < TASKS {
        yield_now().await;
    }
    let start = Instant::now();
    cancel.cancel();
    rx.await.expect("last task reports");
    start.elapsed()
}

/// `iters` awaits of a future that is ready (or yields once), inside `ctx.run` or bare.
fn run_batch<R: BenchRuntime>(rt: &R, ctx: &Ctx, iters: u64, yields: bool, with_run: bool) -> Duration {
    timed(rt, iters, |i| async move {
        let fut = async move {
            if yields {
                yield_now().await;
            }
            black_box(i)
        };
        if with_run {
            black_box(ctx.run(fut).await.expect("live context"));
        } else {
            black_box(fut.await);
        }
    })
}

fn run_overhead<R: BenchRuntime>(c: &mut Criterion, rt: &R, root: &Ctx) {
    for (label, yields) in [("ready", false), ("yield-once", true)] {
        let mut g = c.benchmark_group(format!("runtimes/run-overhead/{label}"));
        configure(&mut g, Weight::Light);
        let (ctx, _cancel) = root.with_cancel();
        for (kind, with_run) in [("run", true), ("bare", false)] {
            g.bench_function(format!("{}/{kind}", rt.name()), |b| {
                b.iter_custom(|iters| run_batch(rt, &ctx, iters, yields, with_run))
            });
        }
        g.finish();
    }
}
