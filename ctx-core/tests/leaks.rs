//! Leak checks: live nodes and RSS stay flat over a million create/drop cycles; a
//! million-deep chain cancels and drops on a small stack; timers, watchers and wakers are
//! released. The tests here read process-wide counters, so they run one at a time (`SERIAL`).
//! See `docs/reliability.md`.

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ctx_core::clock::Timer;
use ctx_core::test_util::live_nodes;
use ctx_core::{Cause, Clock, Context, Ctx, Done, Error};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// One million, or a size Miri can take.
const MILLION: usize = if cfg!(miri) { 200 } else { 1_000_000 };

/// Rounds of the smaller release checks.
const ROUNDS: usize = if cfg!(miri) { 20 } else { 1_000 };

/// Why RSS cannot be read on this target, if it cannot: the RSS checks need Linux's procfs.
const NO_RSS: Option<&str> = if cfg!(miri) {
    Some("Miri isolates the test from the file system (no /proc/self/statm)")
} else if cfg!(not(target_os = "linux")) {
    Some("/proc/self/statm exists on Linux only")
} else {
    None
};

/// Resident set size in bytes, from `/proc/self/statm`, or why it cannot be read.
fn try_rss() -> Result<usize, String> {
    if let Some(why) = NO_RSS {
        return Err(why.to_owned());
    }
    let statm = std::fs::read_to_string("/proc/self/statm")
        .map_err(|e| format!("cannot read /proc/self/statm: {e}"))?;
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("unexpected /proc/self/statm: {statm:?}"))?;
    Ok(pages * 4096)
}

/// Says on stderr that an RSS check did not run, and why. Written to the stream itself, not
/// with `eprintln!`, so that the test harness does not swallow it when the test passes.
fn say_rss_not_checked(what: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "leaks.rs: RSS NOT CHECKED for {what}: {why}"
    );
}

/// Resident set size in bytes; `None`, said on stderr with the reason, where it cannot be
/// read (the test's live-node checks still run; `rss_is_measured` shows the gap in the
/// summary).
fn rss(what: &str) -> Option<usize> {
    match try_rss() {
        Ok(bytes) => Some(bytes),
        Err(why) => {
            say_rss_not_checked(what, &why);
            None
        }
    }
}

/// Checks that RSS grew by at most `slack` bytes since `start`; says so on stderr when it
/// cannot.
fn assert_rss_flat(start: Option<usize>, slack: usize, what: &str) {
    // Where RSS cannot be read, `rss` has said so (for `start` and again here).
    if let (Some(start), Some(end)) = (start, rss(what)) {
        eprintln!("{what}: RSS {} KiB -> {} KiB", start / 1024, end / 1024);
        assert!(
            end <= start + slack,
            "{what}: RSS grew from {} KiB to {} KiB",
            start / 1024,
            end / 1024
        );
    }
}

/// The RSS halves of the tests below run only where RSS can be read: this test is ignored,
/// with the reason, where it cannot, and fails on Linux when procfs cannot be read.
#[test]
#[cfg_attr(
    miri,
    ignore = "RSS not checked: Miri isolates the test from the file system (no /proc/self/statm)"
)]
#[cfg_attr(
    all(not(miri), not(target_os = "linux")),
    ignore = "RSS not checked: /proc/self/statm exists on Linux only"
)]
fn rss_is_measured() {
    let bytes = try_rss()
        .unwrap_or_else(|why| panic!("RSS cannot be read, so the leak tests' RSS checks did not run: {why}"));
    assert!(bytes > 0, "RSS of a running process read as 0");
}

const RSS_SLACK: usize = 8 << 20;

#[test]
fn a_million_create_drop_cycles_keep_live_nodes_and_rss_flat() {
    let _serial = serial();
    let root = Ctx::background();
    let (parent, _cancel) = root.with_cancel();
    let base_nodes = live_nodes();
    // Warm up allocator pools before the first RSS reading.
    for _ in 0..10_000.min(MILLION) {
        drop(parent.with_cancel());
    }
    let start = rss("create/drop cycles");
    for i in 0..MILLION {
        match i % 6 {
            0 => drop(parent.with_cancel()),
            1 => {
                let (ctx, cancel) = parent.with_cancel_cause();
                cancel.cancel(Arc::new(std::fmt::Error) as Cause);
                drop(ctx);
            }
            2 => drop(parent.with_timeout(Duration::from_secs(3600))),
            3 => drop(parent.with_value(i).without_cancel()),
            4 => {
                let (ctx, cancel) = parent.with_cancel();
                let stop = ctx.after_func(|| {});
                assert!(stop.stop());
                cancel.disarm();
            }
            _ => {
                let (ctx, cancel) = parent.with_cancel();
                let mut done = ctx.done();
                assert!(
                    Pin::new(&mut done)
                        .poll(&mut TaskContext::from_waker(Waker::noop()))
                        .is_pending()
                );
                drop((done, ctx, cancel));
            }
        }
    }
    assert_eq!(live_nodes(), base_nodes, "live nodes after {MILLION} cycles");
    assert_rss_flat(start, RSS_SLACK, "create/drop cycles");
}

