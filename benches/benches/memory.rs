//! Bytes and allocations per operation (Go's `-benchmem`), and the footprint of 1,000,000 idle
//! children under one parent, for ctx and for tokio-util's `CancellationToken`.
//!
//! A counting global allocator is installed in this target only. Each operation runs a few
//! times untimed (so one-off growth such as a parent's slab is not charged to it), then
//! 10,000 times counted. Results are printed and, when `CTX_BENCH_OUT` names a file, written
//! there as JSON for `benches/report.py`.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use ctx_benches::{AllocStats, CountingAlloc, counting_waker};
use ctx_core::{CancelHandle, Ctx};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// Counted repetitions of each operation, and idle children for the footprint; `cargo test
/// --benches` (no `--bench` flag) runs a quick smoke version instead.
fn sizes() -> (usize, usize) {
    if std::env::args().any(|a| a == "--bench") {
        (10_000, 1_000_000)
    } else {
        (100, 1_000)
    }
}

struct Row {
    lib: &'static str,
    op: String,
    bytes_per_op: f64,
    allocs_per_op: f64,
}

fn per_op(lib: &'static str, op: impl Into<String>, ops: usize, mut f: impl FnMut()) -> Row {
    for _ in 0..16 {
        f();
    }
    let before = ALLOC.start();
    for _ in 0..ops {
        f();
    }
    let AllocStats { allocs, bytes, .. } = ALLOC.since(before);
    Row {
        lib,
        op: op.into(),
        bytes_per_op: bytes as f64 / ops as f64,
        allocs_per_op: allocs as f64 / ops as f64,
    }
}

fn ctx_rows(rows: &mut Vec<Row>) {
    let (ops, _) = sizes();
    let bg = Ctx::background();
    rows.push(per_op("ctx", "WithCancel+cancel", ops, || {
        let (ctx, cancel) = black_box(&bg).with_cancel();
        cancel.cancel();
        drop(black_box(ctx));
    }));
    let (parent, _parent_cancel) = bg.with_cancel();
    rows.push(per_op("ctx", "ChildOfOpen+cancel", ops, || {
        let (ctx, cancel) = black_box(&parent).with_cancel();
        cancel.cancel();
        drop(black_box(ctx));
    }));
    rows.push(per_op("ctx", "WithTimeout+cancel", ops, || {
        let (ctx, cancel) = black_box(&bg).with_timeout(Duration::from_secs(3600));
        cancel.cancel();
        drop(black_box(ctx));
    }));
    rows.push(per_op("ctx", "WithValue", ops, || {
        drop(black_box(black_box(&bg).with_value(7usize)));
    }));
    rows.push(per_op("ctx", "ErrOpen", ops, || {
        black_box(black_box(&parent).err());
    }));
    let (waker, _count) = counting_waker();
    rows.push(per_op("ctx", "poll-once-open", ops, || {
        let mut done = black_box(&parent).done();
        let _ = Pin::new(&mut done).poll(&mut Context::from_waker(&waker));
    }));
    // A ctx one task waits on: the node, its first waiter kept inline (no dependents part).
    rows.push(per_op("ctx", "WithCancel+wait+cancel", ops, || {
        let (ctx, cancel) = black_box(&bg).with_cancel();
        let mut done = ctx.done();
        let _ = Pin::new(&mut done).poll(&mut Context::from_waker(&waker));
        cancel.cancel();
        drop(black_box((done, ctx)));
    }));
    rows.push(per_op("ctx", "AfterFunc+stop", ops, || {
        let stop = black_box(&parent).after_func(|| {});
        assert!(stop.stop());
    }));
    rows.push(per_op(
        "ctx",
        "CancelTree/depth=1000/Root=OpenCanceler",
        100,
        || {
            let (root, cancel) = bg.with_cancel();
            let mut ctx = root;
            for _ in 0..1000 {
                let (child, handle) = ctx.with_cancel();
                handle.disarm();
                ctx = child;
            }
            cancel.cancel();
            drop(ctx);
        },
    ));
}

