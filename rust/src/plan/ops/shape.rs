//! Operators that move elements without computing: Concat, Reshape, Flatten, Gather, Slice,
//! Squeeze and Unsqueeze.

use super::{optional_i64, required, Context, Kernel};
use crate::error::{Error, Result};
use crate::plan::tensor::{Data, Strings, Tensor};

/// `axis` (possibly negative) as an index into a shape of `rank` dimensions.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize> {
    let rank_i = rank as i64;
    let resolved = if axis < 0 { axis + rank_i } else { axis };
    if (0..rank_i).contains(&resolved) {
        Ok(resolved as usize)
    } else {
        Err(Error::Model(format!(
            "axis {axis} is out of range for rank {rank}"
        )))
    }
}

/// Row-major offsets of every element of the sub-grid that picks `picks[d]` along each
/// dimension d of a tensor of `shape`.
fn offsets_of(shape: &[usize], picks: &[Vec<usize>]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let count: usize = picks.iter().map(Vec::len).product();
    let mut out = Vec::with_capacity(count);
    if count == 0 {
        return out;
    }
    let mut index = vec![0usize; picks.len()];
    loop {
        out.push(
            index
                .iter()
                .enumerate()
                .map(|(d, &i)| picks[d][i] * strides[d])
                .sum(),
        );
        let mut d = picks.len();
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            index[d] += 1;
            if index[d] < picks[d].len() {
                break;
            }
            index[d] = 0;
        }
    }
}

pub struct Concat {
    axis: i64,
}

pub fn concat(ctx: &Context) -> Result<Box<dyn Kernel>> {
    if !ctx.attrs.has("axis") {
        return Err(ctx.attrs.error("the axis attribute is required"));
    }
    Ok(Box::new(Concat {
        axis: ctx.attrs.int("axis", 0),
    }))
}

/// Each part's chunks land at their column offset in every output row: a strided copy that
/// stays cheap when the chunks are single values (the usual [N, 1] columns).
fn interleave_chunks<T: Copy + Default>(parts: &[&[T]], chunks: &[usize], outer: usize) -> Vec<T> {
    let width: usize = chunks.iter().sum();
    if width == 0 {
        return Vec::new();
    }
    let mut out = vec![T::default(); outer * width];
    let mut offset = 0;
    for (values, &chunk) in parts.iter().zip(chunks) {
        if chunk == 1 {
            for (row, &v) in out.chunks_exact_mut(width).zip(values.iter()) {
                row[offset] = v;
            }
        } else if chunk > 0 {
            for (row, v) in out.chunks_exact_mut(width).zip(values.chunks_exact(chunk)) {
                row[offset..offset + chunk].copy_from_slice(v);
            }
        }
        offset += chunk;
    }
    out
}

macro_rules! concat_chunks {
    ($variant:ident, $parts:expr, $outer:expr, $chunks:expr) => {{
        let slices: Vec<&[_]> = $parts
            .iter()
            .map(|t| match &t.data {
                Data::$variant(v) => Ok(&v[..]),
                _ => Err(Error::Model(
                    "Concat needs inputs of one element type".into(),
                )),
            })
            .collect::<Result<_>>()?;
        Data::$variant(interleave_chunks(&slices, &$chunks, $outer))
    }};
}

impl Kernel for Concat {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let parts: Vec<&Tensor> = inputs.iter().flatten().copied().collect();
        let first = parts
            .first()
            .ok_or_else(|| Error::Model("Concat needs inputs".into()))?;
        let rank = first.rank();
        let axis = normalize_axis(self.axis, rank)?;
        let mut shape = first.shape.clone();
        shape[axis] = 0;
        for part in &parts {
            let same_elsewhere = part.rank() == rank
                && (0..rank).all(|d| d == axis || part.shape[d] == first.shape[d]);
            if !same_elsewhere {
                return Err(Error::Model(format!(
                    "Concat on axis {axis} of shapes {:?} and {:?}",
                    first.shape, part.shape
                )));
            }
            shape[axis] += part.shape[axis];
        }
        let outer: usize = first.shape[..axis].iter().product();
        let chunks: Vec<usize> = parts
            .iter()
            .map(|p| p.shape[axis..].iter().product())
            .collect();
        let data = match &first.data {
            Data::F64(_) => concat_chunks!(F64, parts, outer, chunks),
            Data::F32(_) => concat_chunks!(F32, parts, outer, chunks),
            Data::I64(_) => concat_chunks!(I64, parts, outer, chunks),
            Data::Bool(_) => concat_chunks!(Bool, parts, outer, chunks),
            Data::Str(_) => {
                let strings: Vec<&Strings> = parts
                    .iter()
                    .map(|p| p.as_strings())
                    .collect::<Result<_>>()?;
                let order = (0..outer).flat_map(|o| {
                    chunks.iter().enumerate().flat_map(move |(p, &chunk)| {
                        (o * chunk..(o + 1) * chunk).map(move |i| (p, i))
                    })
                });
                Data::Str(Strings::concat(&strings, order))
            }
        };
        Ok(vec![Tensor::new(shape, data)])
    }
}

