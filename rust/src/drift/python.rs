//! The exact drift metrics' Python face: `_core.drift_exact_numeric` and
//! `_core.drift_exact_categorical`, each returning a dict of metrics; and drift between two
//! profiles, `_core.drift_profiles`.

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};

use super::exact::{self, Sample};
use super::profiles::{self, Distribution, Thresholds};
use crate::error::Error;
use crate::profile::python::PyProfile;

/// Every numeric drift metric between two float64 arrays; NaN and ±inf are dropped and counted.
#[pyfunction]
#[pyo3(signature = (reference, current, bins = 10))]
pub fn drift_exact_numeric<'py>(
    py: Python<'py>,
    reference: PyReadonlyArray1<'py, f64>,
    current: PyReadonlyArray1<'py, f64>,
    bins: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let (reference, current) = (reference.as_array().to_vec(), current.as_array().to_vec());
    let drift = py.detach(|| exact::numeric(reference, current, bins))?;
    let dict = samples(py, &drift.reference, &drift.current)?;
    let metrics = [
        ("ks", drift.ks.statistic),
        ("ks_band", drift.ks.band),
        ("wasserstein", drift.wasserstein),
        ("wasserstein_normed", drift.wasserstein_normed),
        ("psi_evidently", drift.psi_evidently),
        ("js_evidently", drift.js_evidently),
        ("psi_quantile", drift.psi_quantile),
        ("js_quantile", drift.js_quantile),
        ("js_nannyml", drift.js_nannyml),
    ];
    for (key, value) in metrics {
        dict.set_item(key, value)?;
    }
    Ok(dict)
}

/// Every categorical drift metric between two sequences of str; None and NaN are missing.
#[pyfunction]
pub fn drift_exact_categorical<'py>(
    py: Python<'py>,
    reference: &Bound<'py, PyAny>,
    current: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let (reference, current) = (
        categories(reference, "reference")?,
        categories(current, "current")?,
    );
    let drift = py.detach(|| exact::categorical(reference, current))?;
    let dict = samples(py, &drift.reference, &drift.current)?;
    let chi2 = PyDict::new(py);
    chi2.set_item("statistic", drift.chi_square.statistic)?;
    chi2.set_item("dof", drift.chi_square.dof)?;
    chi2.set_item("p_value", drift.chi_square.p_value)?;
    chi2.set_item("cramers_v", drift.chi_square.cramers_v)?;
    dict.set_item("categories", drift.categories)?;
    dict.set_item("linf", drift.linf)?;
    dict.set_item("chi2", chi2)?;
    dict.set_item("psi", drift.psi)?;
    dict.set_item("js", drift.js)?;
    Ok(dict)
}

/// The sample sizes both results start with.
fn samples<'py>(
    py: Python<'py>,
    reference: &Sample,
    current: &Sample,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("reference_count", reference.compared)?;
    dict.set_item("reference_missing", reference.missing)?;
    dict.set_item("current_count", current.compared)?;
    dict.set_item("current_missing", current.missing)?;
    Ok(dict)
}

/// Any iterable of str (a list, a numpy object array, a pandas Series), None or NaN (missing)
/// as owned strings, so that the counting runs without the GIL.
fn categories(values: &Bound<'_, PyAny>, side: &str) -> PyResult<Vec<Option<String>>> {
    // A str is iterable too, but its characters are not the categories meant.
    if values.is_instance_of::<PyString>() {
        return Err(Error::InvalidArgument(format!(
            "{side}: expected a sequence of str, got a single str"
        ))
        .into());
    }
    values
        .try_iter()?
        .map(|item| {
            let item = item?;
            if item.is_none() || item.cast::<PyFloat>().is_ok_and(|f| f.value().is_nan()) {
                return Ok(None);
            }
            item.extract::<String>().map(Some).map_err(|_| {
                Error::InvalidArgument(format!(
                    "{side}: categories must be str (None or NaN when missing), got {}",
                    item.repr().map_or_else(|_| "?".into(), |r| r.to_string())
                ))
                .into()
            })
        })
        .collect()
}

/// Compares two profiles column by column: each column as a dict with name, kind, method,
/// score, threshold, drifted, metrics and distribution (see `drift::profiles`).
#[pyfunction]
#[pyo3(signature = (reference, current, numeric_threshold=0.1, categorical_threshold=0.05, significance=0.001))]
pub fn drift_profiles<'py>(
    py: Python<'py>,
    reference: &PyProfile,
    current: &PyProfile,
    numeric_threshold: f64,
    categorical_threshold: f64,
    significance: f64,
) -> PyResult<Bound<'py, PyList>> {
    let thresholds = Thresholds {
        numeric: numeric_threshold,
        categorical: categorical_threshold,
        significance,
    };
    let (reference, current) = (reference.lock().clone(), current.lock().clone());
    let columns = py.detach(|| profiles::compare(&reference, &current, thresholds))?;
    let list = PyList::empty(py);
    for column in columns {
        let item = PyDict::new(py);
        item.set_item("name", &column.name)?;
        item.set_item("kind", column.kind)?;
        item.set_item("method", column.method)?;
        item.set_item("score", column.score)?;
        item.set_item("threshold", column.threshold)?;
        item.set_item("drifted", column.drifted)?;
        let metrics = PyDict::new(py);
        for (name, value) in &column.metrics {
            metrics.set_item(name, value)?;
        }
        item.set_item("metrics", metrics)?;
        item.set_item("distribution", distribution(py, &column.distribution)?)?;
        list.append(item)?;
    }
    Ok(list)
}

fn distribution<'py>(
    py: Python<'py>,
    distribution: &Distribution,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let dict = PyDict::new(py);
    let (kind, reference, current) = match distribution {
        Distribution::Histogram {
            edges,
            reference,
            current,
        } => {
            dict.set_item("edges", edges)?;
            ("histogram", reference, current)
        }
        Distribution::Categories {
            categories,
            reference,
            current,
        } => {
            dict.set_item("categories", categories)?;
            ("categories", reference, current)
        }
        Distribution::None => return Ok(None),
    };
    dict.set_item("type", kind)?;
    dict.set_item("reference", reference)?;
    dict.set_item("current", current)?;
    Ok(Some(dict))
}
