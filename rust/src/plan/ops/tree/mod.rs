//! Tree ensembles: TreeEnsembleClassifier / TreeEnsembleRegressor (ai.onnx.ml v1 and v3) and
//! TreeEnsemble (ai.onnx.ml opset 5).

use super::{outside_subset, Attrs, Kernel};
use crate::error::Result;

pub fn handles(op: &str) -> bool {
    matches!(
        op,
        "TreeEnsembleClassifier" | "TreeEnsembleRegressor" | "TreeEnsemble"
    )
}

pub fn build(_op: &str, attrs: &Attrs, _opset: i64) -> Result<Box<dyn Kernel>> {
    Err(outside_subset(attrs.node()))
}
