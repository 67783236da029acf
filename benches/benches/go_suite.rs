//! Go's own `context` benchmarks (`$GOROOT/src/context/benchmark_test.go`), one criterion group
//! per Go benchmark, with the same names and sweeps, plus the single operations of the `Ops`
//! group (their Go counterparts are in `benches/go/ops_test.go`).
//!
//! Translation rules (see docs/benchmarks.md):
//! * `b.RunParallel` → [`run_parallel`] over as many threads as `GOMAXPROCS` would be (the
//!   number of CPUs); the time reported is wall time divided by all iterations, as in Go.
//! * `ctx, _ := WithCancel(parent)` (the cancel func thrown away) → `disarm()` the handle:
//!   dropping it would cancel the child.
//! * Go leaves garbage to its collector; Rust frees on the spot, so the timed loop also drops
//!   what it built (that cost is part of every number here).
//! * Go's `Value(-1)` on a chain of int keys → `value::<Missing>()` on a chain of `usize`
//!   values: a miss that compares the key at every level.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ctx_benches::{FloorNode, Weight, configure, light, parallelism, run_parallel};
use ctx_core::{CancelHandle, Ctx};

/// Go's `WithValue(Background(), "key", "value")`: values are keyed by type here.
struct Key(&'static str);

/// A type no context in these benchmarks carries.
struct Missing;

/// What Go runs for `for i := 0; i < 100; i++ { x /= x + 1 }` in `BenchmarkCommonParentCancel`:
/// `x` starts at 0, so Go's compiler folds the division away and keeps an empty loop of 100
/// iterations (`go tool objdump` of the test binary shows no `DIV`, only `CMPQ $0x64`). The
/// same here: 100 iterations the optimizer must keep, no division — a real 64-bit division
/// costs ~2.6 ns each on this machine, which made this row measure 200 divisions, not contexts.
#[inline(always)]
fn spin() {
    for i in 0..100u32 {
        black_box(i);
    }
}

fn common_parent_cancel(c: &mut Criterion) {
    let root = Ctx::background().with_value(Key("value"));
    let (shared, _shared_cancel) = root.with_cancel();
    c.bench_function("CommonParentCancel", |b| {
        b.iter_custom(|iters| {
            run_parallel(iters, parallelism(), |n| {
                for _ in 0..n {
                    let (ctx, cancel) = shared.with_cancel();
                    assert_eq!(ctx.value::<Key>().map(|k| k.0), Some("value"));
                    spin();
                    cancel.cancel();
                    spin();
                }
            })
        })
    });
}

fn with_timeout(c: &mut Criterion) {
    let mut g = c.benchmark_group("WithTimeout");
    configure(&mut g, Weight::Heavy);
    let root = Ctx::background();
    let procs = parallelism();
    for concurrency in [40usize, 4_000, 400_000] {
        // The contexts that exist meanwhile, made by GOMAXPROCS threads as in Go.
        let per = concurrency / procs;
        let held: Vec<Vec<(Ctx, CancelHandle)>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..procs)
                .map(|_| {
                    s.spawn(|| {
                        (0..per)
                            .map(|_| root.with_timeout(Duration::from_secs(3600)))
                            .collect()
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("builder thread"))
                .collect()
        });
        g.bench_function(format!("concurrency={concurrency}"), |b| {
            b.iter_custom(|iters| {
                run_parallel(iters, procs, |n| {
                    let mut wcf: Vec<(Ctx, CancelHandle)> = Vec::with_capacity(10);
                    for _ in 0..n {
                        for _ in 0..10 {
                            wcf.push(root.with_timeout(Duration::from_secs(3600)));
                        }
                        for (_ctx, cancel) in wcf.drain(..) {
                            cancel.cancel();
                        }
                    }
                })
            })
        });
        for (_ctx, cancel) in held.into_iter().flatten() {
            cancel.cancel();
        }
    }
    g.finish();
}

/// Go's `buildContextTree`: a chain of `depth` cancelable children, cancel funcs discarded.
/// Returns the leaf, which keeps the chain alive (Go's parent keeps its children).
fn build_context_tree(root: &Ctx, depth: usize) -> Ctx {
    let mut ctx = root.clone();
    for _ in 0..depth {
        let (child, cancel) = ctx.with_cancel();
        cancel.disarm();
        ctx = child;
    }
    ctx
}

fn cancel_tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("CancelTree");
    configure(&mut g, Weight::Heavy);
    let bg = Ctx::background();
    for depth in [1usize, 10, 100, 1000] {
        g.bench_function(format!("depth={depth}/Root=Background"), |b| {
            b.iter(|| build_context_tree(black_box(&bg), depth))
        });
        g.bench_function(format!("depth={depth}/Root=OpenCanceler"), |b| {
            b.iter(|| {
                let (ctx, cancel) = bg.with_cancel();
                let leaf = build_context_tree(&ctx, depth);
                cancel.cancel();
                leaf
            })
        });
        g.bench_function(format!("depth={depth}/Root=ClosedCanceler"), |b| {
            b.iter(|| {
                let (ctx, cancel) = bg.with_cancel();
                cancel.cancel();
                build_context_tree(&ctx, depth)
            })
        });
    }
    g.finish();
}

