//! The `tracing` feature: one DEBUG event (target `ctx_core`) per context canceled for its own
//! reason, on the thread that canceled it, after every lock is released; none for the
//! descendants that go with it. Run with `cargo test -p ctx-core --features tracing --test
//! tracing`.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use ctx_core::{Cause, Ctx};
use ctx_testkit::MockClock;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One captured event: its level, target and fields (as text).
#[derive(Debug, Clone)]
struct Captured {
    level: Level,
    target: String,
    fields: BTreeMap<String, String>,
}

impl Captured {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("no field {name:?} in {self:?}"))
    }
}

type Hook = Box<dyn Fn() + Send + Sync>;

/// A subscriber that keeps every event, and runs `hook` inside each one (to prove that no
/// lock of the tree is held while the event is emitted).
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
    hook: Arc<Mutex<Option<Hook>>>,
}

impl Capture {
    fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

static NEXT_SPAN: AtomicU64 = AtomicU64::new(1);

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(NEXT_SPAN.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        if let Some(hook) = &*self.hook.lock().unwrap() {
            hook();
        }
        self.events.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `f` with `capture` as this thread's subscriber, on a thread of its own, failing the
/// test (instead of hanging) if it does not finish within 10 s.
fn with_capture<T: Send + 'static>(capture: &Capture, f: impl FnOnce() -> T + Send + 'static) -> T {
    let sub = capture.clone();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let out = tracing::subscriber::with_default(sub, f);
        let _ = tx.send(out);
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(v) => {
            t.join().unwrap();
            v
        }
        Err(_) => panic!("the traced scenario did not finish within 10 s (a deadlock?)"),
    }
}

fn why(msg: &str) -> Cause {
    Arc::new(std::io::Error::other(msg.to_owned()))
}

/// `file:line:` of the line `offset` lines below this macro's call.
macro_rules! line_at {
    ($offset:expr) => {
        format!("{}:{}:", file!(), line!() + $offset)
    };
}

#[track_caller]
fn assert_at(ev: &Captured, prefix: &str) {
    let at = ev.field("at");
    assert!(at.starts_with(prefix), "at = {at:?}, expected {prefix:?}col");
    let col = &at[prefix.len()..];
    assert!(col.parse::<u32>().is_ok(), "at = {at:?}: no column");
}

#[test]
fn a_handle_cancel_emits_one_event_with_the_cancel_call_site_and_no_event_for_descendants() {
    let cap = Capture::default();
    let (name, expected_at) = with_capture(&cap, || {
        let clock = MockClock::new();
        let (ctx, cancel) = clock.background().with_cancel_cause();
        let (a, _ha) = ctx.with_cancel();
        let (_b, _hb) = a.with_value(1u8).with_timeout(Duration::from_secs(9));
        let (side, hs) = clock.background().with_cancel();
        hs.disarm(); // its drop would cancel it (and be reported)
        let (_m, _hm) = side.with_merged(&a);
        let at = line_at!(1);
        cancel.cancel(why("client went away"));
        cancel.cancel(why("again")); // already done: no event
        (ctx.to_string(), at)
    });
    let evs = cap.take();
    assert_eq!(
        evs.len(),
        1,
        "one event for the canceled node, none for its descendants: {evs:?}"
    );
    let ev = &evs[0];
    assert_eq!(ev.level, Level::DEBUG);
    assert_eq!(ev.target, "ctx_core");
    assert_eq!(ev.field("ctx"), name);
    assert_eq!(ev.field("err"), "context canceled");
    assert_eq!(ev.field("cause"), "client went away");
    assert_eq!(
        ev.field("descendants"),
        "3",
        "a, its deadline child and the merge"
    );
    assert_at(ev, &expected_at);
}

