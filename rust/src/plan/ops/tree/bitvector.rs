//! Bitvector evaluation (QuickScorer, Lucchese et al., SIGIR 2015) for forests of small trees:
//! gradient boosting's trees of up to 64 leaves, all splitting with `x <= split`.
//!
//! Number each tree's leaves left to right (true side first). A branch that is false for a row
//! rules out the leaves of its true side, so each branch carries a mask clearing them (32 bits
//! when every tree has at most 32 leaves, else 64: `scan`);
//! a row's leaf in a tree is the lowest bit left after AND-ing in the masks of every false
//! branch. Branches are grouped by feature and sorted by split, so the false branches of a
//! value `x` are exactly the prefix with `split < x`: no pointer chasing, and the work runs over
//! `LANES` rows at once, which the compiler turns into vector compares and ANDs. A NaN input is
//! false at the branches that send NaN to their false side, listed per feature apart.

use super::layout::{Forest, Node, Split, LEAF};
use super::scan::{Branch, Scan, Weights, Word};
use crate::plan::isa::Isa;

/// Rows a block (a multiple of 16, at most 64: `scan`). 64-bit words: measured best of 4, 8,
/// 16 and 32 on a 200-tree HistGradientBoosting model. 32-bit words: 64 measured 5% to 8%
/// faster than 32 and about 1.2x faster than 16 on the bench's model (200 trees of 31 leaves;
/// the words of a block, 200 x 64 x 4 bytes, about fill the 48 KB L1 cache).
const WIDE_LANES: usize = 16;
const NARROW_LANES: usize = 64;

/// The scan over the narrowest mask word that holds every tree's leaves.
#[derive(Clone, Debug)]
pub enum Bitvectors<T> {
    Narrow(Scan<T, u32>),
    Wide(Scan<T, u64>),
}

impl<T: Split> Bitvectors<T> {
    /// `None` unless every tree has at most 64 leaves and every branch compares `x <= split`
    /// with a split that is a number (`forest` says whether the modes are uniform).
    pub fn new(forest: &Forest<T>, all_leq: bool) -> Option<Self> {
        if !all_leq {
            return None;
        }
        let width = forest.max_feature.map_or(0, |f| f + 1);
        let mut branches: Vec<Branch<T>> = Vec::new();
        // Each tree's leaf slots, left to right.
        let mut trees = Vec::with_capacity(forest.trees.len());
        for (t, tree) in forest.trees.iter().enumerate() {
            let nodes = &forest.nodes[tree.start..tree.start + tree.len];
            if nodes.iter().filter(|n| n.mode() == LEAF).count() > 64 {
                return None;
            }
            let mut leaves = Vec::new();
            // At most 64 leaves, so at most 63 levels of recursion.
            number(nodes, 0, &mut leaves, &mut |node, true_side| {
                branches.push((
                    node.feature(),
                    node.split,
                    t as u32,
                    !true_side,
                    node.missing_true(),
                ));
            });
            trees.push(
                leaves
                    .iter()
                    .map(|&l| nodes[l as usize].split.slot())
                    .collect(),
            );
        }
        // A NaN split is false for every number, which the sorted prefix cannot express.
        if branches.iter().any(|b| b.1.is_nan()) {
            return None;
        }
        branches.sort_by(|a, b| {
            let by_split = a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal);
            a.0.cmp(&b.0).then(by_split)
        });
        let narrow = trees.iter().all(|t: &Vec<u32>| t.len() <= 32);
        Some(if narrow {
            Self::Narrow(scan(forest, &branches, width, &trees))
        } else {
            Self::Wide(scan(forest, &branches, width, &trees))
        })
    }

    /// As `evaluate::visit_leaves`: `sink(first, slots)` per block of rows and tree, compiled
    /// for `isa`, which the CPU must have (`Isa::detect`, `Isa::available`).
    pub fn visit_leaves<X: Copy + Into<T>>(
        &self,
        x: &[X],
        rows: usize,
        width: usize,
        isa: Isa,
        sink: &mut impl FnMut(usize, &[u32]),
    ) {
        match self {
            Self::Narrow(scan) => scan.visit_leaves::<NARROW_LANES, X>(x, rows, width, isa, sink),
            Self::Wide(scan) => scan.visit_leaves::<WIDE_LANES, X>(x, rows, width, isa, sink),
        }
    }

    /// Whether `sum_leaves` applies: every leaf holds one weight, all for the same target.
    pub fn sums(&self) -> bool {
        match self {
            Self::Narrow(scan) => scan.weights().is_some(),
            Self::Wide(scan) => scan.weights().is_some(),
        }
    }

    /// Add each row's leaf weights in tree order to `scores` (row-major, `n_targets` a row),
    /// as `visit_leaves` with a summing sink would; needs `sums()`. With AVX-512 the scan goes
    /// tree by tree (`by_tree`).
    pub fn sum_leaves<X: Copy + Into<T>>(
        &self,
        x: &[X],
        rows: usize,
        width: usize,
        isa: Isa,
        n_targets: usize,
        scores: &mut [f64],
    ) {
        match self {
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Self::Narrow(scan) if isa >= Isa::Avx512 => {
                assert!(isa.supported(), "{isa:?} on a CPU without it");
                // SAFETY: the CPU has AVX-512 (checked above).
                unsafe { scan.sum_leaves_by_tree(x, rows, width, n_targets, scores) }
            }
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Self::Wide(scan) if isa >= Isa::Avx512 => {
                assert!(isa.supported(), "{isa:?} on a CPU without it");
                // SAFETY: the CPU has AVX-512 (checked above).
                unsafe { scan.sum_leaves_by_tree(x, rows, width, n_targets, scores) }
            }
            Self::Narrow(scan) => {
                scan.sum_leaves::<NARROW_LANES, X>(x, rows, width, isa, n_targets, scores)
            }
            Self::Wide(scan) => {
                scan.sum_leaves::<WIDE_LANES, X>(x, rows, width, isa, n_targets, scores)
            }
        }
    }
}

