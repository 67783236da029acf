//! `MockClock`: what `advance` moves, fires and never does.

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use ctx_core::{Clock, Ctx, Error};
use ctx_testkit::{MockClock, Probe};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

const SEC: Duration = Duration::from_secs(1);

/// Registers an after-func on `ctx` that logs `(name, clock.now())`.
fn log_at(ctx: &Ctx, clock: &MockClock, log: &Arc<Mutex<Vec<(&'static str, Instant)>>>, name: &'static str) {
    let (clock, log) = (clock.clone(), log.clone());
    let _ = ctx.after_func(move || log.lock().unwrap().push((name, clock.now())));
}

#[test]
fn advance_fires_in_deadline_order_with_ties_in_registration_order_and_steps_time() {
    let clock = MockClock::new();
    let start = clock.now();
    let root = clock.background();
    let log = Arc::default();
    let (c3, _a) = root.with_timeout(3 * SEC);
    let (c1, _b) = root.with_timeout(SEC);
    let (c2a, _c) = root.with_timeout(2 * SEC);
    let (c2b, _d) = root.with_timeout(2 * SEC);
    log_at(&c3, &clock, &log, "3");
    log_at(&c2b, &clock, &log, "2b");
    log_at(&c1, &clock, &log, "1");
    log_at(&c2a, &clock, &log, "2a");
    clock.advance(10 * SEC);
    let got = log.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            ("1", start + SEC),
            ("2b", start + 2 * SEC),
            ("2a", start + 2 * SEC),
            ("3", start + 3 * SEC)
        ]
    );
    assert_eq!(
        clock.now(),
        start + 10 * SEC,
        "advance must end at start + d exactly"
    );
}

#[test]
fn nothing_fires_early_and_a_deadline_equal_to_now_is_reached() {
    let clock = MockClock::new();
    let (ctx, _c) = clock.background().with_timeout(5 * SEC);
    let mut done = Probe::new(ctx.done());
    done.assert_pending();
    clock.advance(5 * SEC - Duration::from_nanos(1));
    done.assert_woken(0);
    assert_eq!(ctx.err(), None);
    clock.advance(Duration::from_nanos(1));
    done.assert_woken(1);
    assert_eq!(done.assert_ready(), Error::DeadlineExceeded);
}

#[test]
fn timers_registered_during_advance_fire_before_it_returns_if_due() {
    let clock = MockClock::new();
    let start = clock.now();
    let root = clock.background();
    let (ctx, _c) = root.with_timeout(SEC);
    let (tx, rx) = mpsc::channel();
    let (r, c2) = (root.clone(), clock.clone());
    let _a = ctx.after_func(move || {
        let (later, cancel) = r.with_timeout(2 * SEC);
        cancel.disarm();
        let _ = later.after_func(move || tx.send(c2.now()).unwrap());
    });
    clock.advance(5 * SEC);
    assert_eq!(
        rx.try_recv(),
        Ok(start + 3 * SEC),
        "a timer registered during advance did not fire in it"
    );
}

#[test]
fn advance_may_be_called_again_from_an_after_func_without_deadlock() {
    let clock = MockClock::new();
    let start = clock.now();
    let root = clock.background();
    let (first, _a) = root.with_timeout(SEC);
    let (second, _b) = root.with_timeout(4 * SEC);
    let c = clock.clone();
    let _x = first.after_func(move || c.advance(5 * SEC));
    let _y = second.after_func(|| {});
    let (tx, rx) = mpsc::channel();
    let c = clock.clone();
    std::thread::spawn(move || {
        c.advance(2 * SEC);
        let _ = tx.send(());
    });
    rx.recv_timeout(5 * SEC).expect("re-entrant advance deadlocked");
    assert_eq!(second.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        clock.now(),
        start + 6 * SEC,
        "the inner advance moved time on from the first deadline"
    );
}

#[test]
fn advance_to_the_past_is_a_no_op_and_huge_advances_do_not_panic() {
    let clock = MockClock::new();
    let t = clock.now();
    clock.advance_to(t - SEC);
    assert_eq!(clock.now(), t);
    clock.advance_to(t);
    assert_eq!(clock.now(), t);
    let (ctx, _c) = clock.background().with_timeout(1000 * SEC);
    let _a = ctx.after_func(|| {});
    clock.advance(Duration::MAX);
    assert!(clock.now() > t + 1000 * SEC);
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    clock.advance(Duration::MAX); // already at the end of time: still no panic
}

