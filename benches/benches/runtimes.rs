//! The same operations on the roots of every runtime adapter and on `MockClock`:
//!
//! * `with_timeout+cancel` with nobody waiting (a clock read, no timer);
//! * `done()` of a deadline context: armed then canceled, and armed then fired (1 ms real
//!   timeout on the runtimes, `advance(1 ms)` on the mock clock);
//! * 10,000 tasks waiting on one context, woken by one cancel (from the cancel to the last
//!   task finished);
//! * `run(fut)` versus the bare future, for a ready future and one that yields once.
//!
//! Executors: tokio's multi-thread runtime (one worker per CPU), async-std's global executor,
//! one `smol::Executor` run on the bench thread, and for `MockClock` futures' `LocalPool`.

use std::cell::RefCell;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ctx_benches::{Weight, configure};
use ctx_core::{Ctx, Error};
use futures::channel::oneshot;
use futures::executor::LocalPool;
use futures::future::{BoxFuture, poll_fn};
use futures::task::LocalSpawnExt;

type BlockOn = Box<dyn Fn(Pin<Box<dyn Future<Output = Duration> + '_>>) -> Duration>;
type Spawn = Rc<dyn Fn(BoxFuture<'static, ()>)>;

/// One executor with its adapter's root.
struct Rt {
    name: &'static str,
    root: Ctx,
    block_on: BlockOn,
    spawn: Spawn,
    /// Makes a 1 ms deadline pass: a no-op on real clocks (the await waits), `advance` on mocks.
    pass_1ms: Rc<dyn Fn()>,
}

fn runtimes() -> Vec<Rt> {
    let mut out = Vec::new();

    let tokio_rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(ctx_benches::parallelism())
            .enable_all()
            .build()
            .expect("tokio runtime"),
    );
    let root = tokio_rt.block_on(async { ctx_tokio::background() });
    let handle = tokio_rt.handle().clone();
    let rt = tokio_rt.clone();
    out.push(Rt {
        name: "tokio",
        root,
        block_on: Box::new(move |f| rt.block_on(f)),
        spawn: Rc::new(move |f| drop(handle.spawn(f))),
        pass_1ms: Rc::new(|| {}),
    });

    out.push(Rt {
        name: "async-std",
        root: ctx_async_std::background(),
        block_on: Box::new(|f| async_std::task::block_on(f)),
        spawn: Rc::new(|f| drop(async_std::task::spawn(f))),
        pass_1ms: Rc::new(|| {}),
    });

    let ex = Arc::new(smol::Executor::<'static>::new());
    let ex2 = ex.clone();
    out.push(Rt {
        name: "smol",
        root: ctx_smol::background(),
        block_on: Box::new(move |f| smol::block_on(ex2.run(f))),
        spawn: Rc::new(move |f| ex.spawn(f).detach()),
        pass_1ms: Rc::new(|| {}),
    });

    let clock = ctx_testkit::MockClock::new();
    let pool = Rc::new(RefCell::new(LocalPool::new()));
    let spawner = pool.borrow().spawner();
    let p = pool.clone();
    let c = clock.clone();
    out.push(Rt {
        name: "MockClock",
        root: clock.background(),
        block_on: Box::new(move |f| p.borrow_mut().run_until(f)),
        spawn: Rc::new(move |f| spawner.spawn_local(f).expect("LocalPool spawn")),
        pass_1ms: Rc::new(move || c.advance(Duration::from_millis(1))),
    });
    out
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

fn with_timeout_cancel(c: &mut Criterion, rts: &[Rt]) {
    let mut g = c.benchmark_group("runtimes/with_timeout+cancel");
    configure(&mut g, Weight::Light);
    for rt in rts {
        g.bench_function(rt.name, |b| {
            b.iter_custom(|iters| {
                (rt.block_on)(Box::pin(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let (ctx, cancel) = black_box(&rt.root).with_timeout(Duration::from_secs(3600));
                        cancel.cancel();
                        black_box(ctx);
                    }
                    start.elapsed()
                }))
            })
        });
    }
    g.finish();
}

fn done_deadline(c: &mut Criterion, rts: &[Rt]) {
    let mut g = c.benchmark_group("runtimes/done-arm+cancel");
    configure(&mut g, Weight::Heavy);
    for rt in rts {
        g.bench_function(rt.name, |b| {
            b.iter_custom(|iters| {
                (rt.block_on)(Box::pin(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let (ctx, cancel) = rt.root.with_timeout(Duration::from_secs(3600));
                        let mut done = ctx.done();
                        // The first poll arms the deadline timer.
                        poll_fn(|cx| {
                            assert!(Pin::new(&mut done).poll(cx).is_pending());
                            Poll::Ready(())
                        })
                        .await;
                        cancel.cancel();
                        assert_eq!(done.await, Error::Canceled);
                    }
                    start.elapsed()
                }))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("runtimes/done-arm+fire-1ms");
    configure(&mut g, Weight::VeryHeavy);
    for rt in rts {
        g.bench_function(rt.name, |b| {
            b.iter_custom(|iters| {
                (rt.block_on)(Box::pin(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let (ctx, _cancel) = rt.root.with_timeout(Duration::from_millis(1));
                        let mut done = ctx.done();
                        poll_fn(|cx| {
                            let _ = Pin::new(&mut done).poll(cx);
                            Poll::Ready(())
                        })
                        .await;
                        (rt.pass_1ms)();
                        assert_eq!(done.await, Error::DeadlineExceeded);
                    }
                    start.elapsed()
                }))
            })
        });
    }
    g.finish();
}

const TASKS: usize = 10_000;

fn wake_tasks(c: &mut Criterion, rts: &[Rt]) {
    let mut g = c.benchmark_group(format!("runtimes/wake-{TASKS}-tasks"));
    configure(&mut g, Weight::VeryHeavy);
    for rt in rts {
        g.bench_function(rt.name, |b| {
            b.iter_custom(|iters| {
                (rt.block_on)(Box::pin(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (ctx, cancel) = rt.root.with_cancel();
                        let waiting = Arc::new(AtomicUsize::new(0));
                        let left = Arc::new(AtomicUsize::new(TASKS));
                        let (tx, rx) = oneshot::channel::<()>();
                        let tx = Arc::new(Mutex::new(Some(tx)));
                        for _ in 0..TASKS {
                            let mut done = ctx.done();
                            let (waiting, left, tx) = (waiting.clone(), left.clone(), tx.clone());
                            (rt.spawn)(Box::pin(async move {
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
                        total += start.elapsed();
                    }
                    total
                }))
            })
        });
    }
    g.finish();
}

fn run_overhead(c: &mut Criterion, rts: &[Rt]) {
    for (label, yields) in [("ready", false), ("yield-once", true)] {
        let mut g = c.benchmark_group(format!("runtimes/run-overhead/{label}"));
        configure(&mut g, Weight::Light);
        for rt in rts {
            let (ctx, _cancel) = rt.root.with_cancel();
            g.bench_function(format!("{}/run", rt.name), |b| {
                b.iter_custom(|iters| {
                    (rt.block_on)(Box::pin(async {
                        let start = Instant::now();
                        for i in 0..iters {
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
                        start.elapsed()
                    }))
                })
            });
            g.bench_function(format!("{}/bare", rt.name), |b| {
                b.iter_custom(|iters| {
                    (rt.block_on)(Box::pin(async {
                        let start = Instant::now();
                        for i in 0..iters {
                            let r = async move {
                                if yields {
                                    yield_now().await;
                                }
                                black_box(i)
                            }
                            .await;
                            black_box(r);
                        }
                        start.elapsed()
                    }))
                })
            });
        }
        g.finish();
    }
}

fn all(c: &mut Criterion) {
    let rts = runtimes();
    with_timeout_cancel(c, &rts);
    done_deadline(c, &rts);
    wake_tasks(c, &rts);
    run_overhead(c, &rts);
}

criterion_group!(benches, all);
criterion_main!(benches);
