//! Element-wise rescaling: Scaler, Normalizer (per row) and Binarizer.
//!
//! Scaler and Normalizer compute in float32 in onnxruntime's order, so their outputs are
//! bit-identical to its (these values often feed tree thresholds, where one ulp flips a branch).

use super::super::Kernel;
use super::{Attrs, NodeName};
use crate::error::Result;
use crate::plan::tensor::{Data, Tensor};

/// Scaler: (x - offset) * scale, float32 output.
#[derive(Debug)]
pub(super) struct Scaler {
    node: NodeName,
    offset: Vec<f32>,
    scale: Vec<f32>,
}

impl Scaler {
    pub fn new(attrs: &Attrs) -> Result<Self> {
        let offset = attrs.floats("offset");
        let scale = attrs.floats("scale");
        if scale.is_empty() || scale.len() != offset.len() {
            return Err(attrs.error(format_args!(
                "needs scale and offset of the same non-zero length, got {} and {}",
                scale.len(),
                offset.len()
            )));
        }
        Ok(Self {
            node: NodeName::of(attrs),
            offset,
            scale,
        })
    }
}

impl Kernel for Scaler {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = self.node.inputs(inputs)?;
        self.node
            .check_columns(x, self.scale.len(), "scale values")?;
        let (offset, scale) = (&self.offset[..], &self.scale[..]);
        // The arithmetic is onnxruntime's `(x - offset) * scale` in C++: float32 for float32,
        // and for int64, which C++ converts to float32 before subtracting; float64 rounded once.
        let values = match &x.data {
            Data::F32(v) => affine(v, offset, scale, |x, o, s| (x - o) * s),
            Data::F64(v) => affine(v, offset, scale, |x, o, s| {
                ((x - f64::from(o)) * f64::from(s)) as f32
            }),
            Data::I64(v) => affine(v, offset, scale, |x, o, s| (x as f32 - o) * s),
            _ => return Err(self.node.wrong_type(x, "float32, float64 or int64")),
        };
        Ok(vec![Tensor::f32(x.shape.clone(), values)])
    }
}

/// `f(x, offset, scale)` per element, with one (offset, scale) for all or one per column.
fn affine<T: Copy>(
    data: &[T],
    offset: &[f32],
    scale: &[f32],
    f: impl Fn(T, f32, f32) -> f32,
) -> Vec<f32> {
    if let ([o], [s]) = (offset, scale) {
        return data.iter().map(|&x| f(x, *o, *s)).collect();
    }
    let mut out = Vec::with_capacity(data.len());
    for row in data.chunks_exact(scale.len()) {
        out.extend(
            row.iter()
                .zip(offset.iter().zip(scale))
                .map(|(&x, (&o, &s))| f(x, o, s)),
        );
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Norm {
    Max,
    L1,
    L2,
}

/// Normalizer: each row divided by its MAX, L1 or L2 norm, float32 output.
#[derive(Debug)]
pub(super) struct Normalizer {
    node: NodeName,
    norm: Norm,
}

impl Normalizer {
    pub fn new(attrs: &Attrs) -> Result<Self> {
        let norm = match attrs.string("norm", "MAX").as_str() {
            "MAX" => Norm::Max,
            "L1" => Norm::L1,
            "L2" => Norm::L2,
            other => {
                return Err(attrs.error(format_args!("norm '{other}' is not one of MAX, L1, L2")))
            }
        };
        Ok(Self {
            node: NodeName::of(attrs),
            norm,
        })
    }
}

impl Kernel for Normalizer {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = self.node.inputs(inputs)?;
        let (_, columns) = self.node.matrix(x)?;
        let values = match &x.data {
            Data::F32(v) => normalize(v, columns, self.norm),
            Data::F64(v) => normalize(v, columns, self.norm),
            Data::I64(v) => normalize(v, columns, self.norm),
            _ => return Err(self.node.wrong_type(x, "float32, float64 or int64")),
        };
        Ok(vec![Tensor::f32(x.shape.clone(), values)])
    }
}

/// An input element type of Normalizer, with the conversions onnxruntime's template applies.
trait Element: Copy {
    fn to_f32(self) -> f32;
    /// |x| in the input type, then float32.
    fn abs_f32(self) -> f32;
    /// x * x in the input type, then float32.
    fn square_f32(self) -> f32;
    fn is_negative(self) -> bool;
}

impl Element for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn abs_f32(self) -> f32 {
        self.abs()
    }
    fn square_f32(self) -> f32 {
        self * self
    }
    fn is_negative(self) -> bool {
        self < 0.0
    }
}

