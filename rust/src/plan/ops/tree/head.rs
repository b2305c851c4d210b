//! From a row's aggregated scores to the operator's outputs: base values, post_transform and,
//! for TreeEnsembleClassifier, the label.
//!
//! The spec leaves most of this open; the rules are onnxruntime 1.32's
//! (`tree_ensemble_aggregator.h`, `ml_common.h`), checked by running it:
//! * a single-target model applies no post_transform but PROBIT;
//! * with several targets, a target no leaf reached is 0 before the transform, base value or not;
//! * a two-class classifier whose weights all name one class (scikit-learn's binary trees, GBDT
//!   margins) writes that column's score `x` as two: `[1 − x, x]` when all weights are positive,
//!   else `[−x, x]`, or `[σ(−x), σ(x)]` under LOGISTIC; its label is class 1 when `x` > 0.5 (all
//!   weights positive) or `x` > 0;
//! * a two-class classifier with weights for both classes is labelled by the sign of class 1's
//!   score (not by the larger score);
//! * with more classes the label is the first highest score among the classes reached.
//!
//! Combinations where onnxruntime writes memory it never set are refused when the kernel is
//! built (`Classification::check`).

use super::aggregate::Aggregate;
use crate::plan::ops::post_transform::{logistic, probit, PostTransform};

#[derive(Clone, Debug)]
pub struct Regression {
    pub aggregate: Aggregate,
    pub post: PostTransform,
    /// Empty or one per target.
    pub base: Vec<f64>,
    pub n_trees: usize,
}

impl Regression {
    /// `hits` says which targets a leaf reached.
    pub fn finish(&self, scores: &[f64], hits: &[bool], out: &mut [f64]) {
        let base = |t: usize| self.base.get(t).copied().unwrap_or(0.0);
        let value = |t: usize| match self.aggregate {
            Aggregate::Average => scores[t] / self.n_trees as f64,
            _ => scores[t],
        };
        if let [out] = out {
            // onnxruntime's one-target path: the base value is added even if no leaf gave a
            // weight, and only PROBIT is applied.
            let v = match self.aggregate {
                Aggregate::Min | Aggregate::Max if !hits[0] => base(0),
                _ => value(0) + base(0),
            };
            *out = if self.post == PostTransform::Probit {
                probit(v)
            } else {
                v
            };
            return;
        }
        for (t, out) in out.iter_mut().enumerate() {
            *out = if hits[t] { value(t) + base(t) } else { 0.0 };
        }
        self.post.apply(out);
    }
}

#[derive(Clone, Debug)]
pub struct Classification {
    pub post: PostTransform,
    /// Empty, or one per class (two classes also accept one).
    pub base: Vec<f64>,
    /// Two classes and every weight names the same one.
    pub binary: bool,
    /// No weight is negative.
    pub all_positive: bool,
}

/// How onnxruntime widens one column of scores into two.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Widen {
    /// `[1 − x, x]`
    Complement,
    /// `[−x, x]`
    Negate,
    /// Nothing: onnxruntime leaves the second column unwritten.
    Unset,
}

impl Classification {
    /// Why onnxruntime's result would be undefined for this model, if it would be: `class1`
    /// is whether every row reaches a weight for class 1, `n_classes` the class count.
    pub fn check(&self, n_classes: usize, class1_always: bool) -> Result<(), String> {
        if n_classes != 2 {
            return match self.base.len() {
                0 => Ok(()),
                n if n == n_classes => Ok(()),
                n => Err(format!("{n} base values for {n_classes} classes")),
            };
        }
        if self.base.len() > 2 {
            return Err(format!("{} base values for 2 classes", self.base.len()));
        }
        // One column of scores happens when some row reaches no weight for class 1.
        if !class1_always && self.base.len() != 2 {
            if self.post == PostTransform::Probit {
                return Err("PROBIT on a one-column two-class model".into());
            }
            if !self.binary && self.base.len() == 1 {
                return Err(
                    "one base value on a two-class model whose rows may reach no \
                            class-1 weight"
                        .into(),
                );
            }
        }
        Ok(())
    }

