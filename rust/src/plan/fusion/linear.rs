//! The fused linear kernel: preprocessing, one-hot encoding and the matrix product of a linear
//! model in one pass over a block of rows.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::plan::ops::ml::lookup::map_strings;
use crate::plan::ops::ml::NodeName;
use crate::plan::ops::Kernel;
use crate::plan::tensor::{Data, Tensor};

/// A graph input the kernel reads.
#[derive(Clone, Debug)]
pub enum Input {
    /// float64 of shape [N, width].
    Numbers { width: usize },
    /// string of shape [N, 1] or [N].
    Strings,
}

/// One element-wise operation with a per-column constant, as the graph's node computes it.
#[derive(Clone, Copy, Debug)]
pub enum Step {
    /// Where(IsNaN(x), fill, x).
    Fill(f64),
    Add(f64),
    Sub(f64),
    Mul(f64),
    Div(f64),
}

impl Step {
    fn apply(self, values: &mut [f64]) {
        match self {
            Self::Fill(fill) => values.iter_mut().for_each(|x| {
                if x.is_nan() {
                    *x = fill;
                }
            }),
            Self::Add(c) => values.iter_mut().for_each(|x| *x += c),
            Self::Sub(c) => values.iter_mut().for_each(|x| *x -= c),
            Self::Mul(c) => values.iter_mut().for_each(|x| *x *= c),
            Self::Div(c) => values.iter_mut().for_each(|x| *x /= c),
        }
    }
}

/// A string input's one-hot encoder: the category of each string.
#[derive(Clone, Debug)]
pub struct Encoder {
    pub input: usize,
    pub positions: HashMap<String, u32>,
    pub count: usize,
}

/// What one feature (row of the weight matrix), or one encoder's block of them, adds.
#[derive(Clone, Debug)]
pub enum Term {
    /// Column `column` of input `input` after `steps`, times weight row `row`.
    Number {
        input: usize,
        column: usize,
        steps: Vec<Step>,
        row: usize,
    },
    /// Weight row `first_row + category` of the row's category; nothing for unknown values.
    OneHot { encoder: usize, first_row: usize },
}

pub(crate) struct FusedLinear {
    pub(crate) node: NodeName,
    pub inputs: Vec<Input>,
    pub encoders: Vec<Encoder>,
    /// In weight-row order, which is the order the matrix product sums in.
    pub terms: Vec<Term>,
    /// [features, outputs], row-major.
    pub weights: Vec<f64>,
    pub outputs: usize,
    pub bias: Option<Vec<f64>>,
}

impl FusedLinear {
    fn weight_row(&self, row: usize) -> &[f64] {
        &self.weights[row * self.outputs..(row + 1) * self.outputs]
    }

    /// The rows of every input, checked against what the kernel was built for.
    fn rows(&self, inputs: &[Option<&Tensor>]) -> Result<usize> {
        let mut rows = None;
        for (tensor, kind) in inputs.iter().zip(&self.inputs) {
            let tensor = tensor.ok_or_else(|| self.node.error("an input is missing"))?;
            let fits = match (kind, &tensor.data, tensor.shape.as_slice()) {
                (Input::Numbers { width }, Data::F64(_), [_, w]) => w == width,
                (Input::Strings, Data::Str(_), [_, 1] | [_]) => true,
                _ => false,
            };
            if !fits {
                return Err(self.node.error(format_args!(
                    "an input of shape {:?} and type {} where {kind:?} was expected",
                    tensor.shape,
                    tensor.elem_type().name()
                )));
            }
            if *rows.get_or_insert(tensor.shape[0]) != tensor.shape[0] {
                return Err(self.node.error("inputs with different numbers of rows"));
            }
        }
        Ok(rows.unwrap_or(0))
    }
}

impl Kernel for FusedLinear {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::Model(format!(
                "{}: {} inputs, {} expected",
                self.node.0,
                inputs.len(),
                self.inputs.len()
            )));
        }
        let rows = self.rows(inputs)?;
        let m = self.outputs;
        if rows == 0 {
            return Ok(vec![Tensor::f64(vec![0, m], Vec::new())]);
        }
        let categories = self
            .encoders
            .iter()
            .map(|encoder| {
                let strings = inputs[encoder.input]
                    .expect("checked by rows")
                    .as_strings()?;
                let unknown = encoder.count as u32;
                map_strings(&self.node, strings, |s| {
                    encoder.positions.get(s).copied().unwrap_or(unknown)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // One column of sums per output, so every loop below runs down contiguous rows and
        // vectorizes; each sum still adds its terms in weight-row order.
        let mut sums = vec![0.0f64; m * rows];
        let mut values = vec![0.0f64; rows];
        for term in &self.terms {
            match term {
                Term::Number {
                    input,
                    column,
                    steps,
                    row,
                } => {
                    let tensor = inputs[*input].expect("checked by rows");
                    let x = tensor.f64_values()?;
                    let width = tensor.shape[1];
                    if width == 1 {
                        values.copy_from_slice(&x[..rows]);
                    } else {
                        for (value, &x) in values.iter_mut().zip(x[*column..].iter().step_by(width))
                        {
                            *value = x;
                        }
                    }
                    for step in steps {
                        step.apply(&mut values);
                    }
                    for (output, &w) in sums.chunks_exact_mut(rows).zip(self.weight_row(*row)) {
                        for (sum, &x) in output.iter_mut().zip(&values) {
                            *sum += x * w;
                        }
                    }
                }
                Term::OneHot { encoder, first_row } => {
                    let count = self.encoders[*encoder].count;
                    for (r, &category) in categories[*encoder].iter().enumerate() {
                        let category = category as usize;
                        if category < count {
                            // 1.0 * w, exactly as the matrix product multiplies it.
                            let weights = self.weight_row(first_row + category);
                            for (j, &w) in weights.iter().enumerate() {
                                sums[j * rows + r] += w;
                            }
                        }
                    }
                }
            }
        }
        if let Some(bias) = &self.bias {
            for (output, &b) in sums.chunks_exact_mut(rows).zip(bias) {
                output.iter_mut().for_each(|sum| *sum += b);
            }
        }
        let mut scores = vec![0.0f64; rows * m];
        for (j, output) in sums.chunks_exact(rows).enumerate() {
            for (r, &sum) in output.iter().enumerate() {
                scores[r * m + j] = sum;
            }
        }
        Ok(vec![Tensor::f64(vec![rows, m], scores)])
    }
}
