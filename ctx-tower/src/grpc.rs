//! Feature `tonic`: a done ctx as a `tonic::Status`, for handlers ([`grpc_status`]) and for
//! tonic clients behind [`ClientLayer`](crate::ClientLayer) (the `Status` that
//! [`ClientError::Done`](crate::ClientError::Done) carries as its source).

use std::sync::LazyLock;

use ctx_core::{Ctx, Error};
use tonic::{Code, Status};

use crate::grpc_code;

/// The gRPC status for the reason a request's ctx ended: its deadline passed →
/// `DEADLINE_EXCEEDED`; canceled (its client went away, the server shuts down, the handler's
/// own cancel) → `CANCELLED`; not done → `OK`. The message is the ctx's error, followed by
/// its cause when it has one of its own (`context canceled: client disconnected`).
///
/// The same codes a tonic client behind [`ClientLayer`](crate::ClientLayer) sees when its
/// own ctx ends first, so a caller reads `DEADLINE_EXCEEDED` whichever side noticed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let (ctx, _cancel) = ctx_core::Ctx::background().with_timeout(Duration::ZERO);
/// let status = ctx_tower::grpc_status(&ctx);
/// assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
/// assert_eq!(status.message(), "context deadline exceeded");
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub fn grpc_status(ctx: &Ctx) -> Status {
    let Some(err) = ctx.err() else {
        return Status::ok("");
    };
    let code = Code::from(grpc_code(err));
    match ctx.cause() {
        Some(cause) if !cause.is::<Error>() => Status::new(code, format!("{err}: {cause}")),
        _ => Status::new(code, err.to_string()),
    }
}

/// The `Status` a [`ClientError::Done`](crate::ClientError::Done) gives as its source: tonic
/// looks for one down the source chain of a service's error, and uses its code instead of
/// `UNKNOWN`. One per error, made once.
pub(crate) fn status_of(err: Error) -> &'static Status {
    static DEADLINE_EXCEEDED: LazyLock<Status> =
        LazyLock::new(|| Status::deadline_exceeded(Error::DeadlineExceeded.to_string()));
    static CANCELED: LazyLock<Status> = LazyLock::new(|| Status::cancelled(Error::Canceled.to_string()));
    match err {
        Error::DeadlineExceeded => &DEADLINE_EXCEEDED,
        Error::Canceled => &CANCELED,
    }
}
