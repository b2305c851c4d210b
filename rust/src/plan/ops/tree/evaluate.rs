//! Traversal: which leaf each row reaches in each tree.
//!
//! Forests with bitvectors (`bitvector`) are handed over to them; the rest is traversal.
//! Trees are the outer loop and rows the inner one, so a tree's nodes stay in cache while a
//! whole tile of rows goes through it. Rows go through in groups of `GROUP` that step in
//! lockstep: their paths are independent, so the core overlaps their loads instead of waiting
//! on one path's chain of node and feature loads. A step picks the child with arithmetic
//! (`left + !yes`), never a branch on the comparison, which would be mispredicted about half the
//! time. Leaves step onto themselves (see `layout`), so a group simply runs until no row moved,
//! at most the tree's depth.
//!
//! Forests of f64 splits with one mode throughout (scikit-learn's forests) go through the
//! AVX-512 walk (`wide`) where the CPU has it, eight rows to a vector; this scalar walk takes
//! the rows left over and every other forest. Float32 forests whose leaf weights are sums
//! (random forests) go through a fused walk instead (`sum_leaves`: `wide32`, `scalar32`).
//!
//! Comparisons happen in the forest's split type: an f32 input against an f64 forest is widened
//! first, which is exact, so a float32 comparison and its widened twin always agree.

use std::cmp::Ordering;

use super::layout::{mode_code, Columns, Forest, Modes, Node, Split};
use super::node::{FusedSums, FusedWalk, WideWalk};
use super::scalar32;
use super::TILE_STEP;
use crate::plan::isa::Isa;

/// Rows stepped in lockstep: 8 measured faster than 4 or 16 on a 100-tree depth-12 forest and
/// a 200-tree gradient-boosting model (16 spills registers).
const GROUP: usize = 8;

/// `$walk!(MODE, MISSING)` for the mode code and missing rule of `Modes::Uniform` `$modes`,
/// each a constant, or `$otherwise` for mixed modes.
macro_rules! by_uniform_mode {
    ($modes:expr, $walk:ident, $otherwise:expr) => {{
        const LEQ: u32 = 0;
        const LT: u32 = 1;
        const GTE: u32 = 2;
        const GT: u32 = 3;
        const EQ: u32 = 4;
        match $modes {
            Modes::Uniform { mode, missing } => match (mode_code(mode), missing) {
                (LEQ, false) => $walk!(LEQ, false),
                (LEQ, true) => $walk!(LEQ, true),
                (LT, false) => $walk!(LT, false),
                (LT, true) => $walk!(LT, true),
                (GTE, false) => $walk!(GTE, false),
                (GTE, true) => $walk!(GTE, true),
                (GT, false) => $walk!(GT, false),
                (GT, true) => $walk!(GT, true),
                (EQ, false) => $walk!(EQ, false),
                (EQ, true) => $walk!(EQ, true),
                _ => $otherwise,
            },
            Modes::Mixed => $otherwise,
        }
    }};
}

/// Call `sink(first, slots)` with the leaf slots that rows `first..first + slots.len()` of `x`
/// (row-major, `width` values per row, `width` > every feature the forest reads) reach in one
/// tree, tree by tree: every row meets the trees in the forest's order. (Traversal hands over
/// all rows of a tree at once, bitvectors a block of rows at a time; a slice per call, rather
/// than a call per row and tree, lets the sink's loop run tight.)
pub fn visit_leaves<T, X>(
    forest: &Forest<T>,
    x: &[X],
    rows: usize,
    width: usize,
    isa: Isa,
    sink: &mut impl FnMut(usize, &[u32]),
) where
    T: Split,
    X: Copy + Into<T>,
{
    debug_assert!(x.len() >= rows * width);
    debug_assert!(forest.max_feature.is_none_or(|f| f < width));
    if let Some(bitvectors) = &forest.bitvectors {
        return bitvectors.visit_leaves(x, rows, width, isa, sink);
    }
    // The scalar decision and, where the split type has one, the vector walk, for one mode.
    macro_rules! uniform_walk {
        ($mode:expr, $missing:literal) => {
            walk(
                forest,
                x,
                rows,
                width,
                uniform::<T, $mode, $missing>,
                T::wide::<$mode, $missing>(isa),
                sink,
            )
        };
    }
    // `layout` never makes `Neq` or `Member` uniform; a mixed walk is right regardless.
    let mut mixed_walk = || {
        walk(
            forest,
            x,
            rows,
            width,
            |n, v| mixed(&forest.sets, n, v),
            None,
            sink,
        )
    };
    by_uniform_mode!(forest.modes, uniform_walk, mixed_walk())
}

