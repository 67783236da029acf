//! How many allocations the usual contexts cost, counted by this binary's allocator: a
//! `with_cancel` or a `with_timeout` below a node without an earlier deadline is one node, one
//! allocation (its deadline inline, `Timing::Own`); a deadline with a cause of its own, or one
//! inherited from above, adds its boxed part. A `with_value` is one allocation, its value inline.
//! A first child, or a first waiter, is kept inline in its parent. And each is freed with its
//! last owner (`left_allocated`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ctx_core::Ctx;
use ctx_core::clock::SystemClock;

/// The system allocator, counting allocations.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static FREES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counter is an atomic.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREES.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The allocations `f` makes, with what it returns dropped after counting.
fn allocations<T>(f: impl FnOnce() -> T) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let kept = f();
    let made = ALLOCATIONS.load(Ordering::SeqCst) - before;
    drop(kept);
    made
}

/// How many of the allocations `f` makes it leaves unfreed, once all it returns is dropped.
fn left_allocated<T>(f: impl FnOnce() -> T) -> isize {
    let count = || ALLOCATIONS.load(Ordering::SeqCst) as isize - FREES.load(Ordering::SeqCst) as isize;
    let before = count();
    drop(f());
    count() - before
}

const HOUR: Duration = Duration::from_secs(3600);

