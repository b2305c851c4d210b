//! The random forests' fused walk that decides four levels of a tree with one compare, on
//! AVX-512 (`FusedWalk::Blocks`).
//!
//! The other walks take a tree one level at a time: a node word, then the row's value for its
//! feature, then a comparison, about ten instructions in a chain of two dependent loads
//! (`scalar32`). This one replaces each input value by its rank among the splits its feature
//! meets in the forest (`Ranks`): a 16-bit integer that decides every branch exactly as the
//! float32 value does, since a branch on its feature's `j`-th smallest split holds `rank > j`
//! exactly where the value is above that split (at or above it, for forests of `<` and `>=`).
//! Sixteen-bit ranks put a row of up to 64 features in two registers, so one `vpermt2w`
//! brings the ranks that a block's branches read side by side, and one compare decides them.
//!
//! A tree is cut into blocks of four levels: 15 branches in heap order (position `p`'s
//! children at `2p` and `2p + 1`, the second where `rank > split rank`), padded where a path
//! ends sooner with branches that always take the first child, and 16 exits, each the next
//! block or, in the tree's last level of blocks, a leaf slot. A leaf above the last level
//! exits into blocks of padding down to it, so every path takes the same number of blocks and
//! the walk needs no test. The path through a block's decisions is four bit tests on the
//! compare's mask: no load. Eight rows walk side by side, trees in order, so every row adds
//! its weights tree by tree exactly as the other walks do.
//!
//! On AMD EPYC (Zen 4) the model step of the bench's 100-tree depth-12 random forest ran
//! 1.08x faster than the scalar chains from the vector tops (`TopChains`), ranks included,
//! same digest (BENCHMARKS.md). The blocks are built where they stay compact: at most one
//! block for every `NODES_PER_BLOCK` nodes (a block is 128 bytes against a node word's 8),
//! which deep, unbalanced trees, whose early leaves need many padding blocks, exceed.

#![allow(unsafe_code)]

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::ensemble::Mode;
use super::layout::{Columns, Forest, Modes, Node, Split};

/// Tree levels a block decides: 15 branches and 16 exits, 16-bit lanes of one 256-bit compare.
const LEVELS: u32 = 4;
const LANES: usize = 1 << LEVELS;
/// Features a row's ranks may have: two registers of 32 lanes for `vpermt2w`.
const MAX_WIDTH: usize = 64;
/// The rank of a missing value, above every split's: the branch takes its second child unless
/// the block's `nan_flip` says otherwise.
const NAN_RANK: u16 = u16::MAX;
/// The split rank of padding: no rank is above it, so padding takes the first child.
const PADDING: u16 = u16::MAX;
/// The most distinct splits a feature may have: ranks run from 0 to this, below `NAN_RANK`.
const MAX_SPLITS: usize = NAN_RANK as usize - 1;
/// The blocks' size bound: at most one block for this many nodes, so that they take at most
/// twice the bytes of the node words (the bench's forest: one block for 12.9 nodes).
const NODES_PER_BLOCK: usize = 8;
/// Rows walking side by side: in a C prototype of this walk 8 ran 1.39x faster than 4, and
/// 1.37x faster than 16, which spill registers.
const GROUP: usize = 8;

/// One block: `repr(C)` and 64-byte aligned so that every field loads aligned.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Block {
    /// Each heap position's split rank (`PADDING` where no branch is); position 0 unused.
    splits: [u16; LANES],
    /// Each exit's next block, or in a tree's last level of blocks, its leaf slot.
    next: [u32; LANES],
    features: [u8; LANES],
    /// Positions where a missing value takes the first child.
    nan_flip: u16,
}

const EMPTY: Block = Block {
    splits: [PADDING; LANES],
    next: [0; LANES],
    features: [0; LANES],
    nan_flip: 0,
};

/// A forest as blocks, with the ranks its inputs are read as.
#[derive(Clone, Debug)]
pub struct Blocks {
    ranks: Ranks,
    blocks: Vec<Block>,
    /// Each tree's first block and how many blocks every path through it takes.
    trees: Vec<(u32, u32)>,
}

