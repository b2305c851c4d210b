//! The `post_transform` that ai.onnx.ml classifiers and regressors apply to a row of scores,
//! for float32 scores (the legacy operators) and f64 scores (opset-5 TreeEnsemble on double
//! inputs).
//!
//! The formulas are onnxruntime's (`ml_common.h`), which the ONNX reference shares, in the same
//! order so that float32 results match it to the bit where it uses them: PROBIT is
//! sqrt(2)·erfinv(2x − 1) with Winitzki's closed-form erfinv (a = 0.147; up to ~5e-5 from the
//! exact probit), evaluated in float32 for both score types because the approximation is steep
//! near 0 and 1; SOFTMAX_ZERO leaves near-zero scores out of the sum. For LOGISTIC on several
//! scores and SOFTMAX on more than four, onnxruntime uses MLAS approximations within a few ulp.
//!
//! Models' one-score (binary) conventions differ by operator, so callers handle those;
//! [`PostTransform::apply`] is the transform of a row of two or more scores.

use std::ops::{Add, AddAssign, Div, DivAssign, MulAssign, Neg, Sub};

use super::Attrs;
use crate::error::Result;

/// A score type: f32 or f64.
pub(crate) trait Score:
    Copy
    + PartialOrd
    + Neg<Output = Self>
    + Add<Output = Self>
    + Sub<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + MulAssign
    + DivAssign
{
    const ZERO: Self;
    const ONE: Self;
    /// Where the row maximum starts, so that NaN scores are skipped as onnxruntime skips them.
    const LOWEST: Self;
    /// SOFTMAX_ZERO's threshold for a zero score.
    const NEAR_ZERO: Self;
    fn exp(self) -> Self;
    fn abs(self) -> Self;
    fn to_f32(self) -> f32;
    fn from_f32(x: f32) -> Self;
}

impl Score for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const LOWEST: Self = -f32::MAX;
    const NEAR_ZERO: Self = 1e-7;
    fn exp(self) -> Self {
        self.exp()
    }
    fn abs(self) -> Self {
        self.abs()
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(x: f32) -> Self {
        x
    }
}

impl Score for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const LOWEST: Self = -f64::MAX;
    const NEAR_ZERO: Self = 1e-7;
    fn exp(self) -> Self {
        self.exp()
    }
    fn abs(self) -> Self {
        self.abs()
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn from_f32(x: f32) -> Self {
        f64::from(x)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    /// The legacy operators' string attribute.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "NONE" => Self::None,
            "LOGISTIC" => Self::Logistic,
            "SOFTMAX" => Self::Softmax,
            "SOFTMAX_ZERO" => Self::SoftmaxZero,
            "PROBIT" => Self::Probit,
            _ => return None,
        })
    }

    /// The node's `post_transform` attribute (default NONE).
    pub(crate) fn from_attrs(attrs: &Attrs) -> Result<Self> {
        let name = attrs.string("post_transform", "NONE");
        Self::from_name(&name).ok_or_else(|| {
            attrs.error(format_args!(
                "post_transform '{name}' is not one of NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO, \
                 PROBIT"
            ))
        })
    }

    /// Opset 5's integer attribute, numbered as the ONNX spec numbers it: 1 is SOFTMAX and 2 is
    /// LOGISTIC. (onnxruntime 1.32 swaps those two: it maps the integer onto its own enum.)
    pub(crate) fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::None,
            1 => Self::Softmax,
            2 => Self::Logistic,
            3 => Self::SoftmaxZero,
            4 => Self::Probit,
            _ => return None,
        })
    }

    /// Transform one row of scores in place.
    pub(crate) fn apply<T: Score>(self, row: &mut [T]) {
        match self {
            Self::None => {}
            Self::Logistic => row.iter_mut().for_each(|s| *s = logistic(*s)),
            Self::Softmax => softmax(row),
            Self::SoftmaxZero => softmax_zero(row),
            Self::Probit => row.iter_mut().for_each(|s| *s = probit(*s)),
        }
    }
}

