//! Two numeric columns binned the same way, as each peer bins them before PSI or a
//! Jensen-Shannon distance: Evidently, NannyML, and edgewise's own reference-quantile bins.
//!
//! Each recipe reads only step CDFs and exact moments, so it runs on raw data and on profiles
//! alike.

use super::bins::{
    bin_probabilities, doane_edges, outside_probability, point_probabilities, quantile_edges,
    sturges_edges,
};
use super::cdf::{NumericSummary, StepCdf};
use crate::error::Result;

/// Two probability vectors over the same bins (or categories), reference first.
#[derive(Clone, Debug, PartialEq)]
pub struct Binned {
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

impl Binned {
    fn with_edges(reference: &StepCdf, current: &StepCdf, edges: &[f64]) -> Result<Self> {
        Ok(Self {
            reference: bin_probabilities(reference, edges)?,
            current: bin_probabilities(current, edges)?,
        })
    }
}

/// Evidently keeps one bin per value for numeric columns with at most this many distinct
/// reference values.
const EVIDENTLY_MAX_VALUE_BINS: usize = 20;

/// Evidently's `get_binned_data` for a numeric column (src/evidently/legacy/calculations/
/// stattests/utils.py, behind its `psi` and `jensenshannon` tests): when the reference has more
/// than 20 distinct values, `np.histogram_bin_edges` with Sturges' rule over reference and
/// current pooled; otherwise one bin per value seen in either sample. Probabilities are counts
/// over each sample's size, empty bins left at 0 (`psi` fills them as Evidently does for PSI;
/// its Jensen-Shannon test does not fill them).
///
/// Evidently ignores its `n_bins` argument here: the bins follow from the data alone. A sketch's
/// sorted view holds every value of a column with few distinct values, so the count of values
/// in the CDF picks the same branch for profiles.
pub fn evidently(reference: &NumericSummary, current: &NumericSummary) -> Result<Binned> {
    let (r, c) = (&reference.moments, &current.moments);
    if reference.cdf.values().len() > EVIDENTLY_MAX_VALUE_BINS {
        let edges = sturges_edges(r.count + c.count, r.min.min(c.min), r.max.max(c.max))?;
        return Binned::with_edges(&reference.cdf, &current.cdf, &edges);
    }
    let values: Vec<f64> = reference
        .cdf
        .steps_with(&current.cdf)
        .map(|step| step.value)
        .collect();
    Ok(Binned {
        reference: point_probabilities(&reference.cdf, &values),
        current: point_probabilities(&current.cdf, &values),
    })
}

/// NannyML's binning for the Jensen-Shannon distance of a continuous column
/// (nannyml/drift/univariate/methods.py, `ContinuousJensenShannonDistance`): `np.histogram_bin_edges`
/// of the reference with Doane's rule, and the share of the current outside the reference's
/// range as one more bin, empty in the reference, when there is any. NannyML finds that share
/// as 1 - Σ p in floating point, which can leave a spurious ~1e-16 bin; here it is counted.
pub fn nannyml(reference: &NumericSummary, current: &NumericSummary) -> Result<Binned> {
    let edges = doane_edges(&reference.moments)?;
    let mut binned = Binned::with_edges(&reference.cdf, &current.cdf, &edges)?;
    let outside = outside_probability(&current.cdf, &edges)?;
    if outside > 0.0 {
        binned.reference.push(0.0);
        binned.current.push(outside);
    }
    Ok(binned)
}

/// edgewise's default bins for PSI: `bins` equal-mass bins of the reference, open at both ends
/// (see `quantile_edges`).
pub fn quantiles(reference: &StepCdf, current: &StepCdf, bins: usize) -> Result<Binned> {
    Binned::with_edges(reference, current, &quantile_edges(reference, bins)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(values: &[f64]) -> NumericSummary {
        NumericSummary::exact(values.to_vec()).unwrap()
    }

    #[test]
    fn evidently_bins_few_values_one_by_one() {
        let binned = evidently(&summary(&[1.0, 1.0, 2.0, 3.0]), &summary(&[2.0, 4.0])).unwrap();
        assert_eq!(binned.reference, [0.5, 0.25, 0.25, 0.0]);
        assert_eq!(binned.current, [0.0, 0.5, 0.0, 0.5]);
    }

    #[test]
    fn evidently_bins_many_values_by_sturges_over_both() {
        let reference: Vec<f64> = (0..21).map(f64::from).collect();
        let current = [30.0, 40.0];
        let binned = evidently(&summary(&reference), &summary(&current)).unwrap();
        // 23 values from 0 to 40: width 40 / (log2(23) + 1) = 7.4..., so 6 bins of 40/6.
        assert_eq!(binned.reference.len(), 6);
        // Edges 0, 6.67, 13.33, 20, ...: 0-6, 7-13, 14-19, then 20 alone.
        assert_eq!(
            binned.reference[..4],
            [7.0, 7.0, 6.0, 1.0].map(|n| n / 21.0)
        );
        assert_eq!(binned.current, [0.0, 0.0, 0.0, 0.0, 0.5, 0.5]);
    }

    #[test]
    fn nannyml_adds_a_bin_for_current_values_outside_the_reference() {
        let reference = summary(&[0.0, 1.0, 2.0, 3.0]);
        let inside = nannyml(&reference, &summary(&[1.0, 2.0])).unwrap();
        assert_eq!(inside.reference.iter().sum::<f64>(), 1.0);
        assert_eq!(inside.reference.len(), inside.current.len());
        let outside = nannyml(&reference, &summary(&[1.0, 5.0, -1.0, 2.0])).unwrap();
        assert_eq!(outside.reference.len(), inside.reference.len() + 1);
        assert_eq!(outside.reference.last(), Some(&0.0));
        assert_eq!(outside.current.last(), Some(&0.5));
    }

    #[test]
    fn quantile_bins_catch_values_beyond_the_reference() {
        let reference: Vec<f64> = (0..10).map(f64::from).collect();
        let binned = quantiles(
            &StepCdf::from_values(&reference).unwrap(),
            &StepCdf::from_values(&[-5.0, 100.0]).unwrap(),
            5,
        )
        .unwrap();
        assert_eq!(binned.reference, [0.2; 5]);
        assert_eq!(binned.current, [0.5, 0.0, 0.0, 0.0, 0.5]);
    }
}
