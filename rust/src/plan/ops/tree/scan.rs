//! The bitvector scan (`bitvector`) over one mask word: `u32` when every tree has at most 32
//! leaves (gradient boosting's default of 31), `u64` up to 64.
//!
//! A block of rows (`L` lanes: 64 for `u32` words, 16 for `u64`, see `bitvector`) keeps one
//! word per tree and lane. Each feature's branches are grouped by distinct split (RapidScorer,
//! Ye et al., KDD 2018): one comparison of the block's values with a split gives the lanes
//! where it is false, for every branch at that split; each branch then ANDs its mask into its
//! tree's words at those lanes (with AVX-512: one masked AND per 16 lanes). Histogram gradient
//! boosting splits on at most 255 bin edges a feature, so the 6,000 branches of the bench's
//! model share 1,382 splits.
//!
//! Single-target sums (a regressor, a binary classifier) add each lane's leaf weight as the
//! block finishes (`Sums`): per tree, the lowest set bit of each lane's word picks the weight
//! from the tree's table, added in tree order, the same additions `aggregate` makes through a
//! sink, without a call per tree and block.

use super::layout::Split;
pub use super::word::Word;
use crate::plan::isa::Isa;

/// One branch as the scan needs it: its feature, split, tree, the mask clearing its true
/// side's leaves, and whether NaN goes to the true side.
pub type Branch<T> = (usize, T, u32, u64, bool);

/// Each tree's leaf weights in leaf order (`W::BITS` a tree), all added to one target: a
/// regressor's or a binary classifier's single score.
#[derive(Clone, Debug)]
pub struct Weights {
    pub values: Vec<f64>,
    pub target: usize,
}

/// One feature's place in `Scan::splits` and `Scan::pairs`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Feature {
    pub(super) splits: (usize, usize),
    /// Where its first split's branches start in `pairs`.
    first: usize,
}

#[derive(Clone, Debug)]
pub struct Scan<T, W> {
    pub(super) features: Vec<Feature>,
    /// Each feature's distinct splits, ascending, each with the end of its branches in
    /// `pairs` (they start where the previous split's end).
    pub(super) splits: Vec<(T, u32)>,
    /// Each branch's tree (below `n_trees`) and mask.
    pairs: Vec<(u32, W)>,
    /// Per feature, the branches a NaN makes false, as (tree, mask).
    missing: Vec<Vec<(u32, W)>>,
    /// The branches again, tree by tree (`by_tree`): tree `t`'s are
    /// `tree_branches[tree_bounds[t]..tree_bounds[t + 1]]`, each as (lane mask index, mask). Lane
    /// mask `2 * s` is where split `s` is false for a number, `2 * s + 1` that or a NaN (for
    /// the branches sending NaN to their false side).
    pub(super) tree_branches: Vec<(u32, W)>,
    pub(super) tree_bounds: Vec<usize>,
    /// Leaf slot of each tree's leaves in left-to-right order, `W::BITS` per tree.
    slots: Vec<u32>,
    pub(super) weights: Option<Weights>,
    pub(super) n_trees: usize,
}

impl<T: Split, W: Word> Scan<T, W> {
    /// `branches` sorted by feature then split (no NaN split), each tree below `n_trees`;
    /// `slots` and `weights` as the fields; every feature below `width`.
    pub fn new(
        branches: &[Branch<T>],
        width: usize,
        slots: Vec<u32>,
        weights: Option<Weights>,
        n_trees: usize,
    ) -> Self {
        assert!(branches.iter().all(|b| (b.2 as usize) < n_trees));
        let mut scan = Self {
            features: vec![Feature::default(); width],
            splits: Vec::new(),
            pairs: branches.iter().map(|b| (b.2, W::truncate(b.3))).collect(),
            missing: vec![Vec::new(); width],
            tree_branches: Vec::new(),
            tree_bounds: Vec::new(),
            slots,
            weights,
            n_trees,
        };
        let mut by_tree = Vec::with_capacity(branches.len());
        for (i, &(f, split, tree, mask, missing_true)) in branches.iter().enumerate() {
            let new_feature = i == 0 || branches[i - 1].0 != f;
            if new_feature {
                scan.features[f].splits.0 = scan.splits.len();
                scan.features[f].first = i;
            }
            if new_feature || branches[i - 1].1 != split {
                scan.splits.push((split, 0));
            }
            if let Some(last) = scan.splits.last_mut() {
                last.1 = i as u32 + 1;
            }
            scan.features[f].splits.1 = scan.splits.len();
            if !missing_true {
                scan.missing[f].push((tree, W::truncate(mask)));
            }
            let lane_mask = 2 * (scan.splits.len() - 1) + usize::from(!missing_true);
            by_tree.push((tree, lane_mask as u32, W::truncate(mask)));
        }
        by_tree.sort_by_key(|&(tree, ..)| tree);
        scan.tree_bounds = (0..=n_trees)
            .map(|t| by_tree.partition_point(|&(tree, ..)| (tree as usize) < t))
            .collect();
        scan.tree_branches = (by_tree.iter()).map(|&(_, m, mask)| (m, mask)).collect();
        scan
    }

