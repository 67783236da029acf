//! Group checks: what a failing (or panicking) task does to the group, and what `wait` returns.

use std::error::Error as StdError;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use ::futures::FutureExt;
use ctx_core::{Cause, Ctx};

use super::{Failed, GroupRuntime, within};

/// The first task to fail cancels the group's context with its error as the cause; every
/// sibling sees that cause, `wait` returns the same `Arc`, and the parent is untouched.
pub fn the_first_error_cancels_the_siblings_with_itself_as_cause<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let request = rt.background();
        let (group, ctx) = rt.group(&request);
        let seen = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..3 {
            let (ctx, seen) = (ctx.clone(), seen.clone());
            rt.spawn(&group, async move {
                ctx.done().await;
                seen.lock().unwrap().push(ctx.cause().unwrap().to_string());
                Ok::<(), Failed>(())
            });
        }
        rt.spawn(&group, async { Err(Failed("shard down")) });
        let err = within("wait", rt.wait(group)).await.unwrap_err();
        assert_eq!(err.downcast_ref::<Failed>().unwrap().0, "shard down");
        assert!(
            Arc::ptr_eq(&err, &ctx.cause().unwrap()),
            "wait's error is the ctx's cause"
        );
        assert_eq!(*seen.lock().unwrap(), vec!["shard down"; 3]);
        assert_eq!(request.err(), None, "the parent is untouched");
    })
}

/// A task that fails with a `Cause` gives that same `Arc` to `wait` and to the context.
pub fn a_cause_returned_by_a_task_comes_back_as_the_same_arc<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, ctx) = rt.group(&rt.background());
        let why: Cause = Arc::new(Failed("bad input"));
        let e = why.clone();
        rt.spawn(&group, async move { Err(e) });
        let err = within("wait", rt.wait(group)).await.unwrap_err();
        assert!(Arc::ptr_eq(&err, &why));
        assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    })
}

/// A second error (one that can only come after the first) changes neither `wait`'s error
/// nor the context's cause.
pub fn only_the_first_error_is_kept<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, ctx) = rt.group(&rt.background());
        let c = ctx.clone();
        // Fails only after the group's ctx is done: necessarily second.
        rt.spawn(&group, async move {
            c.done().await;
            Err(Failed("second"))
        });
        rt.spawn(&group, async { Err(Failed("first")) });
        let err = within("wait", rt.wait(group)).await.unwrap_err();
        assert_eq!(err.to_string(), "first");
        assert_eq!(ctx.cause().unwrap().to_string(), "first");
    })
}

/// When the parent is canceled first, the context keeps the parent's cause, but `wait` still
/// returns the error of the task.
pub fn wait_returns_the_tasks_error_even_when_the_parent_was_canceled_first<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (request, cancel) = rt.background().with_cancel_cause();
        let (group, ctx) = rt.group(&request);
        let c = ctx.clone();
        rt.spawn(&group, async move {
            c.done().await;
            Err(Failed("gave up"))
        });
        cancel.cancel(Failed("client left"));
        let err = within("wait", rt.wait(group)).await.unwrap_err();
        assert_eq!(err.to_string(), "gave up");
        assert_eq!(
            ctx.cause().unwrap().to_string(),
            "client left",
            "first cancel wins"
        );
    })
}

/// A task's panic cancels the group's context (the siblings stop), and `wait` resumes it once
/// every task has ended.
pub fn a_panicking_task_cancels_the_group_and_its_panic_resumes_in_wait<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, ctx) = rt.group(&rt.background());
        let sibling_saw = Arc::new(Mutex::new(None));
        let (c, saw) = (ctx.clone(), sibling_saw.clone());
        rt.spawn(&group, async move {
            c.done().await;
            *saw.lock().unwrap() = Some(c.cause().unwrap().to_string());
            Ok::<(), Failed>(())
        });
        rt.spawn(&group, async {
            if true {
                panic!("boom");
            }
            Ok::<(), Failed>(())
        });
        let out = within("wait", AssertUnwindSafe(rt.wait(group)).catch_unwind()).await;
        let payload = out.expect_err("wait did not resume the task's panic");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
        assert_eq!(
            sibling_saw.lock().unwrap().as_deref(),
            Some("a task of the group panicked"),
            "the sibling was not stopped, or wait resumed the panic before it ended"
        );
    })
}

/// A task may be written with `anyhow` and `?`; its error is `wait`'s and the context's cause.
pub fn a_task_may_return_anyhow_result<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (group, ctx) = rt.group(&rt.background());
        rt.spawn(&group, async {
            let n: u32 = "x".parse().map_err(|e| anyhow::anyhow!("bad shard: {e}"))?;
            anyhow::ensure!(n > 0, "zero");
            Ok(())
        });
        let err = within("wait", rt.wait(group)).await.unwrap_err();
        assert!(err.to_string().starts_with("bad shard"), "{err}");
        assert!(
            Arc::ptr_eq(&ctx.cause().unwrap(), &err),
            "wait's error is the ctx's cause"
        );
    })
}

/// The error `wait` returns for a group whose one task fails with `e`, and the group's ctx.
async fn fail_with<R, E>(rt: &R, e: E) -> (Cause, Ctx)
where
    R: GroupRuntime,
    E: Into<Box<dyn StdError + Send + Sync + 'static>> + Send + 'static,
{
    let (group, ctx) = rt.group(&rt.background());
    rt.spawn(&group, async move { Err(e) });
    let err = within("wait", rt.wait(group)).await.unwrap_err();
    (err, ctx)
}

/// A task may fail with a `&str`, a `String`, a boxed error or an error: each becomes the
/// cause, and a boxed error is not wrapped again.
pub fn messages_and_boxed_errors_are_causes<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let (err, _) = fail_with(rt, "shard 3 is down").await;
        assert_eq!(err.to_string(), "shard 3 is down");
        let (err, _) = fail_with(rt, format!("shard {} is down", 4)).await;
        assert_eq!(err.to_string(), "shard 4 is down");
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(std::fmt::Error);
        let (err, _) = fail_with(rt, boxed).await;
        assert!(err.is::<std::fmt::Error>(), "a boxed error is not wrapped again");
        let (err, _) = fail_with(rt, std::fmt::Error).await;
        assert!(err.is::<std::fmt::Error>());
    })
}

/// A `Cause` comes back as the same `Arc`, also when the task boxed it.
pub fn a_cause_comes_back_as_the_same_arc_also_from_a_box<R: GroupRuntime>(rt: &R) {
    rt.block_on(async {
        let why: Cause = Arc::new(std::fmt::Error);
        let (err, ctx) = fail_with(rt, why.clone()).await;
        assert!(Arc::ptr_eq(&err, &why));
        assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(why.clone());
        let (err, _) = fail_with(rt, boxed).await;
        assert!(Arc::ptr_eq(&err, &why));
    })
}