#[test]
fn dropping_the_last_handle_reports_the_with_call_that_made_it() {
    let cap = Capture::default();
    let expected_at = with_capture(&cap, || {
        let at = line_at!(1);
        let (ctx, cancel) = Ctx::background().with_cancel();
        let other = cancel.clone();
        drop(cancel);
        drop(other);
        assert!(ctx.is_done());
        at
    });
    let evs = cap.take();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0].field("ctx"), "context.Background.WithCancel");
    assert_eq!(evs[0].field("err"), "context canceled");
    assert_eq!(
        evs[0].field("cause"),
        "context canceled: its cancel handle was dropped"
    );
    assert_eq!(evs[0].field("descendants"), "0");
    assert_at(&evs[0], &expected_at);
}

#[test]
fn a_deadline_reports_the_with_call_that_set_it_and_its_cause() {
    let cap = Capture::default();
    let expected_at = with_capture(&cap, || {
        let clock = MockClock::new();
        let at = line_at!(3);
        let (ctx, _h) = clock
            .background()
            .with_timeout_cause(Duration::from_secs(5), why("budget spent"));
        let (_child, _hc) = ctx.with_cancel();
        let mut done = ctx_testkit::Probe::new(ctx.done());
        done.assert_pending(); // arms the timer
        clock.advance(Duration::from_secs(5)); // fires it on this thread
        done.assert_ready();
        at
    });
    let evs = cap.take();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(
        evs[0]
            .field("ctx")
            .starts_with("context.Background.WithDeadline(")
    );
    assert_eq!(evs[0].field("err"), "context deadline exceeded");
    assert_eq!(evs[0].field("cause"), "budget spent");
    assert_eq!(evs[0].field("descendants"), "1");
    assert_at(&evs[0], &expected_at);
}

#[test]
fn a_lazily_expired_deadline_is_reported_by_the_thread_that_noticed() {
    let cap = Capture::default();
    with_capture(&cap, || {
        let clock = MockClock::new();
        let (ctx, _h) = clock.background().with_timeout(Duration::from_secs(5));
        let (child, _hc) = ctx.with_cancel();
        clock.advance(Duration::from_secs(5)); // no timer armed: nothing fires
        assert!(child.is_done()); // expires the owner here
    });
    let evs = cap.take();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0].field("err"), "context deadline exceeded");
    assert_eq!(evs[0].field("cause"), "context deadline exceeded");
}

#[test]
fn the_event_is_emitted_on_the_canceling_thread_with_every_lock_released() {
    // The hook runs inside the event: it derives from, waits on, and reads the canceled
    // context and its parent, which would deadlock if a lock of theirs were held.
    let (parent, _hp) = Ctx::background().with_cancel();
    let (ctx, cancel) = parent.with_cancel();
    let on_main = Capture::default();
    let on_worker = Capture::default();
    let (p, c) = (parent.clone(), ctx.clone());
    *on_worker.hook.lock().unwrap() = Some(Box::new(move || {
        let (_x, _hx) = c.with_cancel();
        let (_y, _hy) = p.with_cancel();
        let _ = c.cause();
        let _ = c.after_func(|| {});
    }));
    with_capture(&on_worker, move || cancel.cancel());
    let _quiet = tracing::subscriber::set_default(on_main.clone());
    assert_eq!(on_worker.take().len(), 1);
    assert_eq!(on_main.take().len(), 0, "the event went to another thread");
    assert!(ctx.is_done());
}

#[test]
fn a_merged_ctx_canceled_by_a_parent_gets_no_event_of_its_own() {
    let cap = Capture::default();
    with_capture(&cap, || {
        let (req, hr) = Ctx::background().with_cancel();
        hr.disarm(); // its drop would cancel it (and be reported)
        let (shutdown, stop) = Ctx::background().with_cancel();
        let (m, hm) = req.with_merged(&shutdown);
        stop.cancel();
        hm.cancel(); // already done
        assert!(m.is_done());
    });
    let evs = cap.take();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0].field("ctx"), "context.Background.WithCancel");
    assert_eq!(evs[0].field("descendants"), "1");
}