    pub fn weights(&self) -> Option<&Weights> {
        self.weights.as_ref()
    }

    /// `sink(first, slots)` per block of `L` rows and tree (`Bitvectors::visit_leaves`).
    pub fn visit_leaves<const L: usize, X: Copy + Into<T>>(
        &self,
        x: &[X],
        rows: usize,
        width: usize,
        isa: Isa,
        sink: &mut impl FnMut(usize, &[u32]),
    ) {
        let mut finish = Slots {
            slots: &self.slots,
            sink,
        };
        self.scan::<L, X>(x, rows, width, isa, &mut finish);
    }

    /// Add each row's leaf weights, tree by tree, to its score `scores[row * n_targets +
    /// weights.target]`: the same additions in the same order as `visit_leaves` with a summing
    /// sink, without a call per tree. Needs `weights`.
    pub fn sum_leaves<const L: usize, X: Copy + Into<T>>(
        &self,
        x: &[X],
        rows: usize,
        width: usize,
        isa: Isa,
        n_targets: usize,
        scores: &mut [f64],
    ) {
        let weights = self.weights.as_ref().expect("single-target weights");
        let mut finish = Sums {
            weights: &weights.values,
            target: weights.target,
            n_targets,
            scores,
        };
        self.scan::<L, X>(x, rows, width, isa, &mut finish);
    }

    /// The words of every tree for each block of `L` rows, handed to `finish`, with the loops
    /// compiled for `isa`, which the CPU must have (`Isa::detect`, `Isa::available`). The
    /// scan's loops are what the wider vectors speed up: with AVX-512 a block's lanes compare
    /// and AND in one or two instructions instead of eight.
    #[allow(unsafe_code)]
    fn scan<const L: usize, X: Copy + Into<T>>(
        &self,
        x: &[X],
        rows: usize,
        width: usize,
        isa: Isa,
        finish: &mut impl Finish<W>,
    ) {
        assert!(isa.supported(), "{isa:?} on a CPU without it");
        match isa {
            // SAFETY: the CPU has AVX-512 F/VL/DQ/BW, AVX2, FMA, BMI1/2: checked above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.scan_avx512::<L, X>(x, rows, width, finish) },
            // SAFETY: as above, the CPU has AVX2, FMA, BMI1/2.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.scan_avx2::<L, X>(x, rows, width, finish) },
            _ => self.scan_plain::<L, X, false>(x, rows, width, finish),
        }
    }

    // The two wrappers below are the same scan compiled again: `scan_plain` and `finish` are
    // inlined into each, so the compiler vectorizes them for the wider instruction set.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,bmi1,bmi2")]
    fn scan_avx512<const L: usize, X: Copy + Into<T>>(
        &self,
        x: &[X],
        rows: usize,
        width: usize,
        finish: &mut impl Finish<W>,
    ) {
        self.scan_plain::<L, X, true>(x, rows, width, finish)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,bmi1,bmi2")]
    fn scan_avx2<const L: usize, X: Copy + Into<T>>(
        &self,
        x: &[X],
        rows: usize,
        width: usize,
        finish: &mut impl Finish<W>,
    ) {
        self.scan_plain::<L, X, false>(x, rows, width, finish)
    }

    /// `AVX512`: called from `scan_avx512`, so the AVX-512 branch loop may run.
    #[inline(always)]
    fn scan_plain<const L: usize, X: Copy + Into<T>, const AVX512: bool>(
        &self,
        x: &[X],
        rows: usize,
        width: usize,
        finish: &mut impl Finish<W>,
    ) {
        // The AVX-512 kernels' lane masks are one u64 of whole vectors.
        const { assert!(L.is_multiple_of(16) && L <= 64) };
        let mut found = vec![[W::ONES; L]; self.n_trees];
        // `apply_feature` relies on it.
        assert_eq!(found.len(), self.n_trees);
        let mut lanes = vec![[T::from_f64(0.0); L]; self.features.len()];
        for start in (0..rows).step_by(L) {
            let n = L.min(rows - start);
            block_lanes(x, start, n, width, &mut lanes);
            found.iter_mut().for_each(|v| *v = [W::ONES; L]);
            for (f, values) in lanes.iter().enumerate() {
                self.apply_feature::<L, AVX512>(f, values, &mut found);
            }
            finish.finish(start, n, &found);
        }
    }

    /// AND the masks of feature `f`'s false branches into each lane's words.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn apply_feature<const L: usize, const AVX512: bool>(
        &self,
        f: usize,
        values: &[T; L],
        found: &mut [[W; L]],
    ) {
        // A local copy: the compiler then knows `found` cannot overlap it and vectorizes.
        let values = *values;
        // NaN fails `<`, so the largest number decides how far any lane reads.
        let mut largest = values[0];
        let mut any_nan = false;
        for v in values {
            if v > largest || largest.is_nan() {
                largest = v;
            }
            any_nan |= v.is_nan();
        }
        let feature = self.features[f];
        let mut from = feature.first;
        for &(split, to) in &self.splits[feature.splits.0..feature.splits.1] {
            // Sorted splits: from the first one not below every lane, no branch is false.
            if split.partial_cmp(&largest) != Some(std::cmp::Ordering::Less) {
                break;
            }
            let pairs = &self.pairs[from..to as usize];
            #[cfg(target_arch = "x86_64")]
            if AVX512 {
                // SAFETY: called from `scan_avx512`, so the CPU has AVX-512; `new` checked every
                // tree is below `n_trees`, which is `found.len()` (checked in `scan_plain`);
                // `Bitvectors` runs 16, 32 or 64 lanes.
                unsafe {
                    // The lanes where the branches are false.
                    let lanes = split.below_lanes(&values);
                    W::and_lanes_avx512(found, pairs, lanes);
                }
                from = to as usize;
                continue;
            }
            // All ones where the branches hold, zero where they are false.
            let mut keep = [W::ONES; L];
            for (keep, &v) in keep.iter_mut().zip(&values) {
                *keep = W::unless(split < v);
            }
            for &(tree, mask) in pairs {
                // SAFETY: `new` checked every tree is below `n_trees`, which is `found.len()`
                // (checked in `scan_plain`). The bounds check would be a fifth of the loop.
                let bits = unsafe { found.get_unchecked_mut(tree as usize) };
                for (bits, &keep) in bits.iter_mut().zip(&keep) {
                    *bits &= mask | keep;
                }
            }
            from = to as usize;
        }
        if any_nan {
            for &(tree, mask) in &self.missing[f] {
                for (bits, &v) in found[tree as usize].iter_mut().zip(&values) {
                    *bits &= mask | W::unless(v.is_nan());
                }
            }
        }
    }
}

