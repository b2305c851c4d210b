//! A plan's output tensors as the score columns users get: named 1-D Arrow arrays.
//!
//! A 1-D output (labels, a regression's predictions) becomes a column without a copy; one
//! column of a 2-D output (a class's probabilities) is gathered out of it. Floats become
//! float64, integers and booleans int64, strings utf8, as scores are written to Parquet.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
};
use arrow_schema::{Field, Schema};

use super::tensor::{Data, Tensor};
use crate::error::{Error, Result};

/// One score column: its name, the graph output it comes from, and which column of that
/// output when the output is 2-D.
pub struct ScoreColumn {
    pub name: String,
    pub output: usize,
    pub index: Option<usize>,
}

/// The score columns of one run, from its `outputs` (in graph output order) over `rows` rows.
pub fn score_batch(
    outputs: Vec<Tensor>,
    output_names: &[String],
    columns: &[ScoreColumn],
    rows: usize,
) -> Result<RecordBatch> {
    let mut uses = vec![0usize; outputs.len()];
    for column in columns {
        uses[column.output] += 1;
    }
    let mut outputs: Vec<Option<Tensor>> = outputs.into_iter().map(Some).collect();
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    for column in columns {
        let name = &output_names[column.output];
        let slot = &mut outputs[column.output];
        let tensor = slot
            .as_ref()
            .expect("an output is taken only by its last use");
        if tensor.shape.first() != Some(&rows) {
            return Err(Error::Model(format!(
                "output '{name}' has shape {:?} for {rows} rows",
                tensor.shape
            )));
        }
        let width = tensor.shape[1..].iter().product::<usize>();
        let array = match column.index {
            None if width != 1 => {
                return Err(Error::Model(format!(
                    "output '{name}' has {width} values a row; say which column '{}' takes",
                    column.name
                )))
            }
            None if uses[column.output] == 1 => array_of(slot.take().expect("checked above").data),
            None => array_of(tensor.data.clone()),
            Some(index) if index >= width => {
                return Err(Error::Model(format!(
                    "output '{name}' has {width} values a row, no column {index}"
                )))
            }
            Some(index) => gathered(&tensor.data, width, index),
        };
        uses[column.output] -= 1;
        fields.push(Field::new(&column.name, array.data_type().clone(), false));
        arrays.push(array);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &options,
    )?)
}

/// A whole tensor as one column (its buffer becomes the array's, except for conversions).
fn array_of(data: Data) -> ArrayRef {
    match data {
        Data::F64(values) => Arc::new(Float64Array::from(values)),
        Data::F32(values) => Arc::new(Float64Array::from_iter_values(
            values.into_iter().map(f64::from),
        )),
        Data::I64(values) => Arc::new(Int64Array::from(values)),
        Data::Bool(values) => Arc::new(Int64Array::from_iter_values(
            values.into_iter().map(i64::from),
        )),
        Data::Str(strings) => Arc::new(StringArray::from_iter_values(
            strings
                .codes
                .iter()
                .map(|&c| strings.table[c as usize].as_str()),
        )),
    }
}

/// Column `index` of a row-major tensor with `width` values a row.
fn gathered(data: &Data, width: usize, index: usize) -> ArrayRef {
    fn column<T: Copy>(values: &[T], width: usize, index: usize) -> impl Iterator<Item = T> + '_ {
        values.iter().skip(index).step_by(width).copied()
    }
    match data {
        Data::F64(values) => Arc::new(Float64Array::from_iter_values(column(values, width, index))),
        Data::F32(values) => Arc::new(Float64Array::from_iter_values(
            column(values, width, index).map(f64::from),
        )),
        Data::I64(values) => Arc::new(Int64Array::from_iter_values(column(values, width, index))),
        Data::Bool(values) => Arc::new(Int64Array::from_iter_values(
            column(values, width, index).map(i64::from),
        )),
        Data::Str(strings) => Arc::new(StringArray::from_iter_values(
            column(&strings.codes, width, index).map(|c| strings.table[c as usize].as_str()),
        )),
    }
}
