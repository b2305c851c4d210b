//! Randomized checks: the laid-out traversal and whole opset-5 kernels against a plain walk of
//! the `Ensemble` on random trees and inputs (NaN, ±0, values equal to splits), and random
//! damage to attributes, which must give errors, never panics.

use super::aggregate::{accumulate, Aggregate, Scores};
use super::ensemble::{member_set, Branch, Child, Ensemble, Mode, Weight};
use super::layout::{mode_code, Forest, Split};
use super::tests::{doubles, int, ints, kernel, modes, values};
use crate::plan::isa::Isa;
use crate::plan::onnx::AttributeProto;
use crate::plan::tensor::Tensor;

/// xorshift64*: small, seeded, good enough to pick shapes.
#[derive(Clone)]
pub(super) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Split and input values: equal values and signed zeros are where comparisons differ, and
/// doubles float32 cannot hold (0.1, beyond float32's range) beside their float32 neighbours,
/// where the float32 layout's narrowed splits (`node::narrow_f32`) must still decide exactly.
const POOL: [f64; 13] = [
    -1.0,
    -0.5,
    0.0,
    -0.0,
    0.5,
    1.0,
    2.5,
    f64::INFINITY,
    0.1,
    0.100_000_001_490_116_12, // 0.1f32
    0.099_999_994_039_535_52, // the float32 below it
    1e300,
    -1e300,
];

struct Gen<'a> {
    rng: &'a mut Rng,
    e: Ensemble,
    width: usize,
    modes: &'a [Mode],
    one_weight: bool,
}

impl Gen<'_> {
    fn leaf(&mut self) -> Child {
        let n = if self.one_weight {
            1
        } else {
            self.rng.below(3)
        };
        let weights = (0..n)
            .map(|_| Weight {
                target: self.rng.below(self.e.n_targets) as u32,
                // Varied magnitudes, full mantissas: sums depend on their order.
                value: (self.rng.next() as f64 / u64::MAX as f64 - 0.5)
                    * f64::from(1u32 << self.rng.below(30)),
            })
            .collect();
        self.e.leaves.push(weights);
        Child::Leaf(self.e.leaves.len() as u32 - 1)
    }

    fn branch(&mut self, mode: Mode, feature: u32, split: f64, set: Option<Vec<f64>>) -> u32 {
        let set = set.map_or(0, |s| {
            self.e.sets.push(s);
            self.e.sets.len() as u32 - 1
        });
        let missing_true = self.rng.chance(0.3);
        let (yes, no) = (Child::Leaf(0), Child::Leaf(0));
        let b = Branch {
            mode,
            feature,
            split,
            set,
            missing_true,
            yes,
            no,
        };
        self.e.branches.push(b);
        self.e.branches.len() as u32 - 1
    }

    fn grow(&mut self, level: u32) -> Child {
        if level >= 7 || self.rng.chance(0.2) {
            return self.leaf();
        }
        let mode = self.rng.pick(self.modes);
        let set = (mode == Mode::Member)
            .then(|| member_set((0..self.rng.below(4)).map(|_| self.rng.pick(&POOL))));
        let (feature, split) = (self.rng.below(self.width) as u32, self.rng.pick(&POOL));
        let b = self.branch(mode, feature, split, set);
        let yes = self.grow(level + 1);
        let no = self.grow(level + 1);
        let branch = &mut self.e.branches[b as usize];
        (branch.yes, branch.no) = (yes, no);
        Child::Branch(b)
    }

    /// The same tree shape with new leaves: the case opset 5 produces per class.
    fn copy(&mut self, child: Child) -> Child {
        let Child::Branch(b) = child else {
            return self.leaf();
        };
        let old = self.e.branches[b as usize].clone();
        let set = (old.mode == Mode::Member).then(|| self.e.sets[old.set as usize].clone());
        let new = self.branch(old.mode, old.feature, old.split, set);
        let yes = self.copy(old.yes);
        let no = self.copy(old.no);
        let branch = &mut self.e.branches[new as usize];
        (branch.yes, branch.no) = (yes, no);
        Child::Branch(new)
    }
}

fn random_ensemble(rng: &mut Rng, modes: &[Mode], one_weight: bool) -> (Ensemble, usize) {
    let width = 1 + rng.below(4);
    let e = Ensemble {
        n_targets: 1 + rng.below(3),
        ..Ensemble::default()
    };
    let mut g = Gen {
        rng,
        e,
        width,
        modes,
        one_weight,
    };
    for _ in 0..g.rng.below(7) {
        let root = match g.e.roots.last() {
            Some(&last) if g.rng.chance(0.4) => g.copy(last),
            _ => g.grow(0),
        };
        g.e.roots.push(root);
    }
    (g.e, width)
}