// One test: the counter is the whole binary's, and tests run on threads of their own.
#[test]
fn the_usual_contexts_are_one_allocation() {
    let bg = Ctx::background();
    let root = Ctx::background_with_clock(Arc::new(SystemClock::default()));
    let (open, _open_cancel) = root.with_cancel();
    // A first child gives `open` its dependents part, more give its children slab room: made
    // before counting.
    drop((0..4).map(|_| open.with_cancel()).collect::<Vec<_>>());
    let (_first, _first_cancel) = open.with_cancel();
    let soon = Instant::now() + HOUR;

    assert_eq!(allocations(|| bg.with_cancel()), 1, "with_cancel of background()");
    assert_eq!(
        allocations(|| root.with_cancel()),
        1,
        "with_cancel of a clock root"
    );
    assert_eq!(
        allocations(|| bg.with_timeout(HOUR)),
        1,
        "with_timeout of background()"
    );
    assert_eq!(
        allocations(|| root.with_timeout(HOUR)),
        1,
        "with_timeout of a clock root"
    );
    assert_eq!(allocations(|| root.with_deadline(soon)), 1, "with_deadline");
    assert_eq!(
        allocations(|| root.with_timeout_cancel_cause(HOUR)),
        1,
        "with_timeout_cancel_cause (ctx-tower's request ctx)"
    );
    // A value child is one allocation, its value inside its node (`tree/thin.rs`), whatever the
    // value's type.
    assert_eq!(allocations(|| bg.with_value(7u64)), 1, "with_value of a u64");
    assert_eq!(
        allocations(|| open.with_value(String::new())),
        1,
        "with_value of an empty String, below an open parent"
    );
    let valued = root.with_value(1u8).with_value(2u16);
    assert_eq!(
        allocations(|| valued.with_value([0u64; 8])),
        1,
        "with_value of an array below a run of values"
    );
    // Below an open parent, the node and its entry in the parent's children (the slab's own
    // growth, when it grows): as many with a deadline as without.
    assert_eq!(
        allocations(|| open.with_timeout(HOUR)),
        allocations(|| open.with_cancel()),
        "with_timeout of an open parent"
    );

    // A first child is kept inline in its parent (invariant 22 of `tree`): a chain is one
    // allocation a level, canceled or dropped in any order.
    let (lone, lone_cancel) = root.with_cancel();
    assert_eq!(
        allocations(|| lone.with_cancel()),
        1,
        "the first child of an open parent"
    );
    let mut chain = Vec::with_capacity(10);
    assert_eq!(
        allocations(|| {
            chain.push(lone.with_cancel());
            for _ in 0..9 {
                let next = chain.last().expect("a level").0.with_cancel();
                chain.push(next);
            }
            chain
        }),
        10,
        "a chain of 10 below an open parent"
    );
    let chain: Vec<_> = (0..3).fold(vec![lone.with_cancel()], |mut chain, _| {
        let next = chain.last().expect("a level").0.with_cancel();
        chain.push(next);
        chain
    });
    lone_cancel.cancel();
    assert!(
        chain.iter().all(|(ctx, _)| ctx.err().is_some()),
        "the cancel reached every level"
    );

    // A first waiter is kept inline in its node (invariant 23 of `tree`): a context one task
    // waits on allocates nothing more, however many times the wait starts and ends. (The
    // waker here is `Waker::noop()`, whose clone allocates nothing.)
    let (waited, waited_cancel) = bg.with_cancel();
    let cx = &mut std::task::Context::from_waker(std::task::Waker::noop());
    assert_eq!(
        allocations(|| {
            for _ in 0..3 {
                let mut done = waited.done();
                assert!(std::pin::Pin::new(&mut done).poll(cx).is_pending());
            }
            let mut done = waited.done();
            assert!(std::pin::Pin::new(&mut done).poll(cx).is_pending());
            waited_cancel.cancel();
            std::pin::Pin::new(&mut done).poll(cx)
        }),
        0,
        "one task waiting on a context, then its cancel"
    );

    // What still has a boxed part: an inherited deadline, a deadline's own cause.
    let (timed, _timed_cancel) = root.with_timeout(HOUR);
    // The node and its boxed part; `timed` keeps its first child inline.
    assert_eq!(
        allocations(|| timed.with_cancel()),
        2,
        "a child of a deadline node"
    );
    let why: ctx_core::Cause = Arc::new(std::io::Error::other("slow"));
    let with_cause = allocations(|| root.with_timeout_cause(HOUR, why.clone()));
    assert!(with_cause >= 2, "with_timeout_cause: {with_cause}");

    // And every node is freed with its last owner, in any order (a node's counts are ctx-core's
    // own, `tree/arc.rs`: born with both owners, and its parent's `Weak` when it registers).
    let lives: [(&str, &dyn Fn()); 12] = [
        ("with_cancel of background(), canceled", &|| {
            let (ctx, cancel) = bg.with_cancel();
            cancel.cancel();
            drop((cancel, ctx));
        }),
        ("with_timeout, the ctx dropped first", &|| {
            let (ctx, cancel) = root.with_timeout(HOUR);
            drop(ctx);
            drop(cancel);
        }),
        ("a child of an open parent, canceled", &|| {
            let (ctx, cancel) = open.with_cancel();
            cancel.cancel();
            drop((ctx, cancel));
        }),
        ("a child of an open parent, dropped open", &|| {
            let (ctx, cancel) = open.with_cancel();
            drop((cancel, ctx));
        }),
        ("a child of an open parent, its parent's walk ends it", &|| {
            let (parent, parent_cancel) = root.with_cancel();
            let (ctx, cancel) = parent.with_cancel();
            parent_cancel.cancel();
            drop((parent, parent_cancel, cancel));
            assert!(ctx.is_done());
        }),
        ("a chain of 5, canceled at its root", &|| {
            let (top, top_cancel) = root.with_cancel();
            let chain = (0..5).fold(vec![(top, top_cancel)], |mut chain, _| {
                let next = chain.last().expect("a level").0.with_cancel();
                chain.push(next);
                chain
            });
            chain[0].1.cancel();
            drop(chain);
        }),
        // Each level of an uncanceled chain is dropped by its child, which took it over
        // (invariant 24 of `tree`): its slab, with the child's entry, goes with it.
        ("a chain of 5 below background(), dropped uncanceled", &|| {
            let leaf = (0..5).fold(bg.clone(), |leaf, _| {
                let (child, cancel) = leaf.with_cancel();
                cancel.disarm();
                child
            });
            drop(leaf);
        }),
        (
            "a chain of 5 through values, below an open parent, dropped uncanceled",
            &|| {
                let leaf = (0..5).fold(open.clone(), |leaf, i| {
                    let (child, cancel) = leaf.with_value(i).with_cancel();
                    cancel.disarm();
                    child
                });
                drop(leaf);
            },
        ),
        ("a merged context", &|| {
            let (other, _other_cancel) = root.with_cancel();
            let (merged, cancel) = open.with_merged(&other);
            drop((cancel, merged));
        }),
        // (Canceled before its parent: a parent's end would start the period's timer.)
        ("a grace context, canceled", &|| {
            let (parent, parent_cancel) = root.with_cancel();
            let (grace, cancel) = parent.with_grace(HOUR);
            cancel.cancel();
            parent_cancel.cancel();
            drop((grace, cancel, parent, parent_cancel));
        }),
        ("an after-func, run", &|| {
            let (ctx, cancel) = open.with_cancel();
            let _stop = ctx.after_func(|| ());
            cancel.cancel();
        }),
        ("a waited context", &|| {
            let cx = &mut std::task::Context::from_waker(std::task::Waker::noop());
            let (ctx, cancel) = open.with_cancel();
            let mut done = ctx.done();
            assert!(std::pin::Pin::new(&mut done).poll(cx).is_pending());
            drop(ctx);
            cancel.cancel();
            assert!(std::pin::Pin::new(&mut done).poll(cx).is_ready());
        }),
    ];
    for (what, life) in lives {
        assert_eq!(left_allocated(life), 0, "{what}: left allocated");
    }
}
