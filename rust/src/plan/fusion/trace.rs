//! Symbolic evaluation of a graph, column by column, for the nodes a linear pipeline uses.

use std::collections::HashMap;

use super::linear::{FusedLinear, Term};
use super::matrix::FusedMatrix;
use super::reads::{Encoder, Input, Reads, Step};
use crate::plan::onnx::{data_type, GraphProto, NodeProto};
use crate::plan::ops::ml::lookup::string_positions;
use crate::plan::ops::ml::NodeName;
use crate::plan::ops::Attrs;
use crate::plan::tensor::{Data, ElemType, Tensor};

/// One column of a traced value.
#[derive(Clone, Debug)]
pub enum Column {
    /// Column `column` of numeric graph input `input`, then `steps` in order.
    Number {
        input: usize,
        column: usize,
        steps: Vec<Step>,
    },
    /// 1.0 where the string of encoder `encoder`'s input is category `index`, else 0.0.
    Category { encoder: usize, index: usize },
}

#[derive(Clone, Debug)]
pub enum Value {
    /// A tensor of shape [N, 1, ..., 1, columns.len()] (`rank` dimensions).
    Columns {
        rank: usize,
        elem: ElemType,
        columns: Vec<Column>,
    },
    /// String graph input `input` of shape [N, 1] (`rank` 2) or [N].
    Strings { rank: usize, input: usize },
    /// IsNaN of the named value.
    IsNan(String),
    /// `columns` times the [columns.len(), outputs] `weights`, plus `bias` (one per output).
    Linear {
        columns: Vec<Column>,
        weights: Vec<f64>,
        outputs: usize,
        bias: Option<Vec<f64>>,
    },
}

/// A value with the nodes it was computed by (sorted node indices).
pub struct Traced {
    pub value: Value,
    pub nodes: Vec<usize>,
}

pub struct Tracer<'a> {
    constants: &'a HashMap<String, Tensor>,
    /// Graph inputs that can be traced, in graph order.
    inputs: Vec<(String, Input)>,
    encoders: Vec<Encoder>,
    values: HashMap<String, Traced>,
    next_node: usize,
}

impl<'a> Tracer<'a> {
    /// Float64 inputs of a known width and string inputs of one column start the trace.
    pub fn new(graph: &GraphProto, constants: &'a HashMap<String, Tensor>) -> Self {
        let mut tracer = Self {
            constants,
            inputs: Vec::new(),
            encoders: Vec::new(),
            values: HashMap::new(),
            next_node: 0,
        };
        for info in graph
            .input
            .iter()
            .filter(|i| !constants.contains_key(&i.name))
        {
            let dims = info.dims().unwrap_or_default();
            let index = tracer.inputs.len();
            let (input, value) = match (info.elem_type(), dims.as_slice()) {
                (Some(data_type::DOUBLE), [_, Some(width)]) => (
                    Input::Numbers { width: *width },
                    Value::Columns {
                        rank: 2,
                        elem: ElemType::F64,
                        columns: (0..*width)
                            .map(|column| Column::Number {
                                input: index,
                                column,
                                steps: Vec::new(),
                            })
                            .collect(),
                    },
                ),
                (Some(data_type::STRING), [_, Some(1)] | [_]) => (
                    Input::Strings,
                    Value::Strings {
                        rank: dims.len(),
                        input: index,
                    },
                ),
                _ => continue,
            };
            tracer.inputs.push((info.name.clone(), input));
            tracer.values.insert(
                info.name.clone(),
                Traced {
                    value,
                    nodes: Vec::new(),
                },
            );
        }
        tracer
    }

    pub fn values(&self) -> impl Iterator<Item = (&String, &Traced)> {
        self.values.iter()
    }

