//! The conformance suite through its macro, on `MockRuntime` (ctx-core's tests also run it on
//! `SystemRuntime`).

ctx_testkit::conformance_suite!(ctx_testkit::conformance::MockRuntime::new());

#[test]
fn run_all_runs_every_check_on_a_mock() {
    ctx_testkit::conformance::run_all(&ctx_testkit::conformance::MockRuntime::new());
}
