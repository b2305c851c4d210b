//! The `post_transform` that ai.onnx.ml classifiers and regressors apply to a row of scores.
//!
//! The functions are onnxruntime's (`ml_common.h`), in float32 and in the same order, so that
//! results match it to the bit where it uses them: PROBIT with its closed-form approximation of
//! the inverse error function (Winitzki, a = 0.147; up to ~5e-5 from the exact probit), and
//! SOFTMAX_ZERO leaving near-zero scores out of the sum. For LOGISTIC on several scores and
//! SOFTMAX on more than four, onnxruntime uses MLAS approximations within a few ulp of these.
//!
//! Models' one-score (binary) conventions differ by operator, so callers handle those;
//! [`PostTransform::apply`] is the transform of a row of two or more scores.

use super::super::Attrs;
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    /// The node's `post_transform` attribute (default NONE).
    pub(crate) fn from_attrs(attrs: &Attrs) -> Result<Self> {
        match attrs.string("post_transform", "NONE").as_str() {
            "NONE" => Ok(Self::None),
            "LOGISTIC" => Ok(Self::Logistic),
            "SOFTMAX" => Ok(Self::Softmax),
            "SOFTMAX_ZERO" => Ok(Self::SoftmaxZero),
            "PROBIT" => Ok(Self::Probit),
            other => Err(attrs.error(format_args!(
                "post_transform '{other}' is not one of NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO, \
                 PROBIT"
            ))),
        }
    }

    /// Transform one row of scores in place.
    pub(crate) fn apply(self, row: &mut [f32]) {
        match self {
            Self::None => {}
            Self::Logistic => row.iter_mut().for_each(|s| *s = logistic(*s)),
            Self::Softmax => softmax(row),
            Self::SoftmaxZero => softmax_zero(row),
            Self::Probit => row.iter_mut().for_each(|s| *s = probit(*s)),
        }
    }
}

/// 1 / (1 + e^-x), in float32 as onnxruntime's `ComputeLogistic` (its binary and tree paths)
/// evaluates it, so those results match to the bit; its multi-class path uses an MLAS
/// approximation that is within a few ulp of this.
pub(crate) fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// e^(x - max) / sum, in float32 in onnxruntime's order (its `ComputeSoftmax`, which it uses
/// for rows of up to 4 scores; wider rows go through MLAS, within an ulp or two of this). The
/// maximum skips NaN.
pub(crate) fn softmax(row: &mut [f32]) {
    let max = row_max(row);
    let mut sum = 0.0f32;
    for s in row.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in row.iter_mut() {
        *s /= sum;
    }
}

/// Softmax over the scores that are not (within 1e-7 of) zero; a zero score stays zero and does
/// not count in the sum. float32, in onnxruntime's order. A row of zeros divides zero by zero,
/// giving NaN as in onnxruntime (the ONNX Python reference returns 0.5 there instead).
pub(crate) fn softmax_zero(row: &mut [f32]) {
    const ZERO: f32 = 1e-7;
    let max = row_max(row);
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0f32;
    for s in row.iter_mut() {
        if *s > ZERO || *s < -ZERO {
            *s = (*s - max).exp();
            sum += *s;
        } else {
            *s *= exp_neg_max;
        }
    }
    for s in row.iter_mut() {
        *s /= sum;
    }
}

/// The largest score, starting from -f32::MAX and skipping NaN, as onnxruntime's loop does.
fn row_max(row: &[f32]) -> f32 {
    row.iter()
        .fold(-f32::MAX, |max, &s| if s > max { s } else { max })
}

/// sqrt(2) * erfinv(2x - 1), with onnxruntime's float32 approximation of erfinv, evaluated in
/// the same order so that results match it to the last bit or so.
pub(crate) fn probit(x: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

fn erf_inv(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sign * v3.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-6)
    }

    #[test]
    fn logistic_matches_onnxruntime() {
        // Values from onnxruntime 1.32 (LinearClassifier, LOGISTIC).
        assert_eq!(logistic(0.1), 0.524_979_2);
        assert_eq!(logistic(-0.525), 0.371_683_84);
        assert_eq!(logistic(0.0), 0.5);
        assert_eq!(logistic(-200.0), 0.0);
        assert_eq!(logistic(200.0), 1.0);
        assert!(logistic(f32::NAN).is_nan());
    }

    #[test]
    fn softmax_matches_onnxruntime() {
        let mut row = [0.1, 0.0, 2.8];
        softmax(&mut row);
        assert!(close(&row, &[0.059_578_53, 0.053_908_89, 0.886_512_64]));
        let mut big = [1000.0, 1000.0];
        softmax(&mut big);
        assert_eq!(big, [0.5, 0.5]);
    }

    #[test]
    fn softmax_zero_skips_zero_scores() {
        let mut row = [0.1, 0.0, 2.8];
        softmax_zero(&mut row);
        assert!(close(&row, &[0.062_973_35, 0.0, 0.937_026_6]));
        let mut zeros = [0.0, 0.0];
        softmax_zero(&mut zeros);
        assert!(zeros.iter().all(|s| s.is_nan()));
    }

    #[test]
    fn probit_uses_onnxruntimes_approximation() {
        // onnxruntime 1.32 (LinearRegressor, PROBIT); the exact probit(0.3) is -0.5244005.
        for (x, expected) in [
            (0.3, -0.524_445_9),
            (0.5, 0.0),
            (0.9, 1.281_712_9),
            (0.999, 3.084_643_6),
        ] {
            assert!(
                (probit(x) - expected).abs() <= 1e-6,
                "probit({x}) = {}",
                probit(x)
            );
        }
        assert!(probit(1.1).is_nan());
        assert_eq!(probit(0.0), f32::NEG_INFINITY);
    }

    #[test]
    fn apply_dispatches() {
        let mut row = [0.1, -0.525];
        PostTransform::Logistic.apply(&mut row);
        assert_eq!(row, [0.524_979_2, 0.371_683_84]);
        let mut row = [0.3, 0.7];
        PostTransform::None.apply(&mut row);
        assert_eq!(row, [0.3, 0.7]);
    }
}
