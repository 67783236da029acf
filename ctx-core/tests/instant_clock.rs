//! A clock that says it reads `Instant::now()` (`Clock::is_instant_now`) is asked so once, when
//! its root is made, and its `now()` is then never called: ctx-core reads `Instant::now()`
//! (and, for a deadline far ahead, the coarse clock that proves it ahead) itself. A clock that
//! does not say so is read through its `now()` as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ctx_core::clock::Timer;
use ctx_core::{Clock, Ctx, Error};

const HOUR: Duration = Duration::from_secs(3600);

/// Counts its readings and the questions it is asked. Its `now()` is `Instant::now()` plus
/// `offset`: with an offset, a clock that says `instant` lies, and shows whose time is read.
#[derive(Debug)]
struct Counting {
    instant: bool,
    offset: Duration,
    reads: AtomicUsize,
    asked: AtomicUsize,
}

impl Counting {
    fn new(instant: bool, offset: Duration) -> Arc<Counting> {
        Arc::new(Counting {
            instant,
            offset,
            reads: AtomicUsize::new(0),
            asked: AtomicUsize::new(0),
        })
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl Clock for Counting {
    fn now(&self) -> Instant {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Instant::now() + self.offset
    }

    fn sleep_until(&self, _: Instant) -> Timer {
        Box::pin(std::future::pending())
    }

    fn is_instant_now(&self) -> bool {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.instant
    }
}

/// What every test below does on a root of `clock`: a timed child read and canceled, a parent
/// with children canceled (a walk), a deadline already passed.
fn exercise(root: &Ctx) {
    let (ctx, cancel) = root.with_timeout(HOUR);
    for _ in 0..3 {
        assert_eq!(ctx.err(), None);
        assert!(!ctx.is_done());
    }
    cancel.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));

    let (parent, cancel) = root.with_cancel();
    let (timed, _t) = parent.with_timeout(HOUR);
    let children: Vec<_> = (0..3).map(|_| parent.with_cancel()).collect();
    cancel.cancel();
    assert_eq!(timed.err(), Some(Error::Canceled));
    assert!(children.iter().all(|(c, _)| c.err() == Some(Error::Canceled)));

    let (passed, _p) = root.with_deadline(Instant::now());
    assert_eq!(passed.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn an_instant_clock_is_asked_once_and_never_read() {
    let clock = Counting::new(true, Duration::ZERO);
    let root = Ctx::background_with_clock(clock.clone());
    assert_eq!(clock.asked.load(Ordering::SeqCst), 1);
    exercise(&root);
    let _ = root.now();
    assert_eq!(
        clock.reads(),
        0,
        "ctx-core called now() of a clock that reads Instant::now()"
    );
    assert_eq!(clock.asked.load(Ordering::SeqCst), 1, "asked more than once");
}

#[test]
fn any_other_clock_is_read_through_its_now() {
    let clock = Counting::new(false, Duration::ZERO);
    let root = Ctx::background_with_clock(clock.clone());
    let (ctx, cancel) = root.with_timeout(HOUR);
    let created = clock.reads();
    assert!(created >= 1, "with_timeout read no time");
    assert_eq!(ctx.err(), None);
    assert!(
        clock.reads() > created,
        "err() of a deadline proved nothing on a user's clock"
    );
    let before = clock.reads();
    cancel.cancel();
    assert!(
        clock.reads() > before,
        "the cancel did not ask whether the deadline had passed"
    );
    exercise(&root);
}

/// Whose time is read: a clock that says `true` is taken at its word, so one whose `now()` is
/// an hour ahead of `Instant::now()` has its deadlines judged on `Instant::now()` (the doc's
/// "wrong times, never unsound"); one that says nothing is read as it is.
#[test]
fn an_instant_clock_is_taken_at_its_word() {
    let lying = Counting::new(true, HOUR);
    let root = Ctx::background_with_clock(lying.clone());
    let t0 = Instant::now();
    let (ctx, _c) = root.with_timeout(Duration::from_secs(60));
    let t1 = Instant::now();
    let d = ctx.deadline().unwrap();
    assert!(t0 + Duration::from_secs(60) <= d && d <= t1 + Duration::from_secs(60));
    assert!(root.now() < t1 + HOUR / 2);

    let honest = Counting::new(false, HOUR);
    let root = Ctx::background_with_clock(honest.clone());
    let t0 = Instant::now();
    let (ctx, _c) = root.with_timeout(Duration::from_secs(60));
    assert!(ctx.deadline().unwrap() >= t0 + HOUR);
    assert!(root.now() >= t0 + HOUR);
}

/// A root made from one `Arc` twice keeps one answer per root: the clock is asked for each.
#[test]
fn each_root_asks_its_clock() {
    let clock = Counting::new(true, Duration::ZERO);
    let a = Ctx::background_with_clock(clock.clone());
    let b = Ctx::todo_with_clock(clock.clone());
    assert_eq!(clock.asked.load(Ordering::SeqCst), 2);
    let (ctx, _c) = a.with_merged(&b);
    assert_eq!(ctx.err(), None);
    exercise(&ctx);
    assert_eq!(clock.reads(), 0);
}

/// The testkit's check of a clock that says so: the system clock passes, and a clock that says
/// it reads `Instant::now()` but runs an hour ahead is caught.
#[test]
fn the_testkit_check_passes_the_system_clock() {
    ctx_testkit::conformance::a_clock_that_says_instant_now_reads_it(Arc::new(
        ctx_core::clock::SystemClock::default(),
    ));
    ctx_testkit::conformance::a_clock_that_says_instant_now_reads_it(Counting::new(false, HOUR));
}

#[test]
#[should_panic(expected = "outside")]
fn the_testkit_check_catches_a_clock_that_lies() {
    ctx_testkit::conformance::a_clock_that_says_instant_now_reads_it(Counting::new(true, HOUR));
}