impl Blocks {
    /// The blocks of a float32 forest whose branches all compare one ordered way, if its
    /// features and splits fit ranks and its blocks stay compact (see the module's notes).
    pub fn new(forest: &Forest<f32>) -> Option<Blocks> {
        let Modes::Uniform { mode, .. } = forest.modes else {
            return None;
        };
        // Whether a branch's yes child is its second (`rank > split rank`) one.
        let above_is_yes = match mode {
            Mode::Leq | Mode::Lt => false,
            Mode::Gt | Mode::Gte => true,
            Mode::Eq | Mode::Neq | Mode::Member => return None,
        };
        if forest.max_feature.is_some_and(|f| f >= MAX_WIDTH) {
            return None;
        }
        let ranks = Ranks::new(forest, matches!(mode, Mode::Lt | Mode::Gte))?;
        let mut builder = Builder {
            ranks: &ranks,
            above_is_yes,
            blocks: Vec::new(),
            most: forest.nodes.len() / NODES_PER_BLOCK + forest.trees.len(),
        };
        let mut trees = Vec::with_capacity(forest.trees.len());
        for tree in &forest.trees {
            let nodes = &forest.nodes[tree.start..][..tree.len];
            // The first block takes what the others leave: a tree of depth 9 decides 1 + 4 + 4
            // levels rather than 4 + 4 + 1, so that its blocks stay few.
            let levels = tree.depth.div_ceil(LEVELS).max(1);
            let first = tree.depth - LEVELS * (levels - 1);
            trees.push((builder.block(nodes, Some(0), first, levels)?, levels));
        }
        Some(Blocks {
            blocks: builder.blocks,
            ranks,
            trees,
        })
    }

    /// Add the leaf weights (`weights`, by `columns`) of as many rows as `scores` holds, tree by
    /// tree, into `scores`; `x` row-major, `width` values a row. `missing`: whether `x` may hold
    /// a NaN (without one the walk skips the missing-value rule). The caller checked that the
    /// CPU has AVX-512, that `width` exceeds every feature the forest reads, and that `columns`
    /// fit the weights (`Leaves::fused_fit`) and every leaf's slot.
    pub fn sums<X: Copy + Into<f32>>(
        &self,
        x: &[X],
        width: usize,
        missing: bool,
        columns: Columns,
        weights: &[f64],
        scores: &mut [f64],
    ) {
        let rows = scores.len() / columns.n_targets;
        assert!(width <= MAX_WIDTH && x.len() >= rows * width && rows.is_multiple_of(GROUP));
        thread_local! {
            // Reused: a fresh buffer every tile had the kernel clear pages (14% of a profile).
            static RANKS: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
        }
        RANKS.with_borrow_mut(|ranks| {
            ranks.clear();
            ranks.resize(rows * width, 0);
            // SAFETY: the caller checked the CPU; `ranks` holds `rows` rows of `width`.
            unsafe {
                self.ranks.rank(&x[..rows * width], width, ranks);
                if missing {
                    self.walk::<true>(ranks, width, columns, weights, scores);
                } else {
                    self.walk::<false>(ranks, width, columns, weights, scores);
                }
            }
        });
    }

    /// # Safety
    /// As `sums` promises.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn walk<const MISSING: bool>(
        &self,
        ranks: &[u16],
        width: usize,
        columns: Columns,
        weights: &[f64],
        scores: &mut [f64],
    ) {
        let rows = ranks.len() / width;
        // A row's ranks in two registers, lanes past `width` zero.
        let low_lanes = (1u64 << width.min(32)) - 1;
        let high_lanes = (1u64 << (width.max(32) - 32)) - 1;
        let blocks = self.blocks.as_ptr();
        for &(root, levels) in &self.trees {
            for first in (0..rows).step_by(GROUP) {
                let (mut low, mut high) = (
                    [_mm512_setzero_si512(); GROUP],
                    [_mm512_setzero_si512(); GROUP],
                );
                for k in 0..GROUP {
                    // SAFETY: rows `first..first + GROUP` are inside `ranks` (`rows % GROUP ==
                    // 0`), and the masks load only their `width` values.
                    unsafe {
                        let row = ranks.as_ptr().add((first + k) * width);
                        low[k] = _mm512_maskz_loadu_epi16(low_lanes as __mmask32, row.cast());
                        high[k] =
                            _mm512_maskz_loadu_epi16(high_lanes as __mmask32, row.add(32).cast());
                    }
                }
                let mut at = [root; GROUP];
                for _ in 0..levels {
                    for k in 0..GROUP {
                        // SAFETY: every `next` of a block above a tree's last level is a block
                        // of `self.blocks` (`Builder::block`).
                        at[k] = unsafe {
                            descend::<MISSING>(&*blocks.add(at[k] as usize), low[k], high[k])
                        };
                    }
                }
                for (k, &slot) in at.iter().enumerate() {
                    columns.add(weights, scores, first + k, slot as usize);
                }
            }
        }
    }
}

