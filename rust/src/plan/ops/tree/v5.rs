//! TreeEnsemble (ai.onnx.ml opset 5) read into an `Ensemble`.
//!
//! Opset 5 lists branches (`nodes_*`) and leaves (`leaf_*`) apart; a branch's children are
//! indices into one or the other, as `nodes_trueleafs` / `nodes_falseleafs` say, and
//! `tree_roots` index the branches. Splits, leaf weights and membership values are tensors of
//! the input's element type. `membership_values` holds one set per BRANCH_MEMBER branch, in
//! branch order, each ended by a NaN; a 0.0 in a set is a member like any other (onnx 1.23's
//! reference evaluator stops the set there, onnxruntime and the spec do not).

use super::aggregate::Aggregate;
use super::ensemble::{member_set, Branch, Child, Ensemble, Mode, SplitType, Weight, MAX_FEATURES};
use super::head::Regression;
use super::Attrs;
use crate::error::Result;
use crate::plan::onnx::TensorProto;
use crate::plan::ops::post_transform::PostTransform;
use crate::plan::tensor::Data;

/// ONNX's UINT8 element type, which `Tensor` does not decode.
const UINT8: i32 = 2;

fn mode(code: u8) -> Option<Mode> {
    Some(match code {
        0 => Mode::Leq,
        1 => Mode::Lt,
        2 => Mode::Gte,
        3 => Mode::Gt,
        4 => Mode::Eq,
        5 => Mode::Neq,
        6 => Mode::Member,
        _ => return None,
    })
}

/// `nodes_modes`: a uint8 tensor, its bytes in `raw_data` or one per entry of `int32_data`.
fn modes(attrs: &Attrs) -> Result<Vec<u8>> {
    let proto: Option<&TensorProto> =
        (attrs.node().attribute("nodes_modes")).and_then(|a| a.t.as_ref());
    let Some(proto) = proto else {
        return Err(attrs.error("nodes_modes is missing"));
    };
    if proto.data_type != UINT8 {
        return Err(attrs.error(format_args!(
            "nodes_modes has ONNX element type {}, expected uint8 (2)",
            proto.data_type
        )));
    }
    let values: Vec<u8> = if proto.raw_data.is_empty() {
        (proto.int32_data.iter())
            .map(|&v| {
                u8::try_from(v).map_err(|_| attrs.error(format_args!("nodes_modes holds {v}")))
            })
            .collect::<Result<_>>()?
    } else {
        proto.raw_data.clone()
    };
    let count = proto
        .dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?));
    if count != Some(values.len()) {
        return Err(attrs.error(format_args!(
            "nodes_modes holds {} values for dims {:?}",
            values.len(),
            proto.dims
        )));
    }
    Ok(values)
}

/// A float or double tensor attribute as f64, with its type; `None` when absent.
fn floats(attrs: &Attrs, name: &str) -> Result<Option<(Vec<f64>, SplitType)>> {
    let Some(tensor) = attrs.tensor(name)? else {
        return Ok(None);
    };
    let found = tensor.elem_type().name();
    Ok(Some(match tensor.data {
        Data::F32(v) => (v.into_iter().map(f64::from).collect(), SplitType::F32),
        Data::F64(v) => (v, SplitType::F64),
        _ => {
            return Err(attrs.error(format_args!(
                "{name} is a {found} tensor, expected float or double"
            )))
        }
    }))
}

/// Split `values` into NaN-ended sets; a last set may omit its NaN.
fn sets(values: &[f64]) -> Vec<Vec<f64>> {
    let mut sets: Vec<Vec<f64>> = (values.split(|v| v.is_nan()))
        .map(|set| member_set(set.iter().copied()))
        .collect();
    // `split` yields one piece after the final separator: empty when the list ends in NaN.
    if values.last().is_none_or(|v| v.is_nan()) {
        sets.pop();
    }
    sets
}

