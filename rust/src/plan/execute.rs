//! Running a graph over a whole Arrow batch: blocks of rows in parallel, results joined.

use arrow_array::RecordBatch;
use rayon::prelude::*;

use super::columns::InputColumns;
use super::graph::Graph;
use super::tensor::{Data, Strings, Tensor};
use crate::error::{Error, Result};

/// Rows per block: small enough that a block's intermediate values (a few dozen columns of
/// f64 each) stay in the core's L2 cache, large enough that per-block overhead (one
/// allocation per value, one call per kernel) is noise. Measured on the logistic pipeline:
/// 1024 rows ran the model step fastest of 512, 1024, 4096.
pub const BLOCK_ROWS: usize = 1024;

/// Run `graph` on `batch`; `columns[i]` names the columns of graph input `i`.
pub fn run_batch(
    graph: &Graph,
    columns: &[Vec<String>],
    batch: &RecordBatch,
    pool: &rayon::ThreadPool,
) -> Result<Vec<Tensor>> {
    let inputs = graph
        .inputs
        .iter()
        .zip(columns)
        .map(|(input, names)| InputColumns::new(batch, input, names))
        .collect::<Result<Vec<_>>>()?;
    let rows = batch.num_rows();
    if let Some(direct) = &graph.direct {
        if let Some(outputs) = direct.run(&graph.inputs, &inputs, rows, BLOCK_ROWS, pool)? {
            return Ok(outputs);
        }
    }
    let blocks: Vec<(usize, usize)> = if graph.row_wise && rows > 0 {
        (0..rows)
            .step_by(BLOCK_ROWS)
            .map(|start| (start, (start + BLOCK_ROWS).min(rows)))
            .collect()
    } else {
        vec![(0, rows)]
    };
    let results: Vec<Vec<Tensor>> = pool.install(|| {
        blocks
            .par_iter()
            .map(|&(start, end)| {
                let block = inputs.iter().map(|c| c.block(start, end)).collect();
                let outputs = graph.run(block)?;
                if blocks.len() > 1 {
                    check_rows(graph, &outputs, end - start)?;
                }
                Ok(outputs)
            })
            .collect::<Result<_>>()
    })?;
    let mut per_output: Vec<Vec<Tensor>> = graph.outputs.iter().map(|_| Vec::new()).collect();
    for block in results {
        for (slot, tensor) in per_output.iter_mut().zip(block) {
            slot.push(tensor);
        }
    }
    per_output.into_iter().map(concat_rows).collect()
}

fn check_rows(graph: &Graph, outputs: &[Tensor], rows: usize) -> Result<()> {
    for ((name, _), tensor) in graph.outputs.iter().zip(outputs) {
        if tensor.shape.first() != Some(&rows) {
            return Err(Error::Model(format!(
                "graph output '{name}' has shape {:?} for a block of {rows} rows: the graph \
                 mixes rows, which the native engine cannot split into blocks",
                tensor.shape
            )));
        }
    }
    Ok(())
}

/// Stack block results along the first dimension.
fn concat_rows(parts: Vec<Tensor>) -> Result<Tensor> {
    if parts.len() == 1 {
        return Ok(parts.into_iter().next().expect("one part"));
    }
    let mut shape = parts[0].shape.clone();
    shape[0] = parts.iter().map(|p| p.shape[0]).sum();
    macro_rules! stack {
        ($variant:ident) => {{
            let mut out = Vec::with_capacity(shape.iter().product());
            for part in &parts {
                match &part.data {
                    Data::$variant(values) => out.extend_from_slice(values),
                    _ => unreachable!("every block of one output has its type"),
                }
            }
            Data::$variant(out)
        }};
    }
    let data = match &parts[0].data {
        Data::F64(_) => stack!(F64),
        Data::F32(_) => stack!(F32),
        Data::I64(_) => stack!(I64),
        Data::Bool(_) => stack!(Bool),
        Data::Str(_) => {
            let strings: Vec<&Strings> = parts
                .iter()
                .map(|p| p.as_strings())
                .collect::<Result<_>>()?;
            let order = strings
                .iter()
                .enumerate()
                .flat_map(|(p, s)| (0..s.codes.len()).map(move |i| (p, i)));
            Data::Str(Strings::concat(&strings, order))
        }
    };
    Ok(Tensor::new(shape, data))
}
