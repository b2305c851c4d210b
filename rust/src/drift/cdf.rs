//! `StepCdf`, the one representation of a numeric distribution that the drift metrics read,
//! and the exact moments some of them read besides it.

use crate::error::{Error, Result};

/// A numeric distribution as a step CDF: strictly increasing distinct `values`, and for each the
/// total weight of the items less than or equal to it (`cumulative`; the last is the total).
///
/// Exact data gives its sorted distinct values with running counts. A KLL sketch gives its
/// sorted view, with `rank_error` its normalized rank error: `at` and `below` are then within
/// `rank_error` of the exact data's. Exact data has `rank_error` 0.
///
/// Values are finite: NaN is a missing value that callers count apart, and no metric here can
/// use an infinity (a Wasserstein distance or a bin edge would be infinite too).
#[derive(Clone, Debug, PartialEq)]
pub struct StepCdf {
    values: Vec<f64>,
    cumulative: Vec<f64>,
    rank_error: f64,
}

/// One point of two CDFs walked together: a value of either, and the weight of each at or below
/// it.
pub(crate) struct Step {
    pub value: f64,
    pub first: f64,
    pub second: f64,
}

impl StepCdf {
    /// The exact CDF of `values`.
    pub fn from_values(values: &[f64]) -> Result<Self> {
        Self::from_vec(values.to_vec())
    }

    /// The exact CDF of `values`, sorting them in place rather than copying.
    pub fn from_vec(mut values: Vec<f64>) -> Result<Self> {
        check_finite(&values)?;
        if values.is_empty() {
            return Err(Error::InvalidArgument(
                "a distribution needs at least one value".into(),
            ));
        }
        values.sort_unstable_by(f64::total_cmp);
        let mut seen = 0.0;
        let (values, cumulative) = values
            .chunk_by(|a, b| a == b)
            .map(|run| {
                seen += run.len() as f64;
                (run[0], seen)
            })
            .unzip();
        Ok(Self {
            values,
            cumulative,
            rank_error: 0.0,
        })
    }

