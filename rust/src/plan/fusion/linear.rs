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
    #[inline(always)]
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
    /// The weight of the row's category for each output: `weights` holds, output after
    /// output, the encoder's weight rows' entries and a final 0.0 that unknown values read.
    OneHot { encoder: usize, weights: Vec<f64> },
}

#[derive(Clone)]
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

impl FusedLinear {
    /// The scores of `rows` rows into `sums`, one column of `rows` sums per output.
    ///
    /// `load(input, column, values)` fills `values` with one numeric input column (NaN where
    /// missing); `categories[e]` holds encoder `e`'s category of each row (`count` when the
    /// value is unknown). Each sum adds its terms in weight-row order, as the matrix product
    /// does, and every loop runs down contiguous rows, so it vectorizes.
    #[inline(always)]
    pub(crate) fn accumulate(
        &self,
        rows: usize,
        mut load: impl FnMut(usize, usize, &mut [f64]) -> Result<()>,
        categories: &[&[u32]],
        values: &mut Vec<f64>,
        sums: &mut Vec<f64>,
    ) -> Result<()> {
        sums.clear();
        sums.resize(self.outputs * rows, 0.0);
        values.resize(rows, 0.0);
        let values = &mut values[..rows];
        for term in &self.terms {
            match term {
                Term::Number {
                    input,
                    column,
                    steps,
                    row,
                } => {
                    load(*input, *column, values)?;
                    for step in steps {
                        step.apply(values);
                    }
                    for (output, &w) in sums.chunks_exact_mut(rows).zip(self.weight_row(*row)) {
                        for (sum, &x) in output.iter_mut().zip(values.iter()) {
                            *sum += x * w;
                        }
                    }
                }
                Term::OneHot { encoder, weights } => {
                    let categories = &categories[*encoder][..rows];
                    let per_output = weights.len() / self.outputs;
                    for (output, weights) in sums
                        .chunks_exact_mut(rows)
                        .zip(weights.chunks_exact(per_output))
                    {
                        // 1.0 * w, exactly as the matrix product multiplies it. An unknown
                        // value adds +0.0, which changes no sum: a sum that starts at +0.0
                        // never becomes -0.0 (x + y is -0.0 only when both are).
                        // Categories are at most `count`; the `min` only lets the compiler
                        // drop the bounds check and gather a vector of weights at once.
                        let last = weights.len() - 1;
                        for (sum, &category) in output.iter_mut().zip(categories) {
                            *sum += weights[(category as usize).min(last)];
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
        Ok(())
    }
}

/// Column-major sums ([outputs][rows]) as row-major scores ([rows][outputs]).
#[inline(always)]
pub(crate) fn transpose(sums: &[f64], rows: usize, scores: &mut [f64]) {
    let m = scores.len() / rows.max(1);
    for (j, output) in sums.chunks_exact(rows).enumerate() {
        for (r, &sum) in output.iter().enumerate() {
            scores[r * m + j] = sum;
        }
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
        let categories: Vec<&[u32]> = categories.iter().map(Vec::as_slice).collect();
        let load = |input: usize, column: usize, values: &mut [f64]| {
            let tensor = inputs[input].expect("checked by rows");
            let x = tensor.f64_values()?;
            let width = tensor.shape[1];
            for (value, &x) in values.iter_mut().zip(x[column..].iter().step_by(width)) {
                *value = x;
            }
            Ok(())
        };
        let (mut values, mut sums) = (Vec::new(), Vec::new());
        self.accumulate(rows, load, &categories, &mut values, &mut sums)?;
        let mut scores = vec![0.0f64; rows * m];
        transpose(&sums, rows, &mut scores);
        Ok(vec![Tensor::f64(vec![rows, m], scores)])
    }
}
