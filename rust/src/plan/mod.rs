//! The native engine: an ONNX tabular graph compiled into kernels and run over Arrow batches.
//!
//! `onnx` decodes the model, `graph` builds one kernel per node (`ops`) or per fused chain
//! (`fusion`), `columns` turns Arrow
//! columns into input tensors block by block, and `execute` runs blocks of rows in parallel.

pub mod columns;
pub mod execute;
pub mod fusion;
pub mod graph;
pub mod isa;
pub mod onnx;
pub mod ops;
mod python;
pub mod score_columns;
pub mod tensor;

pub use python::PyPlan;
