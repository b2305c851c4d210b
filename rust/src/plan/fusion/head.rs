//! The nodes after a fused linear model's scores (its "head"): sigmoid or softmax, the
//! normalisation of probabilities, the argmax and its class label, with the casts and reshapes
//! skl2onnx puts around them.
//!
//! They are traced into a short program over block-sized buffers of float64 values, one
//! buffer per node, which runs right after the scores of a block and writes the graph's
//! outputs straight into their final buffers. Each instruction computes what its node's
//! kernel computes, with the same scalar code in the same order, so outputs are bit-identical.
//! Values that depend only on a row's argmax (class labels and their casts) are tables with one
//! entry per class, worked out when the plan is built by the node's own kernel.

use std::collections::HashMap;

use crate::plan::onnx::{GraphProto, NodeProto};
use crate::plan::ops::{best_position, cast_tensor, softmax_in_place, Attrs, UnaryOp};
use crate::plan::tensor::{Data, ElemType, Tensor};

/// Where a row's values sit in an output tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// [N, dims...].
    Rows(Vec<usize>),
    /// [1, N]: ArrayFeatureExtractor with a 1-D X puts the batch on the last axis.
    Across,
}

impl Shape {
    pub fn of(&self, rows: usize) -> Vec<usize> {
        match self {
            Self::Rows(dims) => [rows].into_iter().chain(dims.iter().copied()).collect(),
            Self::Across => vec![1, rows],
        }
    }

    /// Values per row.
    pub fn width(&self) -> usize {
        match self {
            Self::Rows(dims) => dims.iter().product(),
            Self::Across => 1,
        }
    }
}

/// One instruction; instruction `i` writes buffer `i + 1` (buffer 0 holds the scores).
#[derive(Clone, Copy, Debug)]
enum Op {
    Unary(UnaryOp, usize),
    /// Softmax of each row.
    Softmax(usize),
    /// Each row's sum, from 0.0 in column order (ReduceSum over the last axis).
    Sum(usize),
    /// a / b, where b has one value per row or as many as a.
    Div(usize, usize),
    /// The position of each row's largest value, as ArgMax finds it (stored as float64; the
    /// positions are small integers, exact in it).
    ArgMax {
        of: usize,
        last: bool,
    },
}

/// A graph output of the head.
pub enum Output {
    /// A float64 buffer.
    Numbers { buffer: usize, shape: Shape },
    /// `table[argmax]`, the argmax of each row being in `buffer`.
    Label {
        buffer: usize,
        table: Tensor,
        shape: Shape,
    },
}

#[derive(Clone)]
enum Value {
    Numbers {
        buffer: usize,
        dims: Vec<usize>,
    },
    Label {
        buffer: usize,
        table: Tensor,
        shape: Shape,
    },
}

pub struct Head {
    ops: Vec<Op>,
    /// Values per row of each buffer.
    pub widths: Vec<usize>,
    /// In the graph's output order.
    pub outputs: Vec<Output>,
    /// The operator of each node the head stands for.
    pub nodes: Vec<String>,
}

struct Tracer<'a> {
    constants: &'a HashMap<String, Tensor>,
    opset: i64,
    ops: Vec<Op>,
    widths: Vec<usize>,
    values: HashMap<String, Value>,
}

/// The head of the linear model whose [N, `width`] scores are `scores`, when every node of the
/// graph that `absorbed` leaves is part of it and every graph output comes out of it.
pub fn trace(
    graph: &GraphProto,
    absorbed: &[bool],
    scores: &str,
    width: usize,
    constants: &HashMap<String, Tensor>,
    opset: i64,
) -> Option<Head> {
    let mut tracer = Tracer {
        constants,
        opset,
        ops: Vec::new(),
        widths: vec![width],
        values: HashMap::from([(
            scores.to_owned(),
            Value::Numbers {
                buffer: 0,
                dims: vec![width],
            },
        )]),
    };
    let mut nodes = Vec::new();
    for (node, _) in graph.node.iter().zip(absorbed).filter(|(_, &a)| !a) {
        let [output] = &node.output[..] else {
            return None;
        };
        let value = tracer.eval(node)?;
        tracer.values.insert(output.clone(), value);
        nodes.push(node.op_type.clone());
    }
    let outputs = graph
        .output
        .iter()
        .map(|o| {
            Some(match tracer.values.get(&o.name)?.clone() {
                Value::Numbers { buffer, dims } => Output::Numbers {
                    buffer,
                    shape: Shape::Rows(dims),
                },
                Value::Label {
                    buffer,
                    table,
                    shape,
                } => Output::Label {
                    buffer,
                    table,
                    shape,
                },
            })
        })
        .collect::<Option<_>>()?;
    Some(Head {
        ops: tracer.ops,
        widths: tracer.widths,
        outputs,
        nodes,
    })
}