    /// A CDF given as weighted points (a sketch's sorted view), validated.
    pub fn from_weighted(values: Vec<f64>, cumulative: Vec<f64>, rank_error: f64) -> Result<Self> {
        let invalid = |detail: &str| Err(Error::InvalidArgument(format!("step CDF: {detail}")));
        if values.is_empty() || values.len() != cumulative.len() {
            return invalid("needs as many cumulative weights as values, and at least one");
        }
        check_finite(&values)?;
        if values.windows(2).any(|pair| pair[0] >= pair[1]) {
            return invalid("values must be strictly increasing");
        }
        let mut previous = 0.0;
        for &weight in &cumulative {
            // Also rejects NaN and a first weight of 0: every point carries positive weight.
            if !(weight > previous && weight.is_finite()) {
                return invalid("cumulative weights must be finite and strictly increasing from 0");
            }
            previous = weight;
        }
        if !(0.0..=1.0).contains(&rank_error) {
            return invalid("rank error must be within [0, 1]");
        }
        Ok(Self {
            values,
            cumulative,
            rank_error,
        })
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    pub fn cumulative(&self) -> &[f64] {
        &self.cumulative
    }

    pub fn rank_error(&self) -> f64 {
        self.rank_error
    }

    /// The total weight (the number of items, for exact data).
    pub fn total(&self) -> f64 {
        *self.cumulative.last().expect("a step CDF is never empty")
    }

    /// The smallest value.
    pub fn min(&self) -> f64 {
        self.values[0]
    }

    /// The largest value.
    pub fn max(&self) -> f64 {
        *self.values.last().expect("a step CDF is never empty")
    }

    /// P(X <= x).
    pub fn at(&self, x: f64) -> f64 {
        self.weight_at(x) / self.total()
    }

    /// P(X < x).
    pub fn below(&self, x: f64) -> f64 {
        self.weight_below(x) / self.total()
    }

    /// The weight of the items <= x.
    pub(crate) fn weight_at(&self, x: f64) -> f64 {
        self.weight_before(self.values.partition_point(|&v| v <= x))
    }

    /// The weight of the items < x.
    pub(crate) fn weight_below(&self, x: f64) -> f64 {
        self.weight_before(self.values.partition_point(|&v| v < x))
    }

    /// The weight of the first `index` distinct values.
    fn weight_before(&self, index: usize) -> f64 {
        index.checked_sub(1).map_or(0.0, |i| self.cumulative[i])
    }

    /// Each distinct value with its own weight.
    pub fn weights(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let previous = std::iter::once(0.0).chain(self.cumulative.iter().copied());
        self.values
            .iter()
            .zip(self.cumulative.iter().zip(previous))
            .map(|(&value, (&cumulative, previous))| (value, cumulative - previous))
    }

    /// Walks the union of both CDFs' values in increasing order, with the weight of each CDF at
    /// or below every value: the points where either CDF steps.
    pub(crate) fn steps_with<'a>(&'a self, other: &'a StepCdf) -> impl Iterator<Item = Step> + 'a {
        let (mut i, mut j) = (0, 0);
        std::iter::from_fn(move || {
            let value = match (self.values.get(i), other.values.get(j)) {
                (Some(&a), Some(&b)) => a.min(b),
                (Some(&a), None) => a,
                (None, Some(&b)) => b,
                (None, None) => return None,
            };
            i += usize::from(self.values.get(i) == Some(&value));
            j += usize::from(other.values.get(j) == Some(&value));
            Some(Step {
                value,
                first: self.weight_before(i),
                second: other.weight_before(j),
            })
        })
    }
}

fn check_finite(values: &[f64]) -> Result<()> {
    match values.iter().find(|v| !v.is_finite()) {
        Some(bad) => Err(Error::InvalidArgument(format!(
            "drift needs finite values, got {bad}: drop NaN and infinities first"
        ))),
        None => Ok(()),
    }
}

/// The exact moments of a numeric sample, which some metrics read besides its CDF: numpy's
/// Doane bin rule (count, range, skewness) and the normalized Wasserstein distance (std).
/// Profiles keep them exactly, even where their CDF is a sketch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    pub count: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// The population standard deviation (numpy's `np.std`, `ddof=0`).
    pub std: f64,
    /// Fisher's g1, mean(((x - mean) / std)^3), as numpy's Doane rule computes it; 0 when std
    /// is 0.
    pub skewness: f64,
}

impl Moments {
    /// The moments of exact data, from its CDF (two passes, as numpy computes them).
    pub fn of(cdf: &StepCdf) -> Self {
        let count = cdf.total();
        let average = |f: &dyn Fn(f64) -> f64| {
            cdf.weights()
                .map(|(value, weight)| weight * f(value))
                .sum::<f64>()
                / count
        };
        let mean = average(&|x| x);
        let std = average(&|x| (x - mean).powi(2)).sqrt();
        let skewness = if std > 0.0 {
            average(&|x| ((x - mean) / std).powi(3))
        } else {
            0.0
        };
        Self {
            count,
            min: cdf.min(),
            max: cdf.max(),
            mean,
            std,
            skewness,
        }
    }
}

/// A numeric column as drift reads it: its CDF and its exact moments.
#[derive(Clone, Debug, PartialEq)]
pub struct NumericSummary {
    pub cdf: StepCdf,
    pub moments: Moments,
}

