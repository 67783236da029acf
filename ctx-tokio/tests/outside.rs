//! Roots outside a tokio runtime: a clear panic, or an error from the `try_` variant.

#[test]
#[should_panic(expected = "tokio")]
fn background_panics_outside_a_runtime_with_a_message_naming_tokio() {
    let _ = ctx_tokio::background();
}

#[test]
#[should_panic(expected = "tokio")]
fn todo_panics_outside_a_runtime_with_a_message_naming_tokio() {
    let _ = ctx_tokio::todo();
}

#[test]
fn try_background_is_an_error_outside_a_runtime_and_a_root_inside() {
    assert!(ctx_tokio::try_background().is_err());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let root = ctx_tokio::try_background().expect("inside the runtime");
    assert_eq!(root.to_string(), "context.Background");
}

#[test]
fn roots_are_named_like_go() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    assert_eq!(ctx_tokio::background().to_string(), "context.Background");
    assert_eq!(ctx_tokio::todo().to_string(), "context.TODO");
}

#[test]
fn the_clock_is_the_runtime_it_was_made_in() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clock = rt.block_on(async { ctx_tokio::TokioClock::current() });
    assert_eq!(clock.handle().id(), rt.handle().id());
}

#[test]
fn contexts_still_answer_after_their_runtime_is_dropped() {
    use std::time::Duration;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ctx, cancel) = rt.block_on(async { ctx_tokio::background().with_timeout(Duration::from_millis(5)) });
    let (waiting, _w) =
        rt.block_on(async { ctx_tokio::background().with_timeout(Duration::from_secs(3600)) });
    let _stop = waiting.after_func(|| {}); // a timer armed on the runtime
    drop(rt);
    std::thread::sleep(Duration::from_millis(10));
    // Reading the clock needs no live runtime: the deadline shows in `err()`.
    assert_eq!(ctx.err(), Some(ctx_tokio::Error::DeadlineExceeded));
    assert!(waiting.now() >= ctx.deadline().unwrap());
    assert_eq!(waiting.err(), None);
    drop(cancel);
}

#[test]
fn deadlines_still_fire_after_their_runtime_is_dropped() {
    use std::time::{Duration, Instant};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let root = rt.block_on(async { ctx_tokio::background() });
    drop(rt);
    // The runtime is gone (its sentinel task was dropped): the clock arms the system timer
    // instead of a tokio timer that tokio would refuse to poll.
    let start = Instant::now();
    let (ctx, _cancel) = root.with_timeout(Duration::from_millis(20));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(ctx.wait_blocking()));
    let err = rx
        .recv_timeout(Duration::from_secs(2))
        .expect("the deadline never fired");
    assert_eq!(err, ctx_tokio::Error::DeadlineExceeded);
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn a_multi_thread_runtimes_clock_reads_tokios_time_from_any_thread() {
    // Read without entering the runtime (its time cannot be paused): it is still tokio's.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let clock = ctx_tokio::TokioClock::new(rt.handle().clone());
    let before = rt.block_on(async { tokio::time::Instant::now().into_std() });
    let t = ctx_tokio::Clock::now(&clock);
    let after = rt.block_on(async { tokio::time::Instant::now().into_std() });
    assert!(before <= t && t <= after);
}
