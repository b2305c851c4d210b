//! Traversal eight rows to a vector with AVX-512 gathers over 8-byte nodes, for forests of f32
//! splits whose branches all compare one way: scikit-learn's random forests, whose float64
//! thresholds narrow exactly to float32 for float32 inputs (`node::narrow_f32`).
//!
//! The same walk as `wide` (read it first) with two gathers a step instead of three: each node
//! is one 64-bit word (`pack`) holding its split and, where `wide` needs a second gather, its
//! feature, missing flag and false child; and a row's values are 4 bytes instead of 8. So a
//! forest's nodes take half the cache. The false child (the next node when the comparison
//! fails) is stored rather than the true one, so that a leaf can point at itself even as a
//! tree's root: the step is `false child - yes`.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::layout::{Forest, Node, Tree};
use super::node::Split;
use super::wide::{decide, row_offsets, K, STEP};
use crate::plan::isa::Isa;

const FEATURE_BITS: u32 = 15;
const MISSING_BIT: u64 = 1 << 47;
const CHILD_SHIFT: u32 = 48;

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

/// `wide::leaves` for `Forest::packed` (0 rows done when the forest has none).
pub fn leaves<const MODE: u32, const MISSING: bool>(
    forest: &Forest<f32>,
    tree: &Tree,
    x: &[f32],
    width: usize,
    out: &mut [u32],
) -> usize {
    let rows = out.len() / STEP * STEP;
    if rows == 0 || forest.packed.is_empty() {
        return 0;
    }
    let words = &forest.packed[tree.start..][..tree.len];
    assert!(
        Isa::Avx512.supported(),
        "the AVX-512 walk on a CPU without it"
    );
    assert!(x.len() >= out.len() * width);
    // SAFETY: as in `wide::leaves`: the CPU has AVX-512 F/VL/DQ/BW (checked above); node
    // indices only take false-child values, which `pack` keeps inside the tree (a leaf's is
    // itself), and value indices are `row * width + feature` with `row` < `rows` and
    // `feature` < `width`.
    unsafe { leaves_avx512::<MODE, MISSING>(words, tree.depth, x, width, &mut out[..rows]) };
    rows
}

#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,bmi1,bmi2")]
unsafe fn leaves_avx512<const MODE: u32, const MISSING: bool>(
    words: &[u64],
    depth: u32,
    x: &[f32],
    width: usize,
    out: &mut [u32],
) {
    let words = words.as_ptr().cast::<i64>();
    let feature_mask = _mm512_set1_epi64((1 << FEATURE_BITS) - 1);
    let missing_bit = _mm512_set1_epi64(MISSING_BIT as i64);
    let one = _mm512_set1_epi64(1);
    let offsets = row_offsets(width);
    for (block, out) in out.chunks_exact_mut(STEP).enumerate() {
        let xs = x.as_ptr().add(block * STEP * width);
        let mut at = [_mm512_setzero_si512(); K];
        for _ in 0..depth {
            let mut moved: __mmask8 = 0;
            for k in 0..K {
                let word = _mm512_i64gather_epi64::<8>(at[k], words);
                let split = _mm256_castsi256_ps(_mm512_cvtepi64_epi32(word));
                let feature = _mm512_and_si512(_mm512_srli_epi64::<32>(word), feature_mask);
                let value = _mm512_i64gather_ps::<4>(_mm512_add_epi64(offsets[k], feature), xs);
                let yes = decide!(
                    MODE,
                    MISSING,
                    _mm256_cmp_ps_mask,
                    value,
                    split,
                    _mm512_test_epi64_mask(word, missing_bit)
                );
                let false_child = _mm512_srli_epi64::<CHILD_SHIFT>(word);
                let next = _mm512_mask_sub_epi64(false_child, yes, false_child, one);
                moved |= _mm512_cmpneq_epi64_mask(next, at[k]);
                at[k] = next;
            }
            if moved == 0 {
                break;
            }
        }
        // A leaf's slot is the payload of its split's NaN (see `node`).
        let slot_mask = _mm256_set1_epi32(f32::MAX_SLOT as i32);
        for (k, out) in out.chunks_exact_mut(8).enumerate() {
            let word = _mm512_i64gather_epi64::<8>(at[k], words);
            let slots = _mm256_and_si256(_mm512_cvtepi64_epi32(word), slot_mask);
            _mm256_storeu_si256(out.as_mut_ptr().cast::<__m256i>(), slots);
        }
    }
}
