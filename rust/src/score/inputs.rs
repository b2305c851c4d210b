//! `InputLayout`: how a model's input tensors are built from named Arrow columns.
//!
//! One pass over each column checks every row against the bundle's schema rules (nulls the
//! model cannot take, categories it never saw) and writes the accepted rows straight into
//! row-major tensors. Strings become numpy object arrays through an intern table, so each
//! distinct value is turned into a Python string once, not once per row.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use numpy::ndarray::Array2;
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::verdicts::PyRowVerdicts;
use crate::arrow::batch::PyBatch;
use crate::error::{Error, Result};
use crate::schema::column_kind;

/// How string columns travel: dictionary-encoded, so per-value work happens once per batch.
pub fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Element type of an ONNX input tensor that edgewise can build.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TensorType {
    Float32,
    Float64,
    Int64,
    String,
}

impl TensorType {
    fn parse(name: &str) -> Result<Self> {
        match name {
            "float32" => Ok(Self::Float32),
            "float64" => Ok(Self::Float64),
            "int64" => Ok(Self::Int64),
            "string" => Ok(Self::String),
            other => Err(Error::InvalidArgument(format!(
                "unknown tensor type '{other}': choose one of float32, float64, int64, string"
            ))),
        }
    }

    fn is_numeric(self) -> bool {
        self != Self::String
    }
}

struct InputSpec {
    name: String,
    tensor_type: TensorType,
    columns: Vec<String>,
}

/// What a column may hold for a row to be scored.
struct ColumnRule {
    accepts_missing: bool,
    categories: Option<HashSet<String>>,
}

/// Tensors, then the verdicts.
type Prepared<'py> = (Bound<'py, PyDict>, PyRowVerdicts);

#[pyclass(name = "InputLayout", module = "edgewise._core", frozen)]
pub struct PyInputLayout {
    inputs: Vec<InputSpec>,
    rules: HashMap<String, ColumnRule>,
}

/// The refused rows of a batch, each with the first reason found; every other row is scored.
/// Refusals are rare, so only they are stored (a slot per row cost 6 MB a 256K-row batch).
struct RowChecks {
    rows: usize,
    rejected: BTreeMap<usize, String>,
}

impl RowChecks {
    fn new(rows: usize) -> Self {
        Self {
            rows,
            rejected: BTreeMap::new(),
        }
    }

    fn reject(&mut self, row: usize, reason: impl FnOnce() -> String) {
        self.rejected.entry(row).or_insert_with(reason);
    }

    fn into_verdicts(self) -> PyRowVerdicts {
        PyRowVerdicts::new(self.rows, self.rejected.into_iter().collect())
    }

    fn accepted_rows(&self) -> Vec<usize> {
        (0..self.rows)
            .filter(|r| !self.rejected.contains_key(r))
            .collect()
    }
}

