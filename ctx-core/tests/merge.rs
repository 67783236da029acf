//! `Ctx::with_merged`: a child of two parents. Cause identity from either side, born done,
//! deadlines from the other side on a `MockClock`, a diamond's after-func, live nodes back to
//! baseline, and million-deep chains of merges on a 2 MiB stack. The tests here read the
//! process-wide live-node counter, so they run one at a time (`SERIAL`).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ctx_core::test_util::live_nodes;
use ctx_core::{Cause, Ctx, Error};
use ctx_testkit::{MockClock, Probe};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// One million, or a size Miri can take.
const MILLION: usize = if cfg!(miri) { 200 } else { 1_000_000 };

fn why(msg: &str) -> Cause {
    Arc::new(std::io::Error::other(msg.to_owned()))
}

fn same(a: &Option<Cause>, b: &Cause) -> bool {
    a.as_ref().is_some_and(|a| Arc::ptr_eq(a, b))
}

#[test]
fn cancel_of_either_parent_reaches_the_merged_ctx_with_the_same_cause() {
    let _serial = serial();
    for first_side in [true, false] {
        let clock = MockClock::new();
        let (req, cancel_req) = clock.background().with_cancel_cause();
        let (shutdown, cancel_shutdown) = clock.background().with_cancel_cause();
        let (merged, _h) = req.with_merged(&shutdown);
        let (child, _hc) = merged.with_value(1u8).with_cancel();
        let mut done = Probe::new(merged.done());
        done.assert_pending();
        let cause = why("first");
        let (hit, hit_ctx, other_side) = if first_side {
            (&cancel_req, &req, &shutdown)
        } else {
            (&cancel_shutdown, &shutdown, &req)
        };
        hit.cancel(cause.clone());
        assert_eq!(merged.err(), Some(Error::Canceled));
        assert!(same(&merged.cause(), &cause), "cause is not the parent's Arc");
        assert!(
            same(&child.cause(), &cause),
            "a child of the merge lost the cause"
        );
        assert_eq!(done.assert_ready(), Error::Canceled);
        assert!(same(&hit_ctx.cause(), &cause));
        assert_eq!(other_side.err(), None, "the other parent was touched");
        // A later cancel from the other side changes nothing.
        cancel_req.cancel(why("late"));
        cancel_shutdown.cancel(why("late"));
        assert!(same(&merged.cause(), &cause), "first cancel must win");
    }
}

#[test]
fn canceling_the_merged_ctx_touches_neither_parent() {
    let _serial = serial();
    let (a, _ha) = Ctx::background().with_cancel();
    let (b, _hb) = Ctx::background().with_cancel();
    let (m, cancel) = a.with_merged(&b);
    let (below, _hbelow) = m.with_cancel();
    cancel.cancel();
    assert_eq!(m.err(), Some(Error::Canceled));
    assert_eq!(below.err(), Some(Error::Canceled));
    assert_eq!((a.err(), b.err()), (None, None));
    // Dropping the last handle cancels too, and still touches neither.
    let (m, cancel) = a.with_merged(&b);
    drop(cancel);
    assert_eq!(m.err(), Some(Error::Canceled));
    assert_eq!((a.err(), b.err()), (None, None));
}

#[test]
fn born_done_from_either_parent_or_both() {
    let _serial = serial();
    let (live, _hl) = Ctx::background().with_cancel();
    let (a, cancel_a) = Ctx::background().with_cancel_cause();
    let (b, cancel_b) = Ctx::background().with_timeout_cause(Duration::from_secs(3600), why("b's"));
    let ca = why("a");
    cancel_a.cancel(ca.clone());

    let (m, _h) = a.with_merged(&live);
    assert_eq!(m.err(), Some(Error::Canceled));
    assert!(same(&m.cause(), &ca));

    let (m, _h) = live.with_merged(&a);
    assert_eq!(m.err(), Some(Error::Canceled));
    assert!(same(&m.cause(), &ca));

    let cb = why("b");
    cancel_b.cancel();
    let (m, _h) = live.with_merged(&b);
    assert_eq!(m.err(), Some(Error::Canceled));
    drop(cb);

    // Both done: self's answers.
    let (d, _hd) = Ctx::background().with_deadline_cause(std::time::Instant::now(), why("d"));
    assert_eq!(d.err(), Some(Error::DeadlineExceeded));
    let (m, _h) = d.with_merged(&a);
    assert_eq!(m.err(), Some(Error::DeadlineExceeded));
    assert!(same(&m.cause(), &d.cause().unwrap()));
    let (m, _h) = a.with_merged(&d);
    assert_eq!(m.err(), Some(Error::Canceled));
    assert!(same(&m.cause(), &ca));
    assert_eq!(live.err(), None);
}