#[test]
fn a_million_children_dropped_uncanceled_leave_the_parent_footprint_where_it_started() {
    let _serial = serial();
    let (parent, cancel) = Ctx::background().with_cancel();
    let base_nodes = live_nodes();
    const BATCH: usize = if cfg!(miri) { 50 } else { 1_000 };
    let mut batch = Vec::with_capacity(BATCH);
    // One batch first, so the parent's slab has its working size before we measure.
    for _ in 0..BATCH {
        let (ctx, h) = parent.with_cancel();
        h.disarm();
        batch.push(ctx);
    }
    batch.clear();
    let start = rss("uncanceled children");
    for _ in 0..MILLION / BATCH {
        for _ in 0..BATCH {
            let (ctx, h) = parent.with_cancel();
            h.disarm(); // dropped later, never canceled
            batch.push(ctx);
        }
        assert_eq!(live_nodes(), base_nodes + BATCH);
        batch.clear();
        assert_eq!(live_nodes(), base_nodes);
    }
    assert_eq!(live_nodes(), base_nodes);
    assert_rss_flat(start, RSS_SLACK, "uncanceled children");
    // The parent still cancels and no child comes back to life.
    let (last, _c) = parent.with_cancel();
    drop(cancel);
    assert_eq!(last.err(), Some(Error::Canceled));
}

#[test]
fn a_million_children_held_at_once_then_dropped_leave_no_growth_from_round_to_round() {
    let _serial = serial();
    let (parent, cancel) = Ctx::background().with_cancel();
    let base_nodes = live_nodes();
    let round = || {
        let children: Vec<Ctx> = (0..MILLION)
            .map(|_| {
                let (ctx, h) = parent.with_cancel();
                h.disarm();
                ctx
            })
            .collect();
        assert_eq!(live_nodes(), base_nodes + MILLION);
        drop(children);
        assert_eq!(live_nodes(), base_nodes);
    };
    // The first rounds set the high-water mark (the allocator may keep it, and glibc moves its
    // mmap threshold after the first huge free, so the second round may still settle); later
    // rounds must reuse it, not add to it.
    round();
    round();
    let peak = rss("rounds of a million children");
    round();
    round();
    assert_rss_flat(peak, RSS_SLACK, "rounds of a million children");
    let (last, _c) = parent.with_cancel();
    drop(cancel);
    assert_eq!(last.err(), Some(Error::Canceled));
}

/// Builds a chain of `depth` contexts under `root`, alternating kinds; intermediate handles
/// are disarmed. Returns the leaf.
fn chain(root: &Ctx, depth: usize) -> Ctx {
    let mut cur = root.clone();
    for i in 0..depth {
        cur = match i % 4 {
            0 | 1 => {
                let (c, h) = cur.with_cancel();
                h.disarm();
                c
            }
            2 => cur.with_value(i as u32),
            _ => {
                let (c, h) = cur.with_timeout(Duration::from_secs(3600));
                h.disarm();
                c
            }
        };
    }
    cur
}

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .name("2 MiB stack".into())
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

#[test]
fn a_million_deep_chain_cancels_and_drops_on_a_2_mib_stack() {
    let _serial = serial();
    let base = live_nodes();
    on_small_stack(move || {
        let (top, cancel) = ctx_testkit::MockClock::new().background().with_cancel_cause();
        let leaf = chain(&top, MILLION);
        let mut done = leaf.done();
        assert!(
            Pin::new(&mut done)
                .poll(&mut TaskContext::from_waker(Waker::noop()))
                .is_pending()
        );
        let why: Cause = Arc::new(std::fmt::Error);
        cancel.cancel(why.clone());
        assert_eq!(leaf.err(), Some(Error::Canceled));
        assert!(Arc::ptr_eq(&leaf.cause().unwrap(), &why));
        drop((done, leaf, top));
    });
    assert_eq!(live_nodes(), base);
}

#[test]
fn a_million_deep_chain_dropped_uncanceled_unlinks_on_a_2_mib_stack() {
    let _serial = serial();
    let base = live_nodes();
    on_small_stack(move || {
        let (top, cancel) = ctx_testkit::MockClock::new().background().with_cancel();
        let leaf = chain(&top, MILLION);
        drop(leaf); // leaf first: the whole chain unlinks in a loop
        assert_eq!(top.err(), None);
        cancel.disarm();
        drop(top);
        // And a chain whose root is dropped first, then the leaf.
        let root = ctx_testkit::MockClock::new().background();
        let leaf = chain(&root, MILLION);
        drop(root);
        drop(leaf);
    });
    assert_eq!(live_nodes(), base);
}