pub fn read(attrs: &Attrs) -> Result<(Ensemble, SplitType, Regression)> {
    let features = attrs.ints("nodes_featureids");
    let modes = modes(attrs)?;
    let Some((splits, split_type)) = floats(attrs, "nodes_splits")? else {
        return Err(attrs.error("nodes_splits is missing"));
    };
    let true_ids = attrs.ints("nodes_truenodeids");
    let false_ids = attrs.ints("nodes_falsenodeids");
    let true_leafs = attrs.ints("nodes_trueleafs");
    let false_leafs = attrs.ints("nodes_falseleafs");
    let missing = attrs.ints("nodes_missing_value_tracks_true");
    let n = features.len();
    let lengths = [
        ("nodes_modes", modes.len()),
        ("nodes_splits", splits.len()),
        ("nodes_truenodeids", true_ids.len()),
        ("nodes_falsenodeids", false_ids.len()),
        ("nodes_trueleafs", true_leafs.len()),
        ("nodes_falseleafs", false_leafs.len()),
    ];
    if let Some((name, len)) = lengths.iter().find(|(_, len)| *len != n) {
        return Err(attrs.error(format_args!("{name} has {len} entries for {n} nodes")));
    }
    if !missing.is_empty() && missing.len() != n {
        return Err(attrs.error(format_args!(
            "nodes_missing_value_tracks_true has {} entries for {n} nodes",
            missing.len()
        )));
    }

    let targets = attrs.ints("leaf_targetids");
    let (weights, weight_type) = match floats(attrs, "leaf_weights")? {
        Some((weights, t)) => (weights, Some(t)),
        None => (Vec::new(), None),
    };
    if targets.len() != weights.len() {
        return Err(attrs.error(format_args!(
            "leaf_targetids has {} entries but leaf_weights has {}",
            targets.len(),
            weights.len()
        )));
    }
    let members = floats(attrs, "membership_values")?;
    let types_differ = |t: Option<SplitType>| t.is_some_and(|t| t != split_type);
    if types_differ(weight_type) || types_differ(members.as_ref().map(|m| m.1)) {
        return Err(attrs.error("nodes_splits, leaf_weights and membership_values differ in type"));
    }
    let n_targets = attrs.int("n_targets", 0);
    let n_targets = usize::try_from(n_targets)
        .ok()
        .filter(|&t| t > 0)
        .ok_or_else(|| attrs.error(format_args!("n_targets is {n_targets}")))?;

    let mut ensemble = Ensemble {
        n_targets,
        sets: sets(members.as_ref().map_or(&[], |m| &m.0)),
        ..Ensemble::default()
    };
    let child = |id: i64, leaf: i64| -> Option<Child> {
        let id = u32::try_from(id).ok()?;
        Some(if leaf != 0 {
            Child::Leaf(id)
        } else {
            Child::Branch(id)
        })
    };
    let mut n_members = 0;
    for i in 0..n {
        let mode = mode(modes[i])
            .ok_or_else(|| attrs.error(format_args!("node {i} has mode {}", modes[i])))?;
        let feature = u32::try_from(features[i])
            .ok()
            .filter(|&f| f < MAX_FEATURES)
            .ok_or_else(|| attrs.error(format_args!("node {i} has feature {}", features[i])))?;
        let (Some(yes), Some(no)) = (
            child(true_ids[i], true_leafs[i]),
            child(false_ids[i], false_leafs[i]),
        ) else {
            return Err(attrs.error(format_args!("node {i} has a negative child index")));
        };
        let set = if mode == Mode::Member {
            n_members += 1;
            n_members - 1
        } else {
            0
        };
        ensemble.branches.push(Branch {
            mode,
            feature,
            split: splits[i],
            set,
            missing_true: missing.get(i).is_some_and(|&m| m == 1),
            yes,
            no,
        });
    }
    if ensemble.sets.len() != n_members as usize {
        return Err(attrs.error(format_args!(
            "membership_values holds {} sets for {n_members} BRANCH_MEMBER nodes",
            ensemble.sets.len()
        )));
    }
    for (i, (&target, &value)) in targets.iter().zip(&weights).enumerate() {
        let target = u32::try_from(target)
            .map_err(|_| attrs.error(format_args!("leaf {i} has target {target}")))?;
        ensemble.leaves.push(vec![Weight { target, value }]);
    }
    for &root in &attrs.ints("tree_roots") {
        let root = u32::try_from(root)
            .map_err(|_| attrs.error(format_args!("tree root {root} does not exist")))?;
        ensemble.roots.push(Child::Branch(root));
    }
    ensemble.check(attrs)?;

    let code = attrs.int("aggregate_function", 1);
    let aggregate = Aggregate::from_code(code)
        .ok_or_else(|| attrs.error(format_args!("aggregate_function {code} is unknown")))?;
    let code = attrs.int("post_transform", 0);
    let post = PostTransform::from_code(code)
        .ok_or_else(|| attrs.error(format_args!("post_transform {code} is unknown")))?;
    let regression = Regression {
        aggregate,
        post,
        base: Vec::new(),
        n_trees: ensemble.roots.len(),
    };
    Ok((ensemble, split_type, regression))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_split_on_nan_and_keep_zero() {
        let nan = f64::NAN;
        assert_eq!(
            sets(&[0.0, 2.0, nan, 1.0, nan]),
            vec![vec![0.0, 2.0], vec![1.0]]
        );
        assert_eq!(sets(&[0.0, 2.0, nan, 1.0]), vec![vec![0.0, 2.0], vec![1.0]]);
        assert_eq!(sets(&[nan, 1.0, nan]), vec![vec![], vec![1.0]]);
        assert_eq!(sets(&[]), Vec::<Vec<f64>>::new());
    }
}
