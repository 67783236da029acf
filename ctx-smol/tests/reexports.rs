//! The adapter re-exports ctx-core's public API by name (no glob): each item must be the very
//! same item as ctx-core's, so code can switch between `ctx_core::X` and `ctx_smol::X`. Checked
//! at compile time: a missing or different item fails to build this file.

ctx_testkit::assert_reexports!(ctx_smol);