/// The usual wrapper: forwards everything to the `Ctx` it holds, and counts its `done()` calls.
struct Forward {
    inner: Ctx,
    dones: Arc<AtomicUsize>,
}

impl ctx_core::Forward for Forward {
    fn inner(&self) -> &Ctx {
        &self.inner
    }
    fn done(&self) -> Done {
        self.dones.fetch_add(1, SeqCst);
        self.inner.done()
    }
}

/// `depth` nested `Ctx::wrap(Forward(..))` over `base`, and how many `done()` calls it took.
fn wrap_chain(base: &Ctx, depth: usize) -> (Ctx, usize) {
    let dones = Arc::new(AtomicUsize::new(0));
    let mut top = base.clone();
    for _ in 0..depth {
        top = Ctx::wrap(Forward {
            inner: top,
            dones: dones.clone(),
        });
    }
    (top, dones.load(SeqCst))
}

/// Issue 10, point 4: a million nested wraps of a forwarding custom context are built in
/// linear time (one `done()` call per wrap: each resolves its bridge once), answer through
/// their bridges (derive, `done()`, `after_func`, a cancel from the base reaching the top with
/// the customs' own answers) and drop, all on a 2 MiB stack. Before, the drop recursed through
/// the custom types (a stack overflow at ~19,000), and `done()` through every wrapper.
#[test]
fn a_million_deep_wrap_chain_builds_linearly_answers_and_drops_on_a_2_mib_stack() {
    let _serial = serial();
    let base_nodes = live_nodes();
    on_small_stack(move || {
        // Over a parent that can be canceled.
        let (base, cancel) = ctx_testkit::MockClock::new().background().with_cancel_cause();
        let (top, dones) = wrap_chain(&base.with_value(7u8), MILLION);
        assert_eq!(dones, MILLION, "building is linear: one done() per wrap");
        let (child, _c) = top.with_cancel();
        let value = top.with_value(1u16);
        assert_eq!(child.err(), None);
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let _stop = top.after_func(move || {
            r.fetch_add(1, SeqCst);
        });
        let mut done = value.done();
        assert!(
            Pin::new(&mut done)
                .poll(&mut TaskContext::from_waker(Waker::noop()))
                .is_pending()
        );
        let why: Cause = Arc::new(std::fmt::Error);
        cancel.cancel(why.clone());
        assert_eq!(child.err(), Some(Error::Canceled), "the cancel reached the top");
        assert!(Arc::ptr_eq(&value.cause().unwrap(), &why));
        assert_eq!(top.err(), Some(Error::Canceled));
        assert_eq!(ran.load(SeqCst), 1);
        drop((done, child, value, top, base));

        // Over a parent that is never done, dropped top first and base first.
        let root = Ctx::background().with_value(7u8);
        let (top, dones) = wrap_chain(&root, MILLION);
        assert_eq!(dones, MILLION, "building over a never-done parent is linear");
        let (child, _c) = top.with_cancel();
        assert_eq!(child.err(), None);
        assert!(
            Pin::new(&mut top.done())
                .poll(&mut TaskContext::from_waker(Waker::noop()))
                .is_pending()
        );
        drop((child, _c));
        drop(root);
        drop(top);
    });
    assert_eq!(live_nodes(), base_nodes);
}

// ===== timers, watchers, wakers =====

/// A clock whose timers never fire by themselves and count how many are alive.
#[derive(Debug, Default)]
struct CountingClock {
    start: Mutex<Option<Instant>>,
    live_sleeps: Arc<AtomicUsize>,
}

struct CountedSleep(Arc<AtomicUsize>);

