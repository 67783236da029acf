//! Benchmark support code (skeleton).
