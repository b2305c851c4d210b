//! Drift between two raw samples, computed exactly: the product's `exact` mode, and the truth
//! that drift from profiles is checked against. Every metric goes through the same functions as
//! profiles do, on a `StepCdf` or `CategoryCounts` of the full data.
//!
//! Missing values are dropped and counted, never silently lost. For numbers that is NaN, and
//! ±inf too, as Evidently drops them (`get_one_column_drift` in src/evidently/legacy/
//! calculations/data_drift.py): neither a Wasserstein distance nor a bin edge can use an
//! infinity, and every metric should see the same sample. For categories it is `None`.

use super::binned::{self, Binned};
use super::categorical::{self, Category, CategoryCounts, ChiSquare};
use super::cdf::NumericSummary;
use super::divergence::{js_distance, js_distance_bits, psi};
use super::numeric::{ks, wasserstein, wasserstein_normed, Ks};
use crate::error::{Error, Result};

/// How many values of one side were compared, and how many were dropped as missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub compared: usize,
    pub missing: usize,
}

/// Every numeric drift metric between two samples.
#[derive(Clone, Debug, PartialEq)]
pub struct NumericDrift {
    pub reference: Sample,
    pub current: Sample,
    pub ks: Ks,
    pub wasserstein: f64,
    /// In units of the reference's standard deviation (Evidently's rule).
    pub wasserstein_normed: f64,
    /// PSI and Jensen-Shannon distance (nats) on Evidently's bins.
    pub psi_evidently: f64,
    pub js_evidently: f64,
    /// PSI and Jensen-Shannon distance (nats) on reference-quantile bins.
    pub psi_quantile: f64,
    pub js_quantile: f64,
    /// Jensen-Shannon distance (bits) on NannyML's bins.
    pub js_nannyml: f64,
}

/// Compares two numeric samples; `bins` is the number of reference-quantile bins.
pub fn numeric(reference: Vec<f64>, current: Vec<f64>, bins: usize) -> Result<NumericDrift> {
    let (reference_sample, reference) = finite("reference", reference)?;
    let (current_sample, current) = finite("current", current)?;
    let evidently = binned::evidently(&reference, &current)?;
    let quantiles = binned::quantiles(&reference.cdf, &current.cdf, bins)?;
    let nannyml = binned::nannyml(&reference, &current)?;
    Ok(NumericDrift {
        reference: reference_sample,
        current: current_sample,
        ks: ks(&reference.cdf, &current.cdf),
        wasserstein: wasserstein(&reference.cdf, &current.cdf),
        wasserstein_normed: wasserstein_normed(&reference.cdf, &current.cdf, reference.moments.std),
        psi_evidently: psi_of(&evidently)?,
        js_evidently: js_of(&evidently)?,
        psi_quantile: psi_of(&quantiles)?,
        js_quantile: js_of(&quantiles)?,
        js_nannyml: js_distance_bits(&nannyml.reference, &nannyml.current)?,
    })
}

fn finite(side: &str, mut values: Vec<f64>) -> Result<(Sample, NumericSummary)> {
    let all = values.len();
    values.retain(|v| v.is_finite());
    let sample = Sample {
        compared: values.len(),
        missing: all - values.len(),
    };
    if values.is_empty() {
        return Err(no_values(side));
    }
    Ok((sample, NumericSummary::exact(values)?))
}

fn no_values(side: &str) -> Error {
    Error::InvalidArgument(format!(
        "{side}: no values left to compare once missing ones are dropped"
    ))
}

fn psi_of(binned: &Binned) -> Result<f64> {
    psi(&binned.reference, &binned.current)
}

fn js_of(binned: &Binned) -> Result<f64> {
    js_distance(&binned.reference, &binned.current)
}

/// Every categorical drift metric between two samples.
#[derive(Clone, Debug, PartialEq)]
pub struct CategoricalDrift {
    pub reference: Sample,
    pub current: Sample,
    /// Categories seen in either sample.
    pub categories: usize,
    pub linf: f64,
    pub chi_square: ChiSquare,
    /// PSI (Evidently's empty-bin rule) and Jensen-Shannon distance (nats) over the categories.
    pub psi: f64,
    pub js: f64,
}

/// Compares two samples of strings; `None` is a missing value.
pub fn categorical(
    reference: Vec<Option<String>>,
    current: Vec<Option<String>>,
) -> Result<CategoricalDrift> {
    let (reference_sample, reference) = present("reference", reference)?;
    let (current_sample, current) = present("current", current)?;
    let probabilities = categorical::aligned(&reference, &current);
    Ok(CategoricalDrift {
        reference: reference_sample,
        current: current_sample,
        categories: probabilities.reference.len(),
        linf: categorical::linf(&reference, &current),
        chi_square: categorical::chi_square(&reference, &current),
        psi: psi_of(&probabilities)?,
        js: js_of(&probabilities)?,
    })
}

fn present(side: &str, values: Vec<Option<String>>) -> Result<(Sample, CategoryCounts)> {
    let all = values.len();
    let categories: Vec<Category> = values.into_iter().flatten().map(Category::Text).collect();
    let sample = Sample {
        compared: categories.len(),
        missing: all - categories.len(),
    };
    if categories.is_empty() {
        return Err(no_values(side));
    }
    Ok((sample, CategoryCounts::from_values(categories)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_do_not_drift() {
        let values: Vec<f64> = (0..50).map(|i| f64::from(i * i % 37)).collect();
        let drift = numeric(values.clone(), values, 10).unwrap();
        assert_eq!(
            drift.ks,
            Ks {
                statistic: 0.0,
                band: 0.0
            }
        );
        let distances = [
            drift.wasserstein,
            drift.wasserstein_normed,
            drift.psi_evidently,
            drift.js_evidently,
            drift.psi_quantile,
            drift.js_quantile,
            drift.js_nannyml,
        ];
        assert_eq!(distances, [0.0; 7]);
    }

    #[test]
    fn missing_numbers_are_dropped_and_counted() {
        let drift = numeric(
            vec![1.0, f64::NAN, 2.0, f64::INFINITY],
            vec![f64::NEG_INFINITY, 1.0, 3.0],
            10,
        )
        .unwrap();
        assert_eq!(
            drift.reference,
            Sample {
                compared: 2,
                missing: 2
            }
        );
        assert_eq!(
            drift.current,
            Sample {
                compared: 2,
                missing: 1
            }
        );
        assert_eq!(drift.ks.statistic, 0.5);
        assert_eq!(drift.wasserstein, 0.5);
        let err = numeric(vec![f64::NAN], vec![1.0], 10).unwrap_err();
        assert!(err.to_string().starts_with("reference: no values"), "{err}");
        assert!(numeric(vec![1.0], vec![1.0], 0).is_err());
    }

    #[test]
    fn categories_are_compared_over_their_union() {
        let strings = |values: &[Option<&str>]| -> Vec<Option<String>> {
            values.iter().map(|v| v.map(str::to_owned)).collect()
        };
        let drift = categorical(
            strings(&[Some("a"), Some("b"), None, Some("a")]),
            strings(&[Some("b"), Some("c")]),
        )
        .unwrap();
        assert_eq!(
            drift.reference,
            Sample {
                compared: 3,
                missing: 1
            }
        );
        assert_eq!(drift.categories, 3);
        assert_eq!(drift.linf, 2.0 / 3.0);
        assert_eq!(drift.chi_square.dof, 2);
        assert!(drift.psi > 0.0 && drift.js > 0.0);
        assert!(categorical(strings(&[Some("a")]), strings(&[None])).is_err());
    }
}
