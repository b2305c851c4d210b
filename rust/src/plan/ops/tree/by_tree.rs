//! The bitvector scan tree by tree, for summed weights with AVX-512 (gradient boosting's usual
//! case: `Bitvectors` with single-target weights).
//!
//! `Scan::scan` goes feature by feature and ANDs each false branch's mask into its tree's words
//! in memory: 64 rows' 32-bit words for 200 trees are 51 KB, past the 32 KB L1 of the cores we
//! measured on, and every AND is a load and a store of four vectors. Here a block of 64 rows
//! first notes, for each distinct split, the lanes where it is false (a 64-bit mask, two per
//! split: with and without the NaN lanes), then takes the trees in turn: a tree's words for the
//! 64 lanes stay in registers (four vectors of 32-bit words, eight of 64-bit ones) while its
//! branches AND in their masks, and the tree's leaf weights, looked up from registers, go
//! straight into the row sums, in tree order as `Sums` adds them, so the sums are
//! bit-identical.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::layout::Split;
use super::scan::{block_lanes, Scan, Word};

/// Rows a block: one bit of a split's lane mask each.
const LANES: usize = 64;

/// A word type's part of the scan: one tree over a block's 64 lanes.
pub trait TreeWords: Word {
    /// Add each lane's leaf weight in the tree whose branches are `branches` (lane mask index,
    /// mask) and whose weights are `weights` (`Self::BITS` of them, leaf order) to `sums` (64
    /// lanes, eight to a vector).
    ///
    /// # Safety
    /// The CPU has AVX-512 F and CD; every lane mask index is below `false_lanes.len()`.
    unsafe fn add_tree(
        branches: &[(u32, Self)],
        false_lanes: &[u64],
        weights: &[f64],
        sums: &mut [__m512d; 8],
    );
}

impl<T: Split, W: TreeWords> Scan<T, W> {
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
        assert_eq!(weights.values.len(), self.n_trees * W::BITS);
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
            for (tree, table) in weights.values.chunks_exact(W::BITS).enumerate() {
                let branches =
                    &self.tree_branches[self.tree_bounds[tree]..self.tree_bounds[tree + 1]];
                // SAFETY: the CPU has AVX-512 F and CD; `Scan::new` numbers lane masks below
                // twice the splits, the length of `false_lanes`.
                unsafe { W::add_tree(branches, &false_lanes, table, &mut vectors) };
            }
            // SAFETY: eight vectors are 64 f64.
            let sums: [f64; LANES] = unsafe { std::mem::transmute(vectors) };
            for (lane, sum) in sums[..n].iter().enumerate() {
                scores[at(lane)] = *sum;
            }
        }
    }
}

/// `impl TreeWords` for `$word`: the tree's words for the 64 lanes in `$vectors` vectors, all
/// ones, ANDed with each branch's mask (`$set1` and `$and` for the word size) at the lanes where
/// it is false, then `$add_leaves`.
macro_rules! tree_words {
    ($word:ty, $vectors:expr, $set1:ident, $and:ident, $lanes:ty, $add_leaves:ident) => {
        impl TreeWords for $word {
            #[target_feature(enable = "avx512f,avx512cd")]
            #[inline]
            unsafe fn add_tree(
                branches: &[(u32, $word)],
                false_lanes: &[u64],
                weights: &[f64],
                sums: &mut [__m512d; 8],
            ) {
                let mut words = [$set1(-1); $vectors];
                for &(lane_mask, mask) in branches {
                    // SAFETY: as the caller promised (the bounds check was a fifth of this loop).
                    let lanes = unsafe { *false_lanes.get_unchecked(lane_mask as usize) };
                    // Each vector's lanes loaded straight into a mask register: shifting one
                    // 64-bit mask took three mask instructions a branch, on a port they share.
                    let lanes: $lanes = split_mask(lanes);
                    let mask = $set1(mask as _);
                    for (words, lanes) in words.iter_mut().zip(lanes) {
                        *words = $and(*words, lanes, *words, mask);
                    }
                }
                $add_leaves(words, weights, sums)
            }
        }
    };
}

