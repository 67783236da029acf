//! The sleep checks of the ctx conformance suite on tokio's paused clock: time moves only by
//! `tokio::time::advance`, so the checks see exact instants and wake counts, as on `MockClock`.
//!
//! (The whole suite runs on a real-time multi-thread runtime in `conformance.rs`; paused time
//! needs a current-thread runtime, whose tasks and timers run only while a thread is in its
//! `block_on`, which the checks that wait from plain threads do not allow.)

use std::future::Future;
use std::time::Duration;

use ctx_testkit::conformance::{self, Runtime};
use ctx_tokio::Ctx;

/// A current-thread runtime with paused time; `advance` runs `tokio::time::advance` in it.
struct Paused(tokio::runtime::Runtime);

impl Paused {
    fn new() -> Paused {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a tokio runtime");
        Paused(rt)
    }
}

impl Runtime for Paused {
    fn background(&self) -> Ctx {
        let _enter = self.0.enter();
        ctx_tokio::background()
    }
    fn block_on<F: Future + Send + 'static>(&self, fut: F) -> F::Output
    where
        F::Output: Send + 'static,
    {
        self.0.block_on(fut)
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        drop(self.0.spawn(fut));
    }
    fn advance(&self, d: Duration) {
        // `advance` fires the timers due (their wakers run inline) before it returns.
        self.0.block_on(tokio::time::advance(d));
    }
    fn is_mock(&self) -> bool {
        true
    }
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                conformance::$name(&Paused::new());
            }
        )*
    };
}

checks!(
    sleep_is_ok_once_the_duration_has_passed,
    sleep_until_is_ok_at_the_instant,
    sleep_is_err_as_soon_as_the_context_is_canceled,
    sleep_answers_on_the_first_poll_when_it_can,
    sleep_ends_at_an_earlier_deadline,
    huge_sleep_never_panics,
    dropped_sleep_releases_its_waker,
    sleep_blocking_ends_by_time_or_by_cancel,
);

/// `ctx.sleep` inside the paused runtime: tokio's auto-advance ends it with no real waiting.
#[test]
fn sleep_follows_auto_advance_of_paused_time() {
    let rt = Paused::new();
    let real = std::time::Instant::now();
    rt.0.block_on(async {
        let root = ctx_tokio::background();
        let start = root.now();
        assert_eq!(root.sleep(Duration::from_secs(3600)).await, Ok(()));
        assert_eq!(root.now(), start + Duration::from_secs(3600));
    });
    assert!(real.elapsed() < Duration::from_secs(2), "waited for real");
}