fn token_rows(rows: &mut Vec<Row>) {
    let (ops, _) = sizes();
    rows.push(per_op("tokio-util", "WithCancel+cancel", ops, || {
        let token = CancellationToken::new();
        token.cancel();
        drop(black_box(token));
    }));
    let parent = CancellationToken::new();
    rows.push(per_op("tokio-util", "ChildOfOpen+cancel", ops, || {
        let token = black_box(&parent).child_token();
        token.cancel();
        drop(black_box(token));
    }));
    rows.push(per_op("tokio-util", "ErrOpen", ops, || {
        black_box(black_box(&parent).is_cancelled());
    }));
    let (waker, _count) = counting_waker();
    rows.push(per_op("tokio-util", "poll-once-open", ops, || {
        let fut = black_box(&parent).cancelled();
        let mut fut = std::pin::pin!(fut);
        let _ = fut.as_mut().poll(&mut Context::from_waker(&waker));
    }));
    rows.push(per_op("tokio-util", "WithCancel+wait+cancel", ops, || {
        let token = CancellationToken::new();
        {
            let fut = token.cancelled();
            let mut fut = std::pin::pin!(fut);
            let _ = fut.as_mut().poll(&mut Context::from_waker(&waker));
            token.cancel();
        }
        drop(black_box(token));
    }));
    rows.push(per_op(
        "tokio-util",
        "CancelTree/depth=1000/Root=OpenCanceler",
        100,
        || {
            let mut tokens = Vec::with_capacity(1001);
            tokens.push(CancellationToken::new());
            for i in 0..1000 {
                let child = tokens[i].child_token();
                tokens.push(child);
            }
            tokens[0].cancel();
            drop(tokens);
        },
    ));
}

/// Live bytes per idle child: what 1,000,000 children of one open parent keep allocated
/// (nodes, handles' share, the parent's registry), not counting the vector that holds them.
fn footprints() -> Vec<(&'static str, f64, f64)> {
    let (_, idle) = sizes();
    let mut out = Vec::new();
    {
        let (parent, _cancel) = Ctx::background().with_cancel();
        let mut held: Vec<(Ctx, CancelHandle)> = Vec::with_capacity(idle);
        let before = ALLOC.start();
        for _ in 0..idle {
            held.push(parent.with_cancel());
        }
        let d = ALLOC.since(before);
        out.push(("ctx", d.live as f64 / idle as f64, d.allocs as f64 / idle as f64));
        drop(held);
    }
    {
        let parent = CancellationToken::new();
        let mut held: Vec<CancellationToken> = Vec::with_capacity(idle);
        let before = ALLOC.start();
        for _ in 0..idle {
            held.push(parent.child_token());
        }
        let d = ALLOC.since(before);
        out.push((
            "tokio-util",
            d.live as f64 / idle as f64,
            d.allocs as f64 / idle as f64,
        ));
        drop(held);
    }
    out
}

fn json_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn main() {
    // `cargo bench` passes `--bench` and maybe a filter; `--list` must list nothing.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut rows = Vec::new();
    ctx_rows(&mut rows);
    token_rows(&mut rows);
    let feet = footprints();
    let (_, idle) = sizes();

    println!("{:<12} {:<42} {:>10} {:>10}", "lib", "op", "B/op", "allocs/op");
    for r in &rows {
        println!(
            "{:<12} {:<42} {:>10.1} {:>10.2}",
            r.lib, r.op, r.bytes_per_op, r.allocs_per_op
        );
    }
    println!();
    println!("{idle} idle children of one open parent:");
    for (lib, bytes, allocs) in &feet {
        println!("{lib:<12} {bytes:>8.1} B/child {allocs:>6.2} allocs/child");
    }

    if let Ok(path) = std::env::var("CTX_BENCH_OUT") {
        let ops: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"lib\":{},\"op\":{},\"bytes_per_op\":{},\"allocs_per_op\":{}}}",
                    json_str(r.lib),
                    json_str(&r.op),
                    r.bytes_per_op,
                    r.allocs_per_op
                )
            })
            .collect();
        let feet: Vec<String> = feet
            .iter()
            .map(|(lib, bytes, allocs)| {
                format!(
                    "{{\"lib\":{},\"bytes_per_child\":{bytes},\"allocs_per_child\":{allocs}}}",
                    json_str(lib)
                )
            })
            .collect();
        let json = format!(
            "{{\"idle_children\":{idle},\"ops\":[{}],\"footprint\":[{}]}}\n",
            ops.join(","),
            feet.join(",")
        );
        std::fs::write(&path, json).expect("write CTX_BENCH_OUT");
    }
}
