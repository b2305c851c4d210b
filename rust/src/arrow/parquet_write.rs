//! Streaming Parquet writer. Each `write` becomes at least one row group, so memory stays bounded
//! by the batch size; `close` writes the footer and fsyncs so a later rename publishes a whole file.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterPropertiesPtr};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnDescPtr, ColumnPath};
use pyo3::prelude::*;

use super::batch::PyBatch;
use super::parquet_columns::{encode_columns, EncodedColumn};
use crate::error::{Error, Result};
use crate::runtime::thread_pool;

/// Rows handed to a column writer per call.
const WRITE_BATCH_ROWS: usize = 64 * 1024;

/// Parquet compression codecs offered to users.
#[derive(Clone, Copy)]
enum Codec {
    Zstd,
    Snappy,
    Uncompressed,
}

impl Codec {
    fn parse(name: &str) -> Result<Self> {
        match name {
            "zstd" => Ok(Self::Zstd),
            "snappy" => Ok(Self::Snappy),
            "none" => Ok(Self::Uncompressed),
            other => Err(Error::InvalidArgument(format!(
                "unknown compression '{other}': choose one of zstd, snappy, none"
            ))),
        }
    }

    fn compression(self) -> Compression {
        match self {
            Self::Zstd => Compression::ZSTD(ZstdLevel::default()),
            Self::Snappy => Compression::SNAPPY,
            Self::Uncompressed => Compression::UNCOMPRESSED,
        }
    }
}

enum State {
    Empty,
    Open(Box<OpenFile>),
    Closed,
}

/// A file being written: its row groups are encoded column by column in parallel.
struct OpenFile {
    writer: SerializedFileWriter<File>,
    columns: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// The file's leaf columns and writer properties, for the columns encoded from their values.
    leaves: Vec<ColumnDescPtr>,
    props: WriterPropertiesPtr,
    /// The last row group, encoded but not yet in the file: it is written while the next
    /// one is encoded, or by `finish`.
    pending: Option<Vec<EncodedColumn>>,
}

impl OpenFile {
    /// A file for batches shaped like `first`, whose values choose each column's encoding.
    fn create(path: &Path, codec: Codec, first: &RecordBatch) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let schema = first.schema();
        // Values go through the column writers 64K at a time rather than the default 1,024: the
        // per-call work (levels, statistics, page-size checks) drops out of the profile, and the
        // larger pages that result compress about 2% smaller (BENCHMARKS.md, branch pipe).
        let mut props = WriterProperties::builder()
            .set_compression(codec.compression())
            .set_write_batch_size(WRITE_BATCH_ROWS);
        for (field, column) in schema.fields().iter().zip(first.columns()) {
            let path = ColumnPath::from(field.name().as_str());
            if field.data_type().is_floating() {
                // Scores are continuous: a dictionary never pays off, and building one until
                // the writer gives up cost more than compressing the column. Split into byte
                // planes (sign and exponent bytes together), doubles compress about 10% smaller.
                props = props
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::BYTE_STREAM_SPLIT);
            } else if field.data_type().is_integer() && !few_distinct(column) {
                // Identifiers: a dictionary would grow to its limit and be dropped, and the
                // dictionary pages written meanwhile compress half as well as plain ones.
                // Stored as deltas (bit-packed in blocks), ids that mostly count up take a few
                // bits a value before compression instead of eight bytes, so zstd has an
                // eighth of the bytes to work through.
                props = props
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
            } else if is_constant_string(column) {
                // The model name: a dictionary would hash and compare the string on every row
                // (about 7% of the writer's CPU). Written plain, the repeats cost zstd next to
                // nothing: 8 KB more in 54 MB for 4M scored rows (BENCHMARKS.md, branch write2).
                props = props
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::PLAIN);
            }
        }
        // ArrowWriter embeds the Arrow schema in the footer metadata; its lower-level parts
        // then let each column of a row group be encoded on its own thread.
        let (writer, columns) = ArrowWriter::try_new(file, schema.clone(), Some(props.build()))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(|e| Error::parquet(path, e))?;
        let leaves = writer.schema_descr().columns().to_vec();
        let props = writer.properties().clone();
        Ok(Self {
            writer,
            columns,
            schema,
            leaves,
            props,
            pending: None,
        })
    }

    /// One row group holding `batch`, its columns encoded in parallel on the shared pool:
    /// the single-threaded writer made Parquet encoding the slowest stage of a linear model.
    fn write(&mut self, batch: &RecordBatch) -> parquet::errors::Result<()> {
        let index = self.writer.flushed_row_groups().len() + usize::from(self.pending.is_some());
        let writers = self.columns.create_column_writers(index)?;
        let (fields, columns) = (self.schema.fields(), batch.columns());
        let (leaves, props) = (&self.leaves, &self.props);
        // Copying the previous row group into the file was a serial step between two
        // parallel ones; overlapped with this one's encoding, both cores stay busy.
        let previous = self.pending.take();
        let writer = &mut self.writer;
        let (written, chunks) = rayon::join(
            || append_row_group(writer, previous),
            || encode_columns(fields, columns, writers, leaves, props),
        );
        written?;
        self.pending = Some(chunks?);
        Ok(())
    }

    /// Write the last row group and the footer; returns the file, not yet synced.
    fn finish(mut self) -> parquet::errors::Result<File> {
        append_row_group(&mut self.writer, self.pending.take())?;
        self.writer.into_inner()
    }
}