impl PyInputLayout {
    fn column<'a>(&self, batch: &'a RecordBatch, source: &str, name: &str) -> Result<&'a ArrayRef> {
        batch
            .column_by_name(name)
            .ok_or_else(|| Error::schema(source, name, "missing"))
    }

    /// Check every column's type, then every row against the rules.
    fn check(&self, batch: &RecordBatch, source: &str) -> Result<RowChecks> {
        let mut checks = RowChecks::new(batch.num_rows());
        for spec in &self.inputs {
            for name in &spec.columns {
                let array = self.column(batch, source, name)?;
                let kind = column_kind(array.data_type());
                let fits = kind == "null"
                    || match spec.tensor_type {
                        TensorType::String => kind == "string",
                        _ => matches!(kind, "float" | "int" | "bool"),
                    };
                if !fits {
                    let wanted = if spec.tensor_type.is_numeric() {
                        "numeric"
                    } else {
                        "string"
                    };
                    return Err(Error::schema(
                        source,
                        name,
                        format!("the model needs a {wanted} column, found {kind}"),
                    ));
                }
                let rule = self.rules.get(name);
                self.check_column(array, name, spec.tensor_type, rule, &mut checks)?;
            }
        }
        Ok(checks)
    }

    fn check_column(
        &self,
        array: &ArrayRef,
        name: &str,
        tensor_type: TensorType,
        rule: Option<&ColumnRule>,
        checks: &mut RowChecks,
    ) -> Result<()> {
        let accepts_missing = tensor_type.is_numeric() && rule.is_some_and(|r| r.accepts_missing);
        if !accepts_missing {
            if array.null_count() > 0 {
                for row in 0..array.len() {
                    if array.is_null(row) {
                        checks.reject(row, || format!("column '{name}' is null"));
                    }
                }
            }
            if matches!(
                array.data_type(),
                DataType::Float16 | DataType::Float32 | DataType::Float64
            ) {
                let values = arrow_cast::cast(array, &DataType::Float64)?;
                for (row, value) in values.as_primitive::<Float64Type>().iter().enumerate() {
                    if value.is_some_and(f64::is_nan) {
                        checks.reject(row, || format!("column '{name}' is NaN"));
                    }
                }
            }
        }
        if let Some(categories) = rule.and_then(|r| r.categories.as_ref()) {
            // Look each distinct value up once, then rows only index the verdict by key.
            let encoded = arrow_cast::cast(array, &dictionary_type())?;
            let encoded = encoded.as_dictionary::<Int32Type>();
            let values = encoded.values().as_string::<i32>();
            let known: Vec<bool> = values
                .iter()
                .map(|v| v.is_some_and(|v| categories.contains(v)))
                .collect();
            for (row, key) in encoded.keys().iter().enumerate() {
                if let Some(key) = key.map(|k| k as usize) {
                    if !known[key] {
                        let value = values.value(key);
                        checks.reject(row, || {
                            format!("column '{name}': unknown category {value:?}")
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn numeric_tensor<T: Copy + Send>(
        batch: &RecordBatch,
        spec: &InputSpec,
        rows: &[usize],
        convert: impl Fn(Option<f64>) -> T,
    ) -> Result<Array2<T>> {
        let width = spec.columns.len();
        let mut data: Vec<T> = vec![convert(None); rows.len() * width];
        for (c, name) in spec.columns.iter().enumerate() {
            let array = batch.column_by_name(name).expect("checked");
            let values = arrow_cast::cast(array, &DataType::Float64)?;
            let values = values.as_primitive::<Float64Type>();
            for (i, &row) in rows.iter().enumerate() {
                let value = values.is_valid(row).then(|| values.value(row));
                data[i * width + c] = convert(value);
            }
        }
        Ok(Array2::from_shape_vec((rows.len(), width), data).expect("shape matches"))
    }

    fn int_tensor(batch: &RecordBatch, spec: &InputSpec, rows: &[usize]) -> Result<Array2<i64>> {
        let width = spec.columns.len();
        let mut data = vec![0_i64; rows.len() * width];
        for (c, name) in spec.columns.iter().enumerate() {
            let array = batch.column_by_name(name).expect("checked");
            let values = arrow_cast::cast(array, &DataType::Int64)?;
            let values = values.as_primitive::<Int64Type>();
            for (i, &row) in rows.iter().enumerate() {
                data[i * width + c] = values.value(row);
            }
        }
        Ok(Array2::from_shape_vec((rows.len(), width), data).expect("shape matches"))
    }

    /// The string columns of `spec`, dictionary-encoded (no GIL needed): each distinct value
    /// then becomes one Python string, and rows only copy a reference to it.
    fn dictionary_columns(batch: &RecordBatch, spec: &InputSpec) -> Result<Vec<ArrayRef>> {
        spec.columns
            .iter()
            .map(|name| {
                let array = batch.column_by_name(name).expect("checked");
                Ok(arrow_cast::cast(array, &dictionary_type())?)
            })
            .collect()
    }

    fn string_tensor(py: Python<'_>, columns: &[ArrayRef], rows: &[usize]) -> Array2<Py<PyAny>> {
        let encoded: Vec<_> = columns
            .iter()
            .map(|c| c.as_dictionary::<Int32Type>())
            .collect();
        let objects: Vec<Vec<Py<PyAny>>> = encoded
            .iter()
            .map(|column| {
                let values = column.values().as_string::<i32>();
                values
                    .iter()
                    .map(|v| PyString::new(py, v.unwrap_or_default()).into_any().unbind())
                    .collect()
            })
            .collect();
        let keys: Vec<&[i32]> = encoded.iter().map(|c| c.keys().values().as_ref()).collect();
        let mut data = Vec::with_capacity(rows.len() * columns.len());
        for &row in rows {
            for (objects, keys) in objects.iter().zip(&keys) {
                // Accepted rows are never null, so every key points at a value.
                data.push(objects[keys[row] as usize].clone_ref(py));
            }
        }
        Array2::from_shape_vec((rows.len(), columns.len()), data).expect("shape matches")
    }
}

#[pymethods]
impl PyInputLayout {
    /// `inputs`: (tensor name, tensor type, columns) per model input.
    /// `rules`: (column, accepts_missing, known categories or None) per checked column.
    #[new]
    fn new(
        inputs: Vec<(String, String, Vec<String>)>,
        rules: Vec<(String, bool, Option<Vec<String>>)>,
    ) -> PyResult<Self> {
        let inputs = inputs
            .into_iter()
            .map(|(name, tensor_type, columns)| {
                Ok(InputSpec {
                    name,
                    tensor_type: TensorType::parse(&tensor_type)?,
                    columns,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rules = rules
            .into_iter()
            .map(|(column, accepts_missing, categories)| {
                let categories = categories.map(|c| c.into_iter().collect());
                (
                    column,
                    ColumnRule {
                        accepts_missing,
                        categories,
                    },
                )
            })
            .collect();
        Ok(Self { inputs, rules })
    }

    /// Every column the model reads, in input order.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.inputs.iter().flat_map(|s| s.columns.clone()).collect()
    }

    /// Validate `batch` and build the model's input tensors from its accepted rows.
    ///
    /// Returns `(tensors, verdicts)`: a dict of numpy arrays for the accepted rows, and which
    /// rows those are.
    #[pyo3(signature = (batch, source="input"))]
    fn prepare<'py>(
        &self,
        py: Python<'py>,
        batch: &PyBatch,
        source: &str,
    ) -> PyResult<Prepared<'py>> {
        let batch = &batch.batch;
        let checks = py.detach(|| self.check(batch, source))?;
        let rows = checks.accepted_rows();
        let tensors = PyDict::new(py);
        for spec in &self.inputs {
            let tensor = match spec.tensor_type {
                TensorType::Float32 => py
                    .detach(|| {
                        Self::numeric_tensor(batch, spec, &rows, |v| {
                            v.map_or(f32::NAN, |x| x as f32)
                        })
                    })?
                    .into_pyarray(py)
                    .into_any(),
                TensorType::Float64 => py
                    .detach(|| Self::numeric_tensor(batch, spec, &rows, |v| v.unwrap_or(f64::NAN)))?
                    .into_pyarray(py)
                    .into_any(),
                TensorType::Int64 => py
                    .detach(|| Self::int_tensor(batch, spec, &rows))?
                    .into_pyarray(py)
                    .into_any(),
                TensorType::String => {
                    let columns = py.detach(|| Self::dictionary_columns(batch, spec))?;
                    Self::string_tensor(py, &columns, &rows)
                        .into_pyarray(py)
                        .into_any()
                }
            };
            tensors.set_item(&spec.name, tensor)?;
        }
        Ok((tensors, checks.into_verdicts()))
    }

    /// Validate `batch` without building tensors (for engines that read Arrow directly).
    ///
    #[pyo3(signature = (batch, source="input"))]
    fn check_rows(&self, py: Python<'_>, batch: &PyBatch, source: &str) -> PyResult<PyRowVerdicts> {
        let checks = py.detach(|| self.check(&batch.batch, source))?;
        Ok(checks.into_verdicts())
    }
}