    /// Trace the next node (nodes come in graph order); untraceable nodes are left out.
    pub fn step(&mut self, node: &NodeProto) {
        let index = self.next_node;
        self.next_node += 1;
        if node.output.len() != 1 {
            return;
        }
        let Some(value) = self.eval(node) else {
            return;
        };
        let mut nodes: Vec<usize> = node
            .input
            .iter()
            .filter_map(|name| self.values.get(name))
            .flat_map(|t| t.nodes.iter().copied())
            .chain([index])
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        self.values
            .insert(node.output[0].clone(), Traced { value, nodes });
    }

    fn eval(&mut self, node: &NodeProto) -> Option<Value> {
        let attrs = Attrs::new(node);
        match (node.domain.as_str(), node.op_type.as_str()) {
            ("" | "ai.onnx", "Identity") => Some(self.traced(node, 0)?.clone()),
            ("" | "ai.onnx", "Concat") => self.concat(node, &attrs),
            ("" | "ai.onnx", "Reshape") => self.reshape(node, &attrs),
            ("" | "ai.onnx", "Gather") => self.gather(node, &attrs),
            ("" | "ai.onnx", "Cast") => self.cast(node, &attrs),
            ("" | "ai.onnx", "IsNaN") => match self.traced(node, 0)? {
                Value::Columns {
                    elem: ElemType::F64,
                    ..
                } => Some(Value::IsNan(node.input[0].clone())),
                _ => None,
            },
            ("" | "ai.onnx", "Where") => self.impute(node),
            ("" | "ai.onnx", op @ ("Add" | "Sub" | "Mul" | "Div")) => self.arithmetic(op, node),
            ("" | "ai.onnx", "MatMul") => self.mat_mul(node),
            ("ai.onnx.ml", "OneHotEncoder") => self.one_hot(node, &attrs),
            _ => None,
        }
    }

    fn traced(&self, node: &NodeProto, i: usize) -> Option<&Value> {
        Some(&self.values.get(node.input.get(i)?)?.value)
    }

