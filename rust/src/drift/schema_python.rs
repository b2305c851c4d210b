//! Schemas and validation, Python face: `_core.infer_schema` and `_core.Validator`.
//!
//! Schema columns cross as plain dicts of [`ColumnSchema`]'s fields (raw numbers: dates in
//! days, timestamps in their unit); their JSON form lives in `edgewise.profiles.schema`.

use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::schema::{self, ColumnSchema};
use super::validate::Validation;
use crate::arrow::batch::PyBatch;
use crate::profile::python::PyProfile;
use crate::runtime::thread_pool;

/// Each column of `profile` as a schema column dict; `margin` widens numeric ranges by that
/// share of their width on each side.
#[pyfunction]
#[pyo3(signature = (profile, margin = 0.0))]
pub fn infer_schema(profile: &PyProfile, margin: f64) -> PyResult<Vec<ColumnSchema>> {
    Ok(schema::infer(&profile.lock(), margin)?)
}

/// Checks batches against schema columns, one batch at a time, and lists the anomalies.
#[pyclass(name = "Validator", module = "edgewise._core", frozen)]
pub struct PyValidator {
    validation: Mutex<Validation>,
    pool: Arc<rayon::ThreadPool>,
}

impl PyValidator {
    fn lock(&self) -> MutexGuard<'_, Validation> {
        self.validation.lock().expect("validation lock poisoned")
    }
}

#[pymethods]
impl PyValidator {
    #[new]
    #[pyo3(signature = (columns, threads = None))]
    fn new(columns: Vec<ColumnSchema>, threads: Option<usize>) -> PyResult<Self> {
        Ok(Self {
            validation: Mutex::new(Validation::new(columns)?),
            pool: thread_pool(threads)?,
        })
    }

    /// Checks the rows of `batch`, which follow the rows of the batches before it.
    fn update(&self, py: Python<'_>, batch: &PyBatch) -> PyResult<()> {
        let mut guard = self.lock();
        let validation: &mut Validation = &mut guard;
        Ok(py.detach(|| self.pool.install(|| validation.update(&batch.batch)))?)
    }

    #[getter]
    fn rows(&self) -> u64 {
        self.lock().rows()
    }

    /// Each rule broken so far as a dict: column, type, severity, count, share, first_row,
    /// examples and found.
    fn anomalies<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for anomaly in self.lock().anomalies() {
            let item = PyDict::new(py);
            item.set_item("column", anomaly.column)?;
            item.set_item("type", anomaly.anomaly.name())?;
            let severity = if anomaly.anomaly.is_error() {
                "error"
            } else {
                "warning"
            };
            item.set_item("severity", severity)?;
            item.set_item("count", anomaly.count)?;
            item.set_item("share", anomaly.share)?;
            item.set_item("first_row", anomaly.first_row)?;
            item.set_item("examples", anomaly.examples)?;
            item.set_item("found", anomaly.found)?;
            list.append(item)?;
        }
        Ok(list)
    }

    fn __repr__(&self) -> String {
        let validation = self.lock();
        format!(
            "Validator({} rows, {} anomalies)",
            validation.rows(),
            validation.anomalies().len()
        )
    }
}