impl Element for f64 {
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn abs_f32(self) -> f32 {
        self.abs() as f32
    }
    fn square_f32(self) -> f32 {
        (self * self) as f32
    }
    fn is_negative(self) -> bool {
        self < 0.0
    }
}

impl Element for i64 {
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn abs_f32(self) -> f32 {
        self.unsigned_abs() as f32
    }
    fn square_f32(self) -> f32 {
        // Wraps where C++ would overflow: only for |x| > 3e9.
        self.wrapping_mul(self) as f32
    }
    fn is_negative(self) -> bool {
        self < 0
    }
}

/// onnxruntime's NormalizeMax / NormalizeL1 / NormalizeL2, row by row in float32. MAX is the
/// largest value, not the largest magnitude (the spec's "max(x_i)"). A row whose norm is 0 is
/// copied unchanged.
fn normalize<T: Element>(data: &[T], columns: usize, norm: Norm) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len());
    if columns == 0 {
        return out;
    }
    for row in data.chunks_exact(columns) {
        match norm {
            Norm::Max => {
                // std::max(max, x): a NaN never replaces the running maximum.
                let max = row.iter().fold(f32::MIN, |max, &x| {
                    let x = x.to_f32();
                    if max < x {
                        x
                    } else {
                        max
                    }
                });
                divide_row(&mut out, row, max);
            }
            Norm::L1 => {
                let sum = row.iter().fold(0.0f32, |sum, &x| sum + x.abs_f32());
                divide_row(&mut out, row, sum);
            }
            Norm::L2 => {
                let sum = row.iter().fold(0.0f32, |sum, &x| sum + x.square_f32());
                if sum != 0.0 {
                    out.extend(row.iter().map(|&x| {
                        let magnitude = (x.square_f32() / sum).sqrt();
                        if x.is_negative() {
                            -magnitude
                        } else {
                            magnitude
                        }
                    }));
                } else {
                    out.extend(row.iter().map(|&x| x.to_f32()));
                }
            }
        }
    }
    out
}

fn divide_row<T: Element>(out: &mut Vec<f32>, row: &[T], norm: f32) {
    if norm != 0.0 {
        out.extend(row.iter().map(|&x| x.to_f32() / norm));
    } else {
        out.extend(row.iter().map(|&x| x.to_f32()));
    }
}

/// Binarizer: 1 where x > threshold, else 0, in the input's type.
#[derive(Debug)]
pub(super) struct Binarizer {
    node: NodeName,
    threshold: f32,
}

impl Binarizer {
    pub fn new(attrs: &Attrs) -> Self {
        Self {
            node: NodeName::of(attrs),
            // The spec's default; onnxruntime fills it in from the schema.
            threshold: attrs.float("threshold", 0.0),
        }
    }
}

impl Kernel for Binarizer {
    /// NaN is not greater than the threshold, so it becomes 0, as the spec reads and as
    /// scikit-learn's Binarizer does; onnxruntime (float32 only) rejects NaN input instead.
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = self.node.inputs(inputs)?;
        let t = self.threshold;
        let data = match &x.data {
            Data::F32(v) => Data::F32(v.iter().map(|&x| f32::from(u8::from(x > t))).collect()),
            Data::F64(v) => {
                let t = f64::from(t);
                Data::F64(v.iter().map(|&x| f64::from(u8::from(x > t))).collect())
            }
            // Compared exactly (as f64) rather than through C++'s int64 -> float32 conversion.
            Data::I64(v) => {
                let t = f64::from(t);
                Data::I64(v.iter().map(|&x| i64::from(x as f64 > t)).collect())
            }
            _ => return Err(self.node.wrong_type(x, "float32, float64 or int64")),
        };
        Ok(vec![Tensor::new(x.shape.clone(), data)])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::error::Error;
    use crate::plan::tensor::Tensor;

    #[test]
    fn scaler_per_column_and_broadcast() {
        let attrs = vec![floats("offset", &[1.0, -1.0]), floats("scale", &[2.0, 0.5])];
        let x = Tensor::f32(vec![2, 2], vec![1.0, 1.0, 3.0, -3.0]);
        let y = run1("Scaler", 1, attrs, x).unwrap();
        assert_eq!(y, [Tensor::f32(vec![2, 2], vec![0.0, 1.0, 4.0, -1.0])]);

        let attrs = vec![floats("offset", &[0.5]), floats("scale", &[2.0])];
        let x = Tensor::f64(vec![3], vec![0.5, 1.0, 2.5]);
        let y = run1("Scaler", 1, attrs, x).unwrap();
        assert_eq!(y, [Tensor::f32(vec![3], vec![0.0, 1.0, 4.0])]);
    }

