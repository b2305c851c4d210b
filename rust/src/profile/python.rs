//! `edgewise._core.Profile`: a profile being built or read back, and its summary as Python
//! values.

use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::{Category, ColumnProfile, Profile, Shape, Stats};
use crate::arrow::batch::PyBatch;
use crate::arrow::parquet_read::PyParquetFile;
use crate::error::{Error, Result};
use crate::runtime::thread_pool;

#[pyclass(name = "Profile", module = "edgewise._core", frozen)]
pub struct PyProfile {
    profile: Mutex<Profile>,
    pool: Arc<rayon::ThreadPool>,
}

impl PyProfile {
    pub fn new(profile: Profile, threads: Option<usize>) -> Result<Self> {
        Ok(Self {
            profile: Mutex::new(profile),
            pool: thread_pool(threads)?,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Profile> {
        self.profile.lock().expect("profile lock poisoned")
    }
}

#[pymethods]
impl PyProfile {
    /// An empty profile of the columns of `batch` (its rows are not added): quantile sketches
    /// with accuracy `k`, and no raw values kept for the `sensitive` columns.
    #[new]
    #[pyo3(signature = (batch, k=200, sensitive=Vec::new(), threads=None))]
    fn py_new(
        batch: &PyBatch,
        k: u16,
        sensitive: Vec<String>,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let profile = Profile::new(&batch.batch.schema(), k, &sensitive)?;
        Ok(Self::new(profile, threads)?)
    }

    /// Adds the rows of `batch`.
    fn update(&self, py: Python<'_>, batch: &PyBatch) -> PyResult<()> {
        let mut guard = self.lock();
        let profile: &mut Profile = &mut guard;
        Ok(py.detach(|| self.pool.install(|| profile.update(&batch.batch)))?)
    }

    /// Adds every row group of `file` (its `columns`; the `dictionary` string columns
    /// decoded as Arrow dictionaries), one row group per thread at a time: each thread
    /// profiles its own share of the row groups into a part, and the parts are merged in the
    /// end, so nothing is concatenated or handed between threads, and memory stays a few row
    /// groups whatever the file's length.
    fn update_parquet(
        &self,
        py: Python<'_>,
        file: &PyParquetFile,
        columns: Vec<String>,
        dictionary: Vec<String>,
    ) -> PyResult<()> {
        let mut guard = self.lock();
        let profile: &mut Profile = &mut guard;
        py.detach(|| -> Result<()> {
            let parts = file.fold_row_groups(
                &columns,
                &dictionary,
                file.threads(),
                |_| profile.empty_like(),
                |part, batch| part.update(batch),
            )?;
            parts.iter().try_for_each(|part| profile.merge(part))
        })?;
        Ok(())
    }

    /// A new profile of both profiles' rows.
    fn merge(&self, py: Python<'_>, other: &PyProfile) -> PyResult<Self> {
        // Copies first, so that merging a profile with itself does not lock it twice.
        let mut merged = self.lock().clone();
        let theirs = other.lock().clone();
        py.detach(|| merged.merge(&theirs))?;
        Ok(Self {
            profile: Mutex::new(merged),
            pool: self.pool.clone(),
        })
    }

    /// One profile of all the profiles' rows; distinct counts are combined in one union per
    /// column, which makes merging many small profiles much faster than one by one.
    #[staticmethod]
    #[pyo3(signature = (profiles, threads=None))]
    fn merge_all(
        py: Python<'_>,
        profiles: Vec<PyRef<'_, PyProfile>>,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let owned: Vec<Profile> = profiles.iter().map(|p| p.lock().clone()).collect();
        let merged = py
            .detach(|| Profile::merge_all(owned))?
            .ok_or_else(|| Error::InvalidArgument("merge_all needs at least one profile".into()))?;
        Ok(Self::new(merged, threads)?)
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = self.lock().to_bytes();
        PyBytes::new(py, &bytes)
    }

    #[staticmethod]
    #[pyo3(signature = (data, threads=None))]
    fn from_bytes(py: Python<'_>, data: &[u8], threads: Option<usize>) -> PyResult<Self> {
        let profile = py.detach(|| Profile::from_bytes(data))?;
        Ok(Self::new(profile, threads)?)
    }

    #[getter]
    fn rows(&self) -> u64 {
        self.lock().rows
    }

    #[getter]
    fn k(&self) -> u16 {
        self.lock().k
    }

    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.lock().columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Bytes each column takes in `to_bytes`.
    fn column_sizes(&self) -> Vec<(String, usize)> {
        self.lock()
            .columns
            .iter()
            .map(|c| {
                let mut out = Vec::new();
                c.write(&mut out);
                (c.name.clone(), out.len())
            })
            .collect()
    }

    /// The values at the given fractions (0..1) of a numeric column, from its quantile sketch;
    /// None for each when the column has no finite values or is sensitive.
    fn quantiles(&self, column: &str, fractions: Vec<f64>) -> PyResult<Vec<Option<f64>>> {
        let profile = self.lock();
        let column = find(&profile, column)?;
        Ok(match &column.stats {
            Stats::Numeric(stats) => match &stats.shape {
                Shape::Open { quantiles, .. } => {
                    fractions.iter().map(|&f| quantiles.quantile(f)).collect()
                }
                Shape::Private(_) => vec![None; fractions.len()],
            },
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "column '{}' is {}, not numeric",
                    column.name,
                    column.kind.name()
                ))
                .into())
            }
        })
    }

    /// Each column's statistics as a dict.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let profile = self.lock();
        let columns = PyList::empty(py);
        for column in &profile.columns {
            columns.append(column_summary(py, column)?)?;
        }
        Ok(columns)
    }

    fn __repr__(&self) -> String {
        let profile = self.lock();
        format!(
            "Profile({} rows: {})",
            profile.rows,
            profile.names().join(", ")
        )
    }
}

