//! LabelEncoder: map each element through a key -> value table, with a default for the rest.
//!
//! - opset 1: `classes_strings`; a string becomes its position (last occurrence wins), an int64
//!   the string at that position.
//! - opset 2-3: `keys_*` / `values_*` lists of strings, int64s or floats.
//! - opset 4: also `keys_tensor` / `values_tensor` / `default_tensor` (adding float64), and a NaN
//!   key matches NaN input (in opset 2-3 NaN matches nothing).
//!
//! Repeated keys keep their first value (onnxruntime's `emplace`). Lookups produce an index into
//! the values with the default appended, so a string output shares one table of values and
//! every element is a code: no string is copied per element.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::Kernel;
use super::lookup::{self, f32_key, f64_key, SortedKeys};
use super::{Attrs, NodeName};
use crate::error::Result;
use crate::plan::onnx::data_type;
use crate::plan::tensor::{Data, ElemType, Strings, Tensor};

#[derive(Debug)]
enum Keys {
    Str(HashMap<String, u32>),
    I64(SortedKeys<i64>),
    F32(SortedKeys<u32>),
    F64(SortedKeys<u64>),
    /// LabelEncoder-1 from int64: the key is the position itself, among `0..n`.
    Position(usize),
}

impl Keys {
    fn input_type(&self) -> ElemType {
        match self {
            Keys::Str(_) => ElemType::Str,
            Keys::I64(_) | Keys::Position(_) => ElemType::I64,
            Keys::F32(_) => ElemType::F32,
            Keys::F64(_) => ElemType::F64,
        }
    }
}

/// The values, followed by the default.
#[derive(Debug)]
enum Values {
    Str(Arc<Vec<String>>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Str(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
        }
    }

    fn gather(&self, shape: Vec<usize>, indices: Vec<u32>) -> Tensor {
        let data = match self {
            Values::Str(table) => Data::Str(Strings {
                table: table.clone(),
                codes: indices,
            }),
            Values::I64(v) => Data::I64(indices.iter().map(|&i| v[i as usize]).collect()),
            Values::F32(v) => Data::F32(indices.iter().map(|&i| v[i as usize]).collect()),
            Values::F64(v) => Data::F64(indices.iter().map(|&i| v[i as usize]).collect()),
        };
        Tensor::new(shape, data)
    }
}

/// One key type's table: `values` has one more entry than there are key positions, the default.
#[derive(Debug)]
struct Encoding {
    keys: Keys,
    values: Values,
}

#[derive(Debug)]
pub(super) struct LabelEncoder {
    node: NodeName,
    /// One per input type the node accepts: two for LabelEncoder-1, one after.
    encodings: Vec<Encoding>,
}

impl LabelEncoder {
    pub fn new(attrs: &Attrs, opset: i64) -> Result<Self> {
        let node = NodeName::of(attrs);
        let encodings = if opset < 2 {
            version_1(attrs, &node)?
        } else {
            vec![mapping(attrs, &node, opset >= 4)?]
        };
        Ok(Self { node, encodings })
    }
}

impl Kernel for LabelEncoder {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = self.node.inputs(inputs)?;
        let Some(encoding) = self
            .encodings
            .iter()
            .find(|e| e.keys.input_type() == x.elem_type())
        else {
            let keys: Vec<_> = self
                .encodings
                .iter()
                .map(|e| e.keys.input_type().name())
                .collect();
            return Err(self.node.wrong_type(x, &keys.join(" or ")));
        };
        let default = (encoding.values.len() - 1) as u32;
        let indices = match (&encoding.keys, &x.data) {
            (Keys::Str(map), Data::Str(strings)) => {
                lookup::map_strings(&self.node, strings, |s| {
                    map.get(s).copied().unwrap_or(default)
                })?
            }
            (Keys::I64(keys), Data::I64(v)) => {
                v.iter().map(|&x| keys.get(x).unwrap_or(default)).collect()
            }
            (Keys::F32(keys), Data::F32(v)) => v
                .iter()
                .map(|&x| keys.get(f32_key(x)).unwrap_or(default))
                .collect(),
            (Keys::F64(keys), Data::F64(v)) => v
                .iter()
                .map(|&x| keys.get(f64_key(x)).unwrap_or(default))
                .collect(),
            (Keys::Position(n), Data::I64(v)) => v
                .iter()
                .map(|&x| match usize::try_from(x) {
                    Ok(i) if i < *n => i as u32,
                    _ => default,
                })
                .collect(),
            _ => return Err(self.node.wrong_type(x, encoding.keys.input_type().name())),
        };
        Ok(vec![encoding.values.gather(x.shape.clone(), indices)])
    }
}