    #[test]
    fn scaler_rounds_as_onnxruntime_does() {
        // float32 arithmetic in two steps: (0.1 - 0.3) * 3.0 rounds differently in f64.
        let attrs = vec![floats("offset", &[0.3]), floats("scale", &[3.0])];
        let x = Tensor::f32(vec![1, 1], vec![0.1]);
        let y = run1("Scaler", 1, attrs, x).unwrap();
        assert_eq!(y[0].as_f32().unwrap(), [(0.1f32 - 0.3f32) * 3.0f32]);

        // int64 goes through float32 first: onnxruntime gives 16777215 here, not 16777216.
        let attrs = vec![floats("offset", &[1.0]), floats("scale", &[1.0])];
        let x = Tensor::i64(vec![1, 1], vec![16_777_217]);
        let y = run1("Scaler", 1, attrs, x).unwrap();
        assert_eq!(y[0].as_f32().unwrap(), [16_777_215.0]);
    }

    #[test]
    fn scaler_rejects_inconsistent_lengths() {
        let attrs = vec![floats("offset", &[1.0]), floats("scale", &[1.0, 2.0])];
        assert!(matches!(kernel("Scaler", 1, attrs), Err(Error::Model(_))));
        let attrs = vec![
            floats("offset", &[1.0, 2.0, 3.0]),
            floats("scale", &[1.0; 3]),
        ];
        let err = run1("Scaler", 1, attrs, Tensor::f32(vec![1, 2], vec![0.0; 2]));
        assert!(matches!(err, Err(Error::Model(_))));
    }

    fn normalize(norm: &str, x: Vec<f32>) -> Vec<f32> {
        let y = run1(
            "Normalizer",
            1,
            vec![string("norm", norm)],
            Tensor::f32(vec![3, 2], x),
        );
        y.unwrap()[0].as_f32().unwrap().to_vec()
    }

    #[test]
    fn normalizer_modes_match_onnxruntime() {
        let x = vec![-4.0, -2.0, 1.0, -3.0, 0.0, 0.0];
        // MAX divides by the largest value (here negative), as onnxruntime does.
        assert_eq!(normalize("MAX", x.clone()), [2.0, 1.0, 1.0, -3.0, 0.0, 0.0]);
        assert_eq!(
            normalize("L1", x.clone()),
            [-4.0 / 6.0, -2.0 / 6.0, 0.25, -0.75, 0.0, 0.0]
        );
        assert_eq!(
            normalize("L2", x),
            [
                -0.894_427_2,
                -0.447_213_6,
                0.316_227_76,
                -0.948_683_26,
                0.0,
                0.0
            ]
        );
        let default = run1("Normalizer", 1, vec![], Tensor::i64(vec![1, 2], vec![2, 4]));
        assert_eq!(default.unwrap(), [Tensor::f32(vec![1, 2], vec![0.5, 1.0])]);
    }

    #[test]
    fn normalizer_rejects_bad_norms_and_shapes() {
        assert!(matches!(
            kernel("Normalizer", 1, vec![string("norm", "L3")]),
            Err(Error::Model(_))
        ));
        let one_d = run1(
            "Normalizer",
            1,
            vec![],
            Tensor::f32(vec![2], vec![1.0, 2.0]),
        );
        assert!(matches!(one_d, Err(Error::Unsupported(_))));
        let three_d = run1(
            "Normalizer",
            1,
            vec![],
            Tensor::f32(vec![1, 1, 2], vec![1.0, 2.0]),
        );
        assert!(matches!(three_d, Err(Error::Model(_))));
    }

    #[test]
    fn binarizer_keeps_the_input_type() {
        let x = Tensor::f32(vec![1, 5], vec![0.5, 1.0, 1.5, -3.0, f32::NAN]);
        let y = run1("Binarizer", 1, vec![float("threshold", 1.0)], x).unwrap();
        assert_eq!(y, [Tensor::f32(vec![1, 5], vec![0.0, 0.0, 1.0, 0.0, 0.0])]);
        let x = Tensor::i64(vec![3], vec![-1, 0, 2]);
        let y = run1("Binarizer", 1, vec![], x).unwrap();
        assert_eq!(y, [Tensor::i64(vec![3], vec![0, 0, 1])]);
        let x = Tensor::f64(vec![2], vec![0.25, 0.75]);
        let y = run1("Binarizer", 1, vec![float("threshold", 0.5)], x).unwrap();
        assert_eq!(y, [Tensor::f64(vec![2], vec![0.0, 1.0])]);
    }
}
