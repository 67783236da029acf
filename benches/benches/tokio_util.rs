//! The operations `ctx` shares with tokio-util's `CancellationToken`, measured side by side:
//! every group has a `ctx` and a `tokio-util` benchmark doing the same thing, and some a
//! `floor`: the least any design must do for it (the waiters' groups).
//!
//! Wake-ups use a counting waker (no executor), so they cost the cancellation and the wakers,
//! not an executor's scheduling. What a group builds beforehand (chains, wide trees, waiting
//! futures) is built in criterion's untimed setup; what it leaves behind is dropped untimed.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ctx_benches::{FloorNode, Weight, configure, counting_waker};
use ctx_core::{CancelHandle, Ctx, Done};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

const CTX: &str = "ctx";
const TOKIO_UTIL: &str = "tokio-util";
/// What any design must do at least, where a group has such a row.
const FLOOR: &str = "floor";

fn batch(n: usize) -> BatchSize {
    if n >= 100 {
        BatchSize::PerIteration
    } else {
        BatchSize::SmallInput
    }
}

fn single_ops(c: &mut Criterion) {
    let bg = Ctx::background();

    let mut g = c.benchmark_group("vs-tokio-util/new+cancel");
    configure(&mut g, Weight::Light);
    g.bench_function(CTX, |b| {
        b.iter(|| {
            let (ctx, cancel) = black_box(&bg).with_cancel();
            cancel.cancel();
            ctx
        })
    });
    g.bench_function(TOKIO_UTIL, |b| {
        b.iter(|| {
            let token = CancellationToken::new();
            token.cancel();
            token
        })
    });
    g.finish();

    let (parent, _parent_cancel) = bg.with_cancel();
    let parent_token = CancellationToken::new();

    let mut g = c.benchmark_group("vs-tokio-util/child+cancel");
    configure(&mut g, Weight::Light);
    g.bench_function(CTX, |b| {
        b.iter(|| {
            let (ctx, cancel) = black_box(&parent).with_cancel();
            cancel.cancel();
            ctx
        })
    });
    g.bench_function(TOKIO_UTIL, |b| {
        b.iter(|| {
            let token = black_box(&parent_token).child_token();
            token.cancel();
            token
        })
    });
    // The least any design does: the child's node allocated and freed (`AllocFloor`: counted
    // from birth by its two owners, the cancel's swap, each owner's release), and one atomic
    // read-modify-write on the parent to register the child and one to deregister it.
    // (A design whose child holds its parent, as ours and tokio-util's do, adds two more.)
    let parent_word = AtomicUsize::new(0);
    g.bench_function(FLOOR, |b| b.iter(|| child_floor(black_box(&parent_word), true)));
    g.finish();

    let mut g = c.benchmark_group("vs-tokio-util/child-dropped-uncanceled");
    configure(&mut g, Weight::Light);
    g.bench_function(CTX, |b| {
        b.iter(|| {
            let (ctx, cancel) = black_box(&parent).with_cancel();
            cancel.disarm();
            drop(ctx);
        })
    });
    g.bench_function(TOKIO_UTIL, |b| {
        b.iter(|| drop(black_box(&parent_token).child_token()))
    });
    // The least any design does: as child+cancel's floor, without the cancel.
    g.bench_function(FLOOR, |b| b.iter(|| child_floor(black_box(&parent_word), false)));
    g.finish();

    let mut g = c.benchmark_group("vs-tokio-util/is_cancelled-open");
    configure(&mut g, Weight::Light);
    g.bench_function(CTX, |b| b.iter(|| black_box(&parent).is_done()));
    g.bench_function(TOKIO_UTIL, |b| b.iter(|| black_box(&parent_token).is_cancelled()));
    g.finish();

    let (closed, close) = bg.with_cancel();
    close.cancel();
    let closed_token = CancellationToken::new();
    closed_token.cancel();
    let mut g = c.benchmark_group("vs-tokio-util/is_cancelled-canceled");
    configure(&mut g, Weight::Light);
    g.bench_function(CTX, |b| b.iter(|| black_box(&closed).is_done()));
    g.bench_function(TOKIO_UTIL, |b| b.iter(|| black_box(&closed_token).is_cancelled()));
    g.finish();

    // A wait that does not wait: make the future, poll it once, drop it.
    let (waker, _count) = counting_waker();
    let mut g = c.benchmark_group("vs-tokio-util/poll-once-open");
    configure(&mut g, Weight::Light);
    g.bench_function(CTX, |b| {
        b.iter(|| {
            let mut done = black_box(&parent).done();
            Pin::new(&mut done)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        })
    });
    g.bench_function(TOKIO_UTIL, |b| {
        b.iter(|| {
            let fut = black_box(&parent_token).cancelled();
            let mut fut = std::pin::pin!(fut);
            fut.as_mut().poll(&mut Context::from_waker(&waker)).is_pending()
        })
    });
    // The least a `'static` future (`Done`) does: hold the context (a reference count taken
    // and given back), clone the waker and give it back, publish it where a cancel finds it
    // and take it back (one atomic read-modify-write each), nothing else.
    let shared = Arc::new(AtomicUsize::new(0));
    g.bench_function(FLOOR, |b| {
        b.iter(|| {
            let held = Arc::clone(black_box(&shared));
            let w = waker.clone();
            let published = held
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            let retracted = held.swap(0, Ordering::AcqRel) == 1;
            drop(black_box(w));
            drop(held);
            published && retracted
        })
    });
    g.finish();
}

