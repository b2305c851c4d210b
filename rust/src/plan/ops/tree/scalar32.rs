//! The random forests' fused walk (`wide32::sums`: leaf weights added into the scores as each
//! row reaches its leaf) in plain scalar code, 32 rows in flight, for CPUs whose AVX-512
//! gathers are slow and for CPUs without AVX-512.
//!
//! It reads the same node words (`packed`). A step is two loads (the node word, then the row's
//! value) and a handful of integer operations: no gather. On AMD EPYC (Zen 4) this walk ran
//! the model step of a 100-tree depth-12 forest 1.9x faster than `wide32`'s eight-lane gathers,
//! and 2.1x faster than the plain walk without AVX-512 (BENCHMARKS.md). The 32 rows' walks are
//! independent chains of dependent loads, unrolled so that the core overlaps them: 16 chains
//! measured 1.04-1.11x slower, 8 slower again, 64 within noise of 32.
//!
//! The tile is column-major with a fixed stride (`STRIDE` rows, `columns`), so a row's value
//! is `column start + row`: the node word's feature bits, shifted, are the column's offset,
//! and each of the 32 rows adds a constant. Decisions and weight sums are those of `wide32`
//! (and so of the plain walk), bit for bit.

#![allow(unsafe_code)]

use super::evaluate::compare;
use super::layout::{Columns, Forest};
use super::node::Split;
use super::packed::{CHILD_SHIFT, FEATURE_BITS, MISSING_BIT};
use super::top;

/// Rows of a column in the tile; a tile holds at most this many rows. A 512-row tile of the
/// bench's 35-feature forest is 70 KB: with 1,024 rows the model step ran 1.11x slower, with
/// 256 rows 1.04x slower (AMD EPYC, BENCHMARKS.md); every tree walks the whole tile in turn.
pub const STRIDE: usize = 1 << STRIDE_BITS;
const STRIDE_BITS: u32 = 9;
/// Rows walking together.
const CHAINS: usize = 32;

/// The first `rows` (at most `STRIDE`) rows of `x` (row-major, `width` values a row) as the
/// walk reads them: column `f` from `f * STRIDE`.
pub fn columns<T: Split, X: Copy + Into<T>>(x: &[X], rows: usize, width: usize) -> Vec<T> {
    // Rows a pass: their values stay in L1 while each column's share is written in one run
    // (written row by row, every value went to another cache line: 6% of a forest's time).
    const PASS: usize = 64;
    assert!(rows <= STRIDE);
    let mut out = vec![T::from_f64(0.0); width * STRIDE];
    for first in (0..rows).step_by(PASS) {
        let n = PASS.min(rows - first);
        let pass = &x[first * width..][..n * width];
        for (f, column) in out.chunks_exact_mut(STRIDE).enumerate() {
            for (r, value) in column[first..first + n].iter_mut().enumerate() {
                *value = pass[r * width + f].into();
            }
        }
    }
    out
}

/// `wide32::sums` over a tile laid out by `columns`: adds each row's leaf weights in tree
/// `tree` into `scores` (row-major, `columns.n_targets` a row, at most `STRIDE` rows) and
/// returns the rows done, a multiple of `CHAINS` (0 when the forest or its weights do not fit
/// the walk). With `TOPS` the chains start where `top::Tops::exits` sends each row, at depth
/// `top::LEVELS`; the caller checked that the CPU has AVX-512.
pub fn sums<const MODE: u32, const MISSING: bool, const TOPS: bool>(
    forest: &Forest<f32>,
    tree: usize,
    x: &[f32],
    width: usize,
    columns: Columns,
    scores: &mut [f64],
) -> usize {
    let n_targets = columns.n_targets;
    let weights = &forest.leaves.values;
    let tops = forest.tops.as_ref().filter(|_| TOPS);
    if forest.packed.is_empty() || !forest.leaves.fused_fit(columns) || tops.is_none() && TOPS {
        return 0;
    }
    let index = tree;
    let tree = &forest.trees[index];
    let steps = if TOPS {
        tree.depth.saturating_sub(top::LEVELS)
    } else {
        tree.depth
    };
    let rows = scores.len() / n_targets / CHAINS * CHAINS;
    assert!(rows <= STRIDE && x.len() >= width * STRIDE);
    assert!(forest.max_feature.is_none_or(|f| f < width));
    let words = &forest.packed[tree.start..][..tree.len];
    // Each row's weights go in trees in order.
    let mut add = |row: usize, word: u64| {
        let slot = f32::from_bits(word as u32).slot() as usize;
        columns.add(weights, scores, row, slot);
    };
    // Every chain one step, unrolled: a loop over the chains kept `at` in memory and ran
    // one chain's step after another.
    macro_rules! step_all {
        ($words:expr, $x:expr, $at:expr; $($k:literal)*) => {
            $($at[$k] = step::<MODE, MISSING>($words, $x.add($k), $at[$k]);)*
        };
    }
    for base in (0..rows).step_by(CHAINS) {
        // SAFETY: `packed::pack` keeps every false child inside its tree (a leaf's is itself),
        // and so does `Tops::exits`, so `at` stays below `words.len()`; a value's offset is
        // `feature * STRIDE + row` with `feature` < `width` (asserted) and `row` < `rows` <=
        // `STRIDE`, inside `x`; `TOPS` runs only where the caller found AVX-512.
        unsafe {
            let (words, x) = (words.as_ptr(), x.as_ptr().add(base));
            let mut at = match tops {
                #[cfg(target_arch = "x86_64")]
                Some(tops) => tops.exits::<MODE, MISSING>(index, x),
                _ => [0; CHAINS],
            };
            for _ in 0..steps {
                step_all!(words, x, at; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
                    16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
            }
            for (k, &at) in at.iter().enumerate() {
                add(base + k, *words.add(at));
            }
        }
    }
    rows
}

/// One step from node `at` for the row whose first value is at `x`: the next node.
#[inline(always)]
unsafe fn step<const MODE: u32, const MISSING: bool>(
    words: *const u64,
    x: *const f32,
    at: usize,
) -> usize {
    const OFFSET_MASK: u64 = ((1 << FEATURE_BITS) - 1) << STRIDE_BITS;
    // SAFETY: as `sums` promises.
    let word = unsafe { *words.add(at) };
    let split = f32::from_bits(word as u32);
    let offset = (word >> (32 - STRIDE_BITS)) & OFFSET_MASK;
    let value = unsafe { *x.add(offset as usize) };
    let mut yes = compare::<f32, MODE>(value, split);
    if MISSING {
        yes |= value.is_nan() & (word & MISSING_BIT != 0);
    }
    (word >> CHILD_SHIFT) as usize - usize::from(yes)
}