#[test]
fn deadline_of_the_other_parent_fires_the_merged_ctx_with_its_cause() {
    let _serial = serial();
    let clock = MockClock::new();
    let (req, _hr) = clock.background().with_cancel();
    let cause = why("shutdown grace period over");
    let (shutdown, _hs) = clock
        .background()
        .with_timeout_cause(Duration::from_secs(5), cause.clone());
    let (m, _h) = req.with_merged(&shutdown);
    assert_eq!(m.deadline(), shutdown.deadline());
    let mut done = Probe::new(m.done());
    done.assert_pending();
    assert_eq!(
        clock.pending_timers(),
        1,
        "one timer, on the owner of the deadline"
    );
    clock.advance(Duration::from_secs(4));
    assert_eq!(m.err(), None);
    clock.advance(Duration::from_secs(1));
    assert_eq!(done.assert_ready(), Error::DeadlineExceeded);
    assert_eq!(m.err(), Some(Error::DeadlineExceeded));
    assert!(same(&m.cause(), &cause), "not the owner's deadline cause");
    assert_eq!(req.err(), None);

    // Unobserved (no timer): `err()` expires the owner on the other side lazily.
    let (req, _hr) = clock.background().with_cancel();
    let (shutdown, _hs) = clock
        .background()
        .with_timeout_cause(Duration::from_secs(5), cause.clone());
    let (m, _h) = req.with_merged(&shutdown);
    clock.advance(Duration::from_secs(5));
    assert_eq!(m.err(), Some(Error::DeadlineExceeded));
    assert!(same(&m.cause(), &cause));
    assert_eq!(
        shutdown.err(),
        Some(Error::DeadlineExceeded),
        "the owner expires too"
    );
    assert_eq!(req.err(), None);
}

/// The other side's deadline passed unobserved (no timer, nobody asked); then the first parent
/// is canceled. The merge's own deadline came first, so it is `DeadlineExceeded` with the
/// cause of the deadline's owner, as a child whose own deadline has passed would be.
#[test]
fn a_deadline_passed_on_the_other_side_wins_over_a_later_cancel_of_the_first() {
    let _serial = serial();
    let clock = MockClock::new();
    let (req, cancel_req) = clock.background().with_cancel_cause();
    let cause = why("shutdown deadline");
    let (shutdown, _hs) = clock
        .background()
        .with_timeout_cause(Duration::from_secs(5), cause.clone());
    let (m, _h) = req.with_merged(&shutdown);
    let (below, _hb) = m.with_cancel();
    clock.advance(Duration::from_secs(6));
    cancel_req.cancel(why("request over"));
    assert_eq!(m.err(), Some(Error::DeadlineExceeded));
    assert!(same(&m.cause(), &cause), "not the deadline owner's cause");
    assert!(same(&below.cause(), &cause));
}

#[test]
fn deadline_is_the_earlier_of_the_two() {
    let _serial = serial();
    let clock = MockClock::new();
    let (a, _ha) = clock.background().with_timeout(Duration::from_secs(3));
    let (b, _hb) = clock.background().with_timeout(Duration::from_secs(7));
    assert_eq!(a.with_merged(&b).0.deadline(), a.deadline());
    assert_eq!(b.with_merged(&a).0.deadline(), a.deadline());
    assert_eq!(a.with_merged(&clock.background()).0.deadline(), a.deadline());
    assert_eq!(clock.background().with_merged(&b).0.deadline(), b.deadline());
    // A parent whose deadline has passed gives a child born done with that parent's answers.
    let cause = why("late");
    let (c, _hc) = clock
        .background()
        .with_timeout_cause(Duration::from_secs(1), cause.clone());
    clock.advance(Duration::from_secs(2));
    let (m, _hm) = clock.background().with_merged(&c);
    assert_eq!(m.err(), Some(Error::DeadlineExceeded));
    assert!(same(&m.cause(), &cause));
}

#[test]
fn a_diamond_runs_its_after_func_once() {
    let _serial = serial();
    let (g, cancel_g) = Ctx::background().with_cancel();
    let (a, cancel_a) = g.with_cancel();
    let (b, cancel_b) = g.with_cancel();
    let (m, _h) = a.with_merged(&b);
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let _f = m.after_func(move || {
        r.fetch_add(1, SeqCst);
    });
    let mut done = Probe::new(m.done());
    done.assert_pending();
    cancel_g.cancel();
    assert_eq!(runs.load(SeqCst), 1);
    done.assert_woken(1);
    cancel_a.cancel();
    cancel_b.cancel();
    assert_eq!(runs.load(SeqCst), 1, "the after-func ran twice");
}

