//! `Ctx::run` never starts a future on a done context, and never throws away an output the
//! future has produced: after the first poll, the future is polled first.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context as TaskContext, Poll};

use ctx_core::{Ctx, Error};
use futures::task::noop_waker_ref;

/// Pending on its first poll, ready with `42` on every later one: a future whose work finished
/// between two polls (a row written, a message taken).
#[derive(Default)]
struct ReadySecondTime {
    polls: u32,
}

impl Future for ReadySecondTime {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<u32> {
        self.polls += 1;
        if self.polls == 1 {
            Poll::Pending
        } else {
            Poll::Ready(42)
        }
    }
}

#[test]
fn an_output_ready_on_the_same_wake_as_the_cancel_is_returned() {
    let mut cx = TaskContext::from_waker(noop_waker_ref());
    let (ctx, cancel) = Ctx::background().with_cancel();
    let mut run = pin!(ctx.run(ReadySecondTime::default()));
    assert!(run.as_mut().poll(&mut cx).is_pending());
    cancel.cancel(); // the context ends while the future's work completes
    assert_eq!(run.as_mut().poll(&mut cx), Poll::Ready(Ok(42)));
}

#[test]
fn a_pending_future_still_ends_with_the_context() {
    let mut cx = TaskContext::from_waker(noop_waker_ref());
    let (ctx, cancel) = Ctx::background().with_cancel();
    let mut run = pin!(ctx.run(std::future::pending::<()>()));
    assert!(run.as_mut().poll(&mut cx).is_pending());
    cancel.cancel();
    assert_eq!(run.as_mut().poll(&mut cx), Poll::Ready(Err(Error::Canceled)));
}

#[test]
fn a_done_context_never_starts_the_future() {
    let mut cx = TaskContext::from_waker(noop_waker_ref());
    let (ctx, cancel) = Ctx::background().with_cancel();
    cancel.cancel();
    let mut polled = false;
    let mut run = pin!(ctx.run(std::future::poll_fn(|_| {
        polled = true;
        Poll::Ready(())
    })));
    assert_eq!(run.as_mut().poll(&mut cx), Poll::Ready(Err(Error::Canceled)));
    assert!(!polled, "a done context started the future");
}
