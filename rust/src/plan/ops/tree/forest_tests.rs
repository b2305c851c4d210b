//! The fused walks of random forests (`wide32::sums`, `scalar32::sums` with and without
//! `top::Tops`, `blocks::Blocks::sums`): deep float32 forests (and a few shallow trees among them)
//! whose leaves add their weights into the scores as the walk reaches them, against a plain
//! walk of the `Ensemble`, bit for bit, for every mode, missing rule and way of mapping weights
//! to targets.

use super::aggregate::{accumulate, Aggregate, Scores};
use super::ensemble::{Branch, Child, Ensemble, Mode, Weight};
use super::evaluate::sum_leaves;
use super::layout::{Columns, Forest};
use super::node::FusedWalk;
use super::random_tests::{random_rows, reference, Rng};
use super::scalar32;
use crate::plan::isa::Isa;

/// How a forest's leaves name targets.
#[derive(Clone, Copy, Debug)]
enum Targets {
    /// One target (a regressor).
    One,
    /// Two classes, each tree written once per class with the same splits (opset 5's
    /// classifiers): laid out merged, two weights a slot.
    PerClass,
    /// Two targets, every weight for this one (a binary classifier's one column).
    Column(u32),
}

struct Grow<'a> {
    rng: &'a mut Rng,
    e: &'a mut Ensemble,
    mode: Mode,
    missing: bool,
    target: u32,
    depth: u32,
}

impl Grow<'_> {
    /// A tree down to `depth`, most branches reaching it: at depth 9 hundreds of leaves, too
    /// many for bitvectors, so the vector walk takes it.
    fn grow(&mut self, level: u32) -> Child {
        if level == self.depth || (level > 3 && self.rng.chance(0.1)) {
            // Full mantissas of varied sign: sums depend on their order. The two classes'
            // copies of a tree draw the same numbers; the scale tells them apart.
            let value = self.rng.next() as f64 / u64::MAX as f64 - 0.3;
            let scale = [1.0, -0.37][self.target as usize];
            self.e.leaves.push(vec![Weight {
                target: self.target,
                value: value * scale,
            }]);
            return Child::Leaf(self.e.leaves.len() as u32 - 1);
        }
        let feature = self.rng.below(5) as u32;
        // Splits that float32 holds and one it does not (narrowed per mode).
        let split = match self.rng.below(8) {
            0 => 0.1,
            _ => (self.rng.below(1000) as f64 - 400.0) / 256.0,
        };
        let missing_true = self.missing && self.rng.chance(0.5);
        let yes = self.grow(level + 1);
        let no = self.grow(level + 1);
        self.e.branches.push(Branch {
            mode: self.mode,
            feature,
            split,
            set: 0,
            missing_true,
            yes,
            no,
        });
        Child::Branch(self.e.branches.len() as u32 - 1)
    }
}

fn forest(rng: &mut Rng, mode: Mode, missing: bool, targets: Targets) -> Ensemble {
    let mut e = Ensemble {
        n_targets: if matches!(targets, Targets::One) {
            1
        } else {
            2
        },
        ..Ensemble::default()
    };
    // Deep trees, and shallow ones that end above the levels `top::Tops` decides: one is a
    // single leaf.
    for depth in [9, 9, 2, 9, 0, 9] {
        let classes: &[u32] = match targets {
            Targets::One => &[0],
            Targets::PerClass => &[0, 1],
            Targets::Column(t) => &[t][..],
        };
        let seed = rng.clone();
        for &target in classes {
            *rng = seed.clone();
            let mut grow = Grow {
                rng,
                e: &mut e,
                mode,
                missing,
                target,
                depth,
            };
            let root = grow.grow(0);
            e.roots.push(root);
        }
    }
    e
}

