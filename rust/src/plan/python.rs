//! `Plan`: the native engine's Python face.

use std::collections::HashMap;
use std::sync::Arc;

use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{
    IntoPyArray, PyArrayDescrMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::execute::run_batch;
use super::graph::Graph;
use super::onnx::ModelProto;
use super::score_columns::{score_batch, ScoreColumn};
use super::tensor::{Data, ElemType, Strings, Tensor};
use crate::arrow::batch::PyBatch;
use crate::error::{Error, Result};
use crate::runtime::thread_pool;

#[pyclass(name = "Plan", module = "edgewise._core", frozen)]
pub struct PyPlan {
    graph: Arc<Graph>,
    /// The Arrow columns each graph input reads, in graph input order.
    columns: Vec<Vec<String>>,
}

fn decode(model: &Bound<'_, PyBytes>) -> Result<ModelProto> {
    ModelProto::decode_bytes(model.as_bytes())
}

#[pymethods]
impl PyPlan {
    /// `inputs`: (graph input, tensor type, columns) as in a bundle's manifest; without it,
    /// each graph input reads the column of its own name. `fuse=False` runs one kernel per
    /// node (the reference the fused kernels are tested against).
    #[new]
    #[pyo3(signature = (model, inputs=None, fuse=true))]
    fn new(
        py: Python<'_>,
        model: &Bound<'_, PyBytes>,
        inputs: Option<Vec<(String, String, Vec<String>)>>,
        fuse: bool,
    ) -> PyResult<Self> {
        let proto = decode(model)?;
        let graph = py.detach(|| Graph::build(&proto, fuse))?;
        let layout: HashMap<String, Vec<String>> = inputs
            .into_iter()
            .flatten()
            .map(|(name, _, columns)| (name, columns))
            .collect();
        let columns = graph
            .inputs
            .iter()
            .map(|input| match layout.get(&input.name) {
                Some(columns) => Ok(columns.clone()),
                None if layout.is_empty() => Ok(vec![input.name.clone()]),
                None => Err(Error::Model(format!(
                    "graph input '{}' has no columns in the input layout",
                    input.name
                ))),
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            graph: Arc::new(graph),
            columns,
        })
    }

    /// Why the native engine cannot run `model` (one reason per node); empty when it can.
    #[staticmethod]
    fn unsupported(py: Python<'_>, model: &Bound<'_, PyBytes>) -> PyResult<Vec<String>> {
        let proto = decode(model)?;
        Ok(py.detach(|| Graph::unsupported(&proto))?)
    }

    #[getter]
    fn input_names(&self) -> Vec<String> {
        self.graph.inputs.iter().map(|i| i.name.clone()).collect()
    }

    /// The chains of nodes that run as one fused kernel, one description each.
    #[getter]
    fn fused(&self) -> Vec<String> {
        self.graph.fused.clone()
    }

    #[getter]
    fn output_names(&self) -> Vec<String> {
        self.graph
            .outputs
            .iter()
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Run on numpy arrays keyed by graph input name, like onnxruntime's `session.run`.
    fn run_tensors<'py>(
        &self,
        py: Python<'py>,
        tensors: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let inputs = self
            .graph
            .inputs
            .iter()
            .map(|input| {
                let value = tensors.get_item(&input.name)?.ok_or_else(|| {
                    Error::InvalidArgument(format!("graph input '{}' is not given", input.name))
                })?;
                tensor_from_numpy(&input.name, input.elem_type, &value)
            })
            .collect::<PyResult<Vec<_>>>()?;
        let outputs = py.detach(|| self.graph.run(inputs))?;
        self.to_dict(py, outputs)
    }

    /// Run on an Arrow batch, in parallel over blocks of rows.
    #[pyo3(signature = (batch, threads=None))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        batch: &PyBatch,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let pool = thread_pool(threads)?;
        let outputs = py.detach(|| run_batch(&self.graph, &self.columns, &batch.batch, &pool))?;
        self.to_dict(py, outputs)
    }

    /// Run on an Arrow batch and return the score columns as a batch: `columns` lists
    /// (column name, graph output, column of a 2-D output or None). No numpy array is made.
    #[pyo3(signature = (batch, columns, threads=None))]
    fn score(
        &self,
        py: Python<'_>,
        batch: &PyBatch,
        columns: Vec<(String, String, Option<usize>)>,
        threads: Option<usize>,
    ) -> PyResult<PyBatch> {
        let names = self.output_names();
        let columns = columns
            .into_iter()
            .map(|(name, output, index)| {
                let output = names.iter().position(|n| *n == output).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "score column '{name}': no graph output '{output}'"
                    ))
                })?;
                Ok(ScoreColumn {
                    name,
                    output,
                    index,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let pool = thread_pool(threads)?;
        let batch = &batch.batch;
        let scores = py.detach(|| {
            let outputs = run_batch(&self.graph, &self.columns, batch, &pool)?;
            score_batch(outputs, &names, &columns, batch.num_rows())
        })?;
        Ok(PyBatch::new(scores))
    }
}

