//! Output columns to Arrow arrays: numpy arrays (model outputs), one copy each, and scalars
//! repeated on every row (model name and version), built without a Python object per row.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, StringArray};
use numpy::{PyArrayDescrMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};

use crate::error::Error;

/// A column of `rows` copies of a Python str, int or float; `None` if `value` is none of these.
pub fn array_from_scalar(value: &Bound<'_, PyAny>, rows: usize) -> PyResult<Option<ArrayRef>> {
    let array: ArrayRef = if value.is_instance_of::<PyString>() {
        let text: String = value.extract()?;
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            text.as_str(),
            rows,
        )))
    } else if value.is_instance_of::<PyBool>() {
        return Ok(None);
    } else if value.is_instance_of::<PyInt>() {
        Arc::new(Int64Array::from_value(value.extract()?, rows))
    } else if value.is_instance_of::<PyFloat>() {
        Arc::new(Float64Array::from_value(value.extract()?, rows))
    } else {
        return Ok(None);
    };
    Ok(Some(array))
}

/// Convert a 1-D numpy array to an Arrow array. Object arrays must hold `str` (or None for null).
pub fn array_from_numpy(name: &str, values: &Bound<'_, PyAny>) -> PyResult<ArrayRef> {
    let untyped = values
        .cast::<PyUntypedArray>()
        .map_err(|_| Error::InvalidArgument(format!("column '{name}': expected a numpy array")))?;
    if untyped.ndim() != 1 {
        return Err(Error::InvalidArgument(format!(
            "column '{name}': expected a 1-D array, got {} dimensions",
            untyped.ndim()
        ))
        .into());
    }
    let dtype = untyped.dtype();
    let py = values.py();
    let array: ArrayRef = if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) {
        let v: PyReadonlyArray1<'_, f64> = values.extract()?;
        Arc::new(Float64Array::from_iter_values(v.as_array().iter().copied()))
    } else if dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
        let v: PyReadonlyArray1<'_, f32> = values.extract()?;
        Arc::new(Float32Array::from_iter_values(v.as_array().iter().copied()))
    } else if dtype.is_equiv_to(&numpy::dtype::<i64>(py)) {
        let v: PyReadonlyArray1<'_, i64> = values.extract()?;
        Arc::new(Int64Array::from_iter_values(v.as_array().iter().copied()))
    } else if dtype.is_equiv_to(&numpy::dtype::<bool>(py)) {
        let v: PyReadonlyArray1<'_, bool> = values.extract()?;
        Arc::new(BooleanArray::from_iter(
            v.as_array().iter().map(|b| Some(*b)),
        ))
    } else if dtype.is_equiv_to(&numpy::dtype::<Py<PyAny>>(py)) {
        let v: PyReadonlyArray1<'_, Py<PyAny>> = values.extract()?;
        let strings = v
            .as_array()
            .iter()
            .map(|item| {
                let item = item.bind(py);
                if item.is_none() {
                    Ok(None)
                } else {
                    item.extract::<String>().map(Some).map_err(|_| {
                        PyErr::from(Error::InvalidArgument(format!(
                            "column '{name}': object arrays must hold str"
                        )))
                    })
                }
            })
            .collect::<PyResult<Vec<Option<String>>>>()?;
        Arc::new(StringArray::from(strings))
    } else {
        return Err(Error::InvalidArgument(format!(
            "column '{name}': unsupported numpy dtype {dtype}; use float32, float64, int64, bool or str objects"
        ))
        .into());
    };
    Ok(array)
}
