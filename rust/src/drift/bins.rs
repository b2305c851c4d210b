//! Bin edges, and the probability a step CDF puts in each bin, following numpy.
//!
//! `bin_probabilities` is `np.histogram(x, edges)[0] / len(x)`, and the numpy bin rules here
//! reproduce `np.histogram_bin_edges` bit for bit (same operations in the same order), so exact
//! data gives the very counts numpy gives. Equal-width rules need only the count and range,
//! which profiles keep exactly.

use super::cdf::{Moments, StepCdf};
use crate::error::{Error, Result};

/// The probability in each bin, as `np.histogram(x, edges)[0] / len(x)`: bin i holds
/// e_i <= x < e_{i+1}, the last bin also x == e_n, and values outside [e_0, e_n] are in no bin
/// (the probabilities then sum to less than 1). Edges must not decrease; a repeated edge makes
/// an empty bin, as in numpy.
pub fn bin_probabilities(cdf: &StepCdf, edges: &[f64]) -> Result<Vec<f64>> {
    check_edges(edges)?;
    let total = cdf.total();
    let last = edges.len() - 2;
    Ok(edges
        .windows(2)
        .enumerate()
        .map(|(i, bin)| {
            let upper = if i == last {
                cdf.weight_at(bin[1])
            } else {
                cdf.weight_below(bin[1])
            };
            (upper - cdf.weight_below(bin[0])) / total
        })
        .collect())
}

/// The weight outside [e_0, e_n], over the total: what `bin_probabilities` leaves out.
pub fn outside_probability(cdf: &StepCdf, edges: &[f64]) -> Result<f64> {
    check_edges(edges)?;
    let inside = cdf.weight_at(edges[edges.len() - 1]) - cdf.weight_below(edges[0]);
    Ok((cdf.total() - inside) / cdf.total())
}

/// The probability of each of `points` exactly, P(X = v): one bin per value.
pub fn point_probabilities(cdf: &StepCdf, points: &[f64]) -> Vec<f64> {
    points
        .iter()
        .map(|&v| (cdf.weight_at(v) - cdf.weight_below(v)) / cdf.total())
        .collect()
}

fn check_edges(edges: &[f64]) -> Result<()> {
    if edges.len() < 2 || edges.iter().any(|e| e.is_nan()) {
        return Err(Error::InvalidArgument(
            "bins need at least two edges, none NaN".into(),
        ));
    }
    if edges.windows(2).any(|pair| pair[0] > pair[1]) {
        return Err(Error::InvalidArgument("bin edges must not decrease".into()));
    }
    Ok(())
}

/// `np.histogram_bin_edges(x, bins)` for data from `min` to `max`: `bins` equal-width bins, the
/// range widened by 0.5 on each side when `min == max`, the edges computed as `np.linspace`
/// computes them. Where numpy refuses ("too many bins for data range": a range of a few ulps),
/// edges that round together are kept, as empty bins, so that drift still has an answer.
pub fn equal_width_edges(min: f64, max: f64, bins: usize) -> Result<Vec<f64>> {
    if bins == 0 {
        return Err(Error::InvalidArgument(
            "the number of bins must be positive".into(),
        ));
    }
    let (first, last) = if min == max {
        (min - 0.5, max + 0.5)
    } else {
        (min, max)
    };
    let (delta, div) = (last - first, bins as f64);
    let step = delta / div;
    let mut edges: Vec<f64> = (0..bins)
        .map(|i| {
            let i = i as f64;
            // np.linspace scales by delta last when the step underflows to 0 (numpy gh-5437).
            let offset = if step == 0.0 {
                i / div * delta
            } else {
                i * step
            };
            offset + first
        })
        .collect();
    edges.push(last);
    Ok(edges)
}

/// numpy's automatic rules: the bin width a rule picks (0 picks one bin) becomes
/// ceil(range / width) equal-width bins, as in numpy's `_get_bin_edges`.
fn rule_edges(min: f64, max: f64, width: f64) -> Result<Vec<f64>> {
    // A positive width implies max > min, so no widening applies.
    let bins = if width > 0.0 {
        ((max - min) / width).ceil() as usize
    } else {
        1
    };
    equal_width_edges(min, max, bins)
}

/// `np.histogram_bin_edges(x, bins="sturges")` for `count` values from `min` to `max`: width
/// range / (log2(count) + 1).
pub fn sturges_edges(count: f64, min: f64, max: f64) -> Result<Vec<f64>> {
    rule_edges(min, max, (max - min) / (count.log2() + 1.0))
}

/// `np.histogram_bin_edges(x, bins="doane")`: Sturges corrected for skewness, width
/// range / (1 + log2(n) + log2(1 + |g1| / sg1)) with sg1 = sqrt(6 (n - 2) / ((n + 1)(n + 3)));
/// one bin for 2 values or fewer, or no spread.
pub fn doane_edges(moments: &Moments) -> Result<Vec<f64>> {
    let n = moments.count;
    let width = if n > 2.0 && moments.std > 0.0 {
        let sg1 = (6.0 * (n - 2.0) / ((n + 1.0) * (n + 3.0))).sqrt();
        (moments.max - moments.min) / (1.0 + n.log2() + (1.0 + moments.skewness.abs() / sg1).log2())
    } else {
        0.0
    };
    rule_edges(moments.min, moments.max, width)
}

