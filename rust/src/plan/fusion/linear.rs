//! The fused linear kernel: preprocessing, one-hot encoding and the matrix product of a linear
//! model in one pass over a block of rows.

use super::reads::{load, Reads, Step};
use crate::error::Result;
use crate::plan::ops::Kernel;
use crate::plan::tensor::Tensor;

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
    pub reads: Reads,
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
        let rows = self.reads.rows(inputs)?;
        let m = self.outputs;
        if rows == 0 {
            return Ok(vec![Tensor::f64(vec![0, m], Vec::new())]);
        }
        let categories = self.reads.categories(inputs)?;
        let categories: Vec<&[u32]> = categories.iter().map(Vec::as_slice).collect();
        let load = |input: usize, column: usize, values: &mut [f64]| {
            load(inputs, input, column, 0, values)
        };
        let (mut values, mut sums) = (Vec::new(), Vec::new());
        self.accumulate(rows, load, &categories, &mut values, &mut sums)?;
        let mut scores = vec![0.0f64; rows * m];
        transpose(&sums, rows, &mut scores);
        Ok(vec![Tensor::f64(vec![rows, m], scores)])
    }
}