/// Feature-major values of rows `start..start + n` of `x` (`width` values a row) into `lanes`
/// (one array per feature); lanes past `n` repeat the first row.
#[inline(always)]
pub(super) fn block_lanes<T: Split, X: Copy + Into<T>, const L: usize>(
    x: &[X],
    start: usize,
    n: usize,
    width: usize,
    lanes: &mut [[T; L]],
) {
    for lane in 0..L {
        let row = start + if lane < n { lane } else { 0 };
        let row = &x[row * width..][..lanes.len()];
        for (values, &value) in lanes.iter_mut().zip(row) {
            values[lane] = value.into();
        }
    }
}

/// What happens to a block's words once its scan is done.
trait Finish<W> {
    /// Rows `start..start + n` are the first `n` lanes of `found` (a word per tree and lane).
    fn finish<const L: usize>(&mut self, start: usize, n: usize, found: &[[W; L]]);
}

/// Each tree's leaf slots handed to `sink`, a tree at a time.
struct Slots<'a, S> {
    /// `W::BITS` a tree.
    slots: &'a [u32],
    sink: &'a mut S,
}

impl<W: Word, S: FnMut(usize, &[u32])> Finish<W> for Slots<'_, S> {
    #[inline(always)]
    fn finish<const L: usize>(&mut self, start: usize, n: usize, found: &[[W; L]]) {
        let mut slots = [0u32; L];
        for (tree, bits) in self.slots.chunks_exact(W::BITS).zip(found) {
            for (slot, bits) in slots.iter_mut().zip(bits) {
                *slot = tree[bits.lowest() & (W::BITS - 1)];
            }
            (self.sink)(start, &slots[..n]);
        }
    }
}

/// Each tree's leaf weight added to the rows' scores, in tree order.
struct Sums<'a> {
    /// `W::BITS` a tree.
    weights: &'a [f64],
    target: usize,
    n_targets: usize,
    scores: &'a mut [f64],
}

impl<W: Word> Finish<W> for Sums<'_> {
    #[inline(always)]
    fn finish<const L: usize>(&mut self, start: usize, n: usize, found: &[[W; L]]) {
        let mut sums = [0.0; L];
        let at = |lane: usize| (start + lane) * self.n_targets + self.target;
        for (lane, sum) in sums[..n].iter_mut().enumerate() {
            *sum = self.scores[at(lane)];
        }
        for (tree, bits) in self.weights.chunks_exact(W::BITS).zip(found) {
            for (sum, bits) in sums.iter_mut().zip(bits) {
                *sum += tree[bits.lowest() & (W::BITS - 1)];
            }
        }
        for (lane, sum) in sums[..n].iter().enumerate() {
            self.scores[at(lane)] = *sum;
        }
    }
}
