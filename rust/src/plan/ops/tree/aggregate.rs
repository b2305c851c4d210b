//! Aggregation: adding the leaves' weights into a tile's per-target scores, in f64.
//!
//! Scores start at zero and take each tree's weights in tree order, so a row's sum is the
//! same left-to-right sum scikit-learn computes. MIN and MAX keep the first weight a target
//! gets, then the smaller or larger, as onnxruntime does (a NaN weight sticks once taken).

use super::evaluate::{sum_leaves, visit_leaves};
use super::layout::{Forest, Split};
use super::node::FusedWalk;
use crate::plan::isa::Isa;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

impl Aggregate {
    /// The legacy operators' string attribute.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "SUM" => Self::Sum,
            "AVERAGE" => Self::Average,
            "MIN" => Self::Min,
            "MAX" => Self::Max,
            _ => return None,
        })
    }

    /// Opset 5's integer attribute: 0 AVERAGE, 1 SUM (the default), 2 MIN, 3 MAX, per the spec
    /// and onnxruntime.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::Average,
            1 => Self::Sum,
            2 => Self::Min,
            3 => Self::Max,
            _ => return None,
        })
    }

    /// Whether the first weight a target gets must be told apart from the starting zero.
    pub fn needs_hits(self) -> bool {
        matches!(self, Self::Min | Self::Max)
    }
}

/// A tile's scores, `values[row * n_targets + target]`, and, when `tracked`, whether a leaf
/// gave each one a weight: onnxruntime reports a target no leaf reached as 0, base value or not.
pub struct Scores {
    pub values: Vec<f64>,
    pub hits: Vec<bool>,
    pub n_targets: usize,
    pub tracked: bool,
}

impl Scores {
    pub fn new(rows: usize, n_targets: usize, tracked: bool) -> Self {
        Self {
            values: vec![0.0; rows * n_targets],
            hits: vec![false; if tracked { rows * n_targets } else { 0 }],
            n_targets,
            tracked,
        }
    }

    /// Zero the first `rows` rows for a new tile.
    pub fn reset(&mut self, rows: usize) {
        let n = rows * self.n_targets;
        self.values[..n].fill(0.0);
        if self.tracked {
            self.hits[..n].fill(false);
        }
    }

    pub fn row(&self, row: usize) -> &[f64] {
        &self.values[row * self.n_targets..(row + 1) * self.n_targets]
    }

    /// Whether each target of `row` was reached; `None` when hits are not tracked.
    pub fn row_hits(&self, row: usize) -> Option<&[bool]> {
        self.tracked
            .then(|| &self.hits[row * self.n_targets..(row + 1) * self.n_targets])
    }
}

