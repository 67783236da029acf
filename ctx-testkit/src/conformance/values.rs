//! Checks of request-scoped values and `without_cancel`.

use std::time::Duration;

use ctx_core::Error;

use super::Runtime;
use crate::Probe;

#[derive(Debug, PartialEq)]
struct RequestId(u64);

#[derive(Debug, PartialEq)]
struct User(&'static str);

/// `value::<T>()` returns the nearest ancestor's value of type `T`; values of other types do
/// not shadow it; a missing type is `None`; the parent is unchanged by a child's value.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::value_nearest_wins_and_is_keyed_by_type(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn value_nearest_wins_and_is_keyed_by_type<R: Runtime>(rt: &R) {
    let root = rt.background();
    assert_eq!(root.value::<RequestId>(), None);
    let outer = root.with_value(RequestId(1));
    let user = outer.with_value(User("ann"));
    let inner = user.with_value(RequestId(2));
    assert_eq!(
        inner.value::<RequestId>(),
        Some(&RequestId(2)),
        "the nearest value must win"
    );
    assert_eq!(
        inner.value::<User>(),
        Some(&User("ann")),
        "a value of another type shadowed it"
    );
    assert_eq!(
        user.value::<RequestId>(),
        Some(&RequestId(1)),
        "a child's value changed its parent"
    );
    assert_eq!(
        inner.value::<u64>(),
        None,
        "values are keyed by type, not by layout"
    );
    assert_eq!(root.value::<RequestId>(), None);
}

/// Values are seen through every kind of node: cancel, cancel-cause, deadline, timeout and
/// `without_cancel`, and still after the context is done.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::values_pass_through_every_kind_of_node(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn values_pass_through_every_kind_of_node<R: Runtime>(rt: &R) {
    let root = rt.background();
    let base = root.with_value(RequestId(9));
    let (a, cancel) = base.with_cancel();
    let (b, _b) = a.with_cancel_cause();
    let (c, _c) = b.with_timeout(Duration::from_secs(3600));
    let (d, _d) = c.with_deadline(root.now() + Duration::from_secs(7200));
    let e = d.without_cancel();
    let f = e.with_value(User("bob"));
    let (g, _g) = f.with_timeout_cause(
        Duration::from_secs(60),
        std::sync::Arc::new(std::fmt::Error) as ctx_core::Cause,
    );
    for ctx in [&a, &b, &c, &d, &e, &f, &g] {
        assert_eq!(
            ctx.value::<RequestId>(),
            Some(&RequestId(9)),
            "{ctx} lost the value"
        );
    }
    cancel.cancel();
    assert_eq!(d.err(), Some(Error::Canceled));
    assert_eq!(
        d.value::<RequestId>(),
        Some(&RequestId(9)),
        "a done context lost its values"
    );
    assert_eq!(g.value::<User>(), Some(&User("bob")));
}

/// `without_cancel()` keeps the values and drops cancellation: it is not done when its parent
/// is canceled (or when made from a done parent), its `done()` never resolves, its children are
/// born live, and `Display` says `.WithoutCancel`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::without_cancel_keeps_values_and_drops_cancellation(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn without_cancel_keeps_values_and_drops_cancellation<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (parent, cancel) = root.with_value(RequestId(3)).with_cancel();
    let detached = parent.without_cancel();
    let mut done = Probe::new(detached.done());
    done.assert_pending();
    cancel.cancel();
    assert_eq!(parent.err(), Some(Error::Canceled));
    assert_eq!(
        detached.err(),
        None,
        "without_cancel followed its parent's cancel"
    );
    assert!(detached.cause().is_none());
    assert_eq!(detached.value::<RequestId>(), Some(&RequestId(3)));
    done.assert_pending();
    done.assert_woken(0);

    let late = parent.without_cancel();
    assert_eq!(late.err(), None, "without_cancel of a done parent is done");
    let (child, _c) = late.with_cancel();
    assert_eq!(child.err(), None, "a child of without_cancel was born done");
    assert_eq!(child.value::<RequestId>(), Some(&RequestId(3)));
    assert!(
        late.to_string().ends_with(".WithCancel.WithoutCancel"),
        "got {late}"
    );
}
