//! `post_transform`: the function applied to a row of aggregated scores, in f64.
//!
//! The formulas are onnxruntime's (`ml_common.h`), which the ONNX reference implementation
//! shares: PROBIT is sqrt(2)·erfinv(2x − 1) with Winitzki's closed-form erfinv (a = 0.147), not
//! the exact inverse normal CDF, and SOFTMAX_ZERO leaves near-zero scores out of the sum.
//! onnxruntime evaluates them in float32. LOGISTIC and the softmaxes are evaluated here in f64
//! and rounded once at the output, within about an ulp of it; PROBIT is evaluated in float32 in
//! onnxruntime's order, because the approximation is steep near 0 and 1 and an f64 evaluation
//! strays from onnxruntime's by up to 1e-4 there.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    /// The legacy operators' string attribute.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "NONE" => Self::None,
            "LOGISTIC" => Self::Logistic,
            "SOFTMAX" => Self::Softmax,
            "SOFTMAX_ZERO" => Self::SoftmaxZero,
            "PROBIT" => Self::Probit,
            _ => return None,
        })
    }

    /// Opset 5's integer attribute, numbered as the ONNX spec numbers it: 1 is SOFTMAX and 2 is
    /// LOGISTIC. (onnxruntime 1.32 swaps those two: it maps the integer onto its own enum.)
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::None,
            1 => Self::Softmax,
            2 => Self::Logistic,
            3 => Self::SoftmaxZero,
            4 => Self::Probit,
            _ => return None,
        })
    }

    /// Transform a row of scores in place.
    pub fn apply(self, row: &mut [f64]) {
        match self {
            Self::None => {}
            Self::Logistic => row.iter_mut().for_each(|s| *s = logistic(*s)),
            Self::Softmax => softmax(row),
            Self::SoftmaxZero => softmax_zero(row),
            Self::Probit => row.iter_mut().for_each(|s| *s = probit(*s)),
        }
    }
}

/// 1 / (1 + e^−x), from the side where the exponential cannot overflow.
pub fn logistic(x: f64) -> f64 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// The largest score, starting from −MAX so that NaN is skipped, as onnxruntime's loop does.
fn row_max(row: &[f64]) -> f64 {
    row.iter()
        .fold(-f64::MAX, |max, &s| if s > max { s } else { max })
}

fn softmax(row: &mut [f64]) {
    let max = row_max(row);
    let mut sum = 0.0;
    for s in row.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    row.iter_mut().for_each(|s| *s /= sum);
}

/// Softmax over the scores that are not within 1e-7 of zero; those stay (nearly) zero and do
/// not count in the sum. All-zero rows divide 0 by 0 (NaN), as in onnxruntime.
fn softmax_zero(row: &mut [f64]) {
    const ZERO: f64 = 1e-7;
    let max = row_max(row);
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0;
    for s in row.iter_mut() {
        if *s > ZERO || *s < -ZERO {
            *s = (*s - max).exp();
            sum += *s;
        } else {
            *s *= exp_neg_max;
        }
    }
    row.iter_mut().for_each(|s| *s /= sum);
}

pub fn probit(x: f64) -> f64 {
    f64::from(std::f32::consts::SQRT_2 * erf_inv(2.0 * x as f32 - 1.0))
}

/// Winitzki's approximation of erfinv, in onnxruntime's float32 order.
fn erf_inv(x: f32) -> f32 {
    const A: f32 = 0.147;
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * A) + 0.5 * log;
    let v2 = 1.0 / A * log;
    sign * (-v + (v * v - v2).sqrt()).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64], tolerance: f64) -> bool {
        let near = |(x, y): (&f64, &f64)| x == y || (x - y).abs() <= tolerance;
        a.len() == b.len() && a.iter().zip(b).all(near)
    }

    #[test]
    fn transforms_match_onnxruntime() {
        // onnxruntime 1.32 on a two-target TreeEnsembleRegressor reaching [0.3, 0.0].
        let cases = [
            (PostTransform::Logistic, [0.574_442_5, 0.5]),
            (PostTransform::Softmax, [0.574_442_5, 0.425_557_46]),
            (PostTransform::SoftmaxZero, [1.0, 0.0]),
            (PostTransform::Probit, [-0.524_445_9, f64::NEG_INFINITY]),
        ];
        for (transform, expected) in cases {
            let mut row = [0.3, 0.0];
            transform.apply(&mut row);
            assert!(close(&row, &expected, 1e-6), "{transform:?}: {row:?}");
        }
    }

    #[test]
    fn logistic_is_symmetric_and_stable() {
        assert_eq!(logistic(0.0), 0.5);
        assert!((logistic(-2.0) + logistic(2.0) - 1.0).abs() < 1e-16);
        assert_eq!(logistic(-1000.0), 0.0);
        assert_eq!(logistic(1000.0), 1.0);
    }

    #[test]
    fn softmax_skips_nan_in_the_maximum_and_softmax_zero_of_zeros_is_nan() {
        let mut row = [f64::NAN, 1.0];
        softmax(&mut row);
        assert!(row[0].is_nan() && row[1].is_nan());
        let mut row = [0.0, 0.0];
        softmax_zero(&mut row);
        assert!(row.iter().all(|s| s.is_nan()));
        let mut row = [2.0, 0.0, 1.0];
        softmax_zero(&mut row);
        let e = (-1.0f64).exp();
        assert!(close(&row, &[1.0 / (1.0 + e), 0.0, e / (1.0 + e)], 1e-15));
    }

    #[test]
    fn codes_follow_the_spec() {
        assert_eq!(PostTransform::from_code(1), Some(PostTransform::Softmax));
        assert_eq!(PostTransform::from_code(2), Some(PostTransform::Logistic));
        assert_eq!(PostTransform::from_code(5), None);
        assert_eq!(
            PostTransform::from_name("PROBIT"),
            Some(PostTransform::Probit)
        );
        assert_eq!(PostTransform::from_name("probit"), None);
    }
}