/// Add every tree's leaf weights for `rows` rows of `x` into `scores` (reset beforehand), with
/// the loops compiled for `isa` where there is a choice.
pub fn accumulate<T, X>(
    forest: &Forest<T>,
    x: &[X],
    rows: usize,
    width: usize,
    aggregate: Aggregate,
    isa: Isa,
    scores: &mut Scores,
) where
    T: Split,
    X: Copy + Into<T>,
{
    debug_assert!(scores.tracked || !aggregate.needs_hits());
    let leaves = &forest.leaves;
    let n_targets = scores.n_targets;
    let Scores {
        values,
        hits,
        tracked,
        ..
    } = scores;
    let tracked = *tracked;
    let sum = matches!(aggregate, Aggregate::Sum | Aggregate::Average);
    // Sums a fused walk can add as it walks (random forests): its rows first, then
    // the loops below take the rest.
    let done = match leaves.columns(n_targets) {
        Some(columns) if sum && !tracked => sum_leaves(
            forest,
            x,
            rows,
            width,
            FusedWalk::for_isa(isa),
            columns,
            values,
        ),
        _ => 0,
    };
    let (x, rows) = (&x[done * width..], rows - done);
    let values = &mut values[done * n_targets..];
    // Bitvectors of single-target trees add the weights inside their scan, with no call per
    // tree and block.
    if let Some(bitvectors) = (forest.bitvectors.as_ref()).filter(|b| sum && !tracked && b.sums()) {
        return bitvectors.sum_leaves(x, rows, width, isa, n_targets, values);
    }
    // The common cases, sums with nothing to track, without the general loop's per-weight
    // choices: one weight per slot (single-target models, unmerged trees), or a few per slot
    // (a classifier's trees merged across classes).
    match (&leaves.offsets, sum && !tracked) {
        (None, true) => visit_leaves(forest, x, rows, width, isa, &mut |first, slots| {
            let values = &mut values[first * n_targets..];
            for (row, &slot) in slots.iter().enumerate() {
                let k = slot as usize;
                values[row * n_targets + leaves.targets[k] as usize] += leaves.values[k];
            }
        }),
        // One dependent load (the slot's weights) instead of three (offsets, targets,
        // weights): the weight tables of a large forest miss the cache at every row and tree.
        (Some(_), true) if leaves.dense => {
            visit_leaves(forest, x, rows, width, isa, &mut |first, slots| {
                let values = &mut values[first * n_targets..];
                for (row, &slot) in slots.iter().enumerate() {
                    let row = &mut values[row * n_targets..(row + 1) * n_targets];
                    let weights = &leaves.values[slot as usize * n_targets..][..n_targets];
                    for (value, &weight) in row.iter_mut().zip(weights) {
                        *value += weight;
                    }
                }
            })
        }
        (Some(offsets), true) => visit_leaves(forest, x, rows, width, isa, &mut |first, slots| {
            let values = &mut values[first * n_targets..];
            for (row, &slot) in slots.iter().enumerate() {
                let row = &mut values[row * n_targets..(row + 1) * n_targets];
                let range = offsets[slot as usize] as usize..offsets[slot as usize + 1] as usize;
                for (&target, &weight) in leaves.targets[range.clone()]
                    .iter()
                    .zip(&leaves.values[range])
                {
                    row[target as usize] += weight;
                }
            }
        }),
        _ => visit_leaves(forest, x, rows, width, isa, &mut |first, slots| {
            for (row, &slot) in (first..).zip(slots) {
                let k = slot as usize;
                let range = match &leaves.offsets {
                    Some(offsets) => offsets[k] as usize..offsets[k + 1] as usize,
                    None => k..k + 1,
                };
                for k in range {
                    let i = row * n_targets + leaves.targets[k] as usize;
                    let weight = leaves.values[k];
                    let value = &mut values[i];
                    match aggregate {
                        Aggregate::Sum | Aggregate::Average => *value += weight,
                        Aggregate::Min if !hits[i] || weight < *value => *value = weight,
                        Aggregate::Max if !hits[i] || weight > *value => *value = weight,
                        Aggregate::Min | Aggregate::Max => {}
                    }
                    if tracked {
                        hits[i] = true;
                    }
                }
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::ensemble::{Branch, Child, Ensemble, Mode, Weight};
    use super::*;

    /// Two trees on feature 0 (x <= 0 goes left), each leaf one weight for target 0 or 1.
    fn forest(weights: [(u32, f64); 4]) -> Forest<f64> {
        let branch = |yes, no| Branch {
            mode: Mode::Leq,
            feature: 0,
            split: 0.0,
            set: 0,
            missing_true: false,
            yes,
            no,
        };
        let ensemble = Ensemble {
            branches: vec![
                branch(Child::Leaf(0), Child::Leaf(1)),
                branch(Child::Leaf(2), Child::Leaf(3)),
            ],
            leaves: (weights.iter())
                .map(|&(target, value)| vec![Weight { target, value }])
                .collect(),
            roots: vec![Child::Branch(0), Child::Branch(1)],
            sets: vec![],
            n_targets: 2,
        };
        Forest::new(&ensemble).unwrap()
    }

    fn run(forest: &Forest<f64>, aggregate: Aggregate, x: &[f64]) -> Scores {
        let mut scores = Scores::new(x.len(), 2, true);
        accumulate(forest, x, x.len(), 1, aggregate, Isa::detect(), &mut scores);
        scores
    }

    #[test]
    fn each_aggregate_combines_tree_weights() {
        let f = forest([(0, 1.0), (0, -2.0), (0, 5.0), (1, 3.0)]);
        let x = [-1.0, 1.0];
        for (aggregate, expected) in [
            (Aggregate::Sum, [6.0, 0.0, -2.0, 3.0]),
            (Aggregate::Average, [6.0, 0.0, -2.0, 3.0]),
            (Aggregate::Min, [1.0, 0.0, -2.0, 3.0]),
            (Aggregate::Max, [5.0, 0.0, -2.0, 3.0]),
        ] {
            let scores = run(&f, aggregate, &x);
            assert_eq!(scores.values, expected, "{aggregate:?}");
            assert_eq!(scores.hits, [true, false, true, true], "{aggregate:?}");
        }
    }

    #[test]
    fn min_and_max_take_the_first_weight_even_when_positive_or_negative() {
        let f = forest([(0, 7.0), (0, 7.0), (0, 9.0), (0, 9.0)]);
        assert_eq!(run(&f, Aggregate::Min, &[0.0]).values[0], 7.0);
        let f = forest([(0, -7.0), (0, -7.0), (0, -9.0), (0, -9.0)]);
        assert_eq!(run(&f, Aggregate::Max, &[0.0]).values[0], -7.0);
    }

    #[test]
    fn merged_classes_add_their_weights_densely() {
        // Two trees of one shape, one per class, merge into one whose slots hold a weight per
        // class in class order; 80 rows so that the vector walk runs where the CPU has it.
        let forest = forest([(0, 1.5), (0, -2.0), (1, 0.25), (1, 3.0)]);
        assert!(forest.leaves.dense && forest.trees.len() == 1);
        let x: Vec<f64> = (0..80).map(|i| f64::from(i) - 40.5).collect();
        for isa in Isa::available() {
            let mut scores = Scores::new(x.len(), 2, false);
            accumulate(&forest, &x, x.len(), 1, Aggregate::Sum, isa, &mut scores);
            for (r, &v) in x.iter().enumerate() {
                let expected = if v <= 0.0 { [1.5, 0.25] } else { [-2.0, 3.0] };
                assert_eq!(scores.row(r), expected, "row {r}, {isa:?}");
            }
        }
    }

    #[test]
    fn codes_follow_the_spec() {
        assert_eq!(Aggregate::from_code(0), Some(Aggregate::Average));
        assert_eq!(Aggregate::from_code(1), Some(Aggregate::Sum));
        assert_eq!(Aggregate::from_code(3), Some(Aggregate::Max));
        assert_eq!(Aggregate::from_code(4), None);
        assert_eq!(Aggregate::from_name("MIN"), Some(Aggregate::Min));
    }
}
