//! Trees laid out for traversal: one flat array of small nodes (`node`) per ensemble.
//!
//! A node's false child is always at `left + 1`, its true child's index. Each tree's nodes
//! are contiguous: the top levels breadth first, then clusters of two levels taken depth first
//! (`lay_out`), so that a walk finds its next nodes close by. Leaves are nodes too, built so that a step from a leaf lands on the leaf again:
//! `left` is the leaf's own index minus one and its split is a NaN, which fails every ordered
//! comparison (mixed-mode traversal reads the leaf mode instead), so the step takes `left + 1`. Traversal can therefore run a fixed number of
//! steps without testing for leaves. The NaN's payload carries the leaf's slot in the weight
//! tables, and a `Member` branch's NaN split carries the index of its set the same way.
//! Trees of the same shape are merged as they are added (`merge`).

use std::collections::HashMap;
#[cfg(target_arch = "x86_64")]
use std::sync::OnceLock;

use super::bitvector::Bitvectors;
#[cfg(target_arch = "x86_64")]
use super::blocks::Blocks;
use super::ensemble::{Child, Ensemble, Mode};
use super::merge::Builder;
pub use super::node::{mode_code, Node, Split, LEAF};
use super::node::{MISSING_TRUE, MODE_SHIFT};
use super::top::Tops;
#[cfg(target_arch = "x86_64")]
use crate::plan::isa::Isa;

/// One tree's place in `Forest::nodes`.
#[derive(Clone, Copy, Debug)]
pub struct Tree {
    pub start: usize,
    pub len: usize,
    /// The longest path from the root to a leaf, in steps.
    pub depth: u32,
}

/// How traversal compares: one mode for every branch (the fast path) or each node's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modes {
    /// Every branch uses this mode (never `Neq` or `Member`, whose leaves would not stay put);
    /// `missing` is whether any branch sends NaN to the true side.
    Uniform {
        mode: Mode,
        missing: bool,
    },
    Mixed,
}

impl Modes {
    /// The modes for inputs with or without a NaN: without one, no missing-value rule applies.
    pub fn for_values(self, any_nan: bool) -> Modes {
        match self {
            Modes::Uniform { mode, .. } if !any_nan => Modes::Uniform {
                mode,
                missing: false,
            },
            modes => modes,
        }
    }
}

/// The weights of each leaf slot. When every slot holds exactly one weight (the common case:
/// single-target models, unmerged trees), the slot indexes the weights directly.
#[derive(Clone, Debug)]
pub struct Leaves {
    /// `None` when slot `s` is weight `s`; else slot `s` owns `offsets[s]..offsets[s + 1]`.
    pub offsets: Option<Vec<u32>>,
    pub targets: Vec<u32>,
    pub values: Vec<f64>,
    /// Every slot holds one weight per target, for targets `0..n` in order, so slot `s`'s
    /// weights are `values[s * n..(s + 1) * n]` (`offsets` and `targets` need not be read).
    pub dense: bool,
}

/// Where a slot's weights go when every slot holds the same targets in the same order: its
/// `per_slot` weights (`Leaves::values[slot * per_slot..]`) add to targets
/// `first..first + per_slot` of a row's `n_targets` scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Columns {
    pub per_slot: usize,
    pub first: usize,
    pub n_targets: usize,
}

impl Columns {
    /// Add slot `slot`'s weights into row `row` of `scores` (row-major, `n_targets` a row: one
    /// or two, as `Leaves::fused_fit` allows), with the same `+=` as `aggregate`'s loops.
    #[inline(always)]
    pub fn add(self, weights: &[f64], scores: &mut [f64], row: usize, slot: usize) {
        match (self.n_targets, self.per_slot) {
            (1, _) => scores[row] += weights[slot],
            (_, 2) => {
                // One bounds check a side, and the pair added as one vector.
                let (sums, weights) = (&mut scores[2 * row..][..2], &weights[2 * slot..][..2]);
                sums[0] += weights[0];
                sums[1] += weights[1];
            }
            _ => scores[2 * row + self.first] += weights[slot],
        }
    }
}

