//! OneHotEncoder: each element becomes a float32 row of zeros with a one at its category.

use std::collections::HashMap;

use super::super::Kernel;
use super::lookup::{self, SortedKeys};
use super::{Attrs, NodeName};
use crate::error::Result;
use crate::plan::tensor::{Data, Tensor};

#[derive(Debug)]
enum Categories {
    Ints(SortedKeys<i64>),
    Strings(HashMap<String, u32>),
}

#[derive(Debug)]
pub(super) struct OneHotEncoder {
    node: NodeName,
    categories: Categories,
    count: usize,
    /// `zeros` = 1: an unknown value gives a row of zeros; 0: it is an error.
    zeros: bool,
}

impl OneHotEncoder {
    pub fn new(attrs: &Attrs) -> Result<Self> {
        let node = NodeName::of(attrs);
        let ints = attrs.ints("cats_int64s");
        let strings = attrs.strings("cats_strings");
        let count = ints.len().max(strings.len());
        lookup::check_count(&node, count, "categories")?;
        // A repeated category maps to its last position, as in onnxruntime.
        let categories = match (ints.is_empty(), strings.is_empty()) {
            (false, true) => {
                Categories::Ints(SortedKeys::new(ints.into_iter().zip(0..count as u32).rev()))
            }
            (true, false) => Categories::Strings(lookup::string_positions(&strings, false)),
            _ => {
                return Err(attrs.error("needs exactly one of cats_int64s and cats_strings"));
            }
        };
        Ok(Self {
            node,
            categories,
            count,
            zeros: attrs.int("zeros", 1) != 0,
        })
    }

    /// The category of every element, `count` where it has none.
    fn positions(&self, x: &Tensor) -> Result<Vec<u32>> {
        let unknown = self.count as u32;
        // Numeric input is truncated to int64 and looked up in cats_int64s; string input in
        // cats_strings. Input of the other kind matches nothing, as in onnxruntime.
        let by_int = |value: Option<i64>| match (&self.categories, value) {
            (Categories::Ints(keys), Some(value)) => keys.get(value).unwrap_or(unknown),
            _ => unknown,
        };
        Ok(match &x.data {
            Data::I64(v) => v.iter().map(|&x| by_int(Some(x))).collect(),
            Data::F32(v) => v.iter().map(|&x| by_int(truncate(f64::from(x)))).collect(),
            Data::F64(v) => v.iter().map(|&x| by_int(truncate(x))).collect(),
            Data::Str(strings) => match &self.categories {
                Categories::Strings(map) => lookup::map_strings(&self.node, strings, |s| {
                    map.get(s).copied().unwrap_or(unknown)
                })?,
                Categories::Ints(_) => vec![unknown; strings.codes.len()],
            },
            Data::Bool(_) => {
                return Err(self.node.wrong_type(x, "string, int64, float32 or float64"))
            }
        })
    }

    fn unknown_error(&self, x: &Tensor, i: usize) -> crate::error::Error {
        let value = match &x.data {
            Data::I64(v) => v[i].to_string(),
            Data::F32(v) => v[i].to_string(),
            Data::F64(v) => v[i].to_string(),
            Data::Str(s) => format!("'{}'", s.get(i)),
            Data::Bool(v) => v[i].to_string(),
        };
        self.node.error(format_args!(
            "value {value} is not one of the {} categories (zeros=0 makes that an error)",
            self.count
        ))
    }
}

/// C++'s float-to-int64 cast as onnxruntime uses it, with NaN and out-of-range values (undefined
/// behaviour there, i64::MIN on x86) matching no category.
fn truncate(x: f64) -> Option<i64> {
    // 2^63 as f64 is exact; every f64 in (-2^63 - 1, 2^63) truncates into range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (x.abs() < LIMIT).then_some(x as i64)
}

impl Kernel for OneHotEncoder {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = self.node.inputs(inputs)?;
        let positions = self.positions(x)?;
        let unknown = self.count as u32;
        if !self.zeros {
            if let Some(i) = positions.iter().position(|&p| p == unknown) {
                return Err(self.unknown_error(x, i));
            }
        }
        let mut out = vec![0.0f32; positions.len() * self.count];
        for (row, &p) in out.chunks_exact_mut(self.count).zip(&positions) {
            if p != unknown {
                row[p as usize] = 1.0;
            }
        }
        // The input's shape with a category axis added (so [N, 1] gives [N, 1, count]).
        let mut shape = x.shape.clone();
        shape.push(self.count);
        Ok(vec![Tensor::f32(shape, out)])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::error::Error;
    use crate::plan::tensor::Tensor;

    #[test]
    fn int_categories_add_an_axis() {
        let attrs = vec![ints("cats_int64s", &[0, 2, 5])];
        let x = Tensor::i64(vec![2, 1], vec![5, 3]);
        let y = run1("OneHotEncoder", 1, attrs, x).unwrap();
        assert_eq!(
            y,
            [Tensor::f32(
                vec![2, 1, 3],
                vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
            )]
        );
    }

    #[test]
    fn floats_are_truncated_and_nan_matches_nothing() {
        // As onnxruntime 1.32: NaN -> zeros, 2.7 -> 2, -0.5 -> 0.
        let attrs = vec![ints("cats_int64s", &[0, 2, 5])];
        let x = Tensor::f32(vec![3], vec![f32::NAN, 2.7, -0.5]);
        let y = run1("OneHotEncoder", 1, attrs, x).unwrap();
        let expected = vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0];
        assert_eq!(y, [Tensor::f32(vec![3, 3], expected)]);
    }

    #[test]
    fn repeated_categories_use_the_last_position() {
        let attrs = vec![ints("cats_int64s", &[2, 2, 5])];
        let y = run1("OneHotEncoder", 1, attrs, Tensor::i64(vec![1], vec![2])).unwrap();
        assert_eq!(y, [Tensor::f32(vec![1, 3], vec![0.0, 1.0, 0.0])]);
    }

    #[test]
    fn unknown_strings_give_zeros_by_default() {
        let attrs = vec![strings("cats_strings", &["a", "b"])];
        let x = dictionary(vec![3, 1], &["b", "zz", "a"], &[0, 1, 2]);
        let y = run1("OneHotEncoder", 1, attrs, x).unwrap();
        let expected = vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        assert_eq!(y, [Tensor::f32(vec![3, 1, 2], expected)]);
    }

    #[test]
    fn unknown_values_are_errors_with_zeros_0() {
        let attrs = vec![strings("cats_strings", &["a", "b"]), int("zeros", 0)];
        let x = dictionary(vec![2], &["a", "zz"], &[0, 1]);
        let err = run1("OneHotEncoder", 1, attrs, x);
        assert!(matches!(err, Err(Error::Model(_))));
        assert!(message(err).contains("OneHotEncoder node 'n': value 'zz' is not one of the 2"));

        let attrs = vec![ints("cats_int64s", &[0]), int("zeros", 0)];
        let err = run1("OneHotEncoder", 1, attrs, Tensor::i64(vec![2], vec![0, 3]));
        assert!(message(err).contains("value 3 is not"));
    }

    #[test]
    fn categories_must_be_given_once() {
        assert!(matches!(
            kernel("OneHotEncoder", 1, vec![]),
            Err(Error::Model(_))
        ));
        let both = vec![ints("cats_int64s", &[0]), strings("cats_strings", &["a"])];
        assert!(matches!(
            kernel("OneHotEncoder", 1, both),
            Err(Error::Model(_))
        ));
    }
}
