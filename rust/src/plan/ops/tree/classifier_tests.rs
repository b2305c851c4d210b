//! TreeEnsembleClassifier end to end, and the errors every operator reports. Expected scores
//! are onnxruntime 1.32's float32 outputs (compared within 1e-6).

use super::tests::{doubles, floats, int, ints, kernel, modes, string, strings, values};
use crate::error::Error;
use crate::plan::onnx::AttributeProto;
use crate::plan::tensor::Tensor;

/// One split on feature 0 at 0.5; weights `(class, node, weight)` on leaves 1 (x <= 0.5) and 2.
fn classifier(weights: &[(i64, i64, f32)], extra: Vec<AttributeProto>) -> Vec<AttributeProto> {
    let mut a = vec![
        ints("nodes_treeids", &[0, 0, 0]),
        ints("nodes_nodeids", &[0, 1, 2]),
        ints("nodes_featureids", &[0, 0, 0]),
        strings("nodes_modes", &["BRANCH_LEQ", "LEAF", "LEAF"]),
        floats("nodes_values", &[0.5, 0.0, 0.0]),
        ints("nodes_truenodeids", &[1, 0, 0]),
        ints("nodes_falsenodeids", &[2, 0, 0]),
        ints("class_treeids", &vec![0; weights.len()]),
        ints(
            "class_ids",
            &weights.iter().map(|w| w.0).collect::<Vec<_>>(),
        ),
        ints(
            "class_nodeids",
            &weights.iter().map(|w| w.1).collect::<Vec<_>>(),
        ),
        floats(
            "class_weights",
            &weights.iter().map(|w| w.2).collect::<Vec<_>>(),
        ),
    ];
    a.extend(extra);
    a
}

fn classify(attributes: Vec<AttributeProto>) -> (Tensor, Vec<f64>) {
    let k = kernel("TreeEnsembleClassifier", 3, attributes).unwrap();
    let x = Tensor::f32(vec![2, 1], vec![0.0, 1.0]);
    let mut out = k.run(&[Some(&x)]).unwrap();
    let scores = values(&out.pop().unwrap());
    (out.pop().unwrap(), scores)
}

fn near(actual: &[f64], expected: &[f64]) -> bool {
    let close = |(a, e): (&f64, &f64)| (a - e).abs() <= 1e-6;
    actual.len() == expected.len() && actual.iter().zip(expected).all(close)
}

#[test]
fn binary_trees_with_one_weight_column_follow_onnxruntime() {
    let labels = || ints("classlabels_int64s", &[3, 7]);
    // Random forest style: class-1 probabilities, all positive.
    let (y, z) = classify(classifier(&[(0, 1, 0.3), (0, 2, 0.8)], vec![labels()]));
    assert_eq!(y.as_i64().unwrap(), [3, 7]);
    assert!(near(&z, &[0.7, 0.3, 0.2, 0.8]), "{z:?}");
    // Gradient boosting style: margins of both signs, a base value and LOGISTIC.
    let extra = vec![
        labels(),
        floats("base_values", &[0.1]),
        string("post_transform", "LOGISTIC"),
    ];
    let (y, z) = classify(classifier(&[(0, 1, -0.3), (0, 2, 0.8)], extra));
    assert_eq!(y.as_i64().unwrap(), [3, 7]);
    assert!(
        near(&z, &[0.549_834_0, 0.450_166_0, 0.289_050_5, 0.710_949_5]),
        "{z:?}"
    );
    // All positive under LOGISTIC: still the logistic pair, label by > 0.5.
    let extra = vec![labels(), string("post_transform", "LOGISTIC")];
    let (y, z) = classify(classifier(&[(0, 1, 0.3), (0, 2, 0.8)], extra));
    assert_eq!(y.as_i64().unwrap(), [3, 7]);
    assert!(
        near(&z, &[0.425_557_5, 0.574_442_5, 0.310_025_5, 0.689_974_5]),
        "{z:?}"
    );
    // Mixed signs without a transform: [-x, x].
    let (y, z) = classify(classifier(&[(0, 1, -0.3), (0, 2, 0.8)], vec![labels()]));
    assert_eq!(y.as_i64().unwrap(), [3, 7]);
    assert!(near(&z, &[0.3, -0.3, -0.8, 0.8]), "{z:?}");
}