/// The scan of `branches` over word `W`, for trees whose leaf slots are `trees`.
fn scan<T: Split, W: Word>(
    forest: &Forest<T>,
    branches: &[Branch<T>],
    width: usize,
    trees: &[Vec<u32>],
) -> Scan<T, W> {
    let mut slots = vec![0; trees.len() * W::BITS];
    for (tree, leaves) in slots.chunks_exact_mut(W::BITS).zip(trees) {
        tree[..leaves.len()].copy_from_slice(leaves);
    }
    // One weight per slot, all for one target: the weights can be read in leaf order.
    let leaves = &forest.leaves;
    let target = leaves.targets.first().copied();
    let weights = match target {
        Some(target) if leaves.offsets.is_none() && leaves.targets.iter().all(|&t| t == target) => {
            Some(Weights {
                values: slots.iter().map(|&s| leaves.values[s as usize]).collect(),
                target: target as usize,
            })
        }
        _ => None,
    };
    Scan::new(branches, width, slots, weights, trees.len())
}

/// Number the leaves under `at` left to right into `leaves` (node indices) and report each
/// branch with the mask of its true side's leaves.
fn number<T: Split>(
    nodes: &[Node<T>],
    at: u32,
    leaves: &mut Vec<u32>,
    branch: &mut impl FnMut(&Node<T>, u64),
) {
    let node = &nodes[at as usize];
    if node.mode() == LEAF {
        leaves.push(at);
        return;
    }
    let first = leaves.len();
    number(nodes, node.left, leaves, branch);
    let true_side = leaves.len() - first;
    // `true_side` <= 63: the false side holds at least one of the 64 leaves.
    branch(node, ((1u64 << true_side) - 1) << first);
    number(nodes, node.left + 1, leaves, branch);
}

#[cfg(test)]
mod tests {
    use super::super::ensemble::{Branch, Child, Ensemble, Mode, Weight};
    use super::*;

    /// A chain of `n` branches on feature 0 (x <= i goes to leaf i), then a last leaf.
    fn chain(n: u32, split: impl Fn(u32) -> f64) -> Forest<f64> {
        let ensemble = Ensemble {
            branches: (0..n)
                .map(|i| Branch {
                    mode: Mode::Leq,
                    feature: 0,
                    split: split(i),
                    set: 0,
                    missing_true: i % 2 == 1,
                    yes: Child::Leaf(i),
                    no: if i + 1 < n {
                        Child::Branch(i + 1)
                    } else {
                        Child::Leaf(n)
                    },
                })
                .collect(),
            leaves: (0..=n)
                .map(|i| {
                    vec![Weight {
                        target: 0,
                        value: f64::from(i),
                    }]
                })
                .collect(),
            roots: vec![Child::Branch(0)],
            sets: vec![],
            n_targets: 1,
        };
        Forest::new(&ensemble).unwrap()
    }

    fn leaves(forest: &Forest<f64>, x: &[f64], isa: Isa) -> Vec<f64> {
        let b = forest.bitvectors.as_ref().expect("bitvectors");
        let mut out = vec![f64::NAN; x.len()];
        b.visit_leaves(x, x.len(), 1, isa, &mut |first, slots| {
            for (row, &slot) in slots.iter().enumerate() {
                out[first + row] = forest.leaves.values[slot as usize];
            }
        });
        out
    }

    #[test]
    fn a_64_leaf_chain_finds_every_leaf_and_nan_follows_the_missing_flags() {
        let forest = chain(63, f64::from);
        let x: Vec<f64> = (0..70)
            .map(|i| f64::from(i) - 0.5)
            .chain([f64::NAN])
            .collect();
        let mut expected: Vec<f64> = (0..70).map(|i| f64::from(i.min(63))).collect();
        // NaN fails branch 0 (missing goes false) and takes branch 1 (missing goes true).
        expected.push(1.0);
        for isa in Isa::available() {
            assert_eq!(leaves(&forest, &x, isa), expected, "{isa:?}");
        }
    }

    #[test]
    fn too_many_leaves_or_a_nan_split_fall_back_to_traversal() {
        assert!(chain(64, f64::from).bitvectors.is_none());
        assert!(chain(3, |i| if i == 1 { f64::NAN } else { 0.0 })
            .bitvectors
            .is_none());
    }
}
