//! MockClock and conformance suite (skeleton).
