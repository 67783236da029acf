//! After-funcs fired by a tokio timer under paused time run where tokio can see them (its
//! blocking pool, which holds the auto-advance back): a paused-time test of an after-func is
//! deterministic, not a race between the after-func and tokio's jump to the next timer.

use std::time::Duration;

/// The program, run many times: each run must see `f` before the 120 s timeout.
#[test]
fn an_after_func_runs_at_its_deadline_under_paused_time() {
    for round in 0..40 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let (ctx, _h) = ctx_tokio::background().with_timeout(Duration::from_secs(60));
            let (tx, rx) = tokio::sync::oneshot::channel();
            let _stop = ctx.after_func(move || {
                let _ = tx.send(());
            });
            tokio::time::timeout(Duration::from_secs(120), rx)
                .await
                .unwrap_or_else(|_| panic!("round {round}: paused time jumped past the after-func"))
                .unwrap();
        });
    }
}

/// An after-func that blocks for a while (in real time) still holds paused time back: the
/// timeout around it does not fire first.
#[test]
fn a_slow_after_func_holds_paused_time_back() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (ctx, _h) = ctx_tokio::background().with_timeout(Duration::from_secs(1));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _stop = ctx.after_func(move || {
            std::thread::sleep(Duration::from_millis(50));
            let _ = tx.send(());
        });
        tokio::time::timeout(Duration::from_secs(2), rx)
            .await
            .expect("paused time jumped past a running after-func")
            .unwrap();
    });
}