#[test]
fn two_weighted_classes_and_string_labels() {
    let weights = [(0, 1, 0.7), (1, 1, 0.3), (0, 2, 0.2), (1, 2, 0.8)];
    let (y, z) = classify(classifier(
        &weights,
        vec![strings("classlabels_strings", &["a", "b"])],
    ));
    // onnxruntime labels two weighted classes by the sign of class 1's score.
    let s = y.as_strings().unwrap();
    assert_eq!((s.get(0), s.get(1)), ("b", "b"));
    assert!(near(&z, &[0.7, 0.3, 0.2, 0.8]));
    let extra = vec![ints("classlabels_int64s", &[3, 7])];
    let e = kernel("TreeEnsembleClassifier", 3, classifier(&weights, extra))
        .err()
        .unwrap();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
}

#[test]
fn multiclass_takes_the_first_highest_score() {
    let weights = [
        (0, 1, 0.2),
        (1, 1, 0.5),
        (2, 1, 0.5),
        (2, 2, 0.9),
        (0, 2, 0.1),
    ];
    let extra = vec![
        ints("classlabels_int64s", &[10, 20, 30]),
        string("post_transform", "SOFTMAX"),
    ];
    let (y, z) = classify(classifier(&weights, extra));
    assert_eq!(y.as_i64().unwrap(), [20, 30]);
    let e = |v: f64| v.exp();
    let (r0, r1) = (e(0.2) + 2.0 * e(0.5), e(0.1) + 1.0 + e(0.9));
    let expected = [
        e(0.2) / r0,
        e(0.5) / r0,
        e(0.5) / r0,
        e(0.1) / r1,
        1.0 / r1,
        e(0.9) / r1,
    ];
    assert!(near(&z, &expected), "{z:?}");
}