impl Future for CountedSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for CountedSleep {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

impl Clock for CountingClock {
    fn now(&self) -> Instant {
        *self.start.lock().unwrap().get_or_insert_with(Instant::now)
    }
    fn sleep_until(&self, _deadline: Instant) -> Timer {
        self.live_sleeps.fetch_add(1, SeqCst);
        Box::pin(CountedSleep(self.live_sleeps.clone()))
    }
}

#[test]
fn timers_are_released_when_their_context_is_canceled_or_dropped() {
    let _serial = serial();
    let clock = Arc::new(CountingClock::default());
    let sleeps = clock.live_sleeps.clone();
    let root = Ctx::background_with_clock(clock);
    let base = live_nodes();
    for i in 0..ROUNDS {
        let (ctx, cancel) = root.with_timeout(Duration::from_secs(60));
        let (child, _c) = ctx.with_cancel();
        let mut done = child.done();
        assert!(
            Pin::new(&mut done)
                .poll(&mut TaskContext::from_waker(Waker::noop()))
                .is_pending()
        );
        let _stop = ctx.after_func(|| {});
        assert_eq!(sleeps.load(SeqCst), 1, "one timer for the deadline's owner");
        if i % 2 == 0 {
            cancel.cancel();
            assert_eq!(sleeps.load(SeqCst), 0, "canceled: timer released");
        }
        drop((done, child, _c, ctx, cancel));
        assert_eq!(sleeps.load(SeqCst), 0);
    }
    assert_eq!(live_nodes(), base);
}

/// A wrapped foreign context whose `done()` future counts how many are alive.
struct Foreign {
    inner: Ctx,
    live: Arc<AtomicUsize>,
}

struct CountedDone(Arc<AtomicUsize>);

impl Drop for CountedDone {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

impl Context for Foreign {
    fn deadline(&self) -> Option<Instant> {
        self.inner.deadline()
    }
    fn done(&self) -> Done {
        self.live.fetch_add(1, SeqCst);
        let guard = CountedDone(self.live.clone());
        Done::new(async move {
            let _guard = guard;
            std::future::pending::<Error>().await
        })
    }
    fn err(&self) -> Option<Error> {
        self.inner.err()
    }
    fn cause(&self) -> Option<Cause> {
        self.inner.cause()
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.inner.value_any(key)
    }
}

#[test]
fn watchers_of_foreign_contexts_are_released_when_the_wrap_is_dropped() {
    let _serial = serial();
    let live = Arc::new(AtomicUsize::new(0));
    let base = live_nodes();
    let (inner, _cancel) = Ctx::background().with_cancel();
    for _ in 0..ROUNDS {
        let wrapped = Ctx::wrap(Foreign {
            inner: inner.clone(),
            live: live.clone(),
        });
        let (child, c) = wrapped.with_cancel();
        assert_eq!(live.load(SeqCst), 1);
        drop((wrapped, child, c));
        assert_eq!(live.load(SeqCst), 0, "the watcher's future was dropped");
    }
    drop((inner, _cancel));
    assert_eq!(live_nodes(), base);
}

struct CountingWaker;

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn a_dropped_done_or_run_future_releases_its_waker() {
    let _serial = serial();
    let (ctx, cancel) = Ctx::background().with_cancel();
    let state = Arc::new(CountingWaker);
    let waker = Waker::from(state.clone());
    for i in 0..ROUNDS {
        let mut done = ctx.done();
        let mut run = ctx.run(std::future::pending::<()>());
        let mut cx = TaskContext::from_waker(&waker);
        assert!(Pin::new(&mut done).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut run).poll(&mut cx).is_pending());
        assert!(Arc::strong_count(&state) > 2);
        if i % 2 == 0 {
            drop((done, run));
        } else {
            drop((run, done));
        }
        assert_eq!(Arc::strong_count(&state), 2, "only `state` and `waker` are left");
    }
    drop(waker);
    cancel.cancel();
    assert_eq!(Arc::strong_count(&state), 1);
}

#[test]
fn an_after_func_registration_is_released_once_it_ran_or_was_stopped() {
    let _serial = serial();
    let base = live_nodes();
    let payload = Arc::new(());
    for i in 0..ROUNDS {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let p = payload.clone();
        let stop = ctx.with_value(i).after_func(move || drop(p));
        drop(ctx); // the registration keeps the node attached
        if i % 2 == 0 {
            assert!(stop.stop());
            cancel.disarm();
        } else {
            cancel.cancel();
            assert!(!stop.stop());
        }
        assert_eq!(Arc::strong_count(&payload), 1, "the closure was dropped");
    }
    assert_eq!(live_nodes(), base);
}

/// After-funcs fired by a timer run on ctx-core's after-func threads (issue 10, point 6): once
/// they ran, their closures and their nodes are gone, as for an after-func run inline.
#[test]
#[cfg_attr(miri, ignore = "arms real timers: their thread outlives the test")]
fn after_funcs_fired_by_timers_release_their_closures_and_nodes() {
    let _serial = serial();
    let base = live_nodes();
    let payload = Arc::new(());
    let (tx, rx) = std::sync::mpsc::channel();
    let rounds = 200;
    for i in 0..rounds {
        let (ctx, cancel) = Ctx::background().with_timeout(Duration::from_millis(1));
        let (p, tx) = (payload.clone(), tx.clone());
        drop(ctx.with_value(i).after_func(move || {
            drop(p);
            tx.send(()).unwrap();
        }));
        drop(ctx);
        cancel.disarm(); // only the deadline ends it
    }
    for _ in 0..rounds {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("an after-func fired by a timer never ran");
    }
    // The last closures and nodes are dropped just after their after-funcs return.
    let limit = Instant::now() + Duration::from_secs(10);
    while Arc::strong_count(&payload) > 1 || live_nodes() > base {
        assert!(Instant::now() < limit, "after-funcs run by the pool leaked");
        std::thread::yield_now();
    }
}