    fn constant(&self, node: &NodeProto, i: usize) -> Option<&'a Tensor> {
        self.constants.get(node.input.get(i)?)
    }

    fn concat(&self, node: &NodeProto, attrs: &Attrs) -> Option<Value> {
        if !attrs.has("axis") || node.input.is_empty() {
            return None;
        }
        let axis = attrs.int("axis", 0);
        let mut joined = Vec::new();
        let mut shape = None;
        for i in 0..node.input.len() {
            let Value::Columns {
                rank,
                elem,
                columns,
            } = self.traced(node, i)?
            else {
                return None;
            };
            if *shape.get_or_insert((*rank, *elem)) != (*rank, *elem) {
                return None;
            }
            joined.extend(columns.iter().cloned());
        }
        let (rank, elem) = shape?;
        // Only along the last axis, where concatenation keeps each row's values together.
        let last = rank as i64 - 1;
        (axis == last || axis == -1).then_some(Value::Columns {
            rank,
            elem,
            columns: joined,
        })
    }

    fn reshape(&self, node: &NodeProto, attrs: &Attrs) -> Option<Value> {
        let Value::Columns { elem, columns, .. } = self.traced(node, 0)? else {
            return None;
        };
        let shape = self.constant(node, 1)?.to_i64().ok()?;
        let keeps_rows = match shape.first()? {
            -1 => true,
            0 => attrs.int("allowzero", 0) == 0,
            _ => false,
        };
        (keeps_rows && shape.len() == 2 && shape[1] == columns.len() as i64).then(|| {
            Value::Columns {
                rank: 2,
                elem: *elem,
                columns: columns.clone(),
            }
        })
    }

    /// Column selection: Gather along axis 1 of a [N, F] value with constant 1-D indices.
    fn gather(&self, node: &NodeProto, attrs: &Attrs) -> Option<Value> {
        let indices = self.constant(node, 1)?;
        let axis = attrs.int("axis", 0);
        if indices.shape.len() != 1 || !(axis == 1 || axis == -1) {
            return None;
        }
        let indices = indices.to_i64().ok()?;
        let width = match self.traced(node, 0)? {
            Value::Columns {
                rank: 2, columns, ..
            } => columns.len(),
            Value::Strings { rank: 2, .. } => 1,
            _ => return None,
        } as i64;
        let picked: Vec<usize> = indices
            .iter()
            .map(|&i| {
                let i = if i < 0 { i + width } else { i };
                (0..width).contains(&i).then_some(i as usize)
            })
            .collect::<Option<_>>()?;
        match self.traced(node, 0)? {
            Value::Columns { elem, columns, .. } => Some(Value::Columns {
                rank: 2,
                elem: *elem,
                columns: picked.iter().map(|&i| columns[i].clone()).collect(),
            }),
            // Picking the only column of a string input, once, is the input itself.
            Value::Strings { input, .. } if picked.len() == 1 => Some(Value::Strings {
                rank: 2,
                input: *input,
            }),
            _ => None,
        }
    }

    /// Casts between float64 and float32. Narrowing adds a rounding step to each number;
    /// widening is exact for values that hold float32s (numbers rounded so, one-hot 0 and 1).
    fn cast(&self, node: &NodeProto, attrs: &Attrs) -> Option<Value> {
        let Value::Columns {
            rank,
            elem,
            columns,
        } = self.traced(node, 0)?
        else {
            return None;
        };
        let to = i32::try_from(attrs.int("to", 0)).ok()?;
        let (elem, columns) = match (elem, to) {
            (ElemType::F64, data_type::DOUBLE) | (ElemType::F32, data_type::FLOAT) => {
                (*elem, columns.clone())
            }
            (ElemType::F32, data_type::DOUBLE) if columns.iter().all(holds_float32) => {
                (ElemType::F64, columns.clone())
            }
            (ElemType::F64, data_type::FLOAT) => (
                ElemType::F32,
                columns
                    .iter()
                    .map(|column| with_step(column, Step::Float32))
                    .collect::<Option<_>>()?,
            ),
            _ => return None,
        };
        Some(Value::Columns {
            rank: *rank,
            elem,
            columns,
        })
    }

    /// The imputer's pattern: Where(IsNaN(X), fill, X).
    fn impute(&self, node: &NodeProto) -> Option<Value> {
        let Value::IsNan(of) = self.traced(node, 0)? else {
            return None;
        };
        if node.input.get(2) != Some(of) {
            return None;
        }
        let (rank, columns) = f64_columns(self.traced(node, 2)?)?;
        let fill = per_column(self.constant(node, 1)?, columns.len())?;
        let columns = columns
            .iter()
            .zip(fill)
            .map(|(column, fill)| with_step(column, Step::Fill(fill)))
            .collect::<Option<_>>()?;
        Some(Value::Columns {
            rank,
            elem: ElemType::F64,
            columns,
        })
    }

    fn arithmetic(&self, op: &str, node: &NodeProto) -> Option<Value> {
        // A constant on the left only for the operators where the order does not matter.
        let (x, constant) = match (self.traced(node, 0), self.constant(node, 1)) {
            (Some(x), Some(c)) => (x, c),
            _ if matches!(op, "Add" | "Mul") => (self.traced(node, 1)?, self.constant(node, 0)?),
            _ => return None,
        };
        if let Value::Linear {
            columns,
            weights,
            outputs,
            bias: None,
        } = x
        {
            let bias = per_column(constant, *outputs)?;
            return (op == "Add").then(|| Value::Linear {
                columns: columns.clone(),
                weights: weights.clone(),
                outputs: *outputs,
                bias: Some(bias),
            });
        }
        let (rank, columns) = f64_columns(x)?;
        let values = per_column(constant, columns.len())?;
        let columns = columns
            .iter()
            .zip(values)
            .map(|(column, c)| {
                let step = match op {
                    "Add" => Step::Add(c),
                    "Sub" => Step::Sub(c),
                    "Mul" => Step::Mul(c),
                    _ => Step::Div(c),
                };
                match column {
                    Column::Number { .. } => with_step(column, step),
                    // A one-hot value changed by arithmetic is no longer 0 or 1.
                    Column::Category { .. } => None,
                }
            })
            .collect::<Option<_>>()?;
        Some(Value::Columns {
            rank,
            elem: ElemType::F64,
            columns,
        })
    }

    fn mat_mul(&self, node: &NodeProto) -> Option<Value> {
        let (2, columns) = f64_columns(self.traced(node, 0)?)? else {
            return None;
        };
        let weights = self.constant(node, 1)?;
        let Data::F64(values) = &weights.data else {
            return None;
        };
        let [rows, outputs] = weights.shape[..] else {
            return None;
        };
        // Finite weights: a one-hot zero times them is +0.0 or -0.0, never NaN.
        (rows == columns.len() && outputs > 0 && values.iter().all(|w| w.is_finite())).then(|| {
            Value::Linear {
                columns: columns.to_vec(),
                weights: values.clone(),
                outputs,
                bias: None,
            }
        })
    }

    fn one_hot(&mut self, node: &NodeProto, attrs: &Attrs) -> Option<Value> {
        let &Value::Strings { rank, input } = self.traced(node, 0)? else {
            return None;
        };
        let categories = attrs.strings("cats_strings");
        // zeros = 0 (unknown values are errors) stays with the general kernel.
        if categories.is_empty() || attrs.has("cats_int64s") || attrs.int("zeros", 1) == 0 {
            return None;
        }
        let encoder = self.encoders.len();
        self.encoders.push(Encoder {
            input,
            // A repeated category maps to its last position, as OneHotEncoder's kernel does.
            positions: string_positions(&categories, false),
            count: categories.len(),
        });
        Some(Value::Columns {
            rank: rank + 1,
            elem: ElemType::F32,
            columns: (0..categories.len())
                .map(|index| Column::Category { encoder, index })
                .collect(),
        })
    }

    /// The fused kernel computing `value` (a `Value::Linear`), with the graph inputs it reads.
    pub fn linear(&self, value: &Value) -> Option<(FusedLinear, Vec<String>)> {
        let Value::Linear {
            columns,
            weights,
            outputs,
            bias,
        } = value
        else {
            return None;
        };
        let mut used = Used::default();
        let mut terms = Vec::new();
        for (row, column) in columns.iter().enumerate() {
            match column {
                Column::Number {
                    input,
                    column,
                    steps,
                } => terms.push(Term::Number {
                    input: used.input(*input),
                    column: *column,
                    steps: steps.clone(),
                    row,
                }),
                // An encoder's columns come out of it together and in order; its first column
                // stands for all of them.
                Column::Category { encoder, index: 0 } => {
                    let count = self.encoders[*encoder].count;
                    let in_order = (0..count).all(|i| {
                        matches!(columns.get(row + i),
                            Some(Column::Category { encoder: e, index }) if e == encoder && *index == i)
                    });
                    if !in_order {
                        return None;
                    }
                    let mut table = Vec::with_capacity(*outputs * (count + 1));
                    for j in 0..*outputs {
                        table.extend((row..row + count).map(|r| weights[r * outputs + j]));
                        table.push(0.0);
                    }
                    terms.push(Term::OneHot {
                        encoder: used.encoder(*encoder),
                        weights: table,
                    });
                }
                Column::Category { .. } => {}
            }
        }
        let (reads, names) = self.reads(used, "fused linear model");
        let kernel = FusedLinear {
            reads,
            terms,
            weights: weights.clone(),
            outputs: *outputs,
            bias: bias.clone(),
        };
        Some((kernel, names))
    }

    /// The fused kernel building `value` (a float [N, columns] `Value::Columns`), with the
    /// graph inputs it reads.
    pub fn matrix(&self, value: &Value) -> Option<(FusedMatrix, Vec<String>)> {
        let Value::Columns {
            rank: 2,
            elem: elem @ (ElemType::F64 | ElemType::F32),
            columns,
        } = value
        else {
            return None;
        };
        let mut used = Used::default();
        let columns: Vec<Column> = columns
            .iter()
            .map(|column| match column {
                Column::Number {
                    input,
                    column,
                    steps,
                } => Column::Number {
                    input: used.input(*input),
                    column: *column,
                    steps: steps.clone(),
                },
                Column::Category { encoder, index } => Column::Category {
                    encoder: used.encoder(*encoder),
                    index: *index,
                },
            })
            .collect();
        if columns.is_empty() {
            return None;
        }
        let (reads, names) = self.reads(used, "fused feature matrix");
        Some((FusedMatrix::new(reads, &columns, *elem), names))
    }

    /// What a kernel reading `used` reads, renumbered, and the names of its graph inputs.
    fn reads(&self, mut used: Used, node: &str) -> (Reads, Vec<String>) {
        let encoders = used
            .encoders
            .clone()
            .into_iter()
            .map(|e| {
                let encoder = &self.encoders[e];
                Encoder {
                    input: used.input(encoder.input),
                    positions: encoder.positions.clone(),
                    count: encoder.count,
                }
            })
            .collect();
        let (names, inputs) = used.inputs.iter().map(|&i| self.inputs[i].clone()).unzip();
        let reads = Reads {
            node: NodeName(node.into()),
            inputs,
            encoders,
        };
        (reads, names)
    }
}

