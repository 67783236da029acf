//! A merge of two trees on different clocks: each parent's deadline is judged on its own clock.
//! Reading the merge never ends the other parent early.

use std::time::Duration;

use ctx_core::{Ctx, Error};
use ctx_testkit::MockClock;

#[test]
fn reading_a_merge_does_not_end_a_parent_on_another_clock() {
    let mock = MockClock::new();
    let (b, _hb) = mock.background().with_timeout(Duration::from_millis(100));
    let (b_child, _hbc) = b.with_cancel();
    // The first parent runs on a clock far ahead of the mock's (what 150 ms of real time on
    // the system clock does to a mock that stands still).
    let ahead = MockClock::new();
    ahead.advance_to(mock.now() + Duration::from_millis(150));
    let (sys_child, _hs) = ahead.background().with_cancel();
    let (m, _hm) = sys_child.with_merged(&b);

    assert_eq!(m.err(), None, "b's deadline has not passed on b's clock");
    assert_eq!(b.err(), None, "reading the merge ended its other parent");
    assert_eq!(b_child.err(), None);

    mock.advance(Duration::from_millis(100)); // now it has
    assert_eq!(b.err(), Some(Error::DeadlineExceeded));
    assert_eq!(m.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn a_merge_still_ends_at_the_other_parents_deadline_on_its_clock() {
    let mock = MockClock::new();
    let (b, _hb) = mock.background().with_timeout(Duration::from_millis(100));
    let (m, _hm) = Ctx::background().with_merged(&b);
    let waited = mock.block_on(async { m.done().await });
    assert_eq!(waited, Error::DeadlineExceeded);
    assert_eq!(b.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn one_clock_merges_are_unchanged() {
    let clock = MockClock::new();
    let (a, _ha) = clock.background().with_cancel();
    let (b, _hb) = clock.background().with_timeout(Duration::from_millis(100));
    let (m, _hm) = a.with_merged(&b);
    clock.advance(Duration::from_millis(100));
    assert_eq!(m.err(), Some(Error::DeadlineExceeded));
    assert_eq!(b.err(), Some(Error::DeadlineExceeded));
    assert_eq!(a.err(), None);
}
