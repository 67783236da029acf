//! Issue 10, point 2: the runtime edges that once relied on catching tokio's panics (a runtime
//! that shut down, a deadline near `Instant::MAX`) now cause no panic at all. The one test of
//! this binary counts panics with a hook; CI also runs the same edges built with
//! `-C panic=abort` (`cargo run --example abort_edges`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "../examples/abort_edges.rs"]
mod abort_edges;

#[test]
fn runtime_edges_cause_no_panic() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = panics.clone();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
    abort_edges::run();
    let _ = std::panic::take_hook();
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "an edge panicked (caught or not)"
    );
}
