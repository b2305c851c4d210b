//! Columns between Python and Arrow: numpy arrays and lists to Arrow arrays (one copy each),
//! scalars repeated on every row (model name and version) built without a Python object per
//! row, and Arrow columns back to numpy for callers that compute on them.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, StringArray,
};
use arrow_schema::DataType;
use numpy::{
    IntoPyArray, PyArrayDescrMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods,
};
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

/// A Python list of int, or of str (None for null), as an Arrow column.
pub fn array_from_list(name: &str, values: &Bound<'_, PyAny>) -> PyResult<ArrayRef> {
    if let Ok(ints) = values.extract::<Vec<i64>>() {
        return Ok(Arc::new(Int64Array::from(ints)));
    }
    let strings: Vec<Option<String>> = values.extract().map_err(|_| {
        Error::InvalidArgument(format!(
            "column '{name}': lists must hold int, or str and None"
        ))
    })?;
    Ok(Arc::new(StringArray::from(strings)))
}

/// An Arrow column as a 1-D numpy array (a copy): float64, float32, int64 and bool as such,
/// strings as objects (None for null); nulls in a float column become NaN.
pub fn numpy_from_array<'py>(
    py: Python<'py>,
    name: &str,
    array: &ArrayRef,
) -> PyResult<Bound<'py, PyAny>> {
    let numeric_nulls = || {
        PyErr::from(Error::InvalidArgument(format!(
            "column '{name}' has nulls, which a numpy {} array cannot hold",
            array.data_type()
        )))
    };
    Ok(match array.data_type() {
        DataType::Float64 => {
            let values = array.as_primitive::<Float64Type>();
            let values: Vec<f64> = values.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            values.into_pyarray(py).into_any()
        }
        DataType::Float32 => {
            let values = array.as_primitive::<Float32Type>();
            let values: Vec<f32> = values.iter().map(|v| v.unwrap_or(f32::NAN)).collect();
            values.into_pyarray(py).into_any()
        }
        DataType::Int64 if array.null_count() == 0 => {
            let values = array.as_primitive::<Int64Type>().values().to_vec();
            values.into_pyarray(py).into_any()
        }
        DataType::Boolean if array.null_count() == 0 => {
            let values: Vec<bool> = array.as_boolean().values().iter().collect();
            values.into_pyarray(py).into_any()
        }
        DataType::Int64 | DataType::Boolean => return Err(numeric_nulls()),
        DataType::Utf8 | DataType::LargeUtf8 => {
            let strings = arrow_cast::cast(array, &DataType::Utf8).map_err(Error::from)?;
            let objects: Vec<Py<PyAny>> = strings
                .as_string::<i32>()
                .iter()
                .map(|v| match v {
                    Some(text) => PyString::new(py, text).into_any().unbind(),
                    None => py.None(),
                })
                .collect();
            objects.into_pyarray(py).into_any()
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "column '{name}': {other} has no numpy conversion here"
            ))
            .into())
        }
    })
}
