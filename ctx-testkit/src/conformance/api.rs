//! Checks of names, equality and errors. (The auto traits are pinned at compile time, by
//! `const` items in ctx-core's `tests/auto_traits.rs`.)

use std::time::Duration;

use ctx_core::{Cause, Ctx, Error};

use super::Runtime;

#[derive(Debug)]
struct Marker;

/// `Display` names the chain as Go's `String()` does: `context.Background`, `.WithCancel`
/// (also for `with_cancel_cause`), `.WithDeadline(…)` (also for `with_timeout`),
/// `.WithValue(…)`, `.WithoutCancel`; `Ctx::todo()` is `context.TODO`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::display_names_the_chain(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn display_names_the_chain<R: Runtime>(rt: &R) {
    let root = rt.background();
    assert_eq!(root.to_string(), "context.Background");
    assert_eq!(Ctx::todo().to_string(), "context.TODO");
    let (a, _a) = root.with_cancel();
    assert_eq!(a.to_string(), "context.Background.WithCancel");
    let (b, _b) = root.with_cancel_cause();
    assert_eq!(b.to_string(), "context.Background.WithCancel");
    let (c, _c) = root.with_timeout(Duration::from_secs(60));
    let (d, _d) = root.with_deadline(root.now() + Duration::from_secs(60));
    let (e, _e) = root.with_timeout_cause(
        Duration::from_secs(60),
        std::sync::Arc::new(std::fmt::Error) as Cause,
    );
    for ctx in [&c, &d, &e] {
        let s = ctx.to_string();
        assert!(
            s.starts_with("context.Background.WithDeadline(") && s.ends_with(')'),
            "got {s}"
        );
    }
    let v = root.with_value(Marker);
    let s = v.to_string();
    assert!(
        s.starts_with("context.Background.WithValue(") && s.ends_with(')'),
        "got {s}"
    );
    assert!(s.contains("Marker"), "the value's type is not named: {s}");
    assert_eq!(
        a.without_cancel().to_string(),
        "context.Background.WithCancel.WithoutCancel"
    );
    let (chain, _x) = v.with_cancel();
    let s = chain.without_cancel().to_string();
    assert!(
        s.starts_with("context.Background.WithValue(") && s.ends_with(").WithCancel.WithoutCancel"),
        "got {s}"
    );
}

/// `PartialEq` means the same context: clones are equal; parent and child, siblings, and two
/// children with equal values are not. (Whether two roots are equal is left open: in Go,
/// `Background()` is one value.)
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::partial_eq_means_same_context(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn partial_eq_means_same_context<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (a, _a) = root.with_cancel();
    let (b, _b) = root.with_cancel();
    assert_eq!(a, a.clone());
    assert_eq!(root, root.clone());
    assert_ne!(a, b, "siblings compare equal");
    assert_ne!(a, root, "child and parent compare equal");
    assert_ne!(
        root.with_value(1u8),
        root.with_value(1u8),
        "equality must not compare values"
    );
}

/// `Error` has Go's `Display` strings, `is_timeout()` only for `DeadlineExceeded`, and is a
/// `Copy + Eq + std::error::Error` value.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::error_display_and_is_timeout(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn error_display_and_is_timeout<R: Runtime>(_rt: &R) {
    assert_eq!(Error::Canceled.to_string(), "context canceled");
    assert_eq!(Error::DeadlineExceeded.to_string(), "context deadline exceeded");
    assert!(Error::DeadlineExceeded.is_timeout());
    assert!(!Error::Canceled.is_timeout());
    let e = Error::Canceled;
    let copy = e;
    assert_eq!(e, copy);
    assert_ne!(Error::Canceled, Error::DeadlineExceeded);
    let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(Error::DeadlineExceeded);
    assert_eq!(boxed.to_string(), "context deadline exceeded");
    match e {
        Error::Canceled | Error::DeadlineExceeded => {} // exhaustive: exactly two variants
    }
}
