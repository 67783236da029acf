//! Support code shared by the benchmark targets of `ctx-benches`.
//!
//! The targets themselves live in `benches/`: `go_suite` (Go's own `context` benchmarks, same
//! names and sweeps), `tokio_util` (the same operations on `CancellationToken`), `runtimes`
//! (tokio, async-std, smol and `MockClock`, generic over [`runtime::BenchRuntime`], so you can
//! add your own executor; sampled by [`quick`] and judged by [`stats`] into a table with
//! verdicts), `tower` and `memory` (bytes and allocations per operation, counted by
//! [`CountingAlloc`]). `bash benches/run.sh` runs them (`--only GROUP` for one question) and
//! writes `target/ctx-benches/benchmarks.md`; `--update-docs` puts the run's sections into
//! `docs/benchmarks.md`. `benches/README.md` explains how to run and read them.
//!
//! Timing budgets are short by default so that the whole suite fits in a few minutes on a
//! small shared machine; set `CTX_BENCH_FULL=1` for longer ones.
//!
//! # Examples
//!
//! ```
//! let wall = ctx_benches::run_parallel(1_000, 2, |n| {
//!     for _ in 0..n {
//!         std::hint::black_box(1 + 1);
//!     }
//! });
//! assert!(wall.as_nanos() > 0);
//! ```

#![deny(missing_docs)]

pub mod poll;
pub mod quick;
pub mod runtime;
pub mod stats;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;

/// How heavy one benchmark of a group is; picks its warm-up, measurement time and sample size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// Nanoseconds per iteration: many samples are cheap.
    Light,
    /// Microseconds to a millisecond per iteration (trees, wide fan-outs, runtimes).
    Heavy,
    /// Milliseconds per iteration (thousands of tasks, real timers): few samples.
    VeryHeavy,
}

/// `true` when `CTX_BENCH_FULL` is set to anything but `0`: use criterion's long defaults.
///
/// # Examples
///
/// ```
/// let _ = ctx_benches::full_run();
/// ```
pub fn full_run() -> bool {
    std::env::var("CTX_BENCH_FULL").is_ok_and(|v| v != "0" && !v.is_empty())
}

/// Sets warm-up, measurement time and sample size of `group` for benchmarks of `weight`.
/// Short budgets unless [`full_run`].
///
/// # Examples
///
/// ```
/// use ctx_benches::{Weight, configure};
/// let mut c = criterion::Criterion::default();
/// let mut group = c.benchmark_group("doc");
/// configure(&mut group, Weight::Light);
/// group.finish();
/// ```
pub fn configure(group: &mut BenchmarkGroup<'_, WallTime>, weight: Weight) {
    let (warm, measure, samples) = match (full_run(), weight) {
        (true, Weight::Light) => (3_000, 5_000, 100),
        (true, Weight::Heavy) => (2_000, 5_000, 50),
        (true, Weight::VeryHeavy) => (2_000, 10_000, 20),
        (false, Weight::Light) => (300, 1_000, 30),
        (false, Weight::Heavy) => (300, 1_000, 15),
        (false, Weight::VeryHeavy) => (300, 1_500, 10),
    };
    group
        .warm_up_time(Duration::from_millis(warm))
        .measurement_time(Duration::from_millis(measure))
        .sample_size(samples);
}

/// A `Criterion` whose defaults are those of [`Weight::Light`], for benchmarks registered with
/// `c.bench_function` outside any group (so that their id is the bare Go name).
///
/// # Examples
///
/// ```
/// let c = ctx_benches::light();
/// # drop(c);
/// ```
pub fn light() -> criterion::Criterion {
    let (warm, measure, samples) = if full_run() {
        (3_000, 5_000, 100)
    } else {
        (300, 1_000, 30)
    };
    criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(warm))
        .measurement_time(Duration::from_millis(measure))
        .sample_size(samples)
}

/// The number of threads Go's `b.RunParallel` would use here (`GOMAXPROCS`, that is the
/// number of CPUs).
///
/// # Examples
///
/// ```
/// assert!(ctx_benches::parallelism() >= 1);
/// ```
pub fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Go's `b.RunParallel` for criterion's `iter_custom`: splits `iters` iterations over
/// `threads` threads, each running `body(its_share)`, and returns the wall time from just
/// before they are released until the last one finishes (thread start-up is not counted). As in Go, the result divided by
/// `iters` is the time per operation of the whole machine, not of one thread.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// let done = AtomicU64::new(0);
/// ctx_benches::run_parallel(10, 3, |n| {
///     done.fetch_add(n, Ordering::Relaxed);
/// });
/// assert_eq!(done.load(Ordering::Relaxed), 10);
/// ```
pub fn run_parallel(iters: u64, threads: usize, body: impl Fn(u64) + Sync) -> Duration {
    let threads = threads.max(1);
    let start_line = Barrier::new(threads + 1);
    let finish_line = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads as u64 {
            let share = iters / threads as u64 + u64::from(t < iters % threads as u64);
            let (start_line, finish_line, body) = (&start_line, &finish_line, &body);
            s.spawn(move || {
                start_line.wait();
                body(share);
                finish_line.wait();
            });
        }
        // The clock starts before the release: a worker may finish a small share before this
        // thread is scheduled again, so starting after the barrier could read almost nothing.
        let start = Instant::now();
        start_line.wait();
        finish_line.wait();
        start.elapsed()
    })
}

/// A waker that counts its wake-ups: what the wake benchmarks hand to the futures they poll,
/// so that waking costs the context's work and not an executor's.
///
/// # Examples
///
/// ```
/// let (waker, count) = ctx_benches::counting_waker();
/// waker.wake_by_ref();
/// assert_eq!(count.woken(), 1);
/// ```
#[derive(Debug, Default)]
pub struct WakeCount(AtomicUsize);

