//! Instructions per operation, for `valgrind --tool=callgrind` (criterion's nanoseconds are noisy
//! on a shared machine; instruction counts are not). Runs one operation `N` times:
//!
//! ```text
//! cargo build --release -p ctx-benches --example callgrind
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/callgrind with-cancel 0
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/callgrind with-cancel 100000
//! ```
//!
//! (the difference of the two `Collected` totals, divided by 100,000, is the cost of one
//! operation). Operations: `with-cancel` (`with_cancel` of `background()`, `cancel()`, drop),
//! `clock-root` (the same under a root made by `background_with_clock`, as the runtimes' are),
//! `child-of-open` (the same under an open cancelable parent), `child-of-value` (the same
//! under a value of that parent), `child-dropped` (a child of an
//! open parent, its handle disarmed, dropped open), `with-timeout`, `with-value`,
//! `err-open`, `err-deadline` (`err()` of an open `with_timeout(1h)` child of `background()`),
//! `value-miss-100` (a `value()` lookup that misses all 100 values of a chain: per
//! lookup), `value-hit` (one that finds the context's own value), `value-hit-100` (one that finds the value above 100 others), `chain-100` (a chain of 100 `with_cancel` under a cancelable root, canceled from
//! the root and dropped: per node), `tree-100` (Go's `buildContextTree`: a chain of 100
//! `with_cancel` under `background()`, handles disarmed, dropped uncanceled: per node), `chain-1` (a root and its one child, the root canceled,
//! all dropped), `wide-100` (a cancelable parent with 100 `with_cancel` children, canceled and dropped: per child), `waiter` (`with_cancel`, one pending `done()` poll, `cancel()`), `waiters-100` (the same
//! with 100 `done()` futures: per future), `repoll` (a pending `done()` polled again with the
//! waker it registered: per poll), `poll-once` (a `done()` of an open context polled once and
//! dropped), `floor` (the allocation floor of `Ops/AllocFloor`),
//! `idle-touch` (`IdleHandle::touch` on a child of `background()`) and `touch-floor` (its floor:
//! `Instant::now()` and one atomic store), `timer-arm` (`with_timeout` of `background()`, one
//! pending `done()` poll, which arms its timer on the system clock, `cancel()`),
//! `timer-arm-nop` (the same on a clock whose timers cost nothing: what the watch that drives
//! a timer costs) and `wrap-foreign` (`Ctx::wrap` of a context whose `done()` is a foreign
//! future: its watcher's start, first poll and cancel, then drop).
//! With the `runtimes` feature (on by default), on a current-thread tokio runtime: `tokio-now`
//! (`TokioClock::now()` inside `block_on`), `tokio-now-outside` (the same clock read on a thread
//! outside the runtime), `tokio-with-timeout` (`with-timeout` on `ctx_tokio::background()`,
//! inside `block_on`), `tokio-err-deadline` (`err-deadline` there) and `tokio-cancel-wide-10`
//! (a parent with 10 children there, canceled and dropped: per child).

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ctx_core::Ctx;

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_else(|| "with-cancel".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let bg = Ctx::background();
    let (parent, _parent_cancel) = bg.with_cancel();
    match op.as_str() {
        "with-cancel" => (0..n).for_each(|_| {
            let (ctx, cancel) = black_box(&bg).with_cancel();
            cancel.cancel();
            drop(black_box(ctx));
        }),
        "clock-root" => {
            // The same under a root with a clock of its own (as every runtime adapter's root).
            let root = Ctx::background_with_clock(Arc::new(ctx_core::clock::SystemClock::default()));
            (0..n).for_each(|_| {
                let (ctx, cancel) = black_box(&root).with_cancel();
                cancel.cancel();
                drop(black_box(ctx));
            })
        }
        "child-of-open" => (0..n).for_each(|_| {
            let (ctx, cancel) = black_box(&parent).with_cancel();
            cancel.cancel();
            drop(black_box(ctx));
        }),
        "child-of-value" => {
            // A request handler's shape: `child-of-open` below a value of the open parent.
            let request = parent.with_value(7u64);
            (0..n).for_each(|_| {
                let (ctx, cancel) = black_box(&request).with_cancel();
                cancel.cancel();
                drop(black_box(ctx));
            })
        }
        "child-dropped" => (0..n).for_each(|_| {
            // `child-dropped-uncanceled`: a child of an open parent, disarmed and dropped open.
            let (ctx, cancel) = black_box(&parent).with_cancel();
            cancel.disarm();
            drop(black_box(ctx));
        }),
        "with-timeout" => (0..n).for_each(|_| {
            let (ctx, cancel) = black_box(&bg).with_timeout(Duration::from_secs(3600));
            cancel.cancel();
            drop(black_box(ctx));
        }),
        "with-value" => (0..n).for_each(|_| drop(black_box(black_box(&bg).with_value(7usize)))),
        "value-miss-100" => {
            // Go's `DeepValueSameGoRoutine/depth=100`: a lookup that misses all 100 values of a
            // chain (the chain is built for every `n`, so it cancels out of the difference).
            struct Missing;
            let mut chain = bg.clone();
            for i in 0..100usize {
                chain = chain.with_value(i);
            }
            (0..n).for_each(|_| assert!(black_box(&chain).value::<Missing>().is_none()))
        }
        "value-hit" => {
            // `Ops/ValueHit`: the value is the context's own.
            #[derive(Debug)]
            struct Key(&'static str);
            let valued = bg.with_value(Key("value"));
            (0..n).for_each(|_| assert_eq!(black_box(&valued).value::<Key>().map(|k| k.0), Some("value")))
        }
        "value-hit-100" => {
            // A lookup that finds the value above 100 others (of another type): a walk of them.
            let mut chain = bg.with_value(1u8);
            for i in 0..100usize {
                chain = chain.with_value(i);
            }
            (0..n).for_each(|_| assert!(black_box(&chain).value::<u8>().is_some()))
        }
        "err-open" => (0..n).for_each(|_| {
            black_box(black_box(&parent).err());
        }),
        "err-deadline" => {
            // `err()` of an open context with a deadline an hour away (a clock proof).
            let (ctx, _cancel) = bg.with_timeout(Duration::from_secs(3600));
            (0..n).for_each(|_| {
                black_box(black_box(&ctx).err());
            })
        }
        "chain-100" => (0..n / 100).for_each(|_| {
            let (root, cancel) = black_box(&bg).with_cancel();
            let mut leaf = root.clone();
            let mut handles = Vec::with_capacity(100);
            for _ in 0..100 {
                let (child, h) = leaf.with_cancel();
                handles.push(h);
                leaf = child;
            }
            cancel.cancel();
            drop(black_box((handles, leaf, root)));
        }),
        "tree-100" => (0..n / 100).for_each(|_| {
            // Go's `buildContextTree` under `background()`: a chain of 100 `with_cancel`, the
            // handles disarmed, dropped from the leaf uncanceled (per node).
            let mut leaf = black_box(&bg).clone();
            for _ in 0..100 {
                let (child, h) = leaf.with_cancel();
                h.disarm();
                leaf = child;
            }
            drop(black_box(leaf));
        }),
        "chain-1" => (0..n).for_each(|_| {
            // `cancel-chain/depth=1`'s whole life: a root, its one child, the root canceled.
            let (root, cancel) = black_box(&bg).with_cancel();
            let (child, h) = root.with_cancel();
            cancel.cancel();
            drop(black_box((child, h, root)));
        }),
        "wide-100" => (0..n / 100).for_each(|_| {
            // A parent with 100 children (built outside the count: N = 0 builds them too),
            // canceled: the walk over many children.
            let (root, cancel) = black_box(&bg).with_cancel();
            let children: Vec<_> = (0..100).map(|_| root.with_cancel()).collect();
            cancel.cancel();
            drop(black_box((children, root)));
        }),
        "waiter" => (0..n).for_each(|_| {
            let (ctx, cancel) = black_box(&bg).with_cancel();
            let mut done = std::pin::pin!(ctx.done());
            let waker = std::task::Waker::noop();
            let _ = done.as_mut().poll(&mut std::task::Context::from_waker(waker));
            cancel.cancel();
            drop(black_box(ctx));
        }),
        "repoll" => {
            // A pending `done()` polled again by the task whose waker it registered (a
            // `select!` loop): per re-poll.
            let mut done = std::pin::pin!(parent.done());
            let cx = &mut std::task::Context::from_waker(std::task::Waker::noop());
            let _ = done.as_mut().poll(cx);
            (0..n).for_each(|_| assert!(black_box(done.as_mut()).poll(cx).is_pending()));
        }
        "poll-once" => (0..n).for_each(|_| {
            // `vs-tokio-util/poll-once-open`: a `done()` of an open context polled once (its
            // waker registered), then dropped (unregistered).
            let mut done = black_box(&parent).done();
            let cx = &mut std::task::Context::from_waker(std::task::Waker::noop());
            assert!(std::pin::Pin::new(&mut done).poll(cx).is_pending());
            drop(black_box(done));
        }),
        "waiters-100" => (0..n / 100).for_each(|_| {
            let (ctx, cancel) = black_box(&bg).with_cancel();
            let waker = std::task::Waker::noop();
            let mut dones: Vec<_> = (0..100).map(|_| Box::pin(ctx.done())).collect();
            for done in &mut dones {
                let _ = done.as_mut().poll(&mut std::task::Context::from_waker(waker));
            }
            cancel.cancel();
            drop(black_box((dones, ctx)));
        }),
        "floor" => (0..n).for_each(|_| {
            let node = ctx_benches::FloorNode::born();
            black_box(&node.state).swap(1, Ordering::AcqRel);
            let handle_was_last = black_box(&node).release();
            black_box(node.release() || handle_was_last);
            drop(node);
        }),
        "idle-touch" => {
            let (_ctx, idle) = bg.with_idle_timeout(Duration::from_secs(60));
            (0..n).for_each(|_| black_box(&idle).touch());
        }
        "touch-floor" => {
            // What `idle-touch` cannot go below: the clock read and one store of the deadline.
            let word = std::sync::atomic::AtomicU64::new(0);
            let base = std::time::Instant::now();
            (0..n).for_each(|_| {
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                let nanos = deadline.saturating_duration_since(base).as_nanos() as u64;
                black_box(&word).store(nanos, Ordering::Release);
            })
        }
        "timer-arm" => (0..n).for_each(|_| timer_arm(&bg)),
        "timer-arm-nop" => {
            let root = Ctx::background_with_clock(Arc::new(NopClock));
            (0..n).for_each(|_| timer_arm(&root))
        }
        "wrap-foreign" => {
            let (values, _c) = bg.with_cancel();
            (0..n).for_each(|_| {
                let wrapped = Ctx::wrap(Pending(values.clone()));
                drop(black_box(wrapped));
            })
        }
        #[cfg(feature = "runtimes")]
        op if op.starts_with("tokio-") => tokio_op(op, n),
        other => panic!("unknown operation {other}"),
    }
}

/// `with_timeout`, one pending `done()` poll (arms the timer), `cancel()`, drop.
fn timer_arm(root: &Ctx) {
    let (ctx, cancel) = black_box(root).with_timeout(Duration::from_secs(3600));
    let mut done = std::pin::pin!(ctx.done());
    let _ = done
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    cancel.cancel();
    drop(black_box(ctx));
}

/// A clock whose timers never fire and cost one allocation: isolates the watch around them.
#[derive(Debug)]
struct NopClock;

impl ctx_core::Clock for NopClock {
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
    fn sleep_until(&self, _deadline: std::time::Instant) -> ctx_core::clock::Timer {
        Box::pin(std::future::pending())
    }
}

/// A context whose `done()` is a foreign future that never completes: `Ctx::wrap` watches it.
struct Pending(Ctx);

impl ctx_core::Forward for Pending {
    fn inner(&self) -> &Ctx {
        &self.0
    }
    fn done(&self) -> ctx_core::Done {
        ctx_core::Done::new(std::future::pending())
    }
    fn err(&self) -> Option<ctx_core::Error> {
        None
    }
}

/// The operations on a current-thread tokio runtime (this crate's tokio has no `test-util`).
#[cfg(feature = "runtimes")]
fn tokio_op(op: &str, n: usize) {
    use ctx_tokio::{Clock, TokioClock};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let clock = TokioClock::new(rt.handle().clone());
    match op {
        "tokio-now" => rt.block_on(async {
            (0..n).for_each(|_| {
                black_box(black_box(&clock).now());
            })
        }),
        "tokio-now-outside" => (0..n).for_each(|_| {
            black_box(black_box(&clock).now());
        }),
        "tokio-err-deadline" => rt.block_on(async {
            let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(3600));
            (0..n).for_each(|_| {
                black_box(black_box(&ctx).err());
            })
        }),
        "tokio-cancel-wide-10" => rt.block_on(async {
            // A parent with 10 children under the tokio root, canceled (its walk's clock).
            let bg = ctx_tokio::background();
            (0..n / 10).for_each(|_| {
                let (root, cancel) = black_box(&bg).with_cancel();
                let children: Vec<_> = (0..10).map(|_| root.with_cancel()).collect();
                cancel.cancel();
                drop(black_box((children, root)));
            })
        }),
        "tokio-with-timeout" => rt.block_on(async {
            let bg = ctx_tokio::background();
            (0..n).for_each(|_| {
                let (ctx, cancel) = black_box(&bg).with_timeout(Duration::from_secs(3600));
                cancel.cancel();
                drop(black_box(ctx));
            })
        }),
        other => panic!("unknown operation {other}"),
    }
}
