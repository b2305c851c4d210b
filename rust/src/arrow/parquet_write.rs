//! Streaming Parquet writer. Each `write` becomes at least one row group, so memory stays bounded
//! by the batch size; `close` writes the footer and fsyncs so a later rename publishes a whole file.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Mutex;

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use pyo3::prelude::*;

use super::batch::PyBatch;
use crate::error::{Error, Result};

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
    Open(Box<ArrowWriter<File>>, arrow_schema::SchemaRef),
    Closed,
}

#[pyclass(name = "ParquetWriter", module = "edgewise._core", frozen)]
pub struct PyParquetWriter {
    path: PathBuf,
    codec: Codec,
    state: Mutex<State>,
}

impl PyParquetWriter {
    fn write_batch(&self, batch: &arrow_array::RecordBatch) -> Result<()> {
        let mut state = self.state.lock().expect("writer lock poisoned");
        if let State::Empty = *state {
            let file = File::create(&self.path).map_err(|e| Error::io(&self.path, e))?;
            let mut props = WriterProperties::builder().set_compression(self.codec.compression());
            // Scores are continuous: a dictionary of them never pays off, and building one
            // (until the writer gives up on it) cost more than compressing the column.
            for field in batch.schema().fields() {
                if field.data_type().is_numeric() {
                    props = props.set_column_dictionary_enabled(
                        ColumnPath::from(field.name().as_str()),
                        false,
                    );
                }
            }
            let props = props.build();
            let writer = ArrowWriter::try_new(file, batch.schema(), Some(props))
                .map_err(|e| Error::parquet(&self.path, e))?;
            *state = State::Open(Box::new(writer), batch.schema());
        }
        match &mut *state {
            State::Open(writer, schema) => {
                if schema != &batch.schema() {
                    return Err(Error::InvalidArgument(format!(
                        "{}: batch schema differs from the file's",
                        self.path.display()
                    )));
                }
                writer
                    .write(batch)
                    .and_then(|()| writer.flush())
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
            State::Open(writer, _) => {
                let file = writer
                    .into_inner()
                    .map_err(|e| Error::parquet(&self.path, e))?;
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
    /// A writer that creates `path` on the first batch. `compression`: zstd, snappy or none.
    #[new]
    #[pyo3(signature = (path, compression="zstd"))]
    fn new(path: PathBuf, compression: &str) -> PyResult<Self> {
        Ok(Self {
            path,
            codec: Codec::parse(compression)?,
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
