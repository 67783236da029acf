//! `MockClock::advance` racing a thread that arms a timer (registering an after-func, or
//! polling `done()`): once both calls have returned, a deadline that `advance` passed has fired
//! — its after-func has run and its waiter is woken — never "later, on another thread".
//! Raced for enough rounds to catch a window hit 3 times in 20,000.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Wake, Waker};
use std::thread;
use std::time::Duration;

use ctx_testkit::MockClock;

const ROUNDS: usize = 20_000;

#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `arm` on one thread and `advance` past the deadline on another, `ROUNDS` times;
/// `fired` must hold once both have returned.
fn race(arm: impl Fn(&ctx_core::Ctx) -> Box<dyn FnOnce() -> bool + Send> + Sync) {
    let mut misses = 0;
    for round in 0..ROUNDS {
        let clock = MockClock::new();
        let (ctx, _h) = clock.background().with_timeout(Duration::from_secs(1));
        let barrier = Barrier::new(2);
        let armed = thread::scope(|s| {
            let a = s.spawn(|| {
                barrier.wait();
                arm(&ctx)
            });
            barrier.wait();
            // Sweep the advance across the other thread's arming: from at once to a few
            // microseconds later.
            for _ in 0..(round % 100) * 2 {
                std::hint::spin_loop();
            }
            clock.advance(Duration::from_secs(2));
            a.join().unwrap()
        });
        if !armed() {
            misses += 1;
        }
    }
    assert_eq!(
        misses, 0,
        "{misses} of {ROUNDS} rounds returned before the deadline fired"
    );
}

#[test]
fn an_after_func_armed_while_advance_runs_has_run_when_both_return() {
    race(|ctx| {
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let stop = ctx.after_func(move || r.store(true, Ordering::SeqCst));
        Box::new(move || {
            let ok = ran.load(Ordering::SeqCst);
            drop(stop);
            ok
        })
    });
}

#[test]
fn a_waiter_registered_while_advance_runs_is_woken_when_both_return() {
    race(|ctx| {
        let flag = Arc::new(Flag::default());
        let waker = Waker::from(flag.clone());
        let mut done = Box::pin(ctx.done());
        let pending = done.as_mut().poll(&mut Context::from_waker(&waker)).is_pending();
        Box::new(move || {
            let ok = !pending || flag.0.load(Ordering::SeqCst);
            drop(done);
            ok
        })
    });
}
