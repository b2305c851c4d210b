//! Divergences between two probability vectors over the same bins or categories: PSI and the
//! Jensen-Shannon distance.

use std::f64::consts::LN_2;

use crate::error::{Error, Result};

/// The population stability index, Σ (p_ref - p_cur) ln(p_ref / p_cur), with Evidently's
/// handling of empty bins (`get_binned_data` in src/evidently/legacy/calculations/stattests/
/// utils.py, used by its `psi` test): in each vector separately, zeros become the smallest
/// nonzero probability / 10^6 when that is at most 10^-4, and 10^-4 otherwise; the vectors are
/// not renormalized. A bin empty on both sides then adds nothing.
pub fn psi(reference: &[f64], current: &[f64]) -> Result<f64> {
    check_pair(reference, current)?;
    let (reference, current) = (fill_zeros(reference)?, fill_zeros(current)?);
    Ok(reference
        .iter()
        .zip(&current)
        .map(|(r, c)| (r - c) * (r / c).ln())
        .sum())
}

fn fill_zeros(p: &[f64]) -> Result<Vec<f64>> {
    let smallest = p
        .iter()
        .copied()
        .filter(|&x| x > 0.0)
        .fold(f64::INFINITY, f64::min);
    if smallest == f64::INFINITY {
        return Err(Error::InvalidArgument(
            "PSI needs some probability in each vector".into(),
        ));
    }
    let fill = if smallest <= 1e-4 {
        smallest / 1e6
    } else {
        1e-4
    };
    Ok(p.iter().map(|&x| if x == 0.0 { fill } else { x }).collect())
}

/// The Jensen-Shannon distance in nats, `scipy.spatial.distance.jensenshannon(p, q)`: both
/// vectors are normalized to sum 1, m = (p + q) / 2, and the distance is
/// sqrt((KL(p || m) + KL(q || m)) / 2), in [0, sqrt(ln 2)]. Evidently's `jensenshannon` test
/// reports this (natural log). Rounding can leave the sum a hair below 0 for near-identical
/// vectors, where scipy returns NaN; it is clamped to 0.
pub fn js_distance(p: &[f64], q: &[f64]) -> Result<f64> {
    check_pair(p, q)?;
    let (p_total, q_total) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    if p_total == 0.0 || q_total == 0.0 {
        return Err(Error::InvalidArgument(
            "the Jensen-Shannon distance needs some probability in each vector".into(),
        ));
    }
    let (mut left, mut right) = (0.0, 0.0);
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / p_total, b / q_total);
        let m = (a + b) / 2.0;
        left += relative_entropy(a, m);
        right += relative_entropy(b, m);
    }
    Ok(((left + right) / 2.0).max(0.0).sqrt())
}

/// The Jensen-Shannon distance in bits (scipy's `base=2`, as NannyML reports it), in [0, 1].
pub fn js_distance_bits(p: &[f64], q: &[f64]) -> Result<f64> {
    Ok(js_distance(p, q)? / LN_2.sqrt())
}

/// scipy.special.rel_entr for x >= 0 and y > 0 wherever x > 0.
fn relative_entropy(x: f64, y: f64) -> f64 {
    if x > 0.0 {
        x * (x / y).ln()
    } else {
        0.0
    }
}

fn check_pair(p: &[f64], q: &[f64]) -> Result<()> {
    if p.len() != q.len() || p.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "probability vectors must be non-empty and of one length, got {} and {}",
            p.len(),
            q.len()
        )));
    }
    if p.iter().chain(q).any(|x| !(x.is_finite() && *x >= 0.0)) {
        return Err(Error::InvalidArgument(
            "probabilities must be finite and non-negative".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-15 * b.abs().max(1.0)
    }

    #[test]
    fn psi_by_hand() {
        // (0.25 - 0.5) ln(1/2) + (0.75 - 0.5) ln(3/2) = ln(3) / 4.
        let value = psi(&[0.5, 0.5], &[0.25, 0.75]).unwrap();
        assert!(close(value, 3f64.ln() / 4.0), "{value}");
        assert_eq!(psi(&[0.2, 0.8], &[0.2, 0.8]).unwrap(), 0.0);
    }

    #[test]
    fn psi_fills_empty_bins_as_evidently() {
        // Reference: smallest nonzero 1 > 1e-4, so its zero becomes 1e-4.
        let value = psi(&[1.0, 0.0], &[0.5, 0.5]).unwrap();
        let expected = (0.5 - 1.0) * (0.5f64).ln() + (0.5 - 1e-4) * (0.5f64 / 1e-4).ln();
        assert!(close(value, expected), "{value} {expected}");
        // Current: smallest nonzero 1e-5 <= 1e-4, so its zero becomes 1e-11.
        let value = psi(&[0.5, 0.5, 0.0], &[1.0 - 1e-5, 1e-5, 0.0]).unwrap();
        let terms: [(f64, f64); 3] = [(0.5, 1.0 - 1e-5), (0.5, 1e-5), (1e-4, 1e-11)];
        let expected: f64 = terms.iter().map(|(r, c)| (r - c) * (r / c).ln()).sum();
        assert!(close(value, expected), "{value} {expected}");
        assert!(psi(&[0.0, 0.0], &[0.5, 0.5]).is_err());
        assert!(psi(&[1.0], &[0.5, 0.5]).is_err());
    }

    #[test]
    fn js_distance_by_hand() {
        assert_eq!(js_distance(&[1.0, 0.0], &[0.0, 1.0]).unwrap(), LN_2.sqrt());
        assert_eq!(js_distance_bits(&[1.0, 0.0], &[0.0, 1.0]).unwrap(), 1.0);
        assert_eq!(js_distance(&[0.3, 0.7], &[3.0, 7.0]).unwrap(), 0.0);
        // p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4).
        let kl_p = (4.0f64 / 3.0).ln();
        let kl_q = 0.5 * (2.0f64 / 3.0).ln() + 0.5 * 2f64.ln();
        let value = js_distance(&[2.0, 0.0], &[0.5, 0.5]).unwrap();
        assert!(close(value, ((kl_p + kl_q) / 2.0).sqrt()), "{value}");
        assert!(js_distance(&[0.0, 0.0], &[0.5, 0.5]).is_err());
        assert!(js_distance(&[-0.5, 1.5], &[0.5, 0.5]).is_err());
    }
}
