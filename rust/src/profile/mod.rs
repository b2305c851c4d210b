//! Mergeable per-column profiles of Arrow data: moments, KLL quantiles, HLL distinct counts,
//! frequent items.

pub mod codec;
pub mod kll;
