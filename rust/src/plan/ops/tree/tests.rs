//! End-to-end tests on small hand-built models. Expected values marked "onnxruntime" are its
//! 1.32 outputs on the same models (float32, so compared within 1e-6).

use super::{build, Kernel};
use crate::plan::onnx::{AttributeProto, NodeProto, TensorProto};
use crate::plan::ops::Attrs;
use crate::plan::tensor::Tensor;

pub fn attr(name: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ..Default::default()
    }
}

pub fn ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: ints.to_vec(),
        ..attr(name)
    }
}

pub fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { i, ..attr(name) }
}

pub fn floats(name: &str, floats: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: floats.to_vec(),
        ..attr(name)
    }
}

pub fn strings(name: &str, strings: &[&str]) -> AttributeProto {
    AttributeProto {
        strings: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attr(name)
    }
}

pub fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        s: s.as_bytes().to_vec(),
        ..attr(name)
    }
}

pub fn doubles(name: &str, values: &[f64]) -> AttributeProto {
    let t = TensorProto {
        dims: vec![values.len() as i64],
        data_type: 11,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    };
    AttributeProto {
        t: Some(t),
        ..attr(name)
    }
}

pub fn modes(codes: &[u8]) -> AttributeProto {
    let t = TensorProto {
        dims: vec![codes.len() as i64],
        data_type: 2,
        raw_data: codes.to_vec(),
        ..Default::default()
    };
    AttributeProto {
        t: Some(t),
        ..attr("nodes_modes")
    }
}

pub fn kernel(
    op: &str,
    opset: i64,
    attributes: Vec<AttributeProto>,
) -> crate::error::Result<Box<dyn Kernel>> {
    let node = NodeProto {
        name: "trees".into(),
        op_type: op.into(),
        domain: "ai.onnx.ml".into(),
        attribute: attributes,
        ..Default::default()
    };
    build(op, &Attrs::new(&node), opset)
}

pub fn values(t: &Tensor) -> Vec<f64> {
    t.to_f64().unwrap()
}

fn near(actual: &[f64], expected: &[f64]) -> bool {
    let close = |(a, e): (&f64, &f64)| a == e || (a - e).abs() <= 1e-6 * e.abs().max(1.0);
    actual.len() == expected.len() && actual.iter().zip(expected).all(close)
}

fn column(values: &[f32]) -> Tensor {
    Tensor::f32(vec![values.len(), 1], values.to_vec())
}

/// A legacy one-split tree on feature 0: true leaf weighs 0.3, false leaf 0.8.
fn stump(mode: &str, split: f32, missing: i64) -> Vec<AttributeProto> {
    vec![
        ints("nodes_treeids", &[0, 0, 0]),
        ints("nodes_nodeids", &[0, 1, 2]),
        ints("nodes_featureids", &[0, 0, 0]),
        strings("nodes_modes", &[mode, "LEAF", "LEAF"]),
        floats("nodes_values", &[split, 0.0, 0.0]),
        ints("nodes_truenodeids", &[1, 0, 0]),
        ints("nodes_falsenodeids", &[2, 0, 0]),
        ints("nodes_missing_value_tracks_true", &[missing, 0, 0]),
    ]
}

fn stump_regressor(
    mode: &str,
    split: f32,
    missing: i64,
    targets: [i64; 2],
    n_targets: i64,
) -> Vec<AttributeProto> {
    let mut a = stump(mode, split, missing);
    a.extend([
        ints("target_treeids", &[0, 0]),
        ints("target_nodeids", &[1, 2]),
        ints("target_ids", &targets),
        floats("target_weights", &[0.3, 0.8]),
        int("n_targets", n_targets),
    ]);
    a
}

/// The same stump in opset 5, over double inputs.
fn stump_v5(mode: u8, split: f64, missing: i64) -> Vec<AttributeProto> {
    vec![
        ints("nodes_featureids", &[0]),
        modes(&[mode]),
        doubles("nodes_splits", &[split]),
        ints("nodes_truenodeids", &[0]),
        ints("nodes_trueleafs", &[1]),
        ints("nodes_falsenodeids", &[1]),
        ints("nodes_falseleafs", &[1]),
        ints("nodes_missing_value_tracks_true", &[missing]),
        ints("leaf_targetids", &[0, 0]),
        doubles("leaf_weights", &[0.3, 0.8]),
        ints("tree_roots", &[0]),
        int("n_targets", 1),
    ]
}