/// Append one encoded row group (if any) to the file.
fn append_row_group(
    writer: &mut SerializedFileWriter<File>,
    chunks: Option<Vec<EncodedColumn>>,
) -> parquet::errors::Result<()> {
    let Some(chunks) = chunks else {
        return Ok(());
    };
    let mut row_group = writer.next_row_group()?;
    for chunk in chunks {
        chunk.append_to(&mut row_group)?;
    }
    row_group.close()?;
    Ok(())
}

/// Whether an integer column looks categorical (labels, versions, codes) rather than like
/// identifiers: at most 1 in 16 of its first values are distinct.
fn few_distinct(column: &ArrayRef) -> bool {
    const SAMPLE: usize = 4096;
    let Ok(values) = arrow_cast::cast(&column.slice(0, column.len().min(SAMPLE)), &DataType::Int64)
    else {
        return false;
    };
    let values = values.as_primitive::<Int64Type>();
    let distinct: HashSet<Option<i64>> = values.iter().collect();
    distinct.len() * 16 <= values.len().max(16)
}

/// Whether `column` is a string column holding one value on every row (and no nulls).
fn is_constant_string(column: &ArrayRef) -> bool {
    if column.is_empty() || column.null_count() > 0 {
        return false;
    }
    let Some(strings) = column.as_string_opt::<i32>() else {
        return false;
    };
    let first = strings.value(0);
    strings.iter().all(|value| value == Some(first))
}

#[pyclass(name = "ParquetWriter", module = "edgewise._core", frozen)]
pub struct PyParquetWriter {
    path: PathBuf,
    codec: Codec,
    pool: Arc<rayon::ThreadPool>,
    state: Mutex<State>,
}

impl PyParquetWriter {
    fn write_batch(&self, batch: &RecordBatch) -> Result<()> {
        let mut state = self.state.lock().expect("writer lock poisoned");
        if let State::Empty = *state {
            *state = State::Open(Box::new(OpenFile::create(&self.path, self.codec, batch)?));
        }
        match &mut *state {
            State::Open(file) => {
                if file.schema != batch.schema() {
                    return Err(Error::InvalidArgument(format!(
                        "{}: batch schema differs from the file's",
                        self.path.display()
                    )));
                }
                self.pool
                    .install(|| file.write(batch))
                    .map_err(|e| Error::parquet(&self.path, e))
            }
            _ => Err(Error::InvalidArgument(format!(
                "{}: writer is closed",
                self.path.display()
            ))),
        }
    }

    fn finish(&self) -> Result<u64> {
        let mut state = self.state.lock().expect("writer lock poisoned");
        match std::mem::replace(&mut *state, State::Closed) {
            State::Open(file) => {
                let file = file.finish().map_err(|e| Error::parquet(&self.path, e))?;
                file.sync_all().map_err(|e| Error::io(&self.path, e))?;
                Ok(file.metadata().map_err(|e| Error::io(&self.path, e))?.len())
            }
            State::Empty => Err(Error::InvalidArgument(format!(
                "{}: nothing was written, so the file has no schema",
                self.path.display()
            ))),
            State::Closed => Err(Error::InvalidArgument(format!(
                "{}: writer is already closed",
                self.path.display()
            ))),
        }
    }
}

#[pymethods]
impl PyParquetWriter {
    /// A writer that creates `path` on the first batch. `compression`: zstd, snappy or none;
    /// columns are encoded on `threads` threads (default: one per core).
    #[new]
    #[pyo3(signature = (path, compression="zstd", threads=None))]
    fn new(path: PathBuf, compression: &str, threads: Option<usize>) -> PyResult<Self> {
        Ok(Self {
            path,
            codec: Codec::parse(compression)?,
            pool: thread_pool(threads)?,
            state: Mutex::new(State::Empty),
        })
    }

    /// Append a batch as one or more row groups.
    fn write(&self, py: Python<'_>, batch: &PyBatch) -> PyResult<()> {
        Ok(py.detach(|| self.write_batch(&batch.batch))?)
    }

    /// Write the footer and fsync; returns the file size in bytes.
    fn close(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(py.detach(|| self.finish())?)
    }
}
