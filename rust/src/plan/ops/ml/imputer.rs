//! Imputer: replace one marker value (or NaN) with a fill value, per column or for all.

use super::super::Kernel;
use super::{Attrs, NodeName};
use crate::error::Result;
use crate::plan::tensor::{Data, Tensor};

#[derive(Debug)]
enum Fill {
    /// `imputed_value_floats`, for float32 input (and float64, which onnxruntime has no kernel
    /// for: the spec allows it, and the float32 values are widened).
    Floats {
        values: Vec<f32>,
        replaced: f32,
    },
    Ints {
        values: Vec<i64>,
        replaced: i64,
    },
}

#[derive(Debug)]
pub(super) struct Imputer {
    node: NodeName,
    fill: Fill,
}

impl Imputer {
    pub fn new(attrs: &Attrs) -> Result<Self> {
        let floats = attrs.floats("imputed_value_floats");
        let ints = attrs.ints("imputed_value_int64s");
        let fill = match (floats.is_empty(), ints.is_empty()) {
            (false, true) => Fill::Floats {
                values: floats,
                replaced: attrs.float("replaced_value_float", 0.0),
            },
            (true, false) => Fill::Ints {
                values: ints,
                replaced: attrs.int("replaced_value_int64", 0),
            },
            _ => {
                return Err(attrs
                    .error("needs exactly one of imputed_value_floats and imputed_value_int64s"))
            }
        };
        Ok(Self {
            node: NodeName::of(attrs),
            fill,
        })
    }
}

impl Kernel for Imputer {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = self.node.inputs(inputs)?;
        let data = match (&self.fill, &x.data) {
            (Fill::Floats { values, replaced }, Data::F32(v)) => {
                self.node.check_columns(x, values.len(), "imputed values")?;
                let replaced = *replaced;
                Data::F32(impute(v, values, |x| {
                    x == replaced || (x.is_nan() && replaced.is_nan())
                }))
            }
            (Fill::Floats { values, replaced }, Data::F64(v)) => {
                self.node.check_columns(x, values.len(), "imputed values")?;
                let values: Vec<f64> = values.iter().map(|&f| f64::from(f)).collect();
                let replaced = f64::from(*replaced);
                Data::F64(impute(v, &values, |x| {
                    x == replaced || (x.is_nan() && replaced.is_nan())
                }))
            }
            (Fill::Ints { values, replaced }, Data::I64(v)) => {
                self.node.check_columns(x, values.len(), "imputed values")?;
                Data::I64(impute(v, values, |x| x == *replaced))
            }
            (Fill::Floats { .. }, _) => {
                return Err(self
                    .node
                    .wrong_type(x, "float32 or float64 (imputed_value_floats)"))
            }
            (Fill::Ints { .. }, _) => {
                return Err(self.node.wrong_type(x, "int64 (imputed_value_int64s)"))
            }
        };
        Ok(vec![Tensor::new(x.shape.clone(), data)])
    }
}

/// `data` with each missing element replaced by its column's fill value; `fill` holds one value
/// for all elements or one per column (checked by the caller).
fn impute<T: Copy>(data: &[T], fill: &[T], missing: impl Fn(T) -> bool) -> Vec<T> {
    let mut out = data.to_vec();
    if let [value] = fill {
        for x in &mut out {
            if missing(*x) {
                *x = *value;
            }
        }
    } else {
        for row in out.chunks_exact_mut(fill.len()) {
            for (x, &value) in row.iter_mut().zip(fill) {
                if missing(*x) {
                    *x = value;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::error::Error;
    use crate::plan::tensor::Tensor;

    #[test]
    fn nan_is_replaced_per_column() {
        let attrs = vec![
            floats("imputed_value_floats", &[10.0, 20.0]),
            float("replaced_value_float", f32::NAN),
        ];
        let x = Tensor::f32(vec![2, 2], vec![f32::NAN, 1.0, 2.0, f32::NAN]);
        let y = run1("Imputer", 1, attrs, x).unwrap();
        assert_eq!(y, [Tensor::f32(vec![2, 2], vec![10.0, 1.0, 2.0, 20.0])]);
    }

    #[test]
    fn a_marker_value_is_replaced_with_one_broadcast_value() {
        // replaced_value_float defaults to 0, as in the spec (and onnxruntime).
        let attrs = vec![floats("imputed_value_floats", &[5.0])];
        let x = Tensor::f32(vec![1, 3], vec![0.0, 1.0, f32::NAN]);
        let y = run1("Imputer", 1, attrs, x).unwrap();
        assert_eq!(y[0].as_f32().unwrap()[..2], [5.0, 1.0]);
        assert!(y[0].as_f32().unwrap()[2].is_nan());
    }

    #[test]
    fn double_input_is_filled_with_widened_floats() {
        let attrs = vec![
            floats("imputed_value_floats", &[0.1]),
            float("replaced_value_float", f32::NAN),
        ];
        let x = Tensor::f64(vec![2, 1], vec![f64::NAN, 3.0]);
        let y = run1("Imputer", 1, attrs, x).unwrap();
        assert_eq!(y, [Tensor::f64(vec![2, 1], vec![f64::from(0.1f32), 3.0])]);
    }

    #[test]
    fn int64_marker_is_replaced() {
        let attrs = vec![
            ints("imputed_value_int64s", &[5, 6]),
            int("replaced_value_int64", 1),
        ];
        let x = Tensor::i64(vec![2, 2], vec![0, 1, 1, 1]);
        let y = run1("Imputer", 1, attrs, x).unwrap();
        assert_eq!(y, [Tensor::i64(vec![2, 2], vec![0, 6, 5, 6])]);
    }

    #[test]
    fn inconsistent_models_and_inputs_are_errors() {
        let none = super::super::testing::kernel("Imputer", 1, vec![]);
        assert!(matches!(none, Err(Error::Model(_))));
        let both = vec![
            floats("imputed_value_floats", &[1.0]),
            ints("imputed_value_int64s", &[1]),
        ];
        assert!(matches!(kernel("Imputer", 1, both), Err(Error::Model(_))));

        let three = vec![floats("imputed_value_floats", &[1.0, 2.0, 3.0])];
        let err = run1("Imputer", 1, three, Tensor::f32(vec![1, 2], vec![0.0; 2]));
        assert!(matches!(err, Err(Error::Model(_))));
        assert!(message(err).contains("3 imputed values for an input of 2 columns"));

        let ints_for_floats = vec![ints("imputed_value_int64s", &[1])];
        let err = run1(
            "Imputer",
            1,
            ints_for_floats,
            Tensor::f32(vec![1, 1], vec![0.0]),
        );
        assert!(message(err).contains("Imputer node 'n': input is float32, expected int64"));

        let per_column_1d = vec![floats("imputed_value_floats", &[1.0, 2.0])];
        let err = run1(
            "Imputer",
            1,
            per_column_1d,
            Tensor::f32(vec![2], vec![0.0; 2]),
        );
        assert!(matches!(err, Err(Error::Unsupported(_))));
    }
}
