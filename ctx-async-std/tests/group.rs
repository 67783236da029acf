//! Go's errgroup for async-std code: ctx-smol's `Group` (the recipe in this crate's docs),
//! used inside `async_std::task::block_on` with a context of this crate and tasks that await
//! async-std's own timers and channels. Every wait is bounded by `BOUND`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use ctx_async_std::{Ctx, Error};
use ctx_smol::Group;
use ctx_testkit::conformance::BOUND;

#[derive(Debug)]
struct Failed(&'static str);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Failed {}

/// `fut`'s output under `async_std::task::block_on`; fails the test after [`BOUND`].
#[track_caller]
fn within_bound<T>(fut: impl Future<Output = T>) -> T {
    async_std::task::block_on(async_std::future::timeout(BOUND, fut))
        .unwrap_or_else(|_| panic!("the group did not end within {BOUND:?}"))
}

#[test]
fn the_first_error_cancels_the_siblings_and_comes_back_from_wait() {
    let (seen_tx, seen_rx) = async_std::channel::unbounded();
    let out = within_bound(async {
        let (group, ctx) = Group::new(&ctx_async_std::background());
        for _ in 0..3 {
            let (ctx, seen) = (ctx.clone(), seen_tx.clone());
            group.spawn(async move {
                // A sibling on async-std's timer, cut short by the group's context.
                let slept = ctx.run(async_std::task::sleep(Duration::from_secs(3600))).await;
                seen.send(slept).await.unwrap();
                Ok::<(), Failed>(())
            });
        }
        group.spawn(async {
            async_std::task::sleep(Duration::from_millis(5)).await;
            Err(Failed("shard 3 is down"))
        });
        let out = group.wait().await;
        assert_eq!(ctx.err(), Some(Error::Canceled));
        out
    });
    assert_eq!(out.unwrap_err().to_string(), "shard 3 is down");
    for _ in 0..3 {
        assert_eq!(seen_rx.try_recv().unwrap(), Err(Error::Canceled));
    }
}

#[test]
fn the_group_context_keeps_the_deadline_of_an_async_std_root() {
    let (parent, _cancel) = ctx_async_std::background().with_timeout(Duration::from_millis(20));
    let out = within_bound(async {
        let (group, ctx) = Group::new(&parent);
        group.spawn(async move {
            assert_eq!(ctx.done().await, Error::DeadlineExceeded);
            Ok::<(), Failed>(())
        });
        group.wait().await
    });
    assert!(out.is_ok());
}

#[test]
fn all_ok_is_ok_with_a_limit() {
    let out = within_bound(async {
        let (group, ctx): (Group, Ctx) = Group::with_limit(&ctx_async_std::background(), 2);
        for i in 0..6 {
            group.spawn(async move {
                async_std::task::sleep(Duration::from_millis(i)).await;
                Ok::<(), Failed>(())
            });
        }
        let out = group.wait().await;
        assert!(ctx.is_done());
        out
    });
    assert!(out.is_ok());
}
