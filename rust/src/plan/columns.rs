//! Arrow columns to the plan's input tensors, one block of rows at a time.
//!
//! Each column is converted once per batch into a form a block can copy from directly
//! (float64 values, or dictionary keys plus a table of distinct strings), then every block
//! writes its rows straight into a row-major tensor.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch,
};
use arrow_buffer::NullBuffer;
use arrow_schema::DataType;

use super::graph::GraphInput;
use super::tensor::{Data, ElemType, Strings, Tensor};
use crate::error::{Error, Result};
use crate::score::inputs::dictionary_type;

/// One Arrow column, ready for blocks of any element type the graph input asks for.
enum Source {
    Float(Float64Array),
    Int(Int64Array),
    Bool(BooleanArray),
    /// Dictionary keys into `table`; null rows point at an extra empty entry at its end.
    Str {
        keys: Int32Array,
        table: Arc<Vec<String>>,
    },
}

impl Source {
    fn new(array: &ArrayRef, elem_type: ElemType) -> Result<Self> {
        Ok(match elem_type {
            ElemType::F32 | ElemType::F64 => Self::Float(
                arrow_cast::cast(array, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            ),
            ElemType::I64 => Self::Int(
                arrow_cast::cast(array, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            ),
            ElemType::Bool => Self::Bool(
                arrow_cast::cast(array, &DataType::Boolean)?
                    .as_boolean()
                    .clone(),
            ),
            ElemType::Str => {
                let encoded = arrow_cast::cast(array, &dictionary_type())?;
                let encoded = encoded.as_dictionary::<Int32Type>();
                let values = encoded.values().as_string::<i32>();
                let mut table: Vec<String> = values
                    .iter()
                    .map(|v| v.unwrap_or_default().to_owned())
                    .collect();
                table.push(String::new());
                Self::Str {
                    keys: encoded.keys().clone(),
                    table: Arc::new(table),
                }
            }
        })
    }
}

/// One Arrow column as it is, for kernels that read the batch in place.
pub enum ColumnView<'a> {
    /// Float64 values; where `nulls` says so, the value is missing (NaN to the model).
    Numbers {
        values: &'a [f64],
        nulls: Option<&'a NullBuffer>,
    },
    /// Dictionary keys into `table`, whose last entry (empty) stands for null rows.
    Strings {
        keys: &'a Int32Array,
        table: &'a Arc<Vec<String>>,
    },
    Other,
}

/// The columns feeding one graph input.
pub struct InputColumns {
    elem_type: ElemType,
    sources: Vec<Source>,
}

impl InputColumns {
    pub fn new(batch: &RecordBatch, input: &GraphInput, columns: &[String]) -> Result<Self> {
        let sources = columns
            .iter()
            .map(|name| {
                let array = batch.column_by_name(name).ok_or_else(|| {
                    Error::schema(
                        "input",
                        name,
                        format!("missing (graph input '{}' reads it)", input.name),
                    )
                })?;
                Source::new(array, input.elem_type)
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            elem_type: input.elem_type,
            sources,
        })
    }

    /// Each column, in place.
    pub fn views(&self) -> Vec<ColumnView<'_>> {
        self.sources
            .iter()
            .map(|source| match source {
                Source::Float(array) => ColumnView::Numbers {
                    values: array.values(),
                    nulls: array.nulls(),
                },
                Source::Str { keys, table } => ColumnView::Strings { keys, table },
                Source::Int(_) | Source::Bool(_) => ColumnView::Other,
            })
            .collect()
    }

    /// Rows `start..end` as a [rows, columns] tensor; numeric nulls become NaN.
    pub fn block(&self, start: usize, end: usize) -> Tensor {
        let rows = end - start;
        let width = self.sources.len();
        let shape = vec![rows, width];
        match self.elem_type {
            ElemType::F64 => Tensor::f64(shape, self.floats(start, end, |x| x)),
            ElemType::F32 => Tensor::f32(shape, self.floats(start, end, |x| x as f32)),
            ElemType::I64 => Tensor::i64(
                shape,
                self.interleave(
                    rows,
                    |s, r| match s {
                        Source::Int(a) => a.value(r),
                        _ => unreachable!("int64 inputs read int64 sources"),
                    },
                    start,
                ),
            ),
            ElemType::Bool => Tensor::new(
                shape,
                Data::Bool(self.interleave(
                    rows,
                    |s, r| match s {
                        Source::Bool(a) => a.is_valid(r) && a.value(r),
                        _ => unreachable!("bool inputs read bool sources"),
                    },
                    start,
                )),
            ),
            ElemType::Str => Tensor::new(shape, Data::Str(self.strings(start, end))),
        }
    }

    fn interleave<T: Copy + Default>(
        &self,
        rows: usize,
        value: impl Fn(&Source, usize) -> T,
        start: usize,
    ) -> Vec<T> {
        let width = self.sources.len();
        if width == 1 {
            return (start..start + rows)
                .map(|r| value(&self.sources[0], r))
                .collect();
        }
        let mut out = vec![T::default(); rows * width];
        for (c, source) in self.sources.iter().enumerate() {
            for (i, r) in (start..start + rows).enumerate() {
                out[i * width + c] = value(source, r);
            }
        }
        out
    }

    /// Float columns side by side: a straight copy of each column's values, then NaN where
    /// a row is null.
    fn floats<T: Copy + Default>(
        &self,
        start: usize,
        end: usize,
        convert: impl Fn(f64) -> T,
    ) -> Vec<T> {
        let width = self.sources.len();
        let mut out = vec![T::default(); (end - start) * width];
        for (c, source) in self.sources.iter().enumerate() {
            let Source::Float(array) = source else {
                unreachable!("float inputs read float sources")
            };
            let values = &array.values()[start..end];
            if width == 1 {
                out.iter_mut()
                    .zip(values)
                    .for_each(|(o, &v)| *o = convert(v));
            } else {
                for (i, &v) in values.iter().enumerate() {
                    out[i * width + c] = convert(v);
                }
            }
            if array.null_count() > 0 {
                for i in 0..end - start {
                    if array.is_null(start + i) {
                        out[i * width + c] = convert(f64::NAN);
                    }
                }
            }
        }
        out
    }

    /// String columns side by side; the tables are shared with the batch, not copied.
    fn strings(&self, start: usize, end: usize) -> Strings {
        let columns: Vec<Strings> = self
            .sources
            .iter()
            .map(|source| match source {
                Source::Str { keys, table } => {
                    let null_code = (table.len() - 1) as u32;
                    let codes = (start..end)
                        .map(|r| {
                            if keys.is_valid(r) {
                                keys.value(r) as u32
                            } else {
                                null_code
                            }
                        })
                        .collect();
                    Strings {
                        table: table.clone(),
                        codes,
                    }
                }
                _ => unreachable!("string inputs read string sources"),
            })
            .collect();
        if columns.len() == 1 {
            return columns.into_iter().next().expect("one column");
        }
        let parts: Vec<&Strings> = columns.iter().collect();
        let width = parts.len();
        Strings::concat(
            &parts,
            (0..end - start).flat_map(|i| (0..width).map(move |c| (c, i))),
        )
    }
}