fn find<'a>(profile: &'a Profile, name: &str) -> Result<&'a ColumnProfile> {
    profile
        .column(name)
        .ok_or_else(|| Error::InvalidArgument(format!("no column '{name}' in the profile")))
}

/// How many categories a summary lists.
const SUMMARY_CATEGORIES: usize = 20;

fn column_summary<'py>(py: Python<'py>, column: &ColumnProfile) -> PyResult<Bound<'py, PyDict>> {
    let summary = PyDict::new(py);
    summary.set_item("name", &column.name)?;
    summary.set_item("kind", column.kind.name())?;
    summary.set_item("sensitive", column.sensitive)?;
    summary.set_item("rows", column.rows())?;
    summary.set_item("nulls", column.nulls)?;
    summary.set_item("values", column.values())?;
    match &column.stats {
        Stats::Numeric(stats) => {
            summary.set_item("distinct", stats.distinct_count())?;
            summary.set_item("nan", stats.nan)?;
            summary.set_item("positive_infinity", stats.positive_infinity)?;
            summary.set_item("negative_infinity", stats.negative_infinity)?;
            summary.set_item("finite", stats.finite())?;
            summary.set_item("mean", (stats.finite() > 0).then_some(stats.moments.mean))?;
            summary.set_item("std", stats.moments.variance().map(f64::sqrt))?;
            summary.set_item("skewness", stats.moments.skewness())?;
            if let Shape::Open {
                range,
                quantiles,
                values,
            } = &stats.shape
            {
                summary.set_item("min", range.map(|r| r.0))?;
                summary.set_item("max", range.map(|r| r.1))?;
                let median = quantiles.quantile(0.5);
                summary.set_item("median", median)?;
                let counts: Option<Vec<(f64, u64)>> = values.as_ref().map(|v| v.iter().collect());
                summary.set_item("value_counts", counts)?;
            }
        }
        Stats::Boolean {
            true_count,
            false_count,
        } => {
            summary.set_item("true", true_count)?;
            summary.set_item("false", false_count)?;
        }
        Stats::Categorical(stats) => {
            summary.set_item("distinct", stats.distinct.estimate())?;
            let (categories, exact) = stats.categories();
            let top: Vec<(String, u64)> = categories
                .iter()
                .take(SUMMARY_CATEGORIES)
                .map(|(category, count)| (category_label(category), *count))
                .collect();
            summary.set_item("top", top)?;
            summary.set_item("counts_exact", exact)?;
        }
    }
    Ok(summary)
}

/// How a category is shown: its value, or for a sensitive column its hash.
pub fn category_label(category: &Category) -> String {
    match category {
        Category::Value(value) => value.clone(),
        Category::Hash(hash) => format!("#{hash:016x}"),
    }
}
