//! Parquet reading with row-group parallelism.
//!
//! The parquet crate decodes one row group stream at a time, so the footer is read once and
//! each requested row group gets its own reader on the rayon pool.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow_schema::{DataType, Schema};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use pyo3::prelude::*;
use rayon::prelude::*;

use super::batch::PyBatch;
use crate::error::{Error, Result};
use crate::runtime::thread_pool;
use crate::schema::column_kind;
use crate::score::inputs::dictionary_type;

#[pyclass(name = "ParquetFile", module = "edgewise._core", frozen)]
pub struct PyParquetFile {
    path: PathBuf,
    metadata: ArrowReaderMetadata,
    pool: Arc<rayon::ThreadPool>,
}

impl PyParquetFile {
    fn source_name(&self) -> String {
        self.path.display().to_string()
    }

    /// Reader metadata that decodes the `dictionary` string columns as Arrow dictionaries:
    /// Parquet usually stores such columns dictionary-encoded, so no string is materialized.
    fn metadata_with_dictionaries(&self, dictionary: &[String]) -> Result<ArrowReaderMetadata> {
        if dictionary.is_empty() {
            return Ok(self.metadata.clone());
        }
        let fields: Vec<_> = self
            .metadata
            .schema()
            .fields()
            .iter()
            .map(|field| {
                let is_string = column_kind(field.data_type()) == "string";
                if is_string && dictionary.contains(field.name()) {
                    Arc::new(field.as_ref().clone().with_data_type(dictionary_type()))
                } else {
                    field.clone()
                }
            })
            .collect();
        let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(fields)));
        ArrowReaderMetadata::try_new(self.metadata.metadata().clone(), options)
            .map_err(|e| Error::parquet(&self.path, e))
    }

    /// How to read `columns` (in that order) from any row group.
    fn projection(&self, columns: &[String], dictionary: &[String]) -> Result<Projection> {
        let metadata = self.metadata_with_dictionaries(dictionary)?;
        let schema = metadata.schema();
        let mut indices = Vec::with_capacity(columns.len());
        for name in columns {
            let index = schema
                .index_of(name)
                .map_err(|_| Error::schema(&self.source_name(), name, "missing from the file"))?;
            indices.push(index);
        }
        let mask = ProjectionMask::roots(self.metadata.parquet_schema(), indices.iter().copied());
        let mut roots = indices;
        roots.sort_unstable();
        let schema = Arc::new(schema.project(&roots)?);
        // The projection mask yields columns in file order; batches come back in the order asked.
        let order = columns
            .iter()
            .map(|name| schema.index_of(name))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Projection {
            metadata,
            mask,
            schema,
            order,
            roots,
        })
    }

    fn check_row_groups(&self, row_groups: &[usize]) -> Result<()> {
        let count = self.metadata.metadata().num_row_groups();
        match row_groups.iter().find(|&&rg| rg >= count) {
            Some(bad) => Err(Error::InvalidArgument(format!(
                "{}: row group {bad} does not exist (the file has {count})",
                self.source_name()
            ))),
            None => Ok(()),
        }
    }

    /// One row group's projected columns, in file order.
    fn read_row_group(&self, projection: &Projection, row_group: usize) -> Result<RecordBatch> {
        let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let rows = projection
            .metadata
            .metadata()
            .row_group(row_group)
            .num_rows();
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, projection.metadata.clone())
                .with_row_groups(vec![row_group])
                .with_projection(projection.mask.clone())
                .with_batch_size(usize::try_from(rows).unwrap_or(1).max(1))
                .build()
                .map_err(|e| Error::parquet(&self.path, e))?;
        let schema = reader.schema();
        let batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::parquet(&self.path, format!("row group {row_group}: {e}")))?;
        // One batch (the batch size is the row group's rows): concatenating it copies nothing.
        Ok(arrow_select::concat::concat_batches(&schema, &batches)?)
    }

    fn read_columns(
        &self,
        row_groups: &[usize],
        columns: &[String],
        dictionary: &[String],
    ) -> Result<RecordBatch> {
        let projection = self.projection(columns, dictionary)?;
        self.check_row_groups(row_groups)?;
        if row_groups.len() <= 1 {
            let parts = row_groups
                .iter()
                .map(|&rg| self.pool.install(|| self.read_row_group(&projection, rg)))
                .collect::<Result<Vec<_>>>()?;
            let batch = arrow_select::concat::concat_batches(&projection.schema, &parts)?;
            return Ok(batch.project(&projection.order)?);
        }
        // Columns in parallel, each decoded across every row group straight into the batch's
        // array: row groups in parallel had to be concatenated afterwards, a copy of the whole
        // batch that took about a sixth of reading's CPU (BENCHMARKS.md, branch pipe).
        let arrays = self.pool.install(|| {
            projection
                .roots
                .par_iter()
                .zip(projection.schema.fields().par_iter())
                .map(|(&root, field)| {
                    if matches!(field.data_type(), DataType::Dictionary(..)) {
                        // Each row group has its own dictionary, which a reader spanning
                        // several would spill into plain strings: one read per row group,
                        // then only the keys (and the small dictionaries) are concatenated.
                        let parts = row_groups
                            .iter()
                            .map(|&rg| self.read_column(&projection, root, &[rg]))
                            .collect::<Result<Vec<_>>>()?;
                        let parts: Vec<&dyn Array> = parts.iter().map(AsRef::as_ref).collect();
                        Ok(arrow_select::concat::concat(&parts)?)
                    } else {
                        self.read_column(&projection, root, row_groups)
                    }
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let batch = RecordBatch::try_new(projection.schema.clone(), arrays)?;
        Ok(batch.project(&projection.order)?)
    }

    /// One column (root `root` of the file) of `row_groups`, as one array.
    fn read_column(
        &self,
        projection: &Projection,
        root: usize,
        row_groups: &[usize],
    ) -> Result<ArrayRef> {
        let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let metadata = projection.metadata.metadata();
        let rows: i64 = row_groups
            .iter()
            .map(|&rg| metadata.row_group(rg).num_rows())
            .sum();
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, projection.metadata.clone())
                .with_row_groups(row_groups.to_vec())
                .with_projection(ProjectionMask::roots(
                    self.metadata.parquet_schema(),
                    [root],
                ))
                .with_batch_size(usize::try_from(rows).unwrap_or(1).max(1))
                .build()
                .map_err(|e| Error::parquet(&self.path, e))?;
        let batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::parquet(&self.path, format!("row groups {row_groups:?}: {e}")))?;
        // One batch (the batch size is every row: readers span row groups): no copy.
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(0).as_ref()).collect();
        Ok(arrow_select::concat::concat(&parts)?)
    }

    /// Folds every row group's `columns` into a state: `lanes` states (`start(lane)` makes
    /// each), lane i reading row groups i, i + lanes, ... in order on its own thread, so that
    /// at most `lanes` row groups are in memory at a time and nothing is concatenated. The
    /// states come back in lane order; which lane sees which row group depends only on
    /// `lanes`, so the result is reproducible.
    pub(crate) fn fold_row_groups<S: Send>(
        &self,
        columns: &[String],
        dictionary: &[String],
        lanes: usize,
        start: impl Fn(usize) -> Result<S> + Sync,
        fold: impl Fn(&mut S, &RecordBatch) -> Result<()> + Sync,
    ) -> Result<Vec<S>> {
        let projection = self.projection(columns, dictionary)?;
        let row_groups = self.metadata.metadata().num_row_groups();
        let lanes = lanes.clamp(1, row_groups.max(1));
        self.pool.install(|| {
            (0..lanes)
                .into_par_iter()
                .map(|lane| {
                    let mut state = start(lane)?;
                    for row_group in (lane..row_groups).step_by(lanes) {
                        let batch = self
                            .read_row_group(&projection, row_group)?
                            .project(&projection.order)?;
                        fold(&mut state, &batch)?;
                    }
                    Ok(state)
                })
                .collect()
        })
    }

    /// The threads of this file's pool.
    pub(crate) fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }
}