/// The least a child of an open parent costs (the `floor` rows): a node allocated with its two
/// owners (the context's and the handle's) and freed by the last, registered with the parent
/// and deregistered (one atomic read-modify-write each, on the parent's word), canceled if
/// `cancel` (a swap), each owner's release (one each).
fn child_floor(parent: &AtomicUsize, cancel: bool) -> bool {
    let node = FloorNode::born();
    parent.fetch_add(1, Ordering::AcqRel);
    if cancel {
        black_box(&node.state).swap(1, Ordering::AcqRel);
    }
    parent.fetch_sub(1, Ordering::AcqRel);
    let handle_was_last = black_box(&node).release();
    let ctx_was_last = node.release();
    drop(node);
    handle_was_last || ctx_was_last
}

/// A chain of `depth` children below a fresh cancelable root; returns the root's handle and
/// the leaf (which keeps the chain alive).
fn ctx_chain(bg: &Ctx, depth: usize) -> (CancelHandle, Ctx) {
    let (root, cancel) = bg.with_cancel();
    let mut ctx = root;
    for _ in 0..depth {
        let (child, handle) = ctx.with_cancel();
        handle.disarm();
        ctx = child;
    }
    (cancel, ctx)
}

/// The same chain of tokens: all of them are kept (a dropped token leaves the tree).
fn token_chain(depth: usize) -> Vec<CancellationToken> {
    let mut tokens = vec![CancellationToken::new()];
    for i in 0..depth {
        let child = tokens[i].child_token();
        tokens.push(child);
    }
    tokens
}

fn chains(c: &mut Criterion) {
    let bg = Ctx::background();
    for depth in [1usize, 10, 100, 1000] {
        // The cancel alone: the chain is built beforehand.
        let mut g = c.benchmark_group(format!("vs-tokio-util/cancel-chain/depth={depth}"));
        configure(&mut g, Weight::Heavy);
        g.bench_function(CTX, |b| {
            b.iter_batched(
                || ctx_chain(&bg, depth),
                |(cancel, leaf)| {
                    cancel.cancel();
                    (cancel, leaf)
                },
                batch(depth),
            )
        });
        g.bench_function(TOKIO_UTIL, |b| {
            b.iter_batched(
                || token_chain(depth),
                |tokens| {
                    tokens[0].cancel();
                    tokens
                },
                batch(depth),
            )
        });
        g.finish();

        // The whole life: build, cancel, drop.
        let mut g = c.benchmark_group(format!("vs-tokio-util/chain-lifecycle/depth={depth}"));
        configure(&mut g, Weight::Heavy);
        g.bench_function(CTX, |b| {
            b.iter(|| {
                let (cancel, leaf) = ctx_chain(&bg, depth);
                cancel.cancel();
                drop(leaf);
            })
        });
        g.bench_function(TOKIO_UTIL, |b| {
            b.iter(|| {
                let tokens = token_chain(depth);
                tokens[0].cancel();
                drop(tokens);
            })
        });
        g.finish();
    }
}

