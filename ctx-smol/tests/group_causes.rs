//! `ctx_smol::Group`: a task may fail with anything a cause can be made of (an error,
//! `anyhow::Error`, a boxed error, `&str`, `String`, a `Cause`), and `spawn_with` hands a task
//! the group's own context. Every wait has a watchdog (`within`).

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ctx_smol::{Cause, Ctx, Error, Group};

const BOUND: Duration = Duration::from_secs(5);

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

fn run<F: Future + Send + 'static>(fut: F) -> F::Output
where
    F::Output: Send + 'static,
{
    smol::block_on(fut)
}

/// A group whose one task fails with `e`: the error `wait` returns, and the group's ctx.
fn fail_with<E>(e: E) -> (Cause, Ctx)
where
    E: Into<Box<dyn StdError + Send + Sync + 'static>> + Send + 'static,
{
    run(async move {
        let (group, ctx) = Group::new(&ctx_smol::background());
        group.spawn(async move { Err(e) });
        let err = within("wait", group.wait()).await.unwrap_err();
        (err, ctx)
    })
}

#[test]
fn a_task_may_return_anyhow_result() {
    let (err, ctx) = run(async {
        let (group, ctx) = Group::new(&ctx_smol::background());
        group.spawn(async {
            let n: u32 = "x".parse().map_err(|e| anyhow::anyhow!("bad shard: {e}"))?;
            anyhow::ensure!(n > 0, "zero");
            Ok(())
        });
        let err = within("wait", group.wait()).await.unwrap_err();
        (err, ctx)
    });
    assert!(err.to_string().starts_with("bad shard"), "{err}");
    assert!(
        Arc::ptr_eq(&ctx.cause().unwrap(), &err),
        "wait's error is the ctx's cause"
    );
}

#[test]
fn messages_and_boxed_errors_are_causes() {
    let (err, _) = fail_with("shard 3 is down");
    assert_eq!(err.to_string(), "shard 3 is down");
    let (err, _) = fail_with(format!("shard {} is down", 4));
    assert_eq!(err.to_string(), "shard 4 is down");
    let boxed: Box<dyn StdError + Send + Sync> = Box::new(std::fmt::Error);
    let (err, _) = fail_with(boxed);
    assert!(err.is::<std::fmt::Error>(), "a boxed error is not wrapped again");
    let (err, _) = fail_with(std::fmt::Error);
    assert!(err.is::<std::fmt::Error>());
}

#[test]
fn a_cause_comes_back_as_the_same_arc_also_from_a_box() {
    let why: Cause = Arc::new(std::fmt::Error);
    let (err, ctx) = fail_with(why.clone());
    assert!(Arc::ptr_eq(&err, &why));
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    let boxed: Box<dyn StdError + Send + Sync> = Box::new(why.clone());
    let (err, _) = fail_with(boxed);
    assert!(Arc::ptr_eq(&err, &why));
}

#[test]
fn spawn_with_hands_each_task_the_groups_context() {
    let (err, saw_group_ctx, ctx) = run(async {
        let (group, ctx) = Group::new(&ctx_smol::background());
        let mine = ctx.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        group.spawn_with(move |task_ctx| async move {
            tx.send(task_ctx == mine).unwrap();
            task_ctx.done().await; // stops when the sibling fails
            Ok::<(), std::fmt::Error>(())
        });
        group.spawn_with(|_| async { Err("the sibling failed") });
        let err = within("wait", group.wait()).await.unwrap_err();
        (err, rx.recv_timeout(BOUND).unwrap(), ctx)
    });
    assert!(saw_group_ctx, "the task's ctx is not the group's");
    assert_eq!(err.to_string(), "the sibling failed");
    assert_eq!(ctx.err(), Some(Error::Canceled));
}
