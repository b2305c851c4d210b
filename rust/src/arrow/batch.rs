//! `Batch`: an Arrow record batch owned by Rust and handed around by Python.
//!
//! Python never looks at rows; it passes batches between the reader, the input builder, the
//! model and the writer. Any Arrow PyCapsule consumer (polars, pyarrow) can read a `Batch`
//! through the PyCapsule interface.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, StructArray};
use arrow_schema::{Field, Schema};
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyList, PyTuple};
use pyo3_arrow::input::AnyRecordBatch;

use super::numpy_columns::{
    array_from_list, array_from_numpy, array_from_scalar, numpy_from_array,
};
use crate::error::{Error, Result};

#[pyclass(name = "Batch", module = "edgewise._core", frozen)]
pub struct PyBatch {
    pub batch: RecordBatch,
}

impl PyBatch {
    pub fn new(batch: RecordBatch) -> Self {
        Self { batch }
    }
}

#[pymethods]
impl PyBatch {
    /// Import any Arrow table or batch (polars, pyarrow, pandas) as one batch.
    #[staticmethod]
    fn from_arrow(py: Python<'_>, data: AnyRecordBatch) -> PyResult<Self> {
        let reader = data.into_reader()?;
        let schema = reader.schema();
        let batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Error::from)?;
        let batch = py
            .detach(|| arrow_select::concat::concat_batches(&schema, &batches))
            .map_err(Error::from)?;
        Ok(Self::new(batch))
    }

    #[getter]
    fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The columns named, in that order.
    fn select(&self, names: Vec<String>) -> PyResult<Self> {
        let schema = self.batch.schema();
        let indices = names
            .iter()
            .map(|name| {
                schema
                    .index_of(name)
                    .map_err(|_| Error::schema("batch", name, "no such column"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::new(
            self.batch.project(&indices).map_err(Error::from)?,
        ))
    }

    /// `length` rows from `offset` on, sharing this batch's buffers.
    fn slice(&self, offset: usize, length: usize) -> PyResult<Self> {
        let rows = self.batch.num_rows();
        if offset.checked_add(length).is_none_or(|end| end > rows) {
            return Err(Error::InvalidArgument(format!(
                "rows {offset}..{} are outside a batch of {rows} rows",
                offset.saturating_add(length)
            ))
            .into());
        }
        Ok(Self::new(self.batch.slice(offset, length)))
    }

    /// This batch with the columns of `others` after its own, in order (no copy).
    fn append_columns(&self, others: Vec<PyRef<'_, PyBatch>>) -> PyResult<Self> {
        let rows = self.batch.num_rows();
        let schema = self.batch.schema();
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        let mut arrays: Vec<ArrayRef> = self.batch.columns().to_vec();
        for other in &others {
            if other.batch.num_rows() != rows {
                return Err(Error::InvalidArgument(format!(
                    "cannot put a batch of {} rows beside one of {rows}",
                    other.batch.num_rows()
                ))
                .into());
            }
            fields.extend(other.batch.schema().fields().iter().cloned());
            arrays.extend(other.batch.columns().iter().cloned());
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let batch =
            RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
                .map_err(Error::from)?;
        Ok(Self::new(batch))
    }

    /// One column as a numpy array (float64, float32, int64, bool, or objects for strings).
    fn column<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let array = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| Error::schema("batch", name, "no such column"))?;
        numpy_from_array(py, name, array)
    }

    /// The rows where `mask` is true.
    fn filter(&self, py: Python<'_>, mask: PyReadonlyArray1<'_, bool>) -> PyResult<Self> {
        let mask = BooleanArray::from(mask.as_slice()?.to_vec());
        let batch = &self.batch;
        if mask.len() != batch.num_rows() {
            return Err(Error::InvalidArgument(format!(
                "mask has {} entries for {} rows",
                mask.len(),
                batch.num_rows()
            ))
            .into());
        }
        let filtered = py
            .detach(|| arrow_select::filter::filter_record_batch(batch, &mask))
            .map_err(Error::from)?;
        Ok(Self::new(filtered))
    }

    /// This batch with columns appended: 1-D numpy arrays (float32, float64, int64, bool, or
    /// object arrays of str), lists of int or of str, or a str / int / float repeated on
    /// every row.
    fn with_columns(&self, columns: Vec<(String, Bound<'_, PyAny>)>) -> PyResult<Self> {
        let schema = self.batch.schema();
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        let mut arrays: Vec<ArrayRef> = self.batch.columns().to_vec();
        for (name, values) in columns {
            let rows = self.batch.num_rows();
            let array = match array_from_scalar(&values, rows)? {
                Some(array) => array,
                None if values.is_instance_of::<PyList>() => array_from_list(&name, &values)?,
                None => array_from_numpy(&name, &values)?,
            };
            if array.len() != self.batch.num_rows() {
                return Err(Error::InvalidArgument(format!(
                    "column '{name}' has {} values for {} rows",
                    array.len(),
                    self.batch.num_rows()
                ))
                .into());
            }
            fields.push(Arc::new(Field::new(
                name,
                array.data_type().clone(),
                array.null_count() > 0,
            )));
            arrays.push(array);
        }
        let schema = Arc::new(Schema::new(fields));
        Ok(Self::new(
            RecordBatch::try_new(schema, arrays).map_err(Error::from)?,
        ))
    }

    fn __len__(&self) -> usize {
        self.batch.num_rows()
    }

    fn __repr__(&self) -> String {
        format!(
            "Batch({} rows: {})",
            self.batch.num_rows(),
            self.column_names().join(", ")
        )
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        Ok(pyo3_arrow::ffi::to_schema_pycapsule(
            py,
            self.batch.schema_ref().as_ref(),
        )?)
    }

    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let array = StructArray::from(self.batch.clone());
        let field = Arc::new(Field::new_struct(
            "",
            self.batch.schema_ref().fields().clone(),
            false,
        ));
        Ok(pyo3_arrow::ffi::to_array_pycapsules(
            py,
            field,
            &array,
            requested_schema,
        )?)
    }
}
