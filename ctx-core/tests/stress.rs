//! Concurrency stress: threads hammer shared parents with mixed operations under a watchdog,
//! then every invariant is checked and the live-node count must be back at its baseline.
//!
//! Sizes: `CTX_STRESS=full` runs 8 threads × 1,000,000 operations; the default (CI) is
//! 8 × 200,000; `CTX_STRESS_OPS=n` sets the per-thread count directly. Under Miri: 3 × 60.
//! See `docs/reliability.md`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Wake, Waker};
use std::time::{Duration, Instant};

use ctx_core::test_util::live_nodes;
use ctx_core::{AfterFunc, CancelCauseHandle, CancelHandle, Cause, Ctx, Done, Error};
use ctx_testkit::Passthrough;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn threads() -> usize {
    if cfg!(miri) { 3 } else { 8 }
}

fn ops_per_thread() -> usize {
    if cfg!(miri) {
        return 60;
    }
    if let Some(n) = std::env::var("CTX_STRESS_OPS").ok().and_then(|s| s.parse().ok()) {
        return n;
    }
    match std::env::var("CTX_STRESS").as_deref() {
        Ok("full") => 1_000_000,
        _ => 200_000,
    }
}

/// Aborts the whole process with a message if it is not disarmed within `limit`: a hang is
/// reported as a failure instead of a CI timeout.
struct Watchdog {
    finished: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(what: &'static str, limit: Duration) -> Watchdog {
        let finished = Arc::new(AtomicBool::new(false));
        if cfg!(miri) {
            return Watchdog { finished }; // Miri's clock is not wall time
        }
        let f = finished.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while !f.load(SeqCst) {
                if start.elapsed() > limit {
                    // Straight to stderr: the test harness captures `eprintln!` and would lose it.
                    let msg = format!(
                        "WATCHDOG: `{what}` has not finished after {limit:?}: deadlock or lost wake-up; aborting\n"
                    );
                    let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
                    std::process::abort();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Watchdog { finished }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.finished.store(true, SeqCst);
    }
}

/// The watchdog's limit: `CTX_STRESS_WATCHDOG_SECS`, else generous for debug builds on 2 shared
/// cores (which do well over 100,000 operations per second per thread).
fn watchdog_limit(ops: usize) -> Duration {
    if let Some(s) = std::env::var("CTX_STRESS_WATCHDOG_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return Duration::from_secs(s);
    }
    Duration::from_secs(120 + (ops as u64 * threads() as u64) / 5_000)
}

/// A tiny deterministic generator (xorshift), one per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A waker that remembers whether it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

/// One after-func registration and what became of it.
struct AfterRecord {
    ran: AtomicUsize,
    stopped: AtomicBool,
}

/// A context a thread created, with the parent it came from and what it did to it.
struct Entry {
    ctx: Ctx,
    parent: Ctx,
    handle: Handle,
    /// Canceled by its own handle (so it may disagree with its parent's cause).
    self_canceled: bool,
    /// Has a deadline of its own that is not its parent's.
    own_deadline: bool,
    /// A `Done` that was pending when last polled, and the waker it was last polled with.
    waiting: Option<(Done, Arc<Flag>)>,
    afters: Vec<(AfterFunc, Arc<AfterRecord>)>,
}

enum Handle {
    None,
    Plain(CancelHandle),
    Cause(CancelCauseHandle),
}

/// Context shared by every thread: the parents they derive from, and a pool for exchanging
/// contexts between threads.
struct Shared {
    parents: Vec<Mutex<(Ctx, Option<CancelCauseHandle>)>>,
    pool: Mutex<Vec<Ctx>>,
    records: Mutex<Vec<Arc<AfterRecord>>>,
    /// Entries checked at the end, kept by the thread that made them.
    kept: Mutex<Vec<Entry>>,
}

/// Registers a counting after-func on `ctx`. It derives from `inner_parent` (a live shared
/// parent) from inside; with `keep_own` it also holds its own context and derives from it (born
/// done), which keeps that context alive until the after-func ran or was stopped.
fn record(shared: &Shared, ctx: &Ctx, inner_parent: Ctx, keep_own: bool) -> (AfterFunc, Arc<AfterRecord>) {
    let rec = Arc::new(AfterRecord {
        ran: AtomicUsize::new(0),
        stopped: AtomicBool::new(false),
    });
    let r = rec.clone();
    let own = keep_own.then(|| ctx.clone());
    let stop = ctx.after_func(move || {
        r.ran.fetch_add(1, SeqCst);
        if let Some(own) = own {
            let (born, _h) = own.with_cancel();
            assert!(born.is_done(), "a child of a done context is born done");
        }
        let (child, h) = inner_parent.with_cancel();
        drop((child, h));
    });
    shared.records.lock().unwrap().push(rec.clone());
    (stop, rec)
}

fn worker(shared: &Shared, seed: u64, ops: usize) {
    let mut rng = Rng(seed | 1);
    let mut mine: Vec<Entry> = Vec::new();
    let why: Cause = Arc::new(std::io::Error::other(format!("thread {seed}")));
    for _ in 0..ops {
        match rng.below(100) {
            // create a child of a shared parent, a pooled context or one of ours
            0..=29 => {
                let parent = match rng.below(3) {
                    0 => shared.parents[rng.below(shared.parents.len())]
                        .lock()
                        .unwrap()
                        .0
                        .clone(),
                    1 => match shared.pool.lock().unwrap().last() {
                        Some(c) => c.clone(),
                        None => continue,
                    },
                    _ => match mine.get(rng.below(mine.len().max(1))) {
                        Some(e) => e.ctx.clone(),
                        None => continue,
                    },
                };
                let (ctx, handle, own_deadline) = match rng.below(8) {
                    0 => {
                        let (c, h) = parent.with_cancel();
                        (c, Handle::Plain(h), false)
                    }
                    1 => {
                        let (c, h) = parent.with_cancel_cause();
                        (c, Handle::Cause(h), false)
                    }
                    2 => {
                        let (c, h) = parent.with_timeout(Duration::from_secs(3600));
                        (c, Handle::Plain(h), true)
                    }
                    3 => {
                        // short real deadlines fire on the timer thread while others work
                        let d = Duration::from_micros(rng.below(2_000) as u64);
                        let (c, h) = parent.with_timeout_cause(d, why.clone());
                        (c, Handle::Plain(h), true)
                    }
                    4 => (parent.with_value(rng.next()), Handle::None, false),
                    5 => (Ctx::wrap(Passthrough(parent.clone())), Handle::None, false),
                    6 => {
                        // also under a second shared parent, which others cancel and replace
                        let other = shared.parents[rng.below(shared.parents.len())]
                            .lock()
                            .unwrap()
                            .0
                            .clone();
                        let (c, h) = parent.with_merged(&other);
                        (c, Handle::Plain(h), false)
                    }
                    _ => {
                        let (c, h) = parent.with_cancel();
                        h.disarm();
                        (c, Handle::None, false)
                    }
                };
                mine.push(Entry {
                    ctx,
                    parent,
                    handle,
                    self_canceled: false,
                    own_deadline,
                    waiting: None,
                    afters: Vec::new(),
                });
                if mine.len() > 64 {
                    let e = mine.swap_remove(rng.below(mine.len()));
                    finish(shared, e, &mut rng);
                }
            }
            // cancel one of ours
            30..=44 => {
                if let Some(e) = pick(&mut mine, &mut rng) {
                    match &e.handle {
                        Handle::Plain(h) => h.cancel(),
                        Handle::Cause(h) => h.cancel(why.clone()),
                        Handle::None => continue,
                    }
                    e.self_canceled = true;
                }
            }
            // drop one of ours (its handle too: that cancels)
            45..=54 => {
                if !mine.is_empty() {
                    let e = mine.swap_remove(rng.below(mine.len()));
                    finish(shared, e, &mut rng);
                }
            }
            // poll done once
            // poll done once, or poll a pending one again with a new waker (only the latest
            // waker must be woken)
            55..=64 => {
                if let Some(e) = pick(&mut mine, &mut rng) {
                    let flag = Arc::new(Flag::default());
                    let waker = Waker::from(flag.clone());
                    let mut done = match e.waiting.take() {
                        Some((done, _old)) => done,
                        None => e.ctx.done(),
                    };
                    match Pin::new(&mut done).poll(&mut TaskContext::from_waker(&waker)) {
                        std::task::Poll::Ready(err) => assert_eq!(Some(err), e.ctx.err()),
                        std::task::Poll::Pending => e.waiting = Some((done, flag)),
                    }
                }
            }
            // register an after-func (it derives from inside)
            65..=79 => {
                let inner_parent = shared.parents[rng.below(shared.parents.len())]
                    .lock()
                    .unwrap()
                    .0
                    .clone();
                let keep_own = rng.below(8) == 0;
                if let Some(e) = pick(&mut mine, &mut rng) {
                    let reg = record(shared, &e.ctx, inner_parent, keep_own);
                    e.afters.push(reg);
                }
            }
            // stop an after-func
            80..=87 => {
                if let Some(e) = pick(&mut mine, &mut rng)
                    && let Some((stop, rec)) = e.afters.pop()
                    && stop.stop()
                {
                    rec.stopped.store(true, SeqCst);
                }
            }
            // share a context with the other threads
            88..=93 => {
                if let Some(e) = pick(&mut mine, &mut rng) {
                    let mut pool = shared.pool.lock().unwrap();
                    pool.push(e.ctx.clone());
                    if pool.len() > 32 {
                        pool.remove(0);
                    }
                }
            }
            // replace a shared parent: cancel it under everybody's feet
            94..=95 => {
                let i = rng.below(shared.parents.len());
                let root = shared.parents[0].lock().unwrap().0.clone();
                let root = root.without_cancel(); // never done: new parents stay live
                let (fresh, h) = root.with_cancel_cause();
                let old = std::mem::replace(&mut *shared.parents[i].lock().unwrap(), (fresh, Some(h)));
                if let (ctx, Some(h)) = old {
                    h.cancel(why.clone());
                    assert!(ctx.is_done());
                }
            }
            // keep an entry for the final check
            _ => {
                if !mine.is_empty() {
                    let e = mine.swap_remove(rng.below(mine.len()));
                    let mut kept = shared.kept.lock().unwrap();
                    if kept.len() < 4096 {
                        kept.push(e);
                    }
                }
            }
        }
    }
    for e in mine.drain(..) {
        finish(shared, e, &mut rng);
    }
}

fn pick<'a>(mine: &'a mut [Entry], rng: &mut Rng) -> Option<&'a mut Entry> {
    if mine.is_empty() {
        None
    } else {
        let i = rng.below(mine.len());
        Some(&mut mine[i])
    }
}

