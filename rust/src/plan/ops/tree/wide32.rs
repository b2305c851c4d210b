//! Traversal eight rows to a vector with AVX-512 gathers over 8-byte nodes, for forests of f32
//! splits whose branches all compare one way: scikit-learn's random forests, whose float64
//! thresholds narrow exactly to float32 for float32 inputs (`node::narrow_f32`).
//!
//! The same walk as `wide` (read it first) with two gathers a step instead of three: each node
//! is one 64-bit word (`packed`) holding its split and, where `wide` needs a second gather, its
//! feature, missing flag and false child; and a row's values are 4 bytes instead of 8. So a
//! forest's nodes take half the cache.
//!
//! Two additions over `wide`. The first `TOP_STEPS` steps read nodes among the tree's first 32
//! words, which every row visits: they are held in four registers and picked with permutes
//! instead of gathered. And for random forests (`sums`), the walk ends by adding each row's
//! leaf weights into the tile's scores itself, eight rows to a gather from the compact
//! per-slot table, instead of storing slots for `aggregate` to look up one row at a time: that
//! second pass, with its dependent loads into a table that outgrows L1, cost as much as the
//! walk.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::layout::{Columns, Forest, Tree, BREADTH_FIRST_LEVELS};
use super::node::Split;
use super::packed::{CHILD_SHIFT, FEATURE_BITS, MISSING_BIT};
use super::wide::{decide, row_offsets, K, STEP};
use crate::plan::isa::Isa;

/// `wide::leaves` for `Forest::packed` (0 rows done when the forest has none).
pub fn leaves<const MODE: u32, const MISSING: bool>(
    forest: &Forest<f32>,
    tree: &Tree,
    x: &[f32],
    width: usize,
    out: &mut [u32],
) -> usize {
    let rows = out.len() / STEP * STEP;
    let Some(words) = tree_words(forest, tree, x, width, rows) else {
        return 0;
    };
    // SAFETY: see `tree_words`; slots go to `out[..rows]`.
    unsafe {
        walk_avx512::<MODE, MISSING, SLOTS>(
            words,
            tree.depth,
            x,
            width,
            rows,
            Sink {
                slots: out.as_mut_ptr(),
                weights: std::ptr::null(),
                scores: std::ptr::null_mut(),
                first: 0,
            },
        )
    };
    rows
}

/// The walk of `leaves` that adds each row's leaf weights straight into `scores` (row-major,
/// `columns.n_targets` a row, one or two) rather than handing over slots: the weights arrive
/// eight rows to a gather while the leaf's word is still in a register, and no slot is
/// stored and loaded back. Each row's score takes the tree's weight with the same `+=` as
/// `aggregate`'s loops, so sums stay bit-identical. Returns the rows done, a multiple of 64
/// (0 when the forest or its weights do not fit this walk).
pub fn sums<const MODE: u32, const MISSING: bool>(
    forest: &Forest<f32>,
    tree: usize,
    x: &[f32],
    width: usize,
    columns: Columns,
    scores: &mut [f64],
) -> usize {
    let tree = &forest.trees[tree];
    let Columns {
        per_slot,
        first,
        n_targets,
    } = columns;
    let leaves = &forest.leaves;
    if !leaves.fused_fit(columns) {
        return 0;
    }
    let rows = scores.len() / n_targets / STEP * STEP;
    let Some(words) = tree_words(forest, tree, x, width, rows) else {
        return 0;
    };
    let sink = Sink {
        slots: std::ptr::null_mut(),
        weights: leaves.values.as_ptr(),
        scores: scores.as_mut_ptr(),
        first,
    };
    // SAFETY: see `tree_words`; every leaf's slot is below `leaves.slots()` (`Split::pack` checks),
    // so its weights lie inside `values` (`fused_fit`), and scores are written for rows
    // below `rows`, inside `scores`.
    unsafe {
        match (n_targets, per_slot) {
            (1, _) => walk_avx512::<MODE, MISSING, ONE>(words, tree.depth, x, width, rows, sink),
            (_, 2) => walk_avx512::<MODE, MISSING, PAIR>(words, tree.depth, x, width, rows, sink),
            _ => walk_avx512::<MODE, MISSING, HALF>(words, tree.depth, x, width, rows, sink),
        }
    };
    rows
}

