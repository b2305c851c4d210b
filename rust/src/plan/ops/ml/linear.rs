//! LinearClassifier and LinearRegressor: scores = X · coefficientsᵀ + intercepts.
//!
//! Float32 scores are computed the way onnxruntime's GEMM (MLAS, with FMA) computes them: for
//! each score, a float32 fused multiply-add over the features in order from zero, then the
//! intercept added in float32. That reproduces onnxruntime to the bit (checked on random models
//! against onnxruntime 1.32 on AVX2/AVX-512), where an exact dot product rounded once agrees on
//! only about half the scores; a one-ulp difference is enough to move a label on a tie or a
//! PROBIT near 0 or 1. Labels and post-transforms then work on those float32 scores.

use std::sync::Arc;

use super::super::Kernel;
use super::{Attrs, NodeName};
use crate::error::Result;
use crate::plan::ops::post_transform::{logistic, probit, PostTransform};
use crate::plan::tensor::{Data, Strings, Tensor};

/// The model's coefficients, transposed to [features, targets] and widened once to f64.
#[derive(Debug)]
struct Weights {
    transposed: Vec<f64>,
    intercepts: Vec<f32>,
    targets: usize,
    features: usize,
}

/// Rows scored together. Every (row, target) score is its own accumulation chain, so a block
/// keeps LANES × targets independent chains in flight instead of waiting on each add, and the
/// innermost loop runs over rows, contiguous in the transposed block, which vectorises.
const LANES: usize = 16;

impl Weights {
    /// `coefficients` are row-major [targets, features], targets = `intercepts.len()`.
    fn new(attrs: &Attrs, coefficients: &[f32], intercepts: Vec<f32>) -> Result<Self> {
        let targets = intercepts.len();
        if targets == 0 || !coefficients.len().is_multiple_of(targets) {
            return Err(attrs.error(format_args!(
                "{} coefficients do not divide into {targets} targets",
                coefficients.len()
            )));
        }
        let features = coefficients.len() / targets;
        let mut transposed = vec![0.0; coefficients.len()];
        for (i, &w) in coefficients.iter().enumerate() {
            transposed[(i % features) * targets + i / features] = f64::from(w);
        }
        Ok(Self {
            transposed,
            intercepts,
            targets,
            features,
        })
    }

    fn check(&self, node: &NodeName, features: usize) -> Result<()> {
        if features != self.features {
            return Err(node.error(format_args!(
                "input has {features} features, the coefficients {}",
                self.features
            )));
        }
        Ok(())
    }

    /// Row-major [rows, targets] scores of input converted to float32 by `widen` (to f64, in
    /// which float32 values are exact), as onnxruntime computes them.
    fn scores_f32<X: Copy>(&self, x: &[X], rows: usize, widen: impl Fn(X) -> f64) -> Vec<f32> {
        self.scores::<X, true>(x, rows, widen)
    }

    /// Scores of float64 or int64 input (which onnxruntime's LinearRegressor does not take):
    /// exact dot products rounded once to float32.
    fn scores_f64<X: Copy>(&self, x: &[X], rows: usize, widen: impl Fn(X) -> f64) -> Vec<f32> {
        self.scores::<X, false>(x, rows, widen)
    }

