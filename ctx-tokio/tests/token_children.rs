//! Once `token.cancel()` has returned, a context made by `from_token` *and everything derived
//! from it* is done for whoever asks — not only once ctx-core's watcher thread gets there.

use std::pin::pin;
use std::task::{Context, Poll};

use ctx_tokio::{Ctx, Error};
use futures::task::noop_waker_ref;
use tokio_util::sync::CancellationToken;

#[test]
fn children_and_grandchildren_are_done_when_cancel_returns() {
    for round in 0..200 {
        let token = CancellationToken::new();
        let (ctx, _h) = ctx_tokio::from_token(&Ctx::background(), token.clone());
        let (child, _hc) = ctx.with_cancel();
        let (grandchild, _hg) = child.with_value(round).with_cancel();
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut waiting = pin!(grandchild.done());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());

        token.cancel();
        assert_eq!(
            grandchild.err(),
            Some(Error::Canceled),
            "round {round}: grandchild"
        );
        assert_eq!(child.err(), Some(Error::Canceled), "round {round}: child");
        assert_eq!(ctx.err(), Some(Error::Canceled));
        let mut fresh = pin!(child.done());
        assert_eq!(fresh.as_mut().poll(&mut cx), Poll::Ready(Error::Canceled));
        assert_eq!(waiting.as_mut().poll(&mut cx), Poll::Ready(Error::Canceled));
    }
}

#[test]
fn a_merge_with_a_token_context_is_done_when_cancel_returns() {
    for round in 0..200 {
        let token = CancellationToken::new();
        let (tctx, _h) = ctx_tokio::from_token(&Ctx::background(), token.clone());
        let (other, _ho) = Ctx::background().with_cancel();
        let (m, _hm) = other.with_merged(&tctx);
        token.cancel();
        assert_eq!(m.err(), Some(Error::Canceled), "round {round}");
    }
}
