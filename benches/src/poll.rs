//! Driving futures and bodies by hand, with a no-op waker: what the `tower` bench and its
//! instruction-count example measure, without an executor's cost in the numbers.

use std::future::Future;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use http_body::Body;

/// Polls `fut` to completion with a no-op waker, re-polling at once while it is pending (every
/// future the benches drive finishes within a couple of polls).
///
/// # Examples
///
/// ```
/// assert_eq!(ctx_benches::poll::drive(async { 7 }), 7);
/// ```
pub fn drive<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Reads a body to its end, as a server does (frames are looked at, not kept).
///
/// # Examples
///
/// ```
/// ctx_benches::poll::drain(String::from("ok"));
/// ```
pub fn drain<B: Body + Unpin>(mut body: B) {
    let mut cx = Context::from_waker(Waker::noop());
    while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
        black_box(frame.is_ok());
    }
}