tree_words!(
    u32,
    4,
    _mm512_set1_epi32,
    _mm512_mask_and_epi32,
    [u16; 4],
    add_leaves32
);
tree_words!(
    u64,
    8,
    _mm512_set1_epi64,
    _mm512_mask_and_epi64,
    [u8; 8],
    add_leaves64
);

/// Each lane's leaf weight from 32-bit `words` (16 lanes to a vector) and the tree's 32
/// `weights`, added to `sums`.
#[target_feature(enable = "avx512f,avx512cd")]
#[inline]
fn add_leaves32(words: [__m512i; 4], weights: &[f64], sums: &mut [__m512d; 8]) {
    assert!(weights.len() >= 32);
    // SAFETY: 32 weights are four vectors.
    let table: [__m512d; 4] = unsafe { std::ptr::read_unaligned(weights.as_ptr().cast()) };
    for (k, words) in words.into_iter().enumerate() {
        // The lowest set bit's index: the row's leaf (a row's own leaf is never cleared).
        let lowest = _mm512_and_si512(words, _mm512_sub_epi32(_mm512_setzero_si512(), words));
        let leaves = _mm512_and_si512(
            _mm512_sub_epi32(_mm512_set1_epi32(31), _mm512_lzcnt_epi32(lowest)),
            _mm512_set1_epi32(31),
        );
        for (half, leaves) in [
            _mm512_cvtepu32_epi64(_mm512_castsi512_si256(leaves)),
            _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(leaves)),
        ]
        .into_iter()
        .enumerate()
        {
            let sum = &mut sums[2 * k + half];
            *sum = _mm512_add_pd(*sum, lookup(&table, leaves));
        }
    }
}

/// Each lane's leaf weight from 64-bit `words` (8 lanes to a vector) and the tree's 64
/// `weights`, added to `sums`.
#[target_feature(enable = "avx512f,avx512cd")]
#[inline]
fn add_leaves64(words: [__m512i; 8], weights: &[f64], sums: &mut [__m512d; 8]) {
    assert!(weights.len() >= 64);
    // SAFETY: 64 weights are eight vectors.
    let table: [__m512d; 8] = unsafe { std::ptr::read_unaligned(weights.as_ptr().cast()) };
    for (words, sum) in words.into_iter().zip(sums) {
        let lowest = _mm512_and_si512(words, _mm512_sub_epi64(_mm512_setzero_si512(), words));
        let leaves = _mm512_and_si512(
            _mm512_sub_epi64(_mm512_set1_epi64(63), _mm512_lzcnt_epi64(lowest)),
            _mm512_set1_epi64(63),
        );
        let low: &[__m512d; 4] = table[..4].try_into().expect("four vectors");
        let high: &[__m512d; 4] = table[4..].try_into().expect("four vectors");
        let upper = _mm512_test_epi64_mask(leaves, _mm512_set1_epi64(32));
        let weight = _mm512_mask_blend_pd(upper, lookup(low, leaves), lookup(high, leaves));
        *sum = _mm512_add_pd(*sum, weight);
    }
}

/// `table[leaves % 32]` for eight lanes: two 16-entry permutes, picked by bit 4. Gathers from
/// memory cost several times as much on AMD's Zen 4.
#[target_feature(enable = "avx512f")]
#[inline]
fn lookup(table: &[__m512d; 4], leaves: __m512i) -> __m512d {
    let low = _mm512_permutex2var_pd(table[0], leaves, table[1]);
    let high = _mm512_permutex2var_pd(table[2], leaves, table[3]);
    let upper = _mm512_test_epi64_mask(leaves, _mm512_set1_epi64(16));
    _mm512_mask_blend_pd(upper, low, high)
}

/// A 64-lane mask as the per-vector masks of its lanes, lowest lanes first (`[u16; 4]` for 16
/// lanes a vector, `[u8; 8]` for 8).
#[inline(always)]
fn split_mask<M: Copy>(lanes: u64) -> M {
    const { assert!(std::mem::size_of::<M>() == 8) };
    // SAFETY: eight bytes either way, and both targets are plain integers; x86-64 is
    // little-endian, so the lowest lanes come first.
    unsafe { std::mem::transmute_copy(&lanes) }
}