#[test]
fn values_come_from_self_only_and_display_names_both() {
    let _serial = serial();
    let a = Ctx::background().with_value(1u8).with_value("self");
    let b = Ctx::background().with_value(2u16).with_value("other");
    let (m, _h) = a.with_merged(&b);
    assert_eq!(m.value::<&str>(), Some(&"self"));
    assert_eq!(m.value::<u8>(), Some(&1));
    assert_eq!(m.value::<u16>(), None, "a value came from the other parent");
    assert_eq!(
        m.with_value(3u32).to_string(),
        "context.Background.WithValue(u8).WithValue(&str).WithMerged(\
         context.Background.WithValue(u16).WithValue(&str)).WithValue(u32)"
    );
    let (c, _hc) = Ctx::background().with_cancel();
    let (n, _hn) = c.with_merged(&m);
    assert_eq!(
        n.to_string(),
        "context.Background.WithCancel.WithMerged(context.Background.WithValue(u8)\
         .WithValue(&str).WithMerged(context.Background.WithValue(u16).WithValue(&str)))"
    );
}

#[test]
fn merging_with_a_never_done_parent_behaves_like_with_cancel() {
    let _serial = serial();
    let (a, cancel_a) = Ctx::background().with_cancel();
    for never in [
        Ctx::background(),
        a.without_cancel(),
        MockClock::new().background(),
    ] {
        let (m, _h) = a.with_merged(&never);
        let (n, _hn) = never.with_merged(&a);
        assert_eq!((m.err(), n.err()), (None, None));
        assert_eq!(m.deadline(), None);
        let (x, hx) = never.with_merged(&never);
        hx.cancel();
        assert_eq!(x.err(), Some(Error::Canceled));
    }
    let (m, _h) = a.with_merged(&Ctx::background());
    let (n, _hn) = Ctx::background().with_merged(&a);
    cancel_a.cancel();
    assert_eq!((m.err(), n.err()), (Some(Error::Canceled), Some(Error::Canceled)));
}

#[test]
fn merging_a_ctx_with_itself_or_its_own_values_works() {
    let _serial = serial();
    let base = live_nodes();
    {
        let (a, cancel) = Ctx::background().with_cancel();
        let (m1, _h1) = a.with_merged(&a);
        let (m2, _h2) = a.with_merged(&a.with_value(1u8));
        cancel.cancel();
        assert_eq!(
            (m1.err(), m2.err()),
            (Some(Error::Canceled), Some(Error::Canceled))
        );
    }
    assert_eq!(live_nodes(), base);
}

