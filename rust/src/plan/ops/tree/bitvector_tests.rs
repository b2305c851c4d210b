//! The bitvector scan (`bitvector`, `scan`) on gradient-boosting-like forests: every branch
//! `x <= split`, up to 64 leaves a tree, many branches sharing a split, against a plain walk
//! of the ensemble (`random_tests::reference`) and the laid-out traversal, bit for bit, with
//! every instruction set the CPU has.

use super::aggregate::{accumulate, Aggregate, Scores};
use super::bitvector::Bitvectors;
use super::ensemble::{Branch, Child, Ensemble, Mode, Weight};
use super::layout::Forest;
use super::random_tests::{reference, Rng};
use crate::plan::isa::Isa;

/// Per feature, `distinct` thresholds (with -0.0 and the infinities among them), from which
/// both splits and inputs are drawn, so inputs land exactly on splits.
fn thresholds(rng: &mut Rng, distinct: usize) -> Vec<f64> {
    let special = [-0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY];
    (0..distinct)
        .map(|i| match i {
            i if i < special.len() && distinct > 8 => special[i],
            _ => (rng.below(1 << 20) as f64 - 5e5) / 64.0,
        })
        .collect()
}

/// One tree of exactly `leaves` leaves, grown by splitting a random leaf, single weights for
/// target `target`, NaN sent either way.
fn tree(rng: &mut Rng, e: &mut Ensemble, pools: &[Vec<f64>], leaves: usize, target: u32) -> Child {
    let leaf = |rng: &mut Rng, e: &mut Ensemble| {
        // Varied magnitudes, full mantissas: sums depend on their order.
        let value = (rng.next() as f64 / u64::MAX as f64 - 0.5) * f64::from(1u32 << rng.below(30));
        e.leaves.push(vec![Weight { target, value }]);
        Child::Leaf(e.leaves.len() as u32 - 1)
    };
    let root = leaf(rng, e);
    // Where each leaf hangs: (branch, on its true side), or the root.
    let mut open: Vec<(Option<(u32, bool)>, Child)> = vec![(None, root)];
    for _ in 1..leaves {
        let (parent, old) = open.swap_remove(rng.below(open.len()));
        let feature = rng.below(pools.len());
        let split = pools[feature][rng.below(pools[feature].len())];
        let new = leaf(rng, e);
        e.branches.push(Branch {
            mode: Mode::Leq,
            feature: feature as u32,
            split,
            set: 0,
            missing_true: rng.chance(0.5),
            yes: old,
            no: new,
        });
        let b = e.branches.len() as u32 - 1;
        match parent {
            Some((p, true)) => e.branches[p as usize].yes = Child::Branch(b),
            Some((p, false)) => e.branches[p as usize].no = Child::Branch(b),
            None => e.roots.push(Child::Branch(b)),
        }
        open.extend([(Some((b, true)), old), (Some((b, false)), new)]);
    }
    if leaves == 1 {
        e.roots.push(root);
    }
    *e.roots.last().unwrap()
}

fn rows(rng: &mut Rng, pools: &[Vec<f64>], n: usize) -> Vec<f64> {
    (0..n * pools.len())
        .map(|i| {
            let pool = &pools[i % pools.len()];
            match rng.below(6) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => -pool[rng.below(pool.len())],
                _ => pool[rng.below(pool.len())],
            }
        })
        .collect()
}