/// The reader metadata, mask and column order that read a set of columns.
struct Projection {
    metadata: ArrowReaderMetadata,
    mask: ProjectionMask,
    /// The projected columns in file order.
    schema: Arc<Schema>,
    /// Their positions in `schema`, in the order asked.
    order: Vec<usize>,
    /// The file's root columns behind `schema`'s fields, in the same (file) order.
    roots: Vec<usize>,
}

#[pymethods]
impl PyParquetFile {
    /// Open a Parquet file and read its footer. `threads` bounds the row-group parallelism
    /// (default: all cores).
    #[new]
    #[pyo3(signature = (path, threads=None))]
    fn new(py: Python<'_>, path: PathBuf, threads: Option<usize>) -> PyResult<Self> {
        let metadata = py.detach(|| -> Result<ArrowReaderMetadata> {
            let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
            ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
                .map_err(|e| Error::parquet(&path, e))
        })?;
        Ok(Self {
            path,
            metadata,
            pool: thread_pool(threads)?,
        })
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    #[getter]
    fn num_rows(&self) -> i64 {
        self.metadata.metadata().file_metadata().num_rows()
    }

    /// Rows in each row group, in file order.
    #[getter]
    fn row_group_rows(&self) -> Vec<i64> {
        self.metadata
            .metadata()
            .row_groups()
            .iter()
            .map(|rg| rg.num_rows())
            .collect()
    }

    /// Column name to kind: "float", "int", "bool", "string", "temporal", "null" or "other".
    fn column_kinds(&self) -> Vec<(String, &'static str)> {
        self.metadata
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), column_kind(f.data_type())))
            .collect()
    }

    /// Read the given row groups (in parallel) and columns (in the order given) as one batch.
    /// String columns named in `dictionary` come back dictionary-encoded.
    #[pyo3(signature = (row_groups, columns, dictionary=Vec::new()))]
    fn read(
        &self,
        py: Python<'_>,
        row_groups: Vec<usize>,
        columns: Vec<String>,
        dictionary: Vec<String>,
    ) -> PyResult<PyBatch> {
        let batch = py.detach(|| self.read_columns(&row_groups, &columns, &dictionary))?;
        Ok(PyBatch::new(batch))
    }

    fn __repr__(&self) -> String {
        format!("ParquetFile({:?}, {} rows)", self.path, self.num_rows())
    }
}