impl NumericSummary {
    /// The exact summary of `values` (all finite).
    pub fn exact(values: Vec<f64>) -> Result<Self> {
        let cdf = StepCdf::from_vec(values)?;
        let moments = Moments::of(&cdf);
        Ok(Self { cdf, moments })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_data_is_deduplicated_with_running_counts() {
        let cdf = StepCdf::from_values(&[3.0, 1.0, 2.0, 1.0, 3.0, 3.0]).unwrap();
        assert_eq!(cdf.values(), [1.0, 2.0, 3.0]);
        assert_eq!(cdf.cumulative(), [2.0, 3.0, 6.0]);
        assert_eq!(cdf.total(), 6.0);
        assert_eq!(cdf.rank_error(), 0.0);
        let weights: Vec<_> = cdf.weights().collect();
        assert_eq!(weights, [(1.0, 2.0), (2.0, 1.0), (3.0, 3.0)]);
    }

    #[test]
    fn at_and_below_are_the_closed_and_open_cdf() {
        let cdf = StepCdf::from_values(&[1.0, 1.0, 2.0, 4.0]).unwrap();
        assert_eq!(cdf.at(0.5), 0.0);
        assert_eq!(cdf.below(1.0), 0.0);
        assert_eq!(cdf.at(1.0), 0.5);
        assert_eq!(cdf.at(3.0), 0.75);
        assert_eq!(cdf.below(3.0), 0.75);
        assert_eq!(cdf.below(4.0), 0.75);
        assert_eq!(cdf.at(4.0), 1.0);
        assert_eq!(cdf.at(f64::INFINITY), 1.0);
    }

    #[test]
    fn non_finite_or_no_values_are_rejected() {
        for values in [&[1.0, f64::NAN][..], &[f64::INFINITY], &[]] {
            let err = StepCdf::from_values(values).unwrap_err();
            assert!(
                matches!(err, Error::InvalidArgument(_)),
                "{values:?}: {err}"
            );
        }
    }

    #[test]
    fn weighted_points_are_validated() {
        let ok = StepCdf::from_weighted(vec![1.0, 2.0], vec![3.0, 5.0], 0.01).unwrap();
        assert_eq!(ok.at(1.5), 0.6);
        let bad = [
            (vec![1.0, 2.0], vec![3.0], 0.0),
            (vec![], vec![], 0.0),
            (vec![2.0, 1.0], vec![3.0, 5.0], 0.0),
            (vec![1.0, 1.0], vec![3.0, 5.0], 0.0),
            (vec![1.0, f64::NAN], vec![3.0, 5.0], 0.0),
            (vec![1.0, 2.0], vec![3.0, 3.0], 0.0),
            (vec![1.0, 2.0], vec![0.0, 3.0], 0.0),
            (vec![1.0, 2.0], vec![1.0, f64::NAN], 0.0),
            (vec![1.0, 2.0], vec![1.0, 2.0], 1.5),
            (vec![1.0, 2.0], vec![1.0, 2.0], f64::NAN),
        ];
        for (values, cumulative, rank_error) in bad {
            let case = format!("{values:?} {cumulative:?} {rank_error}");
            let result = StepCdf::from_weighted(values, cumulative, rank_error);
            assert!(matches!(result, Err(Error::InvalidArgument(_))), "{case}");
        }
    }

    #[test]
    fn steps_walk_the_union_of_values() {
        let a = StepCdf::from_values(&[1.0, 3.0, 3.0]).unwrap();
        let b = StepCdf::from_values(&[2.0, 3.0]).unwrap();
        let steps: Vec<_> = a
            .steps_with(&b)
            .map(|s| (s.value, s.first, s.second))
            .collect();
        assert_eq!(steps, [(1.0, 1.0, 0.0), (2.0, 1.0, 1.0), (3.0, 3.0, 2.0)]);
    }

    #[test]
    fn moments_of_exact_data() {
        let moments = Moments::of(&StepCdf::from_values(&[1.0, 2.0, 3.0, 10.0]).unwrap());
        assert_eq!((moments.count, moments.min, moments.max), (4.0, 1.0, 10.0));
        assert_eq!(moments.mean, 4.0);
        assert_eq!(moments.std, 3.5355339059327378); // sqrt(12.5)
        let cubes: f64 = [-3.0_f64, -2.0, -1.0, 6.0]
            .iter()
            .map(|d| (d / moments.std).powi(3))
            .sum();
        assert!((moments.skewness - cubes / 4.0).abs() < 1e-15);
        let constant = Moments::of(&StepCdf::from_values(&[5.0, 5.0]).unwrap());
        assert_eq!((constant.std, constant.skewness), (0.0, 0.0));
    }
}
