//! The cross-runtime benchmarks, generic over a small [`BenchRuntime`] trait, so that the same
//! measurements run on tokio, async-std, smol, `MockClock` — or on your own executor.
//!
//! Each measurement is a criterion group named `runtimes/<operation>`, with one function per
//! runtime (its [`name`](BenchRuntime::name)):
//!
//! * `with_timeout+cancel`: a deadline context created and canceled with nobody waiting (a clock
//!   read, no timer);
//! * `done-arm+cancel`: the first poll of `done()` arms the deadline's timer, then a cancel;
//! * `done-arm+fire-1ms`: a 1 ms deadline armed and fired (real time on real clocks, so it
//!   measures timer resolution; [`pass`](BenchRuntime::pass) on a mock clock);
//! * `wake-10000-tasks`: 10,000 spawned tasks wait on one context; from the cancel to the last
//!   task finished;
//! * `run-overhead/{ready,yield-once}`: `ctx.run(fut)` against the bare `fut`, per await.
//!
//! # Examples
//!
//! Benchmarking your own executor: implement [`BenchRuntime`] and call [`bench_runtime`] from a
//! criterion target (here `futures`' `LocalPool` with ctx-core's system clock):
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

/// The number of tasks of the `wake-N-tasks` group.
pub const TASKS: usize = 10_000;

/// Runs every cross-runtime measurement on `rt` (see the module doc for the list).
///
/// # Examples
///
/// See the [module documentation](self).
pub fn bench_runtime<R: BenchRuntime>(c: &mut Criterion, rt: &R) {
    let root = rt.background();
    with_timeout_cancel(c, rt, &root);
    done_arm_cancel(c, rt, &root);
    done_arm_fire(c, rt, &root);
    wake_tasks(c, rt, &root);
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

fn with_timeout_cancel<R: BenchRuntime>(c: &mut Criterion, rt: &R, root: &Ctx) {
    let mut g = c.benchmark_group("runtimes/with_timeout+cancel");
    configure(&mut g, Weight::Light);
    g.bench_function(rt.name(), |b| {
        b.iter_custom(|iters| {
            timed(rt, iters, |_| async {
                let (ctx, cancel) = black_box(root).with_timeout(Duration::from_secs(3600));
                cancel.cancel();
                black_box(ctx);
            })
        })
    });
    g.finish();
}

fn done_arm_cancel<R: BenchRuntime>(c: &mut Criterion, rt: &R, root: &Ctx) {
    let mut g = c.benchmark_group("runtimes/done-arm+cancel");
    configure(&mut g, Weight::Heavy);
    g.bench_function(rt.name(), |b| {
        b.iter_custom(|iters| {
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
        })
    });
    g.finish();
}

fn done_arm_fire<R: BenchRuntime>(c: &mut Criterion, rt: &R, root: &Ctx) {
    let mut g = c.benchmark_group("runtimes/done-arm+fire-1ms");
    configure(&mut g, Weight::VeryHeavy);
    g.bench_function(rt.name(), |b| {
        b.iter_custom(|iters| {
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
        })
    });
    g.finish();
}

fn wake_tasks<R: BenchRuntime>(c: &mut Criterion, rt: &R, root: &Ctx) {
    let mut g = c.benchmark_group(format!("runtimes/wake-{TASKS}-tasks"));
    configure(&mut g, Weight::VeryHeavy);
    g.bench_function(rt.name(), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += wake_round(rt, root).await;
                }
                total
            })
        })
    });
    g.finish();
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

fn run_overhead<R: BenchRuntime>(c: &mut Criterion, rt: &R, root: &Ctx) {
    for (label, yields) in [("ready", false), ("yield-once", true)] {
        let mut g = c.benchmark_group(format!("runtimes/run-overhead/{label}"));
        configure(&mut g, Weight::Light);
        let (ctx, _cancel) = root.with_cancel();
        g.bench_function(format!("{}/run", rt.name()), |b| {
            b.iter_custom(|iters| {
                timed(rt, iters, |i| {
                    let ctx = &ctx;
                    async move {
                        let r = ctx
                            .run(async move {
                                if yields {
                                    yield_now().await;
                                }
                                black_box(i)
                            })
                            .await;
                        black_box(r.expect("live context"));
                    }
                })
            })
        });
        g.bench_function(format!("{}/bare", rt.name()), |b| {
            b.iter_custom(|iters| {
                timed(rt, iters, |i| async move {
                    if yields {
                        yield_now().await;
                    }
                    black_box(i);
                })
            })
        });
        g.finish();
    }
}