/// Drops an entry after checking what can be checked without racing other threads.
fn finish(_shared: &Shared, e: Entry, rng: &mut Rng) {
    check(&e);
    if rng.below(4) == 0 {
        // Sometimes the context goes first and the handle (which then cancels) last.
        let Entry { ctx, handle, .. } = e;
        drop(ctx);
        drop(handle);
    }
}

/// Waits (spinning, then yielding) for `cond` to hold: a cancellation running on another
/// thread marks the parent before its descendants, so a reader may briefly see a done parent
/// and an open child. Fails after ten seconds: the cancellation was lost.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::yield_now();
    }
}

/// Invariants of an entry only this thread touches (others may cancel its ancestors).
fn check(e: &Entry) {
    if let Some(pe) = e.parent.err() {
        eventually("a descendant of a done context stays open", || e.ctx.is_done());
        // A passive child (never canceled by itself, no deadline of its own) agrees with its
        // parent exactly: same error, same cause.
        if !e.self_canceled && !e.own_deadline && matches!(e.handle, Handle::None) {
            assert_eq!(
                e.ctx.err(),
                Some(pe),
                "a passive child has another error than its parent"
            );
            let (pc, cc) = (e.parent.cause().unwrap(), e.ctx.cause().unwrap());
            assert!(
                Arc::ptr_eq(&pc, &cc)
                    || (pc.downcast_ref::<Error>().is_some()
                        && pc.downcast_ref::<Error>() == cc.downcast_ref::<Error>()),
                "a passive child has another cause than its parent"
            );
        }
    }
    let done = e.ctx.is_done();
    if let Some((_, flag)) = &e.waiting
        && done
    {
        eventually(
            "lost wake-up: the context is done but its waiter was never woken",
            || flag.0.load(SeqCst),
        );
    }
    for (_, rec) in &e.afters {
        let stopped = rec.stopped.load(SeqCst);
        if done && !stopped {
            eventually("the context is done but its after-func has not run", || {
                rec.ran.load(SeqCst) == 1
            });
        }
        let ran = rec.ran.load(SeqCst);
        assert!(ran <= 1, "an after-func ran {ran} times");
        assert!(!(stopped && ran > 0), "a stopped after-func ran");
    }
}

