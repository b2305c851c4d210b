//! `Graph`: an ONNX graph turned into kernels over numbered value slots, run on one block of
//! rows at a time.

use std::collections::HashMap;

use super::fusion;
use super::onnx::{ModelProto, NodeProto};
use super::ops::{self, Context, Kernel};
use super::tensor::{ElemType, Tensor};
use crate::error::{Error, Result};

/// A graph input: its name, slot and declared element type.
pub struct GraphInput {
    pub name: String,
    pub slot: usize,
    pub elem_type: ElemType,
}

struct Step {
    kernel: Box<dyn Kernel>,
    inputs: Vec<Option<usize>>,
    outputs: Vec<usize>,
    /// Slots whose last reader is this step: freed right after it, to keep blocks in cache.
    release: Vec<usize>,
    describe: String,
}

pub struct Graph {
    pub inputs: Vec<GraphInput>,
    pub outputs: Vec<(String, usize)>,
    constants: HashMap<usize, Tensor>,
    steps: Vec<Step>,
    slots: usize,
    /// Every kernel keeps rows apart, so blocks of rows can run independently.
    pub row_wise: bool,
    /// What was fused into single kernels (see `fusion`), one description each.
    pub fused: Vec<String>,
    /// The whole graph as one fused model that runs straight from the Arrow columns, when the
    /// fusion covers every node.
    pub direct: Option<fusion::Direct>,
}

/// Names value slots in order of first appearance.
#[derive(Default)]
struct Slots(HashMap<String, usize>);

impl Slots {
    fn slot(&mut self, name: &str) -> usize {
        let next = self.0.len();
        *self.0.entry(name.to_owned()).or_insert(next)
    }

    fn get(&self, name: &str) -> Option<usize> {
        self.0.get(name).copied()
    }
}

impl Graph {
    /// Build every kernel, fusing the chains that can run as one; when nodes fall outside the
    /// subset, the error lists them all.
    pub fn from_model(model: &ModelProto) -> Result<Graph> {
        Self::build(model, true)
    }

    /// `from_model`, with fusion switched on or off (off: one kernel per node, as a reference).
    pub fn build(model: &ModelProto, fuse: bool) -> Result<Graph> {
        match Self::assemble(model, fuse)? {
            Ok(graph) => Ok(graph),
            Err(unsupported) => Err(Error::Unsupported(unsupported.join("; "))),
        }
    }

    /// Why the native engine cannot run `model`: one reason per node or input outside its
    /// subset; empty when it can. A malformed model is an error.
    pub fn unsupported(model: &ModelProto) -> Result<Vec<String>> {
        Ok(Self::assemble(model, false)?.err().unwrap_or_default())
    }