/// Scores and hits of one row by walking the `Ensemble` directly.
pub(super) fn reference(e: &Ensemble, row: &[f64], aggregate: Aggregate) -> (Vec<f64>, Vec<bool>) {
    let (mut scores, mut hits) = (vec![0.0; e.n_targets], vec![false; e.n_targets]);
    for &root in &e.roots {
        let mut at = root;
        let leaf = loop {
            match at {
                Child::Leaf(l) => break l,
                Child::Branch(b) => {
                    let b = &e.branches[b as usize];
                    let x = row[b.feature as usize];
                    let yes = match b.mode {
                        Mode::Member => e.sets[b.set as usize].contains(&x),
                        mode => mode.compare(x, b.split),
                    };
                    at = if yes || (b.missing_true && x.is_nan()) {
                        b.yes
                    } else {
                        b.no
                    };
                }
            }
        };
        for w in &e.leaves[leaf as usize] {
            let (s, h) = (&mut scores[w.target as usize], &mut hits[w.target as usize]);
            match aggregate {
                Aggregate::Min if *h && w.value >= *s => {}
                Aggregate::Max if *h && w.value <= *s => {}
                Aggregate::Sum | Aggregate::Average => *s += w.value,
                _ => *s = w.value,
            }
            *h = true;
        }
    }
    (scores, hits)
}

pub(super) fn random_rows(rng: &mut Rng, rows: usize, width: usize) -> Vec<f64> {
    (0..rows * width)
        .map(|_| match rng.below(5) {
            0 => f64::NAN,
            1 => f64::from((rng.below(1000) as f32 - 400.0) / 256.0),
            _ => rng.pick(&POOL),
        })
        .collect()
}

fn check_forest<T: Split, X: Copy + Into<T>>(
    e: &Ensemble,
    x: &[X],
    x64: &[f64],
    rows: usize,
    width: usize,
    aggregate: Aggregate,
) {
    let forest = Forest::<T>::new(e).unwrap();
    // Every copy of the loops this CPU runs (plain, AVX2, AVX-512: the vector walk and the
    // vectorized bitvectors) against the reference.
    for isa in Isa::available() {
        let mut scores = Scores::new(rows, e.n_targets, true);
        accumulate(&forest, x, rows, width, aggregate, isa, &mut scores);
        for r in 0..rows {
            let (s, h) = reference(e, &x64[r * width..(r + 1) * width], aggregate);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(scores.row(r)), bits(&s), "row {r} of {rows}, {isa:?}");
            assert_eq!(
                scores.row_hits(r).unwrap(),
                h.as_slice(),
                "row {r}, {isa:?}"
            );
        }
        // Sums with nothing tracked take their own loops (see `accumulate`): same values.
        if aggregate == Aggregate::Sum {
            let mut untracked = Scores::new(rows, e.n_targets, false);
            accumulate(&forest, x, rows, width, aggregate, isa, &mut untracked);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&untracked.values), bits(&scores.values), "{isa:?}");
        }
    }
}

const UNIFORM: [&[Mode]; 5] = [
    &[Mode::Leq],
    &[Mode::Lt],
    &[Mode::Gte],
    &[Mode::Gt],
    &[Mode::Eq],
];
pub(super) const ALL: [Mode; 7] = [
    Mode::Leq,
    Mode::Lt,
    Mode::Gte,
    Mode::Gt,
    Mode::Eq,
    Mode::Neq,
    Mode::Member,
];

#[test]
fn laid_out_traversal_matches_a_plain_walk() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..400 {
        let modes = if case % 2 == 0 {
            &ALL[..]
        } else {
            UNIFORM[case / 2 % 5]
        };
        let (e, width) = random_ensemble(&mut rng, modes, false);
        let rows = rng.below(300);
        let aggregate = rng.pick(&[Aggregate::Sum, Aggregate::Min, Aggregate::Max]);
        let x64 = random_rows(&mut rng, rows, width);
        let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
        let widened: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
        check_forest::<f64, f64>(&e, &x64, &x64, rows, width, aggregate);
        check_forest::<f64, f32>(&e, &x32, &widened, rows, width, aggregate);
        check_forest::<f32, f32>(&e, &x32, &widened, rows, width, aggregate);
    }
}