#[test]
fn every_mode_and_missing_rule_matches_onnxruntime() {
    let x = [0.0, 1.0, 2.0, 3.0, f64::NAN];
    // Which rows go to the true leaf, splitting at 1.0, without and with missing tracking.
    let table: [(&str, [u8; 5], [u8; 5]); 6] = [
        ("BRANCH_LEQ", [1, 1, 0, 0, 0], [1, 1, 0, 0, 1]),
        ("BRANCH_LT", [1, 0, 0, 0, 0], [1, 0, 0, 0, 1]),
        ("BRANCH_GTE", [0, 1, 1, 1, 0], [0, 1, 1, 1, 1]),
        ("BRANCH_GT", [0, 0, 1, 1, 0], [0, 0, 1, 1, 1]),
        ("BRANCH_EQ", [0, 1, 0, 0, 0], [0, 1, 0, 0, 1]),
        ("BRANCH_NEQ", [1, 0, 1, 1, 1], [1, 0, 1, 1, 1]),
    ];
    for (code, (name, plain, tracked)) in table.into_iter().enumerate() {
        for (missing, truth) in [(0, plain), (1, tracked)] {
            let expected: Vec<f64> = (truth.iter())
                .map(|&t| f64::from(if t == 1 { 0.3f32 } else { 0.8 }))
                .collect();
            let k = kernel(
                "TreeEnsembleRegressor",
                3,
                stump_regressor(name, 1.0, missing, [0, 0], 1),
            )
            .unwrap();
            let x32 = column(&x.map(|v| v as f32));
            assert_eq!(
                values(&k.run(&[Some(&x32)]).unwrap()[0]),
                expected,
                "{name} {missing}"
            );
            let k = kernel("TreeEnsemble", 5, stump_v5(code as u8, 1.0, missing)).unwrap();
            let y = &k
                .run(&[Some(&Tensor::f64(vec![5, 1], x.to_vec()))])
                .unwrap()[0];
            let expected: Vec<f64> = truth
                .iter()
                .map(|&t| if t == 1 { 0.3 } else { 0.8 })
                .collect();
            assert_eq!(
                (values(y), y.elem_type()),
                (expected, crate::plan::tensor::ElemType::F64)
            );
        }
    }
}

#[test]
fn membership_sets_keep_zero_and_stay_aligned() {
    // Branch 0: x in {0, 2} -> leaf 0, else branch 1: x in {1} -> leaf 1, else leaf 2.
    let attributes = |missing: i64| {
        vec![
            ints("nodes_featureids", &[0, 0]),
            modes(&[6, 6]),
            doubles("nodes_splits", &[f64::NAN, f64::NAN]),
            ints("nodes_truenodeids", &[0, 1]),
            ints("nodes_trueleafs", &[1, 1]),
            ints("nodes_falsenodeids", &[1, 2]),
            ints("nodes_falseleafs", &[0, 1]),
            ints("nodes_missing_value_tracks_true", &[missing, 0]),
            doubles("membership_values", &[0.0, 2.0, f64::NAN, 1.0, f64::NAN]),
            ints("leaf_targetids", &[0, 0, 0]),
            doubles("leaf_weights", &[10.0, 20.0, 30.0]),
            ints("tree_roots", &[0]),
            int("n_targets", 1),
        ]
    };
    let x = Tensor::f64(vec![6, 1], vec![0.0, 1.0, 2.0, 3.0, -0.0, f64::NAN]);
    let k = kernel("TreeEnsemble", 5, attributes(0)).unwrap();
    assert_eq!(
        values(&k.run(&[Some(&x)]).unwrap()[0]),
        [10.0, 20.0, 10.0, 30.0, 10.0, 30.0]
    );
    let k = kernel("TreeEnsemble", 5, attributes(1)).unwrap();
    assert_eq!(
        values(&k.run(&[Some(&x)]).unwrap()[0]),
        [10.0, 20.0, 10.0, 30.0, 10.0, 10.0]
    );
}

#[test]
fn a_one_leaf_tree_is_the_leaf_its_root_names() {
    let mut a = stump_v5(0, 0.5, 0);
    a[3] = ints("nodes_truenodeids", &[1]);
    let k = kernel("TreeEnsemble", 5, a).unwrap();
    let y = &k
        .run(&[Some(&Tensor::f64(vec![2, 1], vec![0.0, 1.0]))])
        .unwrap()[0];
    assert_eq!(values(y), [0.8, 0.8]);
}

#[test]
fn comparisons_use_the_precision_of_the_splits() {
    let tenth = 0.1f32;
    // Float32 splits: a float32 input compares in float32, a double one against the widened split.
    let k = kernel(
        "TreeEnsembleRegressor",
        1,
        stump_regressor("BRANCH_LEQ", tenth, 0, [0, 0], 1),
    )
    .unwrap();
    assert_eq!(
        values(&k.run(&[Some(&column(&[tenth]))]).unwrap()[0]),
        [f64::from(0.3f32)]
    );
    let x64 = Tensor::f64(vec![3, 1], vec![0.1, f64::from(tenth), 0.100_000_001_5]);
    let expected = [0.3f32, 0.3, 0.8].map(f64::from);
    assert_eq!(values(&k.run(&[Some(&x64)]).unwrap()[0]), expected);
    // Double splits (opset 3 `nodes_values_as_tensor`): compared in double, whatever the input.
    let mut a = stump_regressor("BRANCH_LEQ", 0.0, 0, [0, 0], 1);
    a[4] = doubles("nodes_values_as_tensor", &[0.1, 0.0, 0.0]);
    let k = kernel("TreeEnsembleRegressor", 3, a).unwrap();
    let expected = [0.3f32, 0.8, 0.8].map(f64::from);
    assert_eq!(values(&k.run(&[Some(&x64)]).unwrap()[0]), expected);
    assert_eq!(
        values(&k.run(&[Some(&column(&[tenth]))]).unwrap()[0]),
        [f64::from(0.8f32)]
    );
}