    /// Scores and label index of one row. `scores` and `hits` are the row's, which this
    /// updates (onnxruntime adds base values into them).
    pub fn finish(&self, scores: &mut [f64], hits: &mut [bool], out: &mut [f64]) -> usize {
        if let ([s0, s1], [h0, h1]) = (&mut *scores, &*hits) {
            return self.finish_two(*s0, *s1, *h0, *h1, out);
        }
        for (k, &base) in self.base.iter().enumerate() {
            if hits[k] {
                scores[k] += base;
            } else {
                scores[k] = base;
                hits[k] = true;
            }
        }
        let mut label = None;
        for k in 0..scores.len() {
            if hits[k] && label.is_none_or(|l: usize| scores[k] > scores[l]) {
                label = Some(k);
            }
        }
        for (k, out) in out.iter_mut().enumerate() {
            *out = if hits[k] { scores[k] } else { 0.0 };
        }
        self.post.apply(out);
        // No class reached and no base values: onnxruntime reads before its label list.
        label.unwrap_or(0)
    }

    fn finish_two(&self, mut s0: f64, mut s1: f64, h0: bool, h1: bool, out: &mut [f64]) -> usize {
        let mut widen = Widen::Unset;
        let two_columns = match *self.base.as_slice() {
            [b0, b1] => {
                if h1 {
                    // onnxruntime's reading: class 0's raw score plus class 1's base value,
                    // mirrored; class 1's own weights drop out.
                    s1 = b1 + s0;
                    s0 = -s1;
                } else {
                    s1 += b1;
                    s0 += b0;
                }
                true
            }
            [b0] => {
                s0 += b0;
                h1
            }
            _ => {
                widen = Widen::Negate;
                h1
            }
        };
        let positive = if two_columns && h1 {
            s1
        } else if h0 {
            s0
        } else {
            0.0
        };
        let label = if self.binary && self.all_positive {
            widen = Widen::Complement;
            positive > 0.5
        } else {
            if self.binary {
                widen = Widen::Negate;
            }
            positive > 0.0
        };
        if two_columns {
            out[0] = if h0 { s0 } else { 0.0 };
            out[1] = if h1 { s1 } else { 0.0 };
            self.post.apply(out);
        } else {
            let x = if h0 { s0 } else { 0.0 };
            let (a, b) = match (self.post, widen) {
                (PostTransform::Logistic, _) => (logistic(-x), logistic(x)),
                (_, Widen::Complement) => (1.0 - x, x),
                (_, Widen::Negate | Widen::Unset) => (-x, x),
            };
            out[0] = a;
            out[1] = b;
        }
        usize::from(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classification(
        post: PostTransform,
        base: &[f64],
        binary: bool,
        all_positive: bool,
    ) -> Classification {
        Classification {
            post,
            base: base.to_vec(),
            binary,
            all_positive,
        }
    }

    /// Label and scores of a two-class row whose weights were float32, as in a legacy model.
    fn two(c: &Classification, s: [f32; 2], h: [bool; 2]) -> (usize, [f64; 2]) {
        let (mut s, mut h, mut out) = (s.map(f64::from), h, [0.0; 2]);
        let label = c.finish(&mut s, &mut h, &mut out);
        (label, out)
    }

    /// Within float32 rounding of onnxruntime's float32 arithmetic.
    fn same(actual: (usize, [f64; 2]), expected: (usize, [f64; 2])) -> bool {
        let near = |(a, e): (&f64, &f64)| (a - e).abs() <= 1e-7 * e.abs().max(1.0);
        actual.0 == expected.0 && actual.1.iter().zip(&expected.1).all(near)
    }

    /// Expected values are onnxruntime 1.32's outputs on the same one-split trees.
    #[test]
    fn binary_one_column_follows_onnxruntime() {
        use PostTransform::*;
        let pos = classification(None, &[], true, true);
        assert!(same(two(&pos, [0.3, 0.0], [true, false]), (0, [0.7, 0.3])));
        assert!(same(
            two(&pos, [0.8, 0.0], [true, false]),
            (1, [0.19999999, 0.8])
        ));
        let mixed = classification(None, &[], true, false);
        assert!(same(
            two(&mixed, [-0.3, 0.0], [true, false]),
            (0, [0.3, -0.3])
        ));
        let logistic = classification(Logistic, &[], true, true);
        assert!(same(
            two(&logistic, [0.3, 0.0], [true, false]),
            (0, [0.42555746, 0.5744425])
        ));
        let based = classification(None, &[0.1], true, true);
        assert!(same(
            two(&based, [0.3, 0.0], [true, false]),
            (0, [0.6, 0.4])
        ));
        // Softmax is not applied to one column.
        let softmax = classification(Softmax, &[0.1], true, false);
        assert!(same(
            two(&softmax, [-0.3, 0.0], [true, false]),
            (0, [0.2, -0.2])
        ));
    }

    #[test]
    fn binary_with_two_base_values_follows_onnxruntime() {
        let c = classification(PostTransform::None, &[0.1, 0.2], true, true);
        // Class 0 only: scores [x + b0, unreached] and the label from class 0.
        assert!(same(two(&c, [0.3, 0.0], [true, false]), (0, [0.4, 0.0])));
        assert!(same(
            two(&c, [0.8, 0.0], [true, false]),
            (1, [0.90000004, 0.0])
        ));
        // Class 1 only: class 1's weights are replaced by b1 + (class 0's raw score).
        assert!(same(two(&c, [0.0, 0.8], [false, true]), (0, [0.0, 0.2])));
    }

    #[test]
    fn two_classes_both_weighted_label_by_class_one_sign() {
        let c = classification(PostTransform::None, &[], false, true);
        assert!(same(two(&c, [0.7, 0.3], [true, true]), (1, [0.7, 0.3])));
        let c = classification(PostTransform::None, &[], false, false);
        assert!(same(two(&c, [0.7, -0.3], [true, true]), (0, [0.7, -0.3])));
    }

    #[test]
    fn multiclass_label_skips_classes_no_leaf_reached() {
        let c = classification(PostTransform::None, &[], false, false);
        let (mut s, mut h, mut out) = ([0.0, -1.0, -2.0], [false, true, true], [9.0; 3]);
        assert_eq!(c.finish(&mut s, &mut h, &mut out), 1);
        assert_eq!(out, [0.0, -1.0, -2.0]);
        // Base values count as reaching every class.
        let c = classification(PostTransform::Softmax, &[0.5, 0.0, 0.0], false, false);
        let (mut s, mut h) = ([0.0, -1.0, -2.0], [false, true, true]);
        assert_eq!(c.finish(&mut s, &mut h, &mut out), 0);
        assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn undefined_onnxruntime_results_are_refused() {
        let probit = classification(PostTransform::Probit, &[], true, true);
        assert!(probit.check(2, false).is_err());
        assert!(probit.check(2, true).is_ok());
        let one_base = classification(PostTransform::None, &[0.1], false, true);
        assert!(one_base.check(2, false).is_err());
        assert!(classification(PostTransform::None, &[0.1], false, true)
            .check(3, true)
            .is_err());
    }

    #[test]
    fn regression_single_target_ignores_all_transforms_but_probit() {
        let mut r = Regression {
            aggregate: Aggregate::Average,
            post: PostTransform::Logistic,
            base: vec![1.0],
            n_trees: 2,
        };
        let mut out = [0.0];
        r.finish(&[3.0], &[true], &mut out);
        assert_eq!(out, [2.5]);
        r.aggregate = Aggregate::Min;
        r.finish(&[3.0], &[false], &mut out);
        assert_eq!(out, [1.0]);
        // Several targets: an unreached target is 0 whatever its base value.
        r.aggregate = Aggregate::Sum;
        r.post = PostTransform::None;
        r.base = vec![1.0, 2.0];
        let mut out = [0.0; 2];
        r.finish(&[0.3, 0.0], &[true, false], &mut out);
        assert_eq!(out, [1.3, 0.0]);
    }
}
