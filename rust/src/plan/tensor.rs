//! `Tensor`: the values that flow between a plan's kernels.
//!
//! Row-major, owned, with the batch as the first dimension. Strings are codes into a shared
//! table of distinct values, so a string column costs four bytes per row and no allocation:
//! Arrow dictionaries become tables as they are, and kernels that map strings (one-hot,
//! label encoding) look each distinct value up once.

use std::borrow::Cow;
use std::sync::Arc;

use super::onnx::{data_type, TensorProto};
use crate::error::{Error, Result};

/// Element types a plan computes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    F32,
    F64,
    I64,
    Bool,
    Str,
}

impl ElemType {
    pub fn from_onnx(code: i32) -> Option<Self> {
        match code {
            data_type::FLOAT => Some(Self::F32),
            data_type::DOUBLE => Some(Self::F64),
            data_type::INT64 => Some(Self::I64),
            data_type::BOOL => Some(Self::Bool),
            data_type::STRING => Some(Self::Str),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::F64 => "float64",
            Self::I64 => "int64",
            Self::Bool => "bool",
            Self::Str => "string",
        }
    }
}

/// String elements: `codes[i]` indexes `table`.
#[derive(Clone, Debug, PartialEq)]
pub struct Strings {
    pub table: Arc<Vec<String>>,
    pub codes: Vec<u32>,
}

impl Strings {
    /// One table entry per element: for constants and small inputs.
    pub fn from_values(values: Vec<String>) -> Self {
        let codes = (0..values.len() as u32).collect();
        Self {
            table: Arc::new(values),
            codes,
        }
    }

    pub fn get(&self, i: usize) -> &str {
        &self.table[self.codes[i] as usize]
    }

    /// Gather elements by index, keeping the table.
    pub fn select(&self, indices: impl Iterator<Item = usize>) -> Self {
        Self {
            table: self.table.clone(),
            codes: indices.map(|i| self.codes[i]).collect(),
        }
    }

    /// Join several string element lists into one, merging tables only when they differ.
    pub fn concat(parts: &[&Strings], order: impl Iterator<Item = (usize, usize)>) -> Self {
        let first = parts[0].table.clone();
        if parts.iter().all(|p| Arc::ptr_eq(&p.table, &first)) {
            let codes = order.map(|(p, i)| parts[p].codes[i]).collect();
            return Self {
                table: first,
                codes,
            };
        }
        let mut offsets = Vec::with_capacity(parts.len());
        let mut table = Vec::new();
        for part in parts {
            offsets.push(table.len() as u32);
            table.extend(part.table.iter().cloned());
        }
        let codes = order.map(|(p, i)| offsets[p] + parts[p].codes[i]).collect();
        Self {
            table: Arc::new(table),
            codes,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    Str(Strings),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

macro_rules! typed_accessor {
    ($name:ident, $variant:ident, $ty:ty) => {
        /// The elements, or an error naming the type found.
        pub fn $name(&self) -> Result<&[$ty]> {
            match &self.data {
                Data::$variant(values) => Ok(values),
                _ => Err(self.type_error(stringify!($variant))),
            }
        }
    };
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Data) -> Self {
        let tensor = Self { shape, data };
        debug_assert_eq!(tensor.shape.iter().product::<usize>(), tensor.len());
        tensor
    }

    pub fn f64(shape: Vec<usize>, values: Vec<f64>) -> Self {
        Self::new(shape, Data::F64(values))
    }

    pub fn f32(shape: Vec<usize>, values: Vec<f32>) -> Self {
        Self::new(shape, Data::F32(values))
    }

    pub fn i64(shape: Vec<usize>, values: Vec<i64>) -> Self {
        Self::new(shape, Data::I64(values))
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Bool(v) => v.len(),
            Data::Str(v) => v.codes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn elem_type(&self) -> ElemType {
        match &self.data {
            Data::F32(_) => ElemType::F32,
            Data::F64(_) => ElemType::F64,
            Data::I64(_) => ElemType::I64,
            Data::Bool(_) => ElemType::Bool,
            Data::Str(_) => ElemType::Str,
        }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The tensor seen as a matrix: (rows, columns) with every dimension after the first
    /// folded into columns; a scalar is one row of one column.
    pub fn matrix_shape(&self) -> (usize, usize) {
        match self.shape.split_first() {
            None => (1, 1),
            Some((&rows, rest)) => (rows, rest.iter().product()),
        }
    }

    typed_accessor!(as_f32, F32, f32);
    typed_accessor!(as_f64, F64, f64);
    typed_accessor!(as_i64, I64, i64);
    typed_accessor!(as_bool, Bool, bool);

    pub fn as_strings(&self) -> Result<&Strings> {
        match &self.data {
            Data::Str(values) => Ok(values),
            _ => Err(self.type_error("string")),
        }
    }

    /// Every element as f64 (numeric and boolean tensors).
    pub fn to_f64(&self) -> Result<Vec<f64>> {
        Ok(match &self.data {
            Data::F64(v) => v.clone(),
            Data::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
            Data::Str(_) => return Err(self.type_error("numeric")),
        })
    }

    /// Every element as f64, borrowed when the tensor already holds f64.
    pub fn f64_values(&self) -> Result<Cow<'_, [f64]>> {
        match &self.data {
            Data::F64(v) => Ok(Cow::Borrowed(v)),
            _ => self.to_f64().map(Cow::Owned),
        }
    }

    /// Every element as i64 (integer-valued indices, shapes and axes).
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        match &self.data {
            Data::I64(v) => Ok(v.clone()),
            _ => Err(self.type_error("int64")),
        }
    }

    /// A tensor of the same element type holding `indices` of this one's elements.
    pub fn gather_elements(&self, shape: Vec<usize>, indices: &[usize]) -> Tensor {
        let data = match &self.data {
            Data::F32(v) => Data::F32(indices.iter().map(|&i| v[i]).collect()),
            Data::F64(v) => Data::F64(indices.iter().map(|&i| v[i]).collect()),
            Data::I64(v) => Data::I64(indices.iter().map(|&i| v[i]).collect()),
            Data::Bool(v) => Data::Bool(indices.iter().map(|&i| v[i]).collect()),
            Data::Str(v) => Data::Str(v.select(indices.iter().copied())),
        };
        Tensor::new(shape, data)
    }

    pub fn reshaped(mut self, shape: Vec<usize>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), self.len());
        self.shape = shape;
        self
    }

