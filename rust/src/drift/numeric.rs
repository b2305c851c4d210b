//! Distances between two numeric CDFs that need no bins: Kolmogorov-Smirnov and Wasserstein.

use super::cdf::StepCdf;

/// The two-sample Kolmogorov-Smirnov statistic, with the error band a sketch brings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ks {
    /// D = sup |F_ref - F_cur|.
    pub statistic: f64,
    /// The exact D is within `band` of `statistic`: 0 for exact data.
    pub band: f64,
}

/// D = sup_x |F_ref(x) - F_cur(x)|, taken over the union of both CDFs' steps (between steps
/// neither CDF moves). On exact data this is `scipy.stats.ks_2samp(ref, cur).statistic`, which
/// evaluates both empirical CDFs at every data point the same way.
///
/// D is found as max |a n_cur - b n_ref| / (n_ref n_cur) with one division at the end: for counts
/// (products below 2^53) the numerator is exact and D correctly rounded, the value scipy's
/// default (exact) mode reports after snapping D to a multiple of 1 / lcm(n_ref, n_cur).
///
/// Each CDF is within its rank error of the exact one everywhere, so D is within the sum of the
/// two rank errors of the exact D.
pub fn ks(reference: &StepCdf, current: &StepCdf) -> Ks {
    let (n_ref, n_cur) = (reference.total(), current.total());
    let largest = reference
        .steps_with(current)
        .map(|step| (step.first * n_cur - step.second * n_ref).abs())
        .fold(0.0, f64::max);
    Ks {
        statistic: largest / (n_ref * n_cur),
        band: reference.rank_error() + current.rank_error(),
    }
}

/// The first Wasserstein distance, the area between the two CDFs: ∫ |F_ref(x) - F_cur(x)| dx,
/// a sum over the gaps between consecutive steps (both CDFs are flat inside a gap). On exact
/// data this is `scipy.stats.wasserstein_distance(ref, cur)` (scipy's `_cdf_distance` with p = 1
/// sums the same terms).
pub fn wasserstein(reference: &StepCdf, current: &StepCdf) -> f64 {
    let (n_ref, n_cur) = (reference.total(), current.total());
    let mut area = 0.0;
    let mut previous: Option<(f64, f64)> = None;
    for step in reference.steps_with(current) {
        if let Some((value, gap)) = previous {
            area += gap * (step.value - value);
        }
        previous = Some((step.value, (step.first / n_ref - step.second / n_cur).abs()));
    }
    area
}

/// The Wasserstein distance in units of the reference's (population) standard deviation, as
/// Evidently's `wasserstein` test reports it (src/evidently/legacy/calculations/stattests/
/// wasserstein_distance_norm.py: `wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)`).
/// The floor is Evidently's too: a constant reference does not divide by zero, and any move
/// away from its value reads as large drift.
pub fn wasserstein_normed(reference: &StepCdf, current: &StepCdf, reference_std: f64) -> f64 {
    wasserstein(reference, current) / reference_std.max(0.001)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdf(values: &[f64]) -> StepCdf {
        StepCdf::from_values(values).unwrap()
    }

    #[test]
    fn ks_is_the_largest_cdf_gap() {
        // F_ref - F_cur at 1, 2, 3, 4: 1/3, 1/3, 1/3, 0.
        let result = ks(&cdf(&[1.0, 2.0, 3.0]), &cdf(&[2.0, 3.0, 4.0]));
        assert_eq!(result.statistic, 1.0 / 3.0);
        assert_eq!(result.band, 0.0);
        assert_eq!(ks(&cdf(&[1.0]), &cdf(&[2.0])).statistic, 1.0);
        assert_eq!(ks(&cdf(&[1.0, 2.0]), &cdf(&[2.0, 1.0])).statistic, 0.0);
        // With ties: F_ref(1) = 3/4, F_cur(1) = 1/4.
        let tied = ks(&cdf(&[1.0, 1.0, 1.0, 5.0]), &cdf(&[1.0, 5.0, 5.0, 5.0]));
        assert_eq!(tied.statistic, 0.5);
    }

    #[test]
    fn wasserstein_is_the_area_between_cdfs() {
        assert_eq!(
            wasserstein(&cdf(&[1.0, 2.0, 3.0]), &cdf(&[2.0, 3.0, 4.0])),
            1.0
        );
        assert_eq!(wasserstein(&cdf(&[0.0]), &cdf(&[2.5])), 2.5);
        // F_ref - F_cur: 1/2 on [0, 1), 0 on [1, 4), -1/2 on [4, 10).
        let area = wasserstein(&cdf(&[0.0, 4.0]), &cdf(&[1.0, 10.0]));
        assert_eq!(area, 0.5 + 3.0);
        assert_eq!(wasserstein(&cdf(&[3.0, 1.0]), &cdf(&[1.0, 3.0])), 0.0);
    }

    #[test]
    fn normed_wasserstein_floors_the_standard_deviation() {
        let (reference, current) = (cdf(&[0.0, 2.0]), cdf(&[1.0, 3.0]));
        assert_eq!(wasserstein_normed(&reference, &current, 2.0), 0.5);
        assert_eq!(wasserstein_normed(&reference, &current, 0.0), 1000.0);
    }

    /// Every `stride`-th sorted value with weight `stride`: a CDF within stride / n of the exact
    /// one everywhere, as a sketch is within its rank error.
    fn coarse(values: &[f64], stride: usize) -> StepCdf {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let kept: Vec<f64> = sorted
            .iter()
            .skip(stride - 1)
            .step_by(stride)
            .copied()
            .collect();
        let cumulative = (1..=kept.len()).map(|i| (i * stride) as f64).collect();
        let rank_error = stride as f64 / values.len() as f64;
        StepCdf::from_weighted(kept, cumulative, rank_error).unwrap()
    }

    #[test]
    fn a_coarse_cdf_keeps_ks_within_its_band() {
        // Two skewed, shifted samples from a fixed congruential sequence.
        let sample = |n: usize, seed: u64, shift: f64| -> Vec<f64> {
            let mut state = seed;
            (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let uniform = (state >> 11) as f64 / (1u64 << 53) as f64;
                    shift + (uniform * 9.0 + 1.0).ln()
                })
                .collect()
        };
        let (reference, current) = (sample(4000, 1, 0.0), sample(3000, 2, 0.1));
        let exact = ks(&cdf(&reference), &cdf(&current));
        for (ref_stride, cur_stride) in [(10, 10), (40, 5), (100, 60)] {
            let sketched = ks(
                &coarse(&reference, ref_stride),
                &coarse(&current, cur_stride),
            );
            assert!(sketched.band > 0.0);
            assert!(
                (sketched.statistic - exact.statistic).abs() <= sketched.band,
                "{sketched:?} vs exact {}",
                exact.statistic
            );
        }
    }
}
