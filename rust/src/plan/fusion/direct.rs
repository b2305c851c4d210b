//! A graph that is one fused linear model and its head, run straight from the Arrow columns
//! into the output buffers.
//!
//! The general executor copies each block's columns into input tensors, runs one kernel per
//! node and stacks the blocks' outputs at the end. Here each block reads the Arrow values in
//! place, a string column's dictionary is mapped to categories once per batch (a row then
//! costs one table read), the scores and the head's buffers are reused from block to block,
//! and every block writes its rows of each output where they end up: no tensors per block and
//! no second copy of the results.

use std::sync::Arc;

use arrow_array::{Array, Int32Array};
use rayon::prelude::*;

use super::head::{Head, Output};
use super::linear::{transpose, FusedLinear};
use super::reads::Input;
use crate::error::{Error, Result};
use crate::plan::columns::{ColumnView, InputColumns};
use crate::plan::graph::GraphInput;
use crate::plan::isa::Isa;
use crate::plan::tensor::{Data, Strings, Tensor};

pub struct Direct {
    linear: FusedLinear,
    /// The graph input each of the linear kernel's inputs is.
    inputs: Vec<String>,
    head: Head,
}

/// What a block reads: the Arrow columns of one input of the linear kernel, in place.
enum Source<'a> {
    Numbers(Vec<ColumnView<'a>>),
    /// Dictionary keys; null rows take the table's last entry.
    Strings(&'a Int32Array),
}

/// The batch as the linear kernel reads it.
struct Sources<'a> {
    inputs: Vec<Source<'a>>,
    /// For each encoder, the category of each entry of its input's dictionary.
    categories: Vec<Vec<u32>>,
}

/// A block's buffers, kept from one block to the next on each thread.
#[derive(Default)]
struct Scratch {
    values: Vec<f64>,
    sums: Vec<f64>,
    categories: Vec<Vec<u32>>,
    buffers: Vec<Vec<f64>>,
}

