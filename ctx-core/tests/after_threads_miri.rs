//! The after-func threads under Miri: a timer woken by a thread of the test hands its
//! after-funcs to them; they run, exactly once, with no data race.
//!
//! Not built under `--cfg loom`: the pool is loom's model there (the loom suite is `--lib`).
#![cfg(not(loom))]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ctx_core::clock::Timer;
use ctx_core::{Clock, Ctx, Error};

/// A clock whose time stands still and whose timers fire when the test says so, from the
/// test's own thread: not a clock that runs after-funcs inline.
#[derive(Debug, Clone, Default)]
struct Manual(Arc<Mutex<(bool, Vec<Waker>)>>);

struct ManualSleep(Arc<Mutex<(bool, Vec<Waker>)>>);

impl Future for ManualSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = self.0.lock().unwrap();
        if g.0 {
            return Poll::Ready(());
        }
        g.1.push(cx.waker().clone());
        Poll::Pending
    }
}

static FIRED: AtomicBool = AtomicBool::new(false);

impl Clock for Manual {
    fn now(&self) -> Instant {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        if FIRED.load(Ordering::SeqCst) {
            start + Duration::from_secs(10)
        } else {
            start
        }
    }
    fn sleep_until(&self, _: Instant) -> Timer {
        Box::pin(ManualSleep(self.0.clone()))
    }
}

impl Manual {
    fn fire(&self) {
        FIRED.store(true, Ordering::SeqCst);
        let wakers = {
            let mut g = self.0.lock().unwrap();
            g.0 = true;
            std::mem::take(&mut g.1)
        };
        for w in wakers {
            w.wake();
        }
    }
}

#[test]
fn after_funcs_fired_from_a_wake_run_on_the_pool_exactly_once() {
    let clock = Manual::default();
    let root = Ctx::background_with_clock(Arc::new(clock.clone()));
    let (ctx, _cancel) = root.with_timeout(Duration::from_secs(5));
    let (tx, rx) = mpsc::channel();
    let stops: Vec<_> = (0..3)
        .map(|i| {
            let tx = tx.clone();
            ctx.after_func(move || tx.send((i, std::thread::current().id())).unwrap())
        })
        .collect();
    let waker = std::thread::spawn(move || {
        clock.fire();
        std::thread::current().id()
    });
    let timer_thread = waker.join().unwrap();
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    let bound = Duration::from_secs(10);
    let mut ran: Vec<_> = (0..3)
        .map(|_| rx.recv_timeout(bound).expect("an after-func never ran"))
        .collect();
    ran.sort_by_key(|r| r.0);
    assert_eq!(ran.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(
        ran.iter().all(|r| r.1 != timer_thread),
        "an after-func ran on the thread that fired the timer"
    );
    drop(tx);
    assert_eq!(
        rx.recv_timeout(bound),
        Err(mpsc::RecvTimeoutError::Disconnected),
        "an after-func ran twice, or one is still held"
    );
    for s in stops {
        assert!(!s.stop());
    }
    if cfg!(miri) {
        // Miri wants every thread ended when the test process ends: let the idle workers time
        // out (Miri's clock jumps ahead while every thread sleeps).
        let limit = Instant::now() + Duration::from_secs(60);
        while ctx_core::test_util::after_func_threads() > 0 {
            assert!(Instant::now() < limit, "an after-func thread never exited");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