impl PyPlan {
    fn to_dict<'py>(&self, py: Python<'py>, outputs: Vec<Tensor>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for ((name, _), tensor) in self.graph.outputs.iter().zip(outputs) {
            dict.set_item(name, tensor_to_numpy(py, tensor))?;
        }
        Ok(dict)
    }
}

/// A numpy array that owns the tensor's buffer (no copy), or an object array of str.
fn tensor_to_numpy(py: Python<'_>, tensor: Tensor) -> Bound<'_, PyAny> {
    let shape = IxDyn(&tensor.shape);
    fn array<T>(shape: IxDyn, values: Vec<T>) -> ArrayD<T> {
        ArrayD::from_shape_vec(shape, values).expect("tensor shapes match their data")
    }
    match tensor.data {
        Data::F64(v) => array(shape, v).into_pyarray(py).into_any(),
        Data::F32(v) => array(shape, v).into_pyarray(py).into_any(),
        Data::I64(v) => array(shape, v).into_pyarray(py).into_any(),
        Data::Bool(v) => array(shape, v).into_pyarray(py).into_any(),
        Data::Str(strings) => {
            // One Python str per distinct value; rows share references to it.
            let objects: Vec<Py<PyAny>> = strings
                .table
                .iter()
                .map(|s| PyString::new(py, s).into_any().unbind())
                .collect();
            let values = strings
                .codes
                .iter()
                .map(|&c| objects[c as usize].clone_ref(py))
                .collect();
            array(shape, values).into_pyarray(py).into_any()
        }
    }
}

fn tensor_from_numpy(name: &str, wanted: ElemType, value: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let untyped = value.cast::<PyUntypedArray>().map_err(|_| {
        Error::InvalidArgument(format!("graph input '{name}': expected a numpy array"))
    })?;
    let shape = untyped.shape().to_vec();
    let py = value.py();
    let dtype = untyped.dtype();
    fn values<T: numpy::Element + Clone>(value: &Bound<'_, PyAny>) -> PyResult<Vec<T>> {
        let array: PyReadonlyArrayDyn<'_, T> = value.extract()?;
        Ok(array.as_array().iter().cloned().collect())
    }
    let data = if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) {
        Data::F64(values(value)?)
    } else if dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
        Data::F32(values(value)?)
    } else if dtype.is_equiv_to(&numpy::dtype::<i64>(py)) {
        Data::I64(values(value)?)
    } else if dtype.is_equiv_to(&numpy::dtype::<i32>(py)) {
        Data::I64(values::<i32>(value)?.into_iter().map(i64::from).collect())
    } else if dtype.is_equiv_to(&numpy::dtype::<bool>(py)) {
        Data::Bool(values(value)?)
    } else if dtype.is_equiv_to(&numpy::dtype::<Py<PyAny>>(py)) {
        let objects: PyReadonlyArrayDyn<'_, Py<PyAny>> = value.extract()?;
        let mut table = Vec::new();
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut codes = Vec::with_capacity(objects.len());
        for object in objects.as_array().iter() {
            let text: String = object.bind(py).extract().map_err(|_| {
                Error::InvalidArgument(format!("graph input '{name}': object arrays must hold str"))
            })?;
            let code = *seen.entry(text.clone()).or_insert_with(|| {
                table.push(text);
                (table.len() - 1) as u32
            });
            codes.push(code);
        }
        Data::Str(Strings {
            table: Arc::new(table),
            codes,
        })
    } else {
        return Err(Error::InvalidArgument(format!(
            "graph input '{name}': numpy dtype {dtype} is not float32, float64, int64, int32, \
             bool or str objects"
        ))
        .into());
    };
    let tensor = Tensor::new(shape, data);
    if tensor.elem_type() != wanted {
        return Err(Error::InvalidArgument(format!(
            "graph input '{name}' is {}, got a {} array",
            wanted.name(),
            tensor.elem_type().name()
        ))
        .into());
    }
    Ok(tensor)
}
