//! TreeEnsembleClassifier and TreeEnsembleRegressor (ai.onnx.ml v1 and v3) read into an
//! `Ensemble`.
//!
//! These list every node, leaves included, as (tree id, node id) tuples; children and weights
//! refer to nodes by id within their tree. As in onnxruntime, a tree's root is the first node
//! listed for its tree id, and weights attached to a branch are ignored (old converters wrote
//! them). Thresholds and weights are float32 (`nodes_values`, `*_weights`) or, from v3, double
//! tensors (`*_as_tensor`); whichever was given is kept exactly in f64.

use std::collections::HashMap;

use super::aggregate::Aggregate;
use super::ensemble::{Branch, Child, Ensemble, Mode, SplitType, Weight, MAX_FEATURES};
use super::head::{Classification, Regression};
use super::{Attrs, Labels};
use crate::error::Result;
use crate::plan::ops::post_transform::PostTransform;

/// What a legacy node reads into, before the kernel is assembled.
pub struct Legacy {
    pub ensemble: Ensemble,
    pub split_type: SplitType,
    pub post: PostTransform,
    pub base: Vec<f64>,
}

/// `nodes_modes` entries; `None` is LEAF.
fn mode(name: &str) -> Option<Option<Mode>> {
    Some(Some(match name {
        "BRANCH_LEQ" => Mode::Leq,
        "BRANCH_LT" => Mode::Lt,
        "BRANCH_GTE" => Mode::Gte,
        "BRANCH_GT" => Mode::Gt,
        "BRANCH_EQ" => Mode::Eq,
        "BRANCH_NEQ" => Mode::Neq,
        "LEAF" => return Some(None),
        _ => return None,
    }))
}

/// A float list from `{name}` (float32) or `{name}_as_tensor` (float or double), and whether
/// the tensor was double.
fn floats(attrs: &Attrs, name: &str) -> Result<(Vec<f64>, bool)> {
    let listed = attrs.floats(name);
    match attrs.tensor(&format!("{name}_as_tensor"))? {
        Some(_) if !listed.is_empty() => {
            Err(attrs.error(format_args!("both {name} and {name}_as_tensor are given")))
        }
        Some(t) => {
            let double = t.elem_type() == crate::plan::tensor::ElemType::F64;
            let values = t
                .to_f64()
                .map_err(|e| attrs.error(format_args!("{name}_as_tensor: {e}")))?;
            Ok((values, double))
        }
        None => Ok((listed.into_iter().map(f64::from).collect(), false)),
    }
}

fn same_length(attrs: &Attrs, names: &[&str], lengths: &[usize]) -> Result<()> {
    match lengths.iter().position(|&n| n != lengths[0]) {
        None => Ok(()),
        Some(i) => Err(attrs.error(format_args!(
            "{} has {} entries but {} has {}",
            names[i], lengths[i], names[0], lengths[0]
        ))),
    }
}