/// Add each row's leaf weights, tree by tree, into `scores` (row-major, `columns.n_targets` a
/// row) for the rows the fused walk `walk` takes: a prefix of `rows`, returned (0 when this
/// forest or its weights have no such walk). The caller adds the rest's weights as it does
/// every other forest's.
pub fn sum_leaves<T, X>(
    forest: &Forest<T>,
    x: &[X],
    rows: usize,
    width: usize,
    walk: FusedWalk,
    columns: Columns,
    scores: &mut [f64],
) -> usize
where
    T: Split,
    X: Copy + Into<T>,
{
    // The walks index the tile by the features they read.
    assert!(forest.max_feature.is_none_or(|f| f < width));
    let done = rows / TILE_STEP * TILE_STEP;
    if done == 0 || forest.packed.is_empty() || forest.bitvectors.is_some() {
        return 0;
    }
    let x = &x[..done * width];
    // Without a NaN in the tile no missing-value rule applies, and the walk skips its test.
    let any_nan = x.iter().fold(false, |nan, &v| nan | v.into().is_nan());
    let modes = (forest.modes).for_values(any_nan);
    let n_targets = columns.n_targets;
    #[cfg(target_arch = "x86_64")]
    if walk == FusedWalk::Blocks && forest.blocks().is_some() {
        let scores = &mut scores[..done * n_targets];
        return if T::block_sums(forest, x, width, any_nan, columns, scores) {
            done
        } else {
            0
        };
    }
    macro_rules! fused_sums {
        ($mode:expr, $missing:literal) => {
            T::fused_sums::<$mode, $missing>(walk)
        };
    }
    let Some(sums) = by_uniform_mode!(modes, fused_sums, None) else {
        return 0;
    };
    let walked = match walk {
        FusedWalk::Gathers => {
            let x: Vec<T> = x.iter().map(|&v| v.into()).collect();
            walk_trees(
                forest,
                sums,
                &x,
                width,
                columns,
                &mut scores[..done * n_targets],
            )
        }
        FusedWalk::Chains | FusedWalk::TopChains | FusedWalk::Blocks => {
            (0..done).step_by(scalar32::STRIDE).all(|first| {
                let n = (done - first).min(scalar32::STRIDE);
                let x = scalar32::columns(&x[first * width..], n, width);
                let scores = &mut scores[first * n_targets..][..n * n_targets];
                walk_trees(forest, sums, &x, width, columns, scores)
            })
        }
    };
    if walked {
        done
    } else {
        0
    }
}

/// Every tree of `forest` through `sums` over one tile, in order; false if the walk refused
/// the forest (which it does at the first tree or never).
fn walk_trees<T: Split>(
    forest: &Forest<T>,
    sums: FusedSums<T>,
    x: &[T],
    width: usize,
    columns: Columns,
    scores: &mut [f64],
) -> bool {
    let rows = scores.len() / columns.n_targets;
    for tree in 0..forest.trees.len() {
        if sums(forest, tree, x, width, columns, scores) != rows {
            // Whether the walk applies depends on the forest only: the first tree tells.
            assert_eq!(tree, 0, "the fused walk refused a later tree");
            return false;
        }
    }
    true
}

/// The fast decision: one comparison known at compile time. A leaf's NaN split fails it and a
/// leaf has no missing flag, so leaves stay put.
#[inline(always)]
fn uniform<T: Split, const MODE: u32, const MISSING: bool>(node: &Node<T>, value: T) -> bool {
    let yes = compare::<T, MODE>(value, node.split);
    // `&` and `|`, not `&&` and `||`: no branch to mispredict.
    if MISSING {
        yes | (node.missing_true() & value.is_nan())
    } else {
        yes
    }
}