/// The tree's packed words, when the walk can take `rows` (> 0) rows of `x`; checks the
/// CPU and the input's length.
fn tree_words<'a>(
    forest: &'a Forest<f32>,
    tree: &Tree,
    x: &[f32],
    width: usize,
    rows: usize,
) -> Option<&'a [u64]> {
    if rows == 0 || forest.packed.is_empty() {
        return None;
    }
    assert!(
        Isa::Avx512.supported(),
        "the AVX-512 walk on a CPU without it"
    );
    assert!(x.len() >= rows * width);
    // The walk is sound with these words: node indices only take false-child values, which
    // `packed::pack` keeps inside the tree (a leaf's is itself), and value indices are
    // `row * width + feature` with `row` < `rows` and `feature` < `width`.
    Some(&forest.packed[tree.start..][..tree.len])
}

/// What the walk does with each row's leaf (`SLOTS`, `ONE`, `PAIR`, `HALF`).
#[derive(Clone, Copy)]
struct Sink {
    slots: *mut u32,
    weights: *const f64,
    scores: *mut f64,
    /// `HALF`: the target the weights add to.
    first: usize,
}

/// Store the leaf's slot.
const SLOTS: u32 = 0;
/// Add its weight to the row's one score.
const ONE: u32 = 1;
/// Add its two weights to the row's two scores.
const PAIR: u32 = 2;
/// Add its weight to score `first` of the row's two.
const HALF: u32 = 3;

#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,bmi1,bmi2")]
unsafe fn walk_avx512<const MODE: u32, const MISSING: bool, const SINK: u32>(
    words: &[u64],
    depth: u32,
    x: &[f32],
    width: usize,
    rows: usize,
    sink: Sink,
) {
    let len = words.len();
    let words = words.as_ptr().cast::<i64>();
    let feature_mask = _mm512_set1_epi64((1 << FEATURE_BITS) - 1);
    let missing_bit = _mm512_set1_epi64(MISSING_BIT as i64);
    let one = _mm512_set1_epi64(1);
    // A leaf's slot is the payload of its split's NaN (see `node`).
    let slot_mask = _mm256_set1_epi32(f32::MAX_SLOT as i32);
    let offsets = row_offsets(width);
    let top = top_words(words, len);
    // The node words at `at`: from the registers (the first `TOP_STEPS` steps) or gathered.
    macro_rules! from_top {
        ($at:expr) => {
            top_word(&top, $at)
        };
    }
    macro_rules! gathered {
        ($at:expr) => {
            _mm512_i64gather_epi64::<8>($at, words)
        };
    }
    // One step of every vector, the node words fetched by `$word!`; the rows that moved.
    macro_rules! step {
        ($xs:expr, $at:expr, $word:ident) => {{
            let mut moved: __mmask8 = 0;
            for k in 0..K {
                let word = $word!($at[k]);
                let split = _mm256_castsi256_ps(_mm512_cvtepi64_epi32(word));
                let feature = _mm512_and_si512(_mm512_srli_epi64::<32>(word), feature_mask);
                let value = _mm512_i64gather_ps::<4>(_mm512_add_epi64(offsets[k], feature), $xs);
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
                moved |= _mm512_cmpneq_epi64_mask(next, $at[k]);
                $at[k] = next;
            }
            moved
        }};
    }
    for block in 0..rows / STEP {
        let xs = x.as_ptr().add(block * STEP * width);
        let mut at = [_mm512_setzero_si512(); K];
        let mut moved = !0;
        for _ in 0..depth.min(TOP_STEPS) {
            moved = step!(xs, at, from_top);
            if moved == 0 {
                break;
            }
        }
        if moved != 0 {
            for _ in TOP_STEPS..depth {
                if step!(xs, at, gathered) == 0 {
                    break;
                }
            }
        }
        for (k, &at) in at.iter().enumerate() {
            let word = _mm512_i64gather_epi64::<8>(at, words);
            let slots = _mm256_and_si256(_mm512_cvtepi64_epi32(word), slot_mask);
            let row = block * STEP + 8 * k;
            match SINK {
                SLOTS => _mm256_storeu_si256(sink.slots.add(row).cast::<__m256i>(), slots),
                ONE => {
                    let weights = _mm512_i32gather_pd::<8>(slots, sink.weights);
                    let scores = sink.scores.add(row);
                    _mm512_storeu_pd(scores, _mm512_add_pd(_mm512_loadu_pd(scores), weights));
                }
                _ => add_two(sink, slots, SINK == PAIR, row),
            }
        }
    }
}