#[test]
fn a_merged_ctx_canceled_by_its_own_handle_names_both_parents() {
    let cap = Capture::default();
    let expected = with_capture(&cap, || {
        let (req, hr) = Ctx::background().with_cancel();
        hr.disarm(); // its drop would cancel it (and be reported)
        let (m, hm) = req.with_merged(&Ctx::background().with_value(7u8));
        let at = line_at!(1);
        hm.cancel();
        assert!(m.is_done());
        at
    });
    let evs = cap.take();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(
        evs[0].field("ctx"),
        "context.Background.WithCancel.WithMerged(context.Background.WithValue(u8))"
    );
    assert_at(&evs[0], &expected);
}

/// A custom context that answers everything from a `Ctx`: `Ctx::wrap` of it is a relay (a
/// cancel node fed by that `Ctx`, resolved after the walk that reaches it).
struct Delegate(Ctx);

impl ctx_core::Forward for Delegate {
    fn inner(&self) -> &Ctx {
        &self.0
    }
}

/// A wrap of a custom context is canceled with its canceler too: one event, and `descendants`
/// counts the wrap and the contexts below it, which follow after the walk that reached it.
#[test]
fn descendants_count_the_contexts_below_a_wrap() {
    let cap = Capture::default();
    with_capture(&cap, || {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let wrapped = Ctx::wrap(Delegate(ctx.clone()));
        let (below, _hb) = wrapped.with_cancel();
        let (deeper, _hd) = Ctx::wrap(Delegate(below.clone())).with_cancel();
        cancel.cancel();
        assert!(wrapped.is_done() && below.is_done() && deeper.is_done());
    });
    let evs = cap.take();
    assert_eq!(
        evs.len(),
        1,
        "one event, none for the wraps or below them: {evs:?}"
    );
    assert_eq!(evs[0].field("ctx"), "context.Background.WithCancel");
    assert_eq!(
        evs[0].field("descendants"),
        "4",
        "the first wrap, its child, the second wrap and its child"
    );
}

/// A custom context whose deadline has passed but whose `err()` does not say so (yet), with a
/// `done()` that never fires on its own.
struct Lagging(std::time::Instant);

impl ctx_core::Context for Lagging {
    fn deadline(&self) -> Option<std::time::Instant> {
        Some(self.0)
    }
    fn done(&self) -> ctx_core::Done {
        ctx_core::Done::new(std::future::pending())
    }
    fn err(&self) -> Option<ctx_core::Error> {
        None
    }
    fn cause(&self) -> Option<Cause> {
        None
    }
    fn value_any(&self, _key: std::any::TypeId) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }
}

/// The deadline of a wrapped custom context, noticed by ctx-core before the custom says so,
/// expires the wrap's bridge: that is no context the user made (no name, no `with_*` call),
/// so no event. A child that inherits that deadline (no node above it owns it) still reports
/// itself, at its `with_*` call.
#[test]
fn a_wrapped_contexts_passed_deadline_reports_no_internal_node() {
    let cap = Capture::default();
    let expected_at = with_capture(&cap, || {
        let past = std::time::Instant::now() - Duration::from_secs(1);
        let below = Ctx::wrap(Lagging(past)).with_value(1u8);
        assert_eq!(below.err(), Some(ctx_core::Error::DeadlineExceeded));
        let wrapped = Ctx::wrap(Lagging(past));
        let at = line_at!(1);
        let (child, _h) = wrapped.with_cancel();
        assert_eq!(child.err(), Some(ctx_core::Error::DeadlineExceeded));
        at
    });
    let evs = cap.take();
    assert_eq!(evs.len(), 1, "only the child's: {evs:?}");
    assert_eq!(evs[0].field("ctx"), "tracing::Lagging.WithCancel");
    assert_at(&evs[0], &expected_at);
}