    /// With `FMA32`, each step is a float32 fused multiply-add: the product of two float32
    /// values is exact in f64, so only the sum rounds (twice, f64 then f32, which differs from
    /// one rounding only when the f64 sum lands on a float32 tie); the intercept is added last,
    /// in float32. Without, the sum stays in f64 and rounds once.
    fn scores<X: Copy, const FMA32: bool>(
        &self,
        x: &[X],
        rows: usize,
        widen: impl Fn(X) -> f64,
    ) -> Vec<f32> {
        let (targets, features) = (self.targets, self.features);
        let mut scores = vec![0.0f32; rows * targets];
        // The block of rows transposed: block[k][lane] is feature k of row `start + lane`.
        let mut block = vec![[0.0f64; LANES]; features];
        let mut acc = vec![[0.0f64; LANES]; targets];
        for start in (0..rows).step_by(LANES) {
            let lanes = LANES.min(rows - start);
            for (lane, row) in x[start * features..(start + lanes) * features]
                .chunks_exact(features.max(1))
                .enumerate()
            {
                for (column, &value) in block.iter_mut().zip(row) {
                    column[lane] = widen(value);
                }
            }
            acc.iter_mut().for_each(|a| *a = [0.0; LANES]);
            for (column, weights) in block.iter().zip(self.transposed.chunks_exact(targets)) {
                for (a, &w) in acc.iter_mut().zip(weights) {
                    for (a, &x) in a.iter_mut().zip(column) {
                        *a += x * w;
                        if FMA32 {
                            *a = f64::from(*a as f32);
                        }
                    }
                }
            }
            for lane in 0..lanes {
                let out = &mut scores[(start + lane) * targets..(start + lane + 1) * targets];
                for ((score, a), &intercept) in out.iter_mut().zip(&acc).zip(&self.intercepts) {
                    *score = if FMA32 {
                        a[lane] as f32 + intercept
                    } else {
                        (a[lane] + f64::from(intercept)) as f32
                    };
                }
            }
        }
        scores
    }
}

#[derive(Debug)]
enum Labels {
    Ints(Vec<i64>),
    Strings(Arc<Vec<String>>),
}

impl Labels {
    fn gather(&self, rows: usize, picks: Vec<u32>) -> Tensor {
        let data = match self {
            Labels::Ints(labels) => Data::I64(picks.iter().map(|&p| labels[p as usize]).collect()),
            Labels::Strings(table) => Data::Str(Strings {
                table: table.clone(),
                codes: picks,
            }),
        };
        Tensor::new(vec![rows], data)
    }
}

/// LinearClassifier, as onnxruntime 1.32 runs it:
/// - several classes (one intercept each): label = class of the largest raw score (the first
///   on ties), scores [N, C] after post_transform;
/// - one class with two labels: label = labels[1] where the raw score s > 0, else labels[0];
///   scores [N, 2] = [1 - p, p] with p = logistic(s) for LOGISTIC, else p = s;
/// - one class and no labels: label 1 / 0 by s > 0; scores [N, 1], PROBIT applied, any other
///   post_transform not.
///
/// The ONNX Python reference gives [-s, s] in the binary case; onnxruntime is followed here.
#[derive(Debug)]
pub(super) struct LinearClassifier {
    node: NodeName,
    weights: Weights,
    post_transform: PostTransform,
    /// For one class: [negative, positive].
    labels: Labels,
    /// One class, and two labels: scores get the complementary column.
    two_columns: bool,
}

impl LinearClassifier {
    pub fn new(attrs: &Attrs) -> Result<Self> {
        let node = NodeName::of(attrs);
        let coefficients = attrs.floats("coefficients");
        let intercepts = attrs.floats("intercepts");
        if coefficients.is_empty() || intercepts.is_empty() {
            // onnxruntime takes the class count from the intercepts.
            return Err(attrs.error("needs coefficients and intercepts"));
        }
        let targets = intercepts.len();
        let ints = attrs.ints("classlabels_ints");
        let strings = attrs.strings("classlabels_strings");
        let given = ints.len().max(strings.len());
        if !ints.is_empty() && !strings.is_empty() {
            return Err(attrs.error("has both classlabels_ints and classlabels_strings"));
        }
        let post_transform = PostTransform::from_attrs(attrs)?;
        let weights = Weights::new(attrs, &coefficients, intercepts)?;
        let labels = if targets == 1 {
            if given != 0 && given != 2 {
                return Err(attrs.error(format_args!(
                    "one score column needs 2 class labels (or none), got {given}"
                )));
            }
            if given == 2 && post_transform == PostTransform::Probit {
                // onnxruntime fills half the two score columns with uninitialised memory here.
                return Err(attrs.unsupported("PROBIT with one score column and two labels"));
            }
            match (ints.is_empty(), strings.is_empty()) {
                (false, _) => Labels::Ints(ints),
                (_, false) => Labels::Strings(Arc::new(strings)),
                _ => Labels::Ints(vec![0, 1]),
            }
        } else {
            // onnxruntime accepts extra labels (they are never picked), not missing ones.
            if given < targets {
                return Err(attrs.error(format_args!(
                    "{targets} classes (intercepts) but {given} class labels"
                )));
            }
            if strings.is_empty() {
                Labels::Ints(ints)
            } else {
                Labels::Strings(Arc::new(strings))
            }
        };
        Ok(Self {
            node,
            weights,
            post_transform,
            labels,
            two_columns: targets == 1 && given == 2,
        })
    }
}

