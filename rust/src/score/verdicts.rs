//! `RowVerdicts`: which rows of a batch the model scores, and why the others are refused.
//!
//! The verdicts stay in Rust: Python asks for counts, the refused rows and their reasons, and
//! for the accepted or refused rows of a batch, so scoring a file never builds a numpy array
//! (and `edgewise score` never imports numpy).

use arrow_array::{BooleanArray, RecordBatch};
use pyo3::prelude::*;

use crate::arrow::batch::PyBatch;
use crate::error::{Error, Result};

#[pyclass(name = "RowVerdicts", module = "edgewise._core", frozen)]
pub struct PyRowVerdicts {
    rows: usize,
    /// Refused rows in order, each with the first reason found.
    rejected: Vec<(usize, String)>,
}

impl PyRowVerdicts {
    /// Verdicts on `rows` rows: `rejected` lists the refused ones in order, with the reason.
    pub fn new(rows: usize, rejected: Vec<(usize, String)>) -> Self {
        debug_assert!(rejected.windows(2).all(|w| w[0].0 < w[1].0));
        Self { rows, rejected }
    }

    /// The rows of `batch` whose verdict is `accepted`; the batch itself when that is all of it.
    fn rows_where(&self, batch: &RecordBatch, accepted: bool) -> Result<RecordBatch> {
        if batch.num_rows() != self.rows {
            return Err(Error::InvalidArgument(format!(
                "the verdicts cover {} rows, the batch has {}",
                self.rows,
                batch.num_rows()
            )));
        }
        if self.rejected.len() == if accepted { 0 } else { self.rows } {
            return Ok(batch.clone());
        }
        let mut mask = vec![accepted; self.rows];
        for &(row, _) in &self.rejected {
            mask[row] = !accepted;
        }
        Ok(arrow_select::filter::filter_record_batch(
            batch,
            &BooleanArray::from(mask),
        )?)
    }
}

#[pymethods]
impl PyRowVerdicts {
    /// Rows judged.
    #[getter]
    fn rows(&self) -> usize {
        self.rows
    }

    /// How many rows the model scores.
    #[getter]
    fn accepted_rows(&self) -> usize {
        self.rows - self.rejected.len()
    }

    /// Indices of the refused rows, in order.
    #[getter]
    fn rejected_rows(&self) -> Vec<usize> {
        self.rejected.iter().map(|(row, _)| *row).collect()
    }

    /// Why each refused row was refused, in the order of `rejected_rows`.
    #[getter]
    fn reasons(&self) -> Vec<String> {
        self.rejected
            .iter()
            .map(|(_, reason)| reason.clone())
            .collect()
    }

    /// The accepted rows of `batch` (the batch these verdicts were given on, or a projection).
    fn accepted(&self, py: Python<'_>, batch: &PyBatch) -> PyResult<PyBatch> {
        let batch = &batch.batch;
        Ok(PyBatch::new(py.detach(|| self.rows_where(batch, true))?))
    }

    /// The refused rows of `batch`, in order.
    fn rejected(&self, py: Python<'_>, batch: &PyBatch) -> PyResult<PyBatch> {
        let batch = &batch.batch;
        Ok(PyBatch::new(py.detach(|| self.rows_where(batch, false))?))
    }

    fn __repr__(&self) -> String {
        format!(
            "RowVerdicts({} of {} rows accepted)",
            self.accepted_rows(),
            self.rows
        )
    }
}
