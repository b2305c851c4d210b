//! Gathering laid-out trees into a forest, merging trees of the same shape.
//!
//! Trees with the same shape and splits become one traversal whose leaves hold the weights of
//! all of them: opset 5 repeats each scikit-learn tree once per class, so a forest of `n` trees
//! over `k` classes is walked `n` times instead of `n·k`. A merge only happens when it keeps
//! every target's weights added in the model's tree order, so sums stay bit-identical.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::ensemble::{Child, Ensemble, Mode, Weight};
use super::layout::{lay_out, mode_code, Forest, LayoutError, Split, Tree};

pub(super) struct Builder<T> {
    pub forest: Forest<T>,
    /// Each leaf slot's weights, gathered from every tree merged into it.
    pub slots: Vec<Vec<Weight>>,
    /// Laid-out trees by a hash of their shape, for merging.
    pub shapes: HashMap<u64, Vec<usize>>,
    /// For each target, the last laid-out tree that adds to it.
    pub last_tree: Vec<Option<usize>>,
    pub limit: usize,
}

impl<T: Split> Builder<T> {
    pub fn add_tree(&mut self, ensemble: &Ensemble, root: Child) -> Result<(), LayoutError> {
        let (nodes, depth, leaves) = lay_out::<T>(ensemble, root, self.limit)?;
        let mut targets: Vec<usize> = (leaves.iter())
            .flat_map(|&l| {
                ensemble.leaves[l as usize]
                    .iter()
                    .map(|w| w.target as usize)
            })
            .collect();
        targets.sort_unstable();
        targets.dedup();

        let mut hasher = DefaultHasher::new();
        for n in &nodes {
            (n.key, n.left, if n.is_leaf() { 0 } else { n.split.bits() }).hash(&mut hasher);
        }
        let candidates = self.shapes.entry(hasher.finish()).or_default();
        // Merging into tree `t` moves this tree's additions to position `t`: allowed when no
        // tree after `t` already adds to one of its targets.
        let merge = candidates.iter().copied().find(|&t| {
            let tree = self.forest.trees[t];
            let laid = &self.forest.nodes[tree.start..tree.start + tree.len];
            laid.len() == nodes.len()
                && laid.iter().zip(&nodes).all(|(a, b)| a.same_shape(b))
                && targets
                    .iter()
                    .all(|&k| self.last_tree[k].is_none_or(|last| last < t))
        });
        let position = match merge {
            Some(t) => {
                let tree = self.forest.trees[t];
                let laid = &self.forest.nodes[tree.start..tree.start + tree.len];
                let laid_leaves = laid.iter().filter(|n| n.is_leaf());
                for (node, &leaf) in laid_leaves.zip(&leaves) {
                    let weights = &ensemble.leaves[leaf as usize];
                    self.slots[node.split.slot() as usize].extend_from_slice(weights);
                }
                t
            }
            None => {
                let position = self.forest.trees.len();
                candidates.push(position);
                let start = self.forest.nodes.len();
                let mut leaves = leaves.iter();
                for (i, mut node) in nodes.into_iter().enumerate() {
                    if node.is_leaf() {
                        if self.slots.len() > T::MAX_SLOT as usize {
                            return Err(LayoutError::TooManySlots);
                        }
                        let leaf = leaves.next().expect("one entry per leaf node");
                        node.split = T::slot_nan(self.slots.len() as u32);
                        self.slots.push(ensemble.leaves[*leaf as usize].clone());
                    } else if node.mode() != mode_code(Mode::Member) {
                        let f = node.feature();
                        self.forest.max_feature = self.forest.max_feature.max(Some(f));
                    }
                    debug_assert!(node.is_leaf() || node.left as usize > i);
                    self.forest.nodes.push(node);
                }
                let len = self.forest.nodes.len() - start;
                self.forest.trees.push(Tree { start, len, depth });
                position
            }
        };
        for k in targets {
            self.last_tree[k] = Some(position);
        }
        Ok(())
    }

    /// Leaves with the same weights (targets and value bits) take one slot. A random forest's
    /// pure leaves all hold (1, 0) or (0, 1): the bench's forest has 132,308 leaves and 12,028
    /// distinct pairs of class fractions, so its weight table shrinks from 2.1 MB to about
    /// 190 KB and the walk's leaf loads mostly hit the cache (1.11x its model step). Sums are
    /// unchanged: each leaf adds the same values as before.
    fn share_slots(&mut self) {
        let mut shared: HashMap<Vec<(u32, u64)>, u32> = HashMap::new();
        let mut slots = Vec::new();
        let remap: Vec<u32> = (std::mem::take(&mut self.slots).into_iter())
            .map(|weights| {
                let key = weights
                    .iter()
                    .map(|w| (w.target, w.value.to_bits()))
                    .collect();
                *shared.entry(key).or_insert_with(|| {
                    slots.push(weights);
                    (slots.len() - 1) as u32
                })
            })
            .collect();
        self.slots = slots;
        for node in self.forest.nodes.iter_mut().filter(|n| n.is_leaf()) {
            node.split = T::slot_nan(remap[node.split.slot() as usize]);
        }
    }

    pub fn finish(mut self) -> Result<Forest<T>, LayoutError> {
        // Member branches read their feature too.
        for n in &self.forest.nodes {
            if n.mode() == mode_code(Mode::Member) {
                self.forest.max_feature = self.forest.max_feature.max(Some(n.feature()));
            }
        }
        self.share_slots();
        let leaves = &mut self.forest.leaves;
        let single = self.slots.iter().all(|w| w.len() == 1);
        let mut offsets = vec![0u32];
        for weights in &self.slots {
            for w in weights {
                leaves.targets.push(w.target);
                leaves.values.push(w.value);
            }
            offsets
                .push(u32::try_from(leaves.values.len()).map_err(|_| LayoutError::TooManySlots)?);
        }
        leaves.offsets = (!single).then_some(offsets);
        // A classifier's trees merged across its classes: every slot one weight per class.
        let n_targets = self.last_tree.len();
        leaves.dense = !single
            && (self.slots.iter()).all(|weights| {
                weights.len() == n_targets
                    && (weights.iter().enumerate()).all(|(t, w)| w.target as usize == t)
            });
        Ok(self.forest)
    }
}