impl Kernel for LinearClassifier {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = self.node.inputs(inputs)?;
        let (rows, features) = self.node.matrix(x)?;
        self.weights.check(&self.node, features)?;
        // onnxruntime converts other input types to float32 first.
        let mut scores = match &x.data {
            Data::F32(v) => self.weights.scores_f32(v, rows, f64::from),
            Data::F64(v) => self.weights.scores_f32(v, rows, |x| f64::from(x as f32)),
            Data::I64(v) => self.weights.scores_f32(v, rows, |x| f64::from(x as f32)),
            _ => return Err(self.node.wrong_type(x, "float32, float64 or int64")),
        };
        let targets = self.weights.targets;
        if targets == 1 {
            let picks = scores.iter().map(|&s| u32::from(s > 0.0)).collect();
            let labels = self.labels.gather(rows, picks);
            let scores = if self.two_columns {
                let mut both = Vec::with_capacity(2 * rows);
                for &s in &scores {
                    let p = match self.post_transform {
                        PostTransform::Logistic => logistic(s),
                        _ => s,
                    };
                    both.extend([1.0 - p, p]);
                }
                Tensor::f32(vec![rows, 2], both)
            } else {
                if self.post_transform == PostTransform::Probit {
                    scores.iter_mut().for_each(|s| *s = probit(*s));
                }
                Tensor::f32(vec![rows, 1], scores)
            };
            return Ok(vec![labels, scores]);
        }
        let mut picks = Vec::with_capacity(rows);
        for row in scores.chunks_exact_mut(targets) {
            // Strictly greater, from the first: ties and NaN keep the earlier class.
            let (mut best, mut max) = (0, row[0]);
            for (class, &s) in row.iter().enumerate().skip(1) {
                if s > max {
                    (best, max) = (class, s);
                }
            }
            picks.push(best as u32);
            self.post_transform.apply(row);
        }
        Ok(vec![
            self.labels.gather(rows, picks),
            Tensor::f32(vec![rows, targets], scores),
        ])
    }
}

/// LinearRegressor: [N, targets] float32. As in onnxruntime, a single target only honours
/// PROBIT; with several, every post_transform applies across a row.
#[derive(Debug)]
pub(super) struct LinearRegressor {
    node: NodeName,
    weights: Weights,
    post_transform: PostTransform,
}

impl LinearRegressor {
    pub fn new(attrs: &Attrs) -> Result<Self> {
        let targets = attrs.int("targets", 1);
        let targets = usize::try_from(targets)
            .ok()
            .filter(|&t| t > 0)
            .ok_or_else(|| attrs.error(format_args!("targets is {targets}")))?;
        let mut intercepts = attrs.floats("intercepts");
        if intercepts.is_empty() {
            intercepts = vec![0.0; targets];
        } else if intercepts.len() != targets {
            // onnxruntime silently drops intercepts of the wrong length.
            return Err(attrs.error(format_args!(
                "{} intercepts for {targets} targets",
                intercepts.len()
            )));
        }
        Ok(Self {
            node: NodeName::of(attrs),
            weights: Weights::new(attrs, &attrs.floats("coefficients"), intercepts)?,
            post_transform: PostTransform::from_attrs(attrs)?,
        })
    }
}

