//! Fusing the preprocessing skl2onnx emits into one kernel per block of rows: with a linear
//! model, or into the feature matrix a tree ensemble reads.
//!
//! A scikit-learn pipeline of imputation, scaling and one-hot encoding before a linear model
//! becomes about twenty ONNX nodes (Concat, IsNaN + Where, Sub, Div, OneHotEncoder, Reshape,
//! Cast, MatMul, Add), each of which writes a block-sized tensor. This pass traces those nodes
//! symbolically, column by column: each column of the matrix the MatMul reads is either a
//! numeric input column with its element-wise steps (fill NaN, subtract, divide, ...) or one
//! category of a one-hot encoder. When the chain that feeds a MatMul (and the Add of its
//! intercept) is made only of such nodes and none of its intermediate values is read anywhere
//! else, the whole chain runs as one `linear::FusedLinear` kernel: each numeric column is transformed
//! and multiplied into the scores, and each one-hot encoder adds the weight row of the row's
//! category, with no one-hot matrix.
//!
//! The fused kernel performs the same float64 operations in the same order as the nodes it
//! replaces, so its results are bit-identical: the terms a one-hot zero would add are `+0.0`
//! (weights are finite, checked here), and adding zero to a sum that starts at `+0.0` never
//! changes it. Anything the tracer does not recognise keeps the general executor.
//!
//! Where no linear chain fuses, the input of a tree ensemble, when more than one node makes it
//! and all of them trace, is built by one `matrix::FusedMatrix` kernel with the same
//! operations, column by column.

mod direct;
mod head;
mod linear;
mod matrix;
mod reads;
mod trace;

use std::collections::{HashMap, HashSet};

use super::onnx::GraphProto;
use super::ops::{is_tree_ensemble, Kernel};
use super::tensor::Tensor;
pub use direct::Direct;
use trace::{Traced, Tracer, Value};

/// Nodes replaced by one fused kernel.
pub struct Fusion {
    /// For every node of the graph, whether the fused kernel stands for it.
    pub absorbed: Vec<bool>,
    /// The absorbed node whose output the kernel computes: the fused step takes its place.
    pub at: usize,
    /// Graph inputs the kernel reads, in the order it takes them.
    pub inputs: Vec<String>,
    pub output: String,
    pub kernel: Box<dyn Kernel>,
    pub describe: String,
    /// The same kernel with every node after it, run straight from the Arrow columns, when
    /// those nodes are a head it can compute (see `head`) that makes every graph output.
    pub direct: Option<Direct>,
}

/// The fusion for `graph`, if any; `opset` is the graph's version of the default domain.
pub fn find(graph: &GraphProto, constants: &HashMap<String, Tensor>, opset: i64) -> Option<Fusion> {
    let mut tracer = Tracer::new(graph, constants);
    for node in &graph.node {
        tracer.step(node);
    }
    let candidates = Candidates {
        graph,
        tracer: &tracer,
        readers: readers(graph),
        outputs: graph.output.iter().map(|o| o.name.as_str()).collect(),
    };
    linear(&candidates, constants, opset).or_else(|| matrix(&candidates))
}

/// The traced values of a graph that one kernel could compute.
struct Candidates<'a> {
    graph: &'a GraphProto,
    tracer: &'a Tracer<'a>,
    readers: HashMap<&'a str, Vec<usize>>,
    outputs: HashSet<&'a str>,
}

impl<'a> Candidates<'a> {
    /// The value made by the most nodes among those `wanted`, whose nodes can all disappear
    /// into one kernel.
    fn largest(&self, wanted: impl Fn(&str, &Value) -> bool) -> Option<(&'a String, &'a Traced)> {
        self.tracer
            .values()
            .filter(|(name, t)| wanted(name, &t.value))
            .filter(|(name, t)| {
                self_contained(self.graph, name, &t.nodes, &self.readers, &self.outputs)
            })
            .max_by_key(|(name, t)| (t.nodes.len(), std::cmp::Reverse(name.as_str())))
    }

