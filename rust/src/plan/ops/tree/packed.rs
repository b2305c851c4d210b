//! The 64-bit node word the float32 walks read (`Forest::packed`: `wide32`, `scalar32`):
//! a node's split, feature, missing flag and false child in one load.
//!
//! The false child (the next node when the comparison fails) is stored rather than the true
//! one, so that a leaf can point at itself even as a tree's root: a step is
//! `false child - yes`, and a leaf's NaN split fails every comparison, so it stays put.

use super::layout::Node;

pub const FEATURE_BITS: u32 = 15;
pub const MISSING_BIT: u64 = 1 << 47;
pub const CHILD_SHIFT: u32 = 48;

/// Node `index` (counted from its tree's root) as one word: split bits (a leaf's NaN slot) in
/// bits 0-31, feature in 32-46, missing flag in 47, false child in 48-63; `None` when the
/// feature or child does not fit.
pub fn pack(node: &Node<f32>, index: usize) -> Option<u64> {
    let (feature, false_child) = if node.is_leaf() {
        (0, index)
    } else {
        (node.feature(), node.left as usize + 1)
    };
    if feature >> FEATURE_BITS != 0 || false_child >> (64 - CHILD_SHIFT) != 0 {
        return None;
    }
    let missing = if node.missing_true() { MISSING_BIT } else { 0 };
    Some(
        u64::from(node.split.to_bits())
            | (feature as u64) << 32
            | missing
            | (false_child as u64) << CHILD_SHIFT,
    )
}