/// The ensemble as an opset-5 node's attributes (every leaf holds exactly one weight).
fn opset5(e: &Ensemble, aggregate: i64) -> Vec<AttributeProto> {
    let mut branches = e.branches.clone();
    let mut roots = Vec::new();
    for &root in &e.roots {
        roots.push(match root {
            Child::Branch(b) => i64::from(b),
            // Opset 5 writes a one-leaf tree as a branch with that leaf on both sides.
            leaf => {
                let b = Branch {
                    mode: Mode::Leq,
                    feature: 0,
                    split: 0.0,
                    set: 0,
                    missing_true: false,
                    yes: leaf,
                    no: leaf,
                };
                branches.push(b);
                branches.len() as i64 - 1
            }
        });
    }
    let id = |c: Child| match c {
        Child::Branch(b) | Child::Leaf(b) => i64::from(b),
    };
    let is_leaf = |c: Child| i64::from(matches!(c, Child::Leaf(_)));
    let mut members = Vec::new();
    for b in branches.iter().filter(|b| b.mode == Mode::Member) {
        members.extend(&e.sets[b.set as usize]);
        members.push(f64::NAN);
    }
    let column = |f: &dyn Fn(&Branch) -> i64| branches.iter().map(f).collect::<Vec<_>>();
    vec![
        ints("nodes_featureids", &column(&|b| i64::from(b.feature))),
        modes(
            &branches
                .iter()
                .map(|b| mode_code(b.mode) as u8)
                .collect::<Vec<_>>(),
        ),
        doubles(
            "nodes_splits",
            &branches.iter().map(|b| b.split).collect::<Vec<_>>(),
        ),
        ints("nodes_truenodeids", &column(&|b| id(b.yes))),
        ints("nodes_trueleafs", &column(&|b| is_leaf(b.yes))),
        ints("nodes_falsenodeids", &column(&|b| id(b.no))),
        ints("nodes_falseleafs", &column(&|b| is_leaf(b.no))),
        ints(
            "nodes_missing_value_tracks_true",
            &column(&|b| i64::from(b.missing_true)),
        ),
        doubles("membership_values", &members),
        ints(
            "leaf_targetids",
            &e.leaves
                .iter()
                .map(|w| i64::from(w[0].target))
                .collect::<Vec<_>>(),
        ),
        doubles(
            "leaf_weights",
            &e.leaves.iter().map(|w| w[0].value).collect::<Vec<_>>(),
        ),
        ints("tree_roots", &roots),
        int("n_targets", e.n_targets as i64),
        int("aggregate_function", aggregate),
    ]
}

#[test]
fn opset5_kernels_match_a_plain_walk() {
    let mut rng = Rng(42);
    for case in 0..300 {
        let modes = if case % 2 == 0 {
            &ALL[..]
        } else {
            UNIFORM[case / 2 % 5]
        };
        let (e, width) = random_ensemble(&mut rng, modes, true);
        let (code, aggregate) = rng.pick(&[
            (1, Aggregate::Sum),
            (2, Aggregate::Min),
            (3, Aggregate::Max),
        ]);
        let k = kernel("TreeEnsemble", 5, opset5(&e, code)).unwrap();
        let rows = rng.below(700);
        let x = random_rows(&mut rng, rows, width);
        let y = values(
            &k.run(&[Some(&Tensor::f64(vec![rows, width], x.clone()))])
                .unwrap()[0],
        );
        for r in 0..rows {
            let (s, h) = reference(&e, &x[r * width..(r + 1) * width], aggregate);
            // onnxruntime's rules: one target keeps its score (0 if unreached under MIN/MAX,
            // which start from no value), several report an unreached target as 0.
            let expected: Vec<f64> = s
                .iter()
                .zip(&h)
                .map(|(&s, &h)| if h { s } else { 0.0 })
                .collect();
            assert_eq!(
                y[r * e.n_targets..(r + 1) * e.n_targets],
                expected,
                "case {case} row {r}"
            );
        }
    }
}

#[test]
fn damaged_attributes_give_errors_not_panics() {
    let mut rng = Rng(7);
    let edges = [
        -1,
        0,
        1,
        2,
        3,
        7,
        255,
        1 << 28,
        i64::from(u32::MAX),
        i64::MAX,
        i64::MIN,
    ];
    for _ in 0..3000 {
        let (e, width) = random_ensemble(&mut rng, &ALL, true);
        let mut a = opset5(&e, 1);
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(a.len());
            let attribute = &mut a[i];
            if let Some(t) = attribute.t.as_mut() {
                match rng.below(3) {
                    0 => t.raw_data.truncate(rng.below(t.raw_data.len() + 1)),
                    1 => t.dims = vec![rng.pick(&edges)],
                    _ => t.data_type = rng.pick(&[1, 2, 6, 7, 8, 11, 16]),
                }
            } else if !attribute.ints.is_empty() && rng.chance(0.8) {
                let j = rng.below(attribute.ints.len());
                attribute.ints[j] = rng.pick(&edges);
            } else if rng.chance(0.5) {
                attribute.ints.truncate(rng.below(attribute.ints.len() + 1));
            } else {
                attribute.i = rng.pick(&edges);
            }
        }
        if let Ok(k) = kernel("TreeEnsemble", 5, a) {
            let rows = rng.below(20);
            let width = width + rng.below(2) - usize::from(width > 1 && rng.chance(0.3));
            let _ = k.run(&[Some(&Tensor::f64(
                vec![rows, width],
                random_rows(&mut rng, rows, width),
            ))]);
        }
    }
}