impl Tracer<'_> {
    fn input(&self, node: &NodeProto, i: usize) -> Option<&Value> {
        self.values.get(node.input.get(i)?)
    }

    /// A float64 value of shape [N, w]: its buffer and w.
    fn row_vector(&self, node: &NodeProto, i: usize) -> Option<(usize, usize)> {
        match self.input(node, i)? {
            Value::Numbers { buffer, dims } if dims.len() == 1 => Some((*buffer, dims[0])),
            _ => None,
        }
    }

    fn push(&mut self, op: Op, width: usize) -> usize {
        self.ops.push(op);
        self.widths.push(width);
        self.widths.len() - 1
    }

    fn eval(&mut self, node: &NodeProto) -> Option<Value> {
        let attrs = Attrs::new(node);
        let last_axis = |axis: i64| axis == 1 || axis == -1;
        let op = node.op_type.as_str();
        match node.domain.as_str() {
            "" | "ai.onnx" => {}
            "ai.onnx.ml" if op == "ArrayFeatureExtractor" => return self.feature(node),
            _ => return None,
        }
        if let Some(unary) = UnaryOp::from_name(op) {
            let Value::Numbers { buffer, dims } = self.input(node, 0)?.clone() else {
                return None;
            };
            let buffer = self.push(Op::Unary(unary, buffer), dims.iter().product());
            return Some(Value::Numbers { buffer, dims });
        }
        match op {
            "Identity" => self.input(node, 0).cloned(),
            "Softmax" => {
                let (of, width) = self.row_vector(node, 0)?;
                let axis = attrs.int("axis", if self.opset < 13 { 1 } else { -1 });
                last_axis(axis).then(|| Value::Numbers {
                    buffer: self.push(Op::Softmax(of), width),
                    dims: vec![width],
                })
            }
            "ReduceSum" => {
                let (of, _) = self.row_vector(node, 0)?;
                let axes = if self.opset < 13 {
                    attrs.ints("axes")
                } else {
                    self.constants.get(node.input.get(1)?)?.to_i64().ok()?
                };
                let keep = attrs.int("keepdims", 1) != 0;
                (axes.len() == 1 && last_axis(axes[0])).then(|| Value::Numbers {
                    buffer: self.push(Op::Sum(of), 1),
                    dims: if keep { vec![1] } else { Vec::new() },
                })
            }
            "Div" => {
                let (a, width) = self.row_vector(node, 0)?;
                let Value::Numbers { buffer: b, dims } = self.input(node, 1)?.clone() else {
                    return None;
                };
                // [N, w] / [N, w], or [N, w] / [N, 1] broadcast along the row.
                (dims[..] == [width] || dims[..] == [1]).then(|| Value::Numbers {
                    buffer: self.push(Op::Div(a, b), width),
                    dims: vec![width],
                })
            }
            "ArgMax" => {
                let (of, width) = self.row_vector(node, 0)?;
                if !last_axis(attrs.int("axis", 0)) {
                    return None;
                }
                let last = attrs.int("select_last_index", 0) != 0;
                let keep = attrs.int("keepdims", 1) != 0;
                Some(Value::Label {
                    buffer: self.push(Op::ArgMax { of, last }, 1),
                    table: Tensor::i64(vec![width], (0..width as i64).collect()),
                    shape: Shape::Rows(if keep { vec![1] } else { Vec::new() }),
                })
            }
            "Cast" => {
                let to = ElemType::from_onnx(i32::try_from(attrs.int("to", 0)).ok()?)?;
                match self.input(node, 0)?.clone() {
                    value @ Value::Numbers { .. } => (to == ElemType::F64).then_some(value),
                    Value::Label {
                        buffer,
                        table,
                        shape,
                    } => Some(Value::Label {
                        buffer,
                        table: cast_tensor(&table, to).ok()?,
                        shape,
                    }),
                }
            }
            "Reshape" => self.reshape(node, &attrs),
            _ => None,
        }
    }

    /// Reshapes that keep each row's values together: [-1, dims...] (or [0, dims...], which
    /// copies the batch dimension) with as many values per row as before.
    fn reshape(&self, node: &NodeProto, attrs: &Attrs) -> Option<Value> {
        let target = self.constants.get(node.input.get(1)?)?.to_i64().ok()?;
        let (&first, rest) = target.split_first()?;
        let dims: Vec<usize> = rest
            .iter()
            .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
            .collect::<Option<_>>()?;
        let value = self.input(node, 0)?.clone();
        let shape = match &value {
            Value::Numbers { dims, .. } => Shape::Rows(dims.clone()),
            Value::Label { shape, .. } => shape.clone(),
        };
        let copies_batch = first == 0 && attrs.int("allowzero", 0) == 0;
        let keeps_rows = first == -1 || (copies_batch && shape != Shape::Across);
        if !keeps_rows || dims.iter().product::<usize>() != shape.width() {
            return None;
        }
        Some(match value {
            Value::Numbers { buffer, .. } => Value::Numbers { buffer, dims },
            Value::Label { buffer, table, .. } => Value::Label {
                buffer,
                table,
                shape: Shape::Rows(dims),
            },
        })
    }

    /// ArrayFeatureExtractor of a constant X (class labels, [k] or [1, k]) by a label: each
    /// table entry becomes X's element at it, and the batch moves to the last axis.
    fn feature(&self, node: &NodeProto) -> Option<Value> {
        let x = self.constants.get(node.input.first()?)?;
        let Value::Label { buffer, table, .. } = self.input(node, 1)? else {
            return None;
        };
        if !(x.rank() == 1 || (x.rank() == 2 && x.shape[0] == 1)) {
            return None;
        }
        let Data::I64(positions) = &table.data else {
            return None;
        };
        let positions: Vec<usize> = positions
            .iter()
            .map(|&p| usize::try_from(p).ok().filter(|&p| p < x.len()))
            .collect::<Option<_>>()?;
        Some(Value::Label {
            buffer: *buffer,
            table: x.gather_elements(vec![positions.len()], &positions),
            shape: Shape::Across,
        })
    }
}

