//! The part of the ONNX protobuf schema (onnx/onnx.proto, IR version 10) that the plan reads.
//!
//! Written by hand with prost's derive so the build needs no `protoc` and no generated code:
//! only the fields a tabular graph uses are declared, and protobuf skips the rest. Field numbers
//! follow onnx.proto exactly.

use prost::Message;

use crate::error::{Error, Result};

#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "7")]
    pub domain: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub string_data: Vec<Vec<u8>>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeProto {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorTypeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorTypeProto {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// One dimension: a fixed size, or a named (symbolic) one. ONNX declares the two as a oneof;
/// two optional fields decode the same bytes.
#[derive(Clone, PartialEq, Message)]
pub struct Dimension {
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// ONNX `TensorProto.DataType` codes the plan knows.
pub mod data_type {
    pub const FLOAT: i32 = 1;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const STRING: i32 = 8;
    pub const BOOL: i32 = 9;
    pub const DOUBLE: i32 = 11;
}

impl ModelProto {
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self> {
        let model = ModelProto::decode(bytes)
            .map_err(|e| Error::Model(format!("not an ONNX model: {e}")))?;
        if model.graph.is_none() {
            return Err(Error::Model("not an ONNX model: it has no graph".into()));
        }
        Ok(model)
    }

    /// The opset version the model imports for `domain` ("" is the default ONNX domain).
    pub fn opset(&self, domain: &str) -> Option<i64> {
        let wanted = if domain == "ai.onnx" { "" } else { domain };
        self.opset_import
            .iter()
            .find(|o| o.domain == wanted || (wanted.is_empty() && o.domain == "ai.onnx"))
            .map(|o| o.version)
    }
}

impl ValueInfoProto {
    pub fn elem_type(&self) -> Option<i32> {
        Some(self.r#type.as_ref()?.tensor_type.as_ref()?.elem_type)
    }

    /// The declared size of every dimension, `None` where it is symbolic or unknown; `None`
    /// when the value declares no shape.
    pub fn dims(&self) -> Option<Vec<Option<usize>>> {
        let shape = self.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref()?;
        Some(
            shape
                .dim
                .iter()
                .map(|d| d.dim_value.and_then(|v| usize::try_from(v).ok()))
                .collect(),
        )
    }
}

impl NodeProto {
    /// "domain:OpType" with the default domain spelled `ai.onnx`, as error messages show it.
    pub fn qualified_op(&self) -> String {
        let domain = if self.domain.is_empty() {
            "ai.onnx"
        } else {
            &self.domain
        };
        format!("{domain}:{}", self.op_type)
    }

    /// How errors name this node: its op and, when it has one, its name.
    pub fn describe(&self) -> String {
        if self.name.is_empty() {
            format!("{} node", self.qualified_op())
        } else {
            format!("{} node '{}'", self.qualified_op(), self.name)
        }
    }

    pub fn attribute(&self, name: &str) -> Option<&AttributeProto> {
        self.attribute.iter().find(|a| a.name == name)
    }
}