    fn type_error(&self, wanted: &str) -> Error {
        Error::Model(format!(
            "expected a {wanted} tensor, got {}",
            self.elem_type().name()
        ))
    }

    /// Decode an ONNX initializer or attribute tensor.
    pub fn from_proto(proto: &TensorProto) -> Result<Tensor> {
        let shape: Vec<usize> = proto
            .dims
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                Error::Model(format!("tensor '{}' has a negative dimension", proto.name))
            })?;
        let count: usize = shape.iter().product();
        let raw = &proto.raw_data;
        let data = match proto.data_type {
            data_type::FLOAT => Data::F32(if raw.is_empty() {
                proto.float_data.clone()
            } else {
                from_le_bytes(raw, f32::from_le_bytes)
            }),
            data_type::DOUBLE => Data::F64(if raw.is_empty() {
                proto.double_data.clone()
            } else {
                from_le_bytes(raw, f64::from_le_bytes)
            }),
            data_type::INT64 => Data::I64(if raw.is_empty() {
                proto.int64_data.clone()
            } else {
                from_le_bytes(raw, i64::from_le_bytes)
            }),
            data_type::INT32 => Data::I64(if raw.is_empty() {
                proto.int32_data.iter().map(|&x| i64::from(x)).collect()
            } else {
                from_le_bytes(raw, i32::from_le_bytes)
                    .into_iter()
                    .map(i64::from)
                    .collect()
            }),
            data_type::BOOL => Data::Bool(if raw.is_empty() {
                proto.int32_data.iter().map(|&x| x != 0).collect()
            } else {
                raw.iter().map(|&b| b != 0).collect()
            }),
            data_type::STRING => Data::Str(Strings::from_values(
                proto
                    .string_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            )),
            other => {
                return Err(Error::Unsupported(format!(
                    "tensor '{}' has ONNX element type {other}, outside float, double, int32, \
                     int64, bool and string",
                    proto.name
                )))
            }
        };
        let tensor = Tensor { shape, data };
        if tensor.len() != count {
            return Err(Error::Model(format!(
                "tensor '{}' holds {} values for shape {:?}",
                proto.name,
                tensor.len(),
                tensor.shape
            )));
        }
        Ok(tensor)
    }
}

fn from_le_bytes<T, const N: usize>(raw: &[u8], convert: fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|chunk| convert(chunk.try_into().expect("chunks_exact gives N bytes")))
        .collect()
}