fn check_canceled(c: &mut Criterion) {
    let mut g = c.benchmark_group("CheckCanceled");
    configure(&mut g, Weight::Light);
    let (ctx, cancel) = Ctx::background().with_cancel();
    cancel.cancel();
    g.bench_function("Err", |b| b.iter(|| black_box(&ctx).err()));
    // Go's non-blocking `select { case <-ctx.Done(): default: }`.
    g.bench_function("Done", |b| b.iter(|| black_box(&ctx).is_done()));
    g.finish();
}

fn context_cancel_done(c: &mut Criterion) {
    let (ctx, _cancel) = Ctx::background().with_cancel();
    c.bench_function("ContextCancelDone", |b| {
        b.iter_custom(|iters| {
            run_parallel(iters, parallelism(), |n| {
                for _ in 0..n {
                    black_box(black_box(&ctx).is_done());
                }
            })
        })
    });
}

fn deep_value_same_goroutine(c: &mut Criterion) {
    let mut g = c.benchmark_group("DeepValueSameGoRoutine");
    configure(&mut g, Weight::Light);
    for depth in [10usize, 20, 30, 50, 100] {
        let mut ctx = Ctx::background();
        for i in 0..depth {
            ctx = ctx.with_value(i);
        }
        g.bench_function(format!("depth={depth}"), |b| {
            b.iter(|| assert!(black_box(&ctx).value::<Missing>().is_none()))
        });
    }
    g.finish();
}

fn err_ok(c: &mut Criterion) {
    let (ctx, _cancel) = Ctx::background().with_cancel();
    c.bench_function("ErrOK", |b| b.iter(|| assert!(black_box(&ctx).err().is_none())));
}

fn err_canceled(c: &mut Criterion) {
    let (ctx, cancel) = Ctx::background().with_cancel();
    cancel.cancel();
    c.bench_function("ErrCanceled", |b| {
        b.iter(|| assert!(black_box(&ctx).err().is_some()))
    });
}

