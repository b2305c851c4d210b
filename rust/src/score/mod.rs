//! Turning Arrow batches into model inputs, with row-level validation.

pub mod inputs;
pub mod verdicts;