impl Kernel for LinearRegressor {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = self.node.inputs(inputs)?;
        let (rows, features) = self.node.matrix(x)?;
        self.weights.check(&self.node, features)?;
        // onnxruntime has only a float32 kernel; float64 and int64 (allowed by the spec) are
        // used exactly here.
        let mut scores = match &x.data {
            Data::F32(v) => self.weights.scores_f32(v, rows, f64::from),
            Data::F64(v) => self.weights.scores_f64(v, rows, |x| x),
            Data::I64(v) => self.weights.scores_f64(v, rows, |x| x as f64),
            _ => return Err(self.node.wrong_type(x, "float32, float64 or int64")),
        };
        let targets = self.weights.targets;
        if targets > 1 || self.post_transform == PostTransform::Probit {
            for row in scores.chunks_exact_mut(targets) {
                self.post_transform.apply(row);
            }
        }
        Ok(vec![Tensor::f32(vec![rows, targets], scores)])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::error::Error;
    use crate::plan::tensor::Tensor;

    /// Three rows whose binary score s = 0.5 x0 - 0.25 x1 + 0.1 is [0.1, -0.525, 0.1].
    fn x() -> Tensor {
        Tensor::f32(vec![3, 2], vec![1.0, 2.0, -1.0, 0.5, 0.0, 0.0])
    }

    fn binary(post_transform: &str, labels: Option<&[i64]>) -> crate::error::Result<Vec<Tensor>> {
        let mut attrs = vec![
            floats("coefficients", &[0.5, -0.25]),
            floats("intercepts", &[0.1]),
            string("post_transform", post_transform),
        ];
        if let Some(labels) = labels {
            attrs.push(ints("classlabels_ints", labels));
        }
        run1("LinearClassifier", 1, attrs, x())
    }

    fn assert_close(actual: &Tensor, shape: &[usize], expected: &[f32]) {
        assert_eq!(actual.shape, shape);
        let actual = actual.as_f32().unwrap();
        let close = actual.len() == expected.len()
            && actual
                .iter()
                .zip(expected)
                .all(|(a, e)| (a - e).abs() <= 1e-6 || (a.is_nan() && e.is_nan()));
        assert!(close, "{actual:?} != {expected:?}");
    }

    // Expected values below are onnxruntime 1.32's outputs for the same nodes.

    #[test]
    fn binary_with_two_labels_adds_the_complement() {
        let y = binary("NONE", Some(&[3, 7])).unwrap();
        assert_eq!(y[0], Tensor::i64(vec![3], vec![7, 3, 7]));
        assert_close(&y[1], &[3, 2], &[0.9, 0.1, 1.525, -0.525, 0.9, 0.1]);

        let y = binary("LOGISTIC", Some(&[3, 7])).unwrap();
        assert_eq!(y[0], Tensor::i64(vec![3], vec![7, 3, 7]));
        let (p, q) = (0.524_979_2, 0.371_683_84);
        assert_close(&y[1], &[3, 2], &[1.0 - p, p, 1.0 - q, q, 1.0 - p, p]);

        // SOFTMAX is not applied to the single score, as in onnxruntime.
        let y = binary("SOFTMAX", Some(&[3, 7])).unwrap();
        assert_close(&y[1], &[3, 2], &[0.9, 0.1, 1.525, -0.525, 0.9, 0.1]);

        let probit = binary("PROBIT", Some(&[3, 7]));
        assert!(matches!(probit, Err(Error::Unsupported(_))));
    }

    #[test]
    fn binary_labels_use_the_raw_score_sign() {
        let attrs = vec![
            floats("coefficients", &[0.5, -0.25]),
            floats("intercepts", &[0.0]),
            strings("classlabels_strings", &["no", "yes"]),
            string("post_transform", "LOGISTIC"),
        ];
        let x = Tensor::f32(vec![3, 2], vec![0.0, 0.0, 1.0, 0.0, f32::NAN, 0.0]);
        let y = run1("LinearClassifier", 1, attrs, x).unwrap();
        assert_eq!(texts(&y[0]), ["no", "yes", "no"]);
        assert_close(
            &y[1],
            &[3, 2],
            &[0.5, 0.5, 0.377_540_67, 0.622_459_3, f32::NAN, f32::NAN],
        );
    }

