//! Count, mean and the second and third central moments of the finite values of a column,
//! with exact pairwise merging (Pébay 2008, "Formulas for robust, one-pass parallel computation
//! of covariances and arbitrary-order statistical moments", eqs. 2.1 and 3.1), so a profile
//! merged from parts has the moments of the whole up to rounding.

use super::codec::{self, Reader, Write};
use crate::error::Result;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Moments {
    pub count: u64,
    pub mean: f64,
    /// Σ (x - mean)²
    pub m2: f64,
    /// Σ (x - mean)³
    pub m3: f64,
}

impl Moments {
    /// The moments of a slice of finite values, in two passes: the mean first, then the
    /// centred sums, which is far more accurate than running sums of powers.
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let count = values.len() as f64;
        let mean = lanes(values, 0.0, |sum: &mut f64, x| *sum += x)
            .iter()
            .sum::<f64>()
            / count;
        let centred = lanes(values, (0.0, 0.0), |(m2, m3): &mut (f64, f64), x| {
            let d = x - mean;
            let d2 = d * d;
            *m2 += d2;
            *m3 += d2 * d;
        });
        let (m2, m3) = centred
            .iter()
            .fold((0.0, 0.0), |(m2, m3), lane| (m2 + lane.0, m3 + lane.1));
        Self {
            count: values.len() as u64,
            mean,
            m2,
            m3,
        }
    }

    pub fn merge(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        let m2 = self.m2 + other.m2 + delta * delta * na * nb / n;
        let m3 = self.m3
            + other.m3
            + delta.powi(3) * na * nb * (na - nb) / (n * n)
            + 3.0 * delta * (na * other.m2 - nb * self.m2) / n;
        self.mean += delta * nb / n;
        self.m2 = m2;
        self.m3 = m3;
        self.count += other.count;
    }

    /// Sample variance (n - 1 in the denominator), as pandas' and numpy's `ddof=1`.
    pub fn variance(&self) -> Option<f64> {
        (self.count > 1).then(|| self.m2 / (self.count - 1) as f64)
    }

    /// Population skewness g1 = m3 / m2^1.5 with moments over n, as scipy.stats.skew's default.
    pub fn skewness(&self) -> Option<f64> {
        let n = self.count as f64;
        (self.count > 1 && self.m2 > 0.0).then(|| n.sqrt() * self.m3 / self.m2.powf(1.5))
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.count);
        out.put_f64(self.mean);
        out.put_f64(self.m2);
        out.put_f64(self.m3);
    }

    pub fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let moments = Self {
            count: reader.u64("moments count")?,
            mean: reader.f64("mean")?,
            m2: reader.f64("second moment")?,
            m3: reader.f64("third moment")?,
        };
        let finite = moments.mean.is_finite() && moments.m2.is_finite() && moments.m3.is_finite();
        if !finite || moments.m2 < 0.0 || (moments.count == 0 && moments != Self::default()) {
            return Err(codec::corrupt(format!("impossible moments {moments:?}")));
        }
        Ok(moments)
    }
}

/// Folds `values` into `LANES` accumulators, value i into lane i % LANES, so that the additions
/// of different lanes do not wait for each other (and vectorize): several times faster than one
/// running sum, whose every addition waits for the previous one.
pub fn lanes<A: Copy>(values: &[f64], start: A, add: impl Fn(&mut A, f64)) -> [A; LANES] {
    let mut acc = [start; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in acc.iter_mut().zip(chunk) {
            add(lane, x);
        }
    }
    for (lane, &x) in acc.iter_mut().zip(chunks.remainder()) {
        add(lane, x);
    }
    acc
}

pub const LANES: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(values: &[f64]) -> (f64, f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let m2 = values.iter().map(|x| (x - mean).powi(2)).sum();
        let m3 = values.iter().map(|x| (x - mean).powi(3)).sum();
        (mean, m2, m3)
    }

    #[test]
    fn merged_parts_have_the_moments_of_the_whole() {
        let values: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1013) as f64 * 0.37 + 1e6)
            .collect();
        let (mean, m2, m3) = naive(&values);
        for split in [1, 10, 333, 999] {
            let mut merged = Moments::of(&values[..split]);
            merged.merge(&Moments::of(&values[split..]));
            assert_eq!(merged.count, 1000);
            assert!((merged.mean - mean).abs() < 1e-9 * mean.abs());
            assert!((merged.m2 - m2).abs() < 1e-9 * m2);
            assert!((merged.m3 - m3).abs() < 1e-6 * m2.powf(1.5));
        }
        let mut chunks = Moments::default();
        for chunk in values.chunks(37) {
            chunks.merge(&Moments::of(chunk));
        }
        assert!((chunks.m2 - m2).abs() < 1e-9 * m2);
    }

    #[test]
    fn empty_parts_change_nothing_and_statistics_need_enough_values() {
        let mut moments = Moments::of(&[2.0]);
        moments.merge(&Moments::default());
        assert_eq!(moments, Moments::of(&[2.0]));
        assert_eq!(moments.variance(), None);
        let pair = Moments::of(&[1.0, 3.0]);
        assert_eq!(pair.variance(), Some(2.0));
        assert_eq!(pair.skewness(), Some(0.0));
    }

    #[test]
    fn corrupt_moments_are_refused() {
        let mut out = Vec::new();
        Moments {
            count: 3,
            mean: 1.0,
            m2: -1.0,
            m3: 0.0,
        }
        .write(&mut out);
        assert!(Moments::read(&mut Reader::new(&out)).is_err());
    }
}
