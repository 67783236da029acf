//! `ctx_smol::Group`, Go's errgroup on smol's global executor, in real time. Every
//! wait has a watchdog: `within` fails the test after `BOUND` instead of hanging.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;

use ctx_smol::{Cause, Ctx, Error, Group};

const BOUND: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Failed(&'static str);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Failed {}

async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    let fut = async { Some(fut.await) };
    let watchdog = async {
        smol::Timer::after(BOUND).await;
        None
    };
    match smol::future::or(fut, watchdog).await {
        Some(v) => v,
        None => panic!("{what}: did not happen within {BOUND:?}"),
    }
}

/// Waits until `ctx` is done and returns `Ok`: a sibling that stops when told to.
async fn until_done(ctx: Ctx) -> Result<(), Failed> {
    ctx.done().await;
    Ok(())
}

#[test]
fn all_tasks_ok_is_ok_and_the_ctx_is_canceled_when_wait_returns() {
    smol::block_on(async {
        let (group, ctx) = Group::new(&ctx_smol::background());
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let ran = ran.clone();
            group.spawn(async move {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<(), Failed>(())
            });
        }
        assert_eq!(ctx.err(), None);
        assert!(within("wait", group.wait()).await.is_ok());
        assert_eq!(ran.load(Ordering::SeqCst), 10);
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert_eq!(
            ctx.cause().unwrap().downcast_ref::<Error>(),
            Some(&Error::Canceled)
        );
    })
}

#[test]
fn the_first_error_cancels_the_siblings_with_itself_as_cause() {
    smol::block_on(async {
        let request = ctx_smol::background();
        let (group, ctx) = Group::new(&request);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        for _ in 0..3 {
            let (ctx, seen) = (ctx.clone(), seen.clone());
            group.spawn(async move {
                ctx.done().await;
                seen.lock().unwrap().push(ctx.cause().unwrap().to_string());
                Ok::<(), Failed>(())
            });
        }
        group.spawn(async { Err(Failed("shard down")) });
        let err = within("wait", group.wait()).await.unwrap_err();
        assert_eq!(err.downcast_ref::<Failed>().unwrap().0, "shard down");
        assert!(
            Arc::ptr_eq(&err, &ctx.cause().unwrap()),
            "wait's error is the ctx's cause"
        );
        assert_eq!(*seen.lock().unwrap(), vec!["shard down"; 3]);
        assert_eq!(request.err(), None, "the parent is untouched");
    })
}

#[test]
fn a_cause_returned_by_a_task_comes_back_as_the_same_arc() {
    smol::block_on(async {
        let (group, ctx) = Group::new(&ctx_smol::background());
        let why: Cause = Arc::new(Failed("bad input"));
        let e = why.clone();
        group.spawn(async move { Err(e) });
        let err = within("wait", group.wait()).await.unwrap_err();
        assert!(Arc::ptr_eq(&err, &why));
        assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    })
}

#[test]
fn only_the_first_error_is_kept() {
    smol::block_on(async {
        let (group, ctx) = Group::new(&ctx_smol::background());
        let c = ctx.clone();
        // Fails only after the group's ctx is done: necessarily second.
        group.spawn(async move {
            c.done().await;
            Err(Failed("second"))
        });
        group.spawn(async { Err(Failed("first")) });
        let err = within("wait", group.wait()).await.unwrap_err();
        assert_eq!(err.to_string(), "first");
        assert_eq!(ctx.cause().unwrap().to_string(), "first");
    })
}

#[test]
fn wait_returns_the_tasks_error_even_when_the_parent_was_canceled_first() {
    smol::block_on(async {
        let (request, cancel) = ctx_smol::background().with_cancel_cause();
        let (group, ctx) = Group::new(&request);
        let c = ctx.clone();
        group.spawn(async move {
            c.done().await;
            Err(Failed("gave up"))
        });
        cancel.cancel(Failed("client left"));
        let err = within("wait", group.wait()).await.unwrap_err();
        assert_eq!(err.to_string(), "gave up");
        assert_eq!(
            ctx.cause().unwrap().to_string(),
            "client left",
            "first cancel wins"
        );
    })
}

#[test]
fn wait_returns_only_after_every_task_has_ended() {
    smol::block_on(async {
        let (group, ctx) = Group::new(&ctx_smol::background());
        let finished = Arc::new(AtomicBool::new(false));
        let (c, flag) = (ctx.clone(), finished.clone());
        group.spawn(async move {
            c.done().await;
            for _ in 0..10 {
                smol::future::yield_now().await; // slow to stop
            }
            flag.store(true, Ordering::SeqCst);
            Ok::<(), Failed>(())
        });
        group.spawn(async { Err(Failed("stop")) });
        assert!(within("wait", group.wait()).await.is_err());
        assert!(
            finished.load(Ordering::SeqCst),
            "wait returned before a task ended"
        );
    })
}