#[test]
fn dropped_merged_contexts_bring_live_nodes_back_to_baseline() {
    let _serial = serial();
    let clock = MockClock::new();
    let (a, cancel_a) = clock.background().with_timeout(Duration::from_secs(9));
    let (b, cancel_b) = clock.background().with_cancel();
    let base = live_nodes();
    for round in 0..4 {
        // Round 3 leaves the merge uncanceled with live parents; round 2 (last) cancels `b`.
        let round = [0, 1, 3, 2][round];
        let (m, h) = a.with_merged(&b);
        let (c, hc) = m.with_cancel();
        let _f = c.after_func(|| {});
        let mut done = Probe::new(c.done());
        done.assert_pending();
        match round {
            0 => drop(h),           // canceled by its handle
            1 => h.disarm(),        // dropped uncanceled
            2 => cancel_b.cancel(), // canceled from the other side (b is done from now on)
            _ => {}
        }
        drop((m, c, hc, done));
    }
    assert_eq!(live_nodes(), base, "a merged context left nodes behind");
    // A merge of a done parent is born done and needs no attaching.
    let (m, _h) = a.with_merged(&b);
    assert_eq!(m.err(), Some(Error::Canceled));
    drop((m, _h));
    assert_eq!(live_nodes(), base);
    drop(cancel_a);
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

/// `depth` merges: each one's first parent is the previous one (`through_first`), or its
/// second is (then the chain hangs from the merges' `other` side).
fn merge_chain(top: &Ctx, side: &Ctx, depth: usize, through_first: bool) -> Ctx {
    let mut cur = top.clone();
    for _ in 0..depth {
        let (next, h) = if through_first {
            cur.with_merged(side)
        } else {
            side.with_merged(&cur)
        };
        h.disarm();
        cur = next;
    }
    cur
}

#[test]
fn a_million_deep_chain_of_merges_cancels_and_drops_on_a_2_mib_stack() {
    let _serial = serial();
    let base = live_nodes();
    on_small_stack(move || {
        for through_first in [true, false] {
            let clock = MockClock::new();
            let (top, cancel) = clock.background().with_cancel_cause();
            let (side, _hs) = clock.background().with_cancel();
            let leaf = merge_chain(&top, &side, MILLION, through_first);
            let mut done = Probe::new(leaf.done());
            done.assert_pending();
            let _ = leaf.to_string().len(); // `Display` walks it without recursing
            let cause = why("top");
            cancel.cancel(cause.clone());
            assert_eq!(leaf.err(), Some(Error::Canceled));
            assert!(same(&leaf.cause(), &cause));
            assert_eq!(side.err(), None);
            drop((done, leaf, top));
        }
    });
    assert_eq!(live_nodes(), base);
}

#[test]
fn a_million_deep_chain_of_merges_dropped_uncanceled_unlinks_on_a_2_mib_stack() {
    let _serial = serial();
    let base = live_nodes();
    on_small_stack(move || {
        for through_first in [true, false] {
            let clock = MockClock::new();
            let (top, cancel) = clock.background().with_cancel();
            let (side, cancel_side) = clock.background().with_cancel();
            let leaf = merge_chain(&top, &side, MILLION, through_first);
            drop(leaf); // leaf first: the chain unlinks in a loop
            assert_eq!((top.err(), side.err()), (None, None));
            cancel.disarm();
            cancel_side.disarm();
            // Parents dropped first, then the leaf.
            let leaf = merge_chain(&top, &side, MILLION, through_first);
            drop((top, side));
            drop(leaf);
        }
    });
    assert_eq!(live_nodes(), base);
}

#[test]
fn merging_with_a_wrapped_ctx_links_directly_with_no_watcher() {
    let _serial = serial();
    let (inner, cancel) = Ctx::background().with_cancel();
    let (req, _hr) = Ctx::background().with_cancel();
    let before = ctx_core::test_util::watchers_started();
    let wrapped = Ctx::wrap(ctx_testkit::Passthrough(inner));
    let (m, _h) = req.with_merged(&wrapped);
    assert_eq!(
        ctx_core::test_util::watchers_started(),
        before,
        "a watcher was started"
    );
    cancel.cancel();
    assert_eq!(m.err(), Some(Error::Canceled), "not canceled at once");
}

/// A foreign `done()` (not a `Ctx`'s) as the second parent: the bridge's watcher feeds the
/// merge like any other child of the wrapped context.
#[test]
#[cfg_attr(
    miri,
    ignore = "ctx-core's watcher thread outlives the test, which Miri rejects"
)]
fn merging_with_a_foreign_context_follows_its_done() {
    use std::any::{Any, TypeId};
    use std::time::Instant;

    use ctx_core::{Context, Done};

    /// Done when its channel fires; `err()` says so once `fired` is set.
    struct Wrapper(
        Mutex<Option<futures::channel::oneshot::Receiver<()>>>,
        Arc<Mutex<bool>>,
    );
    impl Context for Wrapper {
        fn deadline(&self) -> Option<Instant> {
            None
        }
        fn done(&self) -> Done {
            let rx = self.0.lock().unwrap().take();
            Done::new(async move {
                if let Some(rx) = rx {
                    let _ = rx.await;
                } else {
                    std::future::pending::<()>().await;
                }
                Error::Canceled
            })
        }
        fn err(&self) -> Option<Error> {
            self.1.lock().unwrap().then_some(Error::Canceled)
        }
        fn cause(&self) -> Option<Cause> {
            self.err().map(|e| Arc::new(e) as Cause)
        }
        fn value_any(&self, _key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
            None
        }
    }
    let _serial = serial();
    let base = live_nodes();
    {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let fired = Arc::new(Mutex::new(false));
        let foreign = Ctx::wrap(Wrapper(Mutex::new(Some(rx)), fired.clone()));
        let (req, _hr) = Ctx::background().with_cancel();
        let (m, _h) = req.with_merged(&foreign);
        assert_eq!(m.err(), None);
        *fired.lock().unwrap() = true;
        tx.send(()).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let w = m.clone();
        let waiter = std::thread::spawn(move || {
            let _ = done_tx.send(w.wait_blocking());
        });
        assert_eq!(
            done_rx.recv_timeout(Duration::from_secs(10)),
            Ok(Error::Canceled),
            "the merge did not follow the foreign context within 10 s"
        );
        assert_eq!(req.err(), None);
        waiter.join().unwrap(); // its clone of `m` is gone
    }
    // The watcher thread lets go of the wrap's bridge once its poll has returned: wait for it
    // (bounded), so that the next test that counts nodes starts from what it sees, and so that
    // nothing is left behind.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while live_nodes() != base && std::time::Instant::now() < until {
        std::thread::yield_now();
    }
    assert_eq!(
        live_nodes(),
        base,
        "the merge with a foreign context left nodes behind"
    );
}
