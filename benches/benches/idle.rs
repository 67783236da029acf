//! `IdleHandle::touch()` (`Ctx::with_idle_timeout`), against its floor: the one clock read it
//! needs plus one atomic store, in the same group (`IdleTouch`).
//!
//! The clock read is the root's: `Ctx::background()`'s is the system clock, `Instant::now()`
//! (`clock_gettime(CLOCK_MONOTONIC)` through the vDSO on Linux), not a coarse clock. A root with
//! a clock of its own (every runtime adapter's) reads it through `Arc<dyn Clock>`: one more
//! indirect call. `touch` then raises the deadline word with one `fetch_max` (a compare-exchange
//! loop on x86-64, one pass when uncontended) after one load of the state word.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ctx_benches::{Weight, configure, light};
use ctx_core::Ctx;
use ctx_core::clock::SystemClock;

const IDLE: Duration = Duration::from_secs(60);

fn idle_touch(c: &mut Criterion) {
    let mut g = c.benchmark_group("IdleTouch");
    configure(&mut g, Weight::Light);

    // The floor: the clock read `touch` needs, and one store of the new deadline.
    let word = AtomicU64::new(0);
    let base = Instant::now();
    g.bench_function("floor: Instant::now + atomic store", |b| {
        b.iter(|| {
            let deadline = Instant::now() + IDLE;
            let nanos = deadline.saturating_duration_since(base).as_nanos() as u64;
            black_box(&word).store(nanos, Ordering::Release);
        })
    });
    g.bench_function("floor: Instant::now + fetch_max", |b| {
        b.iter(|| {
            let deadline = Instant::now() + IDLE;
            let nanos = deadline.saturating_duration_since(base).as_nanos() as u64;
            black_box(&word).fetch_max(nanos, Ordering::AcqRel);
        })
    });

    let (ctx, idle) = Ctx::background().with_idle_timeout(IDLE);
    g.bench_function("touch (system clock)", |b| b.iter(|| black_box(&idle).touch()));
    // The check a worker makes between two pieces of work: its deadline (a minute away) is
    // proven ahead by a coarse clock read on Linux, with no full `Instant::now()`.
    g.bench_function("err (open, system clock)", |b| b.iter(|| black_box(&ctx).err()));

    let root = Ctx::background_with_clock(Arc::new(SystemClock::default()));
    let (_clock_ctx, clock_idle) = root.with_idle_timeout(IDLE);
    g.bench_function("touch (clock root)", |b| {
        b.iter(|| black_box(&clock_idle).touch())
    });

    let (_done_ctx, done_idle) = Ctx::background().with_idle_timeout(IDLE);
    done_idle.cancel();
    g.bench_function("touch (done: nothing to do)", |b| {
        b.iter(|| black_box(&done_idle).touch())
    });
    g.finish();
}

criterion_group!(
    name = benches;
    config = light();
    targets = idle_touch
);
criterion_main!(benches);