/// Equal-mass bins of the reference, open at both ends: edge k (0 < k < bins) is the smallest
/// value whose cumulative weight exceeds k/bins of the total, so that with numpy's half-open
/// bins exactly k/bins of the mass lies below it when no value is tied across it; on exact
/// sorted data s it is s[k n // bins]. The outer edges are -inf and +inf so that current values
/// beyond the reference's range still land in a bin. Tied edges are merged (fewer bins).
pub fn quantile_edges(reference: &StepCdf, bins: usize) -> Result<Vec<f64>> {
    if bins == 0 {
        return Err(Error::InvalidArgument(
            "the number of bins must be positive".into(),
        ));
    }
    let (cumulative, total) = (reference.cumulative(), reference.total());
    let mut edges = vec![f64::NEG_INFINITY];
    for k in 1..bins {
        // Compared as cumulative * bins > k * total: exact for integer weights below 2^53 / bins.
        let index = cumulative.partition_point(|&c| c * bins as f64 <= k as f64 * total);
        edges.push(reference.values()[index]);
    }
    edges.push(f64::INFINITY);
    edges.dedup();
    Ok(edges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdf(values: &[f64]) -> StepCdf {
        StepCdf::from_values(values).unwrap()
    }

    #[test]
    fn bins_are_half_open_but_the_last_is_closed() {
        let data = cdf(&[0.0, 1.0, 1.0, 2.0, 3.0, 7.0, -1.0]);
        let p = bin_probabilities(&data, &[0.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(p, [1.0 / 7.0, 2.0 / 7.0, 2.0 / 7.0]);
        assert_eq!(
            outside_probability(&data, &[0.0, 1.0, 2.0, 3.0]).unwrap(),
            2.0 / 7.0
        );
        // A repeated edge is an empty bin; a repeated last edge still closes the last bin.
        let p = bin_probabilities(&data, &[0.0, 1.0, 1.0, 3.0, 3.0]).unwrap();
        assert_eq!(p, [1.0 / 7.0, 0.0, 3.0 / 7.0, 1.0 / 7.0]);
        for bad in [&[1.0][..], &[1.0, 0.0], &[0.0, f64::NAN]] {
            assert!(bin_probabilities(&data, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn point_probabilities_count_each_value() {
        let data = cdf(&[1.0, 1.0, 2.0, 5.0]);
        assert_eq!(
            point_probabilities(&data, &[1.0, 2.0, 3.0, 5.0]),
            [0.5, 0.25, 0.0, 0.25]
        );
    }

    #[test]
    fn equal_width_edges_follow_linspace() {
        assert_eq!(
            equal_width_edges(0.0, 1.0, 4).unwrap(),
            [0.0, 0.25, 0.5, 0.75, 1.0]
        );
        // np.linspace(0, 1, 11): i * 0.1, not i / 10.
        let tenths = [
            0.0,
            0.1,
            0.2,
            0.30000000000000004,
            0.4,
            0.5,
            0.6000000000000001,
        ];
        assert_eq!(equal_width_edges(0.0, 1.0, 10).unwrap()[..7], tenths);
        assert_eq!(equal_width_edges(2.0, 2.0, 2).unwrap(), [1.5, 2.0, 2.5]);
        assert!(equal_width_edges(0.0, 1.0, 0).is_err());
        // 64 bins over 16 (one ulp at 1e17): the edges round onto the two ends.
        let crowded = equal_width_edges(1e17, 1e17 + 16.0, 64).unwrap();
        assert_eq!(crowded.len(), 65);
        assert!(crowded.iter().all(|&e| e == 1e17 || e == 1e17 + 16.0));
    }

    #[test]
    fn numpy_rules_pick_the_number_of_bins() {
        // np.histogram_bin_edges(np.arange(1000.0), bins="sturges") has 11 bins.
        assert_eq!(sturges_edges(1000.0, 0.0, 999.0).unwrap().len(), 12);
        assert_eq!(sturges_edges(8.0, 0.0, 1.0).unwrap().len(), 5);
        assert_eq!(sturges_edges(3.0, 4.0, 4.0).unwrap(), [3.5, 4.5]);
        let moments = |count, std, skewness| Moments {
            count,
            min: 0.0,
            max: 1.0,
            mean: 0.5,
            std,
            skewness,
        };
        // Symmetric data: Doane is Sturges.
        assert_eq!(doane_edges(&moments(1000.0, 0.3, 0.0)).unwrap().len(), 12);
        assert!(doane_edges(&moments(1000.0, 0.3, 2.0)).unwrap().len() > 12);
        assert_eq!(doane_edges(&moments(2.0, 0.5, 0.0)).unwrap(), [0.0, 1.0]);
    }

    #[test]
    fn quantile_edges_split_the_mass_equally() {
        let data = cdf(&(0..20).map(f64::from).collect::<Vec<_>>());
        let edges = quantile_edges(&data, 4).unwrap();
        assert_eq!(edges, [f64::NEG_INFINITY, 5.0, 10.0, 15.0, f64::INFINITY]);
        assert_eq!(
            bin_probabilities(&data, &edges).unwrap(),
            [0.25, 0.25, 0.25, 0.25]
        );
        // Most of the mass on 0: the edges at 1/4 and 2/4 merge into 0 itself.
        let tied = cdf(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0]);
        let edges = quantile_edges(&tied, 4).unwrap();
        assert_eq!(edges, [f64::NEG_INFINITY, 0.0, 1.0, f64::INFINITY]);
        assert_eq!(bin_probabilities(&tied, &edges).unwrap(), [0.0, 0.75, 0.25]);
        assert_eq!(quantile_edges(&tied, 1).unwrap().len(), 2);
        assert!(quantile_edges(&tied, 0).is_err());
    }
}
