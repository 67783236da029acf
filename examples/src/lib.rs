//! Shared helpers for the ctx examples (skeleton).