/// The exit a row takes through `block`, its ranks in `low` (features 0-31) and `high`.
///
/// # Safety
/// The CPU has AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[inline]
unsafe fn descend<const MISSING: bool>(block: &Block, low: __m512i, high: __m512i) -> u32 {
    // SAFETY: `Block` is 64-byte aligned, `features` at byte 96 and `splits` at 0.
    unsafe {
        let features = _mm256_cvtepu8_epi16(_mm_load_si128(block.features.as_ptr().cast()));
        let ranks = _mm512_permutex2var_epi16(low, _mm512_castsi256_si512(features), high);
        let ranks = _mm512_castsi512_si256(ranks);
        let splits = _mm256_load_si256(block.splits.as_ptr().cast());
        let mut above = u32::from(_mm256_cmpgt_epu16_mask(ranks, splits));
        if MISSING {
            let nan = _mm256_cmpeq_epi16_mask(ranks, _mm256_set1_epi16(NAN_RANK as i16));
            above ^= u32::from(nan & block.nan_flip);
        }
        // Four levels of `position = 2 * position + bit`, in assembly: `bt` and `adc` take two
        // cycles a level where shifts and masks take three, and written in Rust, LLVM turned
        // the eight rows' paths into vector shifts and a gather of `next` that cost a quarter
        // of the walk.
        let mut position: u32 = 1;
        std::arch::asm!(
            "bt {above:e}, {position:e}",
            "adc {position:e}, {position:e}",
            "bt {above:e}, {position:e}",
            "adc {position:e}, {position:e}",
            "bt {above:e}, {position:e}",
            "adc {position:e}, {position:e}",
            "bt {above:e}, {position:e}",
            "adc {position:e}, {position:e}",
            above = in(reg) above,
            position = inout(reg) position,
            options(pure, nomem, nostack),
        );
        block.next[position as usize & (LANES - 1)]
    }
}

struct Builder<'a> {
    ranks: &'a Ranks,
    above_is_yes: bool,
    blocks: Vec<Block>,
    /// The most blocks the forest may take.
    most: usize,
}

impl Builder<'_> {
    /// The block from `node` (`None`: below a leaf, unreachable) that decides its first
    /// `decides` levels, with `levels` levels of blocks under it, this one included, laid out
    /// depth first; `None` past `most` blocks.
    fn block(
        &mut self,
        nodes: &[Node<f32>],
        node: Option<usize>,
        decides: u32,
        levels: u32,
    ) -> Option<u32> {
        if self.blocks.len() >= self.most {
            return None;
        }
        let index = self.blocks.len();
        self.blocks.push(EMPTY);
        let mut block = EMPTY;
        // The node at each heap position, and at the exits (positions 16-31).
        let mut at = [None; 2 * LANES];
        at[1] = node;
        for position in 1..LANES {
            let Some(n) = at[position] else { continue };
            let branch = &nodes[n];
            if branch.is_leaf() || position >= 1 << decides {
                // Padding: the node goes down the first children to an exit.
                at[2 * position] = Some(n);
                continue;
            }
            let feature = branch.feature();
            block.features[position] = feature as u8;
            block.splits[position] = self.ranks.split_rank(feature, branch.split);
            let (yes, no) = (branch.left as usize, branch.left as usize + 1);
            let (first, second) = if self.above_is_yes {
                (no, yes)
            } else {
                (yes, no)
            };
            at[2 * position] = Some(first);
            at[2 * position + 1] = Some(second);
            // A missing value ranks above every split, so takes the second child; it should
            // take the yes one where the branch says so.
            if branch.missing_true() != self.above_is_yes {
                block.nan_flip |= 1 << position;
            }
        }
        for (exit, &n) in at[LANES..].iter().enumerate() {
            block.next[exit] = match n {
                None => 0,
                Some(n) if levels == 1 => nodes[n].split.slot(),
                Some(n) => self.block(nodes, Some(n), LEVELS, levels - 1)?,
            };
        }
        self.blocks[index] = block;
        Some(index as u32)
    }
}

