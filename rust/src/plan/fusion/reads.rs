//! What a fused kernel reads: its graph inputs, the one-hot encoders over its string inputs,
//! and the element-wise steps each numeric column takes.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::plan::ops::ml::lookup::map_strings;
use crate::plan::ops::ml::NodeName;
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
    /// Cast to float32: rounds to the nearest float32 (ties to even), as `cast_tensor` does.
    Float32,
}

impl Step {
    #[inline(always)]
    pub fn apply(self, values: &mut [f64]) {
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
            Self::Float32 => values.iter_mut().for_each(|x| *x = f64::from(*x as f32)),
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

/// A fused kernel's inputs, as the graph hands them over block by block.
#[derive(Clone, Debug)]
pub struct Reads {
    /// The kernel, as errors name it.
    pub node: NodeName,
    pub inputs: Vec<Input>,
    pub encoders: Vec<Encoder>,
}

impl Reads {
    /// The rows of every input, checked against what the kernel was built for.
    pub fn rows(&self, inputs: &[Option<&Tensor>]) -> Result<usize> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::Model(format!(
                "{}: {} inputs, {} expected",
                self.node.0,
                inputs.len(),
                self.inputs.len()
            )));
        }
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

    /// Each encoder's category of every row (`count` where the value is unknown), for inputs
    /// `rows` has checked.
    pub fn categories(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Vec<u32>>> {
        self.encoders
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
            .collect()
    }
}

/// Rows `start..start + values.len()` of column `column` of numeric input `input` (checked by
/// `Reads::rows`) into `values`.
pub fn load(
    inputs: &[Option<&Tensor>],
    input: usize,
    column: usize,
    start: usize,
    values: &mut [f64],
) -> Result<()> {
    let tensor = inputs[input].expect("checked by rows");
    let width = tensor.shape[1];
    let x = &tensor.f64_values()?[start * width + column..];
    for (value, &x) in values.iter_mut().zip(x.iter().step_by(width)) {
        *value = x;
    }
    Ok(())
}