#[test]
fn fused_forest_sums_match_a_plain_walk() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let modes = [Mode::Leq, Mode::Lt, Mode::Gte, Mode::Gt, Mode::Eq];
    let all_targets = [
        Targets::One,
        Targets::PerClass,
        Targets::Column(0),
        Targets::Column(1),
    ];
    for (case, (&mode, &targets)) in (modes.iter())
        .flat_map(|m| all_targets.iter().map(move |t| (m, t)))
        .enumerate()
    {
        let missing = case % 2 == 1;
        let e = forest(&mut rng, mode, missing, targets);
        let forest = Forest::<f32>::new(&e).unwrap();
        let what = format!("{mode:?}, missing {missing}, {targets:?}");
        assert!(
            forest.bitvectors.is_none() && !forest.packed.is_empty(),
            "{what}"
        );
        // Every ordered mode has blocks, where the CPU can walk them.
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            forest.blocks().is_some(),
            Isa::Avx512.supported() && mode != Mode::Eq,
            "{what}"
        );
        let columns = forest.leaves.columns(e.n_targets);
        let expected = match targets {
            Targets::One | Targets::Column(0) => (1, 0),
            Targets::PerClass => (2, 0),
            Targets::Column(_) => (1, 1),
        };
        assert_eq!(
            columns.map(|c| (c.per_slot, c.first)),
            Some(expected),
            "{what}"
        );
        // 4 whole vector steps of 64 rows and 45 rows left to the other loops.
        let rows = 301;
        let width = 5;
        let x: Vec<f32> = (random_rows(&mut rng, rows, width).iter())
            .map(|&v| v as f32)
            .collect();
        let widened: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for isa in Isa::available() {
            let mut scores = Scores::new(rows, e.n_targets, false);
            accumulate(&forest, &x, rows, width, Aggregate::Sum, isa, &mut scores);
            for r in 0..rows {
                let (s, _) = reference(&e, &widened[r * width..][..width], Aggregate::Sum);
                assert_eq!(bits(scores.row(r)), bits(&s), "row {r}, {isa:?}, {what}");
            }
        }
        // Each fused walk alone, over more rows than a column tile holds, with NaN (the
        // missing-value rule) and without (no rule applies).
        let rows = scalar32::STRIDE + 100;
        let x: Vec<f32> = (random_rows(&mut rng, rows, width).iter())
            .map(|&v| v as f32)
            .collect();
        let no_nan: Vec<f32> = x
            .iter()
            .map(|&v| if v.is_nan() { 0.5 } else { v })
            .collect();
        for x32 in [x, no_nan] {
            let x: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
            for walk in FusedWalk::available() {
                let mut scores = vec![0.0; rows * e.n_targets];
                let columns = columns.unwrap();
                let done = sum_leaves(&forest, &x32, rows, width, walk, columns, &mut scores);
                assert_eq!(done, rows / 64 * 64, "{walk:?}, {what}");
                for (r, row) in scores.chunks(e.n_targets).take(done).enumerate() {
                    let (s, _) = reference(&e, &x[r * width..][..width], Aggregate::Sum);
                    assert_eq!(bits(row), bits(&s), "row {r}, {walk:?}, {what}");
                }
            }
        }
    }
}

/// Weights that do not map to fixed columns, and more than two targets, walk as before.
#[test]
fn other_weight_layouts_have_no_fused_walk() {
    let mut rng = Rng(7);
    let mut e = forest(&mut rng, Mode::Leq, false, Targets::Column(0));
    e.leaves[0][0].target = 1;
    let forest = Forest::<f32>::new(&e).unwrap();
    assert_eq!(forest.leaves.columns(2), None);
    let three = Columns {
        per_slot: 1,
        first: 0,
        n_targets: 3,
    };
    let x = vec![0.5f32; 64 * 5];
    let mut scores = vec![0.0; 64 * 3];
    assert_eq!(
        sum_leaves(
            &forest,
            &x,
            64,
            5,
            FusedWalk::for_isa(Isa::detect()),
            three,
            &mut scores
        ),
        0
    );
    assert!(scores.iter().all(|&s| s == 0.0));
}
