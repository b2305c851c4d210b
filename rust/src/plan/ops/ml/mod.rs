//! ai.onnx.ml preprocessing and linear-model operators.
//!
//! Each kernel follows the ONNX-ML operator spec and, where the spec leaves a choice open, what
//! onnxruntime's CPU kernels do (onnxruntime 1.32, checked by running it): the native engine is
//! judged by its agreement with onnxruntime. Where onnxruntime's result is an accident of its
//! implementation (reading past a buffer, uninitialised output), the kernel refuses with
//! `Error::Unsupported` or `Error::Model` instead of guessing.
//!
//! Kernels keep the spec's float32 outputs and compute them as onnxruntime does, in float32 and
//! in its order (Scaler, Normalizer, the linear models' GEMM, the post-transforms), so results
//! are bit-identical to its, checked on random data: a scaled value that feeds a tree comparison
//! must round exactly as onnxruntime rounds it, and a one-ulp score difference can move a label.
//! Where onnxruntime has no kernel (float64 Imputer or LinearRegressor input), values are used
//! exactly and rounded once.

mod feature_extractor;
mod imputer;
mod label_encoder;
mod linear;
pub(crate) mod lookup;
mod one_hot;
mod scaler;

use std::fmt::Display;

use super::{outside_subset, required, Attrs, Kernel};
use crate::error::{Error, Result};
use crate::plan::tensor::Tensor;

pub fn build(op: &str, attrs: &Attrs, opset: i64) -> Result<Box<dyn Kernel>> {
    match op {
        "ArrayFeatureExtractor" => Ok(Box::new(feature_extractor::ArrayFeatureExtractor::new(
            attrs,
        ))),
        "Binarizer" => Ok(Box::new(scaler::Binarizer::new(attrs))),
        "Imputer" => Ok(Box::new(imputer::Imputer::new(attrs)?)),
        "LabelEncoder" => Ok(Box::new(label_encoder::LabelEncoder::new(attrs, opset)?)),
        "LinearClassifier" => Ok(Box::new(linear::LinearClassifier::new(attrs)?)),
        "LinearRegressor" => Ok(Box::new(linear::LinearRegressor::new(attrs)?)),
        "Normalizer" => Ok(Box::new(scaler::Normalizer::new(attrs)?)),
        "OneHotEncoder" => Ok(Box::new(one_hot::OneHotEncoder::new(attrs)?)),
        "Scaler" => Ok(Box::new(scaler::Scaler::new(attrs)?)),
        _ => Err(outside_subset(attrs.node())),
    }
}

/// A kernel's node, as its errors name it once the graph is running.
#[derive(Clone, Debug)]
pub(crate) struct NodeName(pub(crate) String);

impl NodeName {
    fn of(attrs: &Attrs) -> Self {
        Self(attrs.node().describe())
    }

    pub(crate) fn error(&self, message: impl Display) -> Error {
        Error::Model(format!("{}: {message}", self.0))
    }

    fn unsupported(&self, message: impl Display) -> Error {
        Error::Unsupported(format!("{}: {message}", self.0))
    }

    fn inputs<'t, const N: usize>(&self, inputs: &[Option<&'t Tensor>]) -> Result<[&'t Tensor; N]> {
        required::<N>(inputs, &self.0)
    }

    fn wrong_type(&self, input: &Tensor, allowed: &str) -> Error {
        self.error(format_args!(
            "input is {}, expected {allowed}",
            input.elem_type().name()
        ))
    }

    /// Check that `count` per-column values (1 = one value for every element) fit `input`.
    ///
    /// onnxruntime takes the column count from dimension 1 (dimension 0 of a 1-D input, which it
    /// treats as a single row); here dimension 0 is always the batch, so per-column values are
    /// only accepted on [N, F] inputs.
    fn check_columns(&self, input: &Tensor, count: usize, what: &str) -> Result<()> {
        if count == 1 {
            return Ok(());
        }
        match input.shape.as_slice() {
            [_, columns] if *columns == count => Ok(()),
            [_, columns] => Err(self.error(format_args!(
                "{count} {what} for an input of {columns} columns"
            ))),
            shape => Err(self.unsupported(format_args!(
                "{count} per-column {what} on an input of shape {shape:?} (only [N, F] inputs)"
            ))),
        }
    }

    /// (rows, features) of a linear model's input: [N, F] only. onnxruntime reads a 1-D input as
    /// one row of features, which a batch-first plan cannot reproduce block by block.
    fn matrix(&self, input: &Tensor) -> Result<(usize, usize)> {
        match input.shape.as_slice() {
            &[rows, features] => Ok((rows, features)),
            [_] => Err(self.unsupported(
                "a 1-D input (onnxruntime reads it as one row of features, not a batch)",
            )),
            shape => Err(self.error(format_args!("input of shape {shape:?}, expected [N, F]"))),
        }
    }
}

#[cfg(test)]
pub(super) mod testing {
    //! Nodes and inputs for the kernels' unit tests.

    use std::sync::Arc;

    use super::super::Kernel;
    use super::Attrs;
    use crate::error::Result;
    use crate::plan::onnx::{AttributeProto, NodeProto, TensorProto};
    use crate::plan::tensor::{Data, Strings, Tensor};

    pub fn kernel(
        op: &str,
        opset: i64,
        attributes: Vec<AttributeProto>,
    ) -> Result<Box<dyn Kernel>> {
        let node = NodeProto {
            name: "n".into(),
            op_type: op.into(),
            domain: "ai.onnx.ml".into(),
            attribute: attributes,
            ..Default::default()
        };
        super::build(op, &Attrs::new(&node), opset)
    }

    /// Run a one-input kernel built from `attributes`.
    pub fn run1(
        op: &str,
        opset: i64,
        attributes: Vec<AttributeProto>,
        x: Tensor,
    ) -> Result<Vec<Tensor>> {
        kernel(op, opset, attributes)?.run(&[Some(&x)])
    }

    fn attr(name: &str) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn int(name: &str, i: i64) -> AttributeProto {
        AttributeProto { i, ..attr(name) }
    }

    pub fn float(name: &str, f: f32) -> AttributeProto {
        AttributeProto { f, ..attr(name) }
    }

    pub fn string(name: &str, s: &str) -> AttributeProto {
        AttributeProto {
            s: s.as_bytes().to_vec(),
            ..attr(name)
        }
    }

    pub fn ints(name: &str, ints: &[i64]) -> AttributeProto {
        AttributeProto {
            ints: ints.to_vec(),
            ..attr(name)
        }
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

    pub fn tensor(name: &str, t: TensorProto) -> AttributeProto {
        AttributeProto {
            t: Some(t),
            ..attr(name)
        }
    }

    /// A string tensor whose table holds `table` and whose elements are `codes`, as an Arrow
    /// dictionary column arrives.
    pub fn dictionary(shape: Vec<usize>, table: &[&str], codes: &[u32]) -> Tensor {
        Tensor::new(
            shape,
            Data::Str(Strings {
                table: Arc::new(table.iter().map(|s| s.to_string()).collect()),
                codes: codes.to_vec(),
            }),
        )
    }

    /// The elements of a string tensor, decoded.
    pub fn texts(t: &Tensor) -> Vec<String> {
        let s = t.as_strings().expect("a string tensor");
        (0..s.codes.len()).map(|i| s.get(i).to_owned()).collect()
    }

    pub fn message(result: Result<Vec<Tensor>>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }
}