#[test]
fn a_panicking_task_cancels_the_group_and_its_panic_resumes_in_wait() {
    smol::block_on(async {
        let (group, ctx) = Group::new(&ctx_smol::background());
        let sibling_saw = Arc::new(std::sync::Mutex::new(None));
        let (c, saw) = (ctx.clone(), sibling_saw.clone());
        group.spawn(async move {
            c.done().await;
            *saw.lock().unwrap() = Some(c.cause().unwrap().to_string());
            Ok::<(), Failed>(())
        });
        group.spawn(async {
            if true {
                panic!("boom");
            }
            Ok::<(), Failed>(())
        });
        let out = within("wait", AssertUnwindSafe(group.wait()).catch_unwind()).await;
        let payload = out.expect_err("wait did not resume the task's panic");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
        assert_eq!(
            sibling_saw.lock().unwrap().as_deref(),
            Some("a task of the group panicked"),
            "the sibling was not stopped, or wait resumed the panic before it ended"
        );
    })
}

#[test]
fn dropping_the_group_cancels_its_ctx_and_leaves_tasks_running() {
    smol::block_on(async {
        let (group, ctx) = Group::new(&ctx_smol::background());
        let (tx, rx) = futures::channel::oneshot::channel();
        let c = ctx.clone();
        group.spawn(async move {
            let err = c.done().await;
            let _ = tx.send(err);
            Ok::<(), Failed>(())
        });
        drop(group);
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert_eq!(within("the task after the drop", rx).await, Ok(Error::Canceled));
    })
}

#[test]
fn dropping_the_wait_future_cancels_the_ctx_and_leaves_tasks_running() {
    smol::block_on(async {
        let (group, ctx) = Group::new(&ctx_smol::background());
        let (tx, rx) = futures::channel::oneshot::channel();
        group.spawn(until_done(ctx.clone()).map(move |r| {
            let _ = tx.send(());
            r
        }));
        let mut wait = Box::pin(group.wait());
        assert!((&mut wait).now_or_never().is_none());
        drop(wait);
        assert_eq!(ctx.err(), Some(Error::Canceled));
        within("the task after the wait was dropped", rx).await.unwrap();
    })
}

#[test]
fn the_parents_cancel_reaches_the_tasks() {
    smol::block_on(async {
        let (request, cancel) = ctx_smol::background().with_cancel();
        let (group, ctx) = Group::new(&request);
        group.spawn(until_done(ctx.clone()));
        cancel.cancel();
        assert!(within("wait", group.wait()).await.is_ok());
        assert_eq!(ctx.err(), Some(Error::Canceled));
    })
}

#[test]
fn a_limit_caps_the_tasks_running_at_once_and_runs_them_all() {
    smol::block_on(async {
        let (group, _ctx) = Group::with_limit(&ctx_smol::background(), 3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..30 {
            let (running, most, ran) = (running.clone(), most.clone(), ran.clone());
            group.spawn(async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                for _ in 0..5 {
                    smol::future::yield_now().await;
                }
                running.fetch_sub(1, Ordering::SeqCst);
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<(), Failed>(())
            });
        }
        assert!(within("wait", group.wait()).await.is_ok());
        assert_eq!(ran.load(Ordering::SeqCst), 30);
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=3).contains(&most),
            "{most} tasks ran at once with a limit of 3"
        );
    })
}

#[test]
#[should_panic(expected = "no task could ever run")]
fn a_limit_of_zero_panics() {
    let _ = Group::with_limit(&Ctx::background(), 0);
}

#[test]
fn a_long_lived_group_lets_go_of_ended_tasks() {
    smol::block_on(async {
        let (group, _ctx) = Group::new(&ctx_smol::background());
        for _ in 0..50 {
            let (tx, rx) = futures::channel::oneshot::channel();
            group.spawn(async move {
                let _ = tx.send(());
                Ok::<(), Failed>(())
            });
            within("a quick task", rx).await.unwrap();
        }
        // Each spawn reaps the tasks that have ended; at most a few are still being torn down.
        let shown = format!("{group:?}");
        let count: usize = shown
            .split("tasks: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected Debug: {shown}"));
        assert!(count < 50, "the group keeps {count} ended tasks");
        assert!(within("wait", group.wait()).await.is_ok());
    })
}

#[test]
fn a_task_waiting_for_a_slot_still_runs_after_the_group_failed() {
    smol::block_on(async {
        let (group, _ctx) = Group::with_limit(&ctx_smol::background(), 1);
        let ran = Arc::new(AtomicBool::new(false));
        group.spawn(async { Err(Failed("first")) });
        let flag = ran.clone();
        group.spawn(async move {
            flag.store(true, Ordering::SeqCst); // runs whatever the ctx says, as in Go
            Ok::<(), Failed>(())
        });
        assert_eq!(
            within("wait", group.wait()).await.unwrap_err().to_string(),
            "first"
        );
        assert!(ran.load(Ordering::SeqCst), "the queued task never ran");
    })
}
