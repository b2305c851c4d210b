//! Traversal eight rows to a vector with AVX-512 gathers, for forests of f64 splits whose
//! branches all compare one way (`Modes::Uniform`): random forests and gradient boosting as
//! scikit-learn writes them.
//!
//! The scalar walk (`evaluate::group`) spends about 30 instructions per node visit: loading the
//! node, its feature, the row's value, the comparison, the missing-value rule and the next
//! index, each per row, plus bounds checks and the spills of eight rows' state. Here one
//! gather fetches eight rows' splits, one their keys and children, one the eight values, and a
//! handful of mask operations decide and step all eight: about two instructions per visit.
//! `K` vectors walk side by side so that the gathers of one wait while the others compute.
//!
//! The decision is the scalar walk's, lane by lane: the ordered comparison of the mode (false
//! for a NaN value and for a leaf's NaN split), then, if the forest has any, NaN to the true
//! side where the node's missing flag says so; the next node is `left` when true, `left + 1`
//! when false, and a leaf steps onto itself.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::layout::{Forest, Node, Tree};
use super::node::{FEATURE_MASK, MISSING_TRUE};
use crate::plan::isa::Isa;

/// Which lanes take the true side: the ordered comparison of mode `MODE` (`node::mode_code`),
/// then, if `MISSING`, NaN values where `flagged` (the lanes whose node sends NaN to the true
/// side). `cmp` is the comparison intrinsic for the vector's element type.
macro_rules! decide {
    ($mode:expr, $missing:expr, $cmp:ident, $value:expr, $split:expr, $flagged:expr) => {{
        let mut yes = match $mode {
            0 => $cmp::<_CMP_LE_OQ>($value, $split),
            1 => $cmp::<_CMP_LT_OQ>($value, $split),
            2 => $cmp::<_CMP_GE_OQ>($value, $split),
            3 => $cmp::<_CMP_GT_OQ>($value, $split),
            _ => $cmp::<_CMP_EQ_OQ>($value, $split),
        };
        if $missing {
            yes |= $cmp::<_CMP_UNORD_Q>($value, $value) & $flagged;
        }
        yes
    }};
}
pub(super) use decide;

/// Vectors of eight rows walking together, so that ~24 gathers are in flight per level: on a
/// 100-tree depth-12 forest, eight ran 13% faster than four, six 8%, two 30% slower (1 thread,
/// 50k rows, alternated runs). Eight vectors' state fills half of the 32 vector registers.
pub(super) const K: usize = 8;
pub(super) const STEP: usize = 8 * K;

/// For each of the `K` vectors, the offset of its eight rows' first value in a row-major block
/// `width` values wide: row `8k + lane` starts at `(8k + lane) * width`.
#[target_feature(enable = "avx512f,avx512dq")]
pub(super) fn row_offsets(width: usize) -> [__m512i; K] {
    let lane_rows = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    let width_v = _mm512_set1_epi64(width as i64);
    let mut offsets = [_mm512_setzero_si512(); K];
    for (k, offset) in offsets.iter_mut().enumerate() {
        let rows = _mm512_add_epi64(lane_rows, _mm512_set1_epi64((8 * k) as i64));
        *offset = _mm512_mullo_epi64(rows, width_v);
    }
    offsets
}

/// The leaf slot each row of `x` (row-major, `width` values a row) reaches in `tree` of
/// `forest`, for the longest prefix of rows that is a multiple of 64; returns its length (0
/// when fewer than 64 rows: the caller walks the rest).
///
/// Every child and leaf step stays inside the tree, as `layout` builds them; every feature
/// the forest reads must be below `width`, and `x` hold `out.len()` rows.
pub fn leaves<const MODE: u32, const MISSING: bool>(
    forest: &Forest<f64>,
    tree: &Tree,
    x: &[f64],
    width: usize,
    out: &mut [u32],
) -> usize {
    let (nodes, depth) = (&forest.nodes[tree.start..][..tree.len], tree.depth);
    let rows = out.len() / STEP * STEP;
    if rows == 0 {
        return 0;
    }
    assert!(
        Isa::Avx512.supported(),
        "the AVX-512 walk on a CPU without it"
    );
    assert!(x.len() >= out.len() * width);
    assert!(nodes.len() < 1 << 60 && width < 1 << 28);
    // SAFETY: the CPU has AVX-512 F/VL/DQ/BW (checked above). Every gather reads inside
    // `nodes` or `x`: node indices only ever take values of `left` or `left + 1`, which
    // `layout` keeps inside the tree (a leaf's `left + 1` is itself), and value indices are
    // `row * width + feature` with `row` < `rows` and `feature` < `width` (the caller's
    // contract, checked against the forest's largest feature).
    unsafe { leaves_avx512::<MODE, MISSING>(nodes, depth, x, width, &mut out[..rows]) };
    rows
}

#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,bmi1,bmi2")]
unsafe fn leaves_avx512<const MODE: u32, const MISSING: bool>(
    nodes: &[Node<f64>],
    depth: u32,
    x: &[f64],
    width: usize,
    out: &mut [u32],
) {
    // `Node<f64>` is `#[repr(C)]` { split: f64, key: u32, left: u32 }: 16 bytes, so node `i`
    // is at 8-byte index `2 i`, its split there and its key and left child in the next word.
    const _: () = assert!(std::mem::size_of::<Node<f64>>() == 16);
    let splits = nodes.as_ptr().cast::<f64>();
    let keys = splits.add(1).cast::<i64>();
    let feature_mask = _mm512_set1_epi64(i64::from(FEATURE_MASK));
    let missing_bit = _mm512_set1_epi64(i64::from(MISSING_TRUE));
    let one = _mm512_set1_epi64(1);
    let offsets = row_offsets(width);
    for (block, out) in out.chunks_exact_mut(STEP).enumerate() {
        let xs = x.as_ptr().add(block * STEP * width);
        // Twice each row's node index (8-byte words), starting at the root.
        let mut at = [_mm512_setzero_si512(); K];
        for _ in 0..depth {
            let mut moved: __mmask8 = 0;
            for k in 0..K {
                let split = _mm512_i64gather_pd::<8>(at[k], splits);
                let key = _mm512_i64gather_epi64::<8>(at[k], keys);
                let feature = _mm512_and_si512(key, feature_mask);
                let value = _mm512_i64gather_pd::<8>(_mm512_add_epi64(offsets[k], feature), xs);
                let yes = decide!(
                    MODE,
                    MISSING,
                    _mm512_cmp_pd_mask,
                    value,
                    split,
                    _mm512_test_epi64_mask(key, missing_bit)
                );
                let left = _mm512_srli_epi64::<32>(key);
                let next = _mm512_mask_add_epi64(left, !yes, left, one);
                let next = _mm512_add_epi64(next, next);
                moved |= _mm512_cmpneq_epi64_mask(next, at[k]);
                at[k] = next;
            }
            // Every row already sat on a leaf: the rest of the depth would change nothing.
            if moved == 0 {
                break;
            }
        }
        // A leaf's slot is the low half of its split's bits (see `node`).
        for (k, out) in out.chunks_exact_mut(8).enumerate() {
            let bits = _mm512_i64gather_epi64::<8>(at[k], splits.cast::<i64>());
            let slots = _mm512_cvtepi64_epi32(bits);
            _mm256_storeu_si256(out.as_mut_ptr().cast::<__m256i>(), slots);
        }
    }
}