    /// Which nodes `traced` absorbs, the last of them (where the kernel runs), and their
    /// operators in graph order.
    fn absorbed(&self, traced: &Traced) -> (Vec<bool>, usize, Vec<&'a str>) {
        let mut absorbed = vec![false; self.graph.node.len()];
        for &i in &traced.nodes {
            absorbed[i] = true;
        }
        let at = *traced.nodes.iter().max().expect("a traced value has nodes");
        let ops = traced
            .nodes
            .iter()
            .map(|&i| self.graph.node[i].op_type.as_str())
            .collect();
        (absorbed, at, ops)
    }
}

/// The largest linear chain that can run as one kernel, with the head after it when it can
/// run straight from the Arrow columns.
fn linear(
    candidates: &Candidates,
    constants: &HashMap<String, Tensor>,
    opset: i64,
) -> Option<Fusion> {
    let (name, traced) = candidates.largest(|_, value| matches!(value, Value::Linear { .. }))?;
    let (absorbed, at, ops) = candidates.absorbed(traced);
    let (kernel, inputs) = candidates.tracer.linear(&traced.value)?;
    let head = head::trace(
        candidates.graph,
        &absorbed,
        name,
        kernel.outputs,
        constants,
        opset,
    );
    let mut describe = format!(
        "linear model '{name}': {} nodes ({}) fused into one kernel",
        ops.len(),
        ops.join(", ")
    );
    match head.as_ref().map(|h| &h.nodes[..]) {
        Some([]) => describe += ", run straight from the Arrow columns into its output",
        Some(nodes) => {
            describe += &format!(
                ", run straight from the Arrow columns with the {} nodes after it ({}) writing \
                 the outputs",
                nodes.len(),
                nodes.join(", ")
            )
        }
        None => {}
    }
    let direct = head.map(|head| Direct::new(&kernel, &inputs, head));
    Some(Fusion {
        describe,
        direct,
        absorbed,
        at,
        inputs,
        output: name.clone(),
        kernel: Box::new(kernel),
    })
}

/// The feature matrix a tree ensemble reads, when more than one node makes it.
fn matrix(candidates: &Candidates) -> Option<Fusion> {
    let graph = candidates.graph;
    let tree_inputs: HashSet<&str> = graph
        .node
        .iter()
        .filter(|node| node.domain == "ai.onnx.ml" && is_tree_ensemble(&node.op_type))
        .filter_map(|node| node.input.first().map(String::as_str))
        .collect();
    let (name, traced) = candidates.largest(|name, value| {
        tree_inputs.contains(name) && matches!(value, Value::Columns { rank: 2, .. })
    })?;
    if traced.nodes.len() < 2 {
        return None;
    }
    let (absorbed, at, ops) = candidates.absorbed(traced);
    let (kernel, inputs) = candidates.tracer.matrix(&traced.value)?;
    Some(Fusion {
        describe: format!(
            "feature matrix '{name}': {} nodes ({}) fused into one kernel",
            ops.len(),
            ops.join(", ")
        ),
        direct: None,
        absorbed,
        at,
        inputs,
        output: name.clone(),
        kernel: Box::new(kernel),
    })
}

/// For each value name, the nodes that read it.
fn readers(graph: &GraphProto) -> HashMap<&str, Vec<usize>> {
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for input in node.input.iter().filter(|n| !n.is_empty()) {
            readers.entry(input.as_str()).or_default().push(i);
        }
    }
    readers
}

/// Whether the nodes behind `target` can disappear into one kernel: no value they make other
/// than `target` is read by another node or is a graph output.
fn self_contained(
    graph: &GraphProto,
    target: &str,
    nodes: &[usize],
    readers: &HashMap<&str, Vec<usize>>,
    outputs: &HashSet<&str>,
) -> bool {
    let inside: HashSet<usize> = nodes.iter().copied().collect();
    nodes.iter().all(|&i| {
        graph.node[i]
            .output
            .iter()
            .filter(|name| name.as_str() != target)
            .all(|name| {
                !outputs.contains(name.as_str())
                    && readers
                        .get(name.as_str())
                        .is_none_or(|r| r.iter().all(|j| inside.contains(j)))
            })
    })
}