fn error(op: &str, opset: i64, attributes: Vec<AttributeProto>) -> Error {
    match kernel(op, opset, attributes) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn replace(mut a: Vec<AttributeProto>, new: AttributeProto) -> Vec<AttributeProto> {
    a.retain(|x| x.name != new.name);
    a.push(new);
    a
}

#[test]
fn malformed_models_are_model_errors_that_name_the_node() {
    let labels = ints("classlabels_int64s", &[0, 1]);
    let base = classifier(&[(0, 1, 0.3), (0, 2, 0.8)], vec![labels]);
    let op = "TreeEnsembleClassifier";
    for (attribute, says) in [
        (ints("nodes_truenodeids", &[5, 0, 0]), "not listed"),
        (ints("nodes_truenodeids", &[0, 0, 0]), "itself"),
        (ints("nodes_featureids", &[-1, 0, 0]), "feature -1"),
        (floats("nodes_values", &[0.5]), "nodes_values has 1"),
        (
            strings("nodes_modes", &["BRANCH_LEQ", "LEAF", "BRANCH"]),
            "mode 'BRANCH'",
        ),
        (ints("nodes_nodeids", &[0, 1, 1]), "listed twice"),
        (ints("class_ids", &[0, 2]), "class 2 of 2"),
        (ints("class_nodeids", &[1, 9]), "not listed"),
        (string("post_transform", "SIGMOID"), "post_transform"),
        (strings("classlabels_strings", &["a", "b"]), "exactly one"),
    ] {
        let e = error(op, 3, replace(base.clone(), attribute));
        let text = e.to_string();
        assert!(
            matches!(e, Error::Model(_)) && text.contains("'trees'") && text.contains(says),
            "{text}"
        );
    }
    // A cycle: node 1 is a branch leading back to node 0.
    let mut a = replace(
        base.clone(),
        strings("nodes_modes", &["BRANCH_LEQ", "BRANCH_LEQ", "LEAF"]),
    );
    a = replace(a, ints("nodes_truenodeids", &[1, 0, 0]));
    a = replace(a, ints("nodes_falsenodeids", &[2, 2, 0]));
    assert!(error(op, 3, a).to_string().contains("cycle"));
}

#[test]
fn malformed_opset5_models_are_model_errors() {
    let base = vec![
        ints("nodes_featureids", &[0]),
        modes(&[0]),
        doubles("nodes_splits", &[0.5]),
        ints("nodes_truenodeids", &[0]),
        ints("nodes_trueleafs", &[1]),
        ints("nodes_falsenodeids", &[1]),
        ints("nodes_falseleafs", &[1]),
        ints("leaf_targetids", &[0, 0]),
        doubles("leaf_weights", &[1.0, 2.0]),
        ints("tree_roots", &[0]),
        int("n_targets", 1),
    ];
    kernel("TreeEnsemble", 5, base.clone()).unwrap();
    for (attribute, says) in [
        (modes(&[7]), "mode 7"),
        (ints("nodes_falsenodeids", &[2]), "does not exist"),
        (ints("nodes_falseleafs", &[0]), "does not exist"),
        (ints("tree_roots", &[1]), "does not exist"),
        (ints("leaf_targetids", &[0, 1]), "target 1 of 1"),
        (int("n_targets", 0), "n_targets is 0"),
        (int("aggregate_function", 4), "aggregate_function 4"),
        (modes(&[6]), "0 sets for 1 BRANCH_MEMBER"),
        (ints("nodes_trueleafs", &[1, 1]), "nodes_trueleafs has 2"),
    ] {
        let text = error("TreeEnsemble", 5, replace(base.clone(), attribute)).to_string();
        assert!(
            text.contains("'trees'") && text.contains(says),
            "{says}: {text}"
        );
    }
    // Splits and input must share a type.
    let k = kernel("TreeEnsemble", 5, base).unwrap();
    let e = k
        .run(&[Some(&Tensor::f32(vec![1, 1], vec![0.0]))])
        .unwrap_err();
    assert!(
        matches!(e, Error::Model(_)) && e.to_string().contains("float32"),
        "{e}"
    );
}

#[test]
fn inputs_must_be_wide_enough_and_of_a_supported_shape_and_type() {
    let labels = ints("classlabels_int64s", &[0, 1]);
    let mut a = classifier(&[(0, 1, 0.3), (0, 2, 0.8)], vec![labels]);
    a = replace(a, ints("nodes_featureids", &[3, 0, 0]));
    let k = kernel("TreeEnsembleClassifier", 1, a).unwrap();
    let e = k
        .run(&[Some(&Tensor::f32(vec![1, 3], vec![0.0; 3]))])
        .unwrap_err();
    assert!(
        matches!(e, Error::Model(_)) && e.to_string().contains("feature 3"),
        "{e}"
    );
    let ok = k.run(&[Some(&Tensor::f32(vec![0, 4], vec![]))]).unwrap();
    assert_eq!(
        (ok[0].shape.clone(), ok[1].shape.clone()),
        (vec![0], vec![0, 2])
    );
    for x in [
        Tensor::f32(vec![4], vec![0.0; 4]),
        Tensor::i64(vec![1, 4], vec![0; 4]),
    ] {
        assert!(matches!(k.run(&[Some(&x)]), Err(Error::Unsupported(_))));
    }
    assert!(matches!(k.run(&[None]), Err(Error::Model(_))));
}

#[test]
fn combinations_onnxruntime_leaves_undefined_are_unsupported() {
    let labels = || ints("classlabels_int64s", &[0, 1]);
    let one_column = [(0, 1, 0.3), (0, 2, 0.8)];
    for extra in [
        vec![labels(), string("post_transform", "PROBIT")],
        vec![ints("classlabels_int64s", &[0])],
        vec![labels(), floats("base_values", &[0.1, 0.2, 0.3])],
    ] {
        let e = error("TreeEnsembleClassifier", 3, classifier(&one_column, extra));
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
    }
    // A single-target leaf with two weights: onnxruntime would add only the first.
    let a = vec![
        ints("nodes_treeids", &[0]),
        ints("nodes_nodeids", &[0]),
        ints("nodes_featureids", &[0]),
        strings("nodes_modes", &["LEAF"]),
        floats("nodes_values", &[0.0]),
        ints("nodes_truenodeids", &[0]),
        ints("nodes_falsenodeids", &[0]),
        ints("target_treeids", &[0, 0]),
        ints("target_nodeids", &[0, 0]),
        ints("target_ids", &[0, 0]),
        floats("target_weights", &[1.0, 2.0]),
        int("n_targets", 1),
    ];
    let e = error("TreeEnsembleRegressor", 1, a);
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
}