/// Steps whose nodes all sit among a tree's first 32 words (the levels laid out breadth first,
/// whose nodes of level `l` sit below `2^(l+1) - 1`), which every row of a tile reads: they
/// come from registers (`top_word`) instead of a gather.
const TOP_STEPS: u32 = BREADTH_FIRST_LEVELS;

/// A tree's first 32 words (zero past its end), four to a register.
#[target_feature(enable = "avx512f")]
unsafe fn top_words(words: *const i64, len: usize) -> [__m512i; 4] {
    let mut top = [_mm512_setzero_si512(); 4];
    for (i, top) in top.iter_mut().enumerate() {
        let lanes = len.saturating_sub(8 * i).min(8);
        *top = _mm512_maskz_loadu_epi64(((1u16 << lanes) - 1) as u8, words.add(8 * i));
    }
    top
}

/// Words `at` (each below 32) of `top`: two 16-word permutes, picked by bit 4.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn top_word(top: &[__m512i; 4], at: __m512i) -> __m512i {
    let low = _mm512_permutex2var_epi64(top[0], at, top[1]);
    let high = _mm512_permutex2var_epi64(top[2], at, top[3]);
    _mm512_mask_blend_epi64(_mm512_test_epi64_mask(at, _mm512_set1_epi64(16)), low, high)
}

/// Eight rows' leaf weights (of leaf `slots`) added into their two scores each: sixteen
/// scores in two vectors, rows 0-3 then 4-7, targets interleaved.
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,bmi1,bmi2")]
#[inline]
unsafe fn add_two(sink: Sink, slots: __m256i, pair: bool, row: usize) {
    let (low, high, mask) = if pair {
        let first = _mm256_slli_epi32::<1>(slots);
        let w0 = _mm512_i32gather_pd::<8>(first, sink.weights);
        let w1 = _mm512_i32gather_pd::<8>(first, sink.weights.add(1));
        let low = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
        let high = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
        (
            _mm512_permutex2var_pd(w0, low, w1),
            _mm512_permutex2var_pd(w0, high, w1),
            0xFF,
        )
    } else {
        // Each weight twice; the mask adds it to target `first` only.
        let w = _mm512_i32gather_pd::<8>(slots, sink.weights);
        let low = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
        let high = _mm512_set_epi64(7, 7, 6, 6, 5, 5, 4, 4);
        (
            _mm512_permutexvar_pd(low, w),
            _mm512_permutexvar_pd(high, w),
            0x55 << sink.first,
        )
    };
    let scores = sink.scores.add(2 * row);
    for (half, add) in [(0, low), (8, high)] {
        let at = scores.add(half);
        let sum = _mm512_loadu_pd(at);
        _mm512_storeu_pd(at, _mm512_mask_add_pd(sum, mask, sum, add));
    }
}