/// Read the nodes, trees and weights common to both operators. `prefix` is "class" or
/// "target"; `n_targets` the class or target count.
pub fn read(attrs: &Attrs, prefix: &str, n_targets: usize) -> Result<Legacy> {
    let tree_ids = attrs.ints("nodes_treeids");
    let node_ids = attrs.ints("nodes_nodeids");
    let features = attrs.ints("nodes_featureids");
    let modes = attrs.strings("nodes_modes");
    let (values, double) = floats(attrs, "nodes_values")?;
    let true_ids = attrs.ints("nodes_truenodeids");
    let false_ids = attrs.ints("nodes_falsenodeids");
    let missing = attrs.ints("nodes_missing_value_tracks_true");
    let n = node_ids.len();
    same_length(
        attrs,
        &[
            "nodes_nodeids",
            "nodes_treeids",
            "nodes_featureids",
            "nodes_modes",
            "nodes_values",
            "nodes_truenodeids",
            "nodes_falsenodeids",
        ],
        &[
            n,
            tree_ids.len(),
            features.len(),
            modes.len(),
            values.len(),
            true_ids.len(),
            false_ids.len(),
        ],
    )?;
    if !missing.is_empty() && missing.len() != n {
        return Err(attrs.error(format_args!(
            "nodes_missing_value_tracks_true has {} entries for {n} nodes",
            missing.len()
        )));
    }

    // Number branches and leaves separately, and find each node by (tree, node) id.
    let mut kinds = Vec::with_capacity(n);
    let mut index = HashMap::with_capacity(n);
    let (mut n_branches, mut n_leaves) = (0u32, 0u32);
    for i in 0..n {
        let kind = match mode(&modes[i]) {
            None => {
                return Err(attrs.error(format_args!("node {i} has mode '{}'", modes[i])));
            }
            Some(None) => Child::Leaf(post_increment(&mut n_leaves)),
            Some(Some(_)) => Child::Branch(post_increment(&mut n_branches)),
        };
        kinds.push(kind);
        if index.insert((tree_ids[i], node_ids[i]), i).is_some() {
            return Err(attrs.error(format_args!(
                "node {} of tree {} is listed twice",
                node_ids[i], tree_ids[i]
            )));
        }
    }
    // `what` names the reference in the error, built only if there is one.
    let find = |tree: i64, node: i64, what: &dyn Fn() -> String| {
        index.get(&(tree, node)).copied().ok_or_else(|| {
            attrs.error(format_args!(
                "{} refers to node {node} of tree {tree}, which is not listed",
                what()
            ))
        })
    };

    let mut ensemble = Ensemble {
        n_targets,
        leaves: vec![Vec::new(); n_leaves as usize],
        ..Ensemble::default()
    };
    for i in 0..n {
        let Some(Some(mode)) = mode(&modes[i]) else {
            continue;
        };
        let yes = find(tree_ids[i], true_ids[i], &|| {
            format!("node {i}'s true branch")
        })?;
        let no = find(tree_ids[i], false_ids[i], &|| {
            format!("node {i}'s false branch")
        })?;
        let feature = u32::try_from(features[i])
            .ok()
            .filter(|&f| f < MAX_FEATURES)
            .ok_or_else(|| attrs.error(format_args!("node {i} has feature {}", features[i])))?;
        ensemble.branches.push(Branch {
            mode,
            feature,
            split: values[i],
            set: 0,
            missing_true: missing.get(i).is_some_and(|&m| m == 1),
            yes: kinds[yes],
            no: kinds[no],
        });
    }
    // Trees in order of first appearance; their root is their first node (as in onnxruntime).
    let mut seen = std::collections::HashSet::new();
    for i in 0..n {
        if i == 0 || tree_ids[i] != tree_ids[i - 1] {
            if !seen.insert(tree_ids[i]) {
                return Err(attrs.unsupported(format_args!(
                    "the nodes of tree {} are not listed together",
                    tree_ids[i]
                )));
            }
            ensemble.roots.push(kinds[i]);
        }
    }

    let ids = attrs.ints(&format!("{prefix}_ids"));
    let weight_nodes = attrs.ints(&format!("{prefix}_nodeids"));
    let weight_trees = attrs.ints(&format!("{prefix}_treeids"));
    let (weights, _) = floats(attrs, &format!("{prefix}_weights"))?;
    same_length(
        attrs,
        &[
            &format!("{prefix}_ids"),
            &format!("{prefix}_nodeids"),
            &format!("{prefix}_treeids"),
            &format!("{prefix}_weights"),
        ],
        &[
            ids.len(),
            weight_nodes.len(),
            weight_trees.len(),
            weights.len(),
        ],
    )?;
    for k in 0..ids.len() {
        let node = find(weight_trees[k], weight_nodes[k], &|| format!("weight {k}"))?;
        let Child::Leaf(leaf) = kinds[node] else {
            continue;
        };
        let target = u32::try_from(ids[k])
            .ok()
            .filter(|&t| (t as usize) < n_targets)
            .ok_or_else(|| {
                attrs.error(format_args!(
                    "weight {k} is for {prefix} {} of {n_targets}",
                    ids[k]
                ))
            })?;
        ensemble.leaves[leaf as usize].push(Weight {
            target,
            value: weights[k],
        });
    }
    ensemble.check(attrs)?;

    let (base, _) = floats(attrs, "base_values")?;
    let post_name = attrs.string("post_transform", "NONE");
    let post = PostTransform::from_name(&post_name)
        .ok_or_else(|| attrs.error(format_args!("post_transform '{post_name}' is unknown")))?;
    let split_type = if double {
        SplitType::F64
    } else {
        SplitType::F32
    };
    let leaf_values: Vec<f64> = (0..n)
        .filter(|&i| matches!(kinds[i], Child::Leaf(_)))
        .map(|i| values[i])
        .collect();
    let legacy = Legacy {
        ensemble,
        split_type,
        post,
        base,
    };
    legacy.check_single_target(attrs, &leaf_values)?;
    Ok(legacy)
}

