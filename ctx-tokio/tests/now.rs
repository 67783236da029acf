//! Where `TokioClock::now` reads a current-thread runtime's time from: as is inside that
//! runtime, through its handle from everywhere else. Paused time must be exact on every thread,
//! and a thread inside one runtime must never read another runtime's clock for it.

use std::future::Future;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ctx_tokio::{Clock, Error, TokioClock};
use tokio::runtime::Runtime;

const HOUR: Duration = Duration::from_secs(3600);
const SECOND: Duration = Duration::from_secs(1);

fn tokio_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn paused_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Runs `f` on a plain thread (no runtime entered) and returns its result, or fails the test if
/// it has not returned within ten seconds.
fn on_plain_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        assert!(tokio::runtime::Handle::try_current().is_err());
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the plain thread did not answer")
}

/// `rt.block_on(fut)` under a watchdog: the runtimes here are paused (or pause), so a `fut`
/// stuck on nothing lets tokio auto-advance to the year-long timeout at once, failing the test.
fn block_on<F: Future>(rt: &Runtime, fut: F) -> F::Output {
    rt.block_on(async {
        tokio::time::timeout_at(
            tokio::time::Instant::from_std(Instant::now() + HOUR * 24 * 365),
            fut,
        )
        .await
        .expect("the paused runtime's future did not finish")
    })
}

#[tokio::test(start_paused = true)]
async fn paused_time_is_exact_in_block_on_in_a_task_and_on_a_plain_thread() {
    let clock = TokioClock::current();
    tokio::time::advance(HOUR).await; // tokio's clock now runs an hour ahead of the system's
    let expected = tokio_now();
    assert_eq!(clock.now(), expected, "in block_on");
    let in_task = tokio::spawn({
        let clock = clock.clone();
        async move { clock.now() }
    });
    assert_eq!(in_task.await.unwrap(), expected, "in a task");
    let outside = on_plain_thread(move || clock.now());
    assert_eq!(outside, expected, "on a plain thread");
}

#[tokio::test(start_paused = true)]
async fn a_deadline_is_read_right_from_a_task_and_a_plain_thread_after_advance() {
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(10 * SECOND);
    tokio::time::advance(9 * SECOND).await;
    let task_ctx = ctx.clone();
    let in_task = tokio::spawn(async move { task_ctx.err() });
    assert_eq!(
        in_task.await.unwrap(),
        None,
        "a task saw the deadline a second early"
    );
    let outside = ctx.clone();
    assert_eq!(
        on_plain_thread(move || outside.err()),
        None,
        "a plain thread, a second early"
    );
    tokio::time::advance(SECOND).await;
    let outside = ctx.clone();
    let err = on_plain_thread(move || outside.wait_blocking());
    assert_eq!(err, Error::DeadlineExceeded);
    let task_ctx = ctx.clone();
    let in_task = tokio::spawn(async move { task_ctx.err() });
    assert_eq!(in_task.await.unwrap(), Some(Error::DeadlineExceeded));
}

#[test]
fn pause_and_resume_are_seen_inside_and_outside_the_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clock = TokioClock::new(rt.handle().clone());
    let frozen = block_on(&rt, async {
        tokio::time::pause();
        tokio::time::advance(HOUR).await;
        let frozen = tokio_now();
        assert_eq!(clock.now(), frozen, "inside, paused");
        frozen
    });
    let outside = clock.clone();
    assert_eq!(on_plain_thread(move || outside.now()), frozen, "outside, paused");
    block_on(&rt, async {
        tokio::time::resume();
        // Running again, from the paused instant: an hour ahead of the system's clock.
        let now = clock.now();
        assert!(
            now >= frozen && now >= Instant::now() + HOUR - SECOND,
            "inside, resumed"
        );
    });
    let outside = clock.clone();
    let now = on_plain_thread(move || outside.now());
    assert!(
        now >= frozen && now >= Instant::now() + HOUR - SECOND,
        "outside, resumed"
    );
}

#[test]
fn two_runtimes_in_turn_on_one_thread_each_read_their_own_clock() {
    let a = paused_runtime();
    let b = paused_runtime();
    let clock_a = TokioClock::new(a.handle().clone());
    let (a_now, ctx_a, _cancel_a) = block_on(&a, async {
        tokio::time::advance(HOUR).await;
        let (ctx, cancel) = ctx_tokio::background().with_timeout(10 * SECOND);
        (tokio_now(), ctx, cancel)
    });
    let clock_b = block_on(&b, async {
        tokio::time::advance(3 * HOUR).await; // b's time: two hours past a's, and past ctx_a's deadline
        TokioClock::current()
    });
    let b_now = block_on(&b, async { tokio_now() });
    assert_ne!(a_now, b_now);

    // Inside b (in block_on and in a task), a's clock still reads a's time.
    block_on(&b, async {
        assert_eq!(clock_a.now(), a_now, "a's clock read in b's block_on");
        assert_eq!(ctx_a.now(), a_now);
        assert_eq!(ctx_a.err(), None, "a's deadline judged by b's time");
        let (clock, ctx) = (clock_a.clone(), ctx_a.clone());
        let in_task = tokio::spawn(async move { (clock.now(), ctx.err()) });
        assert_eq!(
            in_task.await.unwrap(),
            (a_now, None),
            "a's clock read in b's task"
        );
    });
    // And inside a, b's clock reads b's time.
    block_on(&a, async {
        assert_eq!(clock_b.now(), b_now, "b's clock read in a's block_on");
        assert_eq!(clock_a.now(), a_now);
    });
    // A deadline of a's passes only with a's time.
    block_on(&b, async { tokio::time::advance(HOUR).await });
    assert_eq!(ctx_a.err(), None);
    block_on(&a, async { tokio::time::advance(10 * SECOND).await });
    assert_eq!(ctx_a.err(), Some(Error::DeadlineExceeded));
    assert_eq!(clock_a.now(), a_now + 10 * SECOND);
}

#[test]
fn a_clock_made_in_one_runtime_reads_its_own_time_in_another_runtimes_enter() {
    let a = paused_runtime();
    let b = paused_runtime();
    let clock_a = block_on(&a, async {
        tokio::time::advance(HOUR).await;
        TokioClock::current()
    });
    let a_now = block_on(&a, async { tokio_now() });
    let _inside_b = b.enter(); // b's time is its start; a's an hour later
    assert_ne!(tokio_now(), a_now);
    assert_eq!(clock_a.now(), a_now);
}

/// Only a runtime whose time cannot be paused says its clock is `Instant::now()`: ctx-core then
/// reads that itself (and proves far deadlines ahead with a coarse reading). A current-thread
/// runtime may be paused (these tests build tokio with `test-util`): its clock is read in full,
/// so paused time still decides every deadline.
#[test]
fn only_a_runtime_that_cannot_pause_reads_instant_now() {
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let clock = TokioClock::new(multi.handle().clone());
    assert!(clock.is_instant_now());
    ctx_testkit::conformance::a_clock_that_says_instant_now_reads_it(std::sync::Arc::new(clock));

    let paused = paused_runtime();
    let clock = TokioClock::new(paused.handle().clone());
    assert!(!clock.is_instant_now());
    // A deadline an hour ahead passes when paused time is advanced past it: the coarse proof
    // (which reads the system's time) is never taken for this clock.
    block_on(&paused, async {
        let (ctx, cancel) = ctx_tokio::background().with_timeout(HOUR);
        assert_eq!(ctx.err(), None);
        tokio::time::advance(HOUR + SECOND).await;
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        cancel.cancel();
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    });
}
