//! The top levels of every tree decided 16 rows to a vector, for the chains walk
//! (`scalar32`, `FusedWalk::TopChains`).
//!
//! The chains spend a step (two dependent loads and a handful of integer operations) per level
//! per row. The top levels are the same few branches for every row, so there a vector
//! comparison decides 16 rows at once from a column of the tile, with no load that waits on
//! another. Which node a row reaches at depth `LEVELS` then follows QuickScorer's rule
//! (Lucchese et al., SIGIR 2015): number the top's exits (the nodes at depth `LEVELS`, and the
//! leaves above it, one position per path) left to right, true child first; start each row
//! with every exit possible; every branch whose test fails for the row removes the exits under
//! its true child. The row's own exit survives (a failed branch on its path has it on the
//! false side), and every exit to its left is removed by the branch where the two paths part,
//! which the row failed. So the row's exit is the first one left: a leading-zero count.
//!
//! Five levels: 32 exits, one bit each in a 32-bit lane, 31 branches at most, two compares
//! and two masked ANDs each per 32 rows, where the chains would take five steps a row.

#![allow(unsafe_code)]

use super::layout::{Forest, Node, Split};
use super::scalar32::STRIDE;

/// The levels decided here.
pub const LEVELS: u32 = 5;
const EXITS: usize = 1 << LEVELS;

/// Every tree's top: its branches above depth `LEVELS` and where each exit continues.
#[derive(Clone, Debug)]
pub struct Tops<T> {
    /// Tree `t`'s branches are `branches[bounds[t]..bounds[t + 1]]`.
    bounds: Vec<usize>,
    branches: Vec<Branch<T>>,
    /// Tree `t`'s node (counted from its root) at each exit position.
    exits: Vec<[u16; EXITS]>,
}

#[derive(Clone, Copy, Debug)]
struct Branch<T> {
    /// Where the branch's feature starts in a tile (`scalar32::columns`).
    column: usize,
    split: T,
    missing_true: bool,
    /// The exits still possible after this test fails: all but those under the true child.
    keep: u32,
}

impl<T: Split> Tops<T> {
    /// `None` when a tree has more nodes than an exit's 16 bits can number.
    pub fn new(forest: &Forest<T>) -> Option<Tops<T>> {
        let mut tops = Tops {
            bounds: vec![0],
            branches: Vec::new(),
            exits: Vec::new(),
        };
        for tree in &forest.trees {
            if tree.len > usize::from(u16::MAX) + 1 {
                return None;
            }
            let mut exits = [0; EXITS];
            let nodes = &forest.nodes[tree.start..][..tree.len];
            tops.visit(nodes, 0, 0, 0, &mut exits);
            tops.bounds.push(tops.branches.len());
            tops.exits.push(exits);
        }
        Some(tops)
    }

    /// Lay out the top below node `at` (at `depth`), whose exits start at position `first`.
    fn visit(&mut self, nodes: &[Node<T>], at: usize, depth: u32, first: usize, exits: &mut [u16]) {
        let span = EXITS >> depth;
        let node = &nodes[at];
        if depth == LEVELS || node.is_leaf() {
            // `new` checked that every node index fits.
            exits[first..first + span].fill(at as u16);
            return;
        }
        let half = span / 2;
        self.branches.push(Branch {
            column: node.feature() * STRIDE,
            split: node.split,
            missing_true: node.missing_true(),
            keep: !positions(first, half),
        });
        let true_child = node.left as usize;
        self.visit(nodes, true_child, depth + 1, first, exits);
        self.visit(nodes, true_child + 1, depth + 1, first + half, exits);
    }
}

/// The bits of exit positions `first..first + count`: position `p` is bit `EXITS - 1 - p`, so
/// that the first position left is the count of leading zeros.
fn positions(first: usize, count: usize) -> u32 {
    (((1u64 << count) - 1) << (EXITS - first - count)) as u32
}

#[cfg(target_arch = "x86_64")]
impl Tops<f32> {
    /// The node of tree `tree` (counted from its root) that each of 32 rows reaches at depth
    /// `LEVELS` (or the leaf it reaches above), deciding as `evaluate::compare` in mode `MODE`
    /// with, if `MISSING`, the nodes' missing-value rule. Row `k`'s values are at
    /// `x + feature * STRIDE + k`.
    ///
    /// # Safety
    /// The CPU has AVX-512 F and CD; `x` points into a tile (`scalar32::columns`) with 32 rows
    /// from it in every column the forest reads.
    #[target_feature(enable = "avx512f,avx512cd")]
    pub unsafe fn exits<const MODE: u32, const MISSING: bool>(
        &self,
        tree: usize,
        x: *const f32,
    ) -> [usize; EXITS] {
        use std::arch::x86_64::*;
        let branches = &self.branches[self.bounds[tree]..self.bounds[tree + 1]];
        let (mut low, mut high) = (_mm512_set1_epi32(-1), _mm512_set1_epi32(-1));
        for branch in branches {
            let split = _mm512_set1_ps(branch.split);
            let keep = _mm512_set1_epi32(branch.keep as i32);
            let missing_true = MISSING && branch.missing_true;
            // SAFETY: the caller promised 32 rows of every column the forest reads.
            let (first, second) = unsafe {
                let column = x.add(branch.column);
                (_mm512_loadu_ps(column), _mm512_loadu_ps(column.add(16)))
            };
            let (first, second) = (
                fails::<MODE>(first, split, missing_true),
                fails::<MODE>(second, split, missing_true),
            );
            low = _mm512_mask_and_epi32(low, first, low, keep);
            high = _mm512_mask_and_epi32(high, second, high, keep);
        }
        // SAFETY: two vectors of 16 u32 are 32 u32.
        let positions: [u32; EXITS] =
            unsafe { std::mem::transmute([_mm512_lzcnt_epi32(low), _mm512_lzcnt_epi32(high)]) };
        let exits = &self.exits[tree];
        // A row's own exit always survives, so its position is below `EXITS`.
        std::array::from_fn(|k| usize::from(exits[positions[k] as usize % EXITS]))
    }
}

/// The lanes where a branch's test fails: `compare::<f32, MODE>` is false and, if the branch
/// sends missing values true (`missing_true`), the value is no NaN.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn fails<const MODE: u32>(
    values: std::arch::x86_64::__m512,
    split: std::arch::x86_64::__m512,
    missing_true: bool,
) -> std::arch::x86_64::__mmask16 {
    use std::arch::x86_64::*;
    // The negated comparisons, true where either side is a NaN: a NaN value fails every
    // test, and so does every value against a NaN split (a `Eq` split float32 cannot hold).
    let fails = match MODE {
        0 => _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(values, split),
        1 => _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(values, split),
        2 => _mm512_cmp_ps_mask::<_CMP_NGE_UQ>(values, split),
        3 => _mm512_cmp_ps_mask::<_CMP_NGT_UQ>(values, split),
        _ => _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(values, split),
    };
    if missing_true {
        fails & _mm512_cmp_ps_mask::<_CMP_ORD_Q>(values, values)
    } else {
        fails
    }
}