fn post_increment(counter: &mut u32) -> u32 {
    *counter += 1;
    *counter - 1
}

impl Legacy {
    /// onnxruntime's one-target path adds a leaf's first weight only, and a leaf without
    /// weights adds its `nodes_values` entry: refuse the models where that differs from adding
    /// each weight.
    fn check_single_target(&self, attrs: &Attrs, leaf_values: &[f64]) -> Result<()> {
        if self.ensemble.n_targets != 1 {
            return Ok(());
        }
        for (l, weights) in self.ensemble.leaves.iter().enumerate() {
            if weights.len() > 1 {
                return Err(attrs.unsupported(format_args!(
                    "leaf {l} has {} weights for the single target",
                    weights.len()
                )));
            }
            if weights.is_empty() && leaf_values[l] != 0.0 {
                return Err(attrs.unsupported(format_args!(
                    "leaf {l} has no weight but a nonzero nodes_values entry"
                )));
            }
        }
        Ok(())
    }

    pub fn regression(self, attrs: &Attrs) -> Result<(Ensemble, SplitType, Regression)> {
        let name = attrs.string("aggregate_function", "SUM");
        let aggregate = Aggregate::from_name(&name)
            .ok_or_else(|| attrs.error(format_args!("aggregate_function '{name}' is unknown")))?;
        let n_targets = self.ensemble.n_targets;
        if !self.base.is_empty() && self.base.len() != n_targets {
            return Err(attrs.unsupported(format_args!(
                "{} base values for {n_targets} targets",
                self.base.len()
            )));
        }
        if n_targets == 1 && aggregate.needs_hits() {
            if let Some(l) = self.ensemble.leaves.iter().position(Vec::is_empty) {
                return Err(attrs.unsupported(format_args!(
                    "leaf {l} has no weight under {name} (onnxruntime counts it as 0)"
                )));
            }
        }
        let regression = Regression {
            aggregate,
            post: self.post,
            base: self.base,
            n_trees: self.ensemble.roots.len(),
        };
        Ok((self.ensemble, self.split_type, regression))
    }

    /// `class_ids` and `class_weights` as listed, branches' entries included: onnxruntime's
    /// binary special case looks at all of them.
    pub fn classification(
        self,
        attrs: &Attrs,
        labels: &Labels,
    ) -> Result<(Ensemble, SplitType, Classification)> {
        let mut ids = attrs.ints("class_ids");
        let (weights, _) = floats(attrs, "class_weights")?;
        ids.sort_unstable();
        ids.dedup();
        let n_classes = self.ensemble.n_targets;
        if n_classes == 2 && ids.len() != 1 {
            if let Labels::Int(values) = labels {
                if values.as_slice() != [0, 1] {
                    return Err(attrs.unsupported(
                        "two classes with weights for both and labels other than [0, 1] \
                         (onnxruntime then outputs 0 or 1 as the label)",
                    ));
                }
            }
        }
        let classification = Classification {
            post: self.post,
            base: self.base,
            binary: n_classes == 2 && ids.len() == 1,
            all_positive: !weights.iter().any(|&w| w < 0.0),
        };
        Ok((self.ensemble, self.split_type, classification))
    }
}
