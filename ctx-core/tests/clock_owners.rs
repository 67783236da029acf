//! A context's clock lives as long as the context: a node holds a pointer into an owner above
//! it (invariant 12 of `src/tree/mod.rs`), so every case where a node, a timer or a wrap
//! outlives the handles that made its tree is checked here. Run under Miri, each of these
//! would be a use after free if an owner were missing; without Miri, the clock's own `Drop`
//! says when it went (`Tracked`), and no test keeps an `Arc` of the clock itself.

use std::any::{Any, TypeId};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctx_core::clock::Timer;
use ctx_core::{Cause, Clock, Context, Ctx, Done, Error};
use ctx_testkit::{MockClock, Passthrough};
use futures::FutureExt;

/// What a test observes of a [`Tracked`] clock, which it does not hold.
#[derive(Default)]
struct Probe {
    /// The clock was dropped.
    dropped: AtomicBool,
    /// Calls of the clock's methods under way.
    in_use: AtomicUsize,
    /// The clock was dropped while one of its methods ran (a use after free).
    dropped_in_use: AtomicBool,
    /// Run (once) by the next `now()`, which reads the clock again afterwards.
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

/// A `MockClock` that tells its [`Probe`] when it is dropped.
#[derive(Debug)]
struct Tracked {
    mock: MockClock,
    probe: Arc<ProbeRef>,
}

/// `Probe` behind an `Arc`, with a `Debug` for `Clock`.
struct ProbeRef(Probe);

impl std::fmt::Debug for ProbeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

impl Tracked {
    /// A root on a new tracked mock clock, the clock's timeline, and its probe.
    fn root() -> (Ctx, MockClock, Arc<ProbeRef>) {
        let mock = MockClock::new();
        let probe = Arc::new(ProbeRef(Probe::default()));
        let clock = Tracked {
            mock: mock.clone(),
            probe: probe.clone(),
        };
        (Ctx::background_with_clock(Arc::new(clock)), mock, probe)
    }
}

impl Clock for Tracked {
    fn now(&self) -> Instant {
        let p = &self.probe.0;
        p.in_use.fetch_add(1, SeqCst);
        let hook = p.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        // Read the clock again after the hook: if the hook freed it, this is the use after free.
        let now = self.mock.now();
        self.probe.0.in_use.fetch_sub(1, SeqCst);
        now
    }

    fn sleep_until(&self, deadline: Instant) -> Timer {
        self.mock.sleep_until(deadline)
    }