/// One output, whole.
enum Buffer {
    F64(Vec<f64>),
    F32(Vec<f32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    Codes(Vec<u32>),
}

/// One block's rows of one output.
enum Part<'a> {
    F64(&'a mut [f64]),
    F32(&'a mut [f32]),
    I64(&'a mut [i64]),
    Bool(&'a mut [bool]),
    Codes(&'a mut [u32]),
}

impl Direct {
    pub(super) fn new(linear: &FusedLinear, inputs: &[String], head: Head) -> Self {
        Self {
            linear: linear.clone(),
            inputs: inputs.to_vec(),
            head,
        }
    }

    pub fn nodes(&self) -> &[String] {
        &self.head.nodes
    }

    /// The graph's outputs for `rows` rows of `columns` (one per graph input), in blocks of
    /// `block_rows`; `None` when the columns are not what the kernel was built for, which the
    /// general executor then reports.
    pub fn run(
        &self,
        graph_inputs: &[GraphInput],
        columns: &[InputColumns],
        rows: usize,
        block_rows: usize,
        pool: &rayon::ThreadPool,
    ) -> Result<Option<Vec<Tensor>>> {
        let Some(sources) = self.sources(graph_inputs, columns) else {
            return Ok(None);
        };
        let blocks: Vec<(usize, usize)> = (0..rows)
            .step_by(block_rows)
            .map(|start| (start, (start + block_rows).min(rows)))
            .collect();
        let mut buffers: Vec<Buffer> = self
            .head
            .outputs
            .iter()
            .map(|output| Buffer::new(output, rows))
            .collect();
        let mut parts: Vec<Vec<Part>> = blocks.iter().map(|_| Vec::new()).collect();
        for (buffer, output) in buffers.iter_mut().zip(&self.head.outputs) {
            for (block, part) in parts.iter_mut().zip(buffer.split(&blocks, width(output))) {
                block.push(part);
            }
        }
        let isa = Isa::detect();
        pool.install(|| {
            blocks.into_par_iter().zip(parts).try_for_each_init(
                Scratch::default,
                |scratch, ((start, end), mut parts)| {
                    self.block(isa, &sources, start, end, scratch, &mut parts)
                },
            )
        })?;
        Ok(Some(
            buffers
                .into_iter()
                .zip(&self.head.outputs)
                .map(|(buffer, output)| buffer.into_tensor(output, rows))
                .collect(),
        ))
    }

    fn sources<'a>(
        &self,
        graph_inputs: &[GraphInput],
        columns: &'a [InputColumns],
    ) -> Option<Sources<'a>> {
        let mut inputs = Vec::new();
        let mut tables = Vec::new();
        for (name, kind) in self.inputs.iter().zip(&self.linear.reads.inputs) {
            let input = graph_inputs.iter().position(|i| &i.name == name)?;
            let views = columns.get(input)?.views();
            let (source, table) = match (kind, &views[..]) {
                (Input::Numbers { width }, _) if views.len() == *width => {
                    let numeric = views
                        .iter()
                        .all(|v| matches!(v, ColumnView::Numbers { .. }));
                    (numeric.then_some(Source::Numbers(views))?, None)
                }
                (Input::Strings, &[ColumnView::Strings { keys, table }]) => {
                    (Source::Strings(keys), Some(table))
                }
                _ => return None,
            };
            inputs.push(source);
            tables.push(table);
        }
        // Each encoder looks each distinct string up once per batch.
        let categories = self
            .linear
            .reads
            .encoders
            .iter()
            .map(|encoder| {
                let unknown = encoder.count as u32;
                let table = tables[encoder.input]?;
                Some(
                    table
                        .iter()
                        .map(|s| encoder.positions.get(s).copied().unwrap_or(unknown))
                        .collect(),
                )
            })
            .collect::<Option<_>>()?;
        Some(Sources { inputs, categories })
    }

    /// One block, compiled for the widest instruction set the CPU has (see `isa`): the same
    /// code, so the same results.
    #[allow(unsafe_code)]
    fn block(
        &self,
        isa: Isa,
        sources: &Sources,
        start: usize,
        end: usize,
        scratch: &mut Scratch,
        parts: &mut [Part],
    ) -> Result<()> {
        assert!(isa.supported(), "{isa:?} on a CPU without it");
        match isa {
            // SAFETY: the CPU has AVX-512 F/VL/DQ/BW, AVX2, FMA, BMI1/2: checked above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.block_avx512(sources, start, end, scratch, parts) },
            // SAFETY: as above, the CPU has AVX2, FMA, BMI1/2.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.block_avx2(sources, start, end, scratch, parts) },
            _ => self.block_plain(sources, start, end, scratch, parts),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,bmi1,bmi2")]
    fn block_avx512(
        &self,
        sources: &Sources,
        start: usize,
        end: usize,
        scratch: &mut Scratch,
        parts: &mut [Part],
    ) -> Result<()> {
        self.block_plain(sources, start, end, scratch, parts)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,bmi1,bmi2")]
    fn block_avx2(
        &self,
        sources: &Sources,
        start: usize,
        end: usize,
        scratch: &mut Scratch,
        parts: &mut [Part],
    ) -> Result<()> {
        self.block_plain(sources, start, end, scratch, parts)
    }

    #[inline(always)]
    fn block_plain(
        &self,
        sources: &Sources,
        start: usize,
        end: usize,
        scratch: &mut Scratch,
        parts: &mut [Part],
    ) -> Result<()> {
        let rows = end - start;
        let encoders = &self.linear.reads.encoders;
        scratch.categories.resize_with(encoders.len(), Vec::new);
        for (e, categories) in scratch.categories.iter_mut().enumerate() {
            let Source::Strings(keys) = &sources.inputs[encoders[e].input] else {
                unreachable!("encoders read string sources")
            };
            categories_of(keys, &sources.categories[e], start, end, categories)?;
        }
        let categories: Vec<&[u32]> = scratch.categories.iter().map(Vec::as_slice).collect();
        let load = |input: usize, column: usize, values: &mut [f64]| {
            let Source::Numbers(views) = &sources.inputs[input] else {
                unreachable!("numeric terms read numeric sources")
            };
            let ColumnView::Numbers { values: x, nulls } = &views[column] else {
                unreachable!("checked by sources")
            };
            values.copy_from_slice(&x[start..end]);
            if let Some(nulls) = nulls.filter(|n| n.null_count() > 0) {
                for (i, value) in values.iter_mut().enumerate() {
                    if nulls.is_null(start + i) {
                        *value = f64::NAN;
                    }
                }
            }
            Ok(())
        };
        self.linear.accumulate(
            rows,
            load,
            &categories,
            &mut scratch.values,
            &mut scratch.sums,
        )?;
        let buffers = &mut scratch.buffers;
        buffers.resize_with(1, Vec::new);
        buffers[0].clear();
        buffers[0].resize(rows * self.linear.outputs, 0.0);
        transpose(&scratch.sums, rows, &mut buffers[0]);
        self.head.run(rows, buffers);
        for (output, part) in self.head.outputs.iter().zip(parts) {
            write(output, buffers, part);
        }
        Ok(())
    }
}

/// The category of rows `start..end` of a dictionary column, from the category of each
/// dictionary entry (`of_entry`, whose last entry stands for null).
#[inline(always)]
fn categories_of(
    keys: &Int32Array,
    of_entry: &[u32],
    start: usize,
    end: usize,
    out: &mut Vec<u32>,
) -> Result<()> {
    let entries = of_entry.len();
    let keys_here = &keys.values()[start..end];
    out.clear();
    out.resize(keys_here.len(), 0);
    // Keys are clamped into the table (a vectorized gather); any that needed it is an error.
    let last = entries - 1;
    let mut outside = false;
    for (o, &key) in out.iter_mut().zip(keys_here) {
        let key = key as u32 as usize;
        outside |= key > last;
        *o = of_entry[key.min(last)];
    }
    let nulls = keys.nulls().filter(|n| n.null_count() > 0);
    if let Some(nulls) = nulls {
        // A null row's key may be anything: it takes the null entry instead.
        outside = false;
        for (i, (o, &key)) in out.iter_mut().zip(keys_here).enumerate() {
            if nulls.is_null(start + i) {
                *o = of_entry[last];
            } else if key as u32 as usize > last {
                outside = true;
            }
        }
    }
    if outside {
        let key = keys_here
            .iter()
            .enumerate()
            .find(|&(i, &k)| {
                k as u32 as usize > last && nulls.is_none_or(|n| n.is_valid(start + i))
            })
            .map_or(0, |(_, &k)| k);
        return Err(bad_key(key, entries));
    }
    Ok(())
}

fn bad_key(key: i32, entries: usize) -> Error {
    Error::Model(format!(
        "fused linear model: dictionary key {key} is outside its {} values",
        entries - 1
    ))
}

fn width(output: &Output) -> usize {
    match output {
        Output::Numbers { shape, .. } | Output::Label { shape, .. } => shape.width(),
    }
}

/// Copy one block's values of `output` from the head's buffers into its part.
#[inline(always)]
fn write(output: &Output, buffers: &[Vec<f64>], part: &mut Part) {
    match (output, part) {
        (Output::Numbers { buffer, .. }, Part::F64(out)) => out.copy_from_slice(&buffers[*buffer]),
        (Output::Label { buffer, table, .. }, part) => {
            let positions = buffers[*buffer].iter().map(|&p| p as usize);
            macro_rules! gather {
                ($out:expr, $values:expr) => {
                    for (o, p) in $out.iter_mut().zip(positions) {
                        *o = $values[p];
                    }
                };
            }
            match (&table.data, part) {
                (Data::F64(t), Part::F64(out)) => gather!(out, t),
                (Data::F32(t), Part::F32(out)) => gather!(out, t),
                (Data::I64(t), Part::I64(out)) => gather!(out, t),
                (Data::Bool(t), Part::Bool(out)) => gather!(out, t),
                (Data::Str(t), Part::Codes(out)) => gather!(out, t.codes),
                _ => unreachable!("buffers are made for their table's type"),
            }
        }
        _ => unreachable!("number outputs have float64 buffers"),
    }
}

impl Buffer {
    fn new(output: &Output, rows: usize) -> Self {
        let n = rows * width(output);
        match output {
            Output::Numbers { .. } => Self::F64(vec![0.0; n]),
            Output::Label { table, .. } => match &table.data {
                Data::F64(_) => Self::F64(vec![0.0; n]),
                Data::F32(_) => Self::F32(vec![0.0; n]),
                Data::I64(_) => Self::I64(vec![0; n]),
                Data::Bool(_) => Self::Bool(vec![false; n]),
                Data::Str(_) => Self::Codes(vec![0; n]),
            },
        }
    }

    /// Each block's rows, `width` values a row.
    fn split(&mut self, blocks: &[(usize, usize)], width: usize) -> Vec<Part<'_>> {
        macro_rules! split {
            ($values:expr, $variant:ident) => {{
                let mut rest = &mut $values[..];
                let mut parts = Vec::with_capacity(blocks.len());
                for &(start, end) in blocks {
                    let (part, tail) =
                        std::mem::take(&mut rest).split_at_mut((end - start) * width);
                    parts.push(Part::$variant(part));
                    rest = tail;
                }
                parts
            }};
        }
        match self {
            Self::F64(v) => split!(v, F64),
            Self::F32(v) => split!(v, F32),
            Self::I64(v) => split!(v, I64),
            Self::Bool(v) => split!(v, Bool),
            Self::Codes(v) => split!(v, Codes),
        }
    }

    fn into_tensor(self, output: &Output, rows: usize) -> Tensor {
        let (shape, table) = match output {
            Output::Numbers { shape, .. } => (shape.of(rows), None),
            Output::Label { shape, table, .. } => (shape.of(rows), Some(table)),
        };
        let data = match self {
            Self::F64(v) => Data::F64(v),
            Self::F32(v) => Data::F32(v),
            Self::I64(v) => Data::I64(v),
            Self::Bool(v) => Data::Bool(v),
            Self::Codes(codes) => {
                let Some(Data::Str(strings)) = table.map(|t| &t.data) else {
                    unreachable!("codes come from a string table")
                };
                Data::Str(Strings {
                    table: Arc::clone(&strings.table),
                    codes,
                })
            }
        };
        Tensor::new(shape, data)
    }
}
