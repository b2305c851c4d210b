//! The bitvector scan tree by tree, for summed weights over 32-bit words with AVX-512
//! (gradient boosting's usual case: `Bitvectors::Narrow` with single-target weights).
//!
//! `Scan::scan` goes feature by feature and ANDs each false branch's mask into its tree's words
//! in memory: 64 rows' words for 200 trees are 51 KB, past the 32 KB L1 of the cores we measured
//! on, and every AND is a load and a store of four vectors. Here a block first notes, for each
//! distinct split, the lanes where it is false (a 64-bit mask, two per split: with and without
//! the NaN lanes), then takes the trees in turn: a tree's words for 64 lanes stay in four
//! registers while its branches AND in their masks, and the tree's leaf weights go straight
//! into the row sums, in tree order as `Sums` adds them, so the sums are bit-identical.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::layout::Split;
use super::scan::{block_lanes, Scan};

/// Rows a block: one bit of a split's lane mask each, 16 to a vector of words.
const LANES: usize = 64;

impl<T: Split> Scan<T, u32> {
    /// `Scan::sum_leaves` over 64-row blocks, tree by tree.
    ///
    /// # Safety
    /// The CPU has AVX-512 F, CD, VL, DQ and BW (`Isa::Avx512`).
    #[target_feature(enable = "avx512f,avx512cd,avx512vl,avx512dq,avx512bw")]
    pub unsafe fn sum_leaves_by_tree<X: Copy + Into<T>>(
        &self,
        x: &[X],
        rows: usize,
        width: usize,
        n_targets: usize,
        scores: &mut [f64],
    ) {
        let weights = self.weights.as_ref().expect("single-target weights");
        assert_eq!(weights.values.len(), self.n_trees * 32);
        assert_eq!(self.tree_bounds.len(), self.n_trees + 1);
        let mut lanes = vec![[T::from_f64(0.0); LANES]; self.features.len()];
        let mut false_lanes = vec![0u64; 2 * self.splits.len()];
        for start in (0..rows).step_by(LANES) {
            let n = LANES.min(rows - start);
            block_lanes(x, start, n, width, &mut lanes);
            for (feature, values) in self.features.iter().zip(&lanes) {
                let nan = (values.iter().enumerate())
                    .fold(0u64, |m, (i, v)| m | u64::from(v.is_nan()) << i);
                // Every split, not only those below the block's largest value as `Scan::scan`
                // does: with 64 rows that skips a few at the top and costs a pass over the lanes.
                let (first, end) = feature.splits;
                let splits = self.splits[first..end].iter();
                let pairs = false_lanes[2 * first..2 * end].chunks_exact_mut(2);
                for (lanes, &(split, _)) in pairs.zip(splits) {
                    // SAFETY: the CPU has AVX-512 F and BW; 64 lanes.
                    let below = unsafe { split.below_lanes(values) };
                    lanes.fill(below);
                }
                if nan != 0 {
                    for lanes in false_lanes[2 * first..2 * end].chunks_exact_mut(2) {
                        lanes[1] |= nan;
                    }
                }
            }
            let at = |lane: usize| (start + lane) * n_targets + weights.target;
            let mut sums = [0.0; LANES];
            for (lane, sum) in sums[..n].iter_mut().enumerate() {
                *sum = scores[at(lane)];
            }
            // SAFETY: 64 f64 are eight vectors.
            let mut vectors: [__m512d; 8] = unsafe { std::mem::transmute(sums) };
            for (tree, table) in weights.values.chunks_exact(32).enumerate() {
                let branches =
                    &self.tree_branches[self.tree_bounds[tree]..self.tree_bounds[tree + 1]];
                // SAFETY: `Scan::new` numbers lane masks below twice the splits, the length
                // of `false_lanes`.
                let words = unsafe { tree_words(branches, &false_lanes) };
                // SAFETY: 32 weights are four vectors.
                let table: [__m512d; 4] =
                    unsafe { std::ptr::read_unaligned(table.as_ptr().cast()) };
                for (k, words) in words.into_iter().enumerate() {
                    let leaves = lowest_bits(words);
                    let (low, high) = (
                        _mm512_cvtepu32_epi64(_mm512_castsi512_si256(leaves)),
                        _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(leaves)),
                    );
                    vectors[2 * k] = _mm512_add_pd(vectors[2 * k], lookup(&table, low));
                    vectors[2 * k + 1] = _mm512_add_pd(vectors[2 * k + 1], lookup(&table, high));
                }
            }
            // SAFETY: eight vectors are 64 f64.
            let sums: [f64; LANES] = unsafe { std::mem::transmute(vectors) };
            for (lane, sum) in sums[..n].iter().enumerate() {
                scores[at(lane)] = *sum;
            }
        }
    }
}

/// Each lane's lowest set bit's index: the row's leaf (a row's own leaf is never cleared, so
/// some bit is set; an empty word would give 31).
#[target_feature(enable = "avx512f,avx512cd")]
#[inline]
fn lowest_bits(words: __m512i) -> __m512i {
    let lowest = _mm512_and_si512(words, _mm512_sub_epi32(_mm512_setzero_si512(), words));
    _mm512_and_si512(
        _mm512_sub_epi32(_mm512_set1_epi32(31), _mm512_lzcnt_epi32(lowest)),
        _mm512_set1_epi32(31),
    )
}

/// `table[leaves]` for eight lanes (indices below 32): two 16-entry permutes, picked by bit 4.
/// Gathers from memory cost several times as much on AMD's Zen 4.
#[target_feature(enable = "avx512f")]
#[inline]
fn lookup(table: &[__m512d; 4], leaves: __m512i) -> __m512d {
    let low = _mm512_permutex2var_pd(table[0], leaves, table[1]);
    let high = _mm512_permutex2var_pd(table[2], leaves, table[3]);
    let upper = _mm512_test_epi64_mask(leaves, _mm512_set1_epi64(16));
    _mm512_mask_blend_pd(upper, low, high)
}

/// `lanes` as four 16-lane masks, lowest lanes first.
#[inline(always)]
fn bytemuck_quarters(lanes: u64) -> [u16; 4] {
    // SAFETY: eight bytes either way; x86-64 is little-endian, so the low quarter comes first.
    unsafe { std::mem::transmute(lanes) }
}

/// One tree's words for 64 lanes, four vectors of 16: all ones, ANDed with each branch's mask
/// at the lanes where it is false.
///
/// # Safety
/// Every branch's lane mask index is below `false_lanes.len()`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tree_words(branches: &[(u32, u32)], false_lanes: &[u64]) -> [__m512i; 4] {
    let mut words = [_mm512_set1_epi32(-1); 4];
    for &(lane_mask, mask) in branches {
        // SAFETY: as the caller promised (the bounds check was a fifth of this loop).
        let lanes = unsafe { *false_lanes.get_unchecked(lane_mask as usize) };
        // A quarter of the lanes at a time, each loaded straight into a mask register (shifting
        // one 64-bit mask took three mask instructions a branch, on a port they share).
        let lanes: [u16; 4] = bytemuck_quarters(lanes);
        let mask = _mm512_set1_epi32(mask as i32);
        for (words, lanes) in words.iter_mut().zip(lanes) {
            *words = _mm512_mask_and_epi32(*words, lanes, *words, mask);
        }
    }
    words
}