pub struct Reshape {
    allow_zero: bool,
    row_wise: bool,
}

pub fn reshape(ctx: &Context) -> Result<Box<dyn Kernel>> {
    // Rows stay rows when the new shape keeps the batch dimension: a constant shape whose
    // first entry copies it (0) or infers it (-1), as skl2onnx writes ([-1, k], [-1]).
    let row_wise = ctx
        .constant_input(1)
        .and_then(|shape| shape.as_i64().ok())
        .is_some_and(|shape| matches!(shape.first(), Some(-1 | 0)));
    Ok(Box::new(Reshape {
        allow_zero: ctx.attrs.int("allowzero", 0) != 0,
        row_wise,
    }))
}

impl Reshape {
    fn target(&self, x: &Tensor, shape: &Tensor) -> Result<Vec<usize>> {
        let wanted = shape.as_i64()?;
        let mut out = Vec::with_capacity(wanted.len());
        let mut infer = None;
        for (d, &dim) in wanted.iter().enumerate() {
            out.push(match dim {
                -1 if infer.is_none() => {
                    infer = Some(d);
                    1
                }
                0 if !self.allow_zero => *x.shape.get(d).ok_or_else(|| {
                    Error::Model(format!(
                        "Reshape copies dimension {d} of shape {:?}",
                        x.shape
                    ))
                })?,
                d if d >= 0 => d as usize,
                _ => return Err(Error::Model(format!("Reshape to {wanted:?}"))),
            });
        }
        let known: usize = out.iter().product();
        let fits = match infer {
            Some(d) if known > 0 && x.len().is_multiple_of(known) => {
                out[d] = x.len() / known;
                true
            }
            Some(_) => false,
            None => known == x.len(),
        };
        if !fits {
            return Err(Error::Model(format!(
                "cannot reshape {:?} to {wanted:?}",
                x.shape
            )));
        }
        Ok(out)
    }
}

impl Kernel for Reshape {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x, shape] = required(inputs, "Reshape")?;
        Ok(vec![x.clone().reshaped(self.target(x, shape)?)])
    }

    fn run_owned(&self, first: Tensor, rest: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [shape] = required(rest, "Reshape")?;
        let target = self.target(&first, shape)?;
        Ok(vec![first.reshaped(target)])
    }

    fn row_wise(&self) -> bool {
        self.row_wise
    }
}

pub struct Flatten {
    axis: i64,
}

pub fn flatten(ctx: &Context) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(Flatten {
        axis: ctx.attrs.int("axis", 1),
    }))
}

impl Flatten {
    fn target(&self, x: &Tensor) -> Result<Vec<usize>> {
        let rank = x.rank();
        // Flatten's axis may equal the rank (everything folds into the first dimension).
        let axis = if self.axis == rank as i64 {
            rank
        } else {
            normalize_axis(self.axis, rank)?
        };
        Ok(vec![
            x.shape[..axis].iter().product(),
            x.shape[axis..].iter().product(),
        ])
    }
}

impl Kernel for Flatten {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = required(inputs, "Flatten")?;
        Ok(vec![x.clone().reshaped(self.target(x)?)])
    }

    fn run_owned(&self, first: Tensor, _: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let target = self.target(&first)?;
        Ok(vec![first.reshaped(target)])
    }

    fn row_wise(&self) -> bool {
        self.axis >= 1
    }
}

pub struct Gather {
    axis: i64,
    row_wise: bool,
}

pub fn gather(ctx: &Context) -> Result<Box<dyn Kernel>> {
    let axis = ctx.attrs.int("axis", 0);
    // Along the batch axis, Gather only keeps rows apart when it picks from a constant (a class
    // table indexed by each row's ArgMax), not when it reorders the rows themselves.
    let row_wise = axis != 0 || ctx.constant_input(0).is_some();
    Ok(Box::new(Gather { axis, row_wise }))
}

impl Kernel for Gather {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [data, indices] = required(inputs, "Gather")?;
        let axis = normalize_axis(self.axis, data.rank())?;
        let extent = data.shape[axis];
        let picked: Vec<usize> = indices
            .as_i64()?
            .iter()
            .map(|&i| {
                let resolved = if i < 0 { i + extent as i64 } else { i };
                usize::try_from(resolved)
                    .ok()
                    .filter(|&r| r < extent)
                    .ok_or_else(|| {
                        Error::Model(format!("Gather index {i} is out of range 0..{extent}"))
                    })
            })
            .collect::<Result<_>>()?;
        let mut picks: Vec<Vec<usize>> = data.shape.iter().map(|&n| (0..n).collect()).collect();
        picks[axis] = picked;
        let offsets = offsets_of(&data.shape, &picks);
        let mut shape = data.shape[..axis].to_vec();
        shape.extend_from_slice(&indices.shape);
        shape.extend_from_slice(&data.shape[axis + 1..]);
        Ok(vec![data.gather_elements(shape, &offsets)])
    }

    fn row_wise(&self) -> bool {
        self.row_wise
    }
}