/// LabelEncoder-1: strings to their positions in `classes_strings` and int64 positions back.
fn version_1(attrs: &Attrs, node: &NodeName) -> Result<Vec<Encoding>> {
    if !attrs.has("classes_strings") {
        return Err(attrs.error("LabelEncoder-1 needs classes_strings"));
    }
    let classes = attrs.strings("classes_strings");
    lookup::check_count(node, classes.len(), "classes")?;
    let n = classes.len();
    let mut positions: Vec<i64> = (0..n as i64).collect();
    positions.push(attrs.int("default_int64", -1));
    let mut strings = classes.clone();
    strings.push(attrs.string("default_string", "_Unused"));
    Ok(vec![
        Encoding {
            keys: Keys::Str(lookup::string_positions(&classes, false)),
            values: Values::I64(positions),
        },
        Encoding {
            keys: Keys::Position(n),
            values: Values::Str(Arc::new(strings)),
        },
    ])
}

/// A key or value list as given by one of the `{prefix}_*` attributes.
enum List {
    Str(Vec<String>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl List {
    fn len(&self) -> usize {
        match self {
            List::Str(v) => v.len(),
            List::I64(v) => v.len(),
            List::F32(v) => v.len(),
            List::F64(v) => v.len(),
        }
    }
}

/// The one list among `{prefix}_strings`, `_int64s`, `_floats` and (opset 4) `_tensor`.
fn list(attrs: &Attrs, prefix: &str, with_tensor: bool) -> Result<List> {
    let name = |suffix: &str| format!("{prefix}_{suffix}");
    let mut given = ["strings", "int64s", "floats", "tensor"]
        .into_iter()
        .filter(|&suffix| (with_tensor || suffix != "tensor") && attrs.has(&name(suffix)));
    let (Some(suffix), None) = (given.next(), given.next()) else {
        return Err(attrs.error(format_args!(
            "needs exactly one of the {prefix}_* attributes"
        )));
    };
    Ok(match suffix {
        "strings" => List::Str(attrs.strings(&name(suffix))),
        "int64s" => List::I64(attrs.ints(&name(suffix))),
        "floats" => List::F32(attrs.floats(&name(suffix))),
        _ => match tensor_attr(attrs, &name(suffix))? {
            Some(tensor) => tensor_list(attrs, &name(suffix), tensor)?,
            None => return Err(attrs.error(format_args!("{} holds no tensor", name(suffix)))),
        },
    })
}

/// A tensor attribute, refusing element types that decoding would change (int32 becomes int64
/// in a `Tensor`, but the operator's output would then have the wrong type).
fn tensor_attr(attrs: &Attrs, name: &str) -> Result<Option<Tensor>> {
    let Some(proto) = attrs.node().attribute(name).and_then(|a| a.t.as_ref()) else {
        return Ok(None);
    };
    match proto.data_type {
        data_type::STRING | data_type::INT64 | data_type::FLOAT | data_type::DOUBLE => {
            attrs.tensor(name)
        }
        other => Err(attrs.unsupported(format_args!(
            "{name} has ONNX element type {other}; string, int64, float and double are supported"
        ))),
    }
}

fn tensor_list(attrs: &Attrs, name: &str, tensor: Tensor) -> Result<List> {
    Ok(match tensor.data {
        Data::Str(s) => List::Str((0..s.codes.len()).map(|i| s.get(i).to_owned()).collect()),
        Data::I64(v) => List::I64(v),
        Data::F32(v) => List::F32(v),
        Data::F64(v) => List::F64(v),
        Data::Bool(_) => return Err(attrs.unsupported(format_args!("{name} is boolean"))),
    })
}

/// LabelEncoder-2 and later: `keys_*` mapped to `values_*`.
fn mapping(attrs: &Attrs, node: &NodeName, version_4: bool) -> Result<Encoding> {
    let keys = list(attrs, "keys", version_4)?;
    let values = list(attrs, "values", version_4)?;
    if keys.len() != values.len() {
        return Err(attrs.error(format_args!(
            "has {} keys but {} values",
            keys.len(),
            values.len()
        )));
    }
    lookup::check_count(node, keys.len(), "keys")?;
    let keys = match keys {
        List::Str(k) => Keys::Str(lookup::string_positions(&k, true)),
        List::I64(k) => Keys::I64(SortedKeys::new(k.into_iter().zip(0..))),
        // Before opset 4 a NaN key never matches (NaN != NaN), so it is left out.
        List::F32(k) => Keys::F32(SortedKeys::new(
            k.into_iter()
                .zip(0..)
                .filter(|(k, _)| version_4 || !k.is_nan())
                .map(|(k, i)| (f32_key(k), i)),
        )),
        List::F64(k) => Keys::F64(SortedKeys::new(
            k.into_iter()
                .zip(0..)
                .filter(|(k, _)| version_4 || !k.is_nan())
                .map(|(k, i)| (f64_key(k), i)),
        )),
    };
    let default = if version_4 {
        tensor_attr(attrs, "default_tensor")?
    } else {
        None
    };
    let default = default.map(|t| (t.len(), t.data));
    let wrong_default = || {
        attrs.error(format_args!(
            "default_tensor must hold one value of the values' type"
        ))
    };
    // The spec's defaults: "_Unused", -1 and -0.0. default_tensor, when given, wins; for float64
    // values it is the only source (onnxruntime ignores default_float there).
    let values = match (values, default) {
        (List::Str(mut v), None) => {
            v.push(attrs.string("default_string", "_Unused"));
            Values::Str(Arc::new(v))
        }
        (List::Str(mut v), Some((1, Data::Str(d)))) => {
            v.push(d.get(0).to_owned());
            Values::Str(Arc::new(v))
        }
        (List::I64(mut v), None) => {
            v.push(attrs.int("default_int64", -1));
            Values::I64(v)
        }
        (List::I64(mut v), Some((1, Data::I64(d)))) => {
            v.push(d[0]);
            Values::I64(v)
        }
        (List::F32(mut v), None) => {
            v.push(attrs.float("default_float", -0.0));
            Values::F32(v)
        }
        (List::F32(mut v), Some((1, Data::F32(d)))) => {
            v.push(d[0]);
            Values::F32(v)
        }
        (List::F64(mut v), None) => {
            v.push(-0.0);
            Values::F64(v)
        }
        (List::F64(mut v), Some((1, Data::F64(d)))) => {
            v.push(d[0]);
            Values::F64(v)
        }
        _ => return Err(wrong_default()),
    };
    Ok(Encoding { keys, values })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::error::Error;
    use crate::plan::onnx::{data_type, TensorProto};
    use crate::plan::tensor::{Data, Tensor};

    fn doubles(values: &[f64]) -> TensorProto {
        TensorProto {
            dims: vec![values.len() as i64],
            data_type: data_type::DOUBLE,
            double_data: values.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn v1_maps_strings_to_positions_and_back() {
        // As onnxruntime: the repeated "a" takes its last position.
        let classes = || strings("classes_strings", &["a", "b", "a"]);
        let x = dictionary(vec![3], &["z", "b", "a"], &[1, 0, 2]);
        let y = run1("LabelEncoder", 1, vec![classes()], x).unwrap();
        assert_eq!(y, [Tensor::i64(vec![3], vec![1, -1, 2])]);

        let x = Tensor::i64(vec![4], vec![0, 2, 5, -1]);
        let y = run1("LabelEncoder", 1, vec![classes()], x).unwrap();
        assert_eq!(texts(&y[0]), ["a", "a", "_Unused", "_Unused"]);

        let attrs = vec![classes(), int("default_int64", 42)];
        let y = run1("LabelEncoder", 1, attrs, dictionary(vec![1], &["q"], &[0])).unwrap();
        assert_eq!(y, [Tensor::i64(vec![1], vec![42])]);
    }

    #[test]
    fn v2_string_to_string_shares_one_table() {
        let attrs = vec![
            strings("keys_strings", &["a", "b", "a"]),
            strings("values_strings", &["x", "y", "z"]),
            string("default_string", "?"),
        ];
        let x = dictionary(vec![2, 2], &["a", "b", "c"], &[0, 1, 2, 0]);
        let kernel = kernel("LabelEncoder", 2, attrs).unwrap();
        let first = kernel.run(&[Some(&x)]).unwrap();
        let second = kernel.run(&[Some(&x)]).unwrap();
        assert_eq!(first[0].shape, [2, 2]);
        assert_eq!(texts(&first[0]), ["x", "y", "?", "x"]);
        let (Data::Str(a), Data::Str(b)) = (&first[0].data, &second[0].data) else {
            panic!("string outputs")
        };
        assert!(std::sync::Arc::ptr_eq(&a.table, &b.table));
    }

    #[test]
    fn v2_numeric_mappings_and_defaults() {
        let attrs = vec![
            ints("keys_int64s", &[1, 3]),
            floats("values_floats", &[0.5, 1.5]),
        ];
        let y = run1(
            "LabelEncoder",
            2,
            attrs,
            Tensor::i64(vec![3], vec![3, 1, 2]),
        )
        .unwrap();
        let out = y[0].as_f32().unwrap();
        assert_eq!(out[..2], [1.5, 0.5]);
        assert!(out[2] == 0.0 && out[2].is_sign_negative(), "default -0.0");

        let attrs = vec![
            floats("keys_floats", &[0.0, 2.5]),
            ints("values_int64s", &[7, 8]),
        ];
        let x = Tensor::f32(vec![3], vec![-0.0, 2.5, 1.0]);
        let y = run1("LabelEncoder", 2, attrs, x).unwrap();
        assert_eq!(y, [Tensor::i64(vec![3], vec![7, 8, -1])]);

        let attrs = vec![
            ints("keys_int64s", &[4]),
            strings("values_strings", &["four"]),
        ];
        let y = run1("LabelEncoder", 3, attrs, Tensor::i64(vec![2], vec![4, 5])).unwrap();
        assert_eq!(texts(&y[0]), ["four", "_Unused"]);
    }

    #[test]
    fn nan_keys_match_from_opset_4_only() {
        let attrs = || {
            vec![
                floats("keys_floats", &[f32::NAN, 1.0]),
                ints("values_int64s", &[7, 8]),
            ]
        };
        let x = || Tensor::f32(vec![2], vec![f32::NAN, 1.0]);
        let v2 = run1("LabelEncoder", 2, attrs(), x()).unwrap();
        assert_eq!(v2, [Tensor::i64(vec![2], vec![-1, 8])]);
        let v4 = run1("LabelEncoder", 4, attrs(), x()).unwrap();
        assert_eq!(v4, [Tensor::i64(vec![2], vec![7, 8])]);
    }

    #[test]
    fn v4_double_tensors() {
        let attrs = || {
            vec![
                tensor("keys_tensor", doubles(&[f64::NAN, 1.0, 2.0])),
                tensor("values_tensor", doubles(&[10.0, 11.0, 12.0])),
            ]
        };
        let x = || Tensor::f64(vec![3], vec![f64::NAN, 2.0, 5.0]);
        let mut with_default = attrs();
        with_default.push(tensor("default_tensor", doubles(&[99.0])));
        let y = run1("LabelEncoder", 4, with_default, x()).unwrap();
        assert_eq!(y, [Tensor::f64(vec![3], vec![10.0, 12.0, 99.0])]);
        // Without default_tensor: -0.0, default_float being ignored as in onnxruntime.
        let mut with_float = attrs();
        with_float.push(float("default_float", 3.0));
        let y = run1("LabelEncoder", 4, with_float, x()).unwrap();
        assert_eq!(y[0].as_f64().unwrap()[2].to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn repeated_keys_keep_their_first_value() {
        let attrs = vec![ints("keys_int64s", &[1, 1]), ints("values_int64s", &[7, 8])];
        let y = run1("LabelEncoder", 4, attrs, Tensor::i64(vec![1], vec![1])).unwrap();
        assert_eq!(y, [Tensor::i64(vec![1], vec![7])]);
    }

    #[test]
    fn malformed_encoders_are_errors() {
        let model =
            |opset, attrs| matches!(kernel("LabelEncoder", opset, attrs), Err(Error::Model(_)));
        assert!(model(1, vec![ints("keys_int64s", &[1])]));
        assert!(model(2, vec![ints("keys_int64s", &[1])]));
        assert!(model(
            2,
            vec![ints("keys_int64s", &[1]), ints("values_int64s", &[1, 2])]
        ));
        assert!(model(
            2,
            vec![
                ints("keys_int64s", &[1]),
                strings("keys_strings", &["a"]),
                ints("values_int64s", &[1])
            ]
        ));
        assert!(model(
            4,
            vec![
                ints("keys_int64s", &[1]),
                ints("values_int64s", &[1]),
                tensor("default_tensor", doubles(&[1.0]))
            ]
        ));

        let int32 = TensorProto {
            dims: vec![1],
            data_type: data_type::INT32,
            int32_data: vec![1],
            ..Default::default()
        };
        let attrs = vec![ints("keys_int64s", &[1]), tensor("values_tensor", int32)];
        assert!(matches!(
            kernel("LabelEncoder", 4, attrs),
            Err(Error::Unsupported(_))
        ));

        let attrs = vec![ints("keys_int64s", &[1]), ints("values_int64s", &[2])];
        let err = run1("LabelEncoder", 2, attrs, Tensor::f32(vec![1], vec![1.0]));
        assert!(message(err).contains("input is float32, expected int64"));
    }
}