#[test]
fn post_transforms_match_onnxruntime() {
    let x = column(&[0.0, 1.0]);
    let cases: [(&str, [f64; 4], [f64; 2]); 5] = [
        ("NONE", [0.3, 0.0, 0.0, 0.8], [0.3, 0.8]),
        ("LOGISTIC", [0.574_442_5, 0.5, 0.5, 0.689_974_5], [0.3, 0.8]),
        (
            "SOFTMAX",
            [0.574_442_5, 0.425_557_46, 0.310_025_54, 0.689_974_5],
            [0.3, 0.8],
        ),
        ("SOFTMAX_ZERO", [1.0, 0.0, 0.0, 1.0], [0.3, 0.8]),
        (
            "PROBIT",
            [
                -0.524_445_9,
                f64::NEG_INFINITY,
                f64::NEG_INFINITY,
                0.841_756_1,
            ],
            [-0.524_445_9, 0.841_756_1],
        ),
    ];
    for (post, two_targets, one_target) in cases {
        let mut a = stump_regressor("BRANCH_LEQ", 0.5, 0, [0, 1], 2);
        a.push(string("post_transform", post));
        let y = &kernel("TreeEnsembleRegressor", 1, a)
            .unwrap()
            .run(&[Some(&x)])
            .unwrap()[0];
        assert!(near(&values(y), &two_targets), "{post}: {:?}", values(y));
        let mut a = stump_regressor("BRANCH_LEQ", 0.5, 0, [0, 0], 1);
        a.push(string("post_transform", post));
        let y = &kernel("TreeEnsembleRegressor", 1, a)
            .unwrap()
            .run(&[Some(&x)])
            .unwrap()[0];
        assert!(
            near(&values(y), &one_target),
            "{post} one target: {:?}",
            values(y)
        );
    }
}

#[test]
fn every_aggregate_over_two_trees() {
    // Tree 0 splits feature 0 (leaves 1 | 2), tree 1 feature 1 (leaves 4 | -3); x <= 0.5 is true.
    let legacy = |aggregate: &str| {
        vec![
            ints("nodes_treeids", &[0, 0, 0, 1, 1, 1]),
            ints("nodes_nodeids", &[0, 1, 2, 0, 1, 2]),
            ints("nodes_featureids", &[0, 0, 0, 1, 0, 0]),
            strings(
                "nodes_modes",
                &["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"],
            ),
            floats("nodes_values", &[0.5, 0.0, 0.0, 0.5, 0.0, 0.0]),
            ints("nodes_truenodeids", &[1, 0, 0, 1, 0, 0]),
            ints("nodes_falsenodeids", &[2, 0, 0, 2, 0, 0]),
            ints("target_treeids", &[0, 0, 1, 1]),
            ints("target_nodeids", &[1, 2, 1, 2]),
            ints("target_ids", &[0, 0, 0, 0]),
            floats("target_weights", &[1.0, 2.0, 4.0, -3.0]),
            floats("base_values", &[10.0]),
            int("n_targets", 1),
            string("aggregate_function", aggregate),
        ]
    };
    let x = Tensor::f32(vec![2, 2], vec![0.0, 0.0, 1.0, 1.0]);
    for (name, code, expected) in [
        ("SUM", 1, [5.0, -1.0]),
        ("AVERAGE", 0, [2.5, -0.5]),
        ("MIN", 2, [1.0, -3.0]),
        ("MAX", 3, [4.0, 2.0]),
    ] {
        let y = &kernel("TreeEnsembleRegressor", 1, legacy(name))
            .unwrap()
            .run(&[Some(&x)])
            .unwrap()[0];
        assert_eq!(values(y), expected.map(|v| v + 10.0), "{name}");
        let v5 = vec![
            ints("nodes_featureids", &[0, 1]),
            modes(&[0, 0]),
            doubles("nodes_splits", &[0.5, 0.5]),
            ints("nodes_truenodeids", &[0, 2]),
            ints("nodes_trueleafs", &[1, 1]),
            ints("nodes_falsenodeids", &[1, 3]),
            ints("nodes_falseleafs", &[1, 1]),
            ints("leaf_targetids", &[0, 0, 0, 0]),
            doubles("leaf_weights", &[1.0, 2.0, 4.0, -3.0]),
            ints("tree_roots", &[0, 1]),
            int("n_targets", 1),
            int("aggregate_function", code),
        ];
        let x = Tensor::f64(vec![2, 2], vec![0.0, 0.0, 1.0, 1.0]);
        let y = &kernel("TreeEnsemble", 5, v5)
            .unwrap()
            .run(&[Some(&x)])
            .unwrap()[0];
        assert_eq!(values(y), expected, "{name} (opset 5)");
    }
}