/// One read of the kernel's coarse monotonic clock, as ctx-core reads it to prove a deadline
/// still ahead (`clock.rs`, `coarse`).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn coarse_clock_read() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the pointer, which points at `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Single operations, each with a Go twin of the same name in `benches/go/ops_test.go`.
fn ops(c: &mut Criterion) {
    let mut g = c.benchmark_group("Ops");
    configure(&mut g, Weight::Light);
    let bg = Ctx::background();
    g.bench_function("WithCancel+cancel", |b| {
        b.iter(|| {
            let (ctx, cancel) = black_box(&bg).with_cancel();
            cancel.cancel();
            ctx
        })
    });
    // The same under a root with a clock of its own, as every runtime adapter's and
    // `MockClock`'s roots are (no Go twin: Go has one clock), on one thread and on two at once
    // (per thread: each thread runs every iteration). Deriving must touch nothing shared with
    // the other thread, so the three rows should be close.
    let clock_root = Ctx::background_with_clock(Arc::new(ctx_core::clock::SystemClock::default()));
    g.bench_function("WithCancel+cancel (clock root)", |b| {
        b.iter(|| {
            let (ctx, cancel) = black_box(&clock_root).with_cancel();
            cancel.cancel();
            ctx
        })
    });
    for (name, root) in [
        ("WithCancel+cancel (2 threads)", &bg),
        ("WithCancel+cancel (clock root, 2 threads)", &clock_root),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                run_parallel(iters * 2, 2, |n| {
                    for _ in 0..n {
                        let (ctx, cancel) = black_box(root).with_cancel();
                        cancel.cancel();
                        drop(black_box(ctx));
                    }
                })
            })
        });
    }
    let (parent, _parent_cancel) = bg.with_cancel();
    g.bench_function("ChildOfOpen+cancel", |b| {
        b.iter(|| {
            let (ctx, cancel) = black_box(&parent).with_cancel();
            cancel.cancel();
            ctx
        })
    });
    g.bench_function("WithTimeout+cancel", |b| {
        b.iter(|| {
            let (ctx, cancel) = black_box(&bg).with_timeout(Duration::from_secs(3600));
            cancel.cancel();
            ctx
        })
    });
    // The allocation floor (no Go twin): what any heap-allocated, shared, cancelable context
    // costs at least — one allocation of a 96-byte node counted from birth by its two owners
    // (the context's and the handle's), an atomic swap for the cancel, each owner's release
    // (one atomic read-modify-write each), the free. `WithCancel+cancel` is measured against it.
    g.bench_function("AllocFloor", |b| {
        b.iter(|| {
            let node = FloorNode::born();
            black_box(&node.state).swap(1, Ordering::AcqRel);
            let handle_was_last = black_box(&node).release();
            let ctx_was_last = node.release();
            drop(node);
            handle_was_last || ctx_was_last
        })
    });
    // One read of the system clock (no Go twin): `with_timeout` + `cancel` must read it at
    // creation (`now + d`, exactly, as Go's `time.Now().Add(d)`), and at the cancel must know
    // whether the deadline has passed (it is `DeadlineExceeded` then, even though nobody
    // looked): a read of the kernel's coarse clock proves a deadline an hour away still ahead
    // (`CoarseClockRead`, Linux). `AllocFloor` + `ClockRead` + `CoarseClockRead` is the least
    // that row can cost.
    g.bench_function("ClockRead", |b| b.iter(std::time::Instant::now));
    #[cfg(target_os = "linux")]
    g.bench_function("CoarseClockRead", |b| b.iter(coarse_clock_read));
    g.bench_function("WithValue", |b| b.iter(|| black_box(&bg).with_value(7usize)));
    g.bench_function("ErrOpen", |b| b.iter(|| black_box(&parent).err()));
    let (closed, close) = bg.with_cancel();
    close.cancel();
    g.bench_function("ErrCanceled", |b| b.iter(|| black_box(&closed).err()));
    let (timed, _timed_cancel) = bg.with_timeout(Duration::from_secs(3600));
    g.bench_function("ErrOpenDeadline", |b| b.iter(|| black_box(&timed).err()));
    g.bench_function("IsDoneOpen", |b| b.iter(|| black_box(&parent).is_done()));
    g.bench_function("IsDoneCanceled", |b| b.iter(|| black_box(&closed).is_done()));
    // What criterion's loop and `black_box` cost by themselves (no Go twin).
    g.bench_function("LoopBaseline", |b| b.iter(|| black_box(&parent)));
    // The least any `err()` or `is_done()` does (no Go twin): a context is shared by its clones
    // and ended from elsewhere, so its handle points at shared state; reading whether it is done
    // follows that pointer and loads one word with `Acquire` (what it says happens-after the
    // cancel), and tests it. `ErrOpen`, `ErrCanceled`, `IsDoneOpen` and `IsDoneCanceled` are
    // measured against it.
    let shared = FloorNode::born();
    g.bench_function("LoadFloor", |b| {
        b.iter(|| black_box(&shared).state.load(Ordering::Acquire) != 0)
    });
    let valued = bg.with_value(Key("value"));
    g.bench_function("ValueHit", |b| {
        b.iter(|| black_box(&valued).value::<Key>().is_some())
    });
    g.finish();
}

criterion_group!(
    name = benches;
    config = light();
    targets =
    common_parent_cancel,
    with_timeout,
    cancel_tree,
    check_canceled,
    context_cancel_done,
    deep_value_same_goroutine,
    err_ok,
    err_canceled,
    ops
);
criterion_main!(benches);