/// The graph inputs and encoders a fused kernel reads, numbered in the order it first reads
/// them.
#[derive(Default)]
struct Used {
    inputs: Vec<usize>,
    encoders: Vec<usize>,
}

impl Used {
    fn input(&mut self, input: usize) -> usize {
        number(&mut self.inputs, input)
    }

    fn encoder(&mut self, encoder: usize) -> usize {
        number(&mut self.encoders, encoder)
    }
}

/// `item`'s position in `list`, appended if new.
fn number(list: &mut Vec<usize>, item: usize) -> usize {
    match list.iter().position(|&u| u == item) {
        Some(p) => p,
        None => {
            list.push(item);
            list.len() - 1
        }
    }
}

/// The columns of a float64 value, when it is one.
fn f64_columns(value: &Value) -> Option<(usize, &[Column])> {
    match value {
        Value::Columns {
            rank,
            elem: ElemType::F64,
            columns,
        } => Some((*rank, columns)),
        _ => None,
    }
}

/// A float64 constant broadcast over `count` columns of a [N, count] value: one value for all,
/// or one per column with shape [count] or [1, count].
fn per_column(constant: &Tensor, count: usize) -> Option<Vec<f64>> {
    let Data::F64(values) = &constant.data else {
        return None;
    };
    let leading_ones = constant.shape.iter().rev().skip(1).all(|&d| d == 1);
    if constant.shape.len() > 2 || !leading_ones {
        return None;
    }
    match values.len() {
        1 => Some(vec![values[0]; count]),
        n if n == count => Some(values.clone()),
        _ => None,
    }
}

fn with_step(column: &Column, step: Step) -> Option<Column> {
    match column {
        Column::Number {
            input,
            column,
            steps,
        } => {
            let mut steps = steps.clone();
            steps.push(step);
            Some(Column::Number {
                input: *input,
                column: *column,
                steps,
            })
        }
        // IsNaN of a one-hot value is false: Where keeps it; 0 and 1 are float32s.
        Column::Category { .. } if matches!(step, Step::Fill(_) | Step::Float32) => {
            Some(column.clone())
        }
        Column::Category { .. } => None,
    }
}

/// Whether every value of `column` is a float32 (so widening it to float64 is exact).
fn holds_float32(column: &Column) -> bool {
    match column {
        Column::Number { steps, .. } => matches!(steps.last(), Some(Step::Float32)),
        Column::Category { .. } => true,
    }
}