impl Head {
    /// Run on one block of `rows` rows whose row-major scores are in `buffers[0]`.
    #[inline(always)]
    pub fn run(&self, rows: usize, buffers: &mut Vec<Vec<f64>>) {
        buffers.resize_with(self.widths.len(), Vec::new);
        for (i, op) in self.ops.iter().enumerate() {
            let (done, rest) = buffers.split_at_mut(i + 1);
            let out = &mut rest[0];
            let width = self.widths[i + 1];
            out.clear();
            out.resize(rows * width, 0.0);
            match *op {
                Op::Unary(unary, a) => unary.apply_all(&done[a][..rows * width], out),
                Op::Softmax(a) => {
                    out.copy_from_slice(&done[a][..rows * width]);
                    out.chunks_exact_mut(width).for_each(softmax_in_place);
                }
                Op::Sum(a) => {
                    let w = self.widths[a];
                    for (o, row) in out.iter_mut().zip(done[a].chunks_exact(w)) {
                        *o = row.iter().fold(0.0, |sum, &x| sum + x);
                    }
                }
                Op::Div(a, b) => {
                    let (x, y) = (&done[a][..rows * width], &done[b]);
                    if self.widths[b] == width {
                        for ((o, &x), &y) in out.iter_mut().zip(x).zip(y) {
                            *o = x / y;
                        }
                    } else {
                        for ((o, x), &y) in out
                            .chunks_exact_mut(width)
                            .zip(x.chunks_exact(width))
                            .zip(y)
                        {
                            for (o, &x) in o.iter_mut().zip(x) {
                                *o = x / y;
                            }
                        }
                    }
                }
                Op::ArgMax { of, last } => {
                    let w = self.widths[of];
                    for (o, row) in out.iter_mut().zip(done[of].chunks_exact(w)) {
                        *o = best_position(row.iter().copied(), last) as f64;
                    }
                }
            }
        }
    }
}