/// 1 / (1 + e^−x), from the side where the exponential cannot overflow, as onnxruntime's
/// `ComputeLogistic` evaluates it.
pub(crate) fn logistic<T: Score>(x: T) -> T {
    let v = T::ONE / (T::ONE + (-x.abs()).exp());
    if x < T::ZERO {
        T::ONE - v
    } else {
        v
    }
}

/// The largest score, starting from −MAX so that NaN is skipped, as onnxruntime's loop does.
fn row_max<T: Score>(row: &[T]) -> T {
    row.iter()
        .fold(T::LOWEST, |max, &s| if s > max { s } else { max })
}

/// e^(x − max) / sum, in onnxruntime's order (its `ComputeSoftmax`).
fn softmax<T: Score>(row: &mut [T]) {
    let max = row_max(row);
    let mut sum = T::ZERO;
    for s in row.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    row.iter_mut().for_each(|s| *s /= sum);
}

/// Softmax over the scores that are not within 1e-7 of zero; those stay (nearly) zero and do
/// not count in the sum. A row of zeros divides 0 by 0, giving NaN as in onnxruntime (the ONNX
/// Python reference returns 0.5 there instead).
fn softmax_zero<T: Score>(row: &mut [T]) {
    let max = row_max(row);
    let exp_neg_max = (-max).exp();
    let mut sum = T::ZERO;
    for s in row.iter_mut() {
        if *s > T::NEAR_ZERO || *s < -T::NEAR_ZERO {
            *s = (*s - max).exp();
            sum += *s;
        } else {
            *s *= exp_neg_max;
        }
    }
    row.iter_mut().for_each(|s| *s /= sum);
}

/// sqrt(2)·erfinv(2x − 1) with onnxruntime's float32 approximation of erfinv, in its order.
pub(crate) fn probit<T: Score>(x: T) -> T {
    T::from_f32(std::f32::consts::SQRT_2 * erf_inv(2.0 * x.to_f32() - 1.0))
}

/// Winitzki's approximation of erfinv (a = 0.147), in onnxruntime's float32 order.
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

    fn close32(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-6)
    }

    #[test]
    fn logistic_matches_onnxruntime() {
        // Values from onnxruntime 1.32 (LinearClassifier, LOGISTIC), in float32.
        assert_eq!(logistic(0.1f32), 0.524_979_2);
        assert_eq!(logistic(-0.525f32), 0.371_683_84);
        assert_eq!(logistic(0.0f32), 0.5);
        assert_eq!(logistic(-200.0f32), 0.0);
        assert_eq!(logistic(200.0f32), 1.0);
        assert!(logistic(f32::NAN).is_nan());
    }

    #[test]
    fn softmax_matches_onnxruntime() {
        let mut row = [0.1, 0.0, 2.8];
        softmax(&mut row);
        assert!(close32(&row, &[0.059_578_53, 0.053_908_89, 0.886_512_64]));
        let mut big = [1000.0, 1000.0];
        softmax(&mut big);
        assert_eq!(big, [0.5, 0.5]);
    }

    #[test]
    fn softmax_zero_skips_zero_scores() {
        let mut row = [0.1, 0.0, 2.8];
        softmax_zero(&mut row);
        assert!(close32(&row, &[0.062_973_35, 0.0, 0.937_026_6]));
        let mut zeros = [0.0f32, 0.0];
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
        assert!(probit(1.1f32).is_nan());
        assert_eq!(probit(0.0), f32::NEG_INFINITY);
    }

    #[test]
    fn apply_dispatches() {
        let mut row = [0.1f32, -0.525];
        PostTransform::Logistic.apply(&mut row);
        assert_eq!(row, [0.524_979_2, 0.371_683_84]);
        let mut row = [0.3, 0.7];
        PostTransform::None.apply(&mut row);
        assert_eq!(row, [0.3, 0.7]);
    }

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
        let mut row = [0.0f64, 0.0];
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