    fn after_funcs_inline(&self) -> bool {
        true
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let p = &self.probe.0;
        if p.in_use.load(SeqCst) > 0 {
            p.dropped_in_use.store(true, SeqCst);
        }
        p.dropped.store(true, SeqCst);
    }
}

impl ProbeRef {
    fn dropped(&self) -> bool {
        assert!(
            !self.0.dropped_in_use.load(SeqCst),
            "the clock was dropped while in use"
        );
        self.0.dropped.load(SeqCst)
    }
}

#[test]
fn descendants_keep_the_clock_of_a_dropped_root() {
    let (root, mock, probe) = Tracked::root();
    let (child, _child_cancel) = root.with_cancel();
    let (grandchild, _gc_cancel) = child.with_value(7u8).with_timeout(Duration::from_secs(10));
    let timed = grandchild.clone();
    let fired = Arc::new(AtomicBool::new(false));
    let flag = fired.clone();
    let _stop = grandchild.after_func(move || flag.store(true, SeqCst)); // arms the timer
    let mut done = timed.done();
    assert!((&mut done).now_or_never().is_none());
    let wrapped = Ctx::wrap(Passthrough(grandchild.clone()));
    drop((root, child, grandchild));
    assert!(!probe.dropped(), "the clock went with its root");

    // Everything still reads the root's clock.
    assert_eq!(timed.now(), mock.now());
    assert_eq!(wrapped.now(), mock.now());
    let (late, _late_cancel) = wrapped.with_timeout(Duration::from_secs(20));
    assert_eq!(late.deadline(), Some(mock.now() + Duration::from_secs(10)));
    let (soon, _soon_cancel) = timed.with_timeout(Duration::from_secs(1));
    assert_eq!(soon.deadline(), Some(mock.now() + Duration::from_secs(1)));
    let mut sleep = Box::pin(timed.sleep(Duration::from_secs(5)));
    assert!((&mut sleep).now_or_never().is_none());

    // And the clock's timers still fire everything.
    mock.advance(Duration::from_secs(1));
    assert_eq!(soon.err(), Some(Error::DeadlineExceeded));
    assert_eq!(timed.err(), None);
    mock.advance(Duration::from_secs(4));
    assert_eq!(sleep.now_or_never(), Some(Ok(())));
    mock.advance(Duration::from_secs(5));
    assert!(fired.load(SeqCst), "the after-func did not run");
    assert_eq!(done.now_or_never(), Some(Error::DeadlineExceeded));
    assert_eq!(wrapped.err(), Some(Error::DeadlineExceeded));
    assert_eq!(late.err(), Some(Error::DeadlineExceeded));

    drop((timed, wrapped, late, soon, _late_cancel, _soon_cancel, _stop));
    assert!(!probe.dropped(), "a cancel handle still holds its node");
    drop((_child_cancel, _gc_cancel));
    assert!(probe.dropped(), "the clock outlived every context of its tree");
}

#[test]
fn a_merged_context_keeps_its_first_parents_clock_whichever_parent_goes_first() {
    for a_first in [true, false] {
        let (root_a, mock_a, probe_a) = Tracked::root();
        let (root_b, _mock_b, probe_b) = Tracked::root();
        mock_a.advance(Duration::from_secs(100)); // the two timelines differ
        let (a, cancel_a) = root_a.with_cancel();
        let (b, cancel_b) = root_b.with_cancel();
        let (merged, _merged_cancel) = a.with_merged(&b);
        drop((root_a, root_b));
        // The handles stay: dropping the last one cancels its context.
        let (first, second) = match a_first {
            true => (a, b),
            false => (b, a),
        };
        drop(first);
        assert!(!probe_a.dropped() && !probe_b.dropped(), "a_first: {a_first}");
        assert_eq!(merged.now(), mock_a.now(), "a_first: {a_first}");
        drop(second);
        assert!(!probe_a.dropped() && !probe_b.dropped(), "a_first: {a_first}");
        let (timed, _timed_cancel) = merged.with_timeout(Duration::from_secs(1));
        assert_eq!(timed.deadline(), Some(mock_a.now() + Duration::from_secs(1)));
        let mut done = timed.done();
        assert!((&mut done).now_or_never().is_none());
        mock_a.advance(Duration::from_secs(1));
        assert_eq!(done.now_or_never(), Some(Error::DeadlineExceeded));
        drop((merged, timed, _merged_cancel, _timed_cancel, cancel_a));
        assert!(
            !probe_b.dropped(),
            "a_first: {a_first}: a cancel handle holds its node"
        );
        drop(cancel_b);
        assert!(probe_a.dropped() && probe_b.dropped(), "a_first: {a_first}");
    }
}

/// A custom context whose values and deadline (so its clock) are one tree's and whose `done()`
/// is another's: its bridge hangs under `done_from` but reads the clock of `values`.
struct Split {
    values: Ctx,
    done_from: Ctx,
}

impl Context for Split {
    fn deadline(&self) -> Option<Instant> {
        self.values.deadline()
    }
    fn done(&self) -> Done {
        self.done_from.done()
    }
    fn err(&self) -> Option<Error> {
        self.done_from.err().or_else(|| self.values.err())
    }
    fn cause(&self) -> Option<Cause> {
        self.done_from.cause()
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.values.value_any(key)
    }
}

/// A wrap (made by `wrap` of a ctx under a clock root that is then dropped) whose `Done` holds
/// its bridge and nothing else of the clock's tree: the bridge keeps the clock, checks its
/// deadline on it and arms its timer there; the clock goes with the last node that read it.
fn the_bridge_keeps_the_wrapped_clock(wrap: impl FnOnce(Ctx) -> Ctx) {
    let (root, mock, probe) = Tracked::root();
    let (values, values_cancel) = root.with_timeout(Duration::from_secs(10));
    drop(root);
    let wrapped = wrap(values);
    assert_eq!(wrapped.now(), mock.now());
    let mut done = wrapped.done();
    drop((wrapped, values_cancel));
    assert!(!probe.dropped(), "the bridge lost its clock");
    assert!((&mut done).now_or_never().is_none());
    mock.advance(Duration::from_secs(10));
    assert_eq!(done.now_or_never(), Some(Error::DeadlineExceeded));
    assert!(probe.dropped(), "the clock outlived every node that read it");
}

#[test]
fn a_wraps_bridge_keeps_the_wrapped_clock_after_the_wrap_is_gone() {
    // A relay: the custom's `done()` is another tree's (which stays open: its handle disarmed).
    the_bridge_keeps_the_wrapped_clock(|values| {
        let (done_from, done_cancel) = Ctx::background().with_cancel();
        done_cancel.disarm();
        Ctx::wrap(Split { values, done_from })
    });
}

#[test]
fn an_armed_timer_outlives_the_tree_it_was_armed_in() {
    let (root, mock, probe) = Tracked::root();
    let (ctx, cancel) = root.with_cancel();
    let (timed, timed_cancel) = ctx.with_timeout(Duration::from_secs(1));
    let mut done = timed.done();
    assert!((&mut done).now_or_never().is_none()); // arms the timer, which holds `timed` weakly
    // When the timer fires, its first reading of the clock drops the whole tree; the timer's
    // future goes on reading the clock.
    let tree = Mutex::new(Some((root, ctx, cancel, timed, timed_cancel, done)));
    *probe.0.hook.lock().unwrap() = Some(Box::new(move || drop(tree.lock().unwrap().take())));
    mock.advance(Duration::from_secs(1));
    assert!(
        probe.0.hook.lock().unwrap().is_none(),
        "the timer did not read the clock"
    );
    assert!(probe.dropped(), "the clock outlived its timer");
}

/// A custom context with a clock (its values' tree) and a `done()` of its own that never
/// fires, with an `on_done` that never calls back (so no watcher thread: Miri can run it).
struct OwnDone {
    values: Ctx,
}

impl Context for OwnDone {
    fn deadline(&self) -> Option<Instant> {
        self.values.deadline()
    }
    fn done(&self) -> Done {
        Done::new(std::future::pending())
    }
    fn err(&self) -> Option<Error> {
        None
    }
    fn cause(&self) -> Option<Cause> {
        None
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.values.value_any(key)
    }
    fn on_done(&self, _f: Box<dyn FnOnce() + Send>) -> Option<Box<dyn FnOnce() -> bool + Send>> {
        Some(Box::new(|| true))
    }
}

#[test]
fn a_foreign_bridge_keeps_the_wrapped_clock_after_the_wrap_is_gone() {
    the_bridge_keeps_the_wrapped_clock(|values| Ctx::wrap(OwnDone { values }));
}