/// `forest` scored with its bitvectors (fused sums and the sink), then with traversal, against
/// the plain walk, for every instruction set; and laid out in float32 (every split and input
/// here is a float32), whose scan compares sixteen lanes a vector.
fn check(e: &Ensemble, x: &[f64], width: usize) {
    let rows = x.len() / width;
    let forest = Forest::<f64>::new(e).unwrap();
    let bitvectors = forest.bitvectors.as_ref().expect("bitvectors");
    assert!(bitvectors.sums(), "single-target weights");
    let trees = e.roots.len();
    let mut traversal = forest.clone();
    traversal.bitvectors = None;
    let forest32 = Forest::<f32>::new(e).unwrap();
    assert!(forest32.bitvectors.is_some(), "float32 bitvectors");
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let expect = |scores: &Scores, what: &str| {
        for r in 0..rows {
            let (s, _) = reference(e, &x[r * width..(r + 1) * width], Aggregate::Sum);
            let what = format!("row {r} of {rows}, {trees} trees, {what}");
            assert_eq!(bits(scores.row(r)), bits(&s), "{what}");
        }
    };
    for isa in Isa::available() {
        for (forest, tracked) in [(&forest, false), (&forest, true), (&traversal, false)] {
            let mut scores = Scores::new(rows, e.n_targets, tracked);
            accumulate(forest, x, rows, width, Aggregate::Sum, isa, &mut scores);
            expect(&scores, &format!("{isa:?}, {tracked}"));
        }
        let mut scores = Scores::new(rows, e.n_targets, false);
        accumulate(
            &forest32,
            &x32,
            rows,
            width,
            Aggregate::Sum,
            isa,
            &mut scores,
        );
        expect(&scores, &format!("{isa:?}, float32"));
    }
}

fn forest(rng: &mut Rng, leaves: std::ops::RangeInclusive<usize>, distinct: usize) -> Ensemble {
    let width = 1 + rng.below(4);
    let pools: Vec<Vec<f64>> = (0..width).map(|_| thresholds(rng, distinct)).collect();
    let mut e = Ensemble {
        n_targets: 1 + rng.below(2),
        ..Ensemble::default()
    };
    let target = rng.below(e.n_targets) as u32;
    for _ in 0..1 + rng.below(12) {
        let n = leaves.start() + rng.below(leaves.end() - leaves.start() + 1);
        tree(rng, &mut e, &pools, n, target);
    }
    e
}

#[test]
fn narrow_and_wide_words_match_a_plain_walk() {
    let mut rng = Rng(0x5EED_0032_0064_0001);
    for case in 0..120 {
        let (leaves, narrow) = match case % 2 {
            0 => (1..=32, true),
            _ => (33..=64, false),
        };
        let distinct = [1, 3, 255, 256, 300][case / 2 % 5];
        let e = forest(&mut rng, leaves, distinct);
        let width = (e.branches.iter().map(|b| b.feature as usize).max()).map_or(1, |f| f + 1);
        let forest = Forest::<f64>::new(&e).unwrap();
        let is_narrow = matches!(forest.bitvectors, Some(Bitvectors::Narrow(_)));
        assert_eq!(is_narrow, narrow, "case {case}");
        let pools: Vec<Vec<f64>> = (0..width).map(|_| thresholds(&mut rng, distinct)).collect();
        // Empty, one row, a block and a bit (64 lanes), several blocks with a tail.
        let n = [0, 1, 65, 64 * 3 + 17][case / 10 % 4];
        // Inputs on the forest's own splits, too.
        let mut x = rows(&mut rng, &pools, n);
        for (i, v) in x.iter_mut().enumerate() {
            if rng.chance(0.5) && !e.branches.is_empty() {
                let b = &e.branches[rng.below(e.branches.len())];
                if b.feature as usize == i % width {
                    *v = b.split;
                }
            }
        }
        check(&e, &x, width);
    }
}

#[test]
fn a_32_leaf_tree_takes_narrow_words_and_33_wide() {
    let mut rng = Rng(7);
    for (leaves, narrow) in [(1, true), (32, true), (33, false), (64, false)] {
        let pools = vec![thresholds(&mut rng, 40)];
        let mut e = Ensemble {
            n_targets: 1,
            ..Ensemble::default()
        };
        tree(&mut rng, &mut e, &pools, leaves, 0);
        let forest = Forest::<f64>::new(&e).unwrap();
        let is_narrow = matches!(forest.bitvectors, Some(Bitvectors::Narrow(_)));
        assert_eq!(is_narrow, narrow, "{leaves} leaves");
        let x = rows(&mut rng, &pools, 130);
        check(&e, &x, 1);
    }
}