/// Slice: opset 1 takes starts/ends/axes as attributes, opset 10+ as inputs (with steps).
pub struct Slice {
    attributes: Option<(Vec<i64>, Vec<i64>, Vec<i64>)>,
    row_wise: bool,
}

pub fn slice(ctx: &Context) -> Result<Box<dyn Kernel>> {
    let attributes = (ctx.opset < 10).then(|| {
        (
            ctx.attrs.ints("starts"),
            ctx.attrs.ints("ends"),
            ctx.attrs.ints("axes"),
        )
    });
    let axes: Option<Vec<i64>> = match &attributes {
        Some((_, _, axes)) if !axes.is_empty() => Some(axes.clone()),
        Some(_) => None,
        None => ctx.constant_input(3).and_then(|t| t.to_i64().ok()),
    };
    // Only slices that leave the batch axis alone keep rows apart.
    let row_wise = axes.is_some_and(|axes| axes.iter().all(|&a| a > 0));
    Ok(Box::new(Slice {
        attributes,
        row_wise,
    }))
}

impl Kernel for Slice {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = required(inputs, "Slice")?;
        let read = |i: usize| optional_i64(inputs, i);
        let (starts, ends, axes, steps) = match &self.attributes {
            Some((s, e, a)) => (
                s.clone(),
                e.clone(),
                (!a.is_empty()).then(|| a.clone()),
                None,
            ),
            None => (
                read(1)?.unwrap_or_default(),
                read(2)?.unwrap_or_default(),
                read(3)?,
                read(4)?,
            ),
        };
        let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(Error::Model(
                "Slice starts, ends, axes and steps differ in length".into(),
            ));
        }
        let mut picks: Vec<Vec<usize>> = x.shape.iter().map(|&n| (0..n).collect()).collect();
        for k in 0..starts.len() {
            let axis = normalize_axis(axes[k], x.rank())?;
            let n = x.shape[axis] as i64;
            let step = steps[k];
            if step == 0 {
                return Err(Error::Model("Slice step 0".into()));
            }
            let clamp = |v: i64, low: i64, high: i64| {
                let v = if v < 0 { v + n } else { v };
                v.clamp(low, high)
            };
            let (start, end) = if step > 0 {
                (clamp(starts[k], 0, n), clamp(ends[k], 0, n))
            } else {
                (clamp(starts[k], -1, n - 1), clamp(ends[k], -1, n - 1))
            };
            let mut picked = Vec::new();
            let mut i = start;
            while (step > 0 && i < end) || (step < 0 && i > end) {
                picked.push(i as usize);
                i += step;
            }
            picks[axis] = picked;
        }
        let shape = picks.iter().map(Vec::len).collect();
        Ok(vec![x.gather_elements(shape, &offsets_of(&x.shape, &picks))])
    }

    fn row_wise(&self) -> bool {
        self.row_wise
    }
}

/// Squeeze / Unsqueeze: axes as an attribute before opset 13, as an input from 13.
pub struct Squeeze {
    unsqueeze: bool,
    axes: Option<Vec<i64>>,
    row_wise: bool,
}

pub fn squeeze(op: &str, ctx: &Context) -> Result<Box<dyn Kernel>> {
    let axes = (ctx.opset < 13).then(|| ctx.attrs.ints("axes"));
    let known_axes = axes
        .clone()
        .or_else(|| ctx.constant_input(1).and_then(|t| t.to_i64().ok()));
    // Squeezing the batch axis away (or adding one in front) changes what a row is.
    let row_wise = known_axes.is_some_and(|axes| !axes.is_empty() && axes.iter().all(|&a| a > 0));
    Ok(Box::new(Squeeze {
        unsqueeze: op == "Unsqueeze",
        axes,
        row_wise,
    }))
}

impl Kernel for Squeeze {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = required(inputs, "Squeeze")?;
        let axes = match &self.axes {
            Some(axes) => axes.clone(),
            None => optional_i64(inputs, 1)?.unwrap_or_default(),
        };
        let shape = if self.unsqueeze {
            let rank = x.rank() + axes.len();
            let mut inserted: Vec<usize> = axes
                .iter()
                .map(|&a| normalize_axis(a, rank))
                .collect::<Result<_>>()?;
            inserted.sort_unstable();
            let mut shape = x.shape.clone();
            for axis in inserted {
                shape.insert(axis, 1);
            }
            shape
        } else if axes.is_empty() {
            x.shape.iter().copied().filter(|&d| d != 1).collect()
        } else {
            let removed: Vec<usize> = axes
                .iter()
                .map(|&a| normalize_axis(a, x.rank()))
                .collect::<Result<_>>()?;
            if removed.iter().any(|&a| x.shape[a] != 1) {
                return Err(Error::Model(format!(
                    "Squeeze of axes {axes:?} of shape {:?}",
                    x.shape
                )));
            }
            (0..x.rank())
                .filter(|d| !removed.contains(d))
                .map(|d| x.shape[d])
                .collect()
        };
        Ok(vec![x.clone().reshaped(shape)])
    }

    fn row_wise(&self) -> bool {
        self.row_wise
    }
}
