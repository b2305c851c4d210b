//! Typed access to a node's attributes, with errors that name the node.

use super::super::onnx::{AttributeProto, NodeProto};
use super::super::tensor::Tensor;
use crate::error::{Error, Result};

pub struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a NodeProto) -> Self {
        Self { node }
    }

    pub fn node(&self) -> &'a NodeProto {
        self.node
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }

    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).map_or(default.to_owned(), |a| {
            String::from_utf8_lossy(&a.s).into_owned()
        })
    }

    pub fn ints(&self, name: &str) -> Vec<i64> {
        self.get(name).map(|a| a.ints.clone()).unwrap_or_default()
    }

    pub fn floats(&self, name: &str) -> Vec<f32> {
        self.get(name).map(|a| a.floats.clone()).unwrap_or_default()
    }

    pub fn strings(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn tensor(&self, name: &str) -> Result<Option<Tensor>> {
        match self.get(name).and_then(|a| a.t.as_ref()) {
            Some(proto) => Ok(Some(Tensor::from_proto(proto)?)),
            None => Ok(None),
        }
    }

    /// A float list given either as `{name}_as_tensor` (any float type, kept as f64) or as the
    /// float32 `{name}` list; ONNX-ML opset 3 added the tensor forms for double precision.
    pub fn floats_or_tensor(&self, name: &str) -> Result<Vec<f64>> {
        match self.tensor(&format!("{name}_as_tensor"))? {
            Some(tensor) => tensor.to_f64(),
            None => Ok(self.floats(name).into_iter().map(f64::from).collect()),
        }
    }

    /// An error about this node's definition.
    pub fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::Model(format!("{}: {message}", self.node.describe()))
    }

    /// A feature of this node the native engine does not implement.
    pub fn unsupported(&self, message: impl std::fmt::Display) -> Error {
        Error::Unsupported(format!("{}: {message}", self.node.describe()))
    }
}