    #[test]
    fn binary_without_labels_keeps_one_column() {
        let y = binary("LOGISTIC", None).unwrap();
        assert_eq!(y[0], Tensor::i64(vec![3], vec![1, 0, 1]));
        assert_close(&y[1], &[3, 1], &[0.1, -0.525, 0.1]);
        let y = binary("PROBIT", None).unwrap();
        assert_close(&y[1], &[3, 1], &[-1.281_712_9, f32::NAN, -1.281_712_9]);
    }

    fn multiclass(post_transform: &str) -> Vec<Tensor> {
        let attrs = vec![
            floats("coefficients", &[0.5, -0.25, 0.0, 0.0, 1.0, 1.0]),
            floats("intercepts", &[0.1, 0.0, -0.2]),
            ints("classlabels_ints", &[1, 2, 3]),
            string("post_transform", post_transform),
        ];
        run1("LinearClassifier", 1, attrs, x()).unwrap()
    }

    #[test]
    fn multiclass_labels_and_transforms() {
        let y = multiclass("NONE");
        assert_eq!(y[0], Tensor::i64(vec![3], vec![3, 2, 1]));
        assert_close(
            &y[1],
            &[3, 3],
            &[0.1, 0.0, 2.8, -0.525, 0.0, -0.7, 0.1, 0.0, -0.2],
        );
        let y = multiclass("SOFTMAX");
        assert_eq!(y[0], Tensor::i64(vec![3], vec![3, 2, 1]));
        let expected = [
            0.059_578_53,
            0.053_908_89,
            0.886_512_64,
            0.283_292_86,
            0.478_894_92,
            0.237_812_19,
            0.377_978_15,
            0.342_008_77,
            0.280_013_08,
        ];
        assert_close(&y[1], &[3, 3], &expected);
        let y = multiclass("SOFTMAX_ZERO");
        let expected = [
            0.062_973_35,
            0.0,
            0.937_026_6,
            0.543_638_65,
            0.0,
            0.456_361_3,
            0.574_442_5,
            0.0,
            0.425_557_46,
        ];
        assert_close(&y[1], &[3, 3], &expected);
    }

    #[test]
    fn multiclass_ties_pick_the_first_class() {
        let attrs = vec![
            floats("coefficients", &[1.0, 0.0, 0.0, 1.0]),
            floats("intercepts", &[0.0, 0.0]),
            strings("classlabels_strings", &["a", "b"]),
        ];
        let x = Tensor::f64(vec![2, 2], vec![1.0, 1.0, 0.0, 2.0]);
        let y = run1("LinearClassifier", 1, attrs, x).unwrap();
        assert_eq!(texts(&y[0]), ["a", "b"]);
    }

    #[test]
    fn classifier_inputs_are_rounded_to_float32_first() {
        // onnxruntime casts int64 input to float32: 16777217 scores 16777216.
        let attrs = vec![
            floats("coefficients", &[1.0, 0.0, 1.0, 1.0]),
            floats("intercepts", &[0.0, 0.5]),
            ints("classlabels_ints", &[0, 1]),
        ];
        let x = Tensor::i64(vec![1, 2], vec![16_777_217, 0]);
        let y = run1("LinearClassifier", 1, attrs, x).unwrap();
        assert_eq!(
            y[1],
            Tensor::f32(vec![1, 2], vec![16_777_216.0, 16_777_216.0])
        );
    }

    #[test]
    fn malformed_classifiers_are_errors() {
        let model = |attrs| matches!(kernel("LinearClassifier", 1, attrs), Err(Error::Model(_)));
        let coefficients = || floats("coefficients", &[1.0, 0.0, 0.0, 1.0]);
        assert!(model(vec![coefficients()]));
        assert!(model(vec![
            coefficients(),
            floats("intercepts", &[0.0, 0.0])
        ]));
        assert!(model(vec![
            coefficients(),
            floats("intercepts", &[0.0]),
            ints("classlabels_ints", &[4])
        ]));
        assert!(model(vec![
            coefficients(),
            floats("intercepts", &[0.0, 0.0]),
            ints("classlabels_ints", &[0, 1]),
            strings("classlabels_strings", &["a", "b"])
        ]));
        assert!(model(vec![
            coefficients(),
            floats("intercepts", &[0.0, 0.0]),
            ints("classlabels_ints", &[0, 1]),
            string("post_transform", "TANH")
        ]));

        let attrs = vec![
            coefficients(),
            floats("intercepts", &[0.0, 0.0]),
            ints("classlabels_ints", &[0, 1]),
        ];
        let three_features = Tensor::f32(vec![1, 3], vec![0.0; 3]);
        let err = run1("LinearClassifier", 1, attrs, three_features);
        assert!(message(err).contains("input has 3 features, the coefficients 2"));
        let attrs = vec![coefficients(), floats("intercepts", &[0.0, 0.0, 0.0])];
        assert!(
            message(kernel("LinearClassifier", 1, attrs).map(|_| vec![]))
                .contains("4 coefficients do not divide into 3 targets")
        );
    }

