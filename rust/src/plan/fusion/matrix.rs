//! The fused feature matrix: the imputation, scaling, float32 rounding and one-hot encoding a
//! tree ensemble's input goes through, written in one pass over a block of rows into the
//! matrix the ensemble reads, instead of a tensor per node.

use super::reads::{load, Reads, Step};
use super::trace::Column;
use crate::error::Result;
use crate::plan::ops::Kernel;
use crate::plan::tensor::{ElemType, Tensor};

/// Rows built at a time: a chunk of the matrix stays in L1 while its columns are written.
const CHUNK: usize = 128;

#[derive(Clone)]
pub(crate) struct FusedMatrix {
    reads: Reads,
    width: usize,
    parts: Vec<Part>,
    /// float64 or float32; a float32 matrix's numbers end with a float32 rounding step.
    elem: ElemType,
}

/// What fills one or more columns of the matrix, starting at column `at`.
#[derive(Clone, Debug)]
enum Part {
    /// Column `column` of numeric input `input`, after `steps`.
    Number {
        at: usize,
        input: usize,
        column: usize,
        steps: Vec<Step>,
    },
    /// All `count` columns of encoder `encoder`, in order: 1.0 in the row's category's.
    OneHot {
        at: usize,
        encoder: usize,
        count: usize,
    },
    /// One column of encoder `encoder` picked alone: 1.0 where the row's category is `index`.
    Category {
        at: usize,
        encoder: usize,
        index: usize,
    },
}

impl FusedMatrix {
    pub fn new(reads: Reads, columns: &[Column], elem: ElemType) -> Self {
        assert!(!columns.is_empty(), "a feature matrix without columns");
        let mut parts = Vec::new();
        let mut at = 0;
        while at < columns.len() {
            let (part, width) = match &columns[at] {
                Column::Number {
                    input,
                    column,
                    steps,
                } => (
                    Part::Number {
                        at,
                        input: *input,
                        column: *column,
                        steps: steps.clone(),
                    },
                    1,
                ),
                &Column::Category { encoder, index } => {
                    let count = reads.encoders[encoder].count;
                    let whole = index == 0
                        && (0..count).all(|i| {
                            matches!(columns.get(at + i),
                                Some(&Column::Category { encoder: e, index }) if e == encoder && index == i)
                        });
                    if whole {
                        (Part::OneHot { at, encoder, count }, count)
                    } else {
                        (Part::Category { at, encoder, index }, 1)
                    }
                }
            };
            parts.push(part);
            at += width;
        }
        Self {
            reads,
            width: columns.len(),
            parts,
            elem,
        }
    }

    /// The [rows, width] matrix, row-major, in float64. Each number takes its column's steps
    /// in the graph's order, so it is bit for bit the value the nodes compute; a one-hot
    /// column is 1.0 on the rows of its category, 0.0 elsewhere (unknown values included).
    fn build(&self, inputs: &[Option<&Tensor>], rows: usize) -> Result<Vec<f64>> {
        let width = self.width;
        let categories = self.reads.categories(inputs)?;
        let mut matrix = vec![0.0; rows * width];
        let mut values = [0.0; CHUNK];
        for (chunk, block) in matrix.chunks_mut(CHUNK * width).enumerate() {
            let start = chunk * CHUNK;
            let values = &mut values[..block.len() / width];
            let rows = start..start + values.len();
            for part in &self.parts {
                match part {
                    Part::Number {
                        at,
                        input,
                        column,
                        steps,
                    } => {
                        load(inputs, *input, *column, start, values)?;
                        for step in steps {
                            step.apply(values);
                        }
                        for (row, &value) in block.chunks_exact_mut(width).zip(values.iter()) {
                            row[*at] = value;
                        }
                    }
                    Part::OneHot { at, encoder, count } => {
                        for (row, &category) in block
                            .chunks_exact_mut(width)
                            .zip(&categories[*encoder][rows.clone()])
                        {
                            // Unknown values (category `count`) keep their zeros.
                            if let Some(one) = row[*at..*at + count].get_mut(category as usize) {
                                *one = 1.0;
                            }
                        }
                    }
                    Part::Category { at, encoder, index } => {
                        for (row, &category) in block
                            .chunks_exact_mut(width)
                            .zip(&categories[*encoder][rows.clone()])
                        {
                            row[*at] = f64::from(u8::from(category as usize == *index));
                        }
                    }
                }
            }
        }
        Ok(matrix)
    }
}

impl Kernel for FusedMatrix {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let rows = self.reads.rows(inputs)?;
        let matrix = self.build(inputs, rows)?;
        let shape = vec![rows, self.width];
        Ok(vec![match self.elem {
            // Exact: every value already is a float32.
            ElemType::F32 => Tensor::f32(shape, matrix.iter().map(|&x| x as f32).collect()),
            _ => Tensor::f64(shape, matrix),
        }])
    }
}