/// The ordered comparison of mode code `MODE` (`mode_code`; `Neq` and `Member` excluded):
/// false for a NaN on either side.
#[inline(always)]
pub fn compare<T: PartialOrd, const MODE: u32>(value: T, split: T) -> bool {
    match MODE {
        0 => value <= split,
        1 => value < split,
        2 => value >= split,
        3 => value > split,
        _ => value == split,
    }
}

/// Each node's own mode, including membership and leaves (which decide "false" to stay put).
#[inline(always)]
fn mixed<T: Split>(sets: &[Vec<T>], node: &Node<T>, value: T) -> bool {
    let split = node.split;
    let yes = match node.mode() {
        0 => value <= split,
        1 => value < split,
        2 => value >= split,
        3 => value > split,
        4 => value == split,
        5 => value != split,
        6 => is_member(&sets[split.slot() as usize], value),
        _ => false,
    };
    yes | (node.missing_true() & value.is_nan())
}

/// Whether `value` equals a member of the sorted `set` (which holds no NaN).
fn is_member<T: Split>(set: &[T], value: T) -> bool {
    !value.is_nan()
        && set
            .binary_search_by(|m| m.partial_cmp(&value).unwrap_or(Ordering::Less))
            .is_ok()
}

#[inline(always)]
fn walk<T, X>(
    forest: &Forest<T>,
    x: &[X],
    rows: usize,
    width: usize,
    decide: impl Fn(&Node<T>, T) -> bool + Copy,
    wide: Option<WideWalk<T>>,
    sink: &mut impl FnMut(usize, &[u32]),
) where
    T: Split,
    X: Copy + Into<T>,
{
    // The tile in the split type once, rather than a conversion at every visit.
    let x: Vec<T> = x[..rows * width].iter().map(|&v| v.into()).collect();
    // Each row's leaf in the current tree. Walking a whole tree before handing its leaves to
    // `sink` keeps the walk's loop free of the sink's code (its weight tables, its stores).
    let mut leaves = vec![0u32; rows];
    for tree in &forest.trees {
        let nodes = &forest.nodes[tree.start..tree.start + tree.len];
        // The vector walk takes what it can (whole vectors of rows), the scalar one the rest.
        let done = wide.map_or(0, |wide| wide(forest, tree, &x, width, &mut leaves));
        let mut groups = leaves[done..].chunks_exact_mut(GROUP);
        let mut rows_of = x[done * width..].chunks_exact(GROUP * width);
        for (out, x) in (&mut groups).zip(&mut rows_of) {
            out.copy_from_slice(&group::<GROUP, T>(nodes, tree.depth, x, width, decide));
        }
        let tail = groups.into_remainder();
        for (out, x) in tail.iter_mut().zip(rows_of.remainder().chunks_exact(width)) {
            [*out] = group::<1, T>(nodes, tree.depth, x, width, decide);
        }
        sink(0, &leaves);
    }
}

/// The leaf slots `G` rows reach in one tree (`nodes`, root first).
#[inline(always)]
fn group<const G: usize, T>(
    nodes: &[Node<T>],
    depth: u32,
    x: &[T],
    width: usize,
    decide: impl Fn(&Node<T>, T) -> bool,
) -> [u32; G]
where
    T: Split,
{
    let mut at = [0u32; G];
    for _ in 0..depth {
        let mut moved = 0;
        for (g, at) in at.iter_mut().enumerate() {
            let node = &nodes[*at as usize];
            let value = x[g * width + node.feature()];
            let next = node.left.wrapping_add(u32::from(!decide(node, value)));
            moved |= next ^ *at;
            *at = next;
        }
        // Every row already sat on a leaf: the rest of the depth would change nothing.
        if moved == 0 {
            break;
        }
    }
    let mut slots = [0u32; G];
    for (slot, &at) in slots.iter_mut().zip(&at) {
        *slot = nodes[at as usize].split.slot();
    }
    slots
}