    fn regressor(targets: i64, coefficients: &[f32], post_transform: &str) -> Vec<Tensor> {
        let intercepts: Vec<f32> = [0.1, 0.2][..targets as usize].to_vec();
        let attrs = vec![
            int("targets", targets),
            floats("coefficients", coefficients),
            floats("intercepts", &intercepts),
            string("post_transform", post_transform),
        ];
        run1("LinearRegressor", 1, attrs, x()).unwrap()
    }

    #[test]
    fn regressor_targets_and_transforms() {
        let two = [0.5, -0.25, 0.1, 0.2];
        let y = regressor(2, &two, "NONE");
        assert_close(&y[0], &[3, 2], &[0.1, 0.7, -0.525, 0.2, 0.1, 0.2]);
        let y = regressor(2, &two, "LOGISTIC");
        let expected = [
            0.524_979_2,
            0.668_187_7,
            0.371_683_84,
            0.549_834,
            0.524_979_2,
            0.549_834,
        ];
        assert_close(&y[0], &[3, 2], &expected);
        // One target: LOGISTIC is not applied, PROBIT is (onnxruntime).
        let y = regressor(1, &[0.5, -0.25], "LOGISTIC");
        assert_close(&y[0], &[3, 1], &[0.1, -0.525, 0.1]);
        let y = regressor(1, &[0.5, -0.25], "PROBIT");
        assert_close(&y[0], &[3, 1], &[-1.281_712_9, f32::NAN, -1.281_712_9]);
    }

    #[test]
    fn regressor_takes_float64_exactly() {
        let attrs = vec![
            floats("coefficients", &[1.0, 1.0]),
            floats("intercepts", &[0.5]),
        ];
        let x = Tensor::f64(vec![1, 2], vec![16_777_216.0, 1.0]);
        let y = run1("LinearRegressor", 1, attrs, x).unwrap();
        // 16777217.5 rounds once to 16777218 (float32 steps are 2 there).
        assert_eq!(y, [Tensor::f32(vec![1, 1], vec![16_777_218.0])]);
        let no_features = vec![floats("intercepts", &[0.5])];
        let y = run1(
            "LinearRegressor",
            1,
            no_features,
            Tensor::f32(vec![2, 0], vec![]),
        );
        assert_eq!(y.unwrap(), [Tensor::f32(vec![2, 1], vec![0.5, 0.5])]);
    }

    #[test]
    fn regressor_errors() {
        let attrs = vec![
            floats("coefficients", &[1.0]),
            floats("intercepts", &[1.0, 2.0]),
        ];
        assert!(matches!(
            kernel("LinearRegressor", 1, attrs),
            Err(Error::Model(_))
        ));
        let attrs = vec![floats("coefficients", &[1.0]), int("targets", 0)];
        assert!(matches!(
            kernel("LinearRegressor", 1, attrs),
            Err(Error::Model(_))
        ));
        let one_d = run1(
            "LinearRegressor",
            1,
            vec![floats("coefficients", &[1.0, 2.0])],
            Tensor::f32(vec![2], vec![1.0, 2.0]),
        );
        assert!(matches!(one_d, Err(Error::Unsupported(_))));
        let strings = run1(
            "LinearRegressor",
            1,
            vec![floats("coefficients", &[1.0])],
            dictionary(vec![1, 1], &["a"], &[0]),
        );
        assert!(message(strings).contains("input is string"));
    }
}