/// Each feature's splits, sorted, as a search that finds a value's rank among them with a
/// few 16-lane compares: a 16-ary tree of levels, each level's entry the last split of its
/// range of the sorted splits (the level below splits each range in 16).
#[derive(Clone, Debug)]
struct Ranks {
    /// Whether a rank counts the splits at most the value (`<` and `>=` forests) rather than
    /// below it.
    inclusive: bool,
    features: Vec<Search>,
}

#[derive(Clone, Debug, Default)]
struct Search {
    splits: Vec<f32>,
    /// The levels' entries, top level first, each a multiple of 16 padded with NaN (which
    /// no value passes), and where each level starts.
    entries: Vec<f32>,
    starts: Vec<usize>,
}

impl Ranks {
    fn new(forest: &Forest<f32>, inclusive: bool) -> Option<Ranks> {
        let width = forest.max_feature.map_or(0, |f| f + 1);
        let mut features = vec![Search::default(); width];
        for node in forest.nodes.iter().filter(|n| !n.is_leaf()) {
            // -0 and 0 decide alike: one split.
            features[node.feature()].splits.push(node.split + 0.0);
        }
        for search in &mut features {
            if search.splits.iter().any(|s| s.is_nan()) {
                return None;
            }
            search.splits.sort_by(f32::total_cmp);
            search.splits.dedup();
            if search.splits.len() > MAX_SPLITS {
                return None;
            }
            search.build();
        }
        Some(Ranks {
            inclusive,
            features,
        })
    }

    /// The rank of split `split` of a branch on `feature`: its index among the sorted splits.
    fn split_rank(&self, feature: usize, split: f32) -> u16 {
        let splits = &self.features[feature].splits;
        let index = splits.partition_point(|&s| s < split + 0.0);
        debug_assert_eq!(splits[index], split + 0.0);
        index as u16
    }

    /// `x`'s values (row-major, `width` a row) as ranks in `out`.
    ///
    /// # Safety
    /// The CPU has AVX-512 F; `out` is as long as `x`.
    #[target_feature(enable = "avx512f,popcnt")]
    unsafe fn rank<X: Copy + Into<f32>>(&self, x: &[X], width: usize, out: &mut [u16]) {
        let used = self.features.len().min(width);
        for (row, ranks) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
            for (f, search) in self.features[..used].iter().enumerate() {
                // SAFETY: as the caller promised.
                ranks[f] = unsafe {
                    if self.inclusive {
                        search.rank::<true>(row[f].into())
                    } else {
                        search.rank::<false>(row[f].into())
                    }
                };
            }
        }
    }
}

impl Search {
    fn build(&mut self) {
        let n = self.splits.len();
        let mut levels = u32::from(n > 0);
        while LANES.pow(levels) < n {
            levels += 1;
        }
        for level in 0..levels {
            // Each entry stands for a range of this many splits.
            let range = LANES.pow(levels - level - 1);
            let last = level + 1 == levels;
            self.starts.push(self.entries.len());
            let count = n.div_ceil(range).next_multiple_of(LANES);
            self.entries.extend((0..count).map(|e| {
                let end = (e + 1) * range;
                // Above the last level, the last range is never passed: a value above all its
                // splits goes down into it (so the search stays inside the level below).
                let passable = if last { end <= n } else { end < n };
                if passable {
                    self.splits[end - 1]
                } else {
                    f32::NAN
                }
            }));
        }
    }