impl Leaves {
    /// Whether the fused walks (`wide32::sums`, `scalar32::sums`) can add these weights by
    /// `columns`: one target, or two with both weights of a slot or one target's.
    pub fn fused_fit(&self, columns: Columns) -> bool {
        let Columns {
            per_slot,
            first,
            n_targets,
        } = columns;
        let fits = match n_targets {
            1 => per_slot == 1 && first == 0,
            2 => per_slot == 2 && first == 0 || per_slot == 1 && first < 2,
            _ => false,
        };
        fits && self.values.len() == self.slots() * per_slot
    }

    /// How many slots there are.
    pub fn slots(&self) -> usize {
        self.offsets
            .as_ref()
            .map_or(self.values.len(), |o| o.len() - 1)
    }

    /// The slots' shared `Columns` for scores of `n_targets` targets, if they share one:
    /// merged classes (`dense`) or one weight a slot, always for the same target (a
    /// regressor, or a binary classifier's one column).
    pub fn columns(&self, n_targets: usize) -> Option<Columns> {
        if self.dense {
            return Some(Columns {
                per_slot: n_targets,
                first: 0,
                n_targets,
            });
        }
        let first = *self.targets.first()?;
        (self.offsets.is_none() && self.targets.iter().all(|&t| t == first)).then_some(Columns {
            per_slot: 1,
            first: first as usize,
            n_targets,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Forest<T> {
    pub nodes: Vec<Node<T>>,
    pub trees: Vec<Tree>,
    pub sets: Vec<Vec<T>>,
    pub leaves: Leaves,
    pub modes: Modes,
    /// The largest feature a branch reads; inputs must be wider.
    pub max_feature: Option<usize>,
    /// The bitvector evaluation, when the trees are small enough for it.
    pub bitvectors: Option<Bitvectors<T>>,
    /// The nodes as the float32 vector walk reads them (`wide32::pack`), for forests it walks;
    /// else empty.
    pub packed: Vec<u64>,
    /// The trees' top levels for the vector comparisons before the chains (`top`), for
    /// forests with `packed` words.
    pub tops: Option<Tops<T>>,
    /// The forest as blocks of four levels (`blocks`), laid out when the block walk first
    /// asks (`Forest::blocks`): CPUs that walk otherwise never pay for them.
    #[cfg(target_arch = "x86_64")]
    blocks: OnceLock<Option<Blocks>>,
}

/// Why a forest could not be laid out.
#[derive(Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// More leaf slots or sets than `T`'s NaN payload can number.
    TooManySlots,
    /// Branches shared between parents expand past this many nodes.
    TooLarge(usize),
}

impl<T: Split> Forest<T> {
    pub fn new(ensemble: &Ensemble) -> Result<Self, LayoutError> {
        if ensemble.sets.len() > T::MAX_SLOT as usize {
            return Err(LayoutError::TooManySlots);
        }
        // A normal tree lays out one node per branch and leaf; only subtrees shared by several
        // parents (legal, if unusual) are copied. Bound the copies.
        let limit = (8 * (ensemble.branches.len() + ensemble.leaves.len() + ensemble.roots.len()))
            .max(1 << 20);
        let mut builder = Builder {
            forest: Forest {
                nodes: Vec::new(),
                trees: Vec::new(),
                // A member `T` cannot hold matches no input of type `T`: drop it (its NaN
                // would break the sorted order).
                sets: (ensemble.sets.iter())
                    .map(|s| {
                        (s.iter().map(|&v| T::narrow(v, Mode::Member)))
                            .filter(|v| !v.is_nan())
                            .collect()
                    })
                    .collect(),
                leaves: Leaves {
                    offsets: None,
                    targets: Vec::new(),
                    values: Vec::new(),
                    dense: false,
                },
                modes: modes(ensemble),
                max_feature: None,
                bitvectors: None,
                packed: Vec::new(),
                tops: None,
                #[cfg(target_arch = "x86_64")]
                blocks: OnceLock::new(),
            },
            slots: Vec::new(),
            shapes: HashMap::new(),
            last_tree: vec![None; ensemble.n_targets],
            limit,
        };
        for &root in &ensemble.roots {
            builder.add_tree(ensemble, root)?;
        }
        let mut forest = builder.finish()?;
        let all_leq = matches!(
            forest.modes,
            Modes::Uniform {
                mode: Mode::Leq,
                ..
            }
        );
        forest.bitvectors = Bitvectors::new(&forest, all_leq);
        if forest.bitvectors.is_none() && matches!(forest.modes, Modes::Uniform { .. }) {
            forest.packed = T::pack(&forest);
            if !forest.packed.is_empty() {
                forest.tops = Tops::new(&forest);
            }
        }
        Ok(forest)
    }

    /// The blocks of a float32 forest with `packed` words whose blocks stay compact
    /// (`blocks::Blocks::new`), on a CPU with AVX-512; laid out on the first call.
    #[cfg(target_arch = "x86_64")]
    pub fn blocks(&self) -> Option<&Blocks> {
        let lay_out =
            || (!self.packed.is_empty() && Isa::Avx512.supported()).then(|| T::blocks(self));
        self.blocks.get_or_init(|| lay_out().flatten()).as_ref()
    }
}

impl Forest<f32> {
    /// Whether this float32 layout would walk scalar where the float64 one walks vectors: its
    /// nodes did not fit `wide32::pack` (a tree past 65,535 nodes, a feature past 32,767).
    pub fn loses_vector_walk(&self) -> bool {
        self.packed.is_empty()
            && self.bitvectors.is_none()
            && matches!(self.modes, Modes::Uniform { .. })
    }
}

fn modes(ensemble: &Ensemble) -> Modes {
    let Some(first) = ensemble.branches.first() else {
        return Modes::Uniform {
            mode: Mode::Leq,
            missing: false,
        };
    };
    let uniform = ensemble.branches.iter().all(|b| b.mode == first.mode);
    match first.mode {
        Mode::Neq | Mode::Member => Modes::Mixed,
        mode if uniform => Modes::Uniform {
            mode,
            missing: ensemble.branches.iter().any(|b| b.missing_true),
        },
        _ => Modes::Mixed,
    }
}

/// Follow branches whose two sides lead to the same place: they decide nothing (opset 5 writes
/// a one-leaf tree as such a branch).
fn resolve(ensemble: &Ensemble, mut child: Child) -> Child {
    while let Child::Branch(b) = child {
        let branch = &ensemble.branches[b as usize];
        if branch.yes != branch.no {
            break;
        }
        child = branch.yes;
    }
    child
}

/// The top levels, laid out breadth first: the nodes of level `l` sit below `2^(l+1) - 1`, so
/// that `wide32` can hold the first 32 words in registers for its first steps.
pub const BREADTH_FIRST_LEVELS: u32 = 5;
/// Levels laid out together below them (`lay_out`).
const CLUSTER_LEVELS: u32 = 2;

/// One tree: its top `BREADTH_FIRST_LEVELS` levels breadth first, then, from each node below
/// them, clusters of `CLUSTER_LEVELS` levels: the pair of a node's children, then their two
/// pairs of children (six nodes, 48 contiguous bytes of node words), and below them each
/// grandchild's cluster in turn, depth first. A walk reads a new cache line about every second
/// level rather than every level, and a subtree's nodes sit together instead of spread across
/// the tree level by level: the random forest's model step ran 1.01-1.04x faster than with
/// the whole tree breadth first, in 8 of 8 rounds (clusters of one or three levels did no
/// better; BENCHMARKS.md). Returns the nodes (leaves without their slots
/// yet), the depth, and the `Ensemble` leaf of each leaf node in node order.
#[allow(clippy::type_complexity)]
pub(super) fn lay_out<T: Split>(
    ensemble: &Ensemble,
    root: Child,
    limit: usize,
) -> Result<(Vec<Node<T>>, u32, Vec<u32>), LayoutError> {
    let mut layout = Layout::<T>::new(limit);
    let mut level = vec![(resolve(ensemble, root), 0u32)];
    for depth in 0..BREADTH_FIRST_LEVELS {
        level = layout.write_all(ensemble, level, depth)?;
    }
    // Nodes placed (given an index) but not yet written, each the top of a cluster; the first
    // is taken next: depth first, left to right.
    let mut tops: Vec<_> = (level.into_iter().rev())
        .map(|(child, at)| (child, at, BREADTH_FIRST_LEVELS))
        .collect();
    while let Some((child, at, depth)) = tops.pop() {
        let mut below = vec![(child, at)];
        for step in 0..CLUSTER_LEVELS {
            below = layout.write_all(ensemble, below, depth + step)?;
        }
        let depth = depth + CLUSTER_LEVELS;
        tops.extend(
            below
                .into_iter()
                .rev()
                .map(|(child, at)| (child, at, depth)),
        );
    }
    Ok(layout.finish())
}

/// A tree's nodes as `lay_out` places them.
struct Layout<T> {
    nodes: Vec<Node<T>>,
    /// Each leaf node's index and `Ensemble` leaf.
    leaves: Vec<(u32, u32)>,
    depth: u32,
    limit: usize,
}

impl<T: Split> Layout<T> {
    fn new(limit: usize) -> Self {
        Layout {
            nodes: vec![Self::placeholder()],
            leaves: Vec::new(),
            depth: 0,
            limit,
        }
    }

    fn placeholder() -> Node<T> {
        Node {
            split: T::from_f64(0.0),
            key: 0,
            left: 0,
        }
    }

    /// Write `child` at index `at` (on `level`); a branch's two children are placed at the
    /// end, true child first, and returned with their indices for writing.
    fn write(
        &mut self,
        ensemble: &Ensemble,
        child: Child,
        at: u32,
        level: u32,
    ) -> Result<Option<[(Child, u32); 2]>, LayoutError> {
        let (node, children) = match child {
            Child::Leaf(l) => {
                self.depth = self.depth.max(level);
                self.leaves.push((at, l));
                let leaf = Node {
                    split: T::slot_nan(0),
                    key: LEAF << MODE_SHIFT,
                    left: at.wrapping_sub(1),
                };
                (leaf, None)
            }
            Child::Branch(b) => {
                let branch = &ensemble.branches[b as usize];
                let left = self.nodes.len() as u32;
                if self.nodes.len() + 2 > self.limit {
                    return Err(LayoutError::TooLarge(self.limit));
                }
                self.nodes.extend([Self::placeholder(); 2]);
                let split = match branch.mode {
                    Mode::Member => T::slot_nan(branch.set),
                    mode => T::narrow(branch.split, mode),
                };
                let missing = if branch.missing_true { MISSING_TRUE } else { 0 };
                let node = Node {
                    split,
                    key: branch.feature | mode_code(branch.mode) << MODE_SHIFT | missing,
                    left,
                };
                let yes = (resolve(ensemble, branch.yes), left);
                let no = (resolve(ensemble, branch.no), left + 1);
                (node, Some([yes, no]))
            }
        };
        self.nodes[at as usize] = node;
        Ok(children)
    }

    /// Write `children` (on `level`), in order; their own children, placed in that order.
    fn write_all(
        &mut self,
        ensemble: &Ensemble,
        children: Vec<(Child, u32)>,
        level: u32,
    ) -> Result<Vec<(Child, u32)>, LayoutError> {
        let mut below = Vec::with_capacity(2 * children.len());
        for (child, at) in children {
            below.extend(
                self.write(ensemble, child, at, level)?
                    .into_iter()
                    .flatten(),
            );
        }
        Ok(below)
    }

    fn finish(mut self) -> (Vec<Node<T>>, u32, Vec<u32>) {
        self.leaves.sort_unstable_by_key(|&(at, _)| at);
        let leaves = self.leaves.into_iter().map(|(_, leaf)| leaf).collect();
        (self.nodes, self.depth, leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::super::ensemble::{Branch, Weight};
    use super::*;

    fn branch(feature: u32, split: f64, yes: Child, no: Child) -> Branch {
        Branch {
            mode: Mode::Leq,
            feature,
            split,
            set: 0,
            missing_true: false,
            yes,
            no,
        }
    }

    /// Two trees of the same shape, one per target, as opset 5 writes a two-class forest.
    fn per_class_pair() -> Ensemble {
        Ensemble {
            branches: vec![
                branch(1, 0.5, Child::Leaf(0), Child::Leaf(1)),
                branch(1, 0.5, Child::Leaf(2), Child::Leaf(3)),
            ],
            leaves: (0..4)
                .map(|i| {
                    vec![Weight {
                        target: i / 2,
                        value: f64::from(i),
                    }]
                })
                .collect(),
            roots: vec![Child::Branch(0), Child::Branch(1)],
            sets: vec![],
            n_targets: 2,
        }
    }

    #[test]
    fn leaves_step_onto_themselves() {
        let forest = Forest::<f64>::new(&per_class_pair()).unwrap();
        for (i, n) in forest.nodes.iter().enumerate() {
            if n.mode() == LEAF {
                assert_eq!(n.left.wrapping_add(1) as usize, i);
                assert!(n.split.is_nan());
            }
        }
    }

    #[test]
    fn trees_of_one_shape_merge_in_order() {
        let forest = Forest::<f32>::new(&per_class_pair()).unwrap();
        assert_eq!(forest.trees.len(), 1);
        let offsets = forest.leaves.offsets.as_ref().unwrap();
        let true_leaf = forest.nodes[1].split.slot() as usize;
        let range = offsets[true_leaf] as usize..offsets[true_leaf + 1] as usize;
        assert_eq!(forest.leaves.targets[range.clone()], [0, 1]);
        assert_eq!(forest.leaves.values[range], [0.0, 2.0]);
        assert_eq!(forest.max_feature, Some(1));
    }

    #[test]
    fn trees_do_not_merge_out_of_order_or_onto_their_own_target() {
        let mut e = per_class_pair();
        // Tree 1 now adds to target 0 like tree 0: merging would add two weights per leaf.
        e.leaves[2][0].target = 0;
        e.leaves[3][0].target = 0;
        assert_eq!(Forest::<f64>::new(&e).unwrap().trees.len(), 2);
        // A different tree for target 1 between the two keeps target 1's order.
        let mut e = per_class_pair();
        e.branches
            .push(branch(0, 9.0, Child::Leaf(4), Child::Leaf(5)));
        e.leaves.extend([
            vec![Weight {
                target: 1,
                value: 4.0,
            }],
            vec![],
        ]);
        e.roots = vec![Child::Branch(0), Child::Branch(2), Child::Branch(1)];
        assert_eq!(Forest::<f64>::new(&e).unwrap().trees.len(), 3);
    }

    #[test]
    fn undecided_branches_collapse_and_shared_subtrees_are_bounded() {
        let mut e = per_class_pair();
        e.branches[0].no = Child::Leaf(0);
        e.roots.truncate(1);
        let forest = Forest::<f64>::new(&e).unwrap();
        assert_eq!((forest.nodes.len(), forest.trees[0].depth), (1, 0));
        assert_eq!(forest.max_feature, None);

        // Two chains, each branch leading to the next branch of both: 2^40 paths to lay out.
        let n = 40u32;
        let next = |chain: u32, i: u32, leaf: u32| {
            if i + 1 < n {
                Child::Branch(chain * n + i + 1)
            } else {
                Child::Leaf(leaf)
            }
        };
        let e = Ensemble {
            branches: (0..2 * n)
                .map(|b| branch(0, f64::from(b), next(0, b % n, 0), next(1, b % n, 1)))
                .collect(),
            leaves: vec![vec![]; 2],
            roots: vec![Child::Branch(0)],
            sets: vec![],
            n_targets: 1,
        };
        assert!(matches!(
            Forest::<f64>::new(&e),
            Err(LayoutError::TooLarge(_))
        ));
    }
}
