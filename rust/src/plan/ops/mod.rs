//! The operators a plan can run, one kernel type per ONNX operator (or family).
//!
//! `build` turns an ONNX node into a kernel once, when the plan is made: attributes are read,
//! checked and laid out for speed then, so running a kernel only touches tensors.

mod attrs;
mod broadcast;
mod elementwise;
mod linear_algebra;
pub(crate) mod ml;
pub(crate) mod post_transform;
mod shape;
mod tree;

pub use attrs::Attrs;
pub(crate) use elementwise::{cast_tensor, UnaryOp};
pub(crate) use linear_algebra::{best_position, softmax_in_place};
pub(crate) use tree::handles as is_tree_ensemble;

use std::collections::HashMap;

use super::onnx::NodeProto;
use super::tensor::Tensor;
use crate::error::{Error, Result};

/// One operator, ready to run on a block of rows.
pub trait Kernel: Send + Sync {
    /// `inputs` follow the node's input list; an omitted optional input is `None`.
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>>;

    /// `run` with the first input given by value, because no later step reads it: kernels
    /// that only relabel it (Reshape, Identity, same-type Cast) override this to skip a copy.
    fn run_owned(&self, first: Tensor, rest: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let mut inputs = Vec::with_capacity(rest.len() + 1);
        inputs.push(Some(&first));
        inputs.extend_from_slice(rest);
        self.run(&inputs)
    }

    /// Whether each output row depends only on the same input row (no reduction or reshape
    /// across the batch axis): graphs of such kernels run in parallel over blocks of rows.
    fn row_wise(&self) -> bool {
        true
    }
}

/// The first `n` inputs, which the node requires.
pub fn required<'t, const N: usize>(
    inputs: &[Option<&'t Tensor>],
    op: &str,
) -> Result<[&'t Tensor; N]> {
    let mut out = [None; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = inputs.get(i).copied().flatten();
    }
    if out.iter().any(Option::is_none) {
        return Err(Error::Model(format!("{op} needs {N} inputs")));
    }
    Ok(out.map(|t| t.expect("checked above")))
}

/// What building a kernel may look at: the node, its domain's opset, and the graph's constants
/// (some kernels decide at build time whether they keep rows apart).
pub struct Context<'a> {
    pub attrs: Attrs<'a>,
    pub opset: i64,
    constants: &'a HashMap<String, Tensor>,
}

impl<'a> Context<'a> {
    pub fn new(node: &'a NodeProto, opset: i64, constants: &'a HashMap<String, Tensor>) -> Self {
        Self {
            attrs: Attrs::new(node),
            opset,
            constants,
        }
    }

    /// The node's `i`-th input when it is an initializer.
    pub fn constant_input(&self, i: usize) -> Option<&'a Tensor> {
        let name = self.attrs.node().input.get(i)?;
        self.constants.get(name)
    }
}

/// The `i`-th input as int64 values (axes, starts, steps), when the node was given it.
pub fn optional_i64(inputs: &[Option<&Tensor>], i: usize) -> Result<Option<Vec<i64>>> {
    inputs
        .get(i)
        .copied()
        .flatten()
        .map(Tensor::to_i64)
        .transpose()
}

/// Build the kernel for the context's node.
pub fn build(ctx: &Context) -> Result<Box<dyn Kernel>> {
    let node = ctx.attrs.node();
    match (node.domain.as_str(), node.op_type.as_str()) {
        ("" | "ai.onnx", op) => build_onnx(op, ctx),
        ("ai.onnx.ml", op) if tree::handles(op) => tree::build(op, &ctx.attrs, ctx.opset),
        ("ai.onnx.ml", op) => ml::build(op, &ctx.attrs, ctx.opset),
        _ => Err(outside_subset(node)),
    }
}

fn build_onnx(op: &str, ctx: &Context) -> Result<Box<dyn Kernel>> {
    match op {
        "Add" | "Sub" | "Mul" | "Div" => elementwise::arithmetic(op),
        "Abs" | "Sigmoid" | "Neg" | "Exp" | "Log" | "Sqrt" => elementwise::unary(op),
        "IsNaN" => Ok(Box::new(elementwise::IsNan)),
        "Where" => Ok(Box::new(elementwise::Where)),
        "Cast" => elementwise::cast(&ctx.attrs),
        "Identity" => Ok(Box::new(elementwise::Identity)),
        "Concat" => shape::concat(ctx),
        "Reshape" => shape::reshape(ctx),
        "Flatten" => shape::flatten(ctx),
        "Gather" => shape::gather(ctx),
        "Slice" => shape::slice(ctx),
        "Squeeze" | "Unsqueeze" => shape::squeeze(op, ctx),
        "MatMul" => Ok(Box::new(linear_algebra::MatMul)),
        "Gemm" => linear_algebra::gemm(&ctx.attrs),
        "Softmax" => linear_algebra::softmax(ctx),
        "ArgMax" => linear_algebra::arg_max(&ctx.attrs),
        "ReduceSum" => linear_algebra::reduce_sum(ctx),
        _ => Err(outside_subset(ctx.attrs.node())),
    }
}

pub fn outside_subset(node: &NodeProto) -> Error {
    Error::Unsupported(format!(
        "{} is outside the native engine's operators",
        node.describe()
    ))
}
