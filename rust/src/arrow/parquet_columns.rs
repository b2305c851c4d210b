//! The columns of one row group, each encoded on its own so that they can be encoded in
//! parallel, then appended to the file in order.
//!
//! arrow-rs's Arrow path gathers every column through a list of its non-null row indices
//! (eight bytes a row, built per column) and a copy of the values taken through it, even when
//! the column has no nulls. Scores never have nulls, so an int64 or float64 column without
//! nulls goes straight from its Arrow buffer into the same column writer (same encodings,
//! pages and statistics, so the same bytes in the file); anything else takes the Arrow path.

use std::fs::File;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field};
use bytes::Bytes;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn,
};
use parquet::column::writer::{get_column_writer, get_typed_column_writer, ColumnCloseResult};
use parquet::data_type::{DataType as ParquetType, DoubleType, Int64Type as ParquetInt64};
use parquet::errors::Result;
use parquet::file::properties::WriterPropertiesPtr;
use parquet::file::writer::{SerializedPageWriter, SerializedRowGroupWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;
use rayon::prelude::*;

/// One column chunk of a row group, encoded and held in memory until it is appended.
pub enum EncodedColumn {
    Arrow(ArrowColumnChunk),
    Values {
        data: Bytes,
        close: ColumnCloseResult,
    },
}

impl EncodedColumn {
    pub fn append_to(self, row_group: &mut SerializedRowGroupWriter<'_, File>) -> Result<()> {
        match self {
            Self::Arrow(chunk) => chunk.append_to_row_group(row_group),
            Self::Values { data, close } => row_group.append_column(&data, close),
        }
    }
}

/// What encodes one leaf column.
enum Job<'a> {
    Arrow(Box<(ArrowColumnWriter, ArrowLeafColumn)>),
    Values(ColumnDescPtr, &'a ArrayRef),
}

/// Encode the columns of a flat or nested batch, in parallel on the current rayon pool.
/// `writers` and `leaves` come from the file's row group writer factory and schema, one per
/// leaf column in order.
pub fn encode_columns(
    fields: &[Arc<Field>],
    columns: &[ArrayRef],
    writers: Vec<ArrowColumnWriter>,
    leaves: &[ColumnDescPtr],
    props: &WriterPropertiesPtr,
) -> Result<Vec<EncodedColumn>> {
    let mut writers = writers.into_iter();
    let mut leaves = leaves.iter();
    let mut jobs = Vec::with_capacity(writers.len());
    for (field, column) in fields.iter().zip(columns) {
        if writes_values(column) {
            let leaf = leaves.next().expect("a primitive column is one leaf");
            writers.next(); // that leaf's Arrow writer is not needed
            jobs.push(Job::Values(leaf.clone(), column));
            continue;
        }
        for leaf in compute_leaves(field, column)? {
            leaves.next();
            let writer = writers.next().expect("one writer per leaf");
            jobs.push(Job::Arrow(Box::new((writer, leaf))));
        }
    }
    jobs.into_par_iter()
        .map(|job| match job {
            Job::Arrow(job) => {
                let (mut writer, leaf) = *job;
                writer.write(&leaf)?;
                Ok(EncodedColumn::Arrow(writer.close()?))
            }
            Job::Values(leaf, column) => encode_values(leaf, props.clone(), column),
        })
        .collect()
}

/// Whether `column` is written straight from its values: int64 or float64 without nulls.
fn writes_values(column: &ArrayRef) -> bool {
    column.null_count() == 0 && matches!(column.data_type(), DataType::Int64 | DataType::Float64)
}

fn encode_values(
    leaf: ColumnDescPtr,
    props: WriterPropertiesPtr,
    column: &ArrayRef,
) -> Result<EncodedColumn> {
    // A nullable column without nulls still carries a definition level per row, all "present".
    let present = (leaf.max_def_level() > 0).then(|| vec![leaf.max_def_level(); column.len()]);
    let levels = present.as_deref();
    match column.data_type() {
        DataType::Int64 => {
            let values = column.as_primitive::<Int64Type>().values();
            encode::<ParquetInt64>(leaf, props, values, levels)
        }
        DataType::Float64 => {
            let values = column.as_primitive::<Float64Type>().values();
            encode::<DoubleType>(leaf, props, values, levels)
        }
        other => unreachable!("writes_values admits int64 and float64, not {other}"),
    }
}

fn encode<T: ParquetType>(
    leaf: ColumnDescPtr,
    props: WriterPropertiesPtr,
    values: &[T::T],
    levels: Option<&[i16]>,
) -> Result<EncodedColumn> {
    let mut sink = TrackedWrite::new(Vec::new());
    let close = {
        let pages = Box::new(SerializedPageWriter::new(&mut sink));
        let mut writer = get_typed_column_writer::<T>(get_column_writer(leaf, props, pages));
        writer.write_batch(values, levels, None)?;
        writer.close()?
    };
    Ok(EncodedColumn::Values {
        data: Bytes::from(sink.into_inner()?),
        close,
    })
}