#[test]
fn clones_share_one_timeline_and_new_clocks_are_independent() {
    let a = MockClock::new();
    let b = a.clone();
    let other = MockClock::new();
    let (t, u) = (a.now(), other.now());
    b.advance(3 * SEC);
    assert_eq!(a.now(), t + 3 * SEC);
    assert_eq!(other.now(), u);
    let (ctx, _c) = a.background().with_timeout(SEC);
    let _x = ctx.after_func(|| {});
    other.advance(10 * SEC);
    assert_eq!(ctx.err(), None, "advancing another clock fired this one's timer");
    b.advance(SEC);
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn dropping_a_sleep_removes_its_timer() {
    let clock = MockClock::new();
    let mut sleep = Probe::new(clock.sleep_until(clock.now() + SEC));
    sleep.assert_pending();
    sleep.assert_pending();
    assert_eq!(clock.pending_timers(), 1);
    assert_eq!(clock.next_deadline(), Some(clock.now() + SEC));
    sleep.drop_future();
    assert_eq!(clock.pending_timers(), 0);
    assert_eq!(clock.next_deadline(), None);
    assert_eq!(sleep.wakers_held(), 0);
}

#[test]
fn a_sleep_is_woken_once_and_ready_at_its_deadline() {
    let clock = MockClock::new();
    let mut sleep = Probe::new(clock.sleep_until(clock.now() + SEC));
    sleep.assert_pending();
    clock.advance(SEC);
    sleep.assert_woken(1);
    sleep.assert_ready();
    assert_eq!(clock.pending_timers(), 0);
    let mut past = Probe::new(clock.sleep_until(clock.now() - SEC));
    past.assert_ready();
}

#[test]
fn advance_releases_a_thread_blocked_in_wait_blocking() {
    let clock = MockClock::new();
    let (ctx, _c) = clock.background().with_timeout(30 * SEC);
    let (tx, rx) = mpsc::channel();
    let c = ctx.clone();
    std::thread::spawn(move || {
        let _ = tx.send(c.wait_blocking());
    });
    // Wait (in real time, briefly) until the waiter has armed the deadline timer.
    let limit = Instant::now() + 5 * SEC;
    while clock.pending_timers() == 0 {
        assert!(Instant::now() < limit, "the waiter never armed its timer");
        std::thread::yield_now();
    }
    assert!(
        rx.try_recv().is_err(),
        "wait_blocking returned before the deadline"
    );
    clock.advance(30 * SEC);
    assert_eq!(rx.recv_timeout(5 * SEC), Ok(Error::DeadlineExceeded));
}

#[test]
fn a_task_on_a_local_executor_is_woken_by_advance() {
    let clock = MockClock::new();
    let root = clock.background();
    let mut pool = LocalPool::new();
    let out = Arc::new(Mutex::new(None));
    let slot = out.clone();
    pool.spawner()
        .spawn_local(async move {
            let (ctx, _c) = root.with_timeout(5 * SEC);
            *slot.lock().unwrap() = Some(ctx.run(std::future::pending::<()>()).await);
        })
        .unwrap();
    pool.run_until_stalled();
    assert_eq!(*out.lock().unwrap(), None);
    clock.advance(5 * SEC);
    pool.run_until_stalled();
    assert_eq!(*out.lock().unwrap(), Some(Err(Error::DeadlineExceeded)));
}

#[test]
fn roots_are_named_like_go_and_every_derivation_uses_the_mock() {
    let clock = MockClock::default();
    assert_eq!(clock.background().to_string(), "context.Background");
    assert_eq!(clock.todo().to_string(), "context.TODO");
    let detached = clock.background().with_value(1u8).without_cancel();
    clock.advance(SEC);
    let (ctx, _c) = detached.with_timeout(SEC);
    assert_eq!(ctx.deadline(), Some(clock.now() + SEC));
    assert_eq!(Clock::now(&clock), clock.now());
    assert_eq!(clock.todo().now(), clock.now());
}

#[test]
fn debug_shows_now_and_pending_timers() {
    let clock = MockClock::new();
    let s = format!("{clock:?}");
    assert!(
        s.starts_with("MockClock") && s.contains("pending_timers: 0"),
        "got {s}"
    );
}