    /// The number of splits below `value` (at most `value` if `INCLUSIVE`); `NAN_RANK` for NaN.
    ///
    /// # Safety
    /// The CPU has AVX-512 F.
    #[target_feature(enable = "avx512f,popcnt")]
    #[inline]
    unsafe fn rank<const INCLUSIVE: bool>(&self, value: f32) -> u16 {
        if value.is_nan() {
            return NAN_RANK;
        }
        let broadcast = _mm512_set1_ps(value);
        let mut at = 0;
        for &start in &self.starts {
            // SAFETY: `at` is a range of this level (see `build`), whose 16 entries exist.
            let entries = unsafe { _mm512_loadu_ps(self.entries.as_ptr().add(start + at * LANES)) };
            let passed = if INCLUSIVE {
                _mm512_cmp_ps_mask::<_CMP_LE_OQ>(entries, broadcast)
            } else {
                _mm512_cmp_ps_mask::<_CMP_LT_OQ>(entries, broadcast)
            };
            at = at * LANES + passed.count_ones() as usize;
        }
        at as u16
    }
}

#[cfg(test)]
mod tests {
    use super::super::ensemble::{Branch, Child, Ensemble, Weight};
    use super::super::evaluate::sum_leaves;
    use super::super::node::FusedWalk;
    use super::*;
    use crate::plan::isa::Isa;

    /// Ranks count the splits below (or at most) a value, for split counts on both sides of
    /// each level's 16, 256 and 4,096, at, between and beyond the splits.
    #[test]
    fn ranks_count_the_splits_below_a_value() {
        if !Isa::Avx512.supported() {
            return;
        }
        for n in [0, 1, 2, 15, 16, 17, 255, 256, 257, 4095, 4096, 4097, 5000] {
            let mut search = Search {
                splits: (0..n).map(|i| i as f32 - 7.0).collect(),
                ..Search::default()
            };
            search.splits[0..n.min(1)].fill(f32::NEG_INFINITY);
            search.build();
            let mut values = vec![f32::NEG_INFINITY, f32::INFINITY, -0.0, 0.0, f32::MAX];
            values.extend((0..n + 2).flat_map(|i| [i as f32 - 8.0, i as f32 - 7.5]));
            for value in values {
                let below = search.splits.iter().filter(|&&s| s < value).count();
                let at_most = search.splits.iter().filter(|&&s| s <= value).count();
                // SAFETY: the CPU has AVX-512 (checked above).
                let ranks = unsafe { (search.rank::<false>(value), search.rank::<true>(value)) };
                assert_eq!(ranks, (below as u16, at_most as u16), "{n} splits, {value}");
            }
            // SAFETY: as above.
            assert_eq!(unsafe { search.rank::<false>(f32::NAN) }, NAN_RANK);
        }
    }

    /// A deep, one-sided tree (with more leaves than bitvectors take) would need blocks of
    /// padding under most of its leaves: it has none, and the block walk hands it to the
    /// chains.
    #[test]
    fn unbalanced_trees_keep_the_chains() {
        if !Isa::Avx512.supported() {
            return;
        }
        let depth = 70;
        let mut e = Ensemble {
            n_targets: 1,
            ..Ensemble::default()
        };
        let mut below = Child::Leaf(0);
        e.leaves.push(vec![Weight {
            target: 0,
            value: 0.5,
        }]);
        for level in 0..depth {
            e.leaves.push(vec![Weight {
                target: 0,
                value: f64::from(level),
            }]);
            e.branches.push(Branch {
                mode: Mode::Leq,
                feature: 0,
                split: f64::from(level),
                set: 0,
                missing_true: false,
                yes: below,
                no: Child::Leaf(e.leaves.len() as u32 - 1),
            });
            below = Child::Branch(e.branches.len() as u32 - 1);
        }
        e.roots.push(below);
        let forest = Forest::<f32>::new(&e).unwrap();
        assert!(forest.blocks().is_none() && !forest.packed.is_empty());
        let x: Vec<f32> = (0..64).map(|i| i as f32 - 10.5).collect();
        let mut scores = vec![0.0; 64];
        let columns = forest.leaves.columns(1).unwrap();
        let walk = FusedWalk::Blocks;
        assert_eq!(
            sum_leaves(&forest, &x, 64, 1, walk, columns, &mut scores),
            64
        );
        for (value, score) in x.iter().zip(&scores) {
            // The root splits at 69, its yes child at 68, ..., each branch's no leaf weighing
            // its split: a value reaches the largest split below it, 0.5 below them all.
            let expected = if *value < 0.0 { 0.5 } else { value.floor() };
            assert_eq!(*score, f64::from(expected), "{value}");
        }
    }
}