fn run_stress(seed: u64) {
    let _serial = serial();
    let ops = ops_per_thread();
    let _watchdog = Watchdog::start("stress", watchdog_limit(ops));
    let base = live_nodes();
    {
        // Real time, so short deadlines fire on the timer thread while the workers run; under
        // Miri a mock clock (a timer thread would outlive the test).
        let root = if cfg!(miri) {
            ctx_testkit::MockClock::new().background()
        } else {
            Ctx::background()
        };
        let parents = (0..4)
            .map(|_| {
                let (c, h) = root.with_cancel_cause();
                Mutex::new((c, Some(h)))
            })
            .collect();
        let shared = Arc::new(Shared {
            parents,
            pool: Mutex::new(Vec::new()),
            records: Mutex::new(Vec::new()),
            kept: Mutex::new(Vec::new()),
        });
        let started = Instant::now();
        let workers: Vec<_> = (0..threads())
            .map(|t| {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    worker(&shared, seed.wrapping_mul(31).wrapping_add(t as u64 + 1), ops)
                })
            })
            .collect();
        for w in workers {
            w.join().expect("a worker panicked");
        }
        eprintln!(
            "stress: {} threads x {ops} ops in {:?}",
            threads(),
            started.elapsed()
        );

        // Everything still kept is checked at rest, then the shared parents are canceled and
        // everything must be done, every after-func run exactly once or stopped.
        let kept = std::mem::take(&mut *shared.kept.lock().unwrap());
        for e in &kept {
            check(e);
        }
        let why: Cause = Arc::new(std::io::Error::other("the end"));
        for p in &shared.parents {
            let (ctx, h) = &mut *p.lock().unwrap();
            h.take().unwrap().cancel(why.clone());
            assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
        }
        // Every context here descends from a shared parent, current or replaced (and so
        // canceled): all of them are done now.
        for e in &kept {
            assert!(e.ctx.is_done(), "a descendant of the canceled parents is open");
            check(e);
        }
        drop(kept);
        shared.pool.lock().unwrap().clear();
        // After-funcs whose contexts are gone but still registered keep their node alive: they
        // must have run or been stopped by now, or still be attached to a live context.
        let records = std::mem::take(&mut *shared.records.lock().unwrap());
        for rec in &records {
            let (ran, stopped) = (rec.ran.load(SeqCst), rec.stopped.load(SeqCst));
            assert_eq!(
                ran + stopped as usize,
                1,
                "an after-func must run exactly once or be stopped (ran {ran}, stopped {stopped})"
            );
        }
        eprintln!(
            "stress: {} after-funcs, each ran once or was stopped",
            records.len()
        );
        drop(records);
        drop(shared);
        drop(root);
    }
    // Real short deadlines may still hold a timer for a moment; they release on firing.
    let settle = Instant::now();
    while live_nodes() != base && settle.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(live_nodes(), base, "live nodes back to the baseline");
}

