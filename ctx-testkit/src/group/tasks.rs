//! Group checks: when `wait` returns and the context is canceled, what dropping the group or
//! its `wait` does, limits, and how long the group keeps its tasks.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ::futures::FutureExt;
use ::futures::channel::oneshot;
use ctx_core::{Ctx, Error};

use super::{Failed, GroupRuntime, until_done, within, yield_now};
use crate::conformance::BOUND;

/// When every task returns `Ok`, `wait` is `Ok` after all of them ran, and the group's context
/// is canceled (plain `Canceled`) only then.
pub fn all_tasks_ok_is_ok_and_the_ctx_is_canceled_when_wait_returns<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, ctx) = rt.group(&rt.background());
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let ran = ran.clone();
            rt.spawn(&group, async move {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<(), Failed>(())
            });
        }
        assert_eq!(ctx.err(), None);
        assert!(within("wait", rt.wait(group)).await.is_ok());
        assert_eq!(ran.load(Ordering::SeqCst), 10);
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert_eq!(
            ctx.cause().unwrap().downcast_ref::<Error>(),
            Some(&Error::Canceled)
        );
    })
}

/// `wait` returns only after a task that is slow to stop has ended.
pub fn wait_returns_only_after_every_task_has_ended<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, ctx) = rt.group(&rt.background());
        let finished = Arc::new(AtomicBool::new(false));
        let (c, flag) = (ctx.clone(), finished.clone());
        rt.spawn(&group, async move {
            c.done().await;
            for _ in 0..10 {
                yield_now().await; // slow to stop
            }
            flag.store(true, Ordering::SeqCst);
            Ok::<(), Failed>(())
        });
        rt.spawn(&group, async { Err(Failed("stop")) });
        assert!(within("wait", rt.wait(group)).await.is_err());
        assert!(
            finished.load(Ordering::SeqCst),
            "wait returned before a task ended"
        );
    })
}

/// Dropping the group cancels its context at once; its tasks are not aborted.
pub fn dropping_the_group_cancels_its_ctx_and_leaves_tasks_running<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, ctx) = rt.group(&rt.background());
        let (tx, rx) = oneshot::channel();
        let c = ctx.clone();
        rt.spawn(&group, async move {
            let err = c.done().await;
            let _ = tx.send(err);
            Ok::<(), Failed>(())
        });
        drop(group);
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert_eq!(within("the task after the drop", rx).await, Ok(Error::Canceled));
    })
}

/// Dropping a pending `wait` future cancels the context; the tasks run on and see it.
pub fn dropping_the_wait_future_cancels_the_ctx_and_leaves_tasks_running<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, ctx) = rt.group(&rt.background());
        let (tx, rx) = oneshot::channel();
        rt.spawn(
            &group,
            until_done(ctx.clone()).map(move |r| {
                let _ = tx.send(());
                r
            }),
        );
        let mut wait = Box::pin(rt.wait(group));
        assert!((&mut wait).now_or_never().is_none());
        drop(wait);
        assert_eq!(ctx.err(), Some(Error::Canceled));
        within("the task after the wait was dropped", rx).await.unwrap();
    })
}

/// Canceling the group's parent reaches its tasks; `wait` is then `Ok` (no task failed).
pub fn the_parents_cancel_reaches_the_tasks<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (request, cancel) = rt.background().with_cancel();
        let (group, ctx) = rt.group(&request);
        rt.spawn(&group, until_done(ctx.clone()));
        cancel.cancel();
        assert!(within("wait", rt.wait(group)).await.is_ok());
        assert_eq!(ctx.err(), Some(Error::Canceled));
    })
}

/// `spawn_with` hands each task the group's own context; a sibling's error cancels it.
pub fn spawn_with_hands_each_task_the_groups_context<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, ctx) = rt.group(&rt.background());
        let mine = ctx.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn_with(&group, move |task_ctx| async move {
            tx.send(task_ctx == mine).unwrap();
            task_ctx.done().await; // stops when the sibling fails
            Ok::<(), std::fmt::Error>(())
        });
        rt.spawn_with(&group, |_| async { Err("the sibling failed") });
        let err = within("wait", rt.wait(group)).await.unwrap_err();
        let saw_group_ctx = rx.recv_timeout(BOUND).unwrap();
        assert!(saw_group_ctx, "the task's ctx is not the group's");
        assert_eq!(err.to_string(), "the sibling failed");
        assert_eq!(ctx.err(), Some(Error::Canceled));
    })
}

/// With a limit of 3, no more than 3 of 30 tasks run at once, and all 30 run.
pub fn a_limit_caps_the_tasks_running_at_once_and_runs_them_all<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, _ctx) = rt.group_with_limit(&rt.background(), 3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..30 {
            let (running, most, ran) = (running.clone(), most.clone(), ran.clone());
            rt.spawn(&group, async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                for _ in 0..5 {
                    yield_now().await;
                }
                running.fetch_sub(1, Ordering::SeqCst);
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<(), Failed>(())
            });
        }
        assert!(within("wait", rt.wait(group)).await.is_ok());
        assert_eq!(ran.load(Ordering::SeqCst), 30);
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=3).contains(&most),
            "{most} tasks ran at once with a limit of 3"
        );
    })
}

/// A limit of 0 panics at once (no task could ever run), outside any executor.
pub fn a_limit_of_zero_panics<R: GroupRuntime>(rt: &R) {
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| rt.group_with_limit(&Ctx::background(), 0)));
    let payload = out.expect_err("Group::with_limit(.., 0) did not panic");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("<not a string>");
    assert!(
        message.contains("no task could ever run"),
        "unexpected panic message: {message}"
    );
}

/// A group that lives on while its tasks come and go does not keep the ended ones (its
/// `Debug` counts the tasks it keeps).
pub fn a_long_lived_group_lets_go_of_ended_tasks<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, _ctx) = rt.group(&rt.background());
        for _ in 0..50 {
            let (tx, rx) = oneshot::channel();
            rt.spawn(&group, async move {
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
        assert!(within("wait", rt.wait(group)).await.is_ok());
    })
}

/// A task queued behind a limit still runs after the group failed, as in Go.
pub fn a_task_waiting_for_a_slot_still_runs_after_the_group_failed<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, _ctx) = rt.group_with_limit(&rt.background(), 1);
        let ran = Arc::new(AtomicBool::new(false));
        rt.spawn(&group, async { Err(Failed("first")) });
        let flag = ran.clone();
        rt.spawn(&group, async move {
            flag.store(true, Ordering::SeqCst); // runs whatever the ctx says, as in Go
            Ok::<(), Failed>(())
        });
        assert_eq!(
            within("wait", rt.wait(group)).await.unwrap_err().to_string(),
            "first"
        );
        assert!(ran.load(Ordering::SeqCst), "the queued task never ran");
    })
}