impl WakeCount {
    /// How many times wakers sharing this counter were woken.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_waker, count) = ctx_benches::counting_waker();
    /// assert_eq!(count.woken(), 0);
    /// ```
    pub fn woken(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A node of 96 bytes: a count of its owners, a state word and room for a parent pointer, a
/// lock and the slab of entries (a cancel node is 96 bytes with its counts too; the floor
/// measures operations, not bytes). The floors
/// (`AllocFloor`, the child floors of `tokio_util.rs`) allocate it, with the least any shared,
/// cancelable node must do: [`FloorNode::born`] counts its two owners (the context's and the
/// handle's) from the start, and each owner's [`release`](FloorNode::release) is one atomic
/// read-modify-write — no clone, and no weak count.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::Ordering;
/// let node = ctx_benches::FloorNode::born();
/// node.state.swap(1, Ordering::AcqRel); // the cancel
/// assert!(!node.release()); // the handle's drop
/// assert!(node.release()); // the context's: the last
/// drop(node); // freed by the last owner
/// ```
#[derive(Debug, Default)]
pub struct FloorNode {
    /// Its owners.
    owners: AtomicUsize,
    /// The cancel's word.
    pub state: std::sync::atomic::AtomicU8,
    _rest: [u64; 10],
}

impl FloorNode {
    /// A new node with its two owners counted (the count written, not added to). A `Box`
    /// stands in for the shared allocation: sharing it across threads changes none of the
    /// operations' costs.
    pub fn born() -> Box<FloorNode> {
        Box::new(FloorNode {
            owners: AtomicUsize::new(2),
            ..FloorNode::default()
        })
    }

    /// One owner's release; `true` for the last, which then frees the node.
    pub fn release(&self) -> bool {
        if self.owners.fetch_sub(1, Ordering::Release) != 1 {
            return false;
        }
        std::sync::atomic::fence(Ordering::Acquire);
        true
    }
}

/// A fresh [`WakeCount`] and a waker that bumps it.
///
/// # Examples
///
/// ```
/// let (waker, count) = ctx_benches::counting_waker();
/// waker.clone().wake();
/// assert_eq!(count.woken(), 1);
/// ```
pub fn counting_waker() -> (Waker, Arc<WakeCount>) {
    let count = Arc::new(WakeCount::default());
    (Waker::from(count.clone()), count)
}

/// A global allocator that counts allocations and bytes, like Go's `-benchmem`. Install it
/// with `#[global_allocator]` in the one target that measures memory (it would tax the
/// timings of the others). Counting is off until [`CountingAlloc::start`].
///
/// # Examples
///
/// ```
/// use ctx_benches::CountingAlloc;
/// static ALLOC: CountingAlloc = CountingAlloc::new();
/// // not installed as the global allocator here, so nothing is counted
/// let snapshot = ALLOC.start();
/// assert_eq!(ALLOC.since(snapshot).allocs, 0);
/// ```
#[derive(Debug)]
pub struct CountingAlloc {
    on: AtomicBool,
    allocs: AtomicUsize,
    bytes: AtomicUsize,
    live: AtomicUsize,
}

/// Counts read from a [`CountingAlloc`], or the difference between two reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Allocations made (reallocations count as one).
    pub allocs: usize,
    /// Bytes requested by those allocations.
    pub bytes: usize,
    /// Bytes allocated and not yet freed.
    pub live: usize,
}

impl CountingAlloc {
    /// A counter that counts nothing until [`start`](CountingAlloc::start).
    ///
    /// # Examples
    ///
    /// ```
    /// static ALLOC: ctx_benches::CountingAlloc = ctx_benches::CountingAlloc::new();
    /// ```
    pub const fn new() -> CountingAlloc {
        CountingAlloc {
            on: AtomicBool::new(false),
            allocs: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
        }
    }

    /// Turns counting on and returns the current counts.
    ///
    /// # Examples
    ///
    /// ```
    /// static ALLOC: ctx_benches::CountingAlloc = ctx_benches::CountingAlloc::new();
    /// let first = ALLOC.start();
    /// assert_eq!(first.allocs, 0);
    /// ```
    pub fn start(&self) -> AllocStats {
        self.on.store(true, Ordering::SeqCst);
        self.read()
    }

    /// The counts now.
    ///
    /// # Examples
    ///
    /// ```
    /// static ALLOC: ctx_benches::CountingAlloc = ctx_benches::CountingAlloc::new();
    /// assert_eq!(ALLOC.read().bytes, 0);
    /// ```
    pub fn read(&self) -> AllocStats {
        AllocStats {
            allocs: self.allocs.load(Ordering::SeqCst),
            bytes: self.bytes.load(Ordering::SeqCst),
            live: self.live.load(Ordering::SeqCst),
        }
    }

    /// What was allocated since `before` (live bytes may shrink: saturating).
    ///
    /// # Examples
    ///
    /// ```
    /// static ALLOC: ctx_benches::CountingAlloc = ctx_benches::CountingAlloc::new();
    /// let before = ALLOC.start();
    /// assert_eq!(ALLOC.since(before).live, 0);
    /// ```
    pub fn since(&self, before: AllocStats) -> AllocStats {
        let now = self.read();
        AllocStats {
            allocs: now.allocs - before.allocs,
            bytes: now.bytes - before.bytes,
            live: now.live.saturating_sub(before.live),
        }
    }

    fn count(&self, size: usize) {
        if self.on.load(Ordering::Relaxed) {
            self.allocs.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(size, Ordering::Relaxed);
        }
        self.live.fetch_add(size, Ordering::Relaxed);
    }
}

impl Default for CountingAlloc {
    fn default() -> CountingAlloc {
        CountingAlloc::new()
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are only bookkeeping.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        self.count(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