    fn assemble(model: &ModelProto, fuse: bool) -> Result<std::result::Result<Graph, Vec<String>>> {
        let graph = model.graph.as_ref().expect("checked when decoded");
        let mut slots = Slots::default();
        let mut named_constants = HashMap::new();
        for proto in &graph.initializer {
            named_constants.insert(proto.name.clone(), Tensor::from_proto(proto)?);
        }
        let mut inputs = Vec::new();
        let mut unsupported = Vec::new();
        for info in graph
            .input
            .iter()
            .filter(|i| !named_constants.contains_key(&i.name))
        {
            let code = info.elem_type().unwrap_or_default();
            match ElemType::from_onnx(code) {
                Some(elem_type) => inputs.push(GraphInput {
                    name: info.name.clone(),
                    slot: slots.slot(&info.name),
                    elem_type,
                }),
                None => unsupported.push(format!(
                    "graph input '{}' has ONNX element type {code}, outside float, double, \
                     int64, bool and string",
                    info.name
                )),
            }
        }
        let opset = model.opset("").unwrap_or(1);
        let mut fusion = fuse
            .then(|| fusion::find(graph, &named_constants, opset))
            .flatten();
        let direct = fusion.as_mut().and_then(|f| f.direct.take());
        let mut steps = Vec::new();
        let mut fusion_step = fusion.map(|f| {
            let step = Step {
                inputs: f.inputs.iter().map(|name| Some(slots.slot(name))).collect(),
                outputs: vec![slots.slot(&f.output)],
                kernel: f.kernel,
                release: Vec::new(),
                describe: f.describe,
            };
            (f.absorbed, f.at, step)
        });
        let fused = fusion_step
            .iter()
            .map(|(_, _, step)| step.describe.clone())
            .collect();
        for (i, node) in graph.node.iter().enumerate() {
            if let Some((absorbed, at, _)) = &fusion_step {
                if absorbed[i] {
                    if i == *at {
                        steps.push(fusion_step.take().expect("checked above").2);
                    }
                    continue;
                }
            }
            match Self::step(model, node, &named_constants, &mut slots) {
                Ok(step) => steps.push(step),
                Err(Error::Unsupported(reason)) => unsupported.push(reason),
                Err(other) => return Err(other),
            }
        }
        if !unsupported.is_empty() {
            return Ok(Err(unsupported));
        }
        let constants = named_constants
            .into_iter()
            .filter_map(|(name, tensor)| slots.get(&name).map(|slot| (slot, tensor)))
            .collect::<HashMap<_, _>>();
        let outputs = graph
            .output
            .iter()
            .map(|o| {
                let slot = slots.get(&o.name).ok_or_else(|| {
                    Error::Model(format!("graph output '{}' is produced by no node", o.name))
                })?;
                Ok((o.name.clone(), slot))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut graph = Graph {
            row_wise: steps.iter().all(|s| s.kernel.row_wise()),
            inputs,
            outputs,
            constants,
            steps,
            slots: slots.0.len(),
            fused,
            direct,
        };
        graph.check_order()?;
        graph.plan_releases();
        Ok(Ok(graph))
    }

    fn step(
        model: &ModelProto,
        node: &NodeProto,
        constants: &HashMap<String, Tensor>,
        slots: &mut Slots,
    ) -> Result<Step> {
        let domain = if node.domain.is_empty() {
            ""
        } else {
            &node.domain
        };
        let opset = model.opset(domain).unwrap_or(1);
        let kernel = ops::build(&Context::new(node, opset, constants))?;
        Ok(Step {
            kernel,
            inputs: node
                .input
                .iter()
                .map(|name| (!name.is_empty()).then(|| slots.slot(name)))
                .collect(),
            outputs: node.output.iter().map(|name| slots.slot(name)).collect(),
            release: Vec::new(),
            describe: node.describe(),
        })
    }

    /// ONNX requires nodes in topological order, every value assigned once: each input must
    /// exist before it is read, and no node may overwrite an existing value.
    fn check_order(&self) -> Result<()> {
        let mut ready = vec![false; self.slots];
        for input in &self.inputs {
            ready[input.slot] = true;
        }
        for &slot in self.constants.keys() {
            ready[slot] = true;
        }
        for step in &self.steps {
            if step.inputs.iter().flatten().any(|&s| !ready[s]) {
                return Err(Error::Model(format!(
                    "{} reads a value that no earlier node, input or initializer provides",
                    step.describe
                )));
            }
            for &slot in &step.outputs {
                if ready[slot] {
                    return Err(Error::Model(format!(
                        "{} assigns a value that already exists (ONNX graphs assign each \
                         value once)",
                        step.describe
                    )));
                }
                ready[slot] = true;
            }
        }
        for (name, slot) in &self.outputs {
            if !ready[*slot] {
                return Err(Error::Model(format!(
                    "graph output '{name}' is never computed"
                )));
            }
        }
        Ok(())
    }

    fn plan_releases(&mut self) {
        let mut last_reader = vec![None; self.slots];
        for (i, step) in self.steps.iter().enumerate() {
            for &slot in step.inputs.iter().flatten() {
                last_reader[slot] = Some(i);
            }
        }
        let kept: Vec<usize> = self.outputs.iter().map(|(_, s)| *s).collect();
        for (slot, reader) in last_reader.into_iter().enumerate() {
            if let Some(i) = reader {
                if !kept.contains(&slot) && !self.constants.contains_key(&slot) {
                    self.steps[i].release.push(slot);
                }
            }
        }
    }

    /// Run on one block: `inputs` in the order of `self.inputs`; outputs in graph order.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let mut values: Vec<Option<Tensor>> = vec![None; self.slots];
        for (input, tensor) in self.inputs.iter().zip(inputs) {
            values[input.slot] = Some(tensor);
        }
        for step in &self.steps {
            // A first input that no later step reads is handed over by value, so kernels that
            // only relabel it (Reshape, Identity, same-type Cast) do not copy it.
            let owned_first = match step.inputs.first() {
                Some(&Some(slot))
                    if step.release.contains(&slot) && !step.inputs[1..].contains(&Some(slot)) =>
                {
                    values[slot].take()
                }
                _ => None,
            };
            let rest = usize::from(owned_first.is_some());
            let args: Vec<Option<&Tensor>> = step.inputs[rest..]
                .iter()
                .map(|slot| {
                    slot.and_then(|s| values[s].as_ref().or_else(|| self.constants.get(&s)))
                })
                .collect();
            let results = match owned_first {
                Some(first) => step.kernel.run_owned(first, &args),
                None => step.kernel.run(&args),
            };
            let results = results.map_err(|e| {
                let message = e.to_string();
                // Kernels built from attributes already name their node.
                if message.starts_with(&step.describe) {
                    Error::Model(message)
                } else {
                    Error::Model(format!("{}: {message}", step.describe))
                }
            })?;
            if results.len() < step.outputs.len() {
                return Err(Error::Model(format!(
                    "{} gave {} outputs, the graph reads {}",
                    step.describe,
                    results.len(),
                    step.outputs.len()
                )));
            }
            for &slot in &step.release {
                values[slot] = None;
            }
            for (&slot, tensor) in step.outputs.iter().zip(results) {
                values[slot] = Some(tensor);
            }
        }
        self.outputs
            .iter()
            .map(|(name, slot)| {
                values[*slot]
                    .take()
                    .or_else(|| self.constants.get(slot).cloned())
                    .ok_or_else(|| Error::Model(format!("graph output '{name}' was not computed")))
            })
            .collect()
    }
}