#[test]
fn eight_threads_of_mixed_operations_keep_every_invariant_and_leak_nothing() {
    run_stress(0x5eed);
}

#[test]
fn a_second_seed_keeps_every_invariant_too() {
    run_stress(0xfeed_beef);
}

/// Many threads cancel and derive under one parent at the same moment; none may see a child
/// of a done parent that is open, and every waiter must be woken.
#[test]
fn concurrent_cancel_and_derive_race_without_losing_a_child() {
    let _serial = serial();
    let _watchdog = Watchdog::start("cancel/derive race", Duration::from_secs(120));
    let base = live_nodes();
    let rounds = if cfg!(miri) { 5 } else { 2_000 };
    for _ in 0..rounds {
        let (parent, cancel) = Ctx::background().with_cancel();
        let start = Arc::new(std::sync::Barrier::new(threads()));
        let cancel = Arc::new(Mutex::new(Some(cancel)));
        let workers: Vec<_> = (0..threads())
            .map(|t| {
                let (parent, start, cancel) = (parent.clone(), start.clone(), cancel.clone());
                std::thread::spawn(move || {
                    start.wait();
                    if t == 0 {
                        drop(cancel.lock().unwrap().take());
                        return;
                    }
                    for _ in 0..8 {
                        let (child, h) = parent.with_cancel();
                        let flag = Arc::new(Flag::default());
                        let mut done = child.done();
                        let pending = Pin::new(&mut done)
                            .poll(&mut TaskContext::from_waker(&Waker::from(flag.clone())))
                            .is_pending();
                        if parent.is_done() {
                            eventually("child of a done parent stays open", || child.is_done());
                            if pending {
                                eventually("lost wake-up", || flag.0.load(SeqCst));
                            }
                        }
                        h.disarm();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("a racer panicked");
        }
    }
    assert_eq!(live_nodes(), base);
}

/// A deadline passing (lazily noticed by readers, or fired by the clock), an explicit cancel
/// and a blocking waiter race on one chain: every reader sees each context's first answer
/// forever after (invariant 2), and the answers agree with Go's rules.
#[test]
fn err_and_cause_never_change_once_seen_while_expiry_and_cancel_race() {
    let _serial = serial();
    let _watchdog = Watchdog::start("expiry/cancel race", Duration::from_secs(120));
    let base = live_nodes();
    let rounds = if cfg!(miri) { 3 } else { 1_000 };
    let parent_cause: Cause = Arc::new(std::io::Error::other("parent deadline"));
    let cancel_cause: Cause = Arc::new(std::io::Error::other("explicit cancel"));
    for round in 0..rounds {
        let clock = ctx_testkit::MockClock::new();
        let root = clock.background();
        let (p, _pc) = root.with_timeout_cause(Duration::from_millis(10), parent_cause.clone());
        let (c, cc) = p.with_cancel_cause();
        let (g, _gc) = c.with_timeout(Duration::from_millis(5));
        let chain = [p.clone(), c.clone(), g.clone()];
        let start = Arc::new(std::sync::Barrier::new(5));
        let mut threads = Vec::new();
        {
            let (start, clock) = (start.clone(), clock.clone());
            threads.push(std::thread::spawn(move || {
                start.wait();
                clock.advance(Duration::from_millis(10));
            }));
        }
        {
            let (start, why) = (start.clone(), cancel_cause.clone());
            threads.push(std::thread::spawn(move || {
                start.wait();
                if round % 3 != 0 {
                    std::thread::yield_now();
                }
                cc.cancel(why);
            }));
        }
        {
            let (start, g) = (start.clone(), g.clone());
            threads.push(std::thread::spawn(move || {
                start.wait();
                let e = g.wait_blocking();
                assert_eq!(Some(e), g.err(), "wait_blocking disagrees with err()");
            }));
        }
        for _ in 0..2 {
            let (start, chain) = (start.clone(), chain.clone());
            threads.push(std::thread::spawn(move || {
                start.wait();
                let mut seen: [Option<(Error, Cause)>; 3] = [None, None, None];
                while seen.iter().any(Option::is_none) {
                    for (ctx, first) in chain.iter().zip(&mut seen) {
                        let (err, cause) = (ctx.err(), ctx.cause());
                        match first {
                            None => {
                                if let Some(e) = err {
                                    *first = Some((e, cause.expect("done without a cause")));
                                }
                            }
                            Some((e, c)) => {
                                assert_eq!(err, Some(*e), "err() changed after it was seen");
                                assert!(
                                    Arc::ptr_eq(c, &cause.unwrap()),
                                    "cause() changed after it was seen"
                                );
                            }
                        }
                    }
                    std::thread::yield_now();
                }
            }));
        }
        for t in threads {
            t.join().expect("a racer panicked");
        }
        // Go's answers, whatever the order: the parent only ever expires; the middle one is
        // canceled with our cause or expires with the parent's; the grandchild's own, earlier
        // deadline wins over the parent's, and it follows the middle one's cancel otherwise.
        let is = |ctx: &Ctx, e: Error, cause: Option<&Cause>| {
            ctx.err() == Some(e)
                && match cause {
                    Some(c) => Arc::ptr_eq(&ctx.cause().unwrap(), c),
                    None => ctx.cause().unwrap().downcast_ref::<Error>() == Some(&e),
                }
        };
        assert!(
            is(&p, Error::DeadlineExceeded, Some(&parent_cause)),
            "parent: {p:?}"
        );
        let c_canceled = is(&c, Error::Canceled, Some(&cancel_cause));
        assert!(
            c_canceled || is(&c, Error::DeadlineExceeded, Some(&parent_cause)),
            "middle: {c:?}"
        );
        let g_own = is(&g, Error::DeadlineExceeded, None);
        assert!(
            g_own || (c_canceled && is(&g, Error::Canceled, Some(&cancel_cause))),
            "grandchild: {g:?}"
        );
    }
    assert_eq!(live_nodes(), base);
}
