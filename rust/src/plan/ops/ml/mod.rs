//! ai.onnx.ml preprocessing and linear-model operators.

use super::{outside_subset, Attrs, Kernel};
use crate::error::Result;

pub fn build(_op: &str, attrs: &Attrs, _opset: i64) -> Result<Box<dyn Kernel>> {
    Err(outside_subset(attrs.node()))
}