fn wide(c: &mut Criterion) {
    let bg = Ctx::background();
    for width in [100usize, 10_000] {
        let mut g = c.benchmark_group(format!("vs-tokio-util/cancel-wide/children={width}"));
        configure(&mut g, Weight::Heavy);
        g.bench_function(CTX, |b| {
            b.iter_batched(
                || {
                    let (parent, cancel) = bg.with_cancel();
                    let children: Vec<(Ctx, CancelHandle)> =
                        (0..width).map(|_| parent.with_cancel()).collect();
                    (cancel, children)
                },
                |(cancel, children)| {
                    cancel.cancel();
                    (cancel, children)
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(TOKIO_UTIL, |b| {
            b.iter_batched(
                || {
                    let parent = CancellationToken::new();
                    let children: Vec<CancellationToken> = (0..width).map(|_| parent.child_token()).collect();
                    (parent, children)
                },
                |(parent, children)| {
                    parent.cancel();
                    (parent, children)
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

fn waiters(c: &mut Criterion) {
    let bg = Ctx::background();
    for n in [1usize, 100, 10_000] {
        let mut g = c.benchmark_group(format!("vs-tokio-util/wake-waiters/n={n}"));
        configure(&mut g, Weight::Heavy);
        g.bench_function(CTX, |b| {
            b.iter_batched(
                || {
                    let (ctx, cancel) = bg.with_cancel();
                    let (waker, count) = counting_waker();
                    let mut cx = Context::from_waker(&waker);
                    let futs: Vec<Done> = (0..n)
                        .map(|_| {
                            let mut done = ctx.done();
                            assert!(Pin::new(&mut done).poll(&mut cx).is_pending());
                            done
                        })
                        .collect();
                    (cancel, futs, count)
                },
                |(cancel, futs, count)| {
                    cancel.cancel();
                    debug_assert_eq!(count.woken(), n);
                    (cancel, futs, count)
                },
                batch(n),
            )
        });
        g.bench_function(TOKIO_UTIL, |b| {
            b.iter_batched(
                || {
                    let token = CancellationToken::new();
                    let (waker, count) = counting_waker();
                    let mut cx = Context::from_waker(&waker);
                    let futs: Vec<Pin<Box<WaitForCancellationFutureOwned>>> = (0..n)
                        .map(|_| {
                            let mut fut = Box::pin(token.clone().cancelled_owned());
                            assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
                            fut
                        })
                        .collect();
                    (token, futs, count)
                },
                |(token, futs, count)| {
                    token.cancel();
                    debug_assert_eq!(count.woken(), n);
                    (token, futs, count)
                },
                batch(n),
            )
        });
        // The least any design does: wake each of the `n` waiters' wakers by reference, with
        // no lock, list or node around them (a design that leaves each waker with its future,
        // as an intrusive list can, drops it with the future, outside the cancel).
        g.bench_function(FLOOR, |b| {
            b.iter_batched(
                || {
                    let (waker, count) = counting_waker();
                    let wakers: Vec<Waker> = (0..n).map(|_| waker.clone()).collect();
                    (wakers, count)
                },
                |(wakers, count)| {
                    for w in &wakers {
                        w.wake_by_ref();
                    }
                    debug_assert_eq!(count.woken(), n);
                    (wakers, count)
                },
                batch(n),
            )
        });
        g.finish();
    }
}

criterion_group!(benches, single_ops, chains, wide, waiters);
criterion_main!(benches);
