//! ctx on smol (skeleton; filled in by its own issue).

#[doc(inline)]
pub use ctx_core::*;
